//! The Keccak sponge (FIPS 202) for the four functions Kyber uses: SHA3-256, SHA3-512,
//! SHAKE128 and SHAKE256, on the `keccak` crate's permutation.
//!
//! By hand because the `sha3` crate's four digest types, each with its own buffering and
//! reader generics, cost more wasm than Kyber itself; a byte-at-a-time sponge is a few
//! hundred bytes and fast enough for the few kilobytes a key exchange hashes. Tests hold it
//! to `sha3`.

use zeroize::Zeroize;

/// A sponge absorbing, then squeezing. Wiped on drop: it absorbs secrets.
pub(super) struct Sponge {
    state: [u64; 25],
    rate: usize,
    domain: u8,
    position: usize,
    squeezing: bool,
}

impl Sponge {
    const fn new(rate: usize, domain: u8) -> Self {
        Sponge {
            state: [0; 25],
            rate,
            domain,
            position: 0,
            squeezing: false,
        }
    }

    pub(super) const fn sha3_256() -> Self {
        Self::new(136, 0x06)
    }
    pub(super) const fn sha3_512() -> Self {
        Self::new(72, 0x06)
    }
    pub(super) const fn shake128() -> Self {
        Self::new(168, 0x1f)
    }
    pub(super) const fn shake256() -> Self {
        Self::new(136, 0x1f)
    }

    fn xor_byte(&mut self, byte: u8) {
        self.state[self.position / 8] ^= u64::from(byte) << (8 * (self.position % 8));
        self.position += 1;
    }

    /// Absorbs more input (only before the first squeeze). Borrows rather than moves: a
    /// moved sponge leaves its state (absorbed secrets) behind in the frame it left.
    pub(super) fn absorb(&mut self, data: &[u8]) -> &mut Self {
        for &byte in data {
            if self.position == self.rate {
                keccak::f1600(&mut self.state);
                self.position = 0;
            }
            self.xor_byte(byte);
        }
        self
    }

    /// Squeezes the next `out.len()` bytes of output.
    pub(super) fn squeeze(&mut self, out: &mut [u8]) {
        if !self.squeezing {
            if self.position == self.rate {
                keccak::f1600(&mut self.state);
                self.position = 0;
            }
            self.xor_byte(self.domain);
            self.state[(self.rate - 1) / 8] ^= 0x80 << (8 * ((self.rate - 1) % 8));
            self.position = self.rate;
            self.squeezing = true;
        }
        for byte in out {
            if self.position == self.rate {
                keccak::f1600(&mut self.state);
                self.position = 0;
            }
            *byte = (self.state[self.position / 8] >> (8 * (self.position % 8))) as u8;
            self.position += 1;
        }
    }

    /// The first `N` bytes of output.
    pub(super) fn finish<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        self.squeeze(&mut out);
        out
    }
}

impl Drop for Sponge {
    fn drop(&mut self) {
        self.state.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;
    use sha3::digest::{Digest, ExtendableOutput, Update, XofReader};

    #[test]
    fn equals_the_sha3_crate_at_every_length_around_the_rates() {
        let data: Vec<u8> = (0..400u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in (0..400)
            .step_by(7)
            .chain([71, 72, 73, 135, 136, 137, 167, 168, 169])
        {
            let input = &data[..len];
            assert_eq!(
                Sponge::sha3_256().absorb(input).finish::<32>()[..],
                sha3::Sha3_256::digest(input)[..]
            );
            assert_eq!(
                Sponge::sha3_512().absorb(input).finish::<64>()[..],
                sha3::Sha3_512::digest(input)[..]
            );
            let mut ours = [0u8; 500];
            let mut theirs = [0u8; 500];
            let mut s = Sponge::shake128();
            s.absorb(&input[..len / 2]).absorb(&input[len / 2..]);
            s.squeeze(&mut ours[..3]);
            s.squeeze(&mut ours[3..]);
            let mut x = sha3::Shake128::default();
            Update::update(&mut x, input);
            x.finalize_xof().read(&mut theirs);
            assert_eq!(ours, theirs, "SHAKE128 of {len} bytes");
            let mut s = Sponge::shake256();
            s.absorb(input);
            s.squeeze(&mut ours);
            let mut x = sha3::Shake256::default();
            Update::update(&mut x, input);
            x.finalize_xof().read(&mut theirs);
            assert_eq!(ours, theirs, "SHAKE256 of {len} bytes");
        }
    }
}
