//! The socket events a guest listens to, from construction until `leave()`, converted for
//! the machines: participant messages, the socket's (re)connection and the server's
//! admission notice; in the `peerwave` profile also its handshake answers and the host's
//! refusal. Listening from the start means an admission sent as soon as the page connects
//! is not missed.

use crate::prelude::*;

use alloc::rc::Rc;

use js_sys::Function;
use wasm_bindgen::prelude::*;

use super::driver::{feed, on_socket_message};
use super::error::SetupError;
use super::instance::{Input, Shared};
use super::joining::named_session;
use super::js::get;
use super::socket::Socket;
use crate::exchange::contract::{peerwave, SOCKET_CONNECT_EVENT, SOCKET_DISCONNECT_EVENT};
use crate::exchange::join::JoinEvent;

/// One registered handler: the Rust closure, and the (guarded) function the socket was
/// given, which `off` needs.
pub(crate) struct Listener {
    event: &'static str,
    _closure: Closure<dyn FnMut(JsValue)>,
    registered: Function,
}

#[inline(never)]
fn handle(shared: &Shared, event: &str, body: &JsValue) {
    let Ok(dialect) = shared.try_borrow().map(|i| i.config.profile().names()) else {
        return;
    };
    let join = match event {
        e if e == dialect.participant_event => return on_socket_message(shared, body),
        e if e == dialect.admitted_event => JoinEvent::Admitted(named_session(body)),
        peerwave::ADMISSION_DENIED_EVENT => JoinEvent::Declined(named_session(body)),
        peerwave::AUTHENTICATED_EVENT => JoinEvent::Authenticated(named_session(body)),
        peerwave::HANDSHAKE_ERROR_EVENT => {
            let message = get(body, "message").as_string().unwrap_or_default();
            let session_gone = peerwave::SESSION_GONE_MESSAGES.contains(&message.as_str());
            JoinEvent::HandshakeRefused { session_gone }
        }
        // Whether it reconnects is read when the event is handled (`driver.rs`).
        SOCKET_DISCONNECT_EVENT => JoinEvent::SocketDisconnected {
            reconnecting: false,
        },
        _ => JoinEvent::SocketConnected,
    };
    feed(shared, Input::Join(join));
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
        SOCKET_DISCONNECT_EVENT,
        dialect.admitted_event,
    ];
    if profile.join_rules().sdk_handshake {
        events.extend([
            peerwave::ADMISSION_DENIED_EVENT,
            peerwave::AUTHENTICATED_EVENT,
            peerwave::HANDSHAKE_ERROR_EVENT,
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
