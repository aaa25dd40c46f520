//! Kyber1024, round 3 (the KEM libsignal's PQXDH uses; not FIPS 203 ML-KEM, which hashes
//! differently in key generation, encapsulation and decapsulation), with libsignal's `0x08`
//! type byte in front of public keys and ciphertexts.
//!
//! Hand-written (on the `keccak` crate's permutation) because no maintained crate fits: RustCrypto's `ml-kem`
//! is FIPS 203 only, and `libcrux-ml-kem`'s Kyber adds 18.6 KB gzip to the wasm against about
//! 4 KB here. Its tests hold it byte for byte to `libcrux-ml-kem` (formally verified, and
//! what libsignal links), and to all 100 of NIST's round-3 known-answer vectors (`kat.rs`).

#[cfg(test)]
mod kat;
mod pke;
mod poly;
mod sponge;

use core::fmt;

use crate::prelude::*;

use rand_core::CryptoRngCore;
use subtle::{ConditionallySelectable, ConstantTimeEq};
use zeroize::Zeroizing;

use super::error::SignalError;

use pke::{CIPHERTEXT_BYTES, PUBLIC_KEY_BYTES, VEC_BYTES};
use sponge::Sponge;

/// libsignal's type byte for Kyber1024 keys and ciphertexts.
pub const KYBER_TYPE: u8 = 0x08;
/// A serialized Kyber1024 public key: the type byte and 1,568 bytes.
pub const KYBER_PUBLIC_KEY_LEN: usize = 1 + PUBLIC_KEY_BYTES;
/// A serialized Kyber1024 ciphertext: the type byte and 1,568 bytes.
pub const KYBER_CIPHERTEXT_LEN: usize = 1 + CIPHERTEXT_BYTES;
/// What a key pair is stored as: the key-generation seed d and the implicit-rejection secret z.
pub const KYBER_SEED_LEN: usize = 64;

/// A Kyber1024 public key (encapsulation key).
#[derive(Clone, PartialEq, Eq)]
pub struct KyberPublicKey(Box<[u8; PUBLIC_KEY_BYTES]>);

impl KyberPublicKey {
    /// Parses the `0x08`-prefixed 1,569-byte form.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SignalError> {
        match bytes.split_first() {
            Some((&KYBER_TYPE, rest)) if rest.len() == PUBLIC_KEY_BYTES => {
                let mut key = Box::new([0u8; PUBLIC_KEY_BYTES]);
                key.copy_from_slice(rest);
                Ok(Self(key))
            }
            Some((t, _)) if bytes.len() == KYBER_PUBLIC_KEY_LEN => Err(SignalError::BadKeyType(*t)),
            _ => Err(SignalError::BadKeyLength(bytes.len())),
        }
    }

    /// The 1,569-byte wire form; what the identity key signs.
    pub fn serialize(&self) -> Vec<u8> {
        prefixed(&self.0[..])
    }

    /// Encapsulates a fresh shared secret to this key: returns the wire-form ciphertext and
    /// writes the 32-byte secret to `shared` (in place, so no copy of it is left in a frame).
    pub fn encapsulate(&self, rng: &mut impl CryptoRngCore, shared: &mut [u8; 32]) -> Vec<u8> {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut seed[..]);
        self.encapsulate_with(&seed, shared)
    }

    fn encapsulate_with(&self, seed: &[u8; 32], shared: &mut [u8; 32]) -> Vec<u8> {
        // Round 3 hashes the random message first, so that raw RNG output never leaves.
        let mut message = Zeroizing::new([0u8; 32]);
        Sponge::sha3_256().absorb(seed).squeeze(&mut message[..]);
        let mut ciphertext = Box::new([0u8; CIPHERTEXT_BYTES]);
        let (mut pre_key, mut coins) = (Zeroizing::new([0u8; 32]), Zeroizing::new([0u8; 32]));
        expand(&message, &sha3_256(&self.0[..]), &mut pre_key, &mut coins);
        pke::encrypt(&self.0, &message, &coins, &mut ciphertext);
        key_for(&pre_key, &ciphertext[..], shared);
        prefixed(&ciphertext[..])
    }
}

impl fmt::Debug for KyberPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "KyberPublicKey({:02x}{:02x}{:02x}…)",
            self.0[0], self.0[1], self.0[2]
        )
    }
}

fn prefixed(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + bytes.len());
    out.push(KYBER_TYPE);
    out.extend_from_slice(bytes);
    out
}

/// (K̄, r) = G(m ‖ H(pk)): the key before the final KDF, and the encryption coins, squeezed
/// straight into the caller's buffers.
fn expand(
    message: &[u8; 32],
    public_key_hash: &[u8; 32],
    pre_key: &mut [u8; 32],
    coins: &mut [u8; 32],
) {
    let mut g = Sponge::sha3_512();
    g.absorb(message).absorb(public_key_hash);
    g.squeeze(pre_key);
    g.squeeze(coins);
}

/// K = SHAKE256(K̄ ‖ SHA3-256(c)), 32 bytes, written to `key`.
fn key_for(pre_key: &[u8; 32], ciphertext: &[u8], key: &mut [u8; 32]) {
    Sponge::shake256()
        .absorb(pre_key)
        .absorb(&sha3_256(ciphertext))
        .squeeze(key);
}

fn sha3_256(data: &[u8]) -> [u8; 32] {
    Sponge::sha3_256().absorb(data).finish()
}

/// A Kyber1024 key pair, kept as its 64-byte seed; the secret key is re-derived when needed.
#[derive(Clone)]
pub struct KyberKeyPair {
    seed: Zeroizing<[u8; KYBER_SEED_LEN]>,
    public: KyberPublicKey,
}

impl KyberKeyPair {
    /// A fresh key pair.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let mut seed = Zeroizing::new([0u8; KYBER_SEED_LEN]);
        rng.fill_bytes(&mut seed[..]);
        Self::from_seed(&seed)
    }

    /// The key pair a stored seed stands for.
    pub fn from_seed(seed: &[u8; KYBER_SEED_LEN]) -> Self {
        let (public, _secret) = Self::expand(seed);
        KyberKeyPair {
            seed: Zeroizing::new(*seed),
            public,
        }
    }

    fn expand(seed: &[u8; KYBER_SEED_LEN]) -> (KyberPublicKey, Zeroizing<Vec<u8>>) {
        let mut d = Zeroizing::new([0u8; 32]);
        d.copy_from_slice(&seed[..32]);
        let mut public = Box::new([0u8; PUBLIC_KEY_BYTES]);
        let mut secret = Zeroizing::new(vec![0u8; VEC_BYTES]);
        pke::generate(&d, &mut public, &mut secret);
        (KyberPublicKey(public), secret)
    }

    /// The seed to store; secret.
    pub fn seed(&self) -> &[u8; KYBER_SEED_LEN] {
        &self.seed
    }

    /// The public half.
    pub fn public(&self) -> &KyberPublicKey {
        &self.public
    }

    /// Writes the shared secret a wire-form ciphertext carries to `shared`. A ciphertext not
    /// made for this key gives an unrelated secret (implicit rejection), which the session's
    /// MAC then refuses.
    pub fn decapsulate(&self, ciphertext: &[u8], shared: &mut [u8; 32]) -> Result<(), SignalError> {
        let ciphertext: &[u8; CIPHERTEXT_BYTES] = match ciphertext.split_first() {
            Some((&KYBER_TYPE, rest)) => rest.try_into().map_err(|_| {
                SignalError::InvalidMessage("Kyber ciphertext has the wrong length")
            })?,
            _ => {
                return Err(SignalError::InvalidMessage(
                    "Kyber ciphertext lacks its type byte",
                ))
            }
        };
        let (public, secret) = Self::expand(&self.seed);
        let message = pke::decrypt(&secret[..], ciphertext);
        let (mut pre_key, mut coins) = (Zeroizing::new([0u8; 32]), Zeroizing::new([0u8; 32]));
        expand(&message, &sha3_256(&public.0[..]), &mut pre_key, &mut coins);
        let mut again = Box::new([0u8; CIPHERTEXT_BYTES]);
        pke::encrypt(&public.0, &message, &coins, &mut again);
        // Implicit rejection as libsignal's Kyber (libcrux) does it: K̄ becomes SHAKE256(z ‖ c).
        let mut rejection = Zeroizing::new([0u8; 32]);
        Sponge::shake256()
            .absorb(&self.seed[32..])
            .absorb(&ciphertext[..])
            .squeeze(&mut rejection[..]);
        let mismatch = !again[..].ct_eq(&ciphertext[..]);
        for (k, r) in pre_key.iter_mut().zip(rejection.iter()) {
            k.conditional_assign(r, mismatch);
        }
        key_for(&pre_key, &ciphertext[..], shared);
        Ok(())
    }
}

impl fmt::Debug for KyberKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KyberKeyPair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// Value-returning forms for tests, which compare secrets.
#[cfg(test)]
impl KyberPublicKey {
    fn encapsulated(&self, seed: &[u8; 32]) -> (Vec<u8>, [u8; 32]) {
        let mut shared = [0u8; 32];
        let ciphertext = self.encapsulate_with(seed, &mut shared);
        (ciphertext, shared)
    }
}

#[cfg(test)]
impl KyberKeyPair {
    fn decapsulated(&self, ciphertext: &[u8]) -> Result<[u8; 32], SignalError> {
        let mut shared = [0u8; 32];
        self.decapsulate(ciphertext, &mut shared).map(|()| shared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libcrux_ml_kem::kyber1024;
    use libcrux_ml_kem::mlkem1024::MlKem1024Ciphertext;

    fn seeded(i: u8) -> [u8; 64] {
        core::array::from_fn(|j| (j as u8).wrapping_mul(31).wrapping_add(i))
    }

    #[test]
    fn keys_ciphertexts_and_secrets_equal_libcrux_kyber() {
        for i in 0..8u8 {
            let seed = seeded(i);
            let ours = KyberKeyPair::from_seed(&seed);
            let theirs = kyber1024::generate_key_pair(seed);
            assert_eq!(&ours.public.0[..], theirs.pk(), "public key {i}");

            let randomness = [i ^ 0x5a; 32];
            let (ct, secret) = ours.public.encapsulated(&randomness);
            let pk = theirs.public_key().clone();
            let (their_ct, their_secret) = kyber1024::encapsulate(&pk, randomness);
            assert_eq!(&ct[1..], their_ct.as_slice(), "ciphertext {i}");
            assert_eq!(&secret[..], &their_secret[..], "secret {i}");

            assert_eq!(ours.decapsulated(&ct).unwrap(), secret);
            let sk = theirs.private_key().clone();
            let their_ct =
                MlKem1024Ciphertext::from(<[u8; CIPHERTEXT_BYTES]>::try_from(&ct[1..]).unwrap());
            assert_eq!(&kyber1024::decapsulate(&sk, &their_ct)[..], &secret[..]);

            // Implicit rejection: a flipped bit gives the same secret on both sides, not ours.
            let mut bad = ct.clone();
            bad[100] ^= 1;
            let rejected = ours.decapsulated(&bad).unwrap();
            assert_ne!(rejected, secret);
            let their_bad =
                MlKem1024Ciphertext::from(<[u8; CIPHERTEXT_BYTES]>::try_from(&bad[1..]).unwrap());
            assert_eq!(&kyber1024::decapsulate(&sk, &their_bad)[..], &rejected[..]);
        }
    }

    #[test]
    fn wire_forms_are_checked() {
        let pair = KyberKeyPair::from_seed(&seeded(1));
        let wire = pair.public.serialize();
        assert_eq!(wire.len(), KYBER_PUBLIC_KEY_LEN);
        assert_eq!(KyberPublicKey::from_bytes(&wire).unwrap(), pair.public);
        let mut wrong_type = wire.clone();
        wrong_type[0] = 0x05;
        assert_eq!(
            KyberPublicKey::from_bytes(&wrong_type),
            Err(SignalError::BadKeyType(0x05))
        );
        assert_eq!(
            KyberPublicKey::from_bytes(&wire[..100]),
            Err(SignalError::BadKeyLength(100))
        );
        let (ct, _) = pair.public.encapsulated(&[7; 32]);
        assert!(pair.decapsulated(&ct[1..]).is_err());
        assert!(pair.decapsulated(&ct[..ct.len() - 1]).is_err());
        let shown = format!("{pair:?}");
        assert!(shown.starts_with("KyberKeyPair"));
        assert!(!shown.contains(&hex::encode(&pair.seed[..4])), "{shown}");
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod stack_tests {
    use super::*;
    use crate::scanning_alloc::stack_left_holding;
    use zeroize::Zeroize;

    /// The probe finds what a function leaves on its stack.
    #[test]
    fn the_probe_finds_an_unwiped_copy() {
        #[inline(never)]
        fn leave(pattern: &[u8; 32]) {
            let copy = core::hint::black_box(*pattern);
            core::hint::black_box(&copy);
        }
        assert!(stack_left_holding(&[0x77; 32], || leave(&[0x77; 32])));
        assert!(!stack_left_holding(&[0x78; 32], || leave(&[0x77; 32])));
    }

    /// What Kyber computes on secrets (the seed's halves, the message, K̄ and the coins, the
    /// shared secret) is wiped in place: the frames of an encapsulation or decapsulation do
    /// not keep a copy once they return.
    #[test]
    fn kyber_leaves_no_secret_on_the_stack() {
        let seed: [u8; 64] = core::array::from_fn(|j| (j as u8).wrapping_mul(29) ^ 0xC3);
        let public = KyberKeyPair::from_seed(&seed).public.clone();
        let randomness = [0x42u8; 32];
        let (ct, shared) = public.encapsulated(&randomness);
        let message = sha3_256(&randomness);
        let (mut pre_key, mut coins) = ([0u8; 32], [0u8; 32]);
        expand(&message, &sha3_256(&public.0[..]), &mut pre_key, &mut coins);

        let mut out = Zeroizing::new([0u8; 32]);
        let mut encapsulate = || drop(public.encapsulate_with(&randomness, &mut out));
        for (name, secret) in [
            ("message", &message),
            ("K̄", &pre_key),
            ("coins", &coins),
            ("shared secret", &shared),
        ] {
            assert!(
                !stack_left_holding(secret, &mut encapsulate),
                "encapsulation left the {name}"
            );
        }
        out.zeroize();
        let decapsulate = || {
            let pair = KyberKeyPair::from_seed(&seed);
            let mut out = Zeroizing::new([0u8; 32]);
            assert!(pair.decapsulate(&ct, &mut out).is_ok());
        };
        for (name, secret) in [
            ("d", &seed[..32]),
            ("z", &seed[32..]),
            ("message", &message[..]),
            ("K̄", &pre_key[..]),
            ("coins", &coins[..]),
            ("shared secret", &shared[..]),
        ] {
            assert!(
                !stack_left_holding(secret, decapsulate),
                "decapsulation left {name}"
            );
        }
    }
}
