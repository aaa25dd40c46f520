// The reference relay's input checks (docs/contract.md §3–§4): registration bodies, device ids
// and socket bodies. Every check throws HttpError(400) or answers false; none changes state.

import { OfficialPeer } from '../../interop/peers.js';

const MAX_ENCRYPTED_MESSAGE = 64 * 1024; // characters of base64 in one socket body
const PRIVATE_NAME = /priv|secret|private/i;

export class HttpError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}
export const bad = (msg) => { throw new HttpError(400, msg); };

/** Strict standard base64 (RFC 4648, padded). Returns the decoded bytes or null. */
export function b64(s) {
  if (typeof s !== 'string' || s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return null;
  const bytes = Buffer.from(s, 'base64');
  return bytes.toString('base64') === s ? bytes : null; // rejects non-canonical padding bits
}

/** Path of the first key (any depth) whose name looks like private material, or null. */
export function findPrivateKeyName(value, path = '') {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const p = findPrivateKeyName(value[i], `${path}[${i}]`);
      if (p) return p;
    }
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (PRIVATE_NAME.test(k)) return path ? `${path}.${k}` : k;
      const p = findPrivateKeyName(v, path ? `${path}.${k}` : k);
      if (p) return p;
    }
  }
  return null;
}

export function onlyFields(obj, allowed, where) {
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) bad(`${where} must be an object`);
  for (const k of Object.keys(obj)) if (!allowed.includes(k)) bad(`unknown field ${where === 'body' ? '' : where + '.'}${k}`);
}

export function publicKey33(s, where) {
  const b = b64(s);
  if (!b) bad(`${where} must be standard base64`);
  if (b.length !== 33 || b[0] !== 0x05) bad(`${where} must be 33 bytes starting 0x05 (got ${b.length})`);
  return s;
}

export const isId = (n) => Number.isInteger(n) && n >= 1 && n <= 0xffffff; // libsignal ids are 24-bit

const KYBER_PUBLIC_KEY_LEN = 1569; // type byte 0x08 (Kyber1024) + 1,568 bytes
const KYBER_KEY_TYPE = 0x08;

/**
 * The optional signed Kyber prekey (PQXDH): `{id, public_key, signature}`, or null when absent.
 * The signature is XEdDSA by the identity key over the whole serialized key, type byte included.
 */
export function validateKyberPreKey(kpk, identityKey) {
  if (kpk === undefined || kpk === null) return null;
  onlyFields(kpk, ['id', 'public_key', 'signature'], 'kyber_pre_key');
  if (!isId(kpk.id)) bad('kyber_pre_key.id must be an integer >= 1');
  const pub = b64(kpk.public_key);
  if (!pub) bad('kyber_pre_key.public_key must be standard base64');
  if (pub.length !== KYBER_PUBLIC_KEY_LEN || pub[0] !== KYBER_KEY_TYPE) {
    const got = pub.length !== KYBER_PUBLIC_KEY_LEN ? `${pub.length} bytes` : `type byte 0x${pub[0].toString(16).padStart(2, '0')}`;
    bad(`kyber_pre_key.public_key must be ${KYBER_PUBLIC_KEY_LEN} bytes starting 0x08 (Kyber1024; got ${got})`);
  }
  const sig = b64(kpk.signature);
  if (!sig || sig.length !== 64) bad('kyber_pre_key.signature must be 64 bytes of base64');
  // As with the signed prekey: a bad signature would make every PQXDH with this bundle fail.
  if (!OfficialPeer.verify(Buffer.from(identityKey, 'base64'), pub, sig)) {
    bad('kyber_pre_key.signature does not verify under the identity key');
  }
  return { id: kpk.id, public_key: kpk.public_key, signature: kpk.signature };
}

/** Validates the key part shared by guest and participant registration; returns public keys only. */
export function validateKeys(body, identityField) {
  const identity_key = publicKey33(body[identityField], identityField);
  const rid = body.registration_id;
  if (!Number.isInteger(rid) || rid < 1 || rid > 16380) bad('registration_id must be an integer 1..16380');

  const spk = body.signed_pre_key;
  onlyFields(spk, ['id', 'public_key', 'signature'], 'signed_pre_key');
  if (!isId(spk.id)) bad('signed_pre_key.id must be an integer >= 1');
  publicKey33(spk.public_key, 'signed_pre_key.public_key');
  const sig = b64(spk.signature);
  if (!sig || sig.length !== 64) bad('signed_pre_key.signature must be 64 bytes of base64');
  // A signature that does not verify would make every X3DH with this bundle fail: catch it here.
  if (!OfficialPeer.verify(Buffer.from(identity_key, 'base64'), Buffer.from(spk.public_key, 'base64'), sig)) {
    bad('signed_pre_key.signature does not verify under the identity key');
  }

  const pre_keys = validatePreKeys(body.pre_keys);
  const kyber_pre_key = validateKyberPreKey(body.kyber_pre_key, identity_key);
  return {
    identity_key, registration_id: rid,
    signed_pre_key: { id: spk.id, public_key: spk.public_key, signature: spk.signature }, pre_keys,
    kyber_pre_key,
  };
}

/**
 * One-time prekeys as registration and top-up take them: 1..MAX_PREKEY_UPLOAD keys (Signal's
 * server takes at most 100 per upload), 24-bit ids, no id twice.
 */
export function validatePreKeys(pks) {
  if (!Array.isArray(pks) || pks.length < 1 || pks.length > MAX_PREKEY_UPLOAD) {
    bad(`pre_keys must be an array of 1..${MAX_PREKEY_UPLOAD} keys`);
  }
  const seen = new Set();
  return pks.map((pk, i) => {
    onlyFields(pk, ['id', 'public_key'], `pre_keys[${i}]`);
    if (!isId(pk.id)) bad(`pre_keys[${i}].id must be an integer >= 1`);
    if (seen.has(pk.id)) bad(`pre_keys[${i}].id ${pk.id} is a duplicate`);
    seen.add(pk.id);
    return { id: pk.id, public_key: publicKey33(pk.public_key, `pre_keys[${i}].public_key`) };
  });
}

export const MAX_PREKEY_UPLOAD = 100;
/** Unused one-time prekeys the relay keeps per participant device (ten uploads). */
export const MAX_PREKEY_STOCK = 1000;

export const nonEmpty = (s, max = 200) => typeof s === 'string' && s.trim().length > 0 && s.length <= max;
/** device ids travel as strings; integers are accepted and converted */
export const deviceIdOf = (d) => (Number.isInteger(d) && d >= 0 ? String(d) : nonEmpty(d, 64) ? d : null);
export const deviceKey = (userId, deviceId) => `${userId}:${deviceId}`;

/** Socket body check shared by both directions (docs/contract.md §4). Returns true when acceptable. */
export function validCipherBody(d) {
  return d && typeof d === 'object' && !Array.isArray(d)
    && typeof d.type === 'string' && d.type.length <= 200
    && typeof d.encrypted_message === 'string' && d.encrypted_message.length > 0
    && d.encrypted_message.length <= MAX_ENCRYPTED_MESSAGE && b64(d.encrypted_message) !== null
    // message_type 0 (plaintext) is never relayed; a missing one is left for the receiver to parse
    && (d.message_type === undefined || d.message_type === 1 || d.message_type === 2 || d.message_type === 3);
}
