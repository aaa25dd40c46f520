//! The exchange's state machine: a deadline per participant, the next one asked as well when
//! one is slow (hedging, [`attempts`]), rotation on failure. Answers are checked in
//! [`answer`].

use crate::prelude::*;

use rand_core::CryptoRngCore;

use crate::signal::SignalError;

use super::contract::{self, WireProfile};
use super::failure::{
    Attempt, AttemptFailure, BundleError, DropReason, ExchangeFailure, HttpFailure,
    ParticipantsError,
};
use super::io::{Action, Event, Progress};
use super::messages;
use super::plaintexts;
use super::sas::{self, SasNonce, ShortCode, SAS_NONCE_LEN};
use super::state::GuestState;
use super::{ExchangeConfig, Millis, ParticipantId};

mod answer;
mod attempts;

use attempts::{Attempting, Attempts, Stage};

pub use answer::GUEST_DECRYPT_LIMITS;

/// Without a `Retry-After`, a rate-limited participant is skipped for the server's window.
const DEFAULT_RETRY_AFTER_S: u32 = 60;
/// Requests kept answerable; older ones are forgotten first.
const MAX_OUTSTANDING_REQUESTS: usize = 32;
/// Most one-time prekeys a PeerWave guest keeps published: bounds the local store too.
const MAX_PUBLISHED_PRE_KEYS: usize = 100;
/// Fewest one-time prekeys a PeerWave guest keeps published, as many as it registers.
const MIN_PUBLISHED_PRE_KEYS: usize = 30;

/// Where the exchange is, without the data (see [`Exchange::phase`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not started yet.
    Idle,
    /// Waiting for the participants list.
    Listing,
    /// Asking one participant.
    Attempting,
    /// A key passed every check and was handed out.
    Delivered,
    /// Gave up; [`Event::Start`] tries again.
    Failed,
}

/// The key the exchange delivered last: who sent it, its index and its public check value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The participant device that sent it.
    pub from: ParticipantId,
    /// Its LiveKit key index.
    pub key_index: u8,
    /// [`super::MeetingKey::check_value`] of the key (the key itself is not kept).
    pub check_value: String,
    /// The sender's timestamp on the key message (ms since the Unix epoch): key updates
    /// must be newer than the key they replace.
    pub timestamp_ms: i64,
    /// The 60-digit safety number between this guest and the sender (docs/contract.md §9):
    /// equal on both sides unless someone is in the middle.
    pub safety_number: String,
    /// The short verification code agreed with the sender (§10), when it took part.
    pub short_code: Option<ShortCode>,
}

impl Delivered {
    /// Whether a key update with `timestamp_ms` and `key_index` replaces this key.
    ///
    /// The timestamp orders updates: the later one wins, so a relay that delivers U2 then
    /// U1 cannot put the guest back on the older key. The key index only breaks ties between
    /// equal timestamps, read modulo 256 as LiveKit's key ring does: an index 1..=127 steps
    /// ahead (wrapping, so 255 → 0 is one step) is newer, anything else is not. A replay of
    /// the current key (same timestamp and index) is not newer either.
    pub fn is_replaced_by(&self, timestamp_ms: i64, key_index: u8) -> bool {
        match timestamp_ms.cmp(&self.timestamp_ms) {
            core::cmp::Ordering::Greater => true,
            core::cmp::Ordering::Less => false,
            core::cmp::Ordering::Equal => {
                (1..=127).contains(&key_index.wrapping_sub(self.key_index))
            }
        }
    }
}

/// One run through the participants, from the list to a key or to giving up.
#[derive(Debug)]
struct Rotation {
    participants: Vec<ParticipantId>,
    next_index: usize,
    /// Consecutive failures of this run.
    failures: Vec<Attempt>,
}

/// Each state carries the data only it has.
#[derive(Debug)]
enum Lifecycle {
    Idle,
    Listing,
    /// PeerWave: making sure the server holds enough of our one-time prekeys before asking
    /// (every participant there answers every request with a new session from our bundle).
    Stocking(Vec<ParticipantId>, Stocking),
    /// Asking one participant, or several while hedging.
    Attempting(Rotation, Attempts),
    Delivered(Delivered),
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stocking {
    /// Asking which of our prekeys the server still holds.
    Counting,
    /// Publishing new ones.
    Publishing,
}

#[derive(Debug)]
struct Request {
    id: String,
    participant: ParticipantId,
    /// The nonce committed to in this request (revealed after the answer).
    sas_nonce: SasNonce,
}

/// The guest key exchange for one meeting.
///
/// # Driver contract
///
/// The machine does no I/O and reads no clock; a driver (the browser binding, the test
/// harness, the load generator) connects it to the world:
///
/// 1. Create it with the stored [`GuestState`] and the server's guest session id, then feed
///    [`Event::Start`] through [`Exchange::handle`].
/// 2. Carry out the returned [`Action`]s **in order**. Actions that complete later (HTTP
///    requests) are answered with their [`Event`]; a send that fails at once is answered
///    with [`Event::SendFailed`] after the rest of the batch has been carried out. Events
///    are fed one at a time: a driver that is called back while it is carrying out a batch
///    queues the event instead of re-entering the machine.
/// 3. After every call, ask [`Exchange::poll_timeout`] for the next deadline and make sure
///    [`Exchange::handle_timeout`] is called once that time has come. Only the newest
///    deadline matters: a driver keeps one timer and re-arms it. Calling `handle_timeout`
///    early, late or twice is harmless (it acts only on a deadline that has passed, once).
/// 4. `now` is milliseconds since the Unix epoch (the request carries it as its timestamp,
///    and answers are checked against it). It must not go backwards: a smaller value than
///    one seen before is taken as the larger one, so deadlines never move back in time.
/// 5. After [`Action::PersistState`], store [`Exchange::state`]; after
///    [`Action::DeliverKey`], hand the key over; after [`Action::Failed`], the machine is
///    idle until the next [`Event::Start`].
///
/// Every input is checked: bad input yields [`Action::Dropped`] (or a failed attempt) and
/// leaves the Signal state as it was.
#[derive(Debug)]
pub struct Exchange {
    config: ExchangeConfig,
    meeting_id: String,
    guest_session_id: String,
    state: GuestState,
    lifecycle: Lifecycle,
    /// The latest `now` seen (time never goes backwards here).
    clock: Millis,
    outstanding: Vec<Request>,
    answered: Vec<String>,
    asked: Vec<ParticipantId>,
    key_sources: Vec<ParticipantId>,
    backoff_until: Vec<(ParticipantId, Millis)>,
}

impl Exchange {
    /// A machine for `meeting_id`, in [`Phase::Idle`].
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
            lifecycle: Lifecycle::Idle,
            clock: 0,
            outstanding: Vec::new(),
            answered: Vec::new(),
            asked: Vec::new(),
            key_sources: Vec::new(),
            backoff_until: Vec::new(),
        }
    }

    /// Where the exchange is.
    pub fn phase(&self) -> Phase {
        match self.lifecycle {
            Lifecycle::Idle => Phase::Idle,
            Lifecycle::Listing | Lifecycle::Stocking(..) => Phase::Listing,
            Lifecycle::Attempting(..) => Phase::Attempting,
            Lifecycle::Delivered(_) => Phase::Delivered,
            Lifecycle::Failed => Phase::Failed,
        }
    }

    /// The key delivered last, once there is one.
    pub fn delivered(&self) -> Option<&Delivered> {
        match &self.lifecycle {
            Lifecycle::Delivered(d) => Some(d),
            _ => None,
        }
    }

    /// The server-made guest session id this exchange speaks for.
    pub fn guest_session_id(&self) -> &str {
        &self.guest_session_id
    }

    /// The state to persist after [`Action::PersistState`].
    pub fn state(&self) -> &GuestState {
        &self.state
    }

    /// The machine's tunables.
    pub fn config(&self) -> &ExchangeConfig {
        &self.config
    }

    /// The participant asked last, if any is being asked.
    pub fn current_participant(&self) -> Option<&ParticipantId> {
        match &self.lifecycle {
            Lifecycle::Attempting(_, attempts) => attempts.newest().map(|a| &a.participant),
            _ => None,
        }
    }

    /// When [`Exchange::handle_timeout`] must be called next, if at all: the earliest
    /// participant deadline, or the moment to ask the next participant as well (hedging).
    pub fn poll_timeout(&self) -> Option<Millis> {
        match &self.lifecycle {
            Lifecycle::Attempting(rotation, attempts) => {
                attempts.next_deadline(self.may_hedge(rotation, attempts))
            }
            _ => None,
        }
    }

    /// Acts on the deadlines that have passed by `now`: a participant that did not answer in
    /// time fails its attempt, and one that has not answered within `hedge_after_ms` gets
    /// company. Does nothing otherwise, so extra or late calls are harmless.
    pub fn handle_timeout(&mut self, now: Millis, rng: &mut impl CryptoRngCore) -> Vec<Action> {
        let now = self.tick(now);
        let mut out = Vec::new();
        // Each pass ends an attempt or starts one (or gives hedging up for this attempt), and
        // a run has at most `max_failures` attempts: the loop is short.
        while let Lifecycle::Attempting(rotation, attempts) = &self.lifecycle {
            if let Some(late) = attempts.expired(now) {
                self.fail_attempt(&late, AttemptFailure::Timeout, now, rng, &mut out);
            } else if self.may_hedge(rotation, attempts)
                && attempts.newest().is_some_and(|a| a.hedge_at <= now)
            {
                self.hedge(now, rng, &mut out);
            } else {
                break;
            }
        }
        out
    }

    /// Whether another participant may be asked while the current ones wait: hedging is on,
    /// the run has attempts left, and someone is not being asked yet.
    fn may_hedge(&self, rotation: &Rotation, attempts: &Attempts) -> bool {
        self.config.hedge_after_ms.is_some()
            && rotation.failures.len() + attempts.len() < self.config.max_failures
            && rotation.participants.iter().any(|p| !attempts.contains(p))
    }

    /// Asks the next participant too, keeping the ones asked waiting.
    fn hedge(&mut self, now: Millis, rng: &mut impl CryptoRngCore, out: &mut Vec<Action>) {
        let Lifecycle::Attempting(mut rotation, mut attempts) =
            core::mem::replace(&mut self.lifecycle, Lifecycle::Idle)
        else {
            return;
        };
        let waiting = attempts.newest().map(|a| a.participant.clone());
        match (waiting, self.choose_next(&mut rotation, &attempts, now)) {
            (Some(waiting_for), Some(next)) => {
                out.push(Action::Progress(Progress::Hedging {
                    waiting_for,
                    also_asking: next.clone(),
                }));
                self.start_attempt(rotation, attempts, next, now, rng, out);
            }
            _ => {
                // Everyone else is rate-limited: no more company for this attempt.
                if let Some(newest) = attempts.newest_mut() {
                    newest.hedge_at = Millis::MAX;
                }
                self.lifecycle = Lifecycle::Attempting(rotation, attempts);
            }
        }
    }

    /// Feeds one event at time `now`; returns what to do, in order.
    pub fn handle(
        &mut self,
        event: Event,
        now: Millis,
        rng: &mut impl CryptoRngCore,
    ) -> Vec<Action> {
        let now = self.tick(now);
        let mut out = Vec::new();
        match event {
            Event::Start => self.start(&mut out),
            Event::ParticipantsListed(result) => self.on_participants(result, now, rng, &mut out),
            Event::ServerPreKeys(result) => self.on_server_pre_keys(result, now, rng, &mut out),
            Event::BundleFetched {
                participant,
                result,
            } => self.on_bundle(participant, result, now, rng, &mut out),
            Event::MessageReceived(body) => self.on_message(&body, now, rng, &mut out),
            Event::SendFailed { participant } => {
                self.fail_attempt(&participant, AttemptFailure::SendFailed, now, rng, &mut out)
            }
            Event::DeliveryFailed => {
                if matches!(self.lifecycle, Lifecycle::Delivered(_)) {
                    self.lifecycle = Lifecycle::Failed;
                }
            }
        }
        out
    }

    fn tick(&mut self, now: Millis) -> Millis {
        self.clock = self.clock.max(now);
        self.clock
    }

    fn start(&mut self, out: &mut Vec<Action>) {
        // A run in progress or a delivered key makes a second start meaningless.
        if !matches!(self.lifecycle, Lifecycle::Idle | Lifecycle::Failed) {
            return;
        }
        self.lifecycle = Lifecycle::Listing;
        out.push(Action::Progress(Progress::ListingParticipants));
        out.push(Action::ListParticipants);
    }

    fn give_up(&mut self, failure: ExchangeFailure, out: &mut Vec<Action>) {
        self.lifecycle = Lifecycle::Failed;
        out.push(Action::Failed(failure));
    }

    fn on_participants(
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
            Ok(list) if list.is_empty() => {
                return self.give_up(ExchangeFailure::NoParticipants(Vec::new()), out)
            }
            Ok(list) => list,
            Err(e) => return self.give_up(ExchangeFailure::ParticipantsUnavailable(e), out),
        };
        if self.config.profile == WireProfile::PeerWave {
            self.lifecycle = Lifecycle::Stocking(participants, Stocking::Counting);
            out.push(Action::CountPreKeys);
            return;
        }
        self.rotate(participants, now, rng, out);
    }

    /// PeerWave's answer about our published prekeys (the count, then the publication).
    /// Stocking is best effort: whatever the server says, the participants are asked next.
    fn on_server_pre_keys(
        &mut self,
        result: Result<String, HttpFailure>,
        now: Millis,
        rng: &mut impl CryptoRngCore,
        out: &mut Vec<Action>,
    ) {
        let Lifecycle::Stocking(participants, stage) =
            core::mem::replace(&mut self.lifecycle, Lifecycle::Idle)
        else {
            // Not waiting for it: leave the state as it was.
            return;
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

    /// Starts asking `participants`, the last answerer first.
    fn rotate(
        &mut self,
        participants: Vec<ParticipantId>,
        now: Millis,
        rng: &mut impl CryptoRngCore,
        out: &mut Vec<Action>,
    ) {
        let rotation = Rotation {
            participants: self.state.preferred_order(participants),
            next_index: 0,
            failures: Vec::new(),
        };
        self.ask_next(rotation, Attempts::default(), None, now, rng, out);
    }

    fn backed_off(&self, participant: &ParticipantId, now: Millis) -> bool {
        self.backoff_until
            .iter()
            .any(|(p, until)| p == participant && *until > now)
    }

    /// The next participant in the server's order (wrapping), skipping rate-limited ones and
    /// those being asked already.
    fn choose_next(
        &self,
        rotation: &mut Rotation,
        asking: &Attempts,
        now: Millis,
    ) -> Option<ParticipantId> {
        let n = rotation.participants.len();
        for _ in 0..n {
            let candidate = rotation.participants.get(rotation.next_index % n)?.clone();
            rotation.next_index = (rotation.next_index + 1) % n;
            if !self.backed_off(&candidate, now) && !asking.contains(&candidate) {
                return Some(candidate);
            }
        }
        None
    }

    /// After an attempt ended without a key: the next participant is asked if nobody else
    /// is, or the exchange gives up.
    fn ask_next(
        &mut self,
        mut rotation: Rotation,
        attempts: Attempts,
        rotated_from: Option<(ParticipantId, AttemptFailure)>,
        now: Millis,
        rng: &mut impl CryptoRngCore,
        out: &mut Vec<Action>,
    ) {
        if !attempts.is_empty() {
            // Others are still being asked (hedging); their deadlines decide what comes next.
            self.lifecycle = Lifecycle::Attempting(rotation, attempts);
            return;
        }
        if rotation.failures.len() >= self.config.max_failures {
            return self.give_up(ExchangeFailure::AttemptsExhausted(rotation.failures), out);
        }
        let Some(participant) = self.choose_next(&mut rotation, &attempts, now) else {
            return self.give_up(ExchangeFailure::NoParticipants(rotation.failures), out);
        };
        if let Some((from, reason)) = rotated_from {
            out.push(Action::Progress(Progress::Rotating {
                from,
                to: participant.clone(),
                reason,
            }));
        }
        self.start_attempt(rotation, attempts, participant, now, rng, out);
    }

    /// Asks `participant`: from the cached session, or after fetching its bundle.
    fn start_attempt(
        &mut self,
        rotation: Rotation,
        mut attempts: Attempts,
        participant: ParticipantId,
        now: Millis,
        rng: &mut impl CryptoRngCore,
        out: &mut Vec<Action>,
    ) {
        let address = participant.address();
        let cached = self.state.store.has_session(&address)
            && self
                .state
                .session_established(&address)
                .is_some_and(|t| now.saturating_sub(t) < self.config.session_cache_ttl_ms);
        let stage = if cached {
            Stage::AwaitingAnswer
        } else {
            Stage::FetchingBundle
        };
        attempts.push(Attempting {
            participant: participant.clone(),
            stage,
            deadline: now.saturating_add(self.config.participant_timeout_ms),
            hedge_at: self.hedge_time(now),
        });
        self.lifecycle = Lifecycle::Attempting(rotation, attempts);
        if cached {
            // A pinned identity is checked before anything is sent on the cached session.
            let trusted = self
                .state
                .store
                .session(&address)
                .and_then(|r| r.current())
                .map(|s| *s.remote_identity());
            if trusted.is_some_and(|key| !self.pin_allows(&participant, &key)) {
                return self.fail_attempt(
                    &participant,
                    AttemptFailure::IdentityMismatch,
                    now,
                    rng,
                    out,
                );
            }
            self.send_request(&participant, now, rng, out);
        } else {
            out.push(Action::Progress(Progress::FetchingBundle {
                participant: participant.clone(),
            }));
            out.push(Action::FetchBundle { participant });
        }
    }

    /// When a participant asked at `now` gets company, if hedging is on.
    fn hedge_time(&self, now: Millis) -> Millis {
        self.config
            .hedge_after_ms
            .map_or(Millis::MAX, |ms| now.saturating_add(ms))
    }

    /// Ends `participant`'s attempt with `failure` (nothing happens if it is not being asked).
    fn fail_attempt(
        &mut self,
        participant: &ParticipantId,
        failure: AttemptFailure,
        now: Millis,
        rng: &mut impl CryptoRngCore,
        out: &mut Vec<Action>,
    ) {
        let Lifecycle::Attempting(mut rotation, mut attempts) =
            core::mem::replace(&mut self.lifecycle, Lifecycle::Idle)
        else {
            // Nothing is being attempted: put the state back untouched.
            return;
        };
        let Some(attempt) = attempts.remove(participant) else {
            self.lifecycle = Lifecycle::Attempting(rotation, attempts);
            return;
        };
        if let AttemptFailure::RateLimited { retry_after_s } = failure {
            let seconds = u64::from(retry_after_s.unwrap_or(DEFAULT_RETRY_AFTER_S));
            self.backoff_until
                .retain(|(p, _)| *p != attempt.participant);
            self.backoff_until.push((
                attempt.participant.clone(),
                now.saturating_add(seconds * 1000),
            ));
        }
        if failure == AttemptFailure::Timeout {
            // Remembered across reloads: next time this participant is asked last.
            self.state.record_silence(&attempt.participant);
            out.push(Action::PersistState);
        }
        rotation.failures.push(Attempt {
            participant: attempt.participant.clone(),
            failure: failure.clone(),
        });
        self.ask_next(
            rotation,
            attempts,
            Some((attempt.participant, failure)),
            now,
            rng,
            out,
        );
    }

    /// Whether `key` may be `participant`'s identity: any key unless the page pinned one.
    fn pin_allows(&self, participant: &ParticipantId, key: &crate::signal::PublicKey) -> bool {
        self.config
            .pinned
            .iter()
            .find(|(p, _)| p == participant)
            .map_or(true, |(_, pinned)| pinned == key)
    }

    /// The safety number between this guest and `participant`, from the session's keys
    /// (empty without a session).
    pub fn safety_number(&self, participant: &ParticipantId) -> String {
        let remote = self
            .state
            .store
            .session(&participant.address())
            .and_then(|r| r.current())
            .map(|s| *s.remote_identity());
        match remote {
            Some(remote) => crate::signal::fingerprint::displayable_fingerprint(
                crate::signal::fingerprint::DEFAULT_ITERATIONS,
                super::contract::guest_fingerprint_id(&self.guest_session_id).as_bytes(),
                &self.state.store.identity_key(),
                super::contract::participant_fingerprint_id(
                    &participant.user_id,
                    &participant.device_id,
                )
                .as_bytes(),
                &remote,
            ),
            None => String::new(),
        }
    }

    fn attempt_mut(&mut self, participant: &ParticipantId) -> Option<&mut Attempting> {
        match &mut self.lifecycle {
            Lifecycle::Attempting(_, attempts) => attempts.get_mut(participant),
            _ => None,
        }
    }

    fn on_bundle(
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

    fn send_request(
        &mut self,
        participant: &ParticipantId,
        now: Millis,
        rng: &mut impl CryptoRngCore,
        out: &mut Vec<Action>,
    ) {
        let participant = participant.clone();
        let mut random = [0u8; 16];
        rng.fill_bytes(&mut random);
        let request_id = plaintexts::request_id(&random);
        let mut sas_nonce = SasNonce([0u8; SAS_NONCE_LEN]);
        let profile = self.config.profile;
        let plaintext = match profile {
            WireProfile::Plan => {
                rng.fill_bytes(&mut sas_nonce.0);
                plaintexts::request_plaintext(
                    &self.meeting_id,
                    &self.guest_session_id,
                    &request_id,
                    now,
                    &sas::commitment(&sas_nonce),
                )
            }
            // PeerWave's participants take no part in the short code.
            WireProfile::PeerWave => plaintexts::peerwave_request_plaintext(
                &self.meeting_id,
                &self.guest_session_id,
                &request_id,
                now,
            ),
        };
        let message = match self
            .state
            .store
            .encrypt(&participant.address(), plaintext.as_bytes())
        {
            Ok(message) => message,
            Err(e) => {
                return self.fail_attempt(
                    &participant,
                    AttemptFailure::EncryptFailed(e),
                    now,
                    rng,
                    out,
                )
            }
        };
        out.push(Action::PersistState);
        // The participant's time runs from the request, not from the bundle fetch before it;
        // so does the wait before the next one is asked as well.
        let deadline = now.saturating_add(self.config.participant_timeout_ms);
        let hedge_at = self.hedge_time(now);
        if let Some(attempt) = self.attempt_mut(&participant) {
            attempt.deadline = deadline;
            attempt.hedge_at = hedge_at;
        }
        if !self.asked.contains(&participant) {
            self.asked.push(participant.clone());
        }
        let body = messages::outgoing_message(
            &participant,
            contract::KEY_REQUEST_TYPE,
            message.message_type(),
            message.serialized(),
            profile.dialect(),
            (profile == WireProfile::PeerWave).then_some(request_id.as_str()),
        );
        if self.outstanding.len() >= MAX_OUTSTANDING_REQUESTS {
            self.outstanding.remove(0);
        }
        self.outstanding.push(Request {
            id: request_id,
            participant: participant.clone(),
            sas_nonce,
        });
        out.push(Action::Send {
            participant: participant.clone(),
            body,
        });
        out.push(Action::Progress(Progress::WaitingFor { participant }));
    }
}
