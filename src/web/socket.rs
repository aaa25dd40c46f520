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
    fn on(this: &Socket, event: &str, handler: &Function) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn off(this: &Socket, event: &str, handler: &Function) -> Result<JsValue, JsValue>;
}

impl Socket {
    /// Emits a guest message (JSON text, sent as an object); `false` if it could not go out.
    pub(crate) fn send_guest_message(&self, body: &str) -> bool {
        let connected = get(self, "connected").as_bool() != Some(false);
        connected && parse(body).is_ok_and(|b| self.emit(GUEST_MESSAGE_EVENT, &b).is_ok())
    }

    /// Starts delivering participant messages to `handler`.
    pub(crate) fn listen(&self, handler: &Function) -> Result<(), JsValue> {
        self.on(PARTICIPANT_MESSAGE_EVENT, handler).map(drop)
    }

    /// Stops delivering participant messages to `handler` (best effort).
    pub(crate) fn stop_listening(&self, handler: &Function) {
        let _ = self.off(PARTICIPANT_MESSAGE_EVENT, handler);
    }
}
