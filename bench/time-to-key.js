// Time to key on loopback: the demo page in headless Chromium and headless Firefox ESR
// against the relay and three answering participants (the first one live), ROUNDS fresh
// tabs each. Prints the median and spread of (a) exchangeKey() alone and (b) the whole join
// (keys, registration, socket, exchange), per browser, side by side. Figures only.
//   scripts/build.sh package && node bench/time-to-key.js      (ROUNDS=20, BROWSERS=chromium,firefox)
import { startDemo } from '../www/demo/server.js';
import { launchChromium } from '../www/demo/chromium.js';
import { launchFirefox } from '../www/demo/firefox.js';

const ROUNDS = Number(process.env.ROUNDS ?? 20);
const BROWSERS = (process.env.BROWSERS ?? 'chromium,firefox').split(',');

// playwright-core (Chromium) and puppeteer-core (Firefox) differ in two calls.
const drivers = {
  chromium: {
    launch: launchChromium,
    context: (b) => b.newContext(),
    waitFor: (page, fn, ms) => page.waitForFunction(fn, null, { timeout: ms }),
  },
  firefox: {
    launch: () => launchFirefox(),
    context: (b) => b.createBrowserContext(),
    waitFor: (page, fn, ms) => page.waitForFunction(fn, { timeout: ms }),
  },
};

async function measure(name) {
  const driver = drivers[name];
  const demo = await startDemo({ bots: ['reply', 'reply', 'reply'], rateLimit: { max: 1000, windowMs: 60_000 } });
  const browser = await driver.launch();
  const exchange = [];
  const join = [];
  const keygen = [];
  try {
    for (let i = 0; i < ROUNDS; i++) {
      const context = await driver.context(browser);
      const page = await context.newPage();
      await page.goto(demo.url);
      await driver.waitFor(page, () => window.demo?.ready, 20_000);
      const started = Date.now();
      await page.click('#join');
      await driver.waitFor(page, () => window.demo.result || window.demo.error, 30_000);
      const joined = Date.now() - started;
      const state = await page.evaluate(() => ({
        result: window.demo.result, error: window.demo.error, keyGenerationMs: window.demo.keyGenerationMs,
      }));
      if (!state.result) throw new Error(`${name} round ${i}: ${state.error?.message}`);
      exchange.push(state.result.timeToKeyMs);
      join.push(joined);
      keygen.push(state.keyGenerationMs);
      await context.close();
    }
    return { version: await browser.version(), exchange, join, keygen };
  } finally {
    await browser.close();
    await demo.close();
  }
}

const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { median: q(0.5), p90: q(0.9), min: s[0], max: s[s.length - 1] };
};

const rows = {};
for (const name of BROWSERS) {
  const m = await measure(name);
  for (const [what, xs] of [['exchangeKey() ms', m.exchange], ['whole join ms', m.join], ['key generation ms', m.keygen]]) {
    const { median, p90 } = stats(xs);
    rows[`${what}`] ??= {};
    rows[`${what}`][`${name} median`] = Number(median.toFixed(1));
    rows[`${what}`][`${name} p90`] = Number(p90.toFixed(1));
  }
  console.log(`${name}: ${m.version}, ${ROUNDS} fresh tabs`);
}
console.log(`time to key, loopback, first participant live:`);
console.table(rows);
