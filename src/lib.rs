//! Signal guest SDK: lets an unauthenticated browser guest obtain an end-to-end encrypted
//! LiveKit meeting key from a participant over the Signal protocol.
//!
//! - [`signal`]: the Signal protocol engine, v3 (X3DH) and v4 (PQXDH, SPQR), pure Rust, no
//!   I/O.
//! - [`exchange`]: the guest key exchange and the join around it, as sans-I/O state machines.
//! - `web` (wasm32 only): the JavaScript API, browser storage, fetch, timers, socket.

#![no_std]
#![deny(unsafe_code)]

extern crate alloc;
// Natively (tests, fuzzing, the load generator) std is there anyway. The shipped wasm leaves
// it out, and with it std's panic and formatting runtime (docs/performance.md, "Size").
#[cfg(any(not(target_arch = "wasm32"), feature = "std", test))]
#[cfg_attr(test, macro_use)]
extern crate std;

mod prelude;

/// Unit tests free memory through an allocator that can check freed blocks for secrets.
#[cfg(all(test, not(target_arch = "wasm32")))]
#[path = "../tests/support/scanning_alloc.rs"]
mod scanning_alloc;
#[cfg(all(test, not(target_arch = "wasm32")))]
#[global_allocator]
static TEST_ALLOCATOR: scanning_alloc::Scanning = scanning_alloc::Scanning;

pub mod exchange;
pub mod signal;

#[cfg(target_arch = "wasm32")]
pub mod web;

/// A free-list allocator a few KB smaller than the default dlmalloc; the SDK allocates
/// little and wasm here is single-threaded (no shared memory), which `AssumeSingleThreaded`
/// relies on.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
#[allow(unsafe_code)]
static ALLOCATOR: lol_alloc::AssumeSingleThreaded<lol_alloc::FreeListAllocator> =
    // SAFETY: the module is built without the atomics feature, so it runs on one thread.
    unsafe { lol_alloc::AssumeSingleThreaded::new(lol_alloc::FreeListAllocator::new()) };

/// The shipped wasm aborts on panic without formatting a message (release builds use
/// `panic = "abort"` anyway, so no message would reach anyone). Panics are bugs: inputs from
/// the network, storage or JavaScript are checked and rejected with typed errors first.
#[cfg(all(target_arch = "wasm32", not(feature = "std"), not(test)))]
#[panic_handler]
fn abort_on_panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}
