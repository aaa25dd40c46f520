//! NIST's known-answer vectors for Kyber1024, round 3: every one of the 100 vectors of
//! `PQCkemKAT_3168.rsp` (the submission's `KAT/kyber1024/`) reproduced from its seed.
//!
//! **How the reference made them** (`PQCgenKAT_kem.c`, `rng.c`, and the round-3 `kem.c` and
//! `indcpa.c`): NIST's AES-256 CTR_DRBG, seeded with the bytes 0, 1, …, 47, gives the 100
//! 48-byte seeds. For each, the DRBG is seeded again with that seed (`randombytes_init`), then
//! - `crypto_kem_keypair`: `indcpa_keypair` draws 32 bytes, d (hashed with SHA3-512 into ρ and
//!   σ), then `crypto_kem_keypair` draws 32 more, z. These are two `randombytes` calls, and
//!   each call ends with a DRBG update, so this is not one draw of 64 bytes (the later
//!   "standard" branch, which became ML-KEM, draws 64 at once and has other vectors).
//! - `crypto_kem_enc` draws 32 bytes and hashes them, m = SHA3-256(draw): what
//!   [`KyberPublicKey::encapsulate_with`](super::KyberPublicKey) does with its argument.
//!
//! Our key pair is the 64-byte seed d ‖ z ([`KyberKeyPair::from_seed`](super::KyberKeyPair)),
//! so the round-3 secret key the file prints, ŝ ‖ pk ‖ SHA3-256(pk) ‖ z (3,168 bytes), is put
//! together here from what our key generation derives.
//!
//! **The data** (`tests/data/kyber1024_round3_kat.txt`): the whole `.rsp` is 1.28 MB, so it is
//! kept compact: per vector the count and seed as printed, SHA-256 of pk, sk and ct, and ss
//! whole; vector 0 also has pk, sk and ct whole, so that a failure there shows the first
//! byte that differs. The file was made from a copy of `PQCkemKAT_3168.rsp` (whose two
//! closing newlines had been trimmed, restored before hashing) after checking that copy's
//! SHA-256 against the one given independently by Cloudflare's CIRCL
//! (`kem/kyber/kat_test.go`, "Computed from reference implementation") and by Zig's standard
//! library (`std/crypto/ml_kem.zig`, "NIST KAT test d00.Kyber1024"), [`RSP_SHA256`]; the
//! 100 vectors without the `# Kyber1024` title also hash to liboqs's `Kyber1024` "all" value
//! in `tests/KATs/kem/kats.json` (b72b97eb…3a46), and vector 0 alone to its "single" value
//! (5afcf2a5…8f60).
//!
//! **What the test checks**: the DRBG reproduces the 100 seeds; each vector's pk, sk, ct and
//! ss match the data, and decapsulation gives ss back; and the `.rsp` text rebuilt from our
//! outputs, in `PQCgenKAT_kem.c`'s format, hashes to [`RSP_SHA256`]. That last check does not
//! rely on the data file at all: it holds every byte of all 100 vectors to the published digest.
//!
//! Not covered: implicit rejection (the vectors only decapsulate valid ciphertexts); the
//! tests in `mod.rs` hold that to libcrux.

use crate::prelude::*;

use aes::cipher::{generic_array::GenericArray, BlockEncrypt, KeyInit};
use sha2::{Digest, Sha256};

use super::pke::{CIPHERTEXT_BYTES, PUBLIC_KEY_BYTES, VEC_BYTES};
use super::{sha3_256, KyberKeyPair, KYBER_SEED_LEN};

/// SHA-256 of the whole `PQCkemKAT_3168.rsp` (round 3), as CIRCL and Zig's standard library
/// give it.
const RSP_SHA256: &str = "89248f2f33f7f4f7051729111f3049c409a933ec904aedadf035f30fa5646cd5";

const DATA: &str = include_str!("../../../tests/data/kyber1024_round3_kat.txt");

/// The round-3 secret key: ŝ, pk, H(pk), z.
const SECRET_KEY_BYTES: usize = VEC_BYTES + PUBLIC_KEY_BYTES + 32 + 32;

/// NIST's AES-256 CTR_DRBG as the reference's `rng.c` has it: no derivation function, no
/// personalisation, no reseeding.
struct NistDrbg {
    key: [u8; 32],
    v: [u8; 16],
}

impl NistDrbg {
    fn new(entropy: &[u8; 48]) -> Self {
        let mut drbg = NistDrbg {
            key: [0; 32],
            v: [0; 16],
        };
        drbg.update(Some(entropy));
        drbg
    }

    /// V ← V + 1 (big-endian), then AES-256(Key, V).
    fn next_block(&mut self, cipher: &aes::Aes256) -> [u8; 16] {
        for byte in self.v.iter_mut().rev() {
            let (next, carry) = byte.overflowing_add(1);
            *byte = next;
            if !carry {
                break;
            }
        }
        let mut block = GenericArray::clone_from_slice(&self.v);
        cipher.encrypt_block(&mut block);
        block.into()
    }

    fn update(&mut self, provided: Option<&[u8; 48]>) {
        let cipher = aes::Aes256::new(&self.key.into());
        let mut temp = [0u8; 48];
        for chunk in temp.chunks_exact_mut(16) {
            chunk.copy_from_slice(&self.next_block(&cipher));
        }
        if let Some(provided) = provided {
            for (t, p) in temp.iter_mut().zip(provided) {
                *t ^= p;
            }
        }
        self.key.copy_from_slice(&temp[..32]);
        self.v.copy_from_slice(&temp[32..]);
    }

    /// `randombytes`: whole blocks, the last one cut, then an update.
    fn fill(&mut self, out: &mut [u8]) {
        let cipher = aes::Aes256::new(&self.key.into());
        for chunk in out.chunks_mut(16) {
            let block = self.next_block(&cipher);
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
        self.update(None);
    }
}

#[derive(Default)]
struct Vector {
    count: usize,
    seed: Vec<u8>,
    pk_sha256: Vec<u8>,
    sk_sha256: Vec<u8>,
    ct_sha256: Vec<u8>,
    ss: Vec<u8>,
    /// Vector 0 only.
    whole: Option<(Vec<u8>, Vec<u8>, Vec<u8>)>,
}

fn parse(data: &str) -> (String, Vec<Vector>) {
    let mut digest = String::new();
    let mut vectors: Vec<Vector> = Vec::new();
    let mut whole: [Vec<u8>; 3] = Default::default();
    for line in data.lines() {
        if let Some(value) = line.strip_prefix("# rsp_sha256 = ") {
            digest = value.to_owned();
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = line.split_once(" = ").unwrap();
        if name == "count" {
            vectors.push(Vector {
                count: value.parse().unwrap(),
                ..Vector::default()
            });
            continue;
        }
        let bytes = hex::decode(value).unwrap();
        let vector = vectors.last_mut().unwrap();
        match name {
            "seed" => vector.seed = bytes,
            "pk" => whole[0] = bytes,
            "sk" => whole[1] = bytes,
            "ct" => whole[2] = bytes,
            "pk_sha256" => vector.pk_sha256 = bytes,
            "sk_sha256" => vector.sk_sha256 = bytes,
            "ct_sha256" => vector.ct_sha256 = bytes,
            "ss" => vector.ss = bytes,
            _ => panic!("unknown field {name}"),
        }
        if name == "ss" && !whole[0].is_empty() {
            let [pk, sk, ct] = core::mem::take(&mut whole);
            vector.whole = Some((pk, sk, ct));
        }
    }
    (digest, vectors)
}

fn same_bytes(what: &str, count: usize, ours: &[u8], theirs: &[u8]) {
    assert_eq!(ours.len(), theirs.len(), "vector {count}: {what} length");
    if let Some(at) = ours.iter().zip(theirs).position(|(a, b)| a != b) {
        panic!(
            "vector {count}: {what} differs first at byte {at}: ours {:02x}, the KAT's {:02x}",
            ours[at], theirs[at]
        );
    }
}

#[test]
fn all_100_round3_known_answer_vectors() {
    let (digest, vectors) = parse(DATA);
    assert_eq!(digest, RSP_SHA256, "the data file is for another .rsp");
    assert_eq!(vectors.len(), 100);
    assert!(vectors[0].whole.is_some());

    let mut seeds = NistDrbg::new(&core::array::from_fn(|i| i as u8));
    let mut rsp = Sha256::new();
    rsp.update(b"# Kyber1024\n\n");
    for (i, vector) in vectors.iter().enumerate() {
        let count = vector.count;
        assert_eq!(count, i);
        let mut seed = [0u8; 48];
        seeds.fill(&mut seed);
        assert_eq!(&seed[..], &vector.seed[..], "vector {count}: seed");

        let mut drbg = NistDrbg::new(&seed);
        let mut key_seed = [0u8; KYBER_SEED_LEN];
        drbg.fill(&mut key_seed[..32]); // d, in indcpa_keypair
        drbg.fill(&mut key_seed[32..]); // z, in crypto_kem_keypair
        let mut coins = [0u8; 32];
        drbg.fill(&mut coins); // crypto_kem_enc; hashed inside encapsulate_with

        let pair = KyberKeyPair::from_seed(&key_seed);
        let (public, s_hat) = KyberKeyPair::expand(&key_seed);
        assert!(public == pair.public);
        let pk = &public.0[..];
        let mut sk = Vec::with_capacity(SECRET_KEY_BYTES);
        sk.extend_from_slice(&s_hat[..]);
        sk.extend_from_slice(pk);
        sk.extend_from_slice(&sha3_256(pk));
        sk.extend_from_slice(&key_seed[32..]);
        assert_eq!(sk.len(), SECRET_KEY_BYTES);

        let (wire_ct, ss) = pair.public.encapsulated(&coins);
        let ct = &wire_ct[1..];
        assert_eq!(ct.len(), CIPHERTEXT_BYTES);
        assert_eq!(
            pair.decapsulated(&wire_ct).unwrap(),
            ss,
            "vector {count}: decapsulation"
        );

        if let Some((their_pk, their_sk, their_ct)) = &vector.whole {
            same_bytes("pk", count, pk, their_pk);
            same_bytes("sk", count, &sk, their_sk);
            same_bytes("ct", count, ct, their_ct);
        }
        assert_eq!(
            &Sha256::digest(pk)[..],
            &vector.pk_sha256[..],
            "vector {count}: pk"
        );
        assert_eq!(
            &Sha256::digest(&sk)[..],
            &vector.sk_sha256[..],
            "vector {count}: sk"
        );
        assert_eq!(
            &Sha256::digest(ct)[..],
            &vector.ct_sha256[..],
            "vector {count}: ct"
        );
        assert_eq!(&ss[..], &vector.ss[..], "vector {count}: ss");

        rsp.update(format!("count = {count}\n"));
        for (name, value) in [
            ("seed", &seed[..]),
            ("pk", pk),
            ("sk", &sk),
            ("ct", ct),
            ("ss", &ss[..]),
        ] {
            rsp.update(format!("{name} = {}\n", hex::encode_upper(value)));
        }
        rsp.update(b"\n");
    }
    assert_eq!(hex::encode(rsp.finalize()), RSP_SHA256, "the rebuilt .rsp");
}

#[test]
fn the_drbg_is_nist_ctr_drbg() {
    // The first seed of PQCkemKAT_*.req / .rsp (every NIST KEM's file starts with it): the
    // DRBG seeded with 0..47, 48 bytes out.
    let mut drbg = NistDrbg::new(&core::array::from_fn(|i| i as u8));
    let mut first = [0u8; 48];
    drbg.fill(&mut first);
    assert_eq!(
        hex::encode_upper(first),
        "061550234D158C5EC95595FE04EF7A25767F2E24CC2BC479D09D86DC9ABCFDE7\
         056A8C266F9EF97ED08541DBD2E1FFA1"
    );
    // Two draws of 32 are not one of 64: each ends with an update.
    let mut once = NistDrbg::new(&first);
    let mut twice = NistDrbg::new(&first);
    let mut a = [0u8; 64];
    let mut b = [0u8; 64];
    once.fill(&mut a);
    twice.fill(&mut b[..32]);
    twice.fill(&mut b[32..]);
    assert_eq!(a[..32], b[..32]);
    assert_ne!(a[32..], b[32..]);
}
