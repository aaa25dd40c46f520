//! From a participant's keybundle to a sent key request: the session is set up (X3DH or
//! PQXDH) from the bundle, then the request is encrypted in the dialect's shape.

use crate::prelude::*;

use rand_core::CryptoRngCore;

use crate::signal::SignalError;

use super::super::dialect::KeyRequest;
use super::super::failure::{AttemptFailure, BundleError, DropReason, HttpFailure};
use super::super::io::{Action, Progress};
use super::super::messages;
use super::super::plaintexts;
use super::super::sas::{SasNonce, SAS_NONCE_LEN};
use super::super::{Millis, ParticipantId};
use super::attempts::Stage;
use super::prepare::Sealed;
use super::{Exchange, Request};

impl Exchange {
    /// A bundle fetched for an attempt waiting for it: the session is set up and the
    /// request sent, or the attempt fails.
    pub(super) fn on_bundle(
        &mut self,
        participant: ParticipantId,
        result: Result<String, HttpFailure>,
        now: Millis,
        rng: &mut impl CryptoRngCore,
        out: &mut Vec<Action>,
    ) {
        let Some(attempt) = self
            .attempt_mut(&participant)
            .filter(|a| a.stage == Stage::FetchingBundle)
        else {
            out.push(Action::Dropped(DropReason::StaleBundle));
            return;
        };
        attempt.stage = Stage::AwaitingAnswer;
        // Past its deadline the attempt has timed out, whichever the driver heard first: its
        // timer, or a fetch aborted at the same moment (the browser's own timeout).
        if attempt.deadline <= now {
            return self.fail_attempt(&participant, AttemptFailure::Timeout, now, rng, out);
        }
        if let Err(failure) = self.start_session(&participant, result, now, rng) {
            return self.fail_attempt(&participant, failure, now, rng, out);
        }
        out.push(Action::PersistState);
        self.send_request(&participant, now, rng, out);
    }

    /// X3DH with the fetched bundle; on any failure the store is unchanged.
    fn start_session(
        &mut self,
        participant: &ParticipantId,
        fetched: Result<String, HttpFailure>,
        now: Millis,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(), AttemptFailure> {
        let body = fetched.map_err(|f| match f {
            HttpFailure {
                status: 429,
                retry_after_s,
            } => AttemptFailure::RateLimited { retry_after_s },
            f => AttemptFailure::BundleHttp(f.status),
        })?;
        let bundle = messages::parse_bundle(&body, participant, self.config.profile)
            .map_err(|e| AttemptFailure::BundleInvalid(BundleError::Malformed(e)))?;
        if !self.pin_allows(participant, &bundle.identity_key) {
            return Err(AttemptFailure::IdentityMismatch);
        }
        if self.config.require_post_quantum && bundle.kyber_pre_key.is_none() {
            return Err(AttemptFailure::BundleInvalid(BundleError::Malformed(
                messages::Invalid {
                    field: "kyber_pre_key",
                    problem: "missing (requirePostQuantum)",
                },
            )));
        }
        let address = participant.address();
        self.state
            .store
            .process_bundle(&address, &bundle, rng)
            .map_err(|e| match e {
                SignalError::UntrustedIdentity(_) => AttemptFailure::IdentityChanged,
                e => AttemptFailure::BundleInvalid(BundleError::Rejected(e)),
            })?;
        self.state.set_session_established(&address, now);
        Ok(())
    }

    /// Encrypts a key request for `participant` in the dialect's shape and sends it (or,
    /// while preparing, holds it: `prepare.rs`).
    pub(super) fn send_request(
        &mut self,
        participant: &ParticipantId,
        now: Millis,
        rng: &mut impl CryptoRngCore,
        out: &mut Vec<Action>,
    ) {
        let mut random = [0u8; 16];
        rng.fill_bytes(&mut random);
        let request_id = plaintexts::request_id(&random);
        let dialect = self.config.profile;
        let request = KeyRequest {
            meeting_id: &self.meeting_id,
            guest_session_id: &self.guest_session_id,
            request_id: &request_id,
            now_ms: now,
        };
        let mut sas_nonce = SasNonce([0u8; SAS_NONCE_LEN]);
        let plaintext = dialect.request_plaintext(&request, &mut sas_nonce, rng);
        let address = participant.address();
        let message = match self.state.store.encrypt(&address, plaintext.as_bytes()) {
            Ok(message) => message,
            Err(e) => {
                return self.fail_attempt(
                    participant,
                    AttemptFailure::EncryptFailed(e),
                    now,
                    rng,
                    out,
                )
            }
        };
        out.push(Action::PersistState);
        let body = messages::guest_event(
            participant,
            &dialect.request_routing(participant, &request_id),
            dialect.names(),
            message.message_type(),
            message.serialized(),
        );
        self.requests.open(Request {
            id: request_id,
            participant: participant.clone(),
            sas_nonce,
        });
        let sealed = Sealed {
            participant: participant.clone(),
            body,
            at: now,
        };
        if self.holding.is_none() {
            return self.dispatch(sealed, now, out);
        }
        // The lobby is idle time: the safety number is made now rather than after the key,
        // and the answer's decryption is rehearsed.
        self.rehearse_answer(&address, &message, rng);
        let number = self.safety_number(participant);
        let remote = self.state.store.known_identity(&address).copied();
        self.safety_ready = remote.map(|key| (participant.clone(), key, number));
        if let Some(holding) = &mut self.holding {
            holding.sealed = Some(sealed);
        }
    }

    /// Sends a sealed request: the participant's time, and the wait before the next one is
    /// asked as well, run from now (not from the bundle fetch or the sealing before it).
    pub(super) fn dispatch(&mut self, sealed: Sealed, now: Millis, out: &mut Vec<Action>) {
        let deadline = now.saturating_add(self.config.participant_timeout_ms);
        let hedge_at = self.hedge_time(now);
        let participant = sealed.participant;
        if let Some(attempt) = self.attempt_mut(&participant) {
            attempt.deadline = deadline;
            attempt.hedge_at = hedge_at;
        }
        if !self.asked.contains(&participant) {
            self.asked.push(participant.clone());
        }
        out.push(Action::Send {
            participant: participant.clone(),
            body: sealed.body,
        });
        out.push(Action::Progress(Progress::WaitingFor { participant }));
    }
}
