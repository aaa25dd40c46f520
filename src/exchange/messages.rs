//! The contract's JSON messages (registration, participants, keybundles, socket events,
//! request and answer plaintexts), parsed strictly into typed values. Parsing never panics and never echoes secret material in its errors.
//!
//! JSON goes through [`super::json`]: one small strict parser into a value tree instead of
//! a serde monomorphization per message type keeps the wasm module within its size budget.

use crate::prelude::*;

use crate::signal::kyber::KyberPublicKey;
use crate::signal::{PreKeyBundle, PublicKey, PublicKeys, PublicKyberPreKey, REGISTRATION_ID_MAX};

use super::contract::{peerwave, Dialect, WireProfile};
use super::json::{self, Number, Object, ObjectWriter, Value};
use super::ParticipantId;

/// Largest HTTP body we parse (a keybundle is about 400 bytes).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest `encrypted_message` (base64) we accept from the socket.
pub const MAX_ENCRYPTED_MESSAGE_BYTES: usize = 64 * 1024;
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
fn only_fields(obj: &Object, allowed: &[&str], what: &'static str) -> Result<(), Invalid> {
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

fn u32_field(obj: &Object, name: &'static str) -> Result<u32, Invalid> {
    let value = field(obj, name).ok_or(invalid(name, "missing"))?;
    integer(value)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or(invalid(name, "not an unsigned 32-bit integer"))
}

/// Ids arrive as strings or numbers depending on the server; we keep them as strings.
fn id_field(obj: &Object, name: &'static str) -> Result<String, Invalid> {
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

/// `[{<id>, <public key>}]` in `dialect`'s names: the one-time prekeys' public halves.
fn pre_key_entries(pre_keys: &[(u32, PublicKey)], dialect: &Dialect) -> String {
    let entries: Vec<String> = pre_keys
        .iter()
        .map(|(id, key)| {
            ObjectWriter::new()
                .number(dialect.key_id, u64::from(*id))
                .string(dialect.public_key, &encode_base64(&key.serialize()))
                .finish()
        })
        .collect();
    json::array(&entries)
}

/// `POST …/register`: public halves only. Private keys are not reachable from here: the
/// body is built from [`PublicKeys`]. The prekeys' field names are `dialect`'s (PeerWave's
/// participants read only `keyId`/`publicKey`).
pub fn registration_body(
    keys: &PublicKeys,
    invitation_token: &str,
    meeting_id: &str,
    display_name: &str,
    dialect: &Dialect,
) -> String {
    let spk = &keys.signed_pre_key;
    let signed_pre_key =
        signed_key_object(spk.id, &spk.public_key.serialize(), &spk.signature, dialect);
    let mut body = ObjectWriter::new();
    if let (Some(name), Some(k)) = (dialect.kyber_pre_key, &keys.kyber_pre_key) {
        let kyber = signed_key_object(k.id, &k.public_key.serialize(), &k.signature, dialect);
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
        .json("pre_keys", &pre_key_entries(&keys.pre_keys, dialect))
        .finish()
}

/// `{id, public_key, signature}` in `dialect`'s names.
fn signed_key_object(id: u32, public_key: &[u8], signature: &[u8], dialect: &Dialect) -> String {
    ObjectWriter::new()
        .number(dialect.key_id, u64::from(id))
        .string(dialect.public_key, &encode_base64(public_key))
        .string("signature", &encode_base64(signature))
        .finish()
}

/// A signed key's `(id, public key bytes, signature)` from `{id, public_key, signature}`.
fn parse_signed_key(
    obj: &Object,
    what: &'static str,
    dialect: &Dialect,
) -> Result<(u32, Vec<u8>, [u8; 64]), Invalid> {
    only_fields(
        obj,
        &[dialect.key_id, dialect.public_key, "signature"],
        what,
    )?;
    let signature = decode_base64(str_field(obj, "signature")?, "signature")?
        .try_into()
        .map_err(|_| invalid("signature", "not 64 bytes"))?;
    let public_key = decode_base64(str_field(obj, dialect.public_key)?, what)?;
    Ok((u32_field(obj, dialect.key_id)?, public_key, signature))
}

/// PeerWave's prekey top-up body: `{pre_keys: [{keyId, publicKey}]}`.
pub fn pre_keys_body(pre_keys: &[(u32, PublicKey)]) -> String {
    ObjectWriter::new()
        .json("pre_keys", &pre_key_entries(pre_keys, &peerwave::DIALECT))
        .finish()
}

/// The ids of the guest's prekeys PeerWave still holds (`{count, preKeys: [{keyId, …}]}`).
pub fn parse_server_pre_keys(body: &str) -> Result<Vec<u32>, Invalid> {
    let obj = into_object(parse_value(body, "prekeys")?, "prekeys")?;
    let Some(Value::Array(list)) = field(&obj, "preKeys") else {
        return Err(invalid("preKeys", "not an array"));
    };
    list.iter()
        .map(|entry| match entry {
            Value::Object(k) => u32_field(k, "keyId"),
            _ => Err(invalid("preKeys", "not an object")),
        })
        .collect()
}

/// Whether an HTTP answer says the server no longer has the guest's session (PeerWave keeps
/// guest sessions in memory: after a restart every call with the old session id gets this).
pub fn names_lost_session(status: u16, body: &str) -> bool {
    let Ok(Value::Object(obj)) = json::parse(body) else {
        return false;
    };
    matches!(status, 403 | 404)
        && matches!(field(&obj, "error"), Some(Value::String(e)) if peerwave::SESSION_GONE_ERRORS.contains(&e.as_str()))
}

/// What the SDK keeps of a registration (sessionStorage), in the answer's own shape, and
/// whether the host has admitted the guest: PeerWave does not repeat its admission notice,
/// and asking for admission again would put an admitted guest back in the lobby.
pub fn registration_record(session_id: &str, meeting_id: &str, admitted: bool) -> String {
    let record = ObjectWriter::new()
        .string("session_id", session_id)
        .string("meeting_id", meeting_id);
    match admitted {
        true => record.json("admitted", "true"),
        false => record,
    }
    .finish()
}

/// Whether a stored registration record says the guest was admitted.
pub fn record_admitted(record: &str) -> bool {
    matches!(json::parse(record), Ok(Value::Object(o)) if matches!(o.get("admitted"), Some(Value::Bool(true))))
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
    let list = match (parse_value(body, "participants")?, profile) {
        (Value::Array(list), WireProfile::Plan) => list,
        (Value::Object(mut obj), WireProfile::PeerWave) => match obj.get_mut("participants") {
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
    let d = profile.dialect();
    let b = into_object(parse_value(body, "bundle")?, "bundle")?;
    let registration_id = match profile {
        WireProfile::Plan => {
            only_fields(
                &b,
                &[
                    "user_id",
                    "device_id",
                    "identity_key",
                    "registration_id",
                    "signed_pre_key",
                    "pre_key",
                    "kyber_pre_key",
                ],
                "bundle",
            )?;
            let who = ParticipantId::new(id_field(&b, "user_id")?, id_field(&b, "device_id")?);
            if who != *expected {
                return Err(invalid("bundle", "bundle is for a different device"));
            }
            u32_field(&b, "registration_id")?
        }
        WireProfile::PeerWave => {
            only_fields(
                &b,
                &[
                    "identity_key",
                    "registration_id",
                    "signed_pre_key",
                    "one_time_pre_key",
                ],
                "bundle",
            )?;
            id_field(&b, "registration_id")?
                .parse()
                .map_err(|_| invalid("registration_id", "not an integer"))?
        }
    };
    if registration_id > REGISTRATION_ID_MAX
        || (registration_id == 0 && profile == WireProfile::Plan)
    {
        return Err(invalid("registration_id", "out of range"));
    }
    let identity_key = public_key_field(&b, "identity_key")?;
    let spk = object_field(&b, "signed_pre_key")?;
    let signed_pre_key = public_key_field(spk, d.public_key)?;
    let (signed_pre_key_id, _, signature) = parse_signed_key(spk, "signed_pre_key", d)?;
    let kyber_pre_key = match d.kyber_pre_key.and_then(|name| field(&b, name)) {
        None => None,
        Some(Value::Object(k)) => {
            let (id, public_key, signature) = parse_signed_key(k, "kyber_pre_key", d)?;
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
    let pre_key = match field(&b, d.bundle_pre_key) {
        None => None,
        Some(Value::Object(pk)) => {
            only_fields(pk, &[d.key_id, d.public_key], "pre_key")?;
            match u32_field(pk, d.key_id)? {
                0 if profile == WireProfile::Plan => {
                    return Err(invalid("id", "prekey id 0 is never issued"))
                }
                id => Some((id, public_key_field(pk, d.public_key)?)),
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

/// Parses a relayed participant message in `dialect`'s names. Refuses message type 0
/// (plaintext) and types above 3, and a ciphertext longer than
/// [`MAX_ENCRYPTED_MESSAGE_BYTES`].
pub fn parse_incoming(body: &str, dialect: &Dialect) -> Result<IncomingMessage, Invalid> {
    let m = into_object(parse_value(body, "event")?, "event")?;
    let from = ParticipantId::new(
        id_field(&m, "participant_user_id")?,
        id_field(&m, "participant_device_id")?,
    );
    let encrypted = str_field(&m, dialect.ciphertext)?;
    if encrypted.len() > MAX_ENCRYPTED_MESSAGE_BYTES {
        return Err(invalid("encrypted_message", "too large"));
    }
    let message_type = match field(&m, dialect.message_type) {
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

/// The guest's message event in `dialect`'s names. The contract's carries the plaintext's
/// `type` as a routing hint; PeerWave's carries the request id outside the ciphertext (its
/// participants echo it) and the device id as a number, as its own guests send it.
pub fn outgoing_message(
    to: &ParticipantId,
    kind: &str,
    message_type: u8,
    ciphertext: &[u8],
    dialect: &Dialect,
    request_id: Option<&str>,
) -> String {
    let mut w = ObjectWriter::new().string("participant_user_id", &to.user_id);
    w = match (request_id, to.device_id.parse::<u32>()) {
        (Some(_), Ok(n)) => w.number("participant_device_id", u64::from(n)),
        _ => w.string("participant_device_id", &to.device_id),
    };
    w = match request_id {
        Some(id) => w.string(peerwave::REQUEST_ID_FIELD, id),
        None => w.string("type", kind),
    };
    w.string(dialect.ciphertext, &encode_base64(ciphertext))
        .number(dialect.message_type, u64::from(message_type))
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
        let big = ok.replace("AAAA", &"A".repeat(MAX_ENCRYPTED_MESSAGE_BYTES + 4));
        assert!(parse_incoming(&big, plan).is_err());
    }

    const PW_BUNDLE: &str = r#"{"identity_key":"IK","registration_id":"4242","signed_pre_key":{"keyId":7,"publicKey":"SPK","signature":"SIG"},"one_time_pre_key":{"keyId":0,"publicKey":"OPK"}}"#;

    fn pw_bundle() -> String {
        let store = ProtocolStore::generate(&mut OsRng, 1);
        let keys = store.public_keys().unwrap();
        let key = |k: &PublicKey| encode_base64(&k.serialize());
        PW_BUNDLE
            .replace("IK", &key(&keys.identity_key))
            .replace("SPK", &key(&keys.signed_pre_key.public_key))
            .replace("SIG", &encode_base64(&keys.signed_pre_key.signature))
            .replace("OPK", &key(&keys.pre_keys[0].1))
    }

    #[test]
    fn peerwave_bundle_has_its_own_shape() {
        let body = pw_bundle();
        let b = parse_bundle(&body, &p(), WireProfile::PeerWave).unwrap();
        assert_eq!((b.registration_id, b.signed_pre_key_id), (4242, 7));
        assert_eq!(b.pre_key.map(|(id, _)| id), Some(0));
        let numeric = body.replace("\"4242\"", "4242");
        assert_eq!(
            parse_bundle(&numeric, &p(), WireProfile::PeerWave)
                .unwrap()
                .registration_id,
            4242
        );
        let none = body.replace(
            &body[body.find("{\"keyId\":0").unwrap()..body.len() - 1],
            "null",
        );
        assert!(parse_bundle(&none, &p(), WireProfile::PeerWave)
            .unwrap()
            .pre_key
            .is_none());
        // The plan's strict parser refuses PeerWave's shape, and PeerWave's refuses junk.
        assert!(parse_bundle(&body, &p(), WireProfile::Plan).is_err());
        for bad in [
            body.replace("\"4242\"", "\"42a\""),
            body.replace("\"4242\"", "\"99999\""),
            body.replace("one_time_pre_key", "pre_key"),
            body.replace("\"keyId\":7", "\"id\":7"),
        ] {
            assert!(
                parse_bundle(&bad, &p(), WireProfile::PeerWave).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn peerwave_participants_are_unwrapped() {
        let body = r#"{"participants":[{"user_id":"u1","device_id":3,"display_name":"A","livekit_identity":"u1:3"}],"count":1,"room_active":true}"#;
        let list = parse_participants(body, WireProfile::PeerWave).unwrap();
        assert_eq!(list, vec![ParticipantId::new("u1".into(), "3".into())]);
        assert!(parse_participants(body, WireProfile::Plan).is_err());
        assert!(parse_participants("[]", WireProfile::PeerWave).is_err());
        assert!(parse_participants(r#"{"count":0}"#, WireProfile::PeerWave).is_err());
    }

    #[test]
    fn peerwave_registration_and_top_up_use_camel_case_public_halves() {
        let mut store = ProtocolStore::generate(&mut OsRng, 3);
        let keys = store.public_keys().unwrap();
        let body = registration_body(&keys, "tok", "m", "G", &peerwave::DIALECT);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["signed_pre_key"]["keyId"], 1);
        assert!(v["signed_pre_key"]["publicKey"].is_string());
        let ids: Vec<u64> = v["pre_keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["keyId"].as_u64().unwrap())
            .collect();
        assert_eq!(ids, [1, 2, 3]);
        assert!(!body.contains("serialized") && !body.contains("\"id\""));
        // Server holds 2 and 3: 1 was handed out; new ids continue after 3.
        let new = store.restock_one_time_pre_keys(&[2, 3], 2, &mut OsRng);
        assert_eq!(new.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [4, 5]);
        assert_eq!(
            store.one_time_pre_key_ids().collect::<Vec<_>>(),
            [2, 3, 4, 5]
        );
        let top_up: serde_json::Value = serde_json::from_str(&pre_keys_body(&new)).unwrap();
        assert_eq!(top_up["pre_keys"][1]["keyId"], 5);
        assert_eq!(
            parse_server_pre_keys(
                r#"{"count":2,"preKeys":[{"keyId":2,"publicKey":"x"},{"keyId":3,"publicKey":"y"}]}"#
            )
            .unwrap(),
            [2, 3]
        );
        assert!(parse_server_pre_keys(r#"{"count":2}"#).is_err());
        assert!(names_lost_session(404, r#"{"error":"Session not found"}"#));
        assert!(names_lost_session(
            403,
            r#"{"error":"Invalid guest session"}"#
        ));
        assert!(!names_lost_session(500, r#"{"error":"Session not found"}"#));
        assert!(!names_lost_session(
            404,
            r#"{"error":"Participant keys not found"}"#
        ));
    }

    #[test]
    fn peerwave_envelopes_carry_the_request_id_outside() {
        let body = outgoing_message(
            &ParticipantId::new("u".into(), "3".into()),
            "t",
            3,
            &[1, 2],
            &peerwave::DIALECT,
            Some("rid"),
        );
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"participant_user_id":"u","participant_device_id":3,"request_id":"rid","ciphertext":"AQI=","messageType":3})
        );
        let answer = r#"{"participant_user_id":"u","participant_device_id":3,"meeting_id":"m","ciphertext":"AQI=","messageType":3,"request_id":"rid","timestamp":1}"#;
        let m = parse_incoming(answer, &peerwave::DIALECT).unwrap();
        assert_eq!(
            (
                m.request_id.as_deref(),
                m.message_type,
                m.ciphertext.as_slice()
            ),
            (Some("rid"), Some(3), &[1u8, 2][..])
        );
        assert!(parse_incoming(
            &answer.replace("\"messageType\":3", "\"messageType\":0"),
            &peerwave::DIALECT
        )
        .is_err());
    }
}
