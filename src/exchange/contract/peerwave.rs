//! PeerWave's names for the guest key exchange, as its server (upstream `8956afd`) and its
//! Flutter participants ship them (docs/contract.md §8). Only names live here; what the
//! `peerwave` profile does differently is in `src/exchange/dialect/peerwave.rs`.

use super::{Names, PathTemplates};

/// The guest's key request, relayed to every participant of the meeting.
pub const KEY_REQUEST_EVENT: &str = "guest:meeting_e2ee_key_request";
/// A participant's answer, relayed to the guest's own room.
pub const KEY_RESPONSE_EVENT: &str = "participant:meeting_e2ee_key_response";
/// Sent on `/external` to every waiting guest of the meeting when the host admits one
/// (`{session_id, meeting_id, admitted_by}`): only the one naming our session counts.
pub const ADMISSION_GRANTED_EVENT: &str = "meeting:admission_granted";
/// Sent like [`ADMISSION_GRANTED_EVENT`] when the host declines a guest.
pub const ADMISSION_DENIED_EVENT: &str = "meeting:admission_denied";
/// The server's answer to a valid handshake (`{success, session_id, …}`). Events a guest
/// emits before it are lost: the server attaches its handlers only then.
pub const AUTHENTICATED_EVENT: &str = "authenticated";
/// The server's refusal of a handshake (`{message}`), followed by a disconnect.
pub const HANDSHAKE_ERROR_EVENT: &str = "error";
/// Handshake refusals that mean the server no longer has this guest's registration
/// (sessions live in memory: a restart or another guest's registration deletes them).
pub const SESSION_GONE_MESSAGES: [&str; 3] =
    ["Invalid session", "Session expired", "Session mismatch"];
/// The `error` of a 403 or 404 whose cause is that the server no longer has the guest's
/// session: 404 on the keybundle, admission request and registration lookup; 403 on the
/// LiveKit token and, after 24 hours, on the registration lookup.
pub const SESSION_GONE_ERRORS: [&str; 3] = [
    "Session not found",
    "Invalid guest session",
    "Session expired",
];

/// Handshake `auth` fields (`socket.auth`).
pub mod handshake {
    /// The server-made guest session id.
    pub const SESSION_ID: &str = "session_id";
    /// The invitation token.
    pub const TOKEN: &str = "token";
    /// The meeting id.
    pub const MEETING_ID: &str = "meeting_id";
}

/// Plaintext field names (camelCase, unlike the envelope).
pub mod plaintext {
    /// Request: the guest's session id.
    pub const REQUESTER_ID: &str = "requesterId";
    /// Request and answer: the meeting.
    pub const MEETING_ID: &str = "meetingId";
    /// Answer: the meeting key, standard base64 of 32 bytes.
    pub const ENCRYPTED_KEY: &str = "encryptedKey";
    /// Request: ISO-8601 text; answer: milliseconds since the Unix epoch.
    pub const TIMESTAMP: &str = "timestamp";
}

/// The request id on the envelope (outside the ciphertext), echoed by the answer.
pub const REQUEST_ID_FIELD: &str = "request_id";

/// PeerWave's HTTP paths beyond the shared [`PathTemplates`].
pub mod paths {
    /// `GET`: the guest's prekeys still on the server (`{count, preKeys}`).
    /// `POST {pre_keys}`: appends prekeys.
    pub const PRE_KEYS: &str = "/api/meetings/external/session/{sessionId}/prekeys";
    /// `POST` (no body): puts the guest in the host's lobby. On an admitted session it
    /// withdraws the admission, so it is sent only while not admitted.
    pub const REQUEST_ADMISSION: &str =
        "/api/meetings/{meetingId}/external/{sessionId}/request-admission";
}

/// PeerWave's names.
pub const NAMES: Names = Names {
    guest_event: KEY_REQUEST_EVENT,
    participant_event: KEY_RESPONSE_EVENT,
    admitted_event: ADMISSION_GRANTED_EVENT,
    key_id: "keyId",
    public_key: "publicKey",
    bundle_pre_key: "one_time_pre_key",
    ciphertext: "ciphertext",
    message_type: "messageType",
    // PeerWave's participants run libsignal_protocol_dart, which has no PQXDH.
    kyber_pre_key: None,
    paths: PathTemplates {
        register: super::paths::REGISTER,
        participants: "/api/meetings/{meetingId}/livekit-participants?token={invitationToken}",
        participant_keys: super::paths::PARTICIPANT_KEYS,
        livekit_token: "/api/livekit/guest-token",
    },
};
