//! The plaintexts inside the Signal messages (docs/contract.md §5, §10): the guest's key
//! request and verification-code reveal, and the participants' answers, parsed strictly.
//! Parsing never panics and never echoes key material in its errors. PeerWave's plaintexts
//! (§8) are in `super::dialect`'s PeerWave file; its answer parser is re-exported here.

use crate::prelude::*;

use zeroize::Zeroizing;

use super::contract::{KEY_REQUEST_TYPE, KEY_RESPONSE_TYPE, KEY_UPDATE_TYPE, SAS_REVEAL_TYPE};
use super::json::{Number, ObjectWriter, Value};
use super::key::MeetingKey;
use super::messages::{
    decode_base64, encode_base64, field, integer, into_object, invalid, parse_value, str_field,
    Invalid,
};
use super::sas::{SasNonce, SAS_NONCE_LEN};

pub use super::dialect::parse_peerwave_answer;

/// 16 random bytes, base64url without padding.
pub fn request_id(random: &[u8; 16]) -> String {
    // base64url is standard base64 with two letters swapped and no padding; mapping it here
    // keeps a second base64 codec out of the wasm. Not secret, so not constant-time.
    encode_base64(random)
        .chars()
        .filter(|&c| c != '=')
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect()
}

/// The key request the guest encrypts for one participant, stamped with `now_ms`
/// (milliseconds since the Unix epoch).
pub fn request_plaintext(
    meeting_id: &str,
    guest_session_id: &str,
    request_id: &str,
    now_ms: u64,
    sas_commitment: &[u8; 32],
) -> String {
    ObjectWriter::new()
        .string("type", KEY_REQUEST_TYPE)
        .string("meeting_id", meeting_id)
        .string("guest_session_id", guest_session_id)
        .string("request_id", request_id)
        .number("timestamp", now_ms)
        .string("sas_commitment", &encode_base64(sas_commitment))
        .finish()
}

/// The guest's reveal of its verification-code nonce (§10), sent after the answer.
pub fn sas_reveal_plaintext(meeting_id: &str, request_id: &str, nonce: &SasNonce) -> String {
    ObjectWriter::new()
        .string("type", SAS_REVEAL_TYPE)
        .string("meeting_id", meeting_id)
        .string("request_id", request_id)
        .string("sas_nonce", &encode_base64(&nonce.0))
        .finish()
}

/// A decrypted answer from a participant, before the exchange checks it belongs to us.
#[derive(Debug)]
pub struct KeyMessage {
    /// Answer to a request, or a pushed update.
    pub kind: KeyMessageKind,
    /// The meeting the key is for.
    pub meeting_id: String,
    /// The request answered: `Some` for a response, `None` for an update.
    pub request_id: Option<String>,
    /// The meeting key.
    pub key: MeetingKey,
    /// Its LiveKit key index (0 when the field is absent).
    pub key_index: u8,
    /// The sender's clock when it wrote the message, in milliseconds since the Unix epoch;
    /// any 64-bit integer is accepted here, the exchange checks it against its own clock.
    pub timestamp_ms: i64,
    /// The participant's verification-code nonce (responses only; absent when it does not
    /// take part).
    pub sas_nonce: Option<SasNonce>,
}

/// What a decrypted participant plaintext is, from its `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMessageKind {
    /// `participant:meeting_e2ee_key_response`: the answer to one of our requests.
    Response,
    /// `participant:meeting_e2ee_key_update`: a key pushed after the participant rotated it.
    Update,
}

/// Parses a decrypted plaintext. The key must be base64 of exactly 32 bytes.
pub fn parse_key_message(plaintext: &[u8]) -> Result<KeyMessage, Invalid> {
    let body = core::str::from_utf8(plaintext).map_err(|_| invalid("plaintext", "not UTF-8"))?;
    let mut m = into_object(parse_value(body, "plaintext")?, "plaintext")?;
    // Take the key out of the tree first so that its text is wiped on every path.
    let encoded_key = match m.get_mut("key") {
        Some(Value::String(s)) => Some(Zeroizing::new(core::mem::take(s))),
        _ => None,
    };
    let kind = match str_field(&m, "type")? {
        KEY_RESPONSE_TYPE => KeyMessageKind::Response,
        KEY_UPDATE_TYPE => KeyMessageKind::Update,
        _ => return Err(invalid("type", "not a key response or update")),
    };
    let meeting_id = str_field(&m, "meeting_id")?.to_owned();
    let request_id = match kind {
        KeyMessageKind::Response => Some(str_field(&m, "request_id")?.to_owned()),
        KeyMessageKind::Update => None,
    };
    let key_index = match field(&m, "key_index") {
        None => 0,
        Some(v) => integer(v)
            .and_then(|i| u8::try_from(i).ok())
            .ok_or(invalid("key_index", "not an integer 0..255"))?,
    };
    let timestamp_ms = timestamp(&m)?;
    let encoded_key = encoded_key.ok_or(invalid("key", "missing or not a string"))?;
    let key_bytes = Zeroizing::new(decode_base64(&encoded_key, "key")?);
    let key = MeetingKey::from_slice(&key_bytes).ok_or(invalid("key", "not 32 bytes"))?;
    let sas_nonce = match (kind, field(&m, "sas_nonce")) {
        (KeyMessageKind::Response, Some(Value::String(s))) => {
            let bytes = decode_base64(s, "sas_nonce")?;
            let nonce: [u8; SAS_NONCE_LEN] = bytes
                .try_into()
                .map_err(|_| invalid("sas_nonce", "not 32 bytes"))?;
            Some(SasNonce(nonce))
        }
        (KeyMessageKind::Response, Some(_)) => return Err(invalid("sas_nonce", "not a string")),
        _ => None,
    };
    Ok(KeyMessage {
        kind,
        meeting_id,
        request_id,
        key,
        key_index,
        timestamp_ms,
        sas_nonce,
    })
}

/// The sender's `timestamp`, milliseconds since the Unix epoch.
pub(super) fn timestamp(m: &super::json::Object) -> Result<i64, Invalid> {
    match field(m, "timestamp") {
        Some(Value::Number(Number::I64(n))) => Ok(*n),
        Some(v) => integer(v)
            .and_then(|n| i64::try_from(n).ok())
            .ok_or(invalid("timestamp", "not an integer")),
        None => Err(invalid("timestamp", "missing")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_base64url_without_padding() {
        use base64ct::{Base64UrlUnpadded, Encoding};
        for seed in 0u8..=255 {
            let random: [u8; 16] = core::array::from_fn(|i| {
                seed.wrapping_mul(31)
                    .wrapping_add((i as u8).wrapping_mul(97))
            });
            assert_eq!(
                request_id(&random),
                Base64UrlUnpadded::encode_string(&random)
            );
        }
    }

    #[test]
    fn key_message_checks_key_length_and_index() {
        let key = encode_base64(&[7u8; 32]);
        let good = format!(
            r#"{{"type":"{KEY_RESPONSE_TYPE}","meeting_id":"m","request_id":"r","key":"{key}","key_index":3,"timestamp":5}}"#
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
