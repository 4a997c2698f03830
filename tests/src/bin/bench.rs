//! `make bench`: cold start, AWS requests per delivered message, end-to-end throughput,
//! the dispatch burst and portal latency, each next to a reference measured in the same
//! run. Prints a table and writes `target/bench/latest.json`.
//!
//! Needs the release binaries of the functions and of the two references in
//! `tests/refs` (`make bench` builds them) and the project's virtualenv (the emulator
//! and the local stack). The tool itself runs as the dev build `make test` made. Every
//! loop is bounded in count and time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use chrono::Utc;
use serde_json::{json, Map, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

use consent::fakes::FakeCarrier;
use consent::ledger::{Actor, ConsentEvent, ConsentState, LedgerEntry};
use consent::message::{
    Message, MessageKind, MessageStatus, Origin, OutboundEnvelope, StatusChange,
};
use consent::ports::{ConsentWriter, Contact, ContactStore, Dealer, DealerStore, MessageWriter};
use consent::service::delivery::{deliver_envelope, DeliverPorts};
use consent::service::sending::{dispatch, request_send, DispatchPorts, SendPorts, SendRequest};
use consent::{Category, ContactId, DealerId, MessageId, PhoneNumber, StaffUserId};
use consent_adapters::{DynamoStore, SqsOutboundQueue};
use stack_tests::portal::daytime_zone;
use stack_tests::{repo_root, LocalStack, Stack};

const FUNCTIONS: [&str; 8] = [
    "authorize",
    "inbound",
    "send",
    "automate",
    "queues",
    "dispatch",
    "deliver",
    "publish",
];
const COLD_RUNS: usize = 31;
/// Secrets each function reads from Secrets Manager at init.
/// The secrets each binary reads at cold start (the references doing the same reads last).
const SECRETS_READ: [(&str, u32); 5] = [
    ("authorize", 1),
    ("inbound", 1),
    ("deliver", 2),
    ("sdk-floor-1-secret", 1),
    ("sdk-floor-2-secrets", 2),
];

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

// ------------------------------------------------------------------ cold start

/// One start: process spawn to the first request on a runtime API served here.
/// This machine's CA bundle, given to every measured binary as the template's `CaBundle`
/// gives it to the functions in AWS (`SSL_CERT_FILE`).
fn ca_bundle() -> Option<&'static str> {
    [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/cert.pem",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
}

/// When the bench's Secrets Manager answered each GetSecretValue.
#[derive(Clone, Default)]
struct SecretAnswers(Arc<Mutex<Vec<Instant>>>);

impl SecretAnswers {
    fn after(&self, since: Instant) -> Vec<Instant> {
        let all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        all.iter().copied().filter(|t| *t > since).collect()
    }
}

/// Secrets Manager as the functions see it at cold start: every GetSecretValue answered
/// with one secret, over real HTTP on loopback (what a cold start pays locally for each
/// read), each answer's time kept.
async fn serve_secrets() -> (std::net::SocketAddr, SecretAnswers) {
    let answers = SecretAnswers::default();
    let kept = answers.clone();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a local port for the secrets endpoint");
    let addr = listener.local_addr().expect("its address");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let kept = kept.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Bounded: one connection answers at most 100 requests.
                for _ in 0..100 {
                    let (head_end, length) = loop {
                        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                            let length = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            break (end + 4, length);
                        }
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    while buf.len() < head_end + length {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    buf.drain(..head_end + length);
                    let body = r#"{"ARN":"arn:aws:secretsmanager:us-east-1:000000000000:secret:bench","Name":"bench","SecretString":"bench-secret-value-0123456789abcdef","VersionId":"v1"}"#;
                    let answer = format!("HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\n\r\n{body}", body.len());
                    if stream.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                    kept.0
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(Instant::now());
                }
            });
        }
    });
    (addr, answers)
}

/// What one GetSecretValue costs a fresh container: a new client and connection, the
/// call, median of COLD_RUNS.
async fn secret_read_ms(secrets: std::net::SocketAddr) -> f64 {
    let mut times = Vec::new();
    for _ in 0..COLD_RUNS {
        let started = Instant::now();
        let conf = stack_tests::sdk_config(&format!("http://{secrets}")).await;
        let client = consent_adapters::aws_sdk_secretsmanager::Client::new(&conf);
        let got = client.get_secret_value().secret_id("bench").send().await;
        if got.is_ok() {
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    median(times)
}

/// One start: (ms to the first poll, peak RSS in kB, ms until the last of the `reads`
/// secrets it reads was answered, if it reads any).
async fn start_once(
    bin: &Path,
    name: &str,
    ca_bundle: Option<&str>,
    (secrets, answers): &(std::net::SocketAddr, SecretAnswers),
    reads: usize,
) -> Option<(f64, u64, Option<f64>)> {
    let secrets = *secrets;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.ok()?;
    let addr = listener.local_addr().ok()?;
    let mut cmd = tokio::process::Command::new(bin);
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("TABLE_NAME", "bench")
        .env(
            "OUTBOUND_QUEUE_URL",
            "http://127.0.0.1:9/000000000000/bench",
        )
        .env("EVENT_BUS_NAME", "bench")
        .env(
            "AWS_ENDPOINT_URL_SECRETS_MANAGER",
            format!("http://{secrets}"),
        )
        .env(
            "CODE_HASH_KEY_SECRET_ARN",
            "arn:aws:secretsmanager:us-east-1:000000000000:secret:code-hash-key",
        )
        .env(
            "TWILIO_AUTH_TOKEN_SECRET_ARN",
            "arn:aws:secretsmanager:us-east-1:000000000000:secret:twilio-auth-token",
        )
        .env("TWILIO_ACCOUNT_SID", "AC00000000000000000000000000000000")
        .env("CARRIER_BASE_URL", "http://127.0.0.1:9")
        .env("PUBLIC_BASE_URL", "http://127.0.0.1:9")
        .env("DUE_SHARDS", "16")
        .env("BENCH_SECRET_READS", reads.to_string())
        .env("RUST_LOG", "info")
        .envs(ca_bundle.map(|b| ("SSL_CERT_FILE", b)))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let started = Instant::now();
    let mut child = cmd.spawn().ok()?;
    let pid = child.id()?;
    let accepted = tokio::time::timeout(Duration::from_secs(10), async {
        let (stream, _) = listener.accept().await.ok()?;
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).await.ok()?;
        line.contains("/runtime/invocation/next").then_some(())
    })
    .await;
    let init_ms = started.elapsed().as_secs_f64() * 1000.0;
    let rss_kb = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0);
    // The secrets are read off the init path: wait (bounded) for their answers too.
    let mut secrets_ms = None;
    if reads > 0 {
        let until = Instant::now() + Duration::from_secs(2);
        while answers.after(started).len() < reads && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let got = answers.after(started);
        secrets_ms = (got.len() >= reads)
            .then(|| {
                got.iter()
                    .max()
                    .map(|t| (*t - started).as_secs_f64() * 1000.0)
            })
            .flatten();
    }
    let _ = child.kill().await;
    matches!(accepted, Ok(Some(()))).then_some((init_ms, rss_kb, secrets_ms))
}

/// One binary's starts, summarized.
#[derive(Default)]
struct Starts {
    inits: Vec<f64>,
    rss_kb: Vec<f64>,
    secrets_answered: Vec<f64>,
    /// The first poll, or the last secret's answer if later: ready for any event.
    ready: Vec<f64>,
}

impl Starts {
    fn summary(&self, bin: &Path, reads: usize) -> Value {
        let size = std::fs::metadata(bin).map(|m| m.len()).unwrap_or(0);
        let mut v = json!({
            "init_ms_median": round(median(self.inits.clone()), 2),
            "peak_rss_mb_median": round(median(self.rss_kb.clone()) / 1024.0, 1),
            "binary_mb": round(size as f64 / 1_048_576.0, 2),
            "starts": self.inits.len(),
        });
        if reads > 0 {
            v["secrets_read"] = json!(reads);
            v["secrets_answered_ms_median"] =
                json!(round(median(self.secrets_answered.clone()), 2));
            v["secrets_answered_in"] = json!(self.secrets_answered.len());
            v["ready_ms_median"] = json!(round(median(self.ready.clone()), 2));
        }
        v
    }
}

/// COLD_RUNS starts of each binary, taken in rounds (one start of each binary per round, in
/// a shuffled order), so a slower minute of the machine falls on every binary alike and the
/// ratios hold.
async fn cold_starts(
    binaries: &[(PathBuf, &str, Option<&str>)],
    secrets: &(std::net::SocketAddr, SecretAnswers),
) -> Vec<Value> {
    let reads = |name: &str| {
        SECRETS_READ
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, k)| *k as usize)
    };
    let mut starts: Vec<Starts> = binaries.iter().map(|_| Starts::default()).collect();
    let mut order: Vec<usize> = (0..binaries.len()).collect();
    let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
    for _ in 0..COLD_RUNS {
        // A new order each round (Fisher-Yates on a xorshift), so no binary always follows
        // the same one (the one before may still be leaving the machine's caches).
        for i in (1..order.len()).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            order.swap(i, (seed % (i as u64 + 1)) as usize);
        }
        for &i in &order {
            let (bin, name, bundle) = &binaries[i];
            if let Some((ms, kb, secrets_ms)) =
                start_once(bin, name, *bundle, secrets, reads(name)).await
            {
                starts[i].inits.push(ms);
                starts[i].rss_kb.push(kb as f64);
                starts[i].secrets_answered.extend(secrets_ms);
                starts[i].ready.push(secrets_ms.map_or(ms, |s| s.max(ms)));
            }
        }
    }
    binaries
        .iter()
        .zip(&starts)
        .map(|((bin, name, _), s)| s.summary(bin, reads(name)))
        .collect()
}

async fn cold_start(release: &Path) -> Value {
    let bundle = ca_bundle();
    let secrets = serve_secrets().await;
    // The references, then the same floor without SSL_CERT_FILE (the SDK's HTTPS client then
    // reads the bundle and every file of the certificate directory at each cold start), then
    // the functions.
    let mut binaries = vec![
        (release.join("hello-lambda"), "hello", bundle),
        (release.join("sdk-floor"), "sdk-floor", bundle),
        (release.join("sdk-floor"), "sdk-floor", None),
    ];
    // The floor that also reads one or two secrets at init as the functions do (started, not
    // awaited): what the SDK itself costs a function that needs secrets.
    binaries.push((
        release.join("sdk-floor-secrets"),
        "sdk-floor-1-secret",
        bundle,
    ));
    binaries.push((
        release.join("sdk-floor-secrets"),
        "sdk-floor-2-secrets",
        bundle,
    ));
    binaries.extend(FUNCTIONS.iter().map(|f| (release.join(f), *f, bundle)));
    let mut measured = cold_starts(&binaries, &secrets).await.into_iter();
    let mut next = || measured.next().unwrap_or(Value::Null);
    let (reference, floor, scanning) = (next(), next(), next());
    let floor_with_secrets = [next(), next()];
    let secret_ms = secret_read_ms(secrets.0).await;
    let ref_ms = reference["init_ms_median"].as_f64().unwrap_or(f64::NAN);
    let floor_ms = floor["init_ms_median"].as_f64().unwrap_or(f64::NAN);
    let mut functions = Map::new();
    for f in FUNCTIONS {
        let mut v = next();
        let ms = v["init_ms_median"].as_f64().unwrap_or(f64::NAN);
        v["vs_hello_world"] = json!(round(ms / ref_ms, 2));
        v["vs_sdk_floor"] = json!(round(ms / floor_ms, 2));
        // Ready for any event: compared with the plain floor and with the floor that makes
        // the same secret reads.
        let reads = SECRETS_READ
            .iter()
            .find(|(n, _)| *n == f)
            .map_or(0, |(_, k)| *k as usize);
        let ready = v["ready_ms_median"].as_f64().unwrap_or(ms);
        v["ready_vs_sdk_floor"] = json!(round(ready / floor_ms, 2));
        if let Some(same) = reads.checked_sub(1).and_then(|i| floor_with_secrets.get(i)) {
            let same_ms = same["ready_ms_median"].as_f64().unwrap_or(f64::NAN);
            v["ready_vs_sdk_floor_with_the_same_reads"] = json!(round(ready / same_ms, 2));
        }
        functions.insert(f.to_owned(), v);
    }
    json!({
        "method": format!("median of {COLD_RUNS} starts, taken in rounds of one start of each binary in a shuffled order (references and functions interleaved): process spawn to the first GET /runtime/invocation/next on a runtime API served by the bench; peak RSS (VmHWM) at that moment; release binaries as deployed (LTO, stripped, position-dependent: infra/local/release.py); every binary gets SSL_CERT_FILE as the template sets it (CaBundle). Secrets are read off the init path: secrets_answered_ms is spawn to the bench's Secrets Manager answering the function's last read (the first event that needs a secret waits until then)"),
        "goal": "ready (the first poll, or the last secret's answer if later) within 1.25x of the SDK floor measured here, the secrets read included: a function that reads secrets at cold start against the floor making the same reads (ready_vs_sdk_floor_with_the_same_reads), the others against the plain floor (vs_sdk_floor; issue 17; the design's target is 3x hello-world); RSS under 30 MB",
        "reference": {
            "hello_world": reference,
            "sdk_floor": floor,
            "sdk_floor_what": "hello-world + aws_config::load_defaults + DynamoDB, SQS and EventBridge clients: what every function needs before its first poll, nothing of ours",
            "sdk_floor_without_ca_bundle": scanning,
            "sdk_floor_with_1_secret": floor_with_secrets[0],
            "sdk_floor_with_2_secrets": floor_with_secrets[1],
            "sdk_floor_with_secrets_what": "the SDK floor plus one or two GetSecretValue calls started as tasks at init and not awaited before the first poll (as the functions read theirs), answered by the bench's Secrets Manager",
        },
        "ca_bundle": bundle,
        "secrets": {
            "get_secret_value_ms_median": round(secret_ms, 2),
            "what": "one GetSecretValue from a fresh container (new SDK config, client and connection) to a Secrets Manager endpoint on loopback; authorize and inbound read one secret at cold start, deliver two, all off the init path; in AWS add the same-region network round trip",
        },
        "functions": functions,
    })
}

// ------------------------------------------------------------------ request counting

#[derive(Debug, Clone, Default)]
struct Counter(Arc<Mutex<BTreeMap<String, u64>>>);

impl Counter {
    fn take(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Intercept for Counter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(m) = cfg.load::<Metadata>() {
            *self
                .0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(format!("{}.{}", m.service(), m.name()))
                .or_default() += 1;
        }
        Ok(())
    }
}

struct Counted {
    store: DynamoStore,
    /// As the send function wires it: dealer settings cached per container.
    dealers: consent_adapters::CachedDealers<DynamoStore>,
    queue: SqsOutboundQueue,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    counter: Counter,
    dealer: DealerId,
    contact: ContactId,
}

impl Counted {
    async fn new(stack: &Stack) -> Counted {
        let counter = Counter::default();
        let ddb = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&stack.sdk)
                .interceptor(counter.clone())
                .build(),
        );
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(&stack.sdk)
                .interceptor(counter.clone())
                .build(),
        );
        let queue_url = stack.var("OUTBOUND_QUEUE_URL").to_owned();
        let store = DynamoStore::new(ddb, stack.var("TABLE_NAME"), 16);
        let dealer = DealerId::parse("bench-dealer").unwrap_or_else(|e| panic!("{e}"));
        let contact = ContactId::parse("C-1").unwrap_or_else(|e| panic!("{e}"));
        let phone = PhoneNumber::from_e164("+12025550143").unwrap_or_else(|e| panic!("{e}"));
        store
            .put_dealer(
                &Dealer {
                    id: dealer.clone(),
                    name: "Bench Motors".into(),
                    texting_number: PhoneNumber::from_e164("+12025550100")
                        .unwrap_or_else(|e| panic!("{e}")),
                    help_contact: None,
                    time_zone: None,
                },
                None,
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        store
            .put_contact(
                &Contact {
                    id: contact.clone(),
                    dealer_id: dealer.clone(),
                    name: "Ann".into(),
                    phone: phone.clone(),
                    account_ids: vec![],
                    deal_ids: vec![],
                    time_zone: Some(daytime_zone(Utc::now())),
                    updated_at: Utc::now(),
                },
                None,
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let grant = LedgerEntry::new(
            &dealer,
            &phone,
            Category::Accounting,
            ConsentEvent::GrantedByCode,
            Actor::Phone,
            Utc::now(),
        );
        store
            .append(
                &dealer,
                &phone,
                0,
                std::slice::from_ref(&grant),
                &ConsentState::from_ledger([&grant]),
                &[],
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let queue = SqsOutboundQueue::new(sqs.clone(), queue_url.clone());
        counter.take();
        let dealers = consent_adapters::CachedDealers::new(
            store.clone(),
            consent_adapters::cache::DEALER_TTL,
        );
        Counted {
            store,
            dealers,
            queue,
            sqs,
            queue_url,
            counter,
            dealer,
            contact,
        }
    }

    fn send_ports(&self) -> SendPorts<'_> {
        SendPorts {
            dealers: &self.dealers,
            contacts: &self.store,
            templates: &self.store,
            consent: &self.store,
            messages: &self.store,
            queue: &self.queue,
            number_pool: &[],
        }
    }

    async fn send(&self, i: usize, scheduled: bool) {
        let variables = json!({"firstName": "Ann", "amount": "412.50", "dueDate": "2026-12-01", "paymentUrl": "https://pay.example.com/a1"});
        let request = SendRequest {
            contact_id: self.contact.clone(),
            template: "auto-pay-failure".into(),
            variables: variables.as_object().cloned().unwrap_or_default(),
            notes: None,
            scheduled_at: scheduled.then(|| Utc::now() + chrono::Duration::seconds(2)),
            account_id: None,
            deal_id: None,
        };
        let staff = StaffUserId::parse("staff-1").unwrap_or_else(|e| panic!("{e}"));
        let key = format!("bench-{scheduled}-{i}-{}", std::process::id());
        request_send(
            &self.send_ports(),
            &self.dealer,
            Origin::Staff { user: staff },
            request,
            Some((key.clone(), key)),
            Utc::now(),
        )
        .await
        .unwrap_or_else(|e| panic!("send: {e}"));
    }

    /// The deliver function's ports on `carrier`, as the function wires them.
    fn deliver_ports<'a>(
        &'a self,
        carrier: &'a FakeCarrier,
        codes: &'a consent::approval::CodeHasher,
    ) -> DeliverPorts<'a> {
        DeliverPorts {
            consent: &self.store,
            consent_writer: &self.store,
            messages: &self.store,
            carrier,
            work: &self.store,
            pending: &self.store,
            codes,
        }
    }

    /// The event source mapping's ReceiveMessage: up to 10 records.
    async fn receive(&self, wait_seconds: i32) -> Vec<aws_sdk_sqs::types::Message> {
        self.sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait_seconds)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .messages
            .unwrap_or_default()
    }

    /// The deliver function's work on a batch.
    async fn deliver_records(
        &self,
        ports: &DeliverPorts<'_>,
        records: &[aws_sdk_sqs::types::Message],
    ) {
        for r in records {
            let env: OutboundEnvelope = serde_json::from_str(r.body.as_deref().unwrap_or(""))
                .unwrap_or_else(|e| panic!("{e}"));
            deliver_envelope(ports, &env, 1, None, Utc::now())
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }

    /// The event source mapping's DeleteMessageBatch of a batch that succeeded.
    async fn delete(&self, records: &[aws_sdk_sqs::types::Message]) {
        if records.is_empty() {
            return;
        }
        let entries = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(r.receipt_handle.clone().unwrap_or_default())
                    .build()
                    .unwrap_or_else(|e| panic!("{e}"))
            })
            .collect();
        self.sqs
            .delete_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Plays the SQS event source mapping (receive 10, invoke deliver, delete) until
    /// `count` messages were delivered.
    async fn deliver_all(&self, count: usize) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
        let carrier = FakeCarrier::new();
        let codes = bench_code_key();
        let ports = self.deliver_ports(&carrier, &codes);
        let mut function = BTreeMap::new();
        let mut mapping = BTreeMap::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while carrier.sent().len() < count && Instant::now() < deadline {
            let records = self.receive(1).await;
            add(&mut mapping, self.counter.take());
            self.deliver_records(&ports, &records).await;
            add(&mut function, self.counter.take());
            self.delete(&records).await;
            add(&mut mapping, self.counter.take());
        }
        assert_eq!(carrier.sent().len(), count, "every message delivered once");
        (function, mapping)
    }
}

fn bench_code_key() -> consent::approval::CodeHasher {
    consent::approval::CodeHasher::new("bench-code-key-0123456789")
        .unwrap_or_else(|e| panic!("{e}"))
}

fn add(into: &mut BTreeMap<String, u64>, from: BTreeMap<String, u64>) {
    for (k, v) in from {
        *into.entry(k).or_default() += v;
    }
}

fn per_message(counts: &BTreeMap<String, u64>, n: usize) -> (Value, f64) {
    let total: u64 = counts.values().sum();
    let map: Map<String, Value> = counts
        .iter()
        .map(|(k, v)| (k.clone(), json!(round(*v as f64 / n as f64, 2))))
        .collect();
    (Value::Object(map), round(total as f64 / n as f64, 2))
}

async fn requests_per_message() -> Value {
    const N: usize = 20;
    let stack = Stack::create("bench-requests").await;
    let c = Counted::new(&stack).await;
    // Immediate: the send function's work, then the deliver function's.
    for i in 0..N {
        c.send(i, false).await;
    }
    let send_counts = c.counter.take();
    let (deliver_counts, mapping_immediate) = c.deliver_all(N).await;
    // Scheduled: send, then the dispatch run when due, then deliver.
    for i in 0..N {
        c.send(i, true).await;
    }
    let scheduled_send = c.counter.take();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ports = DispatchPorts {
        consent: &c.store,
        due: &c.store,
        messages: &c.store,
        queue: &c.queue,
    };
    let report = dispatch(&ports, 0..c.store.due_shards(), Utc::now(), 500)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        report.queued, N,
        "dispatch queued every due message: {report:?}"
    );
    let dispatch_counts = c.counter.take();
    let (scheduled_deliver, mapping_scheduled) = c.deliver_all(N).await;

    let mut immediate = BTreeMap::new();
    add(&mut immediate, send_counts.clone());
    add(&mut immediate, deliver_counts.clone());
    let mut scheduled = BTreeMap::new();
    add(&mut scheduled, scheduled_send.clone());
    add(&mut scheduled, dispatch_counts.clone());
    add(&mut scheduled, scheduled_deliver.clone());
    let (imm_ops, imm_total) = per_message(&immediate, N);
    let (sch_ops, sch_total) = per_message(&scheduled, N);
    let (imm_map, imm_map_total) = per_message(&mapping_immediate, N);
    let (sch_map, sch_map_total) = per_message(&mapping_scheduled, N);
    json!({
        "method": format!("{N} messages each way through the services with the real adapters on the emulator; an SDK interceptor counts every request by service and operation; the event source mapping's receive/delete are counted apart (Lambda makes them)"),
        "immediate": {
            "by_operation": imm_ops,
            "total": imm_total,
            "send_function": per_message(&send_counts, N).1,
            "deliver_function": per_message(&deliver_counts, N).1,
            "event_source_mapping": {"by_operation": imm_map, "total": imm_map_total},
        },
        "scheduled": {
            "by_operation": sch_ops,
            "total": sch_total,
            "send_function": per_message(&scheduled_send, N).1,
            "dispatch_function": per_message(&dispatch_counts, N).1,
            "deliver_function": per_message(&scheduled_deliver, N).1,
            "event_source_mapping": {"by_operation": sch_map, "total": sch_map_total},
        },
        "reference": {
            "design_minimum": {
                "immediate": 6,
                "scheduled": 6.1,
                "explanation": "immediate: send reads the contact and the consent, writes the message with its idempotency key (one transaction) and queues it; deliver claims it with the consent re-check in one transaction and records the result. Scheduled: the same without the queue send, plus dispatch marking it queued and 1/10 of a SendMessageBatch (the due-index queries are shared by every message of a run). Dealer settings come from a per-container cache",
            },
            "goal": {"immediate": 6, "scheduled": 8},
        },
    })
}

// ------------------------------------------------------------------ the local stack

async fn raw_emulator_rate(stack: &LocalStack) -> f64 {
    // GetItem round trips on a throwaway key, 8 at a time for 3 s: what the stack's
    // emulator itself can do on this machine, the ceiling of everything above it.
    let sdk = stack_tests::sdk_config(&stack.emulator).await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = stack
        .resources
        .get("TABLE_NAME")
        .cloned()
        .unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(3);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (ddb, table) = (ddb.clone(), table.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                let key = std::collections::HashMap::from([
                    (
                        "PK".to_owned(),
                        aws_sdk_dynamodb::types::AttributeValue::S(format!("RAW#{w}")),
                    ),
                    (
                        "SK".to_owned(),
                        aws_sdk_dynamodb::types::AttributeValue::S("X".into()),
                    ),
                ]);
                if ddb
                    .get_item()
                    .table_name(&table)
                    .set_key(Some(key))
                    .send()
                    .await
                    .is_ok()
                {
                    n += 1;
                }
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap_or(0);
    }
    total as f64 / started.elapsed().as_secs_f64()
}

/// The emulator's raw rate in texts: the requests a text makes (the send service's, the
/// event source mapping's receive and delete, the deliver service's) sent straight to the
/// stack's emulator through the real adapters, by 8 senders and 8 deliverers at once, with
/// no gateway, Lambda service or bridge between: what the local stack would do if
/// everything above the emulator cost nothing. Its own table and queue (the running
/// bridge does not see them).
async fn raw_text_rate(stack: &LocalStack, client: &reqwest::Client, texts: usize) -> Value {
    const WORKERS: usize = 8;
    let counted =
        Arc::new(Counted::new(&Stack::create_on("bench-raw", &stack.emulator).await).await);
    let operations_before = emulator_operations(client, &stack.emulator).await;
    let carrier = Arc::new(FakeCarrier::new());
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(300);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..WORKERS {
        let (c, next) = (counted.clone(), next.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= texts || Instant::now() > deadline {
                    break;
                }
                c.send(i, false).await;
            }
        });
        let (c, carrier) = (counted.clone(), carrier.clone());
        tasks.spawn(async move {
            let codes = bench_code_key();
            let ports = c.deliver_ports(&carrier, &codes);
            while carrier.sent().len() < texts && Instant::now() < deadline {
                let records = c.receive(1).await;
                c.deliver_records(&ports, &records).await;
                c.delete(&records).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let secs = started.elapsed().as_secs_f64();
    let delivered = carrier.sent().len();
    let operations_after = emulator_operations(client, &stack.emulator).await;
    json!({
        "texts": delivered,
        "seconds": round(secs, 1),
        "texts_per_second": round(delivered as f64 / secs, 2),
        "emulator_work": emulator_work(&operations_before, &operations_after, secs, delivered),
    })
}

struct Http {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Http {
    async fn timed(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        key: Option<String>,
    ) -> (u16, f64) {
        let started = Instant::now();
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        let status = match req.send().await {
            Ok(r) => {
                let s = r.status().as_u16();
                let _ = r.bytes().await;
                s
            }
            Err(_) => 0,
        };
        (status, started.elapsed().as_secs_f64() * 1000.0)
    }
}

fn send_body(scheduled: bool) -> Value {
    let mut b = json!({"contactId": "C-1", "template": "auto-pay-failure", "variables": {"firstName": "Ann", "amount": "412.50", "dueDate": "2026-12-01", "paymentUrl": "https://pay.example.com/a1"}});
    if scheduled {
        b["scheduledAt"] = json!((Utc::now() + chrono::Duration::days(30)).to_rfc3339());
    }
    b
}

async fn run_concurrent<F, Fut>(total: usize, concurrency: usize, make: F) -> (Vec<f64>, usize, f64)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = (u16, f64)> + Send,
{
    let make = Arc::new(make);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (make, next) = (make.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(300);
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total || Instant::now() > deadline {
                    break;
                }
                out.push(make(i).await);
            }
            out
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in tasks {
        for (status, ms) in t.await.unwrap_or_default() {
            if (200..300).contains(&status) {
                latencies.push(ms);
            } else {
                errors += 1;
            }
        }
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    (latencies, errors, started.elapsed().as_secs_f64())
}

fn latency_summary(lat: &[f64], errors: usize) -> Value {
    json!({"p50_ms": round(percentile(lat, 0.5), 1), "p99_ms": round(percentile(lat, 0.99), 1), "requests": lat.len(), "errors": errors})
}

async fn portal(stack: &LocalStack) -> Arc<Http> {
    let http = Arc::new(Http {
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(16)
            .build()
            .unwrap_or_else(|e| panic!("{e}")),
        base: stack.gateway.clone(),
        token: stack.token("bench-dealer", "staff-1"),
    });
    let (s, _) = http
        .timed(
            reqwest::Method::PUT,
            "/v1/dealer",
            Some(json!({"name": "Bench Motors", "textingNumber": "+12025550100"})),
            None,
        )
        .await;
    assert_eq!(s, 200, "dealer settings");
    for (i, phone) in ["(202) 555-0143", "(202) 555-0144", "(202) 555-0145"]
        .iter()
        .enumerate()
    {
        let (s, _) = http
            .timed(reqwest::Method::PUT, &format!("/v1/contacts/C-{}", i + 1), Some(json!({"name": "Ann", "phone": phone, "accountIds": ["A-1"], "timeZone": daytime_zone(Utc::now())})), None)
            .await;
        assert!(s == 200 || s == 201, "contact {s}");
    }
    // Consent by code, read from the fake carrier, as a user would.
    let (s, _) = http
        .timed(
            reqwest::Method::POST,
            "/v1/contacts/C-1/authorizations",
            Some(json!({"category": "accounting"})),
            None,
        )
        .await;
    assert_eq!(s, 202);
    let deadline = Instant::now() + Duration::from_secs(60);
    let code = loop {
        let list: Vec<Value> = http
            .client
            .get(format!("{}/messages?to=%2B12025550143", stack.carrier))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .json()
            .await
            .unwrap_or_default();
        if let Some(code) = list
            .iter()
            .rev()
            .filter_map(|m| m["body"].as_str())
            .find_map(|b| {
                b.split(|c: char| !c.is_ascii_digit())
                    .find(|t| t.len() == 6)
                    .map(str::to_owned)
            })
        {
            break code;
        }
        assert!(Instant::now() < deadline, "no code text");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let (s, _) = http
        .timed(
            reqwest::Method::POST,
            "/v1/contacts/C-1/authorizations/accounting/verify",
            Some(json!({"code": code})),
            None,
        )
        .await;
    assert_eq!(s, 200, "verify");
    http
}

async fn latency(http: &Arc<Http>) -> Value {
    const N: usize = 200;
    const C: usize = 8;
    let h = http.clone();
    let (health, he, _) = run_concurrent(N, C, move |_| {
        let h = h.clone();
        async move {
            h.timed(reqwest::Method::GET, "/v1/health", None, None)
                .await
        }
    })
    .await;
    let h = http.clone();
    let (list, le, _) = run_concurrent(N, C, move |_| {
        let h = h.clone();
        async move {
            h.timed(
                reqwest::Method::GET,
                "/v1/accounts/A-1/contacts",
                None,
                None,
            )
            .await
        }
    })
    .await;
    let h = http.clone();
    let pid = std::process::id();
    let (send, se, _) = run_concurrent(N, C, move |i| {
        let h = h.clone();
        async move {
            h.timed(
                reqwest::Method::POST,
                "/v1/messages",
                Some(send_body(true)),
                Some(format!("lat-{pid}-{i}")),
            )
            .await
        }
    })
    .await;
    json!({
        "method": format!("{N} requests each at concurrency {C} through the local gateway (Python) to the local Lambda service (release builds as deployed, several instances per function) on the emulator"),
        "list_contacts": latency_summary(&list, le),
        "send": latency_summary(&send, se),
        "reference": {"trivial_endpoint_health": latency_summary(&health, he)},
    })
}

/// Texts in the throughput run: 2,000 (about 2.5 minutes here); `BENCH_MESSAGES=N` for
/// a quicker or a longer run.
fn throughput_messages() -> usize {
    std::env::var("BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

async fn throughput(stack: &LocalStack, http: &Arc<Http>) -> Value {
    let n_messages = throughput_messages();
    let carrier = stack.carrier.clone();
    let count_delivered = move |client: reqwest::Client| {
        let carrier = carrier.clone();
        async move {
            let list: Vec<Value> = client
                .get(format!("{carrier}/messages?to=%2B12025550143"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            Some(
                list.iter()
                    .filter(|m| m["body"].as_str().is_some_and(|b| b.contains("$412.50")))
                    .count(),
            )
        }
    };
    let before = count_delivered(http.client.clone()).await.unwrap_or(0);
    let raw = raw_emulator_rate(stack).await;
    let raw_texts = raw_text_rate(stack, &http.client, (n_messages / 4).clamp(50, 500)).await;
    let log_from = std::fs::metadata(&stack.log).map(|m| m.len()).unwrap_or(0);
    let operations_before = emulator_operations(&http.client, &stack.emulator).await;
    let h = http.clone();
    let pid = std::process::id();
    let started = Instant::now();
    let (_, errors, accept_secs) = run_concurrent(n_messages, 8, move |i| {
        let h = h.clone();
        async move {
            h.timed(
                reqwest::Method::POST,
                "/v1/messages",
                Some(send_body(false)),
                Some(format!("tp-{pid}-{i}")),
            )
            .await
        }
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(420);
    let mut delivered = 0;
    while Instant::now() < deadline {
        delivered = count_delivered(http.client.clone())
            .await
            .unwrap_or(0)
            .saturating_sub(before);
        if delivered >= n_messages - errors {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    let rate = delivered as f64 / secs;
    let operations_after = emulator_operations(&http.client, &stack.emulator).await;
    let emulator = emulator_work(&operations_before, &operations_after, secs, delivered);
    let served_rate = emulator["requests_per_second"].as_f64().unwrap_or(f64::NAN);
    let raw_texts_rate = raw_texts["texts_per_second"].as_f64().unwrap_or(f64::NAN);
    // Let the last status callbacks and stream events land before reading the log.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let work = FunctionWork::read(&stack.log, log_from);
    json!({
        "method": format!("{n_messages} POST /v1/messages at concurrency 8 through the local stack (release builds, each function in up to {} instances, one texting number without a sending rate), until all are at the fake carrier. References in the same run, on the same emulator: its raw rate in texts (the requests a text makes, sent straight to it through the real adapters by 8 senders and 8 deliverers, no gateway, Lambda service or bridge) and its raw GetItem rate at concurrency 8. emulator_work: the emulator's CPU (one Python process: 1.0 is all it has) and requests during the run, from its /_local/operations", DEFAULT_LAMBDA_CONCURRENCY),
        "goal": "at least a quarter of the emulator's raw rate, both counted in texts (ratio_delivered_to_raw_texts >= 0.25)",
        "function_work": work.per_text(delivered.max(1)),
        "messages": n_messages,
        "accepted_errors": errors,
        "delivered": delivered,
        "accept_seconds": round(accept_secs, 1),
        "end_to_end_seconds": round(secs, 1),
        "delivered_per_second": round(rate, 1),
        "reference": {
            "emulator_raw_requests_per_second": round(raw, 1),
            "emulator_raw_texts": raw_texts,
        },
        "ratio_delivered_to_raw_texts": round(rate / raw_texts_rate, 3),
        "ratio_delivered_to_raw_requests": round(rate / raw, 4),
        "emulator_requests_served_per_second": round(served_rate, 1),
        "ratio_emulator_requests_served_to_raw": round(served_rate / raw, 3),
        "emulator_work": emulator,
    })
}

/// What the emulator reports at `/_local/operations` (infra/local/emulator.py): its CPU
/// seconds and, per operation, requests and CPU seconds.
async fn emulator_operations(client: &reqwest::Client, emulator: &str) -> Value {
    match client
        .get(format!("{emulator}/_local/operations"))
        .send()
        .await
    {
        Ok(r) => r.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

/// The emulator's work between two readings: its share of one core (moto is one Python
/// process: near 1.0 it is the bottleneck) and the operations that used the most CPU.
fn emulator_work(before: &Value, after: &Value, secs: f64, texts: usize) -> Value {
    let f = |v: &Value| v.as_f64().unwrap_or(0.0);
    let cpu = f(&after["cpu_seconds"]) - f(&before["cpu_seconds"]);
    let waited = f(&after["dynamodb_wait_seconds"]) - f(&before["dynamodb_wait_seconds"]);
    let mut ops: Vec<(String, f64, f64)> = after["operations"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let b = &before["operations"][k];
                    (
                        k.clone(),
                        f(&v["requests"]) - f(&b["requests"]),
                        f(&v["cpu_seconds"]) - f(&b["cpu_seconds"]),
                    )
                })
                .filter(|(_, n, _)| *n > 0.0)
                .collect()
        })
        .unwrap_or_default();
    ops.sort_by(|a, b| b.2.total_cmp(&a.2));
    let n = texts.max(1) as f64;
    let top: Map<String, Value> = ops
        .iter()
        .take(12)
        .map(|(k, requests, cpu)| {
            (
                k.clone(),
                json!({"requests_per_text": round(requests / n, 2), "cpu_ms_per_request": round(cpu * 1000.0 / requests.max(1.0), 2), "cpu_ms_per_text": round(cpu * 1000.0 / n, 2)}),
            )
        })
        .collect();
    json!({
        "cpu_seconds_per_second": round(cpu / secs, 3),
        "cpu_ms_per_text": round(cpu * 1000.0 / n, 1),
        "dynamodb_wait_seconds_per_second": round(waited / secs, 3),
        "requests_per_second": round(ops.iter().map(|o| o.1).sum::<f64>() / secs, 1),
        "requests_per_text": round(ops.iter().map(|o| o.1).sum::<f64>() / n, 1),
        "by_operation": top,
    })
}

// ------------------------------------------------------------------ dispatch burst

/// The burst at two sizes, so the time per text as it grows is visible.
async fn dispatch_bursts() -> Value {
    let small = dispatch_burst(1_000).await;
    let large = dispatch_burst(10_000).await;
    let per_1000 = |v: &Value| {
        v["seconds_until_all_queued"].as_f64().unwrap_or(f64::NAN)
            / v["messages"].as_f64().unwrap_or(f64::NAN)
            * 1000.0
    };
    let (a, b) = (per_1000(&small), per_1000(&large));
    let mut out = large.clone();
    out["seconds_per_1000_texts"] = json!({"at_1000": round(a, 2), "at_10000": round(b, 2)});
    out["growth_10000_vs_1000"] = json!(round(b / a, 2));
    out["at_1000"] = small;
    out
}

async fn dispatch_burst(n: usize) -> Value {
    let stack = Stack::create("bench-burst").await;
    let c = Counted::new(&stack).await;
    let due = Utc::now() + chrono::Duration::seconds(20);
    let phone = PhoneNumber::from_e164("+12025550143").unwrap_or_else(|e| panic!("{e}"));
    let store = Arc::new(c.store.clone());
    let seeding = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (store, next, dealer, phone) =
            (store.clone(), next.clone(), c.dealer.clone(), phone.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let m = burst_message(
                    &dealer,
                    &phone,
                    due + chrono::Duration::milliseconds((i % 40_000) as i64),
                );
                let _ = store.create(&m, None).await;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let seed_secs = seeding.elapsed().as_secs_f64();
    // The emulator's raw SendMessageBatch rate, same queue, same run.
    let raw_started = Instant::now();
    let mut raw_sent = 0;
    while raw_started.elapsed() < Duration::from_secs(3) {
        let entries: Vec<_> = (0..10)
            .map(|i| {
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body("{}")
                    .build()
                    .unwrap_or_else(|e| panic!("{e}"))
            })
            .collect();
        if c.sqs
            .send_message_batch()
            .queue_url(&c.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .is_ok()
        {
            raw_sent += 10;
        }
    }
    let raw_rate = raw_sent as f64 / raw_started.elapsed().as_secs_f64();
    c.sqs
        .purge_queue()
        .queue_url(&c.queue_url)
        .send()
        .await
        .ok();
    // Wait until the minute is due, then dispatch like the function does (passes until done).
    let wait = (due - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait).await;
    c.counter.take();
    let ports = DispatchPorts {
        consent: &c.store,
        due: &c.store,
        messages: &c.store,
        queue: &c.queue,
    };
    let started = Instant::now();
    let mut queued = 0;
    while queued < n && started.elapsed() < Duration::from_secs(300) {
        let report = dispatch(
            &ports,
            0..c.store.due_shards(),
            Utc::now() + chrono::Duration::seconds(60),
            1000,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        queued += report.queued;
        if report.queued == 0 {
            break;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let counts = c.counter.take();
    let (ops, total) = per_message(&counts, n);
    json!({
        "method": format!("{n} messages due in the same minute across {} shards, created on the emulator; dispatch passes (as the function runs them) until all are queued", c.store.due_shards()),
        "messages": n,
        "queued": queued,
        "seconds_until_all_queued": round(secs, 1),
        "queued_per_second": round(queued as f64 / secs, 1),
        "requests_per_message": {"by_operation": ops, "total": total},
        "seed_seconds": round(seed_secs, 1),
        "reference": {"emulator_raw_send_message_batch_messages_per_second": round(raw_rate, 1)},
        "ratio_to_raw_send_message_batch": round((queued as f64 / secs) / raw_rate, 3),
    })
}

fn burst_message(dealer: &DealerId, phone: &PhoneNumber, at: chrono::DateTime<Utc>) -> Message {
    let body = "Bench Motors: your automatic payment did not go through. Reply STOP to opt out."
        .to_owned();
    Message {
        id: MessageId::generate(),
        dealer_id: dealer.clone(),
        kind: MessageKind::Template,
        contact_id: None,
        to: phone.clone(),
        from: PhoneNumber::from_e164("+12025550100").unwrap_or_else(|e| panic!("{e}")),
        category: Category::Accounting,
        template: Some("auto-pay-failure".into()),
        template_version: Some(1),
        encoding: consent::sms::encoding(&body),
        segments: consent::sms::segments(&body),
        body,
        variables: None,
        notes: None,
        origin: Origin::System,
        account_id: None,
        deal_id: None,
        recipient_time_zone: Some(daytime_zone(Utc::now())),
        created_at: Utc::now(),
        requested_at: Some(at),
        send_at: at,
        status: MessageStatus::Scheduled,
        status_reason: None,
        history: vec![StatusChange {
            status: MessageStatus::Scheduled,
            at: Utc::now(),
            reason: None,
        }],
        carrier_message_id: None,
        attempts: 0,
        code: None,
    }
}

// ------------------------------------------------------------------ cost

/// Instances the local Lambda service runs per function (infra/local/lambdas.py).
const DEFAULT_LAMBDA_CONCURRENCY: usize = 4;
/// What the carrier's API takes to answer one send in AWS (assumed, not measured here:
/// the fake carrier answers in about a millisecond). deliver waits for it, ten at once.
const CARRIER_LATENCY_MS: f64 = 250.0;
/// The functions' memory (the template's Globals: MemorySize 128, arm64).
const FUNCTION_GB: f64 = 128.0 / 1024.0;

/// What the functions did in a stretch of the stack's log: invocations and their
/// durations, the SQS records deliver got, the events publish sent.
#[derive(Default)]
struct FunctionWork {
    /// function -> (invocations, total duration in ms)
    invocations: BTreeMap<String, (u64, f64)>,
    deliver_records: u64,
    deliver_batches: u64,
    events: u64,
}

impl FunctionWork {
    fn read(log: &Path, from: u64) -> FunctionWork {
        let text = std::fs::read(log).unwrap_or_default();
        let text = String::from_utf8_lossy(text.get(from as usize..).unwrap_or_default());
        let mut work = FunctionWork::default();
        for line in text.lines() {
            if let Some(rest) = line.split("REPORT ").nth(1) {
                let name = rest.split('[').next().unwrap_or("").to_owned();
                let ms = rest
                    .split("Duration: ")
                    .nth(1)
                    .and_then(|d| d.split_whitespace().next())
                    .and_then(|d| d.parse::<f64>().ok());
                if let Some(ms) = ms {
                    let e = work.invocations.entry(name).or_default();
                    e.0 += 1;
                    e.1 += ms;
                }
            } else if let Some(rest) = line.split("bridge: deliver records=").nth(1) {
                if let Some(n) = rest
                    .split_whitespace()
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
                {
                    work.deliver_records += n;
                    work.deliver_batches += 1;
                }
            } else if line.contains("\"message\":\"published\"") {
                if let Some(n) = line
                    .split("\"events\":")
                    .nth(1)
                    .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
                    .and_then(|n| n.parse::<u64>().ok())
                {
                    work.events += n;
                }
            }
        }
        work
    }

    fn per_text(&self, texts: usize) -> Value {
        let n = texts as f64;
        let by_function: Map<String, Value> = self
            .invocations
            .iter()
            .map(|(f, (count, ms))| {
                (
                    f.clone(),
                    json!({"invocations_per_text": round(*count as f64 / n, 4), "ms_per_text": round(ms / n, 3), "ms_per_invocation": round(ms / *count as f64, 1)}),
                )
            })
            .collect();
        json!({
            "texts": texts,
            "by_function": by_function,
            "deliver_records_per_invocation": round(self.deliver_records as f64 / self.deliver_batches.max(1) as f64, 2),
            "events_per_text": round(self.events as f64 / n, 3),
        })
    }
}

/// DynamoDB request units one operation costs in the model: writes of items up to 2 KB
/// (a message with its snapshot is about 1.5 KB) are 2 WRU; a transaction writes two
/// such items at twice the price; reads are strongly consistent items up to 4 KB (1 RRU),
/// a BatchGetItem two of them (the consent and the number's opt-out).
fn dynamodb_units(op: &str) -> (f64, f64) {
    match op {
        "PutItem" | "UpdateItem" => (2.0, 0.0),
        "DeleteItem" => (1.0, 0.0),
        "TransactWriteItems" => (8.0, 0.0),
        "GetItem" | "Query" => (0.0, 1.0),
        "BatchGetItem" => (0.0, 2.0),
        _ => (0.0, 0.0),
    }
}

/// AWS cost of one text from the requests it makes (measured), the functions' time
/// (measured, plus the carrier's assumed latency) and the events it publishes.
fn cost_per_text(requests: &Value, work: &Value, dispatch_ms_per_text: f64) -> Value {
    use stack_tests::prices::*;
    let mut dynamodb = 0.0;
    let mut sqs = 0.0;
    let mut ops = requests["by_operation"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    ops.extend(
        requests["event_source_mapping"]["by_operation"]
            .as_object()
            .cloned()
            .unwrap_or_default(),
    );
    for (op, count) in &ops {
        let count = count.as_f64().unwrap_or(0.0);
        match op.split_once('.') {
            Some(("DynamoDB", name)) => {
                let (w, r) = dynamodb_units(name);
                dynamodb += count * (w * DYNAMODB_USD_PER_WRU + r * DYNAMODB_USD_PER_RRU);
            }
            Some(("SQS", _)) => sqs += count * SQS_USD_PER_REQUEST,
            _ => {}
        }
    }
    let f = &work["by_function"];
    let records = work["deliver_records_per_invocation"]
        .as_f64()
        .unwrap_or(1.0)
        .max(1.0);
    let ms = |name: &str| f[name]["ms_per_text"].as_f64().unwrap_or(0.0);
    let calls = |name: &str| f[name]["invocations_per_text"].as_f64().unwrap_or(0.0);
    // deliver's records wait on the carrier together: its latency once per invocation.
    let deliver_ms = ms("deliver") + CARRIER_LATENCY_MS / records;
    let lambda_ms = ms("send") + deliver_ms + ms("publish") + ms("inbound") + dispatch_ms_per_text;
    let lambda_gb_s = lambda_ms / 1000.0 * FUNCTION_GB;
    let invocations = calls("send") + calls("deliver") + calls("publish") + calls("inbound");
    let lambda = lambda_gb_s * LAMBDA_ARM_USD_PER_GB_SECOND + invocations * LAMBDA_USD_PER_REQUEST;
    // The portal's POST, and the carrier's status callbacks (sent, delivered) on the API.
    let http = (1.0 + calls("inbound")) * HTTP_API_USD_PER_REQUEST;
    let events = work["events_per_text"].as_f64().unwrap_or(0.0) * EVENTBRIDGE_USD_PER_EVENT;
    let total = dynamodb + sqs + lambda + http + events;
    json!({
        "usd_per_1000_texts": round(total * 1000.0, 5),
        "by_service_usd_per_1000_texts": {
            "dynamodb": round(dynamodb * 1000.0, 5),
            "sqs": round(sqs * 1000.0, 5),
            "lambda": round(lambda * 1000.0, 5),
            "http_api": round(http * 1000.0, 5),
            "eventbridge": round(events * 1000.0, 5),
        },
        "lambda_ms_per_text": round(lambda_ms, 2),
    })
}

fn cost(requests: &Value, throughput: &Value, burst: Option<&Value>) -> Value {
    use stack_tests::prices::*;
    let work = &throughput["function_work"];
    // dispatch's time per scheduled text: the burst's pass time, as the function spends it.
    let dispatch_ms = burst
        .and_then(|b| {
            b["seconds_until_all_queued"]
                .as_f64()
                .zip(b["messages"].as_f64())
        })
        .map(|(s, n)| s * 1000.0 / n)
        .unwrap_or(0.0);
    let immediate = cost_per_text(&requests["immediate"], work, 0.0);
    let scheduled = cost_per_text(&requests["scheduled"], work, dispatch_ms);
    let carrier = CARRIER_USD_PER_SEGMENT * 1000.0;
    let imm = immediate["usd_per_1000_texts"].as_f64().unwrap_or(f64::NAN);
    let sch = scheduled["usd_per_1000_texts"].as_f64().unwrap_or(f64::NAN);
    json!({
        "method": format!("requests per text (requests_per_message, measured on the emulator) priced per operation; the functions' time per text from the throughput run's REPORT lines (release builds) plus an assumed {CARRIER_LATENCY_MS} ms carrier answer shared by the records deliver works at once; dispatch's time per scheduled text from the 10,000 burst; status callbacks and published events as counted in the same run. Prices: {REGION} on-demand list prices read {PRICES_DATE} (tests/src/prices.rs), Lambda arm64 128 MB"),
        "usd_per_1000_texts": {"immediate": imm, "scheduled": sch},
        "immediate": immediate,
        "scheduled": scheduled,
        "reference": {"carrier_usd_per_1000_texts": round(carrier, 2), "carrier": "Twilio US SMS list price per segment, one segment a text, before carrier fees"},
        "ratio_to_carrier": {"immediate": round(imm / carrier, 5), "scheduled": round(sch / carrier, 5)},
        "goal": "below 2% of the carrier's price",
    })
}

// ------------------------------------------------------------------ report

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let mem_gb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<f64>().ok())
        })
        .map(|kb| round(kb / 1_048_576.0, 1));
    json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu": cpu,
        "memory_gb": mem_gb,
        "arch": std::env::consts::ARCH,
    })
}

/// Writes what was measured so far: a long section (the burst) never loses the others.
fn save(out: &Value) {
    let dir = repo_root().join("target").join("bench");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(
        dir.join("latest.json"),
        serde_json::to_string_pretty(out).unwrap_or_default(),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let started = Instant::now();
    // Where infra/local/release.py builds: target/<host>/release.
    let release: PathBuf = repo_root()
        .join("target")
        .join(format!("{}-unknown-linux-gnu", std::env::consts::ARCH))
        .join("release");
    let only: Vec<String> = std::env::args().skip(1).collect();
    // The cost needs the requests per text and the functions' work from the throughput run.
    let wants = |k: &str| {
        only.is_empty()
            || only.iter().any(|o| o == k)
            || (only.iter().any(|o| o == "cost")
                && (k == "requests_per_message" || k == "throughput"))
    };
    let mut out = json!({"date": Utc::now().to_rfc3339(), "machine": machine()});
    if wants("cold_start") {
        eprintln!("bench: cold start ...");
        out["cold_start"] = cold_start(&release).await;
        save(&out);
    }
    if wants("requests_per_message") {
        eprintln!("bench: requests per message ...");
        out["requests_per_message"] = requests_per_message().await;
        save(&out);
    }
    if wants("latency") || wants("throughput") {
        eprintln!("bench: starting the local stack ...");
        // The schedule fires every minute, as in AWS: moto answers index queries by
        // scanning the table, so a faster tick would measure the emulator, not the service.
        // Release builds, as deployed; the bench's one texting number without a sending
        // rate (production spreads texts over thousands of numbers, each at its own rate).
        let stack = LocalStack::start(
            "bench",
            &[
                ("SCHEDULE_PERIOD_SECONDS", "60"),
                ("DEV_PROFILE", "release"),
                ("SEND_RATE_PER_NUMBER", "0"),
            ],
        );
        let http = portal(&stack).await;
        if wants("latency") {
            eprintln!("bench: latency ...");
            out["latency"] = latency(&http).await;
            save(&out);
        }
        if wants("throughput") {
            eprintln!("bench: throughput ...");
            out["throughput"] = throughput(&stack, &http).await;
            save(&out);
        }
    }
    if wants("dispatch_burst") {
        eprintln!("bench: dispatch burst ...");
        out["dispatch_burst"] = dispatch_bursts().await;
        save(&out);
    }
    if let (Some(requests), Some(throughput)) = (
        out.get("requests_per_message").cloned(),
        out.get("throughput").cloned(),
    ) {
        out["cost"] = cost(&requests, &throughput, out.get("dispatch_burst"));
        // The emulator's work the throughput run made: texts a second times the AWS requests
        // each takes (the event source mapping's included), next to its raw request rate.
        let per_text = requests["immediate"]["total"].as_f64().unwrap_or(f64::NAN)
            + requests["immediate"]["event_source_mapping"]["total"]
                .as_f64()
                .unwrap_or(0.0);
        let used = throughput["delivered_per_second"]
            .as_f64()
            .unwrap_or(f64::NAN)
            * per_text;
        let raw = throughput["reference"]["emulator_raw_requests_per_second"]
            .as_f64()
            .unwrap_or(f64::NAN);
        out["throughput"]["emulator_requests_per_second_used"] = json!(round(used, 1));
        out["throughput"]["ratio_requests_used_to_raw"] = json!(round(used / raw, 3));
    }
    out["bench_seconds"] = json!(round(started.elapsed().as_secs_f64(), 1));
    save(&out);
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    eprintln!(
        "bench: wrote target/bench/latest.json in {:.0} s",
        started.elapsed().as_secs_f64()
    );
}
