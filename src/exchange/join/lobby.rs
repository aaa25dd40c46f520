//! The join's registration, handshake and lobby: what the server's answers and notices
//! change, and starting over when the server lost the registration.

use crate::prelude::*;

use super::{
    Admission, CallOutcome, Held, Join, JoinAction, JoinFailure, JoinNotice, Link, LobbyAnswer,
    Millis, Registration, Stage, Status, Waiting, LOBBY_COOLDOWN_MS, LOST_REGISTRATIONS_MAX,
    RENEWALS_AT_ONCE, RENEWAL_BACKOFF_MAX_MS, RENEWAL_BACKOFF_MS, RENEWAL_QUIET_MS,
    RENEWAL_SPREAD_MIN_MS, RENEWAL_SPREAD_MS, STATUS_CHECK_MS,
};
use crate::exchange::spread_of;

impl Join {
    /// A registration is held: the handshake names it (PeerWave).
    pub(super) fn hold(&mut self, session_id: String, out: &mut Vec<JoinAction>) {
        if self.config.rules.sdk_handshake {
            out.push(JoinAction::Handshake);
            self.link = Link::Connecting;
        }
        self.registration = Registration::Held(Held {
            session_id,
            admission: Admission::Outside,
            authenticated: false,
        });
    }

    pub(super) fn registered(&mut self, session_id: String, out: &mut Vec<JoinAction>) {
        if matches!(self.registration, Registration::Renewing) {
            out.push(JoinAction::Notice(JoinNotice::Registered));
        }
        self.hold(session_id, out);
        if let Some(call) = &mut self.call {
            if let Stage::Registering { resume } = call.stage {
                if resume {
                    call.stage = Stage::Starting;
                    self.proceed(out);
                } else {
                    self.settle(CallOutcome::Failed(JoinFailure::SessionLost), out);
                }
            }
        }
    }

    pub(super) fn registration_failed(&mut self, out: &mut Vec<JoinAction>) {
        if matches!(self.registration, Registration::Renewing) {
            self.registration = Registration::None;
            // Only a call waiting for the SDK's own registration is waiting here.
            if matches!(
                self.call.as_ref().map(|c| c.stage),
                Some(Stage::Registering { .. })
            ) {
                self.settle(CallOutcome::Failed(JoinFailure::SessionLost), out);
            }
        }
    }

    pub(super) fn authenticated(&mut self, session_id: &str, out: &mut Vec<JoinAction>) {
        let Registration::Held(held) = &mut self.registration else {
            return;
        };
        if held.session_id != session_id {
            return;
        }
        held.authenticated = true;
        self.link = Link::Up;
        match held.admission {
            // Into the lobby as soon as the socket can hear the answer: PeerWave deletes
            // every registered guest that has not asked yet whenever another one registers.
            Admission::Outside if self.config.rules.lobby => {
                held.admission = Admission::Asking;
                out.push(JoinAction::RequestAdmission);
            }
            // A notice sent while the socket was away is lost: ask how things stand.
            Admission::InLobby { .. } => {
                held.admission = Admission::InLobby { check_at: None };
                out.push(JoinAction::CheckStatus);
            }
            _ => {}
        }
        self.proceed(out);
    }

    pub(super) fn admitted_now(&mut self, out: &mut Vec<JoinAction>) {
        if self.admitted() {
            return;
        }
        self.set_admission(Admission::Admitted);
        if self.config.rules.admission_kept {
            out.push(JoinAction::PersistAdmitted);
        }
        out.push(JoinAction::Notice(JoinNotice::Admitted));
        self.proceed(out);
    }

    pub(super) fn declined(&mut self, out: &mut Vec<JoinAction>) {
        self.set_admission(Admission::Declined);
        // Only a call still waiting ends here; a running exchange goes on.
        if matches!(
            self.call.as_ref().map(|c| c.stage),
            Some(Stage::Waiting { .. })
        ) {
            self.settle(CallOutcome::Failed(JoinFailure::Declined), out);
        }
    }

    /// PeerWave told every waiting guest about another one: a moment to check on ours
    /// (the host may have tried to admit a registration the server had already deleted).
    pub(super) fn lobby_moved(&mut self, out: &mut Vec<JoinAction>) {
        if let Registration::Held(held) = &mut self.registration {
            if let Admission::InLobby { check_at: Some(_) } = held.admission {
                held.admission = Admission::InLobby { check_at: None };
                out.push(JoinAction::CheckStatus);
            }
        }
    }

    pub(super) fn lobby_answered(&mut self, answer: LobbyAnswer, out: &mut Vec<JoinAction>) {
        if !matches!(self.admission(), Some(Admission::Asking)) {
            return;
        }
        let waiting = self.waiting_for(Waiting::Admission);
        let next = match answer {
            LobbyAnswer::SessionGone => return self.lost(out),
            LobbyAnswer::InLobby => Admission::InLobby {
                check_at: Some(self.clock + STATUS_CHECK_MS),
            },
            LobbyAnswer::TryLater if waiting => Admission::AskAt(self.clock + LOBBY_COOLDOWN_MS),
            // Nobody is waiting: the next call asks.
            LobbyAnswer::TryLater => Admission::Outside,
        };
        self.set_admission(next);
    }

    pub(super) fn status_checked(&mut self, status: Status, out: &mut Vec<JoinAction>) {
        match status {
            Status::Admitted => self.admitted_now(out),
            Status::Gone => self.lost(out),
            Status::Waiting | Status::Unknown => {
                if let Some(Admission::InLobby { check_at: None }) = self.admission() {
                    let check_at = Some(self.clock + STATUS_CHECK_MS);
                    self.set_admission(Admission::InLobby { check_at });
                }
            }
        }
    }

    /// The server no longer has the registration: new keys, a new registration. The running
    /// call goes on with it (a bounded number of times), in the lobby or admitted alike: the
    /// new registration asks the lobby and waits for the host, which is all "Try again"
    /// would do. Past the bound it ends with `SESSION_LOST` once the new registration is in.
    pub(super) fn lost(&mut self, out: &mut Vec<JoinAction>) {
        let Registration::Held(held) = &self.registration else {
            return;
        };
        if !self.config.rules.reregisters {
            return;
        }
        let spread = spread_of(&held.session_id) as Millis;
        let delay = self.renewal_delay(spread);
        let at = (delay > 0).then_some(self.clock + delay);
        self.registration = Registration::Renewing;
        self.renewals.at = at;
        self.link_reset();
        if let Some(call) = &mut self.call {
            let resume = call.lost < LOST_REGISTRATIONS_MAX;
            if resume {
                call.lost += 1;
            }
            call.stage = Stage::Registering { resume };
        }
        if at.is_some() {
            // New keys and the registration come at `at` (`handle_timeout`).
            out.push(JoinAction::Notice(JoinNotice::SessionLost));
            return;
        }
        out.push(JoinAction::ReplaceIdentity);
        out.push(JoinAction::Notice(JoinNotice::SessionLost));
        out.push(JoinAction::Register);
    }

    /// How long this re-registration waits: nothing for the first, a short wait of this
    /// guest's own (`spread`) for the next few, then from 5 s doubling up to a minute, until
    /// a quiet minute starts the count afresh.
    fn renewal_delay(&mut self, spread: Millis) -> Millis {
        let r = &mut self.renewals;
        let count = if self.clock.saturating_sub(r.last) >= RENEWAL_QUIET_MS {
            0
        } else {
            r.count
        };
        let delay = match count {
            0 => 0,
            c if c < RENEWALS_AT_ONCE => {
                RENEWAL_SPREAD_MIN_MS + spread % (RENEWAL_SPREAD_MS << (c - 1))
            }
            c => (RENEWAL_BACKOFF_MS << (c - RENEWALS_AT_ONCE).min(4)).min(RENEWAL_BACKOFF_MAX_MS),
        };
        // Quiet is counted from when this one goes.
        r.last = self.clock + delay;
        r.count = count.saturating_add(1);
        delay
    }

    /// A handshake for the old registration is no longer of use.
    pub(super) fn link_reset(&mut self) {
        if self.config.rules.sdk_handshake && self.link == Link::Up {
            // Connected, but authenticated as nobody the server knows: the next
            // registration's handshake reconnects it.
            self.link = Link::Connecting;
        }
    }
}
