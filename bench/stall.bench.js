// Main-thread cost of one forged message: a relay that knows a guest has sessions with a
// participant sends a SignalMessage "from" that participant with a fresh ratchet key, a
// counter far ahead and a junk MAC. Before its MAC can be checked, the receiver runs a DH
// ratchet step and one chain step per skipped counter, in every session state it tries.
// The guest holds 41 states with the participant (the most libsignal keeps). Prints the
// median ms per forged message under libsignal's limits (25,000 counters, 41 states) and
// under the guest's (GUEST_DECRYPT_LIMITS), in our wasm engine in Node, and the ratio.
// Figures only; nothing here asserts a time.
//   scripts/build.sh interop && node bench/stall.bench.js   (QUICK=1: 2 rounds, to check it runs)
import { performance } from 'node:perf_hooks';
import crypto from 'node:crypto';
import { SignalParty } from '../interop/ours.js';

const ROUNDS = Number(process.env.ROUNDS ?? (process.env.QUICK ? 2 : 7));
const LIMITS = {
  libsignal: { forward: 25_000, states: 41 },
  guest: { forward: 64, states: 5 },
};

function varint(n) {
  const out = [];
  while (n > 0x7f) { out.push((n & 0x7f) | 0x80); n >>>= 7; }
  out.push(n);
  return out;
}

// version 0x33 ‖ protobuf {1: ratchetKey, 2: counter, 3: previousCounter, 4: ciphertext} ‖ MAC.
function forged(counter) {
  const ratchetKey = Buffer.concat([Buffer.from([0x05]), crypto.randomBytes(32)]);
  return Uint8Array.from([
    0x33,
    0x0a, 33, ...ratchetKey,
    0x10, ...varint(counter),
    0x18, 0,
    0x22, 16, ...crypto.randomBytes(16),
    ...crypto.randomBytes(8),
  ]);
}

const guest = new SignalParty(0);
const participant = new SignalParty(0);
for (let i = 0; i < 41; i++) {
  participant.processBundle('guest', guest.bundle(false));
  const m = participant.encrypt('guest', new TextEncoder().encode(`session ${i}`));
  guest.decrypt('participant', m.type, m.body);
}

function measure({ forward, states }, counter) {
  const times = [];
  for (let i = 0; i < ROUNDS; i++) {
    const body = forged(counter);
    const start = performance.now();
    try {
      guest.decryptWithin('participant', 2, body, forward, states);
      throw new Error('a forged message decrypted');
    } catch (e) {
      if (e.message === 'a forged message decrypted') throw e;
    }
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

console.log('forged message, 41 session states with the sender (median ms of main thread):');
const rows = [];
for (const counter of [1, 64, 25_000]) {
  const before = measure(LIMITS.libsignal, counter);
  const after = measure(LIMITS.guest, counter);
  rows.push({ counter, 'libsignal limits (ms)': before.toFixed(2), 'guest limits (ms)': after.toFixed(2), 'ratio': (before / after).toFixed(1) });
}
console.table(rows);
const worstBefore = Math.max(...rows.map((r) => Number(r['libsignal limits (ms)'])));
const worstAfter = Math.max(...rows.map((r) => Number(r['guest limits (ms)'])));
console.log(`worst case: ${worstBefore.toFixed(1)} ms before, ${worstAfter.toFixed(1)} ms after`);

// A hostile socket event: JSON built to make the reader work hard before any other check
// (PeerWave forwards a participant's fields verbatim, so any meeting member can send one).
// Each is read the way the guest reads a relayed message.
const signalFields = '"participant_user_id":"u","participant_device_id":"1","encrypted_message":"AAAA","message_type":2';
const keys = (n, prefix = 'k') => Array.from({ length: n }, (_, i) => `"${prefix}${i}":0`).join(',');
const HOSTILE = {
  'one object, 6,000 distinct keys (53 KB)': `{${keys(6000)},${signalFields}}`,
  'objects of 32 keys, 16 KB (the largest event read)': `{"x":[${Array.from({ length: Math.floor(16_000 / (keys(32).length + 3)) }, () => `{${keys(32)}}`).join(',')}],${signalFields}}`,
  'objects of 32 keys, 60 KB': `{"x":[${Array.from({ length: Math.floor(60_000 / (keys(32).length + 3)) }, () => `{${keys(32)}}`).join(',')}],${signalFields}}`,
  '64 KB of nested arrays': `{"x":${'['.repeat(16)}${'0,'.repeat(30_000)}0${']'.repeat(16)}}`,
  '64 KB string of escapes': `{"x":"${'\\u0041'.repeat(10_000)}"}`,
};
const jsonRows = [];
for (const [what, body] of Object.entries(HOSTILE)) {
  const times = [];
  let read;
  for (let i = 0; i < ROUNDS; i++) {
    const start = performance.now();
    read = SignalParty.readsAsSignalMessage(body);
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  jsonRows.push({ event: what, bytes: body.length, 'ms (median)': times[Math.floor(times.length / 2)].toFixed(2), refused: !read });
}
console.log('hostile socket events, read as the guest reads them (median ms of main thread):');
console.table(jsonRows);
console.log(`worst hostile event: ${Math.max(...jsonRows.map((r) => Number(r['ms (median)']))).toFixed(1)} ms (the bound: 5 ms)`);
