// The LiveKit scenarios of www/e2e/livekit.test.js in headless Firefox ESR: livekit-client's own
// E2EE worker and cryptors, rotations without a lost frame, data packets with `encryption`.
import { after, before, test } from 'node:test';
import { startDemo } from '../demo/server.js';
import { launchFirefox } from '../demo/firefox.js';
import { pageHelpers } from '../e2e/page.js';
import {
  assertExternalProviderLosesFrames, assertRotations, dataScenario, rotationScenario,
} from '../e2e/livekit-scenarios.js';

let browser;
before(async () => { browser = await launchFirefox(); });
after(async () => { await browser?.close(); });

const helpers = pageHelpers({ browser: () => browser, start: startDemo, driver: 'firefox', readyMs: 20_000 });

test('L1 three rotations while frames flow: every frame decrypts, each new key in use within 1 s, nothing after leave()', async () => {
  const figures = assertRotations(await rotationScenario(helpers));
  console.log(`# firefox rotations: ${figures.map((f) => `usable ${f.usable.toFixed(0)} ms, in use ${f.inUse.toFixed(0)} ms`).join('; ')}`);
});

test('L2 livekit-client\'s ExternalE2EEKeyProvider drops the index: after one rotation no frame decrypts', async () => {
  assertExternalProviderLosesFrames(await rotationScenario(helpers, { query: '?e2e&provider=external', rotations: 1 }));
});

test('L3 a data packet is encrypted on the wire with `encryption` and decrypted by the guest; `e2ee` sends it in the clear', async () => {
  await dataScenario(helpers);
});
