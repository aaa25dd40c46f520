// The order a page follows (register, connect the socket, ask for the key) and what the SDK
// waits for: the socket's connection and the host's admission, each with a clear error when
// it does not come.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sdk, meeting, keyProvider, guest, rejection } from './harness.js';

const stages = (events) => events.map((e) => e.stage ?? e.type);

test('exchangeKey() right after socket.connect() waits for the connection, then gets the key', async () => {
  const m = meeting({}, { connected: false });
  const events = [];
  const g = guest(m, { keyProvider: keyProvider(), onEvent: (e) => events.push(e) });
  await g.register();
  // The page calls connect() and at once exchangeKey(); the socket connects a moment later.
  const result = g.exchangeKey();
  setTimeout(() => m.socket.connect(), 30);
  const { keyCheckValue } = await result;
  assert.equal(keyCheckValue, sdk.GuestKeyExchange.checkValueOf(m.participant.key));
  assert.ok(stages(events).includes('waiting_for_connection'), stages(events).join());
  assert.equal(m.participant.requests.length, 1, 'no request was lost to the unconnected socket');
  assert.ok(events.every((e) => typeof e.message === 'string' && e.message.length > 0), 'every event has a message');
  g.leave();
});

test('a socket that never connects is SOCKET_NOT_CONNECTED, retryable', async () => {
  const m = meeting({}, { connected: false });
  const g = guest(m, { keyProvider: keyProvider(), connectTimeoutMs: 150 });
  await g.register();
  const e = await rejection(g.exchangeKey());
  assert.equal(sdk.guestErrorCode(e), 'SOCKET_NOT_CONNECTED');
  assert.equal(e.retryable, true);
  m.socket.connect();
  assert.ok((await g.exchangeKey()).keyCheckValue, 'works once connected');
  g.leave();
});

test('before admission nothing is sent (the request is prepared: one keybundle); admission only sends it', async () => {
  const m = meeting({}, { autoAdmit: false });
  const events = [];
  const g = guest(m, { keyProvider: keyProvider(), onEvent: (e) => events.push(e) });
  const { sessionId } = await g.register();
  const result = g.exchangeKey();
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(g.admitted, false);
  assert.ok(stages(events).includes('waiting_for_admission'));
  assert.equal(m.participant.requests.length, 0, 'no request before admission');
  const bundles = () => m.calls.filter((p) => p.endsWith('/keys')).length;
  assert.equal(bundles(), 1, 'one keybundle fetched in the lobby (the prepared request)');
  m.socket.admit('someone-else');
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(g.admitted, false, "another guest's admission does not count");
  m.socket.admit(sessionId);
  const { keyCheckValue } = await result;
  assert.equal(g.admitted, true);
  assert.ok(stages(events).includes('admitted'));
  assert.equal(keyCheckValue, sdk.GuestKeyExchange.checkValueOf(m.participant.key));
  assert.equal(bundles(), 1, 'no keybundle after admission');
  assert.equal(m.participant.requests.length, 1);
  g.leave();
});

test('no admission within admissionTimeoutMs is NOT_ADMITTED, and requireAdmission: false skips the wait', async () => {
  const m = meeting({}, { autoAdmit: false });
  const g = guest(m, { keyProvider: keyProvider(), admissionTimeoutMs: 150 });
  await g.register();
  const e = await rejection(g.exchangeKey());
  assert.equal(sdk.guestErrorCode(e), 'NOT_ADMITTED');
  assert.equal(e.retryable, true);
  assert.match(e.message, /not let you in/);
  g.leave();

  const n = meeting({}, { autoAdmit: false });
  const h = guest(n, { keyProvider: keyProvider(), requireAdmission: false });
  await h.register();
  assert.ok((await h.exchangeKey()).keyCheckValue);
  h.leave();
});

test('an admission notice sent before the guest listened is asked for again', async () => {
  const m = meeting({}, { autoAdmit: false });
  // The server admitted session guest-1 and said so before this guest existed.
  m.socket.admit('guest-1');
  const g = guest(m, { keyProvider: keyProvider() });
  assert.equal((await g.register()).sessionId, 'guest-1');
  assert.equal(g.admitted, false);
  assert.ok((await g.exchangeKey()).keyCheckValue, 'guest:admission_query brought the notice back');
  assert.equal(g.admitted, true);
  g.leave();
});
