//! The journey of a dealer whose texting number is on AWS End User Messaging SMS, over
//! HTTP only, on the local stack: the operator provisions the number (its two-way channel
//! is the stack's topic), staff authorize by code, the person agrees, texts go out and are
//! delivered (the configuration set's events), a STOP is honoured on both lists and a
//! START lifts both. The fake carrier plays End User Messaging behind the emulator, which
//! holds every call to the functions' IAM policies.

use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use stack_tests::portal::{code_in, daytime_zone, Portal};
use stack_tests::{repo_root, LocalStack};

const DEALER: &str = "eum-motors";
const NUMBER: &str = "+16465550100"; // in EUM_NUMBERS (.env.example): End User Messaging's, not Twilio's
const ANN: &str = "+13125550142";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dealer_on_end_user_messaging_texts_with_the_same_guarantees() {
    let stack = LocalStack::start("journey-eum", &[]);
    stack.provision_on_end_user_messaging(DEALER, NUMBER);
    let portal = Portal {
        http: Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        base: stack.gateway.clone(),
        carrier: stack.carrier.clone(),
        token: stack.token(DEALER, "staff-1"),
        dealer_number: NUMBER.into(),
    };
    let zone = daytime_zone(chrono::Utc::now());
    portal
        .ok(Method::PUT, "/v1/dealer", Some(json!({"name": "EUM Motors", "textingNumber": NUMBER, "helpContact": "(646) 555-0199"})), StatusCode::OK)
        .await;
    portal
        .ok(
            Method::PUT,
            "/v1/contacts/C-1",
            Some(json!({"name": "Ann", "phone": ANN, "accountIds": ["A-1"], "timeZone": zone})),
            StatusCode::CREATED,
        )
        .await;

    // The code text goes through End User Messaging: transactional, our id in its context.
    portal
        .ok(
            Method::POST,
            "/v1/contacts/C-1/authorizations",
            Some(json!({"category": "accounting"})),
            StatusCode::ACCEPTED,
        )
        .await;
    let code_text = next_text(&portal, 0).await;
    assert_eq!(code_text["api"], "end-user-messaging", "{code_text}");
    assert_eq!(code_text["messageType"], "TRANSACTIONAL");
    assert_eq!(code_text["configurationSet"], "texting");
    assert!(code_text["context"]["messageId"].is_string(), "{code_text}");
    assert!(!code_in(code_text["body"].as_str().unwrap()).is_empty());

    // The person's Agree comes back through the number's two-way channel (SNS).
    portal.reply(ANN, "Agree").await;
    wait_for(&portal, "accounting", "authorized").await;

    // A text now: sent, then delivered by the configuration set's events.
    let payment_vars = json!({"firstName": "Ann", "amount": "412.50", "dueDate": "2026-12-01", "paymentUrl": "https://pay.example.com/a1"});
    let sent = portal
        .send(
            "eum-now-1",
            json!({"contactId": "C-1", "template": "auto-pay-failure", "variables": payment_vars}),
        )
        .await;
    let text = text_of(&portal, &sent["messageId"]).await;
    assert!(text["body"].as_str().unwrap().contains("$412.50"), "{text}");
    let message = portal
        .wait_status(sent["messageId"].as_str().unwrap(), &["delivered"])
        .await;
    assert_eq!(message["status"], "delivered", "{message}");

    // STOP: on our ledger (its evidence the service's inbound id) and on the service's
    // opt-out list; a text is refused before it is made.
    portal.reply(ANN, "STOP").await;
    wait_for(&portal, "accounting", "revoked").await;
    let (status, problem) = portal
        .try_send(
            "eum-after-stop",
            json!({"contactId": "C-1", "template": "auto-pay-failure", "variables": payment_vars}),
        )
        .await;
    assert!(status.is_client_error(), "{status} {problem}");
    let listed = opted_out(&stack).await;
    assert!(listed.contains(&ANN.to_owned()), "{listed:?}");

    // START: off the service's list, and the ledger restores what the STOP removed.
    portal.reply(ANN, "START").await;
    wait_for(&portal, "accounting", "authorized").await;
    let listed = opted_out(&stack).await;
    assert!(!listed.contains(&ANN.to_owned()), "{listed:?}");
    let again = portal
        .send(
            "eum-after-start",
            json!({"contactId": "C-1", "template": "auto-pay-failure", "variables": payment_vars}),
        )
        .await;
    text_of(&portal, &again["messageId"]).await;
    portal
        .wait_status(again["messageId"].as_str().unwrap(), &["delivered"])
        .await;
    let history = portal.history("C-1").await;
    for event in ["granted-by-reply", "revoked-by-reply", "restored-by-start"] {
        assert!(
            history.iter().any(|(e, c)| e == event && c == "accounting"),
            "{event}: {history:?}"
        );
    }
}

/// What the dealer's number sent Ann through the API (not the service's own STOP/HELP
/// answers), oldest first.
async fn outbound(portal: &Portal) -> Vec<Value> {
    portal
        .inbox(ANN)
        .await
        .into_iter()
        .filter(|m| m["direction"] == "outbound-api")
        .collect()
}

async fn next_text(portal: &Portal, seen: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let texts = outbound(portal).await;
        if texts.len() > seen {
            return texts[seen].clone();
        }
        assert!(
            Instant::now() < deadline,
            "no new text to {ANN} (had {seen})"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The text End User Messaging took for our message `id` (its context names it).
async fn text_of(portal: &Portal, id: &Value) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(text) = outbound(portal)
            .await
            .into_iter()
            .find(|t| t["context"]["messageId"] == *id)
        {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "message {id} never reached {ANN}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn wait_for(portal: &Portal, category: &str, status: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let now = portal
            .authorizations("/v1/accounts/A-1/contacts", "C-1")
            .await;
        if now[category] == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{category} never {status}: {now}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Who is on End User Messaging's Default opt-out list (the fake's, as an operator reads it).
async fn opted_out(stack: &LocalStack) -> Vec<String> {
    let out = Command::new(repo_root().join(".venv/bin/python"))
        .args(["-c", "import boto3, json, sys; c = boto3.client('pinpoint-sms-voice-v2', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='test', aws_secret_access_key='test'); print(json.dumps([n['OptedOutNumber'] for n in c.describe_opted_out_numbers(OptOutListName='Default')['OptedOutNumbers']]))", &stack.emulator])
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}
