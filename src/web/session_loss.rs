//! When the server forgets the guest. PeerWave keeps guest sessions in memory: a restart,
//! the 24-hour expiry or another guest's registration (which deletes every waiting session of
//! the meeting) drops them, and every later call with the old session id fails. Rather than
//! fail forever, the guest starts over: new keys (the server's copy of the old public ones is
//! gone, and sessions built on them are useless), a new registration, a new handshake.
//!
//! What happens to a running `exchangeKey()` depends on how far it got. A guest that had not
//! reached the host's lobby yet has lost nothing the host knew of; this is the usual case,
//! since PeerWave deletes every guest that has registered but not yet asked to be let in
//! whenever another guest registers, so guests who join together knock each other out. Its
//! call goes on with the new registration, up to [`LOST_REGISTRATIONS_MAX`] times. A guest
//! already in the lobby or admitted must be let in again: its call rejects with
//! `SESSION_LOST`, and the next one works once the host has admitted the guest again.

use super::bootstrap::fresh_keys;
use super::error::{ExchangeKeyError, GuestError};
use super::events;
use super::gate;
use super::http::Reply;
use super::instance::{emit, persist, with_usable, Lifecycle, Lobby, Shared};
use super::registration;
use crate::exchange::messages::names_lost_session;
use crate::exchange::GuestState;

/// How many lost registrations one `exchangeKey()` call outlives before the lobby (guests
/// joining together each knock the others out at most once per registration of theirs).
pub(crate) const LOST_REGISTRATIONS_MAX: u8 = 3;

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
    let Ok(Some((failed, resumes))) = with_usable(shared, |instance| {
        let Lifecycle::Registered(exchange) = &instance.lifecycle else {
            return None;
        };
        let resumes = instance.gate.is_some()
            && instance.lobby != Lobby::In
            && !instance.admitted
            && instance
                .pending
                .as_ref()
                .is_some_and(|p| p.lost_registrations < LOST_REGISTRATIONS_MAX);
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
        instance.lobby = Lobby::Outside;
        instance.timer = None;
        instance.admission_retry = None;
        instance.gate = None;
        instance.queue.clear();
        instance.storage.wipe();
        let failed = if resumes {
            if let Some(p) = instance.pending.as_mut() {
                p.lost_registrations += 1;
            }
            None
        } else {
            instance.pending.take()
        };
        Some((failed, resumes))
    }) else {
        return;
    };
    persist(shared);
    emit(shared, events::session_lost());
    if let Some(p) = failed {
        p.deferred
            .settle(Err(GuestError::from(ExchangeKeyError::SessionLost)));
    }
    let weak = alloc::rc::Rc::downgrade(shared);
    registration::start(shared, move |result| {
        let Some(shared) = weak.upgrade() else { return };
        let registered = result.is_ok();
        let event = match result {
            Ok(answer) => events::registered(
                &super::js::get(&answer, "sessionId")
                    .as_string()
                    .unwrap_or_default(),
            ),
            Err(e) => events::error(&GuestError::from(e).into()),
        };
        emit(&shared, event);
        if !resumes {
            return;
        }
        if registered {
            // Through the gate again: handshake, lobby, admission, each with its deadline.
            gate::start_when_ready(&shared);
        } else if let Ok(Some(p)) = with_usable(&shared, |instance| instance.pending.take()) {
            p.deferred
                .settle(Err(GuestError::from(ExchangeKeyError::SessionLost)));
        }
    });
}
