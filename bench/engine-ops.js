// The engine benchmark's operations, the same in Node and in the browser: `make[kind](n)`
// makes a party with n one-time prekeys; the counterpart in each session is our engine, the one
// engine every peer can talk to (official writes 0x34, which the TS port refuses).
// Returns the median µs per operation over `rounds` rounds. The fast operations are timed in
// batches of BATCH: a browser's clock is coarse (100 µs steps in Chromium without
// cross-origin isolation).
const BATCH = 20;
const enc = (s) => new TextEncoder().encode(s);

async function median(rounds, fn) {
  const times = [];
  for (let i = 0; i < rounds; i++) times.push(await fn());
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

async function timed(fn) {
  const start = performance.now();
  await fn();
  return (performance.now() - start) * 1000;
}

export const OPERATIONS = [
  'identity + SPK + 30 OPKs', 'X3DH initiate', 'decrypt PreKeySignalMessage', 'encrypt SignalMessage', 'decrypt SignalMessage',
];
/** The same steps between parties that publish Kyber prekeys: v4 sessions (PQXDH, SPQR). */
export const V4_OPERATIONS = [
  'identity + SPK + Kyber + 30 OPKs', 'PQXDH initiate', 'decrypt v4 PreKeySignalMessage', 'encrypt v4 SignalMessage', 'decrypt v4 SignalMessage',
];

/** `labels`: OPERATIONS, or V4_OPERATIONS when `make` makes parties with Kyber prekeys. */
export async function measureEngine(make, kind, rounds, labels = OPERATIONS) {
  const m = (fn) => median(rounds, fn);
  const r = {};
  const OPERATIONS = labels;
  r[OPERATIONS[0]] = await m(() => timed(() => make[kind](30)));
  r[OPERATIONS[1]] = await m(async () => {
    const a = await make[kind](0);
    const b = await make.ours(1);
    const bundle = b.bundle();
    return timed(() => a.processBundle('b', bundle));
  });
  r[OPERATIONS[2]] = await m(async () => {
    const a = await make.ours(0);
    const b = await make[kind](1);
    await a.processBundle('b', b.bundle());
    const msg = await a.encrypt('b', enc('{"type":"guest:meeting_e2ee_key_request"}'));
    return timed(() => b.decrypt('a', msg));
  });
  const a = await make[kind](1);
  const b = await make.ours(1);
  await a.processBundle('b', b.bundle());
  await b.decrypt('a', await a.encrypt('b', enc('hi')));
  await a.decrypt('b', await b.encrypt('a', enc('hi')));
  const text = enc('x'.repeat(200));
  r[OPERATIONS[3]] = await m(async () => (await timed(async () => {
    for (let i = 0; i < BATCH; i++) await a.encrypt('b', text);
  })) / BATCH);
  r[OPERATIONS[4]] = await m(async () => {
    const msgs = [];
    for (let i = 0; i < BATCH; i++) msgs.push(await b.encrypt('a', text));
    return (await timed(async () => {
      for (const msg of msgs) await a.decrypt('b', msg);
    })) / BATCH;
  });
  return r;
}

/** Single public-key steps, to show where the operations above spend their time. */
export const PRIMITIVES = ['X25519 key pair', 'X25519 agreement', 'XEdDSA sign', 'XEdDSA verify'];

/** `steps`: { keyPair(), agree(), sign(), verify() }, each one primitive of one engine. */
export async function measurePrimitives(steps, rounds) {
  const fns = [steps.keyPair, steps.agree, steps.sign, steps.verify];
  const r = {};
  for (const [i, fn] of fns.entries()) {
    r[PRIMITIVES[i]] = await median(rounds, async () => (await timed(async () => {
      for (let j = 0; j < BATCH; j++) await fn();
    })) / BATCH);
  }
  return r;
}

/** The primitives of our engine, through the interop binding's `SignalParty`. */
export function oursPrimitives(SignalParty) {
  const party = new SignalParty(0, false);
  const other = new SignalParty(0, false).identityKey();
  const message = new Uint8Array(33).fill(5);
  const signature = party.sign(message);
  const key = party.identityKey();
  return {
    keyPair: () => party.generateKeyPair(),
    agree: () => party.agree(other),
    sign: () => party.sign(message),
    verify: () => SignalParty.verify(key, message, signature),
  };
}
