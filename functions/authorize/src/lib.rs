//! The portal's texting-authorization API: contacts with their per-category status, Authorize (texts a code), Verify, Unsubscribe, history, and
//! the consent evidence (one person's, or the dealer's ledger for a period).

pub mod config;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::json;

use consent::approval::ApprovalCode;
use consent::ports::{
    CodeKey, ConsentReader, ConsentWriter, Contact, ContactLink, ContactStore, DealerStore,
    LedgerExport, MessageStore, NumberDirectory, OutboundQueue, PendingStore, RateLimiter,
};
use consent::service::authorization::{self as auth, AuthorizationPorts};
use consent::service::contacts::{self, BatchRefusal, ContactInput, ContactsPorts};
use consent::service::evidence::{self, EvidenceRow};
use consent::service::Written;
use consent::{AccountId, Category, ContactId, DealId, PhoneNumber};
use consent_adapters::http::{
    identity, json, json_body, path_param, respond, route_key, Identity, Page, Problem,
    DEALER_ADMIN,
};

/// Everything the handler needs, built once at cold start.
#[derive(Clone)]
pub struct App {
    /// The token claims naming the caller.
    pub claims: consent_adapters::http::ClaimNames,
    pub dealers: Arc<dyn DealerStore>,
    pub contacts: Arc<dyn ContactStore>,
    pub consent: Arc<dyn ConsentReader>,
    pub consent_writer: Arc<dyn ConsentWriter>,
    pub pending: Arc<dyn PendingStore>,
    pub limits: Arc<dyn RateLimiter>,
    pub messages: Arc<dyn MessageStore>,
    pub queue: Arc<dyn OutboundQueue>,
    /// The approval-code key (read from its secret off the init path).
    pub hasher: Arc<dyn CodeKey>,
    pub number_pool: Vec<PhoneNumber>,
    /// The operator's texting numbers (a dealer admin picks one of them).
    pub numbers: Arc<dyn NumberDirectory>,
    /// The dealer-wide ledger by time (the evidence export).
    pub ledger: Arc<dyn LedgerExport>,
}

impl App {
    fn ports(&self) -> AuthorizationPorts<'_> {
        AuthorizationPorts {
            dealers: self.dealers.as_ref(),
            contacts: self.contacts.as_ref(),
            consent: self.consent.as_ref(),
            consent_writer: self.consent_writer.as_ref(),
            pending: self.pending.as_ref(),
            limits: self.limits.as_ref(),
            messages: self.messages.as_ref(),
            queue: self.queue.as_ref(),
            hasher: self.hasher.as_ref(),
            number_pool: &self.number_pool,
        }
    }
}

/// Handles one request at `now`.
pub async fn handle(app: &App, req: Request, now: DateTime<Utc>) -> Response<Body> {
    let result = route(app, &req, now).await;
    respond(&req, result)
}

async fn route(app: &App, req: &Request, now: DateTime<Utc>) -> Result<Response<Body>, Problem> {
    let who = identity(req, &app.claims)?;
    match route_key(req).as_str() {
        "PUT /v1/contacts/{contactId}" => put_contact(app, &who, req, now).await,
        "DELETE /v1/contacts/{contactId}" => delete_contact(app, &who, req, now).await,
        "POST /v1/contacts/batch" => batch_contacts(app, &who, req, now).await,
        "GET /v1/accounts/{accountId}/contacts" => {
            let account = path_param(req, "accountId", |s| AccountId::parse(s))?;
            list(app, &who, ContactLink::Account(account), req, now).await
        }
        "GET /v1/deals/{dealId}/contacts" => {
            let deal = path_param(req, "dealId", |s| DealId::parse(s))?;
            list(app, &who, ContactLink::Deal(deal), req, now).await
        }
        "POST /v1/contacts/{contactId}/authorizations" => request(app, &who, req, now).await,
        "POST /v1/contacts/{contactId}/authorizations/{category}/verify" => {
            verify(app, &who, req, now).await
        }
        "DELETE /v1/contacts/{contactId}/authorizations/{category}" => {
            let contact = path_param(req, "contactId", |s| ContactId::parse(s))?;
            let category = path_param(req, "category", str::parse::<Category>)?;
            auth::unsubscribe(
                &app.ports(),
                &who.dealer,
                &who.user,
                &contact,
                category,
                now,
            )
            .await?;
            Ok(json(
                StatusCode::OK,
                &json!({"category": category, "status": "revoked"}),
            ))
        }
        "GET /v1/contacts/{contactId}/consent-history" => {
            let contact = path_param(req, "contactId", |s| ContactId::parse(s))?;
            let page = Page::from_query(req, 100, 500)?;
            let contact = auth::contact(&app.ports(), &who.dealer, &contact).await?;
            let (entries, more) = app
                .consent
                .history_page(
                    &who.dealer,
                    &contact.phone,
                    page.limit,
                    page.cursor.as_deref(),
                )
                .await?;
            let next = more.then(|| entries.last().map(|e| e.id.clone())).flatten();
            Ok(json(
                StatusCode::OK,
                &json!({"contactId": contact.id, "phone": contact.phone, "entries": entries, "nextCursor": next}),
            ))
        }
        "GET /v1/contacts/{contactId}/consent-evidence" => {
            let contact = path_param(req, "contactId", |s| ContactId::parse(s))?;
            let (contact, entries) = auth::history(&app.ports(), &who.dealer, &contact).await?;
            let rows: Vec<EvidenceRow> = entries.iter().map(EvidenceRow::from).collect();
            if wants_csv(req)? {
                return Ok(csv(&rows, &format!("consent-evidence-{}.csv", contact.id)));
            }
            Ok(json(
                StatusCode::OK,
                &json!({"contactId": contact.id, "phone": contact.phone, "entries": rows}),
            ))
        }
        "GET /v1/consent-evidence" => {
            who.require(DEALER_ADMIN)?;
            let q = ExportQuery::from(req)?;
            let (rows, next) = evidence::export(
                app.ledger.as_ref(),
                &who.dealer,
                q.from,
                q.to,
                q.limit,
                q.cursor.as_deref(),
            )
            .await?;
            if wants_csv(req)? {
                let mut response = csv(&rows, "consent-evidence.csv");
                if let Some(next) = &next {
                    // The next page of a CSV export: same query, this cursor.
                    if let Ok(v) = next.parse() {
                        response.headers_mut().insert("x-next-cursor", v);
                    }
                }
                return Ok(response);
            }
            Ok(json(
                StatusCode::OK,
                &json!({"from": q.from, "to": q.to, "entries": rows, "nextCursor": next}),
            ))
        }
        other => Err(Problem::not_found(&format!("route {other:?}"))),
    }
}

/// The default page of the dealer-wide export.
const DEFAULT_EXPORT_PAGE: u32 = 100;

struct ExportQuery {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: u32,
    cursor: Option<String>,
}

impl ExportQuery {
    fn from(req: &Request) -> Result<Self, Problem> {
        use lambda_http::RequestExt;
        let params = req.query_string_parameters();
        let time = |name: &str| {
            let raw = params
                .first(name)
                .ok_or_else(|| Problem::bad_request(format!("{name} is required (RFC 3339)")))?;
            DateTime::parse_from_rfc3339(raw)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    Problem::bad_request(format!(
                        "{name}: expected an RFC 3339 time such as 2026-01-01T00:00:00Z, got {:?}",
                        raw.chars().take(40).collect::<String>()
                    ))
                })
        };
        let page = Page::from_query(req, DEFAULT_EXPORT_PAGE, evidence::MAX_EXPORT_PAGE)?;
        Ok(Self {
            from: time("from")?,
            to: time("to")?,
            limit: page.limit,
            cursor: page.cursor,
        })
    }
}

/// CSV when the client prefers it (`Accept: text/csv`), JSON otherwise, by the Accept
/// header's q-values (RFC 9110 12.5.1): a type with `q=0` is not acceptable, the most
/// specific range names a type's q, and on a tie JSON wins. An Accept that allows
/// neither is 406; no Accept is JSON.
fn wants_csv(req: &Request) -> Result<bool, Problem> {
    let accept = req
        .headers()
        .get(lambda_http::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if accept.trim().is_empty() {
        return Ok(false);
    }
    let ranges: Vec<(&str, f32)> = accept
        .split(',')
        .filter_map(|part| {
            let mut params = part.split(';');
            let range = params.next()?.trim();
            let q = params
                .filter_map(|p| p.trim().strip_prefix("q="))
                .next()
                .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())?;
            (!range.is_empty() && (0.0..=1.0).contains(&q)).then_some((range, q))
        })
        .collect();
    // The q of a type: from its most specific matching range (exact, type/*, */*).
    let q_of = |kind: &str, full: &str| {
        [full, &format!("{kind}/*"), "*/*"]
            .iter()
            .find_map(|want| ranges.iter().find(|(r, _)| r == want).map(|(_, q)| *q))
            .unwrap_or(0.0)
    };
    let json_q = q_of("application", "application/json");
    let csv_q = q_of("text", "text/csv");
    match (json_q > 0.0, csv_q > 0.0) {
        (_, true) if csv_q > json_q => Ok(true),
        (true, _) => Ok(false),
        (false, true) => Ok(true),
        (false, false) => Err(Problem::new(
            StatusCode::NOT_ACCEPTABLE,
            "not-acceptable",
            "Not acceptable",
            "this resource is available as application/json or text/csv",
        )),
    }
}

fn csv(rows: &[EvidenceRow], filename: &str) -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/csv; charset=utf-8")
        .header(
            "content-disposition",
            format!("attachment; filename=\"{filename}\""),
        )
        .body(Body::Text(evidence::to_csv(rows)))
        .unwrap_or_else(|_| Response::new(Body::Empty))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ContactBody {
    name: String,
    phone: String,
    #[serde(default)]
    account_ids: Vec<String>,
    #[serde(default)]
    deal_ids: Vec<String>,
    time_zone: Option<String>,
}

impl From<ContactBody> for ContactInput {
    fn from(b: ContactBody) -> Self {
        ContactInput {
            name: b.name,
            phone: b.phone,
            account_ids: b.account_ids,
            deal_ids: b.deal_ids,
            time_zone: b.time_zone,
        }
    }
}

async fn put_contact(
    app: &App,
    who: &Identity,
    req: &Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, Problem> {
    let id = path_param(req, "contactId", |s| ContactId::parse(s))?;
    let body: ContactBody = json_body(req)?;
    let written =
        contacts::upsert(app.contacts.as_ref(), &who.dealer, id, body.into(), now).await?;
    let (status, view) = contact_view(app, who, written, now).await?;
    Ok(json(status, &view))
}

/// 201 or 200 and the contact's view with its authorizations.
async fn contact_view(
    app: &App,
    who: &Identity,
    (contact, written): (Contact, Written),
    now: DateTime<Utc>,
) -> Result<(StatusCode, serde_json::Value), Problem> {
    let status = match written {
        Written::Created => StatusCode::CREATED,
        Written::Replaced => StatusCode::OK,
    };
    let views = auth::contact_views(&app.ports(), &who.dealer, vec![contact], now).await?;
    Ok((status, json!(views.first())))
}

/// `contactId` and the contact's fields (unknown ones are refused by `ContactBody`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchItem {
    contact_id: String,
    #[serde(flatten)]
    contact: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody {
    contacts: Vec<BatchItem>,
}

/// Upserts up to `contacts::MAX_BATCH` contacts, each on its own: a result per contact,
/// in order (`status` 200/201 with the contact, or a 4xx with its problem).
async fn batch_contacts(
    app: &App,
    who: &Identity,
    req: &Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, Problem> {
    let body: BatchBody = json_body(req)?;
    let ids: Vec<String> = body
        .contacts
        .iter()
        .map(|i| i.contact_id.chars().take(80).collect())
        .collect();
    let items = body
        .contacts
        .into_iter()
        .map(|item| contacts::BatchItem {
            contact_id: item.contact_id,
            input: serde_json::from_value::<ContactBody>(serde_json::Value::Object(item.contact))
                .map(ContactInput::from)
                .map_err(|e| format!("contact: {e}")),
        })
        .collect();
    let outcomes = contacts::batch(app.contacts.as_ref(), &who.dealer, items, now).await?;
    let mut results = Vec::with_capacity(outcomes.len());
    for (id_text, outcome) in ids.into_iter().zip(outcomes) {
        let outcome = match outcome {
            Ok(written) => contact_view(app, who, written, now).await,
            Err(BatchRefusal::Unreadable(detail)) => Err(Problem::bad_request(detail)),
            Err(BatchRefusal::Refused(e)) => Err(Problem::from(e)),
        };
        results.push(match outcome {
            Ok((status, view)) => {
                json!({"contactId": id_text, "status": status.as_u16(), "contact": view})
            }
            Err(p) => json!({
                "contactId": id_text,
                "status": p.status.as_u16(),
                "problem": {"type": p.slug, "title": p.title, "detail": p.detail},
            }),
        });
    }
    Ok(json(StatusCode::OK, &json!({ "results": results })))
}

/// Removes a contact and its account and deal links, cancels its waiting texts and
/// voids its pending requests; the consent ledger of the number stays (it is evidence,
/// and consent belongs to the number).
async fn delete_contact(
    app: &App,
    who: &Identity,
    req: &Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, Problem> {
    let id = path_param(req, "contactId", |s| ContactId::parse(s))?;
    let ports = ContactsPorts {
        contacts: app.contacts.as_ref(),
        pending: app.pending.as_ref(),
        messages: app.messages.as_ref(),
    };
    let removed = contacts::remove(&ports, &who.dealer, &id, now).await?;
    tracing::info!(contact_id = %id, canceled = removed.canceled, voided = removed.voided, "contact removed");
    Ok(Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Body::Empty)
        .unwrap_or_else(|_| Response::new(Body::Empty)))
}

/// The contacts of an account or a deal with their authorizations, a page at a time
/// (`cursor` = the last contact id of the previous page).
async fn list(
    app: &App,
    who: &Identity,
    link: ContactLink,
    req: &Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, Problem> {
    let page = Page::from_query(req, 50, 100)?;
    let after = page
        .cursor
        .as_deref()
        .map(ContactId::parse)
        .transpose()
        .map_err(|_| Problem::invalid("the cursor is not valid"))?;
    let (contacts, more) = app
        .contacts
        .linked_contacts(&who.dealer, &link, page.limit, after.as_ref())
        .await?;
    let next = more
        .then(|| contacts.last().map(|c| c.id.as_str().to_owned()))
        .flatten();
    let views = auth::contact_views(&app.ports(), &who.dealer, contacts, now).await?;
    Ok(json(
        StatusCode::OK,
        &json!({ "contacts": views, "nextCursor": next }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthorizeBody {
    category: String,
}

async fn request(
    app: &App,
    who: &Identity,
    req: &Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, Problem> {
    let contact = path_param(req, "contactId", |s| ContactId::parse(s))?;
    let body: AuthorizeBody = json_body(req)?;
    let category: Category = body
        .category
        .parse()
        .map_err(|e: consent::category::UnknownCategory| Problem::invalid(e.to_string()))?;
    let requested = auth::request(
        &app.ports(),
        &who.dealer,
        &who.user,
        &contact,
        category,
        now,
    )
    .await?;
    Ok(json(
        StatusCode::ACCEPTED,
        &json!({
            "category": category,
            "status": "pending",
            "expiresAt": requested.expires_at,
            "resent": requested.resent,
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyBody {
    code: String,
}

async fn verify(
    app: &App,
    who: &Identity,
    req: &Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, Problem> {
    let contact = path_param(req, "contactId", |s| ContactId::parse(s))?;
    let category = path_param(req, "category", str::parse::<Category>)?;
    let body: VerifyBody = json_body(req)?;
    let code = ApprovalCode::parse(&body.code).map_err(|e| Problem::invalid(e.to_string()))?;
    let entry = auth::verify(
        &app.ports(),
        &who.dealer,
        &who.user,
        &contact,
        category,
        &code,
        now,
    )
    .await?;
    Ok(json(
        StatusCode::OK,
        &json!({"category": category, "status": "authorized", "ledgerEntry": entry}),
    ))
}
