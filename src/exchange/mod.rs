//! The guest key exchange as a sans-I/O state machine.
//!
//! The caller feeds [`Event`]s (with the current time) into [`Exchange::handle`], carries
//! out the [`Action`]s it returns (fetch a bundle, emit a socket event, deliver the key) and
//! wakes the machine at [`Exchange::poll_timeout`]. Nothing here does I/O or reads a clock,
//! so the 5-second rotation is tested natively in microseconds. [`Exchange`]'s documentation
//! is the driver's contract.

use crate::prelude::*;

use crate::signal::PublicKey;

mod base64;
pub mod contract;
mod dialect;
mod failure;
mod io;
pub mod join;
pub mod json;
mod key;
mod machine;
pub mod messages;
pub mod plaintexts;
pub mod sas;
mod state;
pub mod stored;

pub use failure::{
    Attempt, AttemptFailure, BundleError, DropReason, ExchangeFailure, HttpFailure,
    ParticipantsError, ATTEMPT_REASON_TS, DROP_REASON_TS,
};
pub use io::{Action, Event, Progress};
pub use key::{MeetingKey, MEETING_KEY_LEN};
pub use machine::{
    Delivered, Exchange, Phase, GUEST_DECRYPT_LIMITS, HELD_BUNDLES_MAX, PREPARED_MAX_AGE_MS,
};
pub use state::{spread_of, GuestState, ONE_TIME_PRE_KEYS};

use core::fmt;

/// Milliseconds since the Unix epoch, as the caller's clock reports them.
pub type Millis = u64;

/// One participant device.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParticipantId {
    /// The participant's user id, as the server names it.
    pub user_id: String,
    /// The device id (a participant may join from several devices).
    pub device_id: String,
}

impl ParticipantId {
    /// A device of a participant.
    pub fn new(user_id: String, device_id: String) -> Self {
        Self { user_id, device_id }
    }

    /// The Signal store's address. Ids never contain control characters (checked at
    /// parse time), so the unit separator keeps `("a.b", "c")` and `("a", "b.c")` apart.
    pub fn address(&self) -> String {
        format!("{}\u{1f}{}", self.user_id, self.device_id)
    }

    /// The device an [`ParticipantId::address`] names.
    pub fn from_address(address: &str) -> Option<Self> {
        let (user, device) = address.split_once('\u{1f}')?;
        Some(Self::new(user.to_owned(), device.to_owned()))
    }
}

impl fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.user_id, self.device_id)
    }
}

/// Tunables. The defaults are the product's: 5 s per participant, the next one asked as well
/// after 1.5 s without an answer, three failures, sessions reused for 5 minutes, ±2 minutes
/// of clock difference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeConfig {
    /// How long one participant gets (bundle fetch + answer).
    pub participant_timeout_ms: Millis,
    /// How long a participant may take before the next one is asked as well (hedging), or
    /// `None` to ask one at a time. Each hedge costs the next participant a one-time prekey
    /// and a request (in PeerWave, one guest prekey per participant), and counts toward
    /// `max_failures` if it fails; 1.5 s is well above a live participant's answer time
    /// (tens to a few hundred milliseconds) and well below the 5 s a silent one costs.
    pub hedge_after_ms: Option<Millis>,
    /// Consecutive failures before the exchange gives up.
    pub max_failures: usize,
    /// A session younger than this is reused on retry instead of fetching a new bundle.
    pub session_cache_ttl_ms: Millis,
    /// Accepted distance between an answer's timestamp and our clock.
    pub clock_skew_ms: Millis,
    /// Identity keys the page expects for participant devices: a bundle or session with
    /// another key fails that attempt (`identity_mismatch`) before any request is sent.
    pub pinned: Vec<(ParticipantId, PublicKey)>,
    /// With pins: ask devices without a pin as well (trust on first use). Off by default:
    /// a server could otherwise list a device of its own, unpinned, and answer as it.
    pub ask_unpinned: bool,
    /// Refuse sessions without post-quantum protection: bundles without a Kyber prekey fail
    /// the attempt, answers on v3 sessions are dropped.
    pub require_post_quantum: bool,
    /// Start each guest at a different participant ([`spread_of`] its session id) rather
    /// than at the first one listed, so a burst of guests spreads over the devices. Off:
    /// the server's order (for a server that orders participants on purpose).
    pub spread_first_requests: bool,
    /// Compute safety numbers ([`Delivered::safety_number`](machine::Delivered), 10,400
    /// SHA-512 blocks each). Off, they are empty: for a load generator that plays thousands
    /// of guests on one machine, where each real guest would spend that on its own.
    pub safety_numbers: bool,
    /// The server dialect (the contract's, or PeerWave's as it ships).
    pub profile: contract::WireProfile,
}

/// [`ExchangeConfig::default`]'s numbers (the page's configuration has the same defaults).
pub mod defaults {
    use super::Millis;
    /// [`super::ExchangeConfig::participant_timeout_ms`].
    pub const PARTICIPANT_TIMEOUT_MS: Millis = 5_000;
    /// [`super::ExchangeConfig::hedge_after_ms`].
    pub const HEDGE_AFTER_MS: Millis = 1_500;
    /// [`super::ExchangeConfig::max_failures`].
    pub const MAX_FAILURES: usize = 3;
    /// [`super::ExchangeConfig::session_cache_ttl_ms`].
    pub const SESSION_CACHE_TTL_MS: Millis = 5 * 60_000;
    /// [`super::ExchangeConfig::clock_skew_ms`].
    pub const CLOCK_SKEW_MS: Millis = 120_000;
}

impl Default for ExchangeConfig {
    fn default() -> Self {
        Self {
            participant_timeout_ms: defaults::PARTICIPANT_TIMEOUT_MS,
            hedge_after_ms: Some(defaults::HEDGE_AFTER_MS),
            max_failures: defaults::MAX_FAILURES,
            session_cache_ttl_ms: defaults::SESSION_CACHE_TTL_MS,
            clock_skew_ms: defaults::CLOCK_SKEW_MS,
            pinned: Vec::new(),
            ask_unpinned: false,
            require_post_quantum: false,
            spread_first_requests: true,
            safety_numbers: true,
            profile: Default::default(),
        }
    }
}
