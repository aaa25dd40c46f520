//! Checking a relayed participant message: it must decrypt under the session with the
//! participant asked, name our meeting, answer one of our outstanding requests (or update a
//! key we already have from that participant), and be recent. Anything else is dropped
//! without changing the Signal state.

use crate::prelude::*;

use rand_core::CryptoRngCore;

use crate::signal::{CiphertextMessage, DecryptLimits, SignalError, WHISPER_TYPE};

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
/// these bounds cap it at a few milliseconds (docs/design.md, "Limits").
pub const GUEST_DECRYPT_LIMITS: DecryptLimits = DecryptLimits {
    max_forward_jumps: 64,
    max_states: 5,
};

impl Exchange {
    /// A relayed participant message: a key is delivered, or the message is dropped without
    /// changing the Signal state.
    pub(super) fn on_message(
        &mut self,
        body: &str,
        now: Millis,
        rng: &mut impl CryptoRngCore,
        out: &mut Vec<Action>,
    ) {
        let drop = |out: &mut Vec<Action>, reason| out.push(Action::Dropped(reason));
        let profile = self.config.profile;
        let incoming = match messages::parse_incoming(body, profile.names()) {
            Ok(m) => m,
            Err(e) => return drop(out, DropReason::MalformedEvent(e)),
        };
        if matches!(self.lifecycle, Lifecycle::Idle) {
            return drop(out, DropReason::NotStarted);
        }
        if !self.asked.contains(&incoming.from) {
            return drop(out, DropReason::UnknownSender);
        }
        // Where the envelope binds the answer, anything but an open request to this sender is
        // dropped before it is decrypted (and before it can touch the Signal state).
        if profile.binds_answers_on_envelope() {
            let id = incoming.request_id.as_deref().unwrap_or_default();
            if let Some(reason) = self.check_request(id, &incoming.from) {
                return drop(out, reason);
            }
        }
        let message = match CiphertextMessage::parse(incoming.message_type, &incoming.ciphertext) {
            Ok(m) => m,
            Err(e) => return drop(out, DropReason::DecryptFailed(e)),
        };
        // Decrypted without changing the store: the Signal state moves only if the answer is
        // accepted.
        let address = incoming.from.address();
        let decryption =
            match self
                .state
                .store
                .decrypt_pending(&address, &message, GUEST_DECRYPT_LIMITS, rng)
            {
                Ok(d) => d,
                Err(e) => return drop(out, DropReason::DecryptFailed(e)),
            };
        let parsed = profile.parse_answer(decryption.plaintext(), incoming.request_id);
        let answer = match parsed {
            Ok(a) => a,
            Err(e) => return drop(out, DropReason::BadPlaintext(e)),
        };
        if answer.meeting_id != self.meeting_id {
            return drop(out, DropReason::WrongMeeting);
        }
        if !self.is_recent(answer.timestamp_ms, now) {
            return drop(out, DropReason::StaleTimestamp);
        }
        // The version of the message is that of the session state that decrypted it; the
        // sender's identity is the one trusted for it (a session with another is refused).
        let session_version = message.version();
        let Some(&identity_key) = decryption.sender_identity() else {
            return drop(out, DropReason::DecryptFailed(SignalError::NoMatchingState));
        };
        if self.config.require_post_quantum && session_version < 4 {
            return drop(
                out,
                DropReason::DecryptFailed(SignalError::InvalidMessage(
                    "v3 session refused (requirePostQuantum)",
                )),
            );
        }
        let from = incoming.from;
        let answered_request = match self.claim(&from, &answer) {
            Ok(request) => request,
            Err(reason) => return drop(out, reason),
        };
        self.state.store.apply_decryption(decryption);
        let short_code = match answered_request {
            Some(request) => {
                // Asked first next time (after a reload too).
                self.state.record_answer(&from);
                // The code and its reveal once the key is handed over (`key_handed_over`):
                // neither is on the key's way.
                self.code_due = answer.sas_nonce.clone().map(|theirs| (request, theirs));
                None
            }
            // An update keeps the code agreed with the same sender.
            None => match &self.lifecycle {
                Lifecycle::Delivered(d) if d.from == from => d.short_code.clone(),
                _ => None,
            },
        };
        let delivered = Delivered {
            identity_key,
            session_version,
            // After the key is handed over (`Event::KeyHandedOver`).
            safety_number: String::new(),
            short_code,
            from,
            key_index: answer.key_index,
            check_value: answer.key.check_value(),
            timestamp_ms: answer.timestamp_ms,
        };
        self.lifecycle = Lifecycle::Delivered(delivered.clone());
        // The key goes first: storing the state and telling the page are not on its way (all
        // three run in the same task, so nothing else comes between them).
        let progress = Progress::KeyReceived {
            from: delivered.from.clone(),
            key_index: delivered.key_index,
        };
        out.push(Action::DeliverKey {
            key: answer.key,
            delivered,
        });
        out.push(Action::PersistState);
        out.push(Action::Progress(progress));
    }

    /// Runs the answer's decryption once, in the lobby, on the request `sent` to `address`
    /// read as if it had come back. It cannot authenticate (it fails its MAC) and changes
    /// nothing: [`crate::signal::ProtocolStore::decrypt_pending`] leaves the store as it is.
    /// It is there for V8, which compiles a WebAssembly function when it is first called: the
    /// receiving side of the ratchet is compiled now, not between the answer and `setKey`
    /// (docs/performance.md, "From the host's admission to the key").
    pub(super) fn rehearse_answer(
        &self,
        address: &str,
        sent: &CiphertextMessage,
        rng: &mut impl CryptoRngCore,
    ) {
        let inner = match sent {
            CiphertextMessage::PreKey(m) => m.message().serialized(),
            CiphertextMessage::Whisper(m) => m.serialized(),
        };
        if let Ok(echo) = CiphertextMessage::parse(Some(WHISPER_TYPE.into()), inner) {
            let _refused =
                self.state
                    .store
                    .decrypt_pending(address, &echo, GUEST_DECRYPT_LIMITS, rng);
        }
    }

    /// Why an answer to `request_id` from `from` cannot be ours, if it cannot.
    fn check_request(&self, request_id: &str, from: &ParticipantId) -> Option<DropReason> {
        if self.requests.was_answered(request_id) {
            return Some(DropReason::AlreadyAnswered);
        }
        // Once the key is in, the requests still open (hedging's) are closed: where the
        // envelope binds answers, a late or forged one is dropped before it costs an X3DH.
        if matches!(self.lifecycle, Lifecycle::Delivered(_)) {
            return Some(DropReason::KeyAlreadyDelivered);
        }
        match self.requests.find(request_id) {
            None => Some(DropReason::UnknownRequest),
            Some(r) if r.participant != *from => Some(DropReason::WrongParticipant),
            Some(_) => None,
        }
    }

    /// Whether a message stamped `timestamp_ms` is within the accepted clock difference.
    fn is_recent(&self, timestamp_ms: i64, now: Millis) -> bool {
        let skew = i64::try_from(self.config.clock_skew_ms).unwrap_or(i64::MAX);
        let now_signed = i64::try_from(now).unwrap_or(i64::MAX);
        timestamp_ms.saturating_sub(now_signed).saturating_abs() <= skew
    }

    /// What a decrypted message from `from` may be: the answer to one of our open requests
    /// (which it then closes, returned), or an update of the key its sender gave us.
    fn claim(
        &mut self,
        from: &ParticipantId,
        answer: &KeyMessage,
    ) -> Result<Option<Request>, DropReason> {
        match answer.kind {
            KeyMessageKind::Response => {
                let request_id = answer.request_id.as_deref().unwrap_or_default();
                if let Some(reason) = self.check_request(request_id, from) {
                    return Err(reason);
                }
                let Some(request) = self.requests.close(request_id) else {
                    return Err(DropReason::UnknownRequest);
                };
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

    /// The code with `request`'s participant, whose answer decrypted under a session with
    /// `remote`, and the reveal of our nonce (sent now: the participant computes its side
    /// when it arrives).
    pub(super) fn settle_short_code(
        &mut self,
        request: &Request,
        theirs: &SasNonce,
        remote: &crate::signal::PublicKey,
        out: &mut Vec<Action>,
    ) -> ShortCode {
        let participant = &request.participant;
        let address = participant.address();
        let guest_id = contract::guest_fingerprint_id(&self.guest_session_id);
        let participant_id =
            contract::participant_fingerprint_id(&participant.user_id, &participant.device_id);
        let code = sas::short_code(&sas::CodeInputs {
            guest_nonce: &request.sas_nonce,
            participant_nonce: theirs,
            guest_identity: &self.state.store.identity_key(),
            participant_identity: remote,
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
        code
    }
}
