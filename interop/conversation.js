// Checks shared by the peers' self-tests (peers.test.js, current.test.js): the options a peer
// is made with and the bundles it hands out, and an established session after the first
// reply, exercised the same way whichever peer runs it.
import assert from 'node:assert/strict';
import { createPeer } from './peers.js';

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

/**
 * Makes a `kind` peer with fixed ids (and `options`), checks that its bundles honour them and
 * hand out distinct one-time prekeys until none is left, and that it refuses registration ids
 * outside 1…16380. Returns the peer, its identity key and three bundles (the first without a
 * one-time prekey) for the caller's own checks.
 */
export async function checkBundleOptions(kind, options = {}) {
  const p = await createPeer(kind, { registrationId: 4242, oneTimePreKeyCount: 2, firstPreKeyId: 100, signedPreKeyId: 7, ...options });
  assert.equal(p.kind, kind);
  assert.equal(p.registrationId, 4242);
  const id = p.identityKey();
  assert.ok(id instanceof Uint8Array && id.length === 33 && id[0] === 0x05);
  const b0 = p.bundle({ withOneTimePreKey: false });
  assert.equal(b0.preKey, null);
  const b1 = p.bundle(), b2 = p.bundle();
  assert.deepEqual([b1.preKey.id, b2.preKey.id], [100, 101]);
  assert.equal(b1.preKey.publicKey.length, 33);
  assert.notDeepEqual(b1.preKey.publicKey, b2.preKey.publicKey);
  assert.throws(() => p.bundle(), /no unused one-time prekeys/);
  assert.equal(b1.registrationId, 4242);
  assert.equal(b1.deviceId, 1);
  assert.deepEqual(b1.identityKey, id);
  assert.equal(b1.signedPreKey.id, 7);
  assert.equal(b1.signedPreKey.signature.length, 64);
  assert.ok(p.verify(id, b1.signedPreKey.publicKey, b1.signedPreKey.signature), 'signed prekey signature');
  await assert.rejects(createPeer(kind, { registrationId: 0 }));
  await assert.rejects(createPeer(kind, { registrationId: 16381 }));
  return { p, id, bundles: [b0, b1, b2] };
}
