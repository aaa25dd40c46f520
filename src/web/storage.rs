//! Tab-scoped storage: `sessionStorage` (or any object with the same three methods), with a
//! fallback to memory when storage is missing or throws (disabled storage, private modes,
//! quota). Entries are namespaced per meeting and versioned.

use crate::prelude::*;

use js_sys::Reflect;
use wasm_bindgen::prelude::*;
use zeroize::Zeroizing;

use super::js::is_absent;

#[wasm_bindgen]
extern "C" {
    /// `sessionStorage`, or a stand-in with `getItem`, `setItem` and `removeItem`.
    #[wasm_bindgen(typescript_type = "Pick<Storage, 'getItem' | 'setItem' | 'removeItem'>")]
    #[derive(Clone)]
    pub type StorageLike;
    #[wasm_bindgen(method, catch, js_name = getItem)]
    fn get_item(this: &StorageLike, key: &str) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, catch, js_name = setItem)]
    fn set_item(this: &StorageLike, key: &str, value: &str) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch, js_name = removeItem)]
    fn remove_item(this: &StorageLike, key: &str) -> Result<(), JsValue>;
}

/// The layout of the entries' names and contents; it changes with the stored record format
/// (`RECORD_FORMAT_VERSION`: v2 holds format 3, with v4 sessions and message-key seeds).
const FORMAT: &str = "v2";
/// Earlier layouts. A tab open across an SDK update would otherwise keep a state the new
/// code cannot read; their entries (private keys among them) are removed on open, and the
/// guest starts over with new keys, as on a first visit.
const EARLIER_FORMATS: [&str; 1] = ["v1"];
pub(crate) const STATE_ENTRY: &str = "state";
pub(crate) const REGISTRATION_ENTRY: &str = "registration";
const ENTRIES: [&str; 2] = [STATE_ENTRY, REGISTRATION_ENTRY];

enum Backend {
    Js(StorageLike),
    /// Entries kept in memory; the values hold the serialized state (private keys), so
    /// they are wiped when replaced or dropped.
    Memory(Vec<(String, Zeroizing<String>)>),
}

pub(crate) struct GuestStorage {
    backend: Backend,
    prefix: String,
}

/// Why the page's storage could not be used: the browser's own words (e.g. "QuotaExceededError:
/// …", "access is denied"), shown to the page in `storage_fallback` events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StorageFailure(pub String);

impl core::fmt::Display for StorageFailure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

fn describe(e: &JsValue) -> StorageFailure {
    StorageFailure(
        js_sys::Error::from(e.clone())
            .message()
            .as_string()
            .unwrap_or_else(|| "storage threw".into()),
    )
}

impl GuestStorage {
    /// Opens `configured` (or `sessionStorage` when absent). Returns why it fell back to
    /// memory, if it did.
    pub(crate) fn open(configured: &JsValue, meeting_id: &str) -> (Self, Option<StorageFailure>) {
        let prefix = format!("signal-guest/{FORMAT}/{meeting_id}/");
        let candidate = if is_absent(configured) {
            // Reading `sessionStorage` itself throws where storage is disabled.
            match Reflect::get(&js_sys::global(), &JsValue::from_str("sessionStorage")) {
                Ok(s) if !is_absent(&s) => Ok(s),
                Ok(_) => Err(StorageFailure("sessionStorage is not available".into())),
                Err(e) => Err(describe(&e)),
            }
        } else {
            Ok(configured.clone())
        };
        let memory = |reason| {
            (
                Self {
                    backend: Backend::Memory(Vec::new()),
                    prefix: prefix.clone(),
                },
                Some(reason),
            )
        };
        let storage = match candidate {
            Ok(s) => StorageLike::from(s),
            Err(reason) => return memory(reason),
        };
        for earlier in EARLIER_FORMATS {
            for entry in ENTRIES {
                let _ =
                    storage.remove_item(&format!("signal-guest/{earlier}/{meeting_id}/{entry}"));
            }
        }
        // Probe: some browsers expose storage that throws on every write.
        let probe = format!("{prefix}probe");
        if let Err(e) = storage
            .set_item(&probe, "1")
            .and_then(|()| storage.remove_item(&probe))
        {
            return memory(describe(&e));
        }
        (
            Self {
                backend: Backend::Js(storage),
                prefix,
            },
            None,
        )
    }

    pub(crate) fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Js(_) => "sessionStorage",
            Backend::Memory(_) => "memory",
        }
    }

    fn key(&self, entry: &str) -> String {
        format!("{}{entry}", self.prefix)
    }

    /// `Ok(None)` when absent; `Err` when storage throws or holds a non-string.
    pub(crate) fn get(&self, entry: &str) -> Result<Option<String>, StorageFailure> {
        let key = self.key(entry);
        match &self.backend {
            Backend::Memory(items) => Ok(items
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| String::clone(v))),
            Backend::Js(s) => match s.get_item(&key) {
                Ok(v) if is_absent(&v) => Ok(None),
                Ok(v) => v
                    .as_string()
                    .map(Some)
                    .ok_or_else(|| StorageFailure("stored entry is not a string".into())),
                Err(e) => Err(describe(&e)),
            },
        }
    }

    /// Writes; if storage throws, moves everything to memory and returns why.
    pub(crate) fn set(&mut self, entry: &str, value: &str) -> Result<(), StorageFailure> {
        let key = self.key(entry);
        let failure = match &self.backend {
            Backend::Js(s) => match s.set_item(&key, value) {
                Ok(()) => return Ok(()),
                Err(e) => Some(describe(&e)),
            },
            Backend::Memory(_) => None,
        };
        self.move_to_memory();
        if let Backend::Memory(items) = &mut self.backend {
            items.retain(|(k, _)| *k != key);
            items.push((key, Zeroizing::new(value.to_owned())));
        }
        failure.map_or(Ok(()), Err)
    }

    /// From now on keeps entries in memory, carrying over what can still be read and
    /// removing it from the page's storage.
    pub(crate) fn move_to_memory(&mut self) {
        if let Backend::Js(_) = self.backend {
            let carried: Vec<(String, Zeroizing<String>)> = ENTRIES
                .iter()
                .filter_map(|e| {
                    let value = self.get(e).ok().flatten()?;
                    Some((self.key(e), Zeroizing::new(value)))
                })
                .collect();
            self.wipe();
            self.backend = Backend::Memory(carried);
        }
    }

    /// Removes every entry of this meeting (best effort: storage that throws is left).
    pub(crate) fn wipe(&mut self) {
        let keys: Vec<String> = ENTRIES.iter().map(|e| self.key(e)).collect();
        match &mut self.backend {
            Backend::Js(s) => {
                for key in &keys {
                    let _ = s.remove_item(key);
                }
            }
            Backend::Memory(items) => items.clear(),
        }
    }
}
