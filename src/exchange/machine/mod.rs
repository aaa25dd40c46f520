//! The exchange's state machine: a deadline per participant, the next one asked as well when
//! one is slow (hedging, [`attempts`]), rotation on failure ([`rotation`]). The list comes
//! first ([`listing`]), then each participant's bundle and the request ([`request`]);
//! answers are checked in [`answer`].

use crate::prelude::*;

use rand_core::CryptoRngCore;

use super::failure::{Attempt, AttemptFailure, ExchangeFailure};
use super::io::{Action, Event, Progress};
use super::sas::{SasNonce, ShortCode};
use super::state::GuestState;
use super::{ExchangeConfig, Millis, ParticipantId};

mod answer;
mod attempts;
mod listing;
mod prepare;
mod request;
mod requests;
mod rotation;

use attempts::{Attempting, Attempts};
use prepare::Holding;
use requests::{Request, Requests};

pub use answer::GUEST_DECRYPT_LIMITS;
pub use prepare::{HELD_BUNDLES_MAX, PREPARED_MAX_AGE_MS};

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
    /// equal on both sides unless someone is in the middle. Empty until
    /// [`Event::KeyHandedOver`].
    pub safety_number: String,
    /// The short verification code agreed with the sender (§10), when it took part; for an
    /// answer, `None` until [`Event::KeyHandedOver`].
    pub short_code: Option<ShortCode>,
    /// The sender's identity key, as the session holds it (what a page pins after
    /// verifying the safety number or the code).
    pub identity_key: crate::signal::PublicKey,
    /// The Signal session's version: 4 (PQXDH) or 3 (X3DH).
    pub session_version: u8,
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
    /// Those that count toward `max_failures`: a 429 says "busy, ask someone else", not
    /// "failed", and it backs the device off, so a run of them ends once every participant
    /// is backed off (the exchange then gives up: `NoParticipants`).
    counted: usize,
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
///    [`Action::DeliverKey`], hand the key over, then feed [`Event::KeyHandedOver`] (or
///    [`Event::DeliveryFailed`]); after [`Action::Failed`], the machine is idle until the
///    next [`Event::Start`].
/// 6. While a call waits for the socket or the host, [`Event::Prepare`] lets the machine
///    prepare its request (it sends nothing); [`Event::Start`] at admission sends it.
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
    requests: Requests,
    asked: Vec<ParticipantId>,
    key_sources: Vec<ParticipantId>,
    backoff_until: Vec<(ParticipantId, Millis)>,
    /// Preparing: sends held until admission (`prepare.rs`).
    holding: Option<Holding>,
    /// The safety number computed while preparing, for that participant and identity: the
    /// key's arrival then finds it made.
    safety_ready: Option<(ParticipantId, crate::signal::PublicKey, String)>,
    /// The answer's request and the participant's nonce: the short code and its reveal,
    /// settled once the key is handed over ([`Event::KeyHandedOver`]).
    code_due: Option<(Request, SasNonce)>,
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
            requests: Requests::default(),
            asked: Vec::new(),
            key_sources: Vec::new(),
            backoff_until: Vec::new(),
            holding: None,
            safety_ready: None,
            code_due: None,
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
        if self.holding.is_some() {
            return self.refresh_time();
        }
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
        if self.holding.is_some() {
            self.refresh(now, &mut out);
            return out;
        }
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
            Event::Start => self.release(now, &mut out),
            Event::Prepare => self.prepare(&mut out),
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
            Event::KeyHandedOver => self.key_handed_over(&mut out),
            Event::DeliveryFailed => {
                self.code_due = None;
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
        if matches!(self.lifecycle, Lifecycle::Idle | Lifecycle::Failed) {
            self.list(out);
        }
    }

    fn list(&mut self, out: &mut Vec<Action>) {
        self.lifecycle = Lifecycle::Listing;
        out.push(Action::Progress(Progress::ListingParticipants));
        out.push(Action::ListParticipants);
    }

    /// Ends the run; while preparing, silently (admission starts afresh).
    fn give_up(&mut self, failure: ExchangeFailure, out: &mut Vec<Action>) {
        if self.holding.is_some() {
            self.lifecycle = Lifecycle::Idle;
            return;
        }
        self.lifecycle = Lifecycle::Failed;
        out.push(Action::Failed(failure));
    }

    /// Whether `participant` may be asked: with pins, only a pinned device (unless the page
    /// asks unpinned ones too), since another device of a pinned user may be the server's own.
    fn may_ask(&self, participant: &ParticipantId) -> bool {
        let pins = &self.config.pinned;
        pins.is_empty() || self.config.ask_unpinned || pins.iter().any(|(p, _)| p == participant)
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
    /// (empty without a session, or with [`ExchangeConfig::safety_numbers`] off).
    pub fn safety_number(&self, participant: &ParticipantId) -> String {
        let remote = self
            .state
            .store
            .session(&participant.address())
            .and_then(|r| r.current())
            .map(|s| *s.remote_identity())
            .filter(|_| self.config.safety_numbers);
        match remote {
            Some(remote) => match &self.safety_ready {
                Some((p, key, number)) if p == participant && *key == remote => number.clone(),
                _ => crate::signal::fingerprint::displayable_fingerprint(
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
            },
            None => String::new(),
        }
    }

    /// The key is in the key provider: what is not on its way is settled now, into
    /// [`Exchange::delivered`]: the safety number (10,400 SHA-512 blocks) and, for an answer,
    /// the short code, whose reveal goes to the participant.
    fn key_handed_over(&mut self, out: &mut Vec<Action>) {
        let (number, remote) = match &self.lifecycle {
            Lifecycle::Delivered(d) => (self.safety_number(&d.from), d.identity_key),
            _ => return,
        };
        // With the identity key the answer decrypted under (contract §10, step 4).
        let code = self.code_due.take().map(|(request, theirs)| {
            // The reveal moves the sending chain on: stored before it goes.
            out.push(Action::PersistState);
            self.settle_short_code(&request, &theirs, &remote, out)
        });
        if let Lifecycle::Delivered(d) = &mut self.lifecycle {
            d.safety_number = number;
            if code.is_some() {
                d.short_code = code;
            }
        }
    }

    fn attempt_mut(&mut self, participant: &ParticipantId) -> Option<&mut Attempting> {
        match &mut self.lifecycle {
            Lifecycle::Attempting(_, attempts) => attempts.get_mut(participant),
            _ => None,
        }
    }
}
