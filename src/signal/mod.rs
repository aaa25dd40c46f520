//! The Signal protocol, v3 and v4: keys, XEdDSA, X3DH and PQXDH (Kyber1024), the Double
//! Ratchet with SPQR's chain, session records and libsignal's wire format. Pure Rust: no I/O, no clock, randomness passed in.

mod basepoint;
mod error;
pub mod fingerprint;
pub mod keys;
pub mod kyber;
mod pending;
mod protobuf;
mod ratchet;
pub(crate) mod record;
mod session;
mod spqr;
mod store;
mod vec_map;
pub(crate) mod wipe;
mod wire;
mod x3dh;
mod xeddsa;

pub use basepoint::build_basepoint_table;
pub use error::SignalError;
pub use keys::{KeyPair, PrivateKey, PublicKey, PUBLIC_KEY_LEN, SIGNATURE_LEN};
pub use pending::PendingDecryption;
pub(crate) use ratchet::hkdf_sha256;
pub use record::RECORD_FORMAT_VERSION;
pub use session::{
    DecryptLimits, PendingPreKey, SessionRecord, SessionState, ARCHIVED_STATES_MAX,
    MAX_FORWARD_JUMPS, MAX_MESSAGE_KEYS, MAX_RECEIVER_CHAINS,
};
pub use store::{
    KyberPreKey, OneTimePreKey, ProtocolStore, PublicKeys, PublicSignedPreKey, SignedPreKey,
    REGISTRATION_ID_MAX,
};
pub use wire::{
    CiphertextMessage, KyberEncapsulation, PreKeySignalMessage, SignalMessage, PREKEY_TYPE,
    WHISPER_TYPE,
};
pub use x3dh::{PreKeyBundle, PublicKyberPreKey};
