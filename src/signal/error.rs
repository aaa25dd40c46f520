//! Errors of the Signal engine. None carries key material.

use crate::prelude::*;

/// Why a Signal operation failed. Every failing operation leaves its inputs unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    /// A serialized public key is not the length its type needs (33 bytes for Curve25519,
    /// 1,569 for Kyber1024; the length found is given).
    #[error("public key has wrong length {0}")]
    BadKeyLength(usize),
    /// A public key does not start with its type byte (`0x05` Curve25519, `0x08` Kyber1024).
    #[error("public key has unknown type byte {0:#04x}")]
    BadKeyType(u8),
    /// A key cannot be used: X25519 with a low-order peer key gives an all-zero secret, or a
    /// sending chain's index would pass `u32::MAX`.
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
    /// A bundle's signed prekey does not carry a valid XEdDSA signature by its identity key.
    #[error("signed prekey signature does not verify")]
    BadSignature,
    /// The identity key for this address is not the one trusted for it: the first key seen
    /// for an address is kept, and a different one is refused.
    #[error("identity key of {0} changed and is not trusted")]
    UntrustedIdentity(String),
    /// A ciphertext message is malformed: too short, bad protobuf, a required field missing,
    /// an unknown message type, or an AES-CBC body that is not whole blocks or badly padded.
    #[error("message is malformed: {0}")]
    InvalidMessage(&'static str),
    /// A message's version byte (high nibble) names a message version other than 3 or 4;
    /// the nibble is given.
    #[error("unsupported message version {0}")]
    UnsupportedVersion(u8),
    /// A SignalMessage's 8-byte HMAC-SHA256 does not match its message key and the two
    /// identity keys.
    #[error("message authentication failed")]
    BadMac,
    /// The keys for this counter were already used, or were dropped as older than the
    /// [`MAX_MESSAGE_KEYS`](super::MAX_MESSAGE_KEYS) kept: a replay or a too-late message.
    #[error("message counter {0} was already received")]
    DuplicateMessage(u32),
    /// The counter is more than [`MAX_FORWARD_JUMPS`](super::MAX_FORWARD_JUMPS) ahead of the
    /// chain (or is `u32::MAX`); the distance is given.
    #[error("message counter jumps too far ahead ({0} keys)")]
    TooFarInFuture(u32),
    /// Encrypting, or decrypting a SignalMessage, for an address with no session (for
    /// encryption: no current session state).
    #[error("no session with {0}")]
    NoSession(String),
    /// A session record has no state to work with: no current state to encrypt with or
    /// take the peer's identity from, or no state at all to try a message on.
    #[error("no usable session state decrypts this message")]
    NoMatchingState,
    /// A PreKeySignalMessage names a one-time prekey this store does not hold (never issued,
    /// or already consumed).
    #[error("one-time prekey {0} is unknown or already used")]
    UnknownPreKey(u32),
    /// A v4 PreKeySignalMessage names a Kyber prekey this store does not hold.
    #[error("Kyber prekey {0} is unknown")]
    UnknownKyberPreKey(u32),
    /// A PreKeySignalMessage names a signed prekey this store does not hold.
    #[error("signed prekey {0} is unknown")]
    UnknownSignedPreKey(u32),
    /// A stored record cannot be read back: empty, truncated, trailing bytes, or a field that
    /// is malformed or out of range (named in the message).
    #[error("stored record is corrupt: {0}")]
    CorruptRecord(&'static str),
    /// A stored record starts with a format-version byte other than the one this build
    /// writes (such as [`RECORD_FORMAT_VERSION`](super::RECORD_FORMAT_VERSION)); the byte is
    /// given.
    #[error("stored record has unsupported format version {0}")]
    RecordVersion(u8),
}
