//! Kyber1024's inner public-key encryption (round 3, "IND-CPA"): k = 4, η1 = η2 = 2,
//! d_u = 11, d_v = 5.

use zeroize::{Zeroize, Zeroizing};

use super::poly::{Poly, N};
use super::sponge::Sponge;

pub(super) const K: usize = 4;
const POLY_BYTES: usize = 384;
pub(super) const VEC_BYTES: usize = K * POLY_BYTES;
const U_BITS: u32 = 11;
const V_BITS: u32 = 5;
const U_BYTES: usize = K * N * U_BITS as usize / 8;
pub(super) const PUBLIC_KEY_BYTES: usize = VEC_BYTES + 32;
pub(super) const CIPHERTEXT_BYTES: usize = U_BYTES + N * V_BITS as usize / 8;

type Vector = [Poly; K];

fn vector() -> Vector {
    [Poly::zero(), Poly::zero(), Poly::zero(), Poly::zero()]
}

fn vector_from_bytes(bytes: &[u8]) -> Vector {
    let mut v = vector();
    for (p, chunk) in v.iter_mut().zip(bytes.chunks_exact(POLY_BYTES)) {
        *p = Poly::from_bytes(chunk);
    }
    v
}

fn vector_to_bytes(v: &Vector, out: &mut [u8]) {
    for (p, chunk) in v.iter().zip(out.chunks_exact_mut(POLY_BYTES)) {
        p.to_bytes(chunk);
    }
}

/// Σ a_i ∘ b_i in the NTT domain, reduced.
fn inner_product(a: &Vector, b: &Vector) -> Poly {
    let mut r = Poly::zero();
    for (x, y) in a.iter().zip(b.iter()) {
        r.add_product(x, y);
    }
    r.reduce();
    r
}

/// Row `i` of the public matrix A (or of its transpose) from the seed ρ.
fn matrix_row(rho: &[u8; 32], i: usize, transposed: bool) -> Vector {
    let mut row = vector();
    for (j, p) in row.iter_mut().enumerate() {
        let (x, y) = if transposed { (i, j) } else { (j, i) };
        *p = Poly::uniform(rho, x as u8, y as u8);
    }
    row
}

fn noise_vector(seed: &[u8; 32], first_nonce: u8) -> Zeroizing<Vector> {
    let mut v = Zeroizing::new(vector());
    for (i, p) in v.iter_mut().enumerate() {
        *p = Poly::noise(seed, first_nonce + i as u8);
    }
    v
}

/// Key generation from the 32-byte seed d: fills `public_key` (t̂ ‖ ρ) and `secret_key` (ŝ).
pub(super) fn generate(
    d: &[u8; 32],
    public_key: &mut [u8; PUBLIC_KEY_BYTES],
    secret_key: &mut [u8],
) {
    // Round 3 hashes d alone (FIPS 203 appends k here: one of the differences to ML-KEM).
    let mut expanded: [u8; 64] = Sponge::sha3_512().absorb(d).finish();
    let mut rho = [0u8; 32];
    let mut sigma = Zeroizing::new([0u8; 32]);
    rho.copy_from_slice(&expanded[..32]);
    sigma.copy_from_slice(&expanded[32..]);
    expanded.zeroize();

    let mut s = noise_vector(&sigma, 0);
    let mut e = noise_vector(&sigma, K as u8);
    for p in s.iter_mut().chain(e.iter_mut()) {
        p.ntt();
    }
    let mut t = vector();
    for (i, t_i) in t.iter_mut().enumerate() {
        *t_i = inner_product(&matrix_row(&rho, i, false), &s);
        t_i.scale_to_montgomery();
        t_i.add(&e[i]);
        t_i.reduce();
    }
    vector_to_bytes(&t, &mut public_key[..VEC_BYTES]);
    public_key[VEC_BYTES..].copy_from_slice(&rho);
    vector_to_bytes(&s, secret_key);
}

/// Encrypts the 32-byte `message` with the deterministic `coins`.
pub(super) fn encrypt(
    public_key: &[u8; PUBLIC_KEY_BYTES],
    message: &[u8; 32],
    coins: &[u8; 32],
    ciphertext: &mut [u8; CIPHERTEXT_BYTES],
) {
    let t = vector_from_bytes(&public_key[..VEC_BYTES]);
    let mut rho = [0u8; 32];
    rho.copy_from_slice(&public_key[VEC_BYTES..]);

    let mut r = noise_vector(coins, 0);
    let e1 = noise_vector(coins, K as u8);
    let mut e2 = Zeroizing::new(Poly::noise(coins, 2 * K as u8));
    for p in r.iter_mut() {
        p.ntt();
    }
    let mut u = Zeroizing::new(vector());
    for (i, u_i) in u.iter_mut().enumerate() {
        *u_i = inner_product(&matrix_row(&rho, i, true), &r);
        u_i.inv_ntt_to_mont();
        u_i.add(&e1[i]);
        u_i.reduce();
    }
    let mut v = Zeroizing::new(inner_product(&t, &r));
    v.inv_ntt_to_mont();
    v.add(&e2);
    v.add(&Poly::decompress(message, 1));
    v.reduce();
    e2.zeroize();

    for (p, chunk) in u
        .iter()
        .zip(ciphertext[..U_BYTES].chunks_exact_mut(U_BYTES / K))
    {
        p.compress(U_BITS, chunk);
    }
    v.compress(V_BITS, &mut ciphertext[U_BYTES..]);
}

/// Decrypts to the 32-byte message (always succeeds: Kyber's checks are in the KEM above).
pub(super) fn decrypt(
    secret_key: &[u8],
    ciphertext: &[u8; CIPHERTEXT_BYTES],
) -> Zeroizing<[u8; 32]> {
    let mut u = vector();
    for (p, chunk) in u
        .iter_mut()
        .zip(ciphertext[..U_BYTES].chunks_exact(U_BYTES / K))
    {
        *p = Poly::decompress(chunk, U_BITS);
        p.ntt();
    }
    let s = Zeroizing::new(vector_from_bytes(secret_key));
    let mut w = Zeroizing::new(inner_product(&s, &u));
    w.inv_ntt_to_mont();
    w.sub_from(&Poly::decompress(&ciphertext[U_BYTES..], V_BITS));
    w.reduce();
    let mut message = Zeroizing::new([0u8; 32]);
    w.compress(1, &mut message[..]);
    message
}
