//! Safety numbers: libsignal's displayable fingerprint (version 2 numeric form).

use crate::prelude::*;

use sha2::{Digest, Sha512};

use super::keys::PublicKey;

/// Iterations libsignal's apps use.
pub const DEFAULT_ITERATIONS: u32 = 5200;
const FINGERPRINT_FORMAT_VERSION: [u8; 2] = [0, 0];

/// SHA-512 iterated over `version ‖ key ‖ id`, re-hashing `digest ‖ key` each round.
fn identity_digest(iterations: u32, stable_id: &[u8], key: &PublicKey) -> [u8; 64] {
    let key = key.serialize();
    let mut digest: [u8; 64] = Sha512::new()
        .chain_update(FINGERPRINT_FORMAT_VERSION)
        .chain_update(key)
        .chain_update(stable_id)
        .chain_update(key)
        .finalize()
        .into();
    for _ in 1..iterations {
        digest = Sha512::new()
            .chain_update(digest)
            .chain_update(key)
            .finalize()
            .into();
    }
    digest
}

/// Six groups of five digits from the first 30 bytes of a digest.
fn display_half(digest: &[u8; 64]) -> String {
    digest[..30]
        .chunks(5)
        .map(|chunk| {
            let value = chunk.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
            format!("{:05}", value % 100_000)
        })
        .collect()
}

/// The 60-digit safety number both parties see, whichever side computes it.
pub fn displayable_fingerprint(
    iterations: u32,
    local_id: &[u8],
    local_key: &PublicKey,
    remote_id: &[u8],
    remote_key: &PublicKey,
) -> String {
    let local = display_half(&identity_digest(iterations, local_id, local_key));
    let remote = display_half(&identity_digest(iterations, remote_id, remote_key));
    if local <= remote {
        local + &remote
    } else {
        remote + &local
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::keys::KeyPair;
    use rand::rngs::OsRng;

    #[test]
    fn symmetric_and_sixty_digits() {
        let (a, b) = (
            KeyPair::generate(&mut OsRng).public,
            KeyPair::generate(&mut OsRng).public,
        );
        let ab = displayable_fingerprint(DEFAULT_ITERATIONS, b"alice", &a, b"bob", &b);
        let ba = displayable_fingerprint(DEFAULT_ITERATIONS, b"bob", &b, b"alice", &a);
        assert_eq!(ab, ba);
        assert_eq!(ab.len(), 60);
        assert!(ab.bytes().all(|c| c.is_ascii_digit()));
        let other = KeyPair::generate(&mut OsRng).public;
        assert_ne!(
            ab,
            displayable_fingerprint(DEFAULT_ITERATIONS, b"alice", &a, b"bob", &other)
        );
    }
}
