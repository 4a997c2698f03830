//! Handler tests of the inbound function: the carrier webhooks in events/ (API Gateway
//! HTTP API v2 events; the form body base64-encoded as API Gateway delivers form
//! posts) handled in-process over the in-memory fakes. `inbound` stores each signed
//! webhook and answers; the `webhooks` function then acts on what was stored, as the
//! inbound queue's event source would hand it over (`World::call` plays both).
//!
//! Requests a test changes are signed again the way Twilio signs them: over the URL
//! `inbound::public_url` rebuilds from `PUBLIC_BASE_URL` and the raw path and query,
//! plus the POST parameters. The fixtures themselves are signed with
//! `FIXTURE_TOKEN` (see events/README.md).

use std::sync::Arc;

use base64::Engine;
use chrono::{DateTime, Duration, TimeZone, Utc};
use consent_adapters::http::testing::{event, request};
use lambda_http::http::{header, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::{json, Map, Value};

use consent::approval::ApprovalCode;
use consent::fakes::{self, request_code, FakeInbox};
use consent::ledger::{Actor, ConsentEvent, ConsentStatus};
use consent::message::StatusReason;
use consent::message::{Message, MessageKind, MessageStatus, Origin};
use consent::ports::{ConsentReader, MessageReader, WorkQueueName};
use consent::service::authorization as auth;
use consent::service::delivery::{self, DeliverOutcome};
use consent::service::sending;
use consent::webhook::twilio_signature;
use consent::{AccountId, Category, ContactId, DealerId, MessageId, PhoneNumber, StaffUserId};
use consent_adapters::secrets::{Deferred, Versions};
use inbound::{handle, public_url, App};

const INBOUND_SMS: &str = include_str!("../../../events/inbound-sms.json");
const INBOUND_STATUS: &str = include_str!("../../../events/inbound-status.json");

/// The auth token the fixtures' `x-twilio-signature` headers were computed with.
const FIXTURE_TOKEN: &str = "fixture-twilio-auth-token";
const BASE_URL: &str = "http://127.0.0.1:3000";

const DEALER: &str = "demo-dealer";
const DEALER_NUMBER: &str = "+12025550100";
const CUSTOMER: &str = "+12025550143";

fn noon() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 10, 16, 0, 0).unwrap()
}

fn phone(s: &str) -> PhoneNumber {
    PhoneNumber::from_e164(s).unwrap()
}

fn dealer() -> DealerId {
    DealerId::parse(DEALER).unwrap()
}

// ------------------------------------------------------------------ events

type Form = Vec<(String, String)>;

/// The POST parameters of a webhook event, in order.
fn form(event: &Value) -> Form {
    let raw = event["body"].as_str().unwrap();
    let bytes = if event["isBase64Encoded"] == json!(true) {
        base64::engine::general_purpose::STANDARD
            .decode(raw)
            .unwrap()
    } else {
        raw.as_bytes().to_vec()
    };
    serde_urlencoded::from_bytes(&bytes).unwrap()
}

/// The event with these POST parameters (base64-encoded, as API Gateway delivers them).
fn with_form(mut event: Value, form: &Form) -> Value {
    let body = serde_urlencoded::to_string(form).unwrap();
    event["headers"]["content-length"] = json!(body.len().to_string());
    event["body"] = json!(base64::engine::general_purpose::STANDARD.encode(body));
    event["isBase64Encoded"] = json!(true);
    event
}

/// Sets (or adds) one parameter.
fn set(mut form: Form, name: &str, value: &str) -> Form {
    match form.iter_mut().find(|(k, _)| k == name) {
        Some(slot) => slot.1 = value.to_owned(),
        None => form.push((name.to_owned(), value.to_owned())),
    }
    form
}

fn with_query(mut event: Value, query: &str) -> Value {
    event["rawQueryString"] = json!(query);
    let params: Map<String, Value> = serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, json!(v)))
        .collect();
    event["queryStringParameters"] = Value::Object(params);
    event
}

/// The request, signed with `token` as the carrier would sign it.
fn signed_with(event: &Value, token: &str) -> Request {
    let mut req = request(event);
    let url = public_url(&req, Some(BASE_URL));
    let signature = twilio_signature(token, &url, &form(event));
    req.headers_mut()
        .insert("x-twilio-signature", signature.parse().unwrap());
    req
}

fn signed(event: &Value) -> Request {
    signed_with(event, FIXTURE_TOKEN)
}

/// An inbound SMS from the customer with this text and carrier message id.
fn sms(body: &str, sid: &str) -> Value {
    let f = form(&event(INBOUND_SMS));
    let f = set(set(set(f, "Body", body), "MessageSid", sid), "SmsSid", sid);
    let f = set(f, "SmsMessageSid", sid);
    with_form(event(INBOUND_SMS), &f)
}

fn is_twiml(response: &Response<Body>) -> bool {
    response.status() == StatusCode::OK
        && response.headers()[header::CONTENT_TYPE] == "text/xml"
        && String::from_utf8_lossy(response.body().as_ref()).contains("<Response></Response>")
}

fn assert_forbidden(response: &Response<Body>) {
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let body: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
    assert_eq!(body["type"], "http://127.0.0.1:3000/problems/forbidden");
}

// ------------------------------------------------------------------ world

/// The one test world (its store, queues, bus, carrier and code key) with the inbound
/// function and the inbound queue between it and its consumer.
struct World {
    world: fakes::World,
    inbox: FakeInbox,
    app: App,
    /// The consumer of the inbound queue.
    acting: webhooks::App,
}

impl std::ops::Deref for World {
    type Target = fakes::World;

    fn deref(&self) -> &fakes::World {
        &self.world
    }
}

impl World {
    /// The demo dealer (texting from +12025550100) and contact C-1001 (+12025550143),
    /// stored through the ports; no consent yet.
    async fn new() -> Self {
        let world = fakes::World::seeded({
            let mut seed = fakes::Seed::demo();
            seed.dealer.help_contact = Some("(202) 555-0199".into());
            seed
        })
        .await;
        let store = &world.store;
        let inbox = FakeInbox::new();
        let app = App {
            inbox: Arc::new(inbox.clone()),
            auth_token: Arc::new(Deferred::ready(Versions::only(FIXTURE_TOKEN))),
            public_base_url: Some(BASE_URL.into()),
        };
        let acting = webhooks::App {
            dealers: Arc::new(store.clone()),
            contacts: Arc::new(store.clone()),
            consent: Arc::new(store.clone()),
            consent_writer: Arc::new(store.clone()),
            pending: Arc::new(store.clone()),
            messages: Arc::new(store.clone()),
            queue: Arc::new(world.queue.clone()),
            events: Arc::new(world.bus.clone()),
            work: Arc::new(store.clone()),
            inbound: Arc::new(store.clone()),
            numbers: Arc::new(store.clone()),
            opt_outs: Arc::new(world.opt_outs.clone()),
            end_user_messaging: None,
        };
        World {
            world,
            inbox,
            app,
            acting,
        }
    }

    /// Staff click Authorize for `category` at `at`; returns the code texted (read
    /// from the newest queued text, as the person's phone would show it).
    async fn request_code(&self, category: Category, at: DateTime<Utc>) -> ApprovalCode {
        let staff = (&dealer(), &staff());
        request_code(
            &self.auth(),
            &self.store,
            &self.queue,
            staff,
            &contact_id(),
            category,
            at,
        )
        .await
        .1
    }

    /// The person authorized `category` with the texted code.
    async fn grant(&self, category: Category) {
        let at = noon() - Duration::hours(1);
        let code = self.request_code(category, at).await;
        auth::verify(
            &self.auth(),
            &dealer(),
            &staff(),
            &contact_id(),
            category,
            &code,
            at,
        )
        .await
        .unwrap();
        self.queue.drain();
    }

    /// Staff send a Text to Pay reminder (now or at `scheduled_at`).
    async fn send_reminder(&self, scheduled_at: Option<DateTime<Utc>>) -> Message {
        let variables = json!({"firstName": "Maria", "amount": "412.37", "dueDate": "2026-06-15"});
        let accepted = sending::request_send(
            &self.send_ports(),
            &dealer(),
            Origin::Staff { user: staff() },
            self.request_for("text-to-pay-reminder", fakes::vars(variables), scheduled_at),
            None,
            noon() - Duration::minutes(10),
        )
        .await
        .unwrap();
        self.queue.drain();
        accepted.message
    }

    /// A reminder sent now and handed to the (fake) carrier.
    async fn sent_reminder(&self) -> Message {
        let message = self.send_reminder(None).await;
        let at = noon() - Duration::minutes(10);
        let envelope = consent::message::OutboundEnvelope::for_message(&message, at);
        let outcome =
            delivery::deliver_envelope(&self.deliver_ports(), &envelope, Some(BASE_URL), at)
                .await
                .unwrap();
        assert!(
            matches!(outcome, DeliverOutcome::Sent { .. }),
            "{outcome:?}"
        );
        self.message(&message.id).await
    }

    async fn message(&self, id: &MessageId) -> Message {
        self.store.message(id).await.unwrap().unwrap()
    }

    async fn call(&self, req: Request) -> Response<Body> {
        use lambda_http::RequestExt;
        let route = match req.request_context_ref() {
            Some(lambda_http::request::RequestContext::ApiGatewayV2(c)) => {
                c.route_key.clone().unwrap_or_default()
            }
            _ => String::new(),
        };
        let response = handle(&self.app, req, noon()).await;
        // Every response these tests see is held to docs/openapi.yaml (make test).
        consent_adapters::http::record_sample(&route, &response);
        self.act_on_stored().await;
        response
    }

    /// The inbound queue's consumer acts on every stored webhook, in order; one that
    /// is handed back stays stored (with those after it), as SQS keeps it.
    async fn act_on_stored(&self) {
        let stored = self.inbox.drain();
        let mut handed_back = Vec::new();
        for webhook in stored {
            let body = serde_json::to_string(&webhook).unwrap();
            if !handed_back.is_empty()
                || webhooks::process_record(&self.acting, None, &body, noon()).await
                    == webhooks::RecordOutcome::Retry
            {
                handed_back.push(webhook);
            }
        }
        for webhook in handed_back.into_iter().rev() {
            self.inbox.put_back(webhook);
        }
    }

    async fn status(&self, category: Category) -> ConsentStatus {
        self.store
            .consent(&dealer(), &phone(CUSTOMER))
            .await
            .unwrap()
            .value
            .get(category)
            .status
    }

    fn ledger_len(&self) -> usize {
        self.store.ledger(&dealer(), &phone(CUSTOMER)).len()
    }

    /// Texts queued to the customer since the last drain, as stored messages.
    async fn queued_texts(&self) -> Vec<Message> {
        let mut out = Vec::new();
        for o in self.queue.sent() {
            out.push(self.message(&o.envelope.message_id).await);
        }
        out
    }
}

fn staff() -> StaffUserId {
    StaffUserId::parse("staff-1").unwrap()
}

fn contact_id() -> ContactId {
    ContactId::parse("C-1001").unwrap()
}

// ------------------------------------------------------------------ inbound SMS

#[tokio::test]
async fn the_signed_fixture_is_accepted_and_an_ordinary_reply_goes_to_staff() {
    let w = World::new().await;
    let e = event(INBOUND_SMS);
    let req = request(&e);
    assert_eq!(
        public_url(&req, Some(BASE_URL)),
        "http://127.0.0.1:3000/v1/carrier/twilio/inbound"
    );

    // WHEN the fixture arrives exactly as the carrier signed it
    let response = w.call(req).await;

    // THEN 200 TwiML, and the reply is on the replies queue for a person
    assert!(is_twiml(&response), "{response:?}");
    let items = w.store.work_items();
    assert_eq!(items.len(), 1);
    let item = &items[0];
    assert_eq!(item.queue, WorkQueueName::Replies);
    assert_eq!(item.kind, "reply-needs-attention");
    assert_eq!(item.dealer_id, dealer());
    assert_eq!(item.contact_id, Some(contact_id()));
    assert_eq!(item.account_id, Some(AccountId::parse("A-1001").unwrap()));
    assert_eq!(item.phone, Some(phone(CUSTOMER)));
    assert_eq!(
        item.text.as_deref(),
        Some("Can I move my payment to Friday?")
    );
    assert_eq!(item.created_at, noon());
    assert!(w.queue.sent().is_empty());
}

#[tokio::test]
async fn stop_revokes_every_category_suppresses_waiting_texts_and_confirms_once() {
    // GIVEN accounting and service are authorized and a reminder is scheduled
    let w = World::new().await;
    w.grant(Category::Accounting).await;
    w.grant(Category::Service).await;
    let scheduled = w.send_reminder(Some(noon() + Duration::hours(20))).await;
    assert_eq!(scheduled.status, MessageStatus::Scheduled);
    let before = w.ledger_len();

    // WHEN the person texts STOP
    let sid = "SM11111111111111111111111111111111";
    let response = w.call(signed(&sms("STOP", sid))).await;

    // THEN 200 TwiML and every category is revoked by the reply
    assert!(is_twiml(&response), "{response:?}");
    for c in Category::ALL {
        assert_eq!(w.status(c).await, ConsentStatus::Revoked, "{c}");
    }
    let ledger = w.store.ledger(&dealer(), &phone(CUSTOMER));
    let new = &ledger[before..];
    assert_eq!(new.len(), 4);
    for e in new {
        assert_eq!(e.event, ConsentEvent::RevokedByReply);
        assert_eq!(e.actor, Actor::Phone);
        assert_eq!(e.evidence.as_deref(), Some(sid));
        assert_eq!(e.at, noon());
    }

    // AND the scheduled reminder is suppressed
    let m = w.message(&scheduled.id).await;
    assert_eq!(m.status, MessageStatus::Suppressed);
    assert_eq!(m.status_reason, Some(StatusReason::OptedOut));

    // AND exactly one confirmation is queued
    let texts = w.queued_texts().await;
    assert_eq!(texts.len(), 1);
    assert_eq!(texts[0].kind, MessageKind::Reply);
    assert_eq!(texts[0].to, phone(CUSTOMER));
    assert_eq!(texts[0].from, phone(DEALER_NUMBER));
    assert_eq!(
        texts[0].body,
        "Demo Motors: you are unsubscribed and will receive no more texts. Reply START to resubscribe."
    );

    // AND a second STOP (a new text) changes nothing and is not answered again
    let response = w
        .call(signed(&sms("stop", "SM22222222222222222222222222222222")))
        .await;
    assert!(is_twiml(&response));
    assert_eq!(w.queue.sent().len(), 1);
    assert_eq!(w.ledger_len(), before + 4);
}

#[tokio::test]
async fn agree_authorizes_the_pending_request() {
    let w = World::new().await;
    w.request_code(Category::Service, noon() - Duration::minutes(2))
        .await;
    w.queue.drain();

    let sid = "SM33333333333333333333333333333333";
    let response = w.call(signed(&sms("Agree", sid))).await;

    assert!(is_twiml(&response));
    assert_eq!(w.status(Category::Service).await, ConsentStatus::Authorized);
    assert_eq!(w.status(Category::Accounting).await, ConsentStatus::None);
    let ledger = w.store.ledger(&dealer(), &phone(CUSTOMER));
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].event, ConsentEvent::GrantedByReply);
    assert_eq!(ledger[0].evidence.as_deref(), Some(sid));
    let texts = w.queued_texts().await;
    assert_eq!(texts.len(), 1);
    assert!(texts[0].body.contains("service texts"), "{}", texts[0].body);
}

#[tokio::test]
async fn a_bad_signature_is_403_and_changes_nothing() {
    let w = World::new().await;
    w.grant(Category::Accounting).await;
    let before = w.ledger_len();
    let stop = sms("STOP", "SM44444444444444444444444444444444");

    // Signed with another token, unsigned, or with a mangled signature
    let mut unsigned = request(&stop);
    unsigned.headers_mut().remove("x-twilio-signature");
    let mut mangled = signed(&stop);
    let sig = mangled.headers()["x-twilio-signature"]
        .to_str()
        .unwrap()
        .to_owned();
    let flipped = if sig.starts_with('A') { "B" } else { "A" };
    mangled.headers_mut().insert(
        "x-twilio-signature",
        format!("{flipped}{}", &sig[1..]).parse().unwrap(),
    );
    for req in [
        signed_with(&stop, "some-other-auth-token"),
        unsigned,
        mangled,
    ] {
        assert_forbidden(&w.call(req).await);
    }

    // THEN nothing changed
    assert_eq!(
        w.status(Category::Accounting).await,
        ConsentStatus::Authorized
    );
    assert_eq!(w.ledger_len(), before);
    assert!(w.queue.sent().is_empty());
    assert!(w.store.work_items().is_empty());

    // AND the forged requests did not use up the MessageSid: the genuine one still acts
    let response = w.call(signed(&stop)).await;
    assert!(is_twiml(&response));
    assert_eq!(w.status(Category::Accounting).await, ConsentStatus::Revoked);
}

#[tokio::test]
async fn changing_one_signed_parameter_is_403() {
    let w = World::new().await;
    w.grant(Category::Accounting).await;
    let before = w.ledger_len();

    // The fixture is correctly signed; its Body or From is changed in transit.
    let fixture = event(INBOUND_SMS);
    let signature = fixture["headers"]["x-twilio-signature"].clone();
    for (name, value) in [
        ("Body", "STOP"),
        ("From", "+12025550144"),
        ("NumMedia", "1"),
    ] {
        let mut tampered = with_form(fixture.clone(), &set(form(&fixture), name, value));
        tampered["headers"]["x-twilio-signature"] = signature.clone();
        assert_forbidden(&w.call(request(&tampered)).await);
    }
    // An added parameter
    let mut extra = with_form(fixture.clone(), &set(form(&fixture), "OptOutType", "STOP"));
    extra["headers"]["x-twilio-signature"] = signature.clone();
    assert_forbidden(&w.call(request(&extra)).await);

    assert_eq!(
        w.status(Category::Accounting).await,
        ConsentStatus::Authorized
    );
    assert_eq!(w.ledger_len(), before);
    assert!(w.store.work_items().is_empty());
    assert!(w.queue.sent().is_empty());
}

#[tokio::test]
async fn the_same_message_sid_twice_acts_once() {
    let w = World::new().await;
    w.grant(Category::Accounting).await;
    let stop = sms("STOP", "SM55555555555555555555555555555555");

    let first = w.call(signed(&stop)).await;
    let ledger_after_first = w.ledger_len();
    let second = w.call(signed(&stop)).await;

    assert!(is_twiml(&first));
    assert!(is_twiml(&second));
    assert_eq!(w.ledger_len(), ledger_after_first);
    assert_eq!(w.queue.sent().len(), 1, "one confirmation");

    // An ordinary reply redelivered: one work item
    let question = sms("What is my payoff?", "SM66666666666666666666666666666666");
    assert!(is_twiml(&w.call(signed(&question)).await));
    assert!(is_twiml(&w.call(signed(&question)).await));
    assert_eq!(w.store.work_items().len(), 1);
}

#[tokio::test]
async fn a_text_to_a_number_no_dealer_uses_is_ignored() {
    let w = World::new().await;
    let e = with_form(
        event(INBOUND_SMS),
        &set(form(&event(INBOUND_SMS)), "To", "+12025550198"),
    );

    let response = w.call(signed(&e)).await;

    assert!(is_twiml(&response));
    assert!(w.store.work_items().is_empty());
    assert!(w.queue.sent().is_empty());
}

#[tokio::test]
async fn a_webhook_that_is_not_a_form_is_415() {
    let w = World::new().await;
    let mut e = event(INBOUND_SMS);
    e["headers"]["content-type"] = json!("application/json");

    let response = w.call(request(&e)).await;

    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(w.store.work_items().is_empty());
}

// ------------------------------------------------------------------ status callbacks

/// The status fixture for `message`, with the carrier's message id and these fields.
fn status_event(message: &Message, fields: &[(&str, &str)]) -> Value {
    let e = with_query(event(INBOUND_STATUS), &format!("messageId={}", message.id));
    let sid = message.carrier_message_id.clone().unwrap();
    let mut f = set(set(form(&e), "MessageSid", &sid), "SmsSid", &sid);
    for (k, v) in fields {
        f = set(f, k, v);
    }
    with_form(e, &f)
}

#[tokio::test]
async fn a_21610_status_callback_revokes_by_carrier() {
    // GIVEN a reminder the carrier accepted
    let w = World::new().await;
    w.grant(Category::Accounting).await;
    let message = w.sent_reminder().await;
    assert_eq!(message.status, MessageStatus::Sent);
    let before = w.ledger_len();

    // WHEN the carrier reports it undelivered with 21610 (the fixture's fields)
    let e = status_event(&message, &[]);
    assert_eq!(
        form(&e).iter().find(|(k, _)| k == "ErrorCode").unwrap().1,
        "21610"
    );
    let response = w.call(signed(&e)).await;

    // THEN every category is revoked by the carrier, with the evidence
    assert!(is_twiml(&response), "{response:?}");
    let ledger = w.store.ledger(&dealer(), &phone(CUSTOMER));
    let new = &ledger[before..];
    assert_eq!(new.len(), 4);
    let sid = message.carrier_message_id.clone().unwrap();
    for e in new {
        assert_eq!(e.event, ConsentEvent::RevokedByCarrier);
        assert_eq!(e.actor, Actor::Carrier);
        assert_eq!(e.evidence.as_deref(), Some(&*format!("{sid} error 21610")));
    }
    assert_eq!(w.status(Category::Accounting).await, ConsentStatus::Revoked);

    // AND the message failed with the carrier's code
    let m = w.message(&message.id).await;
    assert_eq!(m.status, MessageStatus::Failed);
    assert_eq!(m.status_reason, Some(StatusReason::CarrierError(21610)));
    assert!(w.bus.published().is_empty());
}

#[tokio::test]
async fn a_delivered_status_callback_marks_the_message_delivered() {
    let w = World::new().await;
    w.grant(Category::Accounting).await;
    let message = w.sent_reminder().await;
    let mut f = form(&status_event(&message, &[]));
    f.retain(|(k, _)| k != "ErrorCode");
    let e = with_form(
        status_event(&message, &[]),
        &set(
            set(f, "MessageStatus", "delivered"),
            "SmsStatus",
            "delivered",
        ),
    );

    let response = w.call(signed(&e)).await;

    assert!(is_twiml(&response));
    assert_eq!(
        w.message(&message.id).await.status,
        MessageStatus::Delivered
    );
    assert_eq!(
        w.status(Category::Accounting).await,
        ConsentStatus::Authorized
    );
}

#[tokio::test]
async fn a_status_callback_for_another_message_id_in_the_url_is_403() {
    // The messageId is in the signed URL: changing it breaks the signature.
    let w = World::new().await;
    w.grant(Category::Accounting).await;
    let message = w.sent_reminder().await;
    let e = status_event(&message, &[]);
    let mut req = signed(&e);
    let signature = req.headers()["x-twilio-signature"].clone();
    let moved = with_query(e, "messageId=01JXA6Z3Q8M4V2N7K5P9R1T0WB");
    req = request(&moved);
    req.headers_mut().insert("x-twilio-signature", signature);

    assert_forbidden(&w.call(req).await);
    assert_eq!(
        w.status(Category::Accounting).await,
        ConsentStatus::Authorized
    );
    assert_eq!(w.message(&message.id).await.status, MessageStatus::Sent);
}

#[tokio::test]
async fn without_a_public_base_url_the_request_url_is_signed() {
    // API Gateway's host and x-forwarded-proto headers rebuild the same URL.
    let mut w = World::new().await;
    w.app.public_base_url = None;
    let req = request(&event(INBOUND_SMS));
    assert_eq!(
        public_url(&req, None),
        "http://127.0.0.1:3000/v1/carrier/twilio/inbound"
    );

    let response = w.call(req).await;

    assert!(is_twiml(&response), "{response:?}");
    assert_eq!(w.store.work_items().len(), 1);
}

#[tokio::test]
async fn an_unreadable_auth_token_is_a_503_that_changes_nothing_and_the_retry_acts() {
    let mut w = World::new().await;
    w.grant(Category::Accounting).await;
    let before = w.ledger_len();
    let stop = sms("STOP", "SM55555555555555555555555555555555");
    let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = reads.clone();
    // The token's read at cold start fails; the next one answers.
    w.app.auth_token = Arc::new(Deferred::start(move || {
        let n = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async move {
            match n {
                0 => Err(consent_adapters::secrets::SecretError::Empty(
                    "TWILIO_AUTH_TOKEN_SECRET_ARN",
                )),
                _ => Ok(Versions::only(FIXTURE_TOKEN)),
            }
        }
    }));

    let response = w.call(signed(&stop)).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        w.status(Category::Accounting).await,
        ConsentStatus::Authorized
    );
    assert_eq!(w.ledger_len(), before);
    assert!(w.queue.sent().is_empty() && w.store.work_items().is_empty());

    // The number's webhook URL asks Twilio to retry (`#rc=`/`#rp=`, docs/reliability.md):
    // the token is read again and the STOP acts.
    assert!(is_twiml(&w.call(signed(&stop)).await));
    assert_eq!(w.status(Category::Accounting).await, ConsentStatus::Revoked);
    assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[tokio::test]
async fn webhooks_keep_passing_while_the_twilio_token_is_rotated() {
    // The operator puts Twilio's new token in the secret (docs/operations.md): webhooks
    // signed with the token it replaced (AWSPREVIOUS) still pass; one signed with a token
    // put in after this instance read the secret makes it read the secret once more, and
    // a flood of bad signatures reads it at most once per interval.
    const OLD: &str = "the-token-before-the-rotation";
    const NEW: &str = "the-token-after-the-rotation";
    let mut w = World::new().await;
    let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = reads.clone();
    w.app.auth_token = Arc::new(
        Deferred::start(move || {
            let n = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                Ok(match n {
                    // Read at cold start, before the rotation.
                    0 => Versions::only(OLD),
                    _ => Versions {
                        current: NEW.into(),
                        previous: Some(OLD.into()),
                    },
                })
            }
        })
        .with_reread_interval(std::time::Duration::from_millis(300)),
    );
    let reply = |sid: &str| sms("Thanks", sid);
    assert!(is_twiml(&w.call(signed_with(&reply("SM01"), OLD)).await));
    assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 1);
    // The rotation, a while after the cold start.
    tokio::time::sleep(std::time::Duration::from_millis(350)).await;
    // Signed with the new token: read again, accepted.
    assert!(is_twiml(&w.call(signed_with(&reply("SM02"), NEW)).await));
    assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 2);
    // Both tokens pass now, with no further read.
    assert!(is_twiml(&w.call(signed_with(&reply("SM03"), OLD)).await));
    assert!(is_twiml(&w.call(signed_with(&reply("SM04"), NEW)).await));
    // Forged signatures right after: refused, and the secret is not read for each of them.
    for n in 0..20 {
        let forged = signed_with(&reply(&format!("SM1{n:02}")), "an-attacker-guess");
        assert_forbidden(&w.call(forged).await);
    }
    assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_stop_is_stored_and_answered_200_while_the_table_is_down_and_acts_later() {
    // GIVEN accounting is authorized and the table is down (every write fails)
    let w = World::new().await;
    w.grant(Category::Accounting).await;
    let before = w.ledger_len();
    w.store.crash_after_writes(0);

    // WHEN the person texts STOP
    let response = w
        .call(signed(&sms("STOP", "SM77777777777777777777777777777777")))
        .await;

    // THEN the carrier gets 200 at once (it would not retry a 5xx), nothing is acted on yet
    // and the STOP is kept on the inbound queue
    assert!(is_twiml(&response), "{response:?}");
    assert_eq!(w.ledger_len(), before);
    assert_eq!(w.inbox.len(), 1);

    // AND once the table is back, the queue's redelivery acts on it, once
    w.store.recover();
    w.act_on_stored().await;
    assert!(w.inbox.is_empty());
    assert_eq!(w.status(Category::Accounting).await, ConsentStatus::Revoked);
    assert_eq!(w.queue.sent().len(), 1, "one confirmation");
    w.act_on_stored().await;
    assert_eq!(w.queue.sent().len(), 1);
}

#[tokio::test]
async fn a_webhook_that_cannot_be_stored_is_a_503_and_nothing_is_acted_on() {
    let w = World::new().await;
    w.grant(Category::Accounting).await;
    w.inbox.fail_next(1);

    let response = w
        .call(signed(&sms("STOP", "SM88888888888888888888888888888888")))
        .await;

    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        w.status(Category::Accounting).await,
        ConsentStatus::Authorized
    );
    assert!(w.inbox.is_empty());
}

#[tokio::test]
async fn a_persons_texts_are_acted_on_in_the_order_they_came_even_after_a_failure() {
    // GIVEN accounting is authorized; the person texts STOP, then START, and acting on
    // the STOP fails the first time
    let w = World::new().await;
    w.grant(Category::Accounting).await;
    w.store.crash_after_writes(0);
    w.call(signed(&sms("STOP", "SM91111111111111111111111111111111")))
        .await;
    w.store.recover();
    // WHEN the START arrives while the STOP is still stored
    w.call(signed(&sms("START", "SM92222222222222222222222222222222")))
        .await;
    w.act_on_stored().await;

    // THEN the STOP acted first and the START restored: the last word stands
    assert!(w.inbox.is_empty());
    assert_eq!(
        w.status(Category::Accounting).await,
        ConsentStatus::Authorized
    );
    let events: Vec<ConsentEvent> = w
        .store
        .ledger(&dealer(), &phone(CUSTOMER))
        .iter()
        .map(|e| e.event)
        .collect();
    assert_eq!(
        events[events.len() - 2..],
        [ConsentEvent::RevokedByReply, ConsentEvent::RestoredByStart]
    );
}
