//! Handler tests of the queues function: API Gateway HTTP API v2 events handled in-process
//! over the in-memory fakes. Items are put on the queues as the functions that raise them
//! do (through the `WorkQueue` port); staff list, read, claim and resolve them here.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use consent_adapters::http::testing::{body_json, problem};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use serde_json::{json, Value};

use consent::fakes;
use consent::ports::{Handling, WorkItem, WorkItemStatus, WorkQueue, WorkQueueName};
use consent::{AccountId, ContactId, DealerId};
use queues::{handle, App};

const DEALER: &str = "demo-dealer";

fn noon() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 10, 16, 0, 0).unwrap()
}

/// An API Gateway v2 event for `route` (its key) at `path`, from `user` of `dealer`.
fn event(route: &str, path: &str, params: Value, dealer: Option<&str>, user: &str) -> Value {
    let (method, _) = route.split_once(' ').unwrap();
    let (raw_path, query) = path.split_once('?').unwrap_or((path, ""));
    let query_params: serde_json::Map<String, Value> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_owned(), json!(v)))
        .collect();
    let mut e = json!({
        "version": "2.0", "routeKey": route, "rawPath": raw_path, "rawQueryString": query,
        "headers": {"content-type": "application/json", "host": "127.0.0.1:3000",
                    "x-forwarded-proto": "http"},
        "queryStringParameters": query_params,
        "pathParameters": params,
        "isBase64Encoded": false,
        "requestContext": {
            "accountId": "1", "apiId": "local", "domainName": "127.0.0.1:3000", "domainPrefix": "local",
            "requestId": "r", "routeKey": route, "stage": "$default", "time": "t", "timeEpoch": 0,
            "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "t"}
        }
    });
    if let Some(d) = dealer {
        e["requestContext"]["authorizer"] =
            json!({"jwt": {"claims": {"dealer_id": d, "sub": user}, "scopes": null}});
    }
    e
}

/// The one test world (the demo dealer and its contact C-1001) with the queues
/// function over its store.
struct World {
    world: fakes::World,
    app: App,
}

impl World {
    async fn new() -> Self {
        let world = fakes::World::seeded(fakes::Seed::demo()).await;
        let app = App {
            claims: Default::default(),
            desk: Arc::new(world.store.clone()),
        };
        World { world, app }
    }

    /// An open item on `queue` of `dealer`, raised `minutes` after noon.
    async fn raise(&self, dealer: &str, queue: WorkQueueName, id: &str, minutes: i64) {
        let item = WorkItem {
            id: id.into(),
            dealer_id: DealerId::parse(dealer).unwrap(),
            queue,
            kind: "reply-needs-attention".into(),
            contact_id: Some(ContactId::parse("C-1001").unwrap()),
            phone: None,
            account_id: Some(
                AccountId::parse(if minutes % 2 == 0 { "A-1" } else { "A-2" }).unwrap(),
            ),
            deal_id: None,
            message_id: None,
            text: Some("when is my payment due?".into()),
            created_at: noon() + Duration::minutes(minutes),
            status: WorkItemStatus::Open,
            handling: Handling::default(),
        };
        self.world.store.add_item(&item).await.unwrap();
    }

    async fn call(&self, event: Value) -> Response<Body> {
        let route = event["routeKey"].as_str().unwrap_or_default().to_owned();
        let req = lambda_http::request::from_str(&event.to_string()).expect("a v2 event");
        let response = handle(&self.app, req, noon() + Duration::hours(1)).await;
        // Every response these tests see is held to docs/openapi.yaml (make test).
        consent_adapters::http::record_sample(&route, &response);
        response
    }

    async fn get(&self, route: &str, path: &str, params: Value) -> Response<Body> {
        self.call(event(route, path, params, Some(DEALER), "staff-1"))
            .await
    }

    async fn post(
        &self,
        action: &str,
        id: &str,
        user: &str,
        body: Option<Value>,
    ) -> Response<Body> {
        let route = format!("POST /v1/queues/{{queue}}/items/{{itemId}}/{action}");
        let path = format!("/v1/queues/replies/items/{id}/{action}");
        let mut e = event(
            &route,
            &path,
            json!({"queue": "replies", "itemId": id}),
            Some(DEALER),
            user,
        );
        if let Some(b) = body {
            e["body"] = json!(b.to_string());
        }
        self.call(e).await
    }
}

#[tokio::test]
async fn the_overview_counts_each_of_the_four_queues_open_items_of_the_dealer_only() {
    let w = World::new().await;
    w.raise(DEALER, WorkQueueName::Replies, "01A", 0).await;
    w.raise(DEALER, WorkQueueName::Replies, "01B", 1).await;
    w.raise(DEALER, WorkQueueName::FailedSends, "01C", 2).await;
    w.raise("other-dealer", WorkQueueName::Replies, "01D", 3)
        .await;

    let response = w.get("GET /v1/queues", "/v1/queues", json!({})).await;

    assert_eq!(response.status(), StatusCode::OK);
    let counts: Vec<(String, u64)> = body_json(&response)["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            (
                q["name"].as_str().unwrap().to_owned(),
                q["openCount"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected: Vec<(String, u64)> = WorkQueueName::ALL
        .iter()
        .map(|q| {
            let open = match q {
                WorkQueueName::Replies => 2,
                WorkQueueName::FailedSends => 1,
                _ => 0,
            };
            (q.as_str().to_owned(), open)
        })
        .collect();
    assert_eq!(counts, expected);
}

#[tokio::test]
async fn items_page_newest_first_with_filters_and_a_cursor() {
    let w = World::new().await;
    for (i, id) in ["01A", "01B", "01C", "01D", "01E"].iter().enumerate() {
        w.raise(DEALER, WorkQueueName::Replies, id, i as i64).await;
    }
    let route = "GET /v1/queues/{queue}/items";
    let params = json!({"queue": "replies"});

    let first = w
        .get(route, "/v1/queues/replies/items?limit=2", params.clone())
        .await;
    assert_eq!(first.status(), StatusCode::OK, "{}", body_json(&first));
    let page = body_json(&first);
    let ids = |p: &Value| -> Vec<String> {
        p["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&page), ["01E", "01D"]);
    let cursor = page["nextCursor"].as_str().expect("a next page").to_owned();
    let second = body_json(
        &w.get(
            route,
            &format!("/v1/queues/replies/items?limit=2&cursor={cursor}"),
            params.clone(),
        )
        .await,
    );
    assert_eq!(ids(&second), ["01C", "01B"]);

    // Oldest first, and only account A-1's (items raised at even minutes)
    let filtered = body_json(
        &w.get(
            route,
            "/v1/queues/replies/items?order=oldest&accountId=A-1",
            params.clone(),
        )
        .await,
    );
    assert_eq!(ids(&filtered), ["01A", "01C", "01E"]);

    // A bad filter is 400; an unknown queue is 404
    for bad in ["status=done", "order=sideways", "limit=0", "limit=x"] {
        problem(
            &w.get(
                route,
                &format!("/v1/queues/replies/items?{bad}"),
                params.clone(),
            )
            .await,
            StatusCode::BAD_REQUEST,
            "bad-request",
        );
    }
    problem(
        &w.get(route, "/v1/queues/nope/items", json!({"queue": "nope"}))
            .await,
        StatusCode::NOT_FOUND,
        "not-found",
    );
}

#[tokio::test]
async fn one_staff_user_claims_an_item_and_resolves_it_with_a_note() {
    let w = World::new().await;
    w.raise(DEALER, WorkQueueName::Replies, "01A", 0).await;

    // staff-1 claims it; staff-2 then cannot
    let claimed = w.post("claim", "01A", "staff-1", None).await;
    assert_eq!(claimed.status(), StatusCode::OK, "{}", body_json(&claimed));
    assert_eq!(body_json(&claimed)["status"], "claimed");
    assert_eq!(body_json(&claimed)["claimedBy"], "staff-1");
    let taken = w.post("claim", "01A", "staff-2", None).await;
    let body = problem(&taken, StatusCode::CONFLICT, "already-claimed");
    assert_eq!(body["claimedBy"], "staff-1");

    // staff-1 resolves it with a note (trimmed); it leaves the open count
    let resolved = w
        .post(
            "resolve",
            "01A",
            "staff-1",
            Some(json!({"note": "  called back  "})),
        )
        .await;
    assert_eq!(
        resolved.status(),
        StatusCode::OK,
        "{}",
        body_json(&resolved)
    );
    let item = body_json(&resolved);
    assert_eq!(item["status"], "resolved");
    assert_eq!(item["note"], "called back");
    let overview = body_json(&w.get("GET /v1/queues", "/v1/queues", json!({})).await);
    assert_eq!(overview["queues"][0]["openCount"], 0);

    // Read back as resolved
    let read = w
        .get(
            "GET /v1/queues/{queue}/items/{itemId}",
            "/v1/queues/replies/items/01A",
            json!({"queue": "replies", "itemId": "01A"}),
        )
        .await;
    assert_eq!(read.status(), StatusCode::OK);
    assert_eq!(body_json(&read)["resolvedBy"], "staff-1");

    // An unknown field in the body is refused
    problem(
        &w.post("resolve", "01A", "staff-1", Some(json!({"notes": "x"})))
            .await,
        StatusCode::BAD_REQUEST,
        "bad-request",
    );
}

#[tokio::test]
async fn another_dealers_item_is_not_found_and_no_token_is_401() {
    let w = World::new().await;
    w.raise("other-dealer", WorkQueueName::Replies, "01A", 0)
        .await;

    let route = "GET /v1/queues/{queue}/items/{itemId}";
    let params = json!({"queue": "replies", "itemId": "01A"});
    problem(
        &w.get(route, "/v1/queues/replies/items/01A", params.clone())
            .await,
        StatusCode::NOT_FOUND,
        "not-found",
    );
    problem(
        &w.post("claim", "01A", "staff-1", None).await,
        StatusCode::NOT_FOUND,
        "not-found",
    );
    // A malformed item id is no item either
    problem(
        &w.get(
            route,
            "/v1/queues/replies/items/..",
            json!({"queue": "replies", "itemId": ".."}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not-found",
    );
    let anonymous = w
        .call(event("GET /v1/queues", "/v1/queues", json!({}), None, "x"))
        .await;
    problem(&anonymous, StatusCode::UNAUTHORIZED, "unauthorized");
}
