//! The raw Signal engine for JavaScript, with the same shape as the test peers in
//! `interop/peers.js`. Built only with the `interop` feature, for the interop suite.

use crate::prelude::*;

use super::platform::WebCryptoRng;
use js_sys::{Object, Uint8Array};
use wasm_bindgen::prelude::*;

use super::js::{as_count, bytes, get, get_bytes, set};
use crate::signal::kyber::KyberPublicKey;
use crate::signal::{
    fingerprint, CiphertextMessage, DecryptLimits, KeyPair, PreKeyBundle, ProtocolStore, PublicKey,
    PublicKyberPreKey, SignalError,
};

fn js_err(e: SignalError) -> JsError {
    JsError::new(&e.to_string())
}

fn public_key(obj: &JsValue, key: &str) -> Result<PublicKey, JsError> {
    PublicKey::from_bytes(&required_bytes(obj, key)?).map_err(js_err)
}

fn required_bytes(obj: &JsValue, key: &str) -> Result<Vec<u8>, JsError> {
    get_bytes(obj, key).ok_or_else(|| JsError::new(&format!("`{key}` must be a Uint8Array")))
}

fn signature_field(obj: &JsValue) -> Result<[u8; 64], JsError> {
    required_bytes(obj, "signature")?
        .try_into()
        .map_err(|_| JsError::new("signature must be 64 bytes"))
}

fn get_u32(obj: &JsValue, key: &str) -> Result<u32, JsError> {
    as_count(&get(obj, key), f64::from(u32::MAX))
        .map(|n| n as u32)
        .ok_or_else(|| JsError::new(&format!("`{key}` must be a non-negative integer")))
}

fn platform_rng() -> Result<WebCryptoRng, JsError> {
    WebCryptoRng::new().ok_or_else(|| JsError::new("crypto.getRandomValues is missing"))
}

/// One local Signal party: identity, prekeys, sessions.
#[wasm_bindgen]
pub struct SignalParty {
    store: ProtocolStore,
    handed_out: u32,
    rng: WebCryptoRng,
}

#[wasm_bindgen]
impl SignalParty {
    /// A party with a new identity, signed prekey and `one_time_pre_keys` one-time prekeys,
    /// and with `kyber_pre_key` a signed Kyber prekey too (its bundle then starts v4 sessions).
    #[wasm_bindgen(constructor)]
    pub fn new(
        one_time_pre_keys: u32,
        kyber_pre_key: Option<bool>,
    ) -> Result<SignalParty, JsError> {
        let mut rng = platform_rng()?;
        let mut store = ProtocolStore::generate(&mut rng, one_time_pre_keys);
        if kyber_pre_key == Some(true) {
            store.add_kyber_pre_key(1, &mut rng);
        }
        Ok(SignalParty {
            store,
            handed_out: 0,
            rng,
        })
    }

    /// The public identity key, 33 bytes (0x05 type byte).
    #[wasm_bindgen(js_name = identityKey)]
    pub fn identity_key(&self) -> Vec<u8> {
        self.store.identity_key().serialize().to_vec()
    }

    /// The party's registration id.
    #[wasm_bindgen(getter, js_name = registrationId)]
    pub fn registration_id(&self) -> u32 {
        self.store.registration_id()
    }

    /// A bundle handing out the next unused one-time prekey (as a server would).
    pub fn bundle(&mut self, with_one_time_pre_key: bool) -> Result<Object, JsError> {
        let keys = self
            .store
            .public_keys()
            .ok_or_else(|| JsError::new("no signed prekey"))?;
        let out = Object::new();
        set(&out, "registrationId", keys.registration_id);
        set(&out, "deviceId", 1);
        set(&out, "identityKey", bytes(&keys.identity_key.serialize()));
        let spk = Object::new();
        set(&spk, "id", keys.signed_pre_key.id);
        set(
            &spk,
            "publicKey",
            bytes(&keys.signed_pre_key.public_key.serialize()),
        );
        set(&spk, "signature", bytes(&keys.signed_pre_key.signature));
        set(&out, "signedPreKey", spk);
        if let Some(k) = &keys.kyber_pre_key {
            let kyber = Object::new();
            set(&kyber, "id", k.id);
            set(&kyber, "publicKey", bytes(&k.public_key.serialize()));
            set(&kyber, "signature", bytes(&k.signature));
            set(&out, "kyberPreKey", kyber);
        }
        let next = keys.pre_keys.iter().find(|(id, _)| *id > self.handed_out);
        match next.filter(|_| with_one_time_pre_key) {
            Some((id, key)) => {
                self.handed_out = *id;
                let pk = Object::new();
                set(&pk, "id", *id);
                set(&pk, "publicKey", bytes(&key.serialize()));
                set(&out, "preKey", pk);
            }
            None if with_one_time_pre_key => {
                return Err(JsError::new("no unused one-time prekeys"))
            }
            None => set(&out, "preKey", JsValue::NULL),
        }
        Ok(out)
    }

    /// Starts a session from a bundle object of the shape `bundle()` returns.
    #[wasm_bindgen(js_name = processBundle)]
    pub fn process_bundle(&mut self, address: &str, bundle: JsValue) -> Result<(), JsError> {
        let spk = get(&bundle, "signedPreKey");
        let pk = get(&bundle, "preKey");
        let pre_key = if pk.is_null() || pk.is_undefined() {
            None
        } else {
            Some((get_u32(&pk, "id")?, public_key(&pk, "publicKey")?))
        };
        let signature = signature_field(&spk)?;
        let kyber = get(&bundle, "kyberPreKey");
        let kyber_pre_key = if kyber.is_null() || kyber.is_undefined() {
            None
        } else {
            Some(PublicKyberPreKey {
                id: get_u32(&kyber, "id")?,
                public_key: KyberPublicKey::from_bytes(&required_bytes(&kyber, "publicKey")?)
                    .map_err(js_err)?,
                signature: signature_field(&kyber)?,
            })
        };
        let parsed = PreKeyBundle {
            registration_id: get_u32(&bundle, "registrationId")?,
            device_id: get_u32(&bundle, "deviceId")?,
            identity_key: public_key(&bundle, "identityKey")?,
            signed_pre_key_id: get_u32(&spk, "id")?,
            signed_pre_key: public_key(&spk, "publicKey")?,
            signed_pre_key_signature: signature,
            pre_key,
            kyber_pre_key,
        };
        self.store
            .process_bundle(address, &parsed, &mut self.rng)
            .map_err(js_err)
    }

    /// `{ type: 2 | 3, body: Uint8Array }`
    pub fn encrypt(&mut self, address: &str, plaintext: &[u8]) -> Result<Object, JsError> {
        let message = self.store.encrypt(address, plaintext).map_err(js_err)?;
        let out = Object::new();
        set(&out, "type", message.message_type());
        set(&out, "body", bytes(message.serialized()));
        Ok(out)
    }

    /// Decrypts a message of libsignal `message_type` (2 or 3) from `address`.
    pub fn decrypt(
        &mut self,
        address: &str,
        message_type: u32,
        body: &[u8],
    ) -> Result<Vec<u8>, JsError> {
        let message = CiphertextMessage::parse(Some(message_type), body).map_err(js_err)?;
        self.store
            .decrypt(address, &message, &mut self.rng)
            .map_err(js_err)
    }

    /// [`SignalParty::decrypt`] within the given bounds on work (see `DecryptLimits`).
    #[wasm_bindgen(js_name = decryptWithin)]
    pub fn decrypt_within(
        &mut self,
        address: &str,
        message_type: u32,
        body: &[u8],
        max_forward_jumps: u32,
        max_states: u32,
    ) -> Result<Vec<u8>, JsError> {
        let message = CiphertextMessage::parse(Some(message_type), body).map_err(js_err)?;
        let limits = DecryptLimits {
            max_forward_jumps,
            max_states: max_states as usize,
        };
        self.store
            .decrypt_within(address, &message, limits, &mut self.rng)
            .map_err(js_err)
    }

    /// Whether a session with `address` exists.
    #[wasm_bindgen(js_name = hasSession)]
    pub fn has_session(&self, address: &str) -> bool {
        self.store.has_session(address)
    }

    /// An XEdDSA signature by the identity key.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.store
            .identity
            .private
            .sign(message, &mut { self.rng })
            .to_vec()
    }

    /// A fresh key pair's public key, the private half dropped: times key generation alone
    /// (the engine benchmark's primitives).
    #[wasm_bindgen(js_name = generateKeyPair)]
    pub fn generate_key_pair(&self) -> Vec<u8> {
        KeyPair::generate(&mut { self.rng })
            .public
            .serialize()
            .to_vec()
    }

    /// X25519 agreement of the identity key with `public_key` (33 bytes).
    pub fn agree(&self, public_key: &[u8]) -> Result<Vec<u8>, JsError> {
        let theirs = PublicKey::from_bytes(public_key).map_err(js_err)?;
        let shared = self.store.identity.private.agree(&theirs).map_err(js_err)?;
        Ok(shared.as_bytes().to_vec())
    }

    /// Checks an XEdDSA signature of `public_key` (33 bytes).
    pub fn verify(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
        PublicKey::from_bytes(public_key).is_ok_and(|k| k.verify_signature(message, signature))
    }

    /// The 60-digit safety number, as libsignal's `Fingerprint` displays it.
    pub fn fingerprint(
        iterations: u32,
        local_id: &[u8],
        local_key: &[u8],
        remote_id: &[u8],
        remote_key: &[u8],
    ) -> Result<String, JsError> {
        let local = PublicKey::from_bytes(local_key).map_err(js_err)?;
        let remote = PublicKey::from_bytes(remote_key).map_err(js_err)?;
        Ok(fingerprint::displayable_fingerprint(
            iterations, local_id, &local, remote_id, &remote,
        ))
    }

    /// The stored form, copied into JavaScript (this test binding's only caller is the
    /// interop suite, which holds it as a `Uint8Array`).
    pub fn serialize(&self) -> Uint8Array {
        bytes(&self.store.to_bytes())
    }

    /// Reads one socket event as the guest does on its way to the exchange (in the plan
    /// profile's names): whether it is a relayed Signal message. For the stall benchmark.
    #[wasm_bindgen(js_name = readsAsSignalMessage)]
    pub fn reads_as_signal_message(body: &str) -> bool {
        crate::exchange::messages::parse_incoming(body, &crate::exchange::contract::PLAN).is_ok()
    }

    /// A party read back from [`SignalParty::serialize`]'s bytes.
    pub fn deserialize(bytes: &[u8]) -> Result<SignalParty, JsError> {
        let store = ProtocolStore::from_bytes(bytes).map_err(js_err)?;
        Ok(SignalParty {
            store,
            handed_out: 0,
            rng: platform_rng()?,
        })
    }
}
