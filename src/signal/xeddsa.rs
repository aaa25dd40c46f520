//! XEdDSA (Perrin, 2016): Ed25519-style signatures made and checked with X25519 keys.
//!
//! Signing follows the specification (the signing scalar is negated so that the Edwards
//! public key has sign bit 0). Verification also honours libsignal's wire convention of
//! carrying the Edwards sign bit in the top bit of the signature, which official libsignal
//! and the TypeScript port both set.

use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::scalar::Scalar;
use sha2::{Digest, Sha512};
use zeroize::Zeroize;

use super::basepoint;

/// hash₁'s domain-separation prefix: the 256-bit little-endian integer 2²⁵⁶ − 2.
const HASH1_PREFIX: [u8; 32] = {
    let mut p = [0xffu8; 32];
    p[0] = 0xfe;
    p
};

fn scalar_from_hash(parts: &[&[u8]]) -> Scalar {
    let mut hasher = Sha512::new();
    for part in parts {
        hasher.update(part);
    }
    let mut wide: [u8; 64] = hasher.finalize().into();
    let scalar = Scalar::from_bytes_mod_order_wide(&wide);
    wide.zeroize();
    scalar
}

/// Signs `message` with the clamped X25519 scalar `private`, using 64 bytes of fresh `nonce`.
pub(crate) fn sign(private: &[u8; 32], message: &[u8], nonce: &[u8; 64]) -> [u8; 64] {
    let mut a = Scalar::from_bytes_mod_order(*private);
    let mut public = basepoint::mul_base(&a).compress().to_bytes();
    if public[31] & 0x80 != 0 {
        // `ZERO - a` rather than `-a`: scalar negation is a separate 1.6 KB routine in wasm,
        // subtraction is shared with other code.
        a = Scalar::ZERO - a;
        public[31] &= 0x7f;
    }
    let mut a_bytes = a.to_bytes();
    let mut r = scalar_from_hash(&[&HASH1_PREFIX, &a_bytes, message, nonce]);
    a_bytes.zeroize();
    let cap_r = basepoint::mul_base(&r).compress().to_bytes();
    let h = scalar_from_hash(&[&cap_r, &public, message]);
    let s = r + h * a;
    r.zeroize();
    a.zeroize();

    let mut signature = [0u8; 64];
    signature[..32].copy_from_slice(&cap_r);
    signature[32..].copy_from_slice(s.as_bytes());
    signature
}

/// True when `u` (little-endian) is a canonical field element, i.e. `u < 2²⁵⁵ − 19`.
pub(crate) fn is_canonical_u(u: &[u8; 32]) -> bool {
    if u[31] & 0x80 != 0 {
        return false;
    }
    let all_ones_middle = u[1..31].iter().all(|&b| b == 0xff);
    !(u[31] == 0x7f && all_ones_middle && u[0] >= 0xed)
}

/// Verifies `signature` over `message` by the X25519 public key `public` (bare u-coordinate).
pub(crate) fn verify(public: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    if !is_canonical_u(public) {
        return false;
    }
    let sign_bit = signature[63] >> 7;
    let Some(edwards) = MontgomeryPoint(*public).to_edwards(sign_bit) else {
        return false;
    };
    let mut s_bytes = [0u8; 32];
    s_bytes.copy_from_slice(&signature[32..]);
    s_bytes[31] &= 0x7f;
    let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)) else {
        return false;
    };
    let cap_a = edwards.compress();
    let cap_r = &signature[..32];
    let h = scalar_from_hash(&[cap_r, cap_a.as_bytes(), message]);
    // s·B − h·A, with the point negated instead of the scalar (see `sign`).
    let check = EdwardsPoint::vartime_double_scalar_mul_basepoint(&h, &(-edwards), &s);
    check.compress().as_bytes() == cap_r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::keys::KeyPair;
    use rand::rngs::OsRng;
    use rand::RngCore;

    #[test]
    fn signatures_verify_for_many_keys() {
        // Half of all keys have an Edwards sign bit of 1: exercise both branches.
        for _ in 0..64 {
            let pair = KeyPair::generate(&mut OsRng);
            let mut msg = [0u8; 33];
            OsRng.fill_bytes(&mut msg);
            let sig = pair.private.sign(&msg, &mut OsRng);
            assert!(pair.public.verify_signature(&msg, &sig));
            assert_eq!(sig[63] & 0x80, 0, "spec-form signatures carry sign bit 0");
        }
    }

    #[test]
    fn any_bit_flip_is_rejected() {
        let pair = KeyPair::generate(&mut OsRng);
        let msg = b"signed prekey";
        let sig = pair.private.sign(msg, &mut OsRng);
        for bit in 0..512 {
            let mut bad = sig;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(!pair.public.verify_signature(msg, &bad), "bit {bit}");
        }
        let mut bad_msg = *msg;
        bad_msg[0] ^= 1;
        assert!(!pair.public.verify_signature(&bad_msg, &sig));
        let other = KeyPair::generate(&mut OsRng);
        assert!(!other.public.verify_signature(msg, &sig));
        assert!(!pair.public.verify_signature(msg, &sig[..63]));
    }

    #[test]
    fn libsignal_sign_bit_convention_verifies() {
        // Produce a signature the way libsignal does (no negation, sign bit stored in s)
        // from a key whose Edwards form has sign bit 1, and check that we accept it.
        let pair = loop {
            let pair = KeyPair::generate(&mut OsRng);
            let a = Scalar::from_bytes_mod_order(*pair.private.expose_bytes());
            if EdwardsPoint::mul_base(&a).compress().as_bytes()[31] & 0x80 != 0 {
                break pair;
            }
        };
        let msg = b"hello";
        let a = Scalar::from_bytes_mod_order(*pair.private.expose_bytes());
        let cap_a = EdwardsPoint::mul_base(&a).compress();
        let r = scalar_from_hash(&[&HASH1_PREFIX, pair.private.expose_bytes(), msg, &[7u8; 64]]);
        let cap_r = EdwardsPoint::mul_base(&r).compress();
        let h = scalar_from_hash(&[cap_r.as_bytes(), cap_a.as_bytes(), msg]);
        let s = h * a + r;
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(cap_r.as_bytes());
        sig[32..].copy_from_slice(s.as_bytes());
        sig[63] |= cap_a.as_bytes()[31] & 0x80;
        assert!(pair.public.verify_signature(msg, &sig));
    }

    #[test]
    fn non_canonical_public_keys_are_rejected() {
        assert!(!is_canonical_u(&[0xff; 32]));
        let mut p = [0xff; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        assert!(!is_canonical_u(&p));
        p[0] = 0xec;
        assert!(is_canonical_u(&p));
    }
}
