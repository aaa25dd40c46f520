//! Drives the sans-I/O exchange in the page: HTTP for its fetches, the socket for its
//! messages, one timer at its deadline, storage after each state change. Follows the
//! driver contract on [`crate::exchange::Exchange`]: inputs are queued and fed one at a
//! time, actions are carried out in order, and the timer is re-armed after every batch.
//! The page's `onEvent` hears the events of a batch after the queue has run dry: a send
//! that an input made (the prepared request at admission) does not wait for the page.

use crate::prelude::*;

use alloc::rc::Rc;

use wasm_bindgen::prelude::*;

use super::deferred::Deferred;
use super::delivery::deliver_key;
use super::error::{ExchangeKeyError, GuestError};
use super::events;
use super::http::{Http, Reply};
use super::instance::{emit, has_left, persist, with_usable, Input, Instance, Lifecycle, Shared};
use super::joining;
use super::js::{now_ms, stringify};
use super::platform::Timeout;
use crate::exchange::contract::{peerwave, GUEST_SESSION_HEADER};
use crate::exchange::join::{
    earliest, CallOutcome, CallRefused, JoinAction, JoinEvent, JoinFailure,
};
use crate::exchange::messages::{Invalid, MAX_EVENT_BYTES};
use crate::exchange::{Action, DropReason, Event, Exchange, ExchangeFailure, ParticipantId};

/// `exchangeKey()`: resolves with the key result, or rejects with a `GuestError`.
pub(crate) fn exchange_key(shared: &Shared, deferred: Deferred) {
    let delivered = with_usable(shared, |instance| {
        let exchange = instance.lifecycle.exchange();
        // The key provider already has the key: answer at once.
        !instance.join.call_running() && exchange.is_some_and(|e| e.delivered().is_some())
    });
    match delivered {
        Err(e) => deferred.settle(Err(e.into())),
        Ok(true) => deferred.settle(joining::call_result(
            shared,
            CallOutcome::Key { elapsed_ms: 0 },
        )),
        Ok(false) => feed(shared, Input::Call(deferred)),
    }
}

/// A participant message from the socket.
#[inline(never)]
pub(crate) fn on_socket_message(shared: &Shared, body: &JsValue) {
    match stringify(body, MAX_EVENT_BYTES) {
        Some(text) => feed(shared, Input::Exchange(Event::MessageReceived(text))),
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
        let Ok(mut instance) = shared.try_borrow_mut() else {
            return;
        };
        let Some(input) = instance.queue.pop_front() else {
            instance.dispatching = false;
            break;
        };
        let batch = step(&mut instance, input);
        drop(instance);
        // Armed before the actions are carried out, so that the attempt's deadline fires
        // before a fetch started by them is aborted at the same moment.
        rearm_timer(shared);
        batch.perform(shared);
    }
    rearm_timer(shared);
    // Now the page hears what the loop said, in order. A handler that feeds an input runs
    // the loop again, and that loop hands over the rest of the outbox first.
    while let Some(event) = shared
        .try_borrow_mut()
        .ok()
        .filter(|i| !i.dispatching)
        .and_then(|mut i| i.outbox.pop_front())
    {
        emit(shared, event);
    }
}

/// What one input made the machines ask for.
#[derive(Default)]
struct Batch {
    join: Vec<JoinAction>,
    exchange: Vec<Action>,
    /// `exchangeKey()` refused at once.
    refused: Option<(Deferred, CallRefused)>,
}

impl Batch {
    #[inline(never)]
    fn perform(self, shared: &Shared) {
        if let Some((deferred, refused)) = self.refused {
            deferred.settle(Err(GuestError::from(ExchangeKeyError::from(refused))));
        }
        for action in self.join {
            // An `onEvent` handler may have called `leave()`: nothing more may happen.
            if has_left(shared) {
                return;
            }
            joining::perform(shared, action);
        }
        for action in self.exchange {
            if has_left(shared) {
                return;
            }
            perform(shared, action);
        }
    }
}

/// Feeds one input to the machine it is for.
// Here and at each action's handler: kept out of line, since each inlined into `feed` makes
// one large function whose renumbered locals gzip worse (docs/performance.md, "Size").
#[inline(never)]
fn step(instance: &mut Instance, input: Input) -> Batch {
    let now = now_ms();
    let mut rng = instance.rng;
    let mut batch = Batch::default();
    match input {
        Input::Join(JoinEvent::SocketDisconnected { .. }) => {
            // Read now, not when the event fired: the SDK's own reconnect disconnects and
            // connects again in one go, and the socket is connecting by the time this runs.
            let reconnecting = instance.config.socket.is_active();
            let event = JoinEvent::SocketDisconnected { reconnecting };
            batch.join = instance.join.handle(event, now);
        }
        Input::Join(event) => batch.join = instance.join.handle(event, now),
        Input::Call(deferred) => match instance.join.exchange_key(now) {
            Ok(actions) => {
                instance.pending = Some(deferred);
                batch.join = actions;
            }
            Err(refused) => batch.refused = Some((deferred, refused)),
        },
        Input::Exchange(event) => {
            if let Lifecycle::Registered(exchange) = &mut instance.lifecycle {
                batch.exchange = exchange.handle(event, now, &mut rng);
            }
        }
        Input::Deadline => {
            batch.join = instance.join.handle_timeout(now);
            if let Lifecycle::Registered(exchange) = &mut instance.lifecycle {
                batch.exchange = exchange.handle_timeout(now, &mut rng);
            }
        }
    }
    batch
}

/// Keeps one timer, at the earlier deadline of the two machines (dropping a `Timeout`
/// cancels it).
fn rearm_timer(shared: &Shared) {
    let Ok(mut instance) = shared.try_borrow_mut() else {
        return;
    };
    let exchange = instance
        .lifecycle
        .exchange()
        .and_then(Exchange::poll_timeout);
    let deadline = earliest(exchange, instance.join.poll_timeout());
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

#[inline(never)]
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

#[inline(never)]
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
                feed(&shared, Input::Exchange(listed));
            }
        },
    );
}

/// PeerWave: lists (`None`) or publishes (`Some(body)`) the guest's one-time prekeys.
#[inline(never)]
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
                Input::Exchange(Event::ServerPreKeys(reply.into_result())),
            );
        }
    };
    match body {
        None => Http::get(&url, &[], timeout, done),
        Some(body) => Http::post_json(&url, &body, timeout, done),
    }
}

#[inline(never)]
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
            if joining::reregister_if_lost(&shared, &reply) {
                return;
            }
            let result = reply.into_result();
            let fetched = Event::BundleFetched {
                participant,
                result,
            };
            feed(&shared, Input::Exchange(fetched));
        }
    });
}

#[inline(never)]
fn send(shared: &Shared, participant: ParticipantId, body: &str) {
    let Ok((socket, event)) = with_usable(shared, |instance| {
        let c = &instance.config;
        (c.socket.clone(), c.profile().names().guest_event)
    }) else {
        return;
    };
    if !socket.send_guest_message(event, body) {
        feed(shared, Input::Exchange(Event::SendFailed { participant }));
    }
}

#[inline(never)]
fn fail(shared: &Shared, failure: ExchangeFailure) {
    let error: JsValue = GuestError::from(ExchangeKeyError::Ended(JoinFailure::Exchange(
        failure.clone(),
    )))
    .into();
    emit(shared, events::failed(&failure, &error));
    feed(shared, Input::Join(JoinEvent::ExchangeFailed(failure)));
}
