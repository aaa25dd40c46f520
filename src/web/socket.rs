//! The page's Socket.IO socket: only `emit`, `on`, `off` and `connected` are used.


use js_sys::Function;
use wasm_bindgen::prelude::*;

use super::js::{get, parse};
use crate::exchange::contract::{GUEST_MESSAGE_EVENT, PARTICIPANT_MESSAGE_EVENT};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(typescript_type = "GuestSocket")]
    #[derive(Clone)]
    pub type Socket;
    #[wasm_bindgen(method, catch)]
    fn emit(this: &Socket, event: &str, body: &JsValue) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn off(this: &Socket, event: &str, handler: &Function) -> Result<JsValue, JsValue>;
}

#[wasm_bindgen(module = "/src/web/shim.js")]
extern "C" {
    /// `socket.on(event, handler)` with the handler guarded; returns the function to remove.
    #[wasm_bindgen(catch)]
    fn listen(socket: &Socket, event: &str, handler: &Function) -> Result<Function, JsValue>;
}

impl Socket {
    /// Emits a guest message (JSON text, sent as an object); `false` if it could not go out.
    pub(crate) fn send_guest_message(&self, body: &str) -> bool {
        let connected = get(self, "connected").as_bool() != Some(false);
        connected && parse(body).is_ok_and(|b| self.emit(GUEST_MESSAGE_EVENT, &b).is_ok())
    }

    /// Starts delivering participant messages to `handler`; returns what
    /// [`Socket::stop_listening`] takes.
    pub(crate) fn listen(&self, handler: &Function) -> Result<Function, JsValue> {
        listen(self, PARTICIPANT_MESSAGE_EVENT, handler)
    }

    /// Stops delivering participant messages to `handler` (best effort).
    pub(crate) fn stop_listening(&self, handler: &Function) {
        let _ = self.off(PARTICIPANT_MESSAGE_EVENT, handler);
    }
}
