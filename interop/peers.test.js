// Self-test for interop/peers.js.  Run: node --test interop/peers.test.js
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { PreKeySignalMessage, SignalMessage } from '@signalapp/libsignal-client';
import { checkBundleOptions, exerciseSession } from './conversation.js';
import { createPeer, fingerprint, OfficialPeer, TsPeer } from './peers.js';

const enc = (s) => new TextEncoder().encode(s);
const dec = (b) => new TextDecoder().decode(b);
const KINDS = ['official', 'ts'];
/** whether the peer still holds one-time prekey `id` (private part) */
const holdsPreKey = (peer, id) => (peer.kind === 'official' ? peer.store.preKey.preKeys : peer.store.preKeys).has(id);

/** alice (initiator, kind a) <-> bob (responder, kind b) up to the first reply. */
async function establish(a, b, withOneTimePreKey) {
  const alice = await createPeer(a), bob = await createPeer(b);
  const bundle = bob.bundle({ withOneTimePreKey });
  assert.equal(await alice.hasSession('bob'), false);
  await alice.processBundle('bob', bundle);
  assert.equal(await alice.hasSession('bob'), true);
  const first = await alice.encrypt('bob', enc('hello bob'));
  assert.equal(first.type, 3);
  assert.equal(await bob.hasSession('alice'), false);
  assert.equal(dec(await bob.decrypt('alice', first)), 'hello bob');
  assert.equal(await bob.hasSession('alice'), true);
  if (bundle.preKey) assert.equal(holdsPreKey(bob, bundle.preKey.id), false, 'one-time prekey consumed');
  const reply = await bob.encrypt('alice', enc('hello alice'));
  assert.equal(reply.type, 2);
  assert.equal(dec(await alice.decrypt('bob', reply)), 'hello alice');
  return { alice, bob, first };
}

// Top-up (docs/contract.md §3): keys added later continue the ids and start sessions like the first.
for (const kind of [...KINDS, 'current']) {
  test(`${kind}: addOneTimePreKeys continues the ids, and a session on an added key works`, async () => {
    const bob = await createPeer(kind, { oneTimePreKeyCount: 2, firstPreKeyId: 10 });
    const added = await bob.addOneTimePreKeys(3);
    assert.deepEqual(added.map((k) => k.id), [12, 13, 14]);
    assert.ok(added.every((k) => k.publicKey.length === 33));
    bob.bundle();
    bob.bundle(); // the first two
    const bundle = bob.bundle();
    assert.equal(bundle.preKey.id, 12);
    assert.deepEqual(bundle.preKey.publicKey, added[0].publicKey);
    const alice = await createPeer(kind);
    await alice.processBundle('bob', bundle);
    const first = await alice.encrypt('bob', enc('on an added key'));
    assert.equal(dec(await bob.decrypt('alice', first)), 'on an added key');
    await assert.rejects(bob.addOneTimePreKeys(-1));
  });
}

for (const kind of KINDS) {
  describe(`${kind} <-> ${kind}`, () => {
    for (const withOneTimePreKey of [true, false]) {
      test(`session (one-time prekey: ${withOneTimePreKey}), many messages, out-of-order`, async () => {
        const { alice, bob, first } = await establish(kind, kind, withOneTimePreKey);
        // a replayed PreKey message must fail
        await assert.rejects(bob.decrypt('alice', first));
        // once alice has received a reply: SignalMessages, reordering, tampering
        await exerciseSession(alice, bob);
      });
    }

    test('several PreKey messages before any reply', async () => {
      const alice = await createPeer(kind), bob = await createPeer(kind);
      await alice.processBundle('bob', bob.bundle());
      const ms = [];
      for (let i = 0; i < 3; i++) ms.push(await alice.encrypt('bob', enc(`p${i}`)));
      assert.deepEqual(ms.map((m) => m.type), [3, 3, 3]);
      for (let i = 0; i < 3; i++) assert.equal(dec(await bob.decrypt('alice', ms[i])), `p${i}`);
    });

    test('bundles hand out distinct one-time prekeys; options honoured', async () => {
      await checkBundleOptions(kind);
    });

    test('XEdDSA sign/verify', async () => {
      const p = await createPeer(kind), other = await createPeer(kind);
      const sig = p.sign(enc('message'));
      assert.ok(sig instanceof Uint8Array && sig.length === 64);
      const Cls = kind === 'official' ? OfficialPeer : TsPeer;
      assert.equal(p.verify(p.identityKey(), enc('message'), sig), true);
      assert.equal(Cls.verify(p.identityKey(), enc('message'), sig), true);
      assert.equal(p.verify(p.identityKey(), enc('messagE'), sig), false);
      assert.equal(p.verify(other.identityKey(), enc('message'), sig), false);
      const bad = sig.slice(); bad[10] ^= 0x40;
      assert.equal(p.verify(p.identityKey(), enc('message'), bad), false);
      assert.equal(p.verify(p.identityKey(), enc('message'), sig.slice(0, 63)), false);
    });

    test('identity trust: TOFU, changed identity refused in both roles', async () => {
      const { alice, bob } = await establish(kind, kind, true);
      // initiator side: a new "bob" with a different identity key under the known address
      const fakeBob = await createPeer(kind);
      await assert.rejects(alice.processBundle('bob', fakeBob.bundle()), /untrusted identity|identity key changed/i);
      // responder side: a new "alice" with a different identity sends a PreKey message
      const fakeAlice = await createPeer(kind);
      await fakeAlice.processBundle('bob', bob.bundle());
      const m = await fakeAlice.encrypt('bob', enc('I am alice'));
      await assert.rejects(bob.decrypt('alice', m), /untrusted identity|identity key changed/i);
      // the genuine session still works afterwards
      const ok = await alice.encrypt('bob', enc('still me'));
      assert.equal(dec(await bob.decrypt('alice', ok)), 'still me');
    });
  });
}

describe('official <-> ts (cross)', () => {
  test('XEdDSA signatures verify across implementations', async () => {
    const o = await createPeer('official'), t = await createPeer('ts');
    const so = o.sign(enc('x')), st = t.sign(enc('x'));
    assert.equal(t.verify(o.identityKey(), enc('x'), so), true);
    assert.equal(o.verify(t.identityKey(), enc('x'), st), true);
    assert.equal(t.verify(o.identityKey(), enc('y'), so), false);
    assert.equal(o.verify(t.identityKey(), enc('y'), st), false);
  });

  test('bundles of each kind are accepted by the other (processBundle)', async () => {
    const o = await createPeer('official'), t = await createPeer('ts');
    await o.processBundle('t', t.bundle());
    await t.processBundle('o', o.bundle({ withOneTimePreKey: false }));
    assert.equal(await o.hasSession('t'), true);
    assert.equal(await t.hasSession('o'), true);
  });

  test('ts initiator -> official responder (with one-time prekey): ts->official direction works', async () => {
    const t = await createPeer('ts'), o = await createPeer('official');
    const bundle = o.bundle();
    await t.processBundle('o', bundle);
    const ms = [];
    for (let i = 0; i < 3; i++) ms.push(await t.encrypt('o', enc(`t${i}`)));
    assert.ok(ms.every((m) => m.type === 3 && m.body[0] === 0x33));
    for (const i of [0, 2, 1]) assert.equal(dec(await o.decrypt('t', ms[i])), `t${i}`);
    assert.equal(holdsPreKey(o, bundle.preKey.id), false);
    // KNOWN NON-INTEROP: official replies with version byte 0x34 (message v3, "current" v4);
    // the TS port checks (version & 0xf) > 3 and rejects it.
    const reply = await o.encrypt('t', enc('reply'));
    assert.equal(reply.type, 2);
    assert.equal(reply.body[0], 0x34);
    assert.equal(SignalMessage.deserialize(Buffer.from(reply.body)).messageVersion(), 3);
    await assert.rejects(t.decrypt('o', reply), /Incompatible version number on WhisperMessage 52/);
    // so the ts side never leaves the PreKey stage, but official keeps decrypting its messages
    const more = await t.encrypt('o', enc('more'));
    assert.equal(more.type, 3);
    assert.equal(dec(await o.decrypt('t', more)), 'more');
  });

  test('KNOWN NON-INTEROP: ts initiator, bundle without one-time prekey -> preKeyId=0', async () => {
    const t = await createPeer('ts'), o = await createPeer('official');
    await t.processBundle('o', o.bundle({ withOneTimePreKey: false }));
    const m = await t.encrypt('o', enc('hi'));
    assert.equal(m.type, 3);
    // The TS port serialises preKeyId = 0 instead of omitting the field ...
    assert.equal(PreKeySignalMessage.deserialize(Buffer.from(m.body)).preKeyId(), 0);
    // ... so official looks up one-time prekey 0, which does not exist.
    await assert.rejects(o.decrypt('t', m), /getPreKey|prekey 0/i);
    assert.equal(await o.hasSession('t'), false);
  });

  for (const withOneTimePreKey of [true, false]) {
    test(`KNOWN NON-INTEROP: official initiator -> ts responder (one-time prekey: ${withOneTimePreKey})`, async () => {
      const o = await createPeer('official'), t = await createPeer('ts');
      await o.processBundle('t', t.bundle({ withOneTimePreKey }));
      const m = await o.encrypt('t', enc('hi'));
      assert.equal(m.type, 3);
      assert.equal(m.body[0], 0x34); // official writes (3 << 4) | 4
      assert.equal(PreKeySignalMessage.deserialize(Buffer.from(m.body)).version(), 3);
      await assert.rejects(t.decrypt('o', m), /Incompatible version number on PreKeyWhisperMessage/);
      assert.equal(await t.hasSession('o'), false);
    });
  }
});

describe('fingerprint (official)', () => {
  test('60 digits, symmetric, key-dependent', async () => {
    const a = await createPeer('official'), b = await createPeer('ts'), c = await createPeer('official');
    const fab = fingerprint(enc('alice'), a.identityKey(), enc('bob'), b.identityKey());
    assert.match(fab, /^\d{60}$/);
    assert.equal(fingerprint(enc('bob'), b.identityKey(), enc('alice'), a.identityKey()), fab);
    assert.notEqual(fingerprint(enc('alice'), a.identityKey(), enc('bob'), c.identityKey()), fab);
  });
});
