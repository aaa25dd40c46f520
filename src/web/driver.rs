//! Drives the sans-I/O exchange in the page: HTTP for its fetches, the socket for its
//! messages, one timer at its deadline, storage after each state change. Follows the
//! driver contract on [`crate::exchange::Exchange`]: inputs are queued and fed one at a
//! time, actions are carried out in order, and the timer is re-armed after every batch.

use crate::prelude::*;

use alloc::rc::Rc;

use js_sys::Promise;
use wasm_bindgen::prelude::*;

use super::deferred::Deferred;
use super::delivery::deliver_key;
use super::error::{ExchangeKeyError, GuestError, UsageError};
use super::events;
use super::gate;
use super::http::{Http, Reply};
use super::instance::{emit, has_left, persist, with_usable, Input, Lifecycle, Pending, Shared};
use super::js::{now_ms, stringify};
use super::platform::Timeout;
use super::session_loss;
use crate::exchange::contract::{peerwave, GUEST_SESSION_HEADER};
use crate::exchange::messages::{Invalid, MAX_BODY_BYTES};
use crate::exchange::{Action, DropReason, Event, Exchange, ExchangeFailure, ParticipantId};

/// `exchangeKey()`: resolves with the key result, or rejects with a `GuestError`.
pub(crate) fn exchange_key(shared: &Shared) -> Promise {
    let setup = with_usable(shared, |instance| {
        let Lifecycle::Registered(exchange) = &instance.lifecycle else {
            return Err(ExchangeKeyError::Usage(UsageError::NotRegistered));
        };
        if instance.pending.is_some() {
            return Err(UsageError::AlreadyRunning("exchangeKey()").into());
        }
        if let Some(delivered) = exchange.delivered() {
            // The key provider already has the key: answer at once.
            return Ok(Some(events::key_result(delivered, 0.0)));
        }
        Ok(None)
    })
    .map_err(ExchangeKeyError::from)
    .and_then(|setup| setup);
    match setup {
        Err(e) => Promise::reject(&GuestError::from(e).into()),
        Ok(Some(done)) => Promise::resolve(&done),
        Ok(None) => {
            let (promise, deferred) = Deferred::new();
            if let (Some(deferred), Ok(mut instance)) = (deferred, shared.try_borrow_mut()) {
                instance.pending = Some(Pending {
                    deferred,
                    started_at: now_ms(),
                    lost_registrations: 0,
                });
            }
            gate::start_when_ready(shared);
            promise
        }
    }
}

/// A participant message from the socket.
pub(crate) fn on_socket_message(shared: &Shared, body: &JsValue) {
    match stringify(body).filter(|s| s.len() <= MAX_BODY_BYTES * 2) {
        Some(text) => feed(shared, Input::Event(Event::MessageReceived(text))),
        None => emit(
            shared,
            events::dropped(&DropReason::MalformedEvent(Invalid {
                field: "event",
                problem: "not serializable or too large",
            })),
        ),
    }
}

/// Queues `input` and, unless already inside the loop, feeds queued inputs one by one.
pub(crate) fn feed(shared: &Shared, input: Input) {
    {
        let Ok(mut instance) = shared.try_borrow_mut() else {
            return;
        };
        if matches!(instance.lifecycle, Lifecycle::Left) {
            return;
        }
        instance.queue.push_back(input);
        if instance.dispatching {
            return;
        }
        instance.dispatching = true;
    }
    loop {
        let actions = {
            let Ok(mut instance) = shared.try_borrow_mut() else {
                return;
            };
            let Some(input) = instance.queue.pop_front() else {
                instance.dispatching = false;
                break;
            };
            let mut rng = instance.rng;
            match (&mut instance.lifecycle, input) {
                (Lifecycle::Registered(exchange), Input::Event(event)) => {
                    exchange.handle(event, now_ms(), &mut rng)
                }
                (Lifecycle::Registered(exchange), Input::Deadline) => {
                    exchange.handle_timeout(now_ms(), &mut rng)
                }
                _ => Vec::new(),
            }
        };
        // Armed before the actions are carried out, so that the attempt's deadline fires
        // before a fetch started by them is aborted at the same moment.
        rearm_timer(shared);
        for action in actions {
            // An `onEvent` handler may have called `leave()`: nothing more may happen.
            if has_left(shared) {
                break;
            }
            perform(shared, action);
        }
    }
    rearm_timer(shared);
}

/// Keeps one timer, at the exchange's current deadline (dropping a `Timeout` cancels it).
fn rearm_timer(shared: &Shared) {
    let Ok(mut instance) = shared.try_borrow_mut() else {
        return;
    };
    let deadline = instance
        .lifecycle
        .exchange()
        .and_then(Exchange::poll_timeout);
    if instance.timer.as_ref().map(|(at, _)| *at) == deadline {
        return;
    }
    instance.timer = deadline.map(|at| {
        let delay = u32::try_from(at.saturating_sub(now_ms())).unwrap_or(u32::MAX);
        let weak = Rc::downgrade(shared);
        let timeout = Timeout::new(delay, move || {
            if let Some(shared) = weak.upgrade() {
                if let Ok(mut instance) = shared.try_borrow_mut() {
                    instance.timer = None;
                }
                feed(&shared, Input::Deadline);
            }
        });
        (at, timeout)
    });
}

fn perform(shared: &Shared, action: Action) {
    match action {
        Action::ListParticipants => list_participants(shared),
        Action::CountPreKeys => pre_keys(shared, None),
        Action::PublishPreKeys { body } => pre_keys(shared, Some(body)),
        Action::FetchBundle { participant } => fetch_bundle(shared, participant),
        Action::Send { participant, body } => send(shared, participant, &body),
        Action::PersistState => persist(shared),
        Action::DeliverKey { key, delivered } => deliver_key(shared, key, delivered),
        Action::Progress(p) => emit(shared, events::progress(&p)),
        Action::Dropped(reason) => emit(shared, events::dropped(&reason)),
        Action::Failed(failure) => fail(shared, failure),
    }
}

fn list_participants(shared: &Shared) {
    let Ok(Some((url, session_id, timeout))) = with_usable(shared, |instance| {
        let exchange = instance.lifecycle.exchange()?;
        let c = &instance.config;
        let url = c.http.url(
            &c.http.paths.participants,
            &[
                ("meetingId", &c.meeting_id),
                ("invitationToken", &c.invitation_token),
            ],
        );
        Some((
            url,
            exchange.guest_session_id().to_owned(),
            c.fetch_timeout_ms(),
        ))
    }) else {
        return;
    };
    let weak = Rc::downgrade(shared);
    Http::get(
        &url,
        &[(GUEST_SESSION_HEADER, &session_id)],
        timeout,
        move |reply| {
            if let Some(shared) = weak.upgrade() {
                let listed = Event::ParticipantsListed(reply.into_result());
                feed(&shared, Input::Event(listed));
            }
        },
    );
}

/// PeerWave: lists (`None`) or publishes (`Some(body)`) the guest's one-time prekeys.
fn pre_keys(shared: &Shared, body: Option<String>) {
    let Ok(Some((url, timeout))) = with_usable(shared, |instance| {
        let session_id = instance.lifecycle.exchange()?.guest_session_id();
        let c = &instance.config;
        let url = c
            .http
            .url(peerwave::paths::PRE_KEYS, &[("sessionId", session_id)]);
        Some((url, c.fetch_timeout_ms()))
    }) else {
        return;
    };
    let weak = Rc::downgrade(shared);
    let done = move |reply: Reply| {
        if let Some(shared) = weak.upgrade() {
            feed(
                &shared,
                Input::Event(Event::ServerPreKeys(reply.into_result())),
            );
        }
    };
    match body {
        None => Http::get(&url, &[], timeout, done),
        Some(body) => Http::post_json(&url, &body, timeout, done),
    }
}

fn fetch_bundle(shared: &Shared, participant: ParticipantId) {
    let Ok(Some((url, timeout))) = with_usable(shared, |instance| {
        let session_id = instance.lifecycle.exchange()?.guest_session_id();
        let c = &instance.config;
        let url = c.http.url(
            &c.http.paths.participant_keys,
            &[
                ("sessionId", session_id),
                ("userId", &participant.user_id),
                ("deviceId", &participant.device_id),
            ],
        );
        Some((url, c.fetch_timeout_ms()))
    }) else {
        return;
    };
    let weak = Rc::downgrade(shared);
    Http::get(&url, &[], timeout, move |reply| {
        if let Some(shared) = weak.upgrade() {
            if session_loss::reregister_if_lost(&shared, &reply) {
                return;
            }
            let result = reply.into_result();
            let fetched = Event::BundleFetched {
                participant,
                result,
            };
            feed(&shared, Input::Event(fetched));
        }
    });
}

fn send(shared: &Shared, participant: ParticipantId, body: &str) {
    let Ok((socket, event)) = with_usable(shared, |instance| {
        let c = &instance.config;
        (c.socket.clone(), c.profile().names().guest_event)
    }) else {
        return;
    };
    if !socket.send_guest_message(event, body) {
        feed(shared, Input::Event(Event::SendFailed { participant }));
    }
}

fn fail(shared: &Shared, failure: ExchangeFailure) {
    let pending = shared
        .try_borrow_mut()
        .ok()
        .and_then(|mut instance| instance.pending.take());
    let error: JsValue = GuestError::from(ExchangeKeyError::Failed(failure.clone())).into();
    emit(shared, events::failed(&failure, &error));
    if let Some(p) = pending {
        p.deferred.reject_with(&error);
    }
}
