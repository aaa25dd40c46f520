// Checks shared by the peers' self-tests (peers.test.js, current.test.js): an established
// session after the first reply, exercised the same way whichever peer runs it.
import assert from 'node:assert/strict';

const enc = (s) => new TextEncoder().encode(s);
const dec = (b) => new TextDecoder().decode(b);

/**
 * Four SignalMessages each way (type 2; `check(message)` sees each of alice's), then three
 * delivered out of order in each direction (a duplicate refused), then a tampered ciphertext
 * refused.
 */
export async function exerciseSession(alice, bob, check = () => {}) {
  for (let i = 0; i < 4; i++) {
    const m = await alice.encrypt('bob', enc(`a${i}`));
    assert.equal(m.type, 2);
    check(m);
    assert.equal(dec(await bob.decrypt('alice', m)), `a${i}`);
    const r = await bob.encrypt('alice', enc(`b${i}`));
    assert.equal(r.type, 2);
    assert.equal(dec(await alice.decrypt('bob', r)), `b${i}`);
  }
  for (const [from, to, fromName, toName] of [[alice, bob, 'alice', 'bob'], [bob, alice, 'bob', 'alice']]) {
    const ms = [];
    for (let i = 0; i < 3; i++) ms.push(await from.encrypt(toName, enc(`ooo${i}`)));
    for (const i of [2, 0, 1]) assert.equal(dec(await to.decrypt(fromName, ms[i])), `ooo${i}`);
    await assert.rejects(to.decrypt(fromName, ms[1]), /old counter|counter was repeated/, 'duplicate rejected');
  }
  const m = await alice.encrypt('bob', enc('tamper me'));
  m.body[m.body.length - 1] ^= 1;
  await assert.rejects(bob.decrypt('alice', m));
}
