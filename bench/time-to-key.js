// Time to key on loopback: the demo page in headless Chromium, headless Firefox ESR and WebKit
// (WebKitGTK's MiniBrowser under Xvfb) against the relay, ROUNDS fresh tabs per scenario and browser. Figures only; nothing here asserts a
// time.
//   live            three answering participants: exchangeKey() alone, the whole join (keys,
//                   registration, socket, exchange), key generation, and the floor: the same
//                   tab then asks for the key in plaintext through the same relay and socket
//                   (the legacy flow the Signal exchange replaces; www/bot's legacy handler),
//                   with the ratio of the two medians
//   silent hedged   the first participant silent, the SDK's default hedging (1.5 s)
//   silent 1-by-1   the first participant silent, hedgeAfterMs: 0 (5 s per participant)
//   key update      one tab with the key, a participant rotating UPDATES times (default 20)
//                   while frames flow through livekit-client's own E2EE worker on both ends
//                   (www/e2e/livekit-harness.js): from the update's arrival at the key provider
//                   to the first frame decrypted under the new key (not in WebKit here: its
//                   build has no media path, and livekit-client refuses E2EE there)
//   scripts/build.sh package && node bench/time-to-key.js   (ROUNDS=20, BROWSERS=chromium,firefox,webkit)
//   QUICK=1: 2 rounds, to check the benchmark runs (CI).
import { startDemo } from '../www/demo/server.js';
import { launchChromium } from '../www/demo/chromium.js';
import { launchFirefox } from '../www/demo/firefox.js';
import { launchWebKit } from '../www/demo/webkit.js';
import { LEGACY_REQUEST_TYPE, LEGACY_RESPONSE_TYPE } from '../www/bot/bot.js';
import { startTrack, trackStats } from '../www/e2e/livekit-harness.js';

const QUICK = Boolean(process.env.QUICK);
const ROUNDS = Number(process.env.ROUNDS ?? (QUICK ? 2 : 20));
const UPDATES = Number(process.env.UPDATES ?? (QUICK ? 2 : 20));
const BROWSERS = (process.env.BROWSERS ?? 'chromium,firefox,webkit').split(',');
const SCENARIOS = [
  { name: 'live', bots: ['reply', 'reply', 'reply'], query: '', floor: true },
  { name: 'silent hedged', bots: ['silent', 'reply', 'reply'], query: '' },
  { name: 'silent 1-by-1', bots: ['silent', 'reply', 'reply'], query: '&hedge=0' },
];

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
  // selenium-webdriver over classic WebDriver (www/demo/webkit.js): a context is a fresh MiniBrowser.
  webkit: {
    launch: () => launchWebKit(),
    context: (b) => b.newContext(),
    waitFor: (page, fn, ms) => page.waitForFunction(fn, ms),
  },
};

/** In the page: one plaintext key round trip with `to` over the page's own socket. */
async function plaintextRoundTrip({ to, requestType, responseType }) {
  const socket = window.guestSocket;
  const requestId = crypto.randomUUID();
  const started = performance.now();
  await new Promise((resolve) => {
    const onMessage = (d) => {
      if (d?.type !== responseType) return;
      const answer = JSON.parse(atob(d.encrypted_message));
      if (answer.request_id !== requestId) return;
      socket.off('participant:signal_message', onMessage);
      resolve();
    };
    socket.on('participant:signal_message', onMessage);
    socket.emit('guest:signal_message', {
      participant_user_id: to.userId, participant_device_id: to.deviceId, type: requestType,
      encrypted_message: btoa(JSON.stringify({ request_id: requestId })), message_type: 2,
    });
  });
  return performance.now() - started;
}

async function measure(browserName, scenario) {
  const driver = drivers[browserName];
  const demo = await startDemo({ bots: scenario.bots, rateLimit: { max: 1000, windowMs: 60_000 } });
  const browser = await driver.launch();
  const out = { exchange: [], join: [], keygen: [], floor: [] };
  try {
    for (let i = 0; i < ROUNDS; i++) {
      const context = await driver.context(browser);
      const page = await context.newPage();
      await page.goto(`${demo.url}?bench${scenario.query}`);
      await driver.waitFor(page, () => window.demo?.ready, 20_000);
      const started = Date.now();
      await page.click('#join');
      await driver.waitFor(page, () => window.demo.result || window.demo.error, 30_000);
      const joined = Date.now() - started;
      const state = await page.evaluate(() => ({
        result: window.demo.result, error: window.demo.error, keyGenerationMs: window.demo.keyGenerationMs,
      }));
      if (!state.result) throw new Error(`${browserName} ${scenario.name} round ${i}: ${state.error?.message}`);
      out.exchange.push(state.result.timeToKeyMs);
      out.join.push(joined);
      out.keygen.push(state.keyGenerationMs);
      if (scenario.floor) {
        out.floor.push(await page.evaluate(plaintextRoundTrip, {
          to: state.result.from, requestType: LEGACY_REQUEST_TYPE, responseType: LEGACY_RESPONSE_TYPE,
        }));
      }
      await context.close();
    }
    return { version: await browser.version(), ...out };
  } finally {
    await browser.close();
    await demo.close();
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const p90 = (xs) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(0.9 * xs.length))];
const fixed = (x) => Number(x.toFixed(1));

const rows = {};
for (const browserName of BROWSERS) {
  let version = '';
  for (const scenario of SCENARIOS) {
    const m = await measure(browserName, scenario);
    version = m.version;
    const put = (what, xs) => {
      rows[what] ??= {};
      rows[what][`${browserName} median`] = fixed(median(xs));
      rows[what][`${browserName} p90`] = fixed(p90(xs));
    };
    if (scenario.floor) {
      put('live: exchangeKey() ms', m.exchange);
      put('live: whole join ms', m.join);
      put('live: key generation ms', m.keygen);
      put('floor: plaintext key round trip ms', m.floor);
      rows['live: exchangeKey() / floor'] ??= {};
      rows['live: exchangeKey() / floor'][`${browserName} median`] = fixed(median(m.exchange) / median(m.floor));
    } else {
      put(`${scenario.name}: exchangeKey() ms`, m.exchange);
    }
  }
  console.log(`${browserName}: ${version}, ${ROUNDS} fresh tabs per scenario`);
}
console.log('time to key, loopback (median and p90 of the tabs):');
console.table(rows);

/** One tab, UPDATES rotations: update sent → at the provider → first frame decrypted under it. */
async function measureUpdates(browserName) {
  const driver = drivers[browserName];
  const demo = await startDemo({ bots: ['reply'] });
  const browser = await driver.launch();
  const out = { transit: [], usable: [] };
  const poll = async (fn, arg, what) => {
    for (const started = Date.now(); !(await page.evaluate(fn, arg));) {
      if (Date.now() - started > 10_000) throw new Error(`${browserName}: timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  let page;
  try {
    page = await (await driver.context(browser)).newPage();
    await page.goto(`${demo.url}?e2e`);
    await driver.waitFor(page, () => window.demo?.ready, 20_000);
    await page.click('#join');
    await driver.waitFor(page, () => window.demo.result || window.demo.error, 30_000);
    const bot = demo.bots[0];
    const keyOf = () => ({ key: Buffer.from(bot.meetingKey).toString('base64'), keyIndex: bot.keyIndex });
    await page.evaluate(startTrack, keyOf());
    for (let i = 1; i <= UPDATES; i++) {
      const sentAt = await page.evaluate(() => performance.now());
      await bot.rotateNow();
      const next = keyOf();
      await page.evaluate((a) => window.lkHarness.install({ ...a, use: false }), next);
      await poll((n) => window.lkHarness.probeDecrypted[n] !== undefined, next.keyIndex, `key ${i} usable`);
      await page.evaluate((a) => window.lkHarness.install({ ...a, use: true }), next);
      const stats = await page.evaluate(trackStats);
      const arrived = stats.setKeyCalls[i].at;
      out.transit.push(arrived - sentAt);
      out.usable.push(stats.probeDecrypted[next.keyIndex] - arrived);
    }
    return out;
  } finally {
    await browser.close();
    await demo.close();
  }
}

const updates = {};
for (const browserName of BROWSERS.filter((b) => b !== 'webkit')) {
  const m = await measureUpdates(browserName);
  updates['update sent → at the key provider ms'] ??= {};
  updates['update at the key provider → first frame decrypted under it ms'] ??= {};
  for (const [what, xs] of [['update sent → at the key provider ms', m.transit],
    ['update at the key provider → first frame decrypted under it ms', m.usable]]) {
    updates[what][`${browserName} median`] = fixed(median(xs));
    updates[what][`${browserName} p90`] = fixed(p90(xs));
  }
}
console.log(`key updates (${UPDATES} rotations in one tab, livekit-client's E2EE worker on both ends):`);
console.table(updates);
