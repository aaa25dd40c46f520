// Faults: the server and participants misbehave mid-exchange. Each case must end in a
// rotation that gets the key, or in a clear error after which "Try again" works.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startDemo } from '../demo/server.js';
import { launchChromium } from '../demo/chromium.js';
import { keyCheckValue } from '../bot/bot.js';
import { pageHelpers, transcript } from './page.js';

let browser;
before(async () => { browser = await launchChromium(); });
after(async () => { await browser?.close(); });

// Generous rate limit: these tests fetch the same bundle more than 3 times a minute.
const rateLimit = { max: 100, windowMs: 60_000 };

// `order=server`: each case names the participant asked first (participant-1).
const { open, settled, join, retry, until } = pageHelpers({
  browser: () => browser, start: (demoOptions) => startDemo({ rateLimit, ...demoOptions }),
});

for (const [fault, expected] of [
  ['error500', 'keybundle request failed with HTTP 500'],
  ['hang', 'no answer in time'],
  ['wrong-device', 'bundle is for a different device'],
]) {
  test(`keybundle ${fault}: rotation to the next participant`, async () => {
    const s = await open({ bots: ['reply', 'reply'] }, '?timeout=1500&order=server');
    try {
      s.demo.relay.state.faults.keybundle.set('participant-1:1', fault);
      const state = await join(s.page);
      assert.equal(state.result?.from.userId, 'participant-2', JSON.stringify(state.error));
      assert.match(transcript(state), new RegExp(`participant-1/1: .*${expected}.*; rotating to participant-2/1`));
      assert.equal(state.result.keyCheckValue, keyCheckValue(s.demo.meetingKey));
    } finally { await s.close(); }
  });

  test(`keybundle ${fault} everywhere: clear error, then Try again works`, async () => {
    const s = await open({ bots: ['reply'] }, '?timeout=1000');
    try {
      s.demo.relay.state.faults.keybundle.set('participant-1:1', fault);
      const failed = await join(s.page);
      assert.equal(failed.error.code, 'KEY_EXCHANGE_FAILED');
      assert.equal(failed.error.attempts.length, 3);
      assert.equal(await s.page.isVisible('#retry'), true);
      s.demo.relay.state.faults.keybundle.delete('participant-1:1');
      const state = await retry(s.page);
      assert.equal(state.result?.keyCheckValue, keyCheckValue(s.demo.meetingKey), JSON.stringify([state.error, transcript(state)]));
    } finally { await s.close(); }
  });
}

test('a participant leaves after receiving the request: rotation', async () => {
  const s = await open({ bots: ['silent', 'reply'] }, '?timeout=1500&order=server');
  try {
    await s.page.click('#join');
    await until(() => s.demo.bots[0].stats.requests >= 1, 'the request to participant-1');
    await s.demo.bots[0].close();
    const state = await settled(s.page);
    assert.equal(state.result?.from.userId, 'participant-2', JSON.stringify(state.error));
    assert.match(transcript(state), /participant-1\/1: no answer in time; rotating to participant-2\/1/);
  } finally { await s.close(); }
});

test('the relay drops the guest socket mid-exchange: rotation over the reconnected socket', async () => {
  const s = await open({ bots: ['silent', 'reply'] }, '?timeout=1500&order=server');
  try {
    await s.page.click('#join');
    await until(() => s.demo.relay.state.relayedToParticipants.length >= 1, 'the first request');
    s.demo.relay.io.of('/external').disconnectSockets(true);
    let state = await settled(s.page);
    if (state.error) state = await retry(s.page); // a clear error is acceptable; Try again must work
    assert.equal(state.result.keyCheckValue, keyCheckValue(s.demo.meetingKey));
    assert.match(transcript(state), /Disconnected from the meeting server \(io server disconnect\)/);
  } finally { await s.close(); }
});

test('the relay restarts mid-exchange: rotation or a clear error, then Try again works', async () => {
  const s = await open({ bots: ['silent', 'reply'] }, '?timeout=2000&order=server');
  try {
    await s.page.click('#join');
    await until(() => s.demo.relay.state.relayedToParticipants.length >= 1, 'the first request');
    await s.demo.relay.restart(300);
    let state = await settled(s.page);
    if (state.error) {
      assert.equal(state.error.retryable, true, JSON.stringify(state.error));
      await until(() => s.demo.relay.state.participants().length === 2, 'participants back');
      state = await retry(s.page);
    }
    assert.equal(state.result.keyCheckValue, keyCheckValue(s.demo.meetingKey));
  } finally { await s.close(); }
});
