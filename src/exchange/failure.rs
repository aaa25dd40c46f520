//! Why things did not work: one failed attempt, the whole exchange, one dropped message.
//! Each keeps the typed cause; text is made only for display.

use crate::prelude::*;

use core::fmt;

use crate::signal::SignalError;

use super::messages::Invalid;
use super::ParticipantId;

/// Declares an enum's `code()`, its stable machine-readable reasons, and from the same list the
/// TypeScript union the web layer publishes (`ts`), so the reasons and their type cannot drift.
macro_rules! reason_codes {
    ($ty:ident, $ts:ident = $name:literal, $doc:literal { $($pat:pat => $code:literal,)+ }) => {
        impl $ty {
            /// A stable, machine-readable reason.
            pub fn code(&self) -> &'static str {
                match self {
                    $($pat => $code,)+
                }
            }
        }

        #[doc = concat!("`", $name, "`, the TypeScript union of [`", stringify!($ty), "::code`].")]
        pub const $ts: &str = concat!(
            "\n/** ", $doc, " */\nexport type ", $name, " =",
            $("\n  | \"", $code, "\"",)+
            ";\n"
        );
    };
}

/// An HTTP call that did not return a usable 2xx (status 0: no answer at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpFailure {
    /// The HTTP status, or 0 when the request got no answer (network error, CORS, timeout).
    pub status: u16,
    /// The `Retry-After` header in seconds, when the server sent one.
    pub retry_after_s: Option<u32>,
}

impl fmt::Display for HttpFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            0 => f.write_str("the server could not be reached"),
            status => write!(f, "the server answered HTTP {status}"),
        }
    }
}

/// Why a fetched keybundle could not start a session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// The JSON is not a keybundle for the device asked for.
    #[error("{0}")]
    Malformed(Invalid),
    /// X3DH refused the keys (bad signature, bad key).
    #[error("{0}")]
    Rejected(SignalError),
}

/// Why one participant's attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptFailure {
    /// No valid answer within the participant's deadline.
    Timeout,
    /// The keybundle was unusable.
    BundleInvalid(BundleError),
    /// The keybundle request failed (status 0: no answer).
    BundleHttp(u16),
    /// HTTP 429 on the keybundle; the participant is skipped until the window passes.
    RateLimited {
        /// The server's `Retry-After`, if any.
        retry_after_s: Option<u32>,
    },
    /// The bundle's identity key differs from the one trusted for this device.
    IdentityChanged,
    /// The device's identity key differs from the one the page pinned for it.
    IdentityMismatch,
    /// The socket could not send the request.
    SendFailed,
    /// Encrypting the request failed.
    EncryptFailed(SignalError),
}

reason_codes! {
    AttemptFailure, ATTEMPT_REASON_TS = "AttemptReason", "Why one participant's attempt failed (docs/api.md)." {
        Self::Timeout => "timeout",
        Self::BundleInvalid(_) => "bundle_invalid",
        Self::BundleHttp(_) => "bundle_http_error",
        Self::RateLimited { .. } => "rate_limited",
        Self::IdentityChanged => "identity_changed",
        Self::IdentityMismatch => "identity_mismatch",
        Self::SendFailed => "send_failed",
        Self::EncryptFailed(_) => "encrypt_failed",
    }
}

impl fmt::Display for AttemptFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout => f.write_str("no answer in time"),
            Self::BundleInvalid(why) => write!(f, "invalid keybundle ({why})"),
            Self::BundleHttp(0) => f.write_str("keybundle request got no answer (network error)"),
            Self::BundleHttp(status) => write!(f, "keybundle request failed with HTTP {status}"),
            Self::RateLimited {
                retry_after_s: Some(s),
            } => write!(f, "rate limited for {s} s"),
            Self::RateLimited {
                retry_after_s: None,
            } => f.write_str("rate limited"),
            Self::IdentityChanged => f.write_str("participant identity key changed"),
            Self::IdentityMismatch => {
                f.write_str("participant identity key is not the one expected for this device")
            }
            Self::SendFailed => f.write_str("could not send the request"),
            Self::EncryptFailed(why) => write!(f, "could not encrypt the request ({why})"),
        }
    }
}

/// One failed attempt, for the final error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// Who was asked.
    pub participant: ParticipantId,
    /// Why it failed.
    pub failure: AttemptFailure,
}

/// Why the participants list could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParticipantsError {
    /// The request failed; 429 carries its `Retry-After`.
    #[error("{0}")]
    Http(HttpFailure),
    /// The answer is not a participants list.
    #[error("{0}")]
    Malformed(Invalid),
}

/// Why the whole exchange stopped without a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExchangeFailure {
    /// Retryable: `max_failures` consecutive attempts failed.
    AttemptsExhausted(Vec<Attempt>),
    /// The participants list could not be fetched or parsed.
    ParticipantsUnavailable(ParticipantsError),
    /// Nobody in the meeting can answer right now.
    NoParticipants(Vec<Attempt>),
}

impl ExchangeFailure {
    /// The attempts that failed before the exchange gave up (none if it never asked anyone).
    pub fn attempts(&self) -> &[Attempt] {
        match self {
            Self::AttemptsExhausted(a) | Self::NoParticipants(a) => a,
            Self::ParticipantsUnavailable(_) => &[],
        }
    }
}

impl fmt::Display for ExchangeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AttemptsExhausted(a) => {
                write!(f, "no participant sent the key after {} attempts", a.len())?
            }
            Self::ParticipantsUnavailable(why) => {
                write!(f, "could not list the meeting's participants ({why})")?
            }
            Self::NoParticipants(_) => f.write_str("no participant can answer right now")?,
        }
        for attempt in self.attempts() {
            write!(f, "; {}: {}", attempt.participant, attempt.failure)?;
        }
        Ok(())
    }
}

/// Why an incoming message was dropped (the exchange keeps waiting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropReason {
    /// The socket event is not a relayed Signal message.
    MalformedEvent(Invalid),
    /// No exchange has started.
    NotStarted,
    /// The sender was never asked.
    UnknownSender,
    /// The Signal message did not decrypt under the sender's session.
    DecryptFailed(SignalError),
    /// The decrypted plaintext is not a key message.
    BadPlaintext(Invalid),
    /// The answer names another meeting.
    WrongMeeting,
    /// The answer's `request_id` is not one of ours.
    UnknownRequest,
    /// That request was answered already (a replay).
    AlreadyAnswered,
    /// The request was sent to another participant.
    WrongParticipant,
    /// The answer's timestamp is outside the accepted clock skew.
    StaleTimestamp,
    /// A key update arrived before any key.
    UpdateBeforeKey,
    /// A key update from a participant that never answered us.
    UpdateFromUnverifiedParticipant,
    /// A second answer after the key was delivered.
    KeyAlreadyDelivered,
    /// A key update that is not newer than the key in use (replayed or reordered).
    StaleUpdate,
    /// A keybundle arrived for an attempt that is over.
    StaleBundle,
}

reason_codes! {
    DropReason, DROP_REASON_TS = "DropReason", "Why an incoming message was dropped; nothing changed (docs/api.md)." {
        Self::MalformedEvent(_) => "malformed_event",
        Self::NotStarted => "not_started",
        Self::UnknownSender => "unknown_sender",
        Self::DecryptFailed(_) => "decrypt_failed",
        Self::BadPlaintext(_) => "bad_plaintext",
        Self::WrongMeeting => "wrong_meeting",
        Self::UnknownRequest => "unknown_request",
        Self::AlreadyAnswered => "already_answered",
        Self::WrongParticipant => "wrong_participant",
        Self::StaleTimestamp => "stale_timestamp",
        Self::UpdateBeforeKey => "update_before_key",
        Self::UpdateFromUnverifiedParticipant => "update_from_unverified_participant",
        Self::KeyAlreadyDelivered => "key_already_delivered",
        Self::StaleUpdate => "stale_update",
        Self::StaleBundle => "stale_bundle",
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MalformedEvent(why) | Self::BadPlaintext(why) => {
                write!(f, "{}: {why}", self.code())
            }
            Self::DecryptFailed(why) => write!(f, "decrypt_failed: {why}"),
            other => f.write_str(other.code()),
        }
    }
}
