//! Who is asked next, in the run's order (the last answerer first; see `listing`): rate-limited
//! participants skipped, the next one asked as well when one is slow (hedging), and the
//! exchange given up after `max_failures` failed attempts in a row.

use crate::prelude::*;

use rand_core::CryptoRngCore;

use super::super::failure::{Attempt, AttemptFailure, ExchangeFailure};
use super::super::io::{Action, Progress};
use super::super::{Millis, ParticipantId};
use super::attempts::{Attempting, Attempts, Stage};
use super::{Exchange, Lifecycle, Rotation};

/// Without a `Retry-After`, a rate-limited participant is skipped for the server's window.
const DEFAULT_RETRY_AFTER_S: u32 = 60;

impl Exchange {
    /// Whether another participant may be asked while the current ones wait: hedging is on,
    /// the run has attempts left, and someone is not being asked yet.
    pub(super) fn may_hedge(&self, rotation: &Rotation, attempts: &Attempts) -> bool {
        self.config.hedge_after_ms.is_some()
            && rotation.counted + attempts.len() < self.config.max_failures
            && rotation.participants.iter().any(|p| !attempts.contains(p))
    }

    /// The running rotation, taken out to be changed and put back by the caller; `None`, with
    /// the state untouched, when nothing is being attempted (a late event after the key, say).
    fn take_attempting(&mut self) -> Option<(Rotation, Attempts)> {
        match core::mem::replace(&mut self.lifecycle, Lifecycle::Idle) {
            Lifecycle::Attempting(rotation, attempts) => Some((rotation, attempts)),
            other => {
                self.lifecycle = other;
                None
            }
        }
    }

    /// Asks the next participant too, keeping the ones asked waiting.
    pub(super) fn hedge(
        &mut self,
        now: Millis,
        rng: &mut impl CryptoRngCore,
        out: &mut Vec<Action>,
    ) {
        let Some((mut rotation, mut attempts)) = self.take_attempting() else {
            return;
        };
        let waiting = attempts.newest().map(|a| a.participant.clone());
        match (waiting, self.choose_next(&mut rotation, &attempts, now)) {
            (Some(waiting_for), Some(next)) => {
                out.push(Action::Progress(Progress::Hedging {
                    waiting_for,
                    also_asking: next.clone(),
                }));
                self.start_attempt(rotation, attempts, next, now, rng, out);
            }
            _ => {
                // Everyone else is rate-limited: no more company for this attempt.
                if let Some(newest) = attempts.newest_mut() {
                    newest.hedge_at = Millis::MAX;
                }
                self.lifecycle = Lifecycle::Attempting(rotation, attempts);
            }
        }
    }

    fn backed_off(&self, participant: &ParticipantId, now: Millis) -> bool {
        self.backoff_until
            .iter()
            .any(|(p, until)| p == participant && *until > now)
    }

    /// The next participant in the server's order (wrapping), skipping rate-limited ones and
    /// those being asked already.
    fn choose_next(
        &self,
        rotation: &mut Rotation,
        asking: &Attempts,
        now: Millis,
    ) -> Option<ParticipantId> {
        let n = rotation.participants.len();
        for _ in 0..n {
            let candidate = rotation.participants.get(rotation.next_index % n)?.clone();
            rotation.next_index = (rotation.next_index + 1) % n;
            if !self.backed_off(&candidate, now)
                && !asking.contains(&candidate)
                && self.may_ask(&candidate)
            {
                return Some(candidate);
            }
        }
        None
    }

    /// After an attempt ended without a key: the next participant is asked if nobody else
    /// is, or the exchange gives up.
    pub(super) fn ask_next(
        &mut self,
        mut rotation: Rotation,
        attempts: Attempts,
        rotated_from: Option<(ParticipantId, AttemptFailure)>,
        now: Millis,
        rng: &mut impl CryptoRngCore,
        out: &mut Vec<Action>,
    ) {
        if !attempts.is_empty() {
            // Others are still being asked (hedging); their deadlines decide what comes next.
            self.lifecycle = Lifecycle::Attempting(rotation, attempts);
            return;
        }
        // 429s are not failures, but a run of them is bounded too (a server listing many
        // devices, all busy): eight times the failures allowed.
        if rotation.counted >= self.config.max_failures
            || rotation.failures.len() >= 8 * self.config.max_failures
        {
            return self.give_up(ExchangeFailure::AttemptsExhausted(rotation.failures), out);
        }
        let Some(participant) = self.choose_next(&mut rotation, &attempts, now) else {
            return self.give_up(ExchangeFailure::NoParticipants(rotation.failures), out);
        };
        if let Some((from, reason)) = rotated_from {
            out.push(Action::Progress(Progress::Rotating {
                from,
                to: participant.clone(),
                reason,
            }));
        }
        self.start_attempt(rotation, attempts, participant, now, rng, out);
    }

    /// Asks `participant`: from the cached session, or after fetching its bundle.
    fn start_attempt(
        &mut self,
        rotation: Rotation,
        mut attempts: Attempts,
        participant: ParticipantId,
        now: Millis,
        rng: &mut impl CryptoRngCore,
        out: &mut Vec<Action>,
    ) {
        let address = participant.address();
        let cached = self.state.store.has_session(&address)
            && self
                .state
                .session_established(&address)
                .is_some_and(|t| now.saturating_sub(t) < self.config.session_cache_ttl_ms);
        let stage = if cached {
            Stage::AwaitingAnswer
        } else if self.may_fetch_bundle() {
            Stage::FetchingBundle
        } else {
            return;
        };
        attempts.push(Attempting {
            participant: participant.clone(),
            stage,
            deadline: now.saturating_add(self.config.participant_timeout_ms),
            hedge_at: self.hedge_time(now),
        });
        self.lifecycle = Lifecycle::Attempting(rotation, attempts);
        if cached {
            // A pinned identity is checked before anything is sent on the cached session.
            let trusted = self
                .state
                .store
                .session(&address)
                .and_then(|r| r.current())
                .map(|s| *s.remote_identity());
            if trusted.is_some_and(|key| !self.pin_allows(&participant, &key)) {
                return self.fail_attempt(
                    &participant,
                    AttemptFailure::IdentityMismatch,
                    now,
                    rng,
                    out,
                );
            }
            self.send_request(&participant, now, rng, out);
        } else {
            out.push(Action::Progress(Progress::FetchingBundle {
                participant: participant.clone(),
            }));
            out.push(Action::FetchBundle { participant });
        }
    }

    /// When a participant asked at `now` gets company, if hedging is on.
    pub(super) fn hedge_time(&self, now: Millis) -> Millis {
        self.config
            .hedge_after_ms
            .map_or(Millis::MAX, |ms| now.saturating_add(ms))
    }

    /// Ends `participant`'s attempt with `failure` (nothing happens if it is not being asked).
    pub(super) fn fail_attempt(
        &mut self,
        participant: &ParticipantId,
        failure: AttemptFailure,
        now: Millis,
        rng: &mut impl CryptoRngCore,
        out: &mut Vec<Action>,
    ) {
        let Some((mut rotation, mut attempts)) = self.take_attempting() else {
            return;
        };
        let Some(attempt) = attempts.remove(participant) else {
            self.lifecycle = Lifecycle::Attempting(rotation, attempts);
            return;
        };
        if let AttemptFailure::RateLimited { retry_after_s } = failure {
            let seconds = u64::from(retry_after_s.unwrap_or(DEFAULT_RETRY_AFTER_S));
            self.backoff_until
                .retain(|(p, _)| *p != attempt.participant);
            self.backoff_until.push((
                attempt.participant.clone(),
                now.saturating_add(seconds * 1000),
            ));
        }
        if failure == AttemptFailure::Timeout {
            // Remembered across reloads: next time this participant is asked last.
            self.state.record_silence(&attempt.participant);
            out.push(Action::PersistState);
        }
        // Busy is not failed (`Rotation::counted`).
        rotation.counted += usize::from(!matches!(failure, AttemptFailure::RateLimited { .. }));
        rotation.failures.push(Attempt {
            participant: attempt.participant.clone(),
            failure: failure.clone(),
        });
        self.ask_next(
            rotation,
            attempts,
            Some((attempt.participant, failure)),
            now,
            rng,
            out,
        );
    }
}
