//! What the guest keeps between page loads: the Signal store, when each session was set up
//! (for the session cache), and who answered last and who did not (so that after a reload
//! the answerer is asked first and a silent participant does not cost 5 s again).
//! Versioned bytes, in the Signal records' codec.

use crate::prelude::*;

use zeroize::Zeroizing;

use crate::signal::record::{Reader, Writer};
use crate::signal::{ProtocolStore, SignalError};

use super::{Millis, ParticipantId};

/// Version 3 added the answer history; version 2 (without it) is still read.
const STATE_FORMAT_VERSION: u8 = 3;
const STATE_FORMAT_WITHOUT_HISTORY: u8 = 2;
const MAX_SESSION_TIMES: usize = 4096;
/// Participants remembered as not answering; the oldest is forgotten first.
const MAX_UNANSWERED: usize = 16;

/// One-time prekeys a guest registers: enough for every participant of a large meeting to be
/// asked several times, few enough to make in a few milliseconds. A PeerWave guest keeps at
/// least as many published.
pub const ONE_TIME_PRE_KEYS: u32 = 30;

/// The guest's persistent Signal state.
#[derive(Clone, Debug)]
pub struct GuestState {
    /// Identity, prekeys, sessions and trusted identities.
    pub store: ProtocolStore,
    /// `(address, established at)` of sessions we set up from a fetched bundle.
    pub session_times: Vec<(String, Millis)>,
    /// The participant whose key was accepted last.
    pub last_answerer: Option<ParticipantId>,
    /// Participants whose last attempt timed out, oldest first.
    pub unanswered: Vec<ParticipantId>,
}

impl GuestState {
    /// A state with no sessions set up yet.
    pub fn new(store: ProtocolStore) -> Self {
        Self {
            store,
            session_times: Vec::new(),
            last_answerer: None,
            unanswered: Vec::new(),
        }
    }

    /// `participants` in the order to ask them: the last answerer first, then the server's
    /// order with the one at `spread` (modulo their number) moved to the front, then those
    /// that did not answer last time.
    ///
    /// `spread` comes from the guest's session id ([`spread_of`]): guests arriving together
    /// start at different participants instead of all asking the first one listed, while a
    /// guest that reloads keeps its own starting point (and its remembered answerer).
    pub fn preferred_order(
        &self,
        participants: Vec<ParticipantId>,
        spread: usize,
    ) -> Vec<ParticipantId> {
        // Three passes instead of a stable sort, which would pull a sort routine into the
        // wasm for a list of a few entries; the server's order is kept within each group.
        let (first, rest): (Vec<_>, Vec<_>) = participants
            .into_iter()
            .partition(|p| self.last_answerer.as_ref() == Some(p));
        let (silent, mut others): (Vec<_>, Vec<_>) =
            rest.into_iter().partition(|p| self.unanswered.contains(p));
        // The one at `spread` goes first by a swap (the spread is about first requests; a
        // rotation of the whole group costs a few hundred bytes of wasm more).
        if let Some(start) = spread.checked_rem(others.len()) {
            others.swap(0, start);
        }
        first.into_iter().chain(others).chain(silent).collect()
    }

    /// Records that `participant` sent a key that was accepted.
    pub fn record_answer(&mut self, participant: &ParticipantId) {
        self.unanswered.retain(|p| p != participant);
        self.last_answerer = Some(participant.clone());
    }

    /// Records that `participant` did not answer in time.
    pub fn record_silence(&mut self, participant: &ParticipantId) {
        self.unanswered.retain(|p| p != participant);
        if self.unanswered.len() >= MAX_UNANSWERED {
            self.unanswered.remove(0);
        }
        self.unanswered.push(participant.clone());
        if self.last_answerer.as_ref() == Some(participant) {
            self.last_answerer = None;
        }
    }

    /// When the session with `address` was set up from a fetched bundle.
    pub fn session_established(&self, address: &str) -> Option<Millis> {
        self.session_times
            .iter()
            .find(|(a, _)| a == address)
            .map(|(_, t)| *t)
    }

    /// Records that the session with `address` was set up at `at`.
    pub fn set_session_established(&mut self, address: &str, at: Millis) {
        self.session_times.retain(|(a, _)| a != address);
        self.session_times.push((address.to_owned(), at));
    }

    /// The stored form (private keys included: wiped on drop).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::new(STATE_FORMAT_VERSION);
        self.store.write_to(&mut w);
        w.len(self.session_times.len());
        for (address, at) in &self.session_times {
            w.str(address);
            w.u64(*at);
        }
        match &self.last_answerer {
            Some(p) => {
                w.u8(1);
                write_participant(&mut w, p);
            }
            None => w.u8(0),
        }
        w.len(self.unanswered.len());
        for p in &self.unanswered {
            write_participant(&mut w, p);
        }
        w.finish()
    }

    /// Reads the stored form back; any defect is [`SignalError::CorruptRecord`] or
    /// [`SignalError::RecordVersion`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SignalError> {
        let version = match bytes.first() {
            Some(&STATE_FORMAT_WITHOUT_HISTORY) => STATE_FORMAT_WITHOUT_HISTORY,
            _ => STATE_FORMAT_VERSION,
        };
        let mut r = Reader::new(bytes, version)?;
        let store = ProtocolStore::read_from(&mut r)?;
        let count = r.len(MAX_SESSION_TIMES)?;
        let mut session_times = Vec::with_capacity(count);
        for _ in 0..count {
            session_times.push((r.str()?, r.u64()?));
        }
        let mut state = Self {
            store,
            session_times,
            last_answerer: None,
            unanswered: Vec::new(),
        };
        if version == STATE_FORMAT_VERSION {
            state.last_answerer = match r.u8()? {
                0 => None,
                1 => Some(read_participant(&mut r)?),
                _ => return Err(SignalError::CorruptRecord("last answerer")),
            };
            let count = r.len(MAX_UNANSWERED)?;
            for _ in 0..count {
                state.unanswered.push(read_participant(&mut r)?);
            }
        }
        r.finish()?;
        Ok(state)
    }
}

fn write_participant(w: &mut Writer, p: &ParticipantId) {
    w.str(&p.user_id);
    w.str(&p.device_id);
}

fn read_participant(r: &mut Reader<'_>) -> Result<ParticipantId, SignalError> {
    Ok(ParticipantId::new(r.str()?, r.str()?))
}

/// Where a guest starts in the participants list: FNV-1a of its session id. Not a secret and
/// not an authenticator (the server, which makes the id, routes every message anyway), only a
/// spread: session ids are random, so first requests fall evenly over the participants.
pub fn spread_of(guest_session_id: &str) -> usize {
    let hash = guest_session_id.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    hash as usize
}
