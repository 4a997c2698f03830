//! Adapters: the consent library's ports on AWS (DynamoDB, SQS, EventBridge) and on
//! two carriers (a Twilio-compatible REST API, AWS End User Messaging SMS), plus the pieces every function's edge shares
//! (configuration, tracing, HTTP problem responses, portal identity).
//!
//! Adapters only translate between the domain and the outside world; rules live in
//! the `consent` crate.

pub mod attr;
pub mod cache;
pub mod carrier;
pub mod carriers;
pub mod config;
pub mod dynamo;
pub mod eum;
pub mod events;
pub mod http;
pub mod secrets;
pub mod sqs;
pub mod telemetry;

pub use cache::CachedDealers;
pub use carrier::TwilioCarrier;
pub use dynamo::DynamoStore;
pub use events::EventBridgePublisher;
pub use sqs::{SqsOutboundQueue, SqsWebhookInbox};

pub use aws_sdk_dynamodb;
pub use aws_sdk_eventbridge;
pub use aws_sdk_secretsmanager;
pub use aws_sdk_sqs;
