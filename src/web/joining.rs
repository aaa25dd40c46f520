//! Carries out the join machine's actions ([`crate::exchange::join::Join`]): the socket's
//! handshake, PeerWave's lobby request and status check, a new identity and registration
//! when the server lost the guest, and the end of an `exchangeKey()` call.

use crate::prelude::*;

use alloc::rc::Rc;

use wasm_bindgen::JsValue;

use super::bootstrap::fresh_keys;
use super::config::Config;
use super::driver::feed;
use super::error::{ExchangeKeyError, GuestError};
use super::events;
use super::http::{Http, Reply};
use super::instance::{emit, persist, with_usable, Input, Lifecycle, Shared};
use super::js::{get, object};
use super::registration;
use super::storage::REGISTRATION_ENTRY;
use super::tab;
use crate::exchange::contract::peerwave::{handshake as auth, paths};
use crate::exchange::join::{
    CallOutcome, JoinAction, JoinEvent, JoinFailure, JoinNotice, LobbyAnswer, Status,
};
use crate::exchange::messages::{livekit_token_request, names_lost_session};
use crate::exchange::stored::registration_record;
use crate::exchange::{Event, GuestState};

/// Carries out one action.
pub(crate) fn perform(shared: &Shared, action: JoinAction) {
    match action {
        JoinAction::ReplaceIdentity => replace_identity(shared),
        JoinAction::Register => register_again(shared),
        JoinAction::Handshake => handshake(shared),
        JoinAction::QueryAdmission => {
            if let Ok(socket) = with_usable(shared, |i| i.config.socket.clone()) {
                socket.query_admission();
            }
        }
        JoinAction::RequestAdmission => ask_server(shared, lobby_request, lobby_answer),
        JoinAction::CheckStatus => ask_server(shared, status_request, status_answer),
        JoinAction::PersistAdmitted => persist_admitted(shared),
        JoinAction::PrepareExchange => feed(shared, Input::Exchange(Event::Prepare)),
        JoinAction::StartExchange => feed(shared, Input::Exchange(Event::Start)),
        JoinAction::Notice(notice) => {
            let session_id = shared
                .try_borrow()
                .ok()
                .and_then(|i| i.join.session_id().map(String::from));
            emit(
                shared,
                notice_event(&notice, &session_id.unwrap_or_default()),
            );
        }
        JoinAction::Settle(outcome) => {
            let pending = shared
                .try_borrow_mut()
                .ok()
                .and_then(|mut i| i.pending.take());
            if let Some(deferred) = pending {
                deferred.settle(call_result(shared, outcome));
            }
        }
    }
}

/// What an ended `exchangeKey()` call resolves or rejects with.
pub(crate) fn call_result(shared: &Shared, outcome: CallOutcome) -> Result<JsValue, GuestError> {
    let failure = match outcome {
        CallOutcome::Key { elapsed_ms } => {
            let result = shared.try_borrow().ok().and_then(|i| {
                let delivered = i.lifecycle.exchange()?.delivered()?;
                Some(events::key_result(delivered, elapsed_ms as f64))
            });
            match result {
                Some(result) => return Ok(result),
                None => JoinFailure::KeyRefused,
            }
        }
        CallOutcome::Failed(failure) => failure,
    };
    Err(ExchangeKeyError::from(failure).into())
}

// Out of line, for the compressed size (see `driver::step`).
#[inline(never)]
fn notice_event(notice: &JoinNotice, session_id: &str) -> JsValue {
    match notice {
        JoinNotice::Waiting(what) => events::waiting(*what),
        JoinNotice::Admitted => events::admitted(),
        JoinNotice::SessionLost => events::session_lost(),
        JoinNotice::Registered => events::registered(session_id),
    }
}

/// Whether `reply` says the server forgot this guest (in a dialect whose server does); if
/// so, the join hears of it. Every call that names the session checks its answer.
pub(crate) fn reregister_if_lost(shared: &Shared, reply: &Reply) -> bool {
    let reregisters = shared
        .try_borrow()
        .is_ok_and(|i| i.config.profile().join_rules().reregisters);
    let lost = reregisters && names_lost_session(reply.status, &reply.body);
    if lost {
        feed(shared, Input::Join(JoinEvent::RegistrationLost));
    }
    lost
}

/// New keys: the server's copy of the old public ones is gone, and sessions built on them
/// are useless. Who answered and who did not is about the participants, still true.
#[inline(never)]
fn replace_identity(shared: &Shared) {
    let replaced = with_usable(shared, |instance| {
        let old = instance.lifecycle.state()?;
        let (last_answerer, unanswered) = (old.last_answerer.clone(), old.unanswered.clone());
        let mut rng = instance.rng;
        let mut state = GuestState::new(fresh_keys(&mut rng, instance.config.profile()));
        state.last_answerer = last_answerer;
        state.unanswered = unanswered;
        // What this guest learned of participants' identities holds for the new one too: a
        // participant whose key changed across the loss is still `identity_changed`.
        state.store.known_identities = old.store.known_identities.clone();
        // Dropping the exchange zeroizes the old keys and sessions.
        instance.lifecycle = Lifecycle::Unregistered(state);
        instance.storage.wipe();
        Some(())
    });
    if matches!(replaced, Ok(Some(()))) {
        persist(shared);
        // The new identity gets a lock of its own, so a tab duplicated from now on is a copy.
        tab::reclaim(shared);
    }
}

/// The SDK's own registration after a loss; the page hears of it through events.
#[inline(never)]
fn register_again(shared: &Shared) {
    let weak = Rc::downgrade(shared);
    registration::start(
        shared,
        Box::new(move |result| {
            if let (Some(shared), Err(e)) = (weak.upgrade(), result) {
                emit(&shared, events::error(&GuestError::from(e).into()));
            }
        }),
    );
}

/// Sets the socket's handshake `auth` for the current registration and (re)connects it,
/// so that the server authenticates this guest.
#[inline(never)]
fn handshake(shared: &Shared) {
    let Ok(Some((socket, auth))) = with_usable(shared, |instance| {
        let c = &instance.config;
        let auth = object(&[
            (auth::SESSION_ID, instance.join.session_id()?.into()),
            (auth::TOKEN, c.invitation_token.as_str().into()),
            (auth::MEETING_ID, c.meeting_id.as_str().into()),
        ]);
        Some((c.socket.clone(), auth))
    }) else {
        return;
    };
    socket.reconnect_with(&auth.into());
}

/// A request about the current registration: its URL and JSON body.
type Request = fn(&Config, &str) -> (String, String);

/// Sends a join request about the current registration (PeerWave) and feeds the answer,
/// read by `answer`, back to the join.
fn ask_server(shared: &Shared, request: Request, answer: fn(u16, &str) -> JoinEvent) {
    let Ok(Some((url, body, timeout))) = with_usable(shared, |instance| {
        let c = &instance.config;
        let (url, body) = request(c, instance.join.session_id()?);
        Some((url, body, c.request_timeout_ms))
    }) else {
        return;
    };
    let weak = Rc::downgrade(shared);
    Http::post_json(&url, &body, timeout, move |reply| {
        if let Some(shared) = weak.upgrade() {
            feed(&shared, Input::Join(answer(reply.status, &reply.body)));
        }
    });
}

/// Puts the guest in the host's lobby.
fn lobby_request(c: &Config, session_id: &str) -> (String, String) {
    let url = c.http.url(
        paths::REQUEST_ADMISSION,
        &[("meetingId", &c.meeting_id), ("sessionId", session_id)],
    );
    (url, "{}".into())
}

#[inline(never)]
fn lobby_answer(status: u16, body: &str) -> JoinEvent {
    JoinEvent::LobbyAnswered(LobbyAnswer::of_reply(status, body))
}

/// PeerWave's LiveKit token endpoint says whether the registration is still there and
/// admitted (the token itself is dropped).
fn status_request(c: &Config, session_id: &str) -> (String, String) {
    let url = c.http.url(&c.http.paths.livekit_token, &[]);
    (url, livekit_token_request(session_id, &c.meeting_id))
}

#[inline(never)]
fn status_answer(status: u16, body: &str) -> JoinEvent {
    JoinEvent::StatusChecked(Status::of_token_reply(status, body))
}

/// Keeps the admission with the registration: PeerWave does not say it again after a reload.
#[inline(never)]
fn persist_admitted(shared: &Shared) {
    let _ = with_usable(shared, |instance| {
        let session_id = instance.join.session_id()?;
        let record = registration_record(session_id, &instance.config.meeting_id, true);
        instance.storage.set(REGISTRATION_ENTRY, &record).ok()
    });
}

/// The session id a server notice names (`{session_id}`), or none.
pub(crate) fn named_session(body: &JsValue) -> String {
    get(body, "session_id").as_string().unwrap_or_default()
}
