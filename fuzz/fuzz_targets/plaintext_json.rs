//! Decrypted plaintexts and socket events, both dialects: never panic; an accepted key is
//! exactly 32 bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signal_guest_sdk::exchange::contract::WireProfile;
use signal_guest_sdk::exchange::{messages, plaintexts};

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = plaintexts::parse_key_message(data) {
        assert_eq!(message.key.expose_bytes().len(), 32);
    }
    if let Ok(message) = plaintexts::parse_peerwave_answer(data, String::new()) {
        assert_eq!(message.key.expose_bytes().len(), 32);
    }
    let text = String::from_utf8_lossy(data);
    for profile in [WireProfile::Plan, WireProfile::PeerWave] {
        let _ = messages::parse_incoming(&text, profile.names());
        let _ = messages::parse_participants(&text, profile);
    }
    let _ = messages::parse_server_pre_keys(&text);
    let _ = messages::names_lost_session(404, &text);
});
