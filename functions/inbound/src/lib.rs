//! The carrier webhooks: inbound SMS and delivery status callbacks
//! (Twilio-compatible, form-encoded, `X-Twilio-Signature`).
//!
//! The signature is checked against the public URL the carrier posted to, rebuilt
//! from `PUBLIC_BASE_URL` (or the request's host and scheme) plus the raw path and
//! query string. A bad signature is a 403 and changes nothing.

pub mod config;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use lambda_http::http::{header, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};

use consent::ports::{
    ConsentReader, ConsentWriter, ContactStore, DealerStore, EventPublisher, InboundLog,
    MessageStore, OutboundQueue, PendingStore, WorkQueue,
};
use consent::service::replies::{self, InboundPorts, InboundSms, StatusPorts, StatusReport};
use consent::webhook::{field, parse_form, verify_twilio_signature};
use consent::{MessageId, PhoneNumber};
use consent_adapters::http::{body_bytes, respond, route_key, Problem};
use consent_adapters::secrets::Deferred;

#[derive(Clone)]
pub struct App {
    pub dealers: Arc<dyn DealerStore>,
    pub contacts: Arc<dyn ContactStore>,
    pub consent: Arc<dyn ConsentReader>,
    pub consent_writer: Arc<dyn ConsentWriter>,
    pub pending: Arc<dyn PendingStore>,
    pub messages: Arc<dyn MessageStore>,
    pub queue: Arc<dyn OutboundQueue>,
    pub events: Arc<dyn EventPublisher>,
    pub work: Arc<dyn WorkQueue>,
    pub inbound: Arc<dyn InboundLog>,
    /// The carrier's auth token (read from its secret off the init path), for signatures.
    pub auth_token: Arc<Deferred<String>>,
    /// The public base URL of the API (`https://api.example.com`), when configured.
    pub public_base_url: Option<String>,
}

/// Largest webhook body accepted (Twilio's are a few hundred bytes).
pub const MAX_FORM_BODY: usize = 32 * 1024;

pub async fn handle(app: &App, req: Request, now: DateTime<Utc>) -> Response<Body> {
    let result = route(app, &req, now).await;
    respond(&req, result)
}

/// The URL the carrier signed: the public base (or scheme and host of the request),
/// the raw path and the raw query string.
pub fn public_url(req: &Request, public_base_url: Option<&str>) -> String {
    match public_base_url {
        Some(base) => {
            let path = req.raw_http_path();
            let mut url = format!("{}{}", base.trim_end_matches('/'), path);
            if let Some(q) = req.uri().query().filter(|q| !q.is_empty()) {
                url.push('?');
                url.push_str(q);
            }
            url
        }
        None => req.uri().to_string(),
    }
}

async fn route(app: &App, req: &Request, now: DateTime<Utc>) -> Result<Response<Body>, Problem> {
    let key = route_key(req);
    let form = signed_form(app, req).await?;
    match key.as_str() {
        "POST /v1/carrier/twilio/inbound" => inbound(app, &form, now).await,
        "POST /v1/carrier/twilio/status" => status(app, req, &form, now).await,
        other => Err(Problem::not_found(&format!("route {other:?}"))),
    }
}

/// Parses the form and checks the signature; nothing is read before this passes.
async fn signed_form(app: &App, req: &Request) -> Result<Vec<(String, String)>, Problem> {
    let media = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media != "application/x-www-form-urlencoded" {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            "carrier webhooks are application/x-www-form-urlencoded",
        ));
    }
    let bytes = body_bytes(req);
    if bytes.len() > MAX_FORM_BODY {
        return Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "Body too large",
            "webhook body too large",
        ));
    }
    let form = parse_form(bytes).map_err(|e| Problem::bad_request(e.to_string()))?;
    let signature = req
        .headers()
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let url = public_url(req, app.public_base_url.as_deref());
    // Unreadable: 503 and nothing done; the carrier retries the webhook.
    let auth_token = app
        .auth_token
        .get()
        .await
        .map_err(|e| Problem::internal(&e))?;
    if !verify_twilio_signature(auth_token, &url, &form, signature) {
        tracing::warn!(
            path = %req.raw_http_path(),
            has_signature = !signature.is_empty(),
            "webhook refused: bad or missing signature"
        );
        return Err(Problem::forbidden(
            "the request signature is missing or invalid",
        ));
    }
    Ok(form)
}

fn required<'a>(form: &'a [(String, String)], name: &str) -> Result<&'a str, Problem> {
    field(form, name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Problem::bad_request(format!("missing form field {name}")))
}

fn phone(value: &str) -> Option<PhoneNumber> {
    PhoneNumber::from_e164(value)
        .or_else(|_| PhoneNumber::parse(value))
        .ok()
}

fn twiml() -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/xml")
        .body(Body::Text(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>".into(),
        ))
        .unwrap_or_else(|_| Response::new(Body::Empty))
}

async fn inbound(
    app: &App,
    form: &[(String, String)],
    now: DateTime<Utc>,
) -> Result<Response<Body>, Problem> {
    let sid = required(form, "MessageSid")?;
    let (Some(from), Some(to)) = (phone(required(form, "From")?), phone(required(form, "To")?))
    else {
        // Short codes or foreign numbers: nothing this service can act on.
        tracing::info!(
            message_sid = sid,
            "inbound from or to a number outside +1; ignored"
        );
        return Ok(twiml());
    };
    let sms = InboundSms {
        carrier_message_id: sid.chars().take(64).collect(),
        from,
        to,
        body: field(form, "Body").unwrap_or("").to_owned(),
    };
    let ports = InboundPorts {
        dealers: app.dealers.as_ref(),
        contacts: app.contacts.as_ref(),
        consent: app.consent.as_ref(),
        consent_writer: app.consent_writer.as_ref(),
        pending: app.pending.as_ref(),
        messages: app.messages.as_ref(),
        queue: app.queue.as_ref(),
        events: app.events.as_ref(),
        work: app.work.as_ref(),
        inbound: app.inbound.as_ref(),
    };
    let outcome = replies::handle_inbound(&ports, &sms, now).await?;
    tracing::info!(message_sid = %sms.carrier_message_id, from = %sms.from.redacted(), outcome = ?outcome, "inbound handled");
    Ok(twiml())
}

async fn status(
    app: &App,
    req: &Request,
    form: &[(String, String)],
    now: DateTime<Utc>,
) -> Result<Response<Body>, Problem> {
    let params = req.query_string_parameters();
    let Some(message_id) = params
        .first("messageId")
        .and_then(|m| MessageId::parse(m).ok())
    else {
        tracing::info!("status callback without a messageId; ignored");
        return Ok(twiml());
    };
    let report = StatusReport {
        message_id,
        carrier_message_id: required(form, "MessageSid")?.to_owned(),
        status: required(form, "MessageStatus")?.to_ascii_lowercase(),
        error_code: field(form, "ErrorCode").and_then(|c| c.parse().ok()),
    };
    let ports = StatusPorts {
        consent: app.consent.as_ref(),
        consent_writer: app.consent_writer.as_ref(),
        messages: app.messages.as_ref(),
    };
    let status = replies::handle_status(&ports, &report, now).await?;
    tracing::info!(message_id = %report.message_id, reported = %report.status, status = ?status, "status callback");
    Ok(twiml())
}
