// Engine benchmark: our wasm engine and the TypeScript port 0.0.16, in Node and in headless
// Chromium, beside official libsignal 0.72.1 (a native Node addon, so measured in Node), all in
// one run; then v4 (PQXDH, SPQR): ours in Node and Chromium beside official 0.103.0 native;
// then the public-key primitives those operations are made of, ours beside official 0.72.1.
// Prints medians in µs per operation and each one's ratio to official native (1.00 = as fast;
// above 1 = slower). Figures only; nothing here asserts a time.
//   scripts/build.sh interop && scripts/build.sh interop-web && node bench/engine.bench.js
//   ROUNDS=15 (default); BROWSER=0 skips Chromium; QUICK=1: 2 rounds, to check it runs (CI).
import { createServer } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { build } from 'vite';
import { createPeer } from '../interop/peers.js';
import * as L from '@signalapp/libsignal-client';
import { OursPeer, SignalParty } from '../interop/ours.js';
import { measureEngine, measurePrimitives, oursPrimitives, OPERATIONS, PRIMITIVES, V4_OPERATIONS } from './engine-ops.js';
import { launchChromium } from '../www/demo/chromium.js';

const QUICK = Boolean(process.env.QUICK);
const ROUNDS = Number(process.env.ROUNDS ?? (QUICK ? 2 : 15));
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');

// v3 parties publish no Kyber prekey (so ours generates none, as official 0.72.1 does not).
const make = {
  ours: async (n) => new OursPeer(n, false),
  official: (n) => createPeer('official', { oneTimePreKeyCount: n }),
  ts: (n) => createPeer('ts', { oneTimePreKeyCount: n }),
};
const makeV4 = {
  ours: async (n) => new OursPeer(n, true),
  current: (n) => createPeer('current', { oneTimePreKeyCount: n }),
};

const columns = {};
for (const kind of ['ours', 'official', 'ts']) columns[`${kind} node`] = await measureEngine(make, kind, ROUNDS);
const v4Columns = {};
for (const kind of ['ours', 'current']) v4Columns[`${kind} node`] = await measureEngine(makeV4, kind, ROUNDS, V4_OPERATIONS);

function officialPrimitives() {
  const key = L.PrivateKey.generate();
  const other = L.PrivateKey.generate().getPublicKey();
  const message = Buffer.alloc(33, 5);
  const signature = key.sign(message);
  const pub = key.getPublicKey();
  return {
    keyPair: () => L.PrivateKey.generate().getPublicKey(),
    agree: () => key.agree(other),
    sign: () => key.sign(message),
    verify: () => pub.verify(message, signature),
  };
}
const primitiveColumns = {
  'ours node': await measurePrimitives(oursPrimitives(SignalParty), ROUNDS),
  'official node': await measurePrimitives(officialPrimitives(), ROUNDS),
};

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
    v4Columns['ours chromium'] = r.oursV4;
    primitiveColumns['ours chromium'] = r.primitives;
    browserVersion = browser.version();
  } finally {
    await browser.close();
    server.close();
  }
}

/** Rows of µs and of ratios to `reference` (official native), for the columns present. */
function table(cols, labels, order, reference) {
  const present = order.filter((c) => cols[c]);
  const rows = {};
  for (const op of labels) {
    rows[op] = {};
    for (const c of present) rows[op][`${c} µs`] = Math.round(cols[c][op]);
    for (const c of present.filter((x) => x !== reference)) {
      rows[op][`${c} / official`] = Number((cols[c][op] / cols[reference][op]).toFixed(2));
    }
  }
  return rows;
}

console.log(`median µs/op over ${ROUNDS} rounds; Node ${process.version}${browserVersion ? `, Chromium ${browserVersion}` : ''}`);
console.log('v3. official = @signalapp/libsignal-client 0.72.1 (native), ts = @privacyresearch/libsignal-protocol-typescript 0.0.16');
console.table(table(columns, OPERATIONS, ['ours node', 'ours chromium', 'official node', 'ts node', 'ts chromium'], 'official node'));
console.log('v4 (PQXDH with Kyber1024, SPQR). official = current = @signalapp/libsignal-client 0.103.0 (native)');
console.table(table(v4Columns, V4_OPERATIONS, ['ours node', 'ours chromium', 'current node'], 'current node'));
console.log('primitives (each µs includes the call across the wasm or addon boundary). official = 0.72.1 (native)');
console.table(table(primitiveColumns, PRIMITIVES, ['ours node', 'ours chromium', 'official node'], 'official node'));
