//! Fixed-base scalar multiplication (every key generation, every XEdDSA signature) through a
//! table of basepoint multiples built on first use.
//!
//! Without a table, `k·B` costs as much as any variable-base multiplication (≈ 2,600 field
//! operations). With one, it is 64 constant-time lookups and additions (≈ 840). dalek ships
//! its table as 30 KB of constants; built here at run time it costs no bytes on the wire,
//! 80 KB of heap and about 0.25 ms once per page.
//!
//! Why not dalek's own table type: it comes only with the `precomputed-tables` feature,
//! whose table costs 1.8 ms to build (256 inversions) and which switches signature
//! verification to a shipped 7.7 KB table of its own; keeping verification fast without it
//! costs 1.2 KB of Straus code. This comb is built from dalek's public, complete point
//! addition and constant-time selection; its result is checked against dalek's
//! multiplication below.

use alloc::boxed::Box;
use alloc::vec::Vec;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::scalar::{clamp_integer, Scalar};
use curve25519_dalek::traits::Identity;
use once_cell::race::OnceBox;
use subtle::{ConditionallyNegatable, ConditionallySelectable, ConstantTimeEq};
use zeroize::Zeroize;

/// Row `i` holds `1·16ⁱ·B … 8·16ⁱ·B`: one row per signed radix-16 digit of a scalar.
struct Table(Vec<[EdwardsPoint; 8]>);

/// Built by the first caller. Only public multiples of the basepoint live here.
static TABLE: OnceBox<Table> = OnceBox::new();

fn table() -> &'static Table {
    TABLE.get_or_init(|| {
        let mut rows = Vec::with_capacity(64);
        let mut base = ED25519_BASEPOINT_POINT;
        for _ in 0..64 {
            let mut row = [base; 8];
            for j in 1..8 {
                row[j] = row[j - 1] + base;
            }
            base = row[7] + row[7];
            rows.push(row);
        }
        Box::new(Table(rows))
    })
}

/// Builds the table now, if no operation has yet. An SDK opened on stored keys calls this
/// so that its first X3DH, on the way to the meeting key, does not pay for the table.
pub fn build_basepoint_table() {
    table();
}

/// `scalar · B`, in constant time: no branch or memory access depends on the scalar.
pub(crate) fn mul_base(scalar: &Scalar) -> EdwardsPoint {
    // Signed radix-16 digits in [−8, 8): the scalar is below 2²⁵³, so the last one stays ≤ 8.
    let mut digits = [0i8; 64];
    for (i, byte) in scalar.as_bytes().iter().enumerate() {
        digits[2 * i] = (byte & 15) as i8;
        digits[2 * i + 1] = (byte >> 4) as i8;
    }
    for i in 0..63 {
        let carry = (digits[i] + 8) >> 4;
        digits[i] -= carry << 4;
        digits[i + 1] += carry;
    }
    let mut sum = EdwardsPoint::identity();
    for (digit, row) in digits.iter().zip(&table().0) {
        let negative = (*digit as u8) >> 7;
        let magnitude = (i16::from(*digit) * (1 - 2 * i16::from(negative))) as u8;
        // Every entry is read; the one wanted is kept (none, for a zero digit).
        let mut term = EdwardsPoint::identity();
        for (multiple, point) in (1u8..).zip(row) {
            term.conditional_assign(point, magnitude.ct_eq(&multiple));
        }
        term.conditional_negate(negative.into());
        sum += &term;
    }
    digits.zeroize();
    sum
}

/// The X25519 public key of a private scalar: `clamp(private) · B` as a u-coordinate.
pub(crate) fn x25519_public(private: &[u8; 32]) -> MontgomeryPoint {
    // B has order ℓ, so the clamped scalar may be reduced mod ℓ first.
    let mut scalar = Scalar::from_bytes_mod_order(clamp_integer(*private));
    let public = mul_base(&scalar).to_montgomery();
    scalar.zeroize();
    public
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;
    use rand::RngCore;

    /// The comb agrees with dalek's multiplication, on random scalars and on the ones
    /// whose digits sit at the edges of the recoding (all 8s, all 15s, 0, 1, ℓ − 1, 2²⁵²).
    #[test]
    fn matches_dalek() {
        let mut scalars = vec![
            Scalar::ZERO,
            Scalar::ONE,
            -Scalar::ONE,
            Scalar::from_bytes_mod_order([0x88; 32]),
            Scalar::from_bytes_mod_order([0xff; 32]),
            Scalar::from_bytes_mod_order([0x77; 32]),
        ];
        let mut top = [0u8; 32];
        top[31] = 0x10;
        scalars.push(Scalar::from_bytes_mod_order(top));
        for small in [7u64, 8, 9, 15, 16, 17, 0x88, 0x8888_8888] {
            scalars.push(Scalar::from(small));
        }
        for _ in 0..64 {
            let mut wide = [0u8; 64];
            OsRng.fill_bytes(&mut wide);
            scalars.push(Scalar::from_bytes_mod_order_wide(&wide));
        }
        for scalar in scalars {
            assert_eq!(mul_base(&scalar), ED25519_BASEPOINT_POINT * scalar);
        }
    }

    /// Public keys agree with X25519's own ladder on the basepoint.
    #[test]
    fn x25519_public_matches_the_ladder() {
        for _ in 0..32 {
            let mut private = [0u8; 32];
            OsRng.fill_bytes(&mut private);
            let ladder = x25519_dalek::x25519(private, x25519_dalek::X25519_BASEPOINT_BYTES);
            assert_eq!(x25519_public(&private).to_bytes(), ladder);
        }
    }

    /// RFC 7748 §6.1: Alice's and Bob's private keys give their published public keys.
    #[test]
    fn rfc7748_public_keys() {
        for (private, public) in [
            (
                "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
                "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
            ),
            (
                "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
                "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
            ),
        ] {
            let private: [u8; 32] = hex::decode(private).unwrap().try_into().unwrap();
            assert_eq!(hex::encode(x25519_public(&private).to_bytes()), public);
        }
    }
}
