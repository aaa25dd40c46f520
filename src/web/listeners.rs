//! The socket events a guest listens to, from construction until `leave()`: participant
//! messages, the socket's (re)connection and the server's admission notice; in the
//! `peerwave` profile also its handshake answers and the host's refusal. Listening from
//! the start means an admission sent as soon as the page connects is not missed.

use crate::prelude::*;

use alloc::rc::Rc;

use js_sys::Function;
use wasm_bindgen::prelude::*;

use super::driver::on_socket_message;
use super::error::SetupError;
use super::events;
use super::gate;
use super::handshake;
use super::instance::{emit, Shared};
use super::js::get;
use super::socket::Socket;
use super::storage::REGISTRATION_ENTRY;
use crate::exchange::contract::{
    peerwave, WireProfile, SOCKET_CONNECT_EVENT, SOCKET_DISCONNECT_EVENT,
};
use crate::exchange::stored::registration_record;

/// One registered handler: the Rust closure, and the (guarded) function the socket was
/// given, which `off` needs.
pub(crate) struct Listener {
    event: &'static str,
    _closure: Closure<dyn FnMut(JsValue)>,
    registered: Function,
}

fn handle(shared: &Shared, event: &str, body: &JsValue) {
    let Ok(dialect) = shared.try_borrow().map(|i| i.config.profile().names()) else {
        return;
    };
    match event {
        e if e == dialect.participant_event => on_socket_message(shared, body),
        e if e == dialect.admitted_event => on_admitted(shared, body),
        peerwave::ADMISSION_DENIED_EVENT => {
            if names_us(shared, body) {
                gate::declined(shared);
            }
        }
        peerwave::AUTHENTICATED_EVENT => {
            if names_us(shared, body) {
                set_authenticated(shared, true);
                // Into the lobby as soon as the socket can hear the answer: PeerWave deletes
                // every registered guest that has not asked yet whenever another one
                // registers, and tells only the guests whose socket is in the meeting's room.
                handshake::request_admission(shared);
                gate::reconsider(shared);
            }
        }
        peerwave::HANDSHAKE_ERROR_EVENT => {
            let message = get(body, "message").as_string().unwrap_or_default();
            if peerwave::SESSION_GONE_MESSAGES.contains(&message.as_str()) {
                handshake::confirm_session_lost(shared);
            }
        }
        SOCKET_DISCONNECT_EVENT => set_authenticated(shared, false),
        _ => gate::reconsider(shared),
    }
}

fn set_authenticated(shared: &Shared, value: bool) {
    if let Ok(mut instance) = shared.try_borrow_mut() {
        instance.authenticated = value;
    }
}

/// Whether a server notice names this guest's own session (PeerWave sends its lobby notices
/// to every waiting guest of the meeting).
fn names_us(shared: &Shared, body: &JsValue) -> bool {
    let named = get(body, "session_id").as_string();
    shared.try_borrow().is_ok_and(|instance| {
        named.is_some()
            && instance
                .lifecycle
                .exchange()
                .map(|e| e.guest_session_id().to_owned())
                == named
    })
}

/// The server's notice counts only for this guest's own session.
fn on_admitted(shared: &Shared, body: &JsValue) {
    if !names_us(shared, body) {
        return;
    }
    let newly = match shared.try_borrow_mut() {
        Ok(mut instance) if !instance.admitted => {
            instance.admitted = true;
            // Kept with the registration: PeerWave does not say it again after a reload.
            let record = instance.lifecycle.exchange().map(|e| {
                registration_record(e.guest_session_id(), &instance.config.meeting_id, true)
            });
            if let Some(record) = record {
                let _ = instance.storage.set(REGISTRATION_ENTRY, &record);
            }
            true
        }
        _ => false,
    };
    if newly {
        emit(shared, events::admitted());
        gate::reconsider(shared);
    }
}

/// Registers every handler on the page's socket.
pub(crate) fn listen_all(shared: &Shared, socket: &Socket) -> Result<Vec<Listener>, SetupError> {
    let Ok(profile) = shared.try_borrow().map(|i| i.config.profile()) else {
        return Ok(Vec::new());
    };
    let dialect = profile.names();
    let mut events = alloc::vec![
        dialect.participant_event,
        SOCKET_CONNECT_EVENT,
        dialect.admitted_event,
    ];
    if profile == WireProfile::PeerWave {
        events.extend([
            peerwave::ADMISSION_DENIED_EVENT,
            peerwave::AUTHENTICATED_EVENT,
            peerwave::HANDSHAKE_ERROR_EVENT,
            SOCKET_DISCONNECT_EVENT,
        ]);
    }
    let mut listeners = Vec::new();
    for event in events {
        let weak = Rc::downgrade(shared);
        let closure = Closure::<dyn FnMut(JsValue)>::new(move |body: JsValue| {
            if let Some(shared) = weak.upgrade() {
                handle(&shared, event, &body);
            }
        });
        let registered = socket
            .listen(event, closure.as_ref().unchecked_ref())
            .map_err(|_| SetupError::InvalidConfig("socket.on threw".into()))?;
        listeners.push(Listener {
            event,
            _closure: closure,
            registered,
        });
    }
    Ok(listeners)
}

/// Removes every handler (on `leave()`).
pub(crate) fn stop_all(socket: &Socket, listeners: Vec<Listener>) {
    for listener in &listeners {
        socket.stop_listening(listener.event, &listener.registered);
    }
}
