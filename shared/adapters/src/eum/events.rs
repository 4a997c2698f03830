//! What End User Messaging publishes to the stack's SNS topics, read into the carrier
//! webhooks the reply and status paths act on, exactly as Twilio's are:
//! - a person's text to one of our numbers (two-way SMS, the numbers' two-way channel):
//!   `originationNumber`, `destinationNumber`, `messageBody`, `inboundMessageId`;
//! - a text's delivery events (the configuration set's event destination): `eventType`,
//!   `messageId` (the service's), `context.messageId` (ours, given at the send).
//!
//! Each comes in SNS's envelope (the topics deliver to a queue, raw delivery off): the
//! envelope's `TopicArn` must be one of the stack's two topics, or the record is refused.
//! A delivery event's type is told in Twilio's error codes, so staff, the status path and
//! the ledger see one kind of reason whichever carrier sent the text (docs/decisions.md).

use chrono::{DateTime, TimeZone, Utc};
use serde::Deserialize;

use consent::ids::MessageId;
use consent::webhook::{CarrierWebhook, MAX_CARRIER_ID};
use consent::PhoneNumber;

use super::send::CONTEXT_MESSAGE_ID;

/// The stack's End User Messaging topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    /// The numbers' two-way channel: people's texts.
    pub replies: String,
    /// The configuration set's event destination: what became of our texts.
    pub events: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    /// Not SNS's envelope, or not End User Messaging's payload inside it.
    #[error("not an End User Messaging notification: {0}")]
    Unreadable(String),
    /// An envelope from a topic that is not the stack's: never acted on.
    #[error("a notification from {0}, which is not one of the stack's End User Messaging topics")]
    ForeignTopic(String),
}

/// SNS's envelope, as a subscribed queue receives it.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Envelope {
    #[serde(rename = "Type")]
    kind: String,
    topic_arn: String,
    message: String,
    timestamp: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InboundText {
    origination_number: String,
    destination_number: String,
    #[serde(default)]
    message_body: String,
    inbound_message_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeliveryEvent {
    event_type: String,
    message_id: String,
    event_timestamp: Option<i64>,
    #[serde(default)]
    context: std::collections::HashMap<String, String>,
}

/// Reads one notification. `Ok(None)`: nothing this service acts on (a number outside +1,
/// an event for a text that is not ours, an event type that changes nothing).
pub fn read(
    body: &str,
    topics: &Topics,
    now: DateTime<Utc>,
) -> Result<Option<CarrierWebhook>, EventError> {
    let envelope: Envelope =
        serde_json::from_str(body).map_err(|e| EventError::Unreadable(e.to_string()))?;
    if envelope.kind != "Notification" {
        return Err(EventError::Unreadable(format!(
            "an SNS {} message",
            envelope.kind
        )));
    }
    let received_at = envelope.timestamp.unwrap_or(now);
    if envelope.topic_arn == topics.replies {
        let text: InboundText = serde_json::from_str(&envelope.message)
            .map_err(|e| EventError::Unreadable(e.to_string()))?;
        let (Some(from), Some(to)) = (
            phone(&text.origination_number),
            phone(&text.destination_number),
        ) else {
            return Ok(None);
        };
        return Ok(Some(CarrierWebhook::Reply {
            carrier_message_id: text
                .inbound_message_id
                .chars()
                .take(MAX_CARRIER_ID)
                .collect(),
            from,
            to,
            body: text.message_body,
            received_at,
        }));
    }
    if envelope.topic_arn == topics.events {
        let event: DeliveryEvent = serde_json::from_str(&envelope.message)
            .map_err(|e| EventError::Unreadable(e.to_string()))?;
        let Some(message_id) = event
            .context
            .get(CONTEXT_MESSAGE_ID)
            .and_then(|m| MessageId::parse(m).ok())
        else {
            return Ok(None);
        };
        let Some((status, error_code)) = status_of(&event.event_type) else {
            return Ok(None);
        };
        let at = event
            .event_timestamp
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
            .unwrap_or(received_at);
        return Ok(Some(CarrierWebhook::Status {
            message_id,
            carrier_message_id: event.message_id.chars().take(MAX_CARRIER_ID).collect(),
            status: status.to_owned(),
            error_code,
            received_at: at,
        }));
    }
    Err(EventError::ForeignTopic(envelope.topic_arn))
}

/// An event type as the status path reads Twilio's: its status, and for a failure the
/// Twilio error code of the same cause (`None`: an event type that changes nothing).
pub fn status_of(event_type: &str) -> Option<(&'static str, Option<u32>)> {
    Some(match event_type {
        "TEXT_SUCCESSFUL" | "TEXT_DELIVERED" => ("delivered", None),
        "TEXT_QUEUED" | "TEXT_PENDING" | "TEXT_SENT" => ("sent", None),
        // The person's device or carrier blocks texts to them: Twilio's "unsubscribed
        // recipient", a carrier block the ledger records.
        "TEXT_BLOCKED" => ("failed", Some(21610)),
        // Filtered by the recipient's carrier (abusive, spam, or our Protect configuration).
        "TEXT_CARRIER_BLOCKED" | "TEXT_SPAM" | "TEXT_PROTECT_BLOCKED" => ("failed", Some(30007)),
        "TEXT_INVALID" => ("failed", Some(21211)),
        "TEXT_INVALID_MESSAGE" => ("failed", Some(21617)),
        "TEXT_UNREACHABLE" => ("failed", Some(30003)),
        "TEXT_CARRIER_UNREACHABLE" => ("failed", Some(30006)),
        "TEXT_TTL_EXPIRED" => ("failed", Some(30036)),
        "TEXT_UNKNOWN" => ("failed", Some(30008)),
        _ => return None,
    })
}

fn phone(value: &str) -> Option<PhoneNumber> {
    PhoneNumber::from_e164(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn topics() -> Topics {
        Topics {
            replies: "arn:aws:sns:us-east-1:1:texting-replies".into(),
            events: "arn:aws:sns:us-east-1:1:texting-events".into(),
        }
    }

    fn envelope(topic: &str, message: serde_json::Value) -> String {
        json!({
            "Type": "Notification",
            "MessageId": "5e5b9f4c-0000-0000-0000-000000000001",
            "TopicArn": topic,
            "Message": message.to_string(),
            "Timestamp": "2026-12-07T15:04:05.123Z",
            "SignatureVersion": "1",
        })
        .to_string()
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 7, 16, 0, 0).unwrap()
    }

    #[test]
    fn a_two_way_text_is_a_reply_as_twilios_webhook_is() {
        // The payload AWS documents for two-way SMS.
        let body = envelope(
            &topics().replies,
            json!({"originationNumber": "+14255550182", "destinationNumber": "+12125550101",
                   "messageKeyword": "JOIN", "messageBody": "STOP",
                   "inboundMessageId": "cae173d2-66b9-564c-8309-21f858e9fb84",
                   "previousPublishedMessageId": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}),
        );
        let reply = read(&body, &topics(), now()).unwrap().unwrap();
        assert_eq!(
            reply,
            CarrierWebhook::Reply {
                carrier_message_id: "cae173d2-66b9-564c-8309-21f858e9fb84".into(),
                from: PhoneNumber::from_e164("+14255550182").unwrap(),
                to: PhoneNumber::from_e164("+12125550101").unwrap(),
                body: "STOP".into(),
                received_at: "2026-12-07T15:04:05.123Z".parse().unwrap(),
            }
        );
        // One person's texts to one number keep Twilio's order and de-duplication keys.
        assert_eq!(reply.order_key(), "reply:+12125550101:+14255550182");
    }

    #[test]
    fn a_delivery_event_for_our_text_is_a_status_report() {
        let id = MessageId::generate();
        let body = envelope(
            &topics().events,
            json!({"eventType": "TEXT_SUCCESSFUL", "eventVersion": "1.0",
                   "eventTimestamp": 1_796_656_000_000i64, "isFinal": true,
                   "originationPhoneNumber": "+12065550152", "destinationPhoneNumber": "+14255550156",
                   "messageId": "862a8790-60c0-4430-9b2b-658bdexample",
                   "messageStatus": "SUCCESSFUL", "context": {"messageId": id.as_str()}}),
        );
        match read(&body, &topics(), now()).unwrap().unwrap() {
            CarrierWebhook::Status {
                message_id,
                carrier_message_id,
                status,
                error_code,
                received_at,
            } => {
                assert_eq!(message_id, id);
                assert_eq!(carrier_message_id, "862a8790-60c0-4430-9b2b-658bdexample");
                assert_eq!((status.as_str(), error_code), ("delivered", None));
                assert_eq!(received_at.timestamp_millis(), 1_796_656_000_000);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_failure_has_its_twilio_reason_and_a_block_is_a_carrier_opt_out() {
        assert_eq!(status_of("TEXT_BLOCKED"), Some(("failed", Some(21610))));
        assert!(consent::service::replies::CARRIER_OPT_OUT_CODES.contains(&21610));
        for failed in [
            "TEXT_CARRIER_BLOCKED",
            "TEXT_SPAM",
            "TEXT_INVALID",
            "TEXT_UNREACHABLE",
            "TEXT_CARRIER_UNREACHABLE",
            "TEXT_TTL_EXPIRED",
            "TEXT_UNKNOWN",
            "TEXT_INVALID_MESSAGE",
            "TEXT_PROTECT_BLOCKED",
        ] {
            let (status, code) = status_of(failed).unwrap();
            assert_eq!(status, "failed", "{failed}");
            assert!(
                code.is_some_and(|c| !consent::service::replies::CARRIER_OPT_OUT_CODES.contains(&c)),
                "{failed}"
            );
        }
        assert_eq!(status_of("VOICE_COMPLETED"), None);
    }

    #[test]
    fn what_is_not_ours_changes_nothing_and_a_foreign_topic_is_refused() {
        // An event without our id in its context (a text another system sent).
        let foreign_text = envelope(
            &topics().events,
            json!({"eventType": "TEXT_DELIVERED", "messageId": "x", "context": {"account": "bar"}}),
        );
        assert_eq!(read(&foreign_text, &topics(), now()), Ok(None));
        // A text from outside +1 (a short code).
        let short_code = envelope(
            &topics().replies,
            json!({"originationNumber": "12345", "destinationNumber": "+12125550101",
                   "messageBody": "hi", "inboundMessageId": "m"}),
        );
        assert_eq!(read(&short_code, &topics(), now()), Ok(None));
        let elsewhere = envelope(
            "arn:aws:sns:us-east-1:666:texting-replies",
            json!({"originationNumber": "+14255550182", "destinationNumber": "+12125550101",
                   "messageBody": "STOP", "inboundMessageId": "m"}),
        );
        assert_eq!(
            read(&elsewhere, &topics(), now()),
            Err(EventError::ForeignTopic(
                "arn:aws:sns:us-east-1:666:texting-replies".into()
            ))
        );
        for bad in [
            "not json".to_owned(),
            json!({"Type": "SubscriptionConfirmation", "TopicArn": topics().replies, "Message": "{}"})
                .to_string(),
            envelope(&topics().replies, json!({"messageBody": "no numbers"})),
        ] {
            assert!(
                matches!(read(&bad, &topics(), now()), Err(EventError::Unreadable(_))),
                "{bad}"
            );
        }
    }
}
