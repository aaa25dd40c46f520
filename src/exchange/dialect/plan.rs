//! This contract's dialect (docs/contract.md §1–§7) where it differs from PeerWave's: the
//! participants list is a bare array, a keybundle names its device, the key request commits
//! to a short-code nonce, and answers are bound to their request inside the ciphertext.

use crate::prelude::*;

use rand_core::CryptoRngCore;

use crate::signal::CiphertextMessage;

use super::super::contract::{KEY_REQUEST_TYPE, PLAN, SAS_REVEAL_TYPE};
use super::super::join::JoinRules;
use super::super::messages::{self, Invalid};
use super::super::plaintexts::{self, KeyMessage};
use super::super::sas::{self, SasNonce};
use super::super::ParticipantId;
use super::{BundleShape, KeyRequest, Routing};

/// The page owns the socket; the server puts guests in the lobby, repeats its admission
/// notice on request and keeps registrations.
pub(super) const JOIN: JoinRules = JoinRules {
    sdk_handshake: false,
    lobby: false,
    reregisters: false,
    admission_kept: false,
};

/// The guest's prekeys are not consumed: the guest starts each session from a fetched
/// participant bundle, and participants answer on it.
pub(super) const STOCKS_PRE_KEYS: bool = false;

/// The participants list is the body itself, a JSON array.
pub(super) const PARTICIPANTS_FIELD: Option<&str> = None;

/// The bundle echoes the device it belongs to and is refused on any unknown field;
/// registration ids and one-time prekey ids start at 1.
pub(super) const BUNDLE: BundleShape = BundleShape {
    fields: &[
        "user_id",
        "device_id",
        "identity_key",
        "registration_id",
        "signed_pre_key",
        "pre_key",
        "kyber_pre_key",
    ],
    names_device: true,
    first_id: 1,
};

/// The request commits to a fresh short-code nonce (§10), revealed after the answer.
pub(super) fn request_plaintext(
    request: &KeyRequest<'_>,
    sas_nonce: &mut SasNonce,
    rng: &mut impl CryptoRngCore,
) -> String {
    rng.fill_bytes(&mut sas_nonce.0);
    plaintexts::request_plaintext(
        request.meeting_id,
        request.guest_session_id,
        request.request_id,
        request.now_ms,
        &sas::commitment(sas_nonce),
    )
}

/// The guest's events name the plaintext's type as a routing hint, and the device id as
/// the server named it; the request id stays inside the ciphertext.
fn routing(kind: &str) -> Routing<'_> {
    Routing {
        device_number: None,
        field: "type",
        value: kind,
    }
}

/// A key request's event.
pub(super) fn request_routing() -> Routing<'static> {
    routing(KEY_REQUEST_TYPE)
}

/// The guest's reveal of its short-code nonce. The short code is this dialect's alone
/// (PeerWave's participants take no part), so its event is always in this dialect.
pub(crate) fn sas_reveal_event(to: &ParticipantId, message: &CiphertextMessage) -> String {
    let routing = routing(SAS_REVEAL_TYPE);
    messages::guest_event(
        to,
        &routing,
        &PLAN,
        message.message_type(),
        message.serialized(),
    )
}

/// Answers carry their request id inside the ciphertext, checked once decrypted.
pub(super) const BINDS_ANSWERS_ON_ENVELOPE: bool = false;

/// An answer or a key update, with its type, request id and key index inside.
pub(super) fn parse_answer(plaintext: &[u8]) -> Result<KeyMessage, Invalid> {
    plaintexts::parse_key_message(plaintext)
}
