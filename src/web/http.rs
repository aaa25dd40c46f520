//! HTTP to the meeting server (contract §3) with the Fetch API. Paths are templates.

use crate::prelude::*;

use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;

use super::error::{ErrorCode, GuestError};
use super::js::{as_count, get, is_absent, object};
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
    pub(crate) fn from_js(value: &wasm_bindgen::JsValue) -> Result<Self, GuestError> {
        let mut paths = Self {
            register: "/api/meetings/external/register".into(),
            participants: "/api/meetings/external/{meetingId}/participants".into(),
            participant_keys:
                "/api/meetings/external/{sessionId}/participant/{userId}/{deviceId}/keys".into(),
            livekit_token: "/api/livekit/external-token".into(),
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
                    return Err(GuestError::new(
                        ErrorCode::InvalidConfig,
                        format!("paths.{name} must be a string starting with '/'"),
                    ))
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
            let parts: Vec<&str> = rest.split('.').collect();
            parts.len() == 3 && parts.iter().all(|p| p.parse::<u8>().is_ok())
        })
}

/// `https:` everywhere; plain `http:` only on loopback (contract §3).
pub(crate) fn check_base_url(base: &str) -> Result<String, GuestError> {
    let url = web_sys::Url::new(base)
        .map_err(|_| GuestError::new(ErrorCode::InvalidConfig, "baseUrl is not an absolute URL"))?;
    match url.protocol().as_str() {
        "https:" => {}
        "http:" if is_loopback(&url.hostname()) => {}
        "http:" => {
            return Err(GuestError::new(
                ErrorCode::InsecureOrigin,
                "baseUrl must use https: (plain http: is allowed only on loopback)",
            ))
        }
        _ => {
            return Err(GuestError::new(
                ErrorCode::InvalidConfig,
                "baseUrl must be an http(s) URL",
            ))
        }
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

    /// The error to surface for a failed non-exchange call.
    pub(crate) fn error(&self, what: &str) -> GuestError {
        let (code, text) = match self.status {
            0 => (ErrorCode::NetworkError, "network error"),
            429 => (ErrorCode::RateLimited, "rate limited"),
            400 => (ErrorCode::ProtocolError, "the server refused the request"),
            403 | 404 => (ErrorCode::RegistrationRejected, "rejected"),
            _ => (ErrorCode::HttpError, "failed"),
        };
        GuestError::new(code, format!("{what}: {text} (HTTP {})", self.status))
            .with_status(self.status)
    }
}

impl Http {
    pub(crate) fn url(&self, template: &str, values: &[(&str, &str)]) -> String {
        let mut path = template.to_owned();
        for (name, value) in values {
            let encoded = String::from(js_sys::encode_uri_component(value));
            path = path.replace(&format!("{{{name}}}"), &encoded);
        }
        format!("{}{path}", self.base)
    }

    /// GET, aborted after `timeout_ms` so that a hanging server does not hold one of the
    /// browser's few connections per host after the exchange has moved on.
    pub(crate) fn get(
        url: &str,
        headers: &[(&str, &str)],
        timeout_ms: u32,
        done: impl FnOnce(Reply) + 'static,
    ) {
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

    pub(crate) fn post_json(url: &str, body: &str, done: impl FnOnce(Reply) + 'static) {
        let headers = object(&[("Content-Type", "application/json".into())]);
        send(url, "POST", &headers.into(), &body.into(), 0, done);
    }
}

fn send(
    url: &str,
    method: &str,
    headers: &JsValue,
    body: &JsValue,
    timeout_ms: u32,
    done: impl FnOnce(Reply) + 'static,
) {
    let callback = move |answer: JsValue| {
        done(Reply {
            status: as_count(&get(&answer, "status"), 999.0).unwrap_or(0) as u16,
            retry_after_s: get(&answer, "retryAfter")
                .as_string()
                .and_then(|v| v.trim().parse().ok()),
            body: get(&answer, "body").as_string().unwrap_or_default(),
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
