//! The portal and the phone, over HTTP only: what the end-to-end tests drive the
//! local stack with (the gateway with a portal token, the fake carrier's inbox and
//! reply endpoint).

use std::time::{Duration, Instant};

use chrono::{DateTime, Timelike, Utc};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

/// A zone where it is early afternoon now, so quiet hours never get in the way
/// whenever the test runs (a 202 number: federal window only).
pub fn daytime_zone(now: DateTime<Utc>) -> String {
    let utc_hour = i64::from(now.hour());
    // Etc/GMT+N is N hours behind UTC.
    let behind = (utc_hour - 13).rem_euclid(24);
    let behind = if behind > 12 { behind - 24 } else { behind };
    match behind {
        0 => "Etc/UTC".to_owned(),
        n if n > 0 => format!("Etc/GMT+{n}"),
        n => format!("Etc/GMT-{}", -n),
    }
}

/// Staff at the dealer portal (bearer token through the gateway) and the fake carrier.
pub struct Portal {
    pub http: Client,
    /// The gateway's base URL.
    pub base: String,
    /// The fake carrier's base URL.
    pub carrier: String,
    pub token: String,
    pub dealer_number: String,
}

impl Portal {
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("gateway answers");
        let status = res.status();
        let content_type = content_type(&res);
        let text = res.text().await.unwrap_or_default();
        record_sample(&method, path, status, &content_type, &text);
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn ok(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        expected: StatusCode,
    ) -> Value {
        let (status, value) = self.call(method.clone(), path, body).await;
        assert_eq!(status, expected, "{method} {path}: {value}");
        value
    }

    /// Texts the fake carrier delivered to `to`, oldest first.
    pub async fn inbox(&self, to: &str) -> Vec<Value> {
        let url = format!("{}/messages?to={}", self.carrier, to.replace('+', "%2B"));
        let all: Vec<Value> = self
            .http
            .get(url)
            .send()
            .await
            .expect("carrier answers")
            .json()
            .await
            .expect("json");
        all.into_iter()
            .filter(|m| m["to"] == to && m["from"] == self.dealer_number.as_str())
            .collect()
    }

    /// Waits until `to` has more than `seen` texts; returns the newest.
    pub async fn next_text(&self, to: &str, seen: usize) -> Value {
        self.next_text_within(to, seen, Duration::from_secs(45))
            .await
    }

    /// As `next_text`, waiting up to `within`.
    pub async fn next_text_within(&self, to: &str, seen: usize, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let inbox = self.inbox(to).await;
            if inbox.len() > seen {
                return inbox[seen].clone();
            }
            assert!(
                Instant::now() < deadline,
                "no new text to {to} within {within:?} (had {seen})"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    pub async fn reply(&self, from: &str, body: &str) {
        let res = self
            .http
            .post(format!("{}/reply", self.carrier))
            .json(&json!({"from": from, "to": self.dealer_number, "body": body}))
            .send()
            .await
            .expect("carrier answers");
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "reply {body:?}: {}",
            res.text().await.unwrap_or_default()
        );
    }

    pub async fn authorizations(&self, path: &str, contact: &str) -> Value {
        let list = self.ok(Method::GET, path, None, StatusCode::OK).await;
        list["contacts"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["id"] == contact))
            .map(|c| c["authorizations"].clone())
            .unwrap_or_else(|| panic!("{contact} not in {path}: {list}"))
    }

    pub async fn history(&self, contact: &str) -> Vec<(String, String)> {
        let h = self
            .ok(
                Method::GET,
                &format!("/v1/contacts/{contact}/consent-history"),
                None,
                StatusCode::OK,
            )
            .await;
        h["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| {
                (
                    e["event"].as_str().unwrap_or("").to_owned(),
                    e["category"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    }

    pub async fn wait_status(&self, message: &str, wanted: &[&str]) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let m = self
                .ok(
                    Method::GET,
                    &format!("/v1/messages/{message}"),
                    None,
                    StatusCode::OK,
                )
                .await;
            if wanted.iter().any(|w| m["status"] == *w) {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "message {message} never reached {wanted:?}: {m}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    pub async fn send(&self, key: &str, body: Value) -> Value {
        let (status, value) = self.try_send(key, body.clone()).await;
        assert_eq!(status, StatusCode::ACCEPTED, "send {body}: {value}");
        value
    }

    /// `POST /v1/messages` with this Idempotency-Key, whatever it answers.
    pub async fn try_send(&self, key: &str, body: Value) -> (StatusCode, Value) {
        let res = self
            .http
            .post(format!("{}/v1/messages", self.base))
            .bearer_auth(&self.token)
            .header("idempotency-key", key)
            .json(&body)
            .send()
            .await
            .expect("gateway answers");
        let status = res.status();
        let content_type = content_type(&res);
        let text = res.text().await.unwrap_or_default();
        record_sample(&Method::POST, "/v1/messages", status, &content_type, &text);
        (status, serde_json::from_str(&text).expect("json"))
    }

    /// Waits until the carrier has received `count` texts for `to`.
    pub async fn wait_for_sent_count(&self, to: &str, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.inbox(to).await.len() < count {
            assert!(
                Instant::now() < deadline,
                "fewer than {count} texts to {to}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    /// The items of a texting queue (`/v1/queues/{queue}/items?{filter}`).
    pub async fn queue_items(&self, queue: &str, filter: &str) -> Vec<Value> {
        let items = self
            .ok(
                Method::GET,
                &format!("/v1/queues/{queue}/items?{filter}"),
                None,
                StatusCode::OK,
            )
            .await;
        items["items"].as_array().cloned().unwrap_or_default()
    }

    /// Waits (20 s at most) for the first item of a texting queue matching `filter`.
    pub async fn first_queue_item(&self, queue: &str, filter: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(item) = self.queue_items(queue, filter).await.into_iter().next() {
                return item;
            }
            assert!(
                Instant::now() < deadline,
                "nothing reached the {queue} queue ({filter}) within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

pub fn code_in(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|t| t.len() == 6)
        .unwrap_or_else(|| panic!("no code in {text:?}"))
        .to_owned()
}

fn content_type(res: &reqwest::Response) -> String {
    res.headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// Keeps what the gateway answered (method and path: the OpenAPI test finds the route),
/// so every response the journey sees is held to docs/openapi.yaml too.
fn record_sample(method: &Method, path: &str, status: StatusCode, content_type: &str, body: &str) {
    consent_adapters::http::write_sample(
        "http",
        &json!({
            "method": method.as_str(),
            "path": path.split('?').next().unwrap_or(path),
            "status": status.as_u16(),
            "contentType": content_type,
            "body": body,
        }),
    );
}
