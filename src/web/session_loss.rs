//! When the server forgets the guest. PeerWave keeps guest sessions in memory: a restart,
//! the 24-hour expiry or another guest's registration (which deletes every waiting session of
//! the meeting) drops them, and every later call with the old session id fails. Rather than
//! fail forever, the guest starts over: new keys (the server's copy of the old public ones is
//! gone, and sessions built on them are useless), a new registration, a new handshake. The
//! running `exchangeKey()` rejects with `SESSION_LOST`; the next one works once the host has
//! admitted the guest again.

use super::bootstrap::fresh_keys;
use super::error::{ExchangeKeyError, GuestError};
use super::events;
use super::http::Reply;
use super::instance::{emit, persist, with_usable, Lifecycle, Shared};
use super::registration;
use crate::exchange::messages::names_lost_session;
use crate::exchange::GuestState;

/// Whether `reply` says the server forgot this guest; if so, the guest registers again. Every
/// PeerWave call that names the session checks its answer with this.
pub(crate) fn reregister_if_lost(shared: &Shared, reply: &Reply) -> bool {
    let lost = names_lost_session(reply.status, &reply.body);
    if lost {
        session_lost(shared);
    }
    lost
}

/// Drops the lost registration and registers again (no-op unless registered).
pub(crate) fn session_lost(shared: &Shared) {
    let Ok(Some(pending)) = with_usable(shared, |instance| {
        let Lifecycle::Registered(exchange) = &instance.lifecycle else {
            return None;
        };
        let old = exchange.state();
        let profile = instance.config.profile();
        let mut state = GuestState::new(fresh_keys(&mut instance.rng, profile));
        // Who answered and who did not is about the participants, still true.
        state.last_answerer = old.last_answerer.clone();
        state.unanswered = old.unanswered.clone();
        // Dropping the exchange zeroizes the old keys and sessions.
        instance.lifecycle = Lifecycle::Unregistered(state);
        instance.admitted = false;
        instance.authenticated = false;
        instance.admission_requested = false;
        instance.timer = None;
        instance.admission_retry = None;
        instance.gate = None;
        instance.queue.clear();
        instance.storage.wipe();
        Some(instance.pending.take())
    }) else {
        return;
    };
    persist(shared);
    emit(shared, events::session_lost());
    if let Some(p) = pending {
        p.deferred
            .settle(Err(GuestError::from(ExchangeKeyError::SessionLost)));
    }
    let weak = alloc::rc::Rc::downgrade(shared);
    registration::start(shared, move |result| {
        let Some(shared) = weak.upgrade() else { return };
        let event = match result {
            Ok(answer) => events::registered(
                &super::js::get(&answer, "sessionId")
                    .as_string()
                    .unwrap_or_default(),
            ),
            Err(e) => events::error(&GuestError::from(e).into()),
        };
        emit(&shared, event);
    });
}
