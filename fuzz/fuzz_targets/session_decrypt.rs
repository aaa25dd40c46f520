//! Decrypt with live sessions: never panics, and a message that fails leaves the store
//! byte-for-byte unchanged. The first byte picks the message type (bits 0–1) and the sender
//! (bit 2): "p", a v3 session, or "q", a v4 one (PQXDH, SPQR).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rand::{rngs::StdRng, SeedableRng};
use signal_guest_sdk::signal::{CiphertextMessage, ProtocolStore};

/// A guest (with a Kyber prekey, so that it also takes v4 PreKey messages) that set up a
/// v3 session with "p" and a v4 session with "q", and exchanged one message each way.
fn live() -> &'static (ProtocolStore, Vec<u8>) {
    static LIVE: OnceLock<(ProtocolStore, Vec<u8>)> = OnceLock::new();
    LIVE.get_or_init(|| {
        let rng = &mut StdRng::seed_from_u64(7);
        let mut guest = ProtocolStore::generate(rng, 2);
        guest.add_kyber_pre_key(1, rng);
        for (name, post_quantum) in [("p", false), ("q", true)] {
            let mut participant = ProtocolStore::generate(rng, 2);
            if post_quantum {
                participant.add_kyber_pre_key(1, rng);
            }
            guest
                .process_bundle(name, &participant.bundle(1, true).unwrap(), rng)
                .unwrap();
            let first = guest.encrypt(name, b"request").unwrap();
            participant.decrypt("g", &first, rng).unwrap();
            let reply = participant.encrypt("g", b"reply").unwrap();
            guest.decrypt(name, &reply, rng).unwrap();
        }
        let before = guest.to_bytes().to_vec();
        (guest, before)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    let message_type = [None, Some(2), Some(3), Some(1)][usize::from(kind % 4)];
    let Ok(message) = CiphertextMessage::parse(message_type, body) else {
        return;
    };
    let sender = if kind & 4 == 0 { "p" } else { "q" };
    let (store, before) = live();
    let mut guest = store.clone();
    if guest
        .decrypt(sender, &message, &mut StdRng::seed_from_u64(9))
        .is_err()
    {
        assert_eq!(&guest.to_bytes()[..], &before[..]);
    }
});
