// End to end: the demo prejoin page in headless Chromium (playwright-core + Debian's
// chromium), the SDK's wasm package, real socket.io-client and livekit-client, the
// reference relay and participant bots running official libsignal 0.72.1 (Signal v3) or,
// in tests 12 and 12c, 0.103.0 (v4: PQXDH + SPQR).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startDemo } from '../demo/server.js';
import { launchChromium } from '../demo/chromium.js';
import { keyCheckValue } from '../bot/bot.js';
import { frameCheck } from './frame-check.js';
import { fingerprint } from '../../interop/peers.js';
import { EMOJI } from '../bot/sas.js';
import { at, pageHelpers, requestGap } from './page.js';

let browser;
before(async () => { browser = await launchChromium(); });
after(async () => { await browser?.close(); });

// open() starts relay + bots + page server and opens the page in a fresh browser context.
const { open, settled, join, retry, until } = pageHelpers({ browser: () => browser, start: startDemo });

test('1 happy path: the key handed to the key provider (GuestKeyProvider) is the participants\' key', async () => {
  const s = await open({ bots: ['reply', 'reply'] });
  try {
    const state = await join(s.page);
    assert.equal(state.error, null);
    assert.equal(state.result.from.userId, 'participant-1');
    assert.equal(state.setKeyCalls.length, 1);
    assert.equal(state.setKeyCalls[0].material, s.demo.meetingKey.toString('base64'), 'base64 profile');
    assert.equal(state.result.keyCheckValue, keyCheckValue(s.demo.meetingKey));
    assert.equal(await s.page.textContent('#check-value'), keyCheckValue(s.demo.meetingKey));
  } finally { await s.close(); }
});

test('1b safety number: the guest shows what official libsignal computes for the two identities', async () => {
  const s = await open({ bots: ['reply'] });
  try {
    const state = await join(s.page);
    const bot = s.demo.bots[0].peer;
    const official = fingerprint(
      Buffer.from('participant-1:1'), bot.identityKey(),
      Buffer.from(`guest:${state.registration.sessionId}`), Uint8Array.from(state.identityKey),
    );
    assert.equal(state.result.safetyNumber, official);
    assert.equal((await s.page.textContent('#safety-number')).replaceAll(' ', ''), official);
  } finally { await s.close(); }
});

test('1c verification code: the guest and the participant read the same code', async () => {
  const s = await open({ bots: ['reply'] });
  try {
    const state = await join(s.page);
    const sid = state.registration.sessionId;
    await until(() => s.demo.bots[0].codes.has(sid), 'the participant computed its code');
    const theirs = s.demo.bots[0].codes.get(sid);
    assert.equal(state.result.shortCode.digits, theirs.digits);
    assert.deepEqual(state.result.shortCode.emoji, theirs.emoji.map((i) => EMOJI[i][0]));
    assert.equal(state.result.shortCode.emojiNames.length, 7);
    assert.equal(state.result.safetyNumber, theirs.safetyNumber);
    assert.match(await s.page.textContent('#short-code'), new RegExp(theirs.digits));
    await s.page.waitForFunction(() => window.demo.participantCode);
    assert.match(await s.page.textContent('#participant-code'), /same: no one in the middle/);
  } finally { await s.close(); }
});

test('1d by default each guest starts at the participant its session id picks (FNV-1a modulo the list)', async () => {
  const s = await open({ bots: ['reply', 'reply', 'reply'] }, '?e2e&order=spread&hedge=0');
  try {
    const state = await join(s.page);
    const fnv = [...new TextEncoder().encode(state.registration.sessionId)]
      .reduce((h, b) => Math.imul(h ^ b, 0x01000193) >>> 0, 0x811c9dc5);
    assert.equal(state.result.from.userId, `participant-${(fnv % 3) + 1}`, `session ${state.registration.sessionId}`);
  } finally { await s.close(); }
});

test('2 first participant silent, one at a time (hedgeAfterMs: 0): the second asked 5 s after the first, the key within 6.5 s', async () => {
  const s = await open({ bots: ['silent', 'reply'] }, '?e2e&hedge=0');
  try {
    const state = await join(s.page);
    assert.equal(state.result.from.userId, 'participant-2');
    const rotated = requestGap(s.demo.relay, 'participant-1', 'participant-2');
    assert.ok(rotated >= 4.95 && rotated <= 6.0, `second request ${rotated.toFixed(3)} s after the first`);
    const waited = at(state, 'Received the meeting key from participant-2') - at(state, 'Asking participant-1/1 for the meeting key');
    assert.ok(waited <= 6.5, `key ${waited.toFixed(3)} s after the first request`);
    assert.ok(state.transcript.some((l) => l.text.includes('rotating to participant-2')));
  } finally { await s.close(); }
});

test('2b first participant silent, hedged (the default): the second is asked at 1.5 s, key within 2 s', async () => {
  const s = await open({ bots: ['silent', 'reply'] });
  try {
    const state = await join(s.page);
    assert.equal(state.error, null, JSON.stringify(state.error));
    assert.equal(state.result.from.userId, 'participant-2');
    const hedgeGap = requestGap(s.demo.relay, 'participant-1', 'participant-2');
    const hedged = at(state, 'participant-1/1 has not answered yet; asking participant-2/1 as well');
    const received = at(state, 'Received the meeting key from participant-2');
    assert.ok(hedgeGap >= 1.45 && hedgeGap < 1.9, `hedged ${hedgeGap.toFixed(3)} s after the first request`);
    assert.ok(state.result.timeToKeyMs <= 2_000, `key in ${state.result.timeToKeyMs} ms`);
    assert.ok(received > hedged);
    assert.ok(!state.transcript.some((l) => l.text.includes('rotating')), 'no failure counted');
    // The silent one's deadline passes later without effect.
    await new Promise((r) => setTimeout(r, 4_000));
    const after = await s.page.evaluate(() => window.demo);
    assert.equal(after.error, null);
    assert.equal(after.keys.length, 1);
  } finally { await s.close(); }
});

test('3 all silent: KEY_EXCHANGE_FAILED after 3 attempts; Try again reuses sessions', async () => {
  const s = await open({ bots: ['silent', 'silent', 'silent'] }, '?e2e&timeout=1500');
  try {
    const failed = await join(s.page);
    assert.equal(failed.error.code, 'KEY_EXCHANGE_FAILED');
    assert.equal(failed.error.retryable, true);
    assert.deepEqual(failed.error.attempts.map((a) => [a.participant.userId, a.reason]), [
      ['participant-1', 'timeout'], ['participant-2', 'timeout'], ['participant-3', 'timeout'],
    ]);
    assert.equal(await s.page.isVisible('#retry'), true);
    const consumed = new Map(s.demo.relay.state.prekeyConsumption.participants);
    assert.equal([...consumed.values()].reduce((a, b) => a + b, 0), 3);
    s.demo.bots[1].setMode('reply');
    const state = await retry(s.page);
    assert.equal(state.result.from.userId, 'participant-2');
    assert.deepEqual(new Map(s.demo.relay.state.prekeyConsumption.participants), consumed,
      'cached sessions: no extra one-time prekey consumed');
  } finally { await s.close(); }
});

test('4 participant answers with its own PreKey message (initiate mode)', async () => {
  const s = await open({ bots: ['initiate'] });
  try {
    const state = await join(s.page);
    assert.equal(state.error, null);
    assert.equal(state.result.keyCheckValue, keyCheckValue(s.demo.meetingKey));
    const answers = s.demo.relay.state.relayedToGuests;
    assert.equal(answers.length, 1);
    assert.equal(answers[0].body.message_type, 3, 'the answer was a PreKeySignalMessage');
    assert.equal(s.demo.relay.state.prekeyConsumption.guests.size, 1, 'the bot fetched the guest\'s bundle');
  } finally { await s.close(); }
});

test('5 rotate: the page receives the new key with its key_index', async () => {
  const s = await open({ bots: ['rotate'], rotateAfterMs: 500 });
  try {
    await join(s.page);
    await s.page.waitForFunction(() => window.demo.keys.length >= 2, null, { timeout: 10_000 });
    const state = await s.page.evaluate(() => window.demo);
    assert.equal(state.keys[1].keyIndex, 1);
    assert.equal(state.keys[1].keyCheckValue, keyCheckValue(s.demo.bots[0].meetingKey));
    assert.notEqual(state.keys[1].keyCheckValue, state.keys[0].keyCheckValue);
    assert.equal(state.setKeyCalls[1].keyIndex, 1);
    assert.equal(state.setKeyCalls[1].material, Buffer.from(s.demo.bots[0].meetingKey).toString('base64'));
    assert.equal(await s.page.textContent('#key-index'), '1');
  } finally { await s.close(); }
});

test('6 frame check: livekit-client key derivation on both sides decrypts the same frame', async () => {
  const s = await open({ bots: ['reply'] });
  try {
    await join(s.page);
    const check = (participantKeyBase64) => s.page.evaluate(frameCheck, participantKeyBase64);
    assert.equal(await check(s.demo.meetingKey.toString('base64')), 'an encrypted video frame');
    const wrong = Buffer.alloc(32, 7).toString('base64');
    assert.equal(await check(wrong), 'decryption failed', 'a different key must not decrypt');
  } finally { await s.close(); }
});

test('7 no private key reaches the relay; no key material in the browser console', async () => {
  const s = await open({ bots: ['silent', 'rotate'], rotateAfterMs: 300 }, '?e2e&debug&timeout=1000');
  try {
    await join(s.page);
    await s.page.waitForFunction(() => window.demo.keys.length >= 2, null, { timeout: 10_000 });
    const [body] = s.demo.relay.state.registrations;
    assert.deepEqual(Object.keys(body).sort(), [
      'display_name', 'identity_key_public', 'invitation_token', 'kyber_pre_key', 'meeting_id', 'pre_keys',
      'registration_id', 'signed_pre_key',
    ]);
    const publicKey = (b64) => { const k = Buffer.from(b64, 'base64'); return k.length === 33 && k[0] === 5; };
    assert.ok(publicKey(body.identity_key_public));
    assert.deepEqual(Object.keys(body.kyber_pre_key).sort(), ['id', 'public_key', 'signature']);
    const kyber = Buffer.from(body.kyber_pre_key.public_key, 'base64');
    assert.equal(kyber.length, 1569);
    assert.equal(kyber[0], 0x08);
    assert.equal(Buffer.from(body.kyber_pre_key.signature, 'base64').length, 64);
    assert.deepEqual(Object.keys(body.signed_pre_key).sort(), ['id', 'public_key', 'signature']);
    assert.ok(publicKey(body.signed_pre_key.public_key));
    assert.equal(Buffer.from(body.signed_pre_key.signature, 'base64').length, 64);
    assert.equal(body.pre_keys.length, 30);
    for (const pk of body.pre_keys) {
      assert.deepEqual(Object.keys(pk).sort(), ['id', 'public_key']);
      assert.ok(publicKey(pk.public_key));
    }
    assert.ok(s.lines.length > 10, 'debug logging was on');
    const keys = [s.demo.meetingKey, s.demo.bots[1].meetingKey];
    const text = s.lines.join('\n');
    for (const key of keys) {
      for (const encoded of [key.toString('base64'), Buffer.from(key).toString('hex'), key.toString('base64url')]) {
        assert.ok(!text.includes(encoded), 'console carries key material');
        assert.ok(!text.includes(encoded.slice(0, 16)), 'console carries part of the key');
      }
    }
  } finally { await s.close(); }
});

test('8 reload in the same tab reuses the stored identity: no second registration (a reload is not a leave)', async () => {
  const s = await open({ bots: ['reply'] });
  try {
    const first = await join(s.page);
    assert.equal(first.registration.reused, false);
    await s.page.reload();
    await s.page.waitForFunction(() => window.demo?.ready);
    const second = await join(s.page);
    assert.equal(second.registration.reused, true);
    assert.equal(second.registration.sessionId, first.registration.sessionId);
    assert.equal(second.keyGenerationMs, null, 'keys were loaded, not generated');
    assert.equal(s.demo.relay.state.registrations.length, 1);
    assert.equal(second.result.keyCheckValue, keyCheckValue(s.demo.meetingKey));
  } finally { await s.close(); }
});

test('8b after a reload the participant that answered is asked first: no 5 s for the silent one', async () => {
  const s = await open({ bots: ['silent', 'reply'] }, '?e2e&hedge=0');
  try {
    const first = await join(s.page);
    assert.ok(first.transcript.some((l) => l.text.includes('rotating to participant-2')));
    await s.page.reload();
    await s.page.waitForFunction(() => window.demo?.ready);
    const second = await join(s.page);
    assert.equal(second.result.from.userId, 'participant-2');
    assert.ok(!second.transcript.some((l) => l.text.includes('rotating')), 'no rotation after the reload');
    assert.ok(second.result.timeToKeyMs < 2_000, `key in ${second.result.timeToKeyMs} ms`);
  } finally { await s.close(); }
});

test('8c the Leave button leaves the meeting: keys wiped, the next visit registers anew', async () => {
  const s = await open({ bots: ['reply'] });
  try {
    const first = await join(s.page);
    const stored = () => s.page.evaluate(() => Object.keys(sessionStorage).filter((k) => k.startsWith('signal-guest/')));
    assert.ok((await stored()).length > 0);
    await s.page.click('#leave');
    assert.equal(await s.page.evaluate(() => window.demo.left), true);
    assert.deepEqual(await stored(), [], 'leave() wiped the stored state');
    await s.page.reload();
    await s.page.waitForFunction(() => window.demo?.ready);
    assert.deepEqual(await stored(), []);
    const second = await join(s.page);
    assert.equal(second.registration.reused, false);
    assert.notEqual(second.registration.sessionId, first.registration.sessionId);
    assert.equal(second.result.keyCheckValue, keyCheckValue(s.demo.meetingKey));
  } finally { await s.close(); }
});

test('8d default socket.io transports, exchangeKey() right after connect(): no attempt is lost', async () => {
  const s = await open({ bots: ['reply', 'reply'] }, '?e2e&polling');
  try {
    const state = await join(s.page);
    assert.equal(state.error, null, JSON.stringify(state.error));
    assert.equal(state.result.keyCheckValue, keyCheckValue(s.demo.meetingKey));
    assert.ok(!state.transcript.some((l) => /could not send|rotating/.test(l.text)), state.transcript.map((l) => l.text).join('\n'));
  } finally { await s.close(); }
});

test('10 a server in the middle: the real key arrives, but the codes and safety numbers differ', async () => {
  const s = await open({ bots: ['reply', 'reply'], mitm: { userId: 'participant-1', deviceId: '1' } });
  try {
    const state = await join(s.page);
    const sid = state.registration.sessionId;
    assert.equal(state.result.from.userId, 'participant-1');
    assert.equal(state.result.keyCheckValue, keyCheckValue(s.demo.meetingKey), 'the key check value cannot tell');
    await until(() => s.demo.bots[0].codes.has(`mitm-${sid}`), 'the genuine participant computed its code');
    const genuine = s.demo.bots[0].codes.get(`mitm-${sid}`);
    assert.notEqual(state.result.shortCode.digits, genuine.digits, 'the codes differ');
    await s.page.waitForFunction(() => window.demo.participantCode);
    assert.match(await s.page.textContent('#participant-code'), /DIFFERENT: someone is in the middle/);
    const genuineSafetyNumber = fingerprint(
      Buffer.from('participant-1:1'), s.demo.bots[0].peer.identityKey(),
      Buffer.from(`guest:${sid}`), Uint8Array.from(state.identityKey),
    );
    assert.notEqual(state.result.safetyNumber, genuineSafetyNumber, 'the safety numbers differ');
    assert.ok(s.demo.relay.state.mitm.answersForged >= 1);
  } finally { await s.close(); }
});

test('11 pinning the participant\'s identity stops the server in the middle before any request', async () => {
  const mitm = { userId: 'participant-1', deviceId: '1' };
  const s = await open({ bots: ['reply', 'reply'], mitm }, '?e2e');
  try {
    // What the page learned earlier, e.g. from verified safety numbers: the genuine keys of both.
    const key = Buffer.from(s.demo.bots[0].peer.identityKey()).toString('base64');
    const other = Buffer.from(s.demo.bots[1].peer.identityKey()).toString('base64');
    await s.page.goto(`${s.demo.url}?e2e&pin=${encodeURIComponent(`participant-1:1:${key}`)}&pin=${encodeURIComponent(`participant-2:1:${other}`)}`);
    await s.page.waitForFunction(() => window.demo?.ready);
    const state = await join(s.page);
    assert.equal(state.error, null, JSON.stringify(state.error));
    assert.equal(state.result.from.userId, 'participant-2', 'rotated past the swapped device');
    assert.ok(state.transcript.some((l) => /not the one expected/.test(l.text)), state.transcript.map((l) => l.text).join('\n'));
    assert.equal(s.demo.relay.state.mitm.requestsIntercepted, 0, 'nothing reached the impostor');
    assert.equal(state.result.keyCheckValue, keyCheckValue(s.demo.meetingKey));
  } finally { await s.close(); }
});

test('11b a device the server adds for a pinned user: never asked with pins; asked (and caught only by the code) without them', async () => {
  // The relay lists participant-1:2, first, with an impostor's bundle; the genuine device is 1.
  const mitm = { userId: 'participant-1', deviceId: '1', extraDevice: '2' };
  const s = await open({ bots: ['reply', 'reply'], mitm }, '?e2e');
  try {
    // Without pins, the extra device is asked first and its impostor answers with the real key.
    const unpinned = await join(s.page);
    assert.equal(unpinned.error, null, JSON.stringify(unpinned.error));
    assert.deepEqual(unpinned.result.from, { userId: 'participant-1', deviceId: '2' });
    assert.equal(unpinned.result.keyCheckValue, keyCheckValue(s.demo.meetingKey), 'the key check value cannot tell');
    assert.equal(unpinned.result.identityKey, Buffer.from(s.demo.relay.state.mitm.impostorIdentityKey).toString('base64'),
      'the result names the identity that answered');
    assert.ok(s.demo.relay.state.mitm.answersForged >= 1);
    const intercepted = s.demo.relay.state.mitm.requestsIntercepted;

    // The page pins what it verified for participant-1:1 (the genuine key) and joins again.
    const genuine = Buffer.from(s.demo.bots[0].peer.identityKey()).toString('base64');
    await s.page.click('#leave');
    await s.page.goto(`${s.demo.url}?e2e&pin=${encodeURIComponent(`participant-1:1:${genuine}`)}`);
    await s.page.waitForFunction(() => window.demo?.ready);
    const pinned = await join(s.page);
    assert.equal(pinned.error, null, JSON.stringify(pinned.error));
    assert.deepEqual(pinned.result.from, { userId: 'participant-1', deviceId: '1' });
    assert.equal(pinned.result.identityKey, genuine);
    assert.equal(s.demo.relay.state.mitm.requestsIntercepted, intercepted, 'nothing reached the extra device');
    assert.equal(pinned.result.keyCheckValue, keyCheckValue(s.demo.meetingKey));
  } finally { await s.close(); }
});

test('9 guest not admitted: it prepares in the lobby (one keybundle) and sends nothing; admission only sends, the key comes', async () => {
  const s = await open({ bots: ['reply'], autoAdmit: false }, '?e2e&timeout=1000');
  const bundles = () => [...s.demo.relay.state.prekeyConsumption.participants.values()].reduce((a, b) => a + b, 0);
  try {
    await s.page.click('#join');
    await s.page.waitForFunction(() => window.demo.transcript.some((l) => /let you in/.test(l.text)), null, { timeout: 20_000 });
    await new Promise((r) => setTimeout(r, 1_500));
    assert.equal(s.demo.bots[0].stats.envelopes, 0, 'the participant received nothing');
    assert.equal(s.demo.relay.state.relayedToParticipants.length, 0);
    const sessionId = await s.page.evaluate(() => window.demo.registration.sessionId);
    assert.equal(s.demo.relay.state.heldFor(sessionId), 0, 'the guest sent nothing before admission');
    assert.equal(bundles(), 1, 'the keybundle was fetched in the lobby');
    // Each emit on the page's socket goes into the transcript, between the page's own lines.
    await s.page.evaluate(() => {
      const socket = window.guestSocket;
      const emit = socket.emit.bind(socket);
      socket.emit = (event, ...args) => {
        window.demo.transcript.push({ t: null, text: `socket emit ${event}` });
        return emit(event, ...args);
      };
    });
    assert.equal(s.demo.relay.state.admit(sessionId), true);
    const state = await settled(s.page);
    assert.equal(state.error, null, JSON.stringify(state.error));
    // The prepared request leaves before the page hears of the admission: a slow onEvent
    // handler does not hold it up.
    const lines = state.transcript.map((l) => l.text);
    const sent = lines.indexOf('socket emit guest:signal_message');
    const heard = lines.indexOf('The host let you in');
    assert.ok(sent >= 0 && heard >= 0, JSON.stringify(lines));
    assert.ok(sent < heard, `request sent before the admitted event reached the page: ${JSON.stringify(lines)}`);
    assert.equal(state.result.keyCheckValue, keyCheckValue(s.demo.meetingKey));
    assert.ok(s.demo.bots[0].stats.requests >= 1);
    assert.equal(bundles(), 1, 'admission only sent: no keybundle fetched after it');
  } finally { await s.close(); }
});

// ---------- Signal v4: a participant on libsignal 0.103.0 ----------

/** Version byte of each message the guest sent to a participant, as the relay forwarded it. */
const guestVersionBytes = (relay) =>
  relay.state.relayedToParticipants.map((r) => Buffer.from(r.body.encrypted_message, 'base64')[0]);

/** The key arrived and works: the same checks as tests 1 and 6. */
/**
 * Joins, checks the key, and that the guest asked with a PreKeySignalMessage and wrote every
 * message in `version` (0x33: v3, X3DH; 0x44: v4, PQXDH + SPQR). Returns the page's state.
 */
async function joinSpeaking(s, version) {
  const state = await join(s.page);
  await assertKeyWorks(s, state);
  const sent = s.demo.relay.state.relayedToParticipants;
  assert.ok(sent.length >= 1, 'the guest sent its request');
  assert.equal(sent[0].body.message_type, 3, 'a PreKeySignalMessage');
  assert.deepEqual(guestVersionBytes(s.demo.relay), sent.map(() => version), `every guest message has version byte ${version.toString(16)}`);
  return state;
}

async function assertKeyWorks(s, state) {
  assert.equal(state.error, null, JSON.stringify(state.error));
  assert.equal(state.result.from.userId, 'participant-1');
  assert.equal(state.setKeyCalls.length, 1);
  assert.equal(state.setKeyCalls[0].material, s.demo.meetingKey.toString('base64'), 'base64 profile');
  assert.equal(state.result.keyCheckValue, keyCheckValue(s.demo.meetingKey));
  assert.equal(await s.page.textContent('#check-value'), keyCheckValue(s.demo.meetingKey));
  assert.equal(await s.page.evaluate(frameCheck, s.demo.meetingKey.toString('base64')), 'an encrypted video frame');
}

test('12 libsignal 0.103 participant (v4 only): the guest asks with a v4 PreKey message (0x44) and gets the key', async () => {
  const s = await open({ bots: [{ mode: 'reply', peer: 'current' }] });
  try {
    assert.equal(s.demo.bots[0].peerKind, 'current');
    assert.ok(s.demo.relay.state.participantKeys.get('participant-1:1').kyber_pre_key, 'the bot published a Kyber prekey');
    const state = await joinSpeaking(s, 0x44);
    const answers = s.demo.relay.state.relayedToGuests;
    assert.equal(answers.length, 1);
    assert.equal(Buffer.from(answers[0].body.encrypted_message, 'base64')[0], 0x44, 'the answer is v4 too');
    assert.equal(s.demo.bots[0].stats.decryptFailures, 0);
    // the verification code and safety number agree with 0.103's side as well
    const sid = state.registration.sessionId;
    await until(() => s.demo.bots[0].codes.has(sid), 'the participant computed its code');
    assert.equal(state.result.shortCode.digits, s.demo.bots[0].codes.get(sid).digits);
    assert.equal(state.result.safetyNumber, s.demo.bots[0].codes.get(sid).safetyNumber);
  } finally { await s.close(); }
});

test('12b libsignal 0.72.1 participant (no Kyber prekey): the same guest speaks v3 (0x33)', async () => {
  const s = await open({ bots: [{ mode: 'reply', peer: 'official' }] });
  try {
    assert.equal(s.demo.relay.state.participantKeys.get('participant-1:1').kyber_pre_key, null);
    await joinSpeaking(s, 0x33);
  } finally { await s.close(); }
});

test('12c libsignal 0.103 participant in initiate mode: it starts a v4 session from the guest\'s Kyber prekey', async () => {
  const s = await open({ bots: [{ mode: 'initiate', peer: 'current' }] });
  try {
    const state = await join(s.page);
    await assertKeyWorks(s, state);
    assert.equal(s.demo.relay.state.prekeyConsumption.guests.size, 1, 'the bot fetched the guest\'s bundle');
    const answers = s.demo.relay.state.relayedToGuests;
    assert.equal(answers.length, 1);
    assert.equal(answers[0].body.message_type, 3, 'the answer was a PreKeySignalMessage');
    assert.equal(Buffer.from(answers[0].body.encrypted_message, 'base64')[0], 0x44, 'a v4 one');
    const sent = guestVersionBytes(s.demo.relay);
    assert.ok(sent.length >= 1);
    assert.deepEqual(sent, sent.map(() => 0x44), 'every guest message is v4');
  } finally { await s.close(); }
});
