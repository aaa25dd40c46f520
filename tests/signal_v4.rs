//! v4 sessions (PQXDH with Kyber1024, SPQR's chain) against the engine itself: set-up in
//! both roles, long conversations, ordering, persistence, tampering ("a failed operation
//! changes nothing"), and how v3 and v4 parties meet.
// Test helpers unwrap: a panic here is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand::rngs::OsRng;
use signal_guest_sdk::signal::*;

/// A party that publishes a Kyber prekey (id 7), so that its bundle starts v4 sessions.
fn v4_party() -> ProtocolStore {
    let mut store = ProtocolStore::generate(&mut OsRng, 5);
    store.add_kyber_pre_key(7, &mut OsRng);
    store
}

fn send(from: &mut ProtocolStore, to: &str, text: &str) -> CiphertextMessage {
    from.encrypt(to, text.as_bytes()).expect("encrypt")
}

/// Through the wire form, as peers do.
fn wire(msg: &CiphertextMessage) -> CiphertextMessage {
    CiphertextMessage::parse(Some(msg.message_type().into()), msg.serialized()).unwrap()
}

fn recv(to: &mut ProtocolStore, from: &str, msg: &CiphertextMessage) -> String {
    String::from_utf8(to.decrypt(from, &wire(msg), &mut OsRng).expect("decrypt")).unwrap()
}

fn started(with_one_time: bool) -> (ProtocolStore, ProtocolStore) {
    let mut alice = v4_party();
    let bob = v4_party();
    let bundle = bob.bundle(1, with_one_time).unwrap();
    assert!(bundle.kyber_pre_key.is_some());
    alice.process_bundle("bob", &bundle, &mut OsRng).unwrap();
    (alice, bob)
}

#[test]
fn pqxdh_both_roles_and_a_long_conversation() {
    for with_one_time in [true, false] {
        let (mut alice, mut bob) = started(with_one_time);
        assert_eq!(
            alice.session("bob").unwrap().current().unwrap().version(),
            4
        );
        let first = send(&mut alice, "bob", "hello");
        let CiphertextMessage::PreKey(m) = &first else {
            panic!("not a PreKey message")
        };
        assert_eq!(m.serialized()[0], 0x44);
        assert_eq!(m.message().version(), 4);
        let kyber = m.kyber().unwrap();
        assert_eq!((kyber.pre_key_id, kyber.ciphertext.len()), (7, 1569));
        assert_eq!(
            m.message().pq_ratchet(),
            [1, 1, 1, 0],
            "SPQR index 1, no payload"
        );
        assert_eq!(recv(&mut bob, "alice", &first), "hello");
        assert_eq!(
            bob.session("alice").unwrap().current().unwrap().version(),
            4
        );
        // More than 127 each way: SPQR indices become two-byte varints; every fifth turn
        // both sides send a burst, so the DH ratchet and SPQR's counters drift apart.
        for i in 0..300 {
            let (from, to, from_name, to_name) = if i % 2 == 0 {
                (&mut bob, &mut alice, "bob", "alice")
            } else {
                (&mut alice, &mut bob, "alice", "bob")
            };
            let burst: Vec<_> = (0..1 + i % 5)
                .map(|j| send(from, to_name, &format!("{i}.{j}")))
                .collect();
            for (j, m) in burst.iter().enumerate().rev() {
                assert_eq!(recv(to, from_name, m), format!("{i}.{j}"));
            }
        }
        let late = send(&mut alice, "bob", "late");
        let CiphertextMessage::Whisper(w) = &late else {
            panic!("acknowledged session")
        };
        assert_eq!(w.serialized()[0], 0x44);
        assert!(w.pq_ratchet().len() >= 5, "a two-byte SPQR index");
        assert_eq!(recv(&mut bob, "alice", &late), "late");
        assert!(matches!(
            bob.decrypt("alice", &wire(&late), &mut OsRng),
            Err(SignalError::DuplicateMessage(_))
        ));
    }
}

#[test]
fn v4_and_v3_meet_by_the_bundle_and_the_message() {
    // A bundle without a Kyber prekey gives v3, even between two v4 parties.
    let mut alice = v4_party();
    let mut bob = v4_party();
    let mut bundle = bob.bundle(1, true).unwrap();
    bundle.kyber_pre_key = None;
    alice.process_bundle("bob", &bundle, &mut OsRng).unwrap();
    let m = send(&mut alice, "bob", "v3");
    assert_eq!(m.serialized()[0], 0x33);
    assert_eq!(recv(&mut bob, "alice", &m), "v3");
    assert_eq!(
        bob.session("alice").unwrap().current().unwrap().version(),
        3
    );
    // A message for a Kyber prekey the party no longer holds (it rotated to id 8): typed
    // error, nothing changes.
    let (mut alice, mut bob) = started(true);
    bob.add_kyber_pre_key(8, &mut OsRng);
    let before = bob.to_bytes();
    let m = send(&mut alice, "bob", "x");
    assert_eq!(
        bob.decrypt("alice", &wire(&m), &mut OsRng),
        Err(SignalError::UnknownKyberPreKey(7))
    );
    assert_eq!(bob.to_bytes(), before);
}

#[test]
fn every_bit_flip_and_truncation_of_a_v4_prekey_message_changes_nothing() {
    let (mut alice, mut bob) = started(true);
    let prekey_msg = send(&mut alice, "bob", "secret");
    let wire_bytes = prekey_msg.serialized().to_vec();
    let before = bob.to_bytes();
    let mut accepted = Vec::new();
    // The 1,569-byte Kyber ciphertext ends the message: one bit per byte of it (each takes
    // the same implicit-rejection path), every bit of everything else.
    let kyber_from = wire_bytes.len() - 1569;
    let bits =
        (0..wire_bytes.len() * 8).filter(|bit| bit / 8 < kyber_from || bit % 8 == bit / 8 % 8);
    for bit in bits {
        let mut bad = wire_bytes.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        if let Ok(parsed) = CiphertextMessage::parse(Some(3), &bad) {
            // A flip that parses to the same values (the version's low nibble) must still
            // fail or give the true plaintext; every other flip fails.
            if let Ok(pt) = bob.clone().decrypt("alice", &parsed, &mut OsRng) {
                assert_eq!(pt, b"secret", "bit {bit} gave another plaintext");
                accepted.push(bit / 8);
                continue;
            }
            assert!(bob.decrypt("alice", &parsed, &mut OsRng).is_err());
        }
        assert_eq!(bob.to_bytes(), before, "bit {bit}");
    }
    // Only what libsignal leaves outside the MAC too: the outer version byte's low nibble
    // and the registration id (field 5, the bytes after the inner message).
    let CiphertextMessage::PreKey(m) = &prekey_msg else {
        panic!()
    };
    let inner = m.message().serialized();
    let inner_at = wire_bytes
        .windows(inner.len())
        .position(|w| w == inner)
        .unwrap();
    let tag_at = inner_at + inner.len();
    assert_eq!(
        wire_bytes[tag_at], 0x28,
        "field 5 follows the inner message"
    );
    let varint_len = wire_bytes[tag_at + 1..]
        .iter()
        .position(|b| b & 0x80 == 0)
        .unwrap()
        + 1;
    let registration = tag_at..tag_at + 1 + varint_len;
    accepted.retain(|&at| at != 0 && !registration.contains(&at));
    assert_eq!(
        accepted,
        Vec::<usize>::new(),
        "authenticated bytes were accepted flipped"
    );
    for len in 0..wire_bytes.len() {
        if let Ok(parsed) = CiphertextMessage::parse(None, &wire_bytes[..len]) {
            assert!(
                bob.decrypt("alice", &parsed, &mut OsRng).is_err(),
                "len {len}"
            );
        }
        assert_eq!(bob.to_bytes(), before);
    }
    assert_eq!(recv(&mut bob, "alice", &prekey_msg), "secret");
}

/// Rewrites a v4 SignalMessage's protobuf with `edit` and recomputes nothing: the MAC or
/// SPQR must refuse it.
fn without_spqr(message: &SignalMessage) -> Vec<u8> {
    // Field 5 (tag 0x2a) is the last field before the MAC; drop it.
    let bytes = message.serialized();
    let pq = message.pq_ratchet();
    let body_end = bytes.len() - 8;
    let field_len = 2 + pq.len();
    assert_eq!(bytes[body_end - field_len], 0x2a);
    let mut out = bytes[..body_end - field_len].to_vec();
    out.extend_from_slice(&bytes[body_end..]);
    out
}

#[test]
fn spqr_is_required_and_bound_to_the_session() {
    let (mut alice, mut bob) = started(true);
    recv(&mut bob, "alice", &send(&mut alice, "bob", "a"));
    let reply = send(&mut bob, "alice", "b");
    let CiphertextMessage::Whisper(w) = &reply else {
        panic!()
    };
    let before = alice.to_bytes();
    // No SPQR message: refused as libsignal refuses it, before any state changes.
    let stripped = CiphertextMessage::parse(Some(2), &without_spqr(w)).unwrap();
    assert_eq!(
        alice.decrypt("bob", &stripped, &mut OsRng),
        Err(SignalError::InvalidMessage(
            "no post-quantum ratchet message"
        ))
    );
    // A v4 message relabelled v3 does not match the v4 session.
    let mut relabelled = w.serialized().to_vec();
    relabelled[0] = 0x33;
    let relabelled = CiphertextMessage::parse(Some(2), &relabelled).unwrap();
    assert!(alice.decrypt("bob", &relabelled, &mut OsRng).is_err());
    assert_eq!(alice.to_bytes(), before);
    assert_eq!(recv(&mut alice, "bob", &reply), "b");
}

#[test]
fn v4_state_survives_storage_mid_conversation() {
    let (mut alice, mut bob) = started(false);
    recv(&mut bob, "alice", &send(&mut alice, "bob", "a"));
    let skipped = send(&mut bob, "alice", "skipped");
    recv(&mut alice, "bob", &send(&mut bob, "alice", "b"));
    for store in [&mut alice, &mut bob] {
        let bytes = store.to_bytes();
        let restored = ProtocolStore::from_bytes(&bytes).unwrap();
        assert_eq!(restored.to_bytes(), bytes);
        *store = restored;
    }
    assert_eq!(recv(&mut alice, "bob", &skipped), "skipped");
    assert_eq!(
        recv(&mut bob, "alice", &send(&mut alice, "bob", "after")),
        "after"
    );
    // The restored Kyber prekey still takes new sessions.
    let mut carol = v4_party();
    carol
        .process_bundle("bob", &bob.bundle(1, true).unwrap(), &mut OsRng)
        .unwrap();
    assert_eq!(
        recv(&mut bob, "carol", &send(&mut carol, "bob", "pq")),
        "pq"
    );
}

#[test]
fn a_bad_kyber_prekey_signature_aborts_pqxdh() {
    let mut alice = v4_party();
    let bob = v4_party();
    let mut bundle = bob.bundle(1, true).unwrap();
    bundle.kyber_pre_key.as_mut().unwrap().signature[3] ^= 1;
    assert_eq!(
        alice.process_bundle("bob", &bundle, &mut OsRng),
        Err(SignalError::BadSignature)
    );
    assert!(!alice.has_session("bob"));
}
