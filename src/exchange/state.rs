//! What the guest keeps between page loads: the Signal store and when each session was
//! set up (for the session cache). Versioned bytes, in the Signal records' codec.

use crate::prelude::*;

use zeroize::Zeroizing;

use crate::signal::record::{Reader, Writer};
use crate::signal::{ProtocolStore, SignalError};

use super::Millis;

const STATE_FORMAT_VERSION: u8 = 2;
const MAX_SESSION_TIMES: usize = 4096;

/// The guest's persistent Signal state.
#[derive(Clone, Debug)]
pub struct GuestState {
    /// Identity, prekeys, sessions and trusted identities.
    pub store: ProtocolStore,
    /// `(address, established at)` of sessions we set up from a fetched bundle.
    pub session_times: Vec<(String, Millis)>,
}

impl GuestState {
    /// A state with no sessions set up yet.
    pub fn new(store: ProtocolStore) -> Self {
        Self {
            store,
            session_times: Vec::new(),
        }
    }

    /// When the session with `address` was set up from a fetched bundle.
    pub fn session_established(&self, address: &str) -> Option<Millis> {
        self.session_times
            .iter()
            .find(|(a, _)| a == address)
            .map(|(_, t)| *t)
    }

    /// Records that the session with `address` was set up at `at`.
    pub fn set_session_established(&mut self, address: &str, at: Millis) {
        self.session_times.retain(|(a, _)| a != address);
        self.session_times.push((address.to_owned(), at));
    }

    /// The stored form (private keys included: wiped on drop).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::new(STATE_FORMAT_VERSION);
        self.store.write_to(&mut w);
        w.len(self.session_times.len());
        for (address, at) in &self.session_times {
            w.str(address);
            w.u64(*at);
        }
        w.finish()
    }

    /// Reads the stored form back; any defect is [`SignalError::CorruptRecord`] or
    /// [`SignalError::RecordVersion`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SignalError> {
        let mut r = Reader::new(bytes, STATE_FORMAT_VERSION)?;
        let store = ProtocolStore::read_from(&mut r)?;
        let count = r.len(MAX_SESSION_TIMES)?;
        let mut session_times = Vec::with_capacity(count);
        for _ in 0..count {
            session_times.push((r.str()?, r.u64()?));
        }
        r.finish()?;
        Ok(Self {
            store,
            session_times,
        })
    }
}
