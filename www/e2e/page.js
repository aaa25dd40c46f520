// The demo prejoin page as the end-to-end suites drive it (www/e2e/, www/e2e-firefox/,
// www/e2e-webkit/, www/peerwave/): open it against a demo server in a fresh browser context,
// join, wait for the outcome, read the transcript. Chromium is driven by playwright-core,
// Firefox by puppeteer-core over WebDriver BiDi, WebKit by selenium-webdriver over classic
// WebDriver (www/demo/webkit.js); `drivers` holds what differs between them.

export const drivers = {
  chromium: {
    newContext: (browser) => browser.newContext(),
    waitFor: (page, fn, timeout) => page.waitForFunction(fn, null, timeout === undefined ? {} : { timeout }),
    // `window.demo` without the LiveKit Room, which no test reads.
    snapshot: (page) => page.evaluate(() => ({ ...window.demo, room: undefined })),
  },
  firefox: {
    newContext: (browser) => browser.createBrowserContext(),
    waitFor: (page, fn, timeout) => page.waitForFunction(fn, timeout === undefined ? {} : { timeout }),
    // A plain JSON copy of `window.demo`, without the LiveKit Room.
    snapshot: (page) => page.evaluate(() => JSON.parse(JSON.stringify(window.demo, (k, v) => (k === 'room' ? undefined : v)))),
  },
  webkit: {
    // A new WebDriver session: a fresh MiniBrowser (one at a time).
    newContext: (browser) => browser.newContext(),
    waitFor: (page, fn, timeout) => page.waitForFunction(fn, timeout),
    snapshot: (page) => page.evaluate(() => JSON.parse(JSON.stringify(window.demo, (k, v) => (k === 'room' ? undefined : v)))),
  },
};

/**
 * A suite's page helpers.
 *   browser   () => the browser opened in the suite's `before` (pages open in a new context of it)
 *   start     (options) => a demo server ({url, close}: www/demo/server.js, www/peerwave/demo.js)
 *   driver    'chromium', 'firefox' or 'webkit' (see `drivers`)
 *   readyMs   how long a page may take to be ready (undefined: the driver's default)
 *   settleMs  how long `settled`, `join` and `retry` wait for a result or an error
 *   untilMs, pollMs   `until`'s default time limit and its polling interval
 */
export function pageHelpers({
  browser, start, driver = 'chromium', readyMs, settleMs = 60_000, untilMs = 10_000, pollMs = 20,
}) {
  const d = drivers[driver];

  /**
   * Starts a demo server with `options` and opens `query` on it in a fresh context of `launched`.
   * `lines` collects every page's console lines and page errors; `openPage()` opens another page
   * in the same context.
   */
  async function open(options, query = '?e2e', launched = browser()) {
    const demo = await start(options);
    const context = await d.newContext(launched);
    const lines = [];
    const openPage = async () => {
      const page = await context.newPage();
      page.on('console', (m) => lines.push(m.text()));
      page.on('pageerror', (e) => lines.push(`pageerror: ${e.message}`));
      await page.goto(demo.url + query);
      await d.waitFor(page, () => window.demo?.ready, readyMs);
      return page;
    };
    const page = await openPage();
    return {
      demo, page, lines, openPage,
      close: async () => { await context.close(); await demo.close(); },
    };
  }

  /** `window.demo` once the page has a result or an error. */
  const settled = (page, ms = settleMs) =>
    d.waitFor(page, () => window.demo.result || window.demo.error, ms).then(() => d.snapshot(page));

  async function join(page) {
    await page.click('#join');
    return settled(page);
  }

  async function retry(page) {
    await page.evaluate(() => { window.demo.result = null; window.demo.error = null; });
    await page.click('#retry');
    return settled(page);
  }

  /** The first truthy value of `condition()` (which may be async), polled until `ms` have passed. */
  async function until(condition, what, ms = untilMs) {
    const deadline = Date.now() + ms;
    for (;;) {
      const value = await condition();
      if (value) return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }

  /** Waits until a (re)loaded page is ready. */
  const ready = (page) => d.waitFor(page, () => window.demo?.ready, readyMs);

  return { open, settled, join, retry, until, ready };
}

/** The time (s since joining) of the first transcript line that starts with `prefix`. */
export const at = (state, prefix) => state.transcript.find((l) => l.text.startsWith(prefix))?.t;

/**
 * Seconds between the relay forwarding the guest's first message to `firstUser` and its first
 * to `secondUser`: when the SDK's requests left, without the page's own delay in stamping the
 * progress events it hears after the sends (and after the state is stored: tens of ms in WebKit).
 * The machine times a request from the start of the step that seals it, so a gap may come out a
 * few ms under the SDK's deadline.
 */
export function requestGap(relay, firstUser, secondUser) {
  const sentTo = (user) => relay.state.relayedToParticipants.find((r) => r.to.user_id === user)?.at;
  return (sentTo(secondUser) - sentTo(firstUser)) / 1000;
}

/** The transcript as text, one line a line. */
export const transcript = (state) => state.transcript.map((l) => l.text).join('\n');
