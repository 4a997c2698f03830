//! One behaviour contract for the carrier port, run against both adapters (Twilio's REST
//! API, End User Messaging's JSON protocol through the AWS SDK), each against its service
//! played on loopback in its own words: the same failure means the same thing to the
//! domain whichever carrier the number is on.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use consent::ports::{Carrier, CarrierError, CarrierSend};
use consent::{MessageId, PhoneNumber};
use consent_adapters::eum::EndUserMessagingCarrier;
use consent_adapters::TwilioCarrier;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const TIMEOUT: Duration = Duration::from_millis(700);

fn text() -> CarrierSend {
    CarrierSend {
        message_id: MessageId::parse("01J00000000000000000000000").unwrap(),
        promotional: false,
        from: PhoneNumber::parse("+12025550100").unwrap(),
        to: PhoneNumber::parse("+12025550143").unwrap(),
        body: "Your payment is past due.".into(),
        status_callback: None,
    }
}

/// What a carrier's service answers, in its own words.
enum Answer {
    Taken,
    Busy,
    FailedInside,
    OptedOut,
    Refused,
    /// Takes the request, never answers.
    Silent,
}

/// A carrier's protocol: its adapter, and its answers as HTTP responses.
trait Dialect {
    fn name(&self) -> &'static str;
    fn adapter(&self, base: String) -> Box<dyn Carrier>;
    fn answer(&self, answer: &Answer) -> Option<String>;
}

fn http(status: &str, content_type: &str, body: &str) -> Option<String> {
    Some(format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    ))
}

struct Twilio;

impl Dialect for Twilio {
    fn name(&self) -> &'static str {
        "twilio"
    }

    fn adapter(&self, base: String) -> Box<dyn Carrier> {
        Box::new(TwilioCarrier::new(base, "AC1", "token", TIMEOUT).unwrap())
    }

    fn answer(&self, answer: &Answer) -> Option<String> {
        let json = "application/json";
        match answer {
            Answer::Taken => http(
                "201 Created",
                json,
                r#"{"sid":"SM0123456789abcdef0123456789abcdef","status":"queued"}"#,
            ),
            Answer::Busy => http(
                "429 Too Many Requests",
                json,
                r#"{"code":20429,"message":"Too Many Requests","status":429}"#,
            ),
            Answer::FailedInside => http(
                "500 Internal Server Error",
                json,
                r#"{"code":20500,"message":"Internal Server Error","status":500}"#,
            ),
            Answer::OptedOut => http(
                "400 Bad Request",
                json,
                r#"{"code":21610,"message":"Attempt to send to unsubscribed recipient +12025550143","status":400}"#,
            ),
            Answer::Refused => http(
                "400 Bad Request",
                json,
                r#"{"code":21211,"message":"The 'To' number +12025550143 is not a valid phone number.","status":400}"#,
            ),
            Answer::Silent => None,
        }
    }
}

struct EndUserMessaging;

impl Dialect for EndUserMessaging {
    fn name(&self) -> &'static str {
        "end-user-messaging"
    }

    fn adapter(&self, base: String) -> Box<dyn Carrier> {
        let sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(base)
            .credentials_provider(SharedCredentialsProvider::new(Credentials::for_tests()))
            .build();
        Box::new(EndUserMessagingCarrier::new(&sdk, "texting", TIMEOUT))
    }

    fn answer(&self, answer: &Answer) -> Option<String> {
        let json = "application/x-amz-json-1.0";
        match answer {
            Answer::Taken => http(
                "200 OK",
                json,
                r#"{"MessageId":"862a8790-60c0-4430-9b2b-658bdexample"}"#,
            ),
            Answer::Busy => http(
                "400 Bad Request",
                json,
                r#"{"__type":"ThrottlingException","Message":"Rate exceeded."}"#,
            ),
            Answer::FailedInside => http(
                "500 Internal Server Error",
                json,
                r#"{"__type":"InternalServerException","Message":"Internal failure"}"#,
            ),
            Answer::OptedOut => http(
                "400 Bad Request",
                json,
                r#"{"__type":"ConflictException","Message":"+12025550143 is opted out","Reason":"DESTINATION_PHONE_NUMBER_OPTED_OUT","ResourceType":"opt-out-list","ResourceId":"Default"}"#,
            ),
            Answer::Refused => http(
                "400 Bad Request",
                json,
                r#"{"__type":"ValidationException","Message":"+12025550143 is not a valid phone number","Reason":"INVALID_PARAMETER"}"#,
            ),
            Answer::Silent => None,
        }
    }
}

/// The service on loopback: counts the requests and answers each `answer` (None: holds the
/// connection past the client's timeout).
async fn service(answer: Option<String>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = requests.clone();
    tokio::spawn(async move {
        // Bounded: an adapter that retried would make a few requests at most.
        for _ in 0..5 {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let mut buf = vec![0u8; 16 * 1024];
            let _ = stream.read(&mut buf).await;
            counted.fetch_add(1, Ordering::SeqCst);
            match &answer {
                Some(a) => {
                    let _ = stream.write_all(a.as_bytes()).await;
                }
                None => tokio::time::sleep(Duration::from_secs(5)).await,
            }
        }
    });
    (format!("http://{addr}"), requests)
}

/// One send against `answer`: the adapter's result and how many requests reached the service.
async fn send(dialect: &dyn Dialect, answer: Answer) -> (Result<String, CarrierError>, usize) {
    let (base, requests) = service(dialect.answer(&answer)).await;
    let got = dialect
        .adapter(base)
        .send(&text())
        .await
        .map(|r| r.carrier_message_id);
    (got, requests.load(Ordering::SeqCst))
}

fn dialects() -> [Box<dyn Dialect>; 2] {
    [Box::new(Twilio), Box::new(EndUserMessaging)]
}

#[tokio::test]
async fn a_text_taken_is_a_receipt_with_the_carriers_id() {
    for d in dialects() {
        let (got, requests) = send(d.as_ref(), Answer::Taken).await;
        assert!(
            got.as_ref().is_ok_and(|id| !id.is_empty()),
            "{}: {got:?}",
            d.name()
        );
        assert_eq!(requests, 1, "{}", d.name());
    }
}

#[tokio::test]
async fn busy_is_never_processed_and_never_a_failed_attempt() {
    for d in dialects() {
        let (got, requests) = send(d.as_ref(), Answer::Busy).await;
        assert!(
            matches!(got, Err(CarrierError::Throttled { .. })),
            "{}: {got:?}",
            d.name()
        );
        assert_eq!(requests, 1, "{}", d.name());
    }
}

#[tokio::test]
async fn a_failure_inside_the_carrier_is_unknown_and_is_not_sent_again() {
    for d in dialects() {
        let (got, requests) = send(d.as_ref(), Answer::FailedInside).await;
        assert!(
            matches!(got, Err(CarrierError::Unknown { .. })),
            "{}: {got:?}",
            d.name()
        );
        assert_eq!(requests, 1, "{}: at most one text per message", d.name());
    }
}

#[tokio::test]
async fn a_request_taken_and_never_answered_is_unknown() {
    for d in dialects() {
        let (got, requests) = send(d.as_ref(), Answer::Silent).await;
        assert!(
            matches!(got, Err(CarrierError::Unknown { .. })),
            "{}: {got:?}",
            d.name()
        );
        assert_eq!(requests, 1, "{}", d.name());
    }
}

#[tokio::test]
async fn an_opted_out_person_is_a_carrier_block_of_the_same_code() {
    for d in dialects() {
        let (got, _) = send(d.as_ref(), Answer::OptedOut).await;
        assert!(
            matches!(got, Err(CarrierError::OptedOut { code: 21610 })),
            "{}: {got:?}",
            d.name()
        );
    }
}

#[tokio::test]
async fn a_refusal_is_permanent_and_keeps_codes_never_the_carriers_words() {
    for d in dialects() {
        let (got, requests) = send(d.as_ref(), Answer::Refused).await;
        match got {
            Err(e @ CarrierError::Permanent { .. }) => {
                assert!(!e.to_string().contains("+12025550143"), "{}: {e}", d.name());
            }
            other => panic!("{}: {other:?}", d.name()),
        }
        assert_eq!(requests, 1, "{}", d.name());
    }
}

#[tokio::test]
async fn a_connection_that_never_opened_is_retried() {
    for d in dialects() {
        // A port nothing listens on: the request carried no text.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let got = d.adapter(base).send(&text()).await;
        assert!(
            matches!(got, Err(CarrierError::Retryable { .. })),
            "{}: {got:?}",
            d.name()
        );
    }
}

/// The in-memory carrier the services tests use answers each of these as the adapters do
/// (and a text it takes, even unanswered, is at the phone: what an unknown outcome means).
#[tokio::test]
async fn the_in_memory_carrier_answers_as_the_adapters_do() {
    use consent::fakes::{CarrierScript, FakeCarrier};
    let cases = [
        (None, "ok", 1),
        (Some(CarrierScript::Throttled), "throttled", 0),
        (Some(CarrierScript::AcceptThenTimeout), "unknown", 1),
        (Some(CarrierScript::OptedOut), "opted-out", 0),
        (Some(CarrierScript::Permanent), "permanent", 0),
        (Some(CarrierScript::Retryable), "retryable", 0),
    ];
    for (script, expected, at_phone) in cases {
        let carrier = FakeCarrier::new();
        if let Some(how) = script {
            carrier.fail_next(1, how);
        }
        let got = match carrier.send(&text()).await {
            Ok(_) => "ok",
            Err(CarrierError::Throttled { .. }) => "throttled",
            Err(CarrierError::Unknown { .. }) => "unknown",
            Err(CarrierError::OptedOut { code: 21610 }) => "opted-out",
            Err(CarrierError::Permanent { .. }) => "permanent",
            Err(CarrierError::Retryable { .. }) => "retryable",
            Err(other) => panic!("{other:?}"),
        };
        assert_eq!(got, expected, "{script:?}");
        assert_eq!(
            carrier.inbox(&text().to).len(),
            at_phone,
            "{script:?}: texts at the phone"
        );
    }
}
