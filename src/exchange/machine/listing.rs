//! From the participants list to the first attempt. In PeerWave the guest first makes sure
//! the server holds enough of its one-time prekeys: every participant there answers every
//! request with a new session from the guest's bundle.

use crate::prelude::*;

use rand_core::CryptoRngCore;

use super::super::failure::{ExchangeFailure, HttpFailure, ParticipantsError};
use super::super::io::Action;
use super::super::messages;
use super::super::state::{spread_of, ONE_TIME_PRE_KEYS};
use super::super::{Millis, ParticipantId};
use super::attempts::Attempts;
use super::{Exchange, Lifecycle, Rotation, Stocking};

/// Most one-time prekeys a PeerWave guest keeps published: bounds the local store too.
const MAX_PUBLISHED_PRE_KEYS: usize = 100;
/// Fewest one-time prekeys a PeerWave guest keeps published: as many as it registers.
const MIN_PUBLISHED_PRE_KEYS: usize = ONE_TIME_PRE_KEYS as usize;

impl Exchange {
    /// The participants list: the first attempt, or the prekey stocking before it.
    pub(super) fn on_participants(
        &mut self,
        result: Result<String, HttpFailure>,
        now: Millis,
        rng: &mut impl CryptoRngCore,
        out: &mut Vec<Action>,
    ) {
        if !matches!(self.lifecycle, Lifecycle::Listing) {
            return;
        }
        let listed = result.map_err(ParticipantsError::Http).and_then(|body| {
            messages::parse_participants(&body, self.config.profile)
                .map_err(ParticipantsError::Malformed)
        });
        let participants = match listed {
            Ok(list) => list,
            Err(e) => return self.give_up(ExchangeFailure::ParticipantsUnavailable(e), out),
        };
        if participants.is_empty() {
            return self.give_up(ExchangeFailure::NoParticipants(Vec::new()), out);
        }
        if self.config.profile.stocks_pre_keys() {
            self.lifecycle = Lifecycle::Stocking(participants, Stocking::Counting);
            out.push(Action::CountPreKeys);
            return;
        }
        self.rotate(participants, now, rng, out);
    }

    /// PeerWave's answer about our published prekeys (the count, then the publication).
    /// Stocking is best effort: whatever the server says, the participants are asked next.
    pub(super) fn on_server_pre_keys(
        &mut self,
        result: Result<String, HttpFailure>,
        now: Millis,
        rng: &mut impl CryptoRngCore,
        out: &mut Vec<Action>,
    ) {
        let (participants, stage) = match core::mem::replace(&mut self.lifecycle, Lifecycle::Idle) {
            Lifecycle::Stocking(participants, stage) => (participants, stage),
            other => {
                // Not waiting for it: leave the state as it was.
                self.lifecycle = other;
                return;
            }
        };
        let on_server = result
            .ok()
            .and_then(|body| messages::parse_server_pre_keys(&body).ok());
        // Each request reaches every participant, and each answers with one of our prekeys.
        let wanted = participants
            .len()
            .saturating_mul(self.config.max_failures)
            .clamp(MIN_PUBLISHED_PRE_KEYS, MAX_PUBLISHED_PRE_KEYS);
        match on_server {
            Some(ids) if stage == Stocking::Counting && ids.len() < wanted => {
                let count = (wanted - ids.len()) as u32;
                let new = self.state.store.restock_one_time_pre_keys(&ids, count, rng);
                // Stored before they are published: an answer may use them at once.
                out.push(Action::PersistState);
                out.push(Action::PublishPreKeys {
                    body: messages::pre_keys_body(&new),
                });
                self.lifecycle = Lifecycle::Stocking(participants, Stocking::Publishing);
            }
            _ => self.rotate(participants, now, rng, out),
        }
    }

    /// Where in the list this guest starts (0: the server's order).
    fn spread(&self) -> usize {
        if self.config.spread_first_requests {
            spread_of(&self.guest_session_id)
        } else {
            0
        }
    }

    /// Starts asking `participants`, the last answerer first, then from where this guest
    /// starts ([`spread_of`]).
    fn rotate(
        &mut self,
        participants: Vec<ParticipantId>,
        now: Millis,
        rng: &mut impl CryptoRngCore,
        out: &mut Vec<Action>,
    ) {
        let rotation = Rotation {
            participants: self.state.preferred_order(participants, self.spread()),
            next_index: 0,
            failures: Vec::new(),
            counted: 0,
        };
        self.ask_next(rotation, Attempts::default(), None, now, rng, out);
    }
}
