// Uniform async adapter over two real Signal v3 (X3DH + Double Ratchet) peers, for interop tests:
//   'official' = @signalapp/libsignal-client (Rust libsignal, native addon; no Kyber in bundles)
//   'ts'       = @privacyresearch/libsignal-protocol-typescript (TypeScript port)
// plus 'current' = libsignal 0.103 (PQXDH + SPQR only; bundles carry a Kyber prekey), in peer-current.js.
// All bytes in/out are Uint8Array. Remote addresses are plain names, always device id 1.
// Identity trust: trust on first use; a changed identity for a known address is refused (throws).
// Known official<->ts limits (asserted in peers.test.js): official writes version byte 0x34, which
// the TS port rejects, so only ts->official messages work; and the TS port sends preKeyId=0 when the
// bundle has no one-time prekey, which official then fails to find.

import * as L from '@signalapp/libsignal-client';
import {
  DEVICE_ID, TsPeer, ab, addPreKeys, bytesEqual, checkRegistrationId, createTsPeer, makeBundle, randomRegistrationId, u8,
} from './peer-ts.js';
import { recordStores } from './record-stores.js';


/** @typedef {{ id: number, publicKey: Uint8Array, signature: Uint8Array }} SignedPreKeyPublic */
/** @typedef {{ registrationId: number, deviceId: number, identityKey: Uint8Array,
 *   signedPreKey: SignedPreKeyPublic, preKey: { id: number, publicKey: Uint8Array } | null }} Bundle */
/** @typedef {{ type: number, body: Uint8Array }} Ciphertext */
/** @typedef {{ registrationId?: number, oneTimePreKeyCount?: number, firstPreKeyId?: number, signedPreKeyId?: number }} PeerOptions */

// ---------- byte helpers ----------
const buf = (b) => Buffer.from(u8(b));

// ---------- official libsignal peer ----------
const {
  SessionStore: OfficialSessionStore, PreKeyStore: OfficialPreKeyStore, SignedPreKeyStore: OfficialSignedPreKeyStore,
} = recordStores(L);

class OfficialIdentityStore extends L.IdentityKeyStore {
  /** @type {Map<string, Buffer>} serialized remote identity PublicKey by "name.deviceId" */
  identities = new Map();
  constructor(identityKeyPair, registrationId) { super(); this.identityKeyPair = identityKeyPair; this.registrationId = registrationId; }
  async getIdentityKey() { return this.identityKeyPair.privateKey; }
  async getLocalRegistrationId() { return this.registrationId; }
  async isTrustedIdentity(addr, key) {
    const known = this.identities.get(addr.toString());
    return !known || bytesEqual(known, key.serialize());
  }
  async saveIdentity(addr, key) {
    const known = this.identities.get(addr.toString());
    if (known && !bytesEqual(known, key.serialize())) throw new Error(`identity key changed for ${addr.toString()}`);
    this.identities.set(addr.toString(), key.serialize());
    return L.IdentityChange.NewOrUnchanged;
  }
  async getIdentity(addr) {
    const known = this.identities.get(addr.toString());
    return known ? L.PublicKey.deserialize(known) : null;
  }
}

class OfficialKyberPreKeyStore extends L.KyberPreKeyStore {
  async saveKyberPreKey() { throw new Error('kyber prekeys not supported by this test peer'); }
  async getKyberPreKey(id) { throw new Error(`no kyber prekey ${id} (bundles carry none)`); }
  async markKyberPreKeyUsed() {}
}

class OfficialPeer {
  kind = 'official';
  /** @param {PeerOptions} o */
  constructor(o) {
    this.registrationId = checkRegistrationId(o.registrationId ?? randomRegistrationId());
    this._identity = L.IdentityKeyPair.generate();
    this._stores = {
      session: new OfficialSessionStore(),
      identity: new OfficialIdentityStore(this._identity, this.registrationId),
      preKey: new OfficialPreKeyStore(),
      signedPreKey: new OfficialSignedPreKeyStore(),
      kyberPreKey: new OfficialKyberPreKeyStore(),
    };
    /** @type {{id:number, publicKey:Uint8Array}[]} one-time prekeys not yet handed out */
    this._unused = [];
  }

  async _init(o) {
    const spkId = o.signedPreKeyId ?? 1;
    const spkPriv = L.PrivateKey.generate();
    const spkPub = spkPriv.getPublicKey();
    const sig = this._identity.privateKey.sign(spkPub.serialize());
    await this._stores.signedPreKey.saveSignedPreKey(spkId, L.SignedPreKeyRecord.new(spkId, Date.now(), spkPub, spkPriv, sig));
    this._signedPreKey = { id: spkId, publicKey: u8(spkPub.serialize()), signature: u8(sig) };
    this._nextPreKeyId = o.firstPreKeyId ?? 1;
    await this.addOneTimePreKeys(o.oneTimePreKeyCount ?? 5);
    return this;
  }

  /** Makes `n` more one-time prekeys (ids after the last); returns their public halves. */
  async addOneTimePreKeys(n) {
    return addPreKeys(this, n, async (id) => {
      const priv = L.PrivateKey.generate();
      await this._stores.preKey.savePreKey(id, L.PreKeyRecord.new(id, priv.getPublicKey(), priv));
      return u8(priv.getPublicKey().serialize());
    });
  }

  get store() { return this._stores; }
  identityKey() { return u8(this._identity.publicKey.serialize()); }

  /** @returns {Bundle} */
  bundle({ withOneTimePreKey = true } = {}) {
    return makeBundle(this, withOneTimePreKey);
  }

  /** @param {string} address @param {Bundle} b */
  async processBundle(address, b) {
    const pk = b.preKey;
    const bundle = L.PreKeyBundle.new(
      b.registrationId, b.deviceId ?? DEVICE_ID,
      pk ? pk.id : null, pk ? L.PublicKey.deserialize(buf(pk.publicKey)) : null,
      b.signedPreKey.id, L.PublicKey.deserialize(buf(b.signedPreKey.publicKey)), buf(b.signedPreKey.signature),
      L.PublicKey.deserialize(buf(b.identityKey)));
    await L.processPreKeyBundle(bundle, addr(address), this._stores.session, this._stores.identity);
  }

  /** @returns {Promise<Ciphertext>} */
  async encrypt(address, plaintext) {
    const m = await L.signalEncrypt(buf(plaintext), addr(address), this._stores.session, this._stores.identity);
    return { type: m.type(), body: u8(m.serialize()) };
  }

  /** @param {Ciphertext} message @returns {Promise<Uint8Array>} */
  async decrypt(address, message) {
    const s = this._stores;
    if (message.type === 3) {
      const m = L.PreKeySignalMessage.deserialize(buf(message.body));
      return u8(await L.signalDecryptPreKey(m, addr(address), s.session, s.identity, s.preKey, s.signedPreKey, s.kyberPreKey));
    }
    if (message.type === 1 || message.type === 2) {
      return u8(await L.signalDecrypt(L.SignalMessage.deserialize(buf(message.body)), addr(address), s.session, s.identity));
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

  sign(message) { return u8(this._identity.privateKey.sign(buf(message))); }
  verify(publicKey33, message, signature) { return OfficialPeer.verify(publicKey33, message, signature); }
  static verify(publicKey33, message, signature) {
    try {
      return L.PublicKey.deserialize(buf(publicKey33)).verify(buf(message), buf(signature));
    } catch {
      return false; // malformed key/signature
    }
  }
}

const addr = (name) => L.ProtocolAddress.new(name, DEVICE_ID);

// ---------- public API ----------
/**
 * @param {'official'|'ts'|'current'} kind
 * @param {PeerOptions} [options] ('current' also takes `name` and `kyberPreKeyId`, see peer-current.js)
 * @returns {Promise<OfficialPeer|TsPeer|import('./peer-current.js').CurrentPeer>}
 */
export async function createPeer(kind, options = {}) {
  if (kind === 'official') return new OfficialPeer(options)._init(options);
  if (kind === 'ts') return createTsPeer(options);
  // Loaded on demand so users of the 0.72.1 peer (www/relay, www/bot) don't load a second native libsignal.
  if (kind === 'current') return (await import('./peer-current.js')).createCurrentPeer(options);
  throw new Error(`unknown peer kind: ${kind}`);
}

/**
 * Safety-number fingerprint (official implementation only). Ids are bytes or strings (UTF-8).
 * @returns {string} displayable 60-digit string
 */
export function fingerprint(localId, localKey33, remoteId, remoteKey33, iterations = 5200, version = 2) {
  const id = (x) => (typeof x === 'string' ? Buffer.from(x, 'utf8') : buf(x));
  return L.Fingerprint.new(iterations, version,
    id(localId), L.PublicKey.deserialize(buf(localKey33)),
    id(remoteId), L.PublicKey.deserialize(buf(remoteKey33))).displayableFingerprint().toString();
}

export { OfficialPeer, TsPeer };
