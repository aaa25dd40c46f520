// Proves the PeerWave harness with a JS guest (interop/peers.js) that speaks PeerWave's guest
// dialect as its Flutter guest does (docs: ../shared/docs/peerwave-as-shipped.md §2.1), against
// PeerWave's real server and the re-implemented Flutter participants.
//   node --test www/peerwave/harness.test.js
// First run: scripts/peerwave-setup.sh builds PeerWave's node_modules (about a minute).

import { test, describe, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import crypto from 'node:crypto';
import { io } from 'socket.io-client';
import { createPeer } from '../../interop/peers.js';
import { startPeerWave, clientIp } from './server.js';
import { startParticipant } from './participant.js';

const b64 = (u8) => Buffer.from(u8).toString('base64');
const unb64 = (s) => new Uint8Array(Buffer.from(s, 'base64'));

/** Next `event` on `socket` (matching `pred`), or a rejection after `ms`. */
function waitEvent(socket, event, ms = 5000, pred = () => true) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { socket.off(event, on); reject(new Error(`no ${event} within ${ms} ms`)); }, ms);
    function on(data) {
      if (!pred(data)) return;
      clearTimeout(timer);
      socket.off(event, on);
      resolve(data);
    }
    socket.on(event, on);
  });
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * A guest in PeerWave's dialect: register (camelCase inner keys, public halves only, ids >= 1),
 * then the /external socket with PeerWave's handshake triple. Own X-Forwarded-For, so it has its
 * own /api rate-limit bucket.
 */
async function startGuest(pw, { kind = 'ts', preKeyCount = 10, name = 'JS Guest' } = {}) {
  const ip = clientIp();
  const headers = { 'content-type': 'application/json', 'x-forwarded-for': ip };
  const api = async (method, path, body) => {
    const r = await fetch(`${pw.url}${path}`, { method, headers, body: body && JSON.stringify(body) });
    const text = await r.text();
    let json = null;
    try { json = JSON.parse(text); } catch { /* not JSON */ }
    return { status: r.status, json, text };
  };
  const peer = await createPeer(kind, { oneTimePreKeyCount: preKeyCount });
  const base = peer.bundle({ withOneTimePreKey: false });
  const preKeys = Array.from({ length: preKeyCount }, () => peer.bundle().preKey);
  const reg = await api('POST', '/api/meetings/external/register', {
    invitation_token: pw.invitationToken, display_name: name,
    identity_key_public: b64(base.identityKey),
    signed_pre_key: { keyId: base.signedPreKey.id, publicKey: b64(base.signedPreKey.publicKey), signature: b64(base.signedPreKey.signature) },
    pre_keys: preKeys.map((k) => ({ keyId: k.id, publicKey: b64(k.publicKey) })),
  });
  assert.equal(reg.status, 201, reg.text);
  assert.match(reg.json.session_id, /^[0-9a-f]{32}$/);
  assert.equal(reg.json.meeting_id, pw.meetingId);
  const sessionId = reg.json.session_id;
  const socket = io(`${pw.url}/external`, {
    transports: ['websocket'], auth: { session_id: sessionId, token: pw.invitationToken, meeting_id: pw.meetingId },
    reconnectionDelay: 200, reconnectionDelayMax: 500,
  });
  // PeerWave attaches the guest's handlers only after `authenticated`; earlier emits are lost.
  const auth = await Promise.race([waitEvent(socket, 'authenticated'),
    waitEvent(socket, 'error').then((e) => { throw new Error(`guest socket error: ${JSON.stringify(e)}`); })]);
  assert.equal(auth.success, true);
  assert.equal(auth.session_id, sessionId);

  return {
    peer, sessionId, socket, api,
    close: () => socket.close(),
    /** Fetch a participant's bundle (G4) and start an X3DH session to it. */
    async fetchBundle(p) {
      const r = await api('GET', `/api/meetings/external/${sessionId}/participant/${p.userId}/${p.deviceId}/keys?token=${pw.invitationToken}`);
      assert.equal(r.status, 200, r.text);
      return r.json;
    },
    async processBundle(address, kb) {
      await peer.processBundle(address, {
        registrationId: Number(kb.registration_id), deviceId: 1, identityKey: unb64(kb.identity_key),
        signedPreKey: { id: kb.signed_pre_key.keyId, publicKey: unb64(kb.signed_pre_key.publicKey), signature: unb64(kb.signed_pre_key.signature) },
        preKey: kb.one_time_pre_key ? { id: kb.one_time_pre_key.keyId, publicKey: unb64(kb.one_time_pre_key.publicKey) } : null,
      });
    },
    /** Encrypt PeerWave's request plaintext to `address` and emit it as the Flutter guest does. */
    async requestKey(address, p, requestId = `${sessionId}_${Date.now()}`) {
      const m = await peer.encrypt(address, new TextEncoder().encode(JSON.stringify({
        requesterId: sessionId, meetingId: pw.meetingId, timestamp: new Date().toISOString(),
      })));
      socket.emit('guest:meeting_e2ee_key_request', {
        participant_user_id: p.userId, participant_device_id: p.deviceId,
        ciphertext: b64(m.body), messageType: m.type, request_id: requestId,
      });
      return { requestId, message: m };
    },
    /** Decrypt a participant:meeting_e2ee_key_response and parse its JSON plaintext. */
    async openResponse(address, resp) {
      const pt = await peer.decrypt(address, { type: resp.messageType, body: unb64(resp.ciphertext) });
      return JSON.parse(new TextDecoder().decode(pt));
    },
  };
}

describe('PeerWave harness (real server at upstream 8956afd)', () => {
  /** @type {Awaited<ReturnType<typeof startPeerWave>>} */
  let pw;
  let open = []; // participants and guests of the running test, closed after it (pass or fail)
  before(async () => { pw = await startPeerWave(); });
  afterEach(async () => {
    for (const x of open.reverse()) await x.close();
    open = [];
  });
  after(async () => { await pw?.stop(); });
  const track = (x) => { open.push(x); return x; };

  test('boot: loopback only, invitation valid, fake LiveKit behind livekit-participants', async () => {
    assert.ok(pw.bootMs > 0);
    const ip = clientIp();
    const join = await fetch(`${pw.url}/api/meetings/external/join/${pw.invitationToken}`, { headers: { 'x-forwarded-for': ip } });
    assert.equal(join.status, 200);
    assert.equal((await join.json()).meeting.meeting_id, pw.meetingId);

    pw.livekit.setParticipants(['u-1:3', 'guest_abc', 'u-2:nodevice']);
    const r = await fetch(`${pw.url}/api/meetings/${pw.meetingId}/livekit-participants?token=${pw.invitationToken}`, { headers: { 'x-forwarded-for': ip } });
    assert.equal(r.status, 200);
    const body = await r.json();
    // guest_* filtered and malformed identities dropped by PeerWave; device id parsed to int
    assert.deepEqual(body.participants.map((p) => [p.user_id, p.device_id]), [['u-1', 3]]);
    const last = pw.livekit.requests.at(-1);
    assert.equal(last.url, '/twirp/livekit.RoomService/ListParticipants');
    assert.deepEqual(last.body, { room: pw.meetingId });
    assert.ok(last.authorized);

    // Not reachable on a non-loopback address of this machine (if it has one).
    const ext = Object.values(os.networkInterfaces()).flat().find((a) => a && !a.internal && a.family === 'IPv4');
    if (ext) {
      const err = await new Promise((res) => {
        const s = net.connect(pw.port, ext.address, () => { s.destroy(); res(null); });
        s.on('error', res);
      });
      assert.equal(err?.code, 'ECONNREFUSED', `PeerWave answered on ${ext.address}`);
    }
  });

  test('webRoot is served same-origin as server/web (static files and the SPA fallback)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pw-web-'));
    fs.writeFileSync(path.join(dir, 'index.html'), '<!doctype html><title>spa-index</title>');
    fs.writeFileSync(path.join(dir, 'guest.html'), '<!doctype html><title>guest-page</title>');
    const web = await startPeerWave({ webRoot: dir }); // a second instance next to `pw`
    try {
      const page = await fetch(`${web.url}/guest.html`);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /guest-page/);
      // With a web root, unknown GETs (even under /api) get index.html, as on a Flutter deployment.
      const unknown = await fetch(`${web.url}/api/no/such/route`, { headers: { 'x-forwarded-for': clientIp() } });
      assert.equal(unknown.status, 200);
      assert.match(await unknown.text(), /spa-index/);
      // The instance without a web root has none.
      assert.equal((await fetch(`${pw.url}/guest.html`)).status, 404);
    } finally {
      await web.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  // The official participant writes version byte 0x34, which the TS port refuses
  // (interop/peers.test.js), so that case uses an official guest; ts is what Dart writes (0x33).
  for (const [participantKind, guestKind, versionByte] of [['ts', 'ts', 0x33], ['official', 'official', 0x34]]) {
    test(`full guest flow: ${guestKind} guest <-> ${participantKind} participant`, async () => {
      const meetingKey = crypto.randomBytes(32);
      const p = track(await startParticipant({ server: pw, peer: participantKind, meetingKey, decryptRequests: true }));
      pw.livekit.setParticipants([p.livekitIdentity]);
      const g = track(await startGuest(pw, { kind: guestKind }));

      // admission: request -> participants see it -> harness admits -> guest sees the grant
      const seen = waitEvent(p.socket, 'meeting:guest_admission_request', 5000, (d) => d.session_id === g.sessionId);
      const ra = await g.api('POST', `/api/meetings/${pw.meetingId}/external/${g.sessionId}/request-admission`);
      assert.equal(ra.status, 200, ra.text);
      assert.equal(ra.json.admitted, false);
      await seen;
      const granted = waitEvent(g.socket, 'meeting:admission_granted', 5000, (d) => d.session_id === g.sessionId);
      const admitted = await pw.admit(g.sessionId);
      assert.equal(admitted.admitted, true);
      await granted;

      // discovery
      const lp = await g.api('GET', `/api/meetings/${pw.meetingId}/livekit-participants?token=${pw.invitationToken}`);
      assert.equal(lp.status, 200, lp.text);
      assert.deepEqual(lp.json.participants.map((x) => [x.user_id, x.device_id]), [[p.userId, p.deviceId]]);

      // the participant's real bundle, first prekey id 0 as with PeerWave's Dart participants
      const kb = await g.fetchBundle(p);
      assert.equal(kb.identity_key, b64(p.identityKey));
      assert.equal(kb.registration_id, String(p.registrationId));
      assert.equal(kb.signed_pre_key.keyId, 0);
      assert.equal(kb.one_time_pre_key.keyId, 0);

      // request -> broadcast -> fresh-session answer
      const address = `participant:${p.userId}:${p.deviceId}`;
      await g.processBundle(address, kb);
      const response = waitEvent(g.socket, 'participant:meeting_e2ee_key_response');
      const { requestId } = await g.requestKey(address, p);
      const resp = await response;
      assert.equal(resp.participant_user_id, p.userId);
      assert.equal(resp.participant_device_id, p.deviceId);
      assert.equal(resp.meeting_id, pw.meetingId);
      assert.equal(resp.request_id, requestId);
      assert.equal(resp.messageType, 3, 'always a PreKeySignalMessage (fresh session)');
      assert.equal(unb64(resp.ciphertext)[0], versionByte);

      // Same address as the bundle: trust-on-first-use refuses another identity, so a successful
      // decrypt also shows the answer comes from the identity in the fetched bundle.
      const plain = await g.openResponse(address, resp);
      assert.deepEqual(Object.keys(plain).sort(), ['encryptedKey', 'meetingId', 'timestamp']);
      assert.equal(plain.meetingId, pw.meetingId);
      assert.equal(plain.encryptedKey, b64(meetingKey));
      assert.ok(Math.abs(plain.timestamp - Date.now()) < 120_000);
      if (g.peer.remoteIdentity) assert.deepEqual(g.peer.remoteIdentity(address), p.identityKey);

      // the guest's X3DH request was decryptable with the seeded keys (participant side)
      await p.idle();
      assert.equal(p.stats.answers, 1);
      assert.equal(p.stats.decrypted, 1);
      assert.equal(p.decryptedRequests[0].plaintext.requesterId, g.sessionId);
    });
  }

  test('broadcast reaches every participant in the room, whatever the target; silent never answers; exhausted guest bundle is a 404', async () => {
    const key = crypto.randomBytes(32);
    const a = track(await startParticipant({ server: pw, peer: 'ts', mode: 'reply', meetingKey: key }));
    const s = track(await startParticipant({ server: pw, peer: 'ts', mode: 'silent', meetingKey: key }));
    const g = track(await startGuest(pw, { preKeyCount: 1 }));
    await g.processBundle('target', await g.fetchBundle(s)); // the guest asks the silent one

    const answers = [];
    g.socket.on('participant:meeting_e2ee_key_response', (d) => answers.push(d));
    const first = waitEvent(g.socket, 'participant:meeting_e2ee_key_response');
    await g.requestKey('target', s);
    assert.equal((await first).participant_user_id, a.userId, 'answered by the participant that was not asked');
    await g.requestKey('target', s); // the guest's only prekey is gone now
    await sleep(1000);
    for (const p of [a, s]) await p.idle();

    assert.equal(a.stats.requests, 2);
    assert.equal(s.stats.requests, 2);
    assert.equal(s.stats.answers, 0);
    assert.equal(a.stats.answers, 1);
    assert.equal(a.stats.bundle404, 1);
    assert.equal(answers.length, 1);
  });

  test('two repliers, one guest prekey: the guest can open exactly one answer', async (t) => {
    // PeerWave's guest bundle route reads and rewrites pre_keys without a transaction, so
    // concurrent fetches usually get the SAME prekey (both answer, the second is undecryptable);
    // otherwise the second fetch is a 404. Either way one answer is usable.
    const key = crypto.randomBytes(32);
    const a = track(await startParticipant({ server: pw, peer: 'ts', meetingKey: key }));
    const b = track(await startParticipant({ server: pw, peer: 'ts', meetingKey: key }));
    const g = track(await startGuest(pw, { preKeyCount: 1 }));
    await g.processBundle('a', await g.fetchBundle(a));
    const answers = [];
    g.socket.on('participant:meeting_e2ee_key_response', (d) => answers.push(d));
    await g.requestKey('a', a);
    await sleep(1500);
    for (const p of [a, b]) await p.idle();

    assert.equal(a.stats.requests + b.stats.requests, 2);
    assert.equal(a.stats.answers + a.stats.bundle404 + b.stats.answers + b.stats.bundle404, 2);
    assert.equal(answers.length, a.stats.answers + b.stats.answers);
    let opened = 0;
    for (const resp of answers) {
      const from = resp.participant_user_id === a.userId ? 'from-a' : 'from-b';
      try {
        assert.equal((await g.openResponse(from, resp)).encryptedKey, b64(key));
        opened++;
      } catch (e) {
        t.diagnostic(`second answer not decryptable: ${e.message}`);
      }
    }
    t.diagnostic(`answers ${answers.length}, guest-bundle 404s ${a.stats.bundle404 + b.stats.bundle404}`);
    assert.equal(opened, 1);
  });

  test('restart loses guest sessions; participants re-authenticate but do not rejoin the room', async () => {
    const key = crypto.randomBytes(32);
    const p = track(await startParticipant({ server: pw, peer: 'ts', meetingKey: key }));
    const g = track(await startGuest(pw));
    assert.equal(p.stats.connects, 1);

    const invalid = waitEvent(g.socket, 'error', 20000);
    await pw.restart();
    // the guest's own socket reconnects with the same handshake and is refused
    assert.deepEqual(await invalid, { message: 'Invalid session' });
    const old = await g.api('GET', `/api/meetings/external/${g.sessionId}/participant/${p.userId}/${p.deviceId}/keys`);
    assert.equal(old.status, 404);
    assert.deepEqual(old.json, { error: 'Session not found' });
    g.close();

    // the participant's cookie session survives (stored in the DB), the socket room does not
    await p.ready;
    assert.equal(p.stats.connects, 2);
    assert.equal(p.inRoom, false);
    const g2 = track(await startGuest(pw));
    await g2.processBundle('p', await g2.fetchBundle(p));
    const answers = [];
    g2.socket.on('participant:meeting_e2ee_key_response', (d) => answers.push(d));
    await g2.requestKey('p', p);
    await sleep(1000);
    assert.equal(p.stats.requests, 0, 'a reconnected Flutter participant is not in room meeting:<id>');
    assert.equal(answers.length, 0);

    // reopening the meeting view (join-room) restores the path
    await p.joinRoom();
    const resp = waitEvent(g2.socket, 'participant:meeting_e2ee_key_response');
    await g2.requestKey('p', p);
    const plain = await g2.openResponse('p', await resp);
    assert.equal(plain.encryptedKey, b64(key));
  });
});
