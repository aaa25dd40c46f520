//! Signal guest SDK: lets an unauthenticated browser guest obtain an end-to-end encrypted
//! LiveKit meeting key from a participant over the Signal protocol.
//!
//! - [`signal`]: the Signal v3 protocol engine (pure Rust, no I/O).
//! - [`exchange`]: the guest key exchange as a sans-I/O state machine.
//! - `web` (wasm32 only): the JavaScript API, browser storage, fetch, timers, socket.

#![forbid(unsafe_code)]

pub mod exchange;
pub mod signal;

#[cfg(target_arch = "wasm32")]
pub mod web;
