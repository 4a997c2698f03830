//! Cold start: each function's spawn to its first runtime-API poll (and to its secrets'
//! answers), next to a hello-world and the SDK's floor, in shuffled interleaved rounds.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::{median, round, COLD_RUNS, FUNCTIONS, SECRETS_READ};

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
            "INBOUND_QUEUE_URL",
            "http://127.0.0.1:9/000000000000/bench.fifo",
        )
        .env("STATUS_QUEUE_URL", "http://127.0.0.1:9/000000000000/bench")
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
    // The poll's connection stays open (no event yet, as Lambda's runtime API holds it) until
    // the measurement is over: a closed one would end the process before its secrets arrive.
    let accepted = tokio::time::timeout(Duration::from_secs(10), async {
        let (stream, _) = listener.accept().await.ok()?;
        let mut poll = BufReader::new(stream);
        let mut line = String::new();
        poll.read_line(&mut line).await.ok()?;
        line.contains("/runtime/invocation/next").then_some(poll)
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
    matches!(accepted, Ok(Some(_))).then_some((init_ms, rss_kb, secrets_ms))
}

/// One binary's starts, summarized.
#[derive(Default)]
struct Starts {
    inits: Vec<f64>,
    rss_kb: Vec<f64>,
    secrets_answered: Vec<f64>,
    /// The first poll, or the last secret's answer if later: ready for any event.
    ready: Vec<f64>,
    /// Starts whose secrets were not all answered within the bound.
    never_ready: usize,
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
            v["starts_never_ready"] = json!(self.never_ready);
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
                match (reads(name), secrets_ms) {
                    (0, _) => starts[i].ready.push(ms),
                    (_, Some(s)) => starts[i].ready.push(s.max(ms)),
                    // Its secrets were not answered within the bound: not ready, not counted.
                    (_, None) => starts[i].never_ready += 1,
                }
            }
        }
    }
    binaries
        .iter()
        .zip(&starts)
        .map(|((bin, name, _), s)| s.summary(bin, reads(name)))
        .collect()
}

pub(crate) async fn cold_start(release: &Path, build: &str) -> Value {
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
        "method": format!("median of {COLD_RUNS} starts, taken in rounds of one start of each binary in a shuffled order (references and functions interleaved): process spawn to the first GET /runtime/invocation/next on a runtime API served by the bench; peak RSS (VmHWM) at that moment; release binaries (LTO, stripped, {build}: infra/local/release.py); every binary gets SSL_CERT_FILE as the template sets it (CaBundle). Secrets are read off the init path: secrets_answered_ms is spawn to the bench's Secrets Manager answering the function's last read (the first event that needs a secret waits until then)"),
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
