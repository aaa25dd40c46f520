// LiveKit as the guest uses it, in headless Chromium with livekit-client's own E2EE worker and
// cryptors (www/e2e/livekit-scenarios.js): the SDK's key updates reach the guest's key provider
// at their index, and three rotations lose no frame; data packets need `encryption`.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startDemo } from '../demo/server.js';
import { launchChromium } from '../demo/chromium.js';
import { pageHelpers } from './page.js';
import {
  assertExternalProviderLosesFrames, assertRotations, dataScenario, rotationScenario,
} from './livekit-scenarios.js';

let browser;
before(async () => { browser = await launchChromium(); });
after(async () => { await browser?.close(); });

const helpers = pageHelpers({ browser: () => browser, start: startDemo });

test('L1 three rotations while frames flow: every frame decrypts, each new key in use within 1 s, nothing after leave()', async () => {
  const figures = assertRotations(await rotationScenario(helpers));
  console.log(`# chromium rotations: ${figures.map((f) => `usable ${f.usable.toFixed(0)} ms, in use ${f.inUse.toFixed(0)} ms`).join('; ')}`);
});

test('L1b the same with the raw key profile (HKDF material)', async () => {
  assertRotations(await rotationScenario(helpers, { query: '?e2e&keyProfile=raw', profile: 'raw' }));
});

test('L2 livekit-client\'s ExternalE2EEKeyProvider drops the index: after one rotation no frame decrypts', async () => {
  assertExternalProviderLosesFrames(await rotationScenario(helpers, { query: '?e2e&provider=external', rotations: 1 }));
});

test('L3 a data packet is encrypted on the wire with `encryption` and decrypted by the guest; `e2ee` sends it in the clear', async () => {
  await dataScenario(helpers);
});

test('L4 the package\'s GuestKeyProvider refuses a bad index or material without changing its keys', async () => {
  const s = await helpers.open({ bots: ['reply'] });
  try {
    const out = await s.page.evaluate(async () => {
      const { GuestKeyProvider } = await import('/pkg/livekit.js');
      const p = new GuestKeyProvider();
      const refused = [];
      for (const [m, i] of [['k', 256], ['k', -1], ['k', 1.5], [new Uint8Array(32), 0], [42, 0]]) {
        await p.setKey(m, i).then(() => refused.push('accepted'), (e) => refused.push(e.name));
      }
      await p.setKey('a', 3);
      await p.setKey(new Uint8Array(32).buffer, 7);
      return { refused, keys: p.getKeys().map((k) => [k.keyIndex, k.key.algorithm.name]), latest: p.getLatestManuallySetKeyIndex(), options: p.getOptions() };
    });
    assert.deepEqual(out.refused, ['RangeError', 'RangeError', 'RangeError', 'TypeError', 'TypeError']);
    assert.deepEqual(out.keys, [[3, 'PBKDF2'], [7, 'HKDF']]);
    assert.equal(out.latest, 7);
    assert.equal(out.options.sharedKey, true);
    assert.equal(out.options.failureTolerance, -1);
  } finally { await s.close(); }
});
