//! Security and bad input across every portal route, in-process with the in-memory
//! ports: the access matrix (no identity -> 401, another dealer -> 404 or an empty
//! answer, never their data), hostile bodies (never a 5xx or a panic), scheduledAt edge
//! cases, and a log capture proving no code, full number or message body is logged.

use std::io::Write;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeZone, Utc};
use lambda_http::{Body, Request, Response};
use proptest::prelude::*;
use serde_json::{json, Value};

use consent::approval::ApprovalCode;
use consent::fakes::{self, FakeInbox};
use consent::ports::{
    Contact, Dealer, DealerStore, WorkItem, WorkItemStatus, WorkQueue, WorkQueueName,
};
use consent::{Category, ContactId, DealerId, PhoneNumber};

const A: &str = "dealer-a";
const B: &str = "dealer-b";
const A_PHONE: &str = "+12025550143";
const A_NAME: &str = "Ann Secret";

fn noon() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 10, 16, 0, 0).unwrap()
}

/// The one test world (its store, queue, bus, opt-out lists and code key) with the
/// portal's functions over it.
struct World {
    world: fakes::World,
    authorize: authorize::App,
    send: send::App,
    settings: settings::App,
    queues: queues::App,
    inbound: inbound::App,
    /// The inbound queue between `inbound` and `webhooks`.
    inbox: FakeInbox,
    webhooks: webhooks::App,
    message_id: String,
    item_id: String,
}

const TWILIO_TOKEN: &str = "security-twilio-token";

impl std::ops::Deref for World {
    type Target = fakes::World;

    fn deref(&self) -> &fakes::World {
        &self.world
    }
}

fn dealer(id: &str, number: &str) -> Dealer {
    Dealer {
        id: DealerId::parse(id).unwrap(),
        name: format!("{id} motors"),
        texting_number: PhoneNumber::from_e164(number).unwrap(),
        help_contact: None,
        time_zone: None,
    }
}

impl World {
    /// A carrier webhook: `inbound` stores it and answers, then `webhooks` acts on what
    /// was stored, as the inbound queue's event source would hand it over.
    async fn carrier(&self, req: Request) -> Response<Body> {
        let response = inbound::handle(&self.inbound, req, noon()).await;
        for webhook in self.inbox.drain() {
            let body = serde_json::to_string(&webhook).unwrap();
            assert_eq!(
                webhooks::process_record(&self.webhooks, None, &body, noon()).await,
                webhooks::RecordOutcome::Done
            );
        }
        response
    }

    async fn new() -> World {
        // Dealer A and its contact C-1 are the world's seed; dealer B is beside them.
        let world = fakes::World::seeded(fakes::Seed {
            dealer: dealer(A, "+12025550100"),
            contact: Contact {
                id: ContactId::parse("C-1").unwrap(),
                dealer_id: DealerId::parse(A).unwrap(),
                name: A_NAME.into(),
                phone: PhoneNumber::from_e164(A_PHONE).unwrap(),
                account_ids: vec![consent::AccountId::parse("A-1").unwrap()],
                deal_ids: vec![consent::DealId::parse("D-1").unwrap()],
                time_zone: None,
                updated_at: noon(),
            },
        })
        .await;
        let s = Arc::new(world.store.clone());
        let q = Arc::new(world.queue.clone());
        world
            .store
            .put_dealer(&dealer(B, "+12025550101"), None)
            .await
            .unwrap();
        // Dealer A's own template.
        consent::ports::TemplateStore::put_template(
            s.as_ref(),
            &DealerId::parse(A).unwrap(),
            &consent::template::DealerTemplate {
                name: "a-only".into(),
                title: "A only".into(),
                category: Category::Service,
                body: "{dealerName}: private template".into(),
                placeholder_types: Default::default(),
                version: 1,
                updated_at: noon(),
                updated_by: "staff-1".into(),
            },
            None,
        )
        .await
        .unwrap();
        let authorize = authorize::App {
            claims: Default::default(),
            dealers: s.clone(),
            contacts: s.clone(),
            consent: s.clone(),
            consent_writer: s.clone(),
            pending: s.clone(),
            limits: s.clone(),
            messages: s.clone(),
            queue: q.clone(),
            hasher: Arc::new(world.hasher.clone()),
            number_pool: vec![],
            numbers: s.clone(),
            ledger: s.clone(),
        };
        let send = send::App {
            claims: Default::default(),
            dealers: s.clone(),
            contacts: s.clone(),
            consent: s.clone(),
            messages: s.clone(),
            queue: q.clone(),
            number_pool: vec![],
            conversations: s.clone(),
            templates: s.clone(),
        };
        let settings = settings::App {
            claims: Default::default(),
            dealers: s.clone(),
            numbers: s.clone(),
            templates: s.clone(),
            automations: s.clone(),
            number_pool: vec![],
        };
        let inbox = FakeInbox::new();
        let inbound = inbound::App {
            inbox: Arc::new(inbox.clone()),
            auth_token: Arc::new(consent_adapters::secrets::Deferred::ready(
                consent_adapters::secrets::Versions::only(TWILIO_TOKEN),
            )),
            public_base_url: Some("http://127.0.0.1:3000".into()),
        };
        let webhooks = webhooks::App {
            dealers: s.clone(),
            contacts: s.clone(),
            consent: s.clone(),
            consent_writer: s.clone(),
            pending: s.clone(),
            messages: s.clone(),
            queue: q.clone(),
            events: Arc::new(world.bus.clone()),
            work: s.clone(),
            inbound: s.clone(),
            numbers: s.clone(),
            opt_outs: Arc::new(world.opt_outs.clone()),
            end_user_messaging: None,
        };
        let queues = queues::App {
            claims: Default::default(),
            desk: s.clone(),
        };
        let mut w = World {
            world,
            authorize,
            send,
            settings,
            queues,
            inbound,
            inbox,
            webhooks,
            message_id: String::new(),
            item_id: String::new(),
        };
        // Dealer A: accounting authorized by code, a scheduled message, a queue item.
        let r = w
            .call(
                "POST /v1/contacts/{contactId}/authorizations",
                "/v1/contacts/C-1/authorizations",
                &[("contactId", "C-1")],
                Some(A),
                Some(json!({"category": "accounting"})),
            )
            .await;
        assert_eq!(r.status(), 202, "{}", text(&r));
        let code = w.last_code();
        let r = w
            .call(
                "POST /v1/contacts/{contactId}/authorizations/{category}/verify",
                "/v1/contacts/C-1/authorizations/accounting/verify",
                &[("contactId", "C-1"), ("category", "accounting")],
                Some(A),
                Some(json!({"code": code.reveal()})),
            )
            .await;
        assert_eq!(r.status(), 200, "{}", text(&r));
        let r = w
            .call(
                "POST /v1/messages",
                "/v1/messages",
                &[],
                Some(A),
                Some(send_body(Some("2026-06-10T18:00:00Z"))),
            )
            .await;
        assert_eq!(r.status(), 202, "{}", text(&r));
        w.message_id = body(&r)["messageId"].as_str().unwrap().to_owned();
        let item = WorkItem {
            id: consent::ids::new_ulid(),
            dealer_id: DealerId::parse(A).unwrap(),
            queue: WorkQueueName::Replies,
            kind: "reply-needs-attention".into(),
            contact_id: Some(ContactId::parse("C-1").unwrap()),
            phone: Some(PhoneNumber::from_e164(A_PHONE).unwrap()),
            account_id: None,
            deal_id: None,
            message_id: None,
            text: Some("private reply".into()),
            created_at: noon(),
            status: WorkItemStatus::Open,
            handling: Default::default(),
        };
        w.store.add_item(&item).await.unwrap();
        w.item_id = item.id;
        w
    }

    /// The newest code, as the phone will get it: stored only sealed (the body is masked).
    fn last_code(&self) -> ApprovalCode {
        let text = self
            .store
            .messages()
            .into_iter()
            .filter(|m| m.kind == consent::message::MessageKind::ApprovalCode)
            .max_by_key(|m| m.id.clone())
            .unwrap();
        let sealed = text.code.expect("a code text carries its sealed code");
        self.hasher.open(&sealed.sealed, text.id.as_str()).unwrap()
    }

    async fn call(
        &self,
        route: &str,
        path: &str,
        params: &[(&str, &str)],
        dealer: Option<&str>,
        body: Option<Value>,
    ) -> Response<Body> {
        self.raw(
            route,
            path,
            params,
            dealer,
            body.map(|b| b.to_string()),
            "application/json",
        )
        .await
    }

    async fn raw(
        &self,
        route: &str,
        path: &str,
        params: &[(&str, &str)],
        dealer: Option<&str>,
        body: Option<String>,
        content_type: &str,
    ) -> Response<Body> {
        let method = route.split(' ').next().unwrap();
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let query_params: serde_json::Map<String, Value> = query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), json!(v)))
            .collect();
        let mut event = json!({
            "version": "2.0",
            "routeKey": route,
            "rawPath": path,
            "rawQueryString": query,
            "queryStringParameters": query_params,
            // Every portal client sends an Idempotency-Key on POST /v1/messages (428 without
            // one): a fresh one per request, as for a new text.
            "headers": {"content-type": content_type, "host": "127.0.0.1:3000", "idempotency-key": format!("security-key-{}", NEXT_KEY.fetch_add(1, std::sync::atomic::Ordering::Relaxed))},
            "pathParameters": params.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "requestContext": {
                "accountId": "000000000000", "apiId": "local", "domainName": "127.0.0.1:3000", "domainPrefix": "127",
                "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test"},
                "requestId": "r", "routeKey": route, "stage": "$default", "time": "10/Jun/2026:16:00:00 +0000", "timeEpoch": 1781107200000u64,
            },
            "isBase64Encoded": false,
        });
        if let Some(d) = dealer {
            event["requestContext"]["authorizer"] =
                // A dealer admin, the widest staff identity: still only its own dealer's data.
                json!({"jwt": {"claims": {"dealer_id": d, "sub": "staff-1", "roles": "[dealer-admin]"}, "scopes": null}});
        }
        if let Some(b) = body {
            event["body"] = json!(b);
        }
        let req: Request = lambda_http::request::from_str(&event.to_string()).expect("a v2 event");
        let response = match route {
            r if r.contains("/v1/queues") => queues::handle(&self.queues, req, noon()).await,
            // As infra/template.yaml routes them: the settings function's routes...
            r if r.contains("/v1/templates")
                || r.contains("/v1/automations")
                || r.ends_with("/v1/dealer") =>
            {
                settings::handle(&self.settings, req, noon()).await
            }
            // ... and the send function's.
            r if r.contains("/v1/messages")
                || r.ends_with("/messages")
                || r.contains("/v1/health") =>
            {
                send::handle(&self.send, req, noon()).await
            }
            r if r.contains("/v1/carrier") => self.carrier(req).await,
            _ => authorize::handle(&self.authorize, req, noon()).await,
        };
        // Every response is held to docs/openapi.yaml too (make test).
        consent_adapters::http::record_sample(route, &response);
        response
    }
}

fn send_body(scheduled_at: Option<&str>) -> Value {
    let mut b = json!({"contactId": "C-1", "template": "past-due-alert", "variables": {"firstName": "Ann", "amount": "10.00", "dueDate": "2026-06-01", "paymentUrl": "https://pay.example.com/p"}});
    if let Some(at) = scheduled_at {
        b["scheduledAt"] = json!(at);
    }
    b
}

fn text(r: &Response<Body>) -> String {
    match r.body() {
        Body::Text(t) => t.clone(),
        Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    }
}

fn body(r: &Response<Body>) -> Value {
    serde_json::from_str(&text(r)).unwrap_or(Value::Null)
}

/// A fresh Idempotency-Key per request.
static NEXT_KEY: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Every portal route with a body that is valid for dealer A's data.
/// (route key, path, path parameters, body, whether it names one of dealer A's resources)
type Route = (String, String, Vec<(String, String)>, Option<Value>, bool);

fn routes(w: &World) -> Vec<Route> {
    // (route key, path, params, body, names one of dealer A's resources)
    let m = w.message_id.clone();
    let i = w.item_id.clone();
    let p = |v: &[(&str, &str)]| {
        v.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect::<Vec<_>>()
    };
    vec![
        (
            "GET /v1/dealer".into(),
            "/v1/dealer".into(),
            vec![],
            None,
            false,
        ),
        (
            "PUT /v1/dealer".into(),
            "/v1/dealer".into(),
            vec![],
            Some(json!({"name": "X"})),
            false,
        ),
        (
            "PUT /v1/contacts/{contactId}".into(),
            "/v1/contacts/C-9".into(),
            p(&[("contactId", "C-9")]),
            Some(json!({"name": "N", "phone": "(202) 555-0199"})),
            false,
        ),
        (
            "DELETE /v1/contacts/{contactId}".into(),
            "/v1/contacts/C-1".into(),
            p(&[("contactId", "C-1")]),
            None,
            true,
        ),
        (
            "POST /v1/contacts/batch".into(),
            "/v1/contacts/batch".into(),
            vec![],
            Some(
                json!({"contacts": [{"contactId": "C-8", "name": "N", "phone": "(202) 555-0198"}]}),
            ),
            false,
        ),
        (
            "GET /v1/accounts/{accountId}/contacts".into(),
            "/v1/accounts/A-1/contacts".into(),
            p(&[("accountId", "A-1")]),
            None,
            false,
        ),
        (
            "GET /v1/deals/{dealId}/contacts".into(),
            "/v1/deals/D-1/contacts".into(),
            p(&[("dealId", "D-1")]),
            None,
            false,
        ),
        (
            "POST /v1/contacts/{contactId}/authorizations".into(),
            "/v1/contacts/C-1/authorizations".into(),
            p(&[("contactId", "C-1")]),
            Some(json!({"category": "service"})),
            true,
        ),
        (
            "POST /v1/contacts/{contactId}/authorizations/{category}/verify".into(),
            "/v1/contacts/C-1/authorizations/service/verify".into(),
            p(&[("contactId", "C-1"), ("category", "service")]),
            Some(json!({"code": "123456"})),
            true,
        ),
        (
            "DELETE /v1/contacts/{contactId}/authorizations/{category}".into(),
            "/v1/contacts/C-1/authorizations/accounting".into(),
            p(&[("contactId", "C-1"), ("category", "accounting")]),
            None,
            true,
        ),
        (
            "GET /v1/contacts/{contactId}/consent-history".into(),
            "/v1/contacts/C-1/consent-history".into(),
            p(&[("contactId", "C-1")]),
            None,
            true,
        ),
        (
            "GET /v1/contacts/{contactId}/consent-evidence".into(),
            "/v1/contacts/C-1/consent-evidence".into(),
            p(&[("contactId", "C-1")]),
            None,
            true,
        ),
        (
            "GET /v1/consent-evidence".into(),
            "/v1/consent-evidence?from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z".into(),
            vec![],
            None,
            false,
        ),
        (
            "GET /v1/contacts/{contactId}/messages".into(),
            "/v1/contacts/C-1/messages".into(),
            p(&[("contactId", "C-1")]),
            None,
            true,
        ),
        (
            "PUT /v1/templates/{name}".into(),
            "/v1/templates/my-own".into(),
            p(&[("name", "my-own")]),
            Some(json!({"category": "service", "body": "{dealerName}: hello {name}"})),
            false,
        ),
        (
            "DELETE /v1/templates/{name}".into(),
            "/v1/templates/a-only".into(),
            p(&[("name", "a-only")]),
            None,
            true,
        ),
        (
            "GET /v1/automations".into(),
            "/v1/automations".into(),
            vec![],
            None,
            false,
        ),
        (
            "PUT /v1/automations/{eventType}".into(),
            "/v1/automations/ServiceDue".into(),
            p(&[("eventType", "ServiceDue")]),
            Some(json!({"template": "service-reminder", "enabled": false})),
            false,
        ),
        (
            "GET /v1/templates".into(),
            "/v1/templates".into(),
            vec![],
            None,
            false,
        ),
        (
            "POST /v1/messages".into(),
            "/v1/messages".into(),
            vec![],
            Some(send_body(None)),
            true,
        ),
        (
            "GET /v1/messages/{messageId}".into(),
            format!("/v1/messages/{m}"),
            p(&[("messageId", &m)]),
            None,
            true,
        ),
        (
            "DELETE /v1/messages/{messageId}".into(),
            format!("/v1/messages/{m}"),
            p(&[("messageId", &m)]),
            None,
            true,
        ),
        (
            "GET /v1/queues".into(),
            "/v1/queues".into(),
            vec![],
            None,
            false,
        ),
        (
            "GET /v1/queues/{queue}/items".into(),
            "/v1/queues/replies/items".into(),
            p(&[("queue", "replies")]),
            None,
            false,
        ),
        (
            "GET /v1/queues/{queue}/items/{itemId}".into(),
            format!("/v1/queues/replies/items/{i}"),
            p(&[("queue", "replies"), ("itemId", &i)]),
            None,
            true,
        ),
        (
            "POST /v1/queues/{queue}/items/{itemId}/claim".into(),
            format!("/v1/queues/replies/items/{i}/claim"),
            p(&[("queue", "replies"), ("itemId", &i)]),
            None,
            true,
        ),
        (
            "POST /v1/queues/{queue}/items/{itemId}/resolve".into(),
            format!("/v1/queues/replies/items/{i}/resolve"),
            p(&[("queue", "replies"), ("itemId", &i)]),
            None,
            true,
        ),
    ]
}

#[tokio::test]
async fn every_portal_route_refuses_no_identity_and_never_shows_another_dealers_data() {
    let w = World::new().await;
    for (route, path, params, body_json, names_a_resource) in routes(&w) {
        let params: Vec<(&str, &str)> = params
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        // No identity from the authorizer: 401, nothing else.
        let r = w
            .call(&route, &path, &params, None, body_json.clone())
            .await;
        assert_eq!(r.status(), 401, "{route} without identity: {}", text(&r));
        // Another dealer: dealer A's resources do not exist for them.
        let r = w
            .call(&route, &path, &params, Some(B), body_json.clone())
            .await;
        let out = text(&r);
        if names_a_resource {
            assert_eq!(r.status(), 404, "{route} as another dealer: {out}");
        } else {
            assert!(
                r.status().is_success(),
                "{route} as another dealer: {}",
                r.status()
            );
        }
        for secret in [
            A_PHONE,
            A_NAME,
            "private reply",
            "private template",
            &w.message_id,
        ] {
            assert!(
                !out.contains(secret),
                "{route} as another dealer leaked {secret:?}: {out}"
            );
        }
    }
    // Dealer A's data is untouched by all of that.
    let r = w
        .call(
            "GET /v1/accounts/{accountId}/contacts",
            "/v1/accounts/A-1/contacts",
            &[("accountId", "A-1")],
            Some(A),
            None,
        )
        .await;
    assert_eq!(
        body(&r)["contacts"][0]["authorizations"]["accounting"],
        "authorized"
    );
    let r = w
        .call(
            "GET /v1/messages/{messageId}",
            &format!("/v1/messages/{}", w.message_id),
            &[("messageId", &w.message_id)],
            Some(A),
            None,
        )
        .await;
    assert_eq!(body(&r)["status"], "scheduled");
}

#[tokio::test]
async fn approval_code_guessing_stops_after_five_tries_and_floods_hit_429() {
    let w = World::new().await;
    let r = w
        .call(
            "POST /v1/contacts/{contactId}/authorizations",
            "/v1/contacts/C-1/authorizations",
            &[("contactId", "C-1")],
            Some(A),
            Some(json!({"category": "sales"})),
        )
        .await;
    assert_eq!(r.status(), 202);
    let right = w.last_code();
    let verify = |code: String| {
        let w = &w;
        async move {
            w.call(
                "POST /v1/contacts/{contactId}/authorizations/{category}/verify",
                "/v1/contacts/C-1/authorizations/sales/verify",
                &[("contactId", "C-1"), ("category", "sales")],
                Some(A),
                Some(json!({"code": code})),
            )
            .await
        }
    };
    let mut statuses = Vec::new();
    for guess in 0..6u32 {
        let g = format!(
            "{:06}",
            (right.reveal().parse::<u32>().unwrap() + 1 + guess) % 1_000_000
        );
        statuses.push(verify(g).await.status().as_u16());
    }
    assert_eq!(statuses, [422, 422, 422, 422, 410, 410]);
    // Even the right code is refused once the request is used up.
    assert_eq!(verify(right.reveal().to_owned()).await.status(), 410);
    // A flood of code requests for one number hits the per-number limit (5 a day).
    let mut last = 0;
    for _ in 0..6 {
        let r = w
            .call(
                "POST /v1/contacts/{contactId}/authorizations",
                "/v1/contacts/C-1/authorizations",
                &[("contactId", "C-1")],
                Some(A),
                Some(json!({"category": "marketing"})),
            )
            .await;
        last = r.status().as_u16();
        if last == 429 {
            assert!(body(&r)["retryAfter"].as_u64().unwrap_or(0) > 0);
            assert!(r.headers().contains_key("retry-after"));
            break;
        }
    }
    assert_eq!(last, 429);
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx_and_writes_nothing() {
    let w = World::new().await;
    let before = w.store.messages().len();
    let send = |b: Option<String>, ct: &'static str| {
        let w = &w;
        async move {
            w.raw("POST /v1/messages", "/v1/messages", &[], Some(A), b, ct)
                .await
        }
    };
    let cases: Vec<(Option<String>, &str, u16)> = vec![
        (Some("{".into()), "application/json", 400),
        (Some("[]".into()), "application/json", 400),
        (Some(send_body(None).to_string()), "text/plain", 415),
        (Some("x".repeat(70_000)), "application/json", 413),
        (Some(json!({"contactId": "C-1", "template": "past-due-alert", "variables": {"firstName": "x".repeat(5000), "amount": "1", "dueDate": "2026-06-01", "paymentUrl": "https://p.example"}}).to_string()), "application/json", 422),
        (Some(json!({"contactId": {"$ne": null}, "template": "past-due-alert"}).to_string()), "application/json", 400),
        (Some(json!({"contactId": "' OR 1=1 --", "template": "past-due-alert"}).to_string()), "application/json", 422),
        (Some(json!({"contactId": "C-1", "template": "../../etc/passwd"}).to_string()), "application/json", 422),
        (Some(json!({"contactId": "C-1", "template": "past-due-alert", "extra": 1}).to_string()), "application/json", 400),
    ];
    for (b, ct, expected) in cases {
        let shown = b.as_deref().map(|s| s.chars().take(60).collect::<String>());
        let r = send(b, ct).await;
        assert_eq!(r.status().as_u16(), expected, "{shown:?}: {}", text(&r));
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
    // Invalid UTF-8 in a binary body.
    let mut event_body = vec![b'{', b'"', 0xff, 0xfe, b'"', b'}'];
    event_body.truncate(6);
    let r = send(
        Some(String::from_utf8_lossy(&event_body).into_owned()),
        "application/json",
    )
    .await;
    assert!(r.status().is_client_error());
    // scheduledAt edge cases.
    for (at, expected) in [
        ("2026-06-10T12:00:00Z", 422),      // in the past
        ("2036-01-01T12:00:00Z", 422),      // more than a year ahead
        ("2026-06-10T14:00:00-04:00", 202), // an offset (18:00Z)
        ("2027-02-29T12:00:00Z", 422),      // not a date
        ("2028-02-29T15:00:00Z", 422),      // leap day, but more than a year ahead
        ("2026-06-10", 422),                // a date without a time
        ("2026-06-10T18:00:00", 422),       // no offset
    ] {
        let r = send(Some(send_body(Some(at)).to_string()), "application/json").await;
        assert_eq!(r.status().as_u16(), expected, "{at}: {}", text(&r));
    }
    assert_eq!(
        w.store.messages().len(),
        before + 1,
        "only the valid scheduled send was stored"
    );
}

#[tokio::test]
async fn webhooks_without_a_valid_signature_change_nothing() {
    let w = World::new().await;
    let params = [
        ("MessageSid", "SM1"),
        ("From", A_PHONE),
        ("To", "+12025550100"),
        ("Body", "STOP"),
    ];
    let form = |p: &[(&str, &str)]| serde_urlencoded::to_string(p).unwrap();
    let owned: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let signature = consent::webhook::twilio_signature(
        TWILIO_TOKEN,
        "http://127.0.0.1:3000/v1/carrier/twilio/inbound",
        &owned,
    );
    let post = |body: String, sig: Option<String>| {
        let w = &w;
        async move {
            let mut event = json!({
                "version": "2.0", "routeKey": "POST /v1/carrier/twilio/inbound", "rawPath": "/v1/carrier/twilio/inbound", "rawQueryString": "",
                "headers": {"content-type": "application/x-www-form-urlencoded", "host": "127.0.0.1:3000"},
                "requestContext": {"accountId": "0", "apiId": "local", "domainName": "127.0.0.1:3000", "domainPrefix": "127",
                    "http": {"method": "POST", "path": "/v1/carrier/twilio/inbound", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "t"},
                    "requestId": "r", "routeKey": "POST /v1/carrier/twilio/inbound", "stage": "$default", "time": "x", "timeEpoch": 0},
                "body": body, "isBase64Encoded": false,
            });
            if let Some(s) = sig {
                event["headers"]["x-twilio-signature"] = json!(s);
            }
            w.carrier(lambda_http::request::from_str(&event.to_string()).unwrap())
                .await
        }
    };
    // Unsigned, forged, and replayed with a changed body: 403, nothing changes.
    assert_eq!(post(form(&params), None).await.status(), 403);
    assert_eq!(
        post(form(&params), Some("Zm9yZ2VkCg==".into()))
            .await
            .status(),
        403
    );
    let changed = [
        ("MessageSid", "SM1"),
        ("From", A_PHONE),
        ("To", "+12025550100"),
        ("Body", "START"),
    ];
    assert_eq!(
        post(form(&changed), Some(signature.clone())).await.status(),
        403
    );
    let r = w
        .call(
            "GET /v1/accounts/{accountId}/contacts",
            "/v1/accounts/A-1/contacts",
            &[("accountId", "A-1")],
            Some(A),
            None,
        )
        .await;
    assert_eq!(
        body(&r)["contacts"][0]["authorizations"]["accounting"],
        "authorized"
    );
    // The genuine one acts.
    assert_eq!(post(form(&params), Some(signature)).await.status(), 200);
    let r = w
        .call(
            "GET /v1/accounts/{accountId}/contacts",
            "/v1/accounts/A-1/contacts",
            &[("accountId", "A-1")],
            Some(A),
            None,
        )
        .await;
    assert_eq!(
        body(&r)["contacts"][0]["authorizations"]["accounting"],
        "revoked"
    );
    let _ = &w.queue;
}

/// A writer that keeps everything the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_carry_ids_never_codes_numbers_or_bodies() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // Everything a day brings: a code, a verify, sends, a STOP with a body, bad input.
    let w = World::new().await;
    let code = w.last_code();
    let r = w
        .call(
            "POST /v1/messages",
            "/v1/messages",
            &[],
            Some(A),
            Some(send_body(None)),
        )
        .await;
    assert_eq!(r.status(), 202);
    let owned = vec![
        (
            "Body".to_owned(),
            "Stop texting me about the Civic please".to_owned(),
        ),
        ("From".to_owned(), A_PHONE.to_owned()),
        ("MessageSid".to_owned(), "SM77".to_owned()),
        ("To".to_owned(), "+12025550100".to_owned()),
    ];
    let sig = consent::webhook::twilio_signature(
        TWILIO_TOKEN,
        "http://127.0.0.1:3000/v1/carrier/twilio/inbound",
        &owned,
    );
    let event = json!({
        "version": "2.0", "routeKey": "POST /v1/carrier/twilio/inbound", "rawPath": "/v1/carrier/twilio/inbound", "rawQueryString": "",
        "headers": {"content-type": "application/x-www-form-urlencoded", "host": "127.0.0.1:3000", "x-twilio-signature": sig},
        "requestContext": {"accountId": "0", "apiId": "local", "domainName": "127.0.0.1:3000", "domainPrefix": "127",
            "http": {"method": "POST", "path": "/v1/carrier/twilio/inbound", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "t"},
            "requestId": "r", "routeKey": "POST /v1/carrier/twilio/inbound", "stage": "$default", "time": "x", "timeEpoch": 0},
        "body": serde_urlencoded::to_string(&owned).unwrap(), "isBase64Encoded": false,
    });
    let r = w
        .carrier(lambda_http::request::from_str(&event.to_string()).unwrap())
        .await;
    assert_eq!(r.status(), 200);
    let forged = event.to_string().replace("Civic", "Accord");
    assert_eq!(
        w.carrier(lambda_http::request::from_str(&forged).unwrap())
            .await
            .status(),
        403
    );
    drop(_guard);
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("reply acted on"), "the capture works: {logs}");
    for secret in [
        code.reveal(),
        A_PHONE,
        "2025550143",
        "Stop texting me",
        "Civic",
        "Accord",
        "past due",
        A_NAME,
    ] {
        assert!(!logs.contains(secret), "logs contain {secret:?}:\n{logs}");
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    // 48 cases in `make test`; `make fuzz` raises PROPTEST_CASES for a longer, bounded run.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).map_or(48, |c: u32| c / 20),
        ..ProptestConfig::default()
    })]

    /// Arbitrary bodies on every route that takes one: never a panic, never a 5xx.
    #[test]
    fn hostile_json_bodies_never_cause_a_5xx(body in prop_oneof![
        "\\PC{0,200}",
        prop::collection::btree_map("[a-zA-Z]{1,12}", prop_oneof![Just(json!(null)), any::<i64>().prop_map(|n| json!(n)), "\\PC{0,40}".prop_map(|s| json!(s)), Just(json!({"$gt": ""})), Just(json!([1, [2, {}]]))], 0..6)
            .prop_map(|m| serde_json::to_string(&m).unwrap()),
    ]) {
        let runtime = rt();
        runtime.block_on(async {
            let w = World::new().await;
            for (route, path, params, _, _) in routes(&w) {
                if !(route.starts_with("POST") || route.starts_with("PUT")) {
                    continue;
                }
                let params: Vec<(&str, &str)> = params.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
                let r = w.raw(&route, &path, &params, Some(A), Some(body.clone()), "application/json").await;
                prop_assert!(r.status().as_u16() < 500, "{route} answered {} to {body:?}: {}", r.status(), text(&r));
            }
            Ok(())
        })?;
    }
}
