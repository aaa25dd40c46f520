//! The join around the key exchange, as a sans-I/O state machine: registration, the
//! socket's connection and (PeerWave) handshake, the host's lobby and admission, and the
//! server losing the registration. It decides when [`super::Exchange`] may start and is
//! the one place that ends an `exchangeKey()` call.

use crate::prelude::*;

use super::Millis;

mod call;
mod io;
mod lobby;

pub use io::{
    CallOutcome, JoinAction, JoinEvent, JoinFailure, JoinNotice, LobbyAnswer, Status, Waiting,
};

/// PeerWave refuses a second lobby request within 5 s of the first.
pub const LOBBY_COOLDOWN_MS: Millis = 5_000;
/// How often a guest in PeerWave's lobby asks whether its registration is still there and
/// admitted: the server can delete a waiting guest without telling it, and says "admitted"
/// only once, to the sockets connected at that moment.
pub const STATUS_CHECK_MS: Millis = 5_000;
/// How many lost registrations one `exchangeKey()` call outlives (guests joining together
/// each knock the others out at most once per registration of theirs; a restart is one).
pub const LOST_REGISTRATIONS_MAX: u8 = 3;
/// Re-registrations after a loss that go soon: the first at once, the next ones after
/// [`RENEWAL_SPREAD_MIN_MS`] and a part of a growing window that differs from guest to guest.
/// Past this many without a quiet [`RENEWAL_QUIET_MS`] between them, each waits, from 5 s
/// and doubling up to a minute. A server that forgets every registration at once (or refuses
/// every handshake and then says the guest is gone) would otherwise have the guest register
/// new keys in a tight loop, and on PeerWave each registration deletes the other guests
/// still on their way.
pub const RENEWALS_AT_ONCE: u8 = LOST_REGISTRATIONS_MAX + 1;
/// The least wait before registering again after a second loss in a row. On PeerWave two
/// guests joining together knock each other out in turn if each registers again at once
/// (each registration deletes the other on its way to the lobby); this long lets the other
/// reach the lobby first, where a registration no longer deletes it.
pub const RENEWAL_SPREAD_MIN_MS: Millis = 400;
/// The window beyond [`RENEWAL_SPREAD_MIN_MS`], doubling with each loss in a row: where in
/// it a guest registers again comes from its lost session id (server-made and random), so
/// two guests that lost theirs together do not come back together.
pub const RENEWAL_SPREAD_MS: Millis = 400;
/// A minute without a lost registration starts the count afresh.
pub const RENEWAL_QUIET_MS: Millis = 60_000;
const RENEWAL_BACKOFF_MS: Millis = 5_000;
const RENEWAL_BACKOFF_MAX_MS: Millis = 60_000;

/// How a server dialect lets guests in; each dialect declares its own
/// (`dialect/plan.rs`, `dialect/peerwave.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinRules {
    /// The SDK sets the socket's handshake and waits for the server's answer to it (events
    /// sent before that answer are lost); otherwise the page owns the socket.
    pub sdk_handshake: bool,
    /// Guests ask to enter the host's lobby, and check on their registration while there;
    /// otherwise the server puts them in the lobby and is asked to repeat its notice.
    pub lobby: bool,
    /// The server forgets guests (restarts, other guests' registrations): the SDK
    /// registers again.
    pub reregisters: bool,
    /// The admission notice is sent once, so it is kept with the registration.
    pub admission_kept: bool,
}

impl JoinRules {
    /// Whether a registration stored by an earlier page of this tab (a reload) is used
    /// again. Not one still waiting in a host's lobby: PeerWave marks a waiting guest as
    /// gone when its socket closes, a reload closes it, and its lobby then no longer shows
    /// the guest whatever it asks; a new registration goes to the lobby afresh.
    pub fn reuses_stored(self, admitted: bool) -> bool {
        admitted || !self.lobby
    }
}

/// The join's deadlines and rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinConfig {
    /// The dialect's rules.
    pub rules: JoinRules,
    /// How long a call waits for the socket.
    pub connect_timeout_ms: Millis,
    /// How long a call waits for the host.
    pub admission_timeout_ms: Millis,
    /// Whether a call waits for the admission notice at all.
    pub require_admission: bool,
}

/// The socket, as the driver reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Not connected, and not trying.
    Down,
    /// Connecting (or reconnecting on its own): must not be driven again.
    Connecting,
    /// Connected.
    Up,
}

/// Why an `exchangeKey()` call is refused at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallRefused {
    /// No registration yet (the page has not called `register()`, or it has not completed).
    NotRegistered,
    /// A call is running.
    AlreadyRunning,
    /// `leave()` was called.
    Left,
}

/// The earlier of two optional deadlines.
pub fn earliest(a: Option<Millis>, b: Option<Millis>) -> Option<Millis> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Where the registration stands.
#[derive(Debug)]
enum Registration {
    None,
    /// The SDK registers again after a loss (while the page's own `register()` runs, the
    /// join stays at `None`: a call needs the registration either way); at
    /// `Renewals::at`, when the re-registrations came too fast.
    Renewing,
    Held(Held),
    Left,
}

#[derive(Debug)]
struct Held {
    session_id: String,
    admission: Admission,
    /// PeerWave: the server answered this registration's handshake on this connection.
    authenticated: bool,
}

/// Where the guest stands with the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admission {
    /// Not asked (a new registration, or the last wait ran out).
    Outside,
    /// PeerWave: the lobby request is out.
    Asking,
    /// PeerWave: the lobby request is asked again at this time.
    AskAt(Millis),
    /// In the host's lobby; PeerWave: the registration is checked at `check_at` (`None`:
    /// a check is out).
    InLobby {
        check_at: Option<Millis>,
    },
    /// The host declined: not asked again until the next call.
    Declined,
    Admitted,
}

/// The running `exchangeKey()` call.
#[derive(Debug)]
struct Call {
    started_at: Millis,
    /// Registrations lost during the call, each replaced without ending it.
    lost: u8,
    stage: Stage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Just made (or its registration is back): [`Join::proceed`] decides.
    Starting,
    /// Waiting for a registration after a loss: go on once registered (`resume`), or end
    /// with `SESSION_LOST` (so that "Try again" finds the new registration).
    Registering { resume: bool },
    /// Waiting for the socket or the host until `until`.
    Waiting { what: Waiting, until: Millis },
    /// The key exchange runs.
    Exchanging,
}

/// The guest's join for one meeting.
///
/// # Driver contract
///
/// Like [`super::Exchange`]'s: the machine does no I/O and reads no clock.
///
/// 1. Create it with [`Join::new`] (a registration read from storage, the socket as it
///    is) and carry out the actions it returns.
/// 2. Report what happens with [`Join::handle`]: registration results, socket events,
///    server notices, the answers to the machine's own requests, and the exchange's end
///    ([`JoinEvent::KeyDelivered`], [`JoinEvent::ExchangeFailed`]). An `exchangeKey()`
///    call goes through [`Join::exchange_key`]. Carry out the returned actions in order;
///    feed events one at a time (queue those that arrive while a batch is carried out).
/// 3. After every call, arm one timer at [`Join::poll_timeout`] and call
///    [`Join::handle_timeout`] when it fires: early, late or twice is harmless.
/// 4. `now` is milliseconds on a clock that does not go backwards (a smaller value is
///    taken as the largest seen).
/// 5. [`JoinAction::Settle`] is the only end of a call; nothing is sent to a participant
///    before [`JoinAction::StartExchange`], which comes only once the socket is ready and
///    (when required) the host has admitted the guest.
#[derive(Debug)]
pub struct Join {
    config: JoinConfig,
    clock: Millis,
    registration: Registration,
    link: Link,
    call: Option<Call>,
    /// Re-registrations after losses.
    renewals: Renewals,
}

/// How fast the SDK has been registering again.
#[derive(Debug, Default)]
struct Renewals {
    /// When the last re-registration went (or goes), and how many came without a quiet minute.
    last: Millis,
    count: u8,
    /// When a re-registration held back by [`RENEWALS_AT_ONCE`] goes (while `Renewing`).
    at: Option<Millis>,
}

impl Join {
    /// A join with the registration stored in this tab (its session id, and whether the
    /// host admitted it), if any, and the socket as it is now.
    pub fn new(
        config: JoinConfig,
        stored: Option<(String, bool)>,
        link: Link,
        now: Millis,
    ) -> (Self, Vec<JoinAction>) {
        let mut join = Self {
            config,
            clock: now,
            registration: Registration::None,
            link,
            call: None,
            renewals: Renewals::default(),
        };
        let mut out = Vec::new();
        if let Some((session_id, admitted)) = stored {
            join.hold(session_id, &mut out);
            if admitted && join.config.rules.admission_kept {
                join.set_admission(Admission::Admitted);
            }
        }
        (join, out)
    }

    /// The session id of the current registration.
    pub fn session_id(&self) -> Option<&str> {
        match &self.registration {
            Registration::Held(held) => Some(&held.session_id),
            _ => None,
        }
    }

    /// Whether the host has admitted the current registration.
    pub fn admitted(&self) -> bool {
        matches!(self.admission(), Some(Admission::Admitted))
    }

    /// Whether an `exchangeKey()` call is running.
    pub fn call_running(&self) -> bool {
        self.call.is_some()
    }

    /// `exchangeKey()`: starts a call, or says why not.
    pub fn exchange_key(&mut self, now: Millis) -> Result<Vec<JoinAction>, CallRefused> {
        self.tick(now);
        if self.call.is_some() {
            return Err(CallRefused::AlreadyRunning);
        }
        let stage = match &mut self.registration {
            Registration::Left => return Err(CallRefused::Left),
            Registration::None => return Err(CallRefused::NotRegistered),
            // The SDK is registering again after a loss: the call waits for it.
            Registration::Renewing => Stage::Registering { resume: true },
            Registration::Held(held) => {
                // "Try again" after a decline asks the host anew.
                if matches!(held.admission, Admission::Declined) {
                    held.admission = Admission::Outside;
                }
                Stage::Starting
            }
        };
        self.call = Some(Call {
            started_at: self.clock,
            lost: 0,
            stage,
        });
        let mut out = Vec::new();
        self.proceed(&mut out);
        Ok(out)
    }

    /// Feeds one event.
    pub fn handle(&mut self, event: JoinEvent, now: Millis) -> Vec<JoinAction> {
        self.tick(now);
        let mut out = Vec::new();
        if matches!(self.registration, Registration::Left) {
            return out;
        }
        match event {
            JoinEvent::Registered(session_id) => self.registered(session_id, &mut out),
            JoinEvent::RegistrationFailed => self.registration_failed(&mut out),
            JoinEvent::Unregistered => self.registration = Registration::None,
            JoinEvent::SocketConnected => {
                self.link = Link::Up;
                self.proceed(&mut out);
            }
            JoinEvent::SocketDisconnected { reconnecting } => {
                self.link = if reconnecting {
                    Link::Connecting
                } else {
                    Link::Down
                };
                if let Registration::Held(held) = &mut self.registration {
                    held.authenticated = false;
                }
                self.proceed(&mut out);
            }
            JoinEvent::Authenticated(session_id) => self.authenticated(&session_id, &mut out),
            JoinEvent::HandshakeRefused { session_gone } => {
                // The refusal may answer an older handshake: check before giving up.
                if session_gone && self.config.rules.reregisters && self.session_id().is_some() {
                    out.push(JoinAction::CheckStatus);
                }
            }
            JoinEvent::Admitted(session_id) => {
                if self.is_ours(&session_id) {
                    self.admitted_now(&mut out);
                } else {
                    self.lobby_moved(&mut out);
                }
            }
            JoinEvent::Declined(session_id) => {
                if self.is_ours(&session_id) {
                    self.declined(&mut out);
                } else {
                    self.lobby_moved(&mut out);
                }
            }
            JoinEvent::LobbyAnswered(answer) => self.lobby_answered(answer, &mut out),
            JoinEvent::StatusChecked(status) => self.status_checked(status, &mut out),
            JoinEvent::RegistrationLost => self.lost(&mut out),
            JoinEvent::KeyDelivered => {
                let elapsed_ms = self.call.as_ref().map(|c| self.clock - c.started_at);
                if let Some(elapsed_ms) = elapsed_ms.filter(|_| self.exchanging()) {
                    self.settle(CallOutcome::Key { elapsed_ms }, &mut out);
                }
            }
            JoinEvent::KeyRefused => {
                if self.exchanging() {
                    self.settle(CallOutcome::Failed(JoinFailure::KeyRefused), &mut out);
                }
            }
            JoinEvent::ExchangeFailed(failure) => {
                if self.exchanging() {
                    let failed = CallOutcome::Failed(JoinFailure::Exchange(failure));
                    self.settle(failed, &mut out);
                }
            }
            JoinEvent::Leave => {
                self.registration = Registration::Left;
                self.renewals.at = None;
                self.settle(CallOutcome::Failed(JoinFailure::Left), &mut out);
            }
        }
        out
    }

    /// The earliest deadline: a call's wait, a lobby request to repeat, a status check.
    pub fn poll_timeout(&self) -> Option<Millis> {
        let call = match self.call.as_ref().map(|c| c.stage) {
            Some(Stage::Waiting { until, .. }) => Some(until),
            _ => None,
        };
        let lobby = match self.admission() {
            Some(Admission::AskAt(at)) => Some(at),
            Some(Admission::InLobby { check_at }) => check_at,
            _ => self.renewals.at,
        };
        earliest(call, lobby)
    }

    /// Acts on every deadline that has passed, once.
    pub fn handle_timeout(&mut self, now: Millis) -> Vec<JoinAction> {
        self.tick(now);
        let now = self.clock;
        let mut out = Vec::new();
        if let Some(Stage::Waiting { what, until }) = self.call.as_ref().map(|c| c.stage) {
            if until <= now {
                self.wait_expired(what, &mut out);
            }
        }
        if self.renewals.at.is_some_and(|at| at <= now) {
            self.renewals.at = None;
            out.push(JoinAction::ReplaceIdentity);
            out.push(JoinAction::Register);
        }
        let Registration::Held(held) = &mut self.registration else {
            return out;
        };
        match held.admission {
            Admission::AskAt(at) if at <= now => {
                held.admission = Admission::Asking;
                out.push(JoinAction::RequestAdmission);
            }
            Admission::InLobby { check_at: Some(at) } if at <= now => {
                held.admission = Admission::InLobby { check_at: None };
                out.push(JoinAction::CheckStatus);
            }
            _ => {}
        }
        out
    }

    fn tick(&mut self, now: Millis) {
        self.clock = self.clock.max(now);
    }

    fn admission(&self) -> Option<Admission> {
        match &self.registration {
            Registration::Held(held) => Some(held.admission),
            _ => None,
        }
    }

    fn set_admission(&mut self, admission: Admission) {
        if let Registration::Held(held) = &mut self.registration {
            held.admission = admission;
        }
    }

    fn is_ours(&self, session_id: &str) -> bool {
        self.session_id() == Some(session_id)
    }

    fn exchanging(&self) -> bool {
        self.call
            .as_ref()
            .is_some_and(|c| matches!(c.stage, Stage::Exchanging))
    }

    fn settle(&mut self, outcome: CallOutcome, out: &mut Vec<JoinAction>) {
        if self.call.take().is_some() {
            out.push(JoinAction::Settle(outcome));
        }
    }
}
