// Where the time of one key exchange goes, on loopback: the demo page in headless Chromium and
// Firefox ESR against the relay and one participant bot (official libsignal 0.103.0: a v4
// session). Figures only; nothing here asserts a time.
//
// Two cases, ROUNDS fresh tabs each (median of each mark):
//   lobby  the host admits the guest after its page has been idle in the lobby 1.5 s: the
//          SDK prepared its request there, so admission only sends it. Marks from the
//          host's admission (on the relay).
//   cold   the guest is admitted on registration: the exchange runs from the participants
//          list on (what a page that calls exchangeKey() only after admission gets). Marks
//          from the exchange's start (its `listing_participants` event).
// Each mark is on one clock (epoch ms: the page's timeOrigin + now(), the relay's the same):
// the page's HTTP calls (Resource Timing), the SDK's events, the request and the answer as
// the relay forwards them (the participant's side lies between), setKey, the `key` event.
//   scripts/build.sh package && node bench/timeline.js   (ROUNDS=10, BROWSERS=chromium,firefox)
//   QUICK=1: 2 rounds, to check the benchmark runs (CI).
import { startDemo } from '../www/demo/server.js';
import { launchChromium } from '../www/demo/chromium.js';
import { launchFirefox } from '../www/demo/firefox.js';
import { drivers as pageDrivers } from '../www/e2e/page.js';

const QUICK = Boolean(process.env.QUICK);
const ROUNDS = Number(process.env.ROUNDS ?? (QUICK ? 2 : 10));
const BROWSERS = (process.env.BROWSERS ?? 'chromium,firefox').split(',');
const CASES = (process.env.CASES ?? 'lobby,cold').split(',');
const LOBBY_IDLE_MS = 1_500;

const drivers = {
  chromium: { ...pageDrivers.chromium, launch: launchChromium },
  firefox: { ...pageDrivers.firefox, launch: () => launchFirefox() },
};

const epochNow = () => performance.timeOrigin + performance.now();

/** In the page, once its socket exists: stamps the admission notice, the first request sent and
 *  the first answer received, as the page's own socket sees them. */
function watchSocket() {
  const socket = window.guestSocket;
  const marks = (window.socketMarks = {});
  const stamp = (name) => { marks[name] ??= performance.timeOrigin + performance.now(); };
  socket.prependAny((event) => {
    if (event === 'guest:admitted') stamp('admitted');
    if (event === 'participant:signal_message') stamp('answer');
  });
  const emit = socket.emit.bind(socket);
  socket.emit = (event, ...args) => {
    if (event === 'guest:signal_message') stamp('request');
    return emit(event, ...args);
  };
}

/** In the page: its marks, in epoch ms. */
function pageMarks() {
  const at = (t) => performance.timeOrigin + t;
  const http = performance.getEntriesByType('resource')
    .filter((e) => e.initiatorType === 'fetch')
    .map((e) => ({ url: e.name, start: at(e.startTime), end: at(e.responseEnd) }));
  const events = (window.demo.events ?? []).map((e) => ({ name: e.stage ? `${e.type}/${e.stage}` : e.type, at: at(e.at) }));
  const setKey = window.demo.setKeyCalls?.[0] ? at(window.demo.setKeyCalls[0].at) : null;
  return { http, events, setKey, socket: window.socketMarks ?? {}, error: window.demo.error?.message ?? null };
}

const httpName = (url) => {
  const path = new URL(url).pathname;
  if (/\/participants$/.test(path)) return 'participants list';
  if (/\/participant\/[^/]+\/[^/]+\/keys$/.test(path)) return 'keybundle';
  return null; // the page's own calls (codes, LiveKit token), after the key
};

/** One tab: the marks of its exchange relative to the case's origin. */
async function oneTab(driver, browser, demo, kase) {
  const context = await driver.newContext(browser);
  try {
    const page = await context.newPage();
    // e2e: the page records its setKey calls.
    await page.goto(`${demo.url}?bench&e2e`);
    await driver.waitFor(page, () => window.demo?.ready, 20_000);
    await page.click('#join');
    let origin;
    await driver.waitFor(page, () => window.demo.registration?.sessionId, 20_000);
    const sessionId = await page.evaluate(() => window.demo.registration.sessionId);
    await page.evaluate(watchSocket);
    if (kase === 'lobby') {
      await driver.waitFor(page, () => window.demo.events?.some((e) => e.stage === 'waiting_for_admission'), 20_000);
      await new Promise((r) => setTimeout(r, LOBBY_IDLE_MS));
      origin = epochNow();
      demo.relay.state.admit(sessionId);
    }
    await driver.waitFor(page, () => window.demo.result || window.demo.error, 30_000);
    const m = await page.evaluate(pageMarks);
    if (m.error) throw new Error(`${kase}: ${m.error}`);
    // This tab's first request and the first answer to it (later ones: the code's reveal,
    // key updates).
    const request = demo.relay.state.relayedToParticipants.find((r) => r.body.guest_session_id === sessionId);
    const answer = demo.relay.state.relayedToGuests.find((r) => r.to === sessionId);
    const event = (name) => m.events.filter((e) => e.name === name).at(-1)?.at;
    if (kase === 'cold') origin = event('progress/listing_participants');
    const marks = [];
    for (const h of m.http) {
      if (h.end < origin || !httpName(h.url)) continue;
      marks.push([`${httpName(h.url)}: sent`, h.start], [`${httpName(h.url)}: answered`, h.end]);
    }
    if (kase === 'lobby') marks.push(['admission notice at the page', m.socket.admitted]);
    marks.push(
      ['request emitted by the page', m.socket.request],
      ['request at the relay', request.at],
      ['answer at the relay (the participant\'s side: socket hops, its decryption and answer)', answer.at],
      ['answer at the page', m.socket.answer],
      ['setKey called (the answer decrypted and checked)', m.setKey],
      ['`key` event (after the safety number)', event('key')],
    );
    return marks.map(([name, at]) => [name, at - origin]);
  } finally {
    await context.close();
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

for (const kase of CASES) {
  const table = {};
  for (const name of BROWSERS) {
    const driver = drivers[name];
    const demo = await startDemo({ bots: [{ mode: 'reply', peer: 'current' }], autoAdmit: kase !== 'lobby', rateLimit: { max: 1000, windowMs: 60_000 } });
    const browser = await driver.launch();
    try {
      const rounds = [];
      for (let i = 0; i < ROUNDS; i++) rounds.push(await oneTab(driver, browser, demo, kase));
      // Marks by name, in the order of the first tab; each the median over the tabs.
      for (const [mark] of rounds[0]) {
        const xs = rounds.map((r) => r.find(([n]) => n === mark)?.[1]).filter((x) => x !== undefined);
        table[mark] ??= {};
        table[mark][`${name} ms`] = Number(median(xs).toFixed(1));
      }
      console.log(`${kase}: ${name} ${await browser.version()}, ${ROUNDS} fresh tabs`);
    } finally {
      await browser.close();
      await demo.close();
    }
  }
  console.log(kase === 'lobby'
    ? `timeline from the host's admission (page idle ${LOBBY_IDLE_MS} ms in the lobby before), median ms:`
    : 'timeline from the exchange\'s start (admitted on registration), median ms:');
  console.table(table);
}
