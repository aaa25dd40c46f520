// WebKit (Safari's engine) as WebKitGTK ships it in Debian: MiniBrowser driven over classic
// W3C WebDriver by selenium-webdriver, through WebKitWebDriver, under an Xvfb display (WebKitGTK
// has no headless mode). Each launch starts its own Xvfb (a free display, -displayfd) and its own
// WebKitWebDriver (a free port) and stops both by process id. Sessions are created straight on
// that driver, so Selenium Manager (which downloads drivers) never runs.
//
// The handle looks like the other launchers' browsers to www/e2e/page.js and the benchmark:
//   browser.newContext()  a new WebDriver session: a fresh MiniBrowser, fresh storage
//   context.newPage()     the session's window, then a new tab each call
//   page.goto/click/reload/evaluate/waitForFunction/on('console'|'pageerror')/otherPages
//   browser.version()     "MiniBrowser <WebKitGTK version>" once a context has opened
// WebKitWebDriver serves one session at a time: a context is closed before the next opens.
import { spawn } from 'node:child_process';
import net from 'node:net';
import { Capabilities, WebDriver, By } from 'selenium-webdriver';
import { Executor, HttpClient } from 'selenium-webdriver/http/index.js';

const DRIVER = process.env.WEBKIT_WEBDRIVER ?? 'WebKitWebDriver';
// Unset: the MiniBrowser WebKitWebDriver was built with (Debian: libwebkit2gtk-4.1-0's).
const MINIBROWSER = process.env.WEBKIT_MINIBROWSER;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Starts a process in its own process group; `stop()` ends that group and waits. */
function start(command, args, options = {}) {
  const child = spawn(command, args, { detached: true, stdio: ['ignore', 'ignore', 'pipe'], ...options });
  let log = '';
  child.stderr?.on('data', (d) => { log = (log + d).slice(-4000); });
  const exited = new Promise((resolve) => {
    child.once('exit', resolve);
    child.once('error', (e) => { log += `${command}: ${e.message}`; resolve(null); }); // not installed
  });
  const kill = (signal) => { try { process.kill(-child.pid, signal); } catch { /* already gone */ } };
  // If this process ends without close(), its children must not outlive it.
  const onExit = () => kill('SIGKILL');
  process.once('exit', onExit);
  return {
    child,
    exited,
    log: () => log,
    async stop() {
      process.off('exit', onExit);
      if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
      kill('SIGTERM');
      const t = setTimeout(() => kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** Xvfb on the first free display number it finds itself (-displayfd). */
async function startXvfb() {
  const xvfb = start('Xvfb', ['-displayfd', '3', '-screen', '0', '1280x1024x24', '-nolisten', 'tcp'], {
    stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
  });
  const display = await new Promise((resolve, reject) => {
    let out = '';
    xvfb.child.stdio[3].on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(`:${out.trim()}`);
    });
    xvfb.exited.then(() => reject(new Error(`Xvfb exited: ${xvfb.log()}`)));
  });
  return { ...xvfb, display };
}

async function startDriver(display) {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const driver = start(DRIVER, [`--port=${port}`], { env: { ...process.env, DISPLAY: display } });
    let gone = false;
    driver.exited.then(() => { gone = true; });
    for (let i = 0; i < 100 && !gone; i++) {
      try {
        const r = await fetch(`http://127.0.0.1:${port}/status`);
        if (r.ok) return { ...driver, url: `http://127.0.0.1:${port}` };
      } catch { /* not listening yet */ }
      await sleep(50);
    }
    await driver.stop();
    if (attempt === 2) throw new Error(`WebKitWebDriver did not start: ${driver.log()}`);
  }
}

/**
 * Starts Xvfb and WebKitWebDriver. `args` are MiniBrowser's extra command-line arguments for
 * every session of this launch (e.g. '--private', '--enable-html5-local-storage=false').
 */
export async function launchWebKit({ args = [] } = {}) {
  const xvfb = await startXvfb();
  let server;
  try {
    server = await startDriver(xvfb.display);
  } catch (e) {
    await xvfb.stop();
    throw e;
  }
  const capabilities = new Capabilities({
    'webkitgtk:browserOptions': { ...(MINIBROWSER ? { binary: MINIBROWSER } : {}), args: ['--automation', ...args] },
  });
  const contexts = new Set();
  let version = '';

  async function newContext() {
    const driver = await WebDriver.createSession(new Executor(new HttpClient(server.url)), capabilities);
    const caps = await driver.getCapabilities();
    version = `${caps.get('browserName')} ${caps.get('browserVersion')}`;
    await driver.manage().setTimeouts({ script: 120_000, pageLoad: 60_000 });
    const first = await driver.getWindowHandle();
    let firstTaken = false;
    let current = first;
    const use = async (handle) => {
      if (current !== handle) { await driver.switchTo().window(handle); current = handle; }
    };
    const context = {
      driver,
      async newPage() {
        let handle = first;
        if (firstTaken) {
          await use(current);
          await driver.switchTo().newWindow('tab');
          handle = await driver.getWindowHandle();
          current = handle;
        }
        firstTaken = true;
        return webkitPage(driver, handle, use);
      },
      async close() {
        contexts.delete(context);
        await driver.quit().catch(() => {});
      },
    };
    contexts.add(context);
    return context;
  }

  return {
    newContext,
    version: () => version,
    async close() {
      for (const c of [...contexts]) await c.close();
      await server.stop();
      await xvfb.stop();
    },
  };
}

// Runs in the page after each load: keeps console lines and uncaught errors for the test to read
// (classic WebDriver has no console events).
const HOOK = `if (!window.__webkitLog) {
  const log = (window.__webkitLog = []);
  const original = console.log.bind(console);
  console.log = (...a) => { log.push({ type: 'console', text: a.map(String).join(' ') }); original(...a); };
  addEventListener('error', (e) => log.push({ type: 'pageerror', text: e.message }));
  addEventListener('unhandledrejection', (e) => log.push({ type: 'pageerror', text: String(e.reason?.message ?? e.reason) }));
}`;

function webkitPage(driver, handle, use) {
  const listeners = { console: [], pageerror: [] };
  const drain = async () => {
    const entries = await driver.executeScript('return window.__webkitLog ? window.__webkitLog.splice(0) : [];');
    for (const { type, text } of entries ?? []) {
      for (const fn of listeners[type] ?? []) fn(type === 'console' ? { text: () => text } : { message: text });
    }
  };
  const hook = () => driver.executeScript(HOOK);

  /** `fn(arg)` in the page (it may return a promise); its JSON value. */
  async function evaluate(fn, arg) {
    await use(handle);
    const source = fn.toString();
    const { ok, error } = await driver.executeAsyncScript(
      `const done = arguments[arguments.length - 1];
       Promise.resolve().then(() => (${source})(arguments[0]))
         .then((v) => done({ ok: v === undefined ? null : JSON.parse(JSON.stringify(v)) ?? null }),
               (e) => done({ error: String(e && e.stack || e) }));`,
      arg === undefined ? null : arg,
    );
    if (error !== undefined) throw new Error(`in the page: ${error}`);
    await drain().catch(() => {});
    return ok;
  }

  return {
    handle,
    on(type, fn) { listeners[type]?.push(fn); },
    /** The pages of the other windows of this session (e.g. ones this page opened). */
    async otherPages() {
      const handles = await driver.getAllWindowHandles();
      return handles.filter((h) => h !== handle).map((h) => webkitPage(driver, h, use));
    },
    async goto(url) {
      await use(handle);
      await driver.get(url);
      await hook();
    },
    async reload() {
      await use(handle);
      await driver.navigate().refresh();
      await hook();
    },
    async click(selector) {
      await use(handle);
      await driver.findElement(By.css(selector)).click();
    },
    evaluate,
    /** Polls `fn()` in the page until it is truthy (default 30 s). */
    async waitForFunction(fn, timeout = 30_000) {
      const deadline = Date.now() + timeout;
      for (;;) {
        await use(handle);
        const source = fn.toString();
        let value;
        try {
          value = await driver.executeScript(`return Boolean((${source})());`);
        } catch { value = false; } // the page is between loads
        if (value) return value;
        if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${source}`);
        await sleep(50);
      }
    },
    async close() {
      await use(handle);
      await driver.close();
    },
  };
}
