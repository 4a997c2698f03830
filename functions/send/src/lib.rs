//! "Send a Text": send now or scheduled from a template (or staff's own words), preview
//! it, read a message's status, cancel it, the conversation with a contact; plus the
//! trivial health route used as a baseline and the problem type pages.

pub mod config;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use consent::message::{Idempotency, Message, Origin};
use consent::ports::{
    ConsentReader, ContactStore, ConversationEntry, Conversations, DealerStore, MessageStore,
    OutboundQueue, TemplateStore,
};
use consent::service::sending::{self, SendPorts, SendRequest, TextRequest};
use consent::{AccountId, Category, ContactId, DealId, MessageId, PhoneNumber};
use consent_adapters::http::{
    body_bytes, identity, json, json_body, path_param, problem_page, problem_type, respond,
    route_key, Page, Problem,
};

#[derive(Clone)]
pub struct App {
    /// The token claims naming the caller.
    pub claims: consent_adapters::http::ClaimNames,
    pub dealers: Arc<dyn DealerStore>,
    pub contacts: Arc<dyn ContactStore>,
    pub consent: Arc<dyn ConsentReader>,
    pub messages: Arc<dyn MessageStore>,
    pub queue: Arc<dyn OutboundQueue>,
    pub number_pool: Vec<PhoneNumber>,
    /// Both directions of a number's texts (the conversation view).
    pub conversations: Arc<dyn Conversations>,
    /// The dealers' own templates.
    pub templates: Arc<dyn TemplateStore>,
}

impl App {
    pub fn ports(&self) -> SendPorts<'_> {
        SendPorts {
            dealers: self.dealers.as_ref(),
            contacts: self.contacts.as_ref(),
            templates: self.templates.as_ref(),
            consent: self.consent.as_ref(),
            messages: self.messages.as_ref(),
            queue: self.queue.as_ref(),
            number_pool: &self.number_pool,
        }
    }
}

pub async fn handle(app: &App, req: Request, now: DateTime<Utc>) -> Response<Body> {
    let result = route(app, &req, now).await;
    respond(&req, result)
}

async fn route(app: &App, req: &Request, now: DateTime<Utc>) -> Result<Response<Body>, Problem> {
    let key = route_key(req);
    if key == "GET /v1/health" {
        return Ok(json(StatusCode::OK, &json!({"status": "ok"})));
    }
    if key == "GET /problems/{problem}" {
        // What a problem's `type` URI shows (no token: a link anyone may follow).
        let slug = req
            .path_parameters_ref()
            .and_then(|p| p.first("problem"))
            .unwrap_or_default();
        return problem_type(slug)
            .map(problem_page)
            .ok_or_else(|| Problem::not_found("problem type"));
    }
    let who = identity(req, &app.claims)?;
    match key.as_str() {
        "POST /v1/messages" => {
            let origin = Origin::Staff {
                user: who.user.clone(),
            };
            let sent = send(app, &who.dealer, origin, req, now).await;
            if let Err(refused) = &sent {
                tracing::info!(
                    problem = refused.slug,
                    status = refused.status.as_u16(),
                    "send refused"
                );
            }
            sent
        }
        "POST /v1/messages/preview" => preview(app, &who.dealer, req).await,
        "GET /v1/messages/{messageId}" => {
            let id = path_param(req, "messageId", |s| MessageId::parse(s))?;
            let m = sending::message_of(app.messages.as_ref(), &who.dealer, &id).await?;
            Ok(json(StatusCode::OK, &view(&m)))
        }
        "GET /v1/contacts/{contactId}/messages" => conversation(app, &who.dealer, req).await,
        "DELETE /v1/messages/{messageId}" => {
            let id = path_param(req, "messageId", |s| MessageId::parse(s))?;
            let m = sending::cancel(app.messages.as_ref(), &who.dealer, &id, now).await?;
            Ok(json(StatusCode::OK, &view(&m)))
        }
        other => Err(Problem::not_found(&format!("route {other:?}"))),
    }
}

/// The default and largest page of a conversation.
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 200;

/// What was sent to and received from the contact's number, newest first.
async fn conversation(
    app: &App,
    dealer: &consent::DealerId,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    let contact_id = path_param(req, "contactId", |s| ContactId::parse(s))?;
    let contact = app
        .contacts
        .contact(dealer, &contact_id)
        .await?
        .ok_or_else(|| Problem::not_found("contact"))?;
    let Page { limit, cursor } = Page::from_query(req, DEFAULT_PAGE, MAX_PAGE)?;
    let page = app
        .conversations
        .conversation(dealer, &contact.phone, limit, cursor.as_deref())
        .await
        .map_err(|e| match e {
            consent::StoreError::Corrupt { .. } => Problem::invalid("the cursor is not valid"),
            other => Problem::from(other),
        })?;
    let entries: Vec<Value> = page
        .entries
        .iter()
        .map(|e| match e {
            ConversationEntry::Outbound(m) => json!({
                "direction": "outbound",
                "id": m.id,
                "kind": m.kind,
                "status": m.status,
                "statusReason": m.status_reason,
                "category": m.category,
                "template": m.template,
                "body": m.body,
                "segments": m.segments,
                "at": m.created_at,
                "sendAt": m.send_at,
            }),
            ConversationEntry::Inbound(t) => json!({
                "direction": "inbound",
                "id": t.id,
                "body": t.body,
                "at": t.received_at,
                "readAs": t.read_as,
                "language": t.language,
            }),
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &json!({
            "contactId": contact.id,
            "phone": contact.phone,
            "messages": entries,
            "nextCursor": page.next_cursor,
        }),
    ))
}

/// A message as the portal sees it.
pub fn view(m: &Message) -> Value {
    json!({
        "messageId": m.id,
        "status": m.status,
        "statusReason": m.status_reason,
        "contactId": m.contact_id,
        "template": m.template,
        "category": m.category,
        "body": m.body,
        "segments": m.segments,
        "encoding": m.encoding,
        "notes": m.notes,
        "origin": m.origin,
        "accountId": m.account_id,
        "dealId": m.deal_id,
        "createdAt": m.created_at,
        "scheduledAt": m.requested_at,
        "sendAt": m.send_at,
        "carrierMessageId": m.carrier_message_id,
        "history": m.history,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SendBody {
    contact_id: String,
    /// A template, or `body` and `category` for staff's own words.
    template: Option<String>,
    #[serde(default)]
    variables: Option<Map<String, Value>>,
    body: Option<String>,
    category: Option<String>,
    notes: Option<String>,
    scheduled_at: Option<String>,
    account_id: Option<String>,
    deal_id: Option<String>,
}

/// What the portal's live preview sends: a send's content, nothing else.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PreviewBody {
    template: Option<String>,
    #[serde(default)]
    variables: Option<Map<String, Value>>,
    body: Option<String>,
    category: Option<String>,
}

/// The text a send would text and its segments, without sending (no Idempotency-Key:
/// nothing is stored).
async fn preview(
    app: &App,
    dealer: &consent::DealerId,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    let body: PreviewBody = json_body(req)?;
    let content = content(body.template, body.variables, body.body, body.category)?;
    let p = sending::preview(&app.ports(), dealer, content).await?;
    Ok(json(
        StatusCode::OK,
        &json!({
            "category": p.category,
            "body": p.body,
            "encoding": p.encoding,
            "segments": p.segments,
        }),
    ))
}

/// A template with its variables, or staff's words with a category; anything else is refused.
fn content(
    template: Option<String>,
    variables: Option<Map<String, Value>>,
    body: Option<String>,
    category: Option<String>,
) -> Result<sending::Content, Problem> {
    match (template, body, category) {
        (Some(name), None, None) => Ok(sending::Content::Template {
            name,
            variables: variables.unwrap_or_default(),
        }),
        (None, Some(body), Some(category)) if variables.is_none() => {
            let category: Category = category
                .parse()
                .map_err(|e: consent::category::UnknownCategory| Problem::invalid(e.to_string()))?;
            Ok(sending::Content::Text { body, category })
        }
        _ => Err(Problem::invalid(
            "send either a template (with its variables) or a body and a category",
        )),
    }
}

async fn send(
    app: &App,
    dealer: &consent::DealerId,
    origin: Origin,
    req: &Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, Problem> {
    let Some(idempotency_key) = req.headers().get("idempotency-key") else {
        return Err(Problem::new(
            StatusCode::PRECONDITION_REQUIRED,
            "idempotency-key-required",
            "Idempotency-Key required",
            "send an Idempotency-Key header with a value unique to this text (and the same value on a retry), so a double click or a retry never texts twice",
        ));
    };
    let idempotency = Idempotency::new(idempotency_key.to_str().unwrap_or(""), body_bytes(req))
        .map_err(|e| Problem::bad_request(e.to_string()))?;
    let body: SendBody = json_body(req)?;
    let scheduled_at = body
        .scheduled_at
        .as_deref()
        .map(|s| {
            DateTime::parse_from_rfc3339(s)
                .map(|d| d.with_timezone(&Utc))
                .map_err(|e| {
                    Problem::invalid(format!(
                        "scheduledAt must be an RFC 3339 date-time with offset: {e}"
                    ))
                })
        })
        .transpose()?;
    let contact_id = ContactId::parse(body.contact_id)
        .map_err(|e| Problem::invalid(format!("contactId: {e}")))?;
    let notes = body
        .notes
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty());
    let account_id = body
        .account_id
        .map(AccountId::parse)
        .transpose()
        .map_err(|e| Problem::invalid(format!("accountId: {e}")))?;
    let deal_id = body
        .deal_id
        .map(DealId::parse)
        .transpose()
        .map_err(|e| Problem::invalid(format!("dealId: {e}")))?;
    let idempotency = Some(idempotency);
    let accepted = match content(body.template, body.variables, body.body, body.category)? {
        sending::Content::Template { name, variables } => {
            let request = SendRequest {
                contact_id,
                template: name,
                variables,
                notes,
                scheduled_at,
                account_id,
                deal_id,
            };
            sending::request_send(&app.ports(), dealer, origin, request, idempotency, now).await?
        }
        sending::Content::Text { body, category } => {
            let request = TextRequest {
                contact_id,
                body,
                category,
                notes,
                scheduled_at,
                account_id,
                deal_id,
            };
            sending::request_text(&app.ports(), dealer, origin, request, idempotency, now).await?
        }
    };
    let m = &accepted.message;
    tracing::info!(message_id = %m.id, status = %m.status, reason = m.status_reason.as_ref().map(tracing::field::display), replayed = accepted.replayed, "send accepted");
    let mut answer = json!({
        "messageId": m.id,
        "status": m.status,
        "segments": m.segments,
        "encoding": m.encoding,
        "category": m.category,
        "sendAt": m.send_at,
        "replayed": accepted.replayed,
    });
    if m.status == consent::message::MessageStatus::Deferred {
        answer["deferredUntil"] = json!(m.send_at);
        answer["statusReason"] = json!(m.status_reason);
    }
    let mut response = json(StatusCode::ACCEPTED, &answer);
    if accepted.replayed {
        response.headers_mut().insert(
            "idempotent-replayed",
            lambda_http::http::HeaderValue::from_static("true"),
        );
    }
    Ok(response)
}
