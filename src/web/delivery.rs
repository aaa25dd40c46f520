//! Handing the key to the page's key provider. The key counts as delivered only once
//! `setKey` (and the promise it returns, if any) has succeeded; if it fails, the exchange
//! is told, so that the next `exchangeKey()` asks again instead of reporting a key that
//! nobody holds.

use alloc::rc::Rc;

use js_sys::{Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use zeroize::Zeroizing;

use super::config::KeyProfile;
use super::driver::feed;
use super::error::{ExchangeKeyError, GuestError};
use super::events;
use super::instance::{emit, has_left, with_usable, Input, Shared};
use crate::exchange::join::{JoinEvent, JoinFailure};
use crate::exchange::messages::encode_base64;
use crate::exchange::{Delivered, Event, MeetingKey};

#[wasm_bindgen(module = "/src/web/shim.js")]
extern "C" {
    #[wasm_bindgen(js_name = whenSettled)]
    fn when_settled(value: &JsValue, done: JsValue);
}

/// Calls `setKey` with the key in the configured form, then wipes the Rust copies (the
/// copy JavaScript holds belongs to the key provider).
// Out of line, for the compressed size (see `driver::step`).
#[inline(never)]
pub(crate) fn deliver_key(shared: &Shared, key: MeetingKey, delivered: Delivered) {
    let Ok((provider, profile)) = with_usable(shared, |instance| {
        (
            instance.config.key_provider.clone(),
            instance.config.key_profile,
        )
    }) else {
        return;
    };
    let material: JsValue = match profile {
        KeyProfile::Base64 => {
            let encoded = Zeroizing::new(encode_base64(key.expose_bytes()));
            JsValue::from_str(&encoded)
        }
        KeyProfile::Raw => Uint8Array::from(&key.expose_bytes()[..]).buffer().into(),
    };
    drop(key);
    let applied = match provider {
        None => JsValue::UNDEFINED,
        Some(provider) => match provider.set_key(&material, u32::from(delivered.key_index)) {
            Ok(result) => result,
            Err(e) => Promise::reject(&e).into(),
        },
    };
    drop(material);
    let weak = Rc::downgrade(shared);
    let done = move |ok: JsValue| {
        if let Some(shared) = weak.upgrade() {
            key_applied(&shared, ok.as_bool() == Some(true));
        }
    };
    // Called exactly once, which frees the closure.
    when_settled(&applied, Closure::once_into_js(done));
}

/// After `setKey` (and its promise, if it returned one) settled.
#[inline(never)]
fn key_applied(shared: &Shared, ok: bool) {
    if has_left(shared) {
        return;
    }
    if ok {
        // The safety number and the short code now that the key is in the provider (they
        // are not on the way there); the reveal goes out with them.
        feed(shared, Input::Exchange(Event::KeyHandedOver));
        let event = with_usable(shared, |i| {
            i.lifecycle.exchange()?.delivered().map(events::key)
        });
        if let Ok(Some(event)) = event {
            emit(shared, event);
        }
        feed(shared, Input::Join(JoinEvent::KeyDelivered));
    } else {
        feed(shared, Input::Exchange(Event::DeliveryFailed));
        let error: JsValue =
            GuestError::from(ExchangeKeyError::Ended(JoinFailure::KeyRefused)).into();
        emit(shared, events::error(&error));
        feed(shared, Input::Join(JoinEvent::KeyRefused));
    }
}
