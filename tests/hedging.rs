//! Hedging under the fake clock: a participant that has not answered within
//! `hedge_after_ms` (1.5 s by default) is kept waiting while the next one is asked too; the
//! first valid answer wins and later ones change nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]

mod common;

use common::*;
use signal_guest_sdk::exchange::*;
use signal_guest_sdk::signal::ProtocolStore;

const HEDGE: Millis = 1_500;

fn fetched(h: &Harness) -> Vec<String> {
    h.fetches.iter().map(|(_, p)| p.user_id.clone()).collect()
}

#[test]
fn the_default_hedges_after_one_and_a_half_seconds() {
    assert_eq!(ExchangeConfig::default().hedge_after_ms, Some(HEDGE));
}

#[test]
fn a_silent_first_participant_costs_one_and_a_half_seconds_not_five() {
    let mut silent = Participant::new("silent");
    let mut bob = Participant::new("bob");
    let mut h = Harness::hedged();
    h.start(&[&silent, &bob]);
    h.serve_bundle(&mut silent);
    h.deliver_last_request(&mut silent);
    let asked_at = h.now;
    assert_eq!(h.ex.poll_timeout(), Some(asked_at + HEDGE));
    h.advance(HEDGE - 1);
    assert_eq!(
        fetched(&h),
        ["silent"],
        "nobody else asked before the hedge time"
    );
    h.advance(1);
    assert_eq!(fetched(&h), ["silent", "bob"]);
    assert!(h.progress.iter().any(|p| matches!(p,
        Progress::Hedging { waiting_for, also_asking } if waiting_for.user_id == "silent" && also_asking.user_id == "bob")));
    h.serve_bundle(&mut bob);
    h.deliver_last_request(&mut bob);
    h.now += 40;
    h.receive(bob.answer_last(h.now));
    assert_eq!(h.keys.len(), 1, "{:?}", h.dropped);
    assert_eq!(h.keys[0].2, bob.id);
    assert_eq!(h.now - asked_at, HEDGE + 40);
    // The silent one's deadline passes later and changes nothing; its late answer is dropped
    // and leaves the state as it was.
    h.advance(10_000);
    assert!(h.failed.is_none());
    assert!(!h
        .progress
        .iter()
        .any(|p| matches!(p, Progress::Rotating { .. })));
    let before = h.state_bytes();
    h.receive(silent.answer_last(h.now));
    assert_eq!(h.dropped.last(), Some(&DropReason::KeyAlreadyDelivered));
    assert_eq!(h.state_bytes(), before);
    assert_eq!(h.keys.len(), 1);
}

#[test]
fn the_first_valid_answer_wins_even_from_the_participant_asked_first() {
    let mut slow = Participant::new("slow");
    let mut bob = Participant::new("bob");
    let mut h = Harness::hedged();
    h.start(&[&slow, &bob]);
    h.serve_bundle(&mut slow);
    h.deliver_last_request(&mut slow);
    h.advance(HEDGE);
    h.serve_bundle(&mut bob);
    h.deliver_last_request(&mut bob);
    // The slow one answers first after all.
    h.now += 100;
    h.receive(slow.answer_last(h.now));
    assert_eq!(h.keys.len(), 1);
    assert_eq!(h.keys[0].2, slow.id);
    let before = h.state_bytes();
    h.receive(bob.answer_last(h.now));
    assert_eq!(h.dropped, [DropReason::KeyAlreadyDelivered]);
    assert_eq!(h.state_bytes(), before);
}

#[test]
fn without_hedging_the_next_participant_waits_for_the_full_deadline() {
    let mut silent = Participant::new("silent");
    let bob = Participant::new("bob");
    let state = GuestState::new(ProtocolStore::generate(&mut TestRng, 30));
    let mut h = Harness::with_config(one_at_a_time(), state);
    h.start(&[&silent, &bob]);
    h.serve_bundle(&mut silent);
    h.deliver_last_request(&mut silent);
    h.advance(4_999);
    assert_eq!(fetched(&h), ["silent"]);
    h.advance(1);
    assert_eq!(fetched(&h), ["silent", "bob"]);
}

#[test]
fn three_silent_participants_fail_at_eight_seconds_each_counted_once() {
    let mut ps: Vec<Participant> = ["a", "b", "c"]
        .iter()
        .map(|n| Participant::new(n))
        .collect();
    let mut h = Harness::hedged();
    let t0 = h.now;
    h.start(&ps.iter().collect::<Vec<_>>());
    for (i, p) in ps.iter_mut().enumerate() {
        h.serve_bundle(p);
        h.deliver_last_request(p);
        if i < 2 {
            h.advance(HEDGE);
        }
    }
    assert_eq!(fetched(&h), ["a", "b", "c"]);
    // No fourth attempt: three are in flight and the run allows three.
    assert_eq!(h.ex.poll_timeout(), Some(t0 + 5_000));
    h.advance(2 * HEDGE + 5_000 - (h.now - t0));
    let failure = h.failed.clone().expect("gave up");
    assert_eq!(h.now - t0, 2 * HEDGE + 5_000);
    match failure {
        ExchangeFailure::AttemptsExhausted(attempts) => {
            let who: Vec<&str> = attempts
                .iter()
                .map(|a| a.participant.user_id.as_str())
                .collect();
            assert_eq!(who, ["a", "b", "c"]);
            assert!(attempts
                .iter()
                .all(|a| a.failure == AttemptFailure::Timeout));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn hedges_go_on_while_the_run_has_attempts_left() {
    let mut ps: Vec<Participant> = ["a", "b", "c", "d"]
        .iter()
        .map(|n| Participant::new(n))
        .collect();
    let state = GuestState::new(ProtocolStore::generate(&mut TestRng, 30));
    let config = ExchangeConfig {
        max_failures: 4,
        ..ExchangeConfig::default()
    };
    let mut h = Harness::with_config(config, state);
    let t0 = h.now;
    h.start(&ps.iter().collect::<Vec<_>>());
    for p in ps.iter_mut().take(3) {
        h.serve_bundle(p);
        h.deliver_last_request(p);
        h.advance(HEDGE);
    }
    // Three in flight and one attempt left: d is asked at 4.5 s, before a's deadline.
    assert_eq!(fetched(&h), ["a", "b", "c", "d"]);
    assert_eq!(h.fetches[3].0 - t0, 3 * HEDGE);
    let d = &mut ps[3];
    h.serve_bundle(d);
    h.deliver_last_request(d);
    h.receive(d.answer_last(h.now));
    assert_eq!(h.keys.len(), 1, "{:?}", h.dropped);
    assert!(h.failed.is_none());
}

#[test]
fn a_lone_participant_gets_no_company_and_a_hanging_bundle_fetch_is_hedged() {
    let alone = Participant::new("alone");
    let mut h = Harness::hedged();
    h.start(&[&alone]);
    assert_eq!(
        h.ex.poll_timeout(),
        Some(h.now + 5_000),
        "nobody to hedge to"
    );
    let mut first = Participant::new("first");
    let second = Participant::new("second");
    let mut h = Harness::hedged();
    h.start(&[&first, &second]);
    // The bundle fetch itself hangs: the hedge time runs from the start of the attempt.
    h.advance(HEDGE);
    assert_eq!(fetched(&h), ["first", "second"]);
    // The hanging bundle arrives late; its attempt goes on beside the hedge.
    h.serve_bundle_for(&mut first);
    assert_eq!(h.sends.len(), 1);
}

#[test]
fn handle_timeout_early_or_twice_hedges_once() {
    let mut silent = Participant::new("silent");
    let bob = Participant::new("bob");
    let carol = Participant::new("carol");
    let mut h = Harness::hedged();
    h.start(&[&silent, &bob, &carol]);
    h.serve_bundle(&mut silent);
    h.deliver_last_request(&mut silent);
    h.now += HEDGE - 1;
    h.fire_timeout();
    assert_eq!(fetched(&h), ["silent"]);
    h.now += 1;
    h.fire_timeout();
    h.fire_timeout();
    assert_eq!(fetched(&h), ["silent", "bob"], "one hedge, not two");
}

#[test]
fn a_hedge_skips_rate_limited_participants() {
    let mut silent = Participant::new("silent");
    let limited = Participant::new("limited");
    let mut carol = Participant::new("carol");
    let mut h = Harness::hedged();
    h.start(&[&limited, &silent, &carol]);
    // limited answers 429 at once: the run moves to silent (a failure, not a hedge).
    h.feed(Event::BundleFetched {
        participant: limited.id.clone(),
        result: Err(HttpFailure {
            status: 429,
            retry_after_s: Some(60),
        }),
    });
    h.serve_bundle(&mut silent);
    h.deliver_last_request(&mut silent);
    h.advance(HEDGE);
    assert_eq!(fetched(&h), ["limited", "silent", "carol"]);
    h.serve_bundle(&mut carol);
    h.deliver_last_request(&mut carol);
    h.receive(carol.answer_last(h.now));
    assert_eq!(h.keys.len(), 1);
    assert_eq!(h.keys[0].2, carol.id);
}
