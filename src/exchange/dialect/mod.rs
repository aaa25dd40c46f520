//! What the two server dialects do differently, one file each: [`plan`] for this contract
//! (docs/contract.md §1–§7), [`peerwave`] for PeerWave's server and participants as they
//! ship (§8). The exchange, the parsers and the writers call the operations below, each one
//! `match` over [`Dialect`]; what both dialects share stays with its callers. Where the
//! dialects differ only in shape (a field's name, a bundle's fields), each file describes
//! its shape and one parser or writer reads both, as with the names in
//! `super::contract::Names`; where they do different things, each file has the function.
//! An enum rather than a trait: the wasm carries each dialect's code once, and the shared
//! code around it once for both.

use crate::prelude::*;

use rand_core::CryptoRngCore;

use super::contract::{peerwave as peerwave_names, Names, PLAN};
use super::join::JoinRules;
use super::messages::Invalid;
use super::plaintexts::KeyMessage;
use super::sas::SasNonce;
use super::ParticipantId;

mod peerwave;
mod plan;

pub use peerwave::{names_lost_session, parse_answer as parse_peerwave_answer};
pub use peerwave::{parse_server_pre_keys, pre_keys_body};
pub(crate) use plan::sas_reveal_event;

/// Which server dialect the guest speaks; the page's configuration calls it `wireProfile`
/// ([`super::contract::WireProfile`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// This contract (docs/contract.md §1–§7), as the reference relay speaks it.
    #[default]
    Plan,
    /// PeerWave's server and Flutter participants as they ship (docs/contract.md §8).
    PeerWave,
}

/// What a dialect's keybundles look like; one parser reads both
/// (`super::messages::parse_bundle`).
#[derive(Debug)]
pub(crate) struct BundleShape {
    /// Every field a bundle may have: any other refuses it.
    pub(crate) fields: &'static [&'static str],
    /// Whether the bundle names its device (`user_id`, `device_id`: it must be the one
    /// asked for) and sends `registration_id` as a number. Otherwise it is bound to the path
    /// asked, and the id may come as text.
    pub(crate) names_device: bool,
    /// The lowest registration id and one-time prekey id the dialect hands out.
    pub(crate) first_id: u32,
}

/// How a guest event is addressed beyond the participant's user id; the dialect says.
#[derive(Debug)]
pub(crate) struct Routing<'a> {
    /// The device id as a number, where the dialect sends it so (otherwise as text).
    pub(crate) device_number: Option<u32>,
    /// The field the event is routed by, and its value.
    pub(crate) field: &'static str,
    pub(crate) value: &'a str,
}

/// What a key request says, whatever shape the dialect gives it.
pub(crate) struct KeyRequest<'a> {
    pub(crate) meeting_id: &'a str,
    pub(crate) guest_session_id: &'a str,
    pub(crate) request_id: &'a str,
    /// The guest's clock, in milliseconds since the Unix epoch.
    pub(crate) now_ms: u64,
}

impl Dialect {
    /// How this dialect's server lets guests in.
    pub fn join_rules(self) -> JoinRules {
        match self {
            Self::Plan => plan::JOIN,
            Self::PeerWave => peerwave::JOIN,
        }
    }

    /// The names this dialect puts on the wire.
    pub fn names(self) -> &'static Names {
        match self {
            Self::Plan => &PLAN,
            Self::PeerWave => &peerwave_names::NAMES,
        }
    }

    /// The field of the participants list's body that holds the list, or `None` where the
    /// body is the list.
    pub(crate) fn participants_field(self) -> Option<&'static str> {
        match self {
            Self::Plan => plan::PARTICIPANTS_FIELD,
            Self::PeerWave => peerwave::PARTICIPANTS_FIELD,
        }
    }

    /// What the dialect's keybundles look like.
    pub(crate) fn bundle_shape(self) -> &'static BundleShape {
        match self {
            Self::Plan => &plan::BUNDLE,
            Self::PeerWave => &peerwave::BUNDLE,
        }
    }

    /// Whether the guest makes sure the server holds enough of its one-time prekeys before
    /// asking anyone.
    pub(crate) fn stocks_pre_keys(self) -> bool {
        match self {
            Self::Plan => plan::STOCKS_PRE_KEYS,
            Self::PeerWave => peerwave::STOCKS_PRE_KEYS,
        }
    }

    /// The key request's plaintext. Where the dialect has a short code, `sas_nonce` is
    /// drawn and the request commits to it; elsewhere it is left as it is.
    pub(crate) fn request_plaintext(
        self,
        request: &KeyRequest<'_>,
        sas_nonce: &mut SasNonce,
        rng: &mut impl CryptoRngCore,
    ) -> String {
        match self {
            Self::Plan => plan::request_plaintext(request, sas_nonce, rng),
            Self::PeerWave => peerwave::request_plaintext(request),
        }
    }

    /// How the event carrying a key request to `to` is addressed.
    pub(crate) fn request_routing<'a>(
        self,
        to: &ParticipantId,
        request_id: &'a str,
    ) -> Routing<'a> {
        match self {
            Self::Plan => plan::request_routing(),
            Self::PeerWave => peerwave::request_routing(to, request_id),
        }
    }

    /// Whether an answer is bound to its request on its envelope, where the exchange checks
    /// it before decrypting, rather than only inside the ciphertext.
    pub(crate) fn binds_answers_on_envelope(self) -> bool {
        match self {
            Self::Plan => plan::BINDS_ANSWERS_ON_ENVELOPE,
            Self::PeerWave => peerwave::BINDS_ANSWERS_ON_ENVELOPE,
        }
    }

    /// Reads a decrypted participant message; `envelope_request_id` is the request id its
    /// envelope carried.
    pub(crate) fn parse_answer(
        self,
        plaintext: &[u8],
        envelope_request_id: Option<String>,
    ) -> Result<KeyMessage, Invalid> {
        match self {
            Self::Plan => plan::parse_answer(plaintext),
            Self::PeerWave => peerwave::parse_any_answer(plaintext, envelope_request_id),
        }
    }
}
