// Current official libsignal (@signalapp/libsignal-client@0.103.0, installed under the npm alias
// @signalapp/libsignal-client-current) behind the uniform async peer interface of peers.js.
//
// 0.103 speaks only PQXDH + SPQR (the "triple ratchet"): every bundle must carry a signed Kyber1024
// prekey, it writes version byte 0x44, and it refuses X3DH PreKey messages (version 3) with
// "X3DH no longer supported". So it does not interoperate with the 0.72.1 'official' peer, nor with
// the TypeScript port; current.test.js asserts where that breaks.
//
// Its stores are made from this package's own base classes (record-stores.js makes the record
// stores for each package): a record belongs to the native module that made it, and the two
// packages' base classes differ (0.72.1 stores subclass bridge classes with _saveSession etc.;
// 0.103 wraps any object with the methods).
import * as C from '@signalapp/libsignal-client-current';
import { DEVICE_ID, addPreKeys, bytesEqual, checkRegistrationId, makeBundle, randomRegistrationId, u8 } from './peer-ts.js';
import { recordStores } from './record-stores.js';

/** @typedef {import('./peers.js').Bundle} Bundle */
/** @typedef {import('./peers.js').Ciphertext} Ciphertext */
/** @typedef {{ id: number, publicKey: Uint8Array, signature: Uint8Array }} KyberPreKeyPublic
 *   publicKey: serialized KEM public key (type byte 0x08 + 1568 bytes); signature: XEdDSA by the identity key over it */
/** @typedef {Bundle & { kyberPreKey: KyberPreKeyPublic }} CurrentBundle */
/** @typedef {import('./peers.js').PeerOptions & { name?: string, kyberPreKeyId?: number }} CurrentPeerOptions
 *   name: this peer's own address name (0.103 needs a local address; see CurrentPeer) */

/** Default local address name. Any non-ServiceId string turns the 0.103 address binding off. */
const DEFAULT_LOCAL_NAME = 'local';

/** @param {string} name */
const addr = (name) => C.ProtocolAddress.new(name, DEVICE_ID);

const {
  SessionStore: CurrentSessionStore, PreKeyStore: CurrentPreKeyStore, SignedPreKeyStore: CurrentSignedPreKeyStore,
} = recordStores(C);

/** Trust on first use; a changed identity for a known address is refused (throws), as in peers.js. */
class CurrentIdentityStore extends C.IdentityKeyStore {
  /** @type {Map<string, Uint8Array>} serialized remote identity PublicKey by "name.deviceId" */
  identities = new Map();
  /** @param {C.IdentityKeyPair} identityKeyPair @param {number} registrationId */
  constructor(identityKeyPair, registrationId) { super(); this.identityKeyPair = identityKeyPair; this.registrationId = registrationId; }
  async getIdentityKey() { return this.identityKeyPair.privateKey; }
  // The base class would rebuild the pair from the private key on every call; the pair is at hand.
  async getIdentityKeyPair() { return this.identityKeyPair; }
  async getLocalRegistrationId() { return this.registrationId; }
  // `direction` (C.Direction.Sending/Receiving) does not matter for TOFU.
  async isTrustedIdentity(address, key, _direction) {
    const known = this.identities.get(address.toString());
    return !known || bytesEqual(known, key.serialize());
  }
  async saveIdentity(address, key) {
    const known = this.identities.get(address.toString());
    if (known && !bytesEqual(known, key.serialize())) throw new Error(`identity key changed for ${address.toString()}`);
    this.identities.set(address.toString(), key.serialize());
    return C.IdentityChange.NewOrUnchanged;
  }
  async getIdentity(address) {
    const known = this.identities.get(address.toString());
    return known ? C.PublicKey.deserialize(known) : null;
  }
}

/**
 * The peer's Kyber prekey is a last-resort key: every bundle hands out the same one, so it is never
 * deleted. Instead, as libsignal's storage contract asks (and its InMemKyberPreKeyStore does),
 * markKyberPreKeyUsed refuses a (kyber prekey, signed prekey, base key) combination seen before,
 * which stops a replayed PreKey message from setting up a second session.
 */
class CurrentKyberPreKeyStore extends C.KyberPreKeyStore {
  /** @type {Map<number, C.KyberPreKeyRecord>} by id */ kyberPreKeys = new Map();
  /** @type {Set<string>} "kyberId:signedPreKeyId:baseKeyHex" already used */ usedBaseKeys = new Set();
  async saveKyberPreKey(id, record) { this.kyberPreKeys.set(id, record); }
  async getKyberPreKey(id) {
    const r = this.kyberPreKeys.get(id);
    if (!r) throw new Error(`no kyber prekey ${id}`);
    return r;
  }
  /** 0.103 signature: (kyberPreKeyId, signedPreKeyId, baseKey: PublicKey); 0.72.1 passed only the id. */
  async markKyberPreKeyUsed(id, signedPreKeyId, baseKey) {
    const key = `${id}:${signedPreKeyId}:${Buffer.from(baseKey.serialize()).toString('hex')}`;
    if (this.usedBaseKeys.has(key)) throw new Error(`kyber prekey ${id} reused with the same base key`);
    this.usedBaseKeys.add(key);
  }
}

/**
 * 0.103 peer. Same interface as OfficialPeer; bundles additionally carry `kyberPreKey`.
 *
 * 0.103's processPreKeyBundle/signalEncrypt/signalDecrypt(PreKey) take the local address as well as
 * the remote one. libsignal binds both into PreKey messages (and checks them on receipt) only when
 * both names are ServiceId strings (ACI UUID or "PNI:<uuid>"); it also uses them to detect a
 * session with oneself. With plain names such as 'alice' nothing is bound, so `name` only matters
 * for tests that use ServiceIds.
 */
class CurrentPeer {
  kind = 'current';
  /** @param {CurrentPeerOptions} o */
  constructor(o) {
    this.registrationId = checkRegistrationId(o.registrationId ?? randomRegistrationId());
    /** this peer's own address name, passed to 0.103 as the local address */
    this.name = o.name ?? DEFAULT_LOCAL_NAME;
    this._localAddress = addr(this.name);
    this._identity = C.IdentityKeyPair.generate();
    this._stores = {
      session: new CurrentSessionStore(),
      identity: new CurrentIdentityStore(this._identity, this.registrationId),
      preKey: new CurrentPreKeyStore(),
      signedPreKey: new CurrentSignedPreKeyStore(),
      kyberPreKey: new CurrentKyberPreKeyStore(),
    };
    /** @type {{id:number, publicKey:Uint8Array}[]} one-time prekeys not yet handed out */
    this._unused = [];
  }

  /** @param {CurrentPeerOptions} o */
  async _init(o) {
    const now = Date.now();
    const spkId = o.signedPreKeyId ?? 1;
    const spkPriv = C.PrivateKey.generate();
    const spkPub = spkPriv.getPublicKey();
    const spkSig = this._identity.privateKey.sign(spkPub.serialize());
    await this._stores.signedPreKey.saveSignedPreKey(spkId, C.SignedPreKeyRecord.new(spkId, now, spkPub, spkPriv, spkSig));
    this._signedPreKey = { id: spkId, publicKey: u8(spkPub.serialize()), signature: u8(spkSig) };

    const kyberId = o.kyberPreKeyId ?? 1;
    const kem = C.KEMKeyPair.generate();
    const kemPub = kem.getPublicKey().serialize();
    const kemSig = this._identity.privateKey.sign(kemPub);
    await this._stores.kyberPreKey.saveKyberPreKey(kyberId, C.KyberPreKeyRecord.new(kyberId, now, kem, kemSig));
    this._kyberPreKey = { id: kyberId, publicKey: u8(kemPub), signature: u8(kemSig) };

    this._nextPreKeyId = o.firstPreKeyId ?? 1;
    await this.addOneTimePreKeys(o.oneTimePreKeyCount ?? 5);
    return this;
  }

  /** Makes `n` more one-time prekeys (ids after the last); returns their public halves. */
  async addOneTimePreKeys(n) {
    return addPreKeys(this, n, async (id) => {
      const priv = C.PrivateKey.generate();
      await this._stores.preKey.savePreKey(id, C.PreKeyRecord.new(id, priv.getPublicKey(), priv));
      return u8(priv.getPublicKey().serialize());
    });
  }

  get store() { return this._stores; }
  identityKey() { return u8(this._identity.publicKey.serialize()); }

  /** @returns {CurrentBundle} */
  bundle({ withOneTimePreKey = true } = {}) {
    const k = this._kyberPreKey;
    return { ...makeBundle(this, withOneTimePreKey), kyberPreKey: { id: k.id, publicKey: k.publicKey.slice(), signature: k.signature.slice() } };
  }

  /** @param {string} address @param {Bundle & { kyberPreKey?: KyberPreKeyPublic }} b */
  async processBundle(address, b) {
    // 0.103's PreKeyBundle.new takes the Kyber arguments as required; check here so the caller
    // gets this message rather than a native argument-conversion error.
    if (!b.kyberPreKey) {
      throw new Error('current peer (libsignal 0.103) needs a kyberPreKey in the bundle: X3DH-only bundles are refused, PQXDH is required');
    }
    const pk = b.preKey, k = b.kyberPreKey;
    // Argument order: (registrationId, deviceId, preKeyId|null, preKey|null, signedPreKeyId, signedPreKey,
    // signedPreKeySignature, identityKey, kyberPreKeyId, kyberPreKey, kyberPreKeySignature), as in 0.72.1,
    // where the last three were optional.
    const bundle = C.PreKeyBundle.new(
      b.registrationId, b.deviceId ?? DEVICE_ID,
      pk ? pk.id : null, pk ? C.PublicKey.deserialize(u8(pk.publicKey)) : null,
      b.signedPreKey.id, C.PublicKey.deserialize(u8(b.signedPreKey.publicKey)), u8(b.signedPreKey.signature),
      C.PublicKey.deserialize(u8(b.identityKey)),
      k.id, C.KEMPublicKey.deserialize(u8(k.publicKey)), u8(k.signature));
    await C.processPreKeyBundle(bundle, addr(address), this._localAddress, this._stores.session, this._stores.identity);
  }

  /** @param {string} address @param {Uint8Array} plaintext @returns {Promise<Ciphertext>} */
  async encrypt(address, plaintext) {
    const m = await C.signalEncrypt(u8(plaintext), addr(address), this._localAddress, this._stores.session, this._stores.identity);
    return { type: m.type(), body: u8(m.serialize()) };
  }

  /** @param {string} address @param {Ciphertext} message @returns {Promise<Uint8Array>} */
  async decrypt(address, message) {
    const s = this._stores;
    if (message.type === C.CiphertextMessageType.PreKey) {
      const m = C.PreKeySignalMessage.deserialize(u8(message.body));
      return u8(await C.signalDecryptPreKey(m, addr(address), this._localAddress, s.session, s.identity, s.preKey, s.signedPreKey, s.kyberPreKey));
    }
    // 1 was the TS port's name for a whisper message; peers.js treats it the same way.
    if (message.type === 1 || message.type === C.CiphertextMessageType.Whisper) {
      const m = C.SignalMessage.deserialize(u8(message.body));
      return u8(await C.signalDecrypt(m, addr(address), this._localAddress, s.session, s.identity));
    }
    throw new Error(`unsupported message type ${message.type}`);
  }

  async hasSession(address) {
    const r = await this._stores.session.getSession(addr(address));
    return !!r && r.hasCurrentState();
  }

  /** The remote identity key stored for an address (33 bytes), or null if none is known yet. */
  remoteIdentity(address) {
    const known = this._stores.identity.identities.get(addr(address).toString());
    return known ? u8(known) : null;
  }

  sign(message) { return u8(this._identity.privateKey.sign(u8(message))); }
  verify(publicKey33, message, signature) { return CurrentPeer.verify(publicKey33, message, signature); }
  static verify(publicKey33, message, signature) {
    try {
      return C.PublicKey.deserialize(u8(publicKey33)).verify(u8(message), u8(signature));
    } catch {
      return false; // malformed key/signature
    }
  }
}

/** A 0.103 peer. @param {CurrentPeerOptions} [options] @returns {Promise<CurrentPeer>} */
export async function createCurrentPeer(options = {}) {
  return new CurrentPeer(options)._init(options);
}

export { CurrentPeer };
