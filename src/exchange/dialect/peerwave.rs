//! PeerWave's dialect (docs/contract.md §8), as its server (upstream `8956afd`) and its
//! Flutter participants ship it, where it differs from this contract: the participants list
//! is wrapped, keybundles have their own shape, requests and answers are camelCase and bound
//! by a request id on the envelope, every participant answers every request from the guest's
//! own bundle (so the guest keeps its prekeys stocked), and the server forgets guests when
//! it restarts. Its names are in `src/exchange/contract/peerwave.rs`.

use crate::prelude::*;

use zeroize::Zeroizing;

use super::super::contract::peerwave::{
    plaintext as pw, NAMES, REQUEST_ID_FIELD, SESSION_GONE_ERRORS,
};
use super::super::join::JoinRules;
use super::super::json::{self, ObjectWriter, Value};
use super::super::key::MeetingKey;
use super::super::messages::{
    decode_base64, field, into_object, invalid, parse_value, pre_key_entries, str_field, u32_field,
    Invalid,
};
use super::super::plaintexts::{self, KeyMessage, KeyMessageKind};
use super::super::ParticipantId;
use super::{BundleShape, KeyRequest, Routing};

/// Each request reaches every participant, and each answers with a new session from the
/// guest's bundle, consuming one of its one-time prekeys.
/// The server reads the guest's session from the socket's handshake only, keeps
/// registrations in memory (and deletes waiting guests when another registers), puts a
/// guest in the lobby only on request and says "admitted" once.
pub(super) const JOIN: JoinRules = JoinRules {
    sdk_handshake: true,
    lobby: true,
    reregisters: true,
    admission_kept: true,
};

pub(super) const STOCKS_PRE_KEYS: bool = true;

/// The participants list is wrapped: `{participants: […], count, …}`.
pub(super) const PARTICIPANTS_FIELD: Option<&str> = Some("participants");

/// The bundle does not name its device (it is bound to the path asked), calls its one-time
/// prekey `one_time_pre_key`, and may send `registration_id` as text. Participants number
/// their prekeys from 0.
pub(super) const BUNDLE: BundleShape = BundleShape {
    fields: &[
        "identity_key",
        "registration_id",
        "signed_pre_key",
        "one_time_pre_key",
    ],
    names_device: false,
    first_id: 0,
};

/// The request in PeerWave's shape, `{requesterId, meetingId, timestamp}` with an ISO-8601
/// timestamp, as its own guests write it. Its participants do not read it today; the
/// request id goes in too, so that one that does can bind its answer. They take no part in
/// the short code, so no nonce is drawn.
pub(super) fn request_plaintext(request: &KeyRequest<'_>) -> String {
    ObjectWriter::new()
        .string(pw::REQUESTER_ID, request.guest_session_id)
        .string(pw::MEETING_ID, request.meeting_id)
        .string(pw::TIMESTAMP, &iso8601(request.now_ms))
        .string("request_id", request.request_id)
        .finish()
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for milliseconds since the Unix epoch (proleptic Gregorian,
/// through the days-to-civil conversion in Hinnant's "chrono-Compatible Low-Level Date
/// Algorithms"). A date crate would bring time zones and formatting the SDK has no use for.
fn iso8601(ms: u64) -> String {
    let days = ms / 86_400_000;
    let in_day = ms % 86_400_000;
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    let mut out = String::with_capacity(24);
    for (value, width, after) in [
        (year, 4, '-'),
        (month, 2, '-'),
        (day, 2, 'T'),
        (in_day / 3_600_000, 2, ':'),
        (in_day / 60_000 % 60, 2, ':'),
        (in_day / 1000 % 60, 2, '.'),
        (in_day % 1000, 3, 'Z'),
    ] {
        let digits = json::u64_to_string(value);
        for _ in digits.len()..width {
            out.push('0');
        }
        out.push_str(&digits);
        out.push(after);
    }
    out
}

/// The guest's event carries the request id outside the ciphertext (participants echo it)
/// and the device id as a number, as PeerWave's own guests send it.
pub(super) fn request_routing<'a>(to: &ParticipantId, request_id: &'a str) -> Routing<'a> {
    Routing {
        device_number: to.device_id.parse().ok(),
        field: REQUEST_ID_FIELD,
        value: request_id,
    }
}

/// Answers are bound to their request only on the envelope, and every participant answers
/// every request: the exchange drops anything but an open request to the sender before
/// decrypting it (and before it can touch the Signal state).
pub(super) const BINDS_ANSWERS_ON_ENVELOPE: bool = true;

/// An answer to the request its envelope names. Without one (the exchange has dropped such
/// an event before decrypting it) the plaintext is read as this contract's.
pub(super) fn parse_any_answer(
    plaintext: &[u8],
    envelope_request_id: Option<String>,
) -> Result<KeyMessage, Invalid> {
    match envelope_request_id {
        Some(id) => parse_answer(plaintext, id),
        None => plaintexts::parse_key_message(plaintext),
    }
}

/// Parses a PeerWave answer, `{meetingId, encryptedKey, timestamp}`: no type, index or
/// request id inside. It answers `request_id`, the id on its envelope; the exchange has
/// checked that one before decrypting.
pub fn parse_answer(plaintext: &[u8], request_id: String) -> Result<KeyMessage, Invalid> {
    let body = core::str::from_utf8(plaintext).map_err(|_| invalid("plaintext", "not UTF-8"))?;
    let mut m = into_object(parse_value(body, "plaintext")?, "plaintext")?;
    let encoded_key = match m.get_mut(pw::ENCRYPTED_KEY) {
        Some(Value::String(s)) => Zeroizing::new(core::mem::take(s)),
        _ => return Err(invalid("encryptedKey", "missing or not a string")),
    };
    let key_bytes = Zeroizing::new(decode_base64(&encoded_key, "encryptedKey")?);
    Ok(KeyMessage {
        kind: KeyMessageKind::Response,
        meeting_id: str_field(&m, pw::MEETING_ID)?.to_owned(),
        request_id: Some(request_id),
        key: MeetingKey::from_slice(&key_bytes).ok_or(invalid("encryptedKey", "not 32 bytes"))?,
        key_index: 0,
        timestamp_ms: plaintexts::timestamp(&m)?,
        sas_nonce: None,
    })
}

/// The prekey top-up body: `{pre_keys: [{keyId, publicKey}]}`.
pub fn pre_keys_body(pre_keys: &[(u32, crate::signal::PublicKey)]) -> String {
    ObjectWriter::new()
        .json("pre_keys", &pre_key_entries(pre_keys, &NAMES))
        .finish()
}

/// The ids of the guest's prekeys the server still holds (`{count, preKeys: [{keyId, …}]}`).
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

/// Whether an HTTP answer says the server no longer has the guest's session (the server
/// keeps guest sessions in memory: after a restart every call with the old session id gets
/// this).
pub fn names_lost_session(status: u16, body: &str) -> bool {
    let Ok(Value::Object(obj)) = json::parse(body) else {
        return false;
    };
    matches!(status, 403 | 404)
        && matches!(field(&obj, "error"), Some(Value::String(e)) if SESSION_GONE_ERRORS.contains(&e.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::contract::WireProfile;
    use crate::exchange::messages::{self, encode_base64};
    use crate::signal::{ProtocolStore, PublicKey};
    use rand::rngs::OsRng;

    fn p() -> ParticipantId {
        ParticipantId::new("alice".into(), "1".into())
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
        let b = messages::parse_bundle(&body, &p(), WireProfile::PeerWave).unwrap();
        assert_eq!((b.registration_id, b.signed_pre_key_id), (4242, 7));
        assert_eq!(b.pre_key.map(|(id, _)| id), Some(0));
        let numeric = body.replace("\"4242\"", "4242");
        assert_eq!(
            messages::parse_bundle(&numeric, &p(), WireProfile::PeerWave)
                .unwrap()
                .registration_id,
            4242
        );
        let none = body.replace(
            &body[body.find("{\"keyId\":0").unwrap()..body.len() - 1],
            "null",
        );
        assert!(messages::parse_bundle(&none, &p(), WireProfile::PeerWave)
            .unwrap()
            .pre_key
            .is_none());
        // The plan's strict parser refuses PeerWave's shape, and PeerWave's refuses junk.
        assert!(messages::parse_bundle(&body, &p(), WireProfile::Plan).is_err());
        for bad in [
            body.replace("\"4242\"", "\"42a\""),
            body.replace("\"4242\"", "\"99999\""),
            body.replace("one_time_pre_key", "pre_key"),
            body.replace("\"keyId\":7", "\"id\":7"),
        ] {
            assert!(
                messages::parse_bundle(&bad, &p(), WireProfile::PeerWave).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn peerwave_participants_are_unwrapped() {
        let body = r#"{"participants":[{"user_id":"u1","device_id":3,"display_name":"A","livekit_identity":"u1:3"}],"count":1,"room_active":true}"#;
        let list = messages::parse_participants(body, WireProfile::PeerWave).unwrap();
        assert_eq!(list, vec![ParticipantId::new("u1".into(), "3".into())]);
        assert!(messages::parse_participants(body, WireProfile::Plan).is_err());
        assert!(messages::parse_participants("[]", WireProfile::PeerWave).is_err());
        assert!(messages::parse_participants(r#"{"count":0}"#, WireProfile::PeerWave).is_err());
    }

    #[test]
    fn peerwave_registration_and_top_up_use_camel_case_public_halves() {
        let mut store = ProtocolStore::generate(&mut OsRng, 3);
        let keys = store.public_keys().unwrap();
        let body = messages::registration_body(&keys, "tok", "m", "G", &NAMES);
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
        // The server's list is not trusted for new ids: a hostile u32::MAX, and the highest
        // key handed out (5, which a participant may still name), are not written over.
        let kept = store.bundle(2, false).unwrap().identity_key;
        let before: Vec<_> = store.public_keys().unwrap().pre_keys;
        let new = store.restock_one_time_pre_keys(&[2, 3, 4, u32::MAX], 2, &mut OsRng);
        assert_eq!(new.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [6, 7]);
        let after = store.public_keys().unwrap().pre_keys;
        for (id, key) in before.iter().filter(|(id, _)| [2, 3, 4].contains(id)) {
            assert!(after.contains(&(*id, *key)), "key {id} kept as it was");
        }
        assert_eq!(store.bundle(2, false).unwrap().identity_key, kept);
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
        let to = ParticipantId::new("u".into(), "3".into());
        let body = messages::guest_event(&to, &request_routing(&to, "rid"), &NAMES, 3, &[1, 2]);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"participant_user_id":"u","participant_device_id":3,"request_id":"rid","ciphertext":"AQI=","messageType":3})
        );
        let answer = r#"{"participant_user_id":"u","participant_device_id":3,"meeting_id":"m","ciphertext":"AQI=","messageType":3,"request_id":"rid","timestamp":1}"#;
        let m = messages::parse_incoming(answer, &NAMES).unwrap();
        assert_eq!(
            (
                m.request_id.as_deref(),
                m.message_type,
                m.ciphertext.as_slice()
            ),
            (Some("rid"), Some(3), &[1u8, 2][..])
        );
        assert!(messages::parse_incoming(
            &answer.replace("\"messageType\":3", "\"messageType\":0"),
            &NAMES
        )
        .is_err());
    }

    #[test]
    fn iso8601_matches_known_dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso8601(1_798_761_599_999), "2026-12-31T23:59:59.999Z");
        assert_eq!(iso8601(4_107_542_400_123), "2100-03-01T00:00:00.123Z");
    }

    #[test]
    fn peerwave_answer_needs_meeting_key_and_timestamp() {
        let key = encode_base64(&[7u8; 32]);
        let good = format!(r#"{{"meetingId":"m","encryptedKey":"{key}","timestamp":5}}"#);
        let m = parse_answer(good.as_bytes(), "r".into()).unwrap();
        assert_eq!(
            (m.key_index, m.timestamp_ms, m.kind),
            (0, 5, KeyMessageKind::Response)
        );
        assert_eq!(
            (m.meeting_id.as_str(), m.request_id.as_deref()),
            ("m", Some("r"))
        );
        for bad in [
            good.replace(&key, &encode_base64(&[1u8; 31])),
            good.replace("\"meetingId\":\"m\",", ""),
            good.replace(",\"timestamp\":5", ""),
            good.replace("encryptedKey", "key"),
        ] {
            assert!(parse_answer(bad.as_bytes(), "r".into()).is_err(), "{bad}");
        }
    }
}
