// Uniform async adapter over two real Signal v3 (X3DH + Double Ratchet) peers, for interop tests:
//   'official' = @signalapp/libsignal-client (Rust libsignal, native addon; no Kyber in bundles)
//   'ts'       = @privacyresearch/libsignal-protocol-typescript (TypeScript port)
// All bytes in/out are Uint8Array. Remote addresses are plain names, always device id 1.
// Identity trust: trust on first use; a changed identity for a known address is refused (throws).
// Known official<->ts limits (asserted in peers.test.js): official writes version byte 0x34, which
// the TS port rejects, so only ts->official messages work; and the TS port sends preKeyId=0 when the
// bundle has no one-time prekey, which official then fails to find.

import * as L from '@signalapp/libsignal-client';
import tsPkg from '@privacyresearch/libsignal-protocol-typescript';

const { KeyHelper, SessionBuilder, SessionCipher, SignalProtocolAddress } = tsPkg;
const DEVICE_ID = 1;

/** @typedef {{ id: number, publicKey: Uint8Array, signature: Uint8Array }} SignedPreKeyPublic */
/** @typedef {{ registrationId: number, deviceId: number, identityKey: Uint8Array,
 *   signedPreKey: SignedPreKeyPublic, preKey: { id: number, publicKey: Uint8Array } | null }} Bundle */
/** @typedef {{ type: number, body: Uint8Array }} Ciphertext */
/** @typedef {{ registrationId?: number, oneTimePreKeyCount?: number, firstPreKeyId?: number, signedPreKeyId?: number }} PeerOptions */

// ---------- byte helpers ----------
/** @param {Uint8Array|ArrayBuffer|Buffer} b @returns {Uint8Array} a plain Uint8Array copy */
const u8 = (b) => new Uint8Array(b instanceof ArrayBuffer ? b : b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
/** @param {Uint8Array|ArrayBuffer} b @returns {ArrayBuffer} an exact-length ArrayBuffer copy */
const ab = (b) => (b instanceof ArrayBuffer ? b.slice(0) : u8(b).buffer);
const buf = (b) => Buffer.from(u8(b));
/** TS-port "binary string" -> bytes */
const fromBinaryString = (s) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const bytesEqual = (a, b) => {
  const x = u8(a), y = u8(b);
  return x.length === y.length && x.every((v, i) => v === y[i]);
};
const randomRegistrationId = () => 1 + Math.floor(Math.random() * 16380);

function checkRegistrationId(id) {
  if (!Number.isInteger(id) || id < 1 || id > 16380) throw new RangeError(`registrationId out of range: ${id}`);
  return id;
}

// ---------- official libsignal peer ----------
class OfficialSessionStore extends L.SessionStore {
  /** @type {Map<string, Buffer>} serialized SessionRecord by "name.deviceId" */
  sessions = new Map();
  async saveSession(addr, record) { this.sessions.set(addr.toString(), record.serialize()); }
  async getSession(addr) {
    const s = this.sessions.get(addr.toString());
    return s ? L.SessionRecord.deserialize(s) : null;
  }
  async getExistingSessions(addrs) {
    return Promise.all(addrs.map(async (a) => {
      const r = await this.getSession(a);
      if (!r) throw new Error(`no session for ${a.toString()}`);
      return r;
    }));
  }
}

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

class OfficialPreKeyStore extends L.PreKeyStore {
  /** @type {Map<number, Buffer>} */ preKeys = new Map();
  async savePreKey(id, record) { this.preKeys.set(id, record.serialize()); }
  async getPreKey(id) {
    const r = this.preKeys.get(id);
    if (!r) throw new Error(`no one-time prekey ${id}`);
    return L.PreKeyRecord.deserialize(r);
  }
  async removePreKey(id) { this.preKeys.delete(id); }
}

class OfficialSignedPreKeyStore extends L.SignedPreKeyStore {
  /** @type {Map<number, Buffer>} */ signedPreKeys = new Map();
  async saveSignedPreKey(id, record) { this.signedPreKeys.set(id, record.serialize()); }
  async getSignedPreKey(id) {
    const r = this.signedPreKeys.get(id);
    if (!r) throw new Error(`no signed prekey ${id}`);
    return L.SignedPreKeyRecord.deserialize(r);
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
    const first = o.firstPreKeyId ?? 1;
    for (let id = first; id < first + (o.oneTimePreKeyCount ?? 5); id++) {
      const priv = L.PrivateKey.generate();
      await this._stores.preKey.savePreKey(id, L.PreKeyRecord.new(id, priv.getPublicKey(), priv));
      this._unused.push({ id, publicKey: u8(priv.getPublicKey().serialize()) });
    }
    return this;
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

/** Shared bundle construction: hands out the next unused one-time prekey. */
function makeBundle(peer, withOneTimePreKey) {
  let preKey = null;
  if (withOneTimePreKey) {
    const next = peer._unused.shift();
    if (!next) throw new Error('no unused one-time prekeys left (raise oneTimePreKeyCount)');
    preKey = { id: next.id, publicKey: next.publicKey.slice() };
  }
  const spk = peer._signedPreKey;
  return {
    registrationId: peer.registrationId, deviceId: DEVICE_ID, identityKey: peer.identityKey(),
    signedPreKey: { id: spk.id, publicKey: spk.publicKey.slice(), signature: spk.signature.slice() },
    preKey,
  };
}

// ---------- TypeScript-port peer ----------
/** In-memory StorageType for the TS port. Keys are ArrayBuffers, sessions are strings. */
class TsStore {
  /** @type {Map<string, ArrayBuffer>} remote identity by name */ identities = new Map();
  /** @type {Map<string, string>} serialized session by "name.deviceId" */ sessions = new Map();
  /** @type {Map<number, {pubKey:ArrayBuffer, privKey:ArrayBuffer}>} */ preKeys = new Map();
  /** @type {Map<number, {pubKey:ArrayBuffer, privKey:ArrayBuffer}>} */ signedPreKeys = new Map();
  constructor(identityKeyPair, registrationId) { this.identityKeyPair = identityKeyPair; this.registrationId = registrationId; }

  // The port calls isTrustedIdentity with the bare name but saveIdentity with "name.deviceId"
  // (and processV3 even forgets to await isTrustedIdentity), so saveIdentity enforces TOFU too.
  static nameOf(encodedAddress) { return SignalProtocolAddress.fromString(encodedAddress).getName(); }
  async getIdentityKeyPair() { return this.identityKeyPair; }
  async getLocalRegistrationId() { return this.registrationId; }
  async isTrustedIdentity(name, identityKey) {
    const known = this.identities.get(name);
    return !known || bytesEqual(known, identityKey);
  }
  async saveIdentity(encodedAddress, publicKey) {
    const name = TsStore.nameOf(encodedAddress);
    const known = this.identities.get(name);
    if (known && !bytesEqual(known, publicKey)) throw new Error(`identity key changed for ${name}`);
    this.identities.set(name, ab(publicKey));
    return false;
  }
  async loadPreKey(id) { return this.preKeys.get(Number(id)); }
  async storePreKey(id, keyPair) { this.preKeys.set(Number(id), keyPair); }
  async removePreKey(id) { this.preKeys.delete(Number(id)); }
  async loadSignedPreKey(id) { return this.signedPreKeys.get(Number(id)); }
  async storeSignedPreKey(id, keyPair) { this.signedPreKeys.set(Number(id), keyPair); }
  async removeSignedPreKey(id) { this.signedPreKeys.delete(Number(id)); }
  async loadSession(encodedAddress) { return this.sessions.get(encodedAddress); }
  async storeSession(encodedAddress, record) { this.sessions.set(encodedAddress, record); }
}

/** Sync XEdDSA curve of the TS port (curve25519-typescript wrapper), created once. */
let tsCurvePromise;
const tsCurve = () => (tsCurvePromise ??= tsPkg.default().then((x) => x.Curve));

class TsPeer {
  kind = 'ts';
  constructor(o, curve) {
    this.registrationId = checkRegistrationId(o.registrationId ?? randomRegistrationId());
    this._curve = curve;
    this._unused = [];
  }

  async _init(o) {
    this._identity = await KeyHelper.generateIdentityKeyPair();
    this._store = new TsStore(this._identity, this.registrationId);
    const spk = await KeyHelper.generateSignedPreKey(this._identity, o.signedPreKeyId ?? 1);
    await this._store.storeSignedPreKey(spk.keyId, spk.keyPair);
    this._signedPreKey = { id: spk.keyId, publicKey: u8(spk.keyPair.pubKey), signature: u8(spk.signature) };
    const first = o.firstPreKeyId ?? 1;
    for (let id = first; id < first + (o.oneTimePreKeyCount ?? 5); id++) {
      const pk = await KeyHelper.generatePreKey(id);
      await this._store.storePreKey(id, pk.keyPair);
      this._unused.push({ id, publicKey: u8(pk.keyPair.pubKey) });
    }
    return this;
  }

  get store() { return this._store; }
  identityKey() { return u8(this._identity.pubKey); }
  bundle({ withOneTimePreKey = true } = {}) { return makeBundle(this, withOneTimePreKey); }

  async processBundle(address, b) {
    await new SessionBuilder(this._store, tsAddr(address)).processPreKey({
      registrationId: b.registrationId,
      identityKey: ab(b.identityKey),
      signedPreKey: { keyId: b.signedPreKey.id, publicKey: ab(b.signedPreKey.publicKey), signature: ab(b.signedPreKey.signature) },
      preKey: b.preKey ? { keyId: b.preKey.id, publicKey: ab(b.preKey.publicKey) } : undefined,
    });
  }

  async encrypt(address, plaintext) {
    const m = await new SessionCipher(this._store, tsAddr(address)).encrypt(ab(plaintext));
    return { type: m.type === 1 ? 2 : m.type, body: fromBinaryString(m.body) };
  }

  async decrypt(address, message) {
    const cipher = new SessionCipher(this._store, tsAddr(address));
    if (message.type === 3) return u8(await cipher.decryptPreKeyWhisperMessage(ab(message.body)));
    if (message.type === 1 || message.type === 2) return u8(await cipher.decryptWhisperMessage(ab(message.body)));
    throw new Error(`unsupported message type ${message.type}`);
  }

  async hasSession(address) { return new SessionCipher(this._store, tsAddr(address)).hasOpenSession(); }

  sign(message) { return u8(this._curve.calculateSignature(this._identity.privKey, ab(message))); }
  verify(publicKey33, message, signature) { return verifyTs(this._curve, publicKey33, message, signature); }
  static verify(publicKey33, message, signature) {
    if (!tsCurveSync) throw new Error('TsPeer.verify: create a ts peer first (curve not initialised)');
    return verifyTs(tsCurveSync, publicKey33, message, signature);
  }
}

let tsCurveSync = null;
const tsAddr = (name) => new SignalProtocolAddress(name, DEVICE_ID);

function verifyTs(curve, publicKey33, message, signature) {
  try {
    // curve25519-typescript's verify() follows the C convention: it returns true when the signature is INVALID.
    return !curve.verifySignature(ab(publicKey33), ab(message), ab(signature));
  } catch {
    return false; // malformed key/signature length
  }
}

// ---------- public API ----------
/**
 * @param {'official'|'ts'} kind
 * @param {PeerOptions} [options]
 * @returns {Promise<OfficialPeer|TsPeer>}
 */
export async function createPeer(kind, options = {}) {
  if (kind === 'official') return new OfficialPeer(options)._init(options);
  if (kind === 'ts') {
    tsCurveSync = await tsCurve();
    return new TsPeer(options, tsCurveSync)._init(options);
  }
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
