//! Session set-up for both roles: X3DH (Signal v3) and PQXDH (v4: X3DH's agreements plus a
//! Kyber1024 shared secret, and SPQR's authentication key).

use crate::prelude::*;

use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use super::error::SignalError;
use super::keys::{KeyPair, PrivateKey, PublicKey, SIGNATURE_LEN};
use super::kyber::{KyberKeyPair, KyberPublicKey};
use super::ratchet::{hkdf_sha256, split_root_and_chain, ChainKey, RootKey};
use super::session::{PendingPreKey, SessionState};
use super::spqr::PqChain;
use super::wire::{KyberEncapsulation, PreKeySignalMessage};

const X3DH_INFO: &[u8] = b"WhisperText";
const PQXDH_INFO: &[u8] = b"WhisperText_X25519_SHA-256_CRYSTALS-KYBER-1024";
/// X3DH's 32 bytes of 0xFF in front of the DH outputs (curve25519 domain separation).
const DISCONTINUITY: [u8; 32] = [0xff; 32];

/// The public keys a peer publishes so that others can start a session with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreKeyBundle {
    /// The peer's registration id; the session records it as the remote registration id.
    pub registration_id: u32,
    /// The peer's device id (carried along; X3DH does not use it).
    pub device_id: u32,
    /// The peer's long-term identity key.
    pub identity_key: PublicKey,
    /// The id of `signed_pre_key`, repeated in our PreKeySignalMessages.
    pub signed_pre_key_id: u32,
    /// The peer's medium-term signed prekey; also the first remote ratchet key.
    pub signed_pre_key: PublicKey,
    /// XEdDSA signature by `identity_key` over `signed_pre_key`'s 33-byte form; checked by
    /// [`PreKeyBundle::verify`].
    pub signed_pre_key_signature: [u8; SIGNATURE_LEN],
    /// `(id, key)` of a one-time prekey, absent when the server ran out.
    pub pre_key: Option<(u32, PublicKey)>,
    /// A signed Kyber prekey: present means PQXDH and a v4 session, absent X3DH and v3.
    pub kyber_pre_key: Option<PublicKyberPreKey>,
}

/// The public half of a signed Kyber1024 prekey, as published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKyberPreKey {
    /// The id the initiator names it by.
    pub id: u32,
    /// The KEM public key.
    pub public_key: KyberPublicKey,
    /// XEdDSA signature by the identity key over `public_key`'s 1,569-byte form.
    pub signature: [u8; SIGNATURE_LEN],
}

impl PreKeyBundle {
    /// X3DH §3.3 and PQXDH §3.3: the signed prekey, and the Kyber prekey if any, must carry
    /// the identity key's signature.
    pub fn verify(&self) -> Result<(), SignalError> {
        let signed = self.signed_pre_key.serialize();
        let kyber_ok = self.kyber_pre_key.as_ref().map_or(true, |k| {
            self.identity_key
                .verify_signature(&k.public_key.serialize(), &k.signature)
        });
        if kyber_ok
            && self
                .identity_key
                .verify_signature(&signed, &self.signed_pre_key_signature)
        {
            Ok(())
        } else {
            Err(SignalError::BadSignature)
        }
    }
}

/// Root key, first chain key, and (v4) SPQR's state for this role, from the agreements.
fn derive_initial_keys(
    secrets: &[u8],
    post_quantum: bool,
    initiator: bool,
) -> (RootKey, ChainKey, Option<PqChain>) {
    if !post_quantum {
        let derived = Zeroizing::new(hkdf_sha256::<64>(None, secrets, X3DH_INFO));
        let (root, chain) = split_root_and_chain(&derived);
        return (root, chain, None);
    }
    let derived = Zeroizing::new(hkdf_sha256::<96>(None, secrets, PQXDH_INFO));
    let mut first = Zeroizing::new([0u8; 64]);
    let mut auth_key = Zeroizing::new([0u8; 32]);
    first.copy_from_slice(&derived[..64]);
    auth_key.copy_from_slice(&derived[64..]);
    let (root, chain) = split_root_and_chain(&first);
    (root, chain, Some(PqChain::new(&auth_key, initiator)))
}

fn push_agreement(
    secrets: &mut Vec<u8>,
    ours: &PrivateKey,
    theirs: &PublicKey,
) -> Result<(), SignalError> {
    secrets.extend_from_slice(ours.agree(theirs)?.as_bytes());
    Ok(())
}

/// Alice's side: a new session state from Bob's bundle. The state keeps sending
/// PreKeySignalMessages until Bob's first reply arrives.
pub(crate) fn initiate(
    identity: &KeyPair,
    registration_id: u32,
    bundle: &PreKeyBundle,
    rng: &mut impl CryptoRngCore,
) -> Result<SessionState, SignalError> {
    bundle.verify()?;
    let base_key = KeyPair::generate(rng);
    let mut secrets = Zeroizing::new(Vec::with_capacity(32 * 5));
    secrets.extend_from_slice(&DISCONTINUITY);
    push_agreement(&mut secrets, &identity.private, &bundle.signed_pre_key)?;
    push_agreement(&mut secrets, &base_key.private, &bundle.identity_key)?;
    push_agreement(&mut secrets, &base_key.private, &bundle.signed_pre_key)?;
    if let Some((_, one_time)) = &bundle.pre_key {
        push_agreement(&mut secrets, &base_key.private, one_time)?;
    }
    let kyber = bundle.kyber_pre_key.as_ref().map(|k| {
        let mut shared = Zeroizing::new([0u8; 32]);
        let ciphertext = k.public_key.encapsulate(rng, &mut shared);
        secrets.extend_from_slice(&shared[..]);
        KyberEncapsulation {
            pre_key_id: k.id,
            ciphertext,
        }
    });
    let (root, receiving_chain, pq) = derive_initial_keys(&secrets, kyber.is_some(), true);

    let sending_ratchet = KeyPair::generate(rng);
    let (root, sending_chain) =
        root.create_chain(&bundle.signed_pre_key, &sending_ratchet.private)?;

    let mut state = SessionState::new(
        identity.public,
        bundle.identity_key,
        registration_id,
        bundle.registration_id,
        root,
        sending_ratchet,
        sending_chain,
        base_key.public,
        pq,
    );
    state.add_receiver_chain(bundle.signed_pre_key, receiving_chain);
    state.pending_pre_key = Some(PendingPreKey {
        pre_key_id: bundle.pre_key.as_ref().map(|(id, _)| *id),
        signed_pre_key_id: bundle.signed_pre_key_id,
        base_key: base_key.public,
        kyber,
    });
    Ok(state)
}

/// Bob's side: a new session state from Alice's PreKeySignalMessage and our prekeys (with
/// the Kyber prekey it names, for a v4 message).
pub(crate) fn respond(
    identity: &KeyPair,
    registration_id: u32,
    signed_pre_key: &KeyPair,
    one_time_pre_key: Option<&KeyPair>,
    kyber_pre_key: Option<&KyberKeyPair>,
    message: &PreKeySignalMessage,
) -> Result<SessionState, SignalError> {
    let their_identity = message.identity_key();
    let their_base = message.base_key();
    // Otherwise a flipped top bit would be a second, different-looking set-up message that
    // agrees the same keys.
    if !their_base.is_canonical() {
        return Err(SignalError::InvalidKey("base key is not canonical"));
    }
    let mut secrets = Zeroizing::new(Vec::with_capacity(32 * 5));
    secrets.extend_from_slice(&DISCONTINUITY);
    push_agreement(&mut secrets, &signed_pre_key.private, their_identity)?;
    push_agreement(&mut secrets, &identity.private, their_base)?;
    push_agreement(&mut secrets, &signed_pre_key.private, their_base)?;
    if let Some(one_time) = one_time_pre_key {
        push_agreement(&mut secrets, &one_time.private, their_base)?;
    }
    let post_quantum = match (message.kyber(), kyber_pre_key) {
        (Some(sent), Some(ours)) => {
            let mut shared = Zeroizing::new([0u8; 32]);
            ours.decapsulate(&sent.ciphertext, &mut shared)?;
            secrets.extend_from_slice(&shared[..]);
            true
        }
        (None, _) => false,
        (Some(sent), None) => return Err(SignalError::UnknownKyberPreKey(sent.pre_key_id)),
    };
    let (root, sending_chain, pq) = derive_initial_keys(&secrets, post_quantum, false);
    Ok(SessionState::new(
        identity.public,
        *their_identity,
        registration_id,
        message.registration_id(),
        root,
        signed_pre_key.clone(),
        sending_chain,
        *their_base,
        pq,
    ))
}
