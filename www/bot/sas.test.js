// The short verification code against docs/contract.md §10.
// Run: node --test www/bot/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { commitment, revealMatches, codeBytes, shortCode, emojiText, EMOJI } from './sas.js';

const hex = (u8) => Buffer.from(u8).toString('hex');
const filled = (n, byte) => new Uint8Array(n).fill(byte);
const key = (byte) => { const k = filled(33, byte); k[0] = 0x05; return k; };

const VECTOR = {
  guestNonce: filled(32, 0x11), participantNonce: filled(32, 0x22),
  guestIdentity: key(0x33), participantIdentity: key(0x44),
  guestId: 'guest:g1', participantId: 'alice:1', meetingId: 'meeting-1',
};

test('contract test vector: commitment, HKDF bytes, digits, emoji', () => {
  assert.equal(hex(commitment(VECTOR.guestNonce)), '014cd8622ca336ae89e8e75c61fae7416d0b51c8826bbd9e1d27c2e90a6f2215');
  assert.equal(hex(codeBytes(VECTOR)), '75d2154676ae');
  const code = shortCode(VECTOR);
  assert.equal(code.digits, '4770 3133 1827');
  assert.deepEqual(code.emoji, [29, 29, 8, 21, 17, 39, 26]);
  assert.equal(emojiText(code.emoji), '❤️ ❤️ 🐼 ☁️ 🌵 ⏰ 🌽');
});

test('reveal: only the committed nonce matches', () => {
  const c = commitment(VECTOR.guestNonce);
  assert.equal(revealMatches(c, VECTOR.guestNonce), true);
  const wrong = VECTOR.guestNonce.slice();
  wrong[31] ^= 1;
  assert.equal(revealMatches(c, wrong), false);
  assert.equal(revealMatches(c, filled(32, 0x22)), false);
  assert.equal(revealMatches(c, VECTOR.guestNonce.subarray(0, 31)), false, 'short nonce');
  assert.equal(revealMatches(c.subarray(0, 31), VECTOR.guestNonce), false, 'short commitment');
  assert.equal(revealMatches(null, VECTOR.guestNonce), false);
});

test('every input changes the code', () => {
  const reference = shortCode(VECTOR);
  const variants = {
    guestNonce: filled(32, 9), participantNonce: filled(32, 9), guestIdentity: key(9), participantIdentity: key(9),
    guestId: 'guest:g2', participantId: 'alice:2', meetingId: 'meeting-2',
  };
  for (const [name, value] of Object.entries(variants)) {
    assert.notDeepEqual(shortCode({ ...VECTOR, [name]: value }), reference, name);
  }
  // identifiers are length-prefixed, so moving a character between them changes the code
  assert.notDeepEqual(shortCode({ ...VECTOR, guestId: 'guest:g1a', participantId: 'lice:1' }), reference);
  assert.throws(() => shortCode({ ...VECTOR, guestNonce: filled(31, 1) }), TypeError);
  assert.throws(() => shortCode({ ...VECTOR, participantIdentity: filled(32, 5) }), TypeError);
});

test('emoji table: 64 entries in the order of docs/contract.md', () => {
  assert.equal(EMOJI.length, 64);
  const rows = fs.readFileSync(new URL('../../docs/contract.md', import.meta.url), 'utf8')
    .split('\n').map((l) => l.trim().match(/^\| (\d+)–(\d+) \| (.+) \|$/)).filter(Boolean);
  assert.equal(rows.length, 4, 'four table rows in the contract');
  const fromContract = rows.flatMap(([, from, to, cells]) => {
    const entries = cells.split(', ').map((e) => [e.slice(0, e.indexOf(' ')), e.slice(e.indexOf(' ') + 1)]);
    assert.equal(entries.length, Number(to) - Number(from) + 1);
    return entries;
  });
  assert.deepEqual(EMOJI.map((e) => [...e]), fromContract);
  assert.equal(new Set(EMOJI.map((e) => e[0])).size, 64, 'no picture twice');
});
