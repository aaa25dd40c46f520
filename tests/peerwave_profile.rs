//! The exchange in the `peerwave` wire profile, under a fake clock, against participants
//! that behave like PeerWave's Flutter participant: every participant answers every
//! request (the server broadcasts it), each with a new session from the guest's published
//! bundle, in PeerWave's envelope and plaintext. (PeerWave's real server and the npm peers
//! are exercised in `www/peerwave/`.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]

mod common;

use std::collections::VecDeque;

use common::*;
use serde_json::{json, Value};
use signal_guest_sdk::exchange::contract::WireProfile;
use signal_guest_sdk::exchange::messages::encode_base64;
use signal_guest_sdk::exchange::*;
use signal_guest_sdk::signal::{PreKeyBundle, ProtocolStore, PublicKey};

/// The guest's bundle as PeerWave's server holds it: identity, signed prekey and the
/// published one-time prekeys, handed out first-in first-out.
struct GuestBundle {
    identity: PublicKey,
    registration_id: u32,
    signed: (u32, PublicKey, [u8; 64]),
    pre_keys: VecDeque<(u32, PublicKey)>,
}

impl GuestBundle {
    fn of(state: &GuestState) -> Self {
        let keys = state.store.public_keys().unwrap();
        Self {
            identity: keys.identity_key,
            registration_id: keys.registration_id,
            signed: (
                keys.signed_pre_key.id,
                keys.signed_pre_key.public_key,
                keys.signed_pre_key.signature,
            ),
            pre_keys: keys.pre_keys.into_iter().collect(),
        }
    }

    /// `GET …/external/:sid/keys`: one prekey handed out, or nothing (PeerWave's 404).
    fn take(&mut self) -> Option<PreKeyBundle> {
        let pre_key = self.pre_keys.pop_front()?;
        Some(PreKeyBundle {
            registration_id: self.registration_id,
            device_id: 1,
            identity_key: self.identity,
            signed_pre_key_id: self.signed.0,
            signed_pre_key: self.signed.1,
            signed_pre_key_signature: self.signed.2,
            pre_key: Some(pre_key),
            kyber_pre_key: None,
        })
    }

    /// `GET …/prekeys`.
    fn listing(&self) -> String {
        let keys: Vec<Value> = self
            .pre_keys
            .iter()
            .map(|(id, k)| json!({"keyId": id, "publicKey": encode_base64(&k.serialize())}))
            .collect();
        json!({"count": keys.len(), "preKeys": keys}).to_string()
    }

    /// `POST …/prekeys`: appended.
    fn publish(&mut self, body: &str) -> String {
        let v: Value = serde_json::from_str(body).unwrap();
        for k in v["pre_keys"].as_array().unwrap() {
            let bytes = base64_decode(k["publicKey"].as_str().unwrap());
            let id = k["keyId"].as_u64().unwrap() as u32;
            self.pre_keys
                .push_back((id, PublicKey::from_bytes(&bytes).unwrap()));
        }
        let mut listing: Value = serde_json::from_str(&self.listing()).unwrap();
        listing["totalCount"] = listing["count"].take();
        listing.to_string()
    }
}

/// A PeerWave-style participant: ids from 0, a fresh session per answer.
struct PwParticipant {
    id: ParticipantId,
    store: ProtocolStore,
    key: [u8; 32],
    next_pre_key: usize,
}

impl PwParticipant {
    fn new(user: &str) -> Self {
        let mut store = ProtocolStore::with_identity(
            signal_guest_sdk::signal::KeyPair::generate(&mut TestRng),
            1234,
        );
        store.add_signed_pre_key(5, &mut TestRng);
        // Our store never issues id 0 itself; PeerWave's participants do.
        store.add_one_time_pre_keys(1, 10, &mut TestRng);
        let mut key = [0u8; 32];
        key[0] = user.as_bytes()[0];
        Self {
            id: ParticipantId::new(user.into(), "3".into()),
            store,
            key,
            next_pre_key: 0,
        }
    }

    /// G4 in PeerWave's shape: no device echo, string registration id, `keyId`/`publicKey`.
    fn bundle_json(&mut self) -> String {
        let keys = self.store.public_keys().unwrap();
        let (id, key) = keys.pre_keys[self.next_pre_key];
        self.next_pre_key += 1;
        let b64 = |k: &PublicKey| encode_base64(&k.serialize());
        json!({
            "identity_key": b64(&keys.identity_key),
            "registration_id": keys.registration_id.to_string(),
            "signed_pre_key": {"keyId": keys.signed_pre_key.id, "publicKey": b64(&keys.signed_pre_key.public_key),
                "signature": encode_base64(&keys.signed_pre_key.signature)},
            "one_time_pre_key": {"keyId": id, "publicKey": b64(&key)},
        })
        .to_string()
    }

    /// What the Flutter participant does on a broadcast request: fetch the guest's bundle,
    /// start a new session, encrypt `{meetingId, encryptedKey, timestamp}`; `None` when
    /// the guest's bundle is exhausted (PeerWave answers 404 and the participant is silent).
    fn answer(
        &mut self,
        guest: &mut GuestBundle,
        request_id: &str,
        plaintext: Value,
    ) -> Option<String> {
        let bundle = guest.take()?;
        self.store.forget("guest");
        self.store
            .process_bundle("guest", &bundle, &mut TestRng)
            .unwrap();
        let message = self
            .store
            .encrypt("guest", plaintext.to_string().as_bytes())
            .unwrap();
        Some(
            json!({
                "participant_user_id": self.id.user_id,
                "participant_device_id": 3,
                "meeting_id": MEETING,
                "ciphertext": encode_base64(message.serialized()),
                "messageType": message.message_type(),
                "request_id": request_id,
                "timestamp": 1,
            })
            .to_string(),
        )
    }

    fn key_plaintext(&self, now: Millis) -> Value {
        json!({"meetingId": MEETING, "encryptedKey": encode_base64(&self.key), "timestamp": now})
    }
}

fn config() -> ExchangeConfig {
    ExchangeConfig {
        profile: WireProfile::PeerWave,
        ..one_at_a_time()
    }
}

/// A registered guest with 30 published prekeys, the run started with `participants`, the
/// prekey count answered and the first bundle fetch pending.
fn started(participants: &[&PwParticipant]) -> (Harness, GuestBundle) {
    let state = GuestState::new(ProtocolStore::generate(&mut TestRng, 30));
    let server = GuestBundle::of(&state);
    let mut h = Harness::with_config(config(), state);
    h.feed(Event::Start);
    let list: Vec<Value> = participants
        .iter()
        .map(|p| json!({"user_id": p.id.user_id, "device_id": 3, "display_name": "x", "livekit_identity": "x"}))
        .collect();
    h.feed(Event::ParticipantsListed(Ok(
        json!({"participants": list, "count": list.len(), "room_active": true}).to_string(),
    )));
    assert_eq!(
        h.pre_key_calls,
        [None],
        "the count comes before anyone is asked"
    );
    h.feed(Event::ServerPreKeys(Ok(server.listing())));
    (h, server)
}

#[test]
fn prepared_in_the_lobby_with_the_prekeys_stocked_then_admission_only_sends() {
    let mut alice = PwParticipant::new("alice");
    let state = GuestState::new(ProtocolStore::generate(&mut TestRng, 30));
    let mut server = GuestBundle::of(&state);
    let mut h = Harness::with_config(config(), state);
    h.feed(Event::Prepare);
    let list = json!([{"user_id": alice.id.user_id, "device_id": 3, "display_name": "x", "livekit_identity": "x"}]);
    h.feed(Event::ParticipantsListed(Ok(
        json!({"participants": list, "count": 1, "room_active": true}).to_string(),
    )));
    assert_eq!(
        h.pre_key_calls,
        [None],
        "the prekeys are counted in the lobby too"
    );
    h.feed(Event::ServerPreKeys(Ok(server.listing())));
    serve(&mut h, &mut alice);
    assert!(h.sends.is_empty(), "nothing goes before admission");
    let mark = h.log.len();
    // Anyone may have drained the guest's bundle in the lobby: counted again, then sent on the
    // prepared session (no second bundle).
    h.feed(Event::Start);
    assert_eq!(h.log[mark..], ["count"]);
    h.feed(Event::ServerPreKeys(Ok(server.listing())));
    assert_eq!(h.fetches.len(), 1);
    assert!(h.log[mark..].contains(&"send"));
    let (to, _, request_id) = last_request(&h);
    assert_eq!(to, alice.id);
    let answer = alice
        .answer(&mut server, &request_id, alice.key_plaintext(h.now))
        .unwrap();
    h.receive(answer);
    assert_eq!(h.keys.len(), 1, "{:?}", h.dropped);
}

fn serve(h: &mut Harness, p: &mut PwParticipant) {
    assert_eq!(h.fetches.last().unwrap().1, p.id);
    let body = p.bundle_json();
    h.feed(Event::BundleFetched {
        participant: p.id.clone(),
        result: Ok(body),
    });
}

/// The last request's envelope and its request id.
fn last_request(h: &Harness) -> (ParticipantId, Value, String) {
    let (_, to, body) = h.sends.last().unwrap().clone();
    let v: Value = serde_json::from_str(&body).unwrap();
    let id = v["request_id"].as_str().unwrap().to_owned();
    (to, v, id)
}

#[test]
fn every_participant_answers_and_only_the_one_asked_counts() {
    let mut alice = PwParticipant::new("alice");
    let mut bob = PwParticipant::new("bob");
    let (mut h, mut server) = started(&[&alice, &bob]);
    serve(&mut h, &mut alice);
    let (to, envelope, request_id) = last_request(&h);
    assert_eq!(to, alice.id);
    assert_eq!(envelope["participant_device_id"], 3);
    assert_eq!(
        envelope["messageType"], 3,
        "a new session: a PreKey message"
    );
    assert!(envelope.get("type").is_none() && envelope.get("encrypted_message").is_none());
    // The request decrypts for alice and reads as PeerWave's own guests write it.
    let bytes = base64_decode(envelope["ciphertext"].as_str().unwrap());
    let message = signal_guest_sdk::signal::CiphertextMessage::parse(Some(3), &bytes).unwrap();
    let plain = alice
        .store
        .decrypt("guest-request", &message, &mut TestRng)
        .unwrap();
    let request: Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!(request["requesterId"], GUEST);
    assert_eq!(request["meetingId"], MEETING);
    assert_eq!(request["timestamp"], "2023-11-14T22:13:20.000Z");
    assert_eq!(request["request_id"], request_id.as_str());

    // The server broadcasts: bob answers first, with the request meant for alice.
    let before = h.state_bytes();
    let from_bob = bob
        .answer(&mut server, &request_id, bob.key_plaintext(h.now))
        .unwrap();
    h.receive(from_bob);
    assert_eq!(
        h.dropped,
        [DropReason::UnknownSender],
        "bob was never asked"
    );
    assert_eq!(h.state_bytes(), before, "dropped before decrypting");
    let from_alice = alice
        .answer(&mut server, &request_id, alice.key_plaintext(h.now))
        .unwrap();
    h.receive(from_alice.clone());
    assert_eq!(h.keys.len(), 1, "{:?}", h.dropped);
    assert_eq!(h.keys[0].0.expose_bytes(), &alice.key);
    assert_eq!((h.keys[0].1, &h.keys[0].2), (0, &alice.id));
    // A replay of the accepted answer, and a second answer to the same request, are refused.
    h.receive(from_alice);
    let again = alice
        .answer(&mut server, &request_id, alice.key_plaintext(h.now))
        .unwrap();
    h.receive(again);
    assert_eq!(
        h.dropped[1..],
        [DropReason::AlreadyAnswered, DropReason::AlreadyAnswered]
    );
    assert_eq!(h.keys.len(), 1);
}

#[test]
fn answers_that_fail_a_check_are_dropped_and_change_nothing() {
    let mut alice = PwParticipant::new("alice");
    let (mut h, mut server) = started(&[&alice]);
    serve(&mut h, &mut alice);
    let (_, _, request_id) = last_request(&h);
    let now = h.now;
    let plain = alice.key_plaintext(now);
    let cases: Vec<(Value, Option<&str>, DropReason)> = vec![
        (
            json!({"meetingId": "other", "encryptedKey": plain["encryptedKey"], "timestamp": now}),
            None,
            DropReason::WrongMeeting,
        ),
        (
            json!({"meetingId": MEETING, "encryptedKey": plain["encryptedKey"], "timestamp": now - 121_000}),
            None,
            DropReason::StaleTimestamp,
        ),
        (
            json!({"meetingId": MEETING, "encryptedKey": encode_base64(&[1u8; 31]), "timestamp": now}),
            None,
            DropReason::BadPlaintext(messages::Invalid {
                field: "encryptedKey",
                problem: "not 32 bytes",
            }),
        ),
        (plain.clone(), Some("not-ours"), DropReason::UnknownRequest),
    ];
    for (plaintext, id, reason) in cases {
        let before = h.state_bytes();
        let event = alice
            .answer(&mut server, id.unwrap_or(&request_id), plaintext)
            .unwrap();
        h.receive(event);
        assert_eq!(h.dropped.last(), Some(&reason));
        assert_eq!(h.state_bytes(), before, "{reason:?} changed the state");
    }
    // An impostor with alice's ids but another identity than her bundle's.
    let mut impostor = PwParticipant::new("alice");
    let event = impostor
        .answer(&mut server, &request_id, impostor.key_plaintext(now))
        .unwrap();
    h.receive(event);
    assert!(
        matches!(h.dropped.last(), Some(DropReason::DecryptFailed(_))),
        "{:?}",
        h.dropped
    );
    // PeerWave's plaintext "message type 0" is never taken.
    let zero = json!({"participant_user_id": "alice", "participant_device_id": 3,
        "ciphertext": encode_base64(&alice.key), "messageType": 0, "request_id": request_id});
    h.receive(zero.to_string());
    assert!(matches!(
        h.dropped.last(),
        Some(DropReason::MalformedEvent(_))
    ));
    assert!(h.keys.is_empty());
    // The real answer still works afterwards.
    let event = alice
        .answer(&mut server, &request_id, alice.key_plaintext(now))
        .unwrap();
    h.receive(event);
    assert_eq!(h.keys.len(), 1, "{:?}", h.dropped);
}

#[test]
fn a_silent_participant_is_rotated_after_five_seconds() {
    let mut silent = PwParticipant::new("silent");
    let mut bob = PwParticipant::new("bob");
    let (mut h, mut server) = started(&[&silent, &bob]);
    serve(&mut h, &mut silent);
    let (_, _, first) = last_request(&h);
    // Bob answers the request for the silent one at once: not his to answer.
    let early = bob
        .answer(&mut server, &first, bob.key_plaintext(h.now))
        .unwrap();
    h.receive(early);
    h.advance(4_999);
    assert_eq!(h.sends.len(), 1);
    h.advance(1);
    serve(&mut h, &mut bob);
    let (to, _, second) = last_request(&h);
    assert_eq!(to, bob.id);
    // The silent one wakes up and answers bob's request: asked before, but not for this one.
    let late = silent
        .answer(&mut server, &second, silent.key_plaintext(h.now))
        .unwrap();
    h.receive(late);
    assert_eq!(h.dropped.last(), Some(&DropReason::WrongParticipant));
    let answer = bob
        .answer(&mut server, &second, bob.key_plaintext(h.now))
        .unwrap();
    h.receive(answer);
    assert_eq!(h.keys.len(), 1, "{:?}", h.dropped);
    assert_eq!(h.keys[0].2, bob.id);
}

#[test]
fn prekeys_are_topped_up_before_anyone_is_asked() {
    let participants: Vec<PwParticipant> = (0..12)
        .map(|i| PwParticipant::new(&format!("p{i}")))
        .collect();
    let refs: Vec<&PwParticipant> = participants.iter().collect();
    let state = GuestState::new(ProtocolStore::generate(&mut TestRng, 30));
    let mut server = GuestBundle::of(&state);
    // Earlier requests used up all but prekeys 26..=30.
    for _ in 0..25 {
        server.take();
    }
    let mut h = Harness::with_config(config(), state);
    h.feed(Event::Start);
    let list: Vec<Value> = refs
        .iter()
        .map(|p| json!({"user_id": p.id.user_id, "device_id": 3}))
        .collect();
    h.feed(Event::ParticipantsListed(Ok(
        json!({ "participants": list }).to_string(),
    )));
    h.feed(Event::ServerPreKeys(Ok(server.listing())));
    // 12 participants × 3 attempts = 36 wanted; 5 held, 31 published, ids after 30.
    let body = h.pre_key_calls[1].clone().expect("a publication");
    let published: Value = serde_json::from_str(&body).unwrap();
    let ids: Vec<u64> = published["pre_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["keyId"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, (31..=61).collect::<Vec<u64>>());
    assert!(!body.contains("serialized") && !body.contains("private"));
    let local: Vec<u32> = h.ex.state().store.one_time_pre_key_ids().collect();
    assert_eq!(
        local,
        (26..=61).collect::<Vec<u32>>(),
        "handed-out ones forgotten"
    );
    let persist_at = h.log.iter().rposition(|a| *a == "persist").unwrap();
    let publish_at = h.log.iter().position(|a| *a == "publish").unwrap();
    assert!(persist_at < publish_at, "stored before published");
    assert!(h.fetches.is_empty(), "nobody asked before the publication");
    let answer = server.publish(&body);
    h.feed(Event::ServerPreKeys(Ok(answer)));
    assert_eq!(h.fetches.len(), 1);
    assert_eq!(server.pre_keys.len(), 36);
}

#[test]
fn a_failed_count_still_asks_the_participants() {
    let mut alice = PwParticipant::new("alice");
    let state = GuestState::new(ProtocolStore::generate(&mut TestRng, 30));
    let mut h = Harness::with_config(config(), state);
    h.feed(Event::Start);
    h.feed(Event::ParticipantsListed(Ok(json!({"participants": [
        {"user_id": "alice", "device_id": 3}]})
    .to_string())));
    h.feed(Event::ServerPreKeys(Err(HttpFailure {
        status: 500,
        retry_after_s: None,
    })));
    assert_eq!(h.pre_key_calls.len(), 1, "no publication without a count");
    serve(&mut h, &mut alice);
    assert_eq!(h.sends.len(), 1);
    // A stray prekey answer later changes nothing.
    h.feed(Event::ServerPreKeys(Ok(
        r#"{"count":0,"preKeys":[]}"#.into()
    )));
    assert_eq!(h.pre_key_calls.len(), 1);
}

#[test]
fn after_the_key_a_hedged_request_is_closed_before_anything_is_decrypted() {
    let mut alice = PwParticipant::new("alice");
    let mut bob = PwParticipant::new("bob");
    let state = GuestState::new(ProtocolStore::generate(&mut TestRng, 30));
    let mut server = GuestBundle::of(&state);
    let config = ExchangeConfig {
        hedge_after_ms: Some(1_500),
        ..config()
    };
    let mut h = Harness::with_config(config, state);
    h.feed(Event::Start);
    let list = json!([
        {"user_id": alice.id.user_id, "device_id": 3, "display_name": "a", "livekit_identity": "a"},
        {"user_id": bob.id.user_id, "device_id": 3, "display_name": "b", "livekit_identity": "b"},
    ]);
    h.feed(Event::ParticipantsListed(Ok(
        json!({"participants": list, "count": 2, "room_active": true}).to_string(),
    )));
    h.feed(Event::ServerPreKeys(Ok(server.listing())));
    serve(&mut h, &mut alice);
    let (_, _, to_alice) = last_request(&h);
    h.advance(1_500);
    serve(&mut h, &mut bob);
    let (to, _, to_bob) = last_request(&h);
    assert_eq!(to, bob.id, "bob asked too (hedging)");
    let from_alice = alice
        .answer(&mut server, &to_alice, alice.key_plaintext(h.now))
        .unwrap();
    h.receive(from_alice);
    assert_eq!(h.keys.len(), 1, "{:?}", h.dropped);
    // Bob's request was open until now. A forged answer to it (junk that would fail to
    // decrypt) is refused for what it is, before the Signal engine sees it.
    let real = bob
        .answer(&mut server, &to_bob, bob.key_plaintext(h.now))
        .unwrap();
    let mut forged: Value = serde_json::from_str(&real).unwrap();
    forged["ciphertext"] = encode_base64(&[0x33; 200]).into();
    h.receive(forged.to_string());
    h.receive(real);
    assert_eq!(
        h.dropped,
        [
            DropReason::KeyAlreadyDelivered,
            DropReason::KeyAlreadyDelivered
        ]
    );
    assert_eq!(h.keys.len(), 1);
}
