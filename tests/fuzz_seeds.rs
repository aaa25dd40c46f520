//! Writes the committed seed corpus of the fuzz targets (fuzz/corpus/*) from genuine
//! messages. Run by hand after a wire change: `cargo test --test fuzz_seeds -- --ignored`.
// Test helpers unwrap: a panic here is a failed test. `pub` helpers are shared between
// test files through `mod common`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]

mod common;

use std::fs;
use std::path::Path;

use common::*;
use rand::rngs::OsRng;
use signal_guest_sdk::signal::ProtocolStore;

fn write(target: &str, name: &str, data: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(name), data).unwrap();
}

#[test]
#[ignore = "writes files; run by hand"]
fn write_seed_corpus() {
    let mut guest = ProtocolStore::generate(&mut OsRng, 2);
    let mut participant = ProtocolStore::generate(&mut OsRng, 2);
    guest
        .process_bundle("p", &participant.bundle(1, true).unwrap(), &mut OsRng)
        .unwrap();
    let prekey = guest.encrypt("p", b"request").unwrap();
    participant.decrypt("g", &prekey, &mut OsRng).unwrap();
    let whisper = participant.encrypt("g", b"reply").unwrap();
    write("wire_parse", "prekey", prekey.serialized());
    write("wire_parse", "whisper", whisper.serialized());
    write(
        "session_decrypt",
        "whisper",
        &[[1u8].as_slice(), whisper.serialized()].concat(),
    );
    write(
        "session_decrypt",
        "prekey",
        &[[2u8].as_slice(), prekey.serialized()].concat(),
    );

    // The same for a v4 session (PQXDH, SPQR): bit 2 of the first byte picks it.
    let mut guest = ProtocolStore::generate(&mut OsRng, 2);
    let mut participant = ProtocolStore::generate(&mut OsRng, 2);
    participant.add_kyber_pre_key(1, &mut OsRng);
    guest
        .process_bundle("q", &participant.bundle(1, true).unwrap(), &mut OsRng)
        .unwrap();
    let prekey = guest.encrypt("q", b"request").unwrap();
    participant.decrypt("g", &prekey, &mut OsRng).unwrap();
    let whisper = participant.encrypt("g", b"reply").unwrap();
    write("wire_parse", "prekey-v4", prekey.serialized());
    write("wire_parse", "whisper-v4", whisper.serialized());
    write(
        "session_decrypt",
        "whisper-v4",
        &[[5u8].as_slice(), whisper.serialized()].concat(),
    );
    write(
        "session_decrypt",
        "prekey-v4",
        &[[6u8].as_slice(), prekey.serialized()].concat(),
    );

    let mut alice = Participant::new("alice");
    write("bundle_json", "bundle", alice.bundle_json().as_bytes());
    write(
        "bundle_json",
        "bundle-v4",
        Participant::new_v4("alice").bundle_json().as_bytes(),
    );
    let plaintext = alice.response_plaintext("AAAAAAAAAAAAAAAAAAAAAA", T0);
    write(
        "plaintext_json",
        "response",
        plaintext.to_string().as_bytes(),
    );
    write(
        "plaintext_json",
        "participants",
        br#"[{"user_id":"a","device_id":"1","display_name":"A"}]"#,
    );
    let (mut h, mut a) = {
        let mut a = Participant::new("a");
        let mut h = Harness::new();
        h.start(&[&a]);
        h.serve_bundle(&mut a);
        h.deliver_last_request(&mut a);
        (h, a)
    };
    let event = a.answer_last(h.now);
    write("socket_event", "answer", event.as_bytes());
    write("plaintext_json", "event", event.as_bytes());
    for (name, json) in [
        ("bundle", alice.bundle_json()),
        ("plaintext", plaintext.to_string()),
        ("event", event.clone()),
        (
            "escapes",
            r#"{"s":"\u00e9\ud83d\ude00\n\"\\","n":[0,-1,1.5e3,18446744073709551616],"o":{"a":null,"b":true}}"#.into(),
        ),
    ] {
        write("json_differential", name, json.as_bytes());
    }
    h.receive(event);
    assert_eq!(h.keys.len(), 1);
}
