//! Polynomials of Kyber's ring Z_q[X]/(X^256 + 1): the number-theoretic transform, noise and
//! uniform sampling, compression and byte packing. Secret-dependent steps use no division and
//! no branches on coefficients (the KyberSlash lesson: `-Oz` keeps a real `div`).

use zeroize::Zeroize;

use super::sponge::Sponge;

pub(super) const N: usize = 256;
pub(super) const Q: i16 = 3329;
/// q^-1 mod 2^16, as a signed 16-bit value.
const Q_INV: i16 = -3327;
/// 2^32 mod q: multiplying by it in Montgomery form brings a value into Montgomery form.
const TO_MONT: i16 = 1353;
/// mont^2 / 128: undoes the inverse transform's scaling and leaves Montgomery form.
const INV_NTT_SCALE: i16 = 1441;

/// The 128 powers of ζ = 17 in bit-reversed order, in Montgomery form (× 2^16), centred.
/// Computed at compile time: the table is data, not code to ship.
const ZETAS: [i16; 128] = {
    let mut zetas = [0i16; 128];
    let mut i = 0;
    while i < 128 {
        let mut exponent = 0;
        let mut bit = 0;
        while bit < 7 {
            exponent |= ((i >> bit) & 1) << (6 - bit);
            bit += 1;
        }
        let mut power: i32 = 1;
        let mut e = 0;
        while e < exponent {
            power = power * 17 % Q as i32;
            e += 1;
        }
        let mut mont = power * 65536 % Q as i32;
        if mont > Q as i32 / 2 {
            mont -= Q as i32;
        }
        zetas[i] = mont as i16;
        i += 1;
    }
    zetas
};

fn montgomery_reduce(a: i32) -> i16 {
    let t = (a as i16).wrapping_mul(Q_INV);
    ((a - t as i32 * Q as i32) >> 16) as i16
}

/// The centred representative of `a` mod q, for |a| < 2^15.
fn barrett_reduce(a: i16) -> i16 {
    const V: i32 = ((1 << 26) + Q as i32 / 2) / Q as i32;
    let t = ((V * a as i32 + (1 << 25)) >> 26) as i16;
    a.wrapping_sub(t.wrapping_mul(Q))
}

fn fq_mul(a: i16, b: i16) -> i16 {
    montgomery_reduce(a as i32 * b as i32)
}

/// `round(2^bits · x / q) mod 2^bits` for 0 ≤ x < q, by multiplication: 10,321,340 is
/// ⌈2^35 / q⌉, exact for every input here (tested exhaustively).
fn compress(x: u16, bits: u32) -> u16 {
    let scaled = ((x as u64) << bits) + (Q as u64 / 2);
    ((scaled * 10_321_340) >> 35) as u16 & ((1 << bits) - 1)
}

fn decompress(y: u16, bits: u32) -> i16 {
    ((y as u32 * Q as u32 + (1 << (bits - 1))) >> bits) as i16
}

/// The representative in [0, q) of a centred coefficient.
fn positive(c: i16) -> u16 {
    (c + ((c >> 15) & Q)) as u16
}

/// A polynomial's 256 coefficients (in normal or NTT form, as the caller tracks).
#[derive(Clone, Zeroize)]
pub(super) struct Poly(pub(super) [i16; N]);

impl Poly {
    pub(super) const fn zero() -> Self {
        Poly([0; N])
    }

    /// Forward NTT; output coefficients reduced.
    pub(super) fn ntt(&mut self) {
        let r = &mut self.0;
        let mut k = 1;
        let mut len = 128;
        while len >= 2 {
            for start in (0..N).step_by(2 * len) {
                let zeta = ZETAS[k];
                k += 1;
                for j in start..start + len {
                    let t = fq_mul(zeta, r[j + len]);
                    r[j + len] = r[j].wrapping_sub(t);
                    r[j] = r[j].wrapping_add(t);
                }
            }
            len >>= 1;
        }
        self.reduce();
    }

    /// Inverse NTT, leaving the result multiplied by the Montgomery factor 2^16.
    pub(super) fn inv_ntt_to_mont(&mut self) {
        let r = &mut self.0;
        let mut k = 127;
        let mut len = 2;
        while len <= 128 {
            for start in (0..N).step_by(2 * len) {
                let zeta = ZETAS[k];
                k -= 1;
                for j in start..start + len {
                    let t = r[j];
                    r[j] = barrett_reduce(t.wrapping_add(r[j + len]));
                    r[j + len] = fq_mul(zeta, r[j + len].wrapping_sub(t));
                }
            }
            len <<= 1;
        }
        for c in r.iter_mut() {
            *c = fq_mul(*c, INV_NTT_SCALE);
        }
    }

    pub(super) fn scale_to_montgomery(&mut self) {
        for c in self.0.iter_mut() {
            *c = montgomery_reduce(*c as i32 * TO_MONT as i32);
        }
    }

    pub(super) fn reduce(&mut self) {
        for c in self.0.iter_mut() {
            *c = barrett_reduce(*c);
        }
    }

    pub(super) fn add(&mut self, other: &Poly) {
        for (c, o) in self.0.iter_mut().zip(other.0.iter()) {
            *c = c.wrapping_add(*o);
        }
    }

    /// `self = other − self`.
    pub(super) fn sub_from(&mut self, other: &Poly) {
        for (c, o) in self.0.iter_mut().zip(other.0.iter()) {
            *c = o.wrapping_sub(*c);
        }
    }

    /// Adds `a ∘ b` (NTT-domain product, Montgomery-scaled by 2^-16) to `self`.
    pub(super) fn add_product(&mut self, a: &Poly, b: &Poly) {
        for i in 0..N / 2 {
            let zeta = ZETAS[64 + i / 2];
            let zeta = if i % 2 == 0 { zeta } else { -zeta };
            let (a0, a1, b0, b1) = (a.0[2 * i], a.0[2 * i + 1], b.0[2 * i], b.0[2 * i + 1]);
            let r0 = fq_mul(fq_mul(a1, b1), zeta).wrapping_add(fq_mul(a0, b0));
            let r1 = fq_mul(a0, b1).wrapping_add(fq_mul(a1, b0));
            self.0[2 * i] = self.0[2 * i].wrapping_add(r0);
            self.0[2 * i + 1] = self.0[2 * i + 1].wrapping_add(r1);
        }
    }

    /// Centred binomial noise with η = 2 from SHAKE256(seed ‖ nonce) (Kyber's PRF).
    pub(super) fn noise(seed: &[u8; 32], nonce: u8) -> Poly {
        let mut bytes: [u8; 128] = Sponge::shake256().absorb(seed).absorb(&[nonce]).finish();
        let mut poly = Poly::zero();
        for (i, word) in bytes.chunks_exact(4).enumerate() {
            let t = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
            let d = (t & 0x5555_5555) + ((t >> 1) & 0x5555_5555);
            for j in 0..8 {
                let a = ((d >> (4 * j)) & 3) as i16;
                let b = ((d >> (4 * j + 2)) & 3) as i16;
                poly.0[8 * i + j] = a - b;
            }
        }
        bytes.zeroize();
        poly
    }

    /// A uniform polynomial (already in NTT form) by rejection sampling SHAKE128(seed ‖ x ‖ y).
    /// Only public data goes in, so the data-dependent loop leaks nothing.
    pub(super) fn uniform(seed: &[u8; 32], x: u8, y: u8) -> Poly {
        let mut reader = Sponge::shake128();
        reader.absorb(seed).absorb(&[x, y]);
        let mut poly = Poly::zero();
        let mut count = 0;
        let mut b = [0u8; 3];
        while count < N {
            reader.squeeze(&mut b);
            let d1 = u16::from_le_bytes([b[0], b[1]]) & 0xfff;
            let d2 = (b[1] >> 4) as u16 | (b[2] as u16) << 4;
            for d in [d1, d2] {
                if d < Q as u16 && count < N {
                    poly.0[count] = d as i16;
                    count += 1;
                }
            }
        }
        poly
    }

    /// Packs `bits`-bit values least significant bit first, as Kyber encodes everything.
    fn pack(values: impl Iterator<Item = u16>, bits: u32, out: &mut [u8]) {
        let (mut acc, mut filled, mut at) = (0u32, 0u32, 0);
        for v in values {
            acc |= (v as u32) << filled;
            filled += bits;
            while filled >= 8 {
                out[at] = acc as u8;
                at += 1;
                acc >>= 8;
                filled -= 8;
            }
        }
    }

    fn unpack(bytes: &[u8], bits: u32) -> impl Iterator<Item = u16> + '_ {
        let (mut acc, mut filled, mut at) = (0u32, 0u32, 0);
        core::iter::from_fn(move || {
            while filled < bits {
                acc |= (*bytes.get(at)? as u32) << filled;
                at += 1;
                filled += 8;
            }
            let v = (acc & ((1 << bits) - 1)) as u16;
            acc >>= bits;
            filled -= bits;
            Some(v)
        })
    }

    /// 12 bits per coefficient (384 bytes).
    pub(super) fn to_bytes(&self, out: &mut [u8]) {
        Self::pack(self.0.iter().map(|&c| positive(c)), 12, out);
    }

    pub(super) fn from_bytes(bytes: &[u8]) -> Poly {
        let mut poly = Poly::zero();
        for (c, v) in poly.0.iter_mut().zip(Self::unpack(bytes, 12)) {
            *c = v as i16;
        }
        poly
    }

    /// Compresses to `bits` bits per coefficient (`bits` = 1 gives the message).
    pub(super) fn compress(&self, bits: u32, out: &mut [u8]) {
        Self::pack(
            self.0.iter().map(|&c| compress(positive(c), bits)),
            bits,
            out,
        );
    }

    pub(super) fn decompress(bytes: &[u8], bits: u32) -> Poly {
        let mut poly = Poly::zero();
        for (c, v) in poly.0.iter_mut().zip(Self::unpack(bytes, bits)) {
            *c = decompress(v, bits);
        }
        poly
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zetas_match_the_reference_table_ends() {
        // First and last entries of the Kyber reference implementation's table.
        assert_eq!(&ZETAS[..4], &[-1044, -758, -359, -1517]);
        assert_eq!(&ZETAS[124..], &[958, -1460, 1522, 1628]);
    }

    #[test]
    fn compression_by_multiplication_equals_rounded_division() {
        for bits in [1u32, 5, 11] {
            for x in 0..Q as u32 {
                let exact = (((x << bits) + Q as u32 / 2) / Q as u32) & ((1 << bits) - 1);
                assert_eq!(compress(x as u16, bits) as u32, exact, "x={x} bits={bits}");
            }
        }
    }

    #[test]
    fn ntt_round_trip_is_identity_up_to_montgomery_factor() {
        let mut p = Poly::zero();
        for (i, c) in p.0.iter_mut().enumerate() {
            *c = (i as i16 * 13) % Q;
        }
        let original = p.clone();
        p.ntt();
        p.inv_ntt_to_mont();
        // inv_ntt leaves a factor 2^16; montgomery_reduce(c) removes it.
        for (c, o) in p.0.iter().zip(original.0.iter()) {
            let back = barrett_reduce(montgomery_reduce(*c as i32));
            assert_eq!(positive(back), positive(barrett_reduce(*o)));
        }
    }

    #[test]
    fn packing_round_trips() {
        let mut p = Poly::zero();
        for (i, c) in p.0.iter_mut().enumerate() {
            *c = (i as i16 * 101) % Q;
        }
        let mut bytes = [0u8; 384];
        p.to_bytes(&mut bytes);
        assert_eq!(Poly::from_bytes(&bytes).0, p.0);
    }
}
