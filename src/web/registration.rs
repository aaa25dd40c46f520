//! `register()`: the guest's public keys (never a private key) go to the server with the
//! invitation token; the server's session id is kept for this tab.

use crate::prelude::*;

use alloc::boxed::Box;

use wasm_bindgen::JsValue;

use super::deferred::Deferred;
use super::driver::feed;
use super::error::{RegisterError, UsageError};
use super::events;
use super::http::{Http, Reply};
use super::instance::{emit, with_usable, Input, Lifecycle, Shared};
use super::js::object;
use super::storage::REGISTRATION_ENTRY;
use crate::exchange::join::JoinEvent;
use crate::exchange::messages::{parse_registration, registration_body};
use crate::exchange::stored::registration_record;
use crate::exchange::{Exchange, HttpFailure};

fn result(session_id: &str, reused: bool) -> JsValue {
    object(&[("sessionId", session_id.into()), ("reused", reused.into())]).into()
}

enum Next {
    /// Registered earlier (in this tab): the answer to give.
    Done(JsValue),
    Send {
        url: String,
        body: String,
        timeout_ms: u32,
    },
}

// Out of line, for the compressed size (see `driver::step`).
#[inline(never)]
fn begin(shared: &Shared) -> Result<Next, RegisterError> {
    with_usable(shared, |instance| {
        let lifecycle = core::mem::replace(&mut instance.lifecycle, Lifecycle::Left);
        let (lifecycle, next) = match lifecycle {
            Lifecycle::Registered(exchange) => {
                let done = result(exchange.guest_session_id(), true);
                (Lifecycle::Registered(exchange), Ok(Next::Done(done)))
            }
            Lifecycle::Unregistered(state) => match state.store.public_keys() {
                Some(keys) => {
                    let c = &instance.config;
                    let body = registration_body(
                        &keys,
                        &c.invitation_token,
                        &c.meeting_id,
                        &c.display_name,
                        c.profile().names(),
                    );
                    let url = c.http.url(&c.http.paths.register, &[]);
                    let timeout_ms = c.request_timeout_ms;
                    let send = Next::Send {
                        url,
                        body,
                        timeout_ms,
                    };
                    (Lifecycle::Registering(state), Ok(send))
                }
                None => (
                    Lifecycle::Unregistered(state),
                    Err(RegisterError::Usage(UsageError::Unavailable)),
                ),
            },
            other @ Lifecycle::Registering(_) => (
                other,
                Err(RegisterError::Usage(UsageError::AlreadyRunning(
                    "register()",
                ))),
            ),
            Lifecycle::Left => (Lifecycle::Left, Err(RegisterError::Usage(UsageError::Left))),
        };
        instance.lifecycle = lifecycle;
        next
    })?
}

/// Settles `deferred` with the registration's outcome.
pub(crate) fn register(shared: &Shared, deferred: Deferred) {
    start(
        shared,
        Box::new(move |result| deferred.settle(result.map_err(Into::into))),
    );
}

/// What is called with a registration's outcome (one type, so that `start` is one function).
pub(crate) type Done = Box<dyn FnOnce(Result<JsValue, RegisterError>)>;

/// Registers (or finds the stored registration) and calls `done` with the outcome.
pub(crate) fn start(shared: &Shared, done: Done) {
    match begin(shared) {
        Err(e) => done(Err(e)),
        Ok(Next::Done(answer)) => done(Ok(answer)),
        Ok(Next::Send {
            url,
            body,
            timeout_ms,
        }) => {
            emit(shared, events::registering());
            let shared = shared.clone();
            Http::post_json(&url, &body, timeout_ms, move |reply| {
                let result = finish(&shared, reply, timeout_ms);
                // The join goes on from the new registration (PeerWave: its handshake).
                let event = match &result {
                    Ok((_, session_id)) => JoinEvent::Registered(session_id.clone()),
                    Err(_) => JoinEvent::RegistrationFailed,
                };
                feed(&shared, Input::Join(event));
                done(result.map(|(answer, _)| answer))
            });
        }
    }
}

#[inline(never)]
fn outcome(reply: Reply, meeting_id: &str, timeout_ms: u32) -> Result<String, RegisterError> {
    if reply.timed_out {
        return Err(RegisterError::Timeout(timeout_ms));
    }
    if !reply.ok() {
        return Err(RegisterError::Http(HttpFailure {
            status: reply.status,
            retry_after_s: reply.retry_after_s,
        }));
    }
    parse_registration(&reply.body, meeting_id).map_err(RegisterError::Malformed)
}

#[inline(never)]
fn finish(
    shared: &Shared,
    reply: Reply,
    timeout_ms: u32,
) -> Result<(JsValue, String), RegisterError> {
    let (session_id, storage_failure) = with_usable(shared, |instance| {
        let outcome = outcome(reply, &instance.config.meeting_id, timeout_ms);
        let state = match core::mem::replace(&mut instance.lifecycle, Lifecycle::Left) {
            Lifecycle::Registering(state) => state,
            // Only `leave()` moves a registering guest elsewhere, and that is checked above.
            other => {
                instance.lifecycle = other;
                return Err(RegisterError::Usage(UsageError::Unavailable));
            }
        };
        let session_id = match outcome {
            Ok(session_id) => session_id,
            Err(e) => {
                instance.lifecycle = Lifecycle::Unregistered(state);
                return Err(e);
            }
        };
        let record = registration_record(&session_id, &instance.config.meeting_id, false);
        let storage_failure = instance.storage.set(REGISTRATION_ENTRY, &record).err();
        instance.lifecycle = Lifecycle::Registered(Box::new(Exchange::new(
            instance.config.exchange.clone(),
            instance.config.meeting_id.clone(),
            session_id.clone(),
            state,
        )));
        Ok((session_id, storage_failure))
    })??;
    if let Some(reason) = storage_failure {
        emit(shared, events::storage_fallback(&reason.0));
    }
    Ok((result(&session_id, false), session_id))
}
