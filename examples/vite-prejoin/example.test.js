// The Vite prejoin example as an integrator builds it: type check, production build, and the
// page in headless Chromium against the reference relay and two participant bots, served
// from the build (vite preview) and from the Vite dev server.
// Needs pkg/signal-guest-sdk (scripts/build.sh package) and the root node_modules.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer, loadConfigFromFile, preview } from 'vite';
import { startRelay } from '../../www/relay/relay.js';
import { keyCheckValue, startBot } from '../../www/bot/bot.js';
import { launchChromium } from '../../www/demo/chromium.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const pkg = path.join(root, 'pkg/signal-guest-sdk');
const dist = path.join(here, 'dist');
const configFile = path.join(here, 'vite.config.ts');
const bin = (name) => path.join(root, 'node_modules/.bin', name);
const sha256 = (bytes) => crypto.createHash('sha256').update(bytes).digest('hex');
const sdkWasm = () => sha256(fs.readFileSync(path.join(pkg, 'signal_guest_sdk_bg.wasm')));

const timings = [];
async function timed(label, fn) {
  const t0 = performance.now();
  try {
    return await fn();
  } finally {
    timings.push([label, performance.now() - t0]);
  }
}

/** Runs a command; resolves with its exit code and output (never rejects on a failure exit). */
function run(file, args, cwd) {
  return new Promise((resolve) => {
    execFile(file, args, { cwd, timeout: 120_000, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      resolve({ code: error ? (error.code ?? 'killed') : 0, output: `${stdout}${stderr}` });
    });
  });
}

/** A free loopback port: Vite's dev server takes port 0 as "the default port". */
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer().once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

// The example's node_modules as `npm install` in it would link them, without the network:
// "file:../../pkg/signal-guest-sdk" is a symlink anyway; the other dependencies are the
// repository's. Entries npm installed (real directories) are left alone.
function linkDependencies() {
  assert.ok(fs.existsSync(path.join(pkg, 'package.json')), 'pkg/signal-guest-sdk is missing: run scripts/build.sh package');
  const modules = path.join(here, 'node_modules');
  fs.mkdirSync(modules, { recursive: true });
  for (const [name, target] of [
    ['signal-guest-sdk', '../../../pkg/signal-guest-sdk'],
    ['livekit-client', '../../../node_modules/livekit-client'],
    ['socket.io-client', '../../../node_modules/socket.io-client'],
  ]) {
    const link = path.join(modules, name);
    const stat = fs.lstatSync(link, { throwIfNoEntry: false });
    if (stat && !stat.isSymbolicLink()) continue;
    if (stat && fs.readlinkSync(link) === target) continue;
    if (stat) fs.unlinkSync(link);
    fs.symlinkSync(target, link, 'dir');
  }
}

const meetingKey = crypto.randomBytes(32);
let relay;
const bots = [];
let browser;

before(async () => {
  linkDependencies();
  await timed('relay, 2 bots, chromium', async () => {
    relay = await startRelay({ port: 0 });
    // One after the other, so the relay lists them in a fixed order.
    for (const i of [1, 2]) {
      bots.push(await startBot({ relayUrl: relay.url, userId: `participant-${i}`, deviceId: '1', mode: 'reply', meetingKey }));
    }
    browser = await launchChromium();
  });
});

after(async () => {
  await browser?.close();
  await Promise.all(bots.map((b) => b.close()));
  await relay?.close();
  console.log('timings:');
  for (const [label, ms] of timings) console.log(`  ${label.padEnd(40)} ${(ms / 1000).toFixed(2).padStart(6)} s`);
});

/**
 * Opens the page at `url` in a fresh browser context and, once the SDK is loaded, asks to join
 * and waits until the page is done or failed. Returns window.example, the check value shown,
 * the .wasm responses and whether the e2ee worker runs.
 */
async function joinFrom(url, label, query = '') {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const log = [];
    const wasm = [];
    page.on('console', (m) => log.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => log.push(`pageerror: ${e.message}`));
    page.on('response', (r) => {
      if (new URL(r.url()).pathname.endsWith('.wasm')) wasm.push(r);
    });
    const worker = new Promise((resolve) => {
      page.on('worker', (w) => { if (/e2ee\.worker/.test(w.url())) resolve(w); });
    });
    const example = await timed(`${label}: load and join`, async () => {
      await page.goto(`${url}?relay=${encodeURIComponent(relay.url)}${query}`);
      // The join button is enabled once the SDK is initialised; a failed init is 'error'.
      await page.waitForFunction(
        () => window.example?.state === 'error' || document.querySelector('#join')?.disabled === false,
        null,
        { timeout: 30_000 },
      );
      if (await page.evaluate(() => window.example.state) === 'idle') {
        await page.click('#join');
        await page.waitForFunction(() => ['done', 'error'].includes(window.example.state), null, { timeout: 60_000 });
      }
      return page.evaluate(() => window.example);
    });
    const responses = await Promise.all(wasm.map(async (r) => ({
      url: r.url(),
      status: r.status(),
      contentType: r.headers()['content-type'],
      sha256: sha256(await r.body()),
    })));
    let workerRuns = false;
    if (example.state === 'done') {
      let timer;
      const w = await Promise.race([worker, new Promise((resolve) => { timer = setTimeout(resolve, 10_000); })]);
      clearTimeout(timer);
      // The worker script sets its message handler when it has loaded.
      workerRuns = w ? await w.evaluate(() => typeof onmessage === 'function') : false;
    }
    const shown = await page.textContent('#check-value');
    const retryOffered = await page.isVisible('#retry');
    return { example, responses, workerRuns, shown, retryOffered, log };
  } finally {
    await context.close();
  }
}

function assertJoined(result) {
  const { example, responses, workerRuns, shown, log } = result;
  const why = JSON.stringify({ example, responses, log: log.slice(-20) }, null, 2);
  assert.equal(example.state, 'done', why);
  assert.equal(example.keyCheckValue, keyCheckValue(meetingKey), 'the participants\' key');
  assert.equal(shown, keyCheckValue(meetingKey), 'the check value on the page');
  assert.ok(example.transcript.length > 0, 'progress was shown');
  assert.equal(responses.length, 1, `one .wasm fetched: ${why}`);
  const [wasm] = responses;
  assert.equal(wasm.status, 200, why);
  assert.match(wasm.contentType ?? '', /^application\/wasm/, 'served as application/wasm (streaming compilation)');
  assert.equal(wasm.sha256, sdkWasm(), 'the SDK\'s module');
  assert.equal(workerRuns, true, `livekit-client's e2ee worker runs: ${why}`);
}

async function startDevServer(config) {
  const server = await createServer({
    ...config,
    root: here,
    logLevel: 'warn',
    clearScreen: false,
    server: { host: '127.0.0.1', port: await freePort(), strictPort: true },
  });
  await server.listen();
  return server;
}

test('tsc --noEmit: the page type-checks in strict mode', async () => {
  const { code, output } = await timed('tsc --noEmit', () => run(bin('tsc'), ['--noEmit', '-p', here], root));
  assert.equal(code, 0, output);
});

test('vite build: emits the SDK\'s .wasm and the e2ee worker', async () => {
  fs.rmSync(dist, { recursive: true, force: true });
  const { code, output } = await timed('vite build', () => run(bin('vite'), ['build', '--logLevel', 'warn'], here));
  assert.equal(code, 0, output);
  const assets = fs.readdirSync(path.join(dist, 'assets'));
  const wasm = assets.filter((f) => f.endsWith('.wasm'));
  assert.equal(wasm.length, 1, `assets: ${assets.join(', ')}`);
  assert.equal(sha256(fs.readFileSync(path.join(dist, 'assets', wasm[0]))), sdkWasm(), 'the SDK\'s module, unchanged');
  assert.ok(assets.some((f) => /e2ee\.worker.*\.js$/.test(f)), `e2ee worker bundled: ${assets.join(', ')}`);
});

test('built page (vite preview): the participants\' key; a refused invitation is a typed error', { timeout: 120_000 }, async () => {
  assert.ok(fs.existsSync(path.join(dist, 'index.html')), 'dist/ is built by the previous test');
  const server = await timed('vite preview start', async () =>
    preview({ root: here, configFile, logLevel: 'warn', preview: { host: '127.0.0.1', port: await freePort(), strictPort: true } }));
  try {
    const url = server.resolvedUrls?.local[0];
    assert.ok(url, 'preview server URL');
    assertJoined(await joinFrom(url, 'preview'));
    const refused = await joinFrom(url, 'preview (wrong invite)', '&invite=not-the-invitation');
    assert.equal(refused.example.state, 'error', JSON.stringify(refused.example));
    assert.equal(refused.example.errorCode, 'REGISTRATION_REJECTED', 'typed code from guestErrorCode()');
    assert.equal(refused.retryOffered, false, 'no "Try again" for an error that is not retryable');
    assert.equal(refused.example.keyCheckValue, undefined);
  } finally {
    await server.close();
  }
});

test('Vite dev server with the example\'s config: .wasm served, key received', { timeout: 120_000 }, async () => {
  const server = await timed('vite dev server start', () => startDevServer({ configFile }));
  try {
    const url = server.resolvedUrls?.local[0];
    assert.ok(url, 'dev server URL');
    assertJoined(await joinFrom(url, 'dev server'));
  } finally {
    await server.close();
  }
});

test('control: without optimizeDeps.exclude the dev server answers the .wasm with HTML', { timeout: 120_000 }, async () => {
  const loaded = await loadConfigFromFile({ command: 'serve', mode: 'development' }, configFile, here, 'warn');
  assert.deepEqual(loaded?.config.optimizeDeps?.exclude, ['signal-guest-sdk'], 'the documented setting');
  const { exclude: _, ...optimizeDeps } = loaded.config.optimizeDeps;
  const server = await timed('dev server (no exclude) start', () => startDevServer({
    ...loaded.config,
    configFile: false,
    optimizeDeps,
    cacheDir: path.join(here, 'node_modules/.vite-without-exclude'),
  }));
  try {
    const url = server.resolvedUrls?.local[0];
    assert.ok(url, 'dev server URL');
    const { example, responses } = await joinFrom(url, 'dev server (no exclude)');
    const why = JSON.stringify({ example, responses }, null, 2);
    assert.equal(example.state, 'error', `the SDK does not load: ${why}`);
    // Failing here means Vite now serves the pre-bundled .wasm: the setting may be obsolete.
    assert.ok(responses.length > 0 && responses.every((r) => /^text\/html/.test(r.contentType ?? '')), why);
  } finally {
    await server.close();
  }
});
