//! The guest key exchange as a sans-I/O state machine.
//!
//! The caller feeds [`Event`]s (with the current time) into [`Exchange::handle`] and carries
//! out the [`Action`]s it returns: fetch a bundle, emit a socket event, arm a timer, deliver
//! the key. Nothing here does I/O or reads a clock, so the 5-second rotation is tested
//! natively in microseconds.

use crate::prelude::*;

pub mod json;
mod key;
mod machine;
mod state;
pub mod wire;

pub use key::{MeetingKey, MEETING_KEY_LEN};
pub use machine::{Exchange, Phase};
pub use state::GuestState;

use core::fmt;

/// Milliseconds since the Unix epoch, as the caller's clock reports them.
pub type Millis = u64;

/// One participant device.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParticipantId {
    pub user_id: String,
    pub device_id: String,
}

impl ParticipantId {
    pub fn new(user_id: String, device_id: String) -> Self {
        Self { user_id, device_id }
    }

    /// The Signal store's address. Ids never contain control characters (checked at
    /// parse time), so the unit separator keeps `("a.b", "c")` and `("a", "b.c")` apart.
    pub fn address(&self) -> String {
        format!("{}\u{1f}{}", self.user_id, self.device_id)
    }
}

impl fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.user_id, self.device_id)
    }
}

/// Tunables; the defaults are the product's (plan Q9, Q12, Q14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeConfig {
    /// How long one participant gets (bundle fetch + answer).
    pub participant_timeout_ms: Millis,
    /// Consecutive failures before the exchange gives up.
    pub max_failures: usize,
    /// A session younger than this is reused on retry instead of fetching a new bundle.
    pub session_cache_ttl_ms: Millis,
    /// Accepted distance between an answer's timestamp and our clock.
    pub clock_skew_ms: Millis,
}

impl Default for ExchangeConfig {
    fn default() -> Self {
        Self {
            participant_timeout_ms: 5_000,
            max_failures: 3,
            session_cache_ttl_ms: 5 * 60_000,
            clock_skew_ms: 120_000,
        }
    }
}

/// An HTTP call that did not return a usable 2xx (status 0: network error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpFailure {
    pub status: u16,
    pub retry_after_s: Option<u32>,
}

/// Inputs to the machine.
#[derive(Debug, Clone)]
pub enum Event {
    /// Begin, or begin again after a failure ("Try again").
    Start,
    /// `GET …/participants` finished: the raw JSON body, or why not.
    ParticipantsListed(Result<String, HttpFailure>),
    /// `GET …/keys` for `participant` finished: the raw JSON body, or why not.
    BundleFetched {
        participant: ParticipantId,
        result: Result<String, HttpFailure>,
    },
    /// A `participant:signal_message` arrived: the event body as JSON text.
    MessageReceived(String),
    /// Emitting the request to `participant` failed (socket disconnected).
    SendFailed { participant: ParticipantId },
    /// A timer armed by [`Action::ArmTimer`] fired.
    TimerFired { timer: u64 },
}

/// Why one participant's attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptFailure {
    Timeout,
    BundleInvalid(String),
    BundleHttp(u16),
    RateLimited { retry_after_s: Option<u32> },
    IdentityChanged,
    SendFailed,
    EncryptFailed(String),
}

impl AttemptFailure {
    /// A stable, machine-readable reason.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::BundleInvalid(_) => "bundle_invalid",
            Self::BundleHttp(_) => "bundle_http_error",
            Self::RateLimited { .. } => "rate_limited",
            Self::IdentityChanged => "identity_changed",
            Self::SendFailed => "send_failed",
            Self::EncryptFailed(_) => "encrypt_failed",
        }
    }
}

impl fmt::Display for AttemptFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout => f.write_str("no answer in time"),
            Self::BundleInvalid(why) => write!(f, "invalid keybundle ({why})"),
            Self::BundleHttp(status) => write!(f, "keybundle request failed with HTTP {status}"),
            Self::RateLimited {
                retry_after_s: Some(s),
            } => write!(f, "rate limited for {s} s"),
            Self::RateLimited {
                retry_after_s: None,
            } => f.write_str("rate limited"),
            Self::IdentityChanged => f.write_str("participant identity key changed"),
            Self::SendFailed => f.write_str("could not send the request"),
            Self::EncryptFailed(why) => write!(f, "could not encrypt the request ({why})"),
        }
    }
}

/// One failed attempt, for the final error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub participant: ParticipantId,
    pub failure: AttemptFailure,
}

/// Why the whole exchange stopped without a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExchangeFailure {
    /// Retryable: `max_failures` consecutive attempts failed.
    AttemptsExhausted(Vec<Attempt>),
    /// The participants list could not be fetched or parsed.
    ParticipantsUnavailable(String),
    /// Nobody in the meeting can answer right now.
    NoParticipants(Vec<Attempt>),
}

impl ExchangeFailure {
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
                write!(f, "key exchange failed after {} attempts", a.len())?
            }
            Self::ParticipantsUnavailable(why) => write!(f, "could not list participants ({why})")?,
            Self::NoParticipants(_) => f.write_str("no participant can answer right now")?,
        }
        for attempt in self.attempts() {
            write!(f, "; {}: {}", attempt.participant, attempt.failure)?;
        }
        Ok(())
    }
}

/// Why an incoming event was dropped (the exchange keeps waiting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropReason {
    MalformedEvent(wire::Invalid),
    NotStarted,
    UnknownSender,
    DecryptFailed(crate::signal::SignalError),
    BadPlaintext(wire::Invalid),
    WrongMeeting,
    UnknownRequest,
    AlreadyAnswered,
    WrongParticipant,
    StaleTimestamp,
    UpdateBeforeKey,
    UpdateFromUnverifiedParticipant,
    KeyAlreadyDelivered,
    StaleBundle,
}

impl DropReason {
    pub fn code(&self) -> &'static str {
        match self {
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
            Self::StaleBundle => "stale_bundle",
        }
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

/// What the UI can show while the exchange runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    ListingParticipants,
    FetchingBundle {
        participant: ParticipantId,
    },
    WaitingFor {
        participant: ParticipantId,
    },
    Rotating {
        from: ParticipantId,
        to: ParticipantId,
        reason: AttemptFailure,
    },
    KeyReceived {
        from: ParticipantId,
        key_index: u8,
    },
}

/// Outputs the caller carries out, in order.
#[derive(Debug)]
pub enum Action {
    ListParticipants,
    FetchBundle {
        participant: ParticipantId,
    },
    /// Emit `guest:signal_message` with this JSON body.
    Send {
        participant: ParticipantId,
        body: String,
    },
    /// Call back with [`Event::TimerFired`] at `at` (earlier timers may be dropped).
    ArmTimer {
        timer: u64,
        at: Millis,
    },
    /// Signal state changed: persist [`Exchange::state`].
    PersistState,
    DeliverKey {
        key: MeetingKey,
        key_index: u8,
        from: ParticipantId,
    },
    Progress(Progress),
    Dropped(DropReason),
    Failed(ExchangeFailure),
}
