//! The Twilio-compatible carrier adapter against a carrier played on loopback: which
//! failures are retried, which are unknown (never retried), and what a refusal keeps.

use std::time::Duration;

use consent::ports::{Carrier, CarrierError, CarrierSend};
use consent::PhoneNumber;
use consent_adapters::TwilioCarrier;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn send() -> CarrierSend {
    CarrierSend {
        message_id: consent::MessageId::parse("01J00000000000000000000000").unwrap(),
        promotional: false,
        from: PhoneNumber::parse("+12025550100").unwrap(),
        to: PhoneNumber::parse("+12025550143").unwrap(),
        body: "Your payment is past due.".into(),
        status_callback: None,
    }
}

/// A carrier on loopback that reads one request and answers `answer` (None: never),
/// keeping the connection open past the client's timeout.
async fn carrier(answer: Option<String>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        if let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 8192];
            let _ = stream.read(&mut buf).await;
            if let Some(a) = answer {
                let _ = stream.write_all(a.as_bytes()).await;
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    });
    format!("http://{addr}")
}

fn adapter(base: String) -> TwilioCarrier {
    TwilioCarrier::new(base, "AC1", "token", Duration::from_millis(500)).unwrap()
}

fn http(status: &str, body: &str) -> Option<String> {
    Some(format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    ))
}

#[tokio::test]
async fn a_carrier_that_takes_the_request_and_never_answers_is_an_unknown_outcome() {
    let got = adapter(carrier(None).await).send(&send()).await;
    assert!(matches!(got, Err(CarrierError::Unknown { .. })), "{got:?}");
}

#[tokio::test]
async fn an_unreadable_success_is_an_unknown_outcome() {
    let got = adapter(carrier(http("201 Created", "not json")).await)
        .send(&send())
        .await;
    assert!(matches!(got, Err(CarrierError::Unknown { .. })), "{got:?}");
}

#[tokio::test]
async fn a_connection_that_never_opened_is_retried() {
    // Nothing listens on this port any more.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let got = adapter(format!("http://{addr}")).send(&send()).await;
    assert!(
        matches!(got, Err(CarrierError::Retryable { .. })),
        "{got:?}"
    );
}

#[tokio::test]
async fn a_503_is_retried_a_500_502_504_may_have_been_processed() {
    let got = adapter(carrier(http("503 Service Unavailable", "{}")).await)
        .send(&send())
        .await;
    assert!(
        matches!(got, Err(CarrierError::Retryable { .. })),
        "{got:?}"
    );
    for status in [
        "500 Internal Server Error",
        "502 Bad Gateway",
        "504 Gateway Timeout",
    ] {
        let got = adapter(carrier(http(status, "{}")).await)
            .send(&send())
            .await;
        assert!(matches!(got, Err(CarrierError::Unknown { .. })), "{got:?}");
    }
}

#[tokio::test]
async fn a_429_is_busy_never_processed_with_its_retry_after() {
    let answer = Some(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\nretry-after: 3\r\ncontent-length: 15\r\nconnection: close\r\n\r\n{\"code\":20429}"
            .to_owned(),
    );
    let got = adapter(carrier(answer).await).send(&send()).await;
    match got {
        Err(CarrierError::Throttled { retry_after }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(3)))
        }
        other => panic!("expected busy, got {other:?}"),
    }
}

/// A carrier on loopback that answers one request with `body` and hands back the request
/// line it read.
async fn listing(body: &'static str) -> (String, tokio::sync::oneshot::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        if let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 8192];
            let n = stream.read(&mut buf).await.unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]).into_owned();
            let _ = tx.send(request.lines().next().unwrap_or("").to_owned());
            let answer = http("200 OK", body).unwrap();
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    (format!("http://{addr}"), rx)
}

#[tokio::test]
async fn the_message_list_finds_the_text_by_numbers_body_and_time() {
    let since = chrono::DateTime::parse_from_rfc3339("2026-12-07T10:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let body = r#"{"messages":[
        {"sid":"SMnewer","body":"Another text.","date_created":"Mon, 07 Dec 2026 10:00:05 +0000"},
        {"sid":"SMours","body":"Your payment is past due.","date_created":"Mon, 07 Dec 2026 10:00:01 +0000"},
        {"sid":"SMold","body":"Your payment is past due.","date_created":"Sun, 06 Dec 2026 10:00:01 +0000"}
    ],"page":0,"page_size":50,"next_page_uri":null}"#;
    let (base, request) = listing(body).await;
    let found = adapter(base).find_sent(&send(), since).await.unwrap();
    assert_eq!(found.unwrap().carrier_message_id, "SMours");
    let line = request.await.unwrap();
    assert!(
        line.starts_with("GET /2010-04-01/Accounts/AC1/Messages.json?"),
        "{line}"
    );
    assert!(
        line.contains("To=%2B12025550143") && line.contains("From=%2B12025550100"),
        "{line}"
    );

    // Only a text from before `since` with the same body: not ours.
    let (base, _) = listing(
        r#"{"messages":[{"sid":"SMold","body":"Your payment is past due.","date_created":"Sun, 06 Dec 2026 10:00:01 +0000"}]}"#,
    )
    .await;
    assert!(adapter(base)
        .find_sent(&send(), since)
        .await
        .unwrap()
        .is_none());
    // An unreadable list is an error, never "not there".
    let (base, _) = listing("not json").await;
    assert!(adapter(base).find_sent(&send(), since).await.is_err());
}

#[tokio::test]
async fn a_refusal_keeps_the_error_code_not_the_carriers_text() {
    let body =
        r#"{"code":21211,"message":"The 'To' number +12025550143 is not a valid phone number."}"#;
    let got = adapter(carrier(http("400 Bad Request", body)).await)
        .send(&send())
        .await;
    match got {
        Err(
            e @ CarrierError::Permanent {
                code: Some(21211), ..
            },
        ) => assert!(!e.to_string().contains("0143"), "{e}"),
        other => panic!("expected a permanent refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_success_returns_the_carrier_message_id() {
    let got = adapter(carrier(http("201 Created", r#"{"sid":"SM123"}"#)).await)
        .send(&send())
        .await
        .unwrap();
    assert_eq!(got.carrier_message_id, "SM123");
}
