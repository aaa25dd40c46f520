//! The error codes, as one exported enum: wasm-bindgen generates the TypeScript union
//! `GuestErrorCode` from it, so the codes are written once.
// wasm-bindgen adds an undocumented `__Invalid` variant and `from_js_value` to string enums.
#![allow(missing_docs)]

use wasm_bindgen::prelude::*;

#[wasm_bindgen(module = "/src/web/shim.js")]
extern "C" {
    /// The code of an error this module made (shim.js), or `undefined`.
    #[wasm_bindgen(js_name = codeOf)]
    fn code_of(value: &JsValue) -> Option<u32>;
}

/// Every code a `GuestError` can carry. Exported, so the TypeScript union is generated
/// from this enum.
#[wasm_bindgen]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestErrorCode {
    /// No participant gave the key after the configured number of attempts (retryable).
    KeyExchangeFailed = "KEY_EXCHANGE_FAILED",
    /// The server asked us to slow down; `retryAfterS` says for how long, when known.
    RateLimited = "RATE_LIMITED",
    /// `baseUrl` is plain `http:` on a host that is not loopback.
    InsecureOrigin = "INSECURE_ORIGIN",
    /// `requireStorage` is set and `sessionStorage` cannot be used.
    StorageUnavailable = "STORAGE_UNAVAILABLE",
    /// Stored state is unreadable; `GuestKeyExchange.clearStoredState` resets it.
    StorageCorrupt = "STORAGE_CORRUPT",
    /// `register()` has not completed, or the server no longer knows this guest.
    NotRegistered = "NOT_REGISTERED",
    /// The server refused the registration (invitation invalid or expired).
    RegistrationRejected = "REGISTRATION_REJECTED",
    /// The host has not admitted the guest yet (or not within `admissionTimeoutMs`), or
    /// declined it.
    NotAdmitted = "NOT_ADMITTED",
    /// The server lost this guest's registration a fourth time in one call, or the SDK could
    /// not register it again (PeerWave keeps guests in memory: a restart drops them). Fewer
    /// losses are handled by the SDK: new keys, a new registration, the lobby again, and the
    /// same call goes on (retryable).
    SessionLost = "SESSION_LOST",
    /// The socket did not connect within `connectTimeoutMs`.
    SocketNotConnected = "SOCKET_NOT_CONNECTED",
    /// The server answered something the contract does not allow.
    ProtocolError = "PROTOCOL_ERROR",
    /// The server could not be reached, or did not answer in time.
    NetworkError = "NETWORK_ERROR",
    /// The server answered with an unexpected HTTP status.
    HttpError = "HTTP_ERROR",
    /// The key provider's `setKey` threw or rejected.
    KeyProviderFailed = "KEY_PROVIDER_FAILED",
    /// The configuration is incomplete or wrong.
    InvalidConfig = "INVALID_CONFIG",
    /// The call does not fit the object's state (e.g. a second concurrent call).
    InvalidState = "INVALID_STATE",
    /// `crypto.getRandomValues` is missing or failing: no keys can be made.
    CryptoUnavailable = "CRYPTO_UNAVAILABLE",
    /// `leave()` was called; the object is unusable.
    Left = "LEFT",
    /// The module stopped after an internal error (a trap); reload the page.
    InternalError = "INTERNAL_ERROR",
    /// The SDK was used before `await init()` (thrown by the package's entry, not the module).
    NotInitialised = "NOT_INITIALISED",
}

impl GuestErrorCode {
    /// Whether calling the same method again later can succeed.
    pub(crate) fn retryable(self) -> bool {
        matches!(
            self,
            Self::KeyExchangeFailed
                | Self::RateLimited
                | Self::NotAdmitted
                | Self::SessionLost
                | Self::SocketNotConnected
                | Self::NetworkError
                | Self::HttpError
                | Self::KeyProviderFailed
        )
    }
}

/// The code of a `GuestError` thrown or rejected by this SDK, or `undefined` for any other
/// value. A type-safe way to branch on errors caught as `unknown` in strict TypeScript.
/// Only the errors this module made count (it remembers them, with their code), not objects
/// that merely look like one.
#[wasm_bindgen(js_name = guestErrorCode)]
pub fn guest_error_code(
    #[wasm_bindgen(unchecked_param_type = "unknown")] error: JsValue,
) -> Option<GuestErrorCode> {
    ALL.get(code_of(&error)? as usize).copied()
}

/// Every code, at its index (checked below, at compile time).
const ALL: [GuestErrorCode; 20] = {
    use GuestErrorCode::*;
    [
        KeyExchangeFailed,
        RateLimited,
        InsecureOrigin,
        StorageUnavailable,
        StorageCorrupt,
        NotRegistered,
        RegistrationRejected,
        NotAdmitted,
        SessionLost,
        SocketNotConnected,
        ProtocolError,
        NetworkError,
        HttpError,
        KeyProviderFailed,
        InvalidConfig,
        InvalidState,
        CryptoUnavailable,
        Left,
        InternalError,
        NotInitialised,
    ]
};

const _: () = {
    let mut i = 0;
    while i < ALL.len() {
        assert!(ALL[i] as usize == i, "ALL lists the codes in their order");
        i += 1;
    }
    // Every code is listed: wasm-bindgen's `__Invalid` comes right after the last one.
    assert!(
        GuestErrorCode::__Invalid as usize == ALL.len(),
        "ALL lists every code"
    );
    // shim.js builds INTERNAL_ERROR, and the package entry NOT_INITIALISED, by these indices.
    assert!(GuestErrorCode::InternalError as usize == 18);
    assert!(GuestErrorCode::NotInitialised as usize == 19);
};
