//! Double Ratchet key derivation with libsignal's labels.

use crate::prelude::*;

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::error::SignalError;
use super::keys::{PrivateKey, PublicKey};

const ROOT_INFO: &[u8] = b"WhisperRatchet";
const MESSAGE_KEYS_INFO: &[u8] = b"WhisperMessageKeys";
const MESSAGE_KEY_SEED: u8 = 0x01;
const CHAIN_KEY_SEED: u8 = 0x02;

/// HKDF-SHA256 (RFC 5869) with an `N`-byte output. By hand over `hmac` rather than the
/// `hkdf` crate, whose own HMAC wrappers cost 0.6 KB of gzipped wasm beside the ones the
/// ratchet needs anyway; tests hold it to RFC 5869's vectors and to the `hkdf` crate.
pub(crate) fn hkdf_sha256<const N: usize>(salt: Option<&[u8]>, ikm: &[u8], info: &[u8]) -> [u8; N] {
    const { assert!(N <= 255 * 32, "HKDF-SHA256 output is at most 8160 bytes") };
    let mut okm = [0u8; N];
    hkdf_into(salt, ikm, info, &mut okm);
    okm
}

/// One body for every output length; `okm` is at most 255 blocks (checked by the caller).
fn hkdf_into(salt: Option<&[u8]>, ikm: &[u8], info: &[u8], okm: &mut [u8]) {
    // Extract; no salt means HashLen zero bytes.
    let mut extract = hmac_keyed(salt.unwrap_or(&[0; 32]));
    extract.update(ikm);
    let mut prk: [u8; 32] = extract.finalize().into_bytes().into();
    // Expand: T(i) = HMAC(PRK, T(i-1) ‖ info ‖ i).
    let mut block = [0u8; 32];
    for (i, chunk) in okm.chunks_mut(32).enumerate() {
        let mut mac = hmac_keyed(&prk);
        if i > 0 {
            mac.update(&block);
        }
        mac.update(info);
        mac.update(&[i as u8 + 1]);
        block = mac.finalize().into_bytes().into();
        chunk.copy_from_slice(&block[..chunk.len()]);
    }
    prk.zeroize();
    block.zeroize();
}

/// HMAC-SHA256 under any key. HMAC zero-pads keys up to its 64-byte block and hashes longer
/// ones (RFC 2104 §2); doing that here keeps to the infallible constructor.
pub(crate) fn hmac_keyed(key: &[u8]) -> Hmac<Sha256> {
    use sha2::Digest;
    let mut block = [0u8; 64];
    match block.get_mut(..key.len()) {
        Some(head) => head.copy_from_slice(key),
        None => block[..32].copy_from_slice(&Sha256::digest(key)),
    }
    let mac = <Hmac<Sha256> as KeyInit>::new(&block.into());
    block.zeroize();
    mac
}

/// HMAC-SHA256 keyed with a 32-byte key.
pub(crate) fn hmac_with_key(key: &[u8; 32]) -> Hmac<Sha256> {
    hmac_keyed(key)
}

fn hmac_sha256(key: &[u8; 32], data: &[u8]) -> [u8; 32] {
    let mut mac = hmac_with_key(key);
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The Double Ratchet root key; each DH ratchet step replaces it.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct RootKey(pub(crate) [u8; 32]);

impl RootKey {
    /// One DH ratchet step: mixes `DH(ours, theirs)` into the root key.
    pub(crate) fn create_chain(
        &self,
        their_ratchet_key: &PublicKey,
        our_ratchet_key: &PrivateKey,
    ) -> Result<(RootKey, ChainKey), SignalError> {
        let shared = our_ratchet_key.agree(their_ratchet_key)?;
        let mut derived: [u8; 64] = hkdf_sha256(Some(&self.0), shared.as_bytes(), ROOT_INFO);
        let result = split_root_and_chain(&derived);
        derived.zeroize();
        Ok(result)
    }
}

pub(crate) fn split_root_and_chain(derived: &[u8; 64]) -> (RootKey, ChainKey) {
    let mut root = [0u8; 32];
    let mut chain = [0u8; 32];
    root.copy_from_slice(&derived[..32]);
    chain.copy_from_slice(&derived[32..]);
    (
        RootKey(root),
        ChainKey {
            key: chain,
            index: 0,
        },
    )
}

/// A symmetric-ratchet chain key and its position.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct ChainKey {
    pub(crate) key: [u8; 32],
    pub(crate) index: u32,
}

impl ChainKey {
    /// The index of the message whose keys this chain key gives next.
    pub(crate) fn index(&self) -> u32 {
        self.index
    }

    /// The following chain key: HMAC-SHA256(key, 0x02), index + 1.
    pub(crate) fn next(&self) -> ChainKey {
        ChainKey {
            key: hmac_sha256(&self.key, &[CHAIN_KEY_SEED]),
            index: self.index + 1,
        }
    }

    /// This position's message key seed, HMAC-SHA256(key, 0x01).
    pub(crate) fn message_key_seed(&self) -> MessageKeySeed {
        MessageKeySeed {
            seed: hmac_sha256(&self.key, &[MESSAGE_KEY_SEED]),
            counter: self.index,
        }
    }
}

/// A message's key seed and counter: what is kept for a skipped message, because a v4
/// message's keys also need the SPQR key that only the message itself brings.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct MessageKeySeed {
    pub(crate) seed: [u8; 32],
    pub(crate) counter: u32,
}

impl MessageKeySeed {
    /// HKDF(salt = the SPQR key, or none in v3, ikm = seed, "WhisperMessageKeys").
    pub(crate) fn keys(&self, pq_key: Option<&[u8; 32]>) -> MessageKeys {
        let mut okm: [u8; 80] = hkdf_sha256(pq_key.map(|k| &k[..]), &self.seed, MESSAGE_KEYS_INFO);
        let mut keys = MessageKeys {
            cipher_key: [0; 32],
            mac_key: [0; 32],
            iv: [0; 16],
            counter: self.counter,
        };
        keys.cipher_key.copy_from_slice(&okm[..32]);
        keys.mac_key.copy_from_slice(&okm[32..64]);
        keys.iv.copy_from_slice(&okm[64..]);
        okm.zeroize();
        keys
    }
}

/// Per-message AES-256-CBC key, HMAC key and IV.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct MessageKeys {
    pub(crate) cipher_key: [u8; 32],
    pub(crate) mac_key: [u8; 32],
    pub(crate) iv: [u8; 16],
    pub(crate) counter: u32,
}

pub(crate) fn aes_cbc_encrypt(keys: &MessageKeys, plaintext: &[u8]) -> Vec<u8> {
    use cbc::cipher::{block_padding::Pkcs7, BlockEncryptMut, KeyIvInit};
    cbc::Encryptor::<aes::Aes256>::new((&keys.cipher_key).into(), (&keys.iv).into())
        .encrypt_padded_vec_mut::<Pkcs7>(plaintext)
}

pub(crate) fn aes_cbc_decrypt(
    keys: &MessageKeys,
    ciphertext: &[u8],
) -> Result<Vec<u8>, SignalError> {
    use cbc::cipher::{block_padding::Pkcs7, BlockDecryptMut, KeyIvInit};
    if ciphertext.is_empty() || ciphertext.len() % 16 != 0 {
        return Err(SignalError::InvalidMessage(
            "ciphertext is not whole AES blocks",
        ));
    }
    cbc::Decryptor::<aes::Aes256>::new((&keys.cipher_key).into(), (&keys.iv).into())
        .decrypt_padded_vec_mut::<Pkcs7>(ciphertext)
        .map_err(|_| SignalError::InvalidMessage("bad padding"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_steps_are_distinct_and_deterministic() {
        let chain = ChainKey {
            key: [1; 32],
            index: 0,
        };
        let next = chain.next();
        assert_eq!(next.index(), 1);
        assert_ne!(next.key, chain.key);
        assert_eq!(chain.next().key, next.key);
        let (k0, k1) = (
            chain.message_key_seed().keys(None),
            next.message_key_seed().keys(None),
        );
        assert_ne!(
            k1.cipher_key,
            next.message_key_seed().keys(Some(&[1; 32])).cipher_key
        );
        assert_ne!(k0.cipher_key, k1.cipher_key);
        assert_eq!(k1.counter, 1);
    }

    fn zeroized_on_drop<T: ZeroizeOnDrop>() {}

    #[test]
    fn ratchet_keys_are_wiped() {
        zeroized_on_drop::<RootKey>();
        zeroized_on_drop::<ChainKey>();
        zeroized_on_drop::<MessageKeys>();
        zeroized_on_drop::<MessageKeySeed>();
        let mut chain = ChainKey {
            key: [9; 32],
            index: 4,
        };
        let mut keys = chain.message_key_seed().keys(None);
        keys.zeroize();
        assert_eq!(
            (keys.cipher_key, keys.mac_key, keys.iv, keys.counter),
            ([0; 32], [0; 32], [0; 16], 0)
        );
        chain.zeroize();
        assert_eq!((chain.key, chain.index), ([0; 32], 0));
        let mut root = RootKey([5; 32]);
        root.zeroize();
        assert_eq!(root.0, [0; 32]);
    }

    #[test]
    fn padded_hmac_key_equals_the_short_key() {
        for seed in 0u8..16 {
            let key = [seed.wrapping_mul(37); 32];
            let mut padded = hmac_with_key(&key);
            let mut plain = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
            padded.update(b"message");
            plain.update(b"message");
            assert_eq!(
                padded.finalize().into_bytes(),
                plain.finalize().into_bytes()
            );
        }
    }

    #[test]
    fn hkdf_matches_rfc5869_case_3_without_salt() {
        let okm: [u8; 42] = hkdf_sha256(None, &[0x0b; 22], &[]);
        assert_eq!(
            hex::encode(okm),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
        );
    }

    #[test]
    fn hkdf_equals_the_hkdf_crate_for_every_salt_and_output_length() {
        let ikm = [7u8; 40];
        for salt_len in [0usize, 1, 19, 32, 63, 64, 65, 200] {
            let salt = vec![0x5c; salt_len];
            let ours: [u8; 255] = hkdf_sha256(Some(&salt), &ikm, b"info");
            let mut theirs = [0u8; 255];
            hkdf::Hkdf::<Sha256>::new(Some(&salt), &ikm)
                .expand(b"info", &mut theirs)
                .unwrap();
            assert_eq!(ours, theirs, "salt of {salt_len} bytes");
            for n in [1usize, 31, 32, 33, 64, 80, 96] {
                let mut part = vec![0u8; n];
                hkdf_into(Some(&salt), &ikm, b"info", &mut part);
                assert_eq!(part, theirs[..n], "{n} bytes");
            }
        }
    }

    #[test]
    fn hkdf_matches_rfc5869_case_1() {
        let ikm = [0x0bu8; 22];
        let salt: Vec<u8> = (0x00..=0x0c).collect();
        let info: Vec<u8> = (0xf0..=0xf9).collect();
        let okm: [u8; 42] = hkdf_sha256(Some(&salt), &ikm, &info);
        assert_eq!(
            hex::encode(okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        );
    }

    #[test]
    fn cbc_round_trip_and_padding_errors() {
        let keys = ChainKey {
            key: [3; 32],
            index: 0,
        }
        .message_key_seed()
        .keys(None);
        for len in [0usize, 1, 15, 16, 17, 100] {
            let pt = vec![0xaa; len];
            let ct = aes_cbc_encrypt(&keys, &pt);
            assert_eq!(ct.len(), (len / 16 + 1) * 16);
            assert_eq!(aes_cbc_decrypt(&keys, &ct).unwrap(), pt);
        }
        assert!(aes_cbc_decrypt(&keys, &[0u8; 15]).is_err());
        assert!(aes_cbc_decrypt(&keys, &[]).is_err());
    }
}
