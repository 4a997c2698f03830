//! AWS End User Messaging SMS (`pinpoint-sms-voice-v2`) as a carrier: `SendTextMessage`
//! from the texting number, with the stack's configuration set, our message id in its
//! context and the message type (promotional for marketing, transactional otherwise).
//!
//! At most one text per message: the SDK's own retries are off for this client (its
//! standard mode sends a request that failed with a 500 again, which may text twice), a
//! failure counts as retryable only where the request surely was not taken, and an
//! unknown outcome stays unknown: the service keeps no list of sent texts to search, so
//! [`Carrier::find_sent`] cannot settle it and staff decide (docs/decisions.md).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_pinpointsmsvoicev2::config::retry::RetryConfig;
use aws_sdk_pinpointsmsvoicev2::config::timeout::TimeoutConfig;
use aws_sdk_pinpointsmsvoicev2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_pinpointsmsvoicev2::operation::send_text_message::SendTextMessageError;
use aws_sdk_pinpointsmsvoicev2::types::{ConflictExceptionReason, MessageType};
use aws_sdk_pinpointsmsvoicev2::Client;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use chrono::{DateTime, Utc};

use consent::ports::{Carrier, CarrierError, CarrierReceipt, CarrierSend};

/// The opted-out refusal's code in our records: the same "carrier-opt-out" reason as
/// Twilio's 21610, so staff and the ledger see one kind of carrier block.
pub const OPTED_OUT_CODE: u32 = 21610;

/// The key of our message id in a text's context (every event of the text carries it).
pub const CONTEXT_MESSAGE_ID: &str = "messageId";

#[derive(Debug, Clone)]
pub struct EndUserMessagingCarrier {
    client: Client,
    configuration_set: String,
}

impl EndUserMessagingCarrier {
    /// How long connecting may take before the send is given up (and retried: a
    /// connection that never opened carried no text).
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

    /// A carrier over the function's SDK configuration: one attempt per send, each
    /// bounded by `timeout`.
    pub fn new(
        aws: &aws_config::SdkConfig,
        configuration_set: impl Into<String>,
        timeout: Duration,
    ) -> Self {
        let config = aws_sdk_pinpointsmsvoicev2::config::Builder::from(aws)
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Self::CONNECT_TIMEOUT)
                    .operation_attempt_timeout(timeout)
                    .build(),
            )
            .build();
        Self {
            client: Client::from_conf(config),
            configuration_set: configuration_set.into(),
        }
    }
}

#[async_trait]
impl Carrier for EndUserMessagingCarrier {
    async fn send(&self, m: &CarrierSend) -> Result<CarrierReceipt, CarrierError> {
        let message_type = if m.promotional {
            MessageType::Promotional
        } else {
            MessageType::Transactional
        };
        let sent = self
            .client
            .send_text_message()
            .destination_phone_number(m.to.as_str())
            .origination_identity(m.from.as_str())
            .message_body(&m.body)
            .message_type(message_type)
            .configuration_set_name(&self.configuration_set)
            .context(CONTEXT_MESSAGE_ID, m.message_id.as_str())
            .send()
            .await;
        match sent {
            Ok(out) => match out.message_id() {
                Some(id) if !id.is_empty() => Ok(CarrierReceipt {
                    carrier_message_id: id.to_owned(),
                }),
                // Taken (a 200) without an id: it may well go out.
                _ => Err(CarrierError::Unknown {
                    reason: "a success without a message id".into(),
                }),
            },
            Err(e) => Err(classify(&e)),
        }
    }

    /// End User Messaging keeps no list of sent texts: an unknown outcome stays unknown.
    async fn find_sent(
        &self,
        _message: &CarrierSend,
        _since: DateTime<Utc>,
    ) -> Result<Option<CarrierReceipt>, CarrierError> {
        Err(CarrierError::Unknown {
            reason: "End User Messaging keeps no list of sent texts to look in".into(),
        })
    }
}

/// How a failed `SendTextMessage` counts: only what surely carried no text is retried.
fn classify(e: &SdkError<SendTextMessageError, HttpResponse>) -> CarrierError {
    match e {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let code = se.err().code().unwrap_or("unknown").to_owned();
            match se.err() {
                SendTextMessageError::ThrottlingException(_) => {
                    CarrierError::Throttled { retry_after: None }
                }
                SendTextMessageError::ConflictException(c)
                    if c.reason()
                        == Some(&ConflictExceptionReason::DestinationPhoneNumberOptedOut) =>
                {
                    CarrierError::OptedOut {
                        code: OPTED_OUT_CODE,
                    }
                }
                // The service failed inside: the text may have been taken.
                SendTextMessageError::InternalServerException(_) => CarrierError::Unknown {
                    reason: format!("HTTP {status} {code}"),
                },
                _ if status == 503 => CarrierError::Retryable {
                    reason: format!("HTTP {status} {code}"),
                    retry_after: None,
                },
                _ if status >= 500 => CarrierError::Unknown {
                    reason: format!("HTTP {status} {code}"),
                },
                // Our words and the service's codes, never its message (it can hold the number).
                other => CarrierError::Permanent {
                    code: None,
                    reason: match reason_of(other) {
                        Some(reason) => format!("HTTP {status} {code} ({reason})"),
                        None => format!("HTTP {status} {code}"),
                    },
                },
            }
        }
        SdkError::DispatchFailure(d) if never_connected(d) => CarrierError::Retryable {
            reason: "the connection never opened".into(),
            retry_after: None,
        },
        SdkError::ConstructionFailure(_) => CarrierError::Permanent {
            code: None,
            reason: "the request could not be built".into(),
        },
        // A timeout, a connection lost after the request left, an unreadable answer.
        other => CarrierError::Unknown {
            reason: kind_of(other).into(),
        },
    }
}

/// The service's reason code of a refusal, where it gives one.
fn reason_of(e: &SendTextMessageError) -> Option<String> {
    match e {
        SendTextMessageError::ConflictException(c) => c.reason().map(|r| r.as_str().to_owned()),
        SendTextMessageError::ValidationException(v) => v.reason().map(|r| r.as_str().to_owned()),
        SendTextMessageError::AccessDeniedException(a) => a.reason().map(|r| r.as_str().to_owned()),
        SendTextMessageError::ServiceQuotaExceededException(q) => {
            q.reason().map(|r| r.as_str().to_owned())
        }
        _ => None,
    }
}

/// A dispatch that failed before a connection was made carried nothing.
fn never_connected(d: &aws_smithy_runtime_api::client::result::DispatchFailure) -> bool {
    let Some(connector) = d.as_connector_error() else {
        return false;
    };
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(connector);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::AddrNotAvailable
            );
        }
        source = s.source();
    }
    false
}

fn kind_of<E, R>(e: &SdkError<E, R>) -> &'static str {
    match e {
        SdkError::TimeoutError(_) => "the send timed out after the request left",
        SdkError::DispatchFailure(_) => "the connection failed after the request left",
        SdkError::ResponseError(_) => "the answer could not be read",
        _ => "the outcome is unknown",
    }
}
