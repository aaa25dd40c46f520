//! The only code that touches JavaScript: wasm-bindgen exports and browser APIs.

mod js;

#[cfg(feature = "interop")]
pub mod engine;
