//! The server contract's names, each in one place: socket events, message types and HTTP
//! paths. The web layer, the load generator, the tests and `docs/contract.md` take them from
//! here, so a renamed event or path is changed once. PeerWave's server speaks another
//! dialect of the same exchange; its names are in [`peerwave`], and [`Names`] holds the
//! ones that differ between the two. What the dialects do differently is in
//! `src/exchange/dialect/`.

use crate::prelude::*;

pub mod peerwave;

/// Which server dialect the guest speaks (`wireProfile` in the page's configuration).
pub use super::dialect::Dialect as WireProfile;

/// The names that differ between the two dialects ([`WireProfile::names`]). Parsers and
/// writers take them from here, so one function reads both (and the wasm carries one copy
/// of it).
#[derive(Debug)]
pub struct Names {
    /// Socket event carrying the guest's Signal message.
    pub guest_event: &'static str,
    /// Socket event carrying a participant's Signal message to the guest.
    pub participant_event: &'static str,
    /// Socket event telling guests that the host admitted one (`{session_id}`).
    pub admitted_event: &'static str,
    /// A prekey's id in registrations and keybundles.
    pub key_id: &'static str,
    /// A prekey's public key in registrations and keybundles.
    pub public_key: &'static str,
    /// The keybundle's one-time prekey.
    pub bundle_pre_key: &'static str,
    /// The Signal ciphertext in socket events.
    pub ciphertext: &'static str,
    /// The Signal message type in socket events.
    pub message_type: &'static str,
    /// The signed Kyber prekey in registrations and keybundles (v4 sessions, PQXDH);
    /// `None` where the server speaks only v3 (X3DH).
    pub kyber_pre_key: Option<&'static str>,
    /// Default HTTP path templates.
    pub paths: PathTemplates,
}

/// HTTP path templates; `{name}` is replaced by the URI-encoded value.
#[derive(Debug)]
pub struct PathTemplates {
    /// `POST`: registers the guest's public keys.
    pub register: &'static str,
    /// `GET`: the participant devices that can answer.
    pub participants: &'static str,
    /// `GET`: one participant device's keybundle.
    pub participant_keys: &'static str,
    /// `POST`: a LiveKit access token for an admitted guest.
    pub livekit_token: &'static str,
}

/// This contract's names.
pub const PLAN: Names = Names {
    guest_event: GUEST_MESSAGE_EVENT,
    participant_event: PARTICIPANT_MESSAGE_EVENT,
    admitted_event: GUEST_ADMITTED_EVENT,
    key_id: "id",
    public_key: "public_key",
    bundle_pre_key: "pre_key",
    ciphertext: "encrypted_message",
    message_type: "message_type",
    kyber_pre_key: Some("kyber_pre_key"),
    paths: PathTemplates {
        register: paths::REGISTER,
        participants: paths::PARTICIPANTS,
        participant_keys: paths::PARTICIPANT_KEYS,
        livekit_token: paths::LIVEKIT_TOKEN,
    },
};

/// Socket.IO namespace guests connect to.
pub const SOCKET_NAMESPACE: &str = "/external";

/// Socket event the guest emits: one Signal-encrypted key request to one participant device.
pub const GUEST_MESSAGE_EVENT: &str = "guest:signal_message";
/// Socket event the server relays from a participant to the guest.
pub const PARTICIPANT_MESSAGE_EVENT: &str = "participant:signal_message";
/// Socket event the server sends the guest once the host has admitted it (`{session_id}`),
/// and again on every connection of an admitted guest. Participants' answers reach only
/// admitted guests, so the exchange starts after it.
pub const GUEST_ADMITTED_EVENT: &str = "guest:admitted";
/// Socket event a guest emits (no body) to have the server repeat [`GUEST_ADMITTED_EVENT`]
/// if it is admitted: a page may connect its socket before the SDK listens.
pub const ADMISSION_QUERY_EVENT: &str = "guest:admission_query";
/// socket.io-client's own event when the socket (re)connects.
pub const SOCKET_CONNECT_EVENT: &str = "connect";
/// socket.io-client's own event when the socket disconnects.
pub const SOCKET_DISCONNECT_EVENT: &str = "disconnect";

/// `type` of the request plaintext (and of the envelope the guest emits).
pub const KEY_REQUEST_TYPE: &str = "guest:meeting_e2ee_key_request";
/// `type` of a participant's answer to one request.
pub const KEY_RESPONSE_TYPE: &str = "participant:meeting_e2ee_key_response";
/// `type` of a key a participant pushes after rotating the meeting key.
pub const KEY_UPDATE_TYPE: &str = "participant:meeting_e2ee_key_update";
/// `type` of the guest's reveal of its verification-code nonce (§10), after the answer.
pub const SAS_REVEAL_TYPE: &str = "guest:meeting_e2ee_sas_reveal";

/// HTTP path templates; `{name}` is replaced by the URI-encoded value. The defaults are the
/// contract's; a page may override each (`paths` in the configuration).
pub mod paths {
    /// `POST`: registers the guest's public keys with the invitation token.
    pub const REGISTER: &str = "/api/meetings/external/register";
    /// `GET`: the participant devices that can answer, in the server's order.
    pub const PARTICIPANTS: &str = "/api/meetings/external/{meetingId}/participants";
    /// `GET`: one participant device's keybundle (consumes one of its one-time prekeys).
    pub const PARTICIPANT_KEYS: &str =
        "/api/meetings/external/{sessionId}/participant/{userId}/{deviceId}/keys";
    /// `POST`: a LiveKit access token, once the host has admitted the guest.
    pub const LIVEKIT_TOKEN: &str = "/api/livekit/external-token";
}

/// `template` with each `{name}` replaced by its value, percent-encoded as one path segment
/// (everything but RFC 3986's unreserved characters); an unknown `{name}` is kept as written.
pub fn fill_path(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut pieces = template.split('{');
    out.push_str(pieces.next().unwrap_or_default());
    for piece in pieces {
        match piece.split_once('}').and_then(|(name, tail)| {
            let (_, value) = values.iter().find(|(n, _)| *n == name)?;
            Some((*value, tail))
        }) {
            Some((value, tail)) => {
                push_segment(&mut out, value);
                out.push_str(tail);
            }
            None => {
                out.push('{');
                out.push_str(piece);
            }
        }
    }
    out
}

fn push_segment(out: &mut String, value: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
}

/// The stable identifier of a guest in safety numbers (libsignal's `Fingerprint`, version 2,
/// 5200 iterations): `guest:<session_id>`, UTF-8.
pub fn guest_fingerprint_id(session_id: &str) -> String {
    format!("guest:{session_id}")
}

/// The stable identifier of a participant device in safety numbers: `<user_id>:<device_id>`.
pub fn participant_fingerprint_id(user_id: &str, device_id: &str) -> String {
    format!("{user_id}:{device_id}")
}

/// Header that carries the guest's session id on the participants list.
pub const GUEST_SESSION_HEADER: &str = "X-Guest-Session";
