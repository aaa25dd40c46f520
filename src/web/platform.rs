//! The browser primitives the SDK needs beyond web-sys: timers and the CSPRNG.

use alloc::boxed::Box;
use js_sys::Function;
use rand_core::{CryptoRng, Error, RngCore};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};

#[wasm_bindgen(module = "/src/web/shim.js")]
extern "C" {
    /// `setTimeout` with the handler guarded against a trapped module (see shim.js).
    #[wasm_bindgen(js_name = setTimer)]
    fn set_timer(handler: &Function, ms: i32) -> JsValue;
    /// `clearTimeout` for a timer made by `set_timer`.
    #[wasm_bindgen(js_name = clearTimer)]
    fn clear_timer(id: &JsValue);
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = crypto, js_name = getRandomValues, catch)]
    fn get_random_values(destination: &mut [u8]) -> Result<JsValue, JsValue>;
}

/// A `setTimeout` that is cancelled when dropped.
pub(crate) struct Timeout {
    id: JsValue,
    _callback: Closure<dyn FnMut(JsValue)>,
}

impl Timeout {
    pub(crate) fn new(ms: u32, callback: impl FnOnce() + 'static) -> Self {
        Self::boxed(ms, Box::new(callback))
    }

    // One instantiation of the closure glue for every timer: each distinct closure type
    // given to `Closure::once` costs its own kilobyte or two of wasm.
    fn boxed(ms: u32, callback: Box<dyn FnOnce()>) -> Self {
        let callback = Closure::once(move |_: JsValue| callback());
        let ms = i32::try_from(ms).unwrap_or(i32::MAX);
        let id = set_timer(callback.as_ref().unchecked_ref(), ms);
        Self {
            id,
            _callback: callback,
        }
    }
}

impl Drop for Timeout {
    fn drop(&mut self) {
        clear_timer(&self.id);
    }
}

/// `crypto.getRandomValues`, the platform CSPRNG (Web Crypto; also global in Node ≥ 19).
/// Made only by [`WebCryptoRng::new`], which checks that the platform has one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WebCryptoRng(());

impl WebCryptoRng {
    /// `None` where `crypto.getRandomValues` is missing or refuses to work.
    pub(crate) fn new() -> Option<Self> {
        let mut rng = Self(());
        rng.try_fill_bytes(&mut [0; 1]).ok().map(|()| rng)
    }
}

/// Web Crypto fills at most 65,536 bytes per call.
const MAX_CHUNK: usize = 65_536;

impl RngCore for WebCryptoRng {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }

    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        // `new` found a working CSPRNG; should it stop working, no key may be made from
        // weak bytes, so stop.
        if self.try_fill_bytes(dest).is_err() {
            core::arch::wasm32::unreachable();
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Error> {
        for chunk in dest.chunks_mut(MAX_CHUNK) {
            get_random_values(chunk).map_err(|_| Error::from(UNAVAILABLE))?;
        }
        Ok(())
    }
}

impl CryptoRng for WebCryptoRng {}

/// rand_core's custom error codes start at `Error::CUSTOM_START` (non-zero; the fallback only
/// keeps the constant free of a panic path).
const UNAVAILABLE: core::num::NonZeroU32 = match core::num::NonZeroU32::new(Error::CUSTOM_START) {
    Some(code) => code,
    None => core::num::NonZeroU32::MAX,
};
