//! Small helpers for reading and building plain JS values without panicking.

use crate::prelude::*;

use js_sys::{Function, Object, Reflect, Uint8Array, JSON};
use wasm_bindgen::{JsCast, JsValue};

pub(crate) fn get(obj: &JsValue, key: &str) -> JsValue {
    Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

pub(crate) fn is_absent(v: &JsValue) -> bool {
    v.is_undefined() || v.is_null()
}

/// A non-negative integer no larger than `max`, or `None`.
pub(crate) fn as_count(v: &JsValue, max: f64) -> Option<u64> {
    v.as_f64()
        .filter(|n| (0.0..=max).contains(n) && *n == (*n as u64) as f64)
        .map(|n| n as u64)
}

#[cfg(feature = "interop")]
pub(crate) fn get_bytes(obj: &JsValue, key: &str) -> Option<Vec<u8>> {
    get(obj, key)
        .dyn_into::<Uint8Array>()
        .ok()
        .map(|a| a.to_vec())
}

pub(crate) fn function(obj: &JsValue, key: &str) -> Option<Function> {
    get(obj, key).dyn_into::<Function>().ok()
}

pub(crate) fn set(obj: &Object, key: &str, value: impl Into<JsValue>) {
    // Setting a property on a fresh plain object cannot fail.
    let _ = Reflect::set(obj, &JsValue::from_str(key), &value.into());
}

pub(crate) fn object(fields: &[(&str, JsValue)]) -> Object {
    let out = Object::new();
    for (k, v) in fields {
        set(&out, k, v.clone());
    }
    out
}

pub(crate) fn bytes(data: &[u8]) -> Uint8Array {
    Uint8Array::from(data)
}

/// `value` as JSON text, if that is at most `max_units` UTF-16 units long (checked before
/// the text is copied into the module).
pub(crate) fn stringify(value: &JsValue, max_units: usize) -> Option<String> {
    JSON::stringify(value)
        .ok()
        .filter(|s| s.length() as usize <= max_units)
        .and_then(|s| s.as_string())
}

pub(crate) fn parse(text: &str) -> Result<JsValue, JsValue> {
    JSON::parse(text)
}

pub(crate) fn now_ms() -> u64 {
    js_sys::Date::now().max(0.0) as u64
}
