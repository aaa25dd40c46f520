//! Errors as JavaScript sees them: an `Error` named `GuestError` with a stable `code`, a
//! `retryable` flag and, where it helps, the HTTP status and the failed attempts.
//!
//! Each operation has its own error type ([`SetupError`], [`RegisterError`],
//! [`ExchangeKeyError`], [`TokenError`]) that keeps the typed cause and maps HTTP statuses
//! the way that endpoint means them. The one conversion into a JavaScript value is
//! `From<GuestError> for JsValue`, used at the `#[wasm_bindgen]` boundary.

use crate::prelude::*;

use js_sys::{Array, Object};
use wasm_bindgen::prelude::*;

pub(crate) use super::error_code::GuestErrorCode;
use super::js::{object, set};

#[wasm_bindgen(module = "/src/web/shim.js")]
extern "C" {
    /// The one builder of a `GuestError` (shim.js), which also remembers it for
    /// `guestErrorCode`.
    #[wasm_bindgen(js_name = guestError)]
    fn guest_error(message: &str, code: GuestErrorCode, index: u32, retryable: bool) -> Object;
}
use crate::exchange::join::{CallRefused, JoinFailure};
use crate::exchange::{Attempt, ExchangeFailure, HttpFailure, ParticipantId, ParticipantsError};

/// The value every rejection and exception carries, before it becomes a JS `Error`.
#[derive(Debug, Clone)]
pub(crate) struct GuestError {
    code: GuestErrorCode,
    message: String,
    status: Option<u16>,
    retry_after_s: Option<u32>,
    attempts: Vec<Attempt>,
}

impl GuestError {
    pub(crate) fn new(code: GuestErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            status: None,
            retry_after_s: None,
            attempts: Vec::new(),
        }
    }

    fn with_http(mut self, failure: HttpFailure) -> Self {
        self.status = Some(failure.status).filter(|s| *s != 0);
        self.retry_after_s = failure.retry_after_s;
        self
    }

    fn with_attempts(mut self, attempts: &[Attempt]) -> Self {
        self.attempts = attempts.to_vec();
        self
    }
}

/// The status mapping every endpoint shares; each endpoint handles its own codes first.
fn http_error(what: &str, failure: HttpFailure) -> GuestError {
    let (code, message) = match failure.status {
        0 => (
            GuestErrorCode::NetworkError,
            format!("{what}: the server could not be reached. Check the connection and try again."),
        ),
        429 => (
            GuestErrorCode::RateLimited,
            format!("{what}: too many requests. Wait a moment and try again."),
        ),
        400 => (
            GuestErrorCode::ProtocolError,
            format!("{what}: the server refused the request (HTTP 400)."),
        ),
        status => (
            GuestErrorCode::HttpError,
            format!("{what}: the server answered HTTP {status}. Try again later."),
        ),
    };
    GuestError::new(code, message).with_http(failure)
}

/// `ParticipantId` as `{ userId, deviceId }`.
pub(crate) fn participant_ref(p: &ParticipantId) -> JsValue {
    object(&[
        ("userId", p.user_id.as_str().into()),
        ("deviceId", p.device_id.as_str().into()),
    ])
    .into()
}

impl From<GuestError> for JsValue {
    fn from(e: GuestError) -> JsValue {
        let error = guest_error(&e.message, e.code, e.code as u32, e.code.retryable());
        if let Some(status) = e.status {
            set(&error, "status", status);
        }
        if let Some(seconds) = e.retry_after_s {
            set(&error, "retryAfterS", seconds);
        }
        if !e.attempts.is_empty() {
            let attempts: Array = e
                .attempts
                .iter()
                .map(|a| {
                    JsValue::from(object(&[
                        ("participant", participant_ref(&a.participant)),
                        ("reason", a.failure.code().into()),
                        ("detail", a.failure.to_string().into()),
                    ]))
                })
                .collect();
            set(&error, "attempts", attempts);
        }
        error.into()
    }
}

/// What can go wrong in any call: the object is gone or busy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum UsageError {
    /// `leave()` was called.
    #[error("this guest has left; create a new GuestKeyExchange to join again")]
    Left,
    /// The same call is already running.
    #[error("{0} is already running")]
    AlreadyRunning(&'static str),
    /// The guest has no keys to register (it cannot happen after a successful start).
    #[error("this guest has no keys")]
    Unavailable,
    /// The module trapped earlier; its state cannot be trusted.
    #[error("The SDK stopped after an internal error. Reload the page to join again.")]
    Stopped,
    /// `register()` has not completed.
    #[error("call register() first")]
    NotRegistered,
}

impl From<UsageError> for GuestError {
    fn from(e: UsageError) -> Self {
        let code = match e {
            UsageError::Left => GuestErrorCode::Left,
            UsageError::AlreadyRunning(_) | UsageError::Unavailable => GuestErrorCode::InvalidState,
            UsageError::Stopped => GuestErrorCode::InternalError,
            UsageError::NotRegistered => GuestErrorCode::NotRegistered,
        };
        GuestError::new(code, e.to_string())
    }
}

/// Why the constructor refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SetupError {
    /// A configuration field is missing or wrong.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// `baseUrl` is plain http: off loopback.
    #[error("baseUrl must use https: (plain http: is allowed only on loopback)")]
    InsecureOrigin,
    /// `requireStorage` and no usable storage.
    #[error("storage is unusable: {0}")]
    StorageUnavailable(String),
    /// A stored entry cannot be read back.
    #[error("stored {0} is unusable; call GuestKeyExchange.clearStoredState(meetingId)")]
    StorageCorrupt(String),
    /// No CSPRNG.
    #[error("crypto.getRandomValues is not available; keys cannot be made")]
    CryptoUnavailable,
}

impl From<SetupError> for GuestError {
    fn from(e: SetupError) -> Self {
        let code = match e {
            SetupError::InvalidConfig(_) => GuestErrorCode::InvalidConfig,
            SetupError::InsecureOrigin => GuestErrorCode::InsecureOrigin,
            SetupError::StorageUnavailable(_) => GuestErrorCode::StorageUnavailable,
            SetupError::StorageCorrupt(_) => GuestErrorCode::StorageCorrupt,
            SetupError::CryptoUnavailable => GuestErrorCode::CryptoUnavailable,
        };
        GuestError::new(code, e.to_string())
    }
}

/// Why `register()` failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RegisterError {
    /// Not callable now.
    #[error("{0}")]
    Usage(#[from] UsageError),
    /// The server answered with an error status, or not at all.
    #[error("registration failed: {0}")]
    Http(HttpFailure),
    /// The server did not answer within the deadline.
    #[error("registration got no answer within {0} ms")]
    Timeout(u32),
    /// The answer is not a registration for our meeting.
    #[error("registration answer: {0}")]
    Malformed(crate::exchange::messages::Invalid),
}

impl From<RegisterError> for GuestError {
    fn from(e: RegisterError) -> Self {
        match e {
            RegisterError::Usage(u) => u.into(),
            // The invitation is unknown, expired or for another meeting.
            RegisterError::Http(f) if matches!(f.status, 401 | 403 | 404 | 410) => GuestError::new(
                GuestErrorCode::RegistrationRejected,
                "The invitation was not accepted (it may be expired or for another meeting).",
            )
            .with_http(f),
            RegisterError::Http(f) => http_error("Registration", f),
            RegisterError::Timeout(_) => GuestError::new(
                GuestErrorCode::NetworkError,
                format!("{e}. Check the connection and try again."),
            ),
            RegisterError::Malformed(_) => {
                GuestError::new(GuestErrorCode::ProtocolError, e.to_string())
            }
        }
    }
}

/// Why `exchangeKey()` failed: refused at once, or ended by the join
/// ([`crate::exchange::join::JoinAction::Settle`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ExchangeKeyError {
    /// Not callable now.
    Usage(UsageError),
    /// The call ended without a key.
    Ended(JoinFailure),
}

impl From<JoinFailure> for ExchangeKeyError {
    fn from(failure: JoinFailure) -> Self {
        match failure {
            JoinFailure::Left => Self::Usage(UsageError::Left),
            other => Self::Ended(other),
        }
    }
}

impl From<CallRefused> for ExchangeKeyError {
    fn from(refused: CallRefused) -> Self {
        Self::Usage(match refused {
            CallRefused::NotRegistered => UsageError::NotRegistered,
            CallRefused::AlreadyRunning => UsageError::AlreadyRunning("exchangeKey()"),
            CallRefused::Left => UsageError::Left,
        })
    }
}

impl From<ExchangeKeyError> for GuestError {
    fn from(e: ExchangeKeyError) -> Self {
        let failure = match e {
            ExchangeKeyError::Usage(u) => return u.into(),
            ExchangeKeyError::Ended(failure) => failure,
        };
        match failure {
            JoinFailure::Left => UsageError::Left.into(),
            JoinFailure::Exchange(ExchangeFailure::ParticipantsUnavailable(
                ParticipantsError::Http(f),
            )) if f.status == 429 || f.status == 0 => http_error("Listing the participants", f),
            JoinFailure::Exchange(failure) => {
                let message = match &failure {
                    ExchangeFailure::NoParticipants(_) => {
                        "No participant can send the meeting key right now. Try again in a moment."
                    }
                    _ => "The meeting key could not be obtained. Try again.",
                };
                GuestError::new(
                    GuestErrorCode::KeyExchangeFailed,
                    format!("{message} ({failure})"),
                )
                .with_attempts(failure.attempts())
            }
            JoinFailure::NotConnected(_) => GuestError::new(
                GuestErrorCode::SocketNotConnected,
                "Could not connect to the meeting server. Check the connection and try again.",
            ),
            JoinFailure::NotAdmitted(_) => GuestError::new(
                GuestErrorCode::NotAdmitted,
                "The host has not let you in yet. Try again in a moment.",
            ),
            JoinFailure::Declined => GuestError::new(
                GuestErrorCode::NotAdmitted,
                "The host declined to let you in.",
            ),
            JoinFailure::SessionLost => session_lost(),
            JoinFailure::KeyRefused => GuestError::new(
                GuestErrorCode::KeyProviderFailed,
                "The key provider did not accept the key. Try again.",
            ),
        }
    }
}

/// Why `fetchLiveKitToken()` failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TokenError {
    /// Not callable now.
    #[error("{0}")]
    Usage(#[from] UsageError),
    /// The server answered with an error status, or not at all.
    #[error("LiveKit token: {0}")]
    Http(HttpFailure),
    /// The answer is not a LiveKit token.
    #[error("LiveKit token answer: {0}")]
    Malformed(crate::exchange::messages::Invalid),
    /// The server no longer knows the guest's session; the SDK registers again.
    #[error("the server lost this guest's registration")]
    SessionLost,
}

fn session_lost() -> GuestError {
    GuestError::new(
        GuestErrorCode::SessionLost,
        "The meeting server lost this guest's registration again and again (it may be restarting). Try again in a moment; the host will have to let you in again.",
    )
}

impl From<TokenError> for GuestError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Usage(u) => u.into(),
            TokenError::Http(f) if f.status == 403 => GuestError::new(
                GuestErrorCode::NotAdmitted,
                "The host has not admitted this guest yet.",
            )
            .with_http(f),
            // The server no longer knows this guest session (expired, or never registered).
            TokenError::Http(f) if matches!(f.status, 401 | 404) => GuestError::new(
                GuestErrorCode::NotRegistered,
                "The server does not know this guest session; register again.",
            )
            .with_http(f),
            TokenError::Http(f) => http_error("LiveKit token", f),
            TokenError::SessionLost => session_lost(),
            TokenError::Malformed(_) => {
                GuestError::new(GuestErrorCode::ProtocolError, e.to_string())
            }
        }
    }
}
