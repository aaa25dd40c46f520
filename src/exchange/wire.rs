//! The JSON the exchange reads and writes (contract §3–§5), parsed strictly into typed
//! values. Parsing never panics and never echoes secret material in its errors.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::signal::{PreKeyBundle, PublicKey, REGISTRATION_ID_MAX};

use super::key::MeetingKey;
use super::ParticipantId;

pub const REQUEST_TYPE: &str = "guest:meeting_e2ee_key_request";
pub const RESPONSE_TYPE: &str = "participant:meeting_e2ee_key_response";
pub const UPDATE_TYPE: &str = "participant:meeting_e2ee_key_update";

/// Largest HTTP body we parse (a keybundle is about 400 bytes).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest `encrypted_message` (base64) we accept from the socket.
pub const MAX_ENCRYPTED_MESSAGE_BYTES: usize = 64 * 1024;
const MAX_ID_LEN: usize = 256;

/// Why a piece of JSON was refused. `field` names where; nothing here carries key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: &'static str,
    pub problem: &'static str,
}

impl core::fmt::Display for Invalid {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

fn invalid(field: &'static str, problem: &'static str) -> Invalid {
    Invalid { field, problem }
}

fn parse_json<'a, T: Deserialize<'a>>(body: &'a str, what: &'static str) -> Result<T, Invalid> {
    if body.len() > MAX_BODY_BYTES {
        return Err(invalid(what, "body too large"));
    }
    serde_json::from_str(body).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => invalid(what, "missing field, unknown field or wrong type"),
            Category::Syntax | Category::Eof => invalid(what, "not JSON"),
            Category::Io => invalid(what, "unreadable"),
        }
    })
}

/// Ids arrive as strings or numbers depending on the server; we keep them as strings.
#[derive(Deserialize)]
#[serde(untagged)]
enum IdJson {
    Text(String),
    Number(u64),
}

fn id(value: IdJson, field: &'static str) -> Result<String, Invalid> {
    let text = match value {
        IdJson::Text(t) => t,
        IdJson::Number(n) => n.to_string(),
    };
    if text.is_empty() || text.len() > MAX_ID_LEN {
        return Err(invalid(field, "empty or too long"));
    }
    if text.chars().any(char::is_control) {
        return Err(invalid(field, "control character"));
    }
    Ok(text)
}

pub(crate) fn decode_base64(text: &str, field: &'static str) -> Result<Vec<u8>, Invalid> {
    STANDARD
        .decode(text)
        .map_err(|_| invalid(field, "not base64"))
}

fn public_key(text: &str, field: &'static str) -> Result<PublicKey, Invalid> {
    let bytes = decode_base64(text, field)?;
    match bytes.len() {
        33 if bytes[0] == 0x05 => {
            PublicKey::from_bytes(&bytes).map_err(|_| invalid(field, "bad key"))
        }
        33 => Err(invalid(field, "missing 0x05 key type")),
        _ => Err(invalid(field, "wrong key length")),
    }
}

pub fn encode_base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

// ---- participants list -------------------------------------------------------------

#[derive(Deserialize)]
struct ParticipantJson {
    user_id: IdJson,
    device_id: IdJson,
}

/// `GET …/participants`: the server's order is kept; duplicates are dropped.
pub fn parse_participants(body: &str) -> Result<Vec<ParticipantId>, Invalid> {
    let list: Vec<ParticipantJson> = parse_json(body, "participants")?;
    let mut out: Vec<ParticipantId> = Vec::with_capacity(list.len());
    for p in list {
        let participant =
            ParticipantId::new(id(p.user_id, "user_id")?, id(p.device_id, "device_id")?);
        if !out.contains(&participant) {
            out.push(participant);
        }
    }
    Ok(out)
}

// ---- keybundle ------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignedPreKeyJson {
    id: u32,
    public_key: String,
    signature: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PreKeyJson {
    id: u32,
    public_key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BundleJson {
    user_id: IdJson,
    device_id: IdJson,
    identity_key: String,
    registration_id: u32,
    signed_pre_key: SignedPreKeyJson,
    pre_key: Option<PreKeyJson>,
}

/// A participant's keybundle; it must be the device we asked for. The signature is checked
/// later, by X3DH.
pub fn parse_bundle(body: &str, expected: &ParticipantId) -> Result<PreKeyBundle, Invalid> {
    let b: BundleJson = parse_json(body, "bundle")?;
    let who = ParticipantId::new(id(b.user_id, "user_id")?, id(b.device_id, "device_id")?);
    if who != *expected {
        return Err(invalid("bundle", "bundle is for a different device"));
    }
    if !(1..=REGISTRATION_ID_MAX).contains(&b.registration_id) {
        return Err(invalid("registration_id", "out of range"));
    }
    let signature = decode_base64(&b.signed_pre_key.signature, "signed_pre_key.signature")?
        .try_into()
        .map_err(|_| invalid("signed_pre_key.signature", "not 64 bytes"))?;
    let pre_key = match b.pre_key {
        Some(pk) if pk.id == 0 => return Err(invalid("pre_key.id", "id 0 is never issued")),
        Some(pk) => Some((pk.id, public_key(&pk.public_key, "pre_key.public_key")?)),
        None => None,
    };
    Ok(PreKeyBundle {
        registration_id: b.registration_id,
        device_id: 1,
        identity_key: public_key(&b.identity_key, "identity_key")?,
        signed_pre_key_id: b.signed_pre_key.id,
        signed_pre_key: public_key(&b.signed_pre_key.public_key, "signed_pre_key.public_key")?,
        signed_pre_key_signature: signature,
        pre_key,
    })
}

// ---- socket events --------------------------------------------------------------------

#[derive(Deserialize)]
struct IncomingJson {
    participant_user_id: IdJson,
    participant_device_id: IdJson,
    encrypted_message: String,
    #[serde(default)]
    message_type: Option<u32>,
}

/// `participant:signal_message` as relayed by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingMessage {
    pub from: ParticipantId,
    pub message_type: Option<u32>,
    pub ciphertext: Vec<u8>,
}

pub fn parse_incoming(body: &str) -> Result<IncomingMessage, Invalid> {
    let m: IncomingJson = parse_json(body, "event")?;
    if m.encrypted_message.len() > MAX_ENCRYPTED_MESSAGE_BYTES {
        return Err(invalid("encrypted_message", "too large"));
    }
    match m.message_type {
        Some(0) => return Err(invalid("message_type", "plaintext messages are refused")),
        Some(1..=3) | None => {}
        Some(_) => return Err(invalid("message_type", "unknown")),
    }
    Ok(IncomingMessage {
        from: ParticipantId::new(
            id(m.participant_user_id, "participant_user_id")?,
            id(m.participant_device_id, "participant_device_id")?,
        ),
        message_type: m.message_type,
        ciphertext: decode_base64(&m.encrypted_message, "encrypted_message")?,
    })
}

/// `guest:signal_message` body.
pub fn outgoing_message(to: &ParticipantId, message_type: u8, ciphertext: &[u8]) -> String {
    json!({
        "participant_user_id": to.user_id,
        "participant_device_id": to.device_id,
        "type": REQUEST_TYPE,
        "encrypted_message": encode_base64(ciphertext),
        "message_type": message_type,
    })
    .to_string()
}

// ---- plaintexts -----------------------------------------------------------------------

/// 16 random bytes, base64url without padding.
pub fn request_id(random: &[u8; 16]) -> String {
    URL_SAFE_NO_PAD.encode(random)
}

pub fn request_plaintext(
    meeting_id: &str,
    guest_session_id: &str,
    request_id: &str,
    now_ms: u64,
) -> String {
    json!({
        "type": REQUEST_TYPE,
        "meeting_id": meeting_id,
        "guest_session_id": guest_session_id,
        "request_id": request_id,
        "timestamp": now_ms,
    })
    .to_string()
}

/// A decrypted answer from a participant, before the exchange checks it belongs to us.
#[derive(Debug)]
pub struct KeyMessage {
    pub kind: KeyMessageKind,
    pub meeting_id: String,
    pub request_id: Option<String>,
    pub key: MeetingKey,
    pub key_index: u8,
    pub timestamp_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMessageKind {
    Response,
    Update,
}

#[derive(Deserialize)]
struct KeyMessageJson {
    #[serde(rename = "type")]
    kind: Option<Value>,
    meeting_id: Option<Value>,
    request_id: Option<Value>,
    /// Wiped on drop, like every other copy of the key.
    key: Option<Zeroizing<String>>,
    key_index: Option<Value>,
    timestamp: Option<Value>,
}

fn text(value: &Option<Value>, field: &'static str) -> Result<String, Invalid> {
    match value {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(invalid(field, "missing or not a string")),
    }
}

/// Parses a decrypted plaintext. The key must be base64 of exactly 32 bytes.
pub fn parse_key_message(plaintext: &[u8]) -> Result<KeyMessage, Invalid> {
    let body = core::str::from_utf8(plaintext).map_err(|_| invalid("plaintext", "not UTF-8"))?;
    if !body.trim_start().starts_with('{') {
        return Err(invalid("plaintext", "not a JSON object"));
    }
    let m: KeyMessageJson = parse_json(body, "plaintext")?;
    let kind = match text(&m.kind, "type")?.as_str() {
        RESPONSE_TYPE => KeyMessageKind::Response,
        UPDATE_TYPE => KeyMessageKind::Update,
        _ => return Err(invalid("type", "not a key response or update")),
    };
    let meeting_id = text(&m.meeting_id, "meeting_id")?;
    let request_id = match kind {
        KeyMessageKind::Response => Some(text(&m.request_id, "request_id")?),
        KeyMessageKind::Update => None,
    };
    let key_index = match &m.key_index {
        None => 0,
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|i| u8::try_from(i).ok())
            .ok_or(invalid("key_index", "not an integer 0..255"))?,
        Some(_) => return Err(invalid("key_index", "not an integer 0..255")),
    };
    let timestamp_ms = match &m.timestamp {
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9e15)
                    .map(|f| f as i64)
            })
            .ok_or(invalid("timestamp", "not an integer"))?,
        _ => return Err(invalid("timestamp", "missing or not a number")),
    };
    let encoded = m
        .key
        .as_ref()
        .ok_or(invalid("key", "missing or not a string"))?;
    let key_bytes = Zeroizing::new(decode_base64(encoded, "key")?);
    let key = MeetingKey::from_slice(&key_bytes).ok_or(invalid("key", "not 32 bytes"))?;
    Ok(KeyMessage {
        kind,
        meeting_id,
        request_id,
        key,
        key_index,
        timestamp_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> ParticipantId {
        ParticipantId::new("alice".into(), "1".into())
    }

    #[test]
    fn participants_keep_order_and_accept_numeric_device_ids() {
        let list = parse_participants(
            r#"[{"user_id":"b","device_id":2,"display_name":"B"},{"user_id":"a","device_id":"1"},{"user_id":"b","device_id":"2"}]"#,
        )
        .unwrap();
        assert_eq!(
            list,
            vec![
                ParticipantId::new("b".into(), "2".into()),
                ParticipantId::new("a".into(), "1".into())
            ]
        );
        assert!(parse_participants("{}").is_err());
        assert!(parse_participants(r#"[{"user_id":"","device_id":"1"}]"#).is_err());
    }

    #[test]
    fn incoming_refuses_plaintext_type_and_oversize() {
        let ok = r#"{"participant_user_id":"alice","participant_device_id":"1","type":"x","encrypted_message":"AAAA","message_type":2,"timestamp":1}"#;
        assert_eq!(parse_incoming(ok).unwrap().from, p());
        let zero = ok.replace("\"message_type\":2", "\"message_type\":0");
        assert_eq!(parse_incoming(&zero).unwrap_err().field, "message_type");
        let big = ok.replace("AAAA", &"A".repeat(MAX_ENCRYPTED_MESSAGE_BYTES + 4));
        assert!(parse_incoming(&big).is_err());
    }

    #[test]
    fn key_message_checks_key_length_and_index() {
        let key = encode_base64(&[7u8; 32]);
        let good = format!(
            r#"{{"type":"{RESPONSE_TYPE}","meeting_id":"m","request_id":"r","key":"{key}","key_index":3,"timestamp":5}}"#
        );
        let m = parse_key_message(good.as_bytes()).unwrap();
        assert_eq!(
            (m.key_index, m.timestamp_ms, m.kind),
            (3, 5, KeyMessageKind::Response)
        );
        for len in [0usize, 31, 33] {
            let bad = good.replace(&key, &encode_base64(&vec![1u8; len]));
            assert_eq!(parse_key_message(bad.as_bytes()).unwrap_err().field, "key");
        }
        let bad_index = good.replace("\"key_index\":3", "\"key_index\":256");
        assert_eq!(
            parse_key_message(bad_index.as_bytes()).unwrap_err().field,
            "key_index"
        );
        assert!(parse_key_message(b"not json").is_err());
        assert!(parse_key_message(&[0xff, 0xfe]).is_err());
    }
}
