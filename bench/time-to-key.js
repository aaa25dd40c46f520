// Time to key on loopback: the demo page in headless Chromium against the relay and three
// answering participants (the first one live), ROUNDS fresh tabs. Prints the median and
// spread of (a) exchangeKey() alone and (b) the whole join (keys, registration, socket,
// exchange). Figures only.   scripts/build.sh web && node bench/time-to-key.js
import { startDemo } from '../www/demo/server.js';
import { launchChromium } from '../www/demo/chromium.js';

const ROUNDS = Number(process.env.ROUNDS ?? 20);
const demo = await startDemo({ bots: ['reply', 'reply', 'reply'], rateLimit: { max: 1000, windowMs: 60_000 } });
const browser = await launchChromium();
const exchange = [];
const join = [];
const keygen = [];
try {
  for (let i = 0; i < ROUNDS; i++) {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(demo.url);
    await page.waitForFunction(() => window.demo?.ready);
    const started = Date.now();
    await page.click('#join');
    await page.waitForFunction(() => window.demo.result || window.demo.error, null, { timeout: 30_000 });
    const joined = Date.now() - started;
    const state = await page.evaluate(() => window.demo);
    if (!state.result) throw new Error(`round ${i}: ${state.error?.message}`);
    exchange.push(state.result.timeToKeyMs);
    join.push(joined);
    keygen.push(state.keyGenerationMs);
    await context.close();
  }
} finally {
  await browser.close();
  await demo.close();
}
const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return `median ${q(0.5).toFixed(1)} ms, p90 ${q(0.9).toFixed(1)} ms, min ${s[0].toFixed(1)} ms, max ${s[s.length - 1].toFixed(1)} ms`;
};
console.log(`time to key over ${ROUNDS} fresh tabs, loopback, first participant live (Chromium ${browser.version?.() ?? ''})`);
console.log(`  exchangeKey():              ${stats(exchange)}`);
console.log(`  whole join (click to key):  ${stats(join)}`);
console.log(`  key generation (30 OPKs):   ${stats(keygen)}`);
