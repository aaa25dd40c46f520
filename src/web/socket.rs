//! The page's Socket.IO socket: `emit`, `on`, `off` and `connected`; in the `peerwave`
//! profile also `auth`, `connect` and `disconnect` (the SDK owns the handshake there).

use js_sys::Function;
use wasm_bindgen::prelude::*;

use super::js::{get, parse};
use crate::exchange::contract::ADMISSION_QUERY_EVENT;
use crate::exchange::join::Link;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(typescript_type = "GuestSocket")]
    #[derive(Clone)]
    pub type Socket;
    #[wasm_bindgen(method, catch)]
    fn emit(this: &Socket, event: &str, body: &JsValue) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn off(this: &Socket, event: &str, handler: &Function) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn connect(this: &Socket) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn disconnect(this: &Socket) -> Result<JsValue, JsValue>;
}

#[wasm_bindgen(module = "/src/web/shim.js")]
extern "C" {
    /// `socket.on(event, handler)` with the handler guarded; returns the function to remove.
    #[wasm_bindgen(catch)]
    fn listen(socket: &Socket, event: &str, handler: &Function) -> Result<Function, JsValue>;
}

impl Socket {
    /// Whether the socket is connected (`connected`, as socket.io-client has it; a socket
    /// without the property counts as connected).
    pub(crate) fn is_connected(&self) -> bool {
        get(self, "connected").as_bool() != Some(false)
    }

    /// Whether the socket is connecting or will reconnect by itself (socket.io-client's
    /// `active`): driving it again would open a second connection.
    pub(crate) fn is_active(&self) -> bool {
        get(self, "active").as_bool() == Some(true)
    }

    /// The socket as the join machine sees it.
    pub(crate) fn link(&self) -> Link {
        if self.is_connected() {
            Link::Up
        } else if self.is_active() {
            Link::Connecting
        } else {
            Link::Down
        }
    }

    /// Emits a guest message (JSON text, sent as an object); `false` if it could not go out.
    pub(crate) fn send_guest_message(&self, event: &str, body: &str) -> bool {
        self.is_connected() && parse(body).is_ok_and(|b| self.emit(event, &b).is_ok())
    }

    /// Sets the handshake `auth` and (re)connects, so that the server sees it (PeerWave
    /// reads the guest's session from the handshake only). Best effort.
    pub(crate) fn reconnect_with(&self, auth: &JsValue) {
        let _ = js_sys::Reflect::set(self, &"auth".into(), auth);
        if self.is_connected() || self.is_active() {
            let _ = self.disconnect();
        }
        let _ = self.connect();
    }

    /// Asks the server to repeat its admission notice (best effort).
    pub(crate) fn query_admission(&self) {
        let _ = self.emit(ADMISSION_QUERY_EVENT, &js_sys::Object::new());
    }

    /// Starts delivering `event` to `handler`; returns what [`Socket::stop_listening`] takes.
    pub(crate) fn listen(&self, event: &str, handler: &Function) -> Result<Function, JsValue> {
        listen(self, event, handler)
    }

    /// Stops delivering `event` to `registered` (best effort).
    pub(crate) fn stop_listening(&self, event: &str, registered: &Function) {
        let _ = self.off(event, registered);
    }
}
