//! The exchange's state machine: one participant at a time, a deadline per participant,
//! rotation on failure, and strict checks on every answer.

use crate::prelude::*;

use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::signal::{CiphertextMessage, SignalError};

use super::state::GuestState;
use super::wire::{self, KeyMessageKind};
use super::{
    Action, Attempt, AttemptFailure, DropReason, Event, ExchangeConfig, ExchangeFailure,
    HttpFailure, Millis, ParticipantId, Progress,
};

/// Without a `Retry-After`, a rate-limited participant is skipped for the server's window.
const DEFAULT_RETRY_AFTER_S: u32 = 60;
/// Requests kept answerable; older ones are forgotten first.
const MAX_OUTSTANDING_REQUESTS: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not started yet.
    Idle,
    Listing,
    Attempting,
    Delivered,
    /// Gave up; `Event::Start` tries again.
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    FetchingBundle,
    AwaitingAnswer,
}

#[derive(Debug)]
struct CurrentAttempt {
    participant: ParticipantId,
    timer: u64,
    stage: Stage,
}

#[derive(Debug)]
struct Request {
    id: String,
    participant: ParticipantId,
}

/// The guest key exchange for one meeting.
#[derive(Debug)]
pub struct Exchange {
    config: ExchangeConfig,
    meeting_id: String,
    guest_session_id: String,
    state: GuestState,
    phase: Phase,
    participants: Vec<ParticipantId>,
    next_index: usize,
    current: Option<CurrentAttempt>,
    failures: Vec<Attempt>,
    outstanding: Vec<Request>,
    answered: Vec<String>,
    asked: Vec<ParticipantId>,
    key_sources: Vec<ParticipantId>,
    backoff_until: Vec<(ParticipantId, Millis)>,
    timer_seq: u64,
}

impl Exchange {
    pub fn new(
        config: ExchangeConfig,
        meeting_id: String,
        guest_session_id: String,
        state: GuestState,
    ) -> Self {
        Self {
            config,
            meeting_id,
            guest_session_id,
            state,
            phase: Phase::Idle,
            participants: Vec::new(),
            next_index: 0,
            current: None,
            failures: Vec::new(),
            outstanding: Vec::new(),
            answered: Vec::new(),
            asked: Vec::new(),
            key_sources: Vec::new(),
            backoff_until: Vec::new(),
            timer_seq: 0,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The state to persist after [`Action::PersistState`].
    pub fn state(&self) -> &GuestState {
        &self.state
    }

    pub fn config(&self) -> &ExchangeConfig {
        &self.config
    }

    /// The participant currently being asked, if any.
    pub fn current_participant(&self) -> Option<&ParticipantId> {
        self.current.as_ref().map(|c| &c.participant)
    }

    /// Feeds one event at time `now`; returns what to do, in order.
    pub fn handle(
        &mut self,
        event: Event,
        now: Millis,
        rng: &mut impl CryptoRngCore,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::Start => self.start(&mut out),
            Event::ParticipantsListed(result) => self.on_participants(result, now, rng, &mut out),
            Event::BundleFetched {
                participant,
                result,
            } => self.on_bundle(participant, result, now, rng, &mut out),
            Event::MessageReceived(body) => self.on_message(&body, now, rng, &mut out),
            Event::SendFailed { participant } => {
                if self
                    .current
                    .as_ref()
                    .is_some_and(|c| c.participant == participant)
                {
                    self.fail_attempt(AttemptFailure::SendFailed, now, rng, &mut out);
                }
            }
            Event::TimerFired { timer } => {
                if self.current.as_ref().is_some_and(|c| c.timer == timer) {
                    self.fail_attempt(AttemptFailure::Timeout, now, rng, &mut out);
                }
            }
        }
        out
    }

    fn start(&mut self, out: &mut Vec<Action>) {
        // A run in progress or a delivered key makes a second start meaningless.
        if !matches!(self.phase, Phase::Idle | Phase::Failed) {
            return;
        }
        self.failures.clear();
        self.current = None;
        self.phase = Phase::Listing;
        out.push(Action::Progress(Progress::ListingParticipants));
        out.push(Action::ListParticipants);
    }

    fn give_up(&mut self, failure: ExchangeFailure, out: &mut Vec<Action>) {
        self.phase = Phase::Failed;
        self.current = None;
        out.push(Action::Failed(failure));
    }

    fn on_participants(
        &mut self,
        result: Result<String, HttpFailure>,
        now: Millis,
        rng: &mut impl CryptoRngCore,
        out: &mut Vec<Action>,
    ) {
        if self.phase != Phase::Listing {
            return;
        }
        let list = match result {
            Err(f) => {
                let why = format!("HTTP {}", f.status);
                return self.give_up(ExchangeFailure::ParticipantsUnavailable(why), out);
            }
            Ok(body) => match wire::parse_participants(&body) {
                Ok(list) => list,
                Err(e) => {
                    return self
                        .give_up(ExchangeFailure::ParticipantsUnavailable(e.to_string()), out)
                }
            },
        };
        if list.is_empty() {
            return self.give_up(ExchangeFailure::NoParticipants(Vec::new()), out);
        }
        self.participants = list;
        self.next_index = 0;
        self.start_next(None, now, rng, out);
    }

    fn backed_off(&self, participant: &ParticipantId, now: Millis) -> bool {
        self.backoff_until
            .iter()
            .any(|(p, until)| p == participant && *until > now)
    }

    /// The next participant in the server's order (wrapping), skipping rate-limited ones.
    fn choose_next(&mut self, now: Millis) -> Option<ParticipantId> {
        let n = self.participants.len();
        for _ in 0..n {
            let candidate = self.participants[self.next_index % n].clone();
            self.next_index = (self.next_index + 1) % n;
            if !self.backed_off(&candidate, now) {
                return Some(candidate);
            }
        }
        None
    }

    fn start_next(
        &mut self,
        rotated_from: Option<(ParticipantId, AttemptFailure)>,
        now: Millis,
        rng: &mut impl CryptoRngCore,
        out: &mut Vec<Action>,
    ) {
        if self.failures.len() >= self.config.max_failures {
            return self.give_up(
                ExchangeFailure::AttemptsExhausted(self.failures.clone()),
                out,
            );
        }
        let Some(participant) = self.choose_next(now) else {
            return self.give_up(ExchangeFailure::NoParticipants(self.failures.clone()), out);
        };
        if let Some((from, reason)) = rotated_from {
            out.push(Action::Progress(Progress::Rotating {
                from,
                to: participant.clone(),
                reason,
            }));
        }
        self.timer_seq += 1;
        let timer = self.timer_seq;
        out.push(Action::ArmTimer {
            timer,
            at: now.saturating_add(self.config.participant_timeout_ms),
        });
        self.phase = Phase::Attempting;

        let address = participant.address();
        let cached = self.state.store.has_session(&address)
            && self
                .state
                .session_established(&address)
                .is_some_and(|t| now.saturating_sub(t) < self.config.session_cache_ttl_ms);
        if cached {
            self.current = Some(CurrentAttempt {
                participant,
                timer,
                stage: Stage::AwaitingAnswer,
            });
            self.send_request(now, rng, out);
        } else {
            self.current = Some(CurrentAttempt {
                participant: participant.clone(),
                timer,
                stage: Stage::FetchingBundle,
            });
            out.push(Action::Progress(Progress::FetchingBundle {
                participant: participant.clone(),
            }));
            out.push(Action::FetchBundle { participant });
        }
    }

    fn fail_attempt(
        &mut self,
        failure: AttemptFailure,
        now: Millis,
        rng: &mut impl CryptoRngCore,
        out: &mut Vec<Action>,
    ) {
        let Some(current) = self.current.take() else {
            return;
        };
        if let AttemptFailure::RateLimited { retry_after_s } = failure {
            let seconds = u64::from(retry_after_s.unwrap_or(DEFAULT_RETRY_AFTER_S));
            self.backoff_until
                .retain(|(p, _)| *p != current.participant);
            self.backoff_until.push((
                current.participant.clone(),
                now.saturating_add(seconds * 1000),
            ));
        }
        self.failures.push(Attempt {
            participant: current.participant.clone(),
            failure: failure.clone(),
        });
        self.start_next(Some((current.participant, failure)), now, rng, out);
    }

    fn on_bundle(
        &mut self,
        participant: ParticipantId,
        result: Result<String, HttpFailure>,
        now: Millis,
        rng: &mut impl CryptoRngCore,
        out: &mut Vec<Action>,
    ) {
        let expected = self
            .current
            .as_ref()
            .is_some_and(|c| c.participant == participant && c.stage == Stage::FetchingBundle);
        if !expected {
            out.push(Action::Dropped(DropReason::StaleBundle));
            return;
        }
        if let Err(failure) = self.start_session(&participant, result, now, rng) {
            return self.fail_attempt(failure, now, rng, out);
        }
        out.push(Action::PersistState);
        if let Some(current) = self.current.as_mut() {
            current.stage = Stage::AwaitingAnswer;
        }
        self.send_request(now, rng, out);
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
        let bundle = wire::parse_bundle(&body, participant)
            .map_err(|e| AttemptFailure::BundleInvalid(e.to_string()))?;
        let address = participant.address();
        self.state
            .store
            .process_bundle(&address, &bundle, rng)
            .map_err(|e| match e {
                SignalError::UntrustedIdentity(_) => AttemptFailure::IdentityChanged,
                e => AttemptFailure::BundleInvalid(e.to_string()),
            })?;
        self.state.set_session_established(&address, now);
        Ok(())
    }

    fn send_request(&mut self, now: Millis, rng: &mut impl CryptoRngCore, out: &mut Vec<Action>) {
        let Some(participant) = self.current.as_ref().map(|c| c.participant.clone()) else {
            return;
        };
        let mut random = [0u8; 16];
        rng.fill_bytes(&mut random);
        let request_id = wire::request_id(&random);
        let plaintext =
            wire::request_plaintext(&self.meeting_id, &self.guest_session_id, &request_id, now);
        let message = match self
            .state
            .store
            .encrypt(&participant.address(), plaintext.as_bytes())
        {
            Ok(message) => message,
            Err(e) => {
                return self.fail_attempt(
                    AttemptFailure::EncryptFailed(e.to_string()),
                    now,
                    rng,
                    out,
                )
            }
        };
        out.push(Action::PersistState);
        // The participant's 5 s run from the request, not from the bundle fetch before it.
        self.timer_seq += 1;
        if let Some(current) = self.current.as_mut() {
            current.timer = self.timer_seq;
        }
        out.push(Action::ArmTimer {
            timer: self.timer_seq,
            at: now.saturating_add(self.config.participant_timeout_ms),
        });
        if self.outstanding.len() >= MAX_OUTSTANDING_REQUESTS {
            self.outstanding.remove(0);
        }
        self.outstanding.push(Request {
            id: request_id,
            participant: participant.clone(),
        });
        if !self.asked.contains(&participant) {
            self.asked.push(participant.clone());
        }
        let body =
            wire::outgoing_message(&participant, message.message_type(), message.serialized());
        out.push(Action::Send {
            participant: participant.clone(),
            body,
        });
        out.push(Action::Progress(Progress::WaitingFor { participant }));
    }

    fn on_message(
        &mut self,
        body: &str,
        now: Millis,
        rng: &mut impl CryptoRngCore,
        out: &mut Vec<Action>,
    ) {
        let drop = |out: &mut Vec<Action>, reason| out.push(Action::Dropped(reason));
        let incoming = match wire::parse_incoming(body) {
            Ok(m) => m,
            Err(e) => return drop(out, DropReason::MalformedEvent(e)),
        };
        if self.phase == Phase::Idle {
            return drop(out, DropReason::NotStarted);
        }
        if !self.asked.contains(&incoming.from) {
            return drop(out, DropReason::UnknownSender);
        }
        let message = match CiphertextMessage::parse(incoming.message_type, &incoming.ciphertext) {
            Ok(m) => m,
            Err(e) => return drop(out, DropReason::DecryptFailed(e)),
        };
        // Decrypt on a copy: the Signal state moves only if the answer is accepted.
        let mut trial = self.state.store.clone();
        let plaintext = match trial.decrypt(&incoming.from.address(), &message, rng) {
            Ok(p) => Zeroizing::new(p),
            Err(e) => return drop(out, DropReason::DecryptFailed(e)),
        };
        let answer = match wire::parse_key_message(&plaintext) {
            Ok(a) => a,
            Err(e) => return drop(out, DropReason::BadPlaintext(e)),
        };
        if answer.meeting_id != self.meeting_id {
            return drop(out, DropReason::WrongMeeting);
        }
        let skew = i64::try_from(self.config.clock_skew_ms).unwrap_or(i64::MAX);
        let now_signed = i64::try_from(now).unwrap_or(i64::MAX);
        if answer
            .timestamp_ms
            .saturating_sub(now_signed)
            .saturating_abs()
            > skew
        {
            return drop(out, DropReason::StaleTimestamp);
        }
        let from = incoming.from;
        match answer.kind {
            KeyMessageKind::Response => {
                let request_id = answer.request_id.as_deref().unwrap_or_default();
                if self.answered.iter().any(|r| r == request_id) {
                    return drop(out, DropReason::AlreadyAnswered);
                }
                let Some(pos) = self.outstanding.iter().position(|r| r.id == request_id) else {
                    return drop(out, DropReason::UnknownRequest);
                };
                if self.outstanding[pos].participant != from {
                    return drop(out, DropReason::WrongParticipant);
                }
                if self.phase == Phase::Delivered {
                    return drop(out, DropReason::KeyAlreadyDelivered);
                }
                let request = self.outstanding.remove(pos);
                self.answered.push(request.id);
                self.key_sources.push(from.clone());
                self.current = None;
                self.phase = Phase::Delivered;
            }
            KeyMessageKind::Update => {
                if self.phase != Phase::Delivered {
                    return drop(out, DropReason::UpdateBeforeKey);
                }
                if !self.key_sources.contains(&from) {
                    return drop(out, DropReason::UpdateFromUnverifiedParticipant);
                }
            }
        }
        self.state.store = trial;
        out.push(Action::PersistState);
        out.push(Action::Progress(Progress::KeyReceived {
            from: from.clone(),
            key_index: answer.key_index,
        }));
        out.push(Action::DeliverKey {
            key: answer.key,
            key_index: answer.key_index,
            from,
        });
    }
}
