//! Checking a relayed participant message: it must decrypt under the session with the
//! participant asked, name our meeting, answer one of our outstanding requests (or update a
//! key we already have from that participant), and be recent. Anything else is dropped
//! without changing the Signal state.

use crate::prelude::*;

use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::signal::{CiphertextMessage, DecryptLimits, ProtocolStore};

use super::super::contract;
use super::super::dialect::sas_reveal_event;
use super::super::failure::DropReason;
use super::super::io::{Action, Progress};
use super::super::messages;
use super::super::plaintexts::{self, KeyMessage, KeyMessageKind};
use super::super::sas::{self, SasNonce, ShortCode};
use super::super::{Millis, ParticipantId};
use super::{Delivered, Exchange, Lifecycle, Request};

/// What one relayed message may cost a guest. A guest gets one answer and a few key updates
/// per participant, so its counters stay small and it rarely holds more than a few session
/// states with one participant (one per answer that started a new session). libsignal's
/// 25,000 counters in each of 41 states let a forged message (fresh ratchet key, counter
/// 25,000, junk MAC) cost about half a second of main thread before its MAC is checked;
/// these bounds cap it at a few milliseconds (README, "Limits").
pub const GUEST_DECRYPT_LIMITS: DecryptLimits = DecryptLimits {
    max_forward_jumps: 64,
    max_states: 5,
};

/// A participant message that decrypted (on a copy of the store) and names our meeting at
/// a plausible time, not yet matched to a request or a key.
struct Opened {
    from: ParticipantId,
    answer: KeyMessage,
    /// The store after the decryption, kept only if the message is accepted.
    store: ProtocolStore,
}

impl Exchange {
    /// The code with `request`'s participant, and the reveal of our nonce (sent now: the
    /// participant computes its side when it arrives).
    fn settle_short_code(
        &mut self,
        request: &Request,
        theirs: &SasNonce,
        out: &mut Vec<Action>,
    ) -> Option<ShortCode> {
        let participant = &request.participant;
        let address = participant.address();
        let remote = *self
            .state
            .store
            .session(&address)?
            .current()?
            .remote_identity();
        let guest_id = contract::guest_fingerprint_id(&self.guest_session_id);
        let participant_id =
            contract::participant_fingerprint_id(&participant.user_id, &participant.device_id);
        let code = sas::short_code(&sas::CodeInputs {
            guest_nonce: &request.sas_nonce,
            participant_nonce: theirs,
            guest_identity: &self.state.store.identity_key(),
            participant_identity: &remote,
            guest_id: &guest_id,
            participant_id: &participant_id,
            meeting_id: &self.meeting_id,
        });
        let reveal =
            plaintexts::sas_reveal_plaintext(&self.meeting_id, &request.id, &request.sas_nonce);
        // Without the reveal the participant shows no code; the key is still good.
        if let Ok(message) = self.state.store.encrypt(&address, reveal.as_bytes()) {
            out.push(Action::Send {
                participant: participant.clone(),
                body: sas_reveal_event(participant, &message),
            });
        }
        Some(code)
    }

    /// Why an answer to `request_id` from `from` cannot be ours, if it cannot.
    fn check_request(&self, request_id: &str, from: &ParticipantId) -> Option<DropReason> {
        if self.answered.iter().any(|r| r == request_id) {
            return Some(DropReason::AlreadyAnswered);
        }
        match self.outstanding.iter().find(|r| r.id == request_id) {
            None => Some(DropReason::UnknownRequest),
            Some(r) if r.participant != *from => Some(DropReason::WrongParticipant),
            Some(_) => None,
        }
    }

    /// A relayed participant message: a key is delivered, or the message is dropped without
    /// changing the Signal state.
    pub(super) fn on_message(
        &mut self,
        body: &str,
        now: Millis,
        rng: &mut impl CryptoRngCore,
        out: &mut Vec<Action>,
    ) {
        let accepted = self.open(body, now, rng).and_then(|opened| {
            let request = self.claim(&opened)?;
            Ok((opened, request))
        });
        match accepted {
            Ok((opened, request)) => self.deliver(opened, request, out),
            Err(reason) => out.push(Action::Dropped(reason)),
        }
    }

    /// What can be checked before the message is matched to a request or a key: the event,
    /// its sender, the request on its envelope (where the dialect puts one there), the
    /// decryption, the meeting and the time.
    fn open(
        &self,
        body: &str,
        now: Millis,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Opened, DropReason> {
        let dialect = self.config.profile;
        let incoming =
            messages::parse_incoming(body, dialect.names()).map_err(DropReason::MalformedEvent)?;
        if matches!(self.lifecycle, Lifecycle::Idle) {
            return Err(DropReason::NotStarted);
        }
        if !self.asked.contains(&incoming.from) {
            return Err(DropReason::UnknownSender);
        }
        if let Some(id) = dialect.envelope_binding(&incoming) {
            if let Some(reason) = self.check_request(id, &incoming.from) {
                return Err(reason);
            }
        }
        let message = CiphertextMessage::parse(incoming.message_type, &incoming.ciphertext)
            .map_err(DropReason::DecryptFailed)?;
        // Decrypt on a copy: the Signal state moves only if the answer is accepted.
        let mut store = self.state.store.clone();
        let address = incoming.from.address();
        let plaintext = store
            .decrypt_within(&address, &message, GUEST_DECRYPT_LIMITS, rng)
            .map(Zeroizing::new)
            .map_err(DropReason::DecryptFailed)?;
        let answer = dialect
            .parse_answer(&plaintext, incoming.request_id)
            .map_err(DropReason::BadPlaintext)?;
        if answer.meeting_id != self.meeting_id {
            return Err(DropReason::WrongMeeting);
        }
        if !self.is_recent(answer.timestamp_ms, now) {
            return Err(DropReason::StaleTimestamp);
        }
        Ok(Opened {
            from: incoming.from,
            answer,
            store,
        })
    }

    /// Whether a message stamped `timestamp_ms` is within the accepted clock difference.
    fn is_recent(&self, timestamp_ms: i64, now: Millis) -> bool {
        let skew = i64::try_from(self.config.clock_skew_ms).unwrap_or(i64::MAX);
        let now_signed = i64::try_from(now).unwrap_or(i64::MAX);
        timestamp_ms.saturating_sub(now_signed).saturating_abs() <= skew
    }

    /// Matches an opened message to what it may be: the answer to one of our open requests
    /// (which it then closes, returned), or an update of the key its sender gave us.
    fn claim(&mut self, opened: &Opened) -> Result<Option<Request>, DropReason> {
        let (from, answer) = (&opened.from, &opened.answer);
        match answer.kind {
            KeyMessageKind::Response => {
                let request_id = answer.request_id.as_deref().unwrap_or_default();
                if let Some(reason) = self.check_request(request_id, from) {
                    return Err(reason);
                }
                if matches!(self.lifecycle, Lifecycle::Delivered(_)) {
                    return Err(DropReason::KeyAlreadyDelivered);
                }
                let Some(pos) = self.outstanding.iter().position(|r| r.id == request_id) else {
                    return Err(DropReason::UnknownRequest);
                };
                let request = self.outstanding.remove(pos);
                self.answered.push(request.id.clone());
                self.key_sources.push(from.clone());
                Ok(Some(request))
            }
            KeyMessageKind::Update => {
                let Lifecycle::Delivered(current) = &self.lifecycle else {
                    return Err(DropReason::UpdateBeforeKey);
                };
                if !self.key_sources.contains(from) {
                    return Err(DropReason::UpdateFromUnverifiedParticipant);
                }
                if !current.is_replaced_by(answer.timestamp_ms, answer.key_index) {
                    return Err(DropReason::StaleUpdate);
                }
                Ok(None)
            }
        }
    }

    /// Accepts an opened message that answers `answered` (or updates the key): its
    /// decryption is kept, the short code settled, and the key handed out.
    fn deliver(&mut self, opened: Opened, answered: Option<Request>, out: &mut Vec<Action>) {
        let Opened {
            from,
            answer,
            store,
        } = opened;
        self.state.store = store;
        let short_code = match (&answered, &answer.sas_nonce) {
            (Some(request), Some(theirs)) => self.settle_short_code(request, theirs, out),
            // An update keeps the code agreed with the same sender.
            (None, _) => match &self.lifecycle {
                Lifecycle::Delivered(d) if d.from == from => d.short_code.clone(),
                _ => None,
            },
            (Some(_), None) => None,
        };
        if answered.is_some() {
            // Asked first next time (after a reload too).
            self.state.record_answer(&from);
        }
        let delivered = Delivered {
            safety_number: self.safety_number(&from),
            short_code,
            from,
            key_index: answer.key_index,
            check_value: answer.key.check_value(),
            timestamp_ms: answer.timestamp_ms,
        };
        self.lifecycle = Lifecycle::Delivered(delivered.clone());
        out.push(Action::PersistState);
        out.push(Action::Progress(Progress::KeyReceived {
            from: delivered.from.clone(),
            key_index: delivered.key_index,
        }));
        out.push(Action::DeliverKey {
            key: answer.key,
            delivered,
        });
    }
}
