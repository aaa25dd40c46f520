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
import { happyPath, reloadReuse, rotationOneAtATime } from '../e2e/demo-scenarios.js';
import { pageHelpers } from '../e2e/page.js';

let browser;
before(async () => { browser = await launchFirefox(); });
after(async () => { await browser?.close(); });

// open(options, query, launched): the page in a fresh context of `launched` (default: the suite's Firefox).
const helpers = pageHelpers({
  browser: () => browser, start: startDemo, driver: 'firefox', readyMs: 20_000,
});
const { open, join } = helpers;

test('happy path: the key handed to the key provider (GuestKeyProvider) is the participants\' key', async () => {
  const state = await happyPath(helpers);
  console.log(`firefox: time to key ${Math.round(state.result.timeToKeyMs)} ms`);
});

test('rotation (one at a time): the first participant silent, the second asked 5 s after the first, the key within 6.5 s', async () => {
  await rotationOneAtATime(helpers);
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
  await reloadReuse(helpers);
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
