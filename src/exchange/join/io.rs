//! What goes into the join machine ([`JoinEvent`]) and what comes out ([`JoinAction`]).

use crate::prelude::*;

use super::super::failure::ExchangeFailure;
use super::super::messages::names_lost_session;
use super::super::Millis;

/// Inputs to the join machine. Time is not an event: see [`super::Join::handle_timeout`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinEvent {
    /// The server accepted a registration (the page's `register()`, or the one after
    /// [`JoinAction::Register`]) under this session id.
    Registered(String),
    /// A registration request failed.
    RegistrationFailed,
    /// The page replaced the guest's keys before registering (a duplicated tab): any
    /// registration read from storage belongs to the other tab.
    Unregistered,
    /// The socket connected.
    SocketConnected,
    /// The socket disconnected; `reconnecting`: the socket is already trying again on its
    /// own (socket.io-client's `active`), so the SDK must not drive it.
    SocketDisconnected {
        /// Whether the socket reconnects by itself.
        reconnecting: bool,
    },
    /// PeerWave: the server answered a handshake for this session id.
    Authenticated(String),
    /// PeerWave: the server refused a handshake; `session_gone`: with a message that
    /// means it no longer has the registration (maybe an older handshake's).
    HandshakeRefused {
        /// Whether the refusal names a missing session.
        session_gone: bool,
    },
    /// The server's admission notice for this session id (PeerWave sends it to every
    /// waiting guest of the meeting).
    Admitted(String),
    /// PeerWave: the host declined this session id.
    Declined(String),
    /// PeerWave: the answer to [`JoinAction::RequestAdmission`].
    LobbyAnswered(LobbyAnswer),
    /// PeerWave: the answer to [`JoinAction::CheckStatus`].
    StatusChecked(Status),
    /// An HTTP answer elsewhere (keybundle, LiveKit token) said the server no longer has
    /// this guest's registration.
    RegistrationLost,
    /// The exchange handed a key to the key provider.
    KeyDelivered,
    /// The key provider refused the key the exchange handed over.
    KeyRefused,
    /// The exchange gave up.
    ExchangeFailed(ExchangeFailure),
    /// `leave()`.
    Leave,
}

/// PeerWave's answer to a lobby request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LobbyAnswer {
    /// The guest is in the host's lobby.
    InLobby,
    /// Refused for now (the server's 5 s cooldown, or no answer): ask again later.
    TryLater,
    /// The server no longer has the registration.
    SessionGone,
}

impl LobbyAnswer {
    /// PeerWave's answer to the lobby request, by status and body.
    pub fn of_reply(status: u16, body: &str) -> Self {
        if names_lost_session(status, body) {
            Self::SessionGone
        } else if (200..300).contains(&status) {
            Self::InLobby
        } else {
            Self::TryLater
        }
    }
}

/// What the server says of this guest's registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The host has admitted the guest.
    Admitted,
    /// Registered, not admitted.
    Waiting,
    /// The server no longer has the registration.
    Gone,
    /// No answer that says either (network error, unexpected status).
    Unknown,
}

impl Status {
    /// PeerWave's LiveKit token endpoint as a status check: it answers only an admitted
    /// guest, refuses others with 403, and names a registration it no longer has.
    pub fn of_token_reply(status: u16, body: &str) -> Self {
        if names_lost_session(status, body) {
            Self::Gone
        } else if (200..300).contains(&status) {
            Self::Admitted
        } else if status == 403 {
            Self::Waiting
        } else {
            Self::Unknown
        }
    }
}

/// What an `exchangeKey()` call is waiting for, as the page is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// The socket to connect (and, in PeerWave, the handshake to be answered).
    Connection,
    /// The host to admit the guest.
    Admission,
}

/// What the page is told while joining.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinNotice {
    /// The call waits for this.
    Waiting(Waiting),
    /// The host admitted this guest.
    Admitted,
    /// The server lost the registration; the SDK registers again.
    SessionLost,
    /// Registered again (after [`JoinNotice::SessionLost`]), under
    /// [`super::Join::session_id`].
    Registered,
}

/// Why an `exchangeKey()` call ended without a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinFailure {
    /// The socket did not connect within this many ms.
    NotConnected(Millis),
    /// The host did not admit the guest within this many ms.
    NotAdmitted(Millis),
    /// The host declined the guest.
    Declined,
    /// The server lost the registration; the SDK has registered again (or tried to).
    SessionLost,
    /// `leave()` was called.
    Left,
    /// The key provider refused the key.
    KeyRefused,
    /// The exchange gave up.
    Exchange(ExchangeFailure),
}

/// How an `exchangeKey()` call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOutcome {
    /// The key is with the key provider, this many ms after the call.
    Key {
        /// Time from the call to the key.
        elapsed_ms: Millis,
    },
    /// No key.
    Failed(JoinFailure),
}

/// Outputs the driver carries out, in order. Those about "the current session" mean
/// [`super::Join::session_id`] when they are carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinAction {
    /// The server forgot the guest: drop the keys and sessions (wipe storage), make new
    /// ones, and persist them. [`JoinAction::Register`] follows.
    ReplaceIdentity,
    /// Register the guest's public keys; answer with [`JoinEvent::Registered`] or
    /// [`JoinEvent::RegistrationFailed`].
    Register,
    /// PeerWave: put the current session in the socket's handshake `auth` and (re)connect
    /// it (disconnect first if it is connected or connecting with an older `auth`).
    Handshake,
    /// Plan: ask the server to repeat its admission notice.
    QueryAdmission,
    /// PeerWave: ask the host to let the current session in; answer with
    /// [`JoinEvent::LobbyAnswered`].
    RequestAdmission,
    /// PeerWave: ask the server whether the current session is registered and admitted;
    /// answer with [`JoinEvent::StatusChecked`].
    CheckStatus,
    /// Store that this registration is admitted (PeerWave says it once).
    PersistAdmitted,
    /// The call waits (for the socket or the host): let the key exchange prepare its
    /// request, sending nothing ([`crate::exchange::Event::Prepare`]).
    PrepareExchange,
    /// Start (or restart) the key exchange; after [`JoinAction::PrepareExchange`], send
    /// what it prepared.
    StartExchange,
    /// Tell the page.
    Notice(JoinNotice),
    /// Settle the running `exchangeKey()` call: the only way it ends.
    Settle(CallOutcome),
}
