//! The SDK in headless Chromium (`wasm-pack test --headless --chrome`), against the fixture
//! in `www/fixture/browser-fixture.js`: the reference relay on 127.0.0.1:18787 and two
//! participant bots running official libsignal 0.72.1 (the first silent).
// Test helpers unwrap: a panic here is a failed test. `pub` helpers are shared between
// test files through `mod common`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]
#![cfg(target_arch = "wasm32")]

use js_sys::{Array, Object, Promise, Reflect};
use signal_guest_sdk::web::GuestKeyExchange;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const FIXTURE_INFO: &str = "http://127.0.0.1:18788/";
const RELAY: &str = "http://127.0.0.1:18787";
const MEETING: &str = "demo-meeting";

#[wasm_bindgen(inline_js = r#"
export function fakeSocket() {
  const handlers = {};
  return {
    connected: true,
    emitted: [],
    emit(event, body) { this.emitted.push([event, body]); },
    on(event, h) { (handlers[event] ??= []).push(h); },
    off(event, h) { handlers[event] = (handlers[event] ?? []).filter((x) => x !== h); },
    listeners(event) { return (handlers[event] ?? []).length; },
  };
}
export function throwingStorage() {
  const fail = () => { throw new DOMException('storage disabled', 'SecurityError'); };
  return { getItem: fail, setItem: fail, removeItem: fail };
}
export function quotaStorage(maxWrites) {
  const items = new Map();
  let writes = 0;
  return {
    items,
    getItem: (k) => (items.has(k) ? items.get(k) : null),
    setItem: (k, v) => {
      if (++writes > maxWrites) throw new DOMException('quota exceeded', 'QuotaExceededError');
      items.set(k, String(v));
    },
    removeItem: (k) => { items.delete(k); },
  };
}
export function copyOf(storage) {
  const copy = quotaStorage(1e9);
  for (const [k, v] of storage.items) copy.items.set(k, v);
  return copy;
}
export function guestEntries() {
  const out = [];
  for (let i = 0; i < sessionStorage.length; i++) {
    const k = sessionStorage.key(i);
    if (k.startsWith('signal-guest/')) out.push(k);
  }
  return out;
}
export function recorder() {
  const events = [];
  return { events, onEvent: (e) => events.push(e) };
}
export function recordingKeyProvider() {
  return { calls: [], setKey(material, keyIndex) { this.calls.push([material, keyIndex]); return Promise.resolve(); } };
}
export async function loadScript(src) {
  if (!globalThis.io) globalThis.io = (await import(src)).io;
}
export function connectGuest(url, sessionId) {
  return new Promise((resolve, reject) => {
    const socket = globalThis.io(url + '/external', { auth: { sessionId }, transports: ['websocket'] });
    socket.on('connect', () => resolve(socket));
    socket.on('connect_error', (e) => reject(e));
  });
}
export async function fetchJson(url) {
  const r = await fetch(url);
  return r.json();
}
export function base64ToBytes(s) {
  return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
}
export function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }
// Hides a browser API as older browsers lack it; returns the function that brings it back.
export function hide(object, name) {
  const target = object === 'navigator' ? navigator : AbortSignal;
  Object.defineProperty(target, name, { value: undefined, configurable: true, writable: true });
  return () => { delete target[name]; };
}
export function now() { return performance.now(); }
export function config(fields) { return Object.assign({}, fields); }
"#)]
extern "C" {
    #[wasm_bindgen(js_name = fakeSocket)]
    fn fake_socket() -> JsValue;
    #[wasm_bindgen(js_name = throwingStorage)]
    fn throwing_storage() -> JsValue;
    #[wasm_bindgen(js_name = quotaStorage)]
    fn quota_storage(max_writes: u32) -> JsValue;
    #[wasm_bindgen(js_name = copyOf)]
    fn copy_of(storage: &JsValue) -> JsValue;
    #[wasm_bindgen(js_name = guestEntries)]
    fn guest_entries() -> Array;
    fn recorder() -> JsValue;
    #[wasm_bindgen(js_name = recordingKeyProvider)]
    fn recording_key_provider() -> JsValue;
    #[wasm_bindgen(js_name = loadScript)]
    fn load_script(src: &str) -> Promise;
    #[wasm_bindgen(js_name = connectGuest)]
    fn connect_guest(url: &str, session_id: &str) -> Promise;
    #[wasm_bindgen(js_name = fetchJson)]
    fn fetch_json(url: &str) -> Promise;
    #[wasm_bindgen(js_name = base64ToBytes)]
    fn base64_to_bytes(s: &str) -> Vec<u8>;
    fn sleep(ms: u32) -> Promise;
    fn hide(object: &str, name: &str) -> js_sys::Function;
    fn now() -> f64;
}

fn get(obj: &JsValue, key: &str) -> JsValue {
    Reflect::get(obj, &key.into()).unwrap()
}

fn code_of(error: &JsValue) -> String {
    get(error, "code")
        .as_string()
        .unwrap_or_else(|| format!("no code: {error:?}"))
}

fn clear_session_storage() {
    let storage = web_sys_session_storage();
    let _ =
        Reflect::get(&storage, &"clear".into()).map(|f| js_sys::Function::from(f).call0(&storage));
}

fn web_sys_session_storage() -> JsValue {
    Reflect::get(&js_sys::global(), &"sessionStorage".into()).unwrap()
}

/// A config object; `extra` overrides or adds fields.
fn config(meeting: &str, extra: &[(&str, JsValue)]) -> JsValue {
    let c = Object::new();
    for (k, v) in [
        ("baseUrl", JsValue::from(RELAY)),
        ("meetingId", meeting.into()),
        ("invitationToken", "demo-invite".into()),
        ("displayName", "Browser Guest".into()),
        ("socket", fake_socket()),
        ("keyProvider", JsValue::NULL),
    ] {
        Reflect::set(&c, &k.into(), &v).unwrap();
    }
    for (k, v) in extra {
        Reflect::set(&c, &(*k).into(), v).unwrap();
    }
    c.into()
}

fn guest(config: JsValue) -> Result<GuestKeyExchange, JsValue> {
    GuestKeyExchange::new(config.unchecked_into())
}

async fn settle(p: impl Into<JsValue>) -> Result<JsValue, JsValue> {
    JsFuture::from(Promise::from(p.into())).await
}

/// The names of the SDK's entries in `sessionStorage`.
fn guest_entry_names() -> Vec<String> {
    guest_entries()
        .iter()
        .filter_map(|v| v.as_string())
        .collect()
}

#[wasm_bindgen_test]
fn session_storage_round_trip_and_reload_keep_the_identity() {
    clear_session_storage();
    let first = guest(config("reload-meeting", &[])).unwrap();
    assert_eq!(first.storage_backend(), "sessionStorage");
    let generated_ms = first
        .key_generation_ms()
        .expect("first page generates keys");
    web_sys_log(&format!(
        "key generation (identity + signed prekey + 30 one-time prekeys): {generated_ms:.1} ms"
    ));
    assert_eq!(
        guest_entry_names(),
        vec!["signal-guest/v2/reload-meeting/state".to_owned()]
    );
    let identity = first.identity_key().unwrap().to_vec();
    drop(first);
    // "Reload": a new object over the same tab storage.
    let second = guest(config("reload-meeting", &[])).unwrap();
    assert_eq!(second.identity_key().unwrap().to_vec(), identity);
    assert!(
        second.key_generation_ms().is_none(),
        "keys were loaded, not generated"
    );
    // Another meeting in the same tab gets its own identity.
    let other = guest(config("another-meeting", &[])).unwrap();
    assert_ne!(other.identity_key().unwrap().to_vec(), identity);
}

fn web_sys_log(text: &str) {
    let console = Reflect::get(&js_sys::global(), &"console".into()).unwrap();
    let log = js_sys::Function::from(Reflect::get(&console, &"log".into()).unwrap());
    let _ = log.call1(&console, &text.into());
}

#[wasm_bindgen_test]
async fn leave_leaves_no_entry_and_stops_listening() {
    clear_session_storage();
    let socket = fake_socket();
    let g = guest(config(MEETING, &[("socket", socket.clone())])).unwrap();
    settle(g.register())
        .await
        .expect("register against the fixture relay");
    assert_eq!(guest_entries().length(), 2, "state and registration stored");
    // Starting the exchange attaches the socket listener.
    let running = g.exchange_key();
    let listeners = js_sys::Function::from(get(&socket, "listeners"));
    assert_eq!(
        listeners
            .call1(&socket, &"participant:signal_message".into())
            .unwrap(),
        1
    );
    g.leave();
    assert_eq!(guest_entries().length(), 0, "every entry wiped");
    assert_eq!(
        listeners
            .call1(&socket, &"participant:signal_message".into())
            .unwrap(),
        0
    );
    let left = settle(running).await.unwrap_err();
    assert_eq!(code_of(&left), "LEFT");
    assert_eq!(code_of(&settle(g.register()).await.unwrap_err()), "LEFT");
    assert!(g.session_id().is_none());
}

#[wasm_bindgen_test]
fn throwing_storage_falls_back_to_memory_and_says_so() {
    let events = recorder();
    let g = guest(config(
        "fallback-meeting",
        &[
            ("storage", throwing_storage()),
            ("onEvent", get(&events, "onEvent")),
        ],
    ))
    .unwrap();
    assert_eq!(g.storage_backend(), "memory");
    let recorded = Array::from(&get(&events, "events"));
    assert_eq!(get(&recorded.get(0), "type"), "storage_fallback");
    assert!(get(&recorded.get(0), "reason")
        .as_string()
        .unwrap()
        .contains("storage disabled"));
    // Unless the page insists on real storage.
    let err = guest(config(
        "fallback-meeting",
        &[
            ("storage", throwing_storage()),
            ("requireStorage", true.into()),
        ],
    ))
    .err()
    .unwrap();
    assert_eq!(code_of(&err), "STORAGE_UNAVAILABLE");
}

#[wasm_bindgen_test]
async fn quota_errors_mid_session_move_state_to_memory() {
    // One write (the probe) succeeds, then every write throws: the keys generated at start
    // cannot be saved, yet registration still works, from memory, with an event.
    let storage = quota_storage(1);
    let events = recorder();
    let g = guest(config(
        MEETING,
        &[("storage", storage), ("onEvent", get(&events, "onEvent"))],
    ))
    .unwrap();
    assert_eq!(g.storage_backend(), "memory");
    let types: Vec<String> = Array::from(&get(&events, "events"))
        .iter()
        .map(|e| get(&e, "type").as_string().unwrap())
        .collect();
    assert!(types.contains(&"storage_fallback".to_owned()), "{types:?}");
    settle(g.register())
        .await
        .expect("registration works from memory");
}

#[wasm_bindgen_test]
fn corrupt_or_foreign_entries_are_typed_errors_with_a_reset_path() {
    clear_session_storage();
    let storage = web_sys_session_storage();
    let set = js_sys::Function::from(get(&storage, "setItem"));
    set.call2(
        &storage,
        &"signal-guest/v2/corrupt-meeting/state".into(),
        &"%%% not base64".into(),
    )
    .unwrap();
    let err = guest(config("corrupt-meeting", &[])).err().unwrap();
    assert_eq!(code_of(&err), "STORAGE_CORRUPT");
    GuestKeyExchange::clear_stored_state("corrupt-meeting", None);
    guest(config("corrupt-meeting", &[])).expect("usable after clearStoredState");
    // A registration record that belongs to another meeting.
    set.call2(
        &storage,
        &"signal-guest/v2/corrupt-meeting/registration".into(),
        &r#"{"session_id":"s","meeting_id":"someone-else"}"#.into(),
    )
    .unwrap();
    assert_eq!(
        code_of(&guest(config("corrupt-meeting", &[])).err().unwrap()),
        "STORAGE_CORRUPT"
    );
    // Valid base64, wrong format version.
    set.call2(
        &storage,
        &"signal-guest/v2/corrupt-meeting/state".into(),
        &"CQE=".into(),
    )
    .unwrap();
    assert_eq!(
        code_of(&guest(config("corrupt-meeting", &[])).err().unwrap()),
        "STORAGE_CORRUPT"
    );
    GuestKeyExchange::clear_stored_state("corrupt-meeting", None);
}

#[wasm_bindgen_test]
fn entries_of_an_earlier_format_are_removed_and_the_guest_starts_over() {
    clear_session_storage();
    let storage = web_sys_session_storage();
    let set = js_sys::Function::from(get(&storage, "setItem"));
    for entry in ["state", "registration"] {
        set.call2(
            &storage,
            &format!("signal-guest/v1/upgraded-meeting/{entry}").into(),
            &"an earlier SDK's entry".into(),
        )
        .unwrap();
    }
    let g = guest(config("upgraded-meeting", &[])).expect("not STORAGE_CORRUPT");
    assert!(g.key_generation_ms().is_some(), "new keys");
    assert_eq!(
        guest_entry_names(),
        vec!["signal-guest/v2/upgraded-meeting/state".to_owned()]
    );
}

#[wasm_bindgen_test]
fn only_https_or_loopback_origins_are_accepted() {
    let with_base = |base: &str| guest(config("origin-meeting", &[("baseUrl", base.into())]));
    for insecure in [
        "http://meet.example.com",
        "http://10.0.0.1:8080",
        "http://128.0.0.1",
    ] {
        assert_eq!(
            code_of(&with_base(insecure).err().unwrap()),
            "INSECURE_ORIGIN",
            "{insecure}"
        );
    }
    for ok in [
        "https://meet.example.com",
        "http://localhost:8080",
        "http://127.0.0.1:1",
        "http://[::1]:9",
    ] {
        assert!(with_base(ok).is_ok(), "{ok}");
    }
    assert_eq!(
        code_of(&with_base("not a url").err().unwrap()),
        "INVALID_CONFIG"
    );
    assert_eq!(
        code_of(&with_base("ftp://x").err().unwrap()),
        "INVALID_CONFIG"
    );
    let no_socket = guest(config(
        "origin-meeting",
        &[("socket", Object::new().into())],
    ));
    assert_eq!(code_of(&no_socket.err().unwrap()), "INVALID_CONFIG");
}

#[wasm_bindgen_test]
async fn registration_through_cors_fetch_is_reused_after_reload() {
    clear_session_storage();
    let g = guest(config(MEETING, &[])).unwrap();
    let first = settle(g.register()).await.expect("register");
    assert_eq!(get(&first, "reused"), false);
    let session_id = get(&first, "sessionId").as_string().unwrap();
    assert!(!session_id.is_empty());
    assert_eq!(g.session_id().as_deref(), Some(session_id.as_str()));
    drop(g);
    let reloaded = guest(config(MEETING, &[])).unwrap();
    let second = settle(reloaded.register()).await.expect("register again");
    assert_eq!(get(&second, "reused"), true);
    assert_eq!(get(&second, "sessionId").as_string().unwrap(), session_id);
    // A wrong invitation token is a typed, non-retryable rejection.
    clear_session_storage();
    let bad = guest(config(MEETING, &[("invitationToken", "wrong".into())])).unwrap();
    let err = settle(bad.register()).await.unwrap_err();
    assert_eq!(code_of(&err), "REGISTRATION_REJECTED");
    assert_eq!(get(&err, "retryable"), false);
    // exchangeKey before register.
    let unregistered = guest(config("never-registered", &[])).unwrap();
    assert_eq!(
        code_of(&settle(unregistered.exchange_key()).await.unwrap_err()),
        "NOT_REGISTERED"
    );
}

#[wasm_bindgen_test]
async fn full_exchange_against_official_libsignal_rotates_past_a_silent_participant() {
    clear_session_storage();
    let info = settle(fetch_json(FIXTURE_INFO))
        .await
        .expect("fixture running");
    settle(load_script(&format!(
        "{RELAY}/socket.io/socket.io.esm.min.js"
    )))
    .await
    .expect("socket.io client");
    let events = recorder();
    let provider = recording_key_provider();
    let g = guest(config(MEETING, &[])).unwrap();
    let session_id = get(&settle(g.register()).await.unwrap(), "sessionId")
        .as_string()
        .unwrap();
    let socket = settle(connect_guest(RELAY, &session_id))
        .await
        .expect("socket connects");
    drop(g);
    let g = guest(config(
        MEETING,
        &[
            ("socket", socket),
            ("keyProvider", provider.clone()),
            ("onEvent", get(&events, "onEvent")),
            ("participantTimeoutMs", 1500.into()),
            // One at a time: the silent bot must fail its attempt before the next is asked.
            ("hedgeAfterMs", 0.into()),
            // The server's order: the silent bot is listed first.
            ("spreadFirstRequests", false.into()),
        ],
    ))
    .unwrap();
    let started = now();
    let result = settle(g.exchange_key()).await.expect("key delivered");
    let elapsed = now() - started;
    assert_eq!(get(&get(&result, "from"), "userId"), "bot-reply");
    assert!(
        elapsed >= 1500.0,
        "the silent bot got its full 1.5 s ({elapsed} ms)"
    );
    let expected = get(&info, "keyCheckValue").as_string().unwrap();
    assert_eq!(get(&result, "keyCheckValue").as_string().unwrap(), expected);
    assert_eq!(g.key_check_value().unwrap(), expected);
    // The provider got the base64 of the same 32 bytes, with key index 0.
    let calls = Array::from(&get(&provider, "calls"));
    assert_eq!(calls.length(), 1);
    let call = Array::from(&calls.get(0));
    let material = call
        .get(0)
        .as_string()
        .expect("base64 profile passes a string");
    let bytes = base64_to_bytes(&material);
    assert_eq!(GuestKeyExchange::check_value_of(&bytes).unwrap(), expected);
    assert_eq!(call.get(1), 0);
    // The page saw the rotation.
    let stages: Vec<String> = Array::from(&get(&events, "events"))
        .iter()
        .filter_map(|e| get(&e, "stage").as_string())
        .collect();
    let rotated = stages
        .iter()
        .position(|s| s == "rotating")
        .expect("rotated");
    assert_eq!(&stages[..2], ["listing_participants", "fetching_bundle"]);
    assert!(
        stages[rotated..].contains(&"key_received".to_owned()),
        "{stages:?}"
    );
    // No event carries the key.
    for e in Array::from(&get(&events, "events")).iter() {
        let text = String::from(js_sys::JSON::stringify(&e).unwrap());
        assert!(!text.contains(&material), "event leaks the key: {text}");
    }
    // A second call answers at once with the same key.
    let again = settle(g.exchange_key()).await.unwrap();
    assert_eq!(get(&again, "keyCheckValue").as_string().unwrap(), expected);
    settle(sleep(10)).await.unwrap();
    g.leave();
}

/// A duplicated tab starts with a copy of the first tab's sessionStorage. While the first tab
/// lives, the copy must not use the same Signal state (it would reuse message keys): it makes
/// its own identity and registers it.
#[wasm_bindgen_test]
async fn a_duplicated_tab_makes_its_own_identity_and_registration() {
    let storage = quota_storage(1_000);
    let first = guest(config(MEETING, &[("storage", storage.clone())])).unwrap();
    let first_registration = settle(first.register()).await.expect("register");
    let first_identity = first.identity_key().unwrap().to_vec();

    let events = recorder();
    let copy = guest(config(
        MEETING,
        &[
            ("storage", copy_of(&storage)),
            ("onEvent", get(&events, "onEvent")),
        ],
    ))
    .unwrap();
    assert_eq!(
        copy.identity_key().unwrap().to_vec(),
        first_identity,
        "the copy starts from the same stored state"
    );
    let copy_registration = settle(copy.register()).await.expect("register the copy");
    assert_ne!(copy.identity_key().unwrap().to_vec(), first_identity);
    assert_eq!(get(&copy_registration, "reused"), false);
    assert_ne!(
        get(&copy_registration, "sessionId"),
        get(&first_registration, "sessionId")
    );
    let types: Vec<String> = Array::from(&get(&events, "events"))
        .iter()
        .map(|e| get(&e, "type").as_string().unwrap_or_default())
        .collect();
    assert!(types.contains(&"duplicate_tab".to_owned()), "{types:?}");

    // Once the first tab has left, a reload that finds its stored state keeps it.
    let second_copy_storage = copy_of(&storage);
    let kept = first.identity_key().unwrap().to_vec();
    first.leave();
    let reloaded = guest(config(MEETING, &[("storage", second_copy_storage)])).unwrap();
    let again = settle(reloaded.register())
        .await
        .expect("register after leave");
    assert_eq!(reloaded.identity_key().unwrap().to_vec(), kept);
    assert_eq!(get(&again, "reused"), true);
    reloaded.leave();
    copy.leave();
}

/// Without Web Locks (browsers before Safari 15.4, Chrome 69, Firefox 96) a tab cannot tell
/// whether its stored state is a duplicated tab's copy: it does not use it (fail closed).
#[wasm_bindgen_test]
async fn without_web_locks_a_stored_state_is_not_used() {
    let storage = quota_storage(1_000);
    let first = guest(config(MEETING, &[("storage", storage.clone())])).unwrap();
    settle(first.register()).await.expect("register");
    let first_identity = first.identity_key().unwrap().to_vec();
    let restore = hide("navigator", "locks");
    let events = recorder();
    let copy = guest(config(
        MEETING,
        &[
            ("storage", copy_of(&storage)),
            ("onEvent", get(&events, "onEvent")),
        ],
    ))
    .unwrap();
    let registration = settle(copy.register()).await.expect("register the copy");
    restore.call0(&JsValue::NULL).unwrap();
    assert_ne!(copy.identity_key().unwrap().to_vec(), first_identity);
    assert_eq!(get(&registration, "reused"), false);
    let types: Vec<String> = Array::from(&get(&events, "events"))
        .iter()
        .map(|e| get(&e, "type").as_string().unwrap_or_default())
        .collect();
    assert!(types.contains(&"duplicate_tab".to_owned()), "{types:?}");
    copy.leave();
    first.leave();
}

/// `AbortSignal.timeout` came years after Web Locks (Safari 16, Chrome 103): without it the
/// duplicated tab is still found out, and a reload after the first tab left still reuses.
#[wasm_bindgen_test]
async fn without_abort_signal_timeout_the_tab_check_still_works() {
    let restore = hide("AbortSignal", "timeout");
    let storage = quota_storage(1_000);
    let first = guest(config(MEETING, &[("storage", storage.clone())])).unwrap();
    settle(first.register()).await.expect("register");
    let first_identity = first.identity_key().unwrap().to_vec();
    let copy = guest(config(MEETING, &[("storage", copy_of(&storage))])).unwrap();
    settle(copy.register()).await.expect("register the copy");
    assert_ne!(copy.identity_key().unwrap().to_vec(), first_identity);
    let later = copy_of(&storage);
    first.leave();
    let reloaded = guest(config(MEETING, &[("storage", later)])).unwrap();
    let again = settle(reloaded.register())
        .await
        .expect("register after leave");
    restore.call0(&JsValue::NULL).unwrap();
    assert_eq!(reloaded.identity_key().unwrap().to_vec(), first_identity);
    assert_eq!(get(&again, "reused"), true);
    reloaded.leave();
    copy.leave();
}
