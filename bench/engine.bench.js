// Engine benchmark: our wasm engine (Node) against official libsignal 0.72.1 (native addon)
// and the TypeScript port 0.0.16, in the same process. Prints medians in µs per operation and
// the ratio of each peer to ours. The counterpart in each session is our engine, the one
// engine every peer can talk to (official writes 0x34, which the TS port refuses).
// Figures only; nothing here asserts a time.
//   scripts/build.sh interop && node bench/engine.bench.js
import { performance } from 'node:perf_hooks';
import { createPeer } from '../interop/peers.js';
import { OursPeer } from '../interop/ours.js';

const ROUNDS = Number(process.env.ROUNDS ?? 15);
const enc = (s) => new TextEncoder().encode(s);

async function median(fn) {
  const times = [];
  for (let i = 0; i < ROUNDS; i++) {
    const t = await fn();
    times.push(t);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

async function timed(fn) {
  const start = performance.now();
  await fn();
  return (performance.now() - start) * 1000;
}

const make = {
  ours: async (n) => new OursPeer(n),
  official: (n) => createPeer('official', { oneTimePreKeyCount: n }),
  ts: (n) => createPeer('ts', { oneTimePreKeyCount: n }),
};

async function measure(kind) {
  const r = {};
  r['identity + SPK + 30 OPKs'] = await median(() => timed(() => make[kind](30)));
  r['X3DH initiate'] = await median(async () => {
    const a = await make[kind](0);
    const b = await make.ours(1);
    const bundle = b.bundle();
    return timed(() => a.processBundle('b', bundle));
  });
  r['decrypt PreKeySignalMessage'] = await median(async () => {
    const a = await make.ours(0);
    const b = await make[kind](1);
    await a.processBundle('b', b.bundle());
    const m = await a.encrypt('b', enc('{"type":"guest:meeting_e2ee_key_request"}'));
    return timed(() => b.decrypt('a', m));
  });
  const a = await make[kind](1);
  const b = await make.ours(1);
  await a.processBundle('b', b.bundle());
  await b.decrypt('a', await a.encrypt('b', enc('hi')));
  await a.decrypt('b', await b.encrypt('a', enc('hi')));
  r['encrypt SignalMessage'] = await median(() => timed(() => a.encrypt('b', enc('x'.repeat(200)))));
  r['decrypt SignalMessage'] = await median(async () => {
    const m = await b.encrypt('a', enc('x'.repeat(200)));
    return timed(() => a.decrypt('b', m));
  });
  return r;
}

const results = {};
for (const kind of ['ours', 'official', 'ts']) results[kind] = await measure(kind);
const ops = Object.keys(results.ours);
const fmt = (n) => n.toFixed(0).padStart(10);
console.log(`median µs/op over ${ROUNDS} rounds (Node ${process.version})`);
console.log('operation'.padEnd(30) + 'ours(wasm)'.padStart(10) + 'official'.padStart(10) + 'ts'.padStart(10) + '  official/ours  ts/ours');
for (const op of ops) {
  const o = results.ours[op], off = results.official[op], ts = results.ts[op];
  console.log(op.padEnd(30) + fmt(o) + fmt(off) + fmt(ts) + `  ${(off / o).toFixed(2).padStart(13)}  ${(ts / o).toFixed(1).padStart(7)}`);
}
