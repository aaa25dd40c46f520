//! The short verification code a guest and a participant read to each other
//! (docs/contract.md §10).
//!
//! A code computed from the two identity keys alone could be steered by a server in the
//! middle that makes keys until its code matches (40 bits is about 2^39 tries). Here each side
//! adds 32 fresh random bytes, and the guest commits to its bytes before it sees the
//! participant's: the guest sends `SHA-256(label ‖ Ng)` in its request, the participant
//! answers with `Np`, and only then does the guest reveal `Ng`. Someone in the middle has to
//! fix its nonce on each side before it learns the other side's, and the participant freezes
//! its inputs (the guest's identity key included) when it answers, so nothing can be ground:
//! each answer the participant gives it is one 1-in-2^39 chance of a matching code. The code
//! binds both identity keys, both stable identifiers and the meeting.

use crate::prelude::*;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::signal::PublicKey;

/// Bytes of each side's fresh randomness.
pub const SAS_NONCE_LEN: usize = 32;
const COMMITMENT_LABEL: &[u8] = b"signal-guest sas commitment v1";
const CODE_SALT: &[u8] = b"signal-guest sas v1";

/// One side's random contribution. Wiped on drop; `Debug` does not print it.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SasNonce(pub [u8; SAS_NONCE_LEN]);

impl core::fmt::Debug for SasNonce {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SasNonce(<redacted>)")
    }
}

/// `SHA-256("signal-guest sas commitment v1" ‖ nonce)`: what the guest sends first.
pub fn commitment(nonce: &SasNonce) -> [u8; 32] {
    Sha256::new()
        .chain_update(COMMITMENT_LABEL)
        .chain_update(nonce.0)
        .finalize()
        .into()
}

/// Whether a revealed nonce is the one `commitment` was made from (the participant's check).
pub fn reveal_matches(commitment_bytes: &[u8], revealed: &SasNonce) -> bool {
    commitment(revealed).ct_eq(commitment_bytes).into()
}

/// The code in its two forms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShortCode {
    /// Three groups of four digits, e.g. `"4183 2719 6022"`.
    pub digits: String,
    /// Seven indices (0–63) into the emoji table of docs/contract.md §10 (the package's
    /// entry turns them into pictures and names, which the wasm does not carry).
    pub emoji: [u8; 7],
}

/// Everything the code is computed from; the same values on both sides when no one is in
/// the middle.
pub struct CodeInputs<'a> {
    /// The guest's nonce (revealed after the participant's answer).
    pub guest_nonce: &'a SasNonce,
    /// The participant's nonce (sent in its answer).
    pub participant_nonce: &'a SasNonce,
    /// The guest's identity key.
    pub guest_identity: &'a PublicKey,
    /// The participant device's identity key.
    pub participant_identity: &'a PublicKey,
    /// `guest:<session_id>` (as in safety numbers).
    pub guest_id: &'a str,
    /// `<user_id>:<device_id>` (as in safety numbers).
    pub participant_id: &'a str,
    /// The meeting id.
    pub meeting_id: &'a str,
}

fn put_str(info: &mut Vec<u8>, s: &str) {
    let len = u16::try_from(s.len()).unwrap_or(u16::MAX);
    info.extend_from_slice(&len.to_be_bytes());
    info.extend_from_slice(&s.as_bytes()[..usize::from(len)]);
}

/// HKDF-SHA256(salt = "signal-guest sas v1", ikm = Ng ‖ Np, info = guest identity (33) ‖
/// participant identity (33) ‖ each of guest id, participant id, meeting id as a 16-bit
/// big-endian length and UTF-8), 6 bytes; digits from the first 5, emoji from the first 6.
pub fn short_code(inputs: &CodeInputs<'_>) -> ShortCode {
    let mut ikm = zeroize::Zeroizing::new([0u8; 2 * SAS_NONCE_LEN]);
    ikm[..SAS_NONCE_LEN].copy_from_slice(&inputs.guest_nonce.0);
    ikm[SAS_NONCE_LEN..].copy_from_slice(&inputs.participant_nonce.0);
    let mut info = Vec::with_capacity(66 + 64);
    info.extend_from_slice(&inputs.guest_identity.serialize());
    info.extend_from_slice(&inputs.participant_identity.serialize());
    put_str(&mut info, inputs.guest_id);
    put_str(&mut info, inputs.participant_id);
    put_str(&mut info, inputs.meeting_id);
    let b: [u8; 6] = crate::signal::hkdf_sha256(Some(CODE_SALT), &*ikm, &info);
    let [b0, b1, b2, b3, b4, b5] = b.map(u32::from);
    let n1 = (b0 << 5 | b1 >> 3) + 1000;
    let n2 = ((b1 & 0x7) << 10 | b2 << 2 | b3 >> 6) + 1000;
    let n3 = ((b3 & 0x3f) << 7 | b4 >> 1) + 1000;
    let bits = u64::from(b0) << 40
        | u64::from(b1) << 32
        | u64::from(b2) << 24
        | u64::from(b3) << 16
        | u64::from(b4) << 8
        | u64::from(b5);
    let emoji = core::array::from_fn(|i| ((bits >> (42 - 6 * i)) & 0x3f) as u8);
    ShortCode {
        digits: format!("{n1} {n2} {n3}"),
        emoji,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> PublicKey {
        let mut bytes = [byte; 33];
        bytes[0] = 0x05;
        PublicKey::from_bytes(&bytes).unwrap()
    }

    /// The vector in docs/contract.md §10.
    #[test]
    fn the_contract_test_vector() {
        let code = short_code(&CodeInputs {
            guest_nonce: &SasNonce([0x11; 32]),
            participant_nonce: &SasNonce([0x22; 32]),
            guest_identity: &key(0x33),
            participant_identity: &key(0x44),
            guest_id: "guest:g1",
            participant_id: "alice:1",
            meeting_id: "meeting-1",
        });
        let commitment_hex: String = commitment(&SasNonce([0x11; 32]))
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            commitment_hex,
            "014cd8622ca336ae89e8e75c61fae7416d0b51c8826bbd9e1d27c2e90a6f2215"
        );
        assert_eq!(code.digits, "4770 3133 1827");
        assert_eq!(code.emoji, [29, 29, 8, 21, 17, 39, 26]);
        assert!(reveal_matches(
            &commitment(&SasNonce([0x11; 32])),
            &SasNonce([0x11; 32])
        ));
        assert!(!reveal_matches(
            &commitment(&SasNonce([0x11; 32])),
            &SasNonce([0x12; 32])
        ));
    }

    #[test]
    fn every_input_changes_the_code() {
        let base = CodeInputs {
            guest_nonce: &SasNonce([1; 32]),
            participant_nonce: &SasNonce([2; 32]),
            guest_identity: &key(3),
            participant_identity: &key(4),
            guest_id: "guest:g",
            participant_id: "p:1",
            meeting_id: "m",
        };
        let reference = short_code(&base);
        let n = SasNonce([9; 32]);
        let k = key(9);
        let variants = [
            CodeInputs {
                guest_nonce: &n,
                ..base
            },
            CodeInputs {
                participant_nonce: &n,
                ..base
            },
            CodeInputs {
                guest_identity: &k,
                ..base
            },
            CodeInputs {
                participant_identity: &k,
                ..base
            },
            CodeInputs {
                guest_id: "guest:h",
                ..base
            },
            CodeInputs {
                participant_id: "p:2",
                ..base
            },
            CodeInputs {
                meeting_id: "n",
                ..base
            },
        ];
        for v in &variants {
            assert_ne!(short_code(v), reference);
        }
        assert!(reference.emoji.iter().all(|&i| i < 64));
    }
}
