//! The running `exchangeKey()` call: what it still waits for, each wait with its deadline,
//! and the start of the exchange.

use crate::prelude::*;

use super::{
    Admission, CallOutcome, Join, JoinAction, JoinFailure, JoinNotice, Link, Registration, Stage,
    Waiting,
};

impl Join {
    pub(super) fn waiting_for(&self, what: Waiting) -> bool {
        matches!(
            self.call.as_ref().map(|c| c.stage),
            Some(Stage::Waiting { what: w, .. }) if w == what
        )
    }

    /// What a call still needs before the exchange may start.
    pub(super) fn blocked_on(&self) -> Option<Waiting> {
        let Registration::Held(held) = &self.registration else {
            return Some(Waiting::Connection);
        };
        let ready =
            self.link == Link::Up && (!self.config.rules.sdk_handshake || held.authenticated);
        if !ready {
            Some(Waiting::Connection)
        } else if self.config.require_admission && !matches!(held.admission, Admission::Admitted) {
            Some(Waiting::Admission)
        } else {
            None
        }
    }

    /// Moves a starting or waiting call on: the exchange starts, or the call waits for what
    /// is missing (each wait with its own deadline, and what it takes to end it asked for
    /// once, when the wait begins).
    pub(super) fn proceed(&mut self, out: &mut Vec<JoinAction>) {
        let current = match self.call.as_ref().map(|c| c.stage) {
            Some(Stage::Starting) => None,
            Some(Stage::Waiting { what, .. }) => Some(what),
            _ => return,
        };
        let blocked = self.blocked_on();
        if matches!((blocked, current), (Some(b), Some(c)) if b == c) {
            return;
        }
        let stage = match blocked {
            None => {
                out.push(JoinAction::StartExchange);
                Stage::Exchanging
            }
            Some(what) => {
                let ms = match what {
                    Waiting::Connection => self.config.connect_timeout_ms,
                    Waiting::Admission => self.config.admission_timeout_ms,
                };
                self.prod(what, out);
                // The wait is the time to prepare the exchange (it sends nothing yet).
                if self.session_id().is_some() {
                    out.push(JoinAction::PrepareExchange);
                }
                out.push(JoinAction::Notice(JoinNotice::Waiting(what)));
                Stage::Waiting {
                    what,
                    until: self.clock + ms,
                }
            }
        };
        if let Some(call) = &mut self.call {
            call.stage = stage;
        }
    }

    /// Asks for what a new wait needs.
    pub(super) fn prod(&mut self, what: Waiting, out: &mut Vec<JoinAction>) {
        let rules = self.config.rules;
        let Registration::Held(held) = &mut self.registration else {
            return;
        };
        match what {
            // Never drive a socket that is connecting: a second connect on a half-open
            // socket makes the server drop it.
            Waiting::Connection if rules.sdk_handshake && self.link == Link::Down => {
                out.push(JoinAction::Handshake);
                self.link = Link::Connecting;
            }
            Waiting::Connection => {}
            // The notice may have come before this guest listened.
            Waiting::Admission if !rules.lobby => out.push(JoinAction::QueryAdmission),
            Waiting::Admission => {
                if matches!(held.admission, Admission::Outside | Admission::Declined) {
                    held.admission = Admission::Asking;
                    out.push(JoinAction::RequestAdmission);
                }
            }
        }
    }

    pub(super) fn wait_expired(&mut self, what: Waiting, out: &mut Vec<JoinAction>) {
        let ms = match what {
            Waiting::Connection => JoinFailure::NotConnected(self.config.connect_timeout_ms),
            Waiting::Admission => {
                // PeerWave says "admitted" once; if that was missed, "Try again" asks the
                // lobby anew rather than wait on.
                if self.config.rules.lobby && !self.admitted() {
                    self.set_admission(Admission::Outside);
                }
                JoinFailure::NotAdmitted(self.config.admission_timeout_ms)
            }
        };
        self.settle(CallOutcome::Failed(ms), out);
    }
}
