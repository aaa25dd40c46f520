//! `fetchLiveKitToken()`: the LiveKit access token, once the host has admitted the guest.

use crate::prelude::*;

use wasm_bindgen::JsValue;

use super::deferred::Deferred;
use super::error::{TokenError, UsageError};
use super::http::{Http, Reply};
use super::instance::{with_usable, Lifecycle, Shared};
use super::joining::reregister_if_lost;
use super::js::object;
use crate::exchange::messages::{livekit_token_request, parse_livekit_token};
use crate::exchange::HttpFailure;

// Out of line, for the compressed size (see `driver::step`).
#[inline(never)]
fn request(shared: &Shared) -> Result<(String, String, u32), TokenError> {
    with_usable(shared, |instance| {
        let Lifecycle::Registered(exchange) = &instance.lifecycle else {
            return Err(TokenError::Usage(UsageError::NotRegistered));
        };
        let c = &instance.config;
        let body = livekit_token_request(exchange.guest_session_id(), &c.meeting_id);
        let url = c.http.url(&c.http.paths.livekit_token, &[]);
        Ok((url, body, c.request_timeout_ms))
    })?
}

#[inline(never)]
fn answer(reply: Reply) -> Result<JsValue, TokenError> {
    if !reply.ok() {
        return Err(TokenError::Http(HttpFailure {
            status: reply.status,
            retry_after_s: reply.retry_after_s,
        }));
    }
    let t = parse_livekit_token(&reply.body).map_err(TokenError::Malformed)?;
    Ok(object(&[
        ("token", t.token.into()),
        ("url", t.url.into()),
        ("roomName", t.room_name.into()),
        ("identity", t.identity.into()),
    ])
    .into())
}

/// Settles `deferred` with the token or a `GuestError`.
pub(crate) fn fetch_livekit_token(shared: &Shared, deferred: Deferred) {
    match request(shared) {
        Err(e) => deferred.settle(Err(e.into())),
        Ok((url, body, timeout_ms)) => {
            let shared = shared.clone();
            Http::post_json(&url, &body, timeout_ms, move |reply| {
                let result = if reregister_if_lost(&shared, &reply) {
                    Err(TokenError::SessionLost)
                } else {
                    answer(reply)
                };
                deferred.settle(result.map_err(Into::into))
            })
        }
    }
}
