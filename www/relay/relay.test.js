// End-to-end tests of the reference relay and the participant bot. The guest is implemented here
// with official libsignal (interop/peers.js) and socket.io-client on /external, so the whole
// contract path runs: register -> list -> bundle -> X3DH -> request -> response -> decrypt.
// Run: node --test www/relay/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { spawn } from 'node:child_process';
import { io } from 'socket.io-client';
import { createPeer, fingerprint } from '../../interop/peers.js';
import { startRelay } from './relay.js';
import { startBot, keyCheckValue } from '../bot/bot.js';
import { commitment, shortCode, emojiText } from '../bot/sas.js';

const MEETING = 'demo-meeting';
const INVITE = 'demo-invite';
const PTOKEN = 'participant-secret';
const LK_SECRET = 'devsecret-devsecret-devsecret-123';
const b64 = (u8) => Buffer.from(u8).toString('base64');
const unb64 = (s) => new Uint8Array(Buffer.from(s, 'base64'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Starts a relay and registers cleanup of everything created in the test with t.after. */
async function setup(t, relayOptions = {}) {
  const relay = await startRelay({ port: 0, ...relayOptions });
  const closers = [];
  t.after(async () => {
    for (const c of closers.reverse()) await c();
    await relay.close();
  });
  const track = (x, close = () => x.close()) => { closers.push(close); return x; };
  const bot = async (o) => track(await startBot({ relayUrl: relay.url, meetingKey: crypto.randomBytes(32), ...o }));
  const guest = async (o) => {
    const g = await makeGuest(relay, o);
    return track(g, () => g.socket.disconnect());
  };
  return { relay, bot, guest, track };
}

const http = async (relay, method, path, { body, headers = {} } = {}) => {
  const res = await fetch(relay.url + path, {
    method, headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, json, headers: res.headers };
};

/** A guest's registration body (public keys only) from a peers.js peer. */
function registrationBody(peer, preKeyCount) {
  const base = peer.bundle({ withOneTimePreKey: false });
  const pre_keys = [];
  for (let i = 0; i < preKeyCount; i++) {
    const { preKey } = peer.bundle();
    pre_keys.push({ id: preKey.id, public_key: b64(preKey.publicKey) });
  }
  return {
    invitation_token: INVITE, meeting_id: MEETING, display_name: 'Gina Guest',
    identity_key_public: b64(base.identityKey), registration_id: base.registrationId,
    signed_pre_key: { id: base.signedPreKey.id, public_key: b64(base.signedPreKey.publicKey), signature: b64(base.signedPreKey.signature) },
    pre_keys,
    ...(base.kyberPreKey ? { kyber_pre_key: kyberJson(base.kyberPreKey) } : {}), // 'current' peers only
  };
}

/** peers.js Kyber prekey -> the contract's {id, public_key, signature} */
const kyberJson = (k) => ({ id: k.id, public_key: b64(k.publicKey), signature: b64(k.signature) });

const toPeerBundle = (j) => ({
  registrationId: j.registration_id, deviceId: 1, identityKey: unb64(j.identity_key),
  signedPreKey: { id: j.signed_pre_key.id, publicKey: unb64(j.signed_pre_key.public_key), signature: unb64(j.signed_pre_key.signature) },
  preKey: j.pre_key ? { id: j.pre_key.id, publicKey: unb64(j.pre_key.public_key) } : null,
  ...(j.kyber_pre_key ? {
    kyberPreKey: { id: j.kyber_pre_key.id, publicKey: unb64(j.kyber_pre_key.public_key), signature: unb64(j.kyber_pre_key.signature) },
  } : {}),
});

/** Registers a guest, connects it to /external and records every participant:signal_message.
 *  `kind` is its peers.js peer: 'official' (0.72.1, v3) or 'current' (0.103, v4, with a Kyber prekey). */
async function makeGuest(relay, { preKeyCount = 30, kind = 'official' } = {}) {
  const peer = await createPeer(kind, { oneTimePreKeyCount: preKeyCount });
  const reg = await http(relay, 'POST', '/api/meetings/external/register', { body: registrationBody(peer, preKeyCount) });
  assert.equal(reg.status, 200, JSON.stringify(reg.json));
  const sessionId = reg.json.session_id;
  const socket = io(`${relay.url}/external`, { auth: { sessionId }, transports: ['websocket'], reconnection: false });
  await new Promise((resolve, reject) => { socket.once('connect', resolve); socket.once('connect_error', reject); });
  const inbox = [];
  const waiters = [];
  socket.on('participant:signal_message', (m) => {
    inbox.push(m);
    for (const w of [...waiters]) if (w.pred(m)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(m); }
  });
  const addr = (u, d) => `p:${u}:${d}`;
  const g = {
    peer, sessionId, socket, inbox, reg: reg.json,
    /** next (or already received, unconsumed) message matching pred, or null after timeoutMs */
    next(pred = () => true, timeoutMs = 3000) {
      const i = inbox.findIndex((m) => !m._seen && pred(m));
      if (i >= 0) { inbox[i]._seen = true; return Promise.resolve(inbox[i]); }
      return new Promise((resolve) => {
        // the timer is cleared on delivery so no test keeps the process alive
        const timer = setTimeout(() => { const k = waiters.indexOf(w); if (k >= 0) { waiters.splice(k, 1); resolve(null); } }, timeoutMs);
        const w = { pred: (m) => pred(m) && (m._seen = true), resolve: (m) => { clearTimeout(timer); resolve(m); } };
        waiters.push(w);
      });
    },
    listParticipants: () => http(relay, 'GET', `/api/meetings/external/${MEETING}/participants`, { headers: { 'x-guest-session': sessionId } }),
    fetchBundle: (u, d) => http(relay, 'GET', `/api/meetings/external/${sessionId}/participant/${u}/${d}/keys`),
    /** fetch + X3DH (unless a session exists) + encrypted request; returns the request plaintext.
     *  `extra` adds plaintext fields (sas_commitment). */
    async requestKey(u, d, { forged, extra } = {}) {
      if (!(await peer.hasSession(addr(u, d)))) {
        const b = await g.fetchBundle(u, d);
        assert.equal(b.status, 200, JSON.stringify(b.json));
        await peer.processBundle(addr(u, d), toPeerBundle(b.json));
      }
      const request = {
        type: 'guest:meeting_e2ee_key_request', meeting_id: MEETING, guest_session_id: sessionId,
        request_id: crypto.randomBytes(16).toString('base64url'), timestamp: Date.now(), ...extra,
      };
      await g.send(u, d, request, forged);
      return request;
    },
    /** encrypts any plaintext to participant u/d on the existing session */
    async send(u, d, plaintext, forged) {
      const m = await peer.encrypt(addr(u, d), new TextEncoder().encode(JSON.stringify(plaintext)));
      socket.emit('guest:signal_message', {
        participant_user_id: u, participant_device_id: d, type: plaintext.type,
        encrypted_message: b64(m.body), message_type: m.type, ...forged,
      });
    },
    /** the participant identity key this guest's session holds */
    participantIdentity: (u, d) => peer.remoteIdentity(addr(u, d)),
    /** waits for and decrypts the next message from participant u/d */
    async receive(u, d, timeoutMs = 3000) {
      const m = await g.next((x) => x.participant_user_id === u && x.participant_device_id === d, timeoutMs);
      if (!m) return null;
      const pt = await peer.decrypt(addr(u, d), { type: m.message_type, body: unb64(m.encrypted_message) });
      return { envelope: m, plaintext: JSON.parse(new TextDecoder().decode(pt)) };
    },
  };
  return g;
}

/** polls until fn() is truthy or fails after timeoutMs */
async function until(fn, timeoutMs = 3000) {
  const end = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > end) assert.fail('condition not reached in time');
    await sleep(20);
  }
}

function assertResponse(res, request, bot) {
  assert.ok(res, 'a response arrived');
  const p = res.plaintext;
  assert.equal(p.type, 'participant:meeting_e2ee_key_response');
  assert.equal(p.meeting_id, MEETING);
  assert.equal(p.request_id, request.request_id);
  assert.equal(typeof p.timestamp, 'number');
  assert.ok(Math.abs(Date.now() - p.timestamp) < 10_000);
  assert.equal(unb64(p.key).length, 32);
  assert.deepEqual(unb64(p.key), new Uint8Array(bot.meetingKey));
  assert.equal(typeof res.envelope.timestamp, 'number');
}

test('registration: strict validation, private keys refused, public keys stored', async (t) => {
  const { relay } = await setup(t);
  const peer = await createPeer('official', { oneTimePreKeyCount: 3 });
  const good = registrationBody(peer, 3);
  const reg = (body) => http(relay, 'POST', '/api/meetings/external/register', { body });
  const clone = () => structuredClone(good);

  // private key material anywhere -> 400
  let r = await reg({ ...clone(), private_key: good.identity_key_public });
  assert.equal(r.status, 400);
  assert.match(r.json.error, /private_key/);
  const nested = clone();
  nested.signed_pre_key.privateKey = good.signed_pre_key.public_key;
  assert.equal((await reg(nested)).status, 400);
  const inArray = clone();
  inArray.pre_keys[1].secret = 'x';
  assert.equal((await reg(inArray)).status, 400);
  assert.equal((await reg({ ...clone(), identity_key_private: 'AAAA' })).status, 400);

  // bad token 403, unknown meeting 404
  assert.equal((await reg({ ...clone(), invitation_token: 'nope' })).status, 403);
  assert.equal((await reg({ ...clone(), meeting_id: 'other-meeting' })).status, 404);

  // bad keys / fields -> 400
  const short = clone();
  short.identity_key_public = b64(unb64(good.identity_key_public).subarray(1)); // 32 bytes
  assert.equal((await reg(short)).status, 400);
  const noPrefix = clone();
  const k = unb64(good.signed_pre_key.public_key); k[0] = 0x06;
  noPrefix.signed_pre_key.public_key = b64(k);
  assert.equal((await reg(noPrefix)).status, 400);
  const badSig = clone();
  const s = unb64(good.signed_pre_key.signature); s[5] ^= 1;
  badSig.signed_pre_key.signature = b64(s);
  assert.equal((await reg(badSig)).status, 400);
  assert.equal((await reg({ ...clone(), registration_id: 0 })).status, 400);
  assert.equal((await reg({ ...clone(), registration_id: 16381 })).status, 400);
  assert.equal((await reg({ ...clone(), display_name: '' })).status, 400);
  assert.equal((await reg({ ...clone(), pre_keys: [] })).status, 400);
  assert.equal((await reg({ ...clone(), pre_keys: [{ id: 0, public_key: good.pre_keys[0].public_key }] })).status, 400);
  assert.equal((await reg({ ...clone(), extra: 1 })).status, 400);
  const raw = await fetch(`${relay.url}/api/meetings/external/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{bad' });
  assert.equal(raw.status, 400);
  assert.equal(relay.state.guests.size, 0, 'nothing stored from rejected bodies');

  r = await reg(good);
  assert.equal(r.status, 200);
  assert.match(r.json.session_id, /^[0-9a-f-]{36}$/);
  assert.equal(r.json.meeting_id, MEETING);
  assert.equal(r.json.display_name, 'Gina Guest');
  const g = relay.state.guests.get(r.json.session_id);
  assert.equal(g.identity_key, good.identity_key_public);
  assert.equal(g.pre_keys.length, 3);
  assert.equal(findPrivate(g), false);
  assert.deepEqual(relay.state.registrations.at(-1), good);
  assert.ok(relay.state.registrations.length >= 15, 'every received body is logged');

  // unknown guest sessions cannot open the /external socket
  const bad = io(`${relay.url}/external`, { auth: { sessionId: 'nope' }, transports: ['websocket'], reconnection: false });
  const err = await new Promise((resolve) => bad.once('connect_error', resolve));
  assert.match(err.message, /unknown guest session/);
  bad.disconnect();

  // CORS preflight from another origin
  const pre = await fetch(`${relay.url}/api/meetings/external/${MEETING}/participants`, {
    method: 'OPTIONS', headers: { origin: 'http://localhost:5173', 'access-control-request-headers': 'x-guest-session' },
  });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get('access-control-allow-origin'), '*');
  assert.match(pre.headers.get('access-control-allow-headers'), /X-Guest-Session/i);
});

function findPrivate(o) {
  return JSON.stringify(o).match(/priv|secret|private/i) !== null;
}

test('reply mode: guest gets the meeting key over a Signal session', async (t) => {
  const { relay, bot, guest } = await setup(t);
  const alice = await bot({ userId: 'alice', deviceId: '1', displayName: 'Alice', keyIndex: 4 });
  const g = await guest();

  // participants list needs a valid guest session
  assert.equal((await http(relay, 'GET', `/api/meetings/external/${MEETING}/participants`)).status, 403);
  assert.equal((await http(relay, 'GET', `/api/meetings/external/${MEETING}/participants`, { headers: { 'x-guest-session': 'forged' } })).status, 403);
  const list = await g.listParticipants();
  assert.equal(list.status, 200);
  assert.deepEqual(list.json, [{ user_id: 'alice', device_id: '1', display_name: 'Alice' }]);

  const request = await g.requestKey('alice', '1');
  const res = await g.receive('alice', '1');
  assertResponse(res, request, alice);
  assert.equal(res.envelope.message_type, 2, 'reply on the established session is a SignalMessage');
  assert.equal(res.plaintext.key_index, 4);
  assert.equal(res.envelope.participant_user_id, 'alice');
  assert.equal(res.envelope.participant_device_id, '1');
  assert.deepEqual({ requests: alice.stats.requests, answers: alice.stats.answers, decryptFailures: alice.stats.decryptFailures },
    { requests: 1, answers: 1, decryptFailures: 0 });
  const relayed = relay.state.relayedToParticipants;
  assert.equal(relayed.length, 1);
  assert.deepEqual(relayed[0].to, { user_id: 'alice', device_id: '1' });
  assert.equal(relayed[0].body.guest_session_id, g.sessionId);
  assert.equal(relayed[0].body.message_type, 3);

  // a second request goes on the same session (SignalMessages both ways now)
  const again = await g.requestKey('alice', '1');
  assertResponse(await g.receive('alice', '1'), again, alice);
  assert.equal(relay.state.relayedToParticipants[1].body.message_type, 2);
  // Both answers timed (the benchmarks' participant handling), nothing else.
  await alice.idle();
  const { keyRequest, ...other } = alice.handling();
  assert.equal(keyRequest.n, 2);
  assert.ok(keyRequest.median > 0 && keyRequest.p90 >= keyRequest.median, JSON.stringify(keyRequest));
  assert.deepEqual(other, {});
});

test('initiate mode: bot fetches the guest bundle and answers with a PreKey message', async (t) => {
  const { relay, bot, guest } = await setup(t);
  const bob = await bot({ userId: 'bob', deviceId: '2', mode: 'initiate' });
  const g = await guest({ preKeyCount: 5 });
  const request = await g.requestKey('bob', '2');
  const res = await g.receive('bob', '2');
  assertResponse(res, request, bob);
  assert.equal(res.envelope.message_type, 3);
  assert.equal(relay.state.prekeyConsumption.guests.get(g.sessionId), 1);
  assert.equal(relay.state.guests.get(g.sessionId).pre_keys.length, 4);
});

test('silent mode: request decrypted, no answer within 1 s', async (t) => {
  const { bot, guest } = await setup(t);
  const carol = await bot({ userId: 'carol', deviceId: '1', mode: 'silent' });
  const g = await guest();
  await g.requestKey('carol', '1');
  assert.equal(await g.receive('carol', '1', 1000), null);
  assert.equal(carol.stats.requests, 1);
  assert.equal(carol.stats.answers, 0);
  assert.equal(carol.stats.decryptFailures, 0);
  assert.deepEqual(carol.handling(), {}, 'a request not answered is not timed');
  assert.equal(g.inbox.length, 0);
});

test('rotate mode: a key update with key_index+1 follows the response', async (t) => {
  const { bot, guest } = await setup(t);
  const dave = await bot({ userId: 'dave', deviceId: '1', mode: 'rotate', keyIndex: 7, rotateAfterMs: 200 });
  const first = new Uint8Array(dave.meetingKey);
  const g = await guest();
  const request = await g.requestKey('dave', '1');
  const res = await g.receive('dave', '1');
  assertResponse(res, request, { meetingKey: first });
  assert.equal(res.plaintext.key_index, 7);
  const upd = await g.receive('dave', '1', 3000);
  assert.ok(upd, 'update arrived');
  assert.equal(upd.plaintext.type, 'participant:meeting_e2ee_key_update');
  assert.equal(upd.plaintext.meeting_id, MEETING);
  assert.equal(upd.plaintext.key_index, 8);
  assert.equal(typeof upd.plaintext.timestamp, 'number');
  assert.deepEqual(unb64(upd.plaintext.key), new Uint8Array(dave.meetingKey));
  assert.notDeepEqual(unb64(upd.plaintext.key), first);
  assert.equal(dave.stats.updates, 1);
});

test('rate limit: 4th keybundle fetch in a minute per session:user:device is 429 with Retry-After', async (t) => {
  const { bot, guest } = await setup(t);
  await bot({ userId: 'erin', deviceId: '1' });
  await bot({ userId: 'erin', deviceId: '2' });
  const g = await guest();
  for (let i = 0; i < 3; i++) assert.equal((await g.fetchBundle('erin', '1')).status, 200);
  const r = await g.fetchBundle('erin', '1');
  assert.equal(r.status, 429);
  const retry = Number(r.headers.get('retry-after'));
  assert.ok(Number.isInteger(retry) && retry >= 1 && retry <= 60, `Retry-After ${retry}`);
  assert.equal(r.headers.get('access-control-expose-headers'), 'Retry-After');
  // other device of the same user, and another guest: separate keys
  assert.equal((await g.fetchBundle('erin', '2')).status, 200);
  const g2 = await guest();
  assert.equal((await g2.fetchBundle('erin', '1')).status, 200);
});

// A TypeScript-port guest: official 0.72.1 as initiator does not interoperate with the port as
// responder (interop/peers.test.js); the SDK as initiator does (interop/, load/run.sh).
test('ts bot (libsignal-protocol-typescript): answers guests with and without a one-time prekey', async (t) => {
  const { bot, guest } = await setup(t);
  const kim = await bot({ userId: 'kim', deviceId: '1', peer: 'ts', oneTimePreKeyCount: 1 });
  for (let i = 0; i < 2; i++) { // the second bundle has none left
    const g = await guest({ kind: 'ts' });
    const request = await g.requestKey('kim', '1');
    assertResponse(await g.receive('kim', '1'), request, kim);
  }
  assert.equal(kim.stats.answers, 2);
});

test('per-device rate limit: shared by all guests, 429 with Retry-After, other devices unaffected', async (t) => {
  const { bot, guest } = await setup(t, { deviceRateLimit: { max: 2, windowMs: 60_000 } });
  await bot({ userId: 'erin', deviceId: '1' });
  await bot({ userId: 'erin', deviceId: '2' });
  const [g1, g2, g3] = [await guest(), await guest(), await guest()];
  assert.equal((await g1.fetchBundle('erin', '1')).status, 200);
  assert.equal((await g2.fetchBundle('erin', '1')).status, 200);
  const r = await g3.fetchBundle('erin', '1'); // a guest that never fetched before
  assert.equal(r.status, 429);
  const retry = Number(r.headers.get('retry-after'));
  assert.ok(Number.isInteger(retry) && retry >= 1 && retry <= 60, `Retry-After ${retry}`);
  assert.equal((await g3.fetchBundle('erin', '2')).status, 200);
});

test('top-up: count and upload of at most 100 one-time prekeys per request, authorized, ids checked', async (t) => {
  const { relay, bot } = await setup(t);
  const hana = await bot({ userId: 'hana', deviceId: '1', oneTimePreKeyCount: 3, topUp: null });
  const path = '/api/participants/hana/1/prekeys';
  const auth = { authorization: `Bearer ${PTOKEN}` };
  const keys = (ids) => ids.map((id) => ({ id, public_key: b64(hana.peer.identityKey()) }));
  assert.equal((await http(relay, 'GET', path)).status, 403);
  assert.equal((await http(relay, 'GET', '/api/participants/nobody/1/prekeys', { headers: auth })).status, 404);
  assert.deepEqual((await http(relay, 'GET', path, { headers: auth })).json, { count: 3 });
  const post = (body, headers = auth) => http(relay, 'POST', path, { body, headers });
  assert.equal((await post({ pre_keys: keys([10]) }, {})).status, 403);
  const tooMany = await post({ pre_keys: keys(Array.from({ length: 101 }, (_, i) => 100 + i)) });
  assert.equal(tooMany.status, 400);
  assert.match(tooMany.json.error, /1\.\.100/);
  assert.equal((await post({ pre_keys: keys([2]) })).status, 400, 'an id still stored');
  assert.equal((await post({ pre_keys: keys([20, 20]) })).status, 400, 'an id twice');
  assert.equal((await post({ pre_keys: keys([0x1000000]) })).status, 400, 'ids are 24-bit');
  assert.equal((await post({ pre_keys: keys([21]), private_key: 'x' })).status, 400);
  // Refused uploads changed nothing; an accepted one adds to the stock.
  assert.deepEqual((await http(relay, 'GET', path, { headers: auth })).json, { count: 3 });
  const ok = await post({ pre_keys: keys(Array.from({ length: 100 }, (_, i) => 100 + i)) });
  assert.deepEqual(ok.json, { count: 103 });
  assert.equal(relay.state.participantKeys.get('hana:1').pre_keys.at(-1).id, 199);
});

test('a bot tops up when its stock runs low, and guests get sessions on the new keys', async (t) => {
  const { relay, bot, guest } = await setup(t, { rateLimit: { max: 100, windowMs: 60_000 } });
  const ivy = await bot({ userId: 'ivy', deviceId: '1', oneTimePreKeyCount: 2, topUp: { below: 2, batch: 5, everyMs: 0 } });
  const served = [];
  for (let i = 0; i < 2; i++) {
    const g = await guest();
    const request = await g.requestKey('ivy', '1');
    assertResponse(await g.receive('ivy', '1'), request, ivy);
    served.push(g);
  }
  const stock = () => relay.state.participantKeys.get('ivy:1').pre_keys.length;
  for (let i = 0; i < 100 && ivy.stats.topUps === 0; i++) await sleep(20);
  assert.equal(ivy.stats.topUps, 1, JSON.stringify(ivy.stats));
  assert.ok(stock() >= 4 && stock() <= 5, `stock ${stock()}`);
  const g = await guest();
  const b = await g.fetchBundle('ivy', '1');
  assert.ok(b.json.pre_key.id > 2, 'a topped-up key');
  await g.peer.processBundle('p:ivy:1', toPeerBundle(b.json));
  const request = await g.requestKey('ivy', '1');
  assertResponse(await g.receive('ivy', '1'), request, ivy);
  assert.equal(ivy.stats.topUpFailures, 0);
});

test('restraint: a request that waited past the bot\'s limit is decrypted, not answered', async (t) => {
  const { bot, guest } = await setup(t);
  const jo = await bot({ userId: 'jo', deviceId: '1', staleAfterMs: -1 });
  const g = await guest();
  await g.requestKey('jo', '1');
  assert.equal(await g.receive('jo', '1', 500), null);
  await jo.idle();
  assert.equal(jo.stats.requests, 1);
  assert.equal(jo.stats.stale, 1);
  assert.equal(jo.stats.answers, 0);
  assert.equal(jo.stats.decryptFailures, 0);
});

test('a busy participant: its bundle is 429 with Retry-After until the time it gave, others are served', async (t) => {
  const { relay, bot, guest } = await setup(t);
  const lee = await bot({ userId: 'lee', deviceId: '1', busyAfterMs: -1 }); // busy at the first message
  await bot({ userId: 'max', deviceId: '1' });
  const g = await guest();
  const request = await g.requestKey('lee', '1');
  assertResponse(await g.receive('lee', '1'), request, lee); // what was queued is still answered
  assert.equal(lee.stats.busy, 1);
  const g2 = await guest();
  const r = await g2.fetchBundle('lee', '1');
  assert.equal(r.status, 429);
  assert.equal(r.headers.get('retry-after'), '1');
  assert.equal((await g2.fetchBundle('max', '1')).status, 200);
  await sleep(1050);
  assert.equal((await g2.fetchBundle('lee', '1')).status, 200, 'busy for the time it said, not longer');
  assert.equal(relay.state.dropped, 0);
});

test('when every device says busy, none is refused: guests queue rather than fail', async (t) => {
  const { bot, guest } = await setup(t);
  const [ned, olga] = [await bot({ userId: 'ned', deviceId: '1', busyAfterMs: -1 }), await bot({ userId: 'olga', deviceId: '1', busyAfterMs: -1 })];
  const g = await guest();
  for (const b of [ned, olga]) {
    const request = await g.requestKey(b.userId, '1');
    assertResponse(await g.receive(b.userId, '1'), request, b);
  }
  assert.deepEqual([ned.stats.busy, olga.stats.busy], [1, 1]);
  const g2 = await guest();
  assert.equal((await g2.fetchBundle('ned', '1')).status, 200);
  assert.equal((await g2.fetchBundle('olga', '1')).status, 200);
});

test('prekey consumption is counted and exhausted bundles carry pre_key null', async (t) => {
  const { relay, bot, guest } = await setup(t);
  const frank = await bot({ userId: 'frank', deviceId: '1', oneTimePreKeyCount: 2 });
  const g = await guest({ preKeyCount: 1 });
  const ids = [];
  for (let i = 0; i < 2; i++) {
    const b = await g.fetchBundle('frank', '1');
    assert.equal(b.status, 200);
    assert.ok(b.json.pre_key, 'one-time prekey served');
    ids.push(b.json.pre_key.id);
    assert.equal(b.json.user_id, 'frank');
    assert.equal(b.json.device_id, '1');
    assert.equal(unb64(b.json.identity_key).length, 33);
  }
  assert.notEqual(ids[0], ids[1], 'a served prekey is deleted, never served twice');
  const exhausted = await g.fetchBundle('frank', '1');
  assert.equal(exhausted.status, 200);
  assert.equal(exhausted.json.pre_key, null);
  assert.equal(relay.state.prekeyConsumption.participants.get('frank:1'), 2);
  assert.equal(relay.state.participantKeys.get('frank:1').pre_keys.length, 0);

  // X3DH without a one-time prekey still works end to end
  await g.peer.processBundle('p:frank:1', toPeerBundle(exhausted.json));
  const request = await g.requestKey('frank', '1');
  assertResponse(await g.receive('frank', '1'), request, frank);

  // guest bundle for participants: bearer required, one prekey, then null
  const path = `/api/meetings/${MEETING}/external/${g.sessionId}/keys`;
  const auth = { authorization: `Bearer ${PTOKEN}` };
  assert.equal((await http(relay, 'GET', path)).status, 403);
  assert.equal((await http(relay, 'GET', path, { headers: { authorization: 'Bearer wrong' } })).status, 403);
  assert.equal((await http(relay, 'GET', `/api/meetings/${MEETING}/external/nope/keys`, { headers: auth })).status, 404);
  const gb1 = await http(relay, 'GET', path, { headers: auth });
  assert.equal(gb1.status, 200);
  assert.equal(gb1.json.session_id, g.sessionId);
  assert.equal(gb1.json.registration_id, g.peer.registrationId);
  assert.ok(gb1.json.pre_key);
  const gb2 = await http(relay, 'GET', path, { headers: auth });
  assert.equal(gb2.json.pre_key, null);
  assert.equal(relay.state.prekeyConsumption.guests.get(g.sessionId), 1);

  // unknown session 404; target not in the meeting 403
  assert.equal((await http(relay, 'GET', `/api/meetings/external/nope/participant/frank/1/keys`)).status, 404);
  assert.equal((await g.fetchBundle('nobody', '1')).status, 403);
});

// ---------- Kyber prekeys (PQXDH, Signal v4): libsignal 0.103 peers ('current') ----------

/** version byte of a Signal message, from the base64 of its serialized form */
const versionByte = (encryptedMessage) => unb64(encryptedMessage)[0];
const V4 = 0x44; // libsignal 0.103 (PQXDH + SPQR)

/** Variants of a body's kyber_pre_key that the relay must refuse, with the error each gets. */
function badKyberVariants(good, otherPeer) {
  const k = good.kyber_pre_key;
  const key = unb64(k.public_key);
  const sig = unb64(k.signature);
  const flipped = sig.slice(); flipped[7] ^= 1;
  const retyped = key.slice(); retyped[0] = 0x05;
  const withKyber = (kyber) => ({ ...structuredClone(good), kyber_pre_key: kyber });
  return [
    ['bad signature', withKyber({ ...k, signature: b64(flipped) }), /kyber_pre_key\.signature does not verify/],
    // a valid XEdDSA signature over the same bytes, by another identity
    ['signed by another identity', withKyber({ ...k, signature: b64(otherPeer.sign(key)) }), /kyber_pre_key\.signature does not verify/],
    // the signed prekey's signature (over other bytes, by the right identity)
    ['signature over other bytes', withKyber({ ...k, signature: good.signed_pre_key.signature }), /kyber_pre_key\.signature does not verify/],
    ['signature 63 bytes', withKyber({ ...k, signature: b64(sig.subarray(1)) }), /kyber_pre_key\.signature must be 64 bytes/],
    ['1,568 bytes (no type byte)', withKyber({ ...k, public_key: b64(key.subarray(1)) }), /1569 bytes starting 0x08 \(Kyber1024; got 1568 bytes\)/],
    ['1,570 bytes', withKyber({ ...k, public_key: b64(Buffer.concat([key, Buffer.from([0])])) }), /1569 bytes starting 0x08 \(Kyber1024; got 1570 bytes\)/],
    ['type byte 0x05', withKyber({ ...k, public_key: b64(retyped) }), /1569 bytes starting 0x08 \(Kyber1024; got type byte 0x05\)/],
    ['not base64', withKyber({ ...k, public_key: `${k.public_key.slice(0, -4)}!!!!` }), /kyber_pre_key\.public_key must be standard base64/],
    ['id 0', withKyber({ ...k, id: 0 }), /kyber_pre_key\.id/],
    ['id as a string', withKyber({ ...k, id: '1' }), /kyber_pre_key\.id/],
    ['unknown field', withKyber({ ...k, extra: 1 }), /unknown field kyber_pre_key\.extra/],
    ['missing signature', withKyber({ id: k.id, public_key: k.public_key }), /kyber_pre_key\.signature/],
    ['not an object', withKyber(k.public_key), /kyber_pre_key must be an object/],
    ['private key material', withKyber({ ...k, private_key: k.public_key }), /private key material/],
  ];
}

test('Kyber prekey in guest registration: validated, stored, served in the guest bundle; absent = null', async (t) => {
  const { relay } = await setup(t);
  const reg = (body) => http(relay, 'POST', '/api/meetings/external/register', { body });
  const peer = await createPeer('current', { oneTimePreKeyCount: 2 });
  const good = registrationBody(peer, 2);
  assert.equal(unb64(good.kyber_pre_key.public_key).length, 1569);
  assert.equal(unb64(good.kyber_pre_key.public_key)[0], 0x08);
  assert.equal(unb64(good.kyber_pre_key.signature).length, 64);

  for (const [what, body, error] of badKyberVariants(good, await createPeer('official'))) {
    const r = await reg(body);
    assert.equal(r.status, 400, what);
    assert.match(r.json.error, error, what);
  }
  assert.equal(relay.state.guests.size, 0, 'nothing stored from rejected bodies');

  const r = await reg(good);
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.deepEqual(relay.state.guests.get(r.json.session_id).kyber_pre_key, good.kyber_pre_key);

  // the guest bundle participants fetch carries it, the same every time (a last-resort key)
  const path = (sid) => `/api/meetings/${MEETING}/external/${sid}/keys`;
  const auth = { authorization: `Bearer ${PTOKEN}` };
  for (let i = 0; i < 3; i++) { // 2 one-time prekeys, then none: the Kyber prekey stays
    const b = await http(relay, 'GET', path(r.json.session_id), { headers: auth });
    assert.equal(b.status, 200);
    assert.deepEqual(b.json.kyber_pre_key, good.kyber_pre_key);
    assert.equal(b.json.pre_key === null, i === 2);
  }

  // absent (a v3 guest) or null: bundles carry kyber_pre_key null
  const v3 = await reg(registrationBody(await createPeer('official', { oneTimePreKeyCount: 1 }), 1));
  const withNull = await reg({ ...registrationBody(await createPeer('official', { oneTimePreKeyCount: 1 }), 1), kyber_pre_key: null });
  for (const x of [v3, withNull]) {
    assert.equal(x.status, 200, JSON.stringify(x.json));
    assert.equal(relay.state.guests.get(x.json.session_id).kyber_pre_key, null);
    const b = await http(relay, 'GET', path(x.json.session_id), { headers: auth });
    assert.ok(Object.hasOwn(b.json, 'kyber_pre_key'));
    assert.equal(b.json.kyber_pre_key, null);
  }
});

test('Kyber prekey of participant devices: uploaded by a current bot, validated, served (null for a v3 device)', async (t) => {
  const { relay, bot, guest } = await setup(t);
  const cory = await bot({ userId: 'cory', deviceId: '1', peer: 'current', oneTimePreKeyCount: 2 });
  const olga = await bot({ userId: 'olga', deviceId: '1' }); // official 0.72.1: no Kyber prekey
  assert.equal(cory.peerKind, 'current');
  assert.equal(olga.peerKind, 'official');
  const expected = kyberJson(cory.peer.bundle({ withOneTimePreKey: false }).kyberPreKey);
  assert.deepEqual(relay.state.participantKeys.get('cory:1').kyber_pre_key, expected);
  assert.equal(relay.state.participantKeys.get('olga:1').kyber_pre_key, null);

  const g = await guest();
  for (let i = 0; i < 3; i++) { // past the last one-time prekey: the Kyber prekey stays
    const b = await g.fetchBundle('cory', '1');
    assert.equal(b.status, 200);
    assert.deepEqual(b.json.kyber_pre_key, expected);
    assert.equal(b.json.pre_key === null, i === 2);
  }
  const o = await g.fetchBundle('olga', '1');
  assert.ok(Object.hasOwn(o.json, 'kyber_pre_key'));
  assert.equal(o.json.kyber_pre_key, null);

  // the participant upload is as strict as guest registration
  const peer = await createPeer('current', { oneTimePreKeyCount: 1 });
  const { invitation_token, meeting_id, display_name, identity_key_public, ...keys } = registrationBody(peer, 1);
  const good = { auth: PTOKEN, user_id: 'pia', device_id: '1', display_name, identity_key: identity_key_public, ...keys };
  const upload = (body) => http(relay, 'POST', '/api/participants/register', { body });
  for (const [what, body, error] of badKyberVariants(good, await createPeer('official'))) {
    const r = await upload(body);
    assert.equal(r.status, 400, what);
    assert.match(r.json.error, error, what);
  }
  assert.equal(relay.state.participantKeys.has('pia:1'), false, 'nothing stored from rejected bodies');
  assert.equal((await upload(good)).status, 200);
  assert.deepEqual(relay.state.participantKeys.get('pia:1').kyber_pre_key, good.kyber_pre_key);
});

test('current bot (libsignal 0.103): v4 sessions with a v4 guest in reply and initiate mode; a v3 guest is refused', async (t) => {
  const { relay, bot, guest } = await setup(t);
  await assert.rejects(startBot({ relayUrl: relay.url, userId: 'x', deviceId: '1', peer: 'dart' }), /unknown peer dart/);
  const cory = await bot({ userId: 'cory', deviceId: '1', peer: 'current' });
  const dora = await bot({ userId: 'dora', deviceId: '1', peer: 'current', mode: 'initiate' });
  const g = await guest({ kind: 'current', preKeyCount: 5 });
  assert.ok(relay.state.guests.get(g.sessionId).kyber_pre_key, 'the v4 guest registered a Kyber prekey');

  // reply: the guest's PQXDH PreKey message, answered on that session; codes agree
  const x = await exchangeWithCode(g, 'cory', '1');
  assertResponse(x.res, x.request, cory);
  const toCory = relay.state.relayedToParticipants.filter((r) => r.to.user_id === 'cory');
  assert.equal(toCory[0].body.message_type, 3);
  assert.equal(versionByte(toCory[0].body.encrypted_message), V4);
  assert.equal(x.res.envelope.message_type, 2);
  assert.equal(versionByte(x.res.envelope.encrypted_message), V4);
  await until(() => cory.codes.has(g.sessionId));
  assert.deepEqual(cory.codes.get(g.sessionId), { digits: x.code.digits, emoji: x.code.emoji, safetyNumber: x.safetyNumber });

  // initiate: the bot fetches the guest's bundle (with its Kyber prekey) and starts its own v4 session
  const request = await g.requestKey('dora', '1');
  const res = await g.receive('dora', '1');
  assertResponse(res, request, dora);
  assert.equal(res.envelope.message_type, 3);
  assert.equal(versionByte(res.envelope.encrypted_message), V4);
  assert.equal(relay.state.prekeyConsumption.guests.get(g.sessionId), 1);

  // a v3 (0.72.1) guest: 0.103 refuses its X3DH PreKey message, so no answer
  const old = await guest();
  await old.requestKey('cory', '1');
  await until(() => cory.stats.decryptFailures === 1);
  assert.equal(await old.receive('cory', '1', 500), null);
  assert.equal(cory.stats.answers, 1, 'only the v4 guest got an answer');
});

test('CLI: bot --peer current answers a v4 guest', async (t) => {
  const { relay } = await setup(t);
  const botOut = runCli(t, ['www/bot/bot.js', '--relay', relay.url, '--user', 'cora', '--device', '2', '--peer', 'current']);
  await until(() => botOut.text.includes('(current) ready'), 10_000);
  assert.ok(relay.state.participantKeys.get('cora:2').kyber_pre_key);
  const g = await makeGuest(relay, { kind: 'current' });
  t.after(() => g.socket.disconnect());
  const x = await exchangeWithCode(g, 'cora', '2');
  assert.equal(x.res.plaintext.type, 'participant:meeting_e2ee_key_response');
  assert.equal(versionByte(x.res.envelope.encrypted_message), V4);
  assert.match(botOut.text, /peer current/);
});

test('not admitted: requests are held until the host admits, LiveKit token refused before', async (t) => {
  const { relay, bot, guest, track } = await setup(t, { autoAdmit: false });
  const gus = await bot({ userId: 'gus', deviceId: '1' });
  const g = await guest();
  assert.equal(relay.state.isAdmitted(g.sessionId), false);
  const request = await g.requestKey('gus', '1');
  await sleep(500);
  assert.equal(gus.stats.envelopes, 0, 'bot received nothing');
  assert.equal(relay.state.relayedToParticipants.length, 0);
  assert.equal(g.inbox.length, 0);
  const tok = await http(relay, 'POST', '/api/livekit/external-token', { body: { sessionId: g.sessionId, meetingId: MEETING } });
  assert.equal(tok.status, 403);

  // the admit endpoint needs the participant bearer
  assert.equal((await http(relay, 'POST', `/api/relay/admit/${g.sessionId}`)).status, 403);
  assert.equal((await http(relay, 'POST', '/api/relay/admit/nope', { headers: { authorization: `Bearer ${PTOKEN}` } })).status, 404);
  const adm = await http(relay, 'POST', `/api/relay/admit/${g.sessionId}`, { headers: { authorization: `Bearer ${PTOKEN}` } });
  assert.equal(adm.status, 200);
  assertResponse(await g.receive('gus', '1'), request, gus);
  assert.equal(gus.stats.requests, 1);

  // admission by the host:admit_guest event on the participants namespace
  const g2 = await guest();
  const req2 = await g2.requestKey('gus', '1');
  await sleep(300);
  assert.equal(gus.stats.requests, 1);
  const host = io(relay.url, { auth: { token: PTOKEN, userId: 'host', deviceId: '1' }, transports: ['websocket'], reconnection: false });
  track(host, () => host.disconnect());
  const ack = await host.timeout(2000).emitWithAck('host:admit_guest', { session_id: g2.sessionId });
  assert.deepEqual(ack, { ok: true });
  assertResponse(await g2.receive('gus', '1'), req2, gus);
  assert.equal(relay.state.isAdmitted(g2.sessionId), true);
});

test('admission notice: guest:admitted on admit, on reconnect and on guest:admission_query', async (t) => {
  const { relay, guest } = await setup(t, { autoAdmit: false });
  const g = await guest();
  const notices = [];
  g.socket.on('guest:admitted', (m) => notices.push(m));
  g.socket.emit('guest:admission_query');
  await sleep(200);
  assert.deepEqual(notices, [], 'nothing before admission');
  relay.state.admit(g.sessionId);
  await until(() => notices.length === 1);
  assert.deepEqual(notices[0], { session_id: g.sessionId });
  g.socket.emit('guest:admission_query');
  await until(() => notices.length === 2);
  // A second socket of the admitted guest hears it on connection.
  const again = io(`${relay.url}/external`, { auth: { sessionId: g.sessionId }, transports: ['websocket'], reconnection: false });
  t.after(() => again.disconnect());
  const heard = await new Promise((resolve) => again.once('guest:admitted', resolve));
  assert.deepEqual(heard, { session_id: g.sessionId });
  // Another guest hears nothing of it.
  const other = await guest();
  const otherNotices = [];
  other.socket.on('guest:admitted', (m) => otherNotices.push(m));
  relay.state.admit(g.sessionId);
  await sleep(200);
  assert.deepEqual(otherNotices, []);
});

test('sender identities come from the socket, invalid bodies are dropped', async (t) => {
  const { relay, guest, track } = await setup(t);
  const g = await guest();
  const connectParticipant = async (userId, deviceId) => {
    const s = io(relay.url, { auth: { token: PTOKEN, userId, deviceId }, transports: ['websocket'], reconnection: false });
    track(s, () => s.disconnect());
    await new Promise((resolve, reject) => { s.once('connect', resolve); s.once('connect_error', reject); });
    return s;
  };
  const eve = await connectParticipant('eve', '9');

  // participant -> guest: forged sender fields are overwritten
  eve.emit('participant:signal_message_to_guest', {
    guest_session_id: g.sessionId, type: 'participant:meeting_e2ee_key_response', encrypted_message: b64([1, 2, 3]),
    message_type: 2, participant_user_id: 'alice', participant_device_id: '1',
  });
  const m = await g.next(() => true);
  assert.ok(m);
  assert.equal(m.participant_user_id, 'eve');
  assert.equal(m.participant_device_id, '9');
  assert.equal(m.encrypted_message, b64([1, 2, 3]));

  // guest -> participant: a forged guest_session_id is overwritten
  const got = new Promise((resolve) => eve.once('guest:signal_message', resolve));
  g.socket.emit('guest:signal_message', {
    participant_user_id: 'eve', participant_device_id: '9', type: 'guest:meeting_e2ee_key_request',
    encrypted_message: b64([4, 5]), message_type: 3, guest_session_id: 'forged-session',
  });
  const body = await got;
  assert.equal(body.guest_session_id, g.sessionId);
  assert.equal(typeof body.timestamp, 'number');

  // invalid bodies: dropped silently and counted
  const before = relay.state.dropped;
  g.socket.emit('guest:signal_message', { participant_user_id: 'eve', participant_device_id: '9', type: 'x', encrypted_message: 42, message_type: 2 });
  g.socket.emit('guest:signal_message', { participant_user_id: 'eve', participant_device_id: '9', type: 'x', encrypted_message: 'A'.repeat(64 * 1024 + 4), message_type: 2 });
  g.socket.emit('guest:signal_message', { participant_user_id: 'eve', participant_device_id: '9', type: 'x', encrypted_message: 'AAAA', message_type: 0 });
  g.socket.emit('guest:signal_message', 'not an object');
  eve.emit('participant:signal_message_to_guest', { guest_session_id: g.sessionId, type: 7, encrypted_message: 'AAAA', message_type: 2 });
  await until(() => relay.state.dropped - before === 5);
  await sleep(100);
  assert.equal(relay.state.relayedToParticipants.length, 1, 'only the valid body was relayed');
  assert.equal(g.inbox.length, 1);

  // participants with a wrong token cannot connect
  const intruder = io(relay.url, { auth: { token: 'nope', userId: 'x', deviceId: '1' }, transports: ['websocket'], reconnection: false });
  const err = await new Promise((resolve) => intruder.once('connect_error', resolve));
  assert.match(err.message, /invalid participant token/);
  intruder.disconnect();
});

test('a participant device that leaves is removed from the list', async (t) => {
  const { relay, bot, guest } = await setup(t);
  await bot({ userId: 'hana', deviceId: '1', displayName: 'Hana' });
  const ivan = await bot({ userId: 'ivan', deviceId: '3', displayName: 'Ivan' });
  await bot({ userId: 'hana', deviceId: '2', displayName: 'Hana' });
  const g = await guest();
  assert.deepEqual((await g.listParticipants()).json, [
    { user_id: 'hana', device_id: '1', display_name: 'Hana' },
    { user_id: 'ivan', device_id: '3', display_name: 'Ivan' },
    { user_id: 'hana', device_id: '2', display_name: 'Hana' },
  ]);
  assert.equal((await g.fetchBundle('ivan', '3')).status, 200);
  await ivan.close();
  await until(async () => (await g.listParticipants()).json.length === 2);
  assert.deepEqual((await g.listParticipants()).json.map((p) => `${p.user_id}:${p.device_id}`), ['hana:1', 'hana:2']);
  assert.equal((await g.fetchBundle('ivan', '3')).status, 403, 'no longer in the meeting');
  assert.equal((await http(relay, 'GET', `/api/meetings/external/other-meeting/participants`, { headers: { 'x-guest-session': g.sessionId } })).status, 404);
});

test('LiveKit token: 403 before admission, signed JWT for guest_<id> after', async (t) => {
  const { relay, guest } = await setup(t, { autoAdmit: false });
  const g = await guest();
  const ask = (body) => http(relay, 'POST', '/api/livekit/external-token', { body });
  assert.equal((await ask({ sessionId: g.sessionId, meetingId: MEETING })).status, 403);
  assert.equal((await ask({ sessionId: g.sessionId })).status, 400);
  assert.equal((await ask({ sessionId: 'nope', meetingId: MEETING })).status, 404);
  assert.equal((await ask({ sessionId: g.sessionId, meetingId: 'other' })).status, 404);

  assert.equal(relay.state.admit(g.sessionId), true);
  const r = await ask({ sessionId: g.sessionId, meetingId: MEETING });
  assert.equal(r.status, 200);
  assert.equal(r.json.identity, `guest_${g.sessionId}`);
  assert.equal(r.json.roomName, MEETING);
  assert.equal(r.json.url, 'ws://127.0.0.1:7880');
  const parts = r.json.token.split('.');
  assert.equal(parts.length, 3);
  const [header, payload] = parts.slice(0, 2).map((p) => JSON.parse(Buffer.from(p, 'base64url').toString()));
  assert.equal(header.alg, 'HS256');
  assert.equal(payload.sub, `guest_${g.sessionId}`);
  assert.equal(payload.iss, 'devkey');
  assert.equal(payload.video.room, MEETING);
  assert.equal(payload.video.roomJoin, true);
  assert.ok(payload.exp > Date.now() / 1000);
  const mac = crypto.createHmac('sha256', LK_SECRET).update(`${parts[0]}.${parts[1]}`).digest('base64url');
  assert.equal(parts[2], mac, 'signed with the LiveKit API secret');
});

// ---------- short verification code (docs/contract.md §10) and the relay's MITM mode ----------

const REVEAL = 'guest:meeting_e2ee_sas_reveal';

/** A guest's side of §10: request with a commitment, response with the participant's nonce,
 *  reveal; returns the code and safety number as this guest computes them. */
async function exchangeWithCode(g, u, d) {
  const guestNonce = new Uint8Array(crypto.randomBytes(32));
  const request = await g.requestKey(u, d, { extra: { sas_commitment: b64(commitment(guestNonce)) } });
  const res = await g.receive(u, d);
  assert.ok(res, 'a response arrived');
  const participantNonce = unb64(res.plaintext.sas_nonce);
  assert.equal(participantNonce.length, 32, 'the response carries a 32-byte sas_nonce');
  await g.send(u, d, { type: REVEAL, meeting_id: MEETING, request_id: request.request_id, sas_nonce: b64(guestNonce) });
  const participantIdentity = g.participantIdentity(u, d);
  const guestId = `guest:${g.sessionId}`;
  const participantId = `${u}:${d}`;
  const code = shortCode({
    guestNonce, participantNonce, guestIdentity: g.peer.identityKey(), participantIdentity, guestId, participantId, meetingId: MEETING,
  });
  const safetyNumber = fingerprint(guestId, g.peer.identityKey(), participantId, participantIdentity);
  return { request, res, guestNonce, participantNonce, participantIdentity, code, safetyNumber };
}

test('short code: guest and bot compute the same code and safety number (reply and initiate)', async (t) => {
  const { relay, bot, guest } = await setup(t);
  assert.equal(relay.state.mitm, undefined, 'no MITM state without the option');
  const alice = await bot({ userId: 'alice', deviceId: '1' });
  const bob = await bot({ userId: 'bob', deviceId: '2', mode: 'initiate' });
  const g = await guest();
  for (const [p, u, d] of [[alice, 'alice', '1'], [bob, 'bob', '2']]) {
    const x = await exchangeWithCode(g, u, d);
    assertResponse(x.res, x.request, p);
    assert.deepEqual(x.participantIdentity, p.peer.identityKey(), 'the genuine identity');
    await until(() => p.codes.has(g.sessionId));
    assert.deepEqual(p.codes.get(g.sessionId), { digits: x.code.digits, emoji: x.code.emoji, safetyNumber: x.safetyNumber });
    assert.match(x.code.digits, /^\d{4} \d{4} \d{4}$/);
    assert.match(x.safetyNumber, /^\d{60}$/);
    assert.deepEqual({ reveals: p.stats.reveals, revealsRefused: p.stats.revealsRefused, rejected: p.stats.rejected }, { reveals: 1, revealsRefused: 0, rejected: 0 });
  }
  assert.notEqual(alice.codes.get(g.sessionId).digits, bob.codes.get(g.sessionId).digits, 'each device has its own code');
  assert.notEqual(alice.codes.get(g.sessionId).safetyNumber, bob.codes.get(g.sessionId).safetyNumber);
});

test('short code: refused reveals leave no code', async (t) => {
  const { bot, guest } = await setup(t);
  const alice = await bot({ userId: 'alice', deviceId: '1' });
  const g = await guest();
  const reveal = (request_id, nonce, who = g) =>
    who.send('alice', '1', { type: REVEAL, meeting_id: MEETING, request_id, sas_nonce: b64(nonce) });
  const refusedAfter = async (n) => {
    await until(() => alice.stats.revealsRefused === n);
    await alice.idle();
  };

  // wrong nonce
  const ng = new Uint8Array(crypto.randomBytes(32));
  const request = await g.requestKey('alice', '1', { extra: { sas_commitment: b64(commitment(ng)) } });
  assertResponse(await g.receive('alice', '1'), request, alice);
  const wrong = ng.slice();
  wrong[0] ^= 1;
  await reveal(request.request_id, wrong);
  await refusedAfter(1);
  assert.equal(alice.codes.has(g.sessionId), false);
  // one reveal per request: the right nonce after a wrong one is refused too
  await reveal(request.request_id, ng);
  await refusedAfter(2);
  // unknown request id
  await reveal(crypto.randomBytes(16).toString('base64url'), ng);
  await refusedAfter(3);
  // a request without a commitment gets the key (and a nonce) but never a code
  const plain = await g.requestKey('alice', '1');
  const plainRes = await g.receive('alice', '1');
  assertResponse(plainRes, plain, alice);
  assert.equal(unb64(plainRes.plaintext.sas_nonce).length, 32);
  await reveal(plain.request_id, ng);
  await refusedAfter(4);
  // another guest cannot reveal for this guest's request
  const ng2 = new Uint8Array(crypto.randomBytes(32));
  const r2 = await g.requestKey('alice', '1', { extra: { sas_commitment: b64(commitment(ng2)) } });
  await g.receive('alice', '1');
  const other = await guest();
  const o = await other.requestKey('alice', '1');
  assertResponse(await other.receive('alice', '1'), o, alice);
  await reveal(r2.request_id, ng2, other);
  await refusedAfter(5);
  assert.equal(alice.codes.size, 0);
  assert.equal(alice.stats.reveals, 0);
  // an unknown plaintext type is still rejected, not taken for a reveal
  const rejected = alice.stats.rejected;
  await g.send('alice', '1', { type: 'guest:something_else', meeting_id: MEETING, request_id: r2.request_id, sas_nonce: b64(ng2) });
  await until(() => alice.stats.rejected === rejected + 1);
  assert.equal(alice.stats.revealsRefused, 5);

  // the same guest's right reveal for its own open request still yields a code
  await reveal(r2.request_id, ng2);
  await until(() => alice.codes.has(g.sessionId));
  assert.equal(alice.stats.reveals, 1);
  assert.equal(alice.codes.has(other.sessionId), false);
});

test('MITM: the guest gets the real key, but codes and safety numbers differ', async (t) => {
  const { relay, bot, guest } = await setup(t, { mitm: { userId: 'alice', deviceId: 1 } });
  const alice = await bot({ userId: 'alice', deviceId: '1', keyIndex: 3 });
  const bob = await bot({ userId: 'bob', deviceId: '1' }); // not attacked
  const m = relay.state.mitm;
  assert.equal(m.impostorIdentityKey.length, 33);
  assert.notDeepEqual(m.impostorIdentityKey, alice.peer.identityKey());
  const g = await guest();

  // the bundle served for the attacked device is the impostor's
  const b = await g.fetchBundle('alice', '1');
  assert.equal(b.status, 200);
  assert.deepEqual(Object.keys(b.json).sort(), ['device_id', 'identity_key', 'kyber_pre_key', 'pre_key', 'registration_id', 'signed_pre_key', 'user_id']);
  assert.equal(b.json.kyber_pre_key, null, 'the impostor is v3 only');
  assert.deepEqual({ user_id: b.json.user_id, device_id: b.json.device_id }, { user_id: 'alice', device_id: '1' });
  assert.deepEqual(unb64(b.json.identity_key), m.impostorIdentityKey);
  assert.ok(b.json.pre_key, 'the impostor hands out one-time prekeys');
  await g.peer.processBundle('p:alice:1', toPeerBundle(b.json));

  const x = await exchangeWithCode(g, 'alice', '1');
  assertResponse(x.res, x.request, alice); // the real key, for the guest's own request id
  assert.equal(keyCheckValue(unb64(x.res.plaintext.key)), keyCheckValue(alice.meetingKey));
  assert.equal(x.res.plaintext.key_index, 3);
  assert.deepEqual(
    { u: x.res.envelope.participant_user_id, d: x.res.envelope.participant_device_id }, { u: 'alice', d: '1' });
  assert.deepEqual(x.participantIdentity, m.impostorIdentityKey, 'the guest was given the impostor');

  const upSid = m.impostorGuests.get(g.sessionId);
  assert.equal(upSid, `mitm-${g.sessionId}`);
  assert.equal(relay.state.guests.get(upSid).admitted, true);
  await until(() => alice.codes.has(upSid));
  const genuine = alice.codes.get(upSid);
  assert.deepEqual(alice.peer.remoteIdentity(upSid), m.impostorGuestIdentityKey, 'the device was given the impostor guest');
  assert.notEqual(x.code.digits, genuine.digits);
  assert.notDeepEqual(x.code.emoji, genuine.emoji);
  assert.notEqual(x.safetyNumber, genuine.safetyNumber);
  assert.equal(alice.codes.has(g.sessionId), false, 'the device never heard from the real guest');
  assert.ok(relay.state.relayedToParticipants.every((r) => r.body.guest_session_id !== g.sessionId));
  assert.ok(relay.state.relayedToParticipants.some((r) => r.body.guest_session_id === upSid));
  assert.deepEqual(
    { requestsIntercepted: m.requestsIntercepted, answersForged: m.answersForged, revealsForwarded: m.revealsForwarded },
    { requestsIntercepted: 1, answersForged: 1, revealsForwarded: 1 });
  // the relay's view of both codes is the one each side computed
  await until(() => m.codes.has(g.sessionId));
  assert.deepEqual(m.codes.get(g.sessionId).guest, { ...x.code, safetyNumber: x.safetyNumber });
  assert.deepEqual(m.codes.get(g.sessionId).participant, genuine);
  // the genuine device's one-time prekeys went to the impostor guest only
  assert.equal(relay.state.prekeyConsumption.participants.get('alice:1'), 1);

  // a device that is not attacked still agrees with the guest
  const y = await exchangeWithCode(g, 'bob', '1');
  assert.deepEqual(y.participantIdentity, bob.peer.identityKey());
  await until(() => bob.codes.has(g.sessionId));
  assert.deepEqual(bob.codes.get(g.sessionId), { digits: y.code.digits, emoji: y.code.emoji, safetyNumber: y.safetyNumber });
  assert.equal(m.requestsIntercepted, 1);
});

test('MITM: a second request reuses the sessions; a rotating device keeps the guest fooled', async (t) => {
  const { relay, bot, guest } = await setup(t, { mitm: { userId: 'dave', deviceId: '1' } });
  const dave = await bot({ userId: 'dave', deviceId: '1', mode: 'rotate', rotateAfterMs: 300 });
  const g = await guest();
  const first = await g.requestKey('dave', '1');
  const res = await g.receive('dave', '1');
  assertResponse(res, first, { meetingKey: dave.meetingKey });
  const second = await g.requestKey('dave', '1');
  assertResponse(await g.receive('dave', '1'), second, { meetingKey: dave.meetingKey });
  const upd = await g.receive('dave', '1', 3000);
  assert.ok(upd, 'the key update came through the impostor');
  assert.equal(upd.plaintext.type, 'participant:meeting_e2ee_key_update');
  assert.deepEqual(unb64(upd.plaintext.key), new Uint8Array(dave.meetingKey));
  const m = relay.state.mitm;
  assert.deepEqual({ i: m.requestsIntercepted, f: m.answersForged, u: m.updatesForwarded }, { i: 2, f: 2, u: 1 });
  assert.equal(relay.state.prekeyConsumption.participants.get('dave:1'), 1, 'one X3DH with the device');
  assert.equal(dave.stats.requests, 2);
});

test('MITM: a device that answers on a session of its own (initiate) is fooled too', async (t) => {
  const { relay, bot, guest } = await setup(t, { mitm: { userId: 'bob', deviceId: '2' } });
  const bob = await bot({ userId: 'bob', deviceId: '2', mode: 'initiate' });
  const g = await guest();
  const x = await exchangeWithCode(g, 'bob', '2');
  assertResponse(x.res, x.request, bob);
  assert.deepEqual(x.participantIdentity, relay.state.mitm.impostorIdentityKey);
  const upSid = relay.state.mitm.impostorGuests.get(g.sessionId);
  assert.equal(relay.state.prekeyConsumption.guests.get(upSid), 1, 'the device fetched the impostor guest bundle');
  await until(() => bob.codes.has(upSid));
  assert.notEqual(bob.codes.get(upSid).digits, x.code.digits);
  assert.notEqual(bob.codes.get(upSid).safetyNumber, x.safetyNumber);
  assert.equal(relay.state.mitm.revealsForwarded, 1);
});

/** Runs a CLI in a child process; collects its stdout and ends it after the test. */
function runCli(t, args) {
  const child = spawn(process.execPath, args, { cwd: new URL('../../', import.meta.url), stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { text: '' };
  child.stdout.on('data', (c) => { out.text += c; });
  child.stderr.on('data', (c) => { out.text += c; });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  t.after(async () => {
    if (child.exitCode === null) child.kill('SIGTERM');
    await exited;
  });
  return out;
}

test('CLI: relay --mitm and bot print the codes each side sees', async (t) => {
  const relayOut = runCli(t, ['www/relay/relay.js', '--port', '0', '--mitm', 'alice:1']);
  await until(() => /^http:\/\/\S+$/m.test(relayOut.text) && relayOut.text.includes('MITM on alice:1'), 10_000);
  const relay = { url: relayOut.text.match(/^(http:\/\/\S+)$/m)[1] };
  const botOut = runCli(t, ['www/bot/bot.js', '--relay', relay.url, '--user', 'alice', '--device', '1']);
  await until(() => botOut.text.includes('ready'), 10_000);
  const g = await makeGuest(relay);
  t.after(() => g.socket.disconnect());
  const x = await exchangeWithCode(g, 'alice', '1');
  const upSid = `mitm-${g.sessionId}`;
  await until(() => /code with guest mitm-\S+: \d{4} \d{4} \d{4} /.test(botOut.text) && botOut.text.includes(`safety number with guest ${upSid}: `), 10_000);
  const [, botDigits] = botOut.text.match(/code with guest mitm-\S+: (\d{4} \d{4} \d{4}) /);
  assert.notEqual(botDigits, x.code.digits);
  // each side's view, as the relay logs it (two lines, which may arrive in separate chunks)
  await until(() => relayOut.text.includes(`guest ${g.sessionId} sees ${x.code.digits} ${emojiText(x.code.emoji)} / ${x.safetyNumber}`)
    && relayOut.text.includes(`alice:1 sees ${botDigits} `), 10_000);
});

test('CLI: the bot prints the code and safety number the guest computes', async (t) => {
  const { relay } = await setup(t);
  const botOut = runCli(t, ['www/bot/bot.js', '--relay', relay.url, '--user', 'carol', '--device', '7']);
  await until(() => botOut.text.includes('ready'), 10_000);
  const g = await makeGuest(relay);
  t.after(() => g.socket.disconnect());
  const x = await exchangeWithCode(g, 'carol', '7');
  await until(() => botOut.text.includes(`code with guest ${g.sessionId}: ${x.code.digits} ${emojiText(x.code.emoji)}\n`)
    && botOut.text.includes(`safety number with guest ${g.sessionId}: ${x.safetyNumber}\n`), 10_000);
});
