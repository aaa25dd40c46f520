//! Making a guest: storage opened (or memory, when the page's storage is unusable), the
//! stored identity, prekeys, sessions and registration read back, or new keys made.

use crate::prelude::*;

use alloc::boxed::Box;

use alloc::collections::VecDeque;
use alloc::rc::Rc;
use core::cell::RefCell;

use zeroize::Zeroizing;

use super::config::Config;
use super::error::SetupError;
use super::events;
use super::instance::{emit, persist, Instance, Lifecycle, Shared};
use super::js::now_ms;
use super::listeners;
use super::platform::WebCryptoRng;
use super::storage::{GuestStorage, StorageFailure, REGISTRATION_ENTRY, STATE_ENTRY};
use super::tab::{self, TabClaim};
use crate::exchange::contract::WireProfile;
use crate::exchange::join::Join;
use crate::exchange::messages::{decode_base64, parse_registration};
use crate::exchange::stored::record_admitted;
use crate::exchange::ONE_TIME_PRE_KEYS;
use crate::exchange::{Exchange, GuestState};
use crate::signal::ProtocolStore;

/// What was read from storage.
struct Stored {
    state: Option<Zeroizing<String>>,
    registration: Option<String>,
}

/// Reads both entries. A storage that throws on reading is as unusable as one that throws
/// on writing: the SDK moves to memory (and says why) rather than taking "unreadable" for
/// "nothing stored" and silently making a new identity over the stored one.
fn read_stored(
    storage: &mut GuestStorage,
    require_storage: bool,
    fallbacks: &mut Vec<StorageFailure>,
) -> Result<Stored, SetupError> {
    let read = storage
        .get(STATE_ENTRY)
        .and_then(|state| Ok((state, storage.get(REGISTRATION_ENTRY)?)));
    match read {
        Ok((state, registration)) => Ok(Stored {
            state: state.map(Zeroizing::new),
            registration,
        }),
        Err(reason) if require_storage => Err(SetupError::StorageUnavailable(reason.0)),
        Err(reason) => {
            storage.move_to_memory();
            fallbacks.push(reason);
            Ok(Stored {
                state: None,
                registration: None,
            })
        }
    }
}

fn load_state(text: &str) -> Result<GuestState, SetupError> {
    let corrupt = |why: String| SetupError::StorageCorrupt(format!("state ({why})"));
    let bytes = Zeroizing::new(decode_base64(text, "state").map_err(|e| corrupt(e.to_string()))?);
    GuestState::from_bytes(&bytes).map_err(|e| corrupt(e.to_string()))
}

/// A new identity with [`ONE_TIME_PRE_KEYS`] one-time prekeys, and a signed Kyber prekey
/// where the profile's server takes one (v4 sessions).
pub(crate) fn fresh_keys(rng: &mut WebCryptoRng, profile: WireProfile) -> ProtocolStore {
    let mut store = ProtocolStore::generate(rng, ONE_TIME_PRE_KEYS);
    if profile.names().kyber_pre_key.is_some() {
        store.add_kyber_pre_key(1, rng);
    }
    store
}

/// Builds the instance for `config`.
pub(crate) fn open(config: Config, mut rng: WebCryptoRng) -> Result<Shared, SetupError> {
    let (mut storage, fallback) = GuestStorage::open(&config.storage, &config.meeting_id);
    let mut fallbacks: Vec<StorageFailure> = fallback.into_iter().collect();
    if config.require_storage {
        if let Some(reason) = fallbacks.first() {
            return Err(SetupError::StorageUnavailable(reason.0.clone()));
        }
    }
    let stored = read_stored(&mut storage, config.require_storage, &mut fallbacks)?;
    let (state, key_generation_ms) = match &stored.state {
        Some(text) => {
            let state = load_state(text)?;
            // Fresh keys build it while generating; stored ones would leave it to the first
            // X3DH, on the way to the key (about 0.25 ms).
            crate::signal::build_basepoint_table();
            (state, None)
        }
        None => {
            let started = js_sys::Date::now();
            let store = fresh_keys(&mut rng, config.profile());
            (GuestState::new(store), Some(js_sys::Date::now() - started))
        }
    };
    // A registration names the public keys the server holds; without the stored keys it
    // is of no use, and the guest registers its new keys instead.
    let registration = stored
        .registration
        .as_ref()
        .filter(|_| key_generation_ms.is_none());
    // Whether the host admitted it counts only where the server says so once (the join's
    // rules): the contract's server repeats it on every connection.
    let admitted = registration.is_some_and(|text| record_admitted(text));
    let registration = registration.filter(|_| config.join().rules.reuses_stored(admitted));
    let session_id = match registration {
        None => None,
        Some(text) => Some(
            parse_registration(text, &config.meeting_id)
                .map_err(|e| SetupError::StorageCorrupt(format!("registration ({e})")))?,
        ),
    };
    let (join, opening) = Join::new(
        config.join(),
        session_id.clone().map(|id| (id, admitted)),
        config.socket.link(),
        now_ms(),
    );
    let lifecycle = match session_id {
        Some(session_id) => Lifecycle::Registered(Box::new(Exchange::new(
            config.exchange.clone(),
            config.meeting_id.clone(),
            session_id,
            state,
        ))),
        None => Lifecycle::Unregistered(state),
    };
    let socket = config.socket.clone();
    let stored_state = key_generation_ms.is_none();
    let shared = Rc::new(RefCell::new(Instance {
        config,
        storage,
        lifecycle,
        rng,
        key_generation_ms,
        listeners: Vec::new(),
        join,
        timer: None,
        pending: None,
        queue: VecDeque::new(),
        dispatching: false,
        outbox: VecDeque::new(),
        tab: TabClaim::Pending(Vec::new()),
        lock_release: None,
    }));
    for reason in fallbacks {
        emit(&shared, events::storage_fallback(&reason.0));
    }
    let listeners = listeners::listen_all(&shared, &socket)?;
    if let Ok(mut instance) = shared.try_borrow_mut() {
        instance.listeners = listeners;
    }
    persist(&shared);
    tab::claim(&shared, stored_state);
    // A stored registration: connect with its handshake (PeerWave).
    for action in opening {
        super::joining::perform(&shared, action);
    }
    Ok(shared)
}
