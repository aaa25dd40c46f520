//! Versioned byte form of local records (for sessionStorage).
//!
//! A format-version byte, then fields in a fixed order: integers little-endian, keys at
//! their fixed sizes, lists and strings prefixed by a `u32` count. Reading checks every
//! length and count and never panics. The format is private to this SDK (peers never see
//! it); a hand-written codec is a fraction of the wasm size of protobuf messages.

use crate::prelude::*;

use zeroize::{Zeroize, Zeroizing};

use super::error::SignalError;
use super::keys::{KeyPair, PrivateKey, PublicKey, PUBLIC_KEY_LEN, SIGNATURE_LEN};
use super::kyber::{KyberKeyPair, KYBER_CIPHERTEXT_LEN, KYBER_SEED_LEN};
use super::ratchet::{ChainKey, MessageKeySeed, RootKey};
use super::session::{
    PendingPreKey, ReceiverChain, SenderChain, SessionRecord, SessionState, ARCHIVED_STATES_MAX,
    MAX_MESSAGE_KEYS, MAX_RECEIVER_CHAINS,
};
use super::spqr::{Direction, PqChain, MAX_OUT_OF_ORDER};
use super::store::{KyberPreKey, OneTimePreKey, ProtocolStore, SignedPreKey, REGISTRATION_ID_MAX};
use super::wire::KyberEncapsulation;

/// The post-quantum tag of a v4 session without SPQR (0: v3, 1: v4 with SPQR's state).
const SPQR_ABSENT: u8 = 2;

/// The format-version byte that starts [`SessionRecord::to_bytes`] and
/// [`ProtocolStore::to_bytes`]; reading back refuses any other with
/// [`SignalError::RecordVersion`].
pub const RECORD_FORMAT_VERSION: u8 = 3;
/// Upper bound on list lengths we accept (prekeys, peers, timestamps).
const MAX_LIST: usize = 4096;

fn corrupt(what: &'static str) -> SignalError {
    SignalError::CorruptRecord(what)
}

/// Appends fields; the buffer is wiped on drop because it holds private keys, and grows
/// through [`super::wipe::reserve`], which wipes the buffer it leaves.
pub(crate) struct Writer(Zeroizing<Vec<u8>>);

impl Writer {
    pub(crate) fn new(version: u8) -> Self {
        let mut buf = Zeroizing::new(Vec::with_capacity(4096));
        buf.push(version);
        Self(buf)
    }
    fn room(&mut self, extra: usize) {
        super::wipe::reserve(&mut self.0, extra);
    }
    pub(crate) fn u8(&mut self, v: u8) {
        self.raw(&[v]);
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.raw(&v.to_le_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.raw(&v.to_le_bytes());
    }
    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        self.room(bytes.len());
        self.0.extend_from_slice(bytes);
    }
    pub(crate) fn len(&mut self, n: usize) {
        self.u32(n as u32);
    }
    pub(crate) fn str(&mut self, s: &str) {
        self.len(s.len());
        self.raw(s.as_bytes());
    }
    fn public(&mut self, k: &PublicKey) {
        self.raw(&k.serialize());
    }
    fn chain_key(&mut self, k: &ChainKey) {
        self.raw(&k.key);
        self.u32(k.index);
    }
    /// Message keys kept for messages that arrive late: a count, then `(counter, seed)`s.
    fn seeds(&mut self, seeds: &[MessageKeySeed]) {
        self.len(seeds.len());
        for k in seeds {
            self.u32(k.counter);
            self.raw(&k.seed);
        }
    }
    /// The bytes, still wiped on drop: they hold private keys.
    pub(crate) fn finish(self) -> Zeroizing<Vec<u8>> {
        self.0
    }
}

/// Reads fields back, failing with `CorruptRecord` instead of panicking.
pub(crate) struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    /// Checks the version byte.
    pub(crate) fn new(bytes: &'a [u8], version: u8) -> Result<Self, SignalError> {
        match bytes.split_first() {
            None => Err(corrupt("empty")),
            Some((&v, rest)) if v == version => Ok(Self(rest)),
            Some((&v, _)) => Err(SignalError::RecordVersion(v)),
        }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], SignalError> {
        if self.0.len() < n {
            return Err(corrupt("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], SignalError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, SignalError> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u32(&mut self) -> Result<u32, SignalError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, SignalError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    pub(crate) fn len(&mut self, max: usize) -> Result<usize, SignalError> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(corrupt("list too long"));
        }
        Ok(n)
    }
    pub(crate) fn str(&mut self) -> Result<String, SignalError> {
        let n = self.len(1024)?;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| corrupt("string"))
    }
    fn bool(&mut self) -> Result<bool, SignalError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(corrupt("flag")),
        }
    }
    fn public(&mut self) -> Result<PublicKey, SignalError> {
        PublicKey::from_bytes(self.take(PUBLIC_KEY_LEN)?).map_err(|_| corrupt("public key"))
    }
    fn key_pair(&mut self) -> Result<KeyPair, SignalError> {
        let mut raw = self.array::<32>()?;
        let pair = KeyPair::from_private(PrivateKey::from_bytes(&raw));
        raw.zeroize();
        Ok(pair)
    }
    fn secret32(&mut self) -> Result<[u8; 32], SignalError> {
        self.array()
    }
    fn chain_key(&mut self) -> Result<ChainKey, SignalError> {
        Ok(ChainKey {
            key: self.secret32()?,
            index: self.u32()?,
        })
    }
    /// What [`Writer::seeds`] wrote, at most `max` of them.
    fn seeds(&mut self, max: usize) -> Result<Vec<MessageKeySeed>, SignalError> {
        let count = self.len(max)?;
        let mut seeds = Vec::with_capacity(count);
        for _ in 0..count {
            seeds.push(MessageKeySeed {
                counter: self.u32()?,
                seed: self.secret32()?,
            });
        }
        Ok(seeds)
    }
    pub(crate) fn finish(self) -> Result<(), SignalError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(corrupt("trailing bytes"))
        }
    }
}

fn write_state(w: &mut Writer, s: &SessionState) {
    w.public(&s.local_identity);
    w.public(&s.remote_identity);
    w.u32(s.local_registration_id);
    w.u32(s.remote_registration_id);
    w.raw(&s.root_key.0);
    w.raw(s.sender_chain.ratchet.private.expose_bytes());
    w.chain_key(&s.sender_chain.chain_key);
    w.len(s.receiver_chains.len());
    for chain in &s.receiver_chains {
        w.public(&chain.ratchet_key);
        w.chain_key(&chain.chain_key);
        w.seeds(&chain.skipped);
    }
    w.u32(s.previous_counter);
    match &s.pending_pre_key {
        None => w.u8(0),
        Some(p) => {
            w.u8(1);
            w.u8(u8::from(p.pre_key_id.is_some()));
            w.u32(p.pre_key_id.unwrap_or(0));
            w.u32(p.signed_pre_key_id);
            w.public(&p.base_key);
            match &p.kyber {
                None => w.u8(0),
                Some(k) => {
                    w.u8(1);
                    w.u32(k.pre_key_id);
                    w.raw(&k.ciphertext);
                }
            }
        }
    }
    w.public(&s.base_key);
    match &s.pq {
        None => w.u8(if s.version == 4 { SPQR_ABSENT } else { 0 }),
        Some(pq) => {
            w.u8(1);
            for d in [&pq.send, &pq.receive] {
                w.raw(&d.next);
                w.u32(d.counter);
            }
            w.seeds(&pq.skipped);
        }
    }
}

fn read_state(r: &mut Reader) -> Result<SessionState, SignalError> {
    let local_identity = r.public()?;
    let remote_identity = r.public()?;
    let local_registration_id = r.u32()?;
    let remote_registration_id = r.u32()?;
    let root_key = RootKey(r.secret32()?);
    let ratchet = r.key_pair()?;
    let sender_chain_key = r.chain_key()?;
    let chains = r.len(MAX_RECEIVER_CHAINS)?;
    let mut receiver_chains = Vec::with_capacity(chains);
    for _ in 0..chains {
        receiver_chains.push(ReceiverChain {
            ratchet_key: r.public()?,
            chain_key: r.chain_key()?,
            skipped: r.seeds(MAX_MESSAGE_KEYS)?,
        });
    }
    let previous_counter = r.u32()?;
    let pending_pre_key = if r.bool()? {
        let has_pre_key = r.bool()?;
        let pre_key_id = r.u32()?;
        let signed_pre_key_id = r.u32()?;
        let base_key = r.public()?;
        let kyber = if r.bool()? {
            Some(KyberEncapsulation {
                pre_key_id: r.u32()?,
                ciphertext: r.take(KYBER_CIPHERTEXT_LEN)?.to_vec(),
            })
        } else {
            None
        };
        Some(PendingPreKey {
            pre_key_id: has_pre_key.then_some(pre_key_id),
            signed_pre_key_id,
            base_key,
            kyber,
        })
    } else {
        None
    };
    let base_key = r.public()?;
    let pq_tag = r.u8()?;
    let pq = if pq_tag == 1 {
        let mut direction = || -> Result<Direction, SignalError> {
            Ok(Direction {
                next: r.secret32()?,
                counter: r.u32()?,
            })
        };
        let (send, receive) = (direction()?, direction()?);
        Some(PqChain {
            send,
            receive,
            skipped: r.seeds(MAX_OUT_OF_ORDER as usize)?,
        })
    } else if pq_tag == 0 || pq_tag == SPQR_ABSENT {
        None
    } else {
        return Err(corrupt("post-quantum flag"));
    };
    Ok(SessionState {
        local_identity,
        remote_identity,
        local_registration_id,
        remote_registration_id,
        root_key,
        sender_chain: SenderChain {
            ratchet,
            chain_key: sender_chain_key,
        },
        receiver_chains,
        previous_counter,
        pending_pre_key,
        base_key,
        version: if pq_tag == 0 { 3 } else { 4 },
        pq,
    })
}

fn write_record(w: &mut Writer, record: &SessionRecord) {
    w.u8(u8::from(record.current.is_some()));
    w.len(record.previous.len());
    for state in record.current.iter().chain(&record.previous) {
        write_state(w, state);
    }
}

fn read_record(r: &mut Reader) -> Result<SessionRecord, SignalError> {
    let has_current = r.bool()?;
    let archived = r.len(ARCHIVED_STATES_MAX)?;
    let current = if has_current {
        Some(read_state(r)?)
    } else {
        None
    };
    let mut previous = Vec::with_capacity(archived);
    for _ in 0..archived {
        previous.push(read_state(r)?);
    }
    Ok(SessionRecord { current, previous })
}

impl SessionRecord {
    /// The record's stored form (it holds chain and message keys, so it is wiped on drop).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::new(RECORD_FORMAT_VERSION);
        write_record(&mut w, self);
        w.finish()
    }

    /// Reads back [`Self::to_bytes`]'s form, checking the version, every length and count,
    /// and that nothing follows.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SignalError> {
        let mut r = Reader::new(bytes, RECORD_FORMAT_VERSION)?;
        let record = read_record(&mut r)?;
        r.finish()?;
        Ok(record)
    }
}

impl ProtocolStore {
    /// Serializes the whole store (private keys included): for local storage only.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::new(RECORD_FORMAT_VERSION);
        self.write_to(&mut w);
        w.finish()
    }

    pub(crate) fn write_to(&self, w: &mut Writer) {
        w.raw(self.identity.private.expose_bytes());
        w.u32(self.registration_id);
        w.u8(u8::from(self.signed_pre_key.is_some()));
        if let Some(k) = &self.signed_pre_key {
            w.u32(k.id);
            w.raw(k.key_pair.private.expose_bytes());
            w.raw(&k.signature);
        }
        w.len(self.one_time_pre_keys.values().count());
        for k in self.one_time_pre_keys.values() {
            w.u32(k.id);
            w.raw(k.key_pair.private.expose_bytes());
        }
        w.u8(u8::from(self.kyber_pre_key.is_some()));
        if let Some(k) = &self.kyber_pre_key {
            w.u32(k.id);
            w.raw(k.key_pair.seed());
            w.raw(&k.signature);
        }
        // Every session has a known identity (both are set by the same operation).
        w.len(self.known_identities.values().count());
        for (address, key) in self.known_identities.iter() {
            w.str(address);
            w.public(key);
            match self.sessions.get(address) {
                Some(record) => {
                    w.u8(1);
                    write_record(w, record);
                }
                None => w.u8(0),
            }
        }
    }

    /// Reads back [`Self::to_bytes`]'s form, checking the version, every length and count,
    /// the registration id's range, and that nothing follows.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SignalError> {
        let mut r = Reader::new(bytes, RECORD_FORMAT_VERSION)?;
        let store = Self::read_from(&mut r)?;
        r.finish()?;
        Ok(store)
    }

    pub(crate) fn read_from(r: &mut Reader) -> Result<Self, SignalError> {
        let identity = r.key_pair()?;
        let registration_id = r.u32()?;
        if !(1..=REGISTRATION_ID_MAX).contains(&registration_id) {
            return Err(corrupt("registration id"));
        }
        let mut store = ProtocolStore::with_identity(identity, registration_id);
        if r.bool()? {
            store.signed_pre_key = Some(SignedPreKey {
                id: r.u32()?,
                key_pair: r.key_pair()?,
                signature: r.array::<SIGNATURE_LEN>()?,
            });
        }
        for _ in 0..r.len(MAX_LIST)? {
            let id = r.u32()?;
            if id == 0 {
                return Err(corrupt("one-time prekey id 0"));
            }
            store.one_time_pre_keys.insert(
                id,
                OneTimePreKey {
                    id,
                    key_pair: r.key_pair()?,
                },
            );
        }
        if r.bool()? {
            let id = r.u32()?;
            let seed = Zeroizing::new(r.array::<KYBER_SEED_LEN>()?);
            store.kyber_pre_key = Some(KyberPreKey {
                id,
                key_pair: KyberKeyPair::from_seed(&seed),
                signature: r.array::<SIGNATURE_LEN>()?,
            });
        }
        for _ in 0..r.len(MAX_LIST)? {
            let address = r.str()?;
            store.known_identities.insert(address.clone(), r.public()?);
            if r.bool()? {
                store.sessions.insert(address, read_record(r)?);
            }
        }
        Ok(store)
    }
}
