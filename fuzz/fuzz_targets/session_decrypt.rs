//! Decrypt with a live session: never panics, and a message that fails leaves the store
//! byte-for-byte unchanged. The first byte picks the message type.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rand::{rngs::StdRng, SeedableRng};
use signal_guest_sdk::signal::{CiphertextMessage, ProtocolStore};

/// A guest that set up a session with "p", and exchanged one message each way.
fn live() -> &'static (ProtocolStore, Vec<u8>) {
    static LIVE: OnceLock<(ProtocolStore, Vec<u8>)> = OnceLock::new();
    LIVE.get_or_init(|| {
        let rng = &mut StdRng::seed_from_u64(7);
        let mut guest = ProtocolStore::generate(rng, 2);
        let mut participant = ProtocolStore::generate(rng, 2);
        guest
            .process_bundle("p", &participant.bundle(1, true).unwrap(), rng)
            .unwrap();
        let first = guest.encrypt("p", b"request").unwrap();
        participant.decrypt("g", &first, rng).unwrap();
        let reply = participant.encrypt("g", b"reply").unwrap();
        guest.decrypt("p", &reply, rng).unwrap();
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
    let (store, before) = live();
    let mut guest = store.clone();
    if guest
        .decrypt("p", &message, &mut StdRng::seed_from_u64(9))
        .is_err()
    {
        assert_eq!(&guest.to_bytes()[..], &before[..]);
    }
});
