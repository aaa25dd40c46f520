// The browser layer under misuse and hostile servers, in Node (see harness.js): no success
// is reported for a key the provider refused, leave() from a callback stops everything,
// errors carry the right code per endpoint, and nothing waits forever.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sdk, meeting, keyProvider, guest, hang, rejection, Participant } from './harness.js';

const base64 = (bytes) => Buffer.from(bytes).toString('base64');

test('a key the provider refused is not reported as delivered; the next exchangeKey asks again', async () => {
  const m = meeting();
  const provider = keyProvider();
  provider.refuse = 1;
  const g = guest(m, { keyProvider: provider });
  await g.register();
  const refused = await rejection(g.exchangeKey());
  assert.equal(sdk.guestErrorCode(refused), 'KEY_PROVIDER_FAILED');
  assert.equal(refused.retryable, true);
  assert.equal(g.keyCheckValue, undefined, 'no check value for a key nobody holds');
  assert.equal(m.participant.requests.length, 1);

  const result = await g.exchangeKey();
  assert.equal(m.participant.requests.length, 2, 'asked again instead of answering from memory');
  assert.deepEqual(provider.keys, [[base64(m.participant.key), 0]]);
  assert.equal(result.keyCheckValue, sdk.GuestKeyExchange.checkValueOf(m.participant.key));
  assert.equal(g.keyCheckValue, result.keyCheckValue);
  g.leave();
});

test('leave() from onEvent: on waiting_for, setKey is never called; on key_received (after setKey), nothing more happens', async () => {
  for (const stage of ['waiting_for', 'key_received']) {
    const m = meeting();
    const provider = keyProvider();
    let g;
    const seen = [];
    g = guest(m, {
      keyProvider: provider,
      onEvent: (e) => {
        seen.push(e.stage ?? e.type);
        if (e.stage === stage) g.leave();
      },
    });
    await g.register();
    const left = await rejection(g.exchangeKey());
    assert.equal(sdk.guestErrorCode(left), 'LEFT');
    await new Promise((r) => setTimeout(r, 50));
    // The key goes to the provider first (before the state is stored and the page is told).
    assert.equal(provider.keys.length, stage === 'waiting_for' ? 0 : 1, `${stage}: setKey calls`);
    assert.equal(g.keyCheckValue, undefined);
    assert.equal(g.sessionId, undefined);
    assert.ok(seen.includes(stage));
    assert.ok(!seen.includes('key'), `${stage}: no key event after leave(): ${seen}`);
  }
});

test('a 429 on the participants list is RATE_LIMITED with its Retry-After', async () => {
  const m = meeting({ participants: () => new Response('slow down', { status: 429, headers: { 'retry-after': '30' } }) });
  const g = guest(m, { keyProvider: keyProvider() });
  await g.register();
  const e = await rejection(g.exchangeKey());
  assert.equal(sdk.guestErrorCode(e), 'RATE_LIMITED');
  assert.equal(e.retryable, true);
  assert.equal(e.status, 429);
  assert.equal(e.retryAfterS, 30);
  g.leave();
});

test('other list failures stay KEY_EXCHANGE_FAILED; no answer at all is NETWORK_ERROR', async () => {
  for (const [respond, code] of [
    [() => new Response('{}', { status: 403 }), 'KEY_EXCHANGE_FAILED'],
    [() => new Response('{}', { status: 404 }), 'KEY_EXCHANGE_FAILED'],
    [() => Promise.reject(new TypeError('Failed to fetch')), 'NETWORK_ERROR'],
  ]) {
    const m = meeting({ participants: respond });
    const g = guest(m, { keyProvider: keyProvider() });
    await g.register();
    const e = await rejection(g.exchangeKey());
    assert.equal(sdk.guestErrorCode(e), code, e.message);
    assert.ok(!/HTTP 0/.test(e.message), `the message says what happened: ${e.message}`);
    g.leave();
  }
});

test('a registration the server never answers fails with NETWORK_ERROR and can be tried again', async () => {
  let answering = false;
  const m = meeting({
    register: (init) => (answering ? Response.json({ session_id: 'g2', meeting_id: 'meeting-1' }) : hang(init)),
  });
  const g = guest(m, { keyProvider: keyProvider(), requestTimeoutMs: 200 });
  const started = Date.now();
  const e = await rejection(g.register());
  assert.equal(sdk.guestErrorCode(e), 'NETWORK_ERROR');
  assert.equal(e.retryable, true);
  assert.ok(Date.now() - started < 5_000);
  answering = true;
  const again = await g.register();
  assert.equal(again.sessionId, 'g2', 'not stuck in "registration already in progress"');
  g.leave();
});

test('status mapping is per endpoint: 403 on registration and on the LiveKit token differ', async () => {
  const m = meeting({ register: () => new Response('{}', { status: 403 }) });
  const rejected = await rejection(guest(m).register());
  assert.equal(sdk.guestErrorCode(rejected), 'REGISTRATION_REJECTED');
  assert.equal(rejected.retryable, false);

  const n = meeting({ token: () => new Response('{}', { status: 404 }) });
  const g = guest(n);
  await g.register();
  assert.equal(sdk.guestErrorCode(await rejection(g.fetchLiveKitToken())), 'NOT_REGISTERED');
  const o = meeting();
  const h = guest(o);
  await h.register();
  assert.equal(sdk.guestErrorCode(await rejection(h.fetchLiveKitToken())), 'NOT_ADMITTED');
  g.leave();
  h.leave();
});

test('pinnedIdentities: a device whose key is not the pinned one gets no request; the next answers', async () => {
  const m = meeting({
    participants: () => Response.json([{ user_id: 'p1', device_id: '1' }, { user_id: 'p2', device_id: '1' }]),
  });
  // The page pinned p1's real key; the server hands out a bundle made by someone else.
  const real = new Participant({ userId: 'p1' });
  const pinned = [{ userId: 'p1', deviceId: '1', identityKey: real.bundle().identity_key }];
  const stages = [];
  const g = guest(m, {
    keyProvider: keyProvider(),
    pinnedIdentities: pinned,
    participantTimeoutMs: 1_000,
    onEvent: (e) => stages.push(e.stage === 'rotating' ? `rotating:${e.reason}` : e.stage ?? e.type),
  });
  await g.register();
  // The stub serves the same (impostor) bundle for p2, which fails as a bundle for another
  // device: the exchange fails, and what matters is that p1's impostor got nothing.
  const e = await rejection(g.exchangeKey());
  assert.ok(stages.includes('rotating:identity_mismatch'), stages.join());
  assert.equal(m.participant.requests.length, 0, 'no request reached the impostor');
  assert.equal(sdk.guestErrorCode(e), 'KEY_EXCHANGE_FAILED');
  assert.ok(e.attempts.some((a) => a.participant.userId === 'p1' && a.reason === 'identity_mismatch'));
  g.leave();

  // Pinned to the key it really has: asked, and the safety number comes with the key.
  const n = meeting();
  const h = guest(n, {
    keyProvider: keyProvider(),
    pinnedIdentities: [{ userId: 'p1', deviceId: '1', identityKey: n.participant.bundle().identity_key }],
  });
  await h.register();
  const result = await h.exchangeKey();
  assert.match(result.safetyNumber, /^\d{60}$/);
  assert.deepEqual(h.safetyNumbers(), [{ participant: { userId: 'p1', deviceId: '1' }, safetyNumber: result.safetyNumber }]);
  h.leave();

  assert.throws(() => guest(n, { keyProvider: null, pinnedIdentities: [{ userId: 'p1', deviceId: '1', identityKey: 'AAAA' }] }),
    (x) => sdk.guestErrorCode(x) === 'INVALID_CONFIG');
});

test('wireProfile: only "plan" or "peerwave"; anything else is INVALID_CONFIG and names the choices', async () => {
  const n = meeting();
  for (const wireProfile of ['peerwave-2025', 'PeerWave', '', 1, true]) {
    assert.throws(() => guest(n, { keyProvider: null, wireProfile }),
      (x) => sdk.guestErrorCode(x) === 'INVALID_CONFIG' && /"plan" or "peerwave"/.test(x.message), String(wireProfile));
  }
  // "plan" is the default, spelled out or not: the stub server speaks it.
  const g = guest(n, { keyProvider: keyProvider(), wireProfile: 'plan' });
  await g.register();
  assert.equal((await g.exchangeKey()).from.userId, 'p1');
  g.leave();
});

test('wireProfile "peerwave" keeps the admission wait: requireAdmission: false is INVALID_CONFIG', () => {
  const n = meeting();
  assert.throws(() => guest(n, { keyProvider: null, wireProfile: 'peerwave', requireAdmission: false }),
    (x) => sdk.guestErrorCode(x) === 'INVALID_CONFIG' && /requireAdmission/.test(x.message));
  guest(n, { keyProvider: null, wireProfile: 'peerwave', requireAdmission: true }).leave();
  guest(n, { keyProvider: null, wireProfile: 'plan', requireAdmission: false }).leave();
});
