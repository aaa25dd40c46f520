//! Socket event bodies fed to a running exchange: never panic; a dropped event changes
//! neither the Signal state nor the outcome (no key, no failure).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rand::{rngs::StdRng, SeedableRng};
use signal_guest_sdk::exchange::{
    messages, Action, Event, Exchange, ExchangeConfig, GuestState, ParticipantId,
};
use signal_guest_sdk::signal::ProtocolStore;

const NOW: u64 = 1_700_000_000_000;

fn prepared() -> &'static (Vec<u8>, String) {
    static PREPARED: OnceLock<(Vec<u8>, String)> = OnceLock::new();
    PREPARED.get_or_init(|| {
        let rng = &mut StdRng::seed_from_u64(3);
        let participant = ProtocolStore::generate(rng, 2);
        let keys = participant.public_keys().unwrap();
        let (id, key) = keys.pre_keys[0];
        let bundle = format!(
            r#"{{"user_id":"a","device_id":"1","identity_key":"{}","registration_id":{},"signed_pre_key":{{"id":{},"public_key":"{}","signature":"{}"}},"pre_key":{{"id":{id},"public_key":"{}"}}}}"#,
            messages::encode_base64(&keys.identity_key.serialize()),
            keys.registration_id,
            keys.signed_pre_key.id,
            messages::encode_base64(&keys.signed_pre_key.public_key.serialize()),
            messages::encode_base64(&keys.signed_pre_key.signature),
            messages::encode_base64(&key.serialize()),
        );
        let guest = GuestState::new(ProtocolStore::generate(rng, 2));
        (guest.to_bytes().to_vec(), bundle)
    })
}

fuzz_target!(|data: &[u8]| {
    let (state, bundle) = prepared();
    let rng = &mut StdRng::seed_from_u64(4);
    let state = GuestState::from_bytes(state).unwrap();
    let mut ex = Exchange::new(ExchangeConfig::default(), "m".into(), "g".into(), state);
    let a = ParticipantId::new("a".into(), "1".into());
    ex.handle(Event::Start, NOW, rng);
    ex.handle(
        Event::ParticipantsListed(Ok(r#"[{"user_id":"a","device_id":"1"}]"#.into())),
        NOW,
        rng,
    );
    ex.handle(
        Event::BundleFetched {
            participant: a,
            result: Ok(bundle.clone()),
        },
        NOW,
        rng,
    );
    let before = ex.state().to_bytes();
    let actions = ex.handle(
        Event::MessageReceived(String::from_utf8_lossy(data).into_owned()),
        NOW,
        rng,
    );
    for action in &actions {
        assert!(
            !matches!(action, Action::DeliverKey { .. } | Action::Failed(_)),
            "{action:?}"
        );
    }
    if actions.iter().any(|a| matches!(a, Action::Dropped(_))) {
        assert_eq!(ex.state().to_bytes(), before);
    }
});
