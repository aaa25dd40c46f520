//! A JavaScript promise whose outcome is decided later, from a callback.

use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;

use super::error::GuestError;

#[wasm_bindgen(module = "/src/web/shim.js")]
extern "C" {
    /// Records a promise the SDK owes, to be rejected if the module traps first.
    fn owe(reject: &Function);
    /// The promise is settled.
    fn paid(reject: &Function);
}

/// The two ends of a JS promise, settled later from a callback. Dropping it unsettled
/// leaves the promise pending, so every path must call [`Deferred::settle`].
pub(crate) struct Deferred {
    resolve: Function,
    reject: Function,
}

impl Deferred {
    /// A pending promise and the means to settle it.
    pub(crate) fn new() -> (Promise, Option<Self>) {
        let mut slot = None;
        // The executor runs synchronously, so `slot` is filled when `new` returns.
        let promise = Promise::new(&mut |resolve, reject| slot = Some(Self { resolve, reject }));
        if let Some(deferred) = &slot {
            owe(&deferred.reject);
        }
        (promise, slot)
    }

    /// Fulfils with the value or rejects with the error (as a `GuestError` object).
    pub(crate) fn settle(self, result: Result<JsValue, GuestError>) {
        paid(&self.reject);
        let _ = match result {
            Ok(value) => self.resolve.call1(&JsValue::NULL, &value),
            Err(e) => self.reject.call1(&JsValue::NULL, &e.into()),
        };
    }
}

/// A promise settled by `start`, now or from a later callback.
pub(crate) fn promise(start: impl FnOnce(Deferred)) -> Promise {
    let (promise, deferred) = Deferred::new();
    if let Some(deferred) = deferred {
        start(deferred);
    }
    promise
}
