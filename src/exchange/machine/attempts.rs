//! The participants being asked at one time: one, or more while hedging (a participant that
//! has not answered within `hedge_after_ms` is kept waiting while the next one is asked too).

use crate::prelude::*;

use super::super::{Millis, ParticipantId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    FetchingBundle,
    AwaitingAnswer,
}

/// One participant being asked.
#[derive(Debug)]
pub(super) struct Attempting {
    pub(super) participant: ParticipantId,
    pub(super) stage: Stage,
    /// When this attempt counts as timed out.
    pub(super) deadline: Millis,
    /// When the next participant is asked as well, if this one is still the newest and has
    /// not answered (`Millis::MAX`: never).
    pub(super) hedge_at: Millis,
}

/// The attempts in flight, oldest first; never more than the run's `max_failures`, since
/// each one ends in a key or a counted failure.
#[derive(Debug, Default)]
pub(super) struct Attempts(Vec<Attempting>);

impl Attempts {
    pub(super) fn push(&mut self, attempt: Attempting) {
        self.0.push(attempt);
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(super) fn contains(&self, participant: &ParticipantId) -> bool {
        self.0.iter().any(|a| a.participant == *participant)
    }

    pub(super) fn get_mut(&mut self, participant: &ParticipantId) -> Option<&mut Attempting> {
        self.0.iter_mut().find(|a| a.participant == *participant)
    }

    pub(super) fn remove(&mut self, participant: &ParticipantId) -> Option<Attempting> {
        let i = self.0.iter().position(|a| a.participant == *participant)?;
        Some(self.0.remove(i))
    }

    /// The attempt started last.
    pub(super) fn newest(&self) -> Option<&Attempting> {
        self.0.last()
    }

    pub(super) fn newest_mut(&mut self) -> Option<&mut Attempting> {
        self.0.last_mut()
    }

    /// An attempt whose deadline has passed by `now`.
    pub(super) fn expired(&self, now: Millis) -> Option<ParticipantId> {
        self.0
            .iter()
            .find(|a| a.deadline <= now)
            .map(|a| a.participant.clone())
    }

    /// The earliest deadline, and the newest attempt's hedge time when hedging can go on.
    pub(super) fn next_deadline(&self, hedging: bool) -> Option<Millis> {
        let deadline = self.0.iter().map(|a| a.deadline).min()?;
        let hedge = self.newest().filter(|_| hedging).map(|a| a.hedge_at);
        Some(hedge.map_or(deadline, |h| h.min(deadline)))
    }
}
