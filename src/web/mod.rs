//! The only code that touches JavaScript: wasm-bindgen exports, sessionStorage, fetch,
//! timers, the page's Socket.IO socket and LiveKit's key provider.

mod client;
mod error;
mod http;
mod js;
mod platform;
mod storage;
mod types;

pub use client::GuestKeyExchange;
pub use storage::StorageLike;

#[cfg(feature = "interop")]
pub mod engine;
