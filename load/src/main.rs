//! `signal-guest-load`: runs N native guests against an already running relay with participant
//! bots. Every guest's keys are made first (not timed); then each guest registers over HTTP, joins the `/external` Socket.IO namespace and drives the
//! SDK's sans-I/O `Exchange` until it delivers the meeting key or fails; then, as the SDK's
//! driver does once the key is handed over, it sends the short code's reveal, and closes its
//! socket half a second later.
//!
//! Prints successes, failures by code, dropped events by reason, time-to-key percentiles (from
//! `Event::Start` to `Action::DeliverKey`), wall time and guests/s, then the summary line
//! `load: <ok>/<guests> keys, p50 <ms>, p99 <ms>, <n> guests/s, busiest device <pct>% of first
//! requests, <k> sessions without a one-time prekey, <lost> lost`, and `1 passed, 0 failed` when
//! every guest got the expected key, nothing was lost and the invariants asked for hold
//! (`--max-busiest-pct`, `--expect-exhaustion`); `0 passed, 1 failed` otherwise (exit 1).
//! Exits 2 on bad arguments.
//!
//! Usage: signal-guest-load [--guests 500] [--concurrency 50] [--relay http://127.0.0.1:18900]
//!        [--expect-check HEX] [--meeting demo-meeting] [--invite demo-invite] [--guest-timeout-s 60]
//!        [--max-busiest-pct 40] [--expect-exhaustion]

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::FutureExt;
use rand::rngs::OsRng;
use rust_socketio::asynchronous::{Client, ClientBuilder};
use rust_socketio::{Event as SocketIoEvent, Payload, TransportType};
use signal_guest_sdk::exchange::contract::{self, paths};
use signal_guest_sdk::exchange::{
    messages, Action, Event, Exchange, ExchangeConfig, ExchangeFailure, GuestState, HttpFailure,
    Progress,
};
use signal_guest_sdk::signal::ProtocolStore;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::{sleep_until, timeout};

const ONE_TIME_PREKEYS: u32 = 30;
const HTTP_TIMEOUT: Duration = Duration::from_secs(15);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone)]
struct Config {
    guests: usize,
    concurrency: usize,
    relay: String,
    expect_check: Option<String>,
    meeting: String,
    invite: String,
    guest_timeout: Duration,
    /// Fail when one device was asked first by more than this share of the guests.
    max_busiest_pct: Option<f64>,
    /// Fail unless some session started without a one-time prekey (the last-resort path).
    expect_exhaustion: bool,
}

fn usage(problem: &str) -> ! {
    eprintln!("signal-guest-load: {problem}");
    eprintln!(
        "usage: signal-guest-load [--guests N] [--concurrency C] [--relay URL] [--expect-check HEX] \
         [--meeting ID] [--invite TOKEN] [--guest-timeout-s S] [--max-busiest-pct P] \
         [--expect-exhaustion]"
    );
    std::process::exit(2);
}

fn parse_args() -> Config {
    let mut cfg = Config {
        guests: 500,
        concurrency: 50,
        relay: "http://127.0.0.1:18900".into(),
        expect_check: None,
        meeting: "demo-meeting".into(),
        invite: "demo-invite".into(),
        guest_timeout: Duration::from_secs(60),
        max_busiest_pct: None,
        expect_exhaustion: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            usage("help requested");
        }
        if flag == "--expect-exhaustion" {
            cfg.expect_exhaustion = true;
            continue;
        }
        let value = args
            .next()
            .unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        let number = |v: &str| -> usize {
            v.parse()
                .ok()
                .filter(|n| *n > 0)
                .unwrap_or_else(|| usage(&format!("{flag} needs a positive integer")))
        };
        match flag.as_str() {
            "--guests" => cfg.guests = number(&value),
            "--concurrency" => cfg.concurrency = number(&value),
            "--relay" => cfg.relay = value.trim_end_matches('/').to_owned(),
            "--expect-check" => cfg.expect_check = Some(value.to_lowercase()),
            "--meeting" => cfg.meeting = value,
            "--invite" => cfg.invite = value,
            "--guest-timeout-s" => cfg.guest_timeout = Duration::from_secs(number(&value) as u64),
            "--max-busiest-pct" => cfg.max_busiest_pct = Some(number(&value) as f64),
            other => usage(&format!("unknown option {other}")),
        }
    }
    cfg
}

/// Wall-clock milliseconds: answers carry the bot's `Date.now()`, checked against this.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What one guest ended with.
#[derive(Debug, Default)]
struct GuestReport {
    /// Check value of the delivered key.
    check: Option<String>,
    /// Failure code when no key was delivered.
    failure: Option<String>,
    /// Attempt failure codes (from `Failed` and from rotations on the way).
    attempt_failures: Vec<&'static str>,
    dropped: Vec<&'static str>,
    time_to_key_ms: Option<f64>,
    setup_ms: Option<f64>,
    socket_errors: usize,
    first_socket_error: Option<String>,
    /// The device (`user:device`) whose bundle the guest fetched first.
    first_asked: Option<String>,
    /// Bundles that came without a one-time prekey (each starts a session without one).
    bundles_without_prekey: usize,
}

impl GuestReport {
    fn socket_error(&mut self, what: String) {
        self.socket_errors += 1;
        self.first_socket_error.get_or_insert(what);
    }
}

/// How long a guest's socket stays open after its exchange ends.
const LINGER: Duration = Duration::from_millis(500);

/// Socket callbacks only forward into this channel: they run under the client's builder lock.
#[derive(Debug)]
enum SocketEvent {
    Connected,
    Message(String),
    Error(String),
    Closed,
}

/// Emits a guest message (the machine's JSON text) on the `/external` socket; `false` if it
/// could not go out.
async fn emit(client: &Client, body: &str) -> bool {
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(value) => client
            .emit(contract::GUEST_MESSAGE_EVENT, Payload::Text(vec![value]))
            .await
            .is_ok(),
        Err(_) => false,
    }
}

async fn http_text(req: reqwest::RequestBuilder) -> Result<String, HttpFailure> {
    let resp = req.send().await.map_err(|_| HttpFailure {
        status: 0,
        retry_after_s: None,
    })?;
    let status = resp.status().as_u16();
    let retry_after_s = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    if !(200..300).contains(&status) {
        return Err(HttpFailure {
            status,
            retry_after_s,
        });
    }
    resp.text().await.map_err(|_| HttpFailure {
        status: 0,
        retry_after_s: None,
    })
}

fn failure_kind(f: &ExchangeFailure) -> &'static str {
    match f {
        ExchangeFailure::AttemptsExhausted(_) => "attempts_exhausted",
        ExchangeFailure::ParticipantsUnavailable(_) => "participants_unavailable",
        ExchangeFailure::NoParticipants(_) => "no_participants",
    }
}

async fn run_guest(
    n: usize,
    state: GuestState,
    cfg: Arc<Config>,
    http: reqwest::Client,
) -> GuestReport {
    let mut report = GuestReport::default();
    let deadline = cfg.guest_timeout;
    match timeout(deadline, guest(n, state, &cfg, &http, &mut report)).await {
        Ok(Ok(())) => {}
        Ok(Err(code)) => report.failure = Some(code),
        Err(_) => report.failure = Some("guest_deadline".into()),
    }
    report
}

/// One guest from registration to key. `Err` carries the failure code.
async fn guest(
    n: usize,
    state: GuestState,
    cfg: &Config,
    http: &reqwest::Client,
    report: &mut GuestReport,
) -> Result<(), String> {
    let setup_started = Instant::now();
    // --- store and registration ---
    let keys = state
        .store
        .public_keys()
        .ok_or_else(|| "store_without_keys".to_owned())?;
    let body = messages::registration_body(
        &keys,
        &cfg.invite,
        &cfg.meeting,
        &format!("Load guest {n}"),
        &contract::PLAN,
    );
    let answer = http_text(
        http.post(format!("{}{}", cfg.relay, paths::REGISTER))
            .header("content-type", "application/json")
            .body(body),
    )
    .await
    .map_err(|f| format!("register_http_{}", f.status))?;
    let session_id = messages::parse_registration(&answer, &cfg.meeting)
        .map_err(|_| "register_invalid_answer".to_owned())?;

    // --- socket ---
    let (tx, mut rx) = mpsc::unbounded_channel::<SocketEvent>();
    let (t_connect, t_msg, t_err, t_close) = (tx.clone(), tx.clone(), tx.clone(), tx);
    // Built-in events by variant: the string "connect" would name a custom event.
    let client = ClientBuilder::new(cfg.relay.clone())
        .namespace(contract::SOCKET_NAMESPACE)
        .auth(serde_json::json!({ "sessionId": session_id }))
        .transport_type(TransportType::Websocket)
        .reconnect(false)
        .on(SocketIoEvent::Connect, move |_payload, _client: Client| {
            let _ = t_connect.send(SocketEvent::Connected);
            async {}.boxed()
        })
        .on(
            contract::PARTICIPANT_MESSAGE_EVENT,
            move |payload, _client: Client| {
                match payload {
                    Payload::Text(values) => {
                        for v in values {
                            let _ = t_msg.send(SocketEvent::Message(v.to_string()));
                        }
                    }
                    #[allow(deprecated)]
                    Payload::String(s) => {
                        let _ = t_msg.send(SocketEvent::Message(s));
                    }
                    Payload::Binary(_) => {
                        let _ = t_msg.send(SocketEvent::Error("binary payload".into()));
                    }
                }
                async {}.boxed()
            },
        )
        .on(SocketIoEvent::Error, move |payload, _client: Client| {
            let _ = t_err.send(SocketEvent::Error(format!("{payload:?}")));
            async {}.boxed()
        })
        .on(SocketIoEvent::Close, move |_payload, _client: Client| {
            let _ = t_close.send(SocketEvent::Closed);
            async {}.boxed()
        })
        .connect()
        .await
        .map_err(|_| "socket_connect_failed".to_owned())?;

    // An emit sent before the namespace's Connect packet arrived is lost: wait for it.
    let connected = timeout(CONNECT_TIMEOUT, async {
        while let Some(ev) = rx.recv().await {
            match ev {
                SocketEvent::Connected => return Ok(()),
                SocketEvent::Error(e) => report.socket_error(e),
                SocketEvent::Closed => return Err("socket_closed_before_connect"),
                SocketEvent::Message(_) => {}
            }
        }
        Err("socket_channel_closed")
    })
    .await
    .unwrap_or(Err("socket_connect_timeout"));
    if let Err(code) = connected {
        let _ = client.disconnect().await;
        return Err(code.to_owned());
    }
    report.setup_ms = Some(setup_started.elapsed().as_secs_f64() * 1e3);

    let result = exchange(cfg, http, &client, &mut rx, session_id, state, report).await;
    // A guest stays in the call after its key: its socket is closed a moment later, off the
    // guest's slot, so the short code's reveal (its last message) is read first. Socket.IO's
    // server drops an event that arrives in the same read as its socket's disconnect.
    tokio::spawn(async move {
        tokio::time::sleep(LINGER).await;
        let _ = client.disconnect().await;
    });
    result
}

async fn exchange(
    cfg: &Config,
    http: &reqwest::Client,
    client: &Client,
    rx: &mut mpsc::UnboundedReceiver<SocketEvent>,
    session_id: String,
    state: GuestState,
    report: &mut GuestReport,
) -> Result<(), String> {
    // Safety numbers are the guest's own CPU (3.5 ms each here), not the server's or the
    // participants' load: one machine playing thousands of guests leaves them out.
    let config = ExchangeConfig {
        safety_numbers: false,
        ..ExchangeConfig::default()
    };
    let mut machine = Exchange::new(config, cfg.meeting.clone(), session_id.clone(), state);
    let started = Instant::now();
    let mut queue: VecDeque<Event> = VecDeque::from([Event::Start]);

    loop {
        let actions = match queue.pop_front() {
            Some(event) => machine.handle(event, now_ms(), &mut OsRng),
            None => {
                // One timer, always at the machine's current deadline (its driver contract).
                let at = machine.poll_timeout().map(|deadline| {
                    tokio::time::Instant::now()
                        + Duration::from_millis(deadline.saturating_sub(now_ms()))
                });
                let event = tokio::select! {
                    ev = rx.recv() => match ev {
                        Some(SocketEvent::Message(body)) => Some(Event::MessageReceived(body)),
                        Some(SocketEvent::Error(e)) => { report.socket_error(e); continue }
                        Some(SocketEvent::Connected) => continue,
                        // The relay dropped us; the machine times the attempt out and rotates,
                        // but nothing can reach us any more: count it as its own failure.
                        Some(SocketEvent::Closed) | None => return Err("socket_closed".into()),
                    },
                    _ = sleep_until(at.unwrap_or_else(tokio::time::Instant::now)), if at.is_some() => None,
                };
                match event {
                    Some(event) => machine.handle(event, now_ms(), &mut OsRng),
                    None => machine.handle_timeout(now_ms(), &mut OsRng),
                }
            }
        };
        for action in actions {
            match action {
                Action::ListParticipants => {
                    let path =
                        contract::fill_path(paths::PARTICIPANTS, &[("meetingId", &cfg.meeting)]);
                    let result = http_text(
                        http.get(format!("{}{path}", cfg.relay))
                            .header(contract::GUEST_SESSION_HEADER, &session_id),
                    )
                    .await;
                    queue.push_back(Event::ParticipantsListed(result));
                }
                // The load run speaks the plan profile; PeerWave's prekey stocking never comes.
                Action::CountPreKeys | Action::PublishPreKeys { .. } => {}
                Action::FetchBundle { participant } => {
                    let path = contract::fill_path(
                        paths::PARTICIPANT_KEYS,
                        &[
                            ("sessionId", &session_id),
                            ("userId", &participant.user_id),
                            ("deviceId", &participant.device_id),
                        ],
                    );
                    report.first_asked.get_or_insert_with(|| {
                        format!("{}:{}", participant.user_id, participant.device_id)
                    });
                    let result = http_text(http.get(format!("{}{path}", cfg.relay))).await;
                    if result.as_deref().is_ok_and(without_prekey) {
                        report.bundles_without_prekey += 1;
                    }
                    queue.push_back(Event::BundleFetched {
                        participant,
                        result,
                    });
                }
                Action::Send { participant, body } => {
                    if !emit(&client, &body).await {
                        queue.push_back(Event::SendFailed { participant });
                    }
                }
                Action::DeliverKey { key, .. } => {
                    report.time_to_key_ms = Some(started.elapsed().as_secs_f64() * 1e3);
                    let check = key.check_value();
                    let mismatch = cfg.expect_check.as_ref().is_some_and(|e| *e != check);
                    report.check = Some(check);
                    // What the SDK's driver does once the key provider has the key: the short
                    // code's reveal goes to the participant, which decrypts it (part of the
                    // participants' load). The safety number is off (`safety_numbers`).
                    for after in machine.handle(Event::KeyHandedOver, now_ms(), &mut OsRng) {
                        if let Action::Send { body, .. } = after {
                            if !emit(&client, &body).await {
                                report.socket_error("reveal not sent".into());
                            }
                        }
                    }
                    return if mismatch {
                        Err("key_check_mismatch".into())
                    } else {
                        Ok(())
                    };
                }
                Action::Failed(failure) => {
                    // The failure lists every attempt of this run, rotations included.
                    report.attempt_failures = failure
                        .attempts()
                        .iter()
                        .map(|a| a.failure.code())
                        .collect();
                    return Err(failure_kind(&failure).into());
                }
                Action::Dropped(reason) => report.dropped.push(reason.code()),
                Action::Progress(Progress::Rotating { reason, .. }) => {
                    report.attempt_failures.push(reason.code())
                }
                Action::PersistState | Action::Progress(_) => {}
            }
        }
    }
}

/// Whether a bundle (contract §3) carries no one-time prekey: `pre_key` null or absent.
fn without_prekey(body: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(body)
        .is_ok_and(|b| b.get("pre_key").is_none_or(serde_json::Value::is_null))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn print_counts(title: &str, counts: &BTreeMap<String, usize>) {
    if counts.is_empty() {
        println!("{title}: none");
    } else {
        let parts: Vec<String> = counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("{title}: {}", parts.join(", "));
    }
}

fn print_latency(title: &str, mut values: Vec<f64>) {
    values.sort_by(|a, b| a.total_cmp(b));
    if values.is_empty() {
        println!("{title}: no samples");
        return;
    }
    println!(
        "{title} (n={}): p50 {:.1}, p95 {:.1}, p99 {:.1}, max {:.1}",
        values.len(),
        percentile(&values, 50.0),
        percentile(&values, 95.0),
        percentile(&values, 99.0),
        values[values.len() - 1]
    );
}

#[tokio::main]
async fn main() {
    let cfg = Arc::new(parse_args());
    let http = reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        // Node closes idle keep-alive sockets after 5 s; never reuse one that old.
        .pool_idle_timeout(Duration::from_secs(2))
        .build()
        .unwrap_or_else(|e| usage(&format!("HTTP client: {e}")));
    println!(
        "signal-guest-load: {} guests, concurrency {}, relay {}{}",
        cfg.guests,
        cfg.concurrency,
        cfg.relay,
        cfg.expect_check
            .as_deref()
            .map(|c| format!(", expecting key check {c}"))
            .unwrap_or_default()
    );

    // Each guest's keys first, outside the timed run: a real guest makes them on its own
    // machine before it registers (and the run measures the server and the participants).
    let keys_started = Instant::now();
    let mut stores: Vec<GuestState> = (0..cfg.guests)
        .map(|_| GuestState::new(ProtocolStore::generate(&mut OsRng, ONE_TIME_PREKEYS)))
        .collect();
    println!(
        "guest keys made in {:.1} s (not timed)",
        keys_started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let permits = Arc::new(Semaphore::new(cfg.concurrency));
    let mut tasks = Vec::with_capacity(cfg.guests);
    for (n, state) in stores.drain(..).enumerate() {
        let (cfg, http, permits) = (cfg.clone(), http.clone(), permits.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = permits.acquire_owned().await.expect("semaphore open");
            run_guest(n, state, cfg, http).await
        }));
    }
    let mut reports = Vec::with_capacity(cfg.guests);
    for task in tasks {
        reports.push(task.await.unwrap_or_else(|e| GuestReport {
            failure: Some(if e.is_panic() { "panic" } else { "cancelled" }.into()),
            ..GuestReport::default()
        }));
    }
    let wall = started.elapsed();

    let mut failures = BTreeMap::new();
    let mut attempt_failures = BTreeMap::new();
    let mut dropped = BTreeMap::new();
    let mut checks = BTreeMap::new();
    let mut socket_errors = 0;
    let mut first_socket_error = None;
    for r in &reports {
        if let Some(code) = &r.failure {
            *failures.entry(code.clone()).or_insert(0) += 1;
        }
        for code in &r.attempt_failures {
            *attempt_failures.entry(code.to_string()).or_insert(0) += 1;
        }
        for code in &r.dropped {
            *dropped.entry(code.to_string()).or_insert(0) += 1;
        }
        if let Some(check) = &r.check {
            *checks.entry(check.clone()).or_insert(0) += 1;
        }
        socket_errors += r.socket_errors;
        if first_socket_error.is_none() {
            first_socket_error = r.first_socket_error.clone();
        }
    }
    let passed = reports.iter().filter(|r| r.failure.is_none()).count();
    let failed = reports.len() - passed;

    println!("successes: {passed}");
    print_counts("failures by code", &failures);
    print_counts(
        "attempt failures by code (incl. rotations)",
        &attempt_failures,
    );
    print_counts("dropped events by reason", &dropped);
    print_counts("delivered key check values", &checks);
    match &first_socket_error {
        Some(first) => println!("socket error events: {socket_errors} (first: {first})"),
        None => println!("socket error events: 0"),
    }
    let mut times: Vec<f64> = reports.iter().filter_map(|r| r.time_to_key_ms).collect();
    times.sort_by(|a, b| a.total_cmp(b));
    print_latency("time-to-key ms", times.clone());
    print_latency(
        "setup ms (register + socket connect)",
        reports.iter().filter_map(|r| r.setup_ms).collect(),
    );
    let secs = wall.as_secs_f64();
    println!(
        "wall time: {:.2} s, {:.1} guests/s",
        secs,
        reports.len() as f64 / secs.max(1e-9)
    );
    // Every bot answers, so any timed-out request or dropped event is an event that got lost.
    let lost =
        attempt_failures.get("timeout").copied().unwrap_or(0) + dropped.values().sum::<usize>();
    let mut first_asked = BTreeMap::new();
    for device in reports.iter().filter_map(|r| r.first_asked.as_ref()) {
        *first_asked.entry(device.clone()).or_insert(0usize) += 1;
    }
    print_counts("first requests by device", &first_asked);
    let busiest_pct = first_asked.values().max().copied().unwrap_or(0) as f64 * 100.0
        / first_asked.values().sum::<usize>().max(1) as f64;
    let without_prekey: usize = reports.iter().map(|r| r.bundles_without_prekey).sum();
    println!(
        "load: {passed}/{} keys, p50 {:.1} ms, p99 {:.1} ms, {:.0} guests/s, busiest device {busiest_pct:.1}% \
         of first requests, {without_prekey} sessions without a one-time prekey, {lost} lost",
        reports.len(),
        percentile(&times, 50.0),
        percentile(&times, 99.0),
        reports.len() as f64 / secs.max(1e-9),
    );
    let mut broken = Vec::new();
    if let Some(max) = cfg.max_busiest_pct.filter(|max| busiest_pct > *max) {
        broken.push(format!("busiest device {busiest_pct:.1}% > {max}%"));
    }
    if cfg.expect_exhaustion && without_prekey == 0 {
        broken.push("no session without a one-time prekey".to_owned());
    }
    for b in &broken {
        println!("invariant broken: {b}");
    }
    // The last guests' sockets close after their linger (`guest`), before the process exits.
    tokio::time::sleep(LINGER * 2).await;
    // One test for the runner: all guests got the right key, nothing was lost, invariants hold.
    if failed == 0 && lost == 0 && broken.is_empty() {
        println!("1 passed, 0 failed");
    } else {
        println!("0 passed, 1 failed");
        std::process::exit(1);
    }
}
