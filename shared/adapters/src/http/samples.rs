//! Test support (feature `test-util`): samples of handler responses and events for the
//! checks of `make test-local`.

use lambda_http::http::header;
use lambda_http::{Body, Response};
use serde_json::Value;

/// Test support: when `API_SAMPLES_DIR` is set, writes the response a handler gave for
/// `route_key` there (status, content type, body), so the OpenAPI test can hold every
/// response the handler tests see to its schema. Does nothing otherwise.
pub fn record_sample(route_key: &str, response: &Response<Body>) {
    let body = match response.body() {
        Body::Text(t) => t.clone(),
        Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    };
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    write_sample(
        "handler",
        &serde_json::json!({
            "route": route_key,
            "status": response.status().as_u16(),
            "contentType": content_type,
            "body": body,
        }),
    );
}

/// Test support: writes one sample (`<prefix>-<pid>-<n>.json`) to `API_SAMPLES_DIR` when it
/// is set, for the checks of `make test-local` (OpenAPI responses, event schemas).
pub fn write_sample(prefix: &str, sample: &Value) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let Some(dir) = std::env::var_os("API_SAMPLES_DIR") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let _ = std::fs::create_dir_all(&dir);
    let name = format!(
        "{prefix}-{}-{}.json",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let _ = std::fs::write(dir.join(name), sample.to_string());
}
