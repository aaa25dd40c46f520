//! Errors as JavaScript sees them: an `Error` with a stable `code`.

use crate::prelude::*;

use js_sys::{Array, Error};
use wasm_bindgen::JsValue;

use super::js::{object, set};
use crate::exchange::{Attempt, ExchangeFailure};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorCode {
    KeyExchangeFailed,
    RateLimited,
    InsecureOrigin,
    StorageUnavailable,
    StorageCorrupt,
    NotRegistered,
    RegistrationRejected,
    NotAdmitted,
    ProtocolError,
    NetworkError,
    HttpError,
    KeyProviderFailed,
    InvalidConfig,
    InvalidState,
    CryptoUnavailable,
    Left,
}

impl ErrorCode {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::KeyExchangeFailed => "KEY_EXCHANGE_FAILED",
            Self::RateLimited => "RATE_LIMITED",
            Self::InsecureOrigin => "INSECURE_ORIGIN",
            Self::StorageUnavailable => "STORAGE_UNAVAILABLE",
            Self::StorageCorrupt => "STORAGE_CORRUPT",
            Self::NotRegistered => "NOT_REGISTERED",
            Self::RegistrationRejected => "REGISTRATION_REJECTED",
            Self::NotAdmitted => "NOT_ADMITTED",
            Self::ProtocolError => "PROTOCOL_ERROR",
            Self::NetworkError => "NETWORK_ERROR",
            Self::HttpError => "HTTP_ERROR",
            Self::KeyProviderFailed => "KEY_PROVIDER_FAILED",
            Self::InvalidConfig => "INVALID_CONFIG",
            Self::InvalidState => "INVALID_STATE",
            Self::CryptoUnavailable => "CRYPTO_UNAVAILABLE",
            Self::Left => "LEFT",
        }
    }

    /// Whether calling the same method again later can succeed.
    fn retryable(self) -> bool {
        matches!(
            self,
            Self::KeyExchangeFailed
                | Self::RateLimited
                | Self::NotAdmitted
                | Self::NetworkError
                | Self::HttpError
                | Self::KeyProviderFailed
        )
    }
}

#[derive(Debug, Clone)]
pub(crate) struct GuestError {
    pub code: ErrorCode,
    pub message: String,
    pub status: Option<u16>,
    pub attempts: Vec<Attempt>,
}

impl GuestError {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            status: None,
            attempts: Vec::new(),
        }
    }

    pub(crate) fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    pub(crate) fn from_failure(failure: &ExchangeFailure) -> Self {
        let mut e = Self::new(ErrorCode::KeyExchangeFailed, failure.to_string());
        e.attempts = failure.attempts().to_vec();
        e
    }
}

pub(crate) fn participant_ref(p: &crate::exchange::ParticipantId) -> JsValue {
    object(&[
        ("userId", p.user_id.as_str().into()),
        ("deviceId", p.device_id.as_str().into()),
    ])
    .into()
}

impl From<GuestError> for JsValue {
    fn from(e: GuestError) -> JsValue {
        let error = Error::new(&format!("{}: {}", e.code.as_str(), e.message));
        error.set_name("GuestError");
        set(&error, "code", e.code.as_str());
        set(&error, "retryable", e.code.retryable());
        if let Some(status) = e.status {
            set(&error, "status", status);
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
