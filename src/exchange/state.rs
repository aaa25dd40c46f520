//! What the guest keeps between page loads: the Signal store and when each session was
//! set up (for the session cache). Versioned bytes, like the Signal records.

use prost::Message;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::signal::{ProtocolStore, SignalError};

use super::Millis;

const STATE_FORMAT_VERSION: u8 = 1;

#[derive(Clone, PartialEq, Message)]
struct SessionTimeProto {
    #[prost(string, tag = "1")]
    address: String,
    #[prost(uint64, tag = "2")]
    established_ms: u64,
}

#[derive(Clone, PartialEq, Message, Zeroize, ZeroizeOnDrop)]
#[prost(skip_debug)]
struct GuestStateProto {
    #[prost(bytes = "vec", tag = "1")]
    store: Vec<u8>,
    #[zeroize(skip)]
    #[prost(message, repeated, tag = "2")]
    session_times: Vec<SessionTimeProto>,
}

impl core::fmt::Debug for GuestStateProto {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("GuestStateProto(<redacted>)")
    }
}

/// The guest's persistent Signal state.
#[derive(Clone, Debug)]
pub struct GuestState {
    pub store: ProtocolStore,
    /// `(address, established at)` of sessions we set up from a fetched bundle.
    pub session_times: Vec<(String, Millis)>,
}

impl GuestState {
    pub fn new(store: ProtocolStore) -> Self {
        Self {
            store,
            session_times: Vec::new(),
        }
    }

    pub fn session_established(&self, address: &str) -> Option<Millis> {
        self.session_times
            .iter()
            .find(|(a, _)| a == address)
            .map(|(_, t)| *t)
    }

    pub fn set_session_established(&mut self, address: &str, at: Millis) {
        self.session_times.retain(|(a, _)| a != address);
        self.session_times.push((address.to_owned(), at));
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let proto = GuestStateProto {
            store: self.store.to_bytes(),
            session_times: self
                .session_times
                .iter()
                .map(|(address, at)| SessionTimeProto {
                    address: address.clone(),
                    established_ms: *at,
                })
                .collect(),
        };
        let mut out = Vec::with_capacity(1 + proto.encoded_len());
        out.push(STATE_FORMAT_VERSION);
        proto.encode_raw(&mut out);
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SignalError> {
        let proto = match bytes.split_first() {
            None => return Err(SignalError::CorruptRecord("empty")),
            Some((&STATE_FORMAT_VERSION, body)) => {
                GuestStateProto::decode(body).map_err(|_| SignalError::CorruptRecord("protobuf"))?
            }
            Some((&v, _)) => return Err(SignalError::RecordVersion(v)),
        };
        Ok(Self {
            store: ProtocolStore::from_bytes(&proto.store)?,
            session_times: proto
                .session_times
                .iter()
                .map(|t| (t.address.clone(), t.established_ms))
                .collect(),
        })
    }
}
