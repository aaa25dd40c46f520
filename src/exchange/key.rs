//! The 32-byte meeting key and its public check value.

use crate::prelude::*;

use core::fmt;

use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Length of the meeting key in bytes; keys of any other length are refused.
pub const MEETING_KEY_LEN: usize = 32;
const CHECK_VALUE_LABEL: &[u8] = b"signal-guest key check";

/// The LiveKit E2EE key. Zeroized on drop; `Debug` prints only the check value.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct MeetingKey([u8; MEETING_KEY_LEN]);

impl MeetingKey {
    /// The key from exactly [`MEETING_KEY_LEN`] bytes; `None` for any other length.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; MEETING_KEY_LEN]>::try_from(bytes).ok().map(Self)
    }

    /// The raw key bytes, for handing to the LiveKit key provider.
    pub fn expose_bytes(&self) -> &[u8; MEETING_KEY_LEN] {
        &self.0
    }

    /// First 4 bytes of SHA-256("signal-guest key check" ‖ key), hex (docs/contract.md §6): safe to
    /// log and compare across clients.
    pub fn check_value(&self) -> String {
        let digest = Sha256::new()
            .chain_update(CHECK_VALUE_LABEL)
            .chain_update(self.0)
            .finalize();
        digest[..4].iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for MeetingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MeetingKey(check {})", self.check_value())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meeting_key_is_wiped() {
        fn zeroized_on_drop<T: ZeroizeOnDrop>() {}
        zeroized_on_drop::<MeetingKey>();
        let mut key = MeetingKey::from_slice(&[7u8; 32]).unwrap();
        key.zeroize();
        assert_eq!(key.expose_bytes(), &[0u8; 32]);
    }

    #[test]
    fn check_value_is_stable_and_debug_hides_the_key() {
        let key = MeetingKey::from_slice(&[0u8; 32]).unwrap();
        let expected: String = Sha256::digest([CHECK_VALUE_LABEL, &[0u8; 32]].concat())[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(key.check_value(), expected);
        assert_eq!(key.check_value().len(), 8);
        assert_eq!(format!("{key:?}"), format!("MeetingKey(check {expected})"));
        assert!(MeetingKey::from_slice(&[0u8; 31]).is_none());
        assert!(MeetingKey::from_slice(&[0u8; 33]).is_none());
    }
}
