// Time to key on loopback: the demo page in headless Chromium, headless Firefox ESR and WebKit
// (WebKitGTK's MiniBrowser under Xvfb) against the relay, ROUNDS fresh tabs per scenario and browser. Figures only; nothing here asserts a
// time.
// In the exchange and lobby parts the relay (with the page server) and each bot run in
// processes of their own (bench/demo-process.js), as deployed.
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
//   lobby           admission → key: the guest waits in the host's lobby (the relay with
//                   autoAdmit off, three answering participants); once the page is idle there
//                   (LOBBY_IDLE_MS, default 1500, after the SDK's waiting_for_admission event and
//                   as long without network activity) the host admits it (the relay's admit
//                   endpoint). Measured in the page on its clock: from the guest:admitted notice's arrival on the page's
//                   socket to the key provider's setKey call; then the floor as in `live`, in the
//                   same tab, and the ratio of the two medians; and the floor once more after
//                   LOBBY_IDLE_MS idle, as the admission came (a second ratio: waking the idle
//                   relay and participant costs the plaintext round trip too)
//   peerwave        the same through PeerWave's real server (www/peerwave: booted from its
//                   bundle, one Flutter-like participant on the TypeScript port), the SDK's
//                   `peerwave` wire profile, admission by PeerWave's admit endpoint
//                   (meeting:admission_granted to the page); the floor: the key asked for and
//                   sent in plaintext guest → PeerWave → participant → PeerWave → guest through
//                   the same socket (the participant's opt-in plaintextFloor mode). PeerWave is
//                   restarted every three tabs (its rate limits), and the first tab after each
//                   boot is a warm-up, reported on a row of its own
//   scripts/build.sh package && node bench/time-to-key.js   (ROUNDS=20, BROWSERS=chromium,firefox,webkit)
//   QUICK=1: 2 rounds, to check the benchmark runs (CI).
//   ONLY=exchange,updates,lobby,peerwave: only those parts (default all; exchange = live and
//   silent, the first table). PEERWAVE_BROWSERS: the browsers of the peerwave part (default
//   BROWSERS). The peerwave part needs scripts/peerwave-setup.sh (it runs it itself).
//   GUEST_SDK_PKG: the SDK package the pages load (default pkg/signal-guest-sdk). VERBOSE=1:
//   each tab's figures in the lobby and peerwave parts.
import { startDemo } from '../www/demo/server.js';
import { startDemoProcess } from './demo-process.js';
import { launchChromium } from '../www/demo/chromium.js';
import { launchFirefox } from '../www/demo/firefox.js';
import { launchWebKit } from '../www/demo/webkit.js';
import { LEGACY_REQUEST_TYPE, LEGACY_RESPONSE_TYPE } from '../www/bot/bot.js';
import { startTrack, trackStats } from '../www/e2e/livekit-harness.js';

const QUICK = Boolean(process.env.QUICK);
const ROUNDS = Number(process.env.ROUNDS ?? (QUICK ? 2 : 20));
const UPDATES = Number(process.env.UPDATES ?? (QUICK ? 2 : 20));
const BROWSERS = (process.env.BROWSERS ?? 'chromium,firefox,webkit').split(',');
const PEERWAVE_BROWSERS = process.env.PEERWAVE_BROWSERS ? process.env.PEERWAVE_BROWSERS.split(',') : BROWSERS;
const PARTS = ['exchange', 'updates', 'lobby', 'peerwave'];
const ONLY = process.env.ONLY ? process.env.ONLY.split(',').map((x) => x.trim()).filter(Boolean) : PARTS;
for (const part of ONLY) if (!PARTS.includes(part)) throw new Error(`ONLY: unknown part ${part} (parts: ${PARTS.join(', ')})`);
const runs = (part) => ONLY.includes(part);
// How long the page is left idle in the lobby before the host admits it: this long after the
// SDK's waiting_for_admission event, and this long without network activity.
const LOBBY_IDLE_MS = Number(process.env.LOBBY_IDLE_MS ?? 1500);
// VERBOSE=1: one line per tab of the lobby and peerwave parts.
const VERBOSE = Boolean(process.env.VERBOSE);
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
  const demo = await startDemoProcess({ bots: scenario.bots, rateLimit: { max: 1000, windowMs: 60_000 } });
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

if (runs('exchange')) {
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
}

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

if (runs('updates')) {
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
}

// ----- admission → key: the guest admitted from the host's lobby once its page is idle -----

/**
 * In the page, right after Join (the page has made its socket and key provider): the probe the
 * admission → key measurement reads. `admittedAt`: the admission notice naming this guest
 * (`admittedEvent`) as it comes off the page's socket, before any other listener (the SDK's
 * included) runs; `keyAt`: the first call of the key provider's setKey. `activity`: the page's
 * network activity from now on (socket.io packets in and events out, fetch calls and their ends,
 * resource timing ends), to tell when the page is idle in the lobby.
 */
function armLobbyProbe({ admittedEvent, requestEvent, answerEvent }) {
  const socket = window.guestSocket;
  const provider = window.keyProvider;
  const probe = (window.lobbyProbe = { admittedAt: null, keyAt: null, requestAt: null, answerAt: null, activity: [], inFlight: 0 });
  const mark = (what, at = performance.now()) => probe.activity.push({ what, at });
  socket.prependAny((event, data) => {
    const at = performance.now();
    if (event === admittedEvent && probe.admittedAt === null
      && data?.session_id === window.demo.registration?.sessionId) probe.admittedAt = at;
    // The first answer after admission: the end of the participant-side path.
    if (event === answerEvent && probe.admittedAt !== null && probe.answerAt === null) probe.answerAt = at;
  });
  // Every packet in but the admission notice itself (the manager may hand it over before the
  // socket dispatches it, i.e. just before `admittedAt`).
  socket.io.on('packet', (packet) => {
    if (packet.data?.[0] !== admittedEvent) mark(`in ${packet.type} ${packet.data?.[0] ?? ''}`);
  });
  socket.onAnyOutgoing((event) => {
    mark(`out ${event}`);
    if (event === requestEvent && probe.admittedAt !== null && probe.requestAt === null) probe.requestAt = performance.now();
  });
  const fetch0 = window.fetch;
  window.fetch = function (input, init) {
    const url = String(input?.url ?? input);
    probe.inFlight++;
    mark(`fetch ${url}`);
    return fetch0.call(this, input, init).finally(() => { probe.inFlight--; mark(`fetched ${url}`); });
  };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) mark(`resource ${e.name}`, e.responseEnd);
  }).observe({ type: 'resource' });
  const setKey = provider.setKey;
  provider.setKey = function (...args) {
    if (probe.keyAt === null) probe.keyAt = performance.now();
    return setKey.apply(this, args);
  };
}

/** In the page: where the lobby wait stands (the page's clock). */
function lobbyState() {
  const waiting = window.demo.events?.find((e) => e.type === 'progress' && e.stage === 'waiting_for_admission');
  const probe = window.lobbyProbe;
  let last = -Infinity;
  for (const a of probe.activity) last = Math.max(last, a.at);
  return {
    now: performance.now(), waitingAt: waiting?.at ?? null, lastActivity: Number.isFinite(last) ? last : null,
    inFlight: probe.inFlight, sessionId: window.demo.registration?.sessionId ?? null,
    error: window.demo.error, done: Boolean(window.demo.result || window.demo.error),
  };
}

/** In the page, after the key: the probe's figures (ms on the page's clock). */
function lobbyFigures() {
  const { admittedAt, keyAt, requestAt, answerAt, activity } = window.lobbyProbe;
  const waitingAt = window.demo.events?.find((e) => e.type === 'progress' && e.stage === 'waiting_for_admission')?.at;
  const before = activity.filter((a) => a.at >= waitingAt && a.at < admittedAt).map((a) => a.at);
  return {
    admittedAt, keyAt, waitingAt,
    // The request's way through the server and the participant and back: what the guest waits
    // for that is not its own (the participant-side path).
    participantPath: requestAt !== null && answerAt !== null ? answerAt - requestAt : null,
    // The guest's own parts: the admission notice to the request out, the answer in to setKey.
    toRequest: requestAt !== null ? requestAt - admittedAt : null,
    toAdmittedEvent: (() => {
      const e = window.demo.events?.find((x) => x.type === 'admitted' && x.at >= admittedAt);
      return e ? e.at - admittedAt : null;
    })(),
    fromAnswer: answerAt !== null ? keyAt - answerAt : null,
    // How long network activity went on after the waiting event (0: none after it).
    prepMs: before.length ? Math.max(...before) - waitingAt : 0,
    prepLast: before.length ? activity.find((a) => a.at === Math.max(...before))?.what : null,
    fetchesBetween: activity.filter((a) => a.what.startsWith('fetch ') && a.at > admittedAt && a.at < keyAt).length,
  };
}

/** In the page: one plaintext key round trip with a PeerWave participant (its plaintextFloor mode). */
async function peerwavePlaintextRoundTrip({ to, meetingId, messageType }) {
  const socket = window.guestSocket;
  const requestId = crypto.randomUUID();
  const started = performance.now();
  await new Promise((resolve) => {
    const onMessage = (d) => {
      if (d?.request_id !== requestId || d?.messageType !== messageType) return;
      const answer = JSON.parse(atob(d.ciphertext));
      if (typeof answer.encryptedKey !== 'string') return;
      socket.off('participant:meeting_e2ee_key_response', onMessage);
      resolve();
    };
    socket.on('participant:meeting_e2ee_key_response', onMessage);
    socket.emit('guest:meeting_e2ee_key_request', {
      participant_user_id: to.userId, participant_device_id: to.deviceId, meeting_id: meetingId,
      ciphertext: btoa(JSON.stringify({ request_id: requestId })), messageType, request_id: requestId,
    });
  });
  return performance.now() - started;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * One tab: open, Join, wait until the page is idle in the lobby, `admit(sessionId)` from Node,
 * wait for the key, then `floor(page, result)`. Returns the tab's figures.
 */
async function lobbyTab({ browserName, browser, url, admittedEvent, requestEvent, answerEvent, admit, floor, what }) {
  const driver = drivers[browserName];
  const context = await driver.context(browser);
  try {
    const page = await context.newPage();
    await page.goto(url);
    await driver.waitFor(page, () => window.demo?.ready, 20_000);
    await page.click('#join');
    // Join makes the page's socket and key provider at once (www/demo/app.js), before registering.
    await driver.waitFor(page, () => window.guestSocket && window.keyProvider, 5_000);
    await page.evaluate(armLobbyProbe, { admittedEvent, requestEvent, answerEvent });
    // Idle: LOBBY_IDLE_MS after the waiting event, and as long since the last network activity.
    let state;
    let quiet = true;
    for (const started = Date.now(); ; await sleep(50)) {
      state = await page.evaluate(lobbyState);
      if (state.done) throw new Error(`${what}: the page ended before admission: ${JSON.stringify(state.error)}`);
      if (state.waitingAt !== null && state.inFlight === 0
        && state.now - Math.max(state.waitingAt, state.lastActivity ?? -Infinity) >= LOBBY_IDLE_MS) break;
      if (Date.now() - started > 20_000) {
        if (state.waitingAt === null) throw new Error(`${what}: no waiting_for_admission event within 20 s`);
        quiet = false; // admitted anyway; counted
        break;
      }
    }
    await admit(state.sessionId);
    await driver.waitFor(page, () => window.demo.result || window.demo.error, 30_000);
    const result = await page.evaluate(() => window.demo.result && { from: window.demo.result.from });
    if (!result) throw new Error(`${what}: ${JSON.stringify(await page.evaluate(() => window.demo.error))}`);
    const f = await page.evaluate(lobbyFigures);
    if (f.admittedAt === null || f.keyAt === null || f.keyAt < f.admittedAt) {
      throw new Error(`${what}: admission at ${f.admittedAt}, key at ${f.keyAt}`);
    }
    const tab = {
      admissionToKey: f.keyAt - f.admittedAt,
      participantPath: f.participantPath,
      toRequest: f.toRequest,
      toAdmittedEvent: f.toAdmittedEvent,
      fromAnswer: f.fromAnswer,
      floor: await floor(page, result),
      // The same round trip once everything has been idle as long as before the admission
      // (the relay's and the participant's processes too): like with like.
      idleFloor: await sleep(LOBBY_IDLE_MS).then(() => floor(page, result)),
      prep: f.prepMs,
      prepLast: f.prepLast,
      waited: f.admittedAt - f.waitingAt,
      fetchesBetween: f.fetchesBetween,
      quiet,
    };
    if (VERBOSE) {
      console.log(`${what}: admission → key ${tab.admissionToKey.toFixed(1)} ms, floor ${tab.floor.toFixed(1)} ms, `
        + `activity ${tab.prep.toFixed(1)} ms after the waiting event, admitted ${tab.waited.toFixed(0)} ms after it, `
        + `${tab.fetchesBetween} fetch() between (at ${new Date().toISOString().slice(11, 23)})`);
    }
    return tab;
  } finally {
    await context.close();
  }
}

/** The relay with autoAdmit off: ROUNDS tabs admitted from the lobby once idle. */
async function measureLobby(browserName) {
  const demo = await startDemoProcess({ bots: ['reply', 'reply', 'reply'], autoAdmit: false, rateLimit: { max: 1000, windowMs: 60_000 } });
  const browser = await drivers[browserName].launch();
  const tabs = [];
  let measured = null;
  try {
    for (let i = 0; i < ROUNDS; i++) {
      tabs.push(await lobbyTab({
        browserName, browser, url: `${demo.url}?bench`, what: `${browserName} lobby round ${i}`,
        admittedEvent: 'guest:admitted', requestEvent: 'guest:signal_message', answerEvent: 'participant:signal_message',
        admit: (sid) => demo.admit(sid),
        floor: (page, result) => page.evaluate(plaintextRoundTrip, {
          to: result.from, requestType: LEGACY_REQUEST_TYPE, responseType: LEGACY_RESPONSE_TYPE,
        }),
      }));
    }
    measured = { version: await browser.version(), tabs };
  } finally {
    await browser.close();
    const participants = await demo.close();
    if (measured) measured.participants = participants;
  }
  return measured;
}

/**
 * PeerWave's real server, one Flutter-like participant (TypeScript port) that also answers the
 * plaintext floor. PeerWave lets a meeting's guests fetch one participant device's bundle 3
 * times a minute and counts all loopback pages against one /api bucket (100 requests per 15
 * minutes), both in memory, so it is restarted (as www/peerwave/e2e.test.js does) after every
 * three tabs: after each boot one warm-up tab, the same flow but kept out of the figures (a
 * freshly booted PeerWave takes about twice as long: `cold`, reported on a row of its own),
 * then two measured tabs.
 */
async function measurePeerWave(browserName) {
  const { startPeerWaveDemo } = await import('../www/peerwave/demo.js');
  const { PLAINTEXT_FLOOR_MESSAGE_TYPE } = await import('../www/peerwave/participant.js');
  const demo = await startPeerWaveDemo({ participants: [{ mode: 'reply', plaintextFloor: true }], autoAdmit: false });
  const browser = await drivers[browserName].launch();
  const tabs = [];
  const cold = [];
  const bot = demo.bots[0];
  const tab = (what) => lobbyTab({
    browserName, browser, url: `${demo.url}?bench`, admittedEvent: 'meeting:admission_granted', what,
    requestEvent: 'guest:meeting_e2ee_key_request', answerEvent: 'participant:meeting_e2ee_key_response',
    // The page is idle, so its lobby request is done; PeerWave answers 409 to a guest that has
    // not asked yet (tried again briefly, should it ever be late).
    admit: async (sid) => {
      for (let tries = 0; ; tries++) {
        try { return await demo.server.admit(sid); } catch (e) {
          if (e.status !== 409 || tries === 20) throw e;
          await sleep(100);
        }
      }
    },
    floor: (page, result) => page.evaluate(peerwavePlaintextRoundTrip, {
      to: result.from, meetingId: demo.server.meetingId, messageType: PLAINTEXT_FLOOR_MESSAGE_TYPE,
    }),
  });
  try {
    for (let i = 0; i < ROUNDS; i++) {
      if (i % 2 === 0) {
        if (i > 0) {
          await demo.server.restart();
          await bot.ready;
          await bot.joinRoom();
        }
        cold.push(await tab(`${browserName} peerwave warm-up after boot ${i / 2}`));
      }
      tabs.push(await tab(`${browserName} peerwave round ${i}`));
    }
    // Two floors a tab: right after the key and after the idle time.
    const floors = 2 * (tabs.length + cold.length);
    if (bot.stats.plaintextFloorAnswers !== floors) throw new Error(`peerwave: ${bot.stats.plaintextFloorAnswers} floor answers, not ${floors}`);
    return { version: await browser.version(), tabs, cold };
  } finally {
    await browser.close();
    await demo.close();
  }
}

/** The table and the per-browser ratio lines of a lobby part. */
async function reportLobby({ label, prefix, browsers, measureOne }) {
  const rows = {};
  const lines = [];
  for (const browserName of browsers) {
    const m = await measureOne(browserName);
    const col = (key) => m.tabs.map((t) => t[key]);
    const put = (what, xs, withP90 = true) => {
      rows[what] ??= {};
      rows[what][`${browserName} median`] = fixed(median(xs));
      if (withP90) rows[what][`${browserName} p90`] = fixed(p90(xs));
    };
    put(`${prefix}: admission → key ms`, col('admissionToKey'));
    put(`${prefix}: floor: plaintext key round trip ms`, col('floor'));
    put(`${prefix}: floor after ${LOBBY_IDLE_MS} ms idle ms`, col('idleFloor'));
    put(`${prefix}: participant-side path (request out → answer in, at the page) ms`, col('participantPath').filter((x) => x !== null));
    put(`${prefix}: admission notice → request out, at the page ms`, col('toRequest').filter((x) => x !== null));
    put(`${prefix}: admission notice → the SDK's admitted event, at the page ms`, col('toAdmittedEvent').filter((x) => x !== null));
    put(`${prefix}: answer in → setKey, at the page ms`, col('fromAnswer').filter((x) => x !== null));
    put(`${prefix}: waiting event → last network activity before admission ms`, col('prep'));
    put(`${prefix}: waiting event → admission ms`, col('waited'));
    put(`${prefix}: fetch() calls between admission and key`, col('fetchesBetween'), false);
    if (m.cold) put(`${prefix}: admission → key, warm-up tab after PeerWave's boot (not above) ms`, m.cold.map((t) => t.admissionToKey));
    const short = (w) => w.replace(/https?:\/\/[^/]+/, '').replace(/\?.*$/, '').replace(/mtg_[0-9a-f]+/g, '<meeting>').replace(/[0-9a-f]{32}|[0-9a-f-]{36}/g, '<id>');
    const lasts = [...new Set(col('prepLast').filter(Boolean).map(short))];
    const notQuiet = col('quiet').filter((q) => !q).length;
    lines.push(`${browserName}: ${m.version}, ${ROUNDS} fresh tabs${m.cold ? ` (and ${m.cold.length} warm-up tab${m.cold.length === 1 ? '' : 's'})` : ''}${notQuiet ? `, ${notQuiet} admitted before the page was quiet (20 s)` : ''}`
      + `; last activity after the waiting event: ${lasts.length ? lasts.join(', ') : 'none'}`);
    lines.push(`${label}: ${(median(col('admissionToKey')) / median(col('floor'))).toFixed(1)}`);
    lines.push(`${label} after ${LOBBY_IDLE_MS} ms idle: ${(median(col('admissionToKey')) / median(col('idleFloor'))).toFixed(1)}`);
    const path = col('participantPath').filter((x) => x !== null);
    if (path.length) lines.push(`${prefix} admission→key / participant-side path: ${(median(col('admissionToKey')) / median(path)).toFixed(1)}`);
    // The participant's own part of that path, from its side: its turn at the message to the
    // answer sent, in its own process (www/bot/bot.js `handling()`).
    for (const { user, peer, handling } of m.participants ?? []) {
      const of = (kind) => (handling?.[kind] ? `${handling[kind].median} ms (p90 ${handling[kind].p90}, ${handling[kind].n})` : 'none');
      if (handling && Object.keys(handling).length) lines.push(`${prefix}: ${user} (${peer}) handling, its turn → answer sent: key request ${of('keyRequest')}, plaintext floor ${of('plaintext')}`);
    }
  }
  return { rows, lines };
}

if (runs('lobby')) {
  const { rows, lines } = await reportLobby({ label: 'admission→key / floor', prefix: 'lobby', browsers: BROWSERS, measureOne: measureLobby });
  console.log(`admission → key, loopback: admitted from the relay's lobby ${LOBBY_IDLE_MS} ms after the page went idle there (median and p90 of the tabs):`);
  console.table(rows);
  for (const l of lines) console.log(l);
}

if (runs('peerwave')) {
  const { rows, lines } = await reportLobby({
    label: 'peerwave admission→key / floor', prefix: 'peerwave', browsers: PEERWAVE_BROWSERS, measureOne: measurePeerWave,
  });
  console.log(`admission → key through PeerWave's real server, loopback: admitted from its lobby ${LOBBY_IDLE_MS} ms after the page went idle there (median and p90 of the tabs):`);
  console.table(rows);
  for (const l of lines) console.log(l);
}
