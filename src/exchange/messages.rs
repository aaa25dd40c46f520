//! The contract's JSON messages (registration, participants, keybundles, socket events),
//! parsed strictly into typed values, in both dialects: what differs between them comes
//! from `super::dialect`. Parsing never panics and never echoes secret material in its
//! errors. The plaintexts inside the Signal messages are in [`super::plaintexts`], the
//! record kept of a registration in [`super::stored`].
//!
//! JSON goes through [`super::json`]: one small strict parser into a value tree instead of
//! a serde monomorphization per message type keeps the wasm module within its size budget.

use crate::prelude::*;

use crate::signal::kyber::KyberPublicKey;
use crate::signal::{PreKeyBundle, PublicKey, PublicKeys, PublicKyberPreKey, REGISTRATION_ID_MAX};

use super::contract::{peerwave, Names, WireProfile};
use super::dialect::Routing;
use super::json::{self, Number, Object, ObjectWriter, Value};
use super::ParticipantId;

pub use super::dialect::{names_lost_session, parse_server_pre_keys, pre_keys_body};

/// Largest HTTP body we parse (a keybundle is about 400 bytes).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest socket event we read, refused before any parsing. A relayed message is a few KB at
/// most (a v4 PreKey message with its Kyber ciphertext: about 2.5 KB of base64), and each KB
/// of hostile JSON costs main-thread time (docs/performance.md, the stall benchmark).
pub const MAX_EVENT_BYTES: usize = 16 * 1024;
const MAX_ID_LEN: usize = 256;

/// Why a piece of JSON was refused. `field` names where; nothing here carries key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The field (or message) that was refused.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: &'static str,
}

impl core::fmt::Display for Invalid {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

pub(super) fn invalid(field: &'static str, problem: &'static str) -> Invalid {
    Invalid { field, problem }
}

// ---- reading ---------------------------------------------------------------------------

pub(super) fn parse_value(body: &str, what: &'static str) -> Result<Value, Invalid> {
    if body.len() > MAX_BODY_BYTES {
        return Err(invalid(what, "body too large"));
    }
    json::parse(body).map_err(|_| invalid(what, "not JSON"))
}

pub(super) fn into_object(value: Value, what: &'static str) -> Result<Object, Invalid> {
    match value {
        Value::Object(o) => Ok(o),
        _ => Err(invalid(what, "not a JSON object")),
    }
}

/// Refuses fields outside `allowed` (keybundles are validated this strictly).
pub(super) fn only_fields(
    obj: &Object,
    allowed: &[&str],
    what: &'static str,
) -> Result<(), Invalid> {
    if obj.keys().all(|k| allowed.contains(&k)) {
        Ok(())
    } else {
        Err(invalid(what, "unknown field"))
    }
}

/// A present, non-null field.
pub(super) fn field<'a>(obj: &'a Object, name: &str) -> Option<&'a Value> {
    obj.get(name).filter(|v| !matches!(v, Value::Null))
}

pub(super) fn str_field<'a>(obj: &'a Object, name: &'static str) -> Result<&'a str, Invalid> {
    match field(obj, name) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(invalid(name, "not a string")),
        None => Err(invalid(name, "missing")),
    }
}

pub(super) fn integer(value: &Value) -> Option<u64> {
    match value {
        Value::Number(Number::U64(n)) => Some(*n),
        _ => None,
    }
}

pub(super) fn u32_field(obj: &Object, name: &'static str) -> Result<u32, Invalid> {
    let value = field(obj, name).ok_or(invalid(name, "missing"))?;
    integer(value)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or(invalid(name, "not an unsigned 32-bit integer"))
}

/// Ids arrive as strings or numbers depending on the server; we keep them as strings.
pub(super) fn id_field(obj: &Object, name: &'static str) -> Result<String, Invalid> {
    let text = match field(obj, name) {
        Some(Value::String(s)) => s.clone(),
        Some(v) => json::u64_to_string(integer(v).ok_or(invalid(name, "not a string or integer"))?),
        None => return Err(invalid(name, "missing")),
    };
    if text.is_empty() || text.len() > MAX_ID_LEN {
        return Err(invalid(name, "empty or too long"));
    }
    if text.chars().any(char::is_control) {
        return Err(invalid(name, "control character"));
    }
    Ok(text)
}

fn object_field<'a>(obj: &'a Object, name: &'static str) -> Result<&'a Object, Invalid> {
    match field(obj, name) {
        Some(Value::Object(o)) => Ok(o),
        Some(_) => Err(invalid(name, "not an object")),
        None => Err(invalid(name, "missing")),
    }
}

/// Standard base64 with padding; constant-time, since it also carries key material.
pub fn decode_base64(text: &str, field: &'static str) -> Result<Vec<u8>, Invalid> {
    super::base64::decode(text).ok_or(invalid(field, "not base64"))
}

fn public_key_field(obj: &Object, name: &'static str) -> Result<PublicKey, Invalid> {
    let bytes = decode_base64(str_field(obj, name)?, name)?;
    match bytes.len() {
        33 if bytes[0] == 0x05 => {
            PublicKey::from_bytes(&bytes).map_err(|_| invalid(name, "bad key"))
        }
        33 => Err(invalid(name, "missing 0x05 key type")),
        _ => Err(invalid(name, "wrong key length")),
    }
}

/// Standard base64 with padding, as the contract's JSON carries keys and ciphertexts.
pub fn encode_base64(bytes: &[u8]) -> String {
    super::base64::encode(bytes)
}

// ---- registration ----------------------------------------------------------------------

/// `[{<id>, <public key>}]` in `names`' spelling: the one-time prekeys' public halves.
pub(super) fn pre_key_entries(pre_keys: &[(u32, PublicKey)], names: &Names) -> String {
    let entries: Vec<String> = pre_keys
        .iter()
        .map(|(id, key)| {
            ObjectWriter::new()
                .number(names.key_id, u64::from(*id))
                .string(names.public_key, &encode_base64(&key.serialize()))
                .finish()
        })
        .collect();
    json::array(&entries)
}

/// `POST …/register`: public halves only. Private keys are not reachable from here: the
/// body is built from [`PublicKeys`]. The prekeys' field names are `names`' (PeerWave's
/// participants read only `keyId`/`publicKey`).
pub fn registration_body(
    keys: &PublicKeys,
    invitation_token: &str,
    meeting_id: &str,
    display_name: &str,
    names: &Names,
) -> String {
    let spk = &keys.signed_pre_key;
    let signed_pre_key =
        signed_key_object(spk.id, &spk.public_key.serialize(), &spk.signature, names);
    let mut body = ObjectWriter::new();
    if let (Some(name), Some(k)) = (names.kyber_pre_key, &keys.kyber_pre_key) {
        let kyber = signed_key_object(k.id, &k.public_key.serialize(), &k.signature, names);
        body = body.json(name, &kyber);
    }
    body.string("invitation_token", invitation_token)
        .string("meeting_id", meeting_id)
        .string("display_name", display_name)
        .string(
            "identity_key_public",
            &encode_base64(&keys.identity_key.serialize()),
        )
        .number("registration_id", u64::from(keys.registration_id))
        .json("signed_pre_key", &signed_pre_key)
        .json("pre_keys", &pre_key_entries(&keys.pre_keys, names))
        .finish()
}

/// `{id, public_key, signature}` in `names`' spelling.
fn signed_key_object(id: u32, public_key: &[u8], signature: &[u8], names: &Names) -> String {
    ObjectWriter::new()
        .number(names.key_id, u64::from(id))
        .string(names.public_key, &encode_base64(public_key))
        .string("signature", &encode_base64(signature))
        .finish()
}

/// A signed key's `(id, public key bytes, signature)` from `{id, public_key, signature}`.
fn parse_signed_key(
    obj: &Object,
    what: &'static str,
    names: &Names,
) -> Result<(u32, Vec<u8>, [u8; 64]), Invalid> {
    only_fields(obj, &[names.key_id, names.public_key, "signature"], what)?;
    let signature = decode_base64(str_field(obj, "signature")?, "signature")?
        .try_into()
        .map_err(|_| invalid("signature", "not 64 bytes"))?;
    let public_key = decode_base64(str_field(obj, names.public_key)?, what)?;
    Ok((u32_field(obj, names.key_id)?, public_key, signature))
}

/// The server-made `session_id`, after checking the answer is for our meeting.
pub fn parse_registration(body: &str, meeting_id: &str) -> Result<String, Invalid> {
    let obj = into_object(parse_value(body, "registration")?, "registration")?;
    if id_field(&obj, "meeting_id")? != meeting_id {
        return Err(invalid("meeting_id", "registration is for another meeting"));
    }
    id_field(&obj, "session_id")
}

/// `POST /api/livekit/external-token` body.
pub fn livekit_token_request(session_id: &str, meeting_id: &str) -> String {
    ObjectWriter::new()
        .string("sessionId", session_id)
        .string("meetingId", meeting_id)
        .finish()
}

/// `POST /api/livekit/external-token` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveKitToken {
    /// The LiveKit access token, a JWT (three dot-separated parts; not verified here).
    pub token: String,
    /// The LiveKit server URL to connect to.
    pub url: String,
    /// The room the token admits the guest to (`roomName`).
    pub room_name: String,
    /// The guest's participant identity in the room.
    pub identity: String,
}

/// Parses the external-token answer; `token` must have a JWT's three dot-separated parts.
pub fn parse_livekit_token(body: &str) -> Result<LiveKitToken, Invalid> {
    let obj = into_object(parse_value(body, "livekit token")?, "livekit token")?;
    let token = str_field(&obj, "token")?.to_owned();
    if token.split('.').count() != 3 {
        return Err(invalid("token", "not a JWT"));
    }
    Ok(LiveKitToken {
        token,
        url: str_field(&obj, "url")?.to_owned(),
        room_name: str_field(&obj, "roomName")?.to_owned(),
        identity: str_field(&obj, "identity")?.to_owned(),
    })
}

// ---- participants list -------------------------------------------------------------

/// `GET …/participants`: the server's order is kept; duplicates are dropped. The contract
/// answers a bare array; PeerWave wraps it (`{participants: […], count, …}`).
pub fn parse_participants(body: &str, profile: WireProfile) -> Result<Vec<ParticipantId>, Invalid> {
    let list = match (
        parse_value(body, "participants")?,
        profile.participants_field(),
    ) {
        (Value::Array(list), None) => list,
        (Value::Object(mut obj), Some(name)) => match obj.get_mut(name) {
            Some(Value::Array(list)) => core::mem::take(list),
            _ => return Err(invalid("participants", "not an array")),
        },
        _ => return Err(invalid("participants", "not a participants list")),
    };
    let mut out: Vec<ParticipantId> = Vec::with_capacity(list.len());
    for entry in list {
        let obj = into_object(entry, "participant")?;
        let participant =
            ParticipantId::new(id_field(&obj, "user_id")?, id_field(&obj, "device_id")?);
        if !out.contains(&participant) {
            out.push(participant);
        }
    }
    Ok(out)
}

// ---- keybundle ------------------------------------------------------------------------

/// A participant's keybundle; it must be the device we asked for. The signature is checked
/// later, by X3DH.
///
/// The contract's bundle echoes the device and is refused on any unknown field. PeerWave's
/// has no echo (it is bound to the path asked), names the one-time prekey
/// `one_time_pre_key`, sends `registration_id` as a string, and hands out prekey id 0
/// (its participants number prekeys from 0).
pub fn parse_bundle(
    body: &str,
    expected: &ParticipantId,
    profile: WireProfile,
) -> Result<PreKeyBundle, Invalid> {
    let (names, shape) = (profile.names(), profile.bundle_shape());
    let b = into_object(parse_value(body, "bundle")?, "bundle")?;
    only_fields(&b, shape.fields, "bundle")?;
    let registration_id = if shape.names_device {
        let who = ParticipantId::new(id_field(&b, "user_id")?, id_field(&b, "device_id")?);
        if who != *expected {
            return Err(invalid("bundle", "bundle is for a different device"));
        }
        u32_field(&b, "registration_id")?
    } else {
        id_field(&b, "registration_id")?
            .parse()
            .map_err(|_| invalid("registration_id", "not an integer"))?
    };
    if registration_id > REGISTRATION_ID_MAX || registration_id < shape.first_id {
        return Err(invalid("registration_id", "out of range"));
    }
    let identity_key = public_key_field(&b, "identity_key")?;
    let spk = object_field(&b, "signed_pre_key")?;
    let signed_pre_key = public_key_field(spk, names.public_key)?;
    let (signed_pre_key_id, _, signature) = parse_signed_key(spk, "signed_pre_key", names)?;
    let kyber_pre_key = match names.kyber_pre_key.and_then(|name| field(&b, name)) {
        None => None,
        Some(Value::Object(k)) => {
            let (id, public_key, signature) = parse_signed_key(k, "kyber_pre_key", names)?;
            let public_key = KyberPublicKey::from_bytes(&public_key)
                .map_err(|_| invalid("kyber_pre_key", "not a Kyber1024 key"))?;
            Some(PublicKyberPreKey {
                id,
                public_key,
                signature,
            })
        }
        Some(_) => return Err(invalid("kyber_pre_key", "not an object or null")),
    };
    let pre_key = match field(&b, names.bundle_pre_key) {
        None => None,
        Some(Value::Object(pk)) => {
            only_fields(pk, &[names.key_id, names.public_key], "pre_key")?;
            match u32_field(pk, names.key_id)? {
                id if id < shape.first_id => {
                    return Err(invalid("id", "prekey id 0 is never issued"))
                }
                id => Some((id, public_key_field(pk, names.public_key)?)),
            }
        }
        Some(_) => return Err(invalid("pre_key", "not an object or null")),
    };
    Ok(PreKeyBundle {
        registration_id,
        device_id: 1,
        identity_key,
        signed_pre_key_id,
        signed_pre_key,
        signed_pre_key_signature: signature,
        pre_key,
        kyber_pre_key,
    })
}

// ---- socket events --------------------------------------------------------------------

/// A participant's Signal message as relayed by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingMessage {
    /// The participant device that sent it.
    pub from: ParticipantId,
    /// Signal message type: 3 PreKey, 2 (or the TypeScript port's 1) SignalMessage; `None`
    /// when the event has none.
    pub message_type: Option<u32>,
    /// The Signal ciphertext, base64-decoded.
    pub ciphertext: Vec<u8>,
    /// The request it answers, from the envelope (PeerWave's answers carry it only there).
    pub request_id: Option<String>,
}

/// Parses a relayed participant message in `names`' spelling. Refuses an event longer than
/// [`MAX_EVENT_BYTES`], message type 0 (plaintext) and types above 3.
pub fn parse_incoming(body: &str, names: &Names) -> Result<IncomingMessage, Invalid> {
    if body.len() > MAX_EVENT_BYTES {
        return Err(invalid("event", "too large"));
    }
    let m = into_object(parse_value(body, "event")?, "event")?;
    let from = ParticipantId::new(
        id_field(&m, "participant_user_id")?,
        id_field(&m, "participant_device_id")?,
    );
    let encrypted = str_field(&m, names.ciphertext)?;
    let message_type = match field(&m, names.message_type) {
        None => None,
        Some(v) => match integer(v) {
            Some(0) => return Err(invalid("message_type", "plaintext messages are refused")),
            Some(t @ 1..=3) => Some(t as u32),
            _ => return Err(invalid("message_type", "unknown")),
        },
    };
    let request_id = match field(&m, peerwave::REQUEST_ID_FIELD) {
        Some(Value::String(s)) if s.len() <= MAX_ID_LEN => Some(s.clone()),
        None => None,
        Some(_) => return Err(invalid("request_id", "not a string")),
    };
    Ok(IncomingMessage {
        from,
        message_type,
        ciphertext: decode_base64(encrypted, "encrypted_message")?,
        request_id,
    })
}

/// A guest event to `to`, addressed as `routing` says, carrying a Signal message in
/// `names`' spelling.
pub(super) fn guest_event(
    to: &ParticipantId,
    routing: &Routing<'_>,
    names: &Names,
    message_type: u8,
    ciphertext: &[u8],
) -> String {
    let event = ObjectWriter::new().string("participant_user_id", &to.user_id);
    let event = match routing.device_number {
        Some(n) => event.number("participant_device_id", u64::from(n)),
        None => event.string("participant_device_id", &to.device_id),
    };
    event
        .string(routing.field, routing.value)
        .string(names.ciphertext, &encode_base64(ciphertext))
        .number(names.message_type, u64::from(message_type))
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::ProtocolStore;
    use rand::rngs::OsRng;

    #[test]
    fn registration_body_carries_public_halves_only() {
        let store = ProtocolStore::generate(&mut OsRng, 30);
        let body = registration_body(
            &store.public_keys().unwrap(),
            "tok",
            "m",
            "Guest",
            &crate::exchange::contract::PLAN,
        );
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "display_name",
                "identity_key_public",
                "invitation_token",
                "meeting_id",
                "pre_keys",
                "registration_id",
                "signed_pre_key"
            ]
        );
        assert_eq!(v["pre_keys"].as_array().unwrap().len(), 30);
        assert!(!body.to_lowercase().contains("priv"));
        let mut secrets = vec![store.identity.private.expose_bytes().to_vec()];
        secrets.extend(
            store
                .signed_pre_key
                .iter()
                .map(|k| k.key_pair.private.expose_bytes().to_vec()),
        );
        secrets.extend(
            store
                .one_time_pre_keys
                .values()
                .map(|k| k.key_pair.private.expose_bytes().to_vec()),
        );
        assert_eq!(secrets.len(), 32);
        for secret in secrets {
            assert!(!body.contains(&encode_base64(&secret)));
            assert!(!body.contains(&encode_base64(&secret)[..20]));
        }
        assert_eq!(
            parse_registration(
                r#"{"session_id":"s1","meeting_id":"m","display_name":"G"}"#,
                "m"
            )
            .unwrap(),
            "s1"
        );
        assert!(parse_registration(r#"{"session_id":"s1","meeting_id":"x"}"#, "m").is_err());
    }

    fn p() -> ParticipantId {
        ParticipantId::new("alice".into(), "1".into())
    }

    #[test]
    fn participants_keep_order_and_accept_numeric_device_ids() {
        let list = parse_participants(
            r#"[{"user_id":"b","device_id":2,"display_name":"B"},{"user_id":"a","device_id":"1"},{"user_id":"b","device_id":"2"}]"#,
            WireProfile::Plan,
        )
        .unwrap();
        assert_eq!(
            list,
            vec![
                ParticipantId::new("b".into(), "2".into()),
                ParticipantId::new("a".into(), "1".into())
            ]
        );
        assert!(parse_participants("{}", WireProfile::Plan).is_err());
        assert!(
            parse_participants(r#"[{"user_id":"","device_id":"1"}]"#, WireProfile::Plan).is_err()
        );
    }

    #[test]
    fn incoming_refuses_plaintext_type_and_oversize() {
        let ok = r#"{"participant_user_id":"alice","participant_device_id":"1","type":"x","encrypted_message":"AAAA","message_type":2,"timestamp":1}"#;
        let plan = &crate::exchange::contract::PLAN;
        assert_eq!(parse_incoming(ok, plan).unwrap().from, p());
        let zero = ok.replace("\"message_type\":2", "\"message_type\":0");
        assert_eq!(
            parse_incoming(&zero, plan).unwrap_err().field,
            "message_type"
        );
        let big = ok.replace("AAAA", &"A".repeat(MAX_EVENT_BYTES));
        assert_eq!(parse_incoming(&big, plan).unwrap_err().field, "event");
        let at_the_limit = ok.replace("AAAA", &"A".repeat(MAX_EVENT_BYTES - ok.len() + 4));
        assert_eq!(at_the_limit.len(), MAX_EVENT_BYTES);
        assert!(parse_incoming(&at_the_limit, plan).is_ok());
    }
}
