//! The join machine under a fake clock: connection, PeerWave's handshake and lobby,
//! admission, declines, lost registrations, `leave()` and deadlines. Each test checks the
//! actions emitted, and that the exchange never starts before the guest may ask.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]

use signal_guest_sdk::exchange::contract::WireProfile;
use signal_guest_sdk::exchange::join::*;
use signal_guest_sdk::exchange::ExchangeFailure;

use JoinAction::*;

const T0: u64 = 1_700_000_000_000;
const CONNECT_MS: u64 = 10_000;
const ADMISSION_MS: u64 = 300_000;

struct Guest {
    join: Join,
    now: u64,
}

fn config(profile: WireProfile) -> JoinConfig {
    JoinConfig {
        rules: profile.join_rules(),
        connect_timeout_ms: CONNECT_MS,
        admission_timeout_ms: ADMISSION_MS,
        require_admission: true,
    }
}

fn s(id: &str) -> String {
    id.to_owned()
}

impl Guest {
    fn open(
        profile: WireProfile,
        stored: Option<(&str, bool)>,
        link: Link,
    ) -> (Self, Vec<JoinAction>) {
        let (join, actions) = Join::new(
            config(profile),
            stored.map(|(id, admitted)| (s(id), admitted)),
            link,
            T0,
        );
        (Self { join, now: T0 }, actions)
    }

    /// A guest that has just registered as `s1` (PeerWave: the handshake is on its way).
    fn registered(profile: WireProfile, link: Link) -> Self {
        let (mut g, _) = Self::open(profile, None, link);
        let actions = g.on(JoinEvent::Registered(s("s1")));
        let handshake = profile.join_rules().sdk_handshake;
        assert_eq!(actions, if handshake { vec![Handshake] } else { vec![] });
        g
    }

    /// PeerWave: registered as `s1`, handshake answered, in the host's lobby.
    fn in_lobby() -> Self {
        let mut g = Self::registered(WireProfile::PeerWave, Link::Down);
        assert_eq!(g.on(JoinEvent::Authenticated(s("s1"))), [RequestAdmission]);
        assert!(g
            .on(JoinEvent::LobbyAnswered(LobbyAnswer::InLobby))
            .is_empty());
        g
    }

    fn on(&mut self, event: JoinEvent) -> Vec<JoinAction> {
        self.join.handle(event, self.now)
    }

    fn call(&mut self) -> Vec<JoinAction> {
        self.join.exchange_key(self.now).expect("the call starts")
    }

    /// Moves the clock to `at` and lets the machine act on its deadlines.
    fn at(&mut self, at: u64) -> Vec<JoinAction> {
        self.now = at;
        self.join.handle_timeout(at)
    }
}

fn waiting(what: Waiting) -> JoinAction {
    Notice(JoinNotice::Waiting(what))
}

fn failed(failure: JoinFailure) -> JoinAction {
    Settle(CallOutcome::Failed(failure))
}

fn started(actions: &[JoinAction]) -> bool {
    actions.contains(&StartExchange)
}

const LOST: [JoinAction; 3] = [ReplaceIdentity, Notice(JoinNotice::SessionLost), Register];

/// What a loss makes the guest do: new keys and a registration at once, or, held back, when
/// they are due (not a millisecond early). Returns how long that took.
fn registering_again(g: &mut Guest, actions: Vec<JoinAction>) -> u64 {
    if actions == LOST {
        return 0;
    }
    assert_eq!(
        actions,
        [Notice(JoinNotice::SessionLost)],
        "nothing else yet"
    );
    let at = g.join.poll_timeout().expect("a re-registration is due");
    let waited = at - g.now;
    assert!(g.at(at - 1).is_empty(), "not a millisecond early");
    assert_eq!(g.at(at), [ReplaceIdentity, Register]);
    waited
}

/// The wait before the `n`-th re-registration in a row (from 1): none for the first, then
/// at least the spread's minimum and less than its window.
fn assert_spread_wait(n: u8, waited: u64) {
    if n == 1 {
        assert_eq!(waited, 0, "the first goes at once");
    } else {
        let window = RENEWAL_SPREAD_MS << (n - 2);
        assert!(
            (RENEWAL_SPREAD_MIN_MS..RENEWAL_SPREAD_MIN_MS + window).contains(&waited),
            "re-registration {n} waited {waited} ms"
        );
    }
}

#[test]
fn plan_socket_connects_late_then_the_admission_starts_the_exchange() {
    let mut g = Guest::registered(WireProfile::Plan, Link::Down);
    assert_eq!(g.call(), [PrepareExchange, waiting(Waiting::Connection)]);
    assert_eq!(g.join.poll_timeout(), Some(T0 + CONNECT_MS));
    g.now += 2_000;
    // Connected: the server may have said "admitted" before the SDK listened, so it is asked.
    assert_eq!(
        g.on(JoinEvent::SocketConnected),
        [QueryAdmission, PrepareExchange, waiting(Waiting::Admission)]
    );
    assert_eq!(g.join.poll_timeout(), Some(T0 + 2_000 + ADMISSION_MS));
    // Another guest's admission is not ours.
    assert!(g.on(JoinEvent::Admitted(s("other"))).is_empty());
    g.now += 500;
    assert_eq!(
        g.on(JoinEvent::Admitted(s("s1"))),
        [Notice(JoinNotice::Admitted), StartExchange]
    );
    assert!(g.join.admitted());
    g.now += 80;
    assert_eq!(
        g.on(JoinEvent::KeyDelivered),
        [Settle(CallOutcome::Key { elapsed_ms: 2_580 })]
    );
    assert!(!g.join.call_running());
}

#[test]
fn plan_admission_before_the_call_starts_the_exchange_at_once() {
    let mut g = Guest::registered(WireProfile::Plan, Link::Up);
    assert_eq!(
        g.on(JoinEvent::Admitted(s("s1"))),
        [Notice(JoinNotice::Admitted)]
    );
    assert_eq!(g.call(), [StartExchange]);
    // A repeated notice (the contract's server repeats it on every connection) changes nothing.
    assert!(g.on(JoinEvent::Admitted(s("s1"))).is_empty());
}

#[test]
fn exchange_key_while_the_socket_connects_never_drives_it_again() {
    // PeerWave: register() then exchangeKey() 20 ms later, while the handshake is under way.
    let mut g = Guest::registered(WireProfile::PeerWave, Link::Down);
    g.now += 20;
    let actions = g.call();
    assert_eq!(
        actions,
        [PrepareExchange, waiting(Waiting::Connection)],
        "no second handshake: {actions:?}"
    );
    // The socket's own events while it connects: still nothing to drive.
    assert!(g
        .on(JoinEvent::SocketDisconnected { reconnecting: true })
        .is_empty());
    assert!(g.on(JoinEvent::SocketConnected).is_empty());
    // Only the handshake's answer opens the way; an answer for another session does not.
    assert!(g.on(JoinEvent::Authenticated(s("old"))).is_empty());
    assert_eq!(
        g.on(JoinEvent::Authenticated(s("s1"))),
        [
            RequestAdmission,
            PrepareExchange,
            waiting(Waiting::Admission)
        ]
    );
}

#[test]
fn a_reconnect_in_the_lobby_asks_whether_the_admission_was_missed() {
    let mut g = Guest::in_lobby();
    assert_eq!(g.call(), [PrepareExchange, waiting(Waiting::Admission)]);
    g.now += 1_000;
    // The socket drops and reconnects on its own; the host admits meanwhile and PeerWave's
    // one notice goes nowhere.
    assert_eq!(
        g.on(JoinEvent::SocketDisconnected { reconnecting: true }),
        [PrepareExchange, waiting(Waiting::Connection)]
    );
    assert!(g.on(JoinEvent::SocketConnected).is_empty());
    // Back in the room: ask, rather than request admission again (which would withdraw it).
    let actions = g.on(JoinEvent::Authenticated(s("s1")));
    assert_eq!(
        actions,
        [CheckStatus, PrepareExchange, waiting(Waiting::Admission)]
    );
    assert!(!started(&actions));
    assert_eq!(
        g.on(JoinEvent::StatusChecked(Status::Admitted)),
        [PersistAdmitted, Notice(JoinNotice::Admitted), StartExchange]
    );
}

#[test]
fn a_socket_closed_by_the_server_is_connected_again_once_per_wait() {
    let mut g = Guest::in_lobby();
    g.call();
    assert_eq!(
        g.on(JoinEvent::SocketDisconnected {
            reconnecting: false
        }),
        [Handshake, PrepareExchange, waiting(Waiting::Connection)]
    );
    // Refused and closed again: no loop of handshakes; the connect deadline ends the call.
    assert!(g
        .on(JoinEvent::HandshakeRefused {
            session_gone: false
        })
        .is_empty());
    assert!(g
        .on(JoinEvent::SocketDisconnected {
            reconnecting: false
        })
        .is_empty());
    // (The lobby's status check was due meanwhile, and still is: the guest is in the lobby.)
    assert_eq!(
        g.at(T0 + CONNECT_MS),
        [failed(JoinFailure::NotConnected(CONNECT_MS)), CheckStatus]
    );
}

#[test]
fn a_handshake_refusal_is_checked_then_the_guest_registers_again_and_goes_on() {
    // A reload after PeerWave restarted: the stored registration is refused.
    let (mut g, opening) = Guest::open(WireProfile::PeerWave, Some(("s1", false)), Link::Down);
    assert_eq!(opening, [Handshake]);
    assert_eq!(g.call(), [PrepareExchange, waiting(Waiting::Connection)]);
    // A refusal that does not name the session changes nothing.
    assert!(g
        .on(JoinEvent::HandshakeRefused {
            session_gone: false
        })
        .is_empty());
    // One that does may answer an older handshake: checked first.
    assert_eq!(
        g.on(JoinEvent::HandshakeRefused { session_gone: true }),
        [CheckStatus]
    );
    assert!(g.join.session_id().is_some());
    assert_eq!(g.on(JoinEvent::StatusChecked(Status::Gone)), LOST);
    assert_eq!(g.join.session_id(), None);
    g.now += 300;
    let actions = g.on(JoinEvent::Registered(s("s2")));
    // The call went on: it waits for the new handshake (a new deadline), then the lobby.
    assert_eq!(
        actions,
        [
            Notice(JoinNotice::Registered),
            Handshake,
            PrepareExchange,
            waiting(Waiting::Connection)
        ]
    );
    assert_eq!(g.join.poll_timeout(), Some(T0 + 300 + CONNECT_MS));
    assert_eq!(
        g.on(JoinEvent::Authenticated(s("s2"))),
        [
            RequestAdmission,
            PrepareExchange,
            waiting(Waiting::Admission)
        ]
    );
}

#[test]
fn a_stored_admission_is_kept_and_not_requested_again() {
    let (mut g, opening) = Guest::open(WireProfile::PeerWave, Some(("s1", true)), Link::Down);
    assert_eq!(opening, [Handshake]);
    assert!(g.join.admitted());
    assert_eq!(g.call(), [PrepareExchange, waiting(Waiting::Connection)]);
    // A lobby request on an admitted session would put it back in the lobby.
    assert_eq!(g.on(JoinEvent::Authenticated(s("s1"))), [StartExchange]);
    // The contract's server repeats the notice instead: a stored flag counts for nothing.
    let (plan, _) = Guest::open(WireProfile::Plan, Some(("s1", true)), Link::Up);
    assert!(!plan.join.admitted());
}

#[test]
fn a_missed_admission_ends_the_wait_and_try_again_asks_the_lobby_anew() {
    let mut g = Guest::in_lobby();
    assert_eq!(g.call(), [PrepareExchange, waiting(Waiting::Admission)]);
    // Status checks every 5 s while in the lobby: this server answers none of them.
    let mut checks = 0;
    let mut t = T0;
    loop {
        let next = g.join.poll_timeout().unwrap();
        if next >= T0 + ADMISSION_MS {
            break;
        }
        assert_eq!(next, t + STATUS_CHECK_MS);
        t = next;
        assert_eq!(g.at(t), [CheckStatus]);
        assert!(g.on(JoinEvent::StatusChecked(Status::Unknown)).is_empty());
        checks += 1;
    }
    assert_eq!(checks, (ADMISSION_MS / STATUS_CHECK_MS - 1) as usize);
    let actions = g.at(T0 + ADMISSION_MS);
    assert_eq!(actions, [failed(JoinFailure::NotAdmitted(ADMISSION_MS))]);
    // No more checks once nobody waits; "Try again" puts the guest in the lobby again.
    assert_eq!(g.join.poll_timeout(), None);
    assert_eq!(
        g.call(),
        [
            RequestAdmission,
            PrepareExchange,
            waiting(Waiting::Admission)
        ]
    );
}

#[test]
fn a_status_check_finds_the_admission_the_notice_never_brought() {
    let mut g = Guest::in_lobby();
    g.call();
    assert_eq!(g.at(T0 + STATUS_CHECK_MS - 1), []);
    assert_eq!(g.at(T0 + STATUS_CHECK_MS), [CheckStatus]);
    let actions = g.on(JoinEvent::StatusChecked(Status::Admitted));
    assert_eq!(
        actions,
        [PersistAdmitted, Notice(JoinNotice::Admitted), StartExchange]
    );
}

#[test]
fn another_guests_lobby_notice_makes_a_guest_check_its_own() {
    let mut g = Guest::in_lobby();
    g.call();
    assert_eq!(g.on(JoinEvent::Admitted(s("other"))), [CheckStatus]);
    // One check at a time.
    assert!(g.on(JoinEvent::Declined(s("other"))).is_empty());
    assert!(g.on(JoinEvent::StatusChecked(Status::Waiting)).is_empty());
    assert_eq!(g.join.poll_timeout(), Some(T0 + STATUS_CHECK_MS));
}

#[test]
fn decline_then_try_again_after_the_servers_cooldown() {
    let mut g = Guest::in_lobby();
    g.call();
    assert_eq!(
        g.on(JoinEvent::Declined(s("s1"))),
        [failed(JoinFailure::Declined)]
    );
    // A reconnect does not ask again after a decline: only the guest's "Try again" does.
    g.on(JoinEvent::SocketDisconnected { reconnecting: true });
    assert!(g.on(JoinEvent::Authenticated(s("s1"))).is_empty());
    g.now += 1_000;
    assert_eq!(
        g.call(),
        [
            RequestAdmission,
            PrepareExchange,
            waiting(Waiting::Admission)
        ]
    );
    // PeerWave: 429 within 5 s of the last request. Asked again exactly when it has passed.
    assert!(g
        .on(JoinEvent::LobbyAnswered(LobbyAnswer::TryLater))
        .is_empty());
    let again = T0 + 1_000 + LOBBY_COOLDOWN_MS;
    assert_eq!(g.at(again - 1), []);
    assert_eq!(g.at(again), [RequestAdmission]);
    assert!(g
        .on(JoinEvent::LobbyAnswered(LobbyAnswer::InLobby))
        .is_empty());
    let actions = g.on(JoinEvent::Admitted(s("s1")));
    assert_eq!(
        actions,
        [PersistAdmitted, Notice(JoinNotice::Admitted), StartExchange]
    );
}

#[test]
fn deleted_before_the_lobby_the_guest_registers_again_and_goes_on_at_most_three_times() {
    // PeerWave deletes every guest that has not asked to be let in whenever another registers.
    let mut g = Guest::registered(WireProfile::PeerWave, Link::Down);
    g.call();
    let mut id = s("s1");
    for lost in 1..=LOST_REGISTRATIONS_MAX + 1 {
        assert_eq!(
            g.on(JoinEvent::Authenticated(id.clone()))[0],
            RequestAdmission
        );
        let actions = g.on(JoinEvent::LobbyAnswered(LobbyAnswer::SessionGone));
        assert_spread_wait(lost, registering_again(&mut g, actions));
        // The call is still the running one.
        assert_eq!(g.join.exchange_key(g.now), Err(CallRefused::AlreadyRunning));
        id = format!("s{}", lost + 1);
        let actions = g.on(JoinEvent::Registered(id.clone()));
        assert_eq!(actions[..2], [Notice(JoinNotice::Registered), Handshake]);
        if lost <= LOST_REGISTRATIONS_MAX {
            assert_eq!(
                actions[2..],
                [PrepareExchange, waiting(Waiting::Connection)],
                "goes on after loss {lost}"
            );
        } else {
            // The bound: the call ends, after the new registration is in.
            assert_eq!(actions[2..], [failed(JoinFailure::SessionLost)]);
        }
        assert!(!started(&actions));
    }
    assert!(!g.join.call_running());
}

#[test]
fn deleted_in_the_lobby_the_guest_registers_again_asks_the_lobby_and_the_call_goes_on() {
    let mut g = Guest::in_lobby();
    g.call();
    // PeerWave deleted the guest after answering its lobby request (another guest's
    // registration crossed it, or a restart): the check finds out.
    assert_eq!(g.at(T0 + STATUS_CHECK_MS), [CheckStatus]);
    assert_eq!(g.on(JoinEvent::StatusChecked(Status::Gone)), LOST);
    assert!(g.join.call_running());
    g.now += 40;
    // Nothing for the page to do: the new registration goes to the lobby and the same call
    // waits for the host (all that "Try again" would have done).
    assert_eq!(
        g.on(JoinEvent::Registered(s("s2"))),
        [
            Notice(JoinNotice::Registered),
            Handshake,
            PrepareExchange,
            waiting(Waiting::Connection)
        ]
    );
    assert_eq!(g.join.exchange_key(g.now), Err(CallRefused::AlreadyRunning));
    assert_eq!(
        g.on(JoinEvent::Authenticated(s("s2"))),
        [
            RequestAdmission,
            PrepareExchange,
            waiting(Waiting::Admission)
        ]
    );
    assert_eq!(g.on(JoinEvent::LobbyAnswered(LobbyAnswer::InLobby)), []);
    // An admission for the lost registration is not this guest's (only a moment to check).
    assert_eq!(g.on(JoinEvent::Admitted(s("s1"))), [CheckStatus]);
    assert!(started(&g.on(JoinEvent::Admitted(s("s2")))));
}

#[test]
fn the_host_admits_a_registration_peerwave_had_already_deleted_and_the_call_goes_on() {
    // Two guests join at once: PeerWave deletes this one between reading its session and
    // answering its lobby request, so the lobby still lists it and the host admits it.
    let mut g = Guest::in_lobby();
    g.call();
    let actions = g.on(JoinEvent::Admitted(s("s1")));
    assert!(started(&actions));
    // The first call the exchange makes (the prekey count) answers "Session not found".
    assert_eq!(g.on(JoinEvent::RegistrationLost), LOST);
    // A late outcome of the dropped exchange ends nothing.
    let failure = ExchangeFailure::NoParticipants(Vec::new());
    assert!(g.on(JoinEvent::ExchangeFailed(failure)).is_empty());
    assert!(g.join.call_running());
    let actions = g.on(JoinEvent::Registered(s("s2")));
    assert!(
        !actions.contains(&failed(JoinFailure::SessionLost)),
        "{actions:?}"
    );
    assert_eq!(g.on(JoinEvent::Authenticated(s("s2")))[0], RequestAdmission);
    assert!(g
        .on(JoinEvent::LobbyAnswered(LobbyAnswer::InLobby))
        .is_empty());
    // The old admission again (a repeated notice) is not this registration's.
    assert!(!started(&g.on(JoinEvent::Admitted(s("s1")))));
    assert!(started(&g.on(JoinEvent::Admitted(s("s2")))));
    let actions = g.on(JoinEvent::KeyDelivered);
    assert!(
        matches!(actions.last(), Some(Settle(CallOutcome::Key { .. }))),
        "{actions:?}"
    );
    assert!(!g.join.call_running());
}

#[test]
fn lost_in_the_lobby_again_and_again_the_call_ends_after_three_new_registrations() {
    let mut g = Guest::in_lobby();
    g.call();
    for lost in 1..=LOST_REGISTRATIONS_MAX + 1 {
        let actions = g.on(JoinEvent::StatusChecked(Status::Gone));
        assert_spread_wait(lost, registering_again(&mut g, actions));
        let id = format!("s{}", lost + 1);
        let actions = g.on(JoinEvent::Registered(id.clone()));
        if lost > LOST_REGISTRATIONS_MAX {
            assert_eq!(actions.last(), Some(&failed(JoinFailure::SessionLost)));
            break;
        }
        assert!(!actions.contains(&failed(JoinFailure::SessionLost)));
        g.on(JoinEvent::Authenticated(id.clone()));
        g.on(JoinEvent::LobbyAnswered(LobbyAnswer::InLobby));
    }
    assert!(!g.join.call_running());
}

#[test]
fn try_again_while_the_sdk_registers_again_waits_for_the_registration() {
    let mut g = Guest::in_lobby();
    g.call();
    g.on(JoinEvent::StatusChecked(Status::Gone));
    let mut g2 = Guest::in_lobby();
    // Without a call: the loss is noticed; a call made during the new registration waits.
    assert_eq!(g2.on(JoinEvent::RegistrationLost), LOST);
    assert_eq!(g2.call(), []);
    assert_eq!(
        g2.on(JoinEvent::Registered(s("s2"))),
        [
            Notice(JoinNotice::Registered),
            Handshake,
            PrepareExchange,
            waiting(Waiting::Connection)
        ]
    );
    // The SDK's registration failing ends the waiting call.
    let mut g3 = Guest::in_lobby();
    g3.on(JoinEvent::RegistrationLost);
    g3.call();
    assert_eq!(
        g3.on(JoinEvent::RegistrationFailed),
        [failed(JoinFailure::SessionLost)]
    );
    assert_eq!(
        g3.join.exchange_key(g3.now),
        Err(CallRefused::NotRegistered)
    );
}

#[test]
fn a_restart_after_admission_sends_the_guest_back_to_the_lobby_and_the_same_call_goes_on() {
    let (mut g, _) = Guest::open(WireProfile::PeerWave, Some(("s1", true)), Link::Down);
    g.call();
    assert_eq!(g.on(JoinEvent::Authenticated(s("s1"))), [StartExchange]);
    // The keybundle fetch answers 404 "Session not found": the server restarted.
    assert_eq!(g.on(JoinEvent::RegistrationLost), LOST);
    assert!(!g.join.admitted());
    assert!(g.join.call_running());
    let actions = g.on(JoinEvent::Registered(s("s2")));
    assert!(
        !actions.contains(&failed(JoinFailure::SessionLost)),
        "{actions:?}"
    );
    // The new registration goes to the lobby on its own: the host must let it in again,
    // and nothing starts before that.
    let actions = g.on(JoinEvent::Authenticated(s("s2")));
    assert_eq!(actions[0], RequestAdmission);
    assert!(!started(&actions));
    assert!(g
        .on(JoinEvent::LobbyAnswered(LobbyAnswer::InLobby))
        .is_empty());
    assert!(started(&g.on(JoinEvent::Admitted(s("s2")))));
}

#[test]
fn the_plan_profile_keeps_its_registration_when_an_answer_names_a_lost_session() {
    let mut g = Guest::registered(WireProfile::Plan, Link::Up);
    g.on(JoinEvent::Admitted(s("s1")));
    assert_eq!(g.call(), [StartExchange]);
    assert!(g.on(JoinEvent::RegistrationLost).is_empty());
    assert!(g
        .on(JoinEvent::HandshakeRefused { session_gone: true })
        .is_empty());
    assert_eq!(g.join.session_id(), Some("s1"));
    assert!(g.join.call_running());
}

#[test]
fn leave_in_every_state_ends_the_call_and_everything_after_it() {
    type Setup = fn() -> Guest;
    let states: [(&str, Setup, bool); 7] = [
        (
            "unregistered",
            || Guest::open(WireProfile::PeerWave, None, Link::Down).0,
            false,
        ),
        (
            "registered, idle",
            || Guest::registered(WireProfile::PeerWave, Link::Down),
            false,
        ),
        (
            "waiting for the socket",
            || {
                let mut g = Guest::registered(WireProfile::PeerWave, Link::Down);
                g.call();
                g
            },
            true,
        ),
        (
            "waiting in the lobby",
            || {
                let mut g = Guest::in_lobby();
                g.call();
                g
            },
            true,
        ),
        (
            "cooling down",
            || {
                let mut g = Guest::registered(WireProfile::PeerWave, Link::Down);
                g.on(JoinEvent::Authenticated(s("s1")));
                g.call();
                g.on(JoinEvent::LobbyAnswered(LobbyAnswer::TryLater));
                g
            },
            true,
        ),
        (
            "exchanging",
            || {
                let mut g = Guest::registered(WireProfile::Plan, Link::Up);
                g.on(JoinEvent::Admitted(s("s1")));
                g.call();
                g
            },
            true,
        ),
        (
            "registering again",
            || {
                let mut g = Guest::in_lobby();
                g.call();
                g.on(JoinEvent::RegistrationLost);
                g
            },
            true,
        ),
    ];
    for (name, setup, running) in states {
        let mut g = setup();
        let expected = if running {
            vec![failed(JoinFailure::Left)]
        } else {
            vec![]
        };
        assert_eq!(g.on(JoinEvent::Leave), expected, "{name}");
        assert_eq!(g.join.poll_timeout(), None, "{name}: no deadline left");
        assert_eq!(g.at(T0 + ADMISSION_MS * 2), [], "{name}");
        for event in [
            JoinEvent::Registered(s("s9")),
            JoinEvent::Authenticated(s("s1")),
            JoinEvent::Admitted(s("s1")),
            JoinEvent::RegistrationLost,
            JoinEvent::SocketConnected,
            JoinEvent::Leave,
        ] {
            assert!(g.on(event).is_empty(), "{name}: nothing after leave()");
        }
        assert_eq!(g.join.exchange_key(g.now), Err(CallRefused::Left), "{name}");
    }
}

#[test]
fn deadlines_fire_at_exactly_their_millisecond_and_only_once() {
    let mut g = Guest::registered(WireProfile::PeerWave, Link::Down);
    g.call();
    assert_eq!(g.join.poll_timeout(), Some(T0 + CONNECT_MS));
    assert_eq!(g.at(T0 + CONNECT_MS - 1), []);
    let at = g.at(T0 + CONNECT_MS);
    assert_eq!(at, [failed(JoinFailure::NotConnected(CONNECT_MS))]);
    // Twice, late, or with a clock that went back: nothing more.
    assert_eq!(g.at(T0 + CONNECT_MS), []);
    assert_eq!(g.at(T0 + 3 * CONNECT_MS), []);
    assert_eq!(g.join.handle_timeout(T0), []);
    assert_eq!(g.join.poll_timeout(), None);
}

#[test]
fn the_exchange_ends_the_call_only_while_it_runs() {
    let mut g = Guest::registered(WireProfile::Plan, Link::Up);
    // A key update with no call running (the exchange delivered one earlier): nothing to settle.
    assert!(g.on(JoinEvent::KeyDelivered).is_empty());
    assert_eq!(
        g.call(),
        [QueryAdmission, PrepareExchange, waiting(Waiting::Admission)]
    );
    // Only a running exchange ends the call this way.
    assert!(g.on(JoinEvent::KeyDelivered).is_empty());
    let failure = ExchangeFailure::NoParticipants(Vec::new());
    assert!(g.on(JoinEvent::ExchangeFailed(failure.clone())).is_empty());
    g.on(JoinEvent::Admitted(s("s1")));
    assert_eq!(
        g.on(JoinEvent::ExchangeFailed(failure.clone())),
        [failed(JoinFailure::Exchange(failure))]
    );
    assert_eq!(g.call(), [StartExchange]);
    assert_eq!(
        g.on(JoinEvent::KeyRefused),
        [failed(JoinFailure::KeyRefused)]
    );
}

#[test]
fn calls_are_refused_before_registration_and_while_one_runs() {
    let (mut g, _) = Guest::open(WireProfile::Plan, None, Link::Up);
    assert_eq!(g.join.exchange_key(T0), Err(CallRefused::NotRegistered));
    // The page's registration failing changes nothing.
    assert!(g.on(JoinEvent::RegistrationFailed).is_empty());
    assert_eq!(g.join.exchange_key(T0), Err(CallRefused::NotRegistered));
    g.on(JoinEvent::Registered(s("s1")));
    g.call();
    assert_eq!(g.join.exchange_key(T0), Err(CallRefused::AlreadyRunning));
    // A duplicated tab drops the copied registration before anything is sent.
    let (mut copy, _) = Guest::open(WireProfile::Plan, Some(("s1", false)), Link::Up);
    copy.on(JoinEvent::Unregistered);
    assert_eq!(copy.join.exchange_key(T0), Err(CallRefused::NotRegistered));
}

#[test]
fn nothing_starts_without_admission_whatever_the_socket_does() {
    let mut g = Guest::registered(WireProfile::PeerWave, Link::Down);
    g.call();
    let mut seen = Vec::new();
    let noise = [
        JoinEvent::SocketConnected,
        JoinEvent::Authenticated(s("s1")),
        JoinEvent::LobbyAnswered(LobbyAnswer::InLobby),
        JoinEvent::Admitted(s("someone")),
        JoinEvent::StatusChecked(Status::Waiting),
        JoinEvent::SocketDisconnected { reconnecting: true },
        JoinEvent::Authenticated(s("s1")),
        JoinEvent::StatusChecked(Status::Unknown),
        JoinEvent::Declined(s("someone else")),
    ];
    for event in noise {
        seen.extend(g.on(event));
        g.now += 100;
        seen.extend(g.join.handle_timeout(g.now));
    }
    assert!(!started(&seen), "{seen:?}");
    assert!(g.on(JoinEvent::Admitted(s("s1"))).contains(&StartExchange));
}

#[test]
fn a_reload_reuses_a_registration_unless_it_was_waiting_in_peerwaves_lobby() {
    let peerwave = WireProfile::PeerWave.join_rules();
    assert!(
        peerwave.reuses_stored(true),
        "admitted: PeerWave says so once; kept"
    );
    assert!(
        !peerwave.reuses_stored(false),
        "PeerWave marked the waiting guest as gone"
    );
    let plan = WireProfile::Plan.join_rules();
    assert!(plan.reuses_stored(true) && plan.reuses_stored(false));
}

#[test]
fn a_server_that_forgets_every_registration_gets_a_few_at_once_then_fewer_and_fewer() {
    // A server that refuses every handshake and then says the guest is gone: left alone, the
    // guest would register new keys in a tight loop (on PeerWave, each registration deletes
    // the other guests on their way to the lobby).
    let mut g = Guest::registered(WireProfile::PeerWave, Link::Down);
    let mut registrations: Vec<u64> = Vec::new();
    let mut id = 1;
    let end = T0 + 120_000;
    while g.now < end {
        // The handshake is refused and the status check says the registration is gone.
        assert_eq!(
            g.on(JoinEvent::HandshakeRefused { session_gone: true }),
            [CheckStatus]
        );
        let actions = g.on(JoinEvent::StatusChecked(Status::Gone));
        registering_again(&mut g, actions);
        registrations.push(g.now);
        id += 1;
        g.now += 20; // the server answers at once
        assert_eq!(g.on(JoinEvent::Registered(format!("s{id}")))[1], Handshake);
    }
    let gaps: Vec<u64> = registrations.windows(2).map(|w| w[1] - w[0]).collect();
    // Four soon (guests joining together knock each other out: the first at once, the next
    // three after a wait of this guest's own), then 5, 10, 20, 40 s and a minute between them.
    assert_eq!(gaps.len(), 8, "{registrations:?}");
    for (i, gap) in gaps[..3].iter().enumerate() {
        assert_spread_wait(i as u8 + 2, gap - 20);
    }
    assert_eq!(
        gaps[3..],
        [5_020, 10_020, 20_020, 40_020, 60_020],
        "{registrations:?}"
    );
    // A re-registration held back is not made after leave().
    let held_back = g.join.poll_timeout().is_some();
    g.on(JoinEvent::HandshakeRefused { session_gone: true });
    let actions = g.on(JoinEvent::StatusChecked(Status::Gone));
    assert_eq!(
        actions,
        [Notice(JoinNotice::SessionLost)],
        "held back ({held_back})"
    );
    g.on(JoinEvent::Leave);
    assert_eq!(g.join.poll_timeout(), None);
    assert!(g.at(g.now + 120_000).is_empty());
    // A quiet minute starts the count afresh.
    let mut g = Guest::registered(WireProfile::PeerWave, Link::Down);
    for round in 0..2 {
        for n in 1..=RENEWALS_AT_ONCE {
            g.on(JoinEvent::HandshakeRefused { session_gone: true });
            let actions = g.on(JoinEvent::StatusChecked(Status::Gone));
            let waited = registering_again(&mut g, actions);
            assert!(n > 1 || waited == 0, "round {round}: the first at once");
            assert!(waited < RENEWAL_BACKOFF_FLOOR_MS, "round {round}: soon");
            g.on(JoinEvent::Registered(s("again")));
        }
        g.now += RENEWAL_QUIET_MS;
    }
}

/// The long waits start at 5 s.
const RENEWAL_BACKOFF_FLOOR_MS: u64 = 5_000;

#[test]
fn two_guests_that_knock_each_other_out_come_back_at_different_times() {
    // On PeerWave a registration deletes every guest not yet in the lobby: two guests joining
    // together can each register again at once and delete the other again, in turn. From the
    // second loss in a row each waits long enough for the other to reach the lobby, and for a
    // time of its own, taken from its lost session id.
    let waits: Vec<u64> = ["guest-a-1", "guest-b-1"]
        .iter()
        .map(|first| {
            let mut g = Guest::registered(WireProfile::PeerWave, Link::Down);
            g.on(JoinEvent::Registered(s(first)));
            g.call();
            g.on(JoinEvent::Authenticated(s(first)));
            let actions = g.on(JoinEvent::LobbyAnswered(LobbyAnswer::SessionGone));
            assert_eq!(registering_again(&mut g, actions), 0, "the first at once");
            g.now += 30;
            let second = format!("{first}-again");
            g.on(JoinEvent::Registered(second.clone()));
            g.on(JoinEvent::Authenticated(second));
            let actions = g.on(JoinEvent::LobbyAnswered(LobbyAnswer::SessionGone));
            let waited = registering_again(&mut g, actions);
            assert_spread_wait(2, waited);
            assert!(g.join.call_running(), "the call goes on");
            waited
        })
        .collect();
    assert_ne!(waits[0], waits[1], "{waits:?}");
}
