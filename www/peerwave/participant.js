// A PeerWave meeting participant device, re-implementing the wire behaviour of PeerWave's Flutter
// participant at 8956afd (the Dart client cannot run here): see
//   client/lib/views/meeting_video_conference_view.dart  _setupGuestE2EEKeyRequestSocketListener
//   client/lib/services/signal/core/meeting/mixins/guest_session_mixin.dart  sendE2EEKeyToExternalGuest
//   client/lib/services/socket_service.dart  (web socket auth, reconnect)
// Faithful on purpose, defects included: it answers every guest:meeting_e2ee_key_request of its
// meeting (the server broadcasts them) without reading ciphertext or target, fetches the guest's
// bundle unauthenticated, and always answers on a fresh session (PreKeySignalMessage).
//
// Keys: prekey and signed-prekey ids start at 0, like the Dart stores. The public halves are
// seeded as this device's Client row, so PeerWave serves this device's real bundle to guests.
// Login is the web way: POST /client/login {clientid, email} (what PeerWave's own Flutter
// server panel calls; it has no other check) gives an express-session cookie, and the socket's
// `authenticate` event with no payload reads that cookie. Native HMAC login cannot work on a
// model-created DB (client_sessions has no device_id column).

import crypto from 'node:crypto';
import { io } from 'socket.io-client';
import { createPeer } from '../../interop/peers.js';
import { clientIp } from './server.js';

/**
 * The plaintext floor (bench/time-to-key.js only, opt-in with `plaintextFloor`): a
 * guest:meeting_e2ee_key_request with this messageType whose "ciphertext" is base64 of
 * `{request_id}` in JSON is answered at once with participant:meeting_e2ee_key_response, same
 * messageType, whose "ciphertext" is base64 of the answer plaintext as PeerWave's participants
 * write it (`{meetingId, encryptedKey, timestamp}`): the key asked for and sent in the clear
 * through PeerWave's server, what the Signal exchange replaces. No Signal operation, no bundle.
 */
export const PLAINTEXT_FLOOR_MESSAGE_TYPE = 0;

const b64 = (u8) => Buffer.from(u8).toString('base64');
const unb64 = (s) => new Uint8Array(Buffer.from(s, 'base64'));
const isInt = (x) => Number.isInteger(x);

/**
 * @param {{ server: Awaited<ReturnType<import('./server.js').startPeerWave>>, userId?: string,
 *   deviceId?: number, peer?: 'ts'|'official', mode?: 'reply'|'silent', meetingKey?: Uint8Array,
 *   displayName?: string, oneTimePreKeyCount?: number, decryptRequests?: boolean,
 *   rejoinOnReconnect?: boolean, plaintextFloor?: boolean, log?: boolean }} o
 *   decryptRequests: also decrypt requests addressed to this device (the Flutter one never does).
 *   rejoinOnReconnect: re-send meeting:join-room after a reconnect. The Flutter client re-sends
 *   only `authenticate` + `clientReady` (socket_service.dart 'reconnect'), so after a PeerWave
 *   restart it is no longer in room meeting:<id> until the meeting view is opened again; the
 *   default (false) keeps that. joinRoom() re-enters by hand.
 *   plaintextFloor: also answer the benchmark's plaintext requests addressed to this device (see
 *   PLAINTEXT_FLOOR_MESSAGE_TYPE); they are not counted as key requests. Off by default: the
 *   Flutter participant has no such mode.
 */
export async function startParticipant({
  server, userId = crypto.randomUUID(), deviceId = 1, peer: kind = 'ts', mode = 'reply', meetingKey,
  displayName, oneTimePreKeyCount = 20, decryptRequests = false, rejoinOnReconnect = false, plaintextFloor = false,
  log = false,
}) {
  if (!['reply', 'silent'].includes(mode)) throw new Error(`unknown mode ${mode}`);
  // PeerWave's cookie auth checks session.deviceId for truthiness, so device 0 cannot log in.
  if (!isInt(deviceId) || deviceId < 1) throw new Error('deviceId must be an integer >= 1');
  const key = new Uint8Array(meetingKey ?? crypto.randomBytes(32));
  if (key.length !== 32) throw new Error('meetingKey must be 32 bytes');
  const say = (...a) => { if (log) console.error(`[participant ${userId.slice(0, 8)}:${deviceId}]`, ...a); };
  const ip = clientIp();

  // ---- Signal identity, ids from 0 like PeerWave's Dart stores; public halves seeded ----
  const p = await createPeer(kind, { oneTimePreKeyCount, firstPreKeyId: 0, signedPreKeyId: 0 });
  const base = p.bundle({ withOneTimePreKey: false });
  const preKeys = Array.from({ length: oneTimePreKeyCount }, () => p.bundle().preKey);
  const seeded = await server.seedDevice({
    userId, deviceId, displayName, identityKey: base.identityKey, registrationId: base.registrationId,
    signedPreKey: base.signedPreKey, preKeys,
  });

  // ---- web login: express-session cookie ----
  const r = await fetch(`${server.url}/client/login`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': ip },
    body: JSON.stringify({ clientid: seeded.clientId, email: seeded.email }),
  });
  const setCookie = r.headers.get('set-cookie') ?? '';
  if (!r.ok || !/connect\.sid=/.test(setCookie)) throw new Error(`/client/login: HTTP ${r.status} ${await r.text()}`);
  const cookie = setCookie.split(';')[0];

  const stats = {
    connects: 0, authFailures: 0, requests: 0, ignored: 0, answers: 0, bundle404: 0, errors: 0,
    decrypted: 0, decryptFailures: 0, plaintextFloorAnswers: 0,
  };
  /** every guest:meeting_e2ee_key_request payload seen, in order */
  const requests = [];
  /** plaintexts of requests this device decrypted (decryptRequests), with guest_session_id */
  const decryptedRequests = [];
  let chain = Promise.resolve(); // one Signal operation at a time on this device's stores
  let closed = false;
  let failStart = () => {}; // rejects startParticipant while the first connection is set up

  const socket = io(server.url, {
    transports: ['websocket'], extraHeaders: { cookie, 'x-forwarded-for': ip },
    reconnectionDelay: 200, reconnectionDelayMax: 1000,
  });
  const once = (ev) => new Promise((res) => socket.once(ev, res));

  // getSignedPreKeys is a barrier: PeerWave runs one socket's handlers in arrival order, so its
  // answer means an earlier join-room was processed. It also shows that PeerWave sees this
  // device's seeded signed prekey under the logged-in client.
  let inRoom = false;
  async function barrier() {
    socket.emit('getSignedPreKeys');
    const spks = await once('getSignedPreKeysResponse');
    return Array.isArray(spks) && spks.some((s) => s.signed_prekey_id === base.signedPreKey.id
      && s.signed_prekey_data === b64(base.signedPreKey.publicKey));
  }
  /** meeting:join-room, as MeetingVideoConferenceView does when it opens; resolves once processed */
  async function joinRoom() {
    socket.emit('meeting:join-room', { meeting_id: server.meetingId });
    const listed = await barrier();
    inRoom = true;
    return listed;
  }

  // Per connection: authenticate (cookie), clientReady; join the room on the first connection only
  // (unless rejoinOnReconnect).
  let readyResolve;
  let ready = new Promise((res) => { readyResolve = res; });
  socket.on('disconnect', () => {
    inRoom = false;
    ready = new Promise((res) => { readyResolve = res; });
  });
  socket.on('connect', async () => {
    stats.connects++;
    const first = stats.connects === 1;
    socket.emit('authenticate', null);
    const auth = await once('authenticated');
    if (!auth?.authenticated) {
      stats.authFailures++;
      say('authenticate refused', auth);
      if (first) failStart(new Error(`PeerWave refused socket authenticate: ${JSON.stringify(auth)}`));
      return;
    }
    socket.emit('clientReady', { timestamp: new Date().toISOString() });
    const listed = first || rejoinOnReconnect ? await joinRoom() : await barrier();
    if (!listed) {
      const e = new Error('PeerWave does not list this device\'s seeded signed prekey');
      if (first) return failStart(e);
      say(e.message);
    }
    say(`connected (#${stats.connects}), authenticated as ${auth.uuid}:${auth.deviceId}, in room: ${inRoom}`);
    readyResolve(auth);
  });

  socket.on('guest:meeting_e2ee_key_request', (data) => {
    if (plaintextFloor && data?.messageType === PLAINTEXT_FLOOR_MESSAGE_TYPE) return answerPlaintext(data);
    requests.push(data);
    stats.requests++;
    chain = chain.then(() => onRequest(data)).catch((e) => { stats.errors++; say('request handling failed:', e.message); });
  });

  async function onRequest(data) {
    const sid = data?.guest_session_id;
    const meetingId = data?.meeting_id;
    if (typeof sid !== 'string' || typeof meetingId !== 'string' || meetingId !== server.meetingId) {
      stats.ignored++;
      return;
    }
    if (decryptRequests) await tryDecrypt(data);
    if (mode === 'silent') return;

    const res = await fetch(`${server.url}/api/meetings/${encodeURIComponent(meetingId)}/external/${encodeURIComponent(sid)}/keys`,
      { headers: { cookie, 'x-forwarded-for': ip } });
    if (res.status === 404) {
      stats.bundle404++;
      say(`guest bundle 404 for ${sid}`);
      return;
    }
    if (!res.ok) throw new Error(`guest bundle: HTTP ${res.status}`);
    const b = await res.json();
    // Dart casts `keyId as int` and base64-decodes the rest; anything else throws and no answer goes out.
    const spk = b?.signed_pre_key;
    const otk = b?.one_time_pre_key ?? null;
    if (typeof b?.identity_key !== 'string' || !spk || !isInt(spk.keyId) || typeof spk.publicKey !== 'string'
      || typeof spk.signature !== 'string' || (otk && (!isInt(otk.keyId) || typeof otk.publicKey !== 'string'))) {
      throw new Error(`guest bundle not in the Dart participant's shape: ${JSON.stringify(b).slice(0, 200)}`);
    }
    const address = `guest:${sid}`;
    await p.processBundle(address, {
      registrationId: 0, deviceId: 0, // Dart: PreKeyBundle(0, 0, ...) for guests
      identityKey: unb64(b.identity_key),
      signedPreKey: { id: spk.keyId, publicKey: unb64(spk.publicKey), signature: unb64(spk.signature) },
      preKey: otk ? { id: otk.keyId, publicKey: unb64(otk.publicKey) } : null,
    });
    const plaintext = JSON.stringify({ meetingId, encryptedKey: b64(key), timestamp: Date.now() });
    const m = await p.encrypt(address, new TextEncoder().encode(plaintext));
    socket.emit('participant:meeting_e2ee_key_response', {
      guest_session_id: sid, meeting_id: meetingId, ciphertext: b64(m.body), messageType: m.type,
      ...(data.request_id != null ? { request_id: data.request_id } : {}),
    });
    stats.answers++;
    say(`answered ${sid} (type ${m.type})`);
  }

  /** The benchmark's plaintext floor: answered at once, outside the Signal chain. */
  function answerPlaintext(data) {
    if (data.participant_user_id !== userId || Number(data.participant_device_id) !== deviceId) return;
    if (typeof data.guest_session_id !== 'string' || data.meeting_id !== server.meetingId) return;
    let req;
    try { req = JSON.parse(Buffer.from(String(data.ciphertext), 'base64').toString()); } catch { return; }
    if (typeof req?.request_id !== 'string' || mode === 'silent') return;
    const answer = { meetingId: data.meeting_id, encryptedKey: b64(key), timestamp: Date.now() };
    socket.emit('participant:meeting_e2ee_key_response', {
      guest_session_id: data.guest_session_id, meeting_id: data.meeting_id,
      ciphertext: Buffer.from(JSON.stringify(answer)).toString('base64'),
      messageType: PLAINTEXT_FLOOR_MESSAGE_TYPE, request_id: req.request_id,
    });
    stats.plaintextFloorAnswers++;
  }

  async function tryDecrypt(data) {
    if (data.participant_user_id !== userId || Number(data.participant_device_id) !== deviceId) return;
    try {
      const pt = await p.decrypt(`guest-request:${data.guest_session_id}`,
        { type: data.messageType, body: unb64(String(data.ciphertext)) });
      decryptedRequests.push({ guest_session_id: data.guest_session_id, plaintext: JSON.parse(new TextDecoder().decode(pt)) });
      stats.decrypted++;
    } catch (e) {
      stats.decryptFailures++;
      say('request decrypt failed:', e.message);
    }
  }

  try {
    await new Promise((res, rej) => {
      failStart = rej;
      socket.once('connect_error', rej);
      setTimeout(() => rej(new Error('participant: no authenticated socket within 15 s')), 15000).unref();
      ready.then(res);
    });
  } catch (e) {
    socket.close();
    throw e;
  }

  return {
    userId, deviceId, clientId: seeded.clientId, email: seeded.email, kind, mode,
    livekitIdentity: `${userId}:${deviceId}`,
    /** this device's 33-byte serialized identity public key (as seeded in Clients.public_key) */
    identityKey: p.identityKey(),
    registrationId: base.registrationId,
    meetingKey: key,
    peer: p, socket, stats, requests, decryptedRequests,
    /** resolves when the current connection is authenticated (and in the room if it joined) */
    get ready() { return ready; },
    joinRoom,
    /** whether this connection joined room meeting:<id> */
    get inRoom() { return inRoom; },
    /** waits until all queued requests are handled */
    idle: () => chain,
    async close() {
      if (closed) return;
      closed = true;
      socket.close();
      await chain;
    },
  };
}
