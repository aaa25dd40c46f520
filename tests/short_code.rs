//! The short verification code end to end under the fake clock: the participant side here
//! follows docs/contract.md §10 (commitment in the request, its nonce in the answer, the
//! guest's reveal checked against the commitment).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]

mod common;

use common::*;
use serde_json::{json, Value};
use signal_guest_sdk::exchange::messages::encode_base64;
use signal_guest_sdk::exchange::sas::{self, CodeInputs, SasNonce, ShortCode};
use signal_guest_sdk::exchange::*;
use signal_guest_sdk::signal::{CiphertextMessage, ProtocolStore, PublicKey};

/// A participant device that takes part in the code.
struct Verifier {
    p: Participant,
    commitment: Vec<u8>,
    request_id: String,
    nonce: SasNonce,
    code: Option<ShortCode>,
    refused_reveals: usize,
}

impl Verifier {
    fn new(user: &str) -> Self {
        Self {
            p: Participant::new(user),
            commitment: Vec::new(),
            request_id: String::new(),
            nonce: SasNonce([7; 32]),
            code: None,
            refused_reveals: 0,
        }
    }

    fn decrypt(&mut self, body: &str) -> Value {
        let v: Value = serde_json::from_str(body).unwrap();
        let bytes = base64_decode(v["encrypted_message"].as_str().unwrap());
        let m =
            CiphertextMessage::parse(v["message_type"].as_u64().map(|t| t as u32), &bytes).unwrap();
        serde_json::from_slice(&self.p.store.decrypt("guest", &m, &mut TestRng).unwrap()).unwrap()
    }

    /// Takes the request; answers with the key and a fresh nonce.
    fn answer(&mut self, request_body: &str, now: Millis, nonce_byte: u8) -> String {
        let request = self.decrypt(request_body);
        assert_eq!(request["type"], "guest:meeting_e2ee_key_request");
        self.commitment = base64_decode(request["sas_commitment"].as_str().unwrap());
        self.request_id = request["request_id"].as_str().unwrap().to_owned();
        self.nonce = SasNonce([nonce_byte; 32]);
        let mut response = self.p.response_plaintext(&self.request_id, now);
        response["sas_nonce"] = json!(encode_base64(&self.nonce.0));
        self.p.event(&response)
    }

    /// Takes the guest's reveal: computes the code, or refuses a nonce that does not match.
    fn reveal(&mut self, body: &str, guest_session: &str) {
        let reveal = self.decrypt(body);
        assert_eq!(reveal["type"], "guest:meeting_e2ee_sas_reveal");
        assert_eq!(reveal["request_id"], self.request_id.as_str());
        let revealed = SasNonce(
            base64_decode(reveal["sas_nonce"].as_str().unwrap())
                .try_into()
                .unwrap(),
        );
        self.code = None;
        if !sas::reveal_matches(&self.commitment, &revealed) {
            self.refused_reveals += 1;
            return;
        }
        let guest_identity: PublicKey = *self
            .p
            .store
            .session("guest")
            .unwrap()
            .current()
            .unwrap()
            .remote_identity();
        let guest_id = format!("guest:{guest_session}");
        let participant_id = format!("{}:{}", self.p.id.user_id, self.p.id.device_id);
        self.code = Some(sas::short_code(&CodeInputs {
            guest_nonce: &revealed,
            participant_nonce: &self.nonce,
            guest_identity: &guest_identity,
            participant_identity: &self.p.store.identity_key(),
            guest_id: &guest_id,
            participant_id: &participant_id,
            meeting_id: MEETING,
        }));
    }
}

fn exchange_with(h: &mut Harness, v: &mut Verifier, nonce_byte: u8) {
    let request = h.sends.last().unwrap().2.clone();
    let answer = v.answer(&request, h.now, nonce_byte);
    h.receive(answer);
    let reveal = h.sends.last().unwrap().2.clone();
    v.reveal(&reveal, GUEST);
}

/// A guest that asked alice, and alice's answer with the nonce `nonce_byte`, not yet fed.
fn asked_and_answered(nonce_byte: u8) -> (Verifier, Harness, String) {
    let mut v = Verifier::new("alice");
    let mut h = Harness::new();
    h.start(&[&v.p]);
    h.serve_bundle(&mut v.p);
    let request = h.sends.last().unwrap().2.clone();
    let answer = v.answer(&request, h.now, nonce_byte);
    (v, h, answer)
}

#[test]
fn both_sides_get_the_same_code_and_again_after_a_retry() {
    let mut v = Verifier::new("alice");
    let mut h = Harness::new();
    h.start(&[&v.p]);
    h.serve_bundle(&mut v.p);
    exchange_with(&mut h, &mut v, 1);
    let guest_code =
        h.ex.delivered()
            .unwrap()
            .short_code
            .clone()
            .expect("a code");
    assert_eq!(Some(guest_code.clone()), v.code);
    assert_eq!(guest_code.digits.len(), 14);
    // A replay of the answer changes nothing (dropped as already answered).
    let request_count = h.sends.len();
    let replay = v.p.event(&{
        let mut r = v.p.response_plaintext(&v.request_id, h.now);
        r["sas_nonce"] = json!(encode_base64(&[9u8; 32]));
        r
    });
    h.receive(replay);
    assert_eq!(h.dropped.last(), Some(&DropReason::AlreadyAnswered));
    assert_eq!(
        h.ex.delivered().unwrap().short_code.as_ref(),
        Some(&guest_code)
    );
    assert_eq!(h.sends.len(), request_count, "no second reveal");
    // "Try again" after a provider failure: new nonces, and the two sides agree again.
    h.feed(Event::DeliveryFailed);
    h.feed(Event::Start);
    h.feed(Event::ParticipantsListed(Ok(
        json!([{"user_id": "alice", "device_id": "1"}]).to_string(),
    )));
    exchange_with(&mut h, &mut v, 2);
    let second = h.ex.delivered().unwrap().short_code.clone().unwrap();
    assert_eq!(Some(second.clone()), v.code);
    assert_ne!(second, guest_code, "fresh randomness each exchange");
}

#[test]
fn a_server_in_the_middle_leaves_different_codes_even_with_the_real_key() {
    // The server swaps alice's bundle for its own (the impostor), and poses as a guest to alice.
    let mut alice = Verifier::new("alice");
    let mut impostor = Verifier::new("alice");
    impostor.p.key = alice.p.key; // it passes the real key on: check values match
    let mut h = Harness::new();
    h.start(&[&impostor.p]);
    h.serve_bundle(&mut impostor.p);
    exchange_with(&mut h, &mut impostor, 3);
    let guest_code = h.ex.delivered().unwrap().short_code.clone().unwrap();

    // Alice meanwhile talks to the impostor's guest identity.
    let mut fake_guest =
        Harness::with_state(GuestState::new(ProtocolStore::generate(&mut TestRng, 5)));
    fake_guest.start(&[&alice.p]);
    fake_guest.serve_bundle(&mut alice.p);
    exchange_with(&mut fake_guest, &mut alice, 3);

    assert_eq!(
        h.keys[0].0.check_value(),
        fake_guest.keys[0].0.check_value(),
        "the key check values match"
    );
    assert_ne!(Some(guest_code), alice.code, "but the codes do not");
    assert_ne!(
        h.ex.delivered().unwrap().safety_number,
        fake_guest.ex.delivered().unwrap().safety_number
    );
}

#[test]
fn a_reveal_that_does_not_match_its_commitment_is_refused() {
    let (mut v, mut h, answer) = asked_and_answered(4);
    // Someone changed the commitment the participant holds (or the reveal): no code.
    v.commitment[0] ^= 1;
    h.receive(answer);
    let reveal = h.sends.last().unwrap().2.clone();
    v.reveal(&reveal, GUEST);
    assert_eq!(v.code, None);
    assert_eq!(v.refused_reveals, 1);
}

#[test]
fn a_participant_that_sends_no_nonce_gets_no_reveal_and_there_is_no_code() {
    let mut p = Participant::new("bob");
    let mut h = Harness::new();
    h.start(&[&p]);
    h.serve_bundle(&mut p);
    h.deliver_last_request(&mut p);
    let sends = h.sends.len();
    h.receive(p.answer_last(h.now));
    assert_eq!(h.keys.len(), 1);
    assert_eq!(h.ex.delivered().unwrap().short_code, None);
    assert_eq!(h.sends.len(), sends, "nothing more is sent");
}

#[test]
fn the_code_and_its_reveal_come_after_the_key_is_handed_over() {
    let (mut v, mut h, answer) = asked_and_answered(5);
    // Fed by hand, without the harness's settling: nothing of the code is on the key's way.
    let actions =
        h.ex.handle(Event::MessageReceived(answer), h.now, &mut TestRng);
    assert!(matches!(actions.first(), Some(Action::DeliverKey { .. })));
    assert!(
        !actions.iter().any(|a| matches!(a, Action::Send { .. })),
        "no reveal before the key is in the provider"
    );
    assert_eq!(h.ex.delivered().unwrap().short_code, None);
    let settled = h.ex.handle(Event::KeyHandedOver, h.now, &mut TestRng);
    // The reveal moved the sending chain: the state is stored before it goes.
    assert!(matches!(
        settled.as_slice(),
        [Action::PersistState, Action::Send { .. }]
    ));
    let Some(Action::Send { body, .. }) = settled.last() else {
        unreachable!()
    };
    v.reveal(body, GUEST);
    let code = h.ex.delivered().unwrap().short_code.clone();
    assert!(code.is_some());
    assert_eq!(code, v.code);
    assert_eq!(h.ex.delivered().unwrap().safety_number.len(), 60);
    // Handed over once: a second notice settles nothing more and sends nothing.
    assert!(h
        .ex
        .handle(Event::KeyHandedOver, h.now, &mut TestRng)
        .is_empty());
    assert_eq!(h.ex.delivered().unwrap().short_code, code);
}

#[test]
fn a_key_the_provider_refused_sends_no_reveal() {
    let (_, mut h, answer) = asked_and_answered(6);
    h.ex.handle(Event::MessageReceived(answer), h.now, &mut TestRng);
    h.ex.handle(Event::DeliveryFailed, h.now, &mut TestRng);
    assert!(h
        .ex
        .handle(Event::KeyHandedOver, h.now, &mut TestRng)
        .is_empty());
}
