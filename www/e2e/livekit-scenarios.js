// LiveKit as the guest uses it, proven with livekit-client's own E2EE worker and cryptors in the
// browser (www/e2e/livekit-harness.js): rotations without a lost frame, nothing after leaving,
// and data packets encrypted only with the `encryption` option. Shared by the Chromium suite
// (www/e2e/livekit.test.js) and the Firefox one (www/e2e-firefox/livekit.test.js).
import assert from 'node:assert/strict';
import { startTrack, trackStats } from './livekit-harness.js';
import { dataPacketCheck } from './livekit-data.js';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// How long a participant waits between sending a key update and encrypting under the new key
// (docs/contract.md, key updates): the guest has it well before.
export const SWITCH_AFTER_MS = 500;

const evaluate = (page, fn, arg) => page.evaluate(fn, arg);

/** The participant (bot 0) rotates: update through Signal, new key installed, used after a while. */
async function rotate(s, { switchAfterMs = SWITCH_AFTER_MS } = {}) {
  const bot = s.demo.bots[0];
  await bot.rotateNow();
  const next = { key: Buffer.from(bot.meetingKey).toString('base64'), keyIndex: bot.keyIndex };
  await evaluate(s.page, (a) => window.lkHarness.install({ ...a, use: false }), next);
  await sleep(switchAfterMs);
  await evaluate(s.page, (a) => window.lkHarness.install({ ...a, use: true }), next);
  return next;
}

/**
 * Three rotations while frames flow, then the guest leaves and a fourth comes. Returns the
 * figures (ms per rotation: update at the provider → key usable, → first frame under it).
 */
export async function rotationScenario({ open, join }, { query = '?e2e', rotations = 3, profile = 'base64' } = {}) {
  const s = await open({ bots: ['reply'] }, query);
  try {
    const state = await join(s.page);
    assert.equal(state.error, null, JSON.stringify(state.error));
    const bot = s.demo.bots[0];
    await evaluate(s.page, startTrack, { key: Buffer.from(bot.meetingKey).toString('base64'), keyIndex: bot.keyIndex, profile });
    await sleep(300);
    for (let r = 0; r < rotations; r++) {
      await rotate(s);
      await sleep(300);
    }
    const during = await evaluate(s.page, trackStats);

    // Leaving: the SDK wipes its keys and stops listening; the participant rotates once more.
    await s.page.click('#leave');
    const after = await rotate(s);
    await sleep(400);
    await evaluate(s.page, () => window.lkHarness.stop());
    await sleep(300);
    const end = await evaluate(s.page, trackStats);
    return { during, end, afterLeave: after };
  } finally { await s.close(); }
}

/** Asserts what `rotationScenario` must show with the guest's key provider; returns the figures. */
export function assertRotations({ during, end, afterLeave }, rotations = 3) {
  // The SDK handed every update to the provider, at its index.
  assert.deepEqual(during.setKeyCalls.map((c) => c.keyIndex), [0, 1, 2, 3].slice(0, rotations + 1));
  // No frame the participant sent while the guest was in the meeting failed to decrypt.
  const leftAt = end.sentIndex.findIndex((i) => i === afterLeave.keyIndex);
  const sentWhileIn = end.sentIndex.slice(0, leftAt).map((index, n) => ({ n, index })).filter((f) => f.index != null);
  const decrypted = new Set(end.decrypted);
  const lost = sentWhileIn.filter((f) => !decrypted.has(f.n));
  assert.ok(sentWhileIn.length > 100, `frames sent: ${sentWhileIn.length}`);
  assert.deepEqual(lost, [], `${lost.length} of ${sentWhileIn.length} frames failed to decrypt`);
  const figures = [];
  for (let r = 1; r <= rotations; r++) {
    assert.ok(sentWhileIn.some((f) => f.index === r), `frames under key ${r} were sent`);
    const arrived = during.setKeyCalls[r].at;
    const usable = end.probeDecrypted[r] - arrived;
    const inUse = end.firstDecrypted[r] - arrived;
    assert.ok(inUse < 1000, `key ${r} in use ${inUse.toFixed(0)} ms after its update arrived`);
    figures.push({ usable, inUse });
  }
  // After leave(): no key reached the provider, and no frame under the new key was decrypted.
  assert.equal(end.setKeyCalls.length, rotations + 1, 'no key after leaving');
  const afterFrames = end.sentIndex.map((index, n) => ({ n, index })).filter((f) => f.index === afterLeave.keyIndex);
  assert.ok(afterFrames.length > 10, `frames under the key sent after leaving: ${afterFrames.length}`);
  assert.deepEqual(afterFrames.filter((f) => decrypted.has(f.n)), [], 'a frame under a key sent after leaving was decrypted');
  return figures;
}

/** With livekit-client's ExternalE2EEKeyProvider, the index is lost: frames under key 1 never decrypt. */
export function assertExternalProviderLosesFrames({ during, end }) {
  assert.deepEqual(during.setKeyCalls.map((c) => c.keyIndex), [0, 1], 'the SDK handed over the update');
  const decrypted = new Set(end.decrypted);
  const underNewKey = end.sentIndex.map((index, n) => ({ n, index })).filter((f) => f.index === 1);
  assert.ok(underNewKey.length > 10);
  assert.equal(underNewKey.filter((f) => decrypted.has(f.n)).length, 0, 'frames under key 1 decrypted');
}

/** Data packets: encrypted on the wire with `encryption`, decrypted by the guest; clear with `e2ee`. */
export async function dataScenario({ open, join }) {
  const s = await open({ bots: ['reply'] });
  try {
    const state = await join(s.page);
    assert.equal(state.error, null, JSON.stringify(state.error));
    const key = Buffer.from(s.demo.bots[0].meetingKey).toString('base64');
    const encrypted = await evaluate(s.page, dataPacketCheck, { key, option: 'encryption' });
    assert.equal(encrypted.wireHasText, false, 'the SFU could read the data packet');
    assert.equal(encrypted.guestReceived, 'chat: meet at the west door');
    const deprecated = await evaluate(s.page, dataPacketCheck, { key, option: 'e2ee' });
    assert.equal(deprecated.wireHasText, true, 'with `e2ee` the data packet goes in the clear');
    assert.equal(deprecated.guestReceived, 'chat: meet at the west door');
  } finally { await s.close(); }
}
