//! A message decrypted against a store that has not changed yet. A caller that reads the
//! plaintext before it lets the session move (the guest checks that an answer is for its own
//! request, docs/design.md) applies it or drops it, and needs no copy of the whole store
//! (every private key in it) to undo a refusal.

use crate::prelude::*;

use zeroize::Zeroizing;

use super::keys::PublicKey;
use super::session::SessionRecord;

/// The plaintext of a decrypted message and what accepting it changes in the store it was
/// decrypted against: its sender's session record, the identity trusted for the sender, the
/// one-time prekey a PreKey message used up. [`super::ProtocolStore::apply_decryption`] makes
/// those changes; dropped, it leaves the store as it was.
#[must_use = "the store changes only when the decryption is applied"]
pub struct PendingDecryption {
    pub(super) plaintext: Zeroizing<Vec<u8>>,
    pub(super) address: String,
    pub(super) record: SessionRecord,
    pub(super) sender: Option<PublicKey>,
    pub(super) used_one_time_pre_key: Option<u32>,
}

impl PendingDecryption {
    /// The decrypted message.
    pub fn plaintext(&self) -> &[u8] {
        &self.plaintext
    }

    /// The identity key trusted for the sender once this is applied: the one a PreKey message
    /// carries, or the one already trusted for a session's message.
    pub fn sender_identity(&self) -> Option<&PublicKey> {
        self.sender.as_ref()
    }
}

/// Names the sender only: the plaintext and the session's keys stay out of logs.
impl core::fmt::Debug for PendingDecryption {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PendingDecryption")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}
