//! The engine against itself: session set-up in both roles, ordering, archived states,
//! limits, tampering, and "a failed operation changes nothing".
// Test helpers unwrap: a panic here is a failed test. `pub` helpers are shared between
// test files through `mod common`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]

use rand::rngs::{OsRng, StdRng};
use rand::SeedableRng;
use signal_guest_sdk::signal::*;

fn party() -> ProtocolStore {
    ProtocolStore::generate(&mut OsRng, 5)
}

fn send(from: &mut ProtocolStore, to_addr: &str, text: &str) -> CiphertextMessage {
    from.encrypt(to_addr, text.as_bytes()).expect("encrypt")
}

fn recv(to: &mut ProtocolStore, from_addr: &str, msg: &CiphertextMessage) -> String {
    // Always go through the wire form, as peers do.
    let parsed =
        CiphertextMessage::parse(Some(msg.message_type().into()), msg.serialized()).unwrap();
    String::from_utf8(to.decrypt(from_addr, &parsed, &mut OsRng).expect("decrypt")).unwrap()
}

/// Alice ("guest") starts a session from Bob's ("participant") bundle.
fn started(with_one_time: bool) -> (ProtocolStore, ProtocolStore) {
    let mut alice = party();
    let bob = party();
    alice
        .process_bundle("bob", &bob.bundle(1, with_one_time).unwrap(), &mut OsRng)
        .unwrap();
    (alice, bob)
}

#[test]
fn s1_initiator_sends_prekey_messages_until_first_reply() {
    for with_one_time in [true, false] {
        let (mut alice, mut bob) = started(with_one_time);
        let m1 = send(&mut alice, "bob", "one");
        let m2 = send(&mut alice, "bob", "two");
        assert_eq!(m1.message_type(), 3);
        assert_eq!(m2.message_type(), 3);
        let opks_before = bob.one_time_pre_key_ids().count();
        assert_eq!(recv(&mut bob, "alice", &m2), "two");
        assert_eq!(recv(&mut bob, "alice", &m1), "one");
        let consumed = opks_before - bob.one_time_pre_key_ids().count();
        assert_eq!(consumed, usize::from(with_one_time));
        let reply = send(&mut bob, "alice", "reply");
        assert_eq!(reply.message_type(), 2);
        assert_eq!(recv(&mut alice, "bob", &reply), "reply");
        let m3 = send(&mut alice, "bob", "three");
        assert_eq!(m3.message_type(), 2, "first reply acknowledges the prekey");
        assert_eq!(recv(&mut bob, "alice", &m3), "three");
    }
}

#[test]
fn out_of_order_and_duplicates() {
    let (mut alice, mut bob) = started(true);
    let first = send(&mut alice, "bob", "hello");
    recv(&mut bob, "alice", &first);
    let msgs: Vec<_> = (0..3)
        .map(|i| send(&mut bob, "alice", &format!("m{i}")))
        .collect();
    for i in [2, 0, 1] {
        assert_eq!(recv(&mut alice, "bob", &msgs[i]), format!("m{i}"));
    }
    for m in &msgs {
        let before = alice.to_bytes();
        let err = alice.decrypt("bob", m, &mut OsRng).unwrap_err();
        assert!(matches!(err, SignalError::DuplicateMessage(_)), "{err:?}");
        assert_eq!(alice.to_bytes(), before, "failed decrypt changed state");
    }
}

#[test]
fn many_ratchet_turns_both_ways() {
    let (mut alice, mut bob) = started(true);
    recv(&mut bob, "alice", &send(&mut alice, "bob", "start"));
    for round in 0..20 {
        let burst = 1 + round % 3;
        for i in 0..burst {
            let m = send(&mut bob, "alice", &format!("b{round}.{i}"));
            assert_eq!(recv(&mut alice, "bob", &m), format!("b{round}.{i}"));
        }
        let m = send(&mut alice, "bob", &format!("a{round}"));
        assert_eq!(recv(&mut bob, "alice", &m), format!("a{round}"));
    }
}

#[test]
fn s2_responder_accepts_peers_own_session_and_late_old_messages() {
    // Guest (alice) holds an initiator session; the participant (bob) answers on it once,
    // then starts its own session from the guest's bundle.
    let mut guest = party();
    let mut participant = party();
    guest
        .process_bundle(
            "participant",
            &participant.bundle(1, true).unwrap(),
            &mut OsRng,
        )
        .unwrap();
    recv(
        &mut participant,
        "guest",
        &send(&mut guest, "participant", "request"),
    );
    let late_old = send(&mut participant, "guest", "late on old state");
    participant
        .process_bundle("guest", &guest.bundle(1, true).unwrap(), &mut OsRng)
        .unwrap();
    let fresh = send(&mut participant, "guest", "answer on my session");
    assert_eq!(fresh.message_type(), 3);
    assert_eq!(
        recv(&mut guest, "participant", &fresh),
        "answer on my session"
    );
    assert_eq!(guest.session("participant").unwrap().archived_count(), 1);
    assert_eq!(
        recv(&mut guest, "participant", &late_old),
        "late on old state"
    );
    for i in 0..10 {
        let (from, to, fa, ta) = if i % 2 == 0 {
            (&mut guest, &mut participant, "participant", "guest")
        } else {
            (&mut participant, &mut guest, "guest", "participant")
        };
        let m = send(from, fa, &format!("x{i}"));
        assert_eq!(recv(to, ta, &m), format!("x{i}"));
    }
}

#[test]
fn s3_simultaneous_initiation_converges() {
    let mut a = party();
    let mut b = party();
    a.process_bundle("b", &b.bundle(1, true).unwrap(), &mut OsRng)
        .unwrap();
    b.process_bundle("a", &a.bundle(1, true).unwrap(), &mut OsRng)
        .unwrap();
    let from_a = send(&mut a, "b", "a first");
    let from_b = send(&mut b, "a", "b first");
    assert_eq!(recv(&mut b, "a", &from_a), "a first");
    assert_eq!(recv(&mut a, "b", &from_b), "b first");
    for i in 0..6 {
        let (from, to, fa, ta) = if i % 2 == 0 {
            (&mut a, &mut b, "b", "a")
        } else {
            (&mut b, &mut a, "a", "b")
        };
        let m = send(from, fa, &format!("alt{i}"));
        assert_eq!(recv(to, ta, &m), format!("alt{i}"));
    }
}

#[test]
fn bad_bundle_signature_is_refused_without_state_change() {
    let mut alice = party();
    let bob = party();
    let mut bundle = bob.bundle(1, true).unwrap();
    bundle.signed_pre_key_signature[5] ^= 1;
    let before = alice.to_bytes();
    assert_eq!(
        alice.process_bundle("bob", &bundle, &mut OsRng),
        Err(SignalError::BadSignature)
    );
    assert_eq!(alice.to_bytes(), before);
    // A bundle signed by a different identity.
    let mut foreign = bob.bundle(1, true).unwrap();
    foreign.identity_key = party().identity_key();
    assert_eq!(
        alice.process_bundle("bob", &foreign, &mut OsRng),
        Err(SignalError::BadSignature)
    );
    assert!(!alice.has_session("bob"));
}

#[test]
fn changed_identity_is_refused_both_ways() {
    let (mut alice, mut bob) = started(true);
    recv(&mut bob, "alice", &send(&mut alice, "bob", "hi"));
    // Someone else claims to be bob.
    let impostor = party();
    let before = alice.to_bytes();
    let err = alice.process_bundle("bob", &impostor.bundle(1, true).unwrap(), &mut OsRng);
    assert!(matches!(err, Err(SignalError::UntrustedIdentity(_))));
    assert_eq!(alice.to_bytes(), before);
    // Someone else claims to be alice towards bob.
    let mut fake_alice = party();
    fake_alice
        .process_bundle("bob", &bob.bundle(1, true).unwrap(), &mut OsRng)
        .unwrap();
    let m = send(&mut fake_alice, "bob", "i am alice");
    let before = bob.to_bytes();
    assert!(matches!(
        bob.decrypt("alice", &m, &mut OsRng),
        Err(SignalError::UntrustedIdentity(_))
    ));
    assert_eq!(bob.to_bytes(), before);
}

#[test]
fn every_bit_flip_and_truncation_is_rejected_without_state_change() {
    let (mut alice, mut bob) = started(true);
    let prekey_msg = send(&mut alice, "bob", "secret");
    let wire = prekey_msg.serialized().to_vec();
    let before = bob.to_bytes();
    for bit in 0..wire.len() * 8 {
        let mut bad = wire.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        if let Ok(parsed) = CiphertextMessage::parse(Some(3), &bad) {
            // Some flips land in protobuf bytes that parse to the same values (e.g. the
            // version's low nibble). Those must still fail or yield the true plaintext.
            let mut trial = bob.clone();
            if let Ok(pt) = trial.decrypt("alice", &parsed, &mut OsRng) {
                assert_eq!(pt, b"secret", "bit {bit} produced a different plaintext");
                continue;
            }
            assert!(bob.decrypt("alice", &parsed, &mut OsRng).is_err());
        }
        assert_eq!(bob.to_bytes(), before, "bit {bit}");
    }
    for len in 0..wire.len() {
        if let Ok(parsed) = CiphertextMessage::parse(None, &wire[..len]) {
            assert!(
                bob.decrypt("alice", &parsed, &mut OsRng).is_err(),
                "len {len}"
            );
        }
        assert_eq!(bob.to_bytes(), before);
    }
    assert_eq!(recv(&mut bob, "alice", &prekey_msg), "secret");
}

/// `store`'s pending decryption of `msg` from `from`, within libsignal's limits.
fn pending_from(
    store: &ProtocolStore,
    from: &str,
    msg: &CiphertextMessage,
    rng: &mut (impl rand::CryptoRng + rand::RngCore),
) -> PendingDecryption {
    store
        .decrypt_pending(from, msg, DecryptLimits::LIBSIGNAL, rng)
        .unwrap()
}

#[test]
fn a_pending_decryption_changes_the_store_only_when_applied() {
    let (mut alice, mut bob) = started(true);
    let prekey_msg = parsed(&send(&mut alice, "bob", "first"));
    let before = bob.to_bytes();
    let pending = pending_from(&bob, "alice", &prekey_msg, &mut OsRng);
    assert_eq!(pending.plaintext(), b"first");
    assert_eq!(
        pending.sender_identity().map(|k| k.serialize()),
        Some(alice.identity_key().serialize())
    );
    // Dropped: no session, no trusted identity, the one-time prekey still there.
    drop(pending);
    assert_eq!(bob.to_bytes(), before);
    assert!(!bob.has_session("alice"));
    assert_eq!(bob.known_identity("alice"), None);
    // Applied: exactly what a plain decryption does to a copy of the same store (with the
    // same randomness for the new ratchet key).
    let mut plain = bob.clone();
    let decrypted = plain.decrypt("alice", &prekey_msg, &mut StdRng::seed_from_u64(9));
    assert_eq!(decrypted.unwrap(), b"first");
    let pending = pending_from(&bob, "alice", &prekey_msg, &mut StdRng::seed_from_u64(9));
    bob.apply_decryption(pending);
    assert_eq!(bob.to_bytes(), plain.to_bytes());
    assert!(matches!(
        bob.decrypt("alice", &prekey_msg, &mut OsRng),
        Err(SignalError::DuplicateMessage(0))
    ));

    // A session's message: the chain moves only when applied, and the sender stays trusted.
    let reply = parsed(&send(&mut bob, "alice", "reply"));
    let before = alice.to_bytes();
    let pending = pending_from(&alice, "bob", &reply, &mut OsRng);
    assert_eq!(pending.plaintext(), b"reply");
    assert_eq!(pending.sender_identity(), alice.known_identity("bob"));
    drop(pending);
    assert_eq!(alice.to_bytes(), before);
    let pending = pending_from(&alice, "bob", &reply, &mut OsRng);
    alice.apply_decryption(pending);
    assert_ne!(alice.to_bytes(), before);
    assert!(matches!(
        alice.decrypt("bob", &reply, &mut OsRng),
        Err(SignalError::DuplicateMessage(0))
    ));
    // Nothing in its Debug form but the sender's address.
    let another = parsed(&send(&mut alice, "bob", "x"));
    let pending = pending_from(&bob, "alice", &another, &mut OsRng);
    assert_eq!(
        format!("{pending:?}"),
        r#"PendingDecryption { address: "alice", .. }"#
    );
}

#[test]
fn only_the_version_low_nibble_flip_still_decrypts() {
    // The MAC covers the version byte as received: a flipped low nibble is authenticated
    // data and must fail, even though the high nibble still says v3.
    let (mut alice, mut bob) = started(true);
    recv(&mut bob, "alice", &send(&mut alice, "bob", "x"));
    let m = send(&mut bob, "alice", "y");
    let mut bytes = m.serialized().to_vec();
    bytes[0] = 0x34;
    let parsed = CiphertextMessage::parse(Some(2), &bytes).unwrap();
    assert_eq!(
        alice.decrypt("bob", &parsed, &mut OsRng),
        Err(SignalError::BadMac)
    );
    assert_eq!(recv(&mut alice, "bob", &m), "y");
}

#[test]
fn prekey_message_for_consumed_or_unknown_prekey() {
    let (mut alice, mut bob) = started(true);
    let m = send(&mut alice, "bob", "first");
    assert_eq!(recv(&mut bob, "alice", &m), "first");
    // Same base key again: recognised, no prekey needed, but a replay of the inner message.
    assert!(matches!(
        bob.decrypt("alice", &m, &mut OsRng),
        Err(SignalError::DuplicateMessage(0))
    ));
    // A second initiator using the same (now consumed) one-time prekey.
    let mut carol = party();
    let stale = bob.bundle(1, true).unwrap();
    let mut stale_used = stale.clone();
    stale_used.pre_key = Some((1, stale.pre_key.unwrap().1));
    carol
        .process_bundle("bob", &stale_used, &mut OsRng)
        .unwrap();
    let before = bob.to_bytes();
    let err = bob
        .decrypt("carol", &send(&mut carol, "bob", "hi"), &mut OsRng)
        .unwrap_err();
    assert!(
        matches!(err, SignalError::UnknownPreKey(1) | SignalError::BadMac),
        "{err:?}"
    );
    assert_eq!(bob.to_bytes(), before);
}

#[test]
fn forward_jump_limit() {
    let (mut alice, mut bob) = started(false);
    recv(&mut bob, "alice", &send(&mut alice, "bob", "go"));
    let mut last = None;
    for _ in 0..=MAX_FORWARD_JUMPS + 1 {
        last = Some(send(&mut bob, "alice", "skip"));
    }
    let before = alice.to_bytes();
    let err = alice
        .decrypt("bob", &last.unwrap(), &mut OsRng)
        .unwrap_err();
    assert!(matches!(err, SignalError::TooFarInFuture(_)), "{err:?}");
    assert_eq!(alice.to_bytes(), before);
}

#[test]
fn skipped_keys_are_capped() {
    let (mut alice, mut bob) = started(false);
    recv(&mut bob, "alice", &send(&mut alice, "bob", "go"));
    let msgs: Vec<_> = (0..MAX_MESSAGE_KEYS + 10)
        .map(|_| send(&mut bob, "alice", "m"))
        .collect();
    recv(&mut alice, "bob", msgs.last().unwrap());
    // The oldest skipped keys were dropped, the newest kept.
    assert!(alice.decrypt("bob", &msgs[0], &mut OsRng).is_err());
    assert_eq!(recv(&mut alice, "bob", &msgs[msgs.len() - 2]), "m");
}

#[test]
fn archived_states_are_capped_at_forty() {
    let mut alice = party();
    let bob = ProtocolStore::generate(&mut OsRng, 60);
    for _ in 0..50 {
        alice
            .process_bundle("bob", &bob.bundle(1, false).unwrap(), &mut OsRng)
            .unwrap();
    }
    assert_eq!(
        alice.session("bob").unwrap().archived_count(),
        ARCHIVED_STATES_MAX
    );
}

#[test]
fn store_round_trips_exactly_and_keeps_working() {
    let (mut alice, mut bob) = started(true);
    recv(&mut bob, "alice", &send(&mut alice, "bob", "a"));
    let skipped = send(&mut bob, "alice", "skipped");
    recv(&mut alice, "bob", &send(&mut bob, "alice", "b"));
    let bytes = alice.to_bytes();
    assert_eq!(bytes[0], RECORD_FORMAT_VERSION);
    let mut restored = ProtocolStore::from_bytes(&bytes).unwrap();
    assert_eq!(restored.to_bytes(), bytes);
    assert_eq!(recv(&mut restored, "bob", &skipped), "skipped");
    recv(
        &mut bob,
        "alice",
        &send(&mut restored, "bob", "after reload"),
    );
    let record = restored.session("bob").unwrap();
    assert_eq!(
        SessionRecord::from_bytes(&record.to_bytes())
            .unwrap()
            .to_bytes(),
        record.to_bytes()
    );
}

#[test]
fn corrupt_records_are_typed_errors() {
    let bytes = party().to_bytes();
    assert_eq!(
        ProtocolStore::from_bytes(&[]).unwrap_err(),
        SignalError::CorruptRecord("empty")
    );
    let mut wrong_version = bytes.clone();
    wrong_version[0] = 9;
    assert_eq!(
        ProtocolStore::from_bytes(&wrong_version).unwrap_err(),
        SignalError::RecordVersion(9)
    );
    for len in 1..bytes.len() {
        assert!(
            ProtocolStore::from_bytes(&bytes[..len]).is_err(),
            "truncated at {len}"
        );
    }
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert_eq!(
        ProtocolStore::from_bytes(&trailing).unwrap_err(),
        SignalError::CorruptRecord("trailing bytes")
    );
    assert!(ProtocolStore::from_bytes(&[1, 0xff, 0xff]).is_err());
}

#[test]
fn registration_and_prekey_ids() {
    for _ in 0..50 {
        let s = ProtocolStore::generate(&mut OsRng, 30);
        assert!((1..=REGISTRATION_ID_MAX).contains(&s.registration_id()));
        let ids: Vec<_> = s.one_time_pre_key_ids().collect();
        assert_eq!(ids, (1..=30).collect::<Vec<_>>());
        let keys = s.public_keys().unwrap();
        assert_eq!(keys.pre_keys.len(), 30);
        assert!(keys.identity_key.verify_signature(
            &keys.signed_pre_key.public_key.serialize(),
            &keys.signed_pre_key.signature
        ));
    }
}

const TIGHT: DecryptLimits = DecryptLimits {
    max_forward_jumps: 64,
    max_states: 5,
};

fn parsed(msg: &CiphertextMessage) -> CiphertextMessage {
    CiphertextMessage::parse(Some(msg.message_type().into()), msg.serialized()).unwrap()
}

#[test]
fn tighter_limits_bound_the_forward_jump() {
    let (mut alice, mut bob) = started(false);
    recv(&mut bob, "alice", &send(&mut alice, "bob", "go"));
    let mut sent: Vec<CiphertextMessage> = (0..=65).map(|_| send(&mut bob, "alice", "x")).collect();
    // 65 ahead of a chain alice has not seen yet: refused before any work, state unchanged.
    let far = sent.pop().unwrap();
    let before = alice.to_bytes();
    let err = alice
        .decrypt_within("bob", &parsed(&far), TIGHT, &mut OsRng)
        .unwrap_err();
    assert_eq!(err, SignalError::TooFarInFuture(65));
    assert_eq!(alice.to_bytes(), before);
    // 64 ahead is within the bound; libsignal's limits take the 65th afterwards.
    let near = sent.pop().unwrap();
    let plain = alice
        .decrypt_within("bob", &parsed(&near), TIGHT, &mut OsRng)
        .unwrap();
    assert_eq!(plain, b"x");
    assert_eq!(
        alice.decrypt("bob", &parsed(&far), &mut OsRng).unwrap(),
        b"x"
    );
}

#[test]
fn tighter_limits_try_only_the_newest_states() {
    // Bob starts seven sessions with alice; alice keeps them all (one current, six archived).
    let mut alice = ProtocolStore::generate(&mut OsRng, 10);
    let mut bob = party();
    let mut snapshots = Vec::new();
    for i in 0..7 {
        bob.process_bundle("alice", &alice.bundle(1, false).unwrap(), &mut OsRng)
            .unwrap();
        let m = send(&mut bob, "alice", &format!("session {i}"));
        assert_eq!(recv(&mut alice, "bob", &m), format!("session {i}"));
        // Bob as he was on session i, to send a late message on it.
        snapshots.push(ProtocolStore::from_bytes(&bob.to_bytes()).unwrap());
    }
    assert_eq!(alice.session("bob").unwrap().archived_count(), 6);
    // Bob has had no reply, so he still sends PreKey messages; a PreKey message names its
    // state by base key (one lookup, no trial), so take the SignalMessage inside it, which
    // is what a forged or late message without the PreKey envelope looks like.
    let late = |bob_then: &mut ProtocolStore| match parsed(&send(bob_then, "alice", "late")) {
        CiphertextMessage::PreKey(pre) => CiphertextMessage::Whisper(pre.message().clone()),
        other => other,
    };
    // Session 0 is the seventh-newest state: beyond the five the tight limits try.
    let on_oldest = late(&mut snapshots[0]);
    let before = alice.to_bytes();
    assert!(alice
        .decrypt_within("bob", &on_oldest, TIGHT, &mut OsRng)
        .is_err());
    assert_eq!(alice.to_bytes(), before, "nothing changes");
    // Session 2 is the fifth-newest: still tried.
    let on_fifth = late(&mut snapshots[2]);
    assert_eq!(
        alice
            .decrypt_within("bob", &on_fifth, TIGHT, &mut OsRng)
            .unwrap(),
        b"late"
    );
    // libsignal's limits try every state.
    assert_eq!(
        alice.decrypt("bob", &on_oldest, &mut OsRng).unwrap(),
        b"late"
    );
}
