//! `GuestKeyExchange`: the class the prejoin page uses. It converts and delegates; the
//! work is in the modules it calls.

use crate::prelude::*;

use js_sys::Uint8Array;
use wasm_bindgen::prelude::*;

use super::bootstrap;
use super::config::Config;
use super::deferred::promise;
use super::driver;
use super::error::{GuestError, GuestErrorCode, SetupError};
use super::instance::{self, Shared};
use super::js::bytes;
use super::platform::WebCryptoRng;
use super::registration;
use super::storage::{GuestStorage, StorageLike};
use super::tab;
use super::token;
use crate::exchange::MeetingKey;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(typescript_type = "GuestConfig")]
    pub type GuestConfig;
    #[wasm_bindgen(typescript_type = "Promise<RegistrationResult>")]
    pub type RegistrationPromise;
    #[wasm_bindgen(typescript_type = "Promise<KeyExchangeResult>")]
    pub type KeyExchangePromise;
    #[wasm_bindgen(typescript_type = "Promise<LiveKitToken>")]
    pub type LiveKitTokenPromise;
}

/// Guest side of the Signal key exchange for one meeting, in one browser tab.
#[wasm_bindgen]
pub struct GuestKeyExchange {
    shared: Shared,
}

#[wasm_bindgen]
impl GuestKeyExchange {
    /// Validates the configuration and loads this tab's stored identity, prekeys and
    /// sessions for the meeting, or generates new ones (identity, signed prekey, 30
    /// one-time prekeys). Throws a `GuestError` (`INVALID_CONFIG`, `INSECURE_ORIGIN`,
    /// `STORAGE_UNAVAILABLE`, `STORAGE_CORRUPT`, `CRYPTO_UNAVAILABLE`).
    #[wasm_bindgen(constructor)]
    pub fn new(config: GuestConfig) -> Result<GuestKeyExchange, JsValue> {
        let open = || -> Result<Shared, SetupError> {
            let rng = WebCryptoRng::new().ok_or(SetupError::CryptoUnavailable)?;
            bootstrap::open(Config::from_js(&config.into())?, rng)
        };
        open()
            .map(|shared| GuestKeyExchange { shared })
            .map_err(|e| GuestError::from(e).into())
    }

    /// Registers the guest's public keys (never a private key) with the invitation token.
    /// Reuses the registration stored in this tab, if any.
    pub fn register(&self) -> RegistrationPromise {
        let shared = self.shared.clone();
        promise(|deferred| {
            tab::when_claimed(&self.shared, move || {
                registration::register(&shared, deferred)
            })
        })
        .unchecked_into()
    }

    /// Asks participants, one at a time, for the meeting key; hands it to the key provider.
    /// Rejects with `KEY_EXCHANGE_FAILED` (retryable: call again for "Try again") after
    /// the configured number of consecutive failures.
    #[wasm_bindgen(js_name = exchangeKey)]
    pub fn exchange_key(&self) -> KeyExchangePromise {
        let shared = self.shared.clone();
        promise(|deferred| {
            tab::when_claimed(&self.shared, move || {
                driver::exchange_key(&shared, deferred)
            })
        })
        .unchecked_into()
    }

    /// Fetches a LiveKit access token for this guest (`NOT_ADMITTED` until the host admits).
    #[wasm_bindgen(js_name = fetchLiveKitToken)]
    pub fn fetch_livekit_token(&self) -> LiveKitTokenPromise {
        promise(|deferred| token::fetch_livekit_token(&self.shared, deferred)).unchecked_into()
    }

    /// Stops listening, cancels timers, wipes this meeting's stored entries and drops all
    /// key material. The object is unusable afterwards.
    pub fn leave(&self) {
        instance::leave(&self.shared);
    }

    /// The server-made guest session id, once registered.
    #[wasm_bindgen(getter, js_name = sessionId)]
    pub fn session_id(&self) -> Option<String> {
        let instance = self.shared.try_borrow().ok()?;
        Some(instance.lifecycle.exchange()?.guest_session_id().to_owned())
    }

    /// Whether the server said the host admitted this guest.
    #[wasm_bindgen(getter)]
    pub fn admitted(&self) -> bool {
        self.shared.try_borrow().is_ok_and(|i| i.join.admitted())
    }

    /// Check value of the current meeting key, once received.
    #[wasm_bindgen(getter, js_name = keyCheckValue)]
    pub fn key_check_value(&self) -> Option<String> {
        let instance = self.shared.try_borrow().ok()?;
        Some(
            instance
                .lifecycle
                .exchange()?
                .delivered()?
                .check_value
                .clone(),
        )
    }

    /// Index of the current meeting key, once received.
    #[wasm_bindgen(getter, js_name = keyIndex)]
    pub fn key_index(&self) -> Option<u8> {
        let instance = self.shared.try_borrow().ok()?;
        Some(instance.lifecycle.exchange()?.delivered()?.key_index)
    }

    /// The safety number with each participant device this guest has a session with
    /// (docs/contract.md §9): `[{ participant: { userId, deviceId }, safetyNumber }]`.
    #[wasm_bindgen(
        js_name = safetyNumbers,
        unchecked_return_type = "{ participant: ParticipantRef; safetyNumber: string }[]"
    )]
    pub fn safety_numbers(&self) -> js_sys::Array {
        let Ok(instance) = self.shared.try_borrow() else {
            return js_sys::Array::new();
        };
        let Some(exchange) = instance.lifecycle.exchange() else {
            return js_sys::Array::new();
        };
        let out = js_sys::Array::new();
        for address in exchange.state().store.session_addresses() {
            let Some(p) = crate::exchange::ParticipantId::from_address(address) else {
                continue;
            };
            let number = exchange.safety_number(&p);
            if !number.is_empty() {
                out.push(&super::js::object(&[
                    ("participant", super::error::participant_ref(&p)),
                    ("safetyNumber", number.into()),
                ]));
            }
        }
        out
    }

    /// How long generating the identity and prekeys took, if this page generated them.
    #[wasm_bindgen(getter, js_name = keyGenerationMs)]
    pub fn key_generation_ms(&self) -> Option<f64> {
        self.shared.try_borrow().ok()?.key_generation_ms
    }

    /// `"sessionStorage"` or `"memory"` (after a fallback).
    #[wasm_bindgen(getter, js_name = storageBackend, unchecked_return_type = "\"sessionStorage\" | \"memory\"")]
    pub fn storage_backend(&self) -> String {
        self.shared
            .try_borrow()
            .map(|i| i.storage.backend_name().to_owned())
            .unwrap_or_default()
    }

    /// The guest's public identity key (33 bytes), for safety numbers.
    #[wasm_bindgen(getter, js_name = identityKey)]
    pub fn identity_key(&self) -> Option<Uint8Array> {
        let instance = self.shared.try_borrow().ok()?;
        let state = instance.lifecycle.state()?;
        Some(bytes(&state.store.identity_key().serialize()))
    }

    /// Removes a meeting's stored entries: the way out of `STORAGE_CORRUPT`.
    #[wasm_bindgen(js_name = clearStoredState)]
    pub fn clear_stored_state(meeting_id: &str, storage: Option<StorageLike>) {
        let storage = storage.map(JsValue::from).unwrap_or(JsValue::UNDEFINED);
        let (mut s, _) = GuestStorage::open(&storage, meeting_id);
        s.wipe();
    }

    /// The key check value of `key` (32 bytes), as participants compute it.
    #[wasm_bindgen(js_name = checkValueOf)]
    pub fn check_value_of(key: &[u8]) -> Result<String, JsValue> {
        MeetingKey::from_slice(key)
            .map(|k| k.check_value())
            .ok_or_else(|| {
                GuestError::new(GuestErrorCode::InvalidConfig, "a meeting key is 32 bytes").into()
            })
    }
}
