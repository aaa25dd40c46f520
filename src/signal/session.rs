//! Session states (one Double Ratchet each) and session records (a current state plus
//! archived ones, so that crossing or repeated session set-ups still decrypt).

use crate::prelude::*;

use rand_core::CryptoRngCore;

use super::error::SignalError;
use super::keys::{KeyPair, PublicKey};
use super::ratchet::{aes_cbc_decrypt, aes_cbc_encrypt, ChainKey, MessageKeySeed, RootKey};
use super::spqr::PqChain;
use super::wipe;
use super::wire::{CiphertextMessage, KyberEncapsulation, PreKeySignalMessage, SignalMessage};

/// How far ahead of a receiving chain a message counter may be (libsignal's
/// `MAX_FORWARD_JUMPS` in `consts.rs`); further is [`SignalError::TooFarInFuture`].
pub const MAX_FORWARD_JUMPS: u32 = 25_000;
/// Skipped-message keys kept per receiving chain, oldest dropped first (libsignal's
/// `MAX_MESSAGE_KEYS`).
pub const MAX_MESSAGE_KEYS: usize = 2_000;
/// Receiving chains kept per session state, oldest dropped first (libsignal's
/// `MAX_RECEIVER_CHAINS`).
pub const MAX_RECEIVER_CHAINS: usize = 5;
/// Archived session states kept per record, oldest dropped first (libsignal's
/// `ARCHIVED_STATES_MAX_LENGTH`).
pub const ARCHIVED_STATES_MAX: usize = 40;

/// How much work one incoming message may cost before its MAC is checked.
///
/// The MAC can only be checked once the message key is derived, and deriving it costs one
/// chain step per skipped counter, in every session state tried. libsignal's limits suit
/// long conversations; a party that expects a handful of messages per session (a meeting
/// guest) uses tighter ones, so that a forged message cannot stall the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecryptLimits {
    /// How far ahead of a receiving chain a counter may be.
    pub max_forward_jumps: u32,
    /// How many session states (the current one first, then archived ones) are tried.
    pub max_states: usize,
}

impl DecryptLimits {
    /// libsignal's own: 25,000 counters ahead, the current state and all 40 archived ones.
    pub const LIBSIGNAL: Self = Self {
        max_forward_jumps: MAX_FORWARD_JUMPS,
        max_states: ARCHIVED_STATES_MAX + 1,
    };
}

/// X3DH parameters an initiator repeats in every message until the first reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingPreKey {
    /// The id of the peer's one-time prekey used, if its bundle had one.
    pub pre_key_id: Option<u32>,
    /// The id of the peer's signed prekey used.
    pub signed_pre_key_id: u32,
    /// Our X3DH base (ephemeral) public key.
    pub base_key: PublicKey,
    /// In v4: the peer's Kyber prekey id and our KEM ciphertext to it.
    pub kyber: Option<KyberEncapsulation>,
}

#[derive(Clone)]
pub(crate) struct SenderChain {
    pub(crate) ratchet: KeyPair,
    pub(crate) chain_key: ChainKey,
}

#[derive(Clone)]
pub(crate) struct ReceiverChain {
    pub(crate) ratchet_key: PublicKey,
    pub(crate) chain_key: ChainKey,
    /// Key seeds of skipped messages, oldest first.
    pub(crate) skipped: Vec<MessageKeySeed>,
}

/// One Double Ratchet session with one remote device.
#[derive(Clone)]
pub struct SessionState {
    pub(crate) local_identity: PublicKey,
    pub(crate) remote_identity: PublicKey,
    pub(crate) local_registration_id: u32,
    pub(crate) remote_registration_id: u32,
    pub(crate) root_key: RootKey,
    pub(crate) sender_chain: SenderChain,
    /// Oldest first; at most [`MAX_RECEIVER_CHAINS`].
    pub(crate) receiver_chains: Vec<ReceiverChain>,
    pub(crate) previous_counter: u32,
    pub(crate) pending_pre_key: Option<PendingPreKey>,
    /// The initiator's X3DH base key: identifies the session set-up this state came from.
    pub(crate) base_key: PublicKey,
    /// SPQR's state in a v4 session; `None` in v3, and in a v4 session whose initiator runs
    /// PQXDH without SPQR (libsignal 0.65–0.91).
    pub(crate) pq: Option<PqChain>,
    /// 4 (PQXDH) or 3 (X3DH).
    pub(crate) version: u8,
}

impl core::fmt::Debug for SessionState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SessionState")
            .field("version", &self.version())
            .field("remote_identity", &self.remote_identity)
            .field("base_key", &self.base_key)
            .field("sending_index", &self.sender_chain.chain_key.index())
            .field("receiver_chains", &self.receiver_chains.len())
            .finish_non_exhaustive()
    }
}

impl SessionState {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        local_identity: PublicKey,
        remote_identity: PublicKey,
        local_registration_id: u32,
        remote_registration_id: u32,
        root_key: RootKey,
        sender_ratchet: KeyPair,
        sender_chain_key: ChainKey,
        base_key: PublicKey,
        pq: Option<PqChain>,
    ) -> Self {
        Self {
            local_identity,
            remote_identity,
            local_registration_id,
            remote_registration_id,
            root_key,
            sender_chain: SenderChain {
                ratchet: sender_ratchet,
                chain_key: sender_chain_key,
            },
            receiver_chains: Vec::new(),
            previous_counter: 0,
            pending_pre_key: None,
            base_key,
            version: if pq.is_some() { 4 } else { 3 },
            pq,
        }
    }

    /// The session's version: 4 (PQXDH, with SPQR unless the initiator had none) or 3 (X3DH).
    pub fn version(&self) -> u8 {
        self.version
    }

    /// Whether the session runs SPQR (v4 sessions do, unless their initiator did not).
    pub fn has_spqr(&self) -> bool {
        self.pq.is_some()
    }

    /// A v4 session set up by an initiator that runs PQXDH without SPQR (libsignal
    /// 0.65–0.91): its first message carried no SPQR message. Ours then carry none either;
    /// the absence is covered by that message's MAC, so it cannot be stripped on the way.
    pub(crate) fn drop_spqr(&mut self) {
        self.pq = None;
    }

    /// The peer's identity key.
    pub fn remote_identity(&self) -> &PublicKey {
        &self.remote_identity
    }
    /// The peer's registration id (from its bundle, or from its PreKeySignalMessage).
    pub fn remote_registration_id(&self) -> u32 {
        self.remote_registration_id
    }
    /// The initiator's X3DH base key, which identifies the set-up this state came from.
    pub fn base_key(&self) -> &PublicKey {
        &self.base_key
    }
    /// Whether the initiator still waits for the peer's first reply.
    pub fn pending_pre_key(&self) -> Option<&PendingPreKey> {
        self.pending_pre_key.as_ref()
    }

    pub(crate) fn add_receiver_chain(&mut self, ratchet_key: PublicKey, chain_key: ChainKey) {
        wipe::push(
            &mut self.receiver_chains,
            ReceiverChain {
                ratchet_key,
                chain_key,
                skipped: Vec::new(),
            },
        );
        if self.receiver_chains.len() > MAX_RECEIVER_CHAINS {
            wipe::remove(&mut self.receiver_chains, 0);
        }
    }

    fn receiver_chain_mut(&mut self, ratchet_key: &PublicKey) -> Option<&mut ReceiverChain> {
        self.receiver_chains
            .iter_mut()
            .find(|c| c.ratchet_key == *ratchet_key)
    }

    pub(crate) fn encrypt(&mut self, plaintext: &[u8]) -> Result<CiphertextMessage, SignalError> {
        let chain_key = self.sender_chain.chain_key.clone();
        let next = chain_key
            .index()
            .checked_add(1)
            .ok_or(SignalError::InvalidKey("chain exhausted"))?;
        let seed = chain_key.message_key_seed();
        let (pq_message, keys) = match &mut self.pq {
            Some(pq) => {
                let (message, pq_key) = pq.send()?;
                (Some(message), seed.keys(Some(&pq_key)))
            }
            // v4 without SPQR: the version byte says 4, no SPQR field.
            None if self.version == 4 => (Some(Vec::new()), seed.keys(None)),
            None => (None, seed.keys(None)),
        };
        let message = SignalMessage::new(
            &keys.mac_key,
            &self.local_identity,
            &self.remote_identity,
            self.sender_chain.ratchet.public,
            keys.counter,
            self.previous_counter,
            aes_cbc_encrypt(&keys, plaintext),
            pq_message,
        );
        let out = match &self.pending_pre_key {
            Some(pending) => CiphertextMessage::PreKey(PreKeySignalMessage::new(
                self.local_registration_id,
                pending.pre_key_id,
                pending.signed_pre_key_id,
                pending.kyber.clone(),
                pending.base_key,
                self.local_identity,
                message,
            )),
            None => CiphertextMessage::Whisper(message),
        };
        let advanced = chain_key.next();
        debug_assert_eq!(advanced.index(), next);
        self.sender_chain.chain_key = advanced;
        Ok(out)
    }

    /// Decrypts in place. Callers work on a clone and keep it only on success.
    pub(crate) fn decrypt(
        &mut self,
        message: &SignalMessage,
        limits: DecryptLimits,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Vec<u8>, SignalError> {
        if message.version() != self.version() {
            return Err(SignalError::InvalidMessage(
                "message version is not the session's",
            ));
        }
        let their_ratchet = *message.ratchet_key();
        // Refuse a jump that is too far before the DH ratchet step it would also cost.
        if let Some(chain) = self.receiver_chain_mut(&their_ratchet) {
            let index = chain.chain_key.index();
            let counter = message.counter();
            if counter > index && counter - index > limits.max_forward_jumps {
                return Err(SignalError::TooFarInFuture(counter - index));
            }
        } else if message.counter() > limits.max_forward_jumps {
            return Err(SignalError::TooFarInFuture(message.counter()));
        }
        self.ensure_receiver_chain(&their_ratchet, rng)?;
        let seed = self.take_message_key_seed(&their_ratchet, message.counter(), limits)?;
        let keys = match &mut self.pq {
            Some(pq) => seed.keys(
                pq.receive(message.pq_ratchet(), limits.max_forward_jumps)?
                    .as_deref(),
            ),
            None => seed.keys(None),
        };
        if !message.verify_mac(&keys.mac_key, &self.remote_identity, &self.local_identity) {
            return Err(SignalError::BadMac);
        }
        let plaintext = aes_cbc_decrypt(&keys, message.ciphertext())?;
        self.pending_pre_key = None;
        Ok(plaintext)
    }

    /// A new ratchet key from the peer triggers a DH ratchet step: a receiving chain for
    /// their key and a fresh sending chain of ours.
    fn ensure_receiver_chain(
        &mut self,
        their_ratchet: &PublicKey,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(), SignalError> {
        if self.receiver_chain_mut(their_ratchet).is_some() {
            return Ok(());
        }
        let (root, receiving) = self
            .root_key
            .create_chain(their_ratchet, &self.sender_chain.ratchet.private)?;
        let ours = KeyPair::generate(rng);
        let (root, sending) = root.create_chain(their_ratchet, &ours.private)?;
        self.root_key = root;
        self.add_receiver_chain(*their_ratchet, receiving);
        self.previous_counter = self.sender_chain.chain_key.index().saturating_sub(1);
        self.sender_chain = SenderChain {
            ratchet: ours,
            chain_key: sending,
        };
        Ok(())
    }

    fn take_message_key_seed(
        &mut self,
        their_ratchet: &PublicKey,
        counter: u32,
        limits: DecryptLimits,
    ) -> Result<MessageKeySeed, SignalError> {
        let chain = self
            .receiver_chain_mut(their_ratchet)
            .ok_or(SignalError::NoMatchingState)?;
        let index = chain.chain_key.index();
        if index > counter {
            let found = chain.skipped.iter().position(|k| k.counter == counter);
            return found
                .and_then(|pos| wipe::remove(&mut chain.skipped, pos))
                .ok_or(SignalError::DuplicateMessage(counter));
        }
        if counter - index > limits.max_forward_jumps || counter == u32::MAX {
            return Err(SignalError::TooFarInFuture(counter - index));
        }
        let mut key = chain.chain_key.clone();
        wipe::reserve(&mut chain.skipped, (counter - index) as usize);
        while key.index() < counter {
            chain.skipped.push(key.message_key_seed());
            key = key.next();
        }
        if chain.skipped.len() > MAX_MESSAGE_KEYS {
            let excess = chain.skipped.len() - MAX_MESSAGE_KEYS;
            wipe::drop_front(&mut chain.skipped, excess);
        }
        let seed = key.message_key_seed();
        chain.chain_key = key.next();
        Ok(seed)
    }
}

/// All session states with one remote device: the current one and up to
/// [`ARCHIVED_STATES_MAX`] archived ones, newest first.
#[derive(Clone, Debug, Default)]
pub struct SessionRecord {
    pub(crate) current: Option<SessionState>,
    pub(crate) previous: Vec<SessionState>,
}

impl SessionRecord {
    /// The state used to encrypt, if any.
    pub fn current(&self) -> Option<&SessionState> {
        self.current.as_ref()
    }

    /// How many archived states are kept (at most [`ARCHIVED_STATES_MAX`]).
    pub fn archived_count(&self) -> usize {
        self.previous.len()
    }

    /// Makes `state` current, archiving the previous current state.
    pub fn promote_state(&mut self, state: SessionState) {
        if let Some(old) = self.current.replace(state) {
            wipe::insert(&mut self.previous, 0, old);
            wipe::truncate(&mut self.previous, ARCHIVED_STATES_MAX);
        }
    }

    /// If a state was set up from `base_key` (a PreKey message we already processed),
    /// makes it current and returns true.
    pub(crate) fn promote_matching(&mut self, base_key: &PublicKey) -> bool {
        if self
            .current
            .as_ref()
            .is_some_and(|s| s.base_key == *base_key)
        {
            return true;
        }
        let found = self.previous.iter().position(|s| s.base_key == *base_key);
        match found.and_then(|pos| wipe::remove(&mut self.previous, pos)) {
            Some(state) => {
                self.promote_state(state);
                true
            }
            None => false,
        }
    }

    pub(crate) fn encrypt(&mut self, plaintext: &[u8]) -> Result<CiphertextMessage, SignalError> {
        self.current
            .as_mut()
            .ok_or(SignalError::NoMatchingState)?
            .encrypt(plaintext)
    }

    /// Tries the current state, then archived ones (newest first, `limits.max_states` in
    /// all); a state that decrypts becomes current. On failure nothing changes.
    pub(crate) fn decrypt(
        &mut self,
        message: &SignalMessage,
        limits: DecryptLimits,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Vec<u8>, SignalError> {
        let mut first_error = None;
        let mut duplicate = None;
        let mut note = |e: SignalError| {
            if matches!(e, SignalError::DuplicateMessage(_)) && duplicate.is_none() {
                duplicate = Some(e.clone());
            }
            first_error.get_or_insert(e);
        };
        let mut budget = limits.max_states;
        if let Some(current) = self.current.as_ref().filter(|_| budget > 0) {
            budget -= 1;
            let mut trial = current.clone();
            match trial.decrypt(message, limits, rng) {
                Ok(plaintext) => {
                    self.current = Some(trial);
                    return Ok(plaintext);
                }
                Err(e) => note(e),
            }
        }
        for pos in 0..self.previous.len().min(budget) {
            let mut trial = self.previous[pos].clone();
            match trial.decrypt(message, limits, rng) {
                Ok(plaintext) => {
                    wipe::remove(&mut self.previous, pos);
                    self.promote_state(trial);
                    return Ok(plaintext);
                }
                Err(e) => note(e),
            }
        }
        Err(duplicate
            .or(first_error)
            .unwrap_or(SignalError::NoMatchingState))
    }
}
