//! Handler tests of the settings function: the API Gateway HTTP API v2 events in events/
//! (changed only where a test needs it) handled in-process over the in-memory fakes.
//! The journeys that use a setting (a dealer's own template sent, an automation fired)
//! are tested where the text goes out: the send and automate functions.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use consent_adapters::http::testing::{body_json, content_type, event, problem, request};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use serde_json::{json, Value};

use consent::fakes;
use consent::ports::DealerStore;
use consent::{DealerId, PhoneNumber};
use settings::{handle, App};

const PUT_DEALER: &str = include_str!("../../../events/settings-put-dealer.json");
const TEMPLATES: &str = include_str!("../../../events/settings-templates.json");

const DEALER: &str = "demo-dealer";

fn noon() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 10, 16, 0, 0).unwrap()
}

fn phone(s: &str) -> PhoneNumber {
    PhoneNumber::from_e164(s).unwrap()
}

// ------------------------------------------------------------------ events

/// The event as another dealer's staff user would send it.
fn as_dealer(mut event: Value, dealer: &str) -> Value {
    event["requestContext"]["authorizer"]["jwt"]["claims"]["dealer_id"] = json!(dealer);
    event
}

fn without_authorizer(mut event: Value) -> Value {
    event["requestContext"]
        .as_object_mut()
        .unwrap()
        .remove("authorizer");
    event
}

// ------------------------------------------------------------------ world

/// The one test world, unseeded (its store), with the settings function over it.
struct World {
    world: fakes::World,
    app: App,
}

impl std::ops::Deref for World {
    type Target = fakes::World;

    fn deref(&self) -> &fakes::World {
        &self.world
    }
}

impl World {
    /// No dealer yet; the operator provisioned the fixture's number for the demo dealer,
    /// and one for a dealer that has not signed up.
    fn new() -> Self {
        let world = fakes::World::unseeded(&fakes::Seed::demo());
        let store = &world.store;
        let app = App {
            claims: Default::default(),
            dealers: Arc::new(store.clone()),
            numbers: Arc::new(store.clone()),
            templates: Arc::new(store.clone()),
            automations: Arc::new(store.clone()),
            number_pool: Vec::new(),
        };
        store.provision(
            &phone("+12025550100"),
            "AC-test",
            &DealerId::parse(DEALER).unwrap(),
        );
        store.provision(
            &phone("+12025550188"),
            "AC-test",
            &DealerId::parse("later-dealer").unwrap(),
        );
        World { world, app }
    }

    /// The demo dealer, set through the handler itself.
    async fn seeded() -> Self {
        let w = Self::new();
        assert_eq!(w.call(event(PUT_DEALER)).await.status(), StatusCode::OK);
        w
    }

    async fn call(&self, event: Value) -> Response<Body> {
        let response = handle(&self.app, request(&event), noon()).await;
        // Every response these tests see is held to docs/openapi.yaml (make test).
        let route = event["requestContext"]["routeKey"]
            .as_str()
            .unwrap_or_default();
        consent_adapters::http::record_sample(route, &response);
        response
    }

    fn dealer(&self) -> DealerId {
        DealerId::parse(DEALER).unwrap()
    }
}

// ------------------------------------------------------------------ dealer

#[tokio::test]
async fn put_dealer_stores_the_settings_and_get_returns_them() {
    // GIVEN no settings for the token's dealer
    let w = World::new();

    // WHEN the portal PUTs the fixture's settings
    let response = w.call(event(PUT_DEALER)).await;

    // THEN 200 with the settings, stored and readable with GET
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(content_type(&response), "application/json");
    let expected = json!({
        "id": DEALER,
        "name": "Demo Motors",
        "textingNumber": "+12025550100",
        "helpContact": "Demo Motors service desk, (202) 555-0199",
        "timeZone": "America/New_York",
    });
    assert_eq!(body_json(&response), expected);
    let stored = w.store.dealer(&w.dealer()).await.unwrap().unwrap();
    assert_eq!(stored.texting_number, phone("+12025550100"));
    assert_eq!(
        w.store
            .dealer_by_number(&phone("+12025550100"))
            .await
            .unwrap(),
        Some(w.dealer())
    );

    let mut get = event(PUT_DEALER);
    get["routeKey"] = json!("GET /v1/dealer");
    get["requestContext"]["routeKey"] = json!("GET /v1/dealer");
    get["requestContext"]["http"]["method"] = json!("GET");
    get.as_object_mut().unwrap().remove("body");
    let response = w.call(get).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_json(&response), expected);
}

#[tokio::test]
async fn a_number_the_operator_did_not_provision_is_refused() {
    // GIVEN a dealer admin who asks for a number not on the operator's list
    let w = World::new();
    let mut put = event(PUT_DEALER);
    let body = r#"{"name":"Demo Motors","textingNumber":"+13125550177"}"#;
    put["body"] = json!(body);

    // WHEN they PUT the settings
    let response = w.call(put).await;

    // THEN 422 naming the number, and nothing is stored
    problem(
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "texting-number-not-provisioned",
    );
    assert_eq!(w.store.dealer(&w.dealer()).await.unwrap(), None);
}

#[tokio::test]
async fn staff_without_the_dealer_admin_role_cannot_set_the_texting_number() {
    // GIVEN a staff user whose token carries no dealer-admin role
    let w = World::new();
    let mut put = event(PUT_DEALER);
    put["requestContext"]["authorizer"]["jwt"]["claims"]
        .as_object_mut()
        .unwrap()
        .remove("roles");

    // WHEN they PUT the dealer's settings
    let response = w.call(put).await;

    // THEN 403 and nothing is stored: no number is taken
    problem(&response, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(w.store.dealer(&w.dealer()).await.unwrap(), None);
    assert_eq!(
        w.store
            .dealer_by_number(&phone("+12025550100"))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn a_texting_number_provisioned_for_another_dealer_is_refused_as_unprovisioned() {
    // GIVEN the demo dealer texts from +12025550100
    let w = World::seeded().await;

    // WHEN another dealer claims the same number, or one provisioned for a dealer that
    // has not signed up
    let response = w.call(as_dealer(event(PUT_DEALER), "other-dealer")).await;
    let mut early = as_dealer(event(PUT_DEALER), "other-dealer");
    early["body"] = json!(r#"{"name":"Other Motors","textingNumber":"+12025550188"}"#);
    let early = w.call(early).await;

    // THEN each is refused as a number never provisioned (nothing tells whose it is),
    // and the number still belongs to the demo dealer
    let taken = problem(
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "texting-number-not-provisioned",
    );
    let unsigned = problem(
        &early,
        StatusCode::UNPROCESSABLE_ENTITY,
        "texting-number-not-provisioned",
    );
    assert_eq!(taken["detail"], unsigned["detail"]);
    assert_eq!(
        w.store
            .dealer_by_number(&phone("+12025550100"))
            .await
            .unwrap(),
        Some(w.dealer())
    );
    assert!(w
        .store
        .dealer(&DealerId::parse("other-dealer").unwrap())
        .await
        .unwrap()
        .is_none());
}

// ------------------------------------------------------------------ templates

#[tokio::test]
async fn templates_are_listed_with_category_and_placeholders() {
    let w = World::new();

    let response = w.call(event(TEMPLATES)).await;

    assert_eq!(response.status(), StatusCode::OK);
    let body = body_json(&response);
    let templates = body["templates"].as_array().unwrap();
    let names: Vec<&str> = templates
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "auto-pay-failure",
            "past-due-alert",
            "text-to-pay-reminder",
            "payment-received",
            "service-reminder",
            "appointment-confirmation",
            "marketing-offer",
        ]
    );
    let autopay = &templates[0];
    assert_eq!(autopay["category"], "accounting");
    assert_eq!(
        autopay["placeholders"],
        json!(["firstName", "amount", "dueDate", "paymentUrl"])
    );
    assert_eq!(templates[6]["category"], "marketing");

    // AND without a token: 401
    let response = w.call(without_authorizer(event(TEMPLATES))).await;
    problem(&response, StatusCode::UNAUTHORIZED, "unauthorized");
}

// ------------------------------------------------------------------ automations

fn automation_event(
    method: &str,
    event_type: Option<&str>,
    body: Option<Value>,
    admin: bool,
) -> Value {
    let mut e = event(TEMPLATES);
    let (key, path) = match event_type {
        Some(t) => (
            format!("{method} /v1/automations/{{eventType}}"),
            format!("/v1/automations/{t}"),
        ),
        None => (
            format!("{method} /v1/automations"),
            "/v1/automations".to_owned(),
        ),
    };
    e["routeKey"] = json!(key);
    e["requestContext"]["routeKey"] = json!(key);
    e["requestContext"]["http"]["method"] = json!(method);
    e["rawPath"] = json!(path);
    if let Some(t) = event_type {
        e["pathParameters"] = json!({ "eventType": t });
    }
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
async fn dealer_admins_choose_which_template_each_event_sends() {
    let w = World::new();
    // The defaults are listed
    let list = body_json(&w.call(automation_event("GET", None, None, false)).await);
    let service_due = list["automations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["eventType"] == "ServiceDue")
        .unwrap()
        .clone();
    assert_eq!(
        service_due,
        json!({"eventType": "ServiceDue", "template": "service-reminder", "enabled": true, "default": true})
    );
    // Staff cannot change them; an admin turns ServiceDue off and maps a new event
    let off = json!({"template": "service-reminder", "enabled": false});
    problem(
        &w.call(automation_event(
            "PUT",
            Some("ServiceDue"),
            Some(off.clone()),
            false,
        ))
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let done = w
        .call(automation_event("PUT", Some("ServiceDue"), Some(off), true))
        .await;
    assert_eq!(done.status(), StatusCode::OK);
    let received = json!({"template": "service-reminder", "enabled": true});
    assert_eq!(
        w.call(automation_event(
            "PUT",
            Some("PaymentReceived"),
            Some(received),
            true
        ))
        .await
        .status(),
        StatusCode::OK
    );
    // An event type the bus never routes to the automation queue would never fire: refused
    let sold = json!({"template": "payment-received", "enabled": true});
    let refused = w
        .call(automation_event(
            "PUT",
            Some("VehicleSold"),
            Some(sold),
            true,
        ))
        .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(
        body_json(&refused)["detail"]
            .as_str()
            .unwrap()
            .contains("AutoPayFailed"),
        "the refusal names the routed types"
    );
    let list = body_json(&w.call(automation_event("GET", None, None, false)).await);
    let find = |t: &str| {
        list["automations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["eventType"] == t)
            .cloned()
            .unwrap()
    };
    assert_eq!(find("ServiceDue")["enabled"], false);
    assert_eq!(find("PaymentReceived")["template"], "service-reminder");
    assert!(list["automations"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["eventType"] != "VehicleSold"));
    // An unknown template or a bad event type is 422
    let unknown = json!({"template": "no-such-template", "enabled": true});
    problem(
        &w.call(automation_event(
            "PUT",
            Some("ServiceDue"),
            Some(unknown),
            true,
        ))
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    );
}
