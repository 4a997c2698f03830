//! The emulator restarted between steps where AWS's state must survive (DynamoDB
//! items, SQS messages, in flight or waiting), with the rest of the local stack
//! (functions, gateway, bridge, fake carrier) left running, as a restart of the
//! storage underneath would look to them. Over HTTP only, as in the journey.
//!
//! What must hold after each restart:
//! - a pending authorization keeps its code and its attempt count;
//! - the consent ledger keeps every entry; an Idempotency-Key still answers with the
//!   first message and sends nothing more;
//! - a scheduled text is still delivered, once, when due;
//! - a text in flight (claimed, the carrier call under way) when the emulator stops is
//!   recorded as sent and never sent twice;
//! - a reply waiting in a texting queue is still there; STOP stays in force.

use std::time::Duration;

use reqwest::{Client, Method, StatusCode};
use serde_json::json;
use stack_tests::portal::{code_in, daytime_zone, Portal};
use stack_tests::{LocalStack, RestartableEmulator};

const DEALER: &str = "restart-motors";
const ANN: &str = "+12025550143";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_survives_emulator_restarts() {
    let mut emulator = RestartableEmulator::start("restart");
    let stack = LocalStack::start_on("restart", &[], Some(&emulator));
    let zone = daytime_zone(chrono::Utc::now());
    let portal = Portal {
        http: Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        base: stack.gateway.clone(),
        carrier: stack.carrier.clone(),
        token: stack.token(DEALER, "staff-3"),
        dealer_number: "+12025550100".into(),
    };
    portal
        .ok(Method::PUT, "/v1/dealer", Some(json!({"name": "Restart Motors", "textingNumber": portal.dealer_number, "helpContact": "(202) 555-0199"})), StatusCode::OK)
        .await;
    portal
        .ok(
            Method::PUT,
            "/v1/contacts/C-1",
            Some(json!({"name": "Ann", "phone": ANN, "accountIds": ["A-1"], "timeZone": zone})),
            StatusCode::CREATED,
        )
        .await;

    // A pending authorization keeps its code and its attempt count.
    portal
        .ok(
            Method::POST,
            "/v1/contacts/C-1/authorizations",
            Some(json!({"category": "accounting"})),
            StatusCode::ACCEPTED,
        )
        .await;
    let code = code_in(portal.next_text(ANN, 0).await["body"].as_str().unwrap());
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let verify = "/v1/contacts/C-1/authorizations/accounting/verify";
    let (status, problem) = portal
        .call(Method::POST, verify, Some(json!({"code": wrong})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["attemptsLeft"], 4);
    let away = emulator.restart();
    eprintln!("restart 1: emulator away {away:?}");
    let (status, problem) = portal
        .call(Method::POST, verify, Some(json!({"code": wrong})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["attemptsLeft"], 3, "the attempt count survived");
    let verified = portal
        .ok(
            Method::POST,
            verify,
            Some(json!({"code": code})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(verified["status"], "authorized");

    // Send now, then restart: the Idempotency-Key still answers with the same message.
    let vars = json!({"firstName": "Ann", "amount": "412.50", "dueDate": "2026-12-01", "paymentUrl": "https://pay.example.com/a1"});
    let body = json!({"contactId": "C-1", "template": "auto-pay-failure", "variables": vars});
    let first = portal.send("now-1", body.clone()).await;
    portal.next_text(ANN, 1).await;
    portal
        .wait_status(first["messageId"].as_str().unwrap(), &["sent", "delivered"])
        .await;
    emulator.restart();
    let again = portal.send("now-1", body.clone()).await;
    assert_eq!(again["messageId"], first["messageId"]);

    // A scheduled text waiting when the emulator restarts is delivered once, when due.
    let at = chrono::Utc::now() + chrono::Duration::seconds(8);
    let scheduled = portal
        .send("later-1", json!({"contactId": "C-1", "template": "past-due-alert", "variables": vars, "scheduledAt": at.to_rfc3339()}))
        .await;
    assert_eq!(scheduled["status"], "scheduled");
    emulator.restart();
    // Dispatch takes it as soon as it is within the minute. If that run marked it queued and
    // the emulator went away before the queue send, it waits in the index for its requeue
    // (5 minutes after it was marked): still delivered once, later.
    let text = portal
        .next_text_within(ANN, 2, std::time::Duration::from_secs(400))
        .await;
    assert!(
        text["body"].as_str().unwrap().contains("past due"),
        "{text}"
    );
    portal
        .wait_status(
            scheduled["messageId"].as_str().unwrap(),
            &["sent", "delivered"],
        )
        .await;

    // A text in flight: claimed and at the carrier (which holds the call 8 s) when the
    // emulator stops. The delivery is recorded after the restart; the text goes once.
    let hang = portal
        .http
        .post(format!("{}/hang", stack.carrier))
        .json(&json!({"count": 1, "seconds": 8}))
        .send()
        .await
        .unwrap();
    assert_eq!(hang.status(), StatusCode::OK);
    let in_flight = portal.send("now-2", body.clone()).await;
    let id = in_flight["messageId"].as_str().unwrap().to_owned();
    portal.wait_status(&id, &["sending"]).await;
    let away = emulator.restart();
    eprintln!("restart 3 (text in flight): emulator away {away:?}");
    let done = portal.wait_status(&id, &["sent", "delivered"]).await;
    let claims = done["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["status"] == "sending")
        .count();
    assert_eq!(claims, 1, "claimed once: {done}");
    settle_inbox(&portal, 4).await;

    // A reply in a texting queue, then STOP: both survive.
    portal.reply(ANN, "Can I pay on Friday instead?").await;
    let item = portal.first_queue_item("replies", "contactId=C-1").await;
    portal.reply(ANN, "STOP").await;
    let stop_ack = portal.next_text(ANN, 4).await;
    assert!(
        stop_ack["body"].as_str().unwrap().contains("unsubscribed"),
        "{stop_ack}"
    );
    emulator.restart();
    let items = portal.queue_items("replies", "contactId=C-1").await;
    assert!(items.iter().any(|i| i["id"] == item["id"]), "{items:?}");
    let (status, problem) = portal.try_send("restart-refused-1", body.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    assert_eq!(problem["category"], "accounting");
    let history = portal.history("C-1").await;
    assert!(
        history.contains(&("granted-by-code".into(), "accounting".into())),
        "{history:?}"
    );
    assert!(
        history
            .iter()
            .any(|(event, category)| event.starts_with("revoked") && category == "accounting"),
        "{history:?}"
    );
    settle_inbox(&portal, 5).await;
}

/// Waits a moment and checks that the carrier got exactly `count` texts for Ann:
/// nothing sent twice after a restart.
async fn settle_inbox(portal: &Portal, count: usize) {
    tokio::time::sleep(Duration::from_secs(3)).await;
    let inbox = portal.inbox(ANN).await;
    assert_eq!(
        inbox.len(),
        count,
        "texts to Ann: {:#?}",
        inbox.iter().map(|m| &m["body"]).collect::<Vec<_>>()
    );
}
