//! Public on-demand prices the cost model uses, in one place with their date. AWS:
//! us-east-1 list prices (aws.amazon.com/<service>/pricing); carrier: Twilio's US SMS list
//! price. Read on PRICES_DATE; check them again before quoting a figure.

/// When these prices were read.
pub const PRICES_DATE: &str = "2026-12-01";
pub const REGION: &str = "us-east-1";

/// Lambda, arm64 (the template's `Architectures`): per GB-second and per request.
pub const LAMBDA_ARM_USD_PER_GB_SECOND: f64 = 0.000_013_333_4;
pub const LAMBDA_USD_PER_REQUEST: f64 = 0.20 / 1e6;
/// Lambda bills duration in 1 ms steps.
pub const LAMBDA_BILLING_STEP_MS: f64 = 1.0;

/// DynamoDB on-demand: per write request unit (1 KB) and per read request unit (4 KB,
/// strongly consistent; eventually consistent is half).
pub const DYNAMODB_USD_PER_WRU: f64 = 0.625 / 1e6;
pub const DYNAMODB_USD_PER_RRU: f64 = 0.125 / 1e6;

/// SQS standard queue: per request (64 KB chunk), after the free tier.
pub const SQS_USD_PER_REQUEST: f64 = 0.40 / 1e6;
/// API Gateway HTTP API: per request (first 300 million a month).
pub const HTTP_API_USD_PER_REQUEST: f64 = 1.00 / 1e6;
/// EventBridge: per custom event published (64 KB chunk).
pub const EVENTBRIDGE_USD_PER_EVENT: f64 = 1.00 / 1e6;
/// Secrets Manager: per 10,000 API calls (cold starts only).
pub const SECRETS_USD_PER_CALL: f64 = 0.05 / 1e4;

/// Twilio, US long code or toll-free, outbound SMS: per segment (list price, before
/// carrier pass-through fees, which only add to it).
pub const CARRIER_USD_PER_SEGMENT: f64 = 0.0083;

/// SNS standard topic: per publish request (64 KB chunk); deliveries to SQS are free. End
/// User Messaging publishes each reply and delivery event to the stack's topics.
pub const SNS_USD_PER_PUBLISH: f64 = 0.50 / 1e6;
/// AWS End User Messaging SMS, US outbound from a 10DLC number: the AWS fee per message part
/// plus the US carriers' pass-through fee taken at its most common value (AT&T's 10DLC
/// registered fee). Not read from the price page here (no network to it): an assumption to
/// check against aws.amazon.com/end-user-messaging/pricing before quoting a figure.
pub const EUM_USD_PER_SEGMENT: f64 = 0.00581 + 0.002;
