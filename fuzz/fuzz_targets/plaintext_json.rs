//! Decrypted plaintexts: never panic; an accepted key is exactly 32 bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signal_guest_sdk::exchange::{messages, plaintexts};

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = plaintexts::parse_key_message(data) {
        assert_eq!(message.key.expose_bytes().len(), 32);
    }
    let _ = messages::parse_incoming(&String::from_utf8_lossy(data));
    let _ = messages::parse_participants(&String::from_utf8_lossy(data));
});
