// Interop matrix: our wasm engine against official libsignal 0.72.1 (v3, X3DH), the TypeScript
// port 0.0.16 (v3) and official libsignal 0.103.0 ('current': v4 only, PQXDH + SPQR), S1–S3 in
// both roles, plus signatures, MAC tampering and safety numbers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPeer, fingerprint } from './peers.js';
import { OursPeer, SignalParty } from './ours.js';
import * as L from '@signalapp/libsignal-client'; // 0.72.1, running PQXDH below

const enc = (s) => new TextEncoder().encode(s);
const dec = (b) => new TextDecoder().decode(b);
const PEERS = ['official', 'ts', 'current'];
/** The session version each peer ends up in with us: 0.103 reads our Kyber prekey. */
const VERSION = { official: 3, ts: 3, current: 4 };

/** Two named ends of a conversation; each addresses the other by the other's name. */
function pair(a, aName, b, bName) {
  const ends = { [aName]: { peer: a, other: bName }, [bName]: { peer: b, other: aName } };
  return {
    async send(from, text) {
      const { peer, other } = ends[from];
      return peer.encrypt(other, enc(text));
    },
    async recv(to, message) {
      const { peer, other } = ends[to];
      return dec(await peer.decrypt(other, message));
    },
    async roundTrip(from, to, text) {
      const m = await this.send(from, text);
      assert.equal(await this.recv(to, m), text, `${from} -> ${to}: ${text}`);
      return m;
    },
  };
}

const setups = (kind) => [
  // [label, initiator factory, responder factory]
  ['ours as guest (initiator)', () => new OursPeer(), () => createPeer(kind)],
  ['ours as participant (responder)', () => createPeer(kind), () => new OursPeer()],
];

for (const kind of PEERS) {
  for (const [role, makeInitiator, makeResponder] of setups(kind)) {
    for (const withOneTimePreKey of [true, false]) {
      test(`S1 ${kind}: ${role}, ${withOneTimePreKey ? 'with' : 'without'} one-time prekey`, async () => {
        const guest = await makeInitiator();
        const participant = await makeResponder();
        const c = pair(guest, 'guest', participant, 'participant');
        await guest.processBundle('participant', participant.bundle({ withOneTimePreKey }));
        const first = await c.send('guest', 'request 1');
        const second = await c.send('guest', 'request 2');
        assert.equal(first.type, 3);
        assert.equal(first.body[0] >> 4, VERSION[kind], 'session version');
        assert.equal(second.type, 3, 'initiator keeps sending PreKey messages until a reply');
        assert.equal(await c.recv('participant', second), 'request 2');
        assert.equal(await c.recv('participant', first), 'request 1');
        const reply = await c.roundTrip('participant', 'guest', 'reply');
        assert.notEqual(reply.type, 3);
        const next = await c.roundTrip('guest', 'participant', 'after reply');
        assert.notEqual(next.type, 3, 'reply acknowledged the session');
        const burst = [];
        for (let i = 0; i < 3; i++) burst.push(await c.send('participant', `ooo ${i}`));
        for (const i of [2, 0, 1]) assert.equal(await c.recv('guest', burst[i]), `ooo ${i}`);
        await assert.rejects(c.recv('guest', burst[0]), 'replay is rejected');
      });
    }

    test(`S2 ${kind}: ${role}, participant starts its own session while guest holds one`, async () => {
      const guest = await makeInitiator();
      const participant = await makeResponder();
      const c = pair(guest, 'guest', participant, 'participant');
      await guest.processBundle('participant', participant.bundle());
      await c.roundTrip('guest', 'participant', 'key request');
      const lateOld = await c.send('participant', 'late on the old session');
      await participant.processBundle('guest', guest.bundle());
      const own = await c.send('participant', 'answer on my own session');
      assert.equal(own.type, 3);
      assert.equal(await c.recv('guest', own), 'answer on my own session');
      assert.equal(await c.recv('guest', lateOld), 'late on the old session');
      for (let i = 0; i < 10; i++) {
        const [from, to] = i % 2 ? ['participant', 'guest'] : ['guest', 'participant'];
        await c.roundTrip(from, to, `converge ${i}`);
      }
    });

    test(`S3 ${kind}: ${role}, simultaneous initiation then 6 alternating messages`, async () => {
      const a = await makeInitiator();
      const b = await makeResponder();
      const c = pair(a, 'a', b, 'b');
      await a.processBundle('b', b.bundle());
      await b.processBundle('a', a.bundle());
      const fromA = await c.send('a', 'a first');
      const fromB = await c.send('b', 'b first');
      assert.equal(fromA.type, 3);
      assert.equal(fromB.type, 3);
      assert.equal(await c.recv('b', fromA), 'a first');
      assert.equal(await c.recv('a', fromB), 'b first');
      for (let i = 0; i < 6; i++) {
        const [from, to] = i % 2 ? ['b', 'a'] : ['a', 'b'];
        await c.roundTrip(from, to, `alternate ${i}`);
      }
    });
  }

  if (VERSION[kind] === 4) {
    for (const [role, makeInitiator, makeResponder] of setups(kind)) {
      test(`SPQR ${kind}: ${role}, 400 messages in alternating bursts, the braid never advancing on our side`, async () => {
        // libsignal sends braid payloads (header, key and ciphertext chunks) in every message;
        // we read and drop them and always answer "no payload". It must keep accepting that.
        const a = await makeInitiator();
        const b = await makeResponder();
        const c = pair(a, 'a', b, 'b');
        await a.processBundle('b', b.bundle());
        let sent = 0;
        for (let turn = 0; sent < 400; turn++) {
          const [from, to] = turn % 2 ? ['b', 'a'] : ['a', 'b'];
          const burst = [];
          for (let i = 0; i < 1 + (turn % 4); i++) burst.push(await c.send(from, `${turn}.${i}`));
          for (const i of [...burst.keys()].reverse()) assert.equal(await c.recv(to, burst[i]), `${turn}.${i}`);
          sent += burst.length;
        }
        const last = await c.send('a', 'last');
        assert.equal(last.body[0], 0x44);
        assert.equal(await c.recv('b', last), 'last');
      });
    }
  }

  test(`XEdDSA ${kind}: signatures verify both ways, tampering is rejected`, async () => {
    const peer = await createPeer(kind);
    const ours = new OursPeer();
    const msg = peer.bundle().signedPreKey.publicKey;
    const ourSig = ours.sign(msg);
    const theirSig = peer.sign(msg);
    assert.equal(peer.verify(ours.identityKey(), msg, ourSig), true, 'peer verifies ours');
    assert.equal(SignalParty.verify(peer.identityKey(), msg, theirSig), true, 'we verify peer');
    for (const sig of [ourSig, theirSig]) {
      const bad = Uint8Array.from(sig);
      bad[10] ^= 1;
      assert.equal(peer.verify(ours.identityKey(), msg, bad), false);
      assert.equal(SignalParty.verify(peer.identityKey(), msg, bad), false);
    }
    // Many keys: half of them have Edwards sign bit 1, which travels in the signature.
    for (let i = 0; i < 16; i++) {
      const p = await createPeer(kind, { oneTimePreKeyCount: 0 });
      const s = p.sign(msg);
      assert.equal(SignalParty.verify(p.identityKey(), msg, s), true);
      const o = new OursPeer(0);
      assert.equal(peer.verify(o.identityKey(), msg, o.sign(msg)), true);
    }
  });

  test(`MAC ${kind}: a tampered message from the peer is rejected, the original still decrypts`, async () => {
    const guest = new OursPeer();
    const participant = await createPeer(kind);
    const c = pair(guest, 'guest', participant, 'participant');
    await guest.processBundle('participant', participant.bundle());
    await c.roundTrip('guest', 'participant', 'hello');
    const m = await c.send('participant', 'secret');
    for (const index of [m.body.length - 1, m.body.length - 9, 5]) {
      const bad = { type: m.type, body: Uint8Array.from(m.body) };
      bad.body[index] ^= 0x01;
      await assert.rejects(c.recv('guest', bad));
    }
    assert.equal(await c.recv('guest', m), 'secret');
  });

  test(`bundle ${kind}: a bad signed-prekey signature aborts X3DH on both sides`, async () => {
    const peer = await createPeer(kind);
    const ours = new OursPeer();
    const theirs = peer.bundle();
    theirs.signedPreKey.signature[0] ^= 1;
    await assert.rejects(ours.processBundle('p', theirs));
    assert.equal(await ours.hasSession('p'), false);
    const mine = ours.bundle();
    mine.signedPreKey.signature[0] ^= 1;
    await assert.rejects(peer.processBundle('g', mine));
    if (VERSION[kind] === 4) {
      // PQXDH: the Kyber prekey's signature (over its 0x08-typed form) is checked too.
      const theirsKyber = peer.bundle();
      theirsKyber.kyberPreKey.signature[0] ^= 1;
      await assert.rejects(ours.processBundle('p2', theirsKyber));
      assert.equal(await ours.hasSession('p2'), false);
      const mineKyber = ours.bundle();
      mineKyber.kyberPreKey.signature[0] ^= 1;
      await assert.rejects(peer.processBundle('g2', mineKyber));
    }
  });
}

test('fingerprints equal official libsignal for the same keys and identifiers', async () => {
  for (let i = 0; i < 5; i++) {
    const a = new OursPeer(0);
    const b = await createPeer('official', { oneTimePreKeyCount: 0 });
    const aId = enc(`guest-${i}`);
    const bId = enc(`+1555000${i}`);
    const official = fingerprint(aId, a.identityKey(), bId, b.identityKey());
    assert.match(official, /^\d{60}$/);
    assert.equal(SignalParty.fingerprint(5200, aId, a.identityKey(), bId, b.identityKey()), official);
    assert.equal(SignalParty.fingerprint(5200, bId, b.identityKey(), aId, a.identityKey()), official);
  }
});

test('the wire version byte is 0x33 and official 0x34 is accepted', async () => {
  const guest = new OursPeer();
  const participant = await createPeer('official');
  const c = pair(guest, 'guest', participant, 'participant');
  await guest.processBundle('participant', participant.bundle());
  const m = await c.send('guest', 'v');
  assert.equal(m.body[0], 0x33);
  await c.recv('participant', m);
  const reply = await c.send('participant', 'w');
  assert.equal(reply.body[0], 0x34);
  assert.equal(await c.recv('guest', reply), 'w');
});

/** Official 0.72.1 reading a bundle with its Kyber prekey: PQXDH, v4 messages, no SPQR. */
async function officialPqxdhInitiator(guestBundle) {
  const participant = await createPeer('official');
  const b = guestBundle, k = b.kyberPreKey;
  const buf = (x) => Buffer.from(x);
  const bundle = L.PreKeyBundle.new(
    b.registrationId, b.deviceId ?? 1, b.preKey?.id ?? null, b.preKey ? L.PublicKey.deserialize(buf(b.preKey.publicKey)) : null,
    b.signedPreKey.id, L.PublicKey.deserialize(buf(b.signedPreKey.publicKey)), buf(b.signedPreKey.signature),
    L.PublicKey.deserialize(buf(b.identityKey)),
    k.id, L.KEMPublicKey.deserialize(buf(k.publicKey)), buf(k.signature));
  await L.processPreKeyBundle(bundle, L.ProtocolAddress.new('guest', 1), participant.store.session, participant.store.identity);
  return participant;
}

for (const withOneTimePreKey of [true, false]) {
  test(`PQXDH without SPQR: official 0.72.1 starts a v4 session to a Kyber-publishing guest (${withOneTimePreKey ? 'with' : 'without'} one-time prekey), both ways, across a reload`, async () => {
    let guest = new OursPeer();
    const participant = await officialPqxdhInitiator(guest.bundle({ withOneTimePreKey }));
    const c = () => pair(guest, 'guest', participant, 'participant');
    const first = await c().send('participant', 'key answer 1');
    const second = await c().send('participant', 'key answer 2');
    assert.equal(first.type, 3);
    assert.equal(first.body[0], 0x44, 'PQXDH: version 4');
    assert.equal(await c().recv('guest', second), 'key answer 2');
    assert.equal(await c().recv('guest', first), 'key answer 1');
    // The guest answers in the same session: v4, no SPQR, and 0.72.1 reads it.
    const reply = await c().roundTrip('guest', 'participant', 'reveal');
    assert.equal(reply.type, 2);
    assert.equal(reply.body[0], 0x44);
    // A reload: the stored session keeps its version and its lack of SPQR.
    guest.party = SignalParty.deserialize(guest.party.serialize());
    for (let i = 0; i < 6; i++) {
      const [from, to] = i % 2 ? ['guest', 'participant'] : ['participant', 'guest'];
      await c().roundTrip(from, to, `update ${i}`);
    }
    const burst = [];
    for (let i = 0; i < 3; i++) burst.push(await c().send('participant', `ooo ${i}`));
    for (const i of [2, 0, 1]) assert.equal(await c().recv('guest', burst[i]), `ooo ${i}`);
    await assert.rejects(c().recv('guest', burst[0]), 'replay is rejected');
  });
}

test('a session with SPQR still refuses a message without it (0.103 initiator, SPQR field stripped)', async () => {
  const guest = new OursPeer();
  const participant = await createPeer('current');
  await participant.processBundle('guest', guest.bundle());
  const c = pair(guest, 'guest', participant, 'participant');
  await c.roundTrip('participant', 'guest', 'with SPQR');
  await c.roundTrip('guest', 'participant', 'ack');
  const m = await c.send('participant', 'second');
  assert.equal(m.type, 2);
  // Field 5 (tag 0x2a) is the SPQR message; cut it out of the protobuf (the MAC then fails too,
  // but the refusal must come first and name the missing SPQR).
  const body = m.body;
  const at = findField(body, 0x2a);
  assert.ok(at, 'the message has an SPQR field');
  const stripped = new Uint8Array([...body.subarray(0, at.start), ...body.subarray(at.end)]);
  await assert.rejects(guest.decrypt('participant', { type: 2, body: stripped }), /no post-quantum ratchet message/);
  assert.equal(await c.recv('guest', m), 'second', 'the session is unchanged');
});

/** The [start, end) of the first length-delimited field with `tag` in a version-byte + protobuf + MAC body. */
function findField(body, tag) {
  let i = 1;
  const varint = () => { let v = 0, s = 0, b; do { b = body[i++]; v |= (b & 0x7f) << s; s += 7; } while (b & 0x80); return v; };
  while (i < body.length - 8) {
    const start = i, key = varint();
    if ((key & 7) === 2) { const n = varint(); i += n; } else if ((key & 7) === 0) varint(); else return null;
    if (key === tag) return { start, end: i };
  }
  return null;
}
