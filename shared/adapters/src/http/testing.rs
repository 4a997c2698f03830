//! Test support (feature `test-util`): the API Gateway HTTP API events the handler tests
//! send, and what they hold every answer to.

use lambda_http::http::{header, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};

/// A sample event (a file of `events/`, or one built in a test) as JSON.
pub fn event(fixture: &str) -> Value {
    serde_json::from_str(fixture).expect("fixture is JSON")
}

/// The request Lambda would hand the function for this API Gateway v2 event.
pub fn request(event: &Value) -> Request {
    lambda_http::request::from_str(&event.to_string()).expect("an API Gateway v2 event")
}

/// The answer's JSON body (a test fails on any other).
pub fn body_json(response: &Response<Body>) -> Value {
    serde_json::from_slice(response.body().as_ref()).unwrap_or_else(|e| {
        panic!(
            "response body is not JSON ({e}): {:?}",
            String::from_utf8_lossy(response.body().as_ref())
        )
    })
}

pub fn content_type(response: &Response<Body>) -> &str {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Asserts an RFC 9457 problem with this status and `type` slug, listed in the catalog
/// with that status; returns the body.
pub fn problem(response: &Response<Body>, status: StatusCode, slug: &str) -> Value {
    let body = body_json(response);
    assert_eq!(response.status(), status, "{body}");
    assert_eq!(content_type(response), "application/problem+json");
    // Absolute, on the API that answered (the sample events: http://127.0.0.1:3000).
    assert_eq!(
        body["type"],
        json!(format!("http://127.0.0.1:3000/problems/{slug}")),
        "{body}"
    );
    assert!(
        super::problem_type(slug).is_some_and(|p| p.status == status.as_u16()),
        "{slug} is a listed problem type with status {status}"
    );
    assert_eq!(body["status"], json!(status.as_u16()), "{body}");
    body
}
