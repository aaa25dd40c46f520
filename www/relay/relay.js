// Reference meeting relay for the guest E2EE key exchange (docs/contract.md §3–§4).
// In-memory, single meeting, for tests and local demos only: it plays the meeting server the
// guest SDK talks to, and forwards Signal ciphertext between guests (/external namespace) and
// participant devices (main namespace). It never sees plaintext and refuses private key material.
//
// Endpoints and events that are the relay's own (NOT in the contract; the real server has its
// own participant login and host admission):
//   POST /api/participants/register   {auth, user_id, device_id, display_name, identity_key,
//                                      registration_id, signed_pre_key, pre_keys, kyber_pre_key?}
//                                      -> {user_id, device_id}; a participant device's public keys
//                                      (kyber_pre_key as in guest registration: a device that has one
//                                      gets PQXDH/v4 sessions from guests)
//   POST /api/relay/admit/:sessionId  (Authorization: Bearer <participantToken>) -> {session_id, admitted}
//   main namespace, participant -> relay: `host:admit_guest` {session_id} (optional ack callback)
//   main namespace auth: { token: participantToken, userId, deviceId }
// Decisions where the contract is silent:
//   - device_id is always a string in JSON (numbers are accepted and converted), as the
//     client reads it (`participant_device_id as String`).
//   - "in the meeting" = the participant device has a connected socket on the main namespace.
//   - registration is strict: unknown fields, duplicate prekey ids and a signed prekey whose
//     XEdDSA signature does not verify under the identity key are 400. The same holds for the
//     optional signed Kyber prekey (`kyber_pre_key`: 1,569 bytes starting 0x08, a 64-byte XEdDSA
//     signature over those bytes); `null` is read as absent. Bundles carry it, or `null`.
//   - the Kyber prekey is a last-resort key: every bundle hands out the same one, never deleted.
//   - rate limit counts every keybundle attempt for a known session (also ones that fail later).
//   - nothing from participants reaches a guest that has not been admitted (key before admission
//     is one of PeerWave's defects).
//   - CLI/demo only: no TLS, no persistence.
//
// MITM mode (`mitm: {userId, deviceId}`, CLI `--mitm user:device`), for tests and demos of what
// safety numbers and the short code catch: the relay attacks that one participant device. Guests
// get an impostor's bundle for it; the impostor decrypts their requests, asks the genuine device
// for the key while posing as a guest (session `mitm-<guest session>`), and answers the guest
// with the real key and its own sas_nonce, so key check values match but codes do not.
// Both impostors are libsignal 0.72.1 peers without a Kyber prekey (v3 only), so the attacked
// device must speak v3 too: a 'current' (0.103, v4-only) bot refuses the impostor guest.
//
// CLI: node www/relay/relay.js --port 8080 [--host 127.0.0.1] [--meeting demo-meeting]
//      [--invite demo-invite] [--participant-token participant-secret] [--no-auto-admit]
//      [--livekit-url ws://127.0.0.1:7880] [--livekit-key devkey] [--livekit-secret ...]
//      [--mitm user:device]

import http from 'node:http';
import crypto from 'node:crypto';
import { pathToFileURL } from 'node:url';
import express from 'express';
import { Server } from 'socket.io';
import { AccessToken } from 'livekit-server-sdk';
import { OfficialPeer, createPeer, fingerprint } from '../../interop/peers.js';
import { NONCE_LEN, commitment, shortCode, emojiText } from '../bot/sas.js';

const MAX_ENCRYPTED_MESSAGE = 64 * 1024; // characters of base64 in one socket body
const MAX_QUEUED_PER_GUEST = 100; // guest messages held back until admission
const PRIVATE_NAME = /priv|secret|private/i;

// ---------- validation helpers ----------

class HttpError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}
const bad = (msg) => { throw new HttpError(400, msg); };

/** Strict standard base64 (RFC 4648, padded). Returns the decoded bytes or null. */
function b64(s) {
  if (typeof s !== 'string' || s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return null;
  const bytes = Buffer.from(s, 'base64');
  return bytes.toString('base64') === s ? bytes : null; // rejects non-canonical padding bits
}

/** Path of the first key (any depth) whose name looks like private material, or null. */
function findPrivateKeyName(value, path = '') {
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

function onlyFields(obj, allowed, where) {
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) bad(`${where} must be an object`);
  for (const k of Object.keys(obj)) if (!allowed.includes(k)) bad(`unknown field ${where === 'body' ? '' : where + '.'}${k}`);
}

function publicKey33(s, where) {
  const b = b64(s);
  if (!b) bad(`${where} must be standard base64`);
  if (b.length !== 33 || b[0] !== 0x05) bad(`${where} must be 33 bytes starting 0x05 (got ${b.length})`);
  return s;
}

const isId = (n) => Number.isInteger(n) && n >= 1 && n <= 0xffffff; // libsignal ids are 24-bit

const KYBER_PUBLIC_KEY_LEN = 1569; // type byte 0x08 (Kyber1024) + 1,568 bytes
const KYBER_KEY_TYPE = 0x08;

/**
 * The optional signed Kyber prekey (PQXDH): `{id, public_key, signature}`, or null when absent.
 * The signature is XEdDSA by the identity key over the whole serialized key, type byte included.
 */
function validateKyberPreKey(kpk, identityKey) {
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
function validateKeys(body, identityField) {
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

  const pks = body.pre_keys;
  if (!Array.isArray(pks) || pks.length < 1 || pks.length > 100) bad('pre_keys must be an array of 1..100 keys');
  const seen = new Set();
  const pre_keys = pks.map((pk, i) => {
    onlyFields(pk, ['id', 'public_key'], `pre_keys[${i}]`);
    if (!isId(pk.id)) bad(`pre_keys[${i}].id must be an integer >= 1`);
    if (seen.has(pk.id)) bad(`pre_keys[${i}].id ${pk.id} is a duplicate`);
    seen.add(pk.id);
    return { id: pk.id, public_key: publicKey33(pk.public_key, `pre_keys[${i}].public_key`) };
  });
  const kyber_pre_key = validateKyberPreKey(body.kyber_pre_key, identity_key);
  return {
    identity_key, registration_id: rid,
    signed_pre_key: { id: spk.id, public_key: spk.public_key, signature: spk.signature }, pre_keys,
    kyber_pre_key,
  };
}

const nonEmpty = (s, max = 200) => typeof s === 'string' && s.trim().length > 0 && s.length <= max;
/** device ids travel as strings; integers are accepted and converted */
const deviceIdOf = (d) => (Number.isInteger(d) && d >= 0 ? String(d) : nonEmpty(d, 64) ? d : null);
const deviceKey = (userId, deviceId) => `${userId}:${deviceId}`;

/** Socket body check shared by both directions (docs/contract.md §4). Returns true when acceptable. */
function validCipherBody(d) {
  return d && typeof d === 'object' && !Array.isArray(d)
    && typeof d.type === 'string' && d.type.length <= 200
    && typeof d.encrypted_message === 'string' && d.encrypted_message.length > 0
    && d.encrypted_message.length <= MAX_ENCRYPTED_MESSAGE && b64(d.encrypted_message) !== null
    // message_type 0 (plaintext) is never relayed; a missing one is left for the receiver to parse
    && (d.message_type === undefined || d.message_type === 1 || d.message_type === 2 || d.message_type === 3);
}

// ---------- the relay ----------

export async function startRelay({
  port = 0, host = '127.0.0.1', meetingId = 'demo-meeting', invitationToken = 'demo-invite',
  livekit = { apiKey: 'devkey', apiSecret: 'devsecret-devsecret-devsecret-123', url: 'ws://127.0.0.1:7880' },
  autoAdmit = true, participantToken = 'participant-secret',
  rateLimit = { max: 3, windowMs: 60_000 }, // docs/contract.md §3: 3 keybundle fetches/min per session:user:device
  mitm = null, // { userId, deviceId, log? }: attack that participant device (see the header)
} = {}) {
  /** @type {Map<string, any>} session_id -> guest record (public keys only) */
  const guests = new Map();
  /** @type {Map<string, any>} "user:device" -> participant device keys */
  const participantKeys = new Map();
  /** @type {Map<string, {user_id:string, device_id:string, display_name:string, socket:any}>}
   *  connected participant devices; Map insertion order = join order */
  const connected = new Map();
  /** @type {Map<string, any[]>} guest messages held until the guest is admitted */
  const pending = new Map();
  /** @type {Map<string, number[]>} rate-limit key -> fetch times (ms) inside the window */
  const fetchTimes = new Map();

  const state = {
    registrations: [], // every raw body POSTed to register, accepted or not
    guests,
    participantKeys,
    prekeyConsumption: { participants: new Map(), guests: new Map() },
    relayedToParticipants: [], // {to:{user_id, device_id}, event, body}
    relayedToGuests: [], // {to: session_id, event, body}
    dropped: 0, // invalid socket bodies
    undeliverable: 0, // valid bodies whose target is not connected / not admitted
    admit, isAdmitted: (sid) => guests.get(sid)?.admitted === true,
    // Fault injection for tests: "user:device" -> 'error500' | 'hang' | 'wrong-device'.
    faults: { keybundle: new Map() },
    participants: () => participantList(),
  };
  const bump = (map, k) => map.set(k, (map.get(k) ?? 0) + 1);

  // ----- HTTP -----
  const app = express();
  app.disable('x-powered-by');
  app.use((req, res, next) => {
    // Browsers on other local ports call the relay: allow any origin and our custom headers.
    res.set('Access-Control-Allow-Origin', '*');
    res.set('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
    res.set('Access-Control-Allow-Headers', 'Content-Type, X-Guest-Session, Authorization');
    res.set('Access-Control-Expose-Headers', 'Retry-After'); // so pages can read it on 429
    if (req.method === 'OPTIONS') return res.status(204).end();
    next();
  });
  app.use(express.json({ limit: '256kb' }));

  const participantAuthorized = (req) => req.get('authorization') === `Bearer ${participantToken}`;

  app.post('/api/meetings/external/register', (req, res) => {
    state.registrations.push(req.body);
    const body = req.body;
    if (!body || typeof body !== 'object' || Array.isArray(body)) bad('body must be a JSON object');
    const priv = findPrivateKeyName(body);
    if (priv) bad(`private key material is never accepted (field ${priv})`);
    onlyFields(body, ['invitation_token', 'meeting_id', 'display_name', 'identity_key_public',
      'registration_id', 'signed_pre_key', 'pre_keys', 'kyber_pre_key'], 'body');
    if (typeof body.invitation_token !== 'string') bad('invitation_token must be a string');
    if (body.invitation_token !== invitationToken) throw new HttpError(403, 'invalid invitation token');
    if (typeof body.meeting_id !== 'string') bad('meeting_id must be a string');
    if (body.meeting_id !== meetingId) throw new HttpError(404, 'meeting not found');
    if (!nonEmpty(body.display_name)) bad('display_name must be a non-empty string (max 200)');
    const keys = validateKeys(body, 'identity_key_public');

    const session_id = crypto.randomUUID();
    guests.set(session_id, {
      session_id, meeting_id: meetingId, display_name: body.display_name, ...keys,
      admitted: false, registered_at: Date.now(),
    });
    if (autoAdmit) admit(session_id);
    res.json({ session_id, meeting_id: meetingId, display_name: body.display_name });
  });

  app.get('/api/meetings/external/:meetingId/participants', (req, res) => {
    const guest = guests.get(req.get('x-guest-session') ?? '');
    if (!guest) throw new HttpError(403, 'missing or unknown X-Guest-Session');
    if (req.params.meetingId !== meetingId) throw new HttpError(404, 'meeting not found');
    res.json(participantList());
  });

  app.get('/api/meetings/external/:sessionId/participant/:userId/:deviceId/keys', (req, res) => {
    const { sessionId, userId, deviceId } = req.params;
    if (!guests.has(sessionId)) throw new HttpError(404, 'unknown session');
    const key = deviceKey(userId, deviceId);
    const retryAfter = rateLimited(`${sessionId}:${key}`);
    if (retryAfter) {
      res.set('Retry-After', String(retryAfter));
      throw new HttpError(429, 'too many keybundle fetches');
    }
    const fault = state.faults.keybundle.get(key);
    if (fault === 'error500') throw new HttpError(500, 'injected fault');
    if (fault === 'hang') return; // never answers
    if (!connected.has(key)) throw new HttpError(403, 'target is not in the meeting');
    if (attack && key === attack.target) return res.json(attack.impostorBundle());
    const p = fault === 'wrong-device'
      ? [...participantKeys.values()].find((other) => deviceKey(other.user_id, other.device_id) !== key)
      : participantKeys.get(key);
    if (!p) throw new HttpError(404, 'participant has no keys');
    res.json(takeParticipantBundle(p));
  });

  /** A participant device's bundle as the keybundle endpoint serves it; uses up one one-time prekey. */
  function takeParticipantBundle(p) {
    const pre = p.pre_keys.shift() ?? null; // one-time prekeys are handed out once, then deleted
    if (pre) bump(state.prekeyConsumption.participants, deviceKey(p.user_id, p.device_id));
    return {
      user_id: p.user_id, device_id: p.device_id, identity_key: p.identity_key,
      registration_id: p.registration_id, signed_pre_key: { ...p.signed_pre_key }, pre_key: pre,
      kyber_pre_key: kyberOf(p),
    };
  }

  /** The stored Kyber prekey as bundles carry it: a copy (last resort, never used up), or null. */
  function kyberOf(rec) { return rec.kyber_pre_key ? { ...rec.kyber_pre_key } : null; }

  app.get('/api/meetings/:meetingId/external/:sessionId/keys', (req, res) => {
    if (!participantAuthorized(req)) throw new HttpError(403, 'participant authorization required');
    const g = guests.get(req.params.sessionId);
    if (req.params.meetingId !== meetingId || !g) throw new HttpError(404, 'unknown meeting or session');
    const pre = g.pre_keys.shift() ?? null; // exhausted -> bundle with pre_key null (docs/contract.md §3)
    if (pre) bump(state.prekeyConsumption.guests, g.session_id);
    res.json({
      session_id: g.session_id, identity_key: g.identity_key, registration_id: g.registration_id,
      signed_pre_key: { ...g.signed_pre_key }, pre_key: pre, kyber_pre_key: kyberOf(g),
    });
  });

  app.post('/api/livekit/external-token', async (req, res) => {
    const { sessionId, meetingId: mid } = req.body ?? {};
    if (typeof sessionId !== 'string' || typeof mid !== 'string') bad('sessionId and meetingId must be strings');
    const g = guests.get(sessionId);
    if (!g || mid !== meetingId) throw new HttpError(404, 'unknown session or meeting');
    if (!g.admitted) throw new HttpError(403, 'not admitted yet');
    const identity = `guest_${sessionId}`;
    const at = new AccessToken(livekit.apiKey, livekit.apiSecret, { identity, name: g.display_name, ttl: '2h' });
    at.addGrant({ roomJoin: true, room: meetingId, canPublish: true, canSubscribe: true, canPublishData: true });
    res.json({ token: await at.toJwt(), url: livekit.url, roomName: meetingId, identity });
  });

  // Relay's own: participant device key upload (the real server has its own, authenticated).
  app.post('/api/participants/register', (req, res) => {
    const body = req.body;
    if (!body || typeof body !== 'object' || Array.isArray(body)) bad('body must be a JSON object');
    // "auth" is the participant token, not key material; check every other name for private keys.
    const { auth, ...rest } = body;
    const priv = findPrivateKeyName(rest);
    if (priv) bad(`private key material is never accepted (field ${priv})`);
    if (auth !== participantToken) throw new HttpError(403, 'invalid participant token');
    onlyFields(rest, ['user_id', 'device_id', 'display_name', 'identity_key', 'registration_id',
      'signed_pre_key', 'pre_keys', 'kyber_pre_key'], 'body');
    if (!nonEmpty(rest.user_id, 128)) bad('user_id must be a non-empty string');
    const device_id = deviceIdOf(rest.device_id);
    if (!device_id) bad('device_id must be a non-empty string or integer');
    const keys = validateKeys(rest, 'identity_key');
    const display_name = nonEmpty(rest.display_name) ? rest.display_name : rest.user_id;
    participantKeys.set(deviceKey(rest.user_id, device_id), { user_id: rest.user_id, device_id, display_name, ...keys });
    const live = connected.get(deviceKey(rest.user_id, device_id));
    if (live) live.display_name = display_name;
    res.json({ user_id: rest.user_id, device_id });
  });

  app.post('/api/relay/admit/:sessionId', (req, res) => {
    if (!participantAuthorized(req)) throw new HttpError(403, 'participant authorization required');
    if (!admit(req.params.sessionId)) throw new HttpError(404, 'unknown session');
    res.json({ session_id: req.params.sessionId, admitted: true });
  });

  app.use((req, res) => res.status(404).json({ error: 'not found' }));
  // Express 5 forwards thrown errors (also from async handlers) here.
  // eslint-disable-next-line no-unused-vars
  app.use((err, req, res, next) => {
    const status = err instanceof HttpError ? err.status : err.type === 'entity.parse.failed' ? 400
      : err.status >= 400 && err.status < 500 ? err.status : 500;
    if (status === 500) console.error('[relay]', err);
    res.status(status).json({ error: status === 500 ? 'internal error' : err.message });
  });

  /** Sliding window: returns 0 when allowed (and records the fetch), else seconds to wait. */
  function rateLimited(key) {
    const now = Date.now();
    const times = (fetchTimes.get(key) ?? []).filter((t) => now - t < rateLimit.windowMs);
    if (times.length >= rateLimit.max) {
      fetchTimes.set(key, times);
      return Math.max(1, Math.ceil((times[0] + rateLimit.windowMs - now) / 1000));
    }
    times.push(now);
    fetchTimes.set(key, times);
    return 0;
  }

  function participantList() {
    return [...connected.values()].map(({ user_id, device_id, display_name }) => ({ user_id, device_id, display_name }));
  }

  // ----- Socket.IO -----
  const server = http.createServer(app);
  /** Every TCP connection, so that `restart()` can drop them all (WebSockets included). */
  const rawSockets = new Set();
  server.on('connection', (socket) => {
    rawSockets.add(socket);
    socket.on('close', () => rawSockets.delete(socket));
  });
  const io = new Server(server, { cors: { origin: '*' }, maxHttpBufferSize: 1e6 });
  const external = io.of('/external');

  /** Marks a guest admitted and releases the messages it sent while waiting. */
  function admit(sessionId) {
    const g = guests.get(sessionId);
    if (!g) return false;
    g.admitted = true;
    // Tell the guest (docs/contract.md §4): it starts asking for the key after this.
    external.to(`guest:${sessionId}`).emit('guest:admitted', { session_id: sessionId });
    const queued = pending.get(sessionId) ?? [];
    pending.delete(sessionId);
    for (const m of queued) deliverToParticipant(sessionId, m);
    return true;
  }

  function deliverToParticipant(sessionId, d) {
    const to = deviceKey(d.participant_user_id, d.participant_device_id);
    // Guests' messages to the attacked device go to the impostor, never to the device.
    if (attack && to === attack.target && !attack.isImpostorGuest(sessionId)) return attack.fromGuest(sessionId, d);
    const target = connected.get(to);
    if (!target) { state.undeliverable++; return; }
    const body = {
      guest_session_id: sessionId, // from the socket's auth, never from the body
      type: d.type, encrypted_message: d.encrypted_message, message_type: d.message_type,
      timestamp: Date.now(),
    };
    target.socket.emit('guest:signal_message', body);
    state.relayedToParticipants.push({ to: { user_id: target.user_id, device_id: target.device_id }, event: 'guest:signal_message', body });
  }

  external.use((socket, next) => {
    const sid = socket.handshake.auth?.sessionId;
    if (typeof sid !== 'string' || !guests.has(sid)) return next(new Error('unknown guest session'));
    socket.data.sessionId = sid;
    socket.join(`guest:${sid}`); // a guest may have more than one socket (reconnects)
    next();
  });

  external.on('connection', (socket) => {
    const sid = socket.data.sessionId;
    // An admitted guest learns it on every connection (it may have missed the first event).
    if (state.isAdmitted(sid)) socket.emit('guest:admitted', { session_id: sid });
    socket.on('guest:admission_query', () => {
      if (state.isAdmitted(sid)) socket.emit('guest:admitted', { session_id: sid });
    });
    socket.on('guest:signal_message', (d) => {
      const device = deviceIdOf(d?.participant_device_id);
      if (!validCipherBody(d) || !nonEmpty(d.participant_user_id, 128) || !device) { state.dropped++; return; }
      const m = {
        participant_user_id: d.participant_user_id, participant_device_id: device,
        type: d.type, encrypted_message: d.encrypted_message, message_type: d.message_type,
      };
      if (state.isAdmitted(sid)) return deliverToParticipant(sid, m);
      // Hold key requests back until the host admits the guest.
      const q = pending.get(sid) ?? [];
      if (q.length >= MAX_QUEUED_PER_GUEST) { state.undeliverable++; return; }
      q.push(m);
      pending.set(sid, q);
    });
  });

  io.use((socket, next) => {
    const { token, userId } = socket.handshake.auth ?? {};
    const device = deviceIdOf(socket.handshake.auth?.deviceId);
    if (token !== participantToken) return next(new Error('invalid participant token'));
    if (!nonEmpty(userId, 128) || !device) return next(new Error('userId and deviceId required'));
    socket.data.userId = userId;
    socket.data.deviceId = device;
    next();
  });

  io.on('connection', (socket) => {
    const { userId, deviceId } = socket.data;
    const key = deviceKey(userId, deviceId);
    const existing = connected.get(key);
    const display_name = participantKeys.get(key)?.display_name ?? userId;
    // A reconnecting device keeps its place in the join order; the newest socket receives.
    if (existing) existing.socket = socket;
    else connected.set(key, { user_id: userId, device_id: deviceId, display_name, socket });

    socket.on('disconnect', () => {
      if (connected.get(key)?.socket === socket) connected.delete(key);
    });

    socket.on('participant:signal_message_to_guest', (d) => {
      if (!validCipherBody(d) || typeof d.guest_session_id !== 'string') { state.dropped++; return; }
      const g = guests.get(d.guest_session_id);
      if (!g || !g.admitted) { state.undeliverable++; return; }
      // Answers to the impostor guest have no socket to go to: the impostor reads them.
      if (attack && attack.isImpostorGuest(g.session_id)) {
        if (key === attack.target) attack.fromDevice(g.session_id, d);
        else state.undeliverable++;
        return;
      }
      const body = {
        participant_user_id: userId, participant_device_id: deviceId, // from auth, never the body
        type: d.type, encrypted_message: d.encrypted_message, message_type: d.message_type,
        timestamp: Date.now(),
      };
      external.to(`guest:${g.session_id}`).emit('participant:signal_message', body);
      state.relayedToGuests.push({ to: g.session_id, event: 'participant:signal_message', body });
    });

    socket.on('host:admit_guest', (d, ack) => {
      const ok = typeof d?.session_id === 'string' && admit(d.session_id);
      if (!ok) state.dropped++;
      if (typeof ack === 'function') ack({ ok });
    });
  });

  // ----- MITM mode -----
  const attack = mitm ? await startAttack(mitm) : null;

  async function startAttack(o) {
    const device = deviceIdOf(o?.deviceId);
    if (!nonEmpty(o?.userId, 128) || !device) throw new Error('mitm needs { userId, deviceId }');
    const target = deviceKey(o.userId, device);
    const say = (...a) => { if (o.log) console.log(`[relay mitm ${target}]`, ...a); };
    const IMPOSTOR_PREKEYS = 200;
    // The participant identity guests are given, and the guest identity the device is given.
    const participant = await createPeer('official', { oneTimePreKeyCount: IMPOSTOR_PREKEYS });
    const guest = await createPeer('official', { oneTimePreKeyCount: IMPOSTOR_PREKEYS });
    const PREFIX = 'mitm-';
    /** impostor's request id -> { guestSid, upSid, guestRequestId, upNonce, deviceNonce, forgedNonce, answered } */
    const exchanges = new Map();
    /** "<guest sid> <guest request id>" -> the same record */
    const byGuestRequest = new Map();
    const forged = new Set(); // guest sessions that hold the key from the impostor (update targets)
    const upSids = new Set(); // the impostor guest sessions
    /** next bundle of `peer`, without a one-time prekey once they are used up */
    const nextBundle = (peer) => {
      try { return peer.bundle(); } catch { return peer.bundle({ withOneTimePreKey: false }); }
    };
    const m = {
      target,
      requestsIntercepted: 0, answersForged: 0, revealsForwarded: 0, updatesForwarded: 0,
      decryptFailures: 0, dropped: 0,
      impostorIdentityKey: participant.identityKey(),
      impostorGuestIdentityKey: guest.identityKey(),
      impostorGuests: new Map(), // guest session id -> impostor guest session id
      /** guest session id -> { guest: code the guest sees, participant: code the device sees } */
      codes: new Map(),
    };
    state.mitm = m;
    const text = (o) => new TextEncoder().encode(JSON.stringify(o));
    const parse = (u8) => JSON.parse(new TextDecoder().decode(u8));
    const b64of = (u8) => Buffer.from(u8).toString('base64');
    const [userId, deviceId] = [o.userId, device];

    // Signal state must not be changed by two handlers at once: one queue for all of it.
    let chain = Promise.resolve();
    const queue = (fn) => {
      chain = chain.then(fn).catch((e) => { m.dropped++; say('error:', e.message); });
    };

    /** Decrypts with `peer`; a missing message_type is tried both ways, as receivers do. */
    async function open(peer, address, d) {
      const body = b64(d.encrypted_message);
      const types = d.message_type === undefined ? [3, 2] : [d.message_type === 1 ? 2 : d.message_type];
      for (const type of types) {
        try { return parse(await peer.decrypt(address, { type, body })); } catch { /* next type */ }
      }
      m.decryptFailures++;
      return null;
    }

    /** The impostor guest for a real guest: an admitted entry in the guest table, public keys only. */
    function impostorGuestFor(guestSid) {
      let upSid = m.impostorGuests.get(guestSid);
      if (upSid) return upSid;
      upSid = `${PREFIX}${guestSid}`;
      const base = guest.bundle({ withOneTimePreKey: false });
      const pre_keys = [];
      for (let i = 0; i < 2; i++) { // for devices that answer on a session of their own
        const { preKey } = nextBundle(guest);
        if (preKey) pre_keys.push({ id: preKey.id, public_key: b64of(preKey.publicKey) });
      }
      guests.set(upSid, {
        session_id: upSid, meeting_id: meetingId, display_name: guests.get(guestSid)?.display_name ?? 'Guest',
        identity_key: b64of(base.identityKey), registration_id: base.registrationId,
        signed_pre_key: { id: base.signedPreKey.id, public_key: b64of(base.signedPreKey.publicKey), signature: b64of(base.signedPreKey.signature) },
        pre_keys, kyber_pre_key: null, admitted: true, registered_at: Date.now(),
      });
      m.impostorGuests.set(guestSid, upSid);
      upSids.add(upSid);
      return upSid;
    }

    /** Encrypts as the impostor guest and sends through the normal path to participants. */
    async function sendUp(upSid, plaintext) {
      const c = await guest.encrypt(upSid, text(plaintext));
      deliverToParticipant(upSid, {
        participant_user_id: userId, participant_device_id: deviceId,
        type: plaintext.type, encrypted_message: b64of(c.body), message_type: c.type,
      });
    }

    /** Encrypts as the impostor participant and emits to the real guest's socket(s). */
    async function sendDown(guestSid, plaintext) {
      const c = await participant.encrypt(guestSid, text(plaintext));
      const body = {
        participant_user_id: userId, participant_device_id: deviceId,
        type: plaintext.type, encrypted_message: b64of(c.body), message_type: c.type, timestamp: Date.now(),
      };
      external.to(`guest:${guestSid}`).emit('participant:signal_message', body);
      state.relayedToGuests.push({ to: guestSid, event: 'participant:signal_message', body });
    }

    async function onGuestRequest(guestSid, req) {
      m.requestsIntercepted++;
      const upSid = impostorGuestFor(guestSid);
      if (!(await guest.hasSession(upSid))) {
        const p = participantKeys.get(target);
        if (!p) { m.dropped++; say('the device has no keys'); return; }
        const j = takeParticipantBundle(p);
        await guest.processBundle(upSid, {
          registrationId: j.registration_id, deviceId: 1, identityKey: b64(j.identity_key),
          signedPreKey: { id: j.signed_pre_key.id, publicKey: b64(j.signed_pre_key.public_key), signature: b64(j.signed_pre_key.signature) },
          preKey: j.pre_key ? { id: j.pre_key.id, publicKey: b64(j.pre_key.public_key) } : null,
        });
      }
      const upNonce = new Uint8Array(crypto.randomBytes(NONCE_LEN));
      const up = {
        type: 'guest:meeting_e2ee_key_request', meeting_id: meetingId, guest_session_id: upSid,
        request_id: crypto.randomBytes(16).toString('base64url'), timestamp: Date.now(),
        sas_commitment: b64of(commitment(upNonce)),
      };
      const rec = {
        guestSid, upSid, guestRequestId: req.request_id, upRequestId: up.request_id,
        upNonce, forgedNonce: null, deviceNonce: null, answered: false,
      };
      exchanges.set(up.request_id, rec);
      byGuestRequest.set(`${guestSid} ${req.request_id}`, rec);
      await sendUp(upSid, up);
      say(`request ${req.request_id} from guest ${guestSid} -> ${up.request_id} as ${upSid}`);
    }

    async function onGuestReveal(guestSid, r) {
      const rec = typeof r.request_id === 'string' ? byGuestRequest.get(`${guestSid} ${r.request_id}`) : undefined;
      if (!rec || !rec.answered) { m.dropped++; return; }
      byGuestRequest.delete(`${guestSid} ${r.request_id}`);
      await sendUp(rec.upSid, {
        type: 'guest:meeting_e2ee_sas_reveal', meeting_id: meetingId, request_id: rec.upRequestId, sas_nonce: b64of(rec.upNonce),
      });
      m.revealsForwarded++;
      // Both codes, as each side computes them, to show that they differ.
      const guestNonce = b64(r.sas_nonce);
      const deviceIdentity = guest.remoteIdentity(rec.upSid);
      const guestIdentity = participant.remoteIdentity(guestSid);
      if (guestNonce?.length === NONCE_LEN && rec.deviceNonce && deviceIdentity && guestIdentity) {
        const side = (g, gIdentity, gNonce, pIdentity, pNonce) => ({
          ...shortCode({
            guestNonce: gNonce, participantNonce: pNonce, guestIdentity: gIdentity, participantIdentity: pIdentity,
            guestId: `guest:${g}`, participantId: target, meetingId,
          }),
          safetyNumber: fingerprint(target, pIdentity, `guest:${g}`, gIdentity),
        });
        const codes = {
          guest: side(guestSid, guestIdentity, new Uint8Array(guestNonce), participant.identityKey(), rec.forgedNonce),
          participant: side(rec.upSid, guest.identityKey(), rec.upNonce, deviceIdentity, rec.deviceNonce),
        };
        m.codes.set(guestSid, codes);
        say(`guest ${guestSid} sees ${codes.guest.digits} ${emojiText(codes.guest.emoji)} / ${codes.guest.safetyNumber}`);
        say(`${target} sees ${codes.participant.digits} ${emojiText(codes.participant.emoji)} / ${codes.participant.safetyNumber}`);
      }
    }

    async function onDeviceMessage(upSid, p) {
      if (p?.meeting_id !== meetingId) { m.dropped++; return; }
      if (p.type === 'participant:meeting_e2ee_key_response') {
        const rec = typeof p.request_id === 'string' ? exchanges.get(p.request_id) : undefined;
        if (!rec || rec.upSid !== upSid || rec.answered) { m.dropped++; return; }
        rec.answered = true;
        exchanges.delete(p.request_id);
        rec.deviceNonce = b64(p.sas_nonce)?.length === NONCE_LEN ? new Uint8Array(b64(p.sas_nonce)) : null;
        rec.forgedNonce = new Uint8Array(crypto.randomBytes(NONCE_LEN));
        // The real key goes on, so key check values match; only the nonce is the impostor's.
        await sendDown(rec.guestSid, {
          type: 'participant:meeting_e2ee_key_response', meeting_id: meetingId, request_id: rec.guestRequestId,
          key: p.key, key_index: p.key_index ?? 0, timestamp: Date.now(), sas_nonce: b64of(rec.forgedNonce),
        });
        forged.add(rec.guestSid);
        m.answersForged++;
        say(`answered guest ${rec.guestSid} (${rec.guestRequestId}) with the device's key`);
      } else if (p.type === 'participant:meeting_e2ee_key_update') {
        const guestSid = upSid.slice(PREFIX.length);
        if (!guestSid || !forged.has(guestSid)) { m.dropped++; return; }
        await sendDown(guestSid, {
          type: p.type, meeting_id: meetingId, key: p.key, key_index: p.key_index ?? 0, timestamp: Date.now(),
        });
        m.updatesForwarded++;
      } else {
        m.dropped++;
      }
    }

    return {
      target,
      isImpostorGuest: (sid) => upSids.has(sid),
      impostorBundle() {
        const b = nextBundle(participant);
        return {
          user_id: userId, device_id: deviceId, identity_key: b64of(b.identityKey), registration_id: b.registrationId,
          signed_pre_key: { id: b.signedPreKey.id, public_key: b64of(b.signedPreKey.publicKey), signature: b64of(b.signedPreKey.signature) },
          pre_key: b.preKey ? { id: b.preKey.id, public_key: b64of(b.preKey.publicKey) } : null,
          kyber_pre_key: null, // the impostor is a 0.72.1 peer: guests talk X3DH (v3) to it
        };
      },
      fromGuest(guestSid, d) {
        queue(async () => {
          const p = await open(participant, guestSid, d);
          if (!p) return;
          if (p.type === 'guest:meeting_e2ee_key_request' && p.meeting_id === meetingId
            && p.guest_session_id === guestSid && typeof p.request_id === 'string') return onGuestRequest(guestSid, p);
          if (p.type === 'guest:meeting_e2ee_sas_reveal' && p.meeting_id === meetingId) return onGuestReveal(guestSid, p);
          m.dropped++;
        });
      },
      fromDevice(upSid, d) {
        queue(async () => {
          const p = await open(guest, upSid, d);
          if (p) await onDeviceMessage(upSid, p);
        });
      },
    };
  }

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const actualPort = server.address().port;
  const urlHost = host.includes(':') ? `[${host}]` : host;

  return {
    url: `http://${urlHost}:${actualPort}`,
    port: actualPort,
    state,
    io,
    /**
     * A server restart as clients see it: every socket and HTTP connection drops and the
     * port refuses connections for `downtimeMs`. State survives, as a real server's
     * database would.
     */
    restart: async (downtimeMs = 500) => {
      const closed = new Promise((resolve) => server.close(resolve)); // stop accepting first
      io.disconnectSockets(true);
      for (const socket of rawSockets) socket.destroy(); // HTTP and upgraded WebSocket alike
      await closed;
      await new Promise((resolve) => setTimeout(resolve, downtimeMs));
      await new Promise((resolve) => server.listen(actualPort, host, resolve));
    },
    close: () => new Promise((resolve) => {
      io.disconnectSockets(true);
      server.closeAllConnections?.();
      io.close(() => resolve());
    }),
  };
}

// ---------- CLI ----------
function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) continue;
    const name = a.slice(2);
    if (name.startsWith('no-')) out[name.slice(3)] = false;
    else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) out[name] = argv[++i];
    else out[name] = true;
  }
  return out;
}

/** "--mitm user:device" (the device id is after the last colon) */
function parseMitm(v) {
  if (v === undefined || v === false) return null;
  const i = typeof v === 'string' ? v.lastIndexOf(':') : -1;
  if (i <= 0 || i === v.length - 1) {
    console.error('--mitm needs user:device');
    process.exit(2);
  }
  return { userId: v.slice(0, i), deviceId: v.slice(i + 1), log: true };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const a = parseArgs(process.argv.slice(2));
  const defaults = { apiKey: 'devkey', apiSecret: 'devsecret-devsecret-devsecret-123', url: 'ws://127.0.0.1:7880' };
  const relay = await startRelay({
    port: a.port ? Number(a.port) : 8080,
    host: a.host ?? '127.0.0.1',
    meetingId: a.meeting ?? 'demo-meeting',
    invitationToken: a.invite ?? 'demo-invite',
    participantToken: a['participant-token'] ?? 'participant-secret',
    autoAdmit: a['auto-admit'] !== false,
    livekit: {
      apiKey: a['livekit-key'] ?? defaults.apiKey,
      apiSecret: a['livekit-secret'] ?? defaults.apiSecret,
      url: a['livekit-url'] ?? defaults.url,
    },
    mitm: parseMitm(a.mitm),
  });
  console.log(relay.url);
  if (relay.state.mitm) {
    console.log(`MITM on ${relay.state.mitm.target}: impostor identity ${Buffer.from(relay.state.mitm.impostorIdentityKey).toString('base64')}`);
  }
  const stop = () => relay.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
