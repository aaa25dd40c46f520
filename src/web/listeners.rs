//! The socket events a guest listens to, from construction until `leave()`: participant
//! messages, the socket's (re)connection and the server's admission notice. Listening from
//! the start means an admission sent as soon as the page connects is not missed.

use crate::prelude::*;

use alloc::rc::Rc;

use js_sys::Function;
use wasm_bindgen::prelude::*;

use super::driver::on_socket_message;
use super::error::SetupError;
use super::events;
use super::gate;
use super::instance::{emit, Shared};
use super::js::get;
use super::socket::Socket;
use crate::exchange::contract::{
    GUEST_ADMITTED_EVENT, PARTICIPANT_MESSAGE_EVENT, SOCKET_CONNECT_EVENT,
};

/// One registered handler: the Rust closure, and the (guarded) function the socket was
/// given, which `off` needs.
pub(crate) struct Listener {
    event: &'static str,
    _closure: Closure<dyn FnMut(JsValue)>,
    registered: Function,
}

fn handle(shared: &Shared, event: &str, body: &JsValue) {
    match event {
        PARTICIPANT_MESSAGE_EVENT => on_socket_message(shared, body),
        GUEST_ADMITTED_EVENT => on_admitted(shared, body),
        _ => gate::reconsider(shared),
    }
}

/// The server's notice counts only for this guest's own session.
fn on_admitted(shared: &Shared, body: &JsValue) {
    let newly = match shared.try_borrow_mut() {
        Ok(mut instance) => {
            let ours = instance
                .lifecycle
                .exchange()
                .map(|e| e.guest_session_id().to_owned());
            let named = get(body, "session_id").as_string();
            if ours.is_none() || ours != named || instance.admitted {
                false
            } else {
                instance.admitted = true;
                true
            }
        }
        Err(_) => false,
    };
    if newly {
        emit(shared, events::admitted());
        gate::reconsider(shared);
    }
}

/// Registers every handler on the page's socket.
pub(crate) fn listen_all(shared: &Shared, socket: &Socket) -> Result<Vec<Listener>, SetupError> {
    let mut listeners = Vec::new();
    for event in [
        PARTICIPANT_MESSAGE_EVENT,
        SOCKET_CONNECT_EVENT,
        GUEST_ADMITTED_EVENT,
    ] {
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
