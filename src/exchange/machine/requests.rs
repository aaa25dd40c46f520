//! The key requests this exchange sent and may still accept an answer to, and the ids of
//! those already answered (so a replayed answer is told apart from an unknown one).
//!
//! Each open request holds the short-code nonce it committed to. Trimming and closing go
//! through [`wipe`] so a shifted slot does not leave a nonce's copy in spare capacity.

use crate::prelude::*;

use crate::signal::wipe;

use super::super::sas::SasNonce;
use super::super::ParticipantId;

/// Requests kept answerable; older ones are forgotten first.
pub(super) const MAX_OPEN: usize = 32;

/// One sent request.
#[derive(Debug)]
pub(super) struct Request {
    pub(super) id: String,
    pub(super) participant: ParticipantId,
    /// The nonce committed to in this request (revealed after the answer).
    pub(super) sas_nonce: SasNonce,
}

/// The open requests (at most [`MAX_OPEN`], oldest first) and the answered ids.
#[derive(Debug)]
pub(super) struct Requests {
    /// Allocated at its bound once, so pushing never moves the nonces to a new buffer.
    open: Vec<Request>,
    answered: Vec<String>,
}

impl Default for Requests {
    fn default() -> Self {
        Self {
            open: Vec::with_capacity(MAX_OPEN),
            answered: Vec::new(),
        }
    }
}

impl Requests {
    /// Records a sent request, forgetting the oldest open one if the list is full.
    pub(super) fn open(&mut self, request: Request) {
        if self.open.len() >= MAX_OPEN {
            drop(wipe::remove(&mut self.open, 0));
        }
        self.open.push(request);
    }

    /// The open request `id`, if there is one.
    pub(super) fn find(&self, id: &str) -> Option<&Request> {
        self.open.iter().find(|r| r.id == id)
    }

    /// Whether `id` was answered already.
    pub(super) fn was_answered(&self, id: &str) -> bool {
        self.answered.iter().any(|r| r == id)
    }

    /// Closes the open request `id` as answered and returns it.
    pub(super) fn close(&mut self, id: &str) -> Option<Request> {
        let pos = self.open.iter().position(|r| r.id == id)?;
        let request = wipe::remove(&mut self.open, pos)?;
        // Unbounded, but it grows by one per delivered key: each answers a request of ours.
        self.answered.push(request.id.clone());
        Some(request)
    }

    #[cfg(all(test, not(target_arch = "wasm32")))]
    fn open_count(&self) -> usize {
        self.open.len()
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::scanning_alloc::freed_blocks_holding;

    fn request(n: u8) -> Request {
        Request {
            id: format!("r{n}"),
            participant: ParticipantId::new("alice".into(), "1".into()),
            sas_nonce: SasNonce([n.wrapping_mul(37) ^ 0xA5; 32]),
        }
    }

    #[test]
    fn the_oldest_request_is_forgotten_when_full() {
        let mut requests = Requests::default();
        for n in 0..=MAX_OPEN as u8 {
            requests.open(request(n));
        }
        assert_eq!(requests.open_count(), MAX_OPEN);
        assert!(requests.find("r0").is_none());
        assert!(requests.find("r1").is_some());
        assert!(requests.close("r0").is_none());
        assert!(!requests.was_answered("r0"));
        assert!(requests.close("r5").is_some());
        assert!(requests.was_answered("r5"));
        assert!(requests.find("r5").is_none());
        assert!(requests.close("r5").is_none());
    }

    /// Trimming and closing shift the list; the nonce of the last request must not survive
    /// in the vacated slot (where `Vec::remove` would leave it) once the list is freed.
    #[test]
    fn trimming_and_closing_leave_no_nonce_behind() {
        let last = MAX_OPEN as u8;
        let nonce = request(last).sas_nonce.0;
        let hits = freed_blocks_holding(&nonce, || {
            let mut requests = Requests::default();
            for n in 0..=last {
                requests.open(request(n));
            }
            drop(requests.close("r3"));
            drop(requests);
        });
        assert_eq!(hits, 0);
    }
}
