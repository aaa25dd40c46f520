//! `GuestKeyExchange`: the class the prejoin page uses. It wires the sans-I/O exchange to
//! fetch, timers, the page's Socket.IO socket, sessionStorage and LiveKit's key provider.
//!
//! All mutable state sits in one `RefCell`, borrowed only briefly and never across a call
//! into JavaScript, so callbacks that re-enter the SDK (an `onEvent` handler calling
//! `leave()`, say) are safe. Events are queued and handled one at a time.

use crate::prelude::*;

use alloc::collections::VecDeque;
use alloc::rc::Rc;
use core::cell::RefCell;

use js_sys::{Function, Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use zeroize::Zeroizing;

use super::error::{participant_ref, ErrorCode, GuestError};
use super::http::{check_base_url, Http, Paths, Reply};
use super::js::{as_count, function, get, is_absent, now_ms, object, parse, stringify};
use super::platform::{Timeout, WebCryptoRng};
use super::storage::{GuestStorage, StorageLike, REGISTRATION_ENTRY, STATE_ENTRY};
use crate::exchange::wire::{self, MAX_BODY_BYTES};
use crate::exchange::{
    Action, DropReason, Event, Exchange, ExchangeConfig, ExchangeFailure, GuestState, MeetingKey,
    ParticipantId, Phase, Progress,
};
use crate::signal::ProtocolStore;

/// One-time prekeys a guest publishes (plan Q1).
const ONE_TIME_PRE_KEYS: u32 = 30;
const INCOMING_EVENT: &str = "participant:signal_message";
const OUTGOING_EVENT: &str = "guest:signal_message";

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(typescript_type = "GuestConfig")]
    pub type GuestConfig;

    #[wasm_bindgen(typescript_type = "GuestSocket")]
    #[derive(Clone)]
    pub type Socket;
    #[wasm_bindgen(method, catch)]
    fn emit(this: &Socket, event: &str, body: &JsValue) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn on(this: &Socket, event: &str, handler: &Function) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn off(this: &Socket, event: &str, handler: &Function) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(typescript_type = "KeyProviderLike")]
    #[derive(Clone)]
    pub type KeyProvider;
    #[wasm_bindgen(method, catch, js_name = setKey)]
    fn set_key(this: &KeyProvider, material: &JsValue, key_index: u32) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(typescript_type = "Promise<RegistrationResult>")]
    pub type RegistrationPromise;
    #[wasm_bindgen(typescript_type = "Promise<KeyExchangeResult>")]
    pub type KeyExchangePromise;
    #[wasm_bindgen(typescript_type = "Promise<LiveKitToken>")]
    pub type LiveKitTokenPromise;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyProfile {
    /// `setKey(base64String)`: what the Flutter participants do (contract §6).
    Base64,
    /// `setKey(ArrayBuffer)`.
    Raw,
}

struct Settings {
    meeting_id: String,
    invitation_token: String,
    display_name: String,
    key_profile: KeyProfile,
    exchange: ExchangeConfig,
    debug: bool,
}

enum Engine {
    /// Keys exist; no exchange yet (it needs the server's session id).
    Ready(GuestState),
    Running(Exchange),
    /// After `leave()`: everything dropped (and zeroized).
    Gone,
}

/// The two ends of a JS promise, settled later from a callback.
struct Deferred {
    resolve: Function,
    reject: Function,
}

impl Deferred {
    fn new() -> (Promise, Option<Self>) {
        let mut slot = None;
        // The executor runs synchronously, so `slot` is filled when `new` returns.
        let promise = Promise::new(&mut |resolve, reject| slot = Some(Self { resolve, reject }));
        (promise, slot)
    }

    fn settle(self, result: Result<JsValue, GuestError>) {
        let _ = match result {
            Ok(value) => self.resolve.call1(&JsValue::NULL, &value),
            Err(e) => self.reject.call1(&JsValue::NULL, &e.into()),
        };
    }
}

/// Runs `start`, which settles the promise now or from a later callback.
fn promise(start: impl FnOnce(Deferred)) -> Promise {
    let (promise, deferred) = Deferred::new();
    if let Some(deferred) = deferred {
        start(deferred);
    }
    promise
}

struct Pending {
    deferred: Deferred,
    started_at: u64,
}

struct Inner {
    settings: Settings,
    http: Http,
    storage: GuestStorage,
    socket: Socket,
    key_provider: Option<KeyProvider>,
    on_event: Option<Function>,
    engine: Engine,
    session_id: Option<String>,
    registering: bool,
    listener: Option<Closure<dyn FnMut(JsValue)>>,
    timers: Vec<Timeout>,
    pending: Option<Pending>,
    queue: VecDeque<Event>,
    dispatching: bool,
    key_check_value: Option<String>,
    key_index: Option<u8>,
    key_generation_ms: Option<f64>,
    left: bool,
    rng: WebCryptoRng,
}

impl Inner {
    /// A fetch may take as long as a participant's whole turn, no longer.
    fn fetch_timeout_ms(&self) -> u32 {
        self.settings
            .exchange
            .participant_timeout_ms
            .min(u64::from(u32::MAX)) as u32
    }

    fn state(&self) -> Option<&GuestState> {
        match &self.engine {
            Engine::Ready(state) => Some(state),
            Engine::Running(exchange) => Some(exchange.state()),
            Engine::Gone => None,
        }
    }
}

type Shared = Rc<RefCell<Inner>>;

/// Guest side of the Signal key exchange for one meeting, in one browser tab.
#[wasm_bindgen]
pub struct GuestKeyExchange {
    inner: Shared,
}

fn config_error(message: &str) -> JsValue {
    GuestError::new(ErrorCode::InvalidConfig, message).into()
}

fn required_string(config: &JsValue, name: &str) -> Result<String, JsValue> {
    get(config, name)
        .as_string()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| config_error(&format!("{name} must be a non-empty string")))
}

fn optional_ms(config: &JsValue, name: &str, default: u64) -> Result<u64, JsValue> {
    let v = get(config, name);
    if is_absent(&v) {
        return Ok(default);
    }
    as_count(&v, 86_400_000.0)
        .ok_or_else(|| config_error(&format!("{name} must be a whole number of ms")))
}

fn rejected(e: GuestError) -> Promise {
    Promise::reject(&e.into())
}

#[wasm_bindgen]
impl GuestKeyExchange {
    /// Validates the configuration and loads this tab's stored identity, prekeys and
    /// sessions for the meeting, or generates new ones (identity, signed prekey, 30
    /// one-time prekeys). Throws a `GuestError` (`INVALID_CONFIG`, `INSECURE_ORIGIN`,
    /// `STORAGE_CORRUPT`, `CRYPTO_UNAVAILABLE`).
    #[wasm_bindgen(constructor)]
    pub fn new(config: GuestConfig) -> Result<GuestKeyExchange, JsValue> {
        let rng = WebCryptoRng::new().ok_or_else(|| {
            GuestError::new(
                ErrorCode::CryptoUnavailable,
                "crypto.getRandomValues is not available; keys cannot be made",
            )
        })?;
        let config: JsValue = config.into();
        if !config.is_object() {
            return Err(config_error("config must be an object"));
        }
        let base = check_base_url(&required_string(&config, "baseUrl")?)?;
        let meeting_id = required_string(&config, "meetingId")?;
        let settings = Settings {
            invitation_token: required_string(&config, "invitationToken")?,
            display_name: required_string(&config, "displayName")?,
            key_profile: match get(&config, "keyProfile").as_string().as_deref() {
                None | Some("base64") => KeyProfile::Base64,
                Some("raw") => KeyProfile::Raw,
                Some(_) => return Err(config_error("keyProfile must be \"base64\" or \"raw\"")),
            },
            exchange: {
                let d = ExchangeConfig::default();
                ExchangeConfig {
                    participant_timeout_ms: optional_ms(
                        &config,
                        "participantTimeoutMs",
                        d.participant_timeout_ms,
                    )?,
                    max_failures: optional_ms(&config, "maxFailures", d.max_failures as u64)?
                        .clamp(1, 100) as usize,
                    session_cache_ttl_ms: optional_ms(
                        &config,
                        "sessionCacheTtlMs",
                        d.session_cache_ttl_ms,
                    )?,
                    clock_skew_ms: optional_ms(&config, "clockSkewMs", d.clock_skew_ms)?,
                }
            },
            debug: get(&config, "debug").as_bool().unwrap_or(false),
            meeting_id,
        };
        let socket = get(&config, "socket");
        if ["emit", "on", "off"]
            .iter()
            .any(|m| function(&socket, m).is_none())
        {
            return Err(config_error(
                "socket must have emit, on and off (a socket.io-client Socket)",
            ));
        }
        let key_provider = get(&config, "keyProvider");
        let key_provider = if is_absent(&key_provider) {
            None
        } else if function(&key_provider, "setKey").is_some() {
            Some(KeyProvider::from(key_provider))
        } else {
            return Err(config_error(
                "keyProvider must have setKey (e.g. ExternalE2EEKeyProvider)",
            ));
        };
        let on_event = get(&config, "onEvent");
        let on_event = if is_absent(&on_event) {
            None
        } else {
            Some(
                on_event
                    .dyn_into::<Function>()
                    .map_err(|_| config_error("onEvent must be a function"))?,
            )
        };
        let http = Http {
            base,
            paths: Paths::from_js(&get(&config, "paths"))?,
        };

        let (mut storage, fallback) =
            GuestStorage::open(&get(&config, "storage"), &settings.meeting_id);
        if let (Some(reason), Some(true)) = (&fallback, get(&config, "requireStorage").as_bool()) {
            return Err(GuestError::new(
                ErrorCode::StorageUnavailable,
                format!("storage is unusable: {reason}"),
            )
            .into());
        }
        let (state, key_generation_ms) = load_or_generate(&mut storage, rng)?;
        let session_id = load_registration(&storage, &settings.meeting_id)?;
        let inner = Inner {
            settings,
            http,
            storage,
            socket: Socket::from(socket),
            key_provider,
            on_event,
            engine: Engine::Ready(state),
            session_id,
            registering: false,
            listener: None,
            timers: Vec::new(),
            pending: None,
            queue: VecDeque::new(),
            dispatching: false,
            key_check_value: None,
            key_index: None,
            key_generation_ms,
            left: false,
            rng,
        };
        let shared = Rc::new(RefCell::new(inner));
        if let Some(reason) = fallback {
            emit(&shared, storage_fallback_event(&reason));
        }
        persist(&shared);
        Ok(GuestKeyExchange { inner: shared })
    }

    /// Registers the guest's public keys (never a private key) with the invitation token.
    /// Reuses the registration stored in this tab, if any.
    pub fn register(&self) -> RegistrationPromise {
        promise(|deferred| register(&self.inner, deferred)).unchecked_into()
    }

    /// Asks participants, one at a time, for the meeting key; hands it to the key provider.
    /// Rejects with `KEY_EXCHANGE_FAILED` (retryable: call again for "Try again") after
    /// the configured number of consecutive failures.
    #[wasm_bindgen(js_name = exchangeKey)]
    pub fn exchange_key(&self) -> KeyExchangePromise {
        start_exchange(&self.inner).unchecked_into()
    }

    /// Fetches a LiveKit access token for this guest (`NOT_ADMITTED` until the host admits).
    #[wasm_bindgen(js_name = fetchLiveKitToken)]
    pub fn fetch_livekit_token(&self) -> LiveKitTokenPromise {
        promise(|deferred| livekit_token(&self.inner, deferred)).unchecked_into()
    }

    /// Stops listening, cancels timers, wipes this meeting's stored entries and drops all
    /// key material. The object is unusable afterwards.
    pub fn leave(&self) {
        leave(&self.inner);
    }

    /// The server-made guest session id, once registered.
    #[wasm_bindgen(getter, js_name = sessionId)]
    pub fn session_id(&self) -> Option<String> {
        self.inner
            .try_borrow()
            .ok()
            .and_then(|i| i.session_id.clone())
    }

    /// Check value of the current meeting key (contract §6), once received.
    #[wasm_bindgen(getter, js_name = keyCheckValue)]
    pub fn key_check_value(&self) -> Option<String> {
        self.inner
            .try_borrow()
            .ok()
            .and_then(|i| i.key_check_value.clone())
    }

    /// Index of the current meeting key, once received.
    #[wasm_bindgen(getter, js_name = keyIndex)]
    pub fn key_index(&self) -> Option<u8> {
        self.inner.try_borrow().ok().and_then(|i| i.key_index)
    }

    /// How long generating the identity and prekeys took, if this page generated them.
    #[wasm_bindgen(getter, js_name = keyGenerationMs)]
    pub fn key_generation_ms(&self) -> Option<f64> {
        self.inner
            .try_borrow()
            .ok()
            .and_then(|i| i.key_generation_ms)
    }

    /// `"sessionStorage"` or `"memory"` (after a fallback).
    #[wasm_bindgen(getter, js_name = storageBackend)]
    pub fn storage_backend(&self) -> String {
        self.inner
            .try_borrow()
            .map(|i| i.storage.backend_name().to_owned())
            .unwrap_or_default()
    }

    /// The guest's public identity key (33 bytes), for safety numbers.
    #[wasm_bindgen(getter, js_name = identityKey)]
    pub fn identity_key(&self) -> Option<Uint8Array> {
        let inner = self.inner.try_borrow().ok()?;
        inner
            .state()
            .map(|s| super::js::bytes(&s.store.identity_key().serialize()))
    }

    /// Removes a meeting's stored entries: the way out of `STORAGE_CORRUPT`.
    #[wasm_bindgen(js_name = clearStoredState)]
    pub fn clear_stored_state(meeting_id: &str, storage: Option<StorageLike>) {
        let storage = storage.map(JsValue::from).unwrap_or(JsValue::UNDEFINED);
        let (mut s, _) = GuestStorage::open(&storage, meeting_id);
        s.wipe();
    }

    /// The key check value of `key` (32 bytes), as participants compute it.
    #[wasm_bindgen(js_name = checkValueOf)]
    pub fn check_value_of(key: &[u8]) -> Result<String, JsValue> {
        MeetingKey::from_slice(key)
            .map(|k| k.check_value())
            .ok_or_else(|| config_error("a meeting key is 32 bytes"))
    }
}

fn load_or_generate(
    storage: &mut GuestStorage,
    mut rng: WebCryptoRng,
) -> Result<(GuestState, Option<f64>), JsValue> {
    let corrupt = |why: &str| -> JsValue {
        GuestError::new(
            ErrorCode::StorageCorrupt,
            format!("stored state is unusable ({why}); call GuestKeyExchange.clearStoredState(meetingId)"),
        )
        .into()
    };
    match storage.get(STATE_ENTRY) {
        Ok(Some(text)) => {
            let bytes = Zeroizing::new(
                wire::decode_base64(&text, "state").map_err(|_| corrupt("not base64"))?,
            );
            let state = GuestState::from_bytes(&bytes).map_err(|e| corrupt(&e.to_string()))?;
            Ok((state, None))
        }
        Ok(None) | Err(_) => {
            let started = js_sys::Date::now();
            let store = ProtocolStore::generate(&mut rng, ONE_TIME_PRE_KEYS);
            Ok((GuestState::new(store), Some(js_sys::Date::now() - started)))
        }
    }
}

fn load_registration(storage: &GuestStorage, meeting_id: &str) -> Result<Option<String>, JsValue> {
    let Ok(Some(text)) = storage.get(REGISTRATION_ENTRY) else {
        return Ok(None);
    };
    wire::parse_registration(&text, meeting_id).map(Some).map_err(|e| {
        GuestError::new(
            ErrorCode::StorageCorrupt,
            format!("stored registration is unusable ({e}); call GuestKeyExchange.clearStoredState(meetingId)"),
        )
        .into()
    })
}

fn storage_fallback_event(reason: &str) -> JsValue {
    object(&[
        ("type", "storage_fallback".into()),
        ("reason", reason.into()),
    ])
    .into()
}

/// Calls the page's `onEvent` (outside any borrow; its exceptions are ignored).
fn emit(shared: &Shared, event: JsValue) {
    let (callback, debug) = match shared.try_borrow() {
        Ok(inner) if !inner.left => (inner.on_event.clone(), inner.settings.debug),
        _ => return,
    };
    if debug {
        web_sys::console::debug_2(&"[signal-guest]".into(), &event);
    }
    if let Some(callback) = callback {
        let _ = callback.call1(&JsValue::NULL, &event);
    }
}

fn persist(shared: &Shared) {
    let failure = {
        let Ok(mut inner) = shared.try_borrow_mut() else {
            return;
        };
        let Some(bytes) = inner.state().map(|s| Zeroizing::new(s.to_bytes())) else {
            return;
        };
        let encoded = Zeroizing::new(wire::encode_base64(&bytes));
        inner.storage.set(STATE_ENTRY, &encoded).err()
    };
    if let Some(reason) = failure {
        emit(shared, storage_fallback_event(&reason));
    }
}

fn ensure_usable(shared: &Shared) -> Result<(), GuestError> {
    match shared.try_borrow() {
        Ok(inner) if inner.left => Err(GuestError::new(ErrorCode::Left, "leave() was called")),
        Ok(_) => Ok(()),
        Err(_) => Err(GuestError::new(ErrorCode::InvalidState, "busy")),
    }
}

fn register(shared: &Shared, deferred: Deferred) {
    match begin_registration(shared) {
        Err(e) => deferred.settle(Err(e)),
        Ok(Registration::Stored(answer)) => deferred.settle(Ok(answer)),
        Ok(Registration::Send {
            url,
            body,
            meeting_id,
        }) => {
            emit(shared, progress_event("registering", &[]));
            let shared = shared.clone();
            Http::post_json(&url, &body, move |reply| {
                deferred.settle(finish_registration(&shared, reply, &meeting_id))
            });
        }
    }
}

enum Registration {
    /// Registered earlier in this tab: the answer to give.
    Stored(JsValue),
    Send {
        url: String,
        body: String,
        meeting_id: String,
    },
}

fn begin_registration(shared: &Shared) -> Result<Registration, GuestError> {
    ensure_usable(shared)?;
    let mut inner = shared
        .try_borrow_mut()
        .map_err(|_| GuestError::new(ErrorCode::InvalidState, "busy"))?;
    if let Some(sid) = &inner.session_id {
        return Ok(Registration::Stored(
            object(&[("sessionId", sid.as_str().into()), ("reused", true.into())]).into(),
        ));
    }
    if inner.registering {
        return Err(GuestError::new(
            ErrorCode::InvalidState,
            "registration already in progress",
        ));
    }
    let keys = inner
        .state()
        .and_then(|s| s.store.public_keys())
        .ok_or_else(|| GuestError::new(ErrorCode::InvalidState, "no keys"))?;
    let s = &inner.settings;
    let body = wire::registration_body(&keys, &s.invitation_token, &s.meeting_id, &s.display_name);
    let url = inner.http.url(&inner.http.paths.register, &[]);
    let meeting_id = s.meeting_id.clone();
    inner.registering = true;
    Ok(Registration::Send {
        url,
        body,
        meeting_id,
    })
}

fn finish_registration(
    shared: &Shared,
    reply: Reply,
    meeting_id: &str,
) -> Result<JsValue, GuestError> {
    let outcome = if reply.ok() {
        wire::parse_registration(&reply.body, meeting_id).map_err(|e| {
            GuestError::new(
                ErrorCode::ProtocolError,
                format!("registration answer: {e}"),
            )
        })
    } else {
        Err(reply.error("registration"))
    };
    let (session_id, storage_failure) = {
        let mut inner = shared
            .try_borrow_mut()
            .map_err(|_| GuestError::new(ErrorCode::InvalidState, "busy"))?;
        inner.registering = false;
        if inner.left {
            return Err(GuestError::new(ErrorCode::Left, "leave() was called"));
        }
        let session_id = outcome?;
        let record = wire::registration_record(&session_id, meeting_id);
        inner.session_id = Some(session_id.clone());
        (
            session_id,
            inner.storage.set(REGISTRATION_ENTRY, &record).err(),
        )
    };
    if let Some(reason) = storage_failure {
        emit(shared, storage_fallback_event(&reason));
    }
    Ok(object(&[("sessionId", session_id.into()), ("reused", false.into())]).into())
}

fn start_exchange(shared: &Shared) -> Promise {
    if let Err(e) = ensure_usable(shared) {
        return rejected(e);
    }
    let weak = Rc::downgrade(shared);
    let setup = (|| -> Result<Option<JsValue>, GuestError> {
        let mut inner = shared
            .try_borrow_mut()
            .map_err(|_| GuestError::new(ErrorCode::InvalidState, "busy"))?;
        let session_id = inner
            .session_id
            .clone()
            .ok_or_else(|| GuestError::new(ErrorCode::NotRegistered, "call register() first"))?;
        if inner.pending.is_some() {
            return Err(GuestError::new(
                ErrorCode::InvalidState,
                "a key exchange is already running",
            ));
        }
        if let Engine::Ready(_) = inner.engine {
            let Engine::Ready(state) = core::mem::replace(&mut inner.engine, Engine::Gone) else {
                return Err(GuestError::new(ErrorCode::InvalidState, "no keys"));
            };
            let config = inner.settings.exchange.clone();
            let meeting = inner.settings.meeting_id.clone();
            inner.engine = Engine::Running(Exchange::new(config, meeting, session_id, state));
        }
        if let Engine::Running(exchange) = &inner.engine {
            if exchange.phase() == Phase::Delivered {
                // Already have the key: answer at once.
                return Ok(Some(
                    object(&[
                        ("keyIndex", inner.key_index.unwrap_or(0).into()),
                        (
                            "keyCheckValue",
                            inner.key_check_value.clone().unwrap_or_default().into(),
                        ),
                        ("elapsedMs", 0.into()),
                    ])
                    .into(),
                ));
            }
        }
        if inner.listener.is_none() {
            let listener = Closure::<dyn FnMut(JsValue)>::new(move |body: JsValue| {
                if let Some(shared) = weak.upgrade() {
                    on_socket_message(&shared, &body);
                }
            });
            inner
                .socket
                .on(INCOMING_EVENT, listener.as_ref().unchecked_ref())
                .map_err(|_| GuestError::new(ErrorCode::InvalidConfig, "socket.on threw"))?;
            inner.listener = Some(listener);
        }
        Ok(None)
    })();
    match setup {
        Err(e) => rejected(e),
        Ok(Some(done)) => Promise::resolve(&done),
        Ok(None) => {
            let (result, deferred) = Deferred::new();
            if let (Some(deferred), Ok(mut inner)) = (deferred, shared.try_borrow_mut()) {
                inner.pending = Some(Pending {
                    deferred,
                    started_at: now_ms(),
                });
            }
            dispatch(shared, Event::Start);
            result
        }
    }
}

fn on_socket_message(shared: &Shared, body: &JsValue) {
    match stringify(body).filter(|s| s.len() <= MAX_BODY_BYTES * 2) {
        Some(text) => dispatch(shared, Event::MessageReceived(text)),
        None => emit(
            shared,
            dropped_event(&DropReason::MalformedEvent(wire::Invalid {
                field: "event",
                problem: "not serializable or too large",
            })),
        ),
    }
}

/// Queues `event` and, unless already inside the loop, handles queued events one by one.
fn dispatch(shared: &Shared, event: Event) {
    {
        let Ok(mut inner) = shared.try_borrow_mut() else {
            return;
        };
        if inner.left {
            return;
        }
        inner.queue.push_back(event);
        if inner.dispatching {
            return;
        }
        inner.dispatching = true;
    }
    loop {
        let actions = {
            let Ok(mut inner) = shared.try_borrow_mut() else {
                return;
            };
            let Some(event) = inner.queue.pop_front() else {
                inner.dispatching = false;
                return;
            };
            let mut rng = inner.rng;
            match &mut inner.engine {
                Engine::Running(exchange) => exchange.handle(event, now_ms(), &mut rng),
                _ => Vec::new(),
            }
        };
        for action in actions {
            perform(shared, action);
        }
    }
}

fn perform(shared: &Shared, action: Action) {
    match action {
        Action::ListParticipants => list_participants(shared),
        Action::FetchBundle { participant } => fetch_bundle(shared, participant),
        Action::Send { participant, body } => send(shared, participant, &body),
        Action::ArmTimer { timer, at } => arm_timer(shared, timer, at),
        Action::PersistState => persist(shared),
        Action::DeliverKey {
            key,
            key_index,
            from,
        } => deliver_key(shared, key, key_index, from),
        Action::Progress(p) => emit(shared, progress(&p)),
        Action::Dropped(reason) => emit(shared, dropped_event(&reason)),
        Action::Failed(failure) => fail(shared, &failure),
    }
}

fn list_participants(shared: &Shared) {
    let Some((url, session_id, timeout)) = shared.try_borrow().ok().and_then(|inner| {
        let sid = inner.session_id.clone()?;
        let url = inner.http.url(
            &inner.http.paths.participants,
            &[("meetingId", &inner.settings.meeting_id)],
        );
        Some((url, sid, inner.fetch_timeout_ms()))
    }) else {
        return;
    };
    let weak = Rc::downgrade(shared);
    Http::get(
        &url,
        &[("X-Guest-Session", &session_id)],
        timeout,
        move |reply| {
            if let Some(shared) = weak.upgrade() {
                dispatch(&shared, Event::ParticipantsListed(reply.into_result()));
            }
        },
    );
}

fn fetch_bundle(shared: &Shared, participant: ParticipantId) {
    let Some((url, timeout)) = shared.try_borrow().ok().and_then(|inner| {
        let sid = inner.session_id.clone()?;
        let url = inner.http.url(
            &inner.http.paths.participant_keys,
            &[
                ("sessionId", &sid),
                ("userId", &participant.user_id),
                ("deviceId", &participant.device_id),
            ],
        );
        Some((url, inner.fetch_timeout_ms()))
    }) else {
        return;
    };
    let weak = Rc::downgrade(shared);
    Http::get(&url, &[], timeout, move |reply| {
        if let Some(shared) = weak.upgrade() {
            let result = reply.into_result();
            dispatch(
                &shared,
                Event::BundleFetched {
                    participant,
                    result,
                },
            );
        }
    });
}

fn send(shared: &Shared, participant: ParticipantId, body: &str) {
    let Ok(socket) = shared.try_borrow().map(|i| i.socket.clone()) else {
        return;
    };
    let connected = get(&socket, "connected").as_bool() != Some(false);
    let sent = connected && parse(body).is_ok_and(|b| socket.emit(OUTGOING_EVENT, &b).is_ok());
    if !sent {
        dispatch(shared, Event::SendFailed { participant });
    }
}

fn arm_timer(shared: &Shared, timer: u64, at: u64) {
    let delay = at.saturating_sub(now_ms()).min(u64::from(u32::MAX)) as u32;
    let weak = Rc::downgrade(shared);
    let timeout = Timeout::new(delay, move || {
        if let Some(shared) = weak.upgrade() {
            dispatch(&shared, Event::TimerFired { timer });
        }
    });
    if let Ok(mut inner) = shared.try_borrow_mut() {
        // Only the newest attempt's timer matters; dropping a Timeout cancels it.
        inner.timers.clear();
        inner.timers.push(timeout);
    }
}

fn deliver_key(shared: &Shared, key: MeetingKey, key_index: u8, from: ParticipantId) {
    let check_value = key.check_value();
    let Ok((provider, profile, pending)) = shared.try_borrow_mut().map(|mut inner| {
        inner.key_check_value = Some(check_value.clone());
        inner.key_index = Some(key_index);
        (
            inner.key_provider.clone(),
            inner.settings.key_profile,
            inner.pending.take(),
        )
    }) else {
        return;
    };
    let material: JsValue = match profile {
        KeyProfile::Base64 => {
            let encoded = Zeroizing::new(wire::encode_base64(key.expose_bytes()));
            JsValue::from_str(&encoded)
        }
        KeyProfile::Raw => Uint8Array::from(&key.expose_bytes()[..]).buffer().into(),
    };
    drop(key);
    let applied = match provider {
        None => JsValue::UNDEFINED,
        Some(provider) => match provider.set_key(&material, u32::from(key_index)) {
            Ok(result) => result,
            Err(e) => Promise::reject(&e).into(),
        },
    };
    drop(material);
    let weak = Rc::downgrade(shared);
    let done = move |ok: JsValue| {
        if let Some(shared) = weak.upgrade() {
            let ok = ok.as_bool() == Some(true);
            key_applied(&shared, ok, &from, key_index, &check_value, pending);
        }
    };
    // Called exactly once, which frees the closure.
    when_settled(&applied, Closure::once_into_js(done));
}

/// After `setKey` (and its promise, if it returned one) settled.
fn key_applied(
    shared: &Shared,
    ok: bool,
    from: &ParticipantId,
    key_index: u8,
    check_value: &str,
    pending: Option<Pending>,
) {
    let from_ref = participant_ref(from);
    if ok {
        emit(
            shared,
            object(&[
                ("type", "key".into()),
                ("from", from_ref.clone()),
                ("keyIndex", key_index.into()),
                ("keyCheckValue", check_value.into()),
            ])
            .into(),
        );
        if let Some(p) = pending {
            let result = object(&[
                ("from", from_ref),
                ("keyIndex", key_index.into()),
                ("keyCheckValue", check_value.into()),
                (
                    "elapsedMs",
                    (now_ms().saturating_sub(p.started_at) as f64).into(),
                ),
            ]);
            p.deferred.settle(Ok(result.into()));
        }
    } else {
        let error = GuestError::new(ErrorCode::KeyProviderFailed, "keyProvider.setKey failed");
        emit(
            shared,
            object(&[
                ("type", "error".into()),
                ("code", error.code.as_str().into()),
            ])
            .into(),
        );
        if let Some(p) = pending {
            p.deferred.settle(Err(error));
        }
    }
}

#[wasm_bindgen(module = "/src/web/shim.js")]
extern "C" {
    #[wasm_bindgen(js_name = whenSettled)]
    fn when_settled(value: &JsValue, done: JsValue);
}

fn fail(shared: &Shared, failure: &ExchangeFailure) {
    let pending = shared
        .try_borrow_mut()
        .ok()
        .and_then(|mut i| i.pending.take());
    let error = GuestError::from_failure(failure);
    let error_value: JsValue = error.into();
    let event = progress_event(
        "failed",
        &[
            ("message", failure.to_string().into()),
            ("error", error_value.clone()),
        ],
    );
    emit(shared, event);
    if let Some(p) = pending {
        let _ = p.deferred.reject.call1(&JsValue::NULL, &error_value);
    }
}

fn livekit_token(shared: &Shared, deferred: Deferred) {
    let request = ensure_usable(shared).and_then(|()| {
        let inner = shared
            .try_borrow()
            .map_err(|_| GuestError::new(ErrorCode::InvalidState, "busy"))?;
        let sid = inner
            .session_id
            .clone()
            .ok_or_else(|| GuestError::new(ErrorCode::NotRegistered, "call register() first"))?;
        let body = wire::livekit_token_request(&sid, &inner.settings.meeting_id);
        Ok((inner.http.url(&inner.http.paths.livekit_token, &[]), body))
    });
    match request {
        Err(e) => deferred.settle(Err(e)),
        Ok((url, body)) => Http::post_json(&url, &body, move |reply| {
            deferred.settle(livekit_answer(reply))
        }),
    }
}

fn livekit_answer(reply: Reply) -> Result<JsValue, GuestError> {
    if reply.status == 403 {
        return Err(GuestError::new(
            ErrorCode::NotAdmitted,
            "the host has not admitted this guest yet",
        )
        .with_status(403));
    }
    if !reply.ok() {
        return Err(reply.error("LiveKit token"));
    }
    let t = wire::parse_livekit_token(&reply.body).map_err(|e| {
        GuestError::new(
            ErrorCode::ProtocolError,
            format!("LiveKit token answer: {e}"),
        )
    })?;
    Ok(object(&[
        ("token", t.token.into()),
        ("url", t.url.into()),
        ("roomName", t.room_name.into()),
        ("identity", t.identity.into()),
    ])
    .into())
}

fn leave(shared: &Shared) {
    let (socket, listener, pending) = {
        let Ok(mut inner) = shared.try_borrow_mut() else {
            return;
        };
        if inner.left {
            return;
        }
        inner.left = true;
        inner.timers.clear();
        inner.queue.clear();
        inner.storage.wipe();
        // Dropping the engine zeroizes every private key, chain key and message key.
        inner.engine = Engine::Gone;
        inner.session_id = None;
        inner.key_check_value = None;
        (
            inner.socket.clone(),
            inner.listener.take(),
            inner.pending.take(),
        )
    };
    if let Some(listener) = &listener {
        let _ = socket.off(INCOMING_EVENT, listener.as_ref().unchecked_ref());
    }
    if let Some(p) = pending {
        p.deferred
            .settle(Err(GuestError::new(ErrorCode::Left, "leave() was called")));
    }
}

fn participant_field(p: &ParticipantId) -> (&'static str, JsValue) {
    ("participant", participant_ref(p))
}

fn progress_event(stage: &str, fields: &[(&str, JsValue)]) -> JsValue {
    let mut all = alloc::vec![("type", JsValue::from("progress")), ("stage", stage.into())];
    all.extend(fields.iter().cloned());
    object(&all).into()
}

fn progress(p: &Progress) -> JsValue {
    match p {
        Progress::ListingParticipants => progress_event("listing_participants", &[]),
        Progress::FetchingBundle { participant } => {
            progress_event("fetching_bundle", &[participant_field(participant)])
        }
        Progress::WaitingFor { participant } => {
            progress_event("waiting_for", &[participant_field(participant)])
        }
        Progress::Rotating { from, to, reason } => progress_event(
            "rotating",
            &[
                ("from", participant_ref(from)),
                ("to", participant_ref(to)),
                ("reason", reason.code().into()),
                ("detail", reason.to_string().into()),
            ],
        ),
        Progress::KeyReceived { from, key_index } => progress_event(
            "key_received",
            &[participant_field(from), ("keyIndex", (*key_index).into())],
        ),
    }
}

fn dropped_event(reason: &DropReason) -> JsValue {
    object(&[
        ("type", "dropped".into()),
        ("reason", reason.code().into()),
        ("detail", reason.to_string().into()),
    ])
    .into()
}
