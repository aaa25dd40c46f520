//! The plain objects the page sees: `onEvent` events and the key exchange result. None
//! carries key material; the shapes are typed in `types.rs` (`GuestEvent`).

use crate::prelude::*;

use wasm_bindgen::JsValue;

use super::error::participant_ref;
use super::js::object;
use crate::exchange::{Delivered, DropReason, ExchangeFailure, ParticipantId, Progress};

fn progress_event(stage: &str, fields: &[(&str, JsValue)]) -> JsValue {
    let mut all = alloc::vec![("type", JsValue::from("progress")), ("stage", stage.into())];
    all.extend(fields.iter().cloned());
    object(&all).into()
}

fn participant_field(p: &ParticipantId) -> (&'static str, JsValue) {
    ("participant", participant_ref(p))
}

/// `{type: "progress", stage: "registering"}`.
pub(crate) fn registering() -> JsValue {
    progress_event("registering", &[])
}

/// A progress event of the exchange.
pub(crate) fn progress(p: &Progress) -> JsValue {
    match p {
        Progress::ListingParticipants => progress_event("listing_participants", &[]),
        Progress::FetchingBundle { participant } => {
            progress_event("fetching_bundle", &[participant_field(participant)])
        }
        Progress::WaitingFor { participant } => {
            progress_event("waiting_for", &[participant_field(participant)])
        }
        Progress::Rotating { from, to, reason } => progress_event(
            "rotating",
            &[
                ("from", participant_ref(from)),
                ("to", participant_ref(to)),
                ("reason", reason.code().into()),
                ("detail", reason.to_string().into()),
            ],
        ),
        Progress::KeyReceived { from, key_index } => progress_event(
            "key_received",
            &[participant_field(from), ("keyIndex", (*key_index).into())],
        ),
    }
}

/// `{type: "progress", stage: "failed", message, error}`.
pub(crate) fn failed(failure: &ExchangeFailure, error: &JsValue) -> JsValue {
    progress_event(
        "failed",
        &[
            ("message", failure.to_string().into()),
            ("error", error.clone()),
        ],
    )
}

/// `{type: "dropped", reason, detail}`: an input was refused and nothing changed.
pub(crate) fn dropped(reason: &DropReason) -> JsValue {
    object(&[
        ("type", "dropped".into()),
        ("reason", reason.code().into()),
        ("detail", reason.to_string().into()),
    ])
    .into()
}

/// `{type: "storage_fallback", reason}`: state now lives in memory only.
pub(crate) fn storage_fallback(reason: &str) -> JsValue {
    object(&[
        ("type", "storage_fallback".into()),
        ("reason", reason.into()),
    ])
    .into()
}

/// `{type: "duplicate_tab", message}`: the stored state is in use by another open tab (a
/// duplicated tab copies it), so this tab made its own identity and registers anew.
pub(crate) fn duplicate_tab() -> JsValue {
    object(&[
        ("type", "duplicate_tab".into()),
        (
            "message",
            "another open tab uses this tab's stored keys; this tab made its own".into(),
        ),
    ])
    .into()
}

/// `{type: "key", from, keyIndex, keyCheckValue}`: the key provider holds a new key.
pub(crate) fn key(delivered: &Delivered) -> JsValue {
    object(&[
        ("type", "key".into()),
        ("from", participant_ref(&delivered.from)),
        ("keyIndex", delivered.key_index.into()),
        ("keyCheckValue", delivered.check_value.as_str().into()),
    ])
    .into()
}

/// `{type: "error", code, message}`: a problem outside any pending call.
pub(crate) fn error(error: &JsValue) -> JsValue {
    object(&[
        ("type", "error".into()),
        ("code", super::js::get(error, "code")),
        ("message", super::js::get(error, "message")),
        ("error", error.clone()),
    ])
    .into()
}

/// The value `exchangeKey()` resolves with (the one place it is built).
pub(crate) fn key_result(delivered: &Delivered, elapsed_ms: f64) -> JsValue {
    object(&[
        ("from", participant_ref(&delivered.from)),
        ("keyIndex", delivered.key_index.into()),
        ("keyCheckValue", delivered.check_value.as_str().into()),
        ("elapsedMs", elapsed_ms.into()),
    ])
    .into()
}
