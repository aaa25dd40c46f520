//! Secrets are wiped before their memory is freed: serialized stores, the meeting key's
//! base64 text in a decrypted answer, and one-time prekeys the store used up. The test
//! allocator looks into every freed block for a piece of the secret.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]
// Native only: the wasm build has its own global allocator.
#![cfg(not(target_arch = "wasm32"))]

#[path = "support/scanning_alloc.rs"]
mod scanning_alloc;

use rand::rngs::OsRng;
use scanning_alloc::{freed_blocks_holding, Scanning};
use signal_guest_sdk::exchange::messages::encode_base64;
use signal_guest_sdk::exchange::plaintexts::parse_key_message;
use signal_guest_sdk::exchange::GuestState;
use signal_guest_sdk::signal::{CiphertextMessage, ProtocolStore};
use zeroize::Zeroizing;

#[global_allocator]
static ALLOCATOR: Scanning = Scanning;

// Private keys are read from the stored form (version byte, identity private key,
// registration id, a flag and the signed prekey as id + private + signature, one-time
// prekeys as id + private), read before the scanner is armed.
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn identity_private(store: &ProtocolStore) -> [u8; 32] {
    store.to_bytes()[1..33].try_into().unwrap()
}

fn one_time_private(store: &ProtocolStore, id: u32) -> [u8; 32] {
    let b = store.to_bytes();
    let signed = usize::from(b[37]);
    let mut at = 38 + signed * (4 + 32 + 64);
    let count = u32_at(&b, at) as usize;
    at += 4;
    for _ in 0..count {
        if u32_at(&b, at) == id {
            return b[at + 4..at + 36].try_into().unwrap();
        }
        at += 36;
    }
    panic!("no one-time prekey {id}")
}

#[test]
fn a_serialized_store_larger_than_the_first_buffer_leaves_no_copy() {
    // 200 one-time prekeys: the stored form outgrows the writer's first 4 KiB.
    let store = ProtocolStore::generate(&mut OsRng, 200);
    let identity = identity_private(&store);
    let state = GuestState::new(store.clone());
    let hits = freed_blocks_holding(&identity, || {
        let bytes = store.to_bytes();
        assert!(bytes.len() > 4096);
        drop(bytes);
        drop(state.to_bytes());
    });
    assert_eq!(hits, 0);
}

#[test]
fn the_meeting_keys_base64_is_not_left_by_the_json_reader() {
    let key = [0x5au8; 32];
    let encoded = encode_base64(&key);
    let plaintext = Zeroizing::new(
        format!(
            r#"{{"type":"participant:meeting_e2ee_key_response","meeting_id":"m","request_id":"r","key":"{encoded}","key_index":0,"timestamp":1}}"#
        )
        .into_bytes(),
    );
    let hits = freed_blocks_holding(encoded.as_bytes(), || {
        let message = parse_key_message(&plaintext).unwrap();
        assert_eq!(message.key.expose_bytes(), &key);
        drop(message);
    });
    assert_eq!(hits, 0);
}

/// Removing the used prekey shifts the ones after it down; the last one's old slot must not
/// keep a copy that outlives the store.
#[test]
fn using_up_a_one_time_prekey_leaves_no_stale_copy_in_the_store() {
    let mut alice = ProtocolStore::generate(&mut OsRng, 1);
    let mut bob = ProtocolStore::generate(&mut OsRng, 8);
    let bundle = bob.bundle(1, true).unwrap();
    let (used_id, _) = bundle.pre_key.unwrap();
    let last_id = bob.one_time_pre_key_ids().max().unwrap();
    assert_ne!(last_id, used_id);
    let last = one_time_private(&bob, last_id);
    alice.process_bundle("bob", &bundle, &mut OsRng).unwrap();
    let message = alice.encrypt("bob", b"hello").unwrap();
    let message = CiphertextMessage::parse(Some(3), message.serialized()).unwrap();
    let hits = freed_blocks_holding(&last, || {
        bob.decrypt("alice", &message, &mut OsRng).unwrap();
        assert!(
            !bob.one_time_pre_key_ids().any(|id| id == used_id),
            "used up"
        );
        drop(std::mem::replace(
            &mut bob,
            ProtocolStore::generate(&mut OsRng, 0),
        ));
    });
    assert_eq!(hits, 0);
}

/// The Kyber prekey's 64-byte seed, from the stored form: it follows the one-time prekeys
/// (a flag, the id, the seed, the signature).
fn kyber_seed(store: &ProtocolStore) -> [u8; 64] {
    let b = store.to_bytes();
    let signed = usize::from(b[37]);
    let mut at = 38 + signed * (4 + 32 + 64);
    at += 4 + u32_at(&b, at) as usize * 36;
    assert_eq!(b[at], 1, "the store holds a Kyber prekey");
    b[at + 5..at + 69].try_into().unwrap()
}

/// A v4 PreKey message makes the responder expand its Kyber seed into the secret key and
/// decapsulate: neither the seed nor anything made from it may be left in freed memory.
#[test]
fn decapsulating_leaves_no_copy_of_the_kyber_seed() {
    let mut alice = ProtocolStore::generate(&mut OsRng, 1);
    let mut bob = ProtocolStore::generate(&mut OsRng, 2);
    bob.add_kyber_pre_key(1, &mut OsRng);
    let seed = kyber_seed(&bob);
    alice
        .process_bundle("bob", &bob.bundle(1, true).unwrap(), &mut OsRng)
        .unwrap();
    let message = alice.encrypt("bob", b"hello").unwrap();
    let message = CiphertextMessage::parse(Some(3), message.serialized()).unwrap();
    // The seed's second half (the implicit-rejection secret z) and first half (d) alike.
    for half in [&seed[..32], &seed[32..]] {
        let mut bob = bob.clone();
        let hits = freed_blocks_holding(half, || {
            bob.decrypt("alice", &message, &mut OsRng).unwrap();
            let reloaded = ProtocolStore::from_bytes(&bob.to_bytes()).unwrap();
            drop(reloaded);
            drop(std::mem::replace(
                &mut bob,
                ProtocolStore::generate(&mut OsRng, 0),
            ));
        });
        assert_eq!(hits, 0);
    }
}
