//! libsignal wire parsing: never panics; whatever parses keeps its exact bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signal_guest_sdk::signal::CiphertextMessage;

fuzz_target!(|data: &[u8]| {
    for message_type in [None, Some(1), Some(2), Some(3), Some(0), Some(9)] {
        if let Ok(message) = CiphertextMessage::parse(message_type, data) {
            assert_eq!(message.serialized(), data);
            assert!(matches!(message_type, None | Some(1..=3)));
        }
    }
});
