//! libsignal's ciphertext wire format, v3 (X3DH) and v4 (PQXDH + SPQR): a version byte, a
//! protobuf body and (for SignalMessage) an 8-byte truncated HMAC-SHA256.

use crate::prelude::*;

use hmac::Mac;
use subtle::ConstantTimeEq;

use super::error::SignalError;
use super::keys::PublicKey;
use super::protobuf::{self, ProtoWriter, Value};

/// The v3 version byte we send: message version 3, highest supported 3 (as
/// libsignal_protocol_dart; official libsignal's 0x34 is read the same).
pub(crate) const V3_BYTE: u8 = 0x33;
/// The v4 version byte: message version 4, highest supported 4 (as official libsignal).
pub(crate) const V4_BYTE: u8 = 0x44;
/// Length of the truncated HMAC-SHA256 that ends a SignalMessage.
pub(crate) const MAC_LEN: usize = 8;

/// Wire value of `message_type` for a SignalMessage ("whisper").
pub const WHISPER_TYPE: u8 = 2;
/// Wire value of `message_type` for a PreKeySignalMessage.
pub const PREKEY_TYPE: u8 = 3;

/// PreKeySignalMessage's fields: `Some(true)` for `bytes` (2 base key, 3 identity key,
/// 4 message, 8 Kyber ciphertext), `Some(false)` for `uint32` (1 prekey id, 5 registration
/// id, 6 signed prekey id, 7 Kyber prekey id).
pub(super) fn prekey_message_field(number: u32) -> Option<bool> {
    match number {
        2..=4 | 8 => Some(true),
        1 | 5..=7 => Some(false),
        _ => None,
    }
}

/// The message version (3 or 4) a version byte's high nibble names.
fn check_version(byte: u8) -> Result<u8, SignalError> {
    match byte >> 4 {
        v @ 3..=4 => Ok(v),
        other => Err(SignalError::UnsupportedVersion(other)),
    }
}

fn required<T>(field: Option<T>, what: &'static str) -> Result<T, SignalError> {
    field.ok_or(SignalError::InvalidMessage(what))
}

/// A Double Ratchet message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignalMessage {
    version: u8,
    ratchet_key: PublicKey,
    counter: u32,
    previous_counter: u32,
    ciphertext: Vec<u8>,
    /// SPQR's message (v4 only; empty in v3).
    pq_ratchet: Vec<u8>,
    serialized: Vec<u8>,
}

impl SignalMessage {
    /// A v4 message when `pq_ratchet` is given (empty: a v4 session without SPQR, the field
    /// left out), v3 otherwise.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        mac_key: &[u8; 32],
        sender_identity: &PublicKey,
        receiver_identity: &PublicKey,
        ratchet_key: PublicKey,
        counter: u32,
        previous_counter: u32,
        ciphertext: Vec<u8>,
        pq_ratchet: Option<Vec<u8>>,
    ) -> Self {
        let mut out = Vec::with_capacity(1 + 64 + ciphertext.len() + MAC_LEN);
        out.push(if pq_ratchet.is_some() {
            V4_BYTE
        } else {
            V3_BYTE
        });
        let mut w = ProtoWriter::new(out);
        w.bytes(1, &ratchet_key.serialize());
        w.uint32(2, Some(counter));
        w.uint32(3, Some(previous_counter));
        w.bytes(4, &ciphertext);
        // Field 6 (`addresses`, both parties' service ids) is optional and left out: a guest
        // has no service id, and the MAC already binds both identity keys.
        if let Some(pq) = pq_ratchet.as_ref().filter(|pq| !pq.is_empty()) {
            w.bytes(5, pq);
        }
        let mut serialized = w.finish();
        let mac = compute_mac(mac_key, sender_identity, receiver_identity, &serialized);
        serialized.extend_from_slice(&mac);
        Self {
            version: serialized[0] >> 4,
            ratchet_key,
            counter,
            previous_counter,
            ciphertext,
            pq_ratchet: pq_ratchet.unwrap_or_default(),
            serialized,
        }
    }

    /// Parses a serialized SignalMessage: checks the version and the protobuf's required
    /// fields, but not the MAC (see [`Self::verify_mac`]).
    pub fn parse(bytes: &[u8]) -> Result<Self, SignalError> {
        if bytes.len() < 1 + MAC_LEN {
            return Err(SignalError::InvalidMessage("too short"));
        }
        let version = check_version(bytes[0])?;
        let body = &bytes[1..bytes.len() - MAC_LEN];
        let (mut ratchet_key, mut counter, mut previous_counter, mut ciphertext) =
            (None, None, None, None);
        let mut pq_ratchet: &[u8] = &[];
        protobuf::read(
            body,
            |n| match n {
                1 | 4..=6 => Some(true),
                2 | 3 => Some(false),
                _ => None,
            },
            |n, v| match (n, v) {
                (1, Value::Bytes(b)) => ratchet_key = Some(b),
                (2, Value::Varint(x)) => counter = Some(x as u32),
                (3, Value::Varint(x)) => previous_counter = Some(x as u32),
                (4, Value::Bytes(b)) => ciphertext = Some(b),
                (5, Value::Bytes(b)) if version == 4 => pq_ratchet = b,
                _ => {}
            },
        )
        .map_err(|_| SignalError::InvalidMessage("bad protobuf"))?;
        let ratchet_key = PublicKey::from_bytes(required(ratchet_key, "no ratchet key")?)?;
        Ok(Self {
            version,
            ratchet_key,
            counter: required(counter, "no counter")?,
            previous_counter: previous_counter.unwrap_or(0),
            ciphertext: required(ciphertext, "no ciphertext")?.to_vec(),
            pq_ratchet: pq_ratchet.to_vec(),
            serialized: bytes.to_vec(),
        })
    }

    /// Checks the MAC over the message as received (including its version byte).
    pub fn verify_mac(
        &self,
        mac_key: &[u8; 32],
        sender_identity: &PublicKey,
        receiver_identity: &PublicKey,
    ) -> bool {
        let (content, their_mac) = self.serialized.split_at(self.serialized.len() - MAC_LEN);
        let ours = compute_mac(mac_key, sender_identity, receiver_identity, content);
        ours.ct_eq(their_mac).into()
    }

    /// The message version: 3 (X3DH sessions) or 4 (PQXDH sessions with SPQR).
    pub fn version(&self) -> u8 {
        self.version
    }
    /// SPQR's message (empty in v3 messages).
    pub fn pq_ratchet(&self) -> &[u8] {
        &self.pq_ratchet
    }
    /// The sender's current ratchet public key.
    pub fn ratchet_key(&self) -> &PublicKey {
        &self.ratchet_key
    }
    /// The message's index in the sender's current sending chain.
    pub fn counter(&self) -> u32 {
        self.counter
    }
    /// The last index of the sender's previous sending chain (0 also when the field is
    /// absent).
    pub fn previous_counter(&self) -> u32 {
        self.previous_counter
    }
    /// The AES-256-CBC ciphertext.
    pub fn ciphertext(&self) -> &[u8] {
        &self.ciphertext
    }
    /// The whole message as on the wire: version byte, protobuf body and MAC.
    pub fn serialized(&self) -> &[u8] {
        &self.serialized
    }
}

fn compute_mac(
    mac_key: &[u8; 32],
    sender_identity: &PublicKey,
    receiver_identity: &PublicKey,
    content: &[u8],
) -> [u8; MAC_LEN] {
    let mut mac = super::ratchet::hmac_with_key(mac_key);
    mac.update(&sender_identity.serialize());
    mac.update(&receiver_identity.serialize());
    mac.update(content);
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; MAC_LEN];
    out.copy_from_slice(&full[..MAC_LEN]);
    out
}

/// What a v4 initiator sends for the recipient's Kyber prekey: which key, and the KEM
/// ciphertext (wire form, `0x08`-prefixed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KyberEncapsulation {
    /// The id of the recipient's Kyber prekey.
    pub pre_key_id: u32,
    /// The 1,569-byte ciphertext.
    pub ciphertext: Vec<u8>,
}

/// The first message(s) of an initiator's session: X3DH (v3) or PQXDH (v4) parameters plus
/// a SignalMessage of the same version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreKeySignalMessage {
    registration_id: u32,
    pre_key_id: Option<u32>,
    signed_pre_key_id: u32,
    kyber: Option<KyberEncapsulation>,
    base_key: PublicKey,
    identity_key: PublicKey,
    message: SignalMessage,
    serialized: Vec<u8>,
}

impl PreKeySignalMessage {
    pub(crate) fn new(
        registration_id: u32,
        pre_key_id: Option<u32>,
        signed_pre_key_id: u32,
        kyber: Option<KyberEncapsulation>,
        base_key: PublicKey,
        identity_key: PublicKey,
        message: SignalMessage,
    ) -> Self {
        let mut out = Vec::with_capacity(1 + 96 + message.serialized.len());
        // The inner message's version byte: a v4 session's messages are all v4.
        out.push(message.serialized[0]);
        let mut w = ProtoWriter::new(out);
        w.uint32(1, pre_key_id);
        w.bytes(2, &base_key.serialize());
        w.bytes(3, &identity_key.serialize());
        w.bytes(4, &message.serialized);
        w.uint32(5, Some(registration_id));
        w.uint32(6, Some(signed_pre_key_id));
        if let Some(k) = &kyber {
            w.uint32(7, Some(k.pre_key_id));
            w.bytes(8, &k.ciphertext);
        }
        let serialized = w.finish();
        Self {
            registration_id,
            pre_key_id,
            signed_pre_key_id,
            kyber,
            base_key,
            identity_key,
            message,
            serialized,
        }
    }

    /// Parses a serialized PreKeySignalMessage and the SignalMessage inside it; checks the
    /// version and required fields (the inner MAC is checked on decryption).
    pub fn parse(bytes: &[u8]) -> Result<Self, SignalError> {
        let (&version, body) = bytes
            .split_first()
            .ok_or(SignalError::InvalidMessage("empty"))?;
        let version = check_version(version)?;
        let (mut pre_key_id, mut base_key, mut identity_key, mut message) =
            (None, None, None, None);
        let (mut registration_id, mut signed_pre_key_id) = (None, None);
        let (mut kyber_pre_key_id, mut kyber_ciphertext) = (None, None);
        protobuf::read(body, prekey_message_field, |n, v| match (n, v) {
            (1, Value::Varint(x)) => pre_key_id = Some(x as u32),
            (2, Value::Bytes(b)) => base_key = Some(b),
            (3, Value::Bytes(b)) => identity_key = Some(b),
            (4, Value::Bytes(b)) => message = Some(b),
            (5, Value::Varint(x)) => registration_id = Some(x as u32),
            (6, Value::Varint(x)) => signed_pre_key_id = Some(x as u32),
            (7, Value::Varint(x)) => kyber_pre_key_id = Some(x as u32),
            (8, Value::Bytes(b)) => kyber_ciphertext = Some(b),
            _ => {}
        })
        .map_err(|_| SignalError::InvalidMessage("bad protobuf"))?;
        let message = SignalMessage::parse(required(message, "no inner message")?)?;
        if message.version != version {
            return Err(SignalError::InvalidMessage(
                "inner message has another version",
            ));
        }
        // v4 needs both Kyber fields; v3 ignores them.
        let kyber = match (version, kyber_pre_key_id, kyber_ciphertext) {
            (3, ..) => None,
            (_, Some(pre_key_id), Some(ciphertext)) => Some(KyberEncapsulation {
                pre_key_id,
                ciphertext: ciphertext.to_vec(),
            }),
            _ => {
                return Err(SignalError::InvalidMessage(
                    "v4 message without Kyber ciphertext",
                ))
            }
        };
        Ok(Self {
            registration_id: registration_id.unwrap_or(0),
            pre_key_id,
            signed_pre_key_id: required(signed_pre_key_id, "no signed prekey id")?,
            kyber,
            base_key: PublicKey::from_bytes(required(base_key, "no base key")?)?,
            identity_key: PublicKey::from_bytes(required(identity_key, "no identity key")?)?,
            message,
            serialized: bytes.to_vec(),
        })
    }

    /// The sender's registration id (0 when the field is absent).
    pub fn registration_id(&self) -> u32 {
        self.registration_id
    }
    /// The id of the recipient's one-time prekey used in X3DH; `None` when none was used
    /// (the TypeScript port writes `Some(0)` instead).
    pub fn pre_key_id(&self) -> Option<u32> {
        self.pre_key_id
    }
    /// The id of the recipient's signed prekey used in X3DH.
    pub fn signed_pre_key_id(&self) -> u32 {
        self.signed_pre_key_id
    }
    /// The Kyber prekey id and ciphertext: present exactly in v4 messages.
    pub fn kyber(&self) -> Option<&KyberEncapsulation> {
        self.kyber.as_ref()
    }
    /// The sender's X3DH base (ephemeral) key; identifies the session set-up.
    pub fn base_key(&self) -> &PublicKey {
        &self.base_key
    }
    /// The sender's identity key.
    pub fn identity_key(&self) -> &PublicKey {
        &self.identity_key
    }
    /// The SignalMessage carried inside.
    pub fn message(&self) -> &SignalMessage {
        &self.message
    }
    /// The whole message as on the wire: version byte and protobuf body.
    pub fn serialized(&self) -> &[u8] {
        &self.serialized
    }
}

/// Either kind of ciphertext a session produces or accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CiphertextMessage {
    /// A SignalMessage, sent once the session is established (wire type 2).
    Whisper(SignalMessage),
    /// A PreKeySignalMessage, sent until the initiator sees the first reply (wire type 3).
    PreKey(PreKeySignalMessage),
}

impl CiphertextMessage {
    /// The Signal message's version (4 or 3): that of the session state that takes it.
    pub fn version(&self) -> u8 {
        match self {
            Self::Whisper(m) => m.version(),
            Self::PreKey(m) => m.message().version(),
        }
    }

    /// Parses `bytes` given the transport's `message_type`: 3 PreKey, 2 (or the TypeScript
    /// port's 1) SignalMessage, `None` resolved by parsing. Type 0 (plaintext) is refused.
    pub fn parse(message_type: Option<u32>, bytes: &[u8]) -> Result<Self, SignalError> {
        match message_type {
            Some(3) => PreKeySignalMessage::parse(bytes).map(Self::PreKey),
            Some(1 | 2) => SignalMessage::parse(bytes).map(Self::Whisper),
            Some(_) => Err(SignalError::InvalidMessage("unsupported message type")),
            None => PreKeySignalMessage::parse(bytes)
                .map(Self::PreKey)
                .or_else(|_| SignalMessage::parse(bytes).map(Self::Whisper)),
        }
    }

    /// The `message_type` to put on the wire.
    pub fn message_type(&self) -> u8 {
        match self {
            Self::Whisper(_) => WHISPER_TYPE,
            Self::PreKey(_) => PREKEY_TYPE,
        }
    }

    /// The message's wire bytes.
    pub fn serialized(&self) -> &[u8] {
        match self {
            Self::Whisper(m) => m.serialized(),
            Self::PreKey(m) => m.serialized(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::keys::KeyPair;
    use rand::rngs::OsRng;

    fn sample() -> (SignalMessage, [u8; 32], PublicKey, PublicKey) {
        let (a, b, r) = (
            KeyPair::generate(&mut OsRng).public,
            KeyPair::generate(&mut OsRng).public,
            KeyPair::generate(&mut OsRng).public,
        );
        let mac_key = [9u8; 32];
        (
            SignalMessage::new(&mac_key, &a, &b, r, 7, 3, vec![1, 2, 3], None),
            mac_key,
            a,
            b,
        )
    }

    #[test]
    fn signal_message_round_trips_and_macs() {
        let (msg, key, a, b) = sample();
        assert_eq!(msg.serialized()[0], 0x33);
        let parsed = SignalMessage::parse(msg.serialized()).unwrap();
        assert_eq!(parsed, msg);
        assert!(parsed.verify_mac(&key, &a, &b));
        assert!(
            !parsed.verify_mac(&key, &b, &a),
            "direction is bound into the MAC"
        );
        assert!(!parsed.verify_mac(&[8u8; 32], &a, &b));
    }

    #[test]
    fn version_nibble_is_checked_and_mac_covers_the_byte_as_received() {
        let (msg, key, a, b) = sample();
        let mut v34 = msg.serialized().to_vec();
        v34[0] = 0x34;
        let parsed = SignalMessage::parse(&v34).unwrap();
        assert!(
            !parsed.verify_mac(&key, &a, &b),
            "MAC was computed over 0x33"
        );
        for bad in [0x23u8, 0x53, 0x03] {
            let mut m = msg.serialized().to_vec();
            m[0] = bad;
            assert_eq!(
                SignalMessage::parse(&m),
                Err(SignalError::UnsupportedVersion(bad >> 4))
            );
        }
    }

    #[test]
    fn truncations_never_panic() {
        let (msg, ..) = sample();
        let bytes = msg.serialized();
        for len in 0..bytes.len() {
            let _ = SignalMessage::parse(&bytes[..len]);
            let _ = CiphertextMessage::parse(None, &bytes[..len]);
        }
    }

    #[test]
    fn prekey_message_omits_absent_prekey_id() {
        let (inner, ..) = sample();
        let k = KeyPair::generate(&mut OsRng).public;
        let with = PreKeySignalMessage::new(42, Some(5), 1, None, k, k, inner.clone());
        let without = PreKeySignalMessage::new(42, None, 1, None, k, k, inner);
        assert_eq!(
            PreKeySignalMessage::parse(with.serialized())
                .unwrap()
                .pre_key_id(),
            Some(5)
        );
        let parsed = PreKeySignalMessage::parse(without.serialized()).unwrap();
        assert_eq!(parsed.pre_key_id(), None);
        // Field 1 (tag byte 0x08) must not appear at all.
        assert!(!without.serialized()[1..].starts_with(&[0x08]));
        assert_eq!(with.serialized()[1], 0x08);
        assert!(matches!(
            CiphertextMessage::parse(None, with.serialized()),
            Ok(CiphertextMessage::PreKey(_))
        ));
        assert!(CiphertextMessage::parse(Some(0), with.serialized()).is_err());
    }

    #[test]
    fn v4_messages_carry_spqr_and_kyber_fields_and_need_both() {
        let (a, r) = (
            KeyPair::generate(&mut OsRng).public,
            KeyPair::generate(&mut OsRng).public,
        );
        let inner = SignalMessage::new(
            &[1; 32],
            &a,
            &a,
            r,
            0,
            0,
            vec![7; 16],
            Some(vec![1, 1, 1, 0]),
        );
        assert_eq!(inner.serialized()[0], V4_BYTE);
        let parsed = SignalMessage::parse(inner.serialized()).unwrap();
        assert_eq!(
            (parsed.version(), parsed.pq_ratchet()),
            (4, &[1u8, 1, 1, 0][..])
        );
        let kyber = KyberEncapsulation {
            pre_key_id: 9,
            ciphertext: vec![8; 1569],
        };
        let m = PreKeySignalMessage::new(5, None, 1, Some(kyber.clone()), r, a, inner.clone());
        assert_eq!(m.serialized()[0], V4_BYTE);
        assert_eq!(
            PreKeySignalMessage::parse(m.serialized()).unwrap().kyber(),
            Some(&kyber)
        );
        let without = PreKeySignalMessage::new(5, None, 1, None, r, a, inner);
        assert_eq!(
            PreKeySignalMessage::parse(without.serialized()),
            Err(SignalError::InvalidMessage(
                "v4 message without Kyber ciphertext"
            ))
        );
        // A v3 wrapper around a v4 message is refused.
        let (v3_inner, ..) = sample();
        let mut mixed = PreKeySignalMessage::new(5, None, 1, Some(kyber), r, a, v3_inner)
            .serialized()
            .to_vec();
        mixed[0] = V4_BYTE;
        assert!(PreKeySignalMessage::parse(&mixed).is_err());
    }
}
