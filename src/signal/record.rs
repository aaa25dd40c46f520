//! Versioned byte form of local records (for sessionStorage): one format-version byte,
//! then protobuf. The intermediate protobuf structs are zeroized on drop.

use core::fmt;

use prost::Message;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::error::SignalError;
use super::keys::{KeyPair, PrivateKey, PublicKey, SIGNATURE_LEN};
use super::ratchet::{ChainKey, MessageKeys, RootKey};
use super::session::{
    PendingPreKey, ReceiverChain, SenderChain, SessionRecord, SessionState, ARCHIVED_STATES_MAX,
    MAX_MESSAGE_KEYS, MAX_RECEIVER_CHAINS,
};
use super::store::{OneTimePreKey, ProtocolStore, SignedPreKey};

pub const RECORD_FORMAT_VERSION: u8 = 1;

macro_rules! redacted_debug {
    ($($t:ty),*) => {$(
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($t), "(<redacted>)"))
            }
        }
    )*};
}

#[derive(Clone, PartialEq, Message, Zeroize, ZeroizeOnDrop)]
#[prost(skip_debug)]
struct SkippedKeyProto {
    #[prost(uint32, tag = "1")]
    counter: u32,
    #[prost(bytes = "vec", tag = "2")]
    cipher_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    mac_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    iv: Vec<u8>,
}

#[derive(Clone, PartialEq, Message, Zeroize, ZeroizeOnDrop)]
#[prost(skip_debug)]
struct ChainProto {
    #[prost(bytes = "vec", tag = "1")]
    ratchet_public: Vec<u8>,
    /// Only for the sending chain.
    #[prost(bytes = "vec", tag = "2")]
    ratchet_private: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    chain_key: Vec<u8>,
    #[prost(uint32, tag = "4")]
    index: u32,
    #[prost(message, repeated, tag = "5")]
    skipped: Vec<SkippedKeyProto>,
}

#[derive(Clone, PartialEq, Message, Zeroize, ZeroizeOnDrop)]
#[prost(skip_debug)]
struct PendingProto {
    #[prost(uint32, optional, tag = "1")]
    pre_key_id: Option<u32>,
    #[prost(uint32, tag = "2")]
    signed_pre_key_id: u32,
    #[prost(bytes = "vec", tag = "3")]
    base_key: Vec<u8>,
}

#[derive(Clone, PartialEq, Message, Zeroize, ZeroizeOnDrop)]
#[prost(skip_debug)]
struct StateProto {
    #[prost(bytes = "vec", tag = "1")]
    local_identity: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    remote_identity: Vec<u8>,
    #[prost(uint32, tag = "3")]
    local_registration_id: u32,
    #[prost(uint32, tag = "4")]
    remote_registration_id: u32,
    #[prost(bytes = "vec", tag = "5")]
    root_key: Vec<u8>,
    #[prost(message, optional, tag = "6")]
    sender_chain: Option<ChainProto>,
    #[prost(message, repeated, tag = "7")]
    receiver_chains: Vec<ChainProto>,
    #[prost(uint32, tag = "8")]
    previous_counter: u32,
    #[prost(message, optional, tag = "9")]
    pending: Option<PendingProto>,
    #[prost(bytes = "vec", tag = "10")]
    base_key: Vec<u8>,
}

#[derive(Clone, PartialEq, Message, Zeroize, ZeroizeOnDrop)]
#[prost(skip_debug)]
struct SessionRecordProto {
    /// Current state first, then archived ones newest first.
    #[prost(message, repeated, tag = "1")]
    states: Vec<StateProto>,
    #[prost(bool, tag = "2")]
    has_current: bool,
}

#[derive(Clone, PartialEq, Message, Zeroize, ZeroizeOnDrop)]
#[prost(skip_debug)]
struct PreKeyProto {
    #[prost(uint32, tag = "1")]
    id: u32,
    #[prost(bytes = "vec", tag = "2")]
    private_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    signature: Vec<u8>,
}

#[derive(Clone, PartialEq, Message, Zeroize, ZeroizeOnDrop)]
#[prost(skip_debug)]
struct AddressedProto {
    #[prost(string, tag = "1")]
    address: String,
    #[prost(bytes = "vec", tag = "2")]
    identity_key: Vec<u8>,
    #[prost(message, optional, tag = "3")]
    session: Option<SessionRecordProto>,
}

#[derive(Clone, PartialEq, Message, Zeroize, ZeroizeOnDrop)]
#[prost(skip_debug)]
struct StoreProto {
    #[prost(bytes = "vec", tag = "1")]
    identity_private: Vec<u8>,
    #[prost(uint32, tag = "2")]
    registration_id: u32,
    #[prost(message, repeated, tag = "3")]
    signed_pre_keys: Vec<PreKeyProto>,
    #[prost(message, repeated, tag = "4")]
    one_time_pre_keys: Vec<PreKeyProto>,
    #[prost(message, repeated, tag = "5")]
    peers: Vec<AddressedProto>,
}

redacted_debug!(
    SkippedKeyProto,
    ChainProto,
    PendingProto,
    StateProto,
    SessionRecordProto,
    PreKeyProto,
    AddressedProto,
    StoreProto
);

fn corrupt(what: &'static str) -> SignalError {
    SignalError::CorruptRecord(what)
}

fn array<const N: usize>(bytes: &[u8], what: &'static str) -> Result<[u8; N], SignalError> {
    bytes.try_into().map_err(|_| corrupt(what))
}

fn public(bytes: &[u8]) -> Result<PublicKey, SignalError> {
    PublicKey::from_bytes(bytes).map_err(|_| corrupt("public key"))
}

fn private(bytes: &[u8]) -> Result<KeyPair, SignalError> {
    let mut raw = array::<32>(bytes, "private key")?;
    let pair = KeyPair::from_private(PrivateKey::from_bytes(&raw));
    raw.zeroize();
    Ok(pair)
}

fn encode_versioned(message: &impl Message) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + message.encoded_len());
    out.push(RECORD_FORMAT_VERSION);
    message.encode_raw(&mut out);
    out
}

fn decode_versioned<M: Message + Default>(bytes: &[u8]) -> Result<M, SignalError> {
    match bytes.split_first() {
        None => Err(corrupt("empty")),
        Some((&RECORD_FORMAT_VERSION, body)) => M::decode(body).map_err(|_| corrupt("protobuf")),
        Some((&v, _)) => Err(SignalError::RecordVersion(v)),
    }
}

fn chain_to_proto(
    ratchet: Option<&KeyPair>,
    ratchet_public: &PublicKey,
    chain: &ChainKey,
) -> ChainProto {
    ChainProto {
        ratchet_public: ratchet_public.serialize().to_vec(),
        ratchet_private: ratchet
            .map(|k| k.private.expose_bytes().to_vec())
            .unwrap_or_default(),
        chain_key: chain.key.to_vec(),
        index: chain.index,
        skipped: Vec::new(),
    }
}

fn state_to_proto(state: &SessionState) -> StateProto {
    let sender = &state.sender_chain;
    StateProto {
        local_identity: state.local_identity.serialize().to_vec(),
        remote_identity: state.remote_identity.serialize().to_vec(),
        local_registration_id: state.local_registration_id,
        remote_registration_id: state.remote_registration_id,
        root_key: state.root_key.0.to_vec(),
        sender_chain: Some(chain_to_proto(
            Some(&sender.ratchet),
            &sender.ratchet.public,
            &sender.chain_key,
        )),
        receiver_chains: state
            .receiver_chains
            .iter()
            .map(|c| {
                let mut proto = chain_to_proto(None, &c.ratchet_key, &c.chain_key);
                proto.skipped = c
                    .skipped
                    .iter()
                    .map(|k| SkippedKeyProto {
                        counter: k.counter,
                        cipher_key: k.cipher_key.to_vec(),
                        mac_key: k.mac_key.to_vec(),
                        iv: k.iv.to_vec(),
                    })
                    .collect();
                proto
            })
            .collect(),
        previous_counter: state.previous_counter,
        pending: state.pending_pre_key.as_ref().map(|p| PendingProto {
            pre_key_id: p.pre_key_id,
            signed_pre_key_id: p.signed_pre_key_id,
            base_key: p.base_key.serialize().to_vec(),
        }),
        base_key: state.base_key.serialize().to_vec(),
    }
}

fn chain_key_from(proto: &ChainProto) -> Result<ChainKey, SignalError> {
    Ok(ChainKey {
        key: array(&proto.chain_key, "chain key")?,
        index: proto.index,
    })
}

fn state_from_proto(proto: &StateProto) -> Result<SessionState, SignalError> {
    let sender = proto
        .sender_chain
        .as_ref()
        .ok_or(corrupt("no sender chain"))?;
    let ratchet = private(&sender.ratchet_private)?;
    if ratchet.public != public(&sender.ratchet_public)? {
        return Err(corrupt("sender ratchet key pair mismatch"));
    }
    if proto.receiver_chains.len() > MAX_RECEIVER_CHAINS {
        return Err(corrupt("too many receiver chains"));
    }
    let mut receiver_chains = Vec::with_capacity(proto.receiver_chains.len());
    for chain in &proto.receiver_chains {
        if chain.skipped.len() > MAX_MESSAGE_KEYS {
            return Err(corrupt("too many skipped keys"));
        }
        let skipped = chain
            .skipped
            .iter()
            .map(|k| {
                Ok(MessageKeys {
                    cipher_key: array(&k.cipher_key, "cipher key")?,
                    mac_key: array(&k.mac_key, "mac key")?,
                    iv: array(&k.iv, "iv")?,
                    counter: k.counter,
                })
            })
            .collect::<Result<_, SignalError>>()?;
        receiver_chains.push(ReceiverChain {
            ratchet_key: public(&chain.ratchet_public)?,
            chain_key: chain_key_from(chain)?,
            skipped,
        });
    }
    let pending_pre_key = match &proto.pending {
        Some(p) => Some(PendingPreKey {
            pre_key_id: p.pre_key_id,
            signed_pre_key_id: p.signed_pre_key_id,
            base_key: public(&p.base_key)?,
        }),
        None => None,
    };
    Ok(SessionState {
        local_identity: public(&proto.local_identity)?,
        remote_identity: public(&proto.remote_identity)?,
        local_registration_id: proto.local_registration_id,
        remote_registration_id: proto.remote_registration_id,
        root_key: RootKey(array(&proto.root_key, "root key")?),
        sender_chain: SenderChain {
            ratchet,
            chain_key: chain_key_from(sender)?,
        },
        receiver_chains,
        previous_counter: proto.previous_counter,
        pending_pre_key,
        base_key: public(&proto.base_key)?,
    })
}

fn record_to_proto(record: &SessionRecord) -> SessionRecordProto {
    SessionRecordProto {
        states: record
            .current
            .iter()
            .chain(&record.previous)
            .map(state_to_proto)
            .collect(),
        has_current: record.current.is_some(),
    }
}

fn record_from_proto(proto: &SessionRecordProto) -> Result<SessionRecord, SignalError> {
    if proto.states.len() > ARCHIVED_STATES_MAX + 1 {
        return Err(corrupt("too many archived states"));
    }
    let mut states = proto
        .states
        .iter()
        .map(state_from_proto)
        .collect::<Result<Vec<_>, _>>()?;
    let current = if proto.has_current && !states.is_empty() {
        Some(states.remove(0))
    } else {
        None
    };
    if proto.has_current && current.is_none() {
        return Err(corrupt("missing current state"));
    }
    Ok(SessionRecord {
        current,
        previous: states,
    })
}

impl SessionRecord {
    pub fn to_bytes(&self) -> Vec<u8> {
        encode_versioned(&record_to_proto(self))
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SignalError> {
        record_from_proto(&decode_versioned::<SessionRecordProto>(bytes)?)
    }
}

impl ProtocolStore {
    /// Serializes the whole store (private keys included): for local storage only.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Every session has a known identity (set in the same operation), so one pass
        // over identities covers all peers.
        let peers = self
            .known_identities
            .iter()
            .map(|(address, key)| AddressedProto {
                address: address.clone(),
                identity_key: key.serialize().to_vec(),
                session: self.sessions.get(address).map(record_to_proto),
            })
            .collect::<Vec<_>>();
        let proto = StoreProto {
            identity_private: self.identity.private.expose_bytes().to_vec(),
            registration_id: self.registration_id,
            signed_pre_keys: self
                .signed_pre_keys
                .values()
                .map(|k| PreKeyProto {
                    id: k.id,
                    private_key: k.key_pair.private.expose_bytes().to_vec(),
                    signature: k.signature.to_vec(),
                })
                .collect(),
            one_time_pre_keys: self
                .one_time_pre_keys
                .values()
                .map(|k| PreKeyProto {
                    id: k.id,
                    private_key: k.key_pair.private.expose_bytes().to_vec(),
                    signature: Vec::new(),
                })
                .collect(),
            peers,
        };
        encode_versioned(&proto)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SignalError> {
        let proto = decode_versioned::<StoreProto>(bytes)?;
        if !(1..=super::store::REGISTRATION_ID_MAX).contains(&proto.registration_id) {
            return Err(corrupt("registration id"));
        }
        let mut store =
            ProtocolStore::with_identity(private(&proto.identity_private)?, proto.registration_id);
        for k in &proto.signed_pre_keys {
            let key_pair = private(&k.private_key)?;
            let signature = array::<SIGNATURE_LEN>(&k.signature, "signature")?;
            store.signed_pre_keys.insert(
                k.id,
                SignedPreKey {
                    id: k.id,
                    key_pair,
                    signature,
                },
            );
        }
        for k in &proto.one_time_pre_keys {
            if k.id == 0 {
                return Err(corrupt("one-time prekey id 0"));
            }
            store.one_time_pre_keys.insert(
                k.id,
                OneTimePreKey {
                    id: k.id,
                    key_pair: private(&k.private_key)?,
                },
            );
        }
        for peer in &proto.peers {
            store
                .known_identities
                .insert(peer.address.clone(), public(&peer.identity_key)?);
            if let Some(session) = &peer.session {
                store
                    .sessions
                    .insert(peer.address.clone(), record_from_proto(session)?);
            }
        }
        Ok(store)
    }
}
