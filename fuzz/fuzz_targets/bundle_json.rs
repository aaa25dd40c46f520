//! Keybundle JSON in both dialects: never panics; a bundle that parses either starts a
//! session or is refused without changing the store.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rand::{rngs::StdRng, SeedableRng};
use signal_guest_sdk::exchange::contract::WireProfile;
use signal_guest_sdk::exchange::{messages, ParticipantId};
use signal_guest_sdk::signal::ProtocolStore;

fn guest() -> &'static ProtocolStore {
    static STORE: OnceLock<ProtocolStore> = OnceLock::new();
    STORE.get_or_init(|| ProtocolStore::generate(&mut StdRng::seed_from_u64(1), 2))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let expected = ParticipantId::new("alice".into(), "1".into());
    for profile in [WireProfile::Plan, WireProfile::PeerWave] {
        if let Ok(bundle) = messages::parse_bundle(text, &expected, profile) {
            let mut store = guest().clone();
            let before = store.to_bytes();
            if store
                .process_bundle("alice", &bundle, &mut StdRng::seed_from_u64(2))
                .is_err()
            {
                assert_eq!(store.to_bytes(), before);
            }
        }
    }
});
