// Participant bot: a meeting participant device that answers guests' Signal-encrypted key requests
// (docs/contract.md §4–§5) with official libsignal (interop/peers.js). It talks to
// the reference relay (www/relay/relay.js) and uses the relay's own participant endpoints:
// POST /api/participants/register and main-namespace auth { token, userId, deviceId }.
//
// Modes: reply    answer on the session the guest's request established (SignalMessage, type 2)
//        initiate fetch the guest's bundle and start a fresh session (PreKeySignalMessage, type 3)
//        silent   decrypt, never answer (guest timeout paths)
//        rotate   answer like reply, then after rotateAfterMs send participant:meeting_e2ee_key_update
//
// Peers (`peer` / --peer): official  libsignal 0.72.1, Signal v3 (X3DH); no Kyber prekey
//                          ts        the TypeScript port (libsignal-protocol-typescript 0.0.16), v3
//                          current   libsignal 0.103.0, Signal v4 only (PQXDH + SPQR): it uploads a
//                                    signed Kyber prekey, so guests start v4 sessions with it; it
//                                    refuses v3 PreKey messages, and in initiate mode it needs the
//                                    guest's bundle to carry a Kyber prekey
//
// Every answer carries a fresh sas_nonce (contract §10), and the code's inputs are frozen then
// (sas.js ParticipantCodes): the guest identity key of the session the request arrived on, the
// session id, this device's identity, the commitment. When the guest's reveal matches that
// commitment, the bot prints the short code and the safety number computed from those frozen
// inputs and keeps them in `codes` (guest session id -> { digits, emoji, safetyNumber }).
//
// One-time prekeys (docs/contract.md §3): the bot uploads `oneTimePreKeyCount` at start; while
// answering it checks the relay's count (at most once a second, from a timer) and, below
// `topUp.below`, uploads `topUp.batch` more (at most 100, at most once per `topUp.everyMs`).
// `topUp: null` never does.
//
// Restraint under a burst (docs/contract.md §3, "Busy participants"): messages are handled one at a time in arrival
// order, off the relay's path (the relay never waits for a bot). A request that waited longer
// than `staleAfterMs` in that queue is decrypted (the session must stay in step) but not
// answered: the guest's deadline runs out before an answer could reach it, and it has asked
// another participant by then. `stats.stale` counts them. When the work queued would take
// longer than `busyAfterMs` (from the average time a message took), the bot tells the relay it
// is busy for `BUSY_FOR_MS` (`participant:busy`): guests fetching its bundle meanwhile get 429
// with Retry-After and ask another participant at once, rather than waiting on a long queue.
// `stats.busy` counts the notices.
//
// Handling time (`handling()`): from a message's turn in that queue to its answer sent, per
// kind of answer (a key request's, the plaintext floor's), the latest HANDLING_KEPT of each:
// the participant's own part of a guest's wait, beside the socket hops (bench/time-to-key.js).
//
// CLI: node www/bot/bot.js --relay http://127.0.0.1:8080 --user alice --device 1 --mode reply
//      [--key <base64 32 bytes>] [--key-index 0] [--name Alice] [--meeting demo-meeting]
//      [--token participant-secret] [--rotate-after 3000] [--prekeys 50] [--peer official|current|ts]
//      [--top-up-below 20] [--top-up-every 30000 (ms; 0: never)] [--stale-after 4000]
//      [--busy-after 500] [--quiet]

import crypto from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { io } from 'socket.io-client';
import { createPeer, fingerprint } from '../../interop/peers.js';
import { NONCE_LEN, ParticipantCodes, emojiText } from './sas.js';

export const MODES = ['reply', 'initiate', 'silent', 'rotate'];
/** Peer kinds (interop/peers.js createPeer) a bot can run on. */
export const PEERS = ['official', 'current', 'ts'];
/** Top-up when the relay holds fewer than `below`: `batch` keys (≤ 100), at most once per `everyMs`. */
export const TOP_UP = { below: 20, batch: 100, everyMs: 30_000 };
/** How often the relay's count is checked after PreKey messages came in. */
const STOCK_CHECK_EVERY_MS = 1_000;
/** Queue wait after which a request is not answered: under the guest's 5 s, with room for the way back. */
export const STALE_AFTER_MS = 4_000;
/** Queued work (ms) past which the bot says it is busy. */
export const BUSY_AFTER_MS = 500;
/** How long each busy notice lasts (the relay's Retry-After: 1 s). */
export const BUSY_FOR_MS = 1_000;
/** Handling times kept per kind of answer (the latest). */
const HANDLING_KEPT = 200;
const b64 = (u8) => Buffer.from(u8).toString('base64');
const unb64 = (s) => new Uint8Array(Buffer.from(s, 'base64'));
const enc = (o) => new TextEncoder().encode(JSON.stringify(o));
/** Strict base64 of exactly `len` bytes, else null. */
const unb64Exact = (s, len) => {
  if (typeof s !== 'string') return null;
  const b = Buffer.from(s, 'base64');
  return b.length === len && b.toString('base64') === s ? new Uint8Array(b) : null;
};
const REQUEST_TYPE = 'guest:meeting_e2ee_key_request';
const REVEAL_TYPE = 'guest:meeting_e2ee_sas_reveal';
/** The legacy plaintext flow (benchmark floor only; see onLegacyRequest). */
export const LEGACY_REQUEST_TYPE = 'legacy:meeting_key_request';
export const LEGACY_RESPONSE_TYPE = 'legacy:meeting_key_response';

/** Contract §6 key check value: first 4 bytes of SHA-256("signal-guest key check" ‖ key), hex. */
export function keyCheckValue(key) {
  return crypto.createHash('sha256').update('signal-guest key check').update(key).digest().subarray(0, 4).toString('hex');
}

/** The latest HANDLING_KEPT durations (ms) of each kind; `summary()`: count, median and p90 of each. */
class HandlingTimes {
  byKind = new Map();
  record(kind, ms) {
    const xs = this.byKind.get(kind) ?? [];
    if (xs.push(ms) > HANDLING_KEPT) xs.shift();
    this.byKind.set(kind, xs);
  }
  summary() {
    const at = (sorted, q) => Number(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))].toFixed(2));
    return Object.fromEntries([...this.byKind].map(([kind, xs]) => {
      const sorted = [...xs].sort((a, b) => a - b);
      return [kind, { n: sorted.length, median: at(sorted, 0.5), p90: at(sorted, 0.9) }];
    }));
  }
}

/** relay JSON bundle -> peers.js Bundle */
function toPeerBundle(j) {
  return {
    registrationId: j.registration_id, deviceId: 1, identityKey: unb64(j.identity_key),
    signedPreKey: { id: j.signed_pre_key.id, publicKey: unb64(j.signed_pre_key.public_key), signature: unb64(j.signed_pre_key.signature) },
    preKey: j.pre_key ? { id: j.pre_key.id, publicKey: unb64(j.pre_key.public_key) } : null,
    ...(j.kyber_pre_key ? {
      kyberPreKey: { id: j.kyber_pre_key.id, publicKey: unb64(j.kyber_pre_key.public_key), signature: unb64(j.kyber_pre_key.signature) },
    } : {}),
  };
}

export async function startBot({
  relayUrl, userId, deviceId, displayName, mode = 'reply', meetingKey, keyIndex = 0,
  rotateAfterMs = 3000, participantToken = 'participant-secret', meetingId = 'demo-meeting', log = false,
  oneTimePreKeyCount = 50, peer: peerKind = 'official', topUp = TOP_UP, staleAfterMs = STALE_AFTER_MS,
  busyAfterMs = BUSY_AFTER_MS,
} = {}) {
  if (!MODES.includes(mode)) throw new Error(`unknown mode ${mode}`);
  if (!PEERS.includes(peerKind)) throw new Error(`unknown peer ${peerKind} (one of ${PEERS.join(', ')})`);
  let key = meetingKey ? new Uint8Array(meetingKey) : new Uint8Array(crypto.randomBytes(32));
  if (key.length !== 32) throw new Error('meetingKey must be 32 bytes');
  const device = String(deviceId);
  const say = (...a) => { if (log) console.log(`[bot ${userId}:${device}]`, ...a); };

  const stats = {
    envelopes: 0, requests: 0, answers: 0, updates: 0, decryptFailures: 0, rejected: 0, sendFailures: 0,
    reveals: 0, revealsRefused: 0, stale: 0, topUps: 0, topUpFailures: 0, busy: 0,
  };
  const handling = new HandlingTimes();
  const answered = new Set(); // guest session ids this bot has given the key to (rotation targets)
  /** guest session id -> { digits, emoji, safetyNumber }, from the latest accepted reveal */
  const codes = new Map();
  const participantId = `${userId}:${device}`;
  let rotateTimer = null;
  let closed = false;

  // Signal identity of this device; the private halves of its prekeys stay in the peer.
  const peer = await createPeer(peerKind, { oneTimePreKeyCount: 0 });
  const base = peer.bundle({ withOneTimePreKey: false });
  /** answered requests waiting for a reveal (at most 1000, the oldest go first), inputs frozen */
  const openCodes = new ParticipantCodes({
    participantId, participantIdentity: peer.identityKey(), meetingId,
    guestIdentity: (sessionId) => peer.remoteIdentity(sessionId), maxOpen: 1000,
  });
  const preKeyJson = (keys) => keys.map((k) => ({ id: k.id, public_key: b64(k.publicKey) }));
  const preKeys = preKeyJson(await peer.addOneTimePreKeys(oneTimePreKeyCount));
  const res = await fetch(`${relayUrl}/api/participants/register`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      auth: participantToken, user_id: userId, device_id: device, display_name: displayName ?? userId,
      identity_key: b64(base.identityKey), registration_id: base.registrationId,
      signed_pre_key: { id: base.signedPreKey.id, public_key: b64(base.signedPreKey.publicKey), signature: b64(base.signedPreKey.signature) },
      pre_keys: preKeys,
      // 'current' only: the signed Kyber prekey (last resort, the same in every bundle)
      ...(base.kyberPreKey ? {
        kyber_pre_key: { id: base.kyberPreKey.id, public_key: b64(base.kyberPreKey.publicKey), signature: b64(base.kyberPreKey.signature) },
      } : {}),
    }),
  });
  if (!res.ok) throw new Error(`participant register failed: ${res.status} ${await res.text()}`);

  const socket = io(relayUrl, {
    auth: { token: participantToken, userId, deviceId: device },
    transports: ['websocket'],
  });
  // A server-side disconnect (relay restart) does not reconnect by itself.
  socket.on('disconnect', (reason) => {
    if (reason === 'io server disconnect' && !closed) socket.connect();
  });
  await new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
  say(`connected, mode ${mode}, peer ${peerKind}, key check ${keyCheckValue(key)} index ${keyIndex}`);

  async function send(sessionId, plaintext) {
    const m = await peer.encrypt(sessionId, enc(plaintext));
    socket.emit('participant:signal_message_to_guest', {
      guest_session_id: sessionId, type: plaintext.type, encrypted_message: b64(m.body), message_type: m.type,
    });
    return m.type;
  }

  async function fetchGuestBundle(sessionId) {
    const r = await fetch(`${relayUrl}/api/meetings/${encodeURIComponent(meetingId)}/external/${encodeURIComponent(sessionId)}/keys`,
      { headers: { authorization: `Bearer ${participantToken}` } });
    if (!r.ok) throw new Error(`guest bundle fetch failed: ${r.status}`);
    return toPeerBundle(await r.json());
  }

  const preKeysPath = `${relayUrl}/api/participants/${encodeURIComponent(userId)}/${encodeURIComponent(device)}/prekeys`;
  const bearer = { authorization: `Bearer ${participantToken}` };
  let topUpRunning = false, lastTopUp = -Infinity, stockCheckDue = false;
  // The stock is checked from a timer, not while a request is handled: the check starts an HTTP
  // request (1–4 ms of this thread), which would delay the answer the guest is waiting for.
  const stockTimer = topUp && setInterval(() => {
    if (stockCheckDue && !topUpRunning) { stockCheckDue = false; maybeTopUp(); }
  }, STOCK_CHECK_EVERY_MS);
  stockTimer?.unref?.();
  /** Checks the relay's stock (from the timer above) and uploads a batch when it is low. */
  async function maybeTopUp() {
    if (!topUp || topUpRunning || closed || Date.now() - lastTopUp < topUp.everyMs) return;
    topUpRunning = true;
    try {
      const r = await fetch(preKeysPath, { headers: bearer });
      if (!r.ok) throw new Error(`prekey count: ${r.status}`);
      const { count } = await r.json();
      if (count >= topUp.below) return;
      const added = await peer.addOneTimePreKeys(Math.min(topUp.batch, 100));
      const up = await fetch(preKeysPath, {
        method: 'POST', headers: { ...bearer, 'content-type': 'application/json' },
        body: JSON.stringify({ pre_keys: preKeyJson(added) }),
      });
      if (!up.ok) throw new Error(`prekey top-up: ${up.status} ${await up.text()}`);
      lastTopUp = Date.now();
      stats.topUps++;
      say(`topped up ${added.length} one-time prekeys (${count} were left)`);
    } catch (e) {
      stats.topUpFailures++;
      say('top-up failed:', e.message);
    } finally {
      topUpRunning = false;
    }
  }

  /** Handles one guest message; resolves with the kind of answer it sent, if any. */
  async function onGuestMessage(d, arrived) {
    stats.envelopes++;
    const sessionId = d?.guest_session_id;
    if (d?.type === LEGACY_REQUEST_TYPE) return onLegacyRequest(sessionId, d);
    const type = d?.message_type === 1 ? 2 : d?.message_type;
    if (typeof sessionId !== 'string' || typeof d.encrypted_message !== 'string' || (type !== 2 && type !== 3)) {
      stats.rejected++;
      return;
    }
    let req;
    try {
      req = JSON.parse(new TextDecoder().decode(await peer.decrypt(sessionId, { type, body: unb64(d.encrypted_message) })));
    } catch (e) {
      stats.decryptFailures++;
      say('decrypt failed:', e.message);
      return;
    }
    // The type in the plaintext is authoritative; the envelope's is only a hint (docs/contract.md §4).
    if (req?.type === REVEAL_TYPE) return onReveal(sessionId, req);
    if (req?.type !== REQUEST_TYPE || req.meeting_id !== meetingId
      || req.guest_session_id !== sessionId || typeof req.request_id !== 'string') {
      stats.rejected++;
      say('rejected plaintext', req?.type);
      return;
    }
    stats.requests++;
    say(`key request ${req.request_id} from guest ${sessionId}`);
    if (type === 3) stockCheckDue = true; // a PreKey message may have used one up
    if (mode === 'silent') return;
    if (Date.now() - arrived > staleAfterMs) {
      stats.stale++;
      say(`not answering ${req.request_id}: it waited ${Date.now() - arrived} ms`);
      return;
    }

    // The code's inputs are frozen now, with the guest identity this request came under, before
    // anything (initiate mode's fetched bundle included) can change what is known for the session
    // id. A missing or malformed commitment still gets the key, but no reveal can match it: no code.
    const sasNonce = openCodes.answer({
      guestSessionId: sessionId, requestId: req.request_id, commitment: unb64Exact(req.sas_commitment, 32),
    });
    if (mode === 'initiate') await peer.processBundle(sessionId, await fetchGuestBundle(sessionId));
    const mt = await send(sessionId, {
      type: 'participant:meeting_e2ee_key_response', meeting_id: meetingId, request_id: req.request_id,
      key: b64(key), key_index: keyIndex, timestamp: Date.now(), sas_nonce: b64(sasNonce),
    });
    stats.answers++;
    answered.add(sessionId);
    say(`answered ${req.request_id} (message_type ${mt}, key check ${keyCheckValue(key)})`);

    if (mode === 'rotate' && !rotateTimer) rotateTimer = setTimeout(rotate, rotateAfterMs);
    return 'keyRequest';
  }

  /**
   * Contract §10 step 3: one reveal per answered request; a match yields the code, computed from
   * the inputs frozen when the request was answered (not from the identity known now).
   */
  function onReveal(sessionId, r) {
    const result = openCodes.reveal({
      guestSessionId: sessionId, requestId: r.request_id, meetingId: r.meeting_id,
      guestNonce: unb64Exact(r.sas_nonce, NONCE_LEN),
    });
    if (result.refusal) {
      stats.revealsRefused++;
      say(`refused reveal for ${r.request_id} from guest ${sessionId}: ${result.refusal}`);
      return;
    }
    const { code, inputs } = result;
    // The safety number (5,200 SHA-512 iterations a side) only when someone reads it: under a
    // burst it would cost more than the answer itself.
    let safetyNumber;
    codes.set(sessionId, {
      ...code,
      get safetyNumber() {
        safetyNumber ??= fingerprint(inputs.participantId, inputs.participantIdentity, inputs.guestId, inputs.guestIdentity, 5200, 2);
        return safetyNumber;
      },
    });
    stats.reveals++;
    say(`code with guest ${sessionId}: ${code.digits} ${emojiText(code.emoji)}`);
    if (log) say(`safety number with guest ${sessionId}: ${codes.get(sessionId).safetyNumber}`);
  }

  /**
   * The legacy flow, for the benchmark's floor only (bench/time-to-key.js): the key asked for
   * and sent in plaintext through the same relay and socket, which is what the Signal exchange
   * replaces. The envelope is an ordinary one (the relay checks shapes, not contents); its
   * "ciphertext" is base64 of the JSON.
   */
  function onLegacyRequest(sessionId, d) {
    let req;
    try { req = JSON.parse(Buffer.from(d.encrypted_message, 'base64').toString()); } catch { return; }
    if (typeof sessionId !== 'string' || typeof req?.request_id !== 'string' || mode === 'silent') return;
    stats.legacyRequests = (stats.legacyRequests ?? 0) + 1;
    const answer = { type: LEGACY_RESPONSE_TYPE, request_id: req.request_id, key: b64(key) };
    socket.emit('participant:signal_message_to_guest', {
      guest_session_id: sessionId, type: LEGACY_RESPONSE_TYPE, encrypted_message: Buffer.from(JSON.stringify(answer)).toString('base64'), message_type: 2,
    });
    return 'plaintext';
  }

  /** Rotation: new random key, index+1, sent to every guest that already holds the key. */
  async function rotate() {
    if (closed) return;
    key = new Uint8Array(crypto.randomBytes(32));
    keyIndex = (keyIndex + 1) % 256;
    say(`rotating to index ${keyIndex}, key check ${keyCheckValue(key)}`);
    for (const sid of answered) {
      try {
        await send(sid, { type: 'participant:meeting_e2ee_key_update', meeting_id: meetingId, key: b64(key), key_index: keyIndex, timestamp: Date.now() });
        stats.updates++;
      } catch (e) {
        stats.sendFailures++;
        say('update failed:', e.message);
      }
    }
  }

  // Handle messages one at a time: Signal session state must not be mutated concurrently.
  let chain = Promise.resolve();
  let queued = 0, averageMs = 1, busyUntil = 0;
  socket.on('guest:signal_message', (d) => {
    const arrived = Date.now();
    queued++;
    if (queued * averageMs > busyAfterMs && arrived >= busyUntil) {
      busyUntil = arrived + BUSY_FOR_MS;
      socket.emit('participant:busy', { for_ms: BUSY_FOR_MS });
      stats.busy++;
    }
    chain = chain.then(async () => {
      const started = performance.now();
      let answer;
      try {
        answer = await onGuestMessage(d, arrived);
      } finally {
        const ms = performance.now() - started;
        queued--;
        averageMs = 0.9 * averageMs + 0.1 * ms;
        if (answer) handling.record(answer, ms);
      }
    }).catch((e) => { stats.sendFailures++; say('error:', e.message); });
  });

  return {
    userId,
    deviceId: device,
    stats,
    peer,
    peerKind,
    codes,
    /** Handling times by kind of answer: { keyRequest: { n, median, p90 }, plaintext: … } (ms). */
    handling: () => handling.summary(),
    get meetingKey() { return key; },
    get keyIndex() { return keyIndex; },
    get mode() { return mode; },
    setMode(m) {
      if (!MODES.includes(m)) throw new Error(`unknown mode ${m}`);
      mode = m;
    },
    /** Rotates now (as `rotate` mode does after rotateAfterMs); resolves once the updates are sent. */
    rotateNow: () => { chain = chain.then(rotate); return chain; },
    /** resolves once the queued messages are handled */
    idle: () => chain,
    close: async () => {
      closed = true;
      clearTimeout(rotateTimer);
      clearInterval(stockTimer);
      socket.disconnect();
      await chain;
    },
  };
}

// ---------- CLI ----------
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const a = {};
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    if (!argv[i].startsWith('--')) continue;
    const name = argv[i].slice(2);
    a[name] = i + 1 < argv.length && !argv[i + 1].startsWith('--') ? argv[++i] : true;
  }
  const meetingKey = a.key ? Buffer.from(a.key, 'base64') : crypto.randomBytes(32);
  if (meetingKey.length !== 32) { console.error('--key must be base64 of 32 bytes'); process.exit(2); }
  if (a.peer !== undefined && !PEERS.includes(a.peer)) { console.error(`--peer must be one of ${PEERS.join(', ')}`); process.exit(2); }
  const bot = await startBot({
    relayUrl: a.relay ?? 'http://127.0.0.1:8080', userId: a.user ?? 'alice', deviceId: a.device ?? '1',
    displayName: a.name, mode: a.mode ?? 'reply', meetingKey, keyIndex: Number(a['key-index'] ?? 0),
    rotateAfterMs: Number(a['rotate-after'] ?? 3000), participantToken: a.token ?? 'participant-secret',
    meetingId: a.meeting ?? 'demo-meeting', oneTimePreKeyCount: Number(a.prekeys ?? 50), log: !a.quiet,
    peer: a.peer ?? 'official', staleAfterMs: Number(a['stale-after'] ?? STALE_AFTER_MS),
    busyAfterMs: Number(a['busy-after'] ?? BUSY_AFTER_MS),
    topUp: Number(a['top-up-every'] ?? TOP_UP.everyMs) === 0 ? null
      : { ...TOP_UP, below: Number(a['top-up-below'] ?? TOP_UP.below), everyMs: Number(a['top-up-every'] ?? TOP_UP.everyMs) },
  });
  // The key itself is never printed: the check value is what people compare.
  console.log(`bot ${bot.mode} (${bot.peerKind}) ready; meeting key check value: ${keyCheckValue(bot.meetingKey)}`);
  // What it did, on one line, once its queue is handled (load/run.sh sums these).
  const stop = () => bot.close().then(() => {
    console.log(`bot stats: ${JSON.stringify(bot.stats)}`);
    console.log(`bot handling: ${JSON.stringify(bot.handling())}`);
    process.exit(0);
  });
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
