//! SPQR, the sparse post-quantum ratchet, as far as v4 sessions here run it: the epoch-0
//! symmetric chain, which salts every message key with a key both sides derive from PQXDH's
//! third 32 bytes.
//!
//! Every message we send carries SPQR's "no payload" message, so the braid (incremental
//! ML-KEM-768 that would move both sides to a new epoch) never advances. libsignal accepts
//! that from a peer indefinitely: PQXDH's protection of recorded traffic stays, post-quantum
//! healing after a compromise is given up. A guest's session lives for one meeting and a
//! handful of messages, where healing buys nothing (docs/design.md, "Post-quantum sessions").
//! Payloads a peer sends to advance the braid (header, key and ciphertext chunks) are read
//! and dropped, as a libsignal party does with payloads it does not expect.

use crate::prelude::*;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::error::SignalError;
use super::ratchet::{hkdf_sha256, MessageKeySeed};
use super::wipe;

/// Derives the chain seeds from the PQXDH-derived authentication key. (Two spaces: SPQR's
/// label, byte for byte.)
const CHAIN_START: &[u8] = b"Signal PQ Ratchet V1 Chain  Start";
/// Follows the big-endian 4-byte counter in each step's HKDF info.
const CHAIN_NEXT: &[u8] = b"Signal PQ Ratchet V1 Chain Next";
/// The SPQR message version we speak.
const VERSION_1: u8 = 1;
/// The braid epoch on the wire; epoch 1 is chain epoch 0, the only one we ever reach.
const EPOCH: u64 = 1;
/// Message type "no payload".
const NONE: u8 = 0;
/// Message types 1 (header), 2, 3, 5 and 6 (key and ciphertext pieces) carry a chunk: an
/// index varint and 32 bytes. Type 4 (an acknowledgement) carries nothing.
const LAST_TYPE: u8 = 6;
const CHUNK_LEN: usize = 32;
/// Out-of-order keys kept per session (SPQR's `max_ooo_keys`).
pub(crate) const MAX_OUT_OF_ORDER: u32 = 2_000;

/// One direction of the chain: the next chain secret and how many keys it has given.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct Direction {
    pub(crate) next: [u8; 32],
    pub(crate) counter: u32,
}

impl Direction {
    /// The next key; its index is the new counter (the first key has index 1).
    fn step(&mut self) -> Result<Zeroizing<[u8; 32]>, SignalError> {
        self.counter = self
            .counter
            .checked_add(1)
            .ok_or(SignalError::InvalidKey("post-quantum chain exhausted"))?;
        let mut info = [0u8; 4 + CHAIN_NEXT.len()];
        info[..4].copy_from_slice(&self.counter.to_be_bytes());
        info[4..].copy_from_slice(CHAIN_NEXT);
        let mut out: [u8; 64] = hkdf_sha256(None, &self.next, &info);
        let mut key = Zeroizing::new([0u8; 32]);
        self.next.copy_from_slice(&out[..32]);
        key.copy_from_slice(&out[32..]);
        out.zeroize();
        Ok(key)
    }
}

/// A v4 session's SPQR state.
#[derive(Clone)]
pub(crate) struct PqChain {
    pub(crate) send: Direction,
    pub(crate) receive: Direction,
    /// Keys for messages that have not arrived yet, oldest first; at most
    /// [`MAX_OUT_OF_ORDER`]. The ratchet's seed type (key and index), so that both share
    /// their vector code.
    pub(crate) skipped: Vec<MessageKeySeed>,
}

impl PqChain {
    /// Both directions from PQXDH's authentication key; the initiator sends on A→B.
    pub(crate) fn new(auth_key: &[u8; 32], initiator: bool) -> Self {
        let mut seeds: [u8; 96] = hkdf_sha256(None, auth_key, CHAIN_START);
        let direction = |range: core::ops::Range<usize>| {
            let mut next = [0u8; 32];
            next.copy_from_slice(&seeds[range]);
            Direction { next, counter: 0 }
        };
        let (a_to_b, b_to_a) = (direction(32..64), direction(64..96));
        seeds.zeroize();
        let (send, receive) = if initiator {
            (a_to_b, b_to_a)
        } else {
            (b_to_a, a_to_b)
        };
        PqChain {
            send,
            receive,
            skipped: Vec::new(),
        }
    }

    /// The SPQR message for our next message, and its key.
    pub(crate) fn send(&mut self) -> Result<(Vec<u8>, Zeroizing<[u8; 32]>), SignalError> {
        let key = self.send.step()?;
        let mut message = vec![VERSION_1];
        push_varint(&mut message, EPOCH);
        push_varint(&mut message, self.send.counter as u64);
        message.push(NONE);
        Ok((message, key))
    }

    /// The key an incoming SPQR message names (`None` for index 0, or for a version above
    /// ours, as libsignal does). At most `max_jump` chain steps. Callers run it on a copy of
    /// the session and keep the copy only if the whole message then authenticates.
    pub(crate) fn receive(
        &mut self,
        message: &[u8],
        max_jump: u32,
    ) -> Result<Option<Zeroizing<[u8; 32]>>, SignalError> {
        let bad = || SignalError::InvalidMessage("bad post-quantum ratchet message");
        let mut bytes = message;
        match take(&mut bytes, 1) {
            // Empty means a peer without SPQR, which libsignal also refuses for new sessions.
            None => {
                return Err(SignalError::InvalidMessage(
                    "no post-quantum ratchet message",
                ))
            }
            Some([VERSION_1]) => {}
            Some(_) => return Ok(None),
        }
        let epoch = take_varint(&mut bytes).ok_or_else(bad)?;
        let index = take_varint(&mut bytes).ok_or_else(bad)?;
        let kind = *take(&mut bytes, 1)
            .ok_or_else(bad)?
            .first()
            .ok_or_else(bad)?;
        if epoch != EPOCH || kind > LAST_TYPE {
            return Err(bad());
        }
        if !matches!(kind, NONE | 4) {
            take_varint(&mut bytes).ok_or_else(bad)?;
            take(&mut bytes, CHUNK_LEN).ok_or_else(bad)?;
        }
        let index = u32::try_from(index).map_err(|_| bad())?;
        if index == 0 {
            return Ok(None);
        }
        let counter = self.receive.counter;
        if index <= counter {
            let found = self.skipped.iter().position(|k| k.counter == index);
            return match found.and_then(|pos| wipe::remove(&mut self.skipped, pos)) {
                Some(skipped) => Ok(Some(Zeroizing::new(skipped.seed))),
                None => Err(SignalError::DuplicateMessage(index)),
            };
        }
        if index - counter > max_jump {
            return Err(SignalError::TooFarInFuture(index - counter));
        }
        let keep_from = index.saturating_sub(MAX_OUT_OF_ORDER);
        wipe::reserve(&mut self.skipped, (index - counter.max(keep_from)) as usize);
        let key = loop {
            let key = self.receive.step()?;
            if self.receive.counter == index {
                break key;
            }
            if self.receive.counter >= keep_from {
                self.skipped.push(MessageKeySeed {
                    counter: self.receive.counter,
                    seed: *key,
                });
            }
        };
        let excess = self.skipped.len().saturating_sub(MAX_OUT_OF_ORDER as usize);
        wipe::drop_front(&mut self.skipped, excess);
        Ok(Some(key))
    }
}

fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if bytes.len() < n {
        return None;
    }
    let (head, rest) = bytes.split_at(n);
    *bytes = rest;
    Some(head)
}

fn take_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *take(bytes, 1)?.first()?;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn push_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (PqChain, PqChain) {
        let auth = [7u8; 32];
        (PqChain::new(&auth, true), PqChain::new(&auth, false))
    }

    #[test]
    fn messages_carry_version_epoch_index_and_no_payload() {
        let (mut alice, _) = pair();
        assert_eq!(alice.send().unwrap().0, [1, 1, 1, 0]);
        for _ in 2..128 {
            alice.send().unwrap();
        }
        assert_eq!(alice.send().unwrap().0, [1, 1, 0x80, 0x01, 0]);
    }

    #[test]
    fn both_directions_agree_in_and_out_of_order() {
        let (mut alice, mut bob) = pair();
        let sent: Vec<_> = (0..5).map(|_| alice.send().unwrap()).collect();
        for i in [0usize, 3, 1, 4, 2] {
            let got = bob.receive(&sent[i].0, 100).unwrap().unwrap();
            assert_eq!(*got, *sent[i].1, "message {i}");
        }
        assert_eq!(
            bob.receive(&sent[2].0, 100),
            Err(SignalError::DuplicateMessage(3))
        );
        let (reply, key) = bob.send().unwrap();
        assert_eq!(*alice.receive(&reply, 100).unwrap().unwrap(), *key);
        assert_ne!(*key, *sent[0].1, "the directions use different seeds");
    }

    #[test]
    fn refusals_leave_no_trace_and_limits_hold() {
        let (mut alice, bob) = pair();
        let mut far = vec![1, 1];
        push_varint(&mut far, 50);
        far.push(0);
        let mut trial = bob.clone();
        assert_eq!(
            trial.receive(&far, 10).map(|_| ()),
            Err(SignalError::TooFarInFuture(50))
        );
        for bad in [
            &[][..],
            &[1, 2, 1, 0],
            &[1, 0, 1, 0],
            &[1, 1, 1, 7],
            &[1, 1, 1, 1, 0],
            &[1, 1],
        ] {
            assert!(bob.clone().receive(bad, 10).is_err(), "{bad:?}");
        }
        // A header chunk from a braid-advancing peer: read, dropped, and the key still comes.
        let (_, key) = alice.send().unwrap();
        let mut with_chunk = vec![1, 1, 1, 1, 0];
        with_chunk.extend_from_slice(&[9; 32]);
        assert_eq!(
            *bob.clone().receive(&with_chunk, 10).unwrap().unwrap(),
            *key
        );
        assert_eq!(bob.clone().receive(&[1, 1, 0, 0], 10).unwrap(), None);
        assert_eq!(bob.clone().receive(&[2, 9, 9], 10).unwrap(), None);
        // Skipped keys are bounded.
        let mut jump = vec![1, 1];
        push_varint(&mut jump, 3 * MAX_OUT_OF_ORDER as u64);
        jump.push(0);
        let mut b = bob.clone();
        b.receive(&jump, u32::MAX).unwrap().unwrap();
        assert_eq!(b.skipped.len(), MAX_OUT_OF_ORDER as usize);
    }
}
