// The demo prejoin page in headless Firefox ESR (puppeteer-core over WebDriver BiDi): the
// happy path, rotation past a silent participant, livekit-client's key derivation on both
// sides, reuse after a reload, and Firefox's own storage behaviour (private browsing, a
// storage quota, storage disabled).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startDemo } from '../demo/server.js';
import { launchFirefox } from '../demo/firefox.js';
import { keyCheckValue } from '../bot/bot.js';
import { frameCheck } from '../e2e/frame-check.js';
import { at, pageHelpers } from '../e2e/page.js';

let browser;
before(async () => { browser = await launchFirefox(); });
after(async () => { await browser?.close(); });

// open(options, query, launched): the page in a fresh context of `launched` (default: the suite's Firefox).
const { open, join } = pageHelpers({
  browser: () => browser, start: startDemo, driver: 'firefox', readyMs: 20_000,
});

test('happy path: the key handed to the key provider (GuestKeyProvider) is the participants\' key', async () => {
  const s = await open({ bots: ['reply', 'reply'] });
  try {
    const state = await join(s.page);
    assert.equal(state.error, null, JSON.stringify(state.error));
    assert.equal(state.storageBackend, 'sessionStorage');
    assert.equal(state.setKeyCalls.length, 1);
    assert.equal(state.setKeyCalls[0].material, s.demo.meetingKey.toString('base64'));
    assert.equal(state.result.keyCheckValue, keyCheckValue(s.demo.meetingKey));
    console.log(`firefox: time to key ${Math.round(state.result.timeToKeyMs)} ms`);
  } finally { await s.close(); }
});

test('rotation (one at a time): the first participant silent, the key from the second 5 to 6.5 s after the first request', async () => {
  const s = await open({ bots: ['silent', 'reply'] }, '?e2e&hedge=0');
  try {
    const state = await join(s.page);
    assert.equal(state.result.from.userId, 'participant-2');
    const waited = at(state, 'Received the meeting key from participant-2') - at(state, 'Asking participant-1/1 for the meeting key');
    assert.ok(waited >= 5.0 && waited <= 6.5, `key ${waited} s after the first request`);
  } finally { await s.close(); }
});

test('frame check: livekit-client key derivation on both sides decrypts the same frame', async () => {
  const s = await open({ bots: ['reply'] });
  try {
    await join(s.page);
    const check = (participantKeyBase64) => s.page.evaluate(frameCheck, participantKeyBase64);
    assert.equal(await check(s.demo.meetingKey.toString('base64')), 'an encrypted video frame');
    assert.equal(await check(Buffer.alloc(32, 7).toString('base64')), 'decryption failed');
  } finally { await s.close(); }
});

test('reload in the same tab reuses the stored identity and asks the answerer first', async () => {
  const s = await open({ bots: ['silent', 'reply'] });
  try {
    const first = await join(s.page);
    assert.equal(first.registration.reused, false);
    await s.page.reload();
    await s.page.waitForFunction(() => window.demo?.ready, { timeout: 20_000 });
    const second = await join(s.page);
    assert.equal(second.registration.reused, true);
    assert.equal(second.registration.sessionId, first.registration.sessionId);
    assert.equal(second.keyGenerationMs, null, 'keys were loaded, not generated');
    assert.equal(second.result.from.userId, 'participant-2');
    assert.ok(second.result.timeToKeyMs < 2_000, `${second.result.timeToKeyMs} ms`);
  } finally { await s.close(); }
});

// Firefox's storage: each case in its own Firefox, started with the preferences that make it.
for (const [name, prefs, backend] of [
  ['private browsing: sessionStorage works as usual', { 'browser.privatebrowsing.autostart': true }, 'sessionStorage'],
  ['a storage quota too small for the keys: memory, and the page is told', { 'dom.storage.default_quota': 1 }, 'memory'],
  ['storage disabled: memory, and the page is told', { 'dom.storage.enabled': false }, 'memory'],
]) {
  test(`storage, ${name}`, async () => {
    const launched = await launchFirefox(prefs);
    const s = await open({ bots: ['reply'] }, '?e2e', launched);
    try {
      const state = await join(s.page);
      assert.equal(state.error, null, JSON.stringify(state.error));
      assert.equal(state.storageBackend, backend);
      const told = state.transcript.some((l) => /storage cannot be used/.test(l.text));
      assert.equal(told, backend === 'memory', state.transcript.map((l) => l.text).join('\n'));
      assert.equal(state.result.keyCheckValue, keyCheckValue(s.demo.meetingKey));
    } finally {
      await s.close();
      await launched.close();
    }
  });
}
