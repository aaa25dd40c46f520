//! X3DH key agreement (Signal v3, without Kyber) for both roles.

use crate::prelude::*;

use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use super::error::SignalError;
use super::keys::{KeyPair, PrivateKey, PublicKey, SIGNATURE_LEN};
use super::ratchet::{hkdf_sha256, split_root_and_chain, ChainKey, RootKey};
use super::session::{PendingPreKey, SessionState};
use super::wire::PreKeySignalMessage;

const X3DH_INFO: &[u8] = b"WhisperText";
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
}

impl PreKeyBundle {
    /// X3DH §3.3: the signed prekey must carry the identity key's signature.
    pub fn verify(&self) -> Result<(), SignalError> {
        let signed = self.signed_pre_key.serialize();
        if self
            .identity_key
            .verify_signature(&signed, &self.signed_pre_key_signature)
        {
            Ok(())
        } else {
            Err(SignalError::BadSignature)
        }
    }
}

fn derive_initial_keys(secrets: &[u8]) -> (RootKey, ChainKey) {
    let derived = Zeroizing::new(hkdf_sha256::<64>(None, secrets, X3DH_INFO));
    split_root_and_chain(&derived)
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
    let (root, receiving_chain) = derive_initial_keys(&secrets);

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
    );
    state.add_receiver_chain(bundle.signed_pre_key, receiving_chain);
    state.pending_pre_key = Some(PendingPreKey {
        pre_key_id: bundle.pre_key.as_ref().map(|(id, _)| *id),
        signed_pre_key_id: bundle.signed_pre_key_id,
        base_key: base_key.public,
    });
    Ok(state)
}

/// Bob's side: a new session state from Alice's PreKeySignalMessage and our prekeys.
pub(crate) fn respond(
    identity: &KeyPair,
    registration_id: u32,
    signed_pre_key: &KeyPair,
    one_time_pre_key: Option<&KeyPair>,
    message: &PreKeySignalMessage,
) -> Result<SessionState, SignalError> {
    let their_identity = message.identity_key();
    let their_base = message.base_key();
    let mut secrets = Zeroizing::new(Vec::with_capacity(32 * 5));
    secrets.extend_from_slice(&DISCONTINUITY);
    push_agreement(&mut secrets, &signed_pre_key.private, their_identity)?;
    push_agreement(&mut secrets, &identity.private, their_base)?;
    push_agreement(&mut secrets, &signed_pre_key.private, their_base)?;
    if let Some(one_time) = one_time_pre_key {
        push_agreement(&mut secrets, &one_time.private, their_base)?;
    }
    let (root, sending_chain) = derive_initial_keys(&secrets);
    Ok(SessionState::new(
        identity.public,
        *their_identity,
        registration_id,
        message.registration_id(),
        root,
        signed_pre_key.clone(),
        sending_chain,
        *their_base,
    ))
}
