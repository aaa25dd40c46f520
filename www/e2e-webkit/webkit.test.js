// The demo prejoin page in WebKit (WebKitGTK's MiniBrowser under Xvfb, classic WebDriver through
// WebKitWebDriver: www/demo/webkit.js): the happy path, rotation and the hedge, livekit-client's
// key derivation on both sides (and what this WebKit lacks for LiveKit's E2EE media path), reuse
// after a reload, a duplicated tab, a tab in the background, and WebKit's own storage behaviour
// (private browsing, the storage quota full, storage switched off or blocked).
// Each test opens a fresh MiniBrowser (a new WebDriver session).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startDemo } from '../demo/server.js';
import { launchWebKit } from '../demo/webkit.js';
import { keyCheckValue } from '../bot/bot.js';
import { frameCheck } from '../e2e/frame-check.js';
import { happyPath, reloadReuse, rotationOneAtATime } from '../e2e/demo-scenarios.js';
import { at, pageHelpers, requestGap, transcript } from '../e2e/page.js';

let browser;
before(async () => { browser = await launchWebKit(); });
after(async () => { await browser?.close(); });

const helpers = pageHelpers({
  browser: () => browser, start: startDemo, driver: 'webkit', readyMs: 20_000,
});
const { open, join, settled } = helpers;

test('happy path: the key handed to the key provider (GuestKeyProvider) is the participants\' key', async () => {
  const state = await happyPath(helpers);
  console.log(`webkit (${browser.version()}): time to key ${Math.round(state.result.timeToKeyMs)} ms`);
});

test('rotation (one at a time): the first participant silent, the second asked 5 s after the first, the key within 6.5 s', async () => {
  await rotationOneAtATime(helpers);
});

test('hedge (the default): the first participant silent, the second asked at 1.5 s, the key within 2 s', async () => {
  const s = await open({ bots: ['silent', 'reply'] });
  try {
    const state = await join(s.page);
    assert.equal(state.error, null, JSON.stringify(state.error));
    assert.equal(state.result.from.userId, 'participant-2');
    const hedged = requestGap(s.demo.relay, 'participant-1', 'participant-2');
    assert.ok(hedged >= 1.45 && hedged < 1.9, `hedged ${hedged.toFixed(3)} s after the first request`);
    assert.ok(state.result.timeToKeyMs <= 2_000, `key in ${state.result.timeToKeyMs} ms`);
    assert.ok(!state.transcript.some((l) => l.text.includes('rotating')), 'no failure counted');
  } finally { await s.close(); }
});

test('frame check: livekit-client key derivation on both sides decrypts the same frame; LiveKit\'s E2EE media path is not in this WebKit', async () => {
  const s = await open({ bots: ['reply'] });
  try {
    await join(s.page);
    // The frame check needs only crypto.subtle (PBKDF2, HKDF, AES-GCM) and the key provider.
    const check = (participantKeyBase64) => s.page.evaluate(frameCheck, participantKeyBase64);
    assert.equal(await check(s.demo.meetingKey.toString('base64')), 'an encrypted video frame');
    assert.equal(await check(Buffer.alloc(32, 7).toString('base64')), 'decryption failed');
    // livekit-client encrypts media through RTCRtpScriptTransform (Safari) or encoded streams
    // (Chromium). WebKitGTK as Debian builds it has neither (nor RTCPeerConnection), so
    // livekit-client reports E2EE unsupported and the Room refuses E2EE; the page says so and
    // the key stays in the key provider.
    const support = await s.page.evaluate(async () => {
      const lk = await import('/vendor/livekit-client.mjs');
      return { e2ee: lk.isE2EESupported(), scriptTransform: typeof window.RTCRtpScriptTransform, peerConnection: typeof window.RTCPeerConnection };
    });
    assert.deepEqual(support, { e2ee: false, scriptTransform: 'undefined', peerConnection: 'undefined' });
    await waitForLine(s.page, 'LiveKit: tried to setup end-to-end encryption on an unsupported browser');
    const state = await settled(s.page);
    assert.equal(state.livekit?.roomName, 'demo-meeting', 'the guest token still came');
  } finally { await s.close(); }
});

test('reload in the same tab reuses the stored identity and asks the answerer first', async () => {
  await reloadReuse(helpers);
});

test('a duplicated tab: WebKit copies sessionStorage into it, Web Locks tell the copy, it makes its own identity and registration', async () => {
  // window.open from the page (an auxiliary browsing context: WebKit copies its sessionStorage);
  // MiniBrowser blocks script-opened windows unless told otherwise.
  const launched = await launchWebKit({ args: ['--javascript-can-open-windows-automatically=true'] });
  const s = await open({ bots: ['reply'] }, '?e2e', launched);
  try {
    const first = await join(s.page);
    assert.equal(first.error, null, JSON.stringify(first.error));
    assert.equal(await s.page.evaluate(() => typeof navigator.locks?.request), 'function');
    await s.page.evaluate(() => { window.open(location.href); });
    const [copy] = await s.page.otherPages();
    assert.ok(copy, 'the page opened a window');
    await copy.waitForFunction(() => window.demo?.ready, 20_000);
    const copied = await copy.evaluate(() => Object.keys(sessionStorage).filter((k) => k.startsWith('signal-guest/')).length);
    assert.ok(copied > 0, 'WebKit copied the first tab\'s sessionStorage');
    const state = await join(copy);
    assert.equal(state.error, null, JSON.stringify(state.error));
    assert.ok(state.transcript.some((l) => l.text.startsWith('another open tab may use this tab\'s stored keys')), transcript(state));
    assert.equal(state.registration.reused, false);
    assert.notEqual(state.registration.sessionId, first.registration.sessionId);
    assert.equal(state.result.keyCheckValue, keyCheckValue(s.demo.meetingKey));
    // The first tab keeps its own registration.
    assert.equal(await s.page.evaluate(() => window.demo.registration.sessionId), first.registration.sessionId);
  } finally {
    await s.close();
    await launched.close();
  }
});

// Safari aligns a hidden page's timers to whole seconds (WebKit's hidden-page DOM timer
// throttling; on macOS and iOS the alignment grows the longer the page stays hidden). WebKitGTK
// leaves it off: a background tab's timers run on time.
test('a tab in the background: hidden, its timers on time in WebKitGTK; rotation at 5 s and the key', async () => {
  const s = await open({ bots: ['silent', 'reply'] }, '?e2e&hedge=0');
  try {
    // A tab WebDriver opens stays behind the first one: hidden.
    const tab = await s.openPage();
    assert.equal(await tab.evaluate(() => document.visibilityState), 'hidden');
    await tab.evaluate(() => { document.getElementById('join').click(); });
    const state = await settled(tab);
    assert.equal(await tab.evaluate(() => document.visibilityState), 'hidden');
    assert.equal(state.result.from.userId, 'participant-2');
    const rotated = requestGap(s.demo.relay, 'participant-1', 'participant-2');
    assert.ok(rotated >= 4.95 && rotated <= 6.0, `second request ${rotated.toFixed(3)} s after the first`);
    const waited = at(state, 'Received the meeting key from participant-2') - at(state, 'Asking participant-1/1 for the meeting key');
    assert.ok(waited <= 6.5, `key ${waited} s after the first request`);
  } finally { await s.close(); }
});

test('timers aligned to whole seconds, as in a hidden Safari tab: rotation not before 5 s, hedge not before 1.5 s, the key', async () => {
  for (const [query, min, max] of [['?e2e&hedge=0', 4.95, 7.0], ['?e2e', 1.45, 3.0]]) {
    const s = await open({ bots: ['silent', 'reply'] }, query);
    try {
      // Every timer the page (and so the SDK) sets fires at the next whole second after it is due.
      await s.page.evaluate(() => {
        const setTimer = window.setTimeout.bind(window);
        window.setTimeout = (fn, ms = 0, ...args) => {
          const due = performance.now() + ms;
          return setTimer(fn, Math.ceil(due / 1000) * 1000 - performance.now(), ...args);
        };
      });
      const state = await join(s.page);
      assert.equal(state.error, null, JSON.stringify(state.error));
      assert.equal(state.result.keyCheckValue, keyCheckValue(s.demo.meetingKey));
      const waited = requestGap(s.demo.relay, 'participant-1', 'participant-2');
      assert.ok(waited >= min && waited <= max, `${query}: participant-2 asked ${waited.toFixed(3)} s after participant-1\n${transcript(state)}`);
    } finally { await s.close(); }
  }
});

// WebKit's storage, each case in its own MiniBrowser.
test('storage, private browsing: sessionStorage works as usual', async () => {
  const launched = await launchWebKit({ args: ['--private'] });
  const s = await open({ bots: ['reply'] }, '?e2e', launched);
  try {
    const state = await join(s.page);
    assertBackend(state, s, 'sessionStorage');
  } finally {
    await s.close();
    await launched.close();
  }
});

test('storage, the origin\'s quota already full (WebKit\'s 5 MB): memory, and the page is told', async () => {
  const s = await open({ bots: ['reply'] });
  try {
    const filled = await s.page.evaluate(() => {
      let bytes = 0;
      for (const size of [65_536, 1_024, 16]) {
        try {
          for (let i = 0; ; i++) { sessionStorage.setItem(`fill-${size}-${i}`, 'x'.repeat(size)); bytes += size; }
        } catch (e) {
          if (e.name !== 'QuotaExceededError') throw e;
        }
      }
      return bytes;
    });
    assert.ok(filled > 4_000_000, `${filled} bytes before the quota`);
    const state = await join(s.page);
    assertBackend(state, s, 'memory');
  } finally { await s.close(); }
});

test('storage switched off in WebKitGTK (local storage off, no cookies): sessionStorage still works and is used', async () => {
  // WebKit's setting removes localStorage only; no WebKitGTK setting blocks sessionStorage.
  const launched = await launchWebKit({ args: ['--enable-html5-local-storage=false', '--cookies-policy=never'] });
  const s = await open({ bots: ['reply'] }, '?e2e', launched);
  try {
    assert.equal(await s.page.evaluate(() => window.localStorage), null);
    const state = await join(s.page);
    assertBackend(state, s, 'sessionStorage');
  } finally {
    await s.close();
    await launched.close();
  }
});

test('storage blocked as Safari\'s "Block All Cookies" does (reading sessionStorage throws SecurityError): memory, and the page is told', async () => {
  const s = await open({ bots: ['reply'] });
  try {
    // WebKit's storage blocking policy BlockAll, which WebKitGTK does not expose: the same
    // exception from the same getter.
    await s.page.evaluate(() => {
      Object.defineProperty(window, 'sessionStorage', {
        configurable: true,
        get() { throw new DOMException('The operation is insecure.', 'SecurityError'); },
      });
    });
    const state = await join(s.page);
    assertBackend(state, s, 'memory');
  } finally { await s.close(); }
});

function assertBackend(state, s, backend) {
  assert.equal(state.error, null, JSON.stringify(state.error));
  assert.equal(state.storageBackend, backend);
  const told = state.transcript.some((l) => /storage cannot be used/.test(l.text));
  assert.equal(told, backend === 'memory', transcript(state));
  assert.equal(state.result.keyCheckValue, keyCheckValue(s.demo.meetingKey));
}

/** Waits for a transcript line starting with `prefix` (the page writes some after the result). */
async function waitForLine(page, prefix) {
  await page.waitForFunction(new Function(`return window.demo.transcript.some((l) => l.text.startsWith(${JSON.stringify(prefix)}));`), 10_000);
}
