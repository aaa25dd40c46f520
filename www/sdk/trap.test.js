// A module that traps (here the deliberate stop when crypto.getRandomValues starts failing
// in the middle of an exchange) must not leave promises pending forever: the pending call
// and every later call reject with INTERNAL_ERROR. Its own file: a trap stops the module for
// the whole process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sdk, meeting, keyProvider, guest, rejection } from './harness.js';

test('a trap mid-exchange rejects the pending call and every later one with INTERNAL_ERROR', async () => {
  const m = meeting();
  const g = guest(m, { keyProvider: keyProvider() });
  await g.register();
  const original = Object.getOwnPropertyDescriptor(globalThis, 'crypto');
  // The exchange needs fresh randomness for X3DH once the bundle arrives.
  Object.defineProperty(globalThis, 'crypto', {
    value: { getRandomValues() { throw new Error('entropy source failed'); } },
    configurable: true,
  });
  try {
    const pending = g.exchangeKey();
    const outcome = await Promise.race([
      rejection(pending),
      new Promise((resolve) => setTimeout(() => resolve('still pending'), 3_000)),
    ]);
    assert.notEqual(outcome, 'still pending');
    assert.equal(sdk.guestErrorCode(outcome), 'INTERNAL_ERROR');
    assert.equal(outcome.retryable, false);
    assert.match(outcome.message, /Reload the page/);
  } finally {
    Object.defineProperty(globalThis, 'crypto', original);
  }
  for (const later of [g.exchangeKey(), g.register(), g.fetchLiveKitToken()]) {
    assert.equal(sdk.guestErrorCode(await rejection(later)), 'INTERNAL_ERROR');
  }
  assert.doesNotThrow(() => g.leave());
});
