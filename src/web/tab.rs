//! One live tab per stored identity.
//!
//! Browsers copy `sessionStorage` into a duplicated tab. Two tabs holding the same Signal
//! state would send with the same chain keys: the same message key and IV twice. Each tab
//! therefore holds a Web Lock named after its identity for as long as it lives. A tab that
//! finds the lock taken is a copy: it makes its own identity and prekeys (and registers them
//! anew) before anything is sent. `register()` and `exchangeKey()` wait for the answer,
//! which the browser gives within milliseconds. Where Web Locks are missing (browsers
//! before Safari 15.4, Chrome 69, Firefox 96; Node) the check fails closed: a state read
//! back from storage is not used, and the tab makes its own. A lost registration's new
//! identity takes a lock of its own too ([`reclaim`]).

use crate::prelude::*;

use alloc::boxed::Box;
use alloc::rc::Rc;

use js_sys::Function;
use wasm_bindgen::prelude::*;

use super::events;
use super::instance::{emit, persist, Lifecycle, Shared};
use crate::exchange::join::JoinEvent;
use crate::exchange::GuestState;

#[wasm_bindgen(module = "/src/web/shim.js")]
extern "C" {
    #[wasm_bindgen(js_name = claimLock)]
    fn claim_lock(name: &str, grace_ms: u32, done: JsValue) -> Function;
}

/// How long a lock that is being given back (a guest of this page that just left) may take
/// before it counts as held by another tab; a duplicated tab waits this long once.
const RELEASE_GRACE_MS: u32 = 250;

/// A call waiting for the claim.
pub(crate) type Waiter = Box<dyn FnOnce()>;

/// Whether this tab may use its stored state yet.
pub(crate) enum TabClaim {
    /// The browser has not answered; these calls continue once it has.
    Pending(Vec<Waiter>),
    /// This tab holds the lock (or Web Locks are unavailable).
    Held,
}

// Out of line, for the compressed size (see `driver::step`).
#[inline(never)]
fn lock_name(meeting_id: &str, state: &GuestState) -> String {
    let identity = state.store.identity_key().serialize();
    let mut name = String::from("signal-guest/");
    name.push_str(meeting_id);
    name.push('/');
    // Lowercase hex, two digits a byte, written without the formatter.
    for b in identity.iter().skip(1).take(16) {
        for nibble in [b >> 4, b & 15] {
            name.push(char::from(b"0123456789abcdef"[usize::from(nibble)]));
        }
    }
    name
}

/// Asks the browser for this tab's lock; calls waiting in `register()` or `exchangeKey()`
/// continue when it answers. `stored`: the state was read back from storage (it may be a
/// duplicated tab's copy), not made in this page.
pub(crate) fn claim(shared: &Shared, stored: bool) {
    let name = {
        let Ok(instance) = shared.try_borrow() else {
            return;
        };
        match instance.lifecycle.state() {
            Some(state) => lock_name(&instance.config.meeting_id, state),
            None => return,
        }
    };
    let weak = Rc::downgrade(shared);
    let done = Closure::once_into_js(move |held: JsValue| {
        if let Some(shared) = weak.upgrade() {
            claimed(&shared, held.as_bool(), stored);
        }
    });
    let release = claim_lock(&name, RELEASE_GRACE_MS, done);
    if let Ok(mut instance) = shared.try_borrow_mut() {
        instance.lock_release = Some(release);
    }
}

#[inline(never)]
fn claimed(shared: &Shared, held: Option<bool>, stored: bool) {
    // Without an answer (no Web Locks: an old browser, a page that is not a secure context),
    // a state read back from storage may be a duplicated tab's copy: it is not used.
    if held == Some(false) || (held.is_none() && stored) {
        return start_over_as_a_copy(shared);
    }
    let waiters = match shared.try_borrow_mut() {
        Ok(mut instance) => match core::mem::replace(&mut instance.tab, TabClaim::Held) {
            TabClaim::Pending(waiters) => waiters,
            TabClaim::Held => Vec::new(),
        },
        Err(_) => return,
    };
    for waiter in waiters {
        waiter();
    }
}

/// Another live tab holds this identity: make a new one, forget the copied registration,
/// and claim the new identity's lock (the calls keep waiting).
#[inline(never)]
fn start_over_as_a_copy(shared: &Shared) {
    {
        let Ok(mut instance) = shared.try_borrow_mut() else {
            return;
        };
        if matches!(instance.lifecycle, Lifecycle::Left) {
            return;
        }
        let mut rng = instance.rng;
        let started = js_sys::Date::now();
        let store = super::bootstrap::fresh_keys(&mut rng, instance.config.profile());
        // Dropping the copied state wipes its keys (in this tab; the other tab keeps them).
        instance.lifecycle = Lifecycle::Unregistered(GuestState::new(store));
        instance.key_generation_ms = Some(js_sys::Date::now() - started);
        instance.storage.wipe();
    }
    persist(shared);
    super::driver::feed(
        shared,
        super::instance::Input::Join(JoinEvent::Unregistered),
    );
    emit(shared, events::duplicate_tab());
    claim(shared, false);
}

/// After the SDK replaced this tab's identity (a lost registration): the old identity's
/// lock is let go and the new one's claimed; the re-registration waits for it.
pub(crate) fn reclaim(shared: &Shared) {
    let waiters = release(shared);
    if let Ok(mut instance) = shared.try_borrow_mut() {
        instance.tab = TabClaim::Pending(waiters);
    }
    claim(shared, false);
}

/// Runs `then` once this tab may use its state: now, or when the browser has answered.
pub(crate) fn when_claimed(shared: &Shared, then: impl FnOnce() + 'static) {
    let run_now = match shared.try_borrow_mut() {
        Ok(mut instance) => match &mut instance.tab {
            TabClaim::Pending(waiters) => {
                waiters.push(Box::new(then));
                return;
            }
            TabClaim::Held => true,
        },
        Err(_) => true,
    };
    if run_now {
        then();
    }
}

/// On `leave()`: releases the lock and hands back the calls still waiting (they then find
/// the guest gone and reject).
#[inline(never)]
pub(crate) fn release(shared: &Shared) -> Vec<Waiter> {
    let Ok(mut instance) = shared.try_borrow_mut() else {
        return Vec::new();
    };
    if let Some(release) = instance.lock_release.take() {
        let _ = release.call0(&JsValue::NULL);
    }
    match core::mem::replace(&mut instance.tab, TabClaim::Held) {
        TabClaim::Pending(waiters) => waiters,
        TabClaim::Held => Vec::new(),
    }
}
