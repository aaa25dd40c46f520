//! The key exchange state machine under a fake clock, against participants that run our own
//! engine (the real peers are exercised in `interop/` and the browser suites).
// Test helpers unwrap: a panic here is a failed test. `pub` helpers are shared between
// test files through `mod common`.
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
use signal_guest_sdk::exchange::*;
use signal_guest_sdk::signal::ProtocolStore;

#[test]
fn happy_path() {
    let mut alice = Participant::new("alice");
    let mut h = Harness::new();
    h.start(&[&alice]);
    assert_eq!(h.list_requests, 1);
    h.serve_bundle(&mut alice);
    let request = h.deliver_last_request(&mut alice);
    assert_eq!(request["meeting_id"], MEETING);
    assert_eq!(request["guest_session_id"], GUEST);
    assert_eq!(request["timestamp"], T0);
    assert_eq!(
        request["request_id"].as_str().unwrap().len(),
        22,
        "16 bytes, base64url unpadded"
    );
    h.now += 300;
    let answer = alice.answer_last(h.now);
    h.receive(answer);
    assert_eq!(h.keys.len(), 1);
    assert_eq!(h.keys[0].0.expose_bytes(), &alice.key);
    assert_eq!(h.keys[0].2, alice.id);
    assert_eq!(h.ex.phase(), Phase::Delivered);
    assert!(h.dropped.is_empty(), "{:?}", h.dropped);
    assert!(matches!(
        h.progress.last(),
        Some(Progress::KeyReceived { .. })
    ));
    // The timer armed for alice fires later and changes nothing.
    h.advance(10_000);
    assert!(h.failed.is_none());
}

#[test]
fn silent_first_participant_rotates_at_exactly_five_seconds() {
    let mut silent = Participant::new("silent");
    let mut bob = Participant::new("bob");
    let mut h = Harness::new();
    h.start(&[&silent, &bob]);
    h.serve_bundle(&mut silent);
    h.deliver_last_request(&mut silent);
    let first_request_at = h.sends[0].0;
    h.advance(4_999);
    assert_eq!(
        h.fetches.len(),
        1,
        "still waiting for the first participant"
    );
    h.advance(1);
    assert_eq!(
        h.fetches.last().unwrap(),
        &(first_request_at + 5_000, bob.id.clone())
    );
    assert!(h.progress.iter().any(|p| matches!(p,
        Progress::Rotating { from, to, reason: AttemptFailure::Timeout } if *from == silent.id && *to == bob.id)));
    h.serve_bundle(&mut bob);
    assert_eq!(h.sends.last().unwrap().0, T0 + 5_000);
    h.deliver_last_request(&mut bob);
    h.receive(bob.answer_last(h.now));
    assert_eq!(h.keys[0].2, bob.id);
}

#[test]
fn the_deadline_runs_from_the_request_not_from_the_bundle_fetch() {
    let mut slow_fetch = Participant::new("slow");
    let b = Participant::new("b");
    let mut h = Harness::new();
    h.start(&[&slow_fetch, &b]);
    // The bundle takes 3 s to arrive; the participant still gets 5 s after the request.
    h.advance(3_000);
    h.serve_bundle(&mut slow_fetch);
    let request_at = h.sends.last().unwrap().0;
    assert_eq!(request_at, T0 + 3_000);
    h.advance(4_999);
    assert_eq!(h.fetches.len(), 1, "still waiting for the answer");
    h.advance(1);
    assert_eq!(
        h.fetches.last().unwrap(),
        &(request_at + 5_000, b.id.clone())
    );
}

#[test]
fn a_hanging_bundle_fetch_times_out() {
    let a = Participant::new("a");
    let b = Participant::new("b");
    let mut h = Harness::new();
    h.start(&[&a, &b]);
    h.advance(5_000);
    assert_eq!(h.fetches.last().unwrap(), &(T0 + 5_000, b.id.clone()));
    // The late bundle is ignored.
    let mut a = a;
    let late = a.bundle_json();
    h.feed(Event::BundleFetched {
        participant: a.id.clone(),
        result: Ok(late),
    });
    assert_eq!(h.dropped.last(), Some(&DropReason::StaleBundle));
}

#[test]
fn a_bundle_fetch_aborted_at_the_deadline_is_a_timeout_whichever_the_driver_hears_first() {
    // The browser aborts the fetch after the participant's timeout too: at the same moment
    // as the attempt's deadline. Heard before the timer, the abort still reads as a timeout,
    // and a bundle that arrives at the deadline starts nothing.
    for result in [
        Err(HttpFailure {
            status: 0,
            retry_after_s: None,
        }),
        Ok(Participant::new("a").bundle_json()),
    ] {
        let a = Participant::new("a");
        let b = Participant::new("b");
        let mut h = Harness::new();
        h.start(&[&a, &b]);
        let deadline = h.ex.poll_timeout().unwrap();
        h.now = deadline;
        let sends = h.sends.len();
        h.feed(Event::BundleFetched {
            participant: a.id.clone(),
            result,
        });
        assert!(
            h.progress.iter().any(|p| matches!(p,
                Progress::Rotating { from, to, reason: AttemptFailure::Timeout } if *from == a.id && *to == b.id)),
            "{:?}",
            h.progress
        );
        assert_eq!(h.sends.len(), sends, "no request to a");
        assert_eq!(h.fetches.last().unwrap(), &(deadline, b.id.clone()));
        // The timer, when it comes, finds nothing more to do.
        h.fire_timeout();
        assert_eq!(h.fetches.len(), 2);
    }
    // One millisecond before the deadline the abort is what it is.
    let a = Participant::new("a");
    let b = Participant::new("b");
    let mut h = Harness::new();
    h.start(&[&a, &b]);
    h.now = h.ex.poll_timeout().unwrap() - 1;
    h.feed(Event::BundleFetched {
        participant: a.id.clone(),
        result: Err(HttpFailure {
            status: 0,
            retry_after_s: None,
        }),
    });
    assert!(h.progress.iter().any(|p| matches!(
        p,
        Progress::Rotating {
            reason: AttemptFailure::BundleHttp(0),
            ..
        }
    )));
}

#[test]
fn three_failures_end_in_a_retryable_failure_naming_each_attempt() {
    let mut ps: Vec<_> = ["a", "b", "c", "d"]
        .iter()
        .map(|n| Participant::new(n))
        .collect();
    let mut h = Harness::new();
    h.start(&ps.iter().collect::<Vec<_>>());
    // a: silent; b: keybundle 403; c: bundle with a bad signature.
    h.serve_bundle(&mut ps[0]);
    h.advance(5_000);
    h.feed(Event::BundleFetched {
        participant: ps[1].id.clone(),
        result: Err(HttpFailure {
            status: 403,
            retry_after_s: None,
        }),
    });
    let mut bad: Value = serde_json::from_str(&ps[2].bundle_json()).unwrap();
    let sig = base64_decode(bad["signed_pre_key"]["signature"].as_str().unwrap());
    let mut flipped = sig.clone();
    flipped[3] ^= 1;
    bad["signed_pre_key"]["signature"] = encode_base64(&flipped).into();
    let before = h.state_bytes();
    h.feed(Event::BundleFetched {
        participant: ps[2].id.clone(),
        result: Ok(bad.to_string()),
    });
    assert_eq!(
        h.state_bytes(),
        before,
        "a refused bundle leaves the Signal state alone"
    );
    let failure = h.failed.clone().expect("failed");
    let ExchangeFailure::AttemptsExhausted(attempts) = &failure else {
        panic!("{failure:?}")
    };
    let reasons: Vec<_> = attempts
        .iter()
        .map(|a| (a.participant.user_id.as_str(), a.failure.code()))
        .collect();
    assert_eq!(
        reasons,
        [
            ("a", "timeout"),
            ("b", "bundle_http_error"),
            ("c", "bundle_invalid")
        ]
    );
    assert_eq!(h.ex.phase(), Phase::Failed);
    assert_eq!(h.fetches.len(), 3, "d was never tried");
    let text = failure.to_string();
    assert!(
        text.contains("a/1: no answer in time") && text.contains("HTTP 403"),
        "{text}"
    );
}

#[test]
fn bad_bundle_signature_moves_to_the_next_participant() {
    let mut a = Participant::new("a");
    let mut b = Participant::new("b");
    let mut h = Harness::new();
    h.start(&[&a, &b]);
    let mut bad: Value = serde_json::from_str(&a.bundle_json()).unwrap();
    bad["identity_key"] = encode_base64(
        &ProtocolStore::generate(&mut TestRng, 0)
            .identity_key()
            .serialize(),
    )
    .into();
    h.feed(Event::BundleFetched {
        participant: a.id.clone(),
        result: Ok(bad.to_string()),
    });
    assert_eq!(h.fetches.last().unwrap().1, b.id);
    assert_eq!(
        h.fetches.last().unwrap().0,
        T0,
        "no waiting after a refused bundle"
    );
    h.serve_bundle(&mut b);
    h.deliver_last_request(&mut b);
    h.receive(b.answer_last(h.now));
    assert_eq!(h.keys.len(), 1);
}

#[test]
fn rate_limited_participant_is_skipped_until_retry_after() {
    let mut a = Participant::new("a");
    let mut b = Participant::new("b");
    let mut h = Harness::new();
    h.start(&[&a, &b]);
    h.feed(Event::BundleFetched {
        participant: a.id.clone(),
        result: Err(HttpFailure {
            status: 429,
            retry_after_s: Some(30),
        }),
    });
    assert_eq!(h.fetches.last().unwrap().1, b.id);
    // b is silent: the next attempts wrap around past a (still rate limited) to b again, on
    // b's cached session; a's 429 does not count, so b gets three.
    h.serve_bundle(&mut b);
    h.advance(5_000);
    assert_eq!(h.sends.last().unwrap().1, b.id);
    assert_eq!(h.fetches.len(), 2, "a was not asked again");
    h.advance(5_000);
    assert!(h.failed.is_none(), "a 429 is not a failure");
    h.advance(5_000);
    let ExchangeFailure::AttemptsExhausted(attempts) = h.failed.clone().unwrap() else {
        panic!()
    };
    assert_eq!(
        attempts[0].failure,
        AttemptFailure::RateLimited {
            retry_after_s: Some(30)
        }
    );
    assert_eq!(attempts.iter().filter(|t| t.participant == b.id).count(), 3);
    // After the Retry-After, a retry asks a again.
    h.advance(30_000);
    h.failed = None;
    let fetches_before = h.fetches.len();
    h.start(&[&a, &b]);
    assert_eq!(h.fetches.len(), fetches_before + 1);
    assert_eq!(h.fetches.last().unwrap().1, a.id);
    h.serve_bundle(&mut a);
    h.deliver_last_request(&mut a);
    h.receive(a.answer_last(h.now));
    assert_eq!(h.keys.len(), 1);
}

#[test]
fn busy_participants_do_not_use_up_the_failures_a_free_one_gives_the_key() {
    // A burst: three devices answer 429 (busy), the fourth is free. Three 429s used to end
    // the run before the fourth was asked.
    let mut ps: Vec<Participant> = ["a", "b", "c", "d"]
        .into_iter()
        .map(Participant::new)
        .collect();
    let mut h = Harness::new();
    h.start(&ps.iter().collect::<Vec<_>>());
    for p in &ps[..3] {
        assert_eq!(h.fetches.last().unwrap().1, p.id);
        h.feed(Event::BundleFetched {
            participant: p.id.clone(),
            result: Err(HttpFailure {
                status: 429,
                retry_after_s: Some(1),
            }),
        });
    }
    assert!(h.failed.is_none());
    let d = &mut ps[3];
    assert_eq!(h.fetches.last().unwrap().1, d.id);
    h.serve_bundle(d);
    h.deliver_last_request(d);
    h.receive(d.answer_last(h.now));
    assert_eq!(h.keys.len(), 1);
}

#[test]
fn a_run_of_busy_participants_is_bounded_too() {
    // A server that lists thirty devices and answers 429 for each: not thirty fetches, but
    // eight times maxFailures.
    let ps: Vec<Participant> = (0..30)
        .map(|i| Participant::new(&format!("p{i}")))
        .collect();
    let mut h = Harness::new();
    h.start(&ps.iter().collect::<Vec<_>>());
    while h.failed.is_none() {
        let (_, asked) = h.fetches.last().unwrap().clone();
        h.feed(Event::BundleFetched {
            participant: asked,
            result: Err(HttpFailure {
                status: 429,
                retry_after_s: Some(1),
            }),
        });
    }
    assert_eq!(h.fetches.len(), 24);
    assert!(matches!(
        h.failed.clone().unwrap(),
        ExchangeFailure::AttemptsExhausted(a) if a.len() == 24
    ));
}

#[test]
fn a_lone_rate_limited_participant_ends_the_run_at_once() {
    let a = Participant::new("a");
    let mut h = Harness::new();
    h.start(&[&a]);
    h.feed(Event::BundleFetched {
        participant: a.id.clone(),
        result: Err(HttpFailure {
            status: 429,
            retry_after_s: None,
        }),
    });
    let Some(ExchangeFailure::NoParticipants(attempts)) = h.failed.clone() else {
        panic!("{:?}", h.failed)
    };
    assert_eq!(attempts.len(), 1);
}

#[test]
fn late_answer_from_an_earlier_participant_is_accepted() {
    let mut slow = Participant::new("slow");
    let mut b = Participant::new("b");
    let mut h = Harness::new();
    h.start(&[&slow, &b]);
    h.serve_bundle(&mut slow);
    h.deliver_last_request(&mut slow);
    h.advance(5_000);
    h.serve_bundle(&mut b);
    h.now += 700;
    h.receive(slow.answer_last(h.now));
    assert_eq!(h.keys.len(), 1);
    assert_eq!(h.keys[0].2, slow.id);
    // b answering afterwards is dropped: the key is already delivered.
    h.deliver_last_request(&mut b);
    h.receive(b.answer_last(h.now));
    assert_eq!(h.keys.len(), 1);
    assert_eq!(h.dropped.last(), Some(&DropReason::KeyAlreadyDelivered));
}

/// Sets up a guest waiting on `alice` with one outstanding request.
fn waiting_on_alice() -> (Harness, Participant) {
    let mut alice = Participant::new("alice");
    let mut h = Harness::new();
    h.start(&[&alice]);
    h.serve_bundle(&mut alice);
    h.deliver_last_request(&mut alice);
    (h, alice)
}

#[test]
fn bad_answers_are_dropped_with_a_reason_and_change_nothing() {
    let (mut h, mut alice) = waiting_on_alice();
    let request_id = alice.requests[0].clone();
    let now = h.now;
    let mut variants: Vec<(&str, Value, DropReason)> = Vec::new();
    let base = alice.response_plaintext(&request_id, now);
    let with = |field: &str, value: Value| {
        let mut v = base.clone();
        v[field] = value;
        v
    };
    variants.push((
        "wrong meeting",
        with("meeting_id", "other".into()),
        DropReason::WrongMeeting,
    ));
    variants.push((
        "unknown request",
        with("request_id", "nope".into()),
        DropReason::UnknownRequest,
    ));
    variants.push((
        "stale",
        with("timestamp", (now - 120_001).into()),
        DropReason::StaleTimestamp,
    ));
    variants.push((
        "future",
        with("timestamp", (now + 120_001).into()),
        DropReason::StaleTimestamp,
    ));
    for (len, name) in [
        (31usize, "31-byte key"),
        (33, "33-byte key"),
        (0, "empty key"),
    ] {
        let v = with("key", encode_base64(&vec![1u8; len]).into());
        variants.push((
            name,
            v,
            DropReason::BadPlaintext(messages::Invalid {
                field: "key",
                problem: "not 32 bytes",
            }),
        ));
    }
    let not_b64 = with("key", "***".into());
    variants.push((
        "key not base64",
        not_b64,
        DropReason::BadPlaintext(messages::Invalid {
            field: "key",
            problem: "not base64",
        }),
    ));
    let bad_index = with("key_index", 256.into());
    variants.push((
        "key_index",
        bad_index,
        DropReason::BadPlaintext(messages::Invalid {
            field: "key_index",
            problem: "not an integer 0..255",
        }),
    ));
    let wrong_type = with("type", "participant:something".into());
    variants.push((
        "type",
        wrong_type,
        DropReason::BadPlaintext(messages::Invalid {
            field: "type",
            problem: "not a key response or update",
        }),
    ));
    let update_early = json!({"type": "participant:meeting_e2ee_key_update", "meeting_id": MEETING,
        "key": encode_base64(&[9u8; 32]), "key_index": 1, "timestamp": now});
    variants.push((
        "update before key",
        update_early,
        DropReason::UpdateBeforeKey,
    ));

    for (name, plaintext, expected) in variants {
        let before = h.state_bytes();
        let event = alice.event(&plaintext);
        h.receive(event);
        assert_eq!(h.dropped.last(), Some(&expected), "{name}");
        assert_eq!(h.state_bytes(), before, "{name}: state changed");
        assert!(h.keys.is_empty(), "{name}");
    }
    // Not JSON at all.
    let garbage = alice.store.encrypt("guest", b"not json").unwrap();
    let event = json!({"participant_user_id": "alice", "participant_device_id": "1",
        "encrypted_message": encode_base64(garbage.serialized()), "message_type": garbage.message_type()});
    h.receive(event.to_string());
    assert!(matches!(
        h.dropped.last(),
        Some(DropReason::BadPlaintext(_))
    ));
    // After all that, the genuine answer still works.
    h.receive(alice.answer_last(h.now));
    assert_eq!(h.keys.len(), 1);
}

#[test]
fn replays_and_strangers_are_dropped() {
    let (mut h, mut alice) = waiting_on_alice();
    let answer = alice.answer_last(h.now);
    h.receive(answer.clone());
    assert_eq!(h.keys.len(), 1);
    let before = h.state_bytes();
    // The same ciphertext again: the ratchet refuses it.
    h.receive(answer);
    assert!(
        matches!(h.dropped.last(), Some(DropReason::DecryptFailed(_))),
        "{:?}",
        h.dropped
    );
    // The same request answered again in a new message.
    let again = alice.answer_last(h.now);
    h.receive(again);
    assert_eq!(h.dropped.last(), Some(&DropReason::AlreadyAnswered));
    // A participant we never asked.
    let mut stranger = Participant::new("stranger");
    stranger
        .store
        .process_bundle(
            "guest",
            &h.ex.state().store.bundle(1, false).unwrap(),
            &mut TestRng,
        )
        .unwrap();
    let plaintext = stranger.response_plaintext("whatever", h.now);
    h.receive(stranger.event(&plaintext));
    assert_eq!(h.dropped.last(), Some(&DropReason::UnknownSender));
    // Malformed events.
    for body in [
        "{}",
        "[]",
        "not json",
        r#"{"participant_user_id":"alice","participant_device_id":"1","encrypted_message":"AA==","message_type":0}"#,
    ] {
        h.receive(body.to_owned());
        assert!(
            matches!(h.dropped.last(), Some(DropReason::MalformedEvent(_))),
            "{body}"
        );
    }
    assert_eq!(h.state_bytes(), before);
    assert_eq!(h.keys.len(), 1);
}

#[test]
fn answer_for_another_participants_request_is_dropped() {
    let mut a = Participant::new("a");
    let mut b = Participant::new("b");
    let mut h = Harness::new();
    h.start(&[&a, &b]);
    h.serve_bundle(&mut a);
    h.deliver_last_request(&mut a);
    h.advance(5_000);
    h.serve_bundle(&mut b);
    h.deliver_last_request(&mut b);
    // b answers quoting a's request id.
    let a_request = a.requests[0].clone();
    let plaintext = b.response_plaintext(&a_request, h.now);
    h.receive(b.event(&plaintext));
    assert_eq!(h.dropped.last(), Some(&DropReason::WrongParticipant));
    assert!(h.keys.is_empty());
}

#[test]
fn message_before_start_is_dropped() {
    let mut h = Harness::new();
    let event = json!({"participant_user_id": "a", "participant_device_id": "1", "encrypted_message": "AAAA", "message_type": 2});
    h.receive(event.to_string());
    assert_eq!(h.dropped.last(), Some(&DropReason::NotStarted));
}

#[test]
fn retry_reuses_sessions_younger_than_five_minutes() {
    let mut a = Participant::new("a");
    let mut h = Harness::new();
    h.start(&[&a]);
    h.serve_bundle(&mut a);
    h.deliver_last_request(&mut a);
    h.advance(15_000);
    assert!(matches!(
        h.failed,
        Some(ExchangeFailure::AttemptsExhausted(_))
    ));
    assert_eq!(
        h.fetches.len(),
        1,
        "the 2nd and 3rd attempt reused the fresh session"
    );
    assert_eq!(a.bundles_served, 1);
    // Try again within 5 minutes: no bundle, straight to a request on the cached session.
    h.failed = None;
    h.advance(60_000);
    let sends_before = h.sends.len();
    h.start(&[&a]);
    assert_eq!(h.fetches.len(), 1);
    assert_eq!(h.sends.len(), sends_before + 1);
    h.deliver_last_request(&mut a);
    h.advance(15_000);
    // After 5 minutes, the next try fetches a new bundle.
    h.failed = None;
    h.advance(5 * 60_000);
    h.start(&[&a]);
    assert_eq!(h.fetches.len(), 2);
    h.serve_bundle(&mut a);
    h.deliver_last_request(&mut a);
    h.receive(a.answer_last(h.now));
    assert_eq!(h.keys.len(), 1);
}

#[test]
fn key_update_from_the_answering_participant_is_applied() {
    let (mut h, mut alice) = waiting_on_alice();
    h.receive(alice.answer_last(h.now));
    let update = json!({"type": "participant:meeting_e2ee_key_update", "meeting_id": MEETING,
        "key": encode_base64(&[42u8; 32]), "key_index": 1, "timestamp": h.now});
    h.receive(alice.event(&update));
    assert_eq!(h.keys.len(), 2);
    assert_eq!(h.keys[1].0.expose_bytes(), &[42u8; 32]);
    assert_eq!(h.keys[1].1, 1);
}

#[test]
fn participant_answering_with_its_own_prekey_message_is_accepted() {
    let (mut h, mut alice) = waiting_on_alice();
    // Like the Flutter client: fetch the guest's bundle, start a new session, answer on it.
    let guest_bundle = h.ex.state().store.bundle(1, true).unwrap();
    alice
        .store
        .process_bundle("guest", &guest_bundle, &mut TestRng)
        .unwrap();
    let answer = alice.answer_last(h.now);
    assert!(answer.contains("\"message_type\":3"));
    let prekeys_before = h.ex.state().store.one_time_pre_key_ids().count();
    h.receive(answer);
    assert_eq!(h.keys.len(), 1, "{:?}", h.dropped);
    assert_eq!(
        h.ex.state().store.one_time_pre_key_ids().count(),
        prekeys_before - 1
    );
}

#[test]
fn state_survives_a_reload_mid_exchange() {
    let (h, mut alice) = waiting_on_alice();
    let saved = h.state_bytes();
    // New page: same stored state, new machine. Alice answers the old request late; the
    // request id is unknown to the new machine, but a fresh run uses the cached session.
    let mut h2 = Harness::with_state(GuestState::from_bytes(&saved).unwrap());
    h2.now = h.now + 1_000;
    h2.start(&[&alice]);
    assert!(
        h2.fetches.is_empty(),
        "session from before the reload is reused"
    );
    h2.deliver_last_request(&mut alice);
    h2.receive(alice.answer_last(h2.now));
    assert_eq!(h2.keys.len(), 1);
}

#[test]
fn empty_or_broken_participant_lists_fail_clearly() {
    let mut h = Harness::new();
    h.start(&[]);
    assert!(matches!(h.failed, Some(ExchangeFailure::NoParticipants(_))));
    let mut h = Harness::new();
    h.feed(Event::Start);
    h.feed(Event::ParticipantsListed(Err(HttpFailure {
        status: 403,
        retry_after_s: None,
    })));
    assert_eq!(
        h.failed,
        Some(ExchangeFailure::ParticipantsUnavailable(
            ParticipantsError::Http(HttpFailure {
                status: 403,
                retry_after_s: None
            })
        ))
    );
    let mut h = Harness::new();
    h.feed(Event::Start);
    h.feed(Event::ParticipantsListed(Ok("{\"not\":\"a list\"}".into())));
    assert!(matches!(
        h.failed,
        Some(ExchangeFailure::ParticipantsUnavailable(
            ParticipantsError::Malformed(_)
        ))
    ));
}

#[test]
fn send_failure_rotates_immediately() {
    let mut a = Participant::new("a");
    let b = Participant::new("b");
    let mut h = Harness::new();
    h.start(&[&a, &b]);
    h.serve_bundle(&mut a);
    h.feed(Event::SendFailed {
        participant: a.id.clone(),
    });
    assert_eq!(h.fetches.last().unwrap(), &(T0, b.id.clone()));
}

#[test]
fn bundle_for_a_different_device_is_refused() {
    let a = Participant::new("a");
    let mut other = Participant::new("other");
    let mut h = Harness::new();
    h.start(&[&a]);
    h.feed(Event::BundleFetched {
        participant: a.id.clone(),
        result: Ok(other.bundle_json()),
    });
    let failure = h.progress.iter().find_map(|p| match p {
        Progress::Rotating { reason, .. } => Some(reason.clone()),
        _ => None,
    });
    assert!(
        matches!(failure, Some(AttemptFailure::BundleInvalid(BundleError::Malformed(ref why)))
            if why.problem.contains("different device")),
        "{failure:?}"
    );
}

#[test]
fn a_key_the_provider_refused_is_asked_for_again_on_the_next_start() {
    let mut alice = Participant::new("alice");
    let mut h = Harness::new();
    h.start(&[&alice]);
    h.serve_bundle(&mut alice);
    h.deliver_last_request(&mut alice);
    h.receive(alice.answer_last(h.now));
    assert_eq!(h.ex.phase(), Phase::Delivered);
    assert!(h.ex.delivered().is_some());

    h.feed(Event::DeliveryFailed);
    assert_eq!(h.ex.phase(), Phase::Failed);
    assert!(h.ex.delivered().is_none(), "no key is reported as held");

    // "Try again": a new request on the cached session (no second bundle), a new answer.
    let fetches = h.fetches.len();
    h.start(&[&alice]);
    assert_eq!(h.fetches.len(), fetches, "the session is reused");
    h.deliver_last_request(&mut alice);
    h.receive(alice.answer_last(h.now));
    assert_eq!(h.keys.len(), 2);
    assert_eq!(h.ex.phase(), Phase::Delivered);
    assert_eq!(
        h.ex.delivered().map(|d| d.check_value.clone()),
        Some(h.keys[1].0.check_value())
    );
}

#[test]
fn handle_timeout_is_idempotent_and_ignores_early_calls() {
    let mut silent = Participant::new("silent");
    let b = Participant::new("b");
    let mut h = Harness::new();
    h.start(&[&silent, &b]);
    h.serve_bundle(&mut silent);
    let deadline = h.ex.poll_timeout().unwrap();
    assert_eq!(deadline, T0 + 5_000);
    // Early and repeated wake-ups change nothing.
    for _ in 0..3 {
        h.now = deadline - 1;
        h.fire_timeout();
    }
    assert_eq!(h.fetches.len(), 1);
    h.now = deadline;
    h.fire_timeout();
    h.fire_timeout();
    assert_eq!(h.fetches.len(), 2, "exactly one rotation");
    assert_eq!(h.fetches[1].1, b.id);
    // Time going backwards is taken as the latest time seen: the deadline does not move back.
    h.now = T0;
    h.fire_timeout();
    assert_eq!(h.fetches.len(), 2);
    assert_eq!(h.ex.poll_timeout(), Some(deadline + 5_000));
}

fn key_update(key: u8, key_index: u8, timestamp: Millis) -> Value {
    json!({"type": "participant:meeting_e2ee_key_update", "meeting_id": MEETING,
        "key": encode_base64(&[key; 32]), "key_index": key_index, "timestamp": timestamp})
}

#[test]
fn key_updates_delivered_out_of_order_never_go_back_to_an_older_key() {
    let (mut h, mut alice) = waiting_on_alice();
    h.receive(alice.answer_last(h.now));
    let t = h.now;
    // The participant sends U1 then U2; the relay delivers U2 first, then U1.
    let u1 = alice.event(&key_update(1, 1, t + 1_000));
    let u2 = alice.event(&key_update(2, 2, t + 2_000));
    h.now = t + 2_500;
    h.receive(u2);
    h.receive(u1);
    assert_eq!(h.keys.len(), 2, "only U2 is applied");
    assert_eq!(h.keys[1].0.expose_bytes(), &[2u8; 32]);
    assert_eq!(h.dropped, vec![DropReason::StaleUpdate]);
    assert_eq!(h.ex.delivered().map(|d| d.key_index), Some(2));
    // A replay of the current key is not newer either.
    let again = alice.event(&key_update(2, 2, t + 2_000));
    h.receive(again);
    assert_eq!(h.keys.len(), 2);
    assert_eq!(h.dropped.len(), 2);
}

#[test]
fn equal_timestamps_are_ordered_by_key_index_modulo_256() {
    let current = Delivered {
        from: ParticipantId::new("a".into(), "1".into()),
        key_index: 255,
        check_value: String::new(),
        timestamp_ms: 1_000,
        safety_number: String::new(),
        short_code: None,
        identity_key: signal_guest_sdk::signal::KeyPair::generate(&mut TestRng).public,
        session_version: 4,
    };
    assert!(current.is_replaced_by(1_000, 0), "255 -> 0 wraps forward");
    assert!(current.is_replaced_by(1_000, 126), "127 steps ahead");
    assert!(
        !current.is_replaced_by(1_000, 127),
        "128 steps is taken as behind"
    );
    assert!(!current.is_replaced_by(1_000, 255), "the same key");
    assert!(!current.is_replaced_by(1_000, 254), "one behind");
    assert!(
        current.is_replaced_by(1_001, 254),
        "a later timestamp wins whatever the index"
    );
    assert!(
        !current.is_replaced_by(999, 0),
        "an earlier timestamp never wins"
    );
}

#[test]
fn after_a_reload_the_last_answerer_is_asked_first_and_the_silent_one_last() {
    let mut silent = Participant::new("silent");
    let mut bob = Participant::new("bob");
    let carol = Participant::new("carol");
    let mut h = Harness::new();
    h.start(&[&silent, &bob, &carol]);
    h.serve_bundle(&mut silent);
    h.deliver_last_request(&mut silent);
    h.advance(5_000);
    h.serve_bundle(&mut bob);
    h.deliver_last_request(&mut bob);
    h.receive(bob.answer_last(h.now));
    assert_eq!(h.keys.len(), 1);
    assert_eq!(h.ex.state().last_answerer.as_ref(), Some(&bob.id));
    assert_eq!(h.ex.state().unanswered, vec![silent.id.clone()]);

    // A reload: the stored state comes back; the server lists them in the same order.
    let stored = GuestState::from_bytes(&h.state_bytes()).unwrap();
    let mut reloaded = Harness::with_state(stored);
    reloaded.start(&[&silent, &bob, &carol]);
    // Bob's session is still cached: the request goes out at once, to him.
    assert_eq!(reloaded.sends[0].1, bob.id, "the last answerer first");
    assert!(reloaded.fetches.is_empty());
    assert_eq!(
        reloaded.ex.state().preferred_order(
            vec![silent.id.clone(), bob.id.clone(), carol.id.clone()],
            spread_of(GUEST)
        ),
        vec![bob.id.clone(), carol.id.clone(), silent.id.clone()],
        "then the server's order, the silent one last"
    );
}

#[test]
fn a_stored_state_without_answer_history_still_loads() {
    let state = GuestState::new(ProtocolStore::generate(&mut TestRng, 3));
    let current = state.to_bytes();
    // The previous format: the same bytes up to the history, version byte 2.
    let mut previous = current[..current.len() - 5].to_vec();
    previous[0] = 2;
    let loaded = GuestState::from_bytes(&previous).unwrap();
    assert_eq!(loaded.last_answerer, None);
    assert_eq!(loaded.store.identity_key(), state.store.identity_key());
    assert_eq!(&loaded.to_bytes()[..], &current[..]);
}

fn pinned_harness(pins: Vec<(ParticipantId, signal_guest_sdk::signal::PublicKey)>) -> Harness {
    configured(ExchangeConfig {
        pinned: pins,
        ..one_at_a_time()
    })
}

fn configured(config: ExchangeConfig) -> Harness {
    let ex = Exchange::new(
        config,
        MEETING.into(),
        GUEST.into(),
        GuestState::new(ProtocolStore::generate(&mut TestRng, 30)),
    );
    let mut h = Harness::new();
    h.ex = ex;
    h
}

#[test]
fn a_pinned_identity_that_does_not_match_stops_the_attempt_before_any_request() {
    let mut impostor = Participant::new("alice");
    let genuine = Participant::new("alice");
    let mut bob = Participant::new("bob");
    // Devices without a pin are asked too (trust on first use), as the page chose.
    let mut h = configured(ExchangeConfig {
        pinned: vec![(genuine.id.clone(), genuine.store.identity_key())],
        ask_unpinned: true,
        ..one_at_a_time()
    });
    h.start(&[&impostor, &bob]);
    // The server hands out a bundle for "alice" made by someone else.
    h.serve_bundle(&mut impostor);
    assert!(h.sends.is_empty(), "nothing was sent to the impostor");
    assert!(h.progress.iter().any(|p| matches!(p,
        Progress::Rotating { reason: AttemptFailure::IdentityMismatch, to, .. } if *to == bob.id)));
    assert!(
        h.ex.state().store.session(&impostor.id.address()).is_none(),
        "no session with it"
    );
    // The next participant is not pinned and answers.
    h.serve_bundle(&mut bob);
    h.deliver_last_request(&mut bob);
    h.receive(bob.answer_last(h.now));
    assert_eq!(h.keys.len(), 1);
    assert_eq!(h.keys[0].2, bob.id);
}

#[test]
fn the_key_is_handed_over_first_and_its_safety_number_after() {
    let mut alice = Participant::new("alice");
    let mut h = Harness::new();
    h.start(&[&alice]);
    h.serve_bundle(&mut alice);
    h.deliver_last_request(&mut alice);
    // Fed by hand, without the harness's settling: the key goes out first.
    let answer = alice.answer_last(h.now);
    let actions =
        h.ex.handle(Event::MessageReceived(answer), h.now, &mut TestRng);
    let handed = actions.iter().find_map(|a| match a {
        Action::DeliverKey { delivered, .. } => Some(delivered.safety_number.clone()),
        _ => None,
    });
    assert_eq!(handed.as_deref(), Some(""), "not on the way to setKey");
    assert!(
        matches!(actions.first(), Some(Action::DeliverKey { .. })),
        "the key is the first thing done; storing and telling the page follow"
    );
    h.ex.handle(Event::KeyHandedOver, h.now, &mut TestRng);
    let number = h.ex.delivered().unwrap().safety_number.clone();
    assert_eq!(number.len(), 60);
    assert_eq!(h.ex.delivered().unwrap().safety_number, number);
    assert_eq!(h.ex.safety_number(&alice.id), number);
}

#[test]
fn a_pinned_identity_that_matches_is_asked_and_the_safety_number_is_reported() {
    let mut alice = Participant::new("alice");
    let mut h = pinned_harness(vec![(alice.id.clone(), alice.store.identity_key())]);
    h.start(&[&alice]);
    h.serve_bundle(&mut alice);
    h.deliver_last_request(&mut alice);
    h.receive(alice.answer_last(h.now));
    assert_eq!(h.keys.len(), 1);
    let delivered = h.ex.delivered().unwrap().clone();
    // What alice's side computes: the same 60 digits, from the other end.
    let alice_side = signal_guest_sdk::signal::fingerprint::displayable_fingerprint(
        5200,
        b"alice:1",
        &alice.store.identity_key(),
        format!("guest:{GUEST}").as_bytes(),
        &h.ex.state().store.identity_key(),
    );
    assert_eq!(delivered.safety_number.len(), 60);
    assert_eq!(delivered.safety_number, alice_side);
    // What the page pins once it has verified that number: the sender's identity key.
    assert_eq!(delivered.identity_key, alice.store.identity_key());
    assert_eq!(
        delivered.session_version, 3,
        "alice's bundle has no Kyber prekey"
    );
}

#[test]
fn with_pins_only_pinned_devices_are_asked_even_when_the_server_lists_another_device_first() {
    // The server lists a device of its own for the pinned user, first, with its own bundle.
    let mut extra = Participant::new("alice");
    extra.id = ParticipantId::new("alice".into(), "2".into());
    let mut alice = Participant::new("alice");
    let mut h = pinned_harness(vec![(alice.id.clone(), alice.store.identity_key())]);
    h.start(&[&extra, &alice]);
    assert_eq!(h.fetches.len(), 1);
    assert_eq!(
        h.fetches[0].1, alice.id,
        "alice:2 is not pinned: never asked"
    );
    h.serve_bundle(&mut alice);
    h.deliver_last_request(&mut alice);
    // The extra device answers on a session of its own: it was never asked.
    extra
        .store
        .process_bundle(
            "guest",
            &h.ex.state().store.bundle(1, true).unwrap(),
            &mut TestRng,
        )
        .unwrap();
    let forged = extra.event(&json!({"type": "participant:meeting_e2ee_key_response",
        "meeting_id": MEETING, "request_id": "x", "key": encode_base64(&[7u8; 32]),
        "key_index": 0, "timestamp": h.now}));
    h.receive(forged);
    assert_eq!(h.dropped, [DropReason::UnknownSender]);
    h.receive(alice.answer_last(h.now));
    assert_eq!(h.keys.len(), 1);
    assert_eq!(h.keys[0].2, alice.id);
}

#[test]
fn with_pins_and_no_pinned_device_listed_nobody_is_asked() {
    let bob = Participant::new("bob");
    let absent = Participant::new("alice");
    let mut h = pinned_harness(vec![(absent.id.clone(), absent.store.identity_key())]);
    h.start(&[&bob]);
    assert!(h.fetches.is_empty() && h.sends.is_empty());
    assert!(matches!(h.failed, Some(ExchangeFailure::NoParticipants(ref a)) if a.is_empty()));
}

#[test]
fn requiring_post_quantum_refuses_a_bundle_without_a_kyber_prekey_and_takes_v4() {
    let mut classic = Participant::new("alice");
    let mut current = Participant::new_v4("bob");
    let mut h = configured(ExchangeConfig {
        require_post_quantum: true,
        ..one_at_a_time()
    });
    h.start(&[&classic, &current]);
    h.serve_bundle(&mut classic);
    assert!(h.sends.is_empty(), "nothing sent on a v3 session");
    assert!(h.progress.iter().any(|p| matches!(p,
        Progress::Rotating { reason: AttemptFailure::BundleInvalid(_), to, .. } if *to == current.id)));
    h.serve_bundle(&mut current);
    h.deliver_last_request(&mut current);
    h.receive(current.answer_last(h.now));
    assert_eq!(h.keys.len(), 1);
    assert_eq!(h.ex.delivered().unwrap().session_version, 4);
}

#[test]
fn path_templates_encode_each_value_as_one_segment() {
    use signal_guest_sdk::exchange::contract::{fill_path, paths};
    let path = fill_path(
        paths::PARTICIPANT_KEYS,
        &[
            ("sessionId", "s 1/../x"),
            ("userId", "ä?#"),
            ("deviceId", "7"),
        ],
    );
    assert_eq!(
        path,
        "/api/meetings/external/s%201%2F..%2Fx/participant/%C3%A4%3F%23/7/keys"
    );
    // A name the caller did not give, and a brace that never closes, stay as written.
    assert_eq!(
        fill_path("/a/{x}/{y}/{z", &[("y", "-._~")]),
        "/a/{x}/-._~/{z"
    );
    assert_eq!(fill_path("/plain", &[("x", "1")]), "/plain");
}

#[test]
fn stray_events_after_the_key_change_nothing() {
    let (mut h, mut alice) = waiting_on_alice();
    h.receive(alice.answer_last(h.now));
    assert_eq!(h.ex.phase(), Phase::Delivered);
    // A late socket error, a stray prekey count and a late bundle for an attempt that is over:
    // none of them may end the delivered state (it is what key updates are checked against).
    h.feed(Event::SendFailed {
        participant: alice.id.clone(),
    });
    h.feed(Event::ServerPreKeys(Ok(
        "{\"count\":0,\"preKeys\":[]}".into()
    )));
    h.feed(Event::ServerPreKeys(Err(HttpFailure {
        status: 500,
        retry_after_s: None,
    })));
    assert_eq!(h.ex.phase(), Phase::Delivered);
    assert!(h.failed.is_none());
    h.now += 10;
    h.receive(alice.event(&key_update(42, 1, h.now)));
    assert_eq!(
        h.keys.len(),
        2,
        "the key update still applies: {:?}",
        h.dropped
    );
}

#[test]
fn safety_numbers_off_leaves_them_empty_and_the_key_still_arrives() {
    let mut alice = Participant::new("alice");
    let mut h = configured(ExchangeConfig {
        safety_numbers: false,
        ..ExchangeConfig::default()
    });
    h.start(&[&alice]);
    h.serve_bundle(&mut alice);
    h.deliver_last_request(&mut alice);
    h.receive(alice.answer_last(h.now));
    assert_eq!(h.keys.len(), 1);
    assert_eq!(h.ex.delivered().unwrap().safety_number, "");
    assert_eq!(h.ex.safety_number(&alice.id), "");
}
