//! The plain objects the page sees: `onEvent` events and the key exchange result. None
//! carries key material; the shapes are typed in `types.rs` (`GuestEvent`). Every event has a
//! `message` a page can show as it is.

use crate::prelude::*;

use wasm_bindgen::JsValue;

use super::error::participant_ref;
use js_sys::Object;

use super::js::{object, set};
use crate::exchange::join::Waiting;
use crate::exchange::messages::encode_base64;
use crate::exchange::{Delivered, DropReason, ExchangeFailure, ParticipantId, Progress};

fn progress_event(stage: &str, message: &str, fields: &[(&str, JsValue)]) -> JsValue {
    let mut all = alloc::vec![
        ("type", JsValue::from("progress")),
        ("stage", stage.into()),
        ("message", message.into()),
    ];
    all.extend(fields.iter().cloned());
    object(&all).into()
}

fn participant_field(p: &ParticipantId) -> (&'static str, JsValue) {
    ("participant", participant_ref(p))
}

/// `{type: "progress", stage: "registering"}`.
pub(crate) fn registering() -> JsValue {
    progress_event("registering", "Registering with the meeting server", &[])
}

/// A progress event of the exchange.
// Out of line, for the compressed size (see `driver::step`).
#[inline(never)]
pub(crate) fn progress(p: &Progress) -> JsValue {
    match p {
        Progress::ListingParticipants => progress_event(
            "listing_participants",
            "Looking for participants who can send the key",
            &[],
        ),
        Progress::FetchingBundle { participant } => progress_event(
            "fetching_bundle",
            &format!("Setting up a secure session with {participant}"),
            &[participant_field(participant)],
        ),
        Progress::WaitingFor { participant } => progress_event(
            "waiting_for",
            &format!("Asking {participant} for the meeting key"),
            &[participant_field(participant)],
        ),
        Progress::Rotating { from, to, reason } => progress_event(
            "rotating",
            &format!("{from}: {reason}; asking {to}"),
            &[
                ("from", participant_ref(from)),
                ("to", participant_ref(to)),
                ("reason", reason.code().into()),
                ("detail", reason.to_string().into()),
            ],
        ),
        Progress::Hedging {
            waiting_for,
            also_asking,
        } => progress_event(
            "hedging",
            &format!("{waiting_for} has not answered yet; asking {also_asking} as well"),
            &[
                participant_field(waiting_for),
                ("to", participant_ref(also_asking)),
            ],
        ),
        Progress::KeyReceived { from, key_index } => progress_event(
            "key_received",
            &format!("Received the meeting key from {from}"),
            &[participant_field(from), ("keyIndex", (*key_index).into())],
        ),
    }
}

/// `{type: "progress", stage: "failed", message, error}`.
#[inline(never)]
pub(crate) fn failed(failure: &ExchangeFailure, error: &JsValue) -> JsValue {
    let message = super::js::get(error, "message")
        .as_string()
        .unwrap_or_default();
    progress_event(
        "failed",
        &message,
        &[
            ("detail", failure.to_string().into()),
            ("error", error.clone()),
        ],
    )
}

/// `{type: "dropped", reason, detail}`: an input was refused and nothing changed.
#[inline(never)]
pub(crate) fn dropped(reason: &DropReason) -> JsValue {
    object(&[
        ("type", "dropped".into()),
        ("reason", reason.code().into()),
        ("detail", reason.to_string().into()),
        (
            "message",
            "Ignored a message that did not pass the checks".into(),
        ),
    ])
    .into()
}

/// `{type: "storage_fallback", reason}`: state now lives in memory only.
pub(crate) fn storage_fallback(reason: &str) -> JsValue {
    object(&[
        ("type", "storage_fallback".into()),
        ("reason", reason.into()),
        (
            "message",
            "This tab's storage cannot be used; keys are kept in memory until the page closes"
                .into(),
        ),
    ])
    .into()
}

/// `{type: "admitted"}`: the host let the guest in.
pub(crate) fn admitted() -> JsValue {
    object(&[
        ("type", "admitted".into()),
        ("message", "The host let you in".into()),
    ])
    .into()
}

/// `{type: "session_lost"}`: the server forgot this guest; the SDK registers it again.
pub(crate) fn session_lost() -> JsValue {
    object(&[
        ("type", "session_lost".into()),
        (
            "message",
            "The meeting server lost your registration; registering again".into(),
        ),
    ])
    .into()
}

/// `{type: "registered", sessionId}`: registered again after [`session_lost`].
pub(crate) fn registered(session_id: &str) -> JsValue {
    object(&[
        ("type", "registered".into()),
        ("sessionId", session_id.into()),
        ("message", "Registered again with the meeting server".into()),
    ])
    .into()
}

/// `{type: "progress", stage: "waiting_for_connection" | "waiting_for_admission"}`.
#[inline(never)]
pub(crate) fn waiting(waiting: Waiting) -> JsValue {
    match waiting {
        Waiting::Connection => progress_event(
            "waiting_for_connection",
            "Connecting to the meeting server",
            &[],
        ),
        Waiting::Admission => progress_event(
            "waiting_for_admission",
            "Waiting for the host to let you in",
            &[],
        ),
    }
}

/// `{type: "duplicate_tab", message}`: the stored state is in use by another open tab (a
/// duplicated tab copies it), or may be (the browser cannot say), so this tab made its own
/// identity and registers anew.
pub(crate) fn duplicate_tab() -> JsValue {
    object(&[
        ("type", "duplicate_tab".into()),
        (
            "message",
            "another open tab may use this tab's stored keys; this tab made its own".into(),
        ),
    ])
    .into()
}

/// `{type: "key", from, keyIndex, keyCheckValue}`: the key provider holds a new key.
pub(crate) fn key(delivered: &Delivered) -> JsValue {
    let event = object(&[
        ("type", "key".into()),
        ("message", "The meeting key is in place".into()),
    ]);
    set_delivered(&event, delivered);
    event.into()
}

/// The fields `key` events and `exchangeKey()`'s result share, in their order.
fn set_delivered(out: &Object, delivered: &Delivered) {
    set(out, "from", participant_ref(&delivered.from));
    set(out, "keyIndex", delivered.key_index);
    set(out, "keyCheckValue", delivered.check_value.as_str());
    set(out, "safetyNumber", delivered.safety_number.as_str());
    set(out, "shortCode", short_code(delivered));
    let identity = encode_base64(&delivered.identity_key.serialize());
    set(out, "identityKey", identity.as_str());
    set(out, "sessionVersion", delivered.session_version);
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

/// `{digits, emoji, emojiNames}`, or `null` when the sender did not take part.
fn short_code(delivered: &Delivered) -> JsValue {
    let Some(code) = &delivered.short_code else {
        return JsValue::NULL;
    };
    let emoji: js_sys::Array = code.emoji.iter().map(|&i| JsValue::from(i)).collect();
    object(&[
        ("digits", code.digits.as_str().into()),
        ("emoji", emoji.into()),
    ])
    .into()
}

/// The value `exchangeKey()` resolves with (the one place it is built).
pub(crate) fn key_result(delivered: &Delivered, elapsed_ms: f64) -> JsValue {
    let result = Object::new();
    set_delivered(&result, delivered);
    set(&result, "elapsedMs", elapsed_ms);
    result.into()
}
