// The short verification code against docs/contract.md §10.
// Run: node --test www/bot/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import crypto from 'node:crypto';
import { commitment, revealMatches, codeBytes, shortCode, emojiText, EMOJI, ParticipantCodes } from './sas.js';

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

// ---------- the participant's side: inputs frozen when it answers ----------

const randomKey = () => { const k = new Uint8Array(crypto.randomBytes(33)); k[0] = 0x05; return k; };

/** A participant as in VECTOR ("alice:1", identity 0x44, "meeting-1") whose store knows `known`. */
const participant = (known) => new ParticipantCodes({
  participantId: 'alice:1', participantIdentity: key(0x44), meetingId: 'meeting-1', guestIdentity: (sid) => known.get(sid) ?? null,
});

test('participant: the code comes from the inputs frozen at the answer; one reveal per answer', () => {
  const known = new Map([['g1', key(0x33)]]);
  const codes = participant(known);
  const answer = (requestId, c = commitment(VECTOR.guestNonce)) => codes.answer({ guestSessionId: 'g1', requestId, commitment: c });
  const np = answer('r1');
  assert.equal(np.length, 32);
  known.get('g1').fill(0x99); // the store's buffer is copied, not kept
  const reveal = { guestSessionId: 'g1', requestId: 'r1', meetingId: 'meeting-1', guestNonce: VECTOR.guestNonce };
  const r = codes.reveal(reveal);
  // what the guest computes, with the same values
  assert.deepEqual(r.code, shortCode({ ...VECTOR, participantNonce: np }));
  assert.deepEqual(r.inputs.guestIdentity, key(0x33));
  assert.equal(r.inputs.guestId, 'guest:g1');
  assert.deepEqual(codes.reveal(reveal), { refusal: 'unknown request' }, 'a second reveal for the same answer');
  assert.equal(codes.size, 0);

  // wrong nonce, other meeting, other session id: refused, and the answer is used up
  known.set('g1', key(0x33));
  answer('r2');
  assert.deepEqual(codes.reveal({ ...reveal, requestId: 'r2', guestNonce: filled(32, 0x12) }), { refusal: 'does not match the commitment' });
  assert.deepEqual(codes.reveal({ ...reveal, requestId: 'r2' }), { refusal: 'unknown request' });
  answer('r3');
  assert.deepEqual(codes.reveal({ ...reveal, requestId: 'r3', meetingId: 'meeting-2' }), { refusal: 'other meeting' });
  answer('r4');
  assert.deepEqual(codes.reveal({ ...reveal, requestId: 'r4', guestSessionId: 'g2' }), { refusal: 'unknown request' });
  assert.ok(codes.reveal({ ...reveal, requestId: 'r4' }).code, 'the right session still has its answer');
  answer('r5', null);
  assert.deepEqual(codes.reveal({ ...reveal, requestId: 'r5' }), { refusal: 'does not match the commitment' }, 'no commitment, no code');
  answer('r6');
  assert.deepEqual(codes.reveal({ ...reveal, requestId: 'r6', guestNonce: null }), { refusal: 'nonce is not base64 of 32 bytes' });
  // no identity known when it answered: no code, even if one is known by the reveal
  known.delete('g1');
  answer('r7');
  known.set('g1', key(0x33));
  assert.deepEqual(codes.reveal({ ...reveal, requestId: 'r7' }), { refusal: 'no identity key for the guest' });
});

test('participant: a guest identity changed between answer and reveal does not steer the code', () => {
  // A server in the middle poses as guest session "g1" to the participant with identity key A
  // and commits to Ng. The participant answers with Np. The attacker now knows every input but
  // the guest identity, so it can try identity keys B until the participant's code would equal
  // the code the real guest shows (`target`), open a new session under the same session id with
  // B (the participant's store then knows B for "g1"), and reveal Ng over it. A participant that
  // read the identity at reveal time would show the attacker's chosen code; one that froze A at
  // its answer shows a code the attacker could not choose. (A whole code takes about 2^39 tries;
  // two emoji, 12 bits, are ground here.)
  const a = randomKey();
  const known = new Map([['g1', a]]);
  const codes = participant(known);
  const ng = new Uint8Array(crypto.randomBytes(32));
  const np = codes.answer({ guestSessionId: 'g1', requestId: 'r1', commitment: commitment(ng) });

  // the code the real guest reads out: its own identity and nonce, the attacker's key and nonce
  const target = shortCode({
    ...VECTOR, guestNonce: new Uint8Array(crypto.randomBytes(32)), participantNonce: new Uint8Array(crypto.randomBytes(32)),
    guestIdentity: randomKey(), participantIdentity: randomKey(), guestId: 'guest:g1',
  });
  const withIdentity = (guestIdentity) => shortCode({ ...VECTOR, guestNonce: ng, participantNonce: np, guestIdentity, guestId: 'guest:g1' });
  let b = null;
  for (let tries = 0; tries < 200_000 && !b; tries++) {
    const candidate = randomKey();
    const c = withIdentity(candidate);
    if (c.emoji[0] === target.emoji[0] && c.emoji[1] === target.emoji[1]) b = candidate;
  }
  assert.ok(b, 'a 12-bit match is found');
  known.set('g1', b); // the new session under the same session id

  const r = codes.reveal({ guestSessionId: 'g1', requestId: 'r1', meetingId: 'meeting-1', guestNonce: ng });
  assert.deepEqual(r.inputs.guestIdentity, a, 'the identity of the answered request');
  assert.deepEqual(r.code, withIdentity(a));
  // contrast: the code a participant would show had it read the identity known at reveal time
  const later = withIdentity(known.get('g1'));
  assert.deepEqual(later.emoji.slice(0, 2), target.emoji.slice(0, 2), 'steered towards the guest\'s code');
  assert.notDeepEqual(r.code, later);
  assert.notEqual(r.code.digits, target.digits, 'the frozen code is not the guest\'s: the attack shows');
});
