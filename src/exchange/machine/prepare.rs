//! Preparing while the call waits for the socket or the host ([`Event::Prepare`]): the
//! participants list, the first participant's bundle, the session (X3DH or PQXDH) and the
//! sealed request are ready before admission; at admission ([`Event::Start`]) the exchange
//! only sends. Nothing goes to a participant before then.
//!
//! A sealed request is held at most [`PREPARED_MAX_AGE_MS`]. Then the list is fetched again
//! and the request sealed anew: on the same session while it is younger than the session
//! cache (no bundle, no one-time prekey), or for the next participant if the first one left
//! (one more bundle). While holding, at most [`HELD_BUNDLES_MAX`] bundles are fetched; past
//! that, preparing stops and admission takes the ordinary path. A failure while preparing
//! is silent: admission starts afresh.
//!
//! [`Event::Prepare`]: super::super::Event::Prepare
//! [`Event::Start`]: super::super::Event::Start

use crate::prelude::*;

use super::super::io::Action;
use super::super::{Millis, ParticipantId};
use super::{Exchange, Lifecycle, Stocking};

/// How long a sealed request waits for admission before it is sealed anew. Its timestamp is
/// read against ±2 minutes of clock difference (docs/contract.md §5): a minute-old one keeps
/// half of that, and the participants list it was chosen from is a minute old at most.
pub const PREPARED_MAX_AGE_MS: Millis = 60_000;

/// Bundles fetched while holding: the first participant's, and one more to redo it (that
/// participant left, or its session outlived the cache). Each costs the participant a
/// one-time prekey and, in PeerWave, one of its device's three bundles a minute.
pub const HELD_BUNDLES_MAX: u8 = 2;

/// Sends held until admission.
#[derive(Debug, Default)]
pub(super) struct Holding {
    /// Bundles fetched while holding.
    pub(super) bundles: u8,
    /// The request ready to go, once there is one.
    pub(super) sealed: Option<Sealed>,
}

/// A key request encrypted and answerable, not yet sent. One that is dropped unsent stays in
/// the open requests until it ages out: its id was never on the wire, so nobody can answer it.
#[derive(Debug)]
pub(super) struct Sealed {
    pub(super) participant: ParticipantId,
    /// The event body to emit.
    pub(super) body: String,
    /// When it was sealed (its timestamp).
    pub(super) at: Millis,
}

impl Exchange {
    /// Begins preparing, unless a run is going or a key was delivered (or preparing
    /// already began for this wait).
    pub(super) fn prepare(&mut self, out: &mut Vec<Action>) {
        if self.holding.is_none() && matches!(self.lifecycle, Lifecycle::Idle | Lifecycle::Failed) {
            self.holding = Some(Holding::default());
            self.list(out);
        }
    }

    /// Admission: the sealed request goes now if it is fresh, or is sealed anew from a new
    /// list (a background tab's timer may have fired late); a preparation still under way
    /// carries on unheld (an attempt's clock runs from its bundle fetch); none, and the run
    /// starts.
    pub(super) fn release(&mut self, now: Millis, out: &mut Vec<Action>) {
        match self.holding.take().and_then(|h| h.sealed) {
            // PeerWave serves a guest's bundle to anyone, so its stock may have been drained in
            // the lobby: counted again first, then the request goes on the prepared session.
            Some(_) if self.config.profile.stocks_pre_keys() => self.restock(out),
            Some(sealed) if now.saturating_sub(sealed.at) <= PREPARED_MAX_AGE_MS => {
                self.dispatch(sealed, now, out)
            }
            Some(_) => self.list(out),
            None => self.start(out),
        }
    }

    fn restock(&mut self, out: &mut Vec<Action>) {
        if let Lifecycle::Attempting(rotation, _) =
            core::mem::replace(&mut self.lifecycle, Lifecycle::Idle)
        {
            self.lifecycle = Lifecycle::Stocking(rotation.participants, Stocking::Counting);
            out.push(Action::CountPreKeys);
        }
    }

    /// When the held request is sealed anew, if one is held.
    pub(super) fn refresh_time(&self) -> Option<Millis> {
        let sealed = self.holding.as_ref()?.sealed.as_ref()?;
        Some(sealed.at.saturating_add(PREPARED_MAX_AGE_MS))
    }

    /// The held request has waited its time: it is dropped and the list fetched again.
    pub(super) fn refresh(&mut self, now: Millis, out: &mut Vec<Action>) {
        if self.refresh_time().is_some_and(|at| at <= now) {
            if let Some(holding) = &mut self.holding {
                holding.sealed = None;
            }
            self.list(out);
        }
    }

    /// Whether a bundle may be fetched now: always unless holding, and then as long as
    /// [`HELD_BUNDLES_MAX`] allows (counted here). When it does not, preparing stops.
    pub(super) fn may_fetch_bundle(&mut self) -> bool {
        let Some(holding) = &mut self.holding else {
            return true;
        };
        if holding.bundles < HELD_BUNDLES_MAX {
            holding.bundles += 1;
            return true;
        }
        self.lifecycle = Lifecycle::Idle;
        false
    }
}
