//! The fault run (`make chaos`, and a short one in `make test`): the local stack driven
//! through texts and replies while the partners and AWS misbehave as they document, then
//! held to what must never happen.
//!
//! Faults, all seeded (the seed is printed): DynamoDB throttling and 500s on a share of
//! requests (the emulator answers before it acts, as DynamoDB does), every GSI lagging
//! behind its table, the carrier answering 429 above a small concurrency, taking a text and
//! answering 500, taking one and never answering in time, function instances killed
//! mid-invocation, and the emulator restarted once.
//!
//! What is measured afterwards, from the carrier's own record and the table:
//! - a template text at a phone after that person's STOP was recorded (and before their
//!   START): texts without consent;
//! - a template text at a phone twice (every text's body is unique);
//! - a reply the service never finished acting on (its `INBOUND#sid` mark);
//! - STOPs sent against STOPs on the ledger;
//! - messages stuck: neither delivered, failed to staff, suppressed, canceled nor deferred.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

use crate::portal::{code_in, daytime_zone, Portal};
use crate::{sdk_config, LocalStack, RestartableEmulator};

/// The carrier the dealer's number is on: every fault of the fake carrier (429 above its
/// concurrency, a text taken then answered 500 or never answered) is played on either API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChaosCarrier {
    Twilio,
    EndUserMessaging,
}

impl ChaosCarrier {
    /// The dealer's texting number: Twilio's pool, or End User Messaging's (EUM_NUMBERS).
    pub fn dealer_number(self) -> &'static str {
        match self {
            ChaosCarrier::Twilio => "+12025550100",
            ChaosCarrier::EndUserMessaging => "+16465550100",
        }
    }
}

/// How big and how rough a run is.
#[derive(Debug, Clone)]
pub struct ChaosConfig {
    pub seed: u64,
    pub contacts: usize,
    pub texts: usize,
    /// Replies besides the Agrees that set consent up.
    pub replies: usize,
    /// Share of DynamoDB requests throttled, and answered 500.
    pub throttle_rate: f64,
    pub error_rate: f64,
    /// Share of invocations whose instance is killed mid-way, and of which functions (None:
    /// all). A killed deliver leaves its claim `sending` until the claim is stale (90 s) and
    /// its record invisible for the queue's 6-minute visibility timeout: the full run kills
    /// it, the short one kills the functions that recover within a minute.
    pub kill_rate: f64,
    pub kill_functions: Option<Vec<&'static str>>,
    /// The carrier's concurrent requests before it answers 429.
    pub carrier_concurrency: u32,
    /// Texts the carrier takes and answers 500, and takes without answering in time.
    pub accepted_then_500: u32,
    pub accepted_then_silent: u32,
    /// Restart the emulator once, halfway.
    pub restart: bool,
    /// The carrier the dealer's number is on.
    pub carrier: ChaosCarrier,
    /// The whole run, drain included, ends by then.
    pub budget: Duration,
}

impl ChaosConfig {
    /// `make chaos`: a few thousand texts and a few hundred replies.
    pub fn full(seed: u64) -> Self {
        Self {
            seed,
            contacts: 40,
            texts: 2_000,
            replies: 300,
            throttle_rate: 0.03,
            error_rate: 0.02,
            kill_rate: 0.02,
            kill_functions: None,
            carrier_concurrency: 6,
            accepted_then_500: 10,
            accepted_then_silent: 5,
            restart: true,
            carrier: ChaosCarrier::Twilio,
            budget: Duration::from_secs(40 * 60),
        }
    }

    /// The same run with the dealer's number on `carrier`.
    pub fn on(self, carrier: ChaosCarrier) -> Self {
        Self { carrier, ..self }
    }

    /// The same run with no fault injected (the fault run's reference).
    pub fn without_faults(self) -> Self {
        Self {
            throttle_rate: 0.0,
            error_rate: 0.0,
            kill_rate: 0.0,
            carrier_concurrency: 0,
            accepted_then_500: 0,
            accepted_then_silent: 0,
            restart: false,
            ..self
        }
    }

    /// The short run `make test` holds to the same zeros.
    pub fn short(seed: u64) -> Self {
        Self {
            contacts: 6,
            texts: 90,
            replies: 30,
            kill_rate: 0.04,
            kill_functions: Some(vec!["inbound", "webhooks", "send", "authorize"]),
            accepted_then_500: 3,
            accepted_then_silent: 2,
            budget: Duration::from_secs(8 * 60),
            ..Self::full(seed)
        }
    }
}

impl ChaosConfig {
    /// The bench's fault run: the short run's faults over more texts, so the throughput
    /// compares sustained rates rather than the last few texts' retries (a 90-text run
    /// lasts ~20 s at the number's 3 texts a second; one text that met a 15-s retry at its
    /// end moved its figure by a third).
    pub fn medium(seed: u64) -> Self {
        Self {
            contacts: 12,
            texts: 360,
            replies: 60,
            budget: Duration::from_secs(12 * 60),
            ..Self::short(seed)
        }
    }
}

/// The seed `CHAOS_SEED` names (to repeat a run), else the clock's.
pub fn seed_from_env() -> u64 {
    std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(1)
        })
}

/// Runs `config` and fails unless every guarantee's count is 0 (the report is printed, the
/// evidence of a broken one with it).
pub async fn hold(config: &ChaosConfig) {
    let report = run(config).await;
    eprintln!(
        "chaos: {}",
        serde_json::to_string(&report).unwrap_or_default()
    );
    assert!(
        report.texts_at_phones > 0,
        "nothing was delivered: {report:?}"
    );
    assert!(report.stops_sent > 0, "the run sent no STOP: {report:?}");
    let violations = report.violations();
    assert!(
        violations.is_empty(),
        "seed {}: {}",
        report.seed,
        violations.join("; ")
    );
}

/// What a run saw.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ChaosReport {
    pub seed: u64,
    /// The carrier the dealer's number was on.
    pub carrier: Option<ChaosCarrier>,
    pub texts_requested: usize,
    pub texts_accepted: usize,
    pub texts_at_phones: usize,
    pub replies_sent: usize,
    pub stops_sent: usize,
    pub stops_acted: usize,
    pub texts_without_consent: usize,
    pub texts_twice: usize,
    pub replies_not_acted: usize,
    pub stuck: usize,
    pub statuses: BTreeMap<String, usize>,
    pub faults: Value,
    pub seconds: f64,
    /// Template texts at the phones per second, from the first send to the last text.
    pub delivered_per_second: f64,
    /// For each broken zero, what a reader needs to find its cause: the message, its
    /// history, the person's replies as the phone saw them and their ledger.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<Value>,
    /// The texts that took longest from being queued to the phone, with their history: what
    /// a throughput figure's tail is made of.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub slowest: Vec<Value>,
}

impl ChaosReport {
    /// The zeros a run must hold.
    pub fn violations(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut check = |name: &str, v: usize| {
            if v != 0 {
                out.push(format!("{name}: {v}"));
            }
        };
        check("texts without consent", self.texts_without_consent);
        check("texts at the phone twice", self.texts_twice);
        check("replies not acted on", self.replies_not_acted);
        check("texts stuck", self.stuck);
        if self.stops_acted != self.stops_sent {
            out.push(format!(
                "STOPs acted on {} != STOPs sent {}",
                self.stops_acted, self.stops_sent
            ));
        }
        out
    }
}

/// A small seeded generator (SplitMix64): the run's choices repeat with its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const DEALER: &str = "chaos-motors";

fn phone_of(i: usize) -> String {
    format!("+1415555{:04}", 100 + i)
}

/// A contact's replies and what they did to their consent, as the phone saw them.
#[derive(Default)]
struct Person {
    /// When each STOP's revocation was seen on the ledger (client clock, at or after the
    /// moment it was written).
    stops_recorded: Vec<DateTime<Utc>>,
    /// STOPs whose revocation never showed.
    stops_lost: usize,
    /// When each later START was sent.
    starts_sent: Vec<DateTime<Utc>>,
}

pub async fn run(config: &ChaosConfig) -> ChaosReport {
    let started = Instant::now();
    let mut rng = Rng(config.seed);
    eprintln!("chaos: seed {} ({config:?})", config.seed);
    let mut emulator = RestartableEmulator::start("chaos");
    let seed = config.seed.to_string();
    let concurrency = config.carrier_concurrency.to_string();
    let stack = LocalStack::start_on(
        "chaos",
        &[
            ("CARRIER_SEED", seed.as_str()),
            ("CARRIER_MAX_CONCURRENT", concurrency.as_str()),
            ("LAMBDA_SEED", seed.as_str()),
            ("EMULATOR_SEED", seed.as_str()),
        ],
        Some(&emulator),
    );
    let http = Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client");
    if config.carrier == ChaosCarrier::EndUserMessaging {
        stack.provision_on_end_user_messaging(DEALER, config.carrier.dealer_number());
    }
    let portal = portal_for(&stack, &http, config.carrier);
    let zone = daytime_zone(Utc::now());
    set_up(&portal, config, &zone).await;

    // The partners and AWS start misbehaving.
    let faults = Faults::new(&http, &stack, &emulator);
    faults.on(config).await;

    let mut report = ChaosReport {
        seed: config.seed,
        carrier: Some(config.carrier),
        texts_requested: config.texts,
        ..Default::default()
    };
    let mut people: HashMap<usize, Person> = HashMap::new();
    let first_send = Utc::now();
    let mut sends = tokio::task::JoinSet::new();
    let mut replies = tokio::task::JoinSet::new();
    let mut busy = std::collections::HashSet::new();
    let replies_every = (config.texts / config.replies.max(1)).max(1);
    let mut replies_sent = 0;
    let mut restarted = !config.restart;
    let mut dynamodb_before_restart = Value::Null;
    for n in 0..config.texts {
        let contact = rng.below(config.contacts);
        let sender = portal_for(&stack, &http, config.carrier);
        sends.spawn(async move { send_with_retries(&sender, n, contact).await });
        while sends.len() >= 8 {
            if let Some(Ok(accepted)) = sends.join_next().await {
                report.texts_accepted += usize::from(accepted);
            }
        }
        if n % replies_every == 0 && replies_sent < config.replies {
            // A person's replies go one after another (a START follows its STOP's
            // revocation); different people's overlap, and none holds the sends up.
            let first = rng.below(config.contacts);
            let free = (0..config.contacts)
                .map(|k| (first + k) % config.contacts)
                .find(|who| !busy.contains(who));
            if let Some(who) = free {
                let person = people.entry(who).or_default();
                let body = choose_reply(person, &mut rng);
                report.stops_sent += usize::from(body == "STOP");
                busy.insert(who);
                let replier = portal_for(&stack, &http, config.carrier);
                replies.spawn(async move { reply(&replier, who, body).await });
                replies_sent += 1;
            }
        }
        while let Some(Ok(done)) = replies.try_join_next() {
            busy.remove(&done.who);
            done.record(people.entry(done.who).or_default());
        }
        if !restarted && n >= config.texts / 2 {
            dynamodb_before_restart = faults.dynamodb().await;
            let away = emulator.restart();
            eprintln!("chaos: emulator restarted (away {away:?})");
            // A restarted emulator starts with no faults: they go on as before.
            faults.dynamodb_on(config).await;
            restarted = true;
        }
    }
    while let Some(joined) = sends.join_next().await {
        if let Ok(accepted) = joined {
            report.texts_accepted += usize::from(accepted);
        }
    }
    while let Some(joined) = replies.join_next().await {
        if let Ok(done) = joined {
            done.record(people.entry(done.who).or_default());
        }
    }
    report.replies_sent = replies_sent;
    report.faults = faults.off().await;
    report.faults["dynamodb_before_restart"] = dynamodb_before_restart;

    // Everything settles: no text waits in the queue, every reply acted on.
    let table = stack
        .resources
        .get("TABLE_NAME")
        .cloned()
        .expect("the stack's table");
    let ddb = aws_sdk_dynamodb::Client::new(&sdk_config(&stack.emulator).await);
    let deadline = started + config.budget;
    let mut messages = settle(&ddb, &table, &portal, deadline).await;
    let inbox = carrier_messages(&portal).await;
    measure(
        &mut report,
        &messages,
        &inbox,
        &people,
        &ddb,
        &table,
        &portal,
    )
    .await;
    report.statuses = count_statuses(&mut messages);
    report.slowest = slowest(&messages, &inbox, 5);
    report.seconds = started.elapsed().as_secs_f64();
    let last_text = inbox
        .iter()
        .filter(|m| is_template_text(m))
        .filter_map(|m| {
            m["at"]
                .as_str()
                .and_then(|a| a.parse::<DateTime<Utc>>().ok())
        })
        .max()
        .unwrap_or(first_send);
    let span = (last_text - first_send).num_milliseconds().max(1) as f64 / 1000.0;
    report.delivered_per_second = report.texts_at_phones as f64 / span;
    drop(stack);
    drop(emulator);
    report
}

/// A portal of its own for a spawned task.
fn portal_for(stack: &LocalStack, http: &Client, carrier: ChaosCarrier) -> Portal {
    Portal {
        http: http.clone(),
        base: stack.gateway.clone(),
        carrier: stack.carrier.clone(),
        token: stack.token(DEALER, "staff-chaos"),
        dealer_number: carrier.dealer_number().into(),
    }
}

/// The dealer, its contacts, and each contact's accounting consent (a code texted, then
/// the person's "Agree").
async fn set_up(portal: &Portal, config: &ChaosConfig, zone: &str) {
    portal
        .ok(
            Method::PUT,
            "/v1/dealer",
            Some(json!({"name": "Chaos Motors", "textingNumber": portal.dealer_number, "helpContact": "(202) 555-0199"})),
            StatusCode::OK,
        )
        .await;
    for i in 0..config.contacts {
        portal
            .ok(
                Method::PUT,
                &format!("/v1/contacts/C-{i}"),
                Some(json!({"name": format!("Person {i}"), "phone": phone_of(i), "accountIds": ["A-1"], "timeZone": zone})),
                StatusCode::CREATED,
            )
            .await;
        let seen = portal.inbox(&phone_of(i)).await.len();
        portal
            .ok(
                Method::POST,
                &format!("/v1/contacts/C-{i}/authorizations"),
                Some(json!({"category": "accounting"})),
                StatusCode::ACCEPTED,
            )
            .await;
        let text = portal.next_text(&phone_of(i), seen).await;
        assert!(!code_in(text["body"].as_str().unwrap_or("")).is_empty());
        portal.reply(&phone_of(i), "Agree").await;
    }
    for i in 0..config.contacts {
        let deadline = Instant::now() + Duration::from_secs(60);
        while portal
            .authorizations("/v1/accounts/A-1/contacts", &format!("C-{i}"))
            .await["accounting"]
            != "authorized"
        {
            assert!(Instant::now() < deadline, "C-{i} was never authorized");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

/// A template text to `contact`, its body unique (`Ref n`), sent as a portal would: the
/// same Idempotency-Key again after a 5xx or no answer. true if accepted.
async fn send_with_retries(portal: &Portal, n: usize, contact: usize) -> bool {
    let body = json!({"contactId": format!("C-{contact}"), "template": "payment-received",
        "variables": {"firstName": format!("Ref {n}"), "amount": "10.00", "paymentDate": "2026-11-20"}});
    for _ in 0..6 {
        let res = portal
            .http
            .post(format!("{}/v1/messages", portal.base))
            .bearer_auth(&portal.token)
            .header("idempotency-key", format!("chaos-{n}"))
            .json(&body)
            .send()
            .await;
        match res {
            Ok(r) if r.status() == StatusCode::ACCEPTED => return true,
            // Refused by the rules (the person stopped): an answer, not a failure.
            Ok(r)
                if r.status().is_client_error() && r.status() != StatusCode::TOO_MANY_REQUESTS =>
            {
                return false
            }
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    false
}

/// What a contact texts next: STOP (then, sometimes, START), HELP or free text.
fn choose_reply(person: &Person, rng: &mut Rng) -> &'static str {
    let stopped = person.stops_recorded.len() + person.stops_lost > person.starts_sent.len();
    match (stopped, rng.below(10)) {
        (true, 0..=4) => "START",
        (true, _) => "Is my car ready?",
        (false, 0..=2) => "STOP",
        (false, 3) => "HELP",
        _ => "Can I pay on Friday?",
    }
}

/// A reply posted, and for a STOP when its revocation was seen on the ledger.
struct ReplyDone {
    who: usize,
    body: &'static str,
    before: DateTime<Utc>,
    /// A STOP's revocation seen on the ledger (None: never seen, or not a STOP).
    recorded: Option<DateTime<Utc>>,
}

impl ReplyDone {
    fn record(&self, person: &mut Person) {
        match self.body {
            // When the revocation is on the ledger, no text may reach this phone.
            // (Not seen at all: counted by the STOPs acted on, not here.)
            "STOP" => match self.recorded {
                Some(at) => person.stops_recorded.push(at),
                None => person.stops_lost += 1,
            },
            "START" => person.starts_sent.push(self.before),
            _ => {}
        }
    }
}

/// One reply from a contact, posted as the carrier posts it.
async fn reply(portal: &Portal, who: usize, body: &'static str) -> ReplyDone {
    let before = Utc::now();
    let sids = post_reply(portal, &phone_of(who), body).await;
    let recorded = if body == "STOP" {
        wait_for_revocation(portal, who, &sids).await
    } else {
        None
    };
    ReplyDone {
        who,
        body,
        before,
        recorded,
    }
}

/// The phone texts the dealer: the fake carrier posts the webhook as Twilio does. Its
/// answer is the service's; a failure to reach the service is retried by the carrier only
/// as the webhook URL asks. A phone whose text got no answer sends it again, as a new
/// text: the sids of every one it sent.
async fn post_reply(portal: &Portal, phone: &str, body: &str) -> Vec<String> {
    let mut sids = Vec::new();
    for _ in 0..5 {
        let res = portal
            .http
            .post(format!("{}/reply", portal.carrier))
            .json(&json!({"from": phone, "to": portal.dealer_number, "body": body}))
            .send()
            .await;
        if let Ok(r) = &res {
            if let Some(sid) = r
                .headers()
                .get("X-Message-Sid")
                .and_then(|v| v.to_str().ok())
            {
                sids.push(sid.to_owned());
            }
        }
        if res.is_ok_and(|r| r.status().is_success()) {
            return sids;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    sids
}

/// Waits (150 s at most: a delivery that failed comes back after the inbound queue's 60 s
/// visibility timeout) for the revocation of one of these texts (its sid is the ledger
/// entry's evidence); returns when it was seen, or None.
async fn wait_for_revocation(
    portal: &Portal,
    who: usize,
    sids: &[String],
) -> Option<DateTime<Utc>> {
    let deadline = Instant::now() + Duration::from_secs(150);
    loop {
        let (status, history) = history_of(portal, who).await;
        let seen = status == StatusCode::OK
            && history["entries"].as_array().is_some_and(|entries| {
                entries.iter().any(|e| {
                    e["event"] == "revoked-by-reply"
                        && e["evidence"]
                            .as_str()
                            .is_some_and(|ev| sids.iter().any(|sid| sid == ev))
                })
            });
        if seen {
            return Some(Utc::now());
        }
        if sids.is_empty() || Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A consent history's entries, one line each: when, what, which category, on what evidence.
fn ledger_lines(history: &Value) -> Vec<Value> {
    history["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| json!([e["at"], e["event"], e["category"], e["evidence"]]))
        .collect()
}

/// A contact's consent history, read as the portal reads it. Not kept as a sample of the API
/// (`Portal::call` keeps one for the OpenAPI check): under the faults, an answer may be the
/// 500 API Gateway gives for a killed instance.
async fn history_of(portal: &Portal, who: usize) -> (StatusCode, Value) {
    let res = portal
        .http
        .get(format!(
            "{}/v1/contacts/C-{who}/consent-history?limit=500",
            portal.base
        ))
        .bearer_auth(&portal.token)
        .send()
        .await;
    match res {
        Ok(r) => {
            let status = r.status();
            (status, r.json().await.unwrap_or(Value::Null))
        }
        Err(_) => (StatusCode::BAD_GATEWAY, Value::Null),
    }
}

/// Turns the faults on and off, and reads what was injected.
struct Faults<'a> {
    http: &'a Client,
    emulator: String,
    lambda: String,
    carrier: String,
}

impl<'a> Faults<'a> {
    fn new(http: &'a Client, stack: &LocalStack, emulator: &RestartableEmulator) -> Self {
        Self {
            http,
            emulator: format!("http://127.0.0.1:{}", emulator.port),
            lambda: stack.lambda.clone(),
            carrier: stack.carrier.clone(),
        }
    }

    async fn post(&self, url: String, body: Value) {
        let res = self.http.post(&url).json(&body).send().await;
        assert!(
            res.as_ref().is_ok_and(|r| r.status().is_success()),
            "{url}: {res:?}"
        );
    }

    async fn dynamodb_on(&self, config: &ChaosConfig) {
        self.post(
            format!("{}/_local/faults", self.emulator),
            json!({"dynamodbThrottleRate": config.throttle_rate, "dynamodbErrorRate": config.error_rate}),
        )
        .await;
    }

    /// What the emulator injected so far.
    async fn dynamodb(&self) -> Value {
        match self
            .http
            .get(format!("{}/_local/faults", self.emulator))
            .send()
            .await
        {
            Ok(r) => r.json::<Value>().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        }
    }

    async fn on(&self, config: &ChaosConfig) {
        self.dynamodb_on(config).await;
        let mut kills = json!({"rate": config.kill_rate});
        if let Some(functions) = &config.kill_functions {
            kills["functions"] = json!(functions);
        }
        self.post(format!("{}/_local/kills", self.lambda), kills)
            .await;
        self.post(
            format!("{}/limits", self.carrier),
            json!({"maxConcurrent": config.carrier_concurrency, "latencyMs": 40}),
        )
        .await;
        self.post(
            format!("{}/accept-then-fail", self.carrier),
            json!({"count": config.accepted_then_500, "status": 500}),
        )
        .await;
        self.post(
            format!("{}/accept-and-hang", self.carrier),
            json!({"count": config.accepted_then_silent, "seconds": 12}),
        )
        .await;
    }

    /// Turns them off; what was injected.
    async fn off(&self) -> Value {
        self.post(
            format!("{}/_local/faults", self.emulator),
            json!({"dynamodbThrottleRate": 0.0, "dynamodbErrorRate": 0.0}),
        )
        .await;
        self.post(
            format!("{}/_local/kills", self.lambda),
            json!({"rate": 0.0}),
        )
        .await;
        let read = |url: String| async move {
            match self.http.get(&url).send().await {
                Ok(r) => r.json::<Value>().await.unwrap_or(Value::Null),
                Err(_) => Value::Null,
            }
        };
        json!({
            "dynamodb": read(format!("{}/_local/faults", self.emulator)).await,
            "kills": read(format!("{}/_local/kills", self.lambda)).await,
        })
    }
}

/// Every message item, once nothing is left in flight and every reply the carrier delivered
/// is finished (a record handed back waits out the inbound queue's visibility timeout), or
/// the budget is spent.
async fn settle(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    portal: &Portal,
    deadline: Instant,
) -> Vec<HashMap<String, AttributeValue>> {
    loop {
        let messages = scan_messages(ddb, table).await;
        let in_flight = messages.iter().filter(|m| in_flight(m, Utc::now())).count();
        let inbox = carrier_messages(portal).await;
        let unfinished = unfinished_replies(ddb, table, &inbox).await;
        if (in_flight == 0 && unfinished == 0) || Instant::now() >= deadline {
            if in_flight + unfinished > 0 {
                eprintln!(
                    "chaos: at the deadline, {in_flight} messages in flight, {unfinished} replies not finished"
                );
            }
            return messages;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Replies the carrier delivered (its inbound record) that the service has not finished
/// acting on (no `INBOUND#sid` finished mark).
async fn unfinished_replies(ddb: &aws_sdk_dynamodb::Client, table: &str, inbox: &[Value]) -> usize {
    let sids: HashSet<&str> = inbox
        .iter()
        .filter(|m| m["direction"] == "inbound")
        .filter_map(|m| m["sid"].as_str())
        .collect();
    let mut unfinished = 0;
    for sid in sids {
        let finished = ddb
            .get_item()
            .table_name(table)
            .key("PK", AttributeValue::S(format!("INBOUND#{sid}")))
            .key("SK", AttributeValue::S("DEDUP".into()))
            .consistent_read(true)
            .send()
            .await
            .expect("read the table")
            .item
            .is_some();
        unfinished += usize::from(!finished);
    }
    unfinished
}

fn status_of(m: &HashMap<String, AttributeValue>) -> &str {
    m.get("status")
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .unwrap_or("")
}

/// Queued or sending, or scheduled and due: neither delivered, failed to staff,
/// suppressed, canceled nor deferred to a later time.
fn in_flight(m: &HashMap<String, AttributeValue>, now: DateTime<Utc>) -> bool {
    match status_of(m) {
        "queued" | "sending" => true,
        "scheduled" => m
            .get("sendAt")
            .and_then(|v| v.as_s().ok())
            .and_then(|s| s.parse::<DateTime<Utc>>().ok())
            .is_some_and(|at| at <= now),
        _ => false,
    }
}

async fn scan_messages(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Vec<HashMap<String, AttributeValue>> {
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let page = ddb
            .scan()
            .table_name(table)
            .filter_expression("SK = :m")
            .expression_attribute_values(":m", AttributeValue::S("MESSAGE".into()))
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan the table");
        out.extend(page.items.unwrap_or_default());
        start = page.last_evaluated_key;
        if start.is_none() {
            return out;
        }
    }
}

/// When a message was last claimed for the carrier (its last `sending`).
fn last_claim(m: &HashMap<String, AttributeValue>) -> Option<DateTime<Utc>> {
    m.get("history")?
        .as_l()
        .ok()?
        .iter()
        .filter_map(|h| h.as_m().ok())
        .filter(|h| {
            h.get("status")
                .and_then(|s| s.as_s().ok())
                .is_some_and(|s| s == "sending")
        })
        .filter_map(|h| h.get("at")?.as_s().ok()?.parse::<DateTime<Utc>>().ok())
        .max()
}

fn count_statuses(messages: &mut [HashMap<String, AttributeValue>]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for m in messages.iter() {
        *counts.entry(status_of(m).to_owned()).or_insert(0) += 1;
    }
    counts
}

/// A message's history as `[at, status, reason]` lines.
fn history_lines(m: &HashMap<String, AttributeValue>) -> Vec<(String, String, String)> {
    let field = |h: &HashMap<String, AttributeValue>, k: &str| {
        h.get(k)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    m.get("history")
        .and_then(|h| h.as_l().ok())
        .into_iter()
        .flatten()
        .filter_map(|h| h.as_m().ok())
        .map(|h| (field(h, "at"), field(h, "status"), field(h, "reason")))
        .collect()
}

/// The `n` template texts with the longest time from their first status (queued or
/// scheduled) to the phone, each with its history as `[at, status, reason]` lines.
fn slowest(messages: &[HashMap<String, AttributeValue>], inbox: &[Value], n: usize) -> Vec<Value> {
    let by_body: HashMap<&str, &HashMap<String, AttributeValue>> = messages
        .iter()
        .filter_map(|m| Some((m.get("body")?.as_s().ok()?.as_str(), m)))
        .collect();
    let mut late: Vec<(i64, Value)> = inbox
        .iter()
        .filter(|t| is_template_text(t))
        .filter_map(|t| {
            let m = by_body.get(t["body"].as_str()?)?;
            let lines = history_lines(m);
            let queued = lines.first()?.0.parse::<DateTime<Utc>>().ok()?;
            let at_phone = t["at"].as_str()?.parse::<DateTime<Utc>>().ok()?;
            let took = (at_phone - queued).num_milliseconds();
            Some((
                took,
                json!({
                    "message": m.get("PK").and_then(|v| v.as_s().ok()),
                    "seconds_to_phone": took as f64 / 1000.0,
                    "at_phone": at_phone,
                    "history": lines,
                }),
            ))
        })
        .collect();
    late.sort_by_key(|(took, _)| std::cmp::Reverse(*took));
    late.into_iter().take(n).map(|(_, v)| v).collect()
}

async fn carrier_messages(portal: &Portal) -> Vec<Value> {
    portal
        .http
        .get(format!("{}/messages", portal.carrier))
        .send()
        .await
        .expect("carrier answers")
        .json()
        .await
        .expect("json")
}

/// A text of the run's template (its body carries `Ref n`).
fn is_template_text(m: &Value) -> bool {
    m["direction"] == "outbound-api" && m["body"].as_str().is_some_and(|b| b.contains("Ref "))
}

async fn measure(
    report: &mut ChaosReport,
    messages: &[HashMap<String, AttributeValue>],
    inbox: &[Value],
    people: &HashMap<usize, Person>,
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    portal: &Portal,
) {
    let now = Utc::now();
    for m in messages.iter().filter(|m| in_flight(m, now)) {
        report.stuck += 1;
        report.evidence.push(json!({
            "violation": "text stuck",
            "message": m.get("PK").and_then(|v| v.as_s().ok()),
            "status": status_of(m),
            "history": history_lines(m),
        }));
    }
    // Template texts at the phones: each body once.
    let mut bodies: HashMap<&str, usize> = HashMap::new();
    for m in inbox.iter().filter(|m| is_template_text(m)) {
        *bodies.entry(m["body"].as_str().unwrap_or("")).or_insert(0) += 1;
        report.texts_at_phones += 1;
    }
    // None claimed for the carrier while its person had stopped: from the STOP seen on the
    // ledger (at or after it was written) to the next START sent. The claim is the moment
    // consent is checked with the write; a text claimed before the STOP and at the carrier
    // after it was already on its way.
    for m in messages {
        let (Some(to), Some(claimed)) = (m.get("to").and_then(|v| v.as_s().ok()), last_claim(m))
        else {
            continue;
        };
        let is_template = m
            .get("body")
            .and_then(|v| v.as_s().ok())
            .is_some_and(|b| b.contains("Ref "));
        let Some((&who, person)) = people.iter().find(|(i, _)| phone_of(**i) == *to) else {
            continue;
        };
        let stopped = person.stops_recorded.iter().enumerate().any(|(k, stop)| {
            let until = person.starts_sent.get(k).copied();
            claimed > *stop && until.is_none_or(|start| claimed < start)
        });
        if is_template && stopped {
            report.texts_without_consent += 1;
            let (_, ledger) = history_of(portal, who).await;
            report.evidence.push(json!({
                "violation": "text without consent",
                "message": m.get("PK").and_then(|v| v.as_s().ok()),
                "to": to,
                "claimed": claimed,
                "history": m.get("history").map(|h| format!("{h:?}")),
                "stops_recorded": person.stops_recorded,
                "stops_lost": person.stops_lost,
                "starts_sent": person.starts_sent,
                "ledger": ledger_lines(&ledger),
            }));
        }
    }
    report.texts_twice = bodies.values().filter(|n| **n > 1).count();
    // Every reply the carrier delivered to the service was acted on: its finished mark.
    report.replies_not_acted = unfinished_replies(ddb, table, inbox).await;
    // Each STOP sent is one revocation by reply on the person's ledger.
    let mut acted = 0;
    for who in people.keys() {
        let (_, history) = history_of(portal, *who).await;
        let stops: HashSet<String> = history["entries"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["event"] == "revoked-by-reply")
            .filter_map(|e| e["evidence"].as_str().map(str::to_owned))
            .collect();
        acted += stops.len();
        let person = &people[who];
        let posted = person.stops_recorded.len() + person.stops_lost;
        if stops.len() != posted {
            report.evidence.push(json!({
                "violation": "STOPs acted on",
                "contact": who,
                "stops_posted": posted,
                "stops_recorded": person.stops_recorded,
                "starts_sent": person.starts_sent,
                "ledger": ledger_lines(&history),
            }));
        }
    }
    report.stops_acted = acted;
}
