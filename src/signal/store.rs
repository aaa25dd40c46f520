//! One local party's Signal state: identity, prekeys, sessions and trusted identities,
//! with the operations that use them. Every operation either succeeds or leaves the store
//! exactly as it was.

use crate::prelude::*;

use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use super::error::SignalError;
use super::keys::{KeyPair, PublicKey, SIGNATURE_LEN};
use super::kyber::KyberKeyPair;
use super::pending::PendingDecryption;
use super::session::{DecryptLimits, SessionRecord};
use super::vec_map::VecMap;
use super::wire::{CiphertextMessage, PreKeySignalMessage};
use super::x3dh::{self, PreKeyBundle, PublicKyberPreKey};

/// libsignal's registration id range is `1..=REGISTRATION_ID_MAX`.
pub const REGISTRATION_ID_MAX: u32 = 16380;

/// A signed prekey with its private half, as this store keeps it.
#[derive(Clone, Debug)]
pub struct SignedPreKey {
    /// The id peers name it by in PreKeySignalMessages.
    pub id: u32,
    /// The prekey itself.
    pub key_pair: KeyPair,
    /// XEdDSA signature by the identity key over the serialized public key.
    pub signature: [u8; SIGNATURE_LEN],
}

/// A signed Kyber1024 prekey with its private half (kept as its seed). Reused by every v4
/// session set-up, as libsignal's last-resort Kyber prekeys are: the one-time Curve25519
/// prekey, when there is one, is what makes each set-up single-use.
#[derive(Clone, Debug)]
pub struct KyberPreKey {
    /// The id peers name it by in v4 PreKeySignalMessages.
    pub id: u32,
    /// The KEM key pair.
    pub key_pair: KyberKeyPair,
    /// XEdDSA signature by the identity key over the serialized public key.
    pub signature: [u8; SIGNATURE_LEN],
}

/// A one-time prekey with its private half; removed once a PreKeySignalMessage uses it.
#[derive(Clone, Debug)]
pub struct OneTimePreKey {
    /// The id peers name it by in PreKeySignalMessages (never 0).
    pub id: u32,
    /// The prekey itself.
    pub key_pair: KeyPair,
}

/// The public half of a signed prekey, as published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicSignedPreKey {
    /// The prekey's id.
    pub id: u32,
    /// The prekey's public half.
    pub public_key: PublicKey,
    /// XEdDSA signature by the identity key over `public_key`'s 33-byte form.
    pub signature: [u8; SIGNATURE_LEN],
}

/// Everything a party publishes at registration: public halves only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKeys {
    /// The identity public key.
    pub identity_key: PublicKey,
    /// The registration id (generated in `1..=REGISTRATION_ID_MAX`).
    pub registration_id: u32,
    /// The signed prekey to publish (the one with the highest id).
    pub signed_pre_key: PublicSignedPreKey,
    /// `(id, public key)` of every unused one-time prekey, ascending by id.
    pub pre_keys: Vec<(u32, PublicKey)>,
    /// The signed Kyber prekey, if this party takes v4 sessions.
    pub kyber_pre_key: Option<PublicKyberPreKey>,
}

/// One local party's Signal state (identity key pair, registration id, prekeys, sessions
/// and trusted identities by address) and the operations on it. A failing operation leaves
/// the store unchanged.
#[derive(Clone, Debug)]
pub struct ProtocolStore {
    pub(crate) identity: KeyPair,
    pub(crate) registration_id: u32,
    /// One at a time: a guest's identity lives for one meeting and never rotates it.
    pub(crate) signed_pre_key: Option<SignedPreKey>,
    pub(crate) one_time_pre_keys: VecMap<u32, OneTimePreKey>,
    /// One at a time: a new one replaces the old (as a rotated last-resort key would).
    pub(crate) kyber_pre_key: Option<KyberPreKey>,
    pub(crate) sessions: VecMap<String, SessionRecord>,
    pub(crate) known_identities: VecMap<String, PublicKey>,
}

/// A uniform integer in `1..=max` without modulo bias.
fn random_in_range(rng: &mut impl CryptoRngCore, max: u32) -> u32 {
    let zone = u32::MAX - (u32::MAX % max);
    loop {
        let v = rng.next_u32();
        if v < zone {
            return v % max + 1;
        }
    }
}

impl ProtocolStore {
    /// A fresh identity with signed prekey 1 and one-time prekeys `1..=one_time_count`.
    pub fn generate(rng: &mut impl CryptoRngCore, one_time_count: u32) -> Self {
        let mut store = Self::with_identity(
            KeyPair::generate(rng),
            random_in_range(rng, REGISTRATION_ID_MAX),
        );
        store.add_signed_pre_key(1, rng);
        store.add_one_time_pre_keys(1, one_time_count, rng);
        store
    }

    /// A store with this identity and registration id, and no prekeys or sessions yet.
    pub fn with_identity(identity: KeyPair, registration_id: u32) -> Self {
        Self {
            identity,
            registration_id,
            signed_pre_key: None,
            one_time_pre_keys: VecMap::default(),
            kyber_pre_key: None,
            sessions: VecMap::default(),
            known_identities: VecMap::default(),
        }
    }

    /// Sets the Kyber prekey (replacing any other) to a new one with `id`, signed by the
    /// identity key; returns its public half. A store with one takes v4 sessions and
    /// publishes it.
    pub fn add_kyber_pre_key(
        &mut self,
        id: u32,
        rng: &mut impl CryptoRngCore,
    ) -> PublicKyberPreKey {
        let key_pair = KyberKeyPair::generate(rng);
        let public = PublicKyberPreKey {
            id,
            public_key: key_pair.public().clone(),
            signature: self
                .identity
                .private
                .sign(&key_pair.public().serialize(), rng),
        };
        self.kyber_pre_key = Some(KyberPreKey {
            id,
            key_pair,
            signature: public.signature,
        });
        public
    }

    /// Sets the signed prekey (replacing any other) to a new one with `id`, signed by the
    /// identity key; returns its public half.
    pub fn add_signed_pre_key(
        &mut self,
        id: u32,
        rng: &mut impl CryptoRngCore,
    ) -> PublicSignedPreKey {
        let key_pair = KeyPair::generate(rng);
        let signature = self
            .identity
            .private
            .sign(&key_pair.public.serialize(), rng);
        let public = PublicSignedPreKey {
            id,
            public_key: key_pair.public,
            signature,
        };
        self.signed_pre_key = Some(SignedPreKey {
            id,
            key_pair,
            signature,
        });
        public
    }

    /// Adds `count` one-time prekeys with ids from `first_id` (id 0 is skipped: peers read
    /// it as "prekey 0", not "none").
    pub fn add_one_time_pre_keys(
        &mut self,
        first_id: u32,
        count: u32,
        rng: &mut impl CryptoRngCore,
    ) {
        let mut id = first_id.max(1);
        for _ in 0..count {
            self.one_time_pre_keys.insert(
                id,
                OneTimePreKey {
                    id,
                    key_pair: KeyPair::generate(rng),
                },
            );
            id = id.checked_add(1).unwrap_or(1);
        }
    }

    /// Keeps only the one-time prekeys whose ids are in `on_server` (the others were handed
    /// out, and an answer that used them is not coming), then adds `count` new ones with ids
    /// after every id seen; returns their public halves to publish.
    pub fn restock_one_time_pre_keys(
        &mut self,
        on_server: &[u32],
        count: u32,
        rng: &mut impl CryptoRngCore,
    ) -> Vec<(u32, PublicKey)> {
        // New ids follow the highest we ever issued and still hold, the ones the server has
        // handed out included (a participant may still name them): never the server's list,
        // whose ids are not ours to trust (u32::MAX there would wrap ours onto live keys).
        let first = self
            .one_time_pre_key_ids()
            .max()
            .unwrap_or(0)
            .saturating_add(1);
        let gone: Vec<u32> = self
            .one_time_pre_key_ids()
            .filter(|id| !on_server.contains(id))
            .collect();
        for id in &gone {
            self.one_time_pre_keys.remove(id);
        }
        self.add_one_time_pre_keys(first, count, rng);
        self.one_time_pre_keys
            .values()
            .filter(|k| k.id >= first)
            .map(|k| (k.id, k.key_pair.public))
            .collect()
    }

    /// The identity public key.
    pub fn identity_key(&self) -> PublicKey {
        self.identity.public
    }

    /// The registration id.
    pub fn registration_id(&self) -> u32 {
        self.registration_id
    }

    /// Ids of the one-time prekeys not yet used, ascending.
    pub fn one_time_pre_key_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.one_time_pre_keys.keys().copied()
    }

    /// The newest signed prekey and all one-time prekeys, public halves only.
    pub fn public_keys(&self) -> Option<PublicKeys> {
        let spk = self.signed_pre_key.as_ref()?;
        Some(PublicKeys {
            identity_key: self.identity.public,
            registration_id: self.registration_id,
            signed_pre_key: PublicSignedPreKey {
                id: spk.id,
                public_key: spk.key_pair.public,
                signature: spk.signature,
            },
            pre_keys: self
                .one_time_pre_keys
                .values()
                .map(|k| (k.id, k.key_pair.public))
                .collect(),
            kyber_pre_key: self.kyber_pre_key.as_ref().map(|k| PublicKyberPreKey {
                id: k.id,
                public_key: k.key_pair.public().clone(),
                signature: k.signature,
            }),
        })
    }

    /// A bundle for a peer, handing out (not removing) the lowest one-time prekey.
    /// The server normally does this; useful for tests and local peers.
    pub fn bundle(&self, device_id: u32, with_one_time: bool) -> Option<PreKeyBundle> {
        let keys = self.public_keys()?;
        Some(PreKeyBundle {
            registration_id: keys.registration_id,
            device_id,
            identity_key: keys.identity_key,
            signed_pre_key_id: keys.signed_pre_key.id,
            signed_pre_key: keys.signed_pre_key.public_key,
            signed_pre_key_signature: keys.signed_pre_key.signature,
            pre_key: if with_one_time {
                keys.pre_keys.first().copied()
            } else {
                None
            },
            kyber_pre_key: keys.kyber_pre_key,
        })
    }

    /// The addresses this store has sessions with.
    pub fn session_addresses(&self) -> impl Iterator<Item = &str> {
        self.sessions.keys().map(String::as_str)
    }

    /// The session record with `address`, if any.
    pub fn session(&self, address: &str) -> Option<&SessionRecord> {
        self.sessions.get(address)
    }

    /// Whether `address` has a session with a current state (one that can encrypt).
    pub fn has_session(&self, address: &str) -> bool {
        self.sessions
            .get(address)
            .is_some_and(|r| r.current().is_some())
    }

    /// The identity key trusted for `address` (the first one seen), if any.
    pub fn known_identity(&self, address: &str) -> Option<&PublicKey> {
        self.known_identities.get(address)
    }

    /// Trust on first use; a different key for a known address is refused.
    fn check_trust(&self, address: &str, identity: &PublicKey) -> Result<(), SignalError> {
        match self.known_identities.get(address) {
            Some(known) if !known.ct_eq(identity) => {
                Err(SignalError::UntrustedIdentity(address.to_owned()))
            }
            _ => Ok(()),
        }
    }

    /// Starts a session with `address` from its bundle (X3DH as initiator).
    pub fn process_bundle(
        &mut self,
        address: &str,
        bundle: &PreKeyBundle,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(), SignalError> {
        self.check_trust(address, &bundle.identity_key)?;
        let state = x3dh::initiate(&self.identity, self.registration_id, bundle, rng)?;
        let mut record = self.sessions.get(address).cloned().unwrap_or_default();
        record.promote_state(state);
        self.sessions.insert(address.to_owned(), record);
        self.known_identities
            .insert(address.to_owned(), bundle.identity_key);
        Ok(())
    }

    /// Encrypts with the current session state of `address`, after checking that its
    /// identity key is still the trusted one; advances the sending chain.
    pub fn encrypt(
        &mut self,
        address: &str,
        plaintext: &[u8],
    ) -> Result<CiphertextMessage, SignalError> {
        let mut record = self
            .sessions
            .get(address)
            .filter(|r| r.current().is_some())
            .cloned()
            .ok_or_else(|| SignalError::NoSession(address.to_owned()))?;
        let remote = *record
            .current()
            .map(|s| s.remote_identity())
            .ok_or(SignalError::NoMatchingState)?;
        if !self
            .known_identities
            .get(address)
            .is_some_and(|known| known.ct_eq(&remote))
        {
            return Err(SignalError::UntrustedIdentity(address.to_owned()));
        }
        let message = record.encrypt(plaintext)?;
        self.sessions.insert(address.to_owned(), record);
        Ok(message)
    }

    /// Decrypts a message from `address` within libsignal's limits
    /// ([`DecryptLimits::LIBSIGNAL`]). PreKey messages may set up a new session state (X3DH
    /// as responder) and consume the named one-time prekey.
    pub fn decrypt(
        &mut self,
        address: &str,
        message: &CiphertextMessage,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Vec<u8>, SignalError> {
        self.decrypt_within(address, message, DecryptLimits::LIBSIGNAL, rng)
    }

    /// [`ProtocolStore::decrypt`] with a bound on the work one message may cost.
    pub fn decrypt_within(
        &mut self,
        address: &str,
        message: &CiphertextMessage,
        limits: DecryptLimits,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Vec<u8>, SignalError> {
        let mut pending = self.decrypt_pending(address, message, limits, rng)?;
        let plaintext = core::mem::take(&mut *pending.plaintext);
        self.apply_decryption(pending);
        Ok(plaintext)
    }

    /// Decrypts as [`ProtocolStore::decrypt_within`] does, but changes nothing yet: the
    /// session's step, the sender's identity and the used one-time prekey are applied by
    /// [`ProtocolStore::apply_decryption`], or dropped with the result.
    pub fn decrypt_pending(
        &self,
        address: &str,
        message: &CiphertextMessage,
        limits: DecryptLimits,
        rng: &mut impl CryptoRngCore,
    ) -> Result<PendingDecryption, SignalError> {
        match message {
            CiphertextMessage::Whisper(m) => {
                let mut record = self
                    .sessions
                    .get(address)
                    .cloned()
                    .ok_or_else(|| SignalError::NoSession(address.to_owned()))?;
                let plaintext = record.decrypt(m, limits, rng)?;
                let remote = record.current().map(|s| *s.remote_identity());
                self.check_trust(address, &remote.ok_or(SignalError::NoMatchingState)?)?;
                Ok(PendingDecryption {
                    plaintext: Zeroizing::new(plaintext),
                    address: address.to_owned(),
                    record,
                    sender: self.known_identities.get(address).copied(),
                    used_one_time_pre_key: None,
                })
            }
            CiphertextMessage::PreKey(m) => self.decrypt_pre_key(address, m, limits, rng),
        }
    }

    /// Makes the changes of a message decrypted by [`ProtocolStore::decrypt_pending`] on this
    /// store, which must not have changed since.
    pub fn apply_decryption(&mut self, pending: PendingDecryption) {
        let PendingDecryption {
            address,
            record,
            sender,
            used_one_time_pre_key,
            ..
        } = pending;
        if let Some(key) = sender {
            self.known_identities.insert(address.clone(), key);
        }
        self.sessions.insert(address, record);
        if let Some(id) = used_one_time_pre_key {
            self.one_time_pre_keys.remove(&id);
        }
    }

    fn decrypt_pre_key(
        &self,
        address: &str,
        message: &PreKeySignalMessage,
        limits: DecryptLimits,
        rng: &mut impl CryptoRngCore,
    ) -> Result<PendingDecryption, SignalError> {
        self.check_trust(address, message.identity_key())?;
        let mut record = self.sessions.get(address).cloned().unwrap_or_default();
        let mut used_one_time = None;
        if !record.promote_matching(message.base_key()) {
            let signed = self
                .signed_pre_key
                .as_ref()
                .filter(|k| k.id == message.signed_pre_key_id())
                .ok_or(SignalError::UnknownSignedPreKey(
                    message.signed_pre_key_id(),
                ))?;
            // We never issue id 0, so 0 can only be the TypeScript port's way of writing
            // "no one-time prekey" (it does so for bundles without one).
            let one_time = match message.pre_key_id().filter(|&id| id != 0) {
                Some(id) => Some(
                    &self
                        .one_time_pre_keys
                        .get(&id)
                        .ok_or(SignalError::UnknownPreKey(id))?
                        .key_pair,
                ),
                None => None,
            };
            let kyber = match message.kyber() {
                Some(k) => Some(
                    &self
                        .kyber_pre_key
                        .as_ref()
                        .filter(|ours| ours.id == k.pre_key_id)
                        .ok_or(SignalError::UnknownKyberPreKey(k.pre_key_id))?
                        .key_pair,
                ),
                None => None,
            };
            let mut state = x3dh::respond(
                &self.identity,
                self.registration_id,
                &signed.key_pair,
                one_time,
                kyber,
                message,
            )?;
            // An initiator without SPQR (PQXDH in libsignal 0.65–0.91) sends none from its
            // first message on; one that has SPQR always sends it.
            if message.message().pq_ratchet().is_empty() {
                state.drop_spqr();
            }
            record.promote_state(state);
            used_one_time = message.pre_key_id().filter(|&id| id != 0);
        }
        let plaintext = record.decrypt(message.message(), limits, rng)?;
        Ok(PendingDecryption {
            plaintext: Zeroizing::new(plaintext),
            address: address.to_owned(),
            record,
            sender: Some(*message.identity_key()),
            used_one_time_pre_key: used_one_time,
        })
    }

    /// Forgets the session and trusted identity of `address`.
    pub fn forget(&mut self, address: &str) {
        self.sessions.remove(address);
        self.known_identities.remove(address);
    }
}
