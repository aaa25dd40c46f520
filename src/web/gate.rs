//! When the exchange may start: once the page's socket is connected (a request sent before
//! that is lost) and the host has admitted the guest (the server holds requests from guests
//! in the lobby, so asking earlier only burns the participants' time). `exchangeKey()` waits
//! for both, each with its own deadline, and says what it is waiting for.

use alloc::rc::Rc;

use super::driver::feed;
use super::error::{ExchangeKeyError, GuestError};
use super::events;
use super::handshake;
use super::instance::{emit, Input, Lobby, Shared};
use super::platform::Timeout;
use crate::exchange::contract::WireProfile;
use crate::exchange::Event;

/// What the exchange is waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Waiting {
    /// The socket to connect.
    Connection,
    /// The host to admit the guest.
    Admission,
}

/// A waiting `exchangeKey()`, with the timer that ends the wait.
pub(crate) struct Gate {
    waiting: Waiting,
    _deadline: Timeout,
}

fn blocked_on(shared: &Shared) -> Option<Option<Waiting>> {
    let instance = shared.try_borrow().ok()?;
    // PeerWave drops what a guest sends before it has answered the handshake.
    let handshake_done = instance.authenticated || instance.config.profile() == WireProfile::Plan;
    Some(
        if !instance.config.socket.is_connected() || !handshake_done {
            Some(Waiting::Connection)
        } else if instance.config.require_admission && !instance.admitted {
            Some(Waiting::Admission)
        } else {
            None
        },
    )
}

/// Starts the exchange now, or waits (called by `exchangeKey()`).
pub(crate) fn start_when_ready(shared: &Shared) {
    match blocked_on(shared) {
        Some(None) => feed(shared, Input::Event(Event::Start)),
        Some(Some(waiting)) => wait(shared, waiting),
        None => {}
    }
}

/// The socket connected or the guest was admitted: go on if nothing else is missing.
pub(crate) fn reconsider(shared: &Shared) {
    let current = match shared.try_borrow() {
        Ok(instance) => match &instance.gate {
            Some(gate) => gate.waiting,
            None => return,
        },
        Err(_) => return,
    };
    match blocked_on(shared) {
        Some(None) => {
            if let Ok(mut instance) = shared.try_borrow_mut() {
                instance.gate = None;
            }
            feed(shared, Input::Event(Event::Start));
        }
        Some(Some(waiting)) if waiting != current => wait(shared, waiting),
        _ => {}
    }
}

fn wait(shared: &Shared, waiting: Waiting) {
    let (ms, profile, connected) = match shared.try_borrow() {
        Ok(instance) => {
            let c = &instance.config;
            let ms = match waiting {
                Waiting::Connection => c.connect_timeout_ms,
                Waiting::Admission => c.admission_timeout_ms,
            };
            (ms, c.profile(), c.socket.is_connected())
        }
        Err(_) => return,
    };
    match (waiting, profile) {
        // The notice may have come before this guest listened.
        (Waiting::Admission, WireProfile::Plan) => {
            if let Ok(instance) = shared.try_borrow() {
                instance.config.socket.query_admission();
            }
        }
        (Waiting::Admission, WireProfile::PeerWave) => handshake::request_admission(shared),
        (Waiting::Connection, WireProfile::PeerWave) if !connected => {
            handshake::authenticate(shared)
        }
        (Waiting::Connection, _) => {}
    }
    let weak = Rc::downgrade(shared);
    let deadline = Timeout::new(ms, move || {
        if let Some(shared) = weak.upgrade() {
            expired(&shared, waiting, ms);
        }
    });
    if let Ok(mut instance) = shared.try_borrow_mut() {
        instance.gate = Some(Gate {
            waiting,
            _deadline: deadline,
        });
    }
    emit(shared, events::waiting(waiting));
}

/// The host declined this guest: a waiting `exchangeKey()` ends now.
pub(crate) fn declined(shared: &Shared) {
    let pending = match shared.try_borrow_mut() {
        Ok(mut instance) => {
            instance.admitted = false;
            // PeerWave takes the guest out of the lobby: "Try again" asks anew.
            instance.lobby = Lobby::Outside;
            // Only a call still waiting to be let in ends here.
            instance.gate.take().and_then(|_| instance.pending.take())
        }
        Err(_) => return,
    };
    if let Some(p) = pending {
        p.deferred
            .settle(Err(GuestError::from(ExchangeKeyError::Declined)));
    }
}

fn expired(shared: &Shared, waiting: Waiting, ms: u32) {
    let pending = match shared.try_borrow_mut() {
        Ok(mut instance) => {
            instance.gate = None;
            // PeerWave says "admitted" once, to the sockets in the room at that moment; if
            // that was missed, "Try again" asks the lobby anew rather than wait forever.
            instance.lobby = Lobby::Outside;
            instance.pending.take()
        }
        Err(_) => return,
    };
    let error = match waiting {
        Waiting::Connection => ExchangeKeyError::NotConnected(ms),
        Waiting::Admission => ExchangeKeyError::NotAdmitted(ms),
    };
    if let Some(p) = pending {
        p.deferred.settle(Err(GuestError::from(error)));
    }
}
