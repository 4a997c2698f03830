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
async fn a_server_error_is_retried() {
    let got = adapter(carrier(http("500 Internal Server Error", "{}")).await)
        .send(&send())
        .await;
    assert!(
        matches!(got, Err(CarrierError::Retryable { .. })),
        "{got:?}"
    );
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
