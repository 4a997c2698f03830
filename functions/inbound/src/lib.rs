//! The carrier webhooks: inbound SMS and delivery status callbacks
//! (Twilio-compatible, form-encoded, `X-Twilio-Signature`). Storage first: a signed
//! webhook is put on the inbound queue and answered 200 at once; the `webhooks` function
//! acts on it, with retries and a dead-letter queue. Twilio does not retry a webhook it
//! was answered 5xx, so nothing that can fail after the store happens here.
//!
//! The signature is checked against the public URL the carrier posted to, rebuilt
//! from `PUBLIC_BASE_URL` (or the request's host and scheme) plus the raw path and
//! query string. A bad signature is a 403 and changes nothing.

pub mod config;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use lambda_http::http::{header, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};

use consent::ports::WebhookInbox;
use consent::webhook::{parse_form, verify_twilio_signature, CarrierWebhook};
use consent_adapters::http::{body_bytes, respond, route_key, Problem};
use consent_adapters::secrets::{Deferred, Versions};

#[derive(Clone)]
pub struct App {
    /// Where signed webhooks are kept until they are acted on (the inbound queue).
    pub inbox: Arc<dyn WebhookInbox>,
    /// The carrier's auth token (read from its secret off the init path), for signatures:
    /// the current one and, while a rotation is under way, the one it replaced.
    pub auth_token: Arc<Deferred<Versions>>,
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
    let webhook = match key.as_str() {
        "POST /v1/carrier/twilio/inbound" => CarrierWebhook::reply(&form, now),
        "POST /v1/carrier/twilio/status" => {
            let params = req.query_string_parameters();
            CarrierWebhook::status(&form, params.first("messageId"), now)
        }
        other => return Err(Problem::not_found(&format!("route {other:?}"))),
    }
    .map_err(|e| Problem::bad_request(e.to_string()))?;
    let Some(webhook) = webhook else {
        // Short codes, foreign numbers, a status without our id: nothing to act on.
        tracing::info!(route = %key, "webhook with nothing this service acts on; ignored");
        return Ok(twiml());
    };
    // Unstorable: 503, the one answer left (nothing was done, nothing is half done).
    app.inbox.store(&webhook).await.map_err(|e| {
        tracing::error!(message_sid = %webhook.carrier_message_id(), error = %e, "webhook could not be stored");
        Problem::internal(&e)
    })?;
    tracing::info!(message_sid = %webhook.carrier_message_id(), route = %key, "webhook stored");
    Ok(twiml())
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
    let tokens = app
        .auth_token
        .get()
        .await
        .map_err(|e| Problem::internal(&e))?;
    let signed_with = |tokens: &Versions| {
        tokens
            .all()
            .any(|t| verify_twilio_signature(t, &url, &form, signature))
    };
    // A signature no token we hold matches may be the new token's, put in the secret after
    // we read it: the secret once more (at most every REREAD_INTERVAL, whoever asks).
    let mut valid = signed_with(&tokens);
    if !valid && !signature.is_empty() {
        if let Some(newer) = app.auth_token.reread(&tokens).await {
            valid = signed_with(&newer);
        }
    }
    if !valid {
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

fn twiml() -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/xml")
        .body(Body::Text(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>".into(),
        ))
        .unwrap_or_else(|_| Response::new(Body::Empty))
}
