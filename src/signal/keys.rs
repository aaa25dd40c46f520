//! Curve25519 keys in libsignal's encodings.

use core::fmt;

use rand_core::CryptoRngCore;
use subtle::ConstantTimeEq;
use x25519_dalek::{PublicKey as X25519Public, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::basepoint;
use super::error::SignalError;
use super::xeddsa;

/// libsignal's type byte for Curve25519 (DJB) public keys.
pub const DJB_TYPE: u8 = 0x05;
/// Length of a serialized public key: the type byte and the 32-byte u-coordinate.
pub const PUBLIC_KEY_LEN: usize = 33;
/// Length of an XEdDSA signature in bytes.
pub const SIGNATURE_LEN: usize = 64;

/// A Curve25519 public key, serialized as `0x05 ‖ u`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// Parses the 33-byte `0x05`-prefixed form.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SignalError> {
        match bytes {
            [DJB_TYPE, rest @ ..] if rest.len() == 32 => {
                let mut key = [0u8; 32];
                key.copy_from_slice(rest);
                Ok(Self(key))
            }
            [] => Err(SignalError::BadKeyLength(0)),
            [t, ..] if bytes.len() == PUBLIC_KEY_LEN => Err(SignalError::BadKeyType(*t)),
            _ => Err(SignalError::BadKeyLength(bytes.len())),
        }
    }

    /// The 33-byte wire form.
    pub fn serialize(&self) -> [u8; PUBLIC_KEY_LEN] {
        let mut out = [0u8; PUBLIC_KEY_LEN];
        out[0] = DJB_TYPE;
        out[1..].copy_from_slice(&self.0);
        out
    }

    /// The bare Montgomery u-coordinate.
    pub fn montgomery_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    #[cfg(test)]
    pub(crate) fn from_montgomery(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Whether `u` is a canonical field element (below 2²⁵⁵ − 19, top bit clear). X25519
    /// ignores the top bit, so a non-canonical copy of a key agrees the same secret; libsignal
    /// refuses such base keys, and so do we.
    pub fn is_canonical(&self) -> bool {
        xeddsa::is_canonical_u(&self.0)
    }

    /// Verifies an XEdDSA signature by this key.
    pub fn verify_signature(&self, message: &[u8], signature: &[u8]) -> bool {
        match <&[u8; SIGNATURE_LEN]>::try_from(signature) {
            Ok(signature) => xeddsa::verify(&self.0, message, signature),
            Err(_) => false,
        }
    }

    /// Constant-time equality, for identity comparisons.
    pub fn ct_eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey(")?;
        for b in &self.0[..6] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "…)")
    }
}

/// A Curve25519 private scalar, stored clamped. Zeroized on drop; never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct PrivateKey([u8; 32]);

impl PrivateKey {
    /// A fresh key from 32 random bytes of `rng`, clamped.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        let key = Self::from_bytes(&bytes);
        bytes.zeroize();
        key
    }

    /// A key from a raw scalar; clamps it (as X25519 does), so any 32 bytes are accepted.
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self(curve25519_dalek::scalar::clamp_integer(*bytes))
    }

    /// The raw scalar, for serializing into a local record only.
    pub fn expose_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The matching public key (X25519 base-point multiplication, through the shared table).
    pub fn public_key(&self) -> PublicKey {
        PublicKey(basepoint::x25519_public(&self.0).to_bytes())
    }

    /// X25519 agreement. Rejects an all-zero result (a low-order peer key).
    pub fn agree(&self, their: &PublicKey) -> Result<SharedSecret, SignalError> {
        let secret = StaticSecret::from(self.0);
        let shared = secret.diffie_hellman(&X25519Public::from(their.0));
        if !shared.was_contributory() {
            return Err(SignalError::InvalidKey("low-order public key"));
        }
        Ok(SharedSecret(shared.to_bytes()))
    }

    /// XEdDSA signature over `message` with fresh randomness.
    pub fn sign(&self, message: &[u8], rng: &mut impl CryptoRngCore) -> [u8; SIGNATURE_LEN] {
        let mut nonce = [0u8; 64];
        rng.fill_bytes(&mut nonce);
        let signature = xeddsa::sign(&self.0, message, &nonce);
        nonce.zeroize();
        signature
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

/// Output of one X25519 agreement.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SharedSecret([u8; 32]);

impl SharedSecret {
    /// The 32-byte shared secret, as input to a KDF.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// A private key with its public half.
#[derive(Clone)]
pub struct KeyPair {
    /// The public half: `private`'s public key.
    pub public: PublicKey,
    /// The private half (zeroized when dropped).
    pub private: PrivateKey,
}

impl KeyPair {
    /// A fresh random key pair.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        Self::from_private(PrivateKey::generate(rng))
    }

    /// Completes `private` with its public key.
    pub fn from_private(private: PrivateKey) -> Self {
        Self {
            public: private.public_key(),
            private,
        }
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;
    use rand::rngs::OsRng;

    #[test]
    fn public_key_round_trip_and_rejections() {
        let pair = KeyPair::generate(&mut OsRng);
        let wire = pair.public.serialize();
        assert_eq!(wire[0], 0x05);
        assert_eq!(PublicKey::from_bytes(&wire).unwrap(), pair.public);
        assert_eq!(
            PublicKey::from_bytes(&wire[1..]),
            Err(SignalError::BadKeyLength(32))
        );
        assert_eq!(
            PublicKey::from_bytes(&[]),
            Err(SignalError::BadKeyLength(0))
        );
        let mut wrong_type = wire;
        wrong_type[0] = 0x06;
        assert_eq!(
            PublicKey::from_bytes(&wrong_type),
            Err(SignalError::BadKeyType(6))
        );
    }

    #[test]
    fn agreement_is_symmetric_and_rejects_low_order_points() {
        let a = KeyPair::generate(&mut OsRng);
        let b = KeyPair::generate(&mut OsRng);
        let ab = a.private.agree(&b.public).unwrap();
        let ba = b.private.agree(&a.public).unwrap();
        assert_eq!(ab.as_bytes(), ba.as_bytes());
        let zero = PublicKey::from_montgomery([0u8; 32]);
        assert!(a.private.agree(&zero).is_err());
    }

    fn zeroized_on_drop<T: ZeroizeOnDrop>() {}

    #[test]
    fn secret_key_types_are_wiped() {
        zeroized_on_drop::<PrivateKey>();
        zeroized_on_drop::<SharedSecret>();
        let mut key = PrivateKey::generate(&mut OsRng);
        assert_ne!(key.expose_bytes(), &[0u8; 32]);
        key.zeroize();
        assert_eq!(key.expose_bytes(), &[0u8; 32]);
        let other = KeyPair::generate(&mut OsRng);
        let mut shared = KeyPair::generate(&mut OsRng)
            .private
            .agree(&other.public)
            .unwrap();
        shared.zeroize();
        assert_eq!(shared.as_bytes(), &[0u8; 32]);
    }

    #[test]
    fn private_key_is_clamped_and_redacted() {
        let key = PrivateKey::from_bytes(&[0xff; 32]);
        assert_eq!(key.expose_bytes()[0] & 7, 0);
        assert_eq!(key.expose_bytes()[31] & 0x80, 0);
        assert_eq!(format!("{key:?}"), "PrivateKey(<redacted>)");
        assert!(!format!("{:?}", KeyPair::from_private(key)).contains("private"));
    }
}
