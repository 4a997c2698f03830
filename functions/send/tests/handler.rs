//! Handler tests of the send function: the API Gateway HTTP API v2 events in events/
//! (changed only where a test needs it) handled in-process over the in-memory fakes.
//!
//! The customer has a Washington, D.C. number (+1 202 555 0143, America/New_York);
//! `noon()` is Wednesday 2026-06-10 16:00 UTC = 12:00 EDT, inside the texting window.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use consent_adapters::http::testing::{body_json, event, problem, request};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use serde_json::{json, Value};

use consent::fakes::{self, grant_by_code, FakeQueue, InMemoryStore};
use consent::message::{MessageKind, MessageStatus, Origin};
use consent::ports::{InboundLog, InboundText, MessageReader};
use consent::{AccountId, Category, ContactId, DealerId, MessageId, PhoneNumber, StaffUserId};
use send::{handle, App};

const SEND: &str = include_str!("../../../events/send-message.json");
const SEND_SCHEDULED: &str = include_str!("../../../events/send-message-scheduled.json");
const GET_MESSAGE: &str = include_str!("../../../events/send-get-message.json");
const CANCEL: &str = include_str!("../../../events/send-cancel-message.json");
const TEMPLATES: &str = include_str!("../../../events/settings-templates.json");
const HEALTH: &str = include_str!("../../../events/send-health.json");
const PREVIEW: &str = include_str!("../../../events/send-preview.json");

const DEALER: &str = "demo-dealer";
const DEALER_NUMBER: &str = "+12025550100";
const CUSTOMER: &str = "+12025550143";

fn noon() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 10, 16, 0, 0).unwrap()
}

fn phone(s: &str) -> PhoneNumber {
    PhoneNumber::from_e164(s).unwrap()
}

// ------------------------------------------------------------------ events

/// The fixture's JSON body, parsed (to change a field and put it back).
fn body_of(event: &Value) -> Value {
    serde_json::from_str(event["body"].as_str().unwrap()).unwrap()
}

fn with_body(mut event: Value, body: Value) -> Value {
    event["body"] = Value::String(body.to_string());
    event
}

fn edit_body(event: Value, edit: impl FnOnce(&mut Value)) -> Value {
    let mut body = body_of(&event);
    edit(&mut body);
    with_body(event, body)
}

fn with_header(mut event: Value, name: &str, value: &str) -> Value {
    event["headers"][name] = json!(value);
    event
}

fn as_dealer(mut event: Value, dealer: &str) -> Value {
    event["requestContext"]["authorizer"]["jwt"]["claims"]["dealer_id"] = json!(dealer);
    event
}

/// Points `{messageId}` (and the raw path) at a message.
fn for_message(mut event: Value, id: &str) -> Value {
    let fixture_id = event["pathParameters"]["messageId"]
        .as_str()
        .unwrap()
        .to_owned();
    event["pathParameters"]["messageId"] = json!(id);
    let path = event["rawPath"].as_str().unwrap().replace(&fixture_id, id);
    event["rawPath"] = json!(path);
    event["requestContext"]["http"]["path"] = json!(path);
    event
}

// ------------------------------------------------------------------ world

struct World {
    store: InMemoryStore,
    queue: FakeQueue,
    app: App,
    /// The settings function over the same store (dealer, templates, automations).
    settings: settings::App,
}

impl World {
    /// The demo dealer and contact C-1001 (account A-1001), stored through the ports;
    /// no consent yet.
    async fn new() -> Self {
        let world = fakes::World::seeded({
            let mut seed = fakes::Seed::demo();
            seed.dealer.time_zone = Some(consent::Zone::named("America/New_York").unwrap());
            seed
        })
        .await;
        let (store, queue) = (world.store.clone(), world.queue.clone());
        let app = App {
            claims: Default::default(),
            dealers: Arc::new(store.clone()),
            contacts: Arc::new(store.clone()),
            consent: Arc::new(store.clone()),
            messages: Arc::new(store.clone()),
            queue: Arc::new(queue.clone()),
            number_pool: Vec::new(),
            conversations: Arc::new(store.clone()),
            templates: Arc::new(store.clone()),
        };
        let settings = settings::App {
            claims: Default::default(),
            dealers: Arc::new(store.clone()),
            numbers: Arc::new(store.clone()),
            templates: Arc::new(store.clone()),
            automations: Arc::new(store.clone()),
            number_pool: Vec::new(),
        };
        World {
            store,
            queue,
            app,
            settings,
        }
    }

    /// The person authorizes `category` by reading the texted code back to staff
    /// (the authorization service, as the authorize function runs it).
    async fn grant(&self, category: Category) {
        let staff = StaffUserId::parse("staff-1").unwrap();
        let contact = ContactId::parse("C-1001").unwrap();
        let at = noon() - Duration::hours(1);
        grant_by_code(
            &self.store,
            &self.queue,
            (&dealer(), &staff),
            &contact,
            category,
            at,
        )
        .await;
        self.queue.drain();
    }

    async fn call(&self, event: Value) -> Response<Body> {
        self.call_at(event, noon()).await
    }

    async fn call_at(&self, event: Value, now: DateTime<Utc>) -> Response<Body> {
        let route = event["requestContext"]["routeKey"]
            .as_str()
            .unwrap_or_default();
        // As infra/template.yaml routes them: the dealer's settings are another function's.
        let response = if route.contains("/v1/templates") || route.contains("/v1/automations") {
            settings::handle(&self.settings, request(&event), now).await
        } else {
            handle(&self.app, request(&event), now).await
        };
        // Every response these tests see is held to docs/openapi.yaml (make test).
        consent_adapters::http::record_sample(route, &response);
        response
    }

    fn template_messages(&self) -> Vec<consent::message::Message> {
        self.store
            .messages()
            .into_iter()
            .filter(|m| m.kind == MessageKind::Template)
            .collect()
    }

    async fn message(&self, id: &str) -> consent::message::Message {
        self.store
            .message(&MessageId::parse(id).unwrap())
            .await
            .unwrap()
            .expect("stored message")
    }
}

fn dealer() -> DealerId {
    DealerId::parse(DEALER).unwrap()
}

// ------------------------------------------------------------------ health, templates

#[tokio::test]
async fn health_answers_200_without_a_token() {
    let w = World::new().await;
    let e = event(HEALTH);
    assert!(e["requestContext"].get("authorizer").is_none());
    assert!(e["headers"].get("authorization").is_none());

    let response = w.call(e).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_json(&response), json!({"status": "ok"}));
}

// ------------------------------------------------------------------ POST /v1/messages

#[tokio::test]
async fn sending_without_consent_is_403_consent_required_naming_the_category() {
    // GIVEN the person authorized service texts only
    let w = World::new().await;
    w.grant(Category::Service).await;

    // WHEN staff send the (accounting) Auto Pay Failure template
    let response = w.call(event(SEND)).await;

    // THEN 403 consent-required naming the category, and nothing is stored or queued
    let body = problem(&response, StatusCode::FORBIDDEN, "consent-required");
    assert!(body["type"].as_str().unwrap().ends_with("consent-required"));
    assert_eq!(body["category"], "accounting");
    assert!(w.template_messages().is_empty());
    assert!(w.queue.sent().is_empty());
}

#[tokio::test]
async fn sending_with_consent_queues_the_message_202() {
    let w = World::new().await;
    w.grant(Category::Accounting).await;

    let response = w.call(event(SEND)).await;

    // THEN 202 queued with the segment count
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert!(response.headers().get("idempotent-replayed").is_none());
    let body = body_json(&response);
    assert_eq!(body["status"], "queued");
    assert_eq!(body["category"], "accounting");
    assert_eq!(body["replayed"], false);
    let id = body["messageId"].as_str().unwrap().to_owned();
    let segments = body["segments"].as_u64().unwrap();
    assert!(segments >= 1);

    // AND the message is stored, rendered, and on the outbound queue
    let m = w.message(&id).await;
    assert_eq!(m.status, MessageStatus::Queued);
    assert_eq!(u64::from(m.segments), segments);
    assert_eq!(m.to, phone(CUSTOMER));
    assert_eq!(m.from, phone(DEALER_NUMBER));
    assert_eq!(m.template.as_deref(), Some("auto-pay-failure"));
    assert_eq!(
        m.origin,
        Origin::Staff {
            user: StaffUserId::parse("staff-1").unwrap()
        }
    );
    assert_eq!(
        m.notes.as_deref(),
        Some("Customer asked for a text instead of a call.")
    );
    assert_eq!(m.account_id, Some(AccountId::parse("A-1001").unwrap()));
    assert!(
        m.body.starts_with(
            "Demo Motors: Hi Maria, your automatic payment of $412.37 due Jun 15, 2026"
        ),
        "{}",
        m.body
    );
    let queued = w.queue.sent();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].envelope.message_id.as_str(), id);
    assert_eq!(queued[0].envelope.dealer_id, dealer());
    assert_eq!(queued[0].delay_seconds, 0);
}

#[tokio::test]
async fn the_same_idempotency_key_twice_returns_the_first_message() {
    let w = World::new().await;
    w.grant(Category::Accounting).await;

    let first = w.call(event(SEND)).await;
    let second = w.call_at(event(SEND), noon() + Duration::seconds(20)).await;

    assert_eq!(first.status(), StatusCode::ACCEPTED);
    assert_eq!(second.status(), StatusCode::ACCEPTED);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    let (a, b) = (body_json(&first), body_json(&second));
    assert_eq!(a["messageId"], b["messageId"]);
    assert_eq!(b["replayed"], true);
    assert_eq!(w.template_messages().len(), 1);
    // The text, still waiting in the queue, is handed to it again: the first request may have
    // died before it queued it (the claim keeps it one text).
    let queued = w.queue.sent();
    assert_eq!(queued.len(), 2);
    assert!(queued
        .iter()
        .all(|q| q.envelope.message_id.as_str() == a["messageId"]));

    // AND the key with another body is refused
    let other = edit_body(event(SEND), |b| b["variables"]["amount"] = json!("99.00"));
    let response = w.call(other).await;
    problem(
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency-key-reused",
    );
    assert_eq!(w.template_messages().len(), 1);

    // AND another key sends again
    let response = w
        .call(with_header(event(SEND), "idempotency-key", "another-key-1"))
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_ne!(body_json(&response)["messageId"], a["messageId"]);
    assert_eq!(w.queue.sent().len(), 3);
}

#[tokio::test]
async fn an_invalid_idempotency_key_is_400() {
    let w = World::new().await;
    w.grant(Category::Accounting).await;

    let response = w
        .call(with_header(
            event(SEND),
            "idempotency-key",
            &"k".repeat(256),
        ))
        .await;

    problem(&response, StatusCode::BAD_REQUEST, "bad-request");
    assert!(w.template_messages().is_empty());
}

#[tokio::test]
async fn a_send_without_an_idempotency_key_is_428_and_texts_nothing() {
    // GIVEN consent WHEN the portal posts without an Idempotency-Key (a double click
    // would text twice) THEN 428, nothing stored or queued
    let w = World::new().await;
    w.grant(Category::Accounting).await;
    let mut no_key = event(SEND);
    no_key["headers"]
        .as_object_mut()
        .unwrap()
        .remove("idempotency-key");

    let response = w.call(no_key).await;

    let body = problem(
        &response,
        StatusCode::PRECONDITION_REQUIRED,
        "idempotency-key-required",
    );
    assert!(body["detail"].as_str().unwrap().contains("Idempotency-Key"));
    assert!(w.template_messages().is_empty());
    assert!(w.queue.sent().is_empty());
}

#[tokio::test]
async fn missing_template_variables_are_422() {
    let w = World::new().await;
    w.grant(Category::Accounting).await;

    let response = w
        .call(edit_body(event(SEND), |b| {
            b["variables"].as_object_mut().unwrap().remove("paymentUrl");
        }))
        .await;

    let body = problem(
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "template-variables",
    );
    assert!(
        body["detail"].as_str().unwrap().contains("paymentUrl"),
        "{body}"
    );
    assert!(w.template_messages().is_empty());
    assert!(w.queue.sent().is_empty());
}

#[tokio::test]
async fn an_invalid_scheduled_at_is_422() {
    let w = World::new().await;
    w.grant(Category::Accounting).await;

    for bad in ["tomorrow at 10", "2026-06-11 10:00", "2026-06-11T10:00:00"] {
        let response = w
            .call(edit_body(event(SEND_SCHEDULED), |b| {
                b["scheduledAt"] = json!(bad)
            }))
            .await;
        let body = problem(
            &response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
        );
        assert!(
            body["detail"].as_str().unwrap().contains("scheduledAt"),
            "{bad}: {body}"
        );
    }
    // In the past, or more than a year ahead
    for bad in ["2026-06-10T11:00:00-04:00", "2027-07-01T10:00:00-04:00"] {
        let response = w
            .call(edit_body(event(SEND_SCHEDULED), |b| {
                b["scheduledAt"] = json!(bad)
            }))
            .await;
        problem(
            &response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
        );
    }
    assert!(w.template_messages().is_empty());
}

#[tokio::test]
async fn a_scheduled_message_waits_and_is_not_queued() {
    let w = World::new().await;
    w.grant(Category::Accounting).await;

    let response = w.call(event(SEND_SCHEDULED)).await;

    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let body = body_json(&response);
    assert_eq!(body["status"], "scheduled");
    let send_at: DateTime<Utc> = body["sendAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        send_at,
        Utc.with_ymd_and_hms(2026, 6, 11, 14, 0, 0).unwrap()
    );
    assert!(w.queue.sent().is_empty());
}

#[tokio::test]
async fn a_send_in_quiet_hours_is_deferred_to_the_morning() {
    let w = World::new().await;
    w.grant(Category::Accounting).await;
    // 22:30 EDT
    let late = Utc.with_ymd_and_hms(2026, 6, 11, 2, 30, 0).unwrap();

    let response = w.call_at(event(SEND), late).await;

    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let body = body_json(&response);
    assert_eq!(body["status"], "deferred");
    assert_eq!(body["statusReason"], "quiet-hours");
    let until: DateTime<Utc> = body["deferredUntil"].as_str().unwrap().parse().unwrap();
    // 08:00 EDT
    assert_eq!(until, Utc.with_ymd_and_hms(2026, 6, 11, 12, 0, 0).unwrap());
    assert!(w.queue.sent().is_empty());
}

// ------------------------------------------------------------------ GET and DELETE

#[tokio::test]
async fn a_message_is_read_by_its_dealer_only() {
    let w = World::new().await;
    w.grant(Category::Accounting).await;
    let id = body_json(&w.call(event(SEND)).await)["messageId"]
        .as_str()
        .unwrap()
        .to_owned();

    // WHEN its dealer reads it
    let response = w.call(for_message(event(GET_MESSAGE), &id)).await;

    // THEN 200 with the status and history
    assert_eq!(response.status(), StatusCode::OK);
    let body = body_json(&response);
    assert_eq!(body["messageId"], id.as_str());
    assert_eq!(body["status"], "queued");
    assert_eq!(body["contactId"], "C-1001");
    assert_eq!(body["template"], "auto-pay-failure");
    assert_eq!(body["history"][0]["status"], "queued");
    assert_eq!(body["origin"], json!({"type": "staff", "user": "staff-1"}));

    // AND another dealer gets 404, like an unknown id
    let response = w
        .call(as_dealer(
            for_message(event(GET_MESSAGE), &id),
            "other-dealer",
        ))
        .await;
    problem(&response, StatusCode::NOT_FOUND, "not-found");
    let response = w.call(event(GET_MESSAGE)).await;
    problem(&response, StatusCode::NOT_FOUND, "not-found");
}

#[tokio::test]
async fn a_scheduled_message_can_be_canceled() {
    let w = World::new().await;
    w.grant(Category::Accounting).await;
    let id = body_json(&w.call(event(SEND_SCHEDULED)).await)["messageId"]
        .as_str()
        .unwrap()
        .to_owned();

    // Another dealer cannot cancel it
    let response = w
        .call(as_dealer(for_message(event(CANCEL), &id), "other-dealer"))
        .await;
    problem(&response, StatusCode::NOT_FOUND, "not-found");
    assert_eq!(w.message(&id).await.status, MessageStatus::Scheduled);

    // WHEN its dealer cancels it
    let later = noon() + Duration::minutes(5);
    let response = w.call_at(for_message(event(CANCEL), &id), later).await;

    // THEN 200 canceled, stored with the reason
    assert_eq!(response.status(), StatusCode::OK);
    let body = body_json(&response);
    assert_eq!(body["status"], "canceled");
    assert_eq!(body["statusReason"], "canceled by staff");
    let m = w.message(&id).await;
    assert_eq!(m.status, MessageStatus::Canceled);
    assert_eq!(m.history.last().unwrap().at, later);

    // AND canceling again answers the same
    let response = w.call(for_message(event(CANCEL), &id)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_json(&response)["status"], "canceled");
    assert!(w.queue.sent().is_empty());
}

#[tokio::test]
async fn a_queued_message_cannot_be_canceled() {
    let w = World::new().await;
    w.grant(Category::Accounting).await;
    let id = body_json(&w.call(event(SEND)).await)["messageId"]
        .as_str()
        .unwrap()
        .to_owned();

    let response = w.call(for_message(event(CANCEL), &id)).await;

    let body = problem(&response, StatusCode::CONFLICT, "not-cancelable");
    assert_eq!(body["messageStatus"], "queued");
    assert_eq!(w.message(&id).await.status, MessageStatus::Queued);
}

// ------------------------------------------------------------------ problem types

#[tokio::test]
async fn every_problem_type_uri_resolves_to_its_description() {
    let w = World::new().await;
    for p in consent_adapters::http::PROBLEM_TYPES {
        let mut e = event(HEALTH);
        e["routeKey"] = json!("GET /problems/{problem}");
        e["requestContext"]["routeKey"] = json!("GET /problems/{problem}");
        e["rawPath"] = json!(format!("/problems/{}", p.slug));
        e["pathParameters"] = json!({ "problem": p.slug });
        let response = w.call(e).await;
        assert_eq!(response.status(), StatusCode::OK, "{}", p.slug);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/html; charset=utf-8"
        );
        let page = String::from_utf8_lossy(response.body().as_ref()).into_owned();
        assert!(page.contains(&format!("<h1>{}</h1>", p.title)), "{page}");
    }
    let mut unknown = event(HEALTH);
    unknown["routeKey"] = json!("GET /problems/{problem}");
    unknown["requestContext"]["routeKey"] = json!("GET /problems/{problem}");
    unknown["pathParameters"] = json!({ "problem": "no-such-problem" });
    problem(&w.call(unknown).await, StatusCode::NOT_FOUND, "not-found");
}

// ------------------------------------------------------------------ free text and the conversation

fn free_text(body: &str, category: &str) -> Value {
    with_header(
        edit_body(event(SEND), |b| {
            let o = b.as_object_mut().unwrap();
            o.remove("template");
            o.remove("variables");
            o.insert("body".into(), json!(body));
            o.insert("category".into(), json!(category));
        }),
        "idempotency-key",
        &format!(
            "text-{}-{category}",
            body.chars()
                .filter(char::is_ascii_alphanumeric)
                .take(10)
                .collect::<String>()
        ),
    )
}

fn conversation_event(query: &[(&str, &str)]) -> Value {
    let mut e = event(GET_MESSAGE);
    e["routeKey"] = json!("GET /v1/contacts/{contactId}/messages");
    e["requestContext"]["routeKey"] = json!("GET /v1/contacts/{contactId}/messages");
    e["rawPath"] = json!("/v1/contacts/C-1001/messages");
    e["pathParameters"] = json!({"contactId": "C-1001"});
    e["queryStringParameters"] = json!(query
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect::<serde_json::Map<_, _>>());
    e["rawQueryString"] = json!(query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&"));
    e
}

#[tokio::test]
async fn staff_answer_a_reply_in_their_own_words_under_the_same_rules() {
    // GIVEN accounting authorized, marketing not
    let w = World::new().await;
    w.grant(Category::Accounting).await;

    // WHEN staff answer in their own words, as accounting
    let ok = w
        .call(free_text(
            "Hi Maria, your payment posted today. Thanks!",
            "accounting",
        ))
        .await;
    // THEN it is accepted as a text of that category, queued, and stored as staff's text
    assert_eq!(ok.status(), StatusCode::ACCEPTED, "{}", body_json(&ok));
    let sent = w
        .message(body_json(&ok)["messageId"].as_str().unwrap())
        .await;
    assert_eq!(sent.kind, MessageKind::Text);
    assert_eq!(sent.category, Category::Accounting);
    assert_eq!(sent.template, None);
    assert_eq!(w.queue.sent().len(), 1);
    // AND as marketing, without consent: 403 naming the category, nothing sent
    let refused = w
        .call(free_text("Big sale this weekend!", "marketing"))
        .await;
    let p = problem(&refused, StatusCode::FORBIDDEN, "consent-required");
    assert_eq!(p["category"], "marketing");
    // AND with consent, a marketing text gets the opt-out wording it lacks
    w.grant(Category::Marketing).await;
    let offer = w
        .call(free_text("Big sale this weekend!", "marketing"))
        .await;
    let m = w
        .message(body_json(&offer)["messageId"].as_str().unwrap())
        .await;
    assert_eq!(m.body, "Big sale this weekend! Reply STOP to opt out.");
    // AND a template and a body together, an empty body or an unknown category are 422
    for bad in [
        edit_body(free_text("x", "service"), |b| {
            b["template"] = json!("past-due-alert");
        }),
        free_text("   ", "service"),
        free_text("hello", "billing"),
    ] {
        problem(
            &w.call(bad).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
        );
    }
}

#[tokio::test]
async fn the_conversation_shows_both_directions_newest_first_with_codes_masked() {
    // GIVEN a code text (authorization), a template text, and a reply from the person
    let w = World::new().await;
    w.grant(Category::Accounting).await;
    let sent = w.call(event(SEND)).await;
    assert_eq!(sent.status(), StatusCode::ACCEPTED);
    w.store
        .record_text(&InboundText {
            id: consent::ids::new_ulid(),
            dealer_id: dealer(),
            from: phone(CUSTOMER),
            to: phone(DEALER_NUMBER),
            body: "Can I pay on Friday?".into(),
            carrier_message_id: "SM-conv-1".into(),
            received_at: noon() + Duration::minutes(5),
            read_as: "other".into(),
            language: "en".into(),
        })
        .await
        .unwrap();

    // WHEN staff open the conversation, two at a time
    let first = body_json(&w.call(conversation_event(&[("limit", "2")])).await);
    let messages = first["messages"].as_array().unwrap();
    // THEN newest first: the reply, then the template text
    assert_eq!(messages[0]["direction"], "inbound");
    assert_eq!(messages[0]["body"], "Can I pay on Friday?");
    assert_eq!(messages[1]["direction"], "outbound");
    assert_eq!(messages[1]["template"], "auto-pay-failure");
    // AND the next page has the code text, masked
    let cursor = first["nextCursor"].as_str().unwrap().to_owned();
    let second = body_json(
        &w.call(conversation_event(&[("limit", "2"), ("cursor", &cursor)]))
            .await,
    );
    let code_text = &second["messages"][0];
    assert_eq!(code_text["kind"], "approval-code");
    assert!(code_text["body"]
        .as_str()
        .unwrap()
        .contains(consent::approval::CODE_MASK));
    assert_eq!(second["nextCursor"], Value::Null);
    // AND another dealer sees no such contact; a bad limit or cursor is a clear problem
    problem(
        &w.call(as_dealer(conversation_event(&[]), "other-dealer"))
            .await,
        StatusCode::NOT_FOUND,
        "not-found",
    );
    problem(
        &w.call(conversation_event(&[("limit", "0")])).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    );
    problem(
        &w.call(conversation_event(&[("cursor", "zz")])).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    );
}

// ------------------------------------------------------------------ the dealer's own templates

fn template_event(method: &str, name: &str, body: Option<Value>, admin: bool) -> Value {
    let mut e = event(TEMPLATES);
    let key = format!("{method} /v1/templates/{{name}}");
    e["routeKey"] = json!(key);
    e["requestContext"]["routeKey"] = json!(key);
    e["requestContext"]["http"]["method"] = json!(method);
    e["rawPath"] = json!(format!("/v1/templates/{name}"));
    e["pathParameters"] = json!({ "name": name });
    if admin {
        e["requestContext"]["authorizer"]["jwt"]["claims"]["roles"] = json!("[dealer-admin]");
    }
    if let Some(b) = body {
        e["body"] = json!(b.to_string());
        e["headers"]["content-type"] = json!("application/json");
    }
    e
}

#[tokio::test]
async fn dealer_admins_add_their_own_templates_and_staff_send_them() {
    let w = World::new().await;
    w.grant(Category::Service).await;
    let recall = json!({
        "title": "Recall notice",
        "category": "service",
        "body": "{dealerName}: a recall applies to your {model}. Book by {deadline} at {bookingUrl}. Reply STOP to opt out.",
        "placeholderTypes": {"deadline": "date", "bookingUrl": "url"},
    });
    // Staff without the role cannot; an admin can (201, version 1)
    let staff = w
        .call(template_event(
            "PUT",
            "recall-notice",
            Some(recall.clone()),
            false,
        ))
        .await;
    problem(&staff, StatusCode::FORBIDDEN, "forbidden");
    let created = w
        .call(template_event(
            "PUT",
            "recall-notice",
            Some(recall.clone()),
            true,
        ))
        .await;
    assert_eq!(
        created.status(),
        StatusCode::CREATED,
        "{}",
        body_json(&created)
    );
    assert_eq!(body_json(&created)["version"], 1);
    // Changing it makes version 2; the list shows both kinds
    let changed = w
        .call(template_event("PUT", "recall-notice", Some(recall), true))
        .await;
    assert_eq!(changed.status(), StatusCode::OK);
    assert_eq!(body_json(&changed)["version"], 2);
    let list = body_json(&w.call(event(TEMPLATES)).await);
    let own = list["templates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "recall-notice")
        .unwrap()
        .clone();
    assert_eq!(own["builtIn"], false);
    assert_eq!(
        own["placeholders"],
        json!(["model", "deadline", "bookingUrl"])
    );
    assert!(list["templates"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["builtIn"] == true));
    // A send from it renders its typed placeholders and records its version
    let send = edit_body(event(SEND), |b| {
        b["template"] = json!("recall-notice");
        b["variables"] = json!({"model": "2021 Civic", "deadline": "2026-07-01", "bookingUrl": "https://book.example/r"});
    });
    let sent = w.call(send).await;
    assert_eq!(sent.status(), StatusCode::ACCEPTED, "{}", body_json(&sent));
    let m = w
        .message(body_json(&sent)["messageId"].as_str().unwrap())
        .await;
    assert_eq!(m.template.as_deref(), Some("recall-notice"));
    assert_eq!(m.template_version, Some(2));
    assert!(
        m.body.contains("2021 Civic") && m.body.contains("Jul 1, 2026"),
        "{}",
        m.body
    );
    // Built-ins are read-only; a marketing template without opt-out wording is refused
    let builtin = w
        .call(template_event(
            "PUT",
            "auto-pay-failure",
            Some(json!({"category": "accounting", "body": "x"})),
            true,
        ))
        .await;
    problem(&builtin, StatusCode::CONFLICT, "conflict");
    let no_stop = w
        .call(template_event(
            "PUT",
            "promo",
            Some(json!({"category": "marketing", "body": "Sale!"})),
            true,
        ))
        .await;
    problem(
        &no_stop,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    );
    // Deleting it: 204, then 404; a send naming it is then refused
    let deleted = w
        .call(template_event("DELETE", "recall-notice", None, true))
        .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let again = w
        .call(template_event("DELETE", "recall-notice", None, true))
        .await;
    problem(&again, StatusCode::NOT_FOUND, "not-found");
}

// ------------------------------------------------------------------ preview

#[tokio::test]
async fn a_preview_renders_and_measures_without_consent_and_stores_nothing() {
    let w = World::new().await; // no consent: a preview texts nobody

    let response = w.call(event(PREVIEW)).await;

    let body = body_json(&response);
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    let text = body["body"].as_str().unwrap();
    assert!(
        text.contains("$412.37") && text.contains("Jun 15, 2026"),
        "{body}"
    );
    assert!(
        text.contains("Demo Motors"),
        "the dealer's name is filled in: {body}"
    );
    assert_eq!(body["category"], "accounting");
    assert_eq!(body["encoding"], "gsm7");
    assert_eq!(
        body["segments"],
        json!(consent::sms::measure(text).1),
        "{body}"
    );
    assert!(w.store.messages().is_empty() && w.queue.sent().is_empty());
}

#[tokio::test]
async fn a_preview_names_missing_variables_as_a_send_would() {
    let w = World::new().await;
    let response = w
        .call(edit_body(event(PREVIEW), |b| {
            b["variables"].as_object_mut().unwrap().remove("amount");
        }))
        .await;
    let body = problem(
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "template-variables",
    );
    assert!(
        body["detail"].as_str().unwrap().contains("amount"),
        "{body}"
    );
}

#[tokio::test]
async fn a_preview_of_own_words_counts_unicode_segments_and_adds_the_opt_out() {
    let w = World::new().await;
    let words = format!(
        "{} \u{1F697}",
        "Your new car is ready at the lot. ".repeat(5)
    );
    let response = w
        .call(edit_body(event(PREVIEW), |b| {
            *b = json!({"body": words, "category": "marketing"});
        }))
        .await;
    let body = body_json(&response);
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    let text = body["body"].as_str().unwrap();
    assert!(text.ends_with("Reply STOP to opt out."), "{body}");
    assert_eq!(body["encoding"], "ucs2", "{body}");
    // 170 + 2 + 23 characters, the emoji two UTF-16 units: 67 units per part.
    assert_eq!(body["segments"], json!(3), "{body}");

    let both = w
        .call(edit_body(event(PREVIEW), |b| {
            b["body"] = json!("hi");
        }))
        .await;
    problem(&both, StatusCode::UNPROCESSABLE_ENTITY, "validation-failed");
}

// ------------------------------------------------------------------ what a text may hold

#[tokio::test]
async fn marketing_opt_out_wording_is_a_phrase_not_the_letters_stop() {
    let w = World::new().await;
    // GIVEN a marketing template whose only STOP is inside a word: refused
    for body in [
        "NONSTOP deals all weekend at {dealerName}!",
        "Stop by {dealerName} this weekend for 0% APR",
    ] {
        let refused = w
            .call(template_event(
                "PUT",
                "weekend-promo",
                Some(json!({"category": "marketing", "title": "Weekend", "body": body})),
                true,
            ))
            .await;
        problem(
            &refused,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
        );
    }
    // AND the instruction in Spanish or English is accepted
    for body in [
        "Ofertas NONSTOP en {dealerName}. Responde ALTO para cancelar.",
        "NONSTOP deals at {dealerName}. To opt out, reply STOP.",
    ] {
        let kept = w
            .call(template_event(
                "PUT",
                "weekend-promo",
                Some(json!({"category": "marketing", "title": "Weekend", "body": body})),
                true,
            ))
            .await;
        assert!(kept.status().is_success(), "{body}: {}", kept.status());
    }
    // AND staff's own marketing words without the phrase get it added
    w.grant(Category::Marketing).await;
    let sent = w
        .call(free_text("NONSTOP deals this weekend!", "marketing"))
        .await;
    assert_eq!(sent.status(), StatusCode::ACCEPTED);
    let id = body_json(&sent)["messageId"].as_str().unwrap().to_owned();
    let m = w
        .store
        .message(&consent::MessageId::parse(&id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(m.body.ends_with("Reply STOP to opt out."), "{}", m.body);
}

#[tokio::test]
async fn invisible_format_characters_are_refused_in_words_that_are_texted() {
    let w = World::new().await;
    w.grant(Category::Accounting).await;
    // A right-to-left override would show a payment link reversed; a zero-width space
    // hides inside a word; both are refused, in staff's words and in template values
    for hidden in ["\u{202E}", "\u{200B}", "\u{2066}", "\u{FEFF}"] {
        let words = w
            .call(free_text(
                &format!("Pay at example.com/{hidden}pay"),
                "accounting",
            ))
            .await;
        problem(
            &words,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
        );
        let value = w
            .call(with_header(
                edit_body(event(SEND), |b| {
                    b["variables"]["firstName"] = json!(format!("Ma{hidden}ria"));
                }),
                "idempotency-key",
                &format!("cf-{:x}", hidden.chars().next().unwrap() as u32),
            ))
            .await;
        let why = problem(
            &value,
            StatusCode::UNPROCESSABLE_ENTITY,
            "template-variables",
        );
        assert!(
            why["detail"].as_str().unwrap().contains("firstName"),
            "{why}"
        );
    }
}

#[tokio::test]
async fn length_is_counted_in_segments_not_characters() {
    let w = World::new().await;
    w.grant(Category::Accounting).await;
    // 900 GSM-7 characters are 6 segments: accepted
    let plain = "a".repeat(900);
    let ok = w.call(free_text(&plain, "accounting")).await;
    assert_eq!(ok.status(), StatusCode::ACCEPTED);
    // the same with one emoji is UCS-2, 14 segments: refused, naming the count
    let with_emoji = format!("{}😀", "b".repeat(900));
    let refused = w.call(free_text(&with_emoji, "accounting")).await;
    let body = problem(
        &refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    );
    assert!(
        body["detail"].as_str().unwrap().contains("14 SMS segments"),
        "{body}"
    );
}
