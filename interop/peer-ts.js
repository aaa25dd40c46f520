// The TypeScript port (@privacyresearch/libsignal-protocol-typescript) behind the uniform async
// peer interface of peers.js, plus the byte helpers and bundle shape both peers share. Nothing
// here needs Node, so the browser engine benchmark (bench/browser/) loads it too.
import * as tsNs from '@privacyresearch/libsignal-protocol-typescript';

// A CommonJS package: Node's ESM loader puts module.exports under `default` (names only when
// its lexer finds them); Vite's interop puts exports.default (the curve initialiser) there.
const tsLib = tsNs.KeyHelper ? tsNs : tsNs.default;
const initCurve = typeof tsNs.default === 'function' ? tsNs.default : tsNs.default.default;
const { KeyHelper, SessionBuilder, SessionCipher, SignalProtocolAddress } = tsLib;
export const DEVICE_ID = 1;

// Types (Bundle, Ciphertext, PeerOptions) are documented in peers.js.

// ---------- byte helpers ----------
/** @param {Uint8Array|ArrayBuffer|Buffer} b @returns {Uint8Array} a plain Uint8Array copy */
export const u8 = (b) => new Uint8Array(b instanceof ArrayBuffer ? b : b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
/** @param {Uint8Array|ArrayBuffer} b @returns {ArrayBuffer} an exact-length ArrayBuffer copy */
export const ab = (b) => (b instanceof ArrayBuffer ? b.slice(0) : u8(b).buffer);
/** TS-port "binary string" -> bytes */
const fromBinaryString = (s) => Uint8Array.from(s, (c) => c.charCodeAt(0));
export const bytesEqual = (a, b) => {
  const x = u8(a), y = u8(b);
  return x.length === y.length && x.every((v, i) => v === y[i]);
};
export const randomRegistrationId = () => 1 + Math.floor(Math.random() * 16380);

export function checkRegistrationId(id) {
  if (!Number.isInteger(id) || id < 1 || id > 16380) throw new RangeError(`registrationId out of range: ${id}`);
  return id;
}

/**
 * Shared one-time prekey generation: `n` new ids after the peer's last (24-bit, as libsignal),
 * each made and stored by `make(id)` -> public key; the new keys join the peer's unused ones
 * (which `bundle()` hands out) and are returned.
 */
export async function addPreKeys(peer, n, make) {
  if (!Number.isInteger(n) || n < 0 || peer._nextPreKeyId + n - 1 > 0xffffff) throw new Error(`cannot add ${n} one-time prekeys`);
  const added = [];
  for (let i = 0; i < n; i++) {
    const id = peer._nextPreKeyId++;
    added.push({ id, publicKey: await make(id) });
  }
  peer._unused.push(...added.map((k) => ({ id: k.id, publicKey: k.publicKey.slice() })));
  return added;
}

/** Shared bundle construction: hands out the next unused one-time prekey. */
export function makeBundle(peer, withOneTimePreKey) {
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
const tsCurve = () => (tsCurvePromise ??= initCurve().then((x) => x.Curve));

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
    this._nextPreKeyId = o.firstPreKeyId ?? 1;
    await this.addOneTimePreKeys(o.oneTimePreKeyCount ?? 5);
    return this;
  }

  /** Makes `n` more one-time prekeys (ids after the last); returns their public halves. */
  async addOneTimePreKeys(n) {
    return addPreKeys(this, n, async (id) => {
      const pk = await KeyHelper.generatePreKey(id);
      await this._store.storePreKey(id, pk.keyPair);
      return u8(pk.keyPair.pubKey);
    });
  }

  get store() { return this._store; }
  identityKey() { return u8(this._identity.pubKey); }
  /** The identity key this peer holds for `address` (33 bytes), or null. */
  remoteIdentity(address) {
    const known = this._store.identities.get(address);
    return known ? u8(known) : null;
  }
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

/** A TypeScript-port peer. @param {import('./peers.js').PeerOptions} [options] */
export async function createTsPeer(options = {}) {
  tsCurveSync = await tsCurve();
  return new TsPeer(options, tsCurveSync)._init(options);
}

export { TsPeer };
