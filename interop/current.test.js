// Self-test for the 'current' peer (libsignal 0.103: PQXDH + SPQR only) in interop/peer-current.js,
// and where it stops talking to the older peers.  Run: node --test interop/current.test.js
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as L from '@signalapp/libsignal-client'; // 0.72.1, for the 0.72.1-with-Kyber cases below
import { PreKeySignalMessage, SignalMessage } from '@signalapp/libsignal-client-current';
import { checkBundleOptions, exerciseSession } from './conversation.js';
import { createPeer } from './peers.js';
import { CurrentPeer } from './peer-current.js';

const enc = (s) => new TextEncoder().encode(s);
const dec = (b) => new TextDecoder().decode(b);
const buf = (b) => Buffer.from(b);
/** version byte of a 0.103 message: (message version 4 << 4) | current version 4 */
const V4 = 0x44;
/** 0.103 refuses every PreKey message that is not PQXDH + SPQR with this, before any key lookup */
const X3DH_REFUSED = /X3DH no longer supported/;
/** what is left when both sides ran PQXDH but only one of them SPQR: the message keys differ */
const KEYS_DIFFER = /invalid PreKey message: decryption failed/;

/** alice (initiator) <-> bob (responder), both 'current', up to the first reply. */
async function establish(withOneTimePreKey, aliceOptions = {}, bobOptions = {}) {
  const alice = await createPeer('current', aliceOptions), bob = await createPeer('current', bobOptions);
  const bundle = bob.bundle({ withOneTimePreKey });
  assert.equal(await alice.hasSession('bob'), false);
  await alice.processBundle('bob', bundle);
  assert.equal(await alice.hasSession('bob'), true);
  const first = await alice.encrypt('bob', enc('hello bob'));
  assert.equal(first.type, 3);
  assert.equal(first.body[0], V4);
  const parsed = PreKeySignalMessage.deserialize(buf(first.body));
  assert.equal(parsed.version(), 4);
  assert.equal(parsed.preKeyId(), bundle.preKey ? bundle.preKey.id : null);
  assert.equal(parsed.signedPreKeyId(), bundle.signedPreKey.id);
  assert.equal(await bob.hasSession('alice'), false);
  assert.equal(dec(await bob.decrypt('alice', first)), 'hello bob');
  assert.equal(await bob.hasSession('alice'), true);
  if (bundle.preKey) assert.equal(bob.store.preKey.preKeys.has(bundle.preKey.id), false, 'one-time prekey consumed');
  assert.equal(bob.store.kyberPreKey.kyberPreKeys.has(bundle.kyberPreKey.id), true, 'last-resort Kyber prekey kept');
  const reply = await bob.encrypt('alice', enc('hello alice'));
  assert.equal(reply.type, 2);
  assert.equal(reply.body[0], V4);
  assert.equal(dec(await alice.decrypt('bob', reply)), 'hello alice');
  return { alice, bob, first };
}

/**
 * Gives a 0.72.1 'official' peer a real Kyber prekey: its own store holds none (bundles from
 * peers.js carry none), so without this 0.72.1 would fail at the missing key, not at the protocol.
 * @returns {import('./peer-current.js').CurrentBundle} its bundle with that Kyber prekey added
 */
function officialBundleWithKyber(official, id = 9) {
  const keyPair = L.KEMKeyPair.generate();
  const publicKey = new Uint8Array(keyPair.getPublicKey().serialize());
  const signature = official.sign(publicKey);
  const record = L.KyberPreKeyRecord.new(id, Date.now(), keyPair, buf(signature));
  official.store.kyberPreKey = new (class extends L.KyberPreKeyStore {
    async saveKyberPreKey() { throw new Error('read-only'); }
    async getKyberPreKey(kyberId) { if (kyberId !== id) throw new Error(`no kyber prekey ${kyberId}`); return record; }
    async markKyberPreKeyUsed() {}
  })();
  return { ...official.bundle(), kyberPreKey: { id, publicKey, signature } };
}

describe('current <-> current', () => {
  for (const withOneTimePreKey of [true, false]) {
    test(`session (one-time prekey: ${withOneTimePreKey}), many messages, out-of-order`, async () => {
      const { alice, bob, first } = await establish(withOneTimePreKey);
      // a replayed PreKey message must fail
      await assert.rejects(bob.decrypt('alice', first));
      // once alice has received a reply: SignalMessages (v4), reordering, tampering
      await exerciseSession(alice, bob, (m) => assert.equal(SignalMessage.deserialize(buf(m.body)).messageVersion(), 4));
      // ... and the session survives it
      const ok = await alice.encrypt('bob', enc('after tamper'));
      assert.equal(dec(await bob.decrypt('alice', ok)), 'after tamper');
    });
  }

  test('several PreKey messages before any reply, delivered out of order', async () => {
    const alice = await createPeer('current'), bob = await createPeer('current');
    await alice.processBundle('bob', bob.bundle());
    const ms = [];
    for (let i = 0; i < 3; i++) ms.push(await alice.encrypt('bob', enc(`p${i}`)));
    assert.deepEqual(ms.map((m) => [m.type, m.body[0]]), [[3, V4], [3, V4], [3, V4]]);
    for (const i of [1, 0, 2]) assert.equal(dec(await bob.decrypt('alice', ms[i])), `p${i}`);
    const r = await bob.encrypt('alice', enc('reply'));
    assert.equal(dec(await alice.decrypt('bob', r)), 'reply');
    assert.equal((await alice.encrypt('bob', enc('now a SignalMessage'))).type, 2);
  });

  test('bundle shape: signed Kyber1024 prekey in every bundle; options honoured', async () => {
    const { p, id, bundles: [b0, b1, b2] } = await checkBundleOptions('current', { kyberPreKeyId: 33 });
    assert.ok(p instanceof CurrentPeer);
    for (const b of [b0, b1, b2]) {
      const k = b.kyberPreKey;
      assert.equal(k.id, 33);
      assert.ok(k.publicKey instanceof Uint8Array);
      assert.equal(k.publicKey.length, 1569, 'type byte + Kyber1024 public key');
      assert.equal(k.publicKey[0], 0x08, 'Kyber1024 type byte');
      assert.equal(k.signature.length, 64);
      assert.ok(CurrentPeer.verify(id, k.publicKey, k.signature), 'Kyber prekey signed by the identity key');
    }
    assert.deepEqual(b1.kyberPreKey, b0.kyberPreKey, 'the same last-resort Kyber prekey every time');
    b1.kyberPreKey.publicKey[1] ^= 1;
    assert.notDeepEqual(p.bundle({ withOneTimePreKey: false }).kyberPreKey, b1.kyberPreKey, 'bundles hand out copies');
    await assert.rejects(createPeer('current', { registrationId: 0 }));
    await assert.rejects(createPeer('current', { registrationId: 16381 }));
  });

  test('refuses a bundle without a Kyber prekey, or with a bad one', async () => {
    const alice = await createPeer('current'), bob = await createPeer('current');
    const { kyberPreKey, ...x3dhOnly } = bob.bundle();
    await assert.rejects(alice.processBundle('bob', x3dhOnly), /needs a kyberPreKey.*X3DH-only bundles are refused/);
    await assert.rejects(alice.processBundle('bob', { ...x3dhOnly, kyberPreKey: null }), /needs a kyberPreKey/);
    const badSig = { ...x3dhOnly, kyberPreKey: { ...kyberPreKey, signature: kyberPreKey.signature.slice() } };
    badSig.kyberPreKey.signature[5] ^= 1;
    await assert.rejects(alice.processBundle('bob', badSig), /invalid signature/);
    const shortKey = { ...x3dhOnly, kyberPreKey: { ...kyberPreKey, publicKey: kyberPreKey.publicKey.slice(0, 100) } };
    await assert.rejects(alice.processBundle('bob', shortKey), /bad KEM key length/);
    assert.equal(await alice.hasSession('bob'), false);
    // the genuine bundle still works
    await alice.processBundle('bob', { ...x3dhOnly, kyberPreKey });
    assert.equal(dec(await bob.decrypt('alice', await alice.encrypt('bob', enc('ok')))), 'ok');
  });

  test('the Kyber prekey store refuses the same base key twice (replay after the session is gone)', async () => {
    // Without a one-time prekey nothing else is consumed, so this check is what stops the replay.
    const { bob, first } = await establish(false);
    bob.store.session.sessions.clear();
    await assert.rejects(bob.decrypt('alice', first), /kyber prekey 1 reused with the same base key/);
    assert.equal(await bob.hasSession('alice'), false);
  });

  test('XEdDSA sign/verify, also across 0.72.1', async () => {
    const p = await createPeer('current'), other = await createPeer('current'), o = await createPeer('official');
    const sig = p.sign(enc('message'));
    assert.ok(sig instanceof Uint8Array && sig.length === 64);
    assert.equal(p.verify(p.identityKey(), enc('message'), sig), true);
    assert.equal(CurrentPeer.verify(p.identityKey(), enc('message'), sig), true);
    assert.equal(p.verify(p.identityKey(), enc('messagE'), sig), false);
    assert.equal(p.verify(other.identityKey(), enc('message'), sig), false);
    const bad = sig.slice(); bad[10] ^= 0x40;
    assert.equal(p.verify(p.identityKey(), enc('message'), bad), false);
    assert.equal(p.verify(p.identityKey(), enc('message'), sig.slice(0, 63)), false);
    assert.equal(o.verify(p.identityKey(), enc('message'), sig), true);
    assert.equal(p.verify(o.identityKey(), enc('x'), o.sign(enc('x'))), true);
  });

  test('identity trust: TOFU, changed identity refused in both roles', async () => {
    const { alice, bob } = await establish(true);
    assert.deepEqual(alice.remoteIdentity('bob'), bob.identityKey());
    assert.deepEqual(bob.remoteIdentity('alice'), alice.identityKey());
    assert.equal(alice.remoteIdentity('nobody'), null);
    const fakeBob = await createPeer('current');
    await assert.rejects(alice.processBundle('bob', fakeBob.bundle()), /untrusted identity|identity key changed/i);
    const fakeAlice = await createPeer('current');
    await fakeAlice.processBundle('bob', bob.bundle());
    await assert.rejects(bob.decrypt('alice', await fakeAlice.encrypt('bob', enc('I am alice'))), /untrusted identity|identity key changed/i);
    const ok = await alice.encrypt('bob', enc('still me'));
    assert.equal(dec(await bob.decrypt('alice', ok)), 'still me');
  });

  test('with ServiceId names, PreKey messages are bound to sender and recipient address', async () => {
    // 0.103 takes the local address in encrypt/decrypt; when both names are ServiceIds it puts
    // (sender, recipient) into the PreKey message and the recipient checks them.
    const A = '9d0652a3-dcc3-4d11-975f-74d61598733f', B = '796abedb-ca4e-4f18-8803-1fde5b921f9f';
    const OTHER = 'e1e54f2c-4a8c-4b4e-a2b5-0a5c3f3e4d11';
    const firstMessage = async (bobName) => {
      const alice = await createPeer('current', { name: A }), bob = await createPeer('current', { name: bobName });
      await alice.processBundle(B, bob.bundle());
      return { bob, m: await alice.encrypt(B, enc('hi')) };
    };
    let { bob, m } = await firstMessage(B);
    assert.equal(dec(await bob.decrypt(A, m)), 'hi');
    ({ bob, m } = await firstMessage(B));
    await assert.rejects(bob.decrypt(OTHER, m), KEYS_DIFFER, 'wrong sender');
    ({ bob, m } = await firstMessage(OTHER));
    await assert.rejects(bob.decrypt(A, m), KEYS_DIFFER, 'delivered to the wrong recipient');
    ({ bob, m } = await firstMessage('bob'));
    await assert.rejects(bob.decrypt(A, m), KEYS_DIFFER, 'recipient name is not a ServiceId');
    // control: with plain names nothing is bound, so the claimed sender is not checked
    const alice = await createPeer('current', { name: 'alice' }), plainBob = await createPeer('current', { name: 'bob' });
    await alice.processBundle('bob', plainBob.bundle());
    assert.equal(dec(await plainBob.decrypt('mallory', await alice.encrypt('bob', enc('unbound')))), 'unbound');
  });
});

describe('official 0.72.1 <-> current 0.103: no interop, fails at the first PreKey message', () => {
  for (const withOneTimePreKey of [true, false]) {
    test(`official initiator -> current responder (one-time prekey: ${withOneTimePreKey}): X3DH refused`, async () => {
      const o = await createPeer('official'), c = await createPeer('current');
      // 0.72.1's peer ignores the kyberPreKey field and runs X3DH
      await o.processBundle('c', c.bundle({ withOneTimePreKey }));
      const m = await o.encrypt('c', enc('hi'));
      assert.equal(m.type, 3);
      assert.equal(m.body[0], 0x34);
      assert.equal(PreKeySignalMessage.deserialize(buf(m.body)).version(), 3);
      await assert.rejects(c.decrypt('o', m), X3DH_REFUSED);
      assert.equal(await c.hasSession('o'), false);
    });
  }

  test('current initiator -> official responder: refused at the bundle; with a Kyber prekey, at the first message', async () => {
    const o = await createPeer('official'), c = await createPeer('current');
    await assert.rejects(c.processBundle('o', o.bundle()), /needs a kyberPreKey/);
    // graft a Kyber prekey that the 0.72.1 test peer does not hold (it keeps none)
    const keyPair = L.KEMKeyPair.generate();
    const publicKey = new Uint8Array(keyPair.getPublicKey().serialize());
    await c.processBundle('o', { ...o.bundle(), kyberPreKey: { id: 9, publicKey, signature: o.sign(publicKey) } });
    const m = await c.encrypt('o', enc('hi'));
    assert.equal(m.type, 3);
    assert.equal(m.body[0], V4);
    await assert.rejects(o.decrypt('c', m), /no kyber prekey 9/);
    assert.equal(await o.hasSession('c'), false);
  });

  test('even with a real Kyber prekey on both sides, PQXDH 0.72.1 <-> PQXDH+SPQR 0.103 fails both ways', async () => {
    // current -> official holding the Kyber private key
    {
      const o = await createPeer('official'), c = await createPeer('current');
      await c.processBundle('o', officialBundleWithKyber(o));
      const m = await c.encrypt('o', enc('hi'));
      assert.equal(m.body[0], V4);
      await assert.rejects(o.decrypt('c', m), KEYS_DIFFER);
      assert.equal(await o.hasSession('c'), false);
    }
    // official running PQXDH (0.72.1's PreKeyBundle with the Kyber arguments) -> current
    {
      const o = await createPeer('official'), c = await createPeer('current');
      const b = c.bundle(), k = b.kyberPreKey;
      const bundle = L.PreKeyBundle.new(
        b.registrationId, b.deviceId, b.preKey.id, L.PublicKey.deserialize(buf(b.preKey.publicKey)),
        b.signedPreKey.id, L.PublicKey.deserialize(buf(b.signedPreKey.publicKey)), buf(b.signedPreKey.signature),
        L.PublicKey.deserialize(buf(b.identityKey)),
        k.id, L.KEMPublicKey.deserialize(buf(k.publicKey)), buf(k.signature));
      await L.processPreKeyBundle(bundle, L.ProtocolAddress.new('c', 1), o.store.session, o.store.identity);
      const m = await o.encrypt('c', enc('hi'));
      assert.equal(m.type, 3);
      assert.equal(m.body[0], 0x44, '0.72.1 PQXDH also writes version 4');
      await assert.rejects(c.decrypt('o', m), KEYS_DIFFER, '0.103 requires SPQR, which 0.72.1 lacks');
      assert.equal(await c.hasSession('o'), false);
    }
  });

  test('ts initiator -> current responder: X3DH refused (and ts bundles carry no Kyber prekey)', async () => {
    const t = await createPeer('ts'), c = await createPeer('current');
    await assert.rejects(c.processBundle('t', t.bundle()), /needs a kyberPreKey/);
    await t.processBundle('c', c.bundle());
    const m = await t.encrypt('c', enc('hi'));
    assert.equal(m.type, 3);
    assert.equal(m.body[0], 0x33);
    await assert.rejects(c.decrypt('t', m), X3DH_REFUSED);
  });
});
