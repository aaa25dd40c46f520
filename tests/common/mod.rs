//! Shared test harness: participants running our engine and a driver for the exchange
//! state machine under a fake clock.
#![allow(dead_code)]

use std::cell::RefCell;

use rand::rngs::StdRng;
use rand::{CryptoRng, RngCore, SeedableRng};
use serde_json::{json, Value};
use signal_guest_sdk::exchange::messages::encode_base64;
use signal_guest_sdk::exchange::*;
use signal_guest_sdk::signal::{CiphertextMessage, KeyPair, ProtocolStore};

thread_local! {
    static RNG: RefCell<StdRng> = RefCell::new(StdRng::seed_from_u64(seed()));
}

/// The seed of every test's randomness: `TEST_SEED` if set, else a random one. It is printed,
/// so that a failing test (whose output cargo shows) can be replayed exactly.
fn seed() -> u64 {
    let seed = std::env::var("TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rngs::OsRng.next_u64());
    println!("randomness seeded with TEST_SEED={seed}");
    seed
}

/// Each test thread's seeded generator (every test runs on its own thread).
#[derive(Clone, Copy, Debug, Default)]
pub struct TestRng;

impl RngCore for TestRng {
    fn next_u32(&mut self) -> u32 {
        RNG.with(|r| r.borrow_mut().next_u32())
    }
    fn next_u64(&mut self) -> u64 {
        RNG.with(|r| r.borrow_mut().next_u64())
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        RNG.with(|r| r.borrow_mut().fill_bytes(dest))
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for TestRng {}

pub const MEETING: &str = "meeting-1";
pub const GUEST: &str = "guest-session-1";
pub const T0: Millis = 1_700_000_000_000;

pub struct Participant {
    pub id: ParticipantId,
    pub store: ProtocolStore,
    pub key: [u8; 32],
    pub bundles_served: usize,
    pub requests: Vec<String>,
}

impl Participant {
    pub fn new(user: &str) -> Self {
        let mut key = [0u8; 32];
        key[0] = user.as_bytes()[0];
        // A fixed registration id (two varint bytes): a random one is below 128, one byte
        // shorter, in 1 of 129 stores, and the battery's bit sweep needs every scene's answers
        // to have the same length.
        let mut store = ProtocolStore::with_identity(KeyPair::generate(&mut TestRng), 4242);
        store.add_signed_pre_key(1, &mut TestRng);
        store.add_one_time_pre_keys(1, 10, &mut TestRng);
        Self {
            id: ParticipantId::new(user.into(), "1".into()),
            store,
            key,
            bundles_served: 0,
            requests: Vec::new(),
        }
    }

    /// A participant whose bundle carries a Kyber prekey: the guest's sessions with it are
    /// v4 (PQXDH, SPQR).
    pub fn new_v4(user: &str) -> Self {
        let mut p = Self::new(user);
        p.store.add_kyber_pre_key(1, &mut TestRng);
        p
    }

    /// The keybundle JSON as the server serves it, handing out a fresh one-time prekey.
    pub fn bundle_json(&mut self) -> String {
        let keys = self.store.public_keys().unwrap();
        let (id, key) = keys.pre_keys[self.bundles_served];
        self.bundles_served += 1;
        let kyber = keys.kyber_pre_key.map(|k| {
            json!({
                "id": k.id,
                "public_key": encode_base64(&k.public_key.serialize()),
                "signature": encode_base64(&k.signature),
            })
        });
        json!({
            "kyber_pre_key": kyber,
            "user_id": self.id.user_id,
            "device_id": self.id.device_id,
            "identity_key": encode_base64(&keys.identity_key.serialize()),
            "registration_id": keys.registration_id,
            "signed_pre_key": {
                "id": keys.signed_pre_key.id,
                "public_key": encode_base64(&keys.signed_pre_key.public_key.serialize()),
                "signature": encode_base64(&keys.signed_pre_key.signature),
            },
            "pre_key": { "id": id, "public_key": encode_base64(&key.serialize()) },
        })
        .to_string()
    }

    /// Decrypts a `guest:signal_message` body addressed to us; returns the request plaintext.
    pub fn receive(&mut self, body: &str) -> Value {
        let v: Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["participant_user_id"], self.id.user_id);
        assert_eq!(v["type"], "guest:meeting_e2ee_key_request");
        let bytes = base64_decode(v["encrypted_message"].as_str().unwrap());
        let message =
            CiphertextMessage::parse(v["message_type"].as_u64().map(|t| t as u32), &bytes).unwrap();
        let plaintext = self.store.decrypt("guest", &message, &mut TestRng).unwrap();
        let request: Value = serde_json::from_slice(&plaintext).unwrap();
        self.requests
            .push(request["request_id"].as_str().unwrap().to_owned());
        request
    }

    pub fn response_plaintext(&self, request_id: &str, now: Millis) -> Value {
        json!({
            "type": "participant:meeting_e2ee_key_response",
            "meeting_id": MEETING,
            "request_id": request_id,
            "key": encode_base64(&self.key),
            "key_index": 0,
            "timestamp": now,
        })
    }

    /// Encrypts `plaintext` to the guest and wraps it as the server relays it.
    pub fn event(&mut self, plaintext: &Value) -> String {
        let message = self
            .store
            .encrypt("guest", plaintext.to_string().as_bytes())
            .unwrap();
        json!({
            "participant_user_id": self.id.user_id,
            "participant_device_id": self.id.device_id,
            "type": plaintext["type"],
            "encrypted_message": encode_base64(message.serialized()),
            "message_type": message.message_type(),
            "timestamp": 0,
        })
        .to_string()
    }

    pub fn answer_last(&mut self, now: Millis) -> String {
        let request_id = self.requests.last().unwrap().clone();
        let plaintext = self.response_plaintext(&request_id, now);
        self.event(&plaintext)
    }
}

pub fn base64_decode(s: &str) -> Vec<u8> {
    messages::decode_base64(s, "test").unwrap()
}

/// Drives the machine: records every action; `advance` moves the fake clock and wakes the
/// machine at each deadline it reports, as a real driver's single timer would.
/// The product's configuration without hedging: most tests check one participant's attempt at
/// a time (tests/hedging.rs checks hedging).
pub fn one_at_a_time() -> ExchangeConfig {
    ExchangeConfig {
        hedge_after_ms: None,
        ..ExchangeConfig::default()
    }
}

pub struct Harness {
    pub ex: Exchange,
    pub now: Millis,
    pub fetches: Vec<(Millis, ParticipantId)>,
    pub sends: Vec<(Millis, ParticipantId, String)>,
    pub keys: Vec<(MeetingKey, u8, ParticipantId)>,
    pub dropped: Vec<DropReason>,
    pub failed: Option<ExchangeFailure>,
    pub progress: Vec<Progress>,
    pub persisted: usize,
    pub list_requests: usize,
    /// PeerWave prekey calls, in order: `None` for a count, `Some(body)` for a publication.
    pub pre_key_calls: Vec<Option<String>>,
    /// Every action's kind, in order (for checks on ordering).
    pub log: Vec<&'static str>,
}

impl Harness {
    pub fn new() -> Self {
        Self::with_state(GuestState::new(ProtocolStore::generate(&mut TestRng, 30)))
    }

    /// The product's defaults: hedging after 1.5 s (the others ask one at a time).
    pub fn hedged() -> Self {
        let state = GuestState::new(ProtocolStore::generate(&mut TestRng, 30));
        Self::with_config(ExchangeConfig::default(), state)
    }

    pub fn with_state(state: GuestState) -> Self {
        Self::with_config(one_at_a_time(), state)
    }

    pub fn with_config(config: ExchangeConfig, state: GuestState) -> Self {
        let ex = Exchange::new(config, MEETING.into(), GUEST.into(), state);
        Self {
            ex,
            now: T0,
            fetches: Vec::new(),
            sends: Vec::new(),
            keys: Vec::new(),
            dropped: Vec::new(),
            failed: None,
            progress: Vec::new(),
            persisted: 0,
            list_requests: 0,
            pre_key_calls: Vec::new(),
            log: Vec::new(),
        }
    }

    pub fn feed(&mut self, event: Event) {
        let actions = self.ex.handle(event, self.now, &mut TestRng);
        let delivers = actions
            .iter()
            .any(|a| matches!(a, Action::DeliverKey { .. }));
        self.record(actions);
        // As the browser's driver does, once the key is handed over.
        if delivers {
            let settled = self.ex.handle(Event::KeyHandedOver, self.now, &mut TestRng);
            self.record(settled);
        }
    }

    pub fn fire_timeout(&mut self) {
        let actions = self.ex.handle_timeout(self.now, &mut TestRng);
        self.record(actions);
    }

    fn record(&mut self, actions: Vec<Action>) {
        for action in actions {
            self.log.push(match &action {
                Action::ListParticipants => "list",
                Action::CountPreKeys => "count",
                Action::PublishPreKeys { .. } => "publish",
                Action::FetchBundle { .. } => "fetch",
                Action::Send { .. } => "send",
                Action::PersistState => "persist",
                Action::DeliverKey { .. } => "deliver",
                Action::Progress(_) => "progress",
                Action::Dropped(_) => "dropped",
                Action::Failed(_) => "failed",
            });
            match action {
                Action::ListParticipants => self.list_requests += 1,
                Action::CountPreKeys => self.pre_key_calls.push(None),
                Action::PublishPreKeys { body } => self.pre_key_calls.push(Some(body)),
                Action::FetchBundle { participant } => self.fetches.push((self.now, participant)),
                Action::Send { participant, body } => {
                    self.sends.push((self.now, participant, body))
                }
                Action::PersistState => self.persisted += 1,
                Action::DeliverKey { key, delivered } => {
                    self.keys.push((key, delivered.key_index, delivered.from))
                }
                Action::Progress(p) => self.progress.push(p),
                Action::Dropped(reason) => self.dropped.push(reason),
                Action::Failed(f) => self.failed = Some(f),
            }
        }
    }

    pub fn start(&mut self, participants: &[&Participant]) {
        self.feed(Event::Start);
        let list: Vec<Value> = participants
            .iter()
            .map(|p| json!({"user_id": p.id.user_id, "device_id": p.id.device_id, "display_name": "x"}))
            .collect();
        self.feed(Event::ParticipantsListed(
            Ok(Value::Array(list).to_string()),
        ));
    }

    /// Serves the pending bundle fetch (the last one) from `p`.
    pub fn serve_bundle(&mut self, p: &mut Participant) {
        assert_eq!(
            self.fetches.last().unwrap().1,
            p.id,
            "fetch is for {}",
            p.id
        );
        let body = p.bundle_json();
        self.feed(Event::BundleFetched {
            participant: p.id.clone(),
            result: Ok(body),
        });
    }

    /// Serves a pending bundle fetch from `p`, whichever fetch came last (hedging asks
    /// several participants at once).
    pub fn serve_bundle_for(&mut self, p: &mut Participant) {
        assert!(
            self.fetches.iter().any(|(_, f)| *f == p.id),
            "no fetch for {}",
            p.id
        );
        let body = p.bundle_json();
        self.feed(Event::BundleFetched {
            participant: p.id.clone(),
            result: Ok(body),
        });
    }

    /// Delivers the last request to `p` (it must be addressed to `p`).
    pub fn deliver_last_request(&mut self, p: &mut Participant) -> Value {
        let (_, to, body) = self.sends.last().unwrap().clone();
        assert_eq!(to, p.id);
        p.receive(&body)
    }

    pub fn advance(&mut self, ms: Millis) {
        let until = self.now + ms;
        while let Some(deadline) = self.ex.poll_timeout().filter(|at| *at <= until) {
            self.now = self.now.max(deadline);
            self.fire_timeout();
        }
        self.now = until;
    }

    pub fn receive(&mut self, event: String) {
        self.feed(Event::MessageReceived(event));
    }

    pub fn state_bytes(&self) -> Vec<u8> {
        self.ex.state().to_bytes().to_vec()
    }
}
