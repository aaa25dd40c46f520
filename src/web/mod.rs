//! The only code that touches JavaScript: wasm-bindgen exports, sessionStorage, fetch,
//! timers, the page's Socket.IO socket and LiveKit's key provider.
//!
//! - `guest`: the `GuestKeyExchange` class (converts and delegates);
//! - `config`: the configuration object, checked; `bootstrap`: storage and keys at start;
//! - `registration`, `driver` (the exchange), `delivery` (the key provider), `token`:
//!   one operation each; `instance`: the state they share; `events`: what the page sees;
//! - `error`: the error codes and one error type per operation;
//! - `http`, `socket`, `storage`, `platform`, `deferred`, `js`: thin wrappers over the
//!   browser; `interop_binding`: the raw engine for the interop suite (feature `interop`).

mod bootstrap;
mod config;
mod deferred;
mod delivery;
mod driver;
mod error;
mod error_code;
mod events;
mod guest;
mod http;
mod instance;
mod joining;
mod js;
mod listeners;
mod platform;
mod registration;
mod socket;
mod storage;
mod tab;
mod token;
mod types;

pub use error_code::{guest_error_code, GuestErrorCode};
pub use guest::GuestKeyExchange;
pub use storage::StorageLike;

#[cfg(feature = "interop")]
pub mod interop_binding;
