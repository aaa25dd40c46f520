//! Reading the page's configuration object: every field checked, unknown fields refused (a
//! typo such as `participantTimeOutMs` must not pass silently), ranges enforced.

use crate::prelude::*;

use js_sys::{Function, Object};
use wasm_bindgen::prelude::*;

use super::error::SetupError;
use super::http::{check_base_url, BaseUrlError, Http, Paths};
use super::js::{as_count, function, get, is_absent};
use super::socket::Socket;
use crate::exchange::contract::WireProfile;
use crate::exchange::join::JoinConfig;
use crate::exchange::messages::decode_base64;
use crate::exchange::{defaults, ExchangeConfig, ParticipantId};
use crate::signal::PublicKey;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(typescript_type = "KeyProviderLike")]
    #[derive(Clone)]
    pub type KeyProvider;
    #[wasm_bindgen(method, catch, js_name = setKey)]
    pub(crate) fn set_key(
        this: &KeyProvider,
        material: &JsValue,
        key_index: u32,
    ) -> Result<JsValue, JsValue>;
}

/// Every field `GuestConfig` has (see `types.rs`).
const FIELDS: [&str; 26] = [
    "baseUrl",
    "wireProfile",
    "meetingId",
    "invitationToken",
    "displayName",
    "socket",
    "keyProvider",
    "keyProfile",
    "participantTimeoutMs",
    "hedgeAfterMs",
    "maxFailures",
    "sessionCacheTtlMs",
    "clockSkewMs",
    "requestTimeoutMs",
    "connectTimeoutMs",
    "admissionTimeoutMs",
    "requireAdmission",
    "pinnedIdentities",
    "askUnpinned",
    "requirePostQuantum",
    "spreadFirstRequests",
    "paths",
    "storage",
    "requireStorage",
    "onEvent",
    "debug",
];

const SECOND_MS: u64 = 1_000;
/// A server that has not answered a registration or token request in this time is taken as
/// unreachable, so the call settles and can be made again.
const DEFAULT_REQUEST_TIMEOUT_MS: u32 = 15_000;
/// socket.io-client connects within a second on a working network; past this it is not coming.
const DEFAULT_CONNECT_TIMEOUT_MS: u32 = 10_000;
/// A host may take a while to notice a guest in the lobby.
const DEFAULT_ADMISSION_TIMEOUT_MS: u32 = 5 * 60_000;
const DAY_MS: u64 = 86_400_000;

/// How the key is handed to `setKey`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyProfile {
    /// `setKey(base64String)`: what the Flutter participants do.
    Base64,
    /// `setKey(ArrayBuffer)`.
    Raw,
}

/// The checked configuration.
pub(crate) struct Config {
    /// The server's base URL and path templates.
    pub http: Http,
    pub meeting_id: String,
    pub invitation_token: String,
    pub display_name: String,
    pub key_profile: KeyProfile,
    pub exchange: ExchangeConfig,
    pub debug: bool,
    pub socket: Socket,
    pub key_provider: Option<KeyProvider>,
    pub on_event: Option<Function>,
    /// The page's storage object, or absent for `sessionStorage`.
    pub storage: JsValue,
    pub require_storage: bool,
    /// How long registration and the LiveKit token may take before they count as failed.
    pub request_timeout_ms: u32,
    /// How long `exchangeKey()` waits for the socket to connect.
    pub connect_timeout_ms: u32,
    /// How long `exchangeKey()` waits for the host to admit the guest.
    pub admission_timeout_ms: u32,
    /// Whether `exchangeKey()` waits for the server's admission notice at all.
    pub require_admission: bool,
}

fn invalid(message: impl Into<String>) -> SetupError {
    SetupError::InvalidConfig(message.into())
}

fn required_string(config: &JsValue, name: &str) -> Result<String, SetupError> {
    get(config, name)
        .as_string()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid(format!("{name} must be a non-empty string")))
}

/// An optional whole number in `min..=max`.
fn optional_count(
    config: &JsValue,
    name: &str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, SetupError> {
    let v = get(config, name);
    if is_absent(&v) {
        return Ok(default);
    }
    as_count(&v, max as f64)
        .filter(|n| *n >= min)
        .ok_or_else(|| invalid(format!("{name} must be a whole number from {min} to {max}")))
}

fn optional_bool(config: &JsValue, name: &str) -> Result<bool, SetupError> {
    optional_bool_or(config, name, false)
}

fn optional_bool_or(config: &JsValue, name: &str, default: bool) -> Result<bool, SetupError> {
    let v = get(config, name);
    if is_absent(&v) {
        return Ok(default);
    }
    v.as_bool()
        .ok_or_else(|| invalid(format!("{name} must be true or false")))
}

/// `[{ userId, deviceId, identityKey }]`, the key as base64 of its 33 bytes.
fn pinned_identities(v: &JsValue) -> Result<Vec<(ParticipantId, PublicKey)>, SetupError> {
    if is_absent(v) {
        return Ok(Vec::new());
    }
    let list: &js_sys::Array = v
        .dyn_ref()
        .ok_or_else(|| invalid("pinnedIdentities must be an array"))?;
    let mut pins = Vec::new();
    for entry in list.iter() {
        let text = |name: &str| get(&entry, name).as_string().filter(|s| !s.is_empty());
        let (Some(user), Some(device), Some(key)) =
            (text("userId"), text("deviceId"), text("identityKey"))
        else {
            return Err(invalid(
                "pinnedIdentities entries need userId, deviceId and identityKey (base64)",
            ));
        };
        let bytes = decode_base64(&key, "identityKey")
            .ok()
            .filter(|b| b.len() == 33)
            .and_then(|b| PublicKey::from_bytes(&b).ok())
            .ok_or_else(|| {
                invalid("pinnedIdentities: identityKey must be base64 of a 33-byte key")
            })?;
        pins.push((ParticipantId::new(user, device), bytes));
    }
    Ok(pins)
}

fn key_profile(v: &JsValue) -> Result<KeyProfile, SetupError> {
    if is_absent(v) {
        return Ok(KeyProfile::Base64);
    }
    match v.as_string().as_deref() {
        Some("base64") => Ok(KeyProfile::Base64),
        Some("raw") => Ok(KeyProfile::Raw),
        _ => Err(invalid("keyProfile must be \"base64\" or \"raw\"")),
    }
}

fn wire_profile(v: &JsValue) -> Result<WireProfile, SetupError> {
    if is_absent(v) {
        return Ok(WireProfile::Plan);
    }
    match v.as_string().as_deref() {
        Some("plan") => Ok(WireProfile::Plan),
        Some("peerwave") => Ok(WireProfile::PeerWave),
        _ => Err(invalid("wireProfile must be \"plan\" or \"peerwave\"")),
    }
}

fn unknown_fields(config: &JsValue) -> Option<String> {
    let mut unknown = String::new();
    for key in Object::keys(config.unchecked_ref::<Object>()).iter() {
        let key = key.as_string().unwrap_or_default();
        if !FIELDS.contains(&key.as_str()) {
            if !unknown.is_empty() {
                unknown.push_str(", ");
            }
            unknown.push_str(&key);
        }
    }
    (!unknown.is_empty()).then_some(unknown)
}

/// The whole-number fields: name, default, least, most. Read in this order (so a
/// configuration with several wrong fields names the first).
const COUNTS: [(&str, u64, u64, u64); 8] = [
    (
        "requestTimeoutMs",
        DEFAULT_REQUEST_TIMEOUT_MS as u64,
        100,
        2 * 60 * SECOND_MS,
    ),
    (
        "connectTimeoutMs",
        DEFAULT_CONNECT_TIMEOUT_MS as u64,
        100,
        10 * 60 * SECOND_MS,
    ),
    (
        "admissionTimeoutMs",
        DEFAULT_ADMISSION_TIMEOUT_MS as u64,
        100,
        DAY_MS,
    ),
    (
        "participantTimeoutMs",
        defaults::PARTICIPANT_TIMEOUT_MS,
        100,
        10 * 60 * SECOND_MS,
    ),
    // 0 turns hedging off: one participant at a time.
    (
        "hedgeAfterMs",
        defaults::HEDGE_AFTER_MS,
        0,
        10 * 60 * SECOND_MS,
    ),
    ("maxFailures", defaults::MAX_FAILURES as u64, 1, 100),
    (
        "sessionCacheTtlMs",
        defaults::SESSION_CACHE_TTL_MS,
        0,
        DAY_MS,
    ),
    ("clockSkewMs", defaults::CLOCK_SKEW_MS, 0, DAY_MS),
];

/// How long the calls wait, whether they wait for the host, and the exchange's tunables.
struct Limits {
    request_timeout_ms: u32,
    connect_timeout_ms: u32,
    admission_timeout_ms: u32,
    require_admission: bool,
    exchange: ExchangeConfig,
}

impl Limits {
    fn from_js(config: &JsValue, profile: WireProfile) -> Result<Self, SetupError> {
        let require_admission = optional_bool_or(config, "requireAdmission", true)?;
        if !require_admission && profile.join_rules().lobby {
            // PeerWave relays key requests from guests still in the lobby: only the SDK holds them.
            return Err(invalid(
                "requireAdmission cannot be false with wireProfile \"peerwave\"",
            ));
        }
        let mut v = [0u64; 8];
        for (slot, (name, default, min, max)) in v.iter_mut().zip(COUNTS) {
            *slot = optional_count(config, name, default, min, max)?;
        }
        Ok(Self {
            request_timeout_ms: v[0] as u32,
            connect_timeout_ms: v[1] as u32,
            admission_timeout_ms: v[2] as u32,
            require_admission,
            exchange: ExchangeConfig {
                profile,
                participant_timeout_ms: v[3],
                hedge_after_ms: Some(v[4]).filter(|ms| *ms > 0),
                max_failures: v[5] as usize,
                session_cache_ttl_ms: v[6],
                clock_skew_ms: v[7],
                ask_unpinned: optional_bool(config, "askUnpinned")?,
                require_post_quantum: optional_bool(config, "requirePostQuantum")?,
                spread_first_requests: optional_bool_or(config, "spreadFirstRequests", true)?,
                safety_numbers: true,
                // Last: the one field that owns memory.
                pinned: pinned_identities(&get(config, "pinnedIdentities"))?,
            },
        })
    }
}

/// The page's socket, key provider and event callback.
fn page_objects(
    config: &JsValue,
) -> Result<(Socket, Option<KeyProvider>, Option<Function>), SetupError> {
    let socket = get(config, "socket");
    if ["emit", "on", "off"]
        .iter()
        .any(|m| function(&socket, m).is_none())
    {
        return Err(invalid(
            "socket must have emit, on and off (a socket.io-client Socket)",
        ));
    }
    // Required: without it a successful exchange would throw the key away. `null` is the
    // explicit opt-out (the key check value is still reported), e.g. for tests.
    let key_provider = get(config, "keyProvider");
    let key_provider = if key_provider.is_undefined() {
        return Err(invalid(
            "keyProvider is required (a GuestKeyProvider); null only checks the key",
        ));
    } else if key_provider.is_null() {
        None
    } else if function(&key_provider, "setKey").is_some() {
        Some(KeyProvider::from(key_provider))
    } else {
        return Err(invalid("keyProvider must have setKey"));
    };
    let on_event = get(config, "onEvent");
    let on_event = if is_absent(&on_event) {
        None
    } else {
        Some(
            on_event
                .dyn_into::<Function>()
                .map_err(|_| invalid("onEvent must be a function"))?,
        )
    };
    Ok((Socket::from(socket), key_provider, on_event))
}

impl Config {
    /// The server dialect.
    pub(crate) fn profile(&self) -> WireProfile {
        self.exchange.profile
    }

    /// Checks `config`; any problem is `INVALID_CONFIG` (or `INSECURE_ORIGIN`). Plain
    /// values are read first and the page's objects last, so that a refusal has little to
    /// drop.
    pub(crate) fn from_js(config: &JsValue) -> Result<Self, SetupError> {
        if !config.is_object() {
            return Err(invalid("config must be an object"));
        }
        if let Some(unknown) = unknown_fields(config) {
            return Err(invalid(format!("unknown field(s): {unknown}")));
        }
        let base = check_base_url(&required_string(config, "baseUrl")?).map_err(|e| match e {
            BaseUrlError::Insecure => SetupError::InsecureOrigin,
            other => invalid(other.to_string()),
        })?;
        let profile = wire_profile(&get(config, "wireProfile"))?;
        let limits = Limits::from_js(config, profile)?;
        let http = Http {
            base,
            paths: Paths::from_js(&get(config, "paths"), profile)?,
        };
        let meeting_id = required_string(config, "meetingId")?;
        let invitation_token = required_string(config, "invitationToken")?;
        let display_name = required_string(config, "displayName")?;
        let key_profile = key_profile(&get(config, "keyProfile"))?;
        let debug = optional_bool(config, "debug")?;
        let require_storage = optional_bool(config, "requireStorage")?;
        let (socket, key_provider, on_event) = page_objects(config)?;
        Ok(Self {
            http,
            meeting_id,
            invitation_token,
            display_name,
            key_profile,
            exchange: limits.exchange,
            debug,
            socket,
            key_provider,
            on_event,
            storage: get(config, "storage"),
            require_storage,
            request_timeout_ms: limits.request_timeout_ms,
            connect_timeout_ms: limits.connect_timeout_ms,
            admission_timeout_ms: limits.admission_timeout_ms,
            require_admission: limits.require_admission,
        })
    }

    /// The join machine's deadlines and the dialect's rules.
    pub(crate) fn join(&self) -> JoinConfig {
        JoinConfig {
            rules: self.profile().join_rules(),
            connect_timeout_ms: u64::from(self.connect_timeout_ms),
            admission_timeout_ms: u64::from(self.admission_timeout_ms),
            require_admission: self.require_admission,
        }
    }

    /// A fetch may take as long as a participant's whole turn, no longer.
    pub(crate) fn fetch_timeout_ms(&self) -> u32 {
        u32::try_from(self.exchange.participant_timeout_ms).unwrap_or(u32::MAX)
    }
}
