//! Field operations per engine operation, counted in a copy of curve25519-dalek (`run.sh`).
//! The engine benchmark's operations, in the same order, then the primitives they are made of.
// A tool, not library code: a failed step ends it.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::Ordering::Relaxed;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::counters::{INVERT, MUL, SQUARE};
use curve25519_dalek::Scalar;
use rand::rngs::OsRng;
use signal_guest_sdk::signal::*;

/// Runs `step` and prints the multiplications, squarings and inversions it cost.
fn counted<T>(label: &str, step: impl FnOnce() -> T) -> T {
    let before = [&MUL, &SQUARE, &INVERT].map(|c| c.load(Relaxed));
    let out = step();
    let [mul, square, invert] = [&MUL, &SQUARE, &INVERT].map(|c| c.load(Relaxed));
    let (mul, square, invert) = (mul - before[0], square - before[1], invert - before[2]);
    println!(
        "| {label} | {mul} | {square} | {} | {invert} |",
        mul + square
    );
    out
}

fn party(kyber: bool, one_time_pre_keys: u32) -> ProtocolStore {
    let mut store = ProtocolStore::generate(&mut OsRng, one_time_pre_keys);
    if kyber {
        store.add_kyber_pre_key(7, &mut OsRng);
    }
    store
}

fn wire(message: &CiphertextMessage) -> CiphertextMessage {
    CiphertextMessage::parse(Some(message.message_type().into()), message.serialized()).unwrap()
}

fn main() {
    println!(
        "| operation | multiplications | squarings | field operations | of them, inversions |"
    );
    println!("|---|---:|---:|---:|---:|");
    counted("basepoint table, once per page", || party(false, 0));
    for (version, kyber, keys) in [
        (
            "v3",
            false,
            "identity + signed prekey + 30 one-time prekeys",
        ),
        (
            "v4",
            true,
            "identity + signed prekey + Kyber prekey + 30 one-time prekeys",
        ),
    ] {
        counted(&format!("{version}: {keys}"), || party(kyber, 30));
        let mut alice = party(kyber, 0);
        let mut bob = party(kyber, 1);
        let bundle = bob.bundle(1, true).unwrap();
        counted(&format!("{version}: X3DH/PQXDH initiate"), || {
            alice.process_bundle("bob", &bundle, &mut OsRng).unwrap()
        });
        let first = wire(&alice.encrypt("bob", b"request").unwrap());
        counted(&format!("{version}: decrypt PreKeySignalMessage"), || {
            bob.decrypt("alice", &first, &mut OsRng).unwrap()
        });
        let answer = wire(&bob.encrypt("alice", b"answer").unwrap());
        counted(
            &format!("{version}: decrypt the answer (a DH ratchet step)"),
            || alice.decrypt("bob", &answer, &mut OsRng).unwrap(),
        );
        counted(&format!("{version}: encrypt SignalMessage"), || {
            alice.encrypt("bob", b"more").unwrap()
        });
    }
    let ours = KeyPair::generate(&mut OsRng);
    let theirs = KeyPair::generate(&mut OsRng);
    let signature = ours.private.sign(b"message", &mut OsRng);
    counted("key pair (fixed-base, through the table)", || {
        KeyPair::generate(&mut OsRng)
    });
    counted("k·B without a table (dalek's variable-base)", || {
        ED25519_BASEPOINT_POINT * Scalar::from_bytes_mod_order([9; 32])
    });
    counted("X25519 agreement (Montgomery ladder)", || {
        ours.private.agree(&theirs.public).unwrap()
    });
    counted("XEdDSA sign", || ours.private.sign(b"message", &mut OsRng));
    counted("XEdDSA verify", || {
        assert!(ours.public.verify_signature(b"message", &signature))
    });
}
