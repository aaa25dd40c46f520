//! Small helpers for reading and building plain JS objects.

use js_sys::{Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsError, JsValue};

pub(crate) fn get(obj: &JsValue, key: &str) -> Result<JsValue, JsError> {
    Reflect::get(obj, &JsValue::from_str(key))
        .map_err(|_| JsError::new(&format!("cannot read `{key}`")))
}

pub(crate) fn get_u32(obj: &JsValue, key: &str) -> Result<u32, JsError> {
    let v = get(obj, key)?;
    match v.as_f64() {
        Some(n) if n.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&n) => Ok(n as u32),
        _ => Err(JsError::new(&format!(
            "`{key}` must be a non-negative integer"
        ))),
    }
}

pub(crate) fn get_bytes(obj: &JsValue, key: &str) -> Result<Vec<u8>, JsError> {
    let v = get(obj, key)?;
    if v.is_instance_of::<Uint8Array>() {
        Ok(Uint8Array::from(v).to_vec())
    } else {
        Err(JsError::new(&format!("`{key}` must be a Uint8Array")))
    }
}

pub(crate) fn set(obj: &Object, key: &str, value: impl Into<JsValue>) {
    // Setting a property on a plain, non-frozen object cannot fail.
    let _ = Reflect::set(obj, &JsValue::from_str(key), &value.into());
}

pub(crate) fn bytes(data: &[u8]) -> Uint8Array {
    Uint8Array::from(data)
}
