//! Errors of the Signal engine. None carries key material.

use crate::prelude::*;

/// Why a Signal operation failed. Every failing operation leaves its inputs unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    #[error("public key has wrong length {0}")]
    BadKeyLength(usize),
    #[error("public key has unknown type byte {0:#04x}")]
    BadKeyType(u8),
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
    #[error("signed prekey signature does not verify")]
    BadSignature,
    #[error("identity key of {0} changed and is not trusted")]
    UntrustedIdentity(String),
    #[error("message is malformed: {0}")]
    InvalidMessage(&'static str),
    #[error("unsupported message version {0}")]
    UnsupportedVersion(u8),
    #[error("message authentication failed")]
    BadMac,
    #[error("message counter {0} was already received")]
    DuplicateMessage(u32),
    #[error("message counter jumps too far ahead ({0} keys)")]
    TooFarInFuture(u32),
    #[error("no session with {0}")]
    NoSession(String),
    #[error("no usable session state decrypts this message")]
    NoMatchingState,
    #[error("one-time prekey {0} is unknown or already used")]
    UnknownPreKey(u32),
    #[error("signed prekey {0} is unknown")]
    UnknownSignedPreKey(u32),
    #[error("stored record is corrupt: {0}")]
    CorruptRecord(&'static str),
    #[error("stored record has unsupported format version {0}")]
    RecordVersion(u8),
}
