//! PeerWave's `/external` handshake and lobby, which the SDK drives itself in the `peerwave`
//! profile: the server reads the guest's session only from the socket's handshake `auth`
//! (so the SDK sets it whenever it registers), drops events sent before its `authenticated`
//! answer, and puts a guest in the host's lobby only on an explicit admission request.

use alloc::rc::Rc;

use super::http::Http;
use super::instance::{with_usable, Lobby, Shared};
use super::js::object;
use super::platform::Timeout;
use super::session_loss;
use crate::exchange::contract::peerwave::{handshake as auth, paths};
use crate::exchange::contract::WireProfile;

/// PeerWave refuses a second admission request within 5 s of the first.
const ADMISSION_COOLDOWN_MS: u32 = 5_000;

/// Sets the socket's handshake `auth` for the current registration and (re)connects it, so
/// that the server authenticates this guest (`authenticated` then opens the gate). Nothing
/// to do in the plan profile, where the page owns the handshake.
pub(crate) fn authenticate(shared: &Shared) {
    let Ok(Some((socket, auth))) = with_usable(shared, |instance| {
        let c = &instance.config;
        if c.profile() != WireProfile::PeerWave {
            return None;
        }
        let session_id = instance.lifecycle.exchange()?.guest_session_id();
        let auth = object(&[
            (auth::SESSION_ID, session_id.into()),
            (auth::TOKEN, c.invitation_token.as_str().into()),
            (auth::MEETING_ID, c.meeting_id.as_str().into()),
        ]);
        instance.authenticated = false;
        Some((c.socket.clone(), auth))
    }) else {
        return;
    };
    socket.reconnect_with(&auth.into());
}

/// Puts the guest in the host's lobby, once per registration (a second request on an
/// admitted session would withdraw the admission). Best effort: the admission wait has its
/// own deadline.
pub(crate) fn request_admission(shared: &Shared) {
    let Ok(Some((url, timeout))) = with_usable(shared, |instance| {
        let c = &instance.config;
        if instance.lobby != Lobby::Outside
            || instance.admitted
            || c.profile() != WireProfile::PeerWave
        {
            return None;
        }
        let session_id = instance.lifecycle.exchange()?.guest_session_id();
        let url = c.http.url(
            paths::REQUEST_ADMISSION,
            &[("meetingId", &c.meeting_id), ("sessionId", session_id)],
        );
        instance.lobby = Lobby::Asking;
        Some((url, c.request_timeout_ms))
    }) else {
        return;
    };
    let weak = Rc::downgrade(shared);
    Http::post_json(&url, "{}", timeout, move |reply| {
        let Some(shared) = weak.upgrade() else { return };
        if session_loss::reregister_if_lost(&shared, &reply) {
            return;
        }
        if reply.ok() {
            if let Ok(mut instance) = shared.try_borrow_mut() {
                instance.lobby = Lobby::In;
            }
            return;
        }
        // Not in the lobby. A 429 is PeerWave's 5 s cooldown between requests (a decline
        // followed by "Try again" meets it): ask again once it has passed.
        let retry = (reply.status == 429).then(|| {
            let weak = Rc::downgrade(&shared);
            Timeout::new(ADMISSION_COOLDOWN_MS, move || {
                if let Some(shared) = weak.upgrade() {
                    request_admission(&shared);
                }
            })
        });
        if let Ok(mut instance) = shared.try_borrow_mut() {
            instance.lobby = Lobby::Outside;
            instance.admission_retry = retry;
        };
    });
}

/// The server refused a handshake as if the session were gone. The refusal may answer an
/// older handshake (the page may reconnect with the previous `auth`), so the registration
/// is checked before it is given up.
pub(crate) fn confirm_session_lost(shared: &Shared) {
    let Ok(Some((url, timeout))) = with_usable(shared, |instance| {
        let c = &instance.config;
        let session_id = instance.lifecycle.exchange()?.guest_session_id();
        let url = c.http.url(
            paths::SESSION,
            &[
                ("sessionId", session_id),
                ("invitationToken", &c.invitation_token),
            ],
        );
        Some((url, c.request_timeout_ms))
    }) else {
        return;
    };
    let weak = Rc::downgrade(shared);
    Http::get(&url, &[], timeout, move |reply| {
        if let Some(shared) = weak.upgrade() {
            session_loss::reregister_if_lost(&shared, &reply);
        }
    });
}
