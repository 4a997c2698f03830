//! The test harness for tests against the AWS emulator and the local stack.
//!
//! `emulator()` starts one moto server per test binary on a free loopback port (or
//! uses `EMULATOR_ENDPOINT` when `make test` already started one) and fails loudly
//! when it cannot. `Stack::create(prefix)` creates the template's resources under a
//! unique stack name by running the same bootstrap `make dev` uses, so every test has
//! its own table and queues and tests run in parallel.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn venv_bin(name: &str) -> PathBuf {
    repo_root().join(".venv").join("bin").join(name)
}

pub struct Emulator {
    pub endpoint: String,
    /// The watchdog shell that owns the emulator (it exits with this process).
    _watchdog: Option<std::process::Child>,
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("no free loopback port");
    listener.local_addr().expect("bound address").port()
}

fn answers(endpoint: &str) -> bool {
    let addr = endpoint.trim_start_matches("http://");
    std::net::TcpStream::connect_timeout(
        &addr
            .parse()
            .unwrap_or_else(|_| ([127, 0, 0, 1], 4566).into()),
        Duration::from_millis(200),
    )
    .is_ok()
}

/// The emulator for this test binary (started once).
pub fn emulator() -> &'static Emulator {
    static EMULATOR: OnceLock<Emulator> = OnceLock::new();
    EMULATOR.get_or_init(|| {
        if let Ok(endpoint) = std::env::var("EMULATOR_ENDPOINT") {
            assert!(answers(&endpoint), "EMULATOR_ENDPOINT={endpoint} does not answer");
            return Emulator {
                endpoint,
                _watchdog: None,
            };
        }
        let moto = venv_bin("moto_server");
        assert!(
            moto.exists(),
            "{} is missing: run `make venv` (make test does it) to install the pinned emulator",
            moto.display()
        );
        let port = free_port();
        // A watchdog shell stops the emulator when this test process exits.
        let script = format!(
            "'{}' -H 127.0.0.1 -p {port} >/dev/null 2>&1 & m=$!; while kill -0 {parent} 2>/dev/null; do sleep 1; done; kill $m",
            moto.display(),
            parent = std::process::id()
        );
        let watchdog = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start the emulator watchdog shell");
        let endpoint = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while !answers(&endpoint) {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the emulator (moto_server) did not start on {endpoint} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Emulator {
            endpoint,
            _watchdog: Some(watchdog),
        }
    })
}

/// SDK configuration pointing at the emulator with dummy credentials.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "tests",
        ))
        .load()
        .await
}

/// The template's resources created under a unique stack name.
pub struct Stack {
    pub name: String,
    pub env: HashMap<String, String>,
    pub sdk: SdkConfig,
}

impl Stack {
    /// Creates the resources with the project's bootstrap (reading infra/template.yaml).
    pub async fn create(prefix: &str) -> Stack {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let emulator = emulator();
        let name = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let env_file = std::env::temp_dir().join(format!("{name}.env"));
        let output = tokio::process::Command::new(venv_bin("python"))
            .current_dir(repo_root())
            .args([
                "-m",
                "infra.local.bootstrap",
                "--stack",
                &name,
                "--endpoint",
                &emulator.endpoint,
            ])
            .arg("--env-out")
            .arg(&env_file)
            .args([
                "--param",
                "TwilioAuthToken=test-auth-token",
                "--param",
                "TwilioAccountSid=AC00000000000000000000000000000000",
                "--param",
                "CodeHashKey=test-code-hash-key-0123456789",
                "--param",
                "JwtIssuer=http://127.0.0.1/test-issuer",
                "--param",
                "JwtAudience=texting-portal",
            ])
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .output()
            .await
            .expect("cannot run the bootstrap");
        assert!(
            output.status.success(),
            "bootstrap failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let text = std::fs::read_to_string(&env_file).expect("bootstrap wrote no env file");
        let _ = std::fs::remove_file(&env_file);
        let env = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        Stack {
            name,
            env,
            sdk: sdk_config(&emulator.endpoint).await,
        }
    }

    pub fn var(&self, key: &str) -> &str {
        self.env
            .get(key)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("the bootstrap env has no {key}: {:?}", self.env.keys()))
    }
}
