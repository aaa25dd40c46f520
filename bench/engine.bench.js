// Engine benchmark: our wasm engine and the TypeScript port 0.0.16, in Node and in headless
// Chromium, beside official libsignal 0.72.1 (a native Node addon, so measured in Node), all in
// one run. Prints medians in µs per operation and each one's ratio to official native
// (1.00 = as fast; above 1 = slower). Figures only; nothing here asserts a time.
//   scripts/build.sh interop && scripts/build.sh interop-web && node bench/engine.bench.js
//   ROUNDS=15 (default); BROWSER=0 skips Chromium; QUICK=1: 2 rounds, to check it runs (CI).
import { createServer } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { build } from 'vite';
import { createPeer } from '../interop/peers.js';
import { OursPeer } from '../interop/ours.js';
import { measureEngine, OPERATIONS } from './engine-ops.js';
import { launchChromium } from '../www/demo/chromium.js';

const QUICK = Boolean(process.env.QUICK);
const ROUNDS = Number(process.env.ROUNDS ?? (QUICK ? 2 : 15));
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');

const make = {
  ours: async (n) => new OursPeer(n),
  official: (n) => createPeer('official', { oneTimePreKeyCount: n }),
  ts: (n) => createPeer('ts', { oneTimePreKeyCount: n }),
};

const columns = {};
for (const kind of ['ours', 'official', 'ts']) columns[`${kind} node`] = await measureEngine(make, kind, ROUNDS);

let browserVersion = null;
if (process.env.BROWSER !== '0') {
  // The page bundles our web build, the TS port and the shared operations.
  const outDir = path.join(root, 'target/bench-browser');
  await build({ root: path.join(here, 'browser'), logLevel: 'warn', build: { outDir, emptyOutDir: true, target: 'es2022' } });
  const app = express();
  app.use(express.static(outDir));
  const server = createServer(app);
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    await page.waitForFunction(() => window.benchReady, null, { timeout: 30_000 }).catch(() => {
      throw new Error(`benchmark page did not load: ${errors.join('; ')}`);
    });
    const r = await page.evaluate((rounds) => window.runEngineBench(rounds), ROUNDS);
    columns['ours chromium'] = r.ours;
    columns['ts chromium'] = r.ts;
    browserVersion = browser.version();
  } finally {
    await browser.close();
    server.close();
  }
}

const order = ['ours node', 'ours chromium', 'official node', 'ts node', 'ts chromium'].filter((c) => columns[c]);
const official = columns['official node'];
const rows = {};
for (const op of OPERATIONS) {
  rows[op] = {};
  for (const c of order) rows[op][`${c} µs`] = Math.round(columns[c][op]);
  for (const c of order.filter((x) => x !== 'official node')) rows[op][`${c} / official`] = Number((columns[c][op] / official[op]).toFixed(2));
}
console.log(`median µs/op over ${ROUNDS} rounds; Node ${process.version}${browserVersion ? `, Chromium ${browserVersion}` : ''}`);
console.log('official = @signalapp/libsignal-client 0.72.1 (native), ts = @privacyresearch/libsignal-protocol-typescript 0.0.16');
console.table(rows);
