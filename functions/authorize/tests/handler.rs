//! Handler tests of the authorize function: the API Gateway HTTP API v2 events in
//! events/ (changed only where a test needs it), turned into `lambda_http::Request`s
//! and handled in-process over the consent library's in-memory fakes.
//!
//! Times are explicit: `noon()` is Wednesday 2026-06-10 16:00 UTC = 12:00 EDT for the
//! customer's Washington, D.C. number (+1 202 555 0143).

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use consent_adapters::http::testing::{body_json, content_type, event, problem, request};
use lambda_http::http::{header, StatusCode};
use lambda_http::{Body, Response};
use serde_json::{json, Value};

use authorize::{handle, App};
use consent::approval::{ApprovalCode, CodeHasher};
use consent::fakes;
use consent::ledger::{ConsentEvent, ConsentStatus};
use consent::message::{MessageKind, MessageStatus};
use consent::ports::{ConsentReader, ContactStore, MessageReader};
use consent::{Category, ContactId, DealerId, PhoneNumber};

const PUT_DEALER: &str = include_str!("../../../events/settings-put-dealer.json");
const PUT_CONTACT: &str = include_str!("../../../events/authorize-put-contact.json");
const LIST_ACCOUNT: &str = include_str!("../../../events/authorize-list-account-contacts.json");
const REQUEST: &str = include_str!("../../../events/authorize-request.json");
const VERIFY: &str = include_str!("../../../events/authorize-verify.json");
const UNSUBSCRIBE: &str = include_str!("../../../events/authorize-unsubscribe.json");
const HISTORY: &str = include_str!("../../../events/authorize-history.json");

const DEALER: &str = "demo-dealer";
const CUSTOMER: &str = "+12025550143";

fn noon() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 10, 16, 0, 0).unwrap()
}

// ------------------------------------------------------------------ events

fn with_body(mut event: Value, body: Value) -> Value {
    event["body"] = Value::String(body.to_string());
    event
}

fn with_raw_body(mut event: Value, body: &str) -> Value {
    event["body"] = Value::String(body.to_owned());
    event
}

fn with_claim(mut event: Value, claim: &str, value: &str) -> Value {
    event["requestContext"]["authorizer"]["jwt"]["claims"][claim] = json!(value);
    event
}

/// The event as another dealer's staff user would send it.
fn as_dealer(event: Value, dealer: &str) -> Value {
    with_claim(event, "dealer_id", dealer)
}

/// Points `{contactId}` (and the raw path) at another contact.
fn for_contact(mut event: Value, contact: &str) -> Value {
    event["pathParameters"]["contactId"] = json!(contact);
    let path = event["rawPath"]
        .as_str()
        .unwrap()
        .replace("/C-1001", &format!("/{contact}"));
    event["rawPath"] = json!(path);
    event["requestContext"]["http"]["path"] = json!(path);
    event
}

/// Points `{category}` (and the raw path) at another category.
fn for_category(mut event: Value, category: &str) -> Value {
    event["pathParameters"]["category"] = json!(category);
    let path = event["rawPath"]
        .as_str()
        .unwrap()
        .replace("/accounting", &format!("/{category}"));
    event["rawPath"] = json!(path);
    event["requestContext"]["http"]["path"] = json!(path);
    event
}

fn contact_body(name: &str, phone: &str, accounts: &[&str]) -> Value {
    json!({"name": name, "phone": phone, "accountIds": accounts, "dealIds": []})
}

// ------------------------------------------------------------------ world

/// The one test world, unseeded (its store, queue and code key), with the authorize
/// function over it.
struct World {
    world: fakes::World,
    app: App,
    /// The settings function over the same store (dealer, templates, automations).
    settings: settings::App,
}

impl std::ops::Deref for World {
    type Target = fakes::World;

    fn deref(&self) -> &fakes::World {
        &self.world
    }
}

impl World {
    /// No dealer or contact yet (`seeded` creates them through the handlers).
    fn new() -> Self {
        let world = fakes::World::unseeded(&fakes::Seed::demo());
        let store = &world.store;
        let app = App {
            claims: Default::default(),
            dealers: Arc::new(store.clone()),
            contacts: Arc::new(store.clone()),
            consent: Arc::new(store.clone()),
            consent_writer: Arc::new(store.clone()),
            pending: Arc::new(store.clone()),
            limits: Arc::new(store.clone()),
            messages: Arc::new(store.clone()),
            queue: Arc::new(world.queue.clone()),
            hasher: Arc::new(world.hasher.clone()),
            number_pool: Vec::new(),
            numbers: Arc::new(store.clone()),
            ledger: Arc::new(store.clone()),
        };
        // The operator provisioned the fixture's number.
        store.provision(
            &phone("+12025550100"),
            "AC-test",
            &DealerId::parse("demo-dealer").unwrap(),
        );
        // ... and one for a dealer that has not signed up yet
        store.provision(
            &phone("+12025550188"),
            "AC-test",
            &DealerId::parse("later-dealer").unwrap(),
        );
        let settings = settings::App {
            claims: Default::default(),
            dealers: Arc::new(store.clone()),
            numbers: Arc::new(store.clone()),
            templates: Arc::new(store.clone()),
            automations: Arc::new(store.clone()),
            number_pool: Vec::new(),
        };
        World {
            world,
            app,
            settings,
        }
    }

    /// The demo dealer and its contact C-1001, created through the handler itself.
    async fn seeded() -> Self {
        let w = Self::new();
        assert_eq!(w.call(event(PUT_DEALER)).await.status(), StatusCode::OK);
        assert_eq!(
            w.call(event(PUT_CONTACT)).await.status(),
            StatusCode::CREATED
        );
        w
    }

    async fn call(&self, event: Value) -> Response<Body> {
        self.call_at(event, noon()).await
    }

    async fn call_at(&self, event: Value, now: DateTime<Utc>) -> Response<Body> {
        let route = event["requestContext"]["routeKey"]
            .as_str()
            .unwrap_or_default();
        // As infra/template.yaml routes them: the dealer's settings are another function's.
        let response = if route.contains("/v1/dealer") {
            settings::handle(&self.settings, request(&event), now).await
        } else {
            handle(&self.app, request(&event), now).await
        };
        // Every response these tests see is held to docs/openapi.yaml (make test).
        consent_adapters::http::record_sample(route, &response);
        response
    }

    fn dealer(&self) -> DealerId {
        DealerId::parse(DEALER).unwrap()
    }

    async fn stored_contact(&self, id: &str) -> Option<consent::ports::Contact> {
        self.store
            .contact(&self.dealer(), &ContactId::parse(id).unwrap())
            .await
            .unwrap()
    }

    /// Authorize clicked for `category` of C-1001: 202; returns the code texted.
    async fn request_code(&self, category: &str, now: DateTime<Utc>) -> ApprovalCode {
        let response = self
            .call_at(
                with_body(event(REQUEST), json!({ "category": category })),
                now,
            )
            .await;
        assert_eq!(
            response.status(),
            StatusCode::ACCEPTED,
            "{}",
            body_json(&response)
        );
        self.last_code().await
    }

    /// The code in the newest queued text, as the person's phone will show it: the
    /// stored text and its queue record hold it only sealed (the body has the mask).
    async fn last_code(&self) -> ApprovalCode {
        let newest = self.queue.sent().pop().expect("a queued code text");
        let text = self
            .store
            .message(&newest.envelope.message_id)
            .await
            .unwrap()
            .expect("the queued text is stored");
        assert_eq!(text.kind, MessageKind::ApprovalCode);
        let body = &text.body;
        assert!(
            body.contains(consent::approval::CODE_MASK)
                && !body
                    .split(|c: char| !c.is_ascii_digit())
                    .any(|t| t.len() == 6),
            "the stored code text holds no code: {body:?}"
        );
        let record = serde_json::to_string(&newest.envelope).unwrap();
        let sealed = text.code.as_ref().expect("the sealed code");
        let code = self
            .app
            .hasher
            .key()
            .await
            .unwrap()
            .open(&sealed.sealed, text.id.as_str())
            .unwrap();
        assert!(
            !record.contains(code.reveal()),
            "the queue record holds no code: {record}"
        );
        code
    }

    async fn verify(&self, category: &str, code: &ApprovalCode) -> Response<Body> {
        self.call(with_body(
            for_category(event(VERIFY), category),
            json!({ "code": code.reveal() }),
        ))
        .await
    }

    /// Request and verify: the person authorized `category`.
    async fn authorize(&self, category: &str) {
        let code = self.request_code(category, noon()).await;
        let response = self.verify(category, &code).await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{}",
            body_json(&response)
        );
    }

    async fn consent_status(&self, category: Category) -> ConsentStatus {
        self.store
            .consent(&self.dealer(), &phone(CUSTOMER))
            .await
            .unwrap()
            .value
            .get(category)
            .status
    }
}

fn phone(s: &str) -> PhoneNumber {
    PhoneNumber::from_e164(s).unwrap()
}

/// A valid code that is not `code`.
fn wrong(code: &ApprovalCode) -> ApprovalCode {
    let mut s = code.reveal().to_owned();
    let first = (s.as_bytes()[0] - b'0' + 1) % 10;
    s.replace_range(0..1, &first.to_string());
    ApprovalCode::parse(&s).unwrap()
}

// ------------------------------------------------------------------ contacts

#[tokio::test]
async fn put_contact_creates_then_updates_and_stores_the_phone_as_e164() {
    let w = World::new();

    // WHEN the fixture (phone "(202) 555-0143") is PUT
    let response = w.call(event(PUT_CONTACT)).await;

    // THEN 201 with the contact, the phone in E.164, every category "none"
    assert_eq!(response.status(), StatusCode::CREATED);
    let body = body_json(&response);
    assert_eq!(body["id"], "C-1001");
    assert_eq!(body["dealerId"], DEALER);
    assert_eq!(body["name"], "Maria Lopez");
    assert_eq!(body["phone"], CUSTOMER);
    assert_eq!(body["accountIds"], json!(["A-1001"]));
    assert_eq!(body["dealIds"], json!(["D-2001"]));
    assert_eq!(body["timeZone"], "America/New_York");
    for c in ["accounting", "service", "sales", "marketing"] {
        assert_eq!(body["authorizations"][c], "none", "{c}");
    }
    let stored = w.stored_contact("C-1001").await.unwrap();
    assert_eq!(stored.phone, phone(CUSTOMER));
    assert_eq!(stored.updated_at, noon());

    // WHEN it is PUT again with another name and a second account
    let later = noon() + Duration::minutes(5);
    let mut changed = contact_body("Maria L. Lopez", "202.555.0143", &["A-1001", "A-1002"]);
    changed["dealIds"] = json!(["D-2001"]);
    let response = w
        .call_at(with_body(event(PUT_CONTACT), changed), later)
        .await;

    // THEN 200 and the stored contact is replaced
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_json(&response)["name"], "Maria L. Lopez");
    let stored = w.stored_contact("C-1001").await.unwrap();
    assert_eq!(stored.name, "Maria L. Lopez");
    assert_eq!(stored.phone, phone(CUSTOMER));
    assert_eq!(stored.account_ids.len(), 2);
    assert_eq!(stored.updated_at, later);
}

#[tokio::test]
async fn bad_contact_input_is_refused_and_nothing_is_written() {
    let w = World::new();
    let cases: Vec<(&str, Value, StatusCode, &str)> = vec![
        (
            "bad phone",
            with_body(
                event(PUT_CONTACT),
                contact_body("Maria Lopez", "555-0143", &["A-1001"]),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
        ),
        (
            "letters in the phone",
            with_body(
                event(PUT_CONTACT),
                contact_body("Maria Lopez", "call me maybe", &["A-1001"]),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
        ),
        (
            "bad time zone",
            with_body(
                event(PUT_CONTACT),
                json!({"name": "Maria Lopez", "phone": "(202) 555-0143", "timeZone": "Mars/Olympus"}),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
        ),
        (
            "malformed JSON",
            with_raw_body(event(PUT_CONTACT), "{\"name\": \"Maria\", \"phone\": "),
            StatusCode::BAD_REQUEST,
            "bad-request",
        ),
        (
            "unknown field",
            with_body(
                event(PUT_CONTACT),
                json!({"name": "Maria Lopez", "phone": "(202) 555-0143", "email": "m@example.com"}),
            ),
            StatusCode::BAD_REQUEST,
            "bad-request",
        ),
        (
            "wrong content type",
            {
                let mut e = event(PUT_CONTACT);
                e["headers"]["content-type"] = json!("text/plain");
                e
            },
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
        ),
    ];
    for (what, event, status, slug) in cases {
        let response = w.call(event).await;
        let body = problem(&response, status, slug);
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{what}: {body}"
        );
        assert!(w.stored_contact("C-1001").await.is_none(), "{what}");
    }

    // The reasons say what is wrong.
    let response = w
        .call(with_body(
            event(PUT_CONTACT),
            contact_body("Maria Lopez", "555-0143", &[]),
        ))
        .await;
    let detail = body_json(&response)["detail"].as_str().unwrap().to_owned();
    assert!(detail.starts_with("phone: "), "{detail}");
    let response = w
        .call(with_body(
            event(PUT_CONTACT),
            json!({"name": "Maria Lopez", "phone": "(202) 555-0143", "email": "m@example.com"}),
        ))
        .await;
    let detail = body_json(&response)["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains("email"), "{detail}");
    assert!(w.store.messages().is_empty());
}

#[tokio::test]
async fn account_contacts_show_each_categorys_authorization() {
    // GIVEN C-1001 authorized accounting, has a pending service request and revoked
    // sales; C-1002 on the same account never did anything; C-1003 is on another account
    let w = World::seeded().await;
    let put = |id: &str, body: Value| with_body(for_contact(event(PUT_CONTACT), id), body);
    let r = w
        .call(put(
            "C-1002",
            contact_body("Jordan Lee", "(202) 555-0144", &["A-1001"]),
        ))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = w
        .call(put(
            "C-1003",
            contact_body("Sam Patel", "(202) 555-0145", &["A-9999"]),
        ))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    w.authorize("accounting").await;
    w.request_code("service", noon()).await;
    w.authorize("sales").await;
    let r = w.call(for_category(event(UNSUBSCRIBE), "sales")).await;
    assert_eq!(r.status(), StatusCode::OK);

    // WHEN the account's contacts are listed
    let response = w.call(event(LIST_ACCOUNT)).await;

    // THEN both account contacts, each with its per-category status
    assert_eq!(response.status(), StatusCode::OK);
    let body = body_json(&response);
    let contacts = body["contacts"].as_array().unwrap();
    let ids: Vec<&str> = contacts.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["C-1001", "C-1002"]);
    assert_eq!(
        contacts[0]["authorizations"],
        json!({"accounting": "authorized", "service": "pending", "sales": "revoked", "marketing": "none"})
    );
    assert_eq!(contacts[0]["phone"], CUSTOMER);
    // AND the pending category says when its code expires (the portal's dialog shows it)
    assert_eq!(
        contacts[0]["pendingExpiresAt"],
        json!({"service": (noon() + Duration::minutes(10)).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)})
    );
    assert!(contacts[1].get("pendingExpiresAt").is_none());
    // AND the zone its schedules are read in: its own, else its area code's (202: Washington)
    assert_eq!(contacts[1]["localTimeZone"], "America/New_York");
    assert_eq!(
        contacts[1]["authorizations"],
        json!({"accounting": "none", "service": "none", "sales": "none", "marketing": "none"})
    );

    // AND a pending request that expired shows as none again
    let response = w
        .call_at(event(LIST_ACCOUNT), noon() + Duration::minutes(11))
        .await;
    let later = body_json(&response);
    assert_eq!(later["contacts"][0]["authorizations"]["service"], "none");
    assert!(later["contacts"][0].get("pendingExpiresAt").is_none());
}

// ------------------------------------------------------------------ authorize / verify

#[tokio::test]
async fn authorize_texts_a_code_and_answers_202_pending() {
    let w = World::seeded().await;

    // WHEN staff click Authorize for accounting
    let response = w.call(event(REQUEST)).await;

    // THEN 202 pending, expiring in 10 minutes
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let body = body_json(&response);
    assert_eq!(body["status"], "pending");
    assert_eq!(body["category"], "accounting");
    assert_eq!(body["resent"], false);
    let expires: DateTime<Utc> = body["expiresAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires, noon() + Duration::minutes(10));

    // AND one code text is stored and queued, from the dealer's number, naming the dealer
    let messages = w.store.messages();
    assert_eq!(messages.len(), 1);
    let text = &messages[0];
    assert_eq!(text.kind, MessageKind::ApprovalCode);
    assert_eq!(text.status, MessageStatus::Queued);
    assert_eq!(text.to, phone(CUSTOMER));
    assert_eq!(text.from, phone("+12025550100"));
    assert!(text.body.starts_with("Demo Motors: "), "{}", text.body);
    assert!(text.body.contains("STOP"), "{}", text.body);
    // AND the stored text shows the code masked, never in clear (its sealed form opens)
    let code = w.last_code().await;
    assert!(!text.body.contains(code.reveal()), "{}", text.body);
    assert!(text.body.contains("is ******."), "{}", text.body);
    let queued = w.queue.sent();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].envelope.message_id, text.id);
    assert_eq!(queued[0].envelope.kind, "message.queued");
    assert_eq!(queued[0].delay_seconds, 0);

    // AND the contact shows pending
    let list = body_json(&w.call(event(LIST_ACCOUNT)).await);
    assert_eq!(
        list["contacts"][0]["authorizations"]["accounting"],
        "pending"
    );
}

#[tokio::test]
async fn the_right_code_authorizes_and_records_the_staff_user() {
    let w = World::seeded().await;
    let code = w.request_code("accounting", noon()).await;

    // WHEN staff type the code the person read back
    let response = w.verify("accounting", &code).await;

    // THEN 200 authorized, with the ledger entry naming the staff user
    assert_eq!(response.status(), StatusCode::OK);
    let body = body_json(&response);
    assert_eq!(body["status"], "authorized");
    assert_eq!(body["category"], "accounting");
    assert_eq!(body["ledgerEntry"]["event"], "granted-by-code");
    assert_eq!(
        body["ledgerEntry"]["actor"],
        json!({"type": "staff", "id": "staff-1"})
    );
    assert_eq!(body["ledgerEntry"]["phone"], CUSTOMER);
    assert_eq!(
        w.consent_status(Category::Accounting).await,
        ConsentStatus::Authorized
    );
    assert_eq!(
        w.consent_status(Category::Service).await,
        ConsentStatus::None
    );

    // AND the code cannot be used twice
    let again = w.verify("accounting", &code).await;
    problem(&again, StatusCode::NOT_FOUND, "no-pending-request");
}

#[tokio::test]
async fn a_wrong_code_is_422_with_attempts_left_and_changes_nothing() {
    let w = World::seeded().await;
    let code = w.request_code("accounting", noon()).await;

    let response = w.verify("accounting", &wrong(&code)).await;

    let body = problem(&response, StatusCode::UNPROCESSABLE_ENTITY, "invalid-code");
    assert_eq!(body["attemptsLeft"], 4);
    assert_eq!(
        w.consent_status(Category::Accounting).await,
        ConsentStatus::None
    );
    assert!(w.store.ledger(&w.dealer(), &phone(CUSTOMER)).is_empty());

    // AND the right code still works afterwards
    let response = w.verify("accounting", &code).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn five_wrong_codes_use_the_request_up_410() {
    let w = World::seeded().await;
    let code = w.request_code("accounting", noon()).await;
    let bad = wrong(&code);

    for left in (1..=4).rev() {
        let body = problem(
            &w.verify("accounting", &bad).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-code",
        );
        assert_eq!(body["attemptsLeft"], left);
    }
    problem(
        &w.verify("accounting", &bad).await,
        StatusCode::GONE,
        "code-expired",
    );

    // THEN even the right code is refused now
    problem(
        &w.verify("accounting", &code).await,
        StatusCode::GONE,
        "code-expired",
    );
    assert_eq!(
        w.consent_status(Category::Accounting).await,
        ConsentStatus::None
    );
}

#[tokio::test]
async fn an_expired_code_is_410() {
    let w = World::seeded().await;
    let code = w.request_code("accounting", noon()).await;

    let response = w
        .call_at(
            with_body(event(VERIFY), json!({ "code": code.reveal() })),
            noon() + Duration::minutes(10),
        )
        .await;

    problem(&response, StatusCode::GONE, "code-expired");
    assert_eq!(
        w.consent_status(Category::Accounting).await,
        ConsentStatus::None
    );
}

#[tokio::test]
async fn a_malformed_code_is_422_and_costs_no_attempt() {
    let w = World::seeded().await;
    let code = w.request_code("accounting", noon()).await;

    let response = w
        .call(with_body(event(VERIFY), json!({"code": "12345"})))
        .await;

    problem(
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    );
    let body = problem(
        &w.verify("accounting", &wrong(&code)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-code",
    );
    assert_eq!(body["attemptsLeft"], 4);
}

#[tokio::test]
async fn codes_per_number_are_rate_limited_with_retry_after() {
    let w = World::seeded().await;
    for i in 0..5 {
        let response = w
            .call_at(event(REQUEST), noon() + Duration::minutes(i))
            .await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        // A repeat inside the 10 minutes resends the same request.
        assert_eq!(body_json(&response)["resent"], i > 0);
    }

    let response = w
        .call_at(event(REQUEST), noon() + Duration::minutes(6))
        .await;

    let body = problem(&response, StatusCode::TOO_MANY_REQUESTS, "rate-limited");
    let retry = body["retryAfter"].as_u64().unwrap();
    assert!(retry > 0);
    assert_eq!(
        response.headers()[header::RETRY_AFTER].to_str().unwrap(),
        retry.to_string()
    );
    assert_eq!(w.store.messages().len(), 5);
}

#[tokio::test]
async fn an_unknown_category_is_refused() {
    let w = World::seeded().await;

    // In the body of a request: 422
    let response = w
        .call(with_body(event(REQUEST), json!({"category": "billing"})))
        .await;
    let body = problem(
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    );
    assert!(body["detail"].as_str().unwrap().contains("billing"));

    // In the path of verify or unsubscribe: 400
    let response = w
        .call(with_body(
            for_category(event(VERIFY), "billing"),
            json!({"code": "123456"}),
        ))
        .await;
    problem(&response, StatusCode::BAD_REQUEST, "bad-request");
    let response = w.call(for_category(event(UNSUBSCRIBE), "billing")).await;
    problem(&response, StatusCode::BAD_REQUEST, "bad-request");

    assert!(w.store.messages().is_empty());
    assert!(w.store.ledger(&w.dealer(), &phone(CUSTOMER)).is_empty());
}

// ------------------------------------------------------------------ unsubscribe / history

#[tokio::test]
async fn unsubscribe_revokes_the_category() {
    let w = World::seeded().await;
    w.authorize("accounting").await;
    w.authorize("service").await;

    let response = w.call(event(UNSUBSCRIBE)).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        body_json(&response),
        json!({"category": "accounting", "status": "revoked"})
    );
    assert_eq!(
        w.consent_status(Category::Accounting).await,
        ConsentStatus::Revoked
    );
    assert_eq!(
        w.consent_status(Category::Service).await,
        ConsentStatus::Authorized
    );
    let ledger = w.store.ledger(&w.dealer(), &phone(CUSTOMER));
    let last = ledger.last().unwrap();
    assert_eq!(last.event, ConsentEvent::RevokedByPortal);
    assert_eq!(last.category, Category::Accounting);

    // AND unsubscribing again records nothing new
    let again = w.call(event(UNSUBSCRIBE)).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(
        w.store.ledger(&w.dealer(), &phone(CUSTOMER)).len(),
        ledger.len()
    );
}

#[tokio::test]
async fn history_lists_the_ledger_entries_of_the_contacts_number() {
    let w = World::seeded().await;
    w.authorize("accounting").await;
    assert_eq!(w.call(event(UNSUBSCRIBE)).await.status(), StatusCode::OK);

    let response = w.call(event(HISTORY)).await;

    assert_eq!(response.status(), StatusCode::OK);
    let body = body_json(&response);
    assert_eq!(body["contactId"], "C-1001");
    assert_eq!(body["phone"], CUSTOMER);
    let events: Vec<&str> = body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["granted-by-code", "revoked-by-portal"]);
    for e in body["entries"].as_array().unwrap() {
        assert_eq!(e["category"], "accounting");
        assert_eq!(e["actor"], json!({"type": "staff", "id": "staff-1"}));
        assert_eq!(e["dealerId"], DEALER);
    }
    assert_eq!(body["entries"][0]["disclosureVersion"], "accounting-v1");
}

// ------------------------------------------------------------------ identity and tenancy

#[tokio::test]
async fn missing_or_malformed_claims_are_401() {
    let w = World::seeded().await;
    let mut no_authorizer = event(LIST_ACCOUNT);
    no_authorizer["requestContext"]
        .as_object_mut()
        .unwrap()
        .remove("authorizer");
    let mut no_dealer = event(LIST_ACCOUNT);
    no_dealer["requestContext"]["authorizer"]["jwt"]["claims"]
        .as_object_mut()
        .unwrap()
        .remove("dealer_id");
    let mut no_sub = event(REQUEST);
    no_sub["requestContext"]["authorizer"]["jwt"]["claims"]
        .as_object_mut()
        .unwrap()
        .remove("sub");
    let bad_dealer = with_claim(event(PUT_CONTACT), "dealer_id", "demo#dealer");

    for (what, e) in [
        ("no authorizer", no_authorizer),
        ("no dealer_id", no_dealer),
        ("no sub", no_sub),
        ("malformed dealer_id", bad_dealer),
    ] {
        let response = w.call(e).await;
        let body = problem(&response, StatusCode::UNAUTHORIZED, "unauthorized");
        assert_eq!(body["title"], "Unauthorized", "{what}");
    }
    assert_eq!(w.store.messages().len(), 0);
}

#[tokio::test]
async fn another_dealers_contact_is_not_found() {
    // GIVEN another dealer has contact C-9001
    let w = World::seeded().await;
    let theirs = with_body(
        as_dealer(for_contact(event(PUT_CONTACT), "C-9001"), "other-dealer"),
        contact_body("Pat Other", "(202) 555-0146", &["A-1001"]),
    );
    assert_eq!(w.call(theirs).await.status(), StatusCode::CREATED);

    // WHEN the demo dealer's staff act on C-9001
    for e in [
        for_contact(event(REQUEST), "C-9001"),
        with_body(
            for_contact(event(VERIFY), "C-9001"),
            json!({"code": "123456"}),
        ),
        for_contact(event(UNSUBSCRIBE), "C-9001"),
        for_contact(event(HISTORY), "C-9001"),
    ] {
        // THEN 404, as if it did not exist
        let response = w.call(e).await;
        problem(&response, StatusCode::NOT_FOUND, "not-found");
    }

    // AND the demo dealer's account list does not show it
    let list = body_json(&w.call(event(LIST_ACCOUNT)).await);
    let ids: Vec<&str> = list["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["C-1001"]);
    assert!(w.store.messages().is_empty());
    assert!(w
        .store
        .ledger(
            &DealerId::parse("other-dealer").unwrap(),
            &phone("+12025550146")
        )
        .is_empty());
}

// ------------------------------------------------------------------ consent evidence

const EVIDENCE: &str = include_str!("../../../events/authorize-consent-evidence.json");
const EXPORT: &str = include_str!("../../../events/authorize-consent-evidence-export.json");

fn accepting(mut event: Value, accept: &str) -> Value {
    event["headers"]["accept"] = json!(accept);
    event
}

fn with_query(mut event: Value, params: &[(&str, &str)]) -> Value {
    let map: serde_json::Map<String, Value> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    event["rawQueryString"] = json!(params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&"));
    event["queryStringParameters"] = Value::Object(map);
    event
}

fn text_of(response: &Response<Body>) -> String {
    String::from_utf8_lossy(response.body().as_ref()).into_owned()
}

#[tokio::test]
async fn a_persons_evidence_shows_the_disclosure_how_and_when_as_csv_or_json() {
    // GIVEN accounting granted by code, then unsubscribed in the portal
    let w = World::seeded().await;
    w.authorize("accounting").await;
    assert_eq!(w.call(event(UNSUBSCRIBE)).await.status(), StatusCode::OK);

    // WHEN staff ask for the evidence as CSV (the fixture's Accept)
    let response = w.call(event(EVIDENCE)).await;

    // THEN a CSV with a header and one row per ledger entry
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(content_type(&response), "text/csv; charset=utf-8");
    assert!(response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("consent-evidence-C-1001.csv"));
    let csv = text_of(&response);
    let lines: Vec<&str> = csv.trim_end().split("\r\n").collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[0].starts_with("at,phone,category,event,channel,actor,staff_user,"));
    assert!(lines[1].contains(",'+12025550143,accounting,granted-by-code,portal,staff,staff-1,"));
    assert!(lines[1].contains("accounting-v1"), "{}", lines[1]);
    assert!(lines[2].contains(",accounting,revoked-by-portal,portal,staff,staff-1,"));
    // AND the disclosure as texted, with the code masked, and its SHA-256
    let json_response = w.call(accepting(event(EVIDENCE), "application/json")).await;
    let body = body_json(&json_response);
    let grant = &body["entries"][0];
    let shown = grant["disclosureText"].as_str().unwrap();
    assert!(shown.contains(consent::approval::CODE_MASK), "{shown}");
    assert!(!shown
        .split(|c: char| !c.is_ascii_digit())
        .any(|t| t.len() == 6));
    assert_eq!(grant["disclosureSha256"].as_str().unwrap().len(), 64);
    assert_eq!(
        grant["evidence"].as_str().map(str::len),
        Some(26),
        "the request id"
    );
    // AND the Accept header's q-values decide: q=0 is "not this", the higher q wins
    for (accept, wanted) in [
        ("text/csv;q=0, application/json", Some("application/json")),
        ("text/csv; q=0", None),
        ("application/json;q=0.5, text/csv", Some("text/csv")),
        (
            "text/csv;q=0.4, application/json;q=0.9",
            Some("application/json"),
        ),
        ("text/*;q=0.8, */*;q=0.1", Some("text/csv")),
        ("*/*", Some("application/json")),
        ("text/html", None),
    ] {
        let answer = w.call(accepting(event(EVIDENCE), accept)).await;
        match wanted {
            Some(kind) => {
                assert_eq!(answer.status(), StatusCode::OK, "{accept}");
                assert!(content_type(&answer).starts_with(kind), "{accept}");
            }
            None => {
                problem(&answer, StatusCode::NOT_ACCEPTABLE, "not-acceptable");
            }
        }
    }
    // AND another dealer's staff see nothing of it
    let theirs = w.call(as_dealer(event(EVIDENCE), "other-dealer")).await;
    problem(&theirs, StatusCode::NOT_FOUND, "not-found");
    // AND an Accept the route cannot answer is 406
    let xml = w.call(accepting(event(EVIDENCE), "application/xml")).await;
    problem(&xml, StatusCode::NOT_ACCEPTABLE, "not-acceptable");
}

#[tokio::test]
async fn the_dealer_wide_export_is_for_dealer_admins_and_pages_a_period() {
    // GIVEN five consent changes on 2026-06-10 and one a month later
    let w = World::seeded().await;
    for category in ["accounting", "service"] {
        w.authorize(category).await;
    }
    for category in ["accounting", "service", "sales"] {
        let unsubscribe = for_category(event(UNSUBSCRIBE), category);
        w.call(unsubscribe).await;
    }
    w.call_at(event(UNSUBSCRIBE), noon() + Duration::days(40))
        .await;

    // WHEN a staff user without the role asks THEN 403
    let mut staff = event(EXPORT);
    staff["requestContext"]["authorizer"]["jwt"]["claims"]
        .as_object_mut()
        .unwrap()
        .remove("roles");
    problem(&w.call(staff).await, StatusCode::FORBIDDEN, "forbidden");

    // WHEN the admin pages June two entries at a time
    let mut cursor: Option<String> = None;
    let mut events = Vec::new();
    for page in 0.. {
        assert!(page < 5, "the export ends");
        let mut params = vec![
            ("from", "2026-06-01T00:00:00Z"),
            ("to", "2026-07-01T00:00:00Z"),
            ("limit", "2"),
        ];
        if let Some(c) = &cursor {
            params.push(("cursor", c));
        }
        let response = w.call(with_query(event(EXPORT), &params)).await;
        let body = body_json(&response);
        assert_eq!(response.status(), StatusCode::OK, "{body}");
        for e in body["entries"].as_array().unwrap() {
            events.push(format!(
                "{} {}",
                e["event"].as_str().unwrap(),
                e["category"].as_str().unwrap()
            ));
        }
        match body["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    // THEN June's entries, oldest first, and not July's (an unsubscribe of a category
    // never granted is still recorded: staff noted a "do not text")
    assert_eq!(
        events,
        [
            "granted-by-code accounting",
            "granted-by-code service",
            "revoked-by-portal accounting",
            "revoked-by-portal service",
            "revoked-by-portal sales",
        ]
    );
    // AND the fixture (June, CSV on request) answers CSV with the same rows
    let csv = w.call(accepting(event(EXPORT), "text/csv")).await;
    assert_eq!(csv.status(), StatusCode::OK);
    assert_eq!(text_of(&csv).trim_end().split("\r\n").count(), 1 + 5);
    // AND bad queries are clear problems
    for (params, status, slug) in [
        (
            vec![("to", "2026-07-01T00:00:00Z")],
            StatusCode::BAD_REQUEST,
            "bad-request",
        ),
        (
            vec![("from", "June"), ("to", "2026-07-01T00:00:00Z")],
            StatusCode::BAD_REQUEST,
            "bad-request",
        ),
        (
            vec![
                ("from", "2026-07-01T00:00:00Z"),
                ("to", "2026-06-01T00:00:00Z"),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
        ),
        (
            vec![
                ("from", "2026-06-01T00:00:00Z"),
                ("to", "2026-07-01T00:00:00Z"),
                ("limit", "0"),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
        ),
        (
            vec![
                ("from", "2026-06-01T00:00:00Z"),
                ("to", "2026-07-01T00:00:00Z"),
                ("limit", "many"),
            ],
            StatusCode::BAD_REQUEST,
            "bad-request",
        ),
        (
            vec![
                ("from", "2026-06-01T00:00:00Z"),
                ("to", "2026-07-01T00:00:00Z"),
                ("cursor", "forged"),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
        ),
    ] {
        let response = w.call(with_query(event(EXPORT), &params)).await;
        problem(&response, status, slug);
    }
}

// ------------------------------------------------------------------ contacts: delete and batch

fn route(mut event: Value, route_key: &str, path: &str) -> Value {
    event["routeKey"] = json!(route_key);
    event["requestContext"]["routeKey"] = json!(route_key);
    event["rawPath"] = json!(path);
    event["requestContext"]["http"]["path"] = json!(path);
    event["requestContext"]["http"]["method"] = json!(route_key.split(' ').next().unwrap());
    event
}

#[tokio::test]
async fn deleting_a_contact_removes_it_and_keeps_its_consent_evidence() {
    // GIVEN C-1001 with accounting authorized
    let w = World::seeded().await;
    w.authorize("accounting").await;
    let delete = || {
        let mut e = route(
            event(PUT_CONTACT),
            "DELETE /v1/contacts/{contactId}",
            "/v1/contacts/C-1001",
        );
        e.as_object_mut().unwrap().remove("body");
        e
    };

    // WHEN staff delete it
    let response = w.call(delete()).await;

    // THEN 204, the account lists it no more, and the number's ledger stays
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(w.stored_contact("C-1001").await.is_none());
    let listed = body_json(&w.call(event(LIST_ACCOUNT)).await);
    assert_eq!(listed["contacts"], json!([]));
    assert_eq!(w.store.ledger(&w.dealer(), &phone(CUSTOMER)).len(), 1);
    // AND deleting it again, or another dealer's try, is 404
    problem(&w.call(delete()).await, StatusCode::NOT_FOUND, "not-found");
    let w2 = World::seeded().await;
    let theirs = w2.call(as_dealer(delete(), "other-dealer")).await;
    problem(&theirs, StatusCode::NOT_FOUND, "not-found");
    assert!(w2.stored_contact("C-1001").await.is_some());
}

#[tokio::test]
async fn a_batch_upserts_each_contact_and_answers_for_each() {
    let w = World::seeded().await;
    let batch = |contacts: Value| {
        with_body(
            route(
                event(PUT_CONTACT),
                "POST /v1/contacts/batch",
                "/v1/contacts/batch",
            ),
            json!({ "contacts": contacts }),
        )
    };
    // GIVEN an update of C-1001, a new contact, a bad phone, and a duplicate id
    let response = w
        .call(batch(json!([
            {"contactId": "C-1001", "name": "Maria L.", "phone": "(202) 555-0143", "accountIds": ["A-1001"]},
            {"contactId": "C-2002", "name": "Ann", "phone": "202-555-0144", "accountIds": ["A-1001"], "timeZone": "America/Chicago"},
            {"contactId": "C-2003", "name": "Bob", "phone": "not a number"},
            {"contactId": "C-2002", "name": "Ann again", "phone": "202-555-0144"},
        ])))
        .await;
    // THEN one result per contact, in order; the good ones are stored
    assert_eq!(response.status(), StatusCode::OK);
    let results = body_json(&response)["results"].clone();
    let statuses: Vec<u64> = results
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 201, 422, 422]);
    assert_eq!(results[1]["contact"]["phone"], "+12025550144");
    assert_eq!(results[2]["problem"]["type"], "validation-failed");
    assert!(results[3]["problem"]["detail"]
        .as_str()
        .unwrap()
        .contains("twice"));
    assert_eq!(w.stored_contact("C-1001").await.unwrap().name, "Maria L.");
    assert_eq!(w.stored_contact("C-2002").await.unwrap().name, "Ann");
    assert!(w.stored_contact("C-2003").await.is_none());
    // AND an empty or oversized batch is refused as a whole
    problem(
        &w.call(batch(json!([]))).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    );
    let many: Vec<Value> = (0..101)
        .map(|i| json!({"contactId": format!("C-{i}"), "name": "N", "phone": "202-555-0100"}))
        .collect();
    problem(
        &w.call(batch(json!(many))).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    );
    assert!(w.stored_contact("C-0").await.is_none());
}

#[tokio::test]
async fn contact_lists_and_history_page_with_limit_and_cursor() {
    // GIVEN two contacts on account A-1001 and two ledger entries for C-1001
    let w = World::seeded().await;
    let second = for_contact(
        with_body(
            event(PUT_CONTACT),
            contact_body("Ann", "(202) 555-0144", &["A-1001"]),
        ),
        "C-1002",
    );
    assert_eq!(w.call(second).await.status(), StatusCode::CREATED);
    w.authorize("accounting").await;
    assert_eq!(w.call(event(UNSUBSCRIBE)).await.status(), StatusCode::OK);

    // WHEN staff page the account one contact at a time
    let first = body_json(
        &w.call(with_query(event(LIST_ACCOUNT), &[("limit", "1")]))
            .await,
    );
    assert_eq!(first["contacts"][0]["id"], "C-1001");
    let cursor = first["nextCursor"].as_str().unwrap().to_owned();
    let next = body_json(
        &w.call(with_query(
            event(LIST_ACCOUNT),
            &[("limit", "1"), ("cursor", &cursor)],
        ))
        .await,
    );
    // THEN the second page has the other contact and ends the list
    assert_eq!(next["contacts"][0]["id"], "C-1002");
    assert_eq!(next["nextCursor"], Value::Null);
    // AND the history pages the same way
    let h1 = body_json(&w.call(with_query(event(HISTORY), &[("limit", "1")])).await);
    assert_eq!(h1["entries"][0]["event"], "granted-by-code");
    let c = h1["nextCursor"].as_str().unwrap().to_owned();
    let h2 = body_json(
        &w.call(with_query(
            event(HISTORY),
            &[("limit", "1"), ("cursor", &c)],
        ))
        .await,
    );
    assert_eq!(h2["entries"][0]["event"], "revoked-by-portal");
    assert_eq!(h2["nextCursor"], Value::Null);
    // AND a bad limit or cursor is a clear problem
    for q in [
        [("limit", "0"), ("x", "")],
        [("limit", "5"), ("cursor", "bad*cursor")],
    ] {
        let response = w.call(with_query(event(LIST_ACCOUNT), &q)).await;
        problem(
            &response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
        );
    }
}

/// A code key that is still on its way (`None`: forever) or cannot be read.
struct KeyNotInHand(Option<&'static str>);

#[async_trait::async_trait]
impl consent::ports::CodeKey for KeyNotInHand {
    async fn key(&self) -> Result<Arc<CodeHasher>, consent::StoreError> {
        match self.0 {
            None => std::future::pending().await,
            Some(why) => Err(consent::StoreError::unavailable(
                "the approval-code key",
                std::io::Error::other(why),
            )),
        }
    }
}

#[tokio::test]
async fn routes_without_codes_never_wait_for_the_code_key() {
    let mut w = World::seeded().await;
    w.app.hasher = Arc::new(KeyNotInHand(None));
    let response = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        w.call(event(LIST_ACCOUNT)),
    )
    .await
    .expect("the contact list answers while the key is still being read");
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_unreadable_code_key_is_a_503_that_texts_nothing_and_spends_no_try() {
    let mut w = World::seeded().await;
    let code = w.request_code("accounting", noon()).await;
    let key = std::mem::replace(&mut w.app.hasher, Arc::new(KeyNotInHand(Some("denied"))));
    let asked = w
        .call(with_body(event(REQUEST), json!({ "category": "service" })))
        .await;
    problem(
        &asked,
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily-unavailable",
    );
    assert_eq!(w.queue.sent().len(), 1, "no code text without the key");
    for _ in 0..consent::approval::MAX_ATTEMPTS + 1 {
        let verify = w
            .call(with_body(event(VERIFY), json!({ "code": code.reveal() })))
            .await;
        problem(
            &verify,
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily-unavailable",
        );
    }
    w.app.hasher = key;
    let verify = w
        .call(with_body(event(VERIFY), json!({ "code": code.reveal() })))
        .await;
    assert_eq!(verify.status(), StatusCode::OK, "{}", body_json(&verify));
}

/// An instance that read the code key before it was rotated; asked again, it has the new
/// key (with the one it replaced as previous).
struct ReadBeforeTheRotation {
    old: CodeHasher,
    new: CodeHasher,
    rereads: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl consent::ports::CodeKey for ReadBeforeTheRotation {
    async fn key(&self) -> Result<Arc<CodeHasher>, consent::StoreError> {
        Ok(Arc::new(self.old.clone()))
    }

    async fn reread(&self, _stale: &Arc<CodeHasher>) -> Option<Arc<CodeHasher>> {
        self.rereads
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Some(Arc::new(self.new.clone().with_previous(self.old.clone())))
    }
}

#[tokio::test]
async fn a_code_hashed_under_a_newer_key_verifies_where_the_old_key_is_still_held() {
    // GIVEN the key was rotated: the code was requested on an instance that read the new
    // key, and is typed in on one that still holds the old key
    let mut w = World::seeded().await;
    let new = CodeHasher::new("the-code-key-after-the-rotation").unwrap();
    w.app.hasher = Arc::new(new.clone());
    let code = w.request_code("accounting", noon()).await;
    let stale = Arc::new(ReadBeforeTheRotation {
        old: w.hasher.clone(),
        new,
        rereads: Default::default(),
    });
    w.app.hasher = stale.clone();
    // WHEN a wrong code is typed, then the right one
    let wrong = ApprovalCode::parse(if code.reveal() == "000000" {
        "111111"
    } else {
        "000000"
    })
    .unwrap();
    let refused = w.verify("accounting", &wrong).await;
    assert_eq!(
        refused.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        body_json(&refused)
    );
    let verified = w.verify("accounting", &code).await;
    // THEN the right code verifies after the key is read once more, and the wrong one
    // stayed wrong under both keys (one try each)
    assert_eq!(
        verified.status(),
        StatusCode::OK,
        "{}",
        body_json(&verified)
    );
    assert_eq!(stale.rereads.load(std::sync::atomic::Ordering::SeqCst), 2);
}
