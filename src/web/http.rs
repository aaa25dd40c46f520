//! HTTP to the meeting server with the Fetch API. Paths are templates (defaults in
//! [`crate::exchange::contract::Names`]).

use crate::prelude::*;

use alloc::boxed::Box;

use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;

use super::error::SetupError;
use super::js::{as_count, get, is_absent, object};
use crate::exchange::contract::WireProfile;
use crate::exchange::HttpFailure;

/// Path templates; `{name}` is replaced by the URI-encoded value.
#[derive(Debug, Clone)]
pub(crate) struct Paths {
    pub register: String,
    pub participants: String,
    pub participant_keys: String,
    pub livekit_token: String,
}

impl Paths {
    /// The profile's paths, with the page's overrides (`paths` in the configuration).
    pub(crate) fn from_js(
        value: &wasm_bindgen::JsValue,
        profile: WireProfile,
    ) -> Result<Self, SetupError> {
        let defaults = &profile.names().paths;
        let mut paths = Self {
            register: defaults.register.into(),
            participants: defaults.participants.into(),
            participant_keys: defaults.participant_keys.into(),
            livekit_token: defaults.livekit_token.into(),
        };
        if is_absent(value) {
            return Ok(paths);
        }
        for (name, slot) in [
            ("register", &mut paths.register),
            ("participants", &mut paths.participants),
            ("participantKeys", &mut paths.participant_keys),
            ("livekitToken", &mut paths.livekit_token),
        ] {
            let v = get(value, name);
            if is_absent(&v) {
                continue;
            }
            match v.as_string().filter(|p| p.starts_with('/')) {
                Some(p) => *slot = p,
                None => {
                    return Err(SetupError::InvalidConfig(format!(
                        "paths.{name} must be a string starting with '/'"
                    )))
                }
            }
        }
        Ok(paths)
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host == "[::1]"
        || host.strip_prefix("127.").is_some_and(|rest| {
            let mut parts = 0;
            rest.split('.').all(|p| {
                parts += 1;
                is_octet(p)
            }) && parts == 3
        })
}

/// What `p.parse::<u8>()` accepts (an optional `+`, then decimal digits worth at most 255),
/// without the integer parser.
fn is_octet(p: &str) -> bool {
    let digits = p.strip_prefix('+').unwrap_or(p);
    !digits.is_empty()
        && digits
            .bytes()
            .try_fold(0u32, |n, b| {
                b.is_ascii_digit()
                    .then(|| (n * 10 + u32::from(b - b'0')).min(256))
            })
            .is_some_and(|n| n < 256)
}

/// Why a `baseUrl` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BaseUrlError {
    /// Not parseable as an absolute URL.
    #[error("baseUrl is not an absolute URL")]
    NotAbsolute,
    /// Neither `http:` nor `https:`.
    #[error("baseUrl must be an http(s) URL")]
    NotHttp,
    /// Plain `http:` off loopback: keys and tokens would cross the network unprotected.
    #[error("baseUrl must use https: (plain http: is allowed only on loopback)")]
    Insecure,
}

/// `https:` everywhere; plain `http:` only on loopback.
pub(crate) fn check_base_url(base: &str) -> Result<String, BaseUrlError> {
    let url = web_sys::Url::new(base).map_err(|_| BaseUrlError::NotAbsolute)?;
    match url.protocol().as_str() {
        "https:" => {}
        "http:" if is_loopback(&url.hostname()) => {}
        "http:" => return Err(BaseUrlError::Insecure),
        _ => return Err(BaseUrlError::NotHttp),
    }
    Ok(format!(
        "{}{}",
        url.origin(),
        url.pathname().trim_end_matches('/')
    ))
}

#[derive(Debug, Clone)]
pub(crate) struct Http {
    pub base: String,
    pub paths: Paths,
}

/// What came back: status, `Retry-After` seconds, body.
pub(crate) struct Reply {
    pub status: u16,
    pub retry_after_s: Option<u32>,
    pub body: String,
    /// No answer before the deadline (status is 0).
    pub timed_out: bool,
}

impl Reply {
    pub(crate) fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub(crate) fn into_result(self) -> Result<String, HttpFailure> {
        if self.ok() {
            Ok(self.body)
        } else {
            Err(HttpFailure {
                status: self.status,
                retry_after_s: self.retry_after_s,
            })
        }
    }
}

impl Http {
    /// The base URL and `template` filled ([`crate::exchange::contract::fill_path`]).
    pub(crate) fn url(&self, template: &str, values: &[(&str, &str)]) -> String {
        let mut url = self.base.clone();
        url.push_str(&crate::exchange::contract::fill_path(template, values));
        url
    }

    /// GET, aborted after `timeout_ms` so that a hanging server does not hold one of the
    /// browser's few connections per host after the exchange has moved on.
    pub(crate) fn get(
        url: &str,
        headers: &[(&str, &str)],
        timeout_ms: u32,
        done: impl FnOnce(Reply) + 'static,
    ) {
        get_boxed(url, headers, timeout_ms, Box::new(done));
    }

    /// POST a JSON body, aborted after `timeout_ms` (0: no deadline).
    pub(crate) fn post_json(
        url: &str,
        body: &str,
        timeout_ms: u32,
        done: impl FnOnce(Reply) + 'static,
    ) {
        post_boxed(url, body, timeout_ms, Box::new(done));
    }
}

// The generic entry points above only box the callback; the rest is one function each.
fn get_boxed(url: &str, headers: &[(&str, &str)], timeout_ms: u32, done: Box<dyn FnOnce(Reply)>) {
    let fields: Vec<(&str, JsValue)> = headers.iter().map(|(k, v)| (*k, (*v).into())).collect();
    send(
        url,
        "GET",
        &object(&fields).into(),
        &JsValue::UNDEFINED,
        timeout_ms,
        done,
    );
}

fn post_boxed(url: &str, body: &str, timeout_ms: u32, done: Box<dyn FnOnce(Reply)>) {
    let headers = object(&[("Content-Type", "application/json".into())]);
    send(url, "POST", &headers.into(), &body.into(), timeout_ms, done);
}

fn send(
    url: &str,
    method: &str,
    headers: &JsValue,
    body: &JsValue,
    timeout_ms: u32,
    // Boxed: one instantiation of the closure glue for every request.
    done: Box<dyn FnOnce(Reply)>,
) {
    let callback = move |answer: JsValue| {
        done(Reply {
            status: as_count(&get(&answer, "status"), 999.0).unwrap_or(0) as u16,
            retry_after_s: get(&answer, "retryAfter")
                .as_string()
                .and_then(|v| v.trim().parse().ok()),
            body: get(&answer, "body").as_string().unwrap_or_default(),
            timed_out: get(&answer, "timedOut").as_bool() == Some(true),
        })
    };
    // The shim calls back exactly once, which frees the closure.
    fetch_text(
        url,
        method,
        headers,
        body,
        timeout_ms,
        Closure::once_into_js(callback),
    );
}

#[wasm_bindgen(module = "/src/web/shim.js")]
extern "C" {
    #[wasm_bindgen(js_name = fetchText)]
    fn fetch_text(
        url: &str,
        method: &str,
        headers: &JsValue,
        body: &JsValue,
        timeout_ms: u32,
        done: JsValue,
    );
}
