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

pub mod chaos;
pub mod portal;
pub mod prices;

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
        let python = venv_bin("python");
        assert!(
            venv_bin("moto_server").exists(),
            "{} is missing: run `make venv` (make test does it) to install the pinned emulator",
            venv_bin("moto_server").display()
        );
        let port = free_port();
        // The project's emulator launcher (moto, DynamoDB requests serialized as real
        // DynamoDB's conditional writes are; its GSIs lag behind the table as DynamoDB's do,
        // 50..400 ms per write unless EMULATOR_GSI_LAG_MS says otherwise, 0 is off); a
        // watchdog shell stops it with this process.
        let script = format!(
            "cd '{root}' && '{py}' -m infra.local.emulator -H 127.0.0.1 -p {port} --gsi-lag-ms ${{EMULATOR_GSI_LAG_MS:-50:400}} >/dev/null 2>&1 & m=$!; while kill -0 {parent} 2>/dev/null; do sleep 1; done; kill $m",
            root = repo_root().display(),
            py = python.display(),
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

/// An emulator of the test's own, with its state in a file, that the test can restart
/// on the same port (as if AWS's storage outlived a restart of everything in front of it).
pub struct RestartableEmulator {
    pub port: u16,
    /// Where the stack started on it must run its fake carrier: the emulator hands End User
    /// Messaging's requests there.
    pub carrier_port: u16,
    pub endpoint: String,
    state: PathBuf,
    child: Option<std::process::Child>,
    log: PathBuf,
}

impl RestartableEmulator {
    /// Starts `python -m infra.local.emulator --state FILE` on a free port.
    pub fn start(name: &str) -> RestartableEmulator {
        let dir = repo_root().join(".local");
        std::fs::create_dir_all(&dir).expect("cannot create .local");
        let state = dir.join(format!("{name}-{}.emulator-state", std::process::id()));
        let _ = std::fs::remove_file(&state);
        let port = free_port();
        let mut me = RestartableEmulator {
            port,
            carrier_port: free_port(),
            endpoint: format!("http://127.0.0.1:{port}"),
            log: dir.join(format!("{name}-{}.emulator.log", std::process::id())),
            state,
            child: None,
        };
        me.spawn();
        me
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("cannot open the emulator log");
        let child = Command::new(venv_bin("python"))
            .current_dir(repo_root())
            .args(["-m", "infra.local.emulator", "-H", "127.0.0.1"])
            .args(["-p", &self.port.to_string()])
            // Its indexes lag behind its tables as DynamoDB's do (EMULATOR_GSI_LAG_MS).
            .args([
                "--gsi-lag-ms",
                &std::env::var("EMULATOR_GSI_LAG_MS").unwrap_or_else(|_| "50:400".into()),
            ])
            .arg("--state")
            .arg(&self.state)
            .args([
                "--sms-voice-url",
                &format!("http://127.0.0.1:{}", self.carrier_port),
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("cannot start the emulator");
        // A watchdog stops the emulator if this test process dies without dropping it.
        let _ = Command::new("sh")
            .args([
                "-c",
                &format!(
                    "while kill -0 {parent} 2>/dev/null && kill -0 {pid} 2>/dev/null; do sleep 1; done; kill {pid} 2>/dev/null",
                    parent = std::process::id(),
                    pid = child.id()
                ),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        self.child = Some(child);
        let started = Instant::now();
        while !answers(&self.endpoint) {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the emulator did not start on {} within 30 s; log {}",
                self.endpoint,
                self.log.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the emulator (SIGTERM: it writes its state) and starts it again on the
    /// same port from that state; returns how long the emulator was away.
    pub fn restart(&mut self) -> Duration {
        let began = Instant::now();
        self.stop();
        assert!(
            self.state.exists(),
            "the emulator wrote no state file at {}; log {}",
            self.state.display(),
            self.log.display()
        );
        self.spawn();
        began.elapsed()
    }

    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-s", "TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    assert!(
                        status.success(),
                        "the emulator exited with {status}; log {}",
                        self.log.display()
                    );
                    return;
                }
                _ if Instant::now() > deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "the emulator did not stop within 30 s of SIGTERM; log {}",
                        self.log.display()
                    );
                }
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
}

impl Drop for RestartableEmulator {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.state);
    }
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
        Stack::create_on(prefix, &emulator().endpoint).await
    }

    /// As `create`, on the emulator at `endpoint` (e.g. a `LocalStack`'s).
    pub async fn create_on(prefix: &str, endpoint: &str) -> Stack {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
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
                endpoint,
            ])
            .arg("--env-out")
            .arg(&env_file)
            .args([
                "--secret",
                "TwilioAuthTokenSecret=test-auth-token",
                "--param",
                "TwilioAccountSid=AC00000000000000000000000000000000",
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
            sdk: sdk_config(endpoint).await,
        }
    }

    pub fn var(&self, key: &str) -> &str {
        self.env
            .get(key)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("the bootstrap env has no {key}: {:?}", self.env.keys()))
    }
}

/// The whole local stack (`make dev`'s orchestrator) on free ports with its own
/// emulator, stack name and settings; stopped (process group SIGTERM) on drop.
pub struct LocalStack {
    pub gateway: String,
    pub carrier: String,
    /// The local Lambda service (its invoke API and `/_local/...` controls).
    pub lambda: String,
    pub emulator: String,
    pub stack: String,
    pub settings: HashMap<String, String>,
    pub resources: HashMap<String, String>,
    child: std::process::Child,
    pub log: PathBuf,
    /// The settings file the stack runs with (`make token` reads it too).
    settings_file: PathBuf,
    /// Tokens already signed in for, by (dealer, user, roles): one sign-in each.
    tokens: std::sync::Mutex<HashMap<(String, String, String), String>>,
}

/// Settings every test stack uses (known secrets, a short schedule period).
fn write_test_env(path: &std::path::Path, overrides: &[(&str, &str)]) -> HashMap<String, String> {
    let example =
        std::fs::read_to_string(repo_root().join(".env.example")).expect(".env.example is missing");
    let mut settings: Vec<(String, String)> = example
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let fixed = [
        ("LOCAL_STAFF_PASSWORD", "Test-staff-password-0123456789-Aa1"),
        ("TWILIO_AUTH_TOKEN", "test-twilio-auth-token"),
        ("TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789abcdef"),
        ("CODE_HASH_KEY", "test-code-hash-key-0123456789abcdef"),
        ("SCHEDULE_PERIOD_SECONDS", "2"),
    ];
    for (k, v) in fixed.iter().chain(overrides) {
        match settings.iter_mut().find(|(key, _)| key == k) {
            Some(entry) => entry.1 = (*v).to_owned(),
            None => settings.push(((*k).to_owned(), (*v).to_owned())),
        }
    }
    let text: String = settings.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::write(path, text).expect("cannot write the test env file");
    settings.into_iter().collect()
}

impl LocalStack {
    /// Starts the stack and waits for `dev: ready` (the first build of the functions
    /// can take minutes; the bound is generous and the failure names the log).
    pub fn start(name: &str, overrides: &[(&str, &str)]) -> LocalStack {
        LocalStack::start_on(name, overrides, None)
    }

    /// As `start`, but on an emulator already answering (make dev uses a running
    /// emulator as is), a `RestartableEmulator`: its fake carrier on the port the emulator
    /// hands End User Messaging's requests to.
    pub fn start_on(
        name: &str,
        overrides: &[(&str, &str)],
        emulator: Option<&RestartableEmulator>,
    ) -> LocalStack {
        let stack = format!("{name}-{}", std::process::id());
        let dir = repo_root().join(".local");
        std::fs::create_dir_all(&dir).expect("cannot create .local");
        let env_file = dir.join(format!("{stack}.settings.env"));
        let settings = write_test_env(&env_file, overrides);
        let mut ports: Vec<u16> = (0..5).map(|_| free_port()).collect();
        if let Some(emulator) = emulator {
            ports[0] = emulator.port;
            ports[2] = emulator.carrier_port;
        }
        let log = dir.join(format!("{stack}.log"));
        let log_file = std::fs::File::create(&log).expect("cannot create the stack log");
        let mut command = Command::new(venv_bin("python"));
        command
            .current_dir(repo_root())
            .args(["-m", "infra.local.dev", "--no-seed", "--stack", &stack])
            .args(["--emulator-port", &ports[0].to_string()])
            .args(["--gateway-port", &ports[1].to_string()])
            .args(["--carrier-port", &ports[2].to_string()])
            .args(["--lambda-port", &ports[3].to_string()])
            .args(["--portal-port", &ports[4].to_string()])
            .arg("--env-file")
            .arg(&env_file)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log handle"))
            .stderr(log_file);
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command.spawn().expect("cannot start infra.local.dev");
        let mut me = LocalStack {
            gateway: format!("http://127.0.0.1:{}", ports[1]),
            carrier: format!("http://127.0.0.1:{}", ports[2]),
            lambda: format!("http://127.0.0.1:{}", ports[3]),
            emulator: format!("http://127.0.0.1:{}", ports[0]),
            stack: stack.clone(),
            settings,
            resources: HashMap::new(),
            child,
            log: log.clone(),
            settings_file: env_file.clone(),
            tokens: Default::default(),
        };
        let started = Instant::now();
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("dev: ready") {
                break;
            }
            if let Ok(Some(status)) = me.child.try_wait() {
                panic!(
                    "the local stack exited ({status}) before it was ready; log {}:\n{}",
                    log.display(),
                    tail(&text)
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(25 * 60),
                "the local stack was not ready within 25 min; log {}:\n{}",
                log.display(),
                tail(&text)
            );
            std::thread::sleep(Duration::from_millis(500));
        }
        let resources =
            std::fs::read_to_string(dir.join(format!("{stack}.env"))).unwrap_or_default();
        me.resources = resources
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        me
    }

    pub fn setting(&self, key: &str) -> &str {
        self.settings.get(key).map(String::as_str).unwrap_or("")
    }

    /// A portal token of a dealer admin (manages the dealer's settings), from the stack's
    /// user pool exactly as `make token` gets it.
    /// `make provision-numbers CARRIER=end-user-messaging` for `dealer`: `number` (one of
    /// EUM_NUMBERS) on End User Messaging, its two-way channel the stack's replies topic.
    pub fn provision_on_end_user_messaging(&self, dealer: &str, number: &str) {
        let out = Command::new(venv_bin("python"))
            .current_dir(repo_root())
            .args([
                "-m",
                "infra.provision",
                "--table",
                &self.resources["TABLE_NAME"],
            ])
            .args([
                "--carrier",
                "end-user-messaging",
                "--account",
                "123456789012",
            ])
            .args(["--dealer", dealer, "--two-way-topic-arn"])
            .arg(&self.resources["EUM_REPLIES_TOPIC_ARN"])
            .arg(number)
            .env("AWS_ENDPOINT_URL", &self.emulator)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .output()
            .expect("python -m infra.provision");
        assert!(
            out.status.success(),
            "provision: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn token(&self, dealer: &str, user: &str) -> String {
        self.token_with_roles(dealer, user, &["dealer-admin"])
    }

    /// A portal token of staff without any role.
    pub fn staff_token(&self, dealer: &str, user: &str) -> String {
        self.token_with_roles(dealer, user, &[])
    }

    /// Signs `user` of `dealer` in through `infra.local.token` (the user is created in the
    /// local user pool, or moved to `dealer` with exactly `roles`) and returns the ID token.
    pub fn token_with_roles(&self, dealer: &str, user: &str, roles: &[&str]) -> String {
        let key = (dealer.to_owned(), user.to_owned(), roles.join(","));
        let mut tokens = self.tokens.lock().expect("token cache");
        if let Some(token) = tokens.get(&key) {
            return token.clone();
        }
        let mut command = Command::new(venv_bin("python"));
        command
            .current_dir(repo_root())
            .args(["-m", "infra.local.token", "--stack", &self.stack])
            .arg("--env-file")
            .arg(&self.settings_file)
            .args([
                "--endpoint",
                &self.emulator,
                "--dealer",
                dealer,
                "--user",
                user,
            ]);
        for role in roles {
            command.args(["--role", role]);
        }
        let output = command.output().expect("cannot run infra.local.token");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "make token failed for {dealer}/{user}:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let token = stdout.lines().last().unwrap_or_default().trim().to_owned();
        tokens.insert(key, token.clone());
        token
    }
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

impl Drop for LocalStack {
    /// SIGTERM to the orchestrator, which stops every child's process group (as Ctrl-C
    /// does); SIGKILL to its group only if it has not exited within 30 s.
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill")
            .args(["-s", "TERM", "--", &pid])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let group = format!("-{pid}");
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &group])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
