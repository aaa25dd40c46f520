//! Preparing in the lobby under the fake clock: while the call waits for the host, the
//! exchange lists the participants, fetches one bundle, sets up the session and seals the
//! request, and sends nothing; at admission it only sends. A request held past its minute
//! is sealed anew (on the same session), a participant that left is replaced (one more
//! bundle at most), and a failure while preparing is silent.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]

mod common;

use common::*;
use serde_json::{json, Value};
use signal_guest_sdk::exchange::*;

const HEDGE: Millis = 1_500;

fn list(participants: &[&Participant]) -> Event {
    let list: Vec<Value> = participants
        .iter()
        .map(|p| json!({"user_id": p.id.user_id, "device_id": p.id.device_id, "display_name": "x"}))
        .collect();
    Event::ParticipantsListed(Ok(Value::Array(list).to_string()))
}

/// `Event::Prepare`, then the list: returns the index (in `ps`) of the participant whose
/// bundle is being fetched.
fn prepare(h: &mut Harness, ps: &[&Participant]) -> usize {
    h.feed(Event::Prepare);
    assert_eq!(h.log, ["progress", "list"]);
    h.feed(list(ps));
    let fetched = &h.fetches.last().expect("a bundle fetch").1;
    ps.iter().position(|p| p.id == *fetched).unwrap()
}

/// The actions since `mark` in the log.
fn since(h: &Harness, mark: usize) -> Vec<&'static str> {
    h.log[mark..].to_vec()
}

#[test]
fn prepared_in_the_lobby_then_admission_only_sends() {
    let mut ps = [Participant::new_v4("alice"), Participant::new_v4("bob")];
    let mut h = Harness::hedged();
    let first = prepare(&mut h, &[&ps[0], &ps[1]]);
    h.now += 20;
    h.serve_bundle(&mut ps[first]);
    assert!(
        h.sends.is_empty(),
        "nothing goes to a participant before admission"
    );
    let sealed_at = h.now;
    // No participant clock runs in the lobby; only the refresh of the sealed request.
    assert_eq!(h.ex.poll_timeout(), Some(sealed_at + PREPARED_MAX_AGE_MS));
    h.advance(45_000);
    assert!(h.sends.is_empty());
    assert_eq!(
        (h.list_requests, h.fetches.len()),
        (1, 1),
        "no hedge, no new fetch"
    );

    let mark = h.log.len();
    h.feed(Event::Start);
    assert_eq!(
        since(&h, mark),
        ["send", "progress"],
        "admission only sends"
    );
    // The participant's time runs from admission.
    assert_eq!(h.ex.poll_timeout(), Some(h.now + HEDGE));
    let request = h.deliver_last_request(&mut ps[first]);
    assert_eq!(request["timestamp"], json!(sealed_at));
    h.now += 30;
    let answer = ps[first].answer_last(h.now);
    h.receive(answer);
    assert_eq!(h.keys.len(), 1, "{:?}", h.dropped);
    assert_eq!(h.keys[0].2, ps[first].id);
    let delivered = h.ex.delivered().unwrap();
    assert_eq!(delivered.session_version, 4);
    // Made in the lobby, and the one both sides compute.
    let participant_side = signal_guest_sdk::signal::fingerprint::displayable_fingerprint(
        5200,
        format!("{}:1", ps[first].id.user_id).as_bytes(),
        &ps[first].store.identity_key(),
        format!("guest:{GUEST}").as_bytes(),
        &h.ex.state().store.identity_key(),
    );
    assert_eq!(delivered.safety_number, participant_side);
}

#[test]
fn admission_while_the_bundle_is_on_its_way_sends_as_soon_as_it_is_in() {
    let mut ps = [Participant::new("alice"), Participant::new("bob")];
    let mut h = Harness::hedged();
    let first = prepare(&mut h, &[&ps[0], &ps[1]]);
    let fetched_at = h.now;
    h.now += 5;
    h.feed(Event::Start);
    assert!(h.sends.is_empty());
    // The fetch's own clock runs on (its bundle is on the way).
    assert_eq!(h.ex.poll_timeout(), Some(fetched_at + HEDGE));
    h.now += 15;
    h.serve_bundle(&mut ps[first]);
    assert_eq!(h.sends.len(), 1);
    assert_eq!(h.ex.poll_timeout(), Some(h.now + HEDGE));
    h.deliver_last_request(&mut ps[first]);
    let answer = ps[first].answer_last(h.now);
    h.receive(answer);
    assert_eq!(h.keys.len(), 1, "{:?}", h.dropped);
}

#[test]
fn a_request_held_a_minute_is_sealed_anew_on_the_same_session() {
    let mut ps = [Participant::new("alice"), Participant::new("bob")];
    let mut h = Harness::hedged();
    let first = prepare(&mut h, &[&ps[0], &ps[1]]);
    h.serve_bundle(&mut ps[first]);
    let first_seal = h.now;
    h.advance(PREPARED_MAX_AGE_MS);
    assert_eq!(h.list_requests, 2, "the list is fetched again");
    h.feed(list(&[&ps[0], &ps[1]]));
    assert_eq!(
        h.fetches.len(),
        1,
        "same session: no bundle, no one-time prekey"
    );
    assert!(h.sends.is_empty());
    assert_eq!(
        h.ex.poll_timeout(),
        Some(first_seal + 2 * PREPARED_MAX_AGE_MS)
    );
    h.now += 10_000;
    h.feed(Event::Start);
    assert_eq!(h.sends.len(), 1);
    let request = h.deliver_last_request(&mut ps[first]);
    assert_eq!(
        request["timestamp"],
        json!(first_seal + PREPARED_MAX_AGE_MS),
        "the request sent is the new one"
    );
    let answer = ps[first].answer_last(h.now);
    h.receive(answer);
    assert_eq!(h.keys.len(), 1, "{:?}", h.dropped);
}

#[test]
fn a_participant_that_left_is_replaced_with_one_more_bundle() {
    let mut ps = [Participant::new("alice"), Participant::new("bob")];
    let mut h = Harness::hedged();
    let first = prepare(&mut h, &[&ps[0], &ps[1]]);
    let other = 1 - first;
    h.serve_bundle(&mut ps[first]);
    h.advance(PREPARED_MAX_AGE_MS);
    h.feed(list(&[&ps[other]]));
    assert_eq!(h.fetches.len(), 2);
    assert_eq!(h.fetches[1].1, ps[other].id);
    h.serve_bundle(&mut ps[other]);
    assert!(h.sends.is_empty());
    h.feed(Event::Start);
    assert_eq!(h.sends.len(), 1, "only the new request goes");
    assert_eq!(h.sends[0].1, ps[other].id);
    h.deliver_last_request(&mut ps[other]);
    let answer = ps[other].answer_last(h.now);
    h.receive(answer);
    assert_eq!(h.keys.len(), 1, "{:?}", h.dropped);
    assert_eq!(h.keys[0].2, ps[other].id);
}

#[test]
fn at_most_two_bundles_in_the_lobby_then_admission_takes_the_ordinary_path() {
    let mut ps = [
        Participant::new("alice"),
        Participant::new("bob"),
        Participant::new("carol"),
    ];
    let mut h = Harness::hedged();
    let first = prepare(&mut h, &[&ps[0], &ps[1], &ps[2]]);
    h.serve_bundle(&mut ps[first]);
    // The first leaves: one more bundle (the second, in the list's order).
    h.advance(PREPARED_MAX_AGE_MS);
    let rest: Vec<&Participant> = (0..3).filter(|&i| i != first).map(|i| &ps[i]).collect();
    h.feed(list(&rest));
    assert_eq!(h.fetches.len(), 2);
    let second = ps.iter().position(|p| p.id == h.fetches[1].1).unwrap();
    h.serve_bundle(&mut ps[second]);
    // It leaves too: a third bundle is not fetched in the lobby.
    h.advance(PREPARED_MAX_AGE_MS);
    let third = 3 - first - second;
    h.feed(list(&[&ps[third]]));
    assert_eq!(h.fetches.len(), HELD_BUNDLES_MAX as usize);
    assert_eq!(
        h.ex.poll_timeout(),
        None,
        "preparing stopped: no more lists"
    );
    assert!(h.failed.is_none());
    // Admission: the ordinary path, from the list.
    let lists = h.list_requests;
    h.feed(Event::Start);
    assert_eq!(h.list_requests, lists + 1);
    h.feed(list(&[&ps[third]]));
    assert_eq!(h.fetches.last().unwrap().1, ps[third].id);
    h.serve_bundle(&mut ps[third]);
    assert_eq!(h.sends.len(), 1);
    h.deliver_last_request(&mut ps[third]);
    let answer = ps[third].answer_last(h.now);
    h.receive(answer);
    assert_eq!(h.keys.len(), 1, "{:?}", h.dropped);
}

#[test]
fn a_failure_while_preparing_is_silent_and_admission_starts_afresh() {
    let mut alice = Participant::new("alice");
    let mut h = Harness::hedged();
    h.feed(Event::Prepare);
    // Nobody in the meeting yet.
    h.feed(Event::ParticipantsListed(Ok("[]".into())));
    assert!(h.failed.is_none(), "the page hears nothing of it");
    assert_eq!(h.ex.phase(), Phase::Idle);
    h.feed(Event::Start);
    assert_eq!(h.list_requests, 2);
    h.feed(list(&[&alice]));
    h.serve_bundle(&mut alice);
    assert_eq!(h.sends.len(), 1);
}

#[test]
fn a_timer_that_fired_late_does_not_send_a_stale_request() {
    // A background tab's timers may run a minute late: admission finds the request old.
    let mut ps = [Participant::new("alice"), Participant::new("bob")];
    let mut h = Harness::hedged();
    let first = prepare(&mut h, &[&ps[0], &ps[1]]);
    h.serve_bundle(&mut ps[first]);
    h.now += PREPARED_MAX_AGE_MS + 30_000;
    h.feed(Event::Start);
    assert!(h.sends.is_empty());
    assert_eq!(h.list_requests, 2, "sealed anew from a new list");
    h.feed(list(&[&ps[0], &ps[1]]));
    assert_eq!(h.fetches.len(), 1, "on the same session");
    assert_eq!(h.sends.len(), 1);
    let request = h.deliver_last_request(&mut ps[first]);
    assert_eq!(request["timestamp"], json!(h.now));
}

#[test]
fn hedging_waits_for_admission() {
    let mut ps = [Participant::new("alice"), Participant::new("bob")];
    let mut h = Harness::hedged();
    let first = prepare(&mut h, &[&ps[0], &ps[1]]);
    h.serve_bundle(&mut ps[first]);
    h.advance(30_000);
    assert_eq!(h.fetches.len(), 1, "no company in the lobby");
    h.feed(Event::Start);
    h.advance(HEDGE - 1);
    assert_eq!(h.fetches.len(), 1);
    h.advance(1);
    assert_eq!(
        h.fetches.len(),
        2,
        "the next one is asked 1.5 s after admission"
    );
    assert_ne!(h.fetches[1].1, ps[first].id);
}

#[test]
fn a_second_prepare_or_an_answer_before_admission_changes_nothing() {
    let mut ps = [Participant::new("alice"), Participant::new("bob")];
    let mut h = Harness::hedged();
    let first = prepare(&mut h, &[&ps[0], &ps[1]]);
    h.serve_bundle(&mut ps[first]);
    let mark = h.log.len();
    h.feed(Event::Prepare);
    assert_eq!(since(&h, mark), Vec::<&str>::new());
    // A forged answer before anything was sent comes from nobody the guest asked.
    let forged = json!({
        "participant_user_id": ps[first].id.user_id,
        "participant_device_id": ps[first].id.device_id,
        "type": "participant:meeting_e2ee_key_response",
        "encrypted_message": "AAAA",
        "message_type": 3,
        "timestamp": 0,
    });
    h.receive(forged.to_string());
    assert!(matches!(h.dropped.last(), Some(DropReason::UnknownSender)));
    assert!(h.keys.is_empty());
}
