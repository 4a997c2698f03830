//! The seed's whole journey, over HTTP only, as the portal and a phone would, on the
//! local stack (emulator, functions in the local Lambda service, gateway, fake carrier,
//! bridge with a 2-second schedule). Every step asserts statuses, bodies, ledger
//! entries and the fake carrier's inbox.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use stack_tests::portal::{code_in, daytime_zone, Portal};
use stack_tests::{sdk_config, LocalStack};

const DEALER: &str = "journey-motors";
const ANN: &str = "+12025550143"; // on account A-1 and deal D-1
const BEN: &str = "+12025550144"; // on deal D-1
const FLO: &str = "+13055550147"; // Florida: marketing capped at 3 per 24 hours

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_journey_over_http() {
    // A short carrier timeout, so the "accepted, then no answer" step below is quick.
    let stack = LocalStack::start("journey", &[("CARRIER_TIMEOUT_SECONDS", "3")]);
    let now = Utc::now();
    let zone = daytime_zone(now);
    let dealer_number = "+12025550100".to_owned();
    let portal = Portal {
        http: Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        base: stack.gateway.clone(),
        carrier: stack.carrier.clone(),
        token: stack.token(DEALER, "staff-7"),
        dealer_number: dealer_number.clone(),
    };

    // Security first: no token, no entry.
    let anonymous = portal
        .http
        .get(format!("{}/v1/accounts/A-1/contacts", stack.gateway))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    // Only a dealer admin sets the dealer's texting number.
    let (status, _) = Portal {
        token: stack.staff_token(DEALER, "staff-9"),
        http: portal.http.clone(),
        base: portal.base.clone(),
        carrier: portal.carrier.clone(),
        dealer_number: portal.dealer_number.clone(),
    }
    .call(
        Method::PUT,
        "/v1/dealer",
        Some(json!({"name": "Journey Motors", "textingNumber": dealer_number})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The dealer's settings and two contacts on an account and a deal.
    portal
        .ok(Method::PUT, "/v1/dealer", Some(json!({"name": "Journey Motors", "textingNumber": dealer_number, "helpContact": "(202) 555-0199"})), StatusCode::OK)
        .await;
    portal
        .ok(Method::PUT, "/v1/contacts/C-1", Some(json!({"name": "Ann", "phone": "(202) 555-0143", "accountIds": ["A-1"], "dealIds": ["D-1"], "timeZone": zone})), StatusCode::CREATED)
        .await;
    portal
        .ok(Method::PUT, "/v1/contacts/C-2", Some(json!({"name": "Ben", "phone": "202.555.0144", "dealIds": ["D-1"], "timeZone": zone})), StatusCode::CREATED)
        .await;
    let on_account = portal
        .ok(
            Method::GET,
            "/v1/accounts/A-1/contacts",
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(on_account["contacts"].as_array().unwrap().len(), 1);
    assert_eq!(on_account["contacts"][0]["phone"], ANN);
    let on_deal = portal
        .ok(Method::GET, "/v1/deals/D-1/contacts", None, StatusCode::OK)
        .await;
    assert_eq!(on_deal["contacts"].as_array().unwrap().len(), 2);
    assert!(
        on_deal["contacts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["phone"] == BEN),
        "{on_deal}"
    );
    assert_eq!(
        portal.authorizations("/v1/deals/D-1/contacts", "C-2").await["accounting"],
        "none"
    );

    // Authorize accounting by code: the code text reaches the phone, staff type it in.
    let pending = portal
        .ok(
            Method::POST,
            "/v1/contacts/C-1/authorizations",
            Some(json!({"category": "accounting"})),
            StatusCode::ACCEPTED,
        )
        .await;
    assert_eq!(pending["status"], "pending");
    assert_eq!(
        portal
            .authorizations("/v1/accounts/A-1/contacts", "C-1")
            .await["accounting"],
        "pending"
    );
    let code_text = portal.next_text(ANN, 0).await;
    let body = code_text["body"].as_str().unwrap();
    assert!(
        body.contains("Journey Motors") && body.contains("AGREE") && body.contains("STOP"),
        "{body}"
    );
    let code = code_in(body);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (status, problem) = portal
        .call(
            Method::POST,
            "/v1/contacts/C-1/authorizations/accounting/verify",
            Some(json!({"code": wrong})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["attemptsLeft"], 4);
    let verified = portal
        .ok(
            Method::POST,
            "/v1/contacts/C-1/authorizations/accounting/verify",
            Some(json!({"code": code})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(verified["status"], "authorized");
    assert_eq!(verified["ledgerEntry"]["actor"]["id"], "staff-7");
    assert_eq!(
        portal
            .authorizations("/v1/accounts/A-1/contacts", "C-1")
            .await["accounting"],
        "authorized"
    );

    // Authorize marketing by replying "Agree".
    portal
        .ok(
            Method::POST,
            "/v1/contacts/C-1/authorizations",
            Some(json!({"category": "marketing"})),
            StatusCode::ACCEPTED,
        )
        .await;
    portal.next_text(ANN, 1).await;
    portal.reply(ANN, "Agree!").await;
    let agreed = portal.next_text(ANN, 2).await;
    assert!(
        agreed["body"].as_str().unwrap().contains("marketing"),
        "{agreed}"
    );
    assert_eq!(
        portal
            .authorizations("/v1/accounts/A-1/contacts", "C-1")
            .await["marketing"],
        "authorized"
    );
    let history = portal.history("C-1").await;
    assert!(
        history.contains(&("granted-by-code".into(), "accounting".into())),
        "{history:?}"
    );
    assert!(
        history.contains(&("granted-by-reply".into(), "marketing".into())),
        "{history:?}"
    );

    // Send now: at the carrier within seconds, and the message shows sent (then delivered).
    let payment_vars = json!({"firstName": "Ann", "amount": "412.50", "dueDate": "2026-12-01", "paymentUrl": "https://pay.example.com/a1"});
    let sent = portal
        .send("now-1", json!({"contactId": "C-1", "template": "auto-pay-failure", "variables": payment_vars, "notes": "left a voicemail"}))
        .await;
    assert_eq!(sent["status"], "queued");
    let again = portal
        .send("now-1", json!({"contactId": "C-1", "template": "auto-pay-failure", "variables": payment_vars, "notes": "left a voicemail"}))
        .await;
    assert_eq!(
        again["messageId"], sent["messageId"],
        "same Idempotency-Key, one message"
    );
    let text = portal.next_text(ANN, 3).await;
    assert!(text["body"].as_str().unwrap().contains("$412.50"), "{text}");
    let message = portal
        .wait_status(sent["messageId"].as_str().unwrap(), &["sent", "delivered"])
        .await;
    assert_eq!(message["notes"], "left a voicemail");
    assert_eq!(
        portal.inbox(ANN).await.len(),
        4,
        "the idempotent retry sent nothing"
    );

    // Marketing to Ben, who authorized nothing: refused, naming the category.
    let offer = json!({"contactId": "C-2", "template": "marketing-offer", "variables": {"offer": "0% APR", "endDate": "2026-12-31", "offerUrl": "https://example.com/o"}});
    let (status, problem) = portal.try_send("ben-offer-1", offer.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    assert_eq!(problem["category"], "marketing");
    // Without an Idempotency-Key nothing is read or sent: 428.
    let (status, problem) = portal.call(Method::POST, "/v1/messages", Some(offer)).await;
    assert_eq!(status, StatusCode::PRECONDITION_REQUIRED, "{problem}");

    // Florida caps marketing at 3 texts to a person in any 24 hours. Five offers sent at
    // once (the recipient index lags its table by up to 400 ms here, as GSIs do): three
    // go, two wait for the cap, and the phone gets three.
    portal
        .ok(Method::PUT, "/v1/contacts/C-3", Some(json!({"name": "Flo", "phone": "(305) 555-0147", "accountIds": ["A-3"], "timeZone": zone})), StatusCode::CREATED)
        .await;
    portal
        .ok(
            Method::POST,
            "/v1/contacts/C-3/authorizations",
            Some(json!({"category": "marketing"})),
            StatusCode::ACCEPTED,
        )
        .await;
    portal.next_text(FLO, 0).await;
    portal.reply(FLO, "Agree").await;
    portal.next_text(FLO, 1).await;
    let flo_offer = json!({"contactId": "C-3", "template": "marketing-offer", "variables": {"offer": "0% APR", "endDate": "2026-12-31", "offerUrl": "https://example.com/o"}});
    let offers = tokio::join!(
        portal.try_send("flo-offer-1", flo_offer.clone()),
        portal.try_send("flo-offer-2", flo_offer.clone()),
        portal.try_send("flo-offer-3", flo_offer.clone()),
        portal.try_send("flo-offer-4", flo_offer.clone()),
        portal.try_send("flo-offer-5", flo_offer.clone()),
    );
    let offers = [offers.0, offers.1, offers.2, offers.3, offers.4];
    let went = offers
        .iter()
        .filter(|(_, m)| m["status"] == "queued")
        .count();
    let capped = offers
        .iter()
        .filter(|(_, m)| m["status"] == "deferred" && m["statusReason"] == "frequency-cap")
        .count();
    assert_eq!((went, capped), (3, 2), "{offers:?}");
    portal.wait_for_sent_count(FLO, 2 + 3).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        portal.inbox(FLO).await.len(),
        2 + 3,
        "the cap holds at the phone"
    );

    // Scheduled for later: delivered then, not before.
    let at = Utc::now() + chrono::Duration::seconds(12);
    let scheduled = portal
        .send("later-1", json!({"contactId": "C-1", "template": "past-due-alert", "variables": payment_vars, "scheduledAt": at.to_rfc3339()}))
        .await;
    assert_eq!(scheduled["status"], "scheduled");
    let later = portal.next_text(ANN, 4).await;
    let arrived: DateTime<Utc> = later["at"].as_str().unwrap().parse().unwrap();
    assert!(
        arrived >= at - chrono::Duration::seconds(1),
        "arrived {arrived} before {at}"
    );
    portal
        .wait_status(
            scheduled["messageId"].as_str().unwrap(),
            &["sent", "delivered"],
        )
        .await;

    // Text to Pay: reminder, PAY, CONFIRM -> TextToPayConfirmed on the bus.
    let sdk = sdk_config(&stack.emulator).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let bus = stack
        .resources
        .get("EVENT_BUS_NAME")
        .expect("bus name")
        .clone();
    let observed_url = observe(
        &sqs,
        &events,
        &bus,
        &format!("{}-observed", stack.stack),
        r#"{"detail-type":["TextToPayConfirmed"]}"#,
    )
    .await;
    // Events for the DMS (from the table's stream, by the publish function): observed from here on.
    let dms_url = observe(
        &sqs,
        &events,
        &bus,
        &format!("{}-observed-dms", stack.stack),
        r#"{"detail-type":["ConsentChanged","MessageStatusChanged"]}"#,
    )
    .await;
    let reminder = portal
        .send("pay-1", json!({"contactId": "C-1", "template": "text-to-pay-reminder", "variables": {"firstName": "Ann", "amount": "99.95", "dueDate": "2026-12-05"}}))
        .await;
    portal.next_text(ANN, 5).await;
    portal
        .wait_status(
            reminder["messageId"].as_str().unwrap(),
            &["sent", "delivered"],
        )
        .await;
    portal.reply(ANN, "PAY").await;
    let ask = portal.next_text(ANN, 6).await;
    assert!(
        ask["body"].as_str().unwrap().contains("CONFIRM")
            && ask["body"].as_str().unwrap().contains("99.95"),
        "{ask}"
    );
    portal.wait_for_sent_count(ANN, 7).await;
    portal.reply(ANN, "confirm").await;
    portal.next_text(ANN, 7).await;
    let mut confirmed = None;
    for _ in 0..20 {
        let out = sqs
            .receive_message()
            .queue_url(&observed_url)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        if let Some(m) = out.messages.unwrap_or_default().into_iter().next() {
            confirmed = Some(serde_json::from_str::<Value>(m.body.as_deref().unwrap()).unwrap());
            break;
        }
    }
    let confirmed = confirmed.expect("TextToPayConfirmed on the bus");
    assert_eq!(confirmed["detail-type"], "TextToPayConfirmed");
    assert_eq!(confirmed["detail"]["dealerId"], DEALER);
    assert_eq!(confirmed["detail"]["amount"], "99.95");
    assert_eq!(confirmed["detail"]["contactId"], "C-1");

    // A free-text reply lands in the replies queue, linked to the contact; worked by one user.
    portal.reply(ANN, "Can I come in Saturday instead?").await;
    let item = portal.first_queue_item("replies", "contactId=C-1").await;
    assert_eq!(item["text"], "Can I come in Saturday instead?");
    assert_eq!(item["accountId"], "A-1");
    let item_path = format!("/v1/queues/replies/items/{}", item["id"].as_str().unwrap());
    portal
        .ok(
            Method::POST,
            &format!("{item_path}/claim"),
            None,
            StatusCode::OK,
        )
        .await;
    let other = Portal {
        token: stack.token(DEALER, "staff-8"),
        http: portal.http.clone(),
        base: portal.base.clone(),
        carrier: portal.carrier.clone(),
        dealer_number: dealer_number.clone(),
    };
    let (status, problem) = other
        .call(Method::POST, &format!("{item_path}/claim"), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["claimedBy"], "staff-7");
    portal
        .ok(
            Method::POST,
            &format!("{item_path}/resolve"),
            Some(json!({"note": "moved to Saturday"})),
            StatusCode::OK,
        )
        .await;
    // The open list is an index (eventually consistent, as DynamoDB's GSIs): it drops the
    // resolved item within moments.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let open = portal
            .ok(
                Method::GET,
                "/v1/queues/replies/items",
                None,
                StatusCode::OK,
            )
            .await;
        if open["items"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "{open}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // STOP: every category revoked, the pending scheduled text suppressed, one confirmation.
    let pending_later = portal
        .send("later-2", json!({"contactId": "C-1", "template": "past-due-alert", "variables": payment_vars, "scheduledAt": (Utc::now() + chrono::Duration::hours(2)).to_rfc3339()}))
        .await;
    // The person answers a moment later, once staff see the text in the conversation (an
    // index, as the STOP's search for waiting texts is: a STOP within the index's lag of the
    // scheduling leaves the text `scheduled` until dispatch suppresses it at its time, never
    // sent; docs/reliability.md).
    let scheduled_id = pending_later["messageId"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let listed = portal
            .ok(
                Method::GET,
                "/v1/contacts/C-1/messages?limit=50",
                None,
                StatusCode::OK,
            )
            .await;
        if listed["messages"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m["id"] == scheduled_id.as_str()))
        {
            break;
        }
        assert!(Instant::now() < deadline, "{listed}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before_stop = portal.inbox(ANN).await.len();
    portal.reply(ANN, "Stop texting me please").await;
    portal.next_text(ANN, before_stop).await;
    let auths = portal
        .authorizations("/v1/accounts/A-1/contacts", "C-1")
        .await;
    for c in ["accounting", "service", "sales", "marketing"] {
        assert_eq!(auths[c], "revoked", "{auths}");
    }
    let suppressed = portal
        .wait_status(
            pending_later["messageId"].as_str().unwrap(),
            &["suppressed"],
        )
        .await;
    assert_eq!(suppressed["statusReason"], "opted-out");
    // The DMS heard of it: the revocation by SMS, the suppressed text, and the reminder sent.
    let reminder_id = reminder["messageId"].as_str().unwrap().to_owned();
    let later_id = pending_later["messageId"].as_str().unwrap().to_owned();
    let mut heard: Vec<Value> = Vec::new();
    let wanted = |heard: &[Value]| {
        let has = |f: &dyn Fn(&Value) -> bool| heard.iter().any(f);
        has(&|e| {
            e["detail-type"] == "ConsentChanged"
                && e["detail"]["change"] == "revoke"
                && e["detail"]["channel"] == "sms"
                && e["detail"]["phone"] == ANN
        }) && has(&|e| {
            e["detail-type"] == "MessageStatusChanged"
                && e["detail"]["messageId"] == later_id.as_str()
                && e["detail"]["status"] == "suppressed"
        }) && has(&|e| {
            e["detail-type"] == "MessageStatusChanged"
                && e["detail"]["messageId"] == reminder_id.as_str()
                && e["detail"]["status"] == "sent"
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !wanted(&heard) && Instant::now() < deadline {
        let out = sqs
            .receive_message()
            .queue_url(&dms_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for m in out.messages.unwrap_or_default() {
            heard.push(serde_json::from_str(m.body.as_deref().unwrap()).unwrap());
        }
    }
    assert!(
        wanted(&heard),
        "ConsentChanged and MessageStatusChanged on the bus: {heard:#?}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        portal.inbox(ANN).await.len(),
        before_stop + 1,
        "exactly one confirmation"
    );

    // START restores what STOP removed.
    portal.reply(ANN, "START").await;
    portal.next_text(ANN, before_stop + 1).await;
    let auths = portal
        .authorizations("/v1/accounts/A-1/contacts", "C-1")
        .await;
    assert_eq!(auths["accounting"], "authorized");
    assert_eq!(auths["marketing"], "authorized");
    assert_eq!(auths["service"], "revoked");

    // Unsubscribe one category in the portal.
    portal
        .ok(
            Method::DELETE,
            "/v1/contacts/C-1/authorizations/marketing",
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        portal
            .authorizations("/v1/accounts/A-1/contacts", "C-1")
            .await["marketing"],
        "revoked"
    );
    let history = portal.history("C-1").await;
    for expected in [
        ("revoked-by-reply", "accounting"),
        ("restored-by-start", "accounting"),
        ("revoked-by-portal", "marketing"),
    ] {
        assert!(
            history.contains(&(expected.0.into(), expected.1.into())),
            "{expected:?} not in {history:?}"
        );
    }

    // The evidence a dealer shows: the person's as CSV (the STOP in their own words, by
    // SMS), and the dealer's ledger for today, page by page (dealer-admin).
    let csv = portal
        .http
        .get(format!("{}/v1/contacts/C-1/consent-evidence", portal.base))
        .bearer_auth(&portal.token)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(csv.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let csv = csv.text().await.unwrap();
    assert!(
        csv.lines()
            .any(|l| l.contains(",revoked-by-reply,sms,phone,")
                && l.contains("Stop texting me please")),
        "{csv}"
    );
    let (from, to) = (
        (Utc::now() - chrono::Duration::days(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        (Utc::now() + chrono::Duration::days(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    let mut exported = Vec::new();
    let mut cursor = String::new();
    for page in 0.. {
        assert!(page < 30, "the export ends");
        let body = portal
            .ok(
                Method::GET,
                &format!("/v1/consent-evidence?from={from}&to={to}&limit=5&cursor={cursor}"),
                None,
                StatusCode::OK,
            )
            .await;
        exported.extend(body["entries"].as_array().unwrap().iter().cloned());
        match body["nextCursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    assert!(exported.len() > 5, "more than one page: {}", exported.len());
    assert!(exported.iter().any(|e| e["event"] == "granted-by-reply"
        && e["words"]
            .as_str()
            .is_some_and(|w| w.to_lowercase().contains("agree"))
        && e["disclosureSha256"]
            .as_str()
            .is_some_and(|h| h.len() == 64)));

    // The conversation: both directions, newest first, the STOP read as an opt-out, codes masked.
    let conversation = portal
        .ok(
            Method::GET,
            "/v1/contacts/C-1/messages?limit=200",
            None,
            StatusCode::OK,
        )
        .await;
    let lines = conversation["messages"].as_array().unwrap();
    assert!(lines.iter().any(|m| m["direction"] == "inbound"
        && m["body"] == "Stop texting me please"
        && m["readAs"] == "opt-out"));
    assert!(lines
        .iter()
        .any(|m| m["kind"] == "approval-code" && m["body"].as_str().unwrap().contains("******")));
    // Staff answer in their own words (accounting is authorized again since START), and a
    // dealer admin's own template is sent; a DMS event the bus routes (ServiceDue) is mapped to it.
    let answer = portal
        .send("own-words-1", json!({"contactId": "C-1", "body": "Thanks Ann, we received your payment.", "category": "accounting"}))
        .await;
    portal
        .ok(
            Method::PUT,
            "/v1/templates/journey-note",
            Some(json!({"category": "accounting", "body": "{dealerName}: Hi {firstName}, your statement is ready."})),
            StatusCode::CREATED,
        )
        .await;
    let own = portal
        .send("own-template-1", json!({"contactId": "C-1", "template": "journey-note", "variables": {"firstName": "Ann"}}))
        .await;
    for id in [&answer["messageId"], &own["messageId"]] {
        portal
            .wait_status(id.as_str().unwrap(), &["sent", "delivered"])
            .await;
    }
    portal
        .ok(
            Method::PUT,
            "/v1/automations/ServiceDue",
            Some(json!({"template": "journey-note", "enabled": true})),
            StatusCode::OK,
        )
        .await;
    let automations = portal
        .ok(Method::GET, "/v1/automations", None, StatusCode::OK)
        .await;
    assert!(automations["automations"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["eventType"] == "ServiceDue" && a["template"] == "journey-note"));
    // Contacts in a batch (a result each), and one deleted.
    let batch = portal
        .ok(
            Method::POST,
            "/v1/contacts/batch",
            Some(json!({"contacts": [
                {"contactId": "C-7", "name": "Cy", "phone": "(202) 555-0177", "accountIds": ["A-1"]},
                {"contactId": "C-8", "name": "Di", "phone": "not a phone"},
            ]})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(batch["results"][0]["status"], 201, "{batch}");
    assert_eq!(batch["results"][1]["status"], 422, "{batch}");
    let (status, _) = portal.call(Method::DELETE, "/v1/contacts/C-7", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // An automated AutoPayFailed event sends its template, once: the DMS retries its
    // PutEvents (EventBridge gives the retry a new id), the producer's key is the same.
    let before_auto = portal.inbox(ANN).await.len();
    let detail = json!({"idempotencyKey": "journey-autopay-1", "dealerId": DEALER, "contactId": "C-1", "accountId": "A-1", "variables": {"firstName": "Ann", "amount": "55.00", "dueDate": "2026-12-10", "paymentUrl": "https://pay.example.com/a1"}});
    for _ in 0..2 {
        let put = events
            .put_events()
            .entries(
                aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                    .event_bus_name(&bus)
                    .source("dms")
                    .detail_type("AutoPayFailed")
                    .detail(detail.to_string())
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(put.failed_entry_count, 0);
    }
    let auto = portal.next_text(ANN, before_auto).await;
    assert!(auto["body"].as_str().unwrap().contains("$55.00"), "{auto}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        portal.inbox(ANN).await.len(),
        before_auto + 1,
        "one text for an event the DMS sent twice"
    );

    // The carrier is down for the first two attempts (503: not taken): delivered anyway,
    // exactly once.
    let failing = portal
        .http
        .post(format!("{}/fail", stack.carrier))
        .json(&json!({"count": 2, "status": 503, "code": 20503}))
        .send()
        .await
        .unwrap();
    assert!(failing.status().is_success());
    let before_retry = portal.inbox(ANN).await.len();
    let retried = portal
        .send("retry-1", json!({"contactId": "C-1", "template": "payment-received", "variables": {"firstName": "Ann", "amount": "77.00", "paymentDate": "2026-11-20"}}))
        .await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let delivered = loop {
        let m = portal
            .ok(
                Method::GET,
                &format!("/v1/messages/{}", retried["messageId"].as_str().unwrap()),
                None,
                StatusCode::OK,
            )
            .await;
        if m["status"] == "sent" || m["status"] == "delivered" {
            break m;
        }
        assert_ne!(m["status"], "failed", "{m}");
        assert!(
            Instant::now() < deadline,
            "not delivered after carrier failures: {m}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let retries = delivered["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| {
            h["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("retrying"))
        })
        .count();
    assert_eq!(retries, 2, "{delivered}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let inbox = portal.inbox(ANN).await;
    assert_eq!(
        inbox.len(),
        before_retry + 1,
        "exactly one text after two failures"
    );
    assert!(inbox.last().unwrap()["body"]
        .as_str()
        .unwrap()
        .contains("$77.00"));

    // The carrier takes a text and answers 500 (Twilio may have processed it): its message
    // list says it has it, so it is recorded sent with the carrier's id and never sent twice.
    let accepting = portal
        .http
        .post(format!("{}/accept-then-fail", stack.carrier))
        .json(&json!({"count": 1, "status": 500}))
        .send()
        .await
        .unwrap();
    assert!(accepting.status().is_success());
    let before_unknown = portal.inbox(ANN).await.len();
    let unknown = portal
        .send("unknown-1", json!({"contactId": "C-1", "template": "payment-received", "variables": {"firstName": "Ann", "amount": "88.00", "paymentDate": "2026-11-21"}}))
        .await;
    let resolved = portal
        .wait_status(
            unknown["messageId"].as_str().unwrap(),
            &["sent", "delivered"],
        )
        .await;
    assert!(
        resolved["carrierMessageId"]
            .as_str()
            .is_some_and(|s| s.starts_with("SM")),
        "{resolved}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let inbox = portal.inbox(ANN).await;
    assert_eq!(
        inbox.len(),
        before_unknown + 1,
        "one text after an unknown outcome"
    );

    // Thirty wrong codes at once against one request (functions serve invocations
    // concurrently, as Lambda does): at most five tries are ever compared, four answer
    // 422 with tries left, and the right code afterwards is refused.
    let seen = portal.inbox(BEN).await.len();
    portal
        .ok(
            Method::POST,
            "/v1/contacts/C-2/authorizations",
            Some(json!({"category": "sales"})),
            StatusCode::ACCEPTED,
        )
        .await;
    let code = code_in(portal.next_text(BEN, seen).await["body"].as_str().unwrap());
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let mut guesses = tokio::task::JoinSet::new();
    for _ in 0..30 {
        let (http, url, token) = (
            portal.http.clone(),
            format!(
                "{}/v1/contacts/C-2/authorizations/sales/verify",
                stack.gateway
            ),
            portal.token.clone(),
        );
        guesses.spawn(async move {
            http.post(url)
                .bearer_auth(token)
                .json(&json!({ "code": wrong }))
                .send()
                .await
                .expect("gateway answers")
                .status()
        });
    }
    let mut statuses = Vec::new();
    while let Some(status) = guesses.join_next().await {
        statuses.push(status.unwrap());
    }
    let wrong_with_tries_left = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNPROCESSABLE_ENTITY)
        .count();
    assert!(wrong_with_tries_left <= 4, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::UNPROCESSABLE_ENTITY || *s == StatusCode::GONE),
        "{statuses:?}"
    );
    let (status, body) = portal
        .call(
            Method::POST,
            "/v1/contacts/C-2/authorizations/sales/verify",
            Some(json!({ "code": code })),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::GONE,
        "the right code after 30 guesses: {body}"
    );
    assert_eq!(
        portal.authorizations("/v1/deals/D-1/contacts", "C-2").await["sales"],
        "none"
    );

    // The carrier takes a text, then answers only after the client gave up: the outcome
    // is unknown, so the carrier's message list is asked: it has the text, which is
    // recorded sent with the carrier's id and never sent again; the phone has it once.
    let hanging = portal
        .http
        .post(format!("{}/accept-and-hang", stack.carrier))
        .json(&json!({"count": 1, "seconds": 6}))
        .send()
        .await
        .unwrap();
    assert!(hanging.status().is_success());
    let before_hang = portal.inbox(ANN).await.len();
    let unknown = portal
        .send("hang-1", json!({"contactId": "C-1", "template": "payment-received", "variables": {"firstName": "Ann", "amount": "99.00", "paymentDate": "2026-11-22"}}))
        .await;
    let id = unknown["messageId"].as_str().unwrap().to_owned();
    let found = portal.wait_status(&id, &["sent", "delivered"]).await;
    assert!(
        found["carrierMessageId"]
            .as_str()
            .is_some_and(|s| s.starts_with("SM")),
        "{found}"
    );
    // Long enough for a retry (10 s backoff) and the late answer's callbacks to land.
    tokio::time::sleep(Duration::from_secs(15)).await;
    let inbox = portal.inbox(ANN).await;
    assert_eq!(inbox.len(), before_hang + 1, "exactly one text: {inbox:?}");
    // AND nobody is asked to look at it: the carrier's list settled it
    let items = portal.queue_items("failed-sends", "contactId=C-1").await;
    assert!(
        items.iter().all(|i| i["messageId"] != id.as_str()),
        "no failed-sends item for {id}: {items:?}"
    );
}

/// A queue that receives the bus's events matching `pattern` (a rule with the queue as its
/// target), so the test can read what was published.
async fn observe(
    sqs: &aws_sdk_sqs::Client,
    events: &aws_sdk_eventbridge::Client,
    bus: &str,
    name: &str,
    pattern: &str,
) -> String {
    let url = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    events
        .put_rule()
        .name(name)
        .event_bus_name(bus)
        .event_pattern(pattern)
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule(name)
        .event_bus_name(bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("q")
                .arn(arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    url
}
