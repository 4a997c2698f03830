//! The End User Messaging carrier adapter against the service played on loopback (its
//! JSON protocol, as the SDK speaks it): what it asks for, which failures are retried,
//! which are unknown and never sent again, and what a refusal keeps.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use consent::ports::{Carrier, CarrierError, CarrierSend};
use consent::{MessageId, PhoneNumber};
use consent_adapters::eum::{EndUserMessagingCarrier, CONTEXT_MESSAGE_ID, OPTED_OUT_CODE};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn send(promotional: bool) -> CarrierSend {
    CarrierSend {
        message_id: MessageId::parse("01J00000000000000000000000").unwrap(),
        promotional,
        from: PhoneNumber::parse("+12025550100").unwrap(),
        to: PhoneNumber::parse("+12025550143").unwrap(),
        body: "Your payment is past due.".into(),
        status_callback: None,
    }
}

/// The service on loopback: every request is counted and kept (its JSON body), and
/// answered `answer` (None: never answered, the connection held past the timeout).
#[derive(Clone, Default)]
struct Service {
    requests: Arc<AtomicUsize>,
    last: Arc<Mutex<Option<(String, Value)>>>,
}

impl Service {
    async fn start(&self, answer: Option<String>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let me = self.clone();
        tokio::spawn(async move {
            // Bounded: a test makes a few requests at most.
            for _ in 0..5 {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let raw = read_request(&mut stream).await;
                me.requests.fetch_add(1, Ordering::SeqCst);
                *me.last.lock().unwrap() = Some(raw);
                match &answer {
                    Some(a) => {
                        let _ = stream.write_all(a.as_bytes()).await;
                    }
                    None => tokio::time::sleep(Duration::from_secs(5)).await,
                }
            }
        });
        format!("http://{addr}")
    }

    fn count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    fn last(&self) -> (String, Value) {
        self.last.lock().unwrap().clone().expect("a request")
    }
}

/// One HTTP request: its `x-amz-target` and its JSON body.
async fn read_request(stream: &mut tokio::net::TcpStream) -> (String, Value) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let headers = text[..end].to_ascii_lowercase();
            let length = headers
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                let target = headers
                    .lines()
                    .find_map(|l| l.strip_prefix("x-amz-target:"))
                    .unwrap_or("")
                    .trim()
                    .to_owned();
                let body =
                    serde_json::from_slice(&buf[end + 4..end + 4 + length]).unwrap_or(Value::Null);
                return (target, body);
            }
        }
    }
    (String::new(), Value::Null)
}

fn answer(status: &str, body: &str) -> Option<String> {
    Some(format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    ))
}

fn error(status: &str, kind: &str, reason: Option<&str>) -> Option<String> {
    let mut body =
        serde_json::json!({"__type": kind, "Message": "the service's own words, +12025550143"});
    if let Some(r) = reason {
        body["Reason"] = r.into();
    }
    answer(status, &body.to_string())
}

fn adapter(endpoint: String) -> EndUserMessagingCarrier {
    let aws = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDTEST", "secret", None, None, "test",
        )))
        .endpoint_url(endpoint)
        .build();
    EndUserMessagingCarrier::new(&aws, "texting", Duration::from_millis(800))
}

#[tokio::test]
async fn a_text_asks_for_our_numbers_body_type_configuration_set_and_message_id() {
    let service = Service::default();
    let carrier = adapter(
        service
            .start(answer("200 OK", r#"{"MessageId":"eum-1"}"#))
            .await,
    );

    let receipt = carrier.send(&send(false)).await.unwrap();

    assert_eq!(receipt.carrier_message_id, "eum-1");
    let (target, body) = service.last();
    assert_eq!(target, "pinpointsmsvoicev2.sendtextmessage");
    assert_eq!(body["DestinationPhoneNumber"], "+12025550143");
    assert_eq!(body["OriginationIdentity"], "+12025550100");
    assert_eq!(body["MessageBody"], "Your payment is past due.");
    assert_eq!(body["MessageType"], "TRANSACTIONAL");
    assert_eq!(body["ConfigurationSetName"], "texting");
    assert_eq!(
        body["Context"][CONTEXT_MESSAGE_ID],
        "01J00000000000000000000000"
    );
    // Marketing goes as promotional.
    let service = Service::default();
    let carrier = adapter(
        service
            .start(answer("200 OK", r#"{"MessageId":"eum-2"}"#))
            .await,
    );
    carrier.send(&send(true)).await.unwrap();
    assert_eq!(service.last().1["MessageType"], "PROMOTIONAL");
}

#[tokio::test]
async fn a_500_is_an_unknown_outcome_and_is_not_sent_again() {
    let service = Service::default();
    let carrier = adapter(
        service
            .start(error(
                "500 Internal Server Error",
                "InternalServerException",
                None,
            ))
            .await,
    );

    let got = carrier.send(&send(false)).await;

    assert!(matches!(got, Err(CarrierError::Unknown { .. })), "{got:?}");
    // One request: the SDK's own retry would have been a second text.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(service.count(), 1);
}

#[tokio::test]
async fn a_service_that_takes_the_request_and_never_answers_is_an_unknown_outcome() {
    let service = Service::default();
    let carrier = adapter(service.start(None).await);
    let got = carrier.send(&send(false)).await;
    assert!(matches!(got, Err(CarrierError::Unknown { .. })), "{got:?}");
    assert_eq!(service.count(), 1);
}

#[tokio::test]
async fn a_connection_that_never_opened_is_retried() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let got = adapter(format!("http://{addr}")).send(&send(false)).await;
    assert!(
        matches!(got, Err(CarrierError::Retryable { .. })),
        "{got:?}"
    );
}

#[tokio::test]
async fn throttling_is_busy_never_a_failed_attempt() {
    let service = Service::default();
    let carrier = adapter(
        service
            .start(error("400 Bad Request", "ThrottlingException", None))
            .await,
    );
    let got = carrier.send(&send(false)).await;
    assert!(
        matches!(got, Err(CarrierError::Throttled { .. })),
        "{got:?}"
    );
    assert_eq!(service.count(), 1);
}

#[tokio::test]
async fn an_opted_out_destination_is_a_carrier_block() {
    let service = Service::default();
    let carrier = adapter(
        service
            .start(error(
                "400 Bad Request",
                "ConflictException",
                Some("DESTINATION_PHONE_NUMBER_OPTED_OUT"),
            ))
            .await,
    );
    let got = carrier.send(&send(false)).await;
    assert!(
        matches!(got, Err(CarrierError::OptedOut { code }) if code == OPTED_OUT_CODE),
        "{got:?}"
    );
}

#[tokio::test]
async fn a_refusal_keeps_the_services_codes_not_its_words() {
    let service = Service::default();
    let carrier = adapter(
        service
            .start(error(
                "400 Bad Request",
                "ValidationException",
                Some("INVALID_IDENTITY_FOR_DESTINATION_COUNTRY"),
            ))
            .await,
    );
    match carrier.send(&send(false)).await {
        Err(CarrierError::Permanent { reason, .. }) => {
            assert!(
                reason.contains("ValidationException")
                    && reason.contains("INVALID_IDENTITY_FOR_DESTINATION_COUNTRY"),
                "{reason}"
            );
            assert!(
                !reason.contains("+1202"),
                "no number in our records: {reason}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_unknown_outcome_cannot_be_looked_up() {
    let service = Service::default();
    let carrier = adapter(service.start(answer("200 OK", "{}")).await);
    let got = carrier.find_sent(&send(false), chrono::Utc::now()).await;
    assert!(matches!(got, Err(CarrierError::Unknown { .. })), "{got:?}");
    // Nothing is asked of the service: it keeps no list of sent texts.
    assert_eq!(service.count(), 0);
}
