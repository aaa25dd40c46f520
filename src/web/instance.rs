//! One guest's state in the page, shared by the class and its callbacks.
//!
//! All mutable state sits in one `RefCell`, borrowed only briefly and never across a call
//! into JavaScript, so callbacks that re-enter the SDK (an `onEvent` handler calling
//! `leave()`, say) are safe.

use crate::prelude::*;

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::rc::Rc;
use core::cell::RefCell;

use wasm_bindgen::prelude::*;
use zeroize::Zeroizing;

use super::config::Config;
use super::deferred::Deferred;
use super::error::ExchangeKeyError;
use super::error::UsageError;
use super::events;
use super::js::now_ms;
use super::listeners::{self, Listener};
use super::platform::{Timeout, WebCryptoRng};
use super::storage::{GuestStorage, STATE_ENTRY};
use super::tab::{self, TabClaim};
use crate::exchange::join::{Join, JoinEvent, JoinFailure};
use crate::exchange::messages::encode_base64;
use crate::exchange::{Event, Exchange, GuestState, Millis};

#[wasm_bindgen(module = "/src/web/shim.js")]
extern "C" {
    /// Whether the module has trapped.
    fn stopped() -> bool;
}

/// Where this guest is. Each state carries what only it has, so no fact is kept twice.
pub(crate) enum Lifecycle {
    /// Keys made or loaded; not registered with the server yet.
    Unregistered(GuestState),
    /// `register()` is waiting for the server.
    Registering(GuestState),
    /// Registered: the exchange holds the Signal state and the server's session id.
    Registered(Box<Exchange>),
    /// After `leave()`: everything dropped (and zeroized).
    Left,
}

impl Lifecycle {
    pub(crate) fn state(&self) -> Option<&GuestState> {
        match self {
            Self::Unregistered(state) | Self::Registering(state) => Some(state),
            Self::Registered(exchange) => Some(exchange.state()),
            Self::Left => None,
        }
    }

    pub(crate) fn exchange(&self) -> Option<&Exchange> {
        match self {
            Self::Registered(exchange) => Some(exchange),
            _ => None,
        }
    }
}

/// What the machines are fed, one at a time.
pub(crate) enum Input {
    /// For the key exchange.
    Exchange(Event),
    /// For the join.
    Join(JoinEvent),
    /// `exchangeKey()`: the join starts a call, settled later through this promise.
    Call(Deferred),
    /// The single timer fired: let both machines check their deadlines.
    Deadline,
}

pub(crate) struct Instance {
    pub config: Config,
    pub storage: GuestStorage,
    pub lifecycle: Lifecycle,
    pub rng: WebCryptoRng,
    /// How long making the identity and prekeys took, if this page made them.
    pub key_generation_ms: Option<f64>,
    /// The socket handlers, until `leave()`.
    pub listeners: Vec<Listener>,
    /// Connection, handshake, lobby, admission: when the exchange may start, and the one
    /// place an `exchangeKey()` call ends.
    pub join: Join,
    /// One timer, always at the earlier of the two machines' deadlines.
    pub timer: Option<(Millis, Timeout)>,
    /// The running `exchangeKey()` call's promise.
    pub pending: Option<Deferred>,
    pub queue: VecDeque<Input>,
    pub dispatching: bool,
    /// Events raised while inputs are being fed: the page hears them once every queued
    /// input's actions are carried out, so that its handlers never hold up a send.
    pub outbox: VecDeque<JsValue>,
    /// Whether this tab may use the stored state (see `tab.rs`).
    pub tab: TabClaim,
    /// Releases this tab's Web Lock.
    pub lock_release: Option<js_sys::Function>,
}

/// A guest dropped without `leave()` (the page called `free()`, or tests drop it) still gives
/// its tab lock back, as the browser does when the page goes away.
impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(release) = self.lock_release.take() {
            let _ = release.call0(&JsValue::NULL);
        }
    }
}

pub(crate) type Shared = Rc<RefCell<Instance>>;

/// Runs `f` on the instance if it is usable (not left, not borrowed).
pub(crate) fn with_usable<T>(
    shared: &Shared,
    f: impl FnOnce(&mut Instance) -> T,
) -> Result<T, UsageError> {
    // A module that trapped left its state mid-change (a borrow that is never released is
    // the usual sign): nothing may use it any more.
    if stopped() {
        return Err(UsageError::Stopped);
    }
    let mut instance = shared.try_borrow_mut().map_err(|_| UsageError::Stopped)?;
    if matches!(instance.lifecycle, Lifecycle::Left) {
        return Err(UsageError::Left);
    }
    Ok(f(&mut instance))
}

pub(crate) fn has_left(shared: &Shared) -> bool {
    shared
        .try_borrow()
        .map_or(true, |i| matches!(i.lifecycle, Lifecycle::Left))
}

/// Calls the page's `onEvent` (outside any borrow; its exceptions are ignored).
/// Inside the driver's loop the event waits in the outbox (`driver::feed` hands it over).
pub(crate) fn emit(shared: &Shared, event: JsValue) {
    let (callback, debug) = match shared.try_borrow_mut() {
        Ok(mut i) if !matches!(i.lifecycle, Lifecycle::Left) => {
            if i.dispatching {
                i.outbox.push_back(event);
                return;
            }
            (i.config.on_event.clone(), i.config.debug)
        }
        _ => return,
    };
    if debug {
        web_sys::console::debug_2(&"[signal-guest]".into(), &event);
    }
    if let Some(callback) = callback {
        let _ = callback.call1(&JsValue::NULL, &event);
    }
}

/// Writes the Signal state to storage; a storage failure moves it to memory (and says so).
pub(crate) fn persist(shared: &Shared) {
    let failure = {
        let Ok(mut instance) = shared.try_borrow_mut() else {
            return;
        };
        let Some(bytes) = instance.lifecycle.state().map(GuestState::to_bytes) else {
            return;
        };
        let encoded = Zeroizing::new(encode_base64(&bytes));
        instance.storage.set(STATE_ENTRY, &encoded).err()
    };
    if let Some(reason) = failure {
        emit(shared, events::storage_fallback(&reason.0));
    }
}

/// `leave()`: stops listening, cancels the timer, wipes this meeting's stored entries and
/// drops all key material; a running `exchangeKey()` rejects with `LEFT`.
// Out of line, for the compressed size (see `driver::step`).
#[inline(never)]
pub(crate) fn leave(shared: &Shared) {
    let (socket, listener, settled) = {
        let Ok(mut instance) = shared.try_borrow_mut() else {
            return;
        };
        if matches!(instance.lifecycle, Lifecycle::Left) {
            return;
        }
        let settled = instance.join.handle(JoinEvent::Leave, now_ms());
        // Dropping the exchange zeroizes every private key, chain key and message key.
        instance.lifecycle = Lifecycle::Left;
        instance.timer = None;
        instance.queue.clear();
        instance.storage.wipe();
        (
            instance.config.socket.clone(),
            core::mem::take(&mut instance.listeners),
            instance.pending.take().filter(|_| !settled.is_empty()),
        )
    };
    listeners::stop_all(&socket, listener);
    if let Some(deferred) = settled {
        deferred.settle(Err(ExchangeKeyError::from(JoinFailure::Left).into()));
    }
    // Calls still waiting for the tab check now find the guest gone.
    for waiter in tab::release(shared) {
        waiter();
    }
}
