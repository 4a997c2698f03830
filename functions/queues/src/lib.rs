//! Texting queues for staff: the dealer's worklists with open counts, items with
//! filters and cursor pagination, claim and resolve.

pub mod config;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Deserialize;
use serde_json::json;

use consent::ports::{ItemQuery, WorkItemStatus, WorkQueueDesk, WorkQueueName};
use consent::service::queues;
use consent::{AccountId, ContactId};
use consent_adapters::http::{identity, json, json_body, path_param, respond, route_key, Problem};

#[derive(Clone)]
pub struct App {
    /// The token claims naming the caller.
    pub claims: consent_adapters::http::ClaimNames,
    pub desk: Arc<dyn WorkQueueDesk>,
}

/// Items per page when the caller does not say.
pub const DEFAULT_LIMIT: u32 = 25;

pub async fn handle(app: &App, req: Request, now: DateTime<Utc>) -> Response<Body> {
    let result = route(app, &req, now).await;
    respond(&req, result)
}

fn queue(req: &Request) -> Result<WorkQueueName, Problem> {
    // A name that is none of `WorkQueueName::ALL` is no queue of anyone's.
    path_param(req, "queue", |s| {
        WorkQueueName::parse(s).ok_or("unknown queue")
    })
    .map_err(|_| Problem::not_found("queue"))
}

fn item_id(req: &Request) -> Result<String, Problem> {
    path_param(req, "itemId", |s| {
        if !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric()) {
            Ok(s.to_owned())
        } else {
            Err("not an item id")
        }
    })
    .map_err(|_| Problem::not_found("queue item"))
}

async fn route(app: &App, req: &Request, now: DateTime<Utc>) -> Result<Response<Body>, Problem> {
    let who = identity(req, &app.claims)?;
    let desk = app.desk.as_ref();
    match route_key(req).as_str() {
        "GET /v1/queues" => {
            let queues: Vec<_> = queues::overview(desk, &who.dealer)
                .await?
                .into_iter()
                .map(|(q, open)| json!({"name": q.as_str(), "openCount": open}))
                .collect();
            Ok(json(StatusCode::OK, &json!({ "queues": queues })))
        }
        "GET /v1/queues/{queue}/items" => {
            let q = queue(req)?;
            let query = item_query(req)?;
            let page = queues::list(desk, &who.dealer, q, query).await?;
            Ok(json(
                StatusCode::OK,
                &json!({"queue": q.as_str(), "items": page.items, "nextCursor": page.next_cursor}),
            ))
        }
        "GET /v1/queues/{queue}/items/{itemId}" => {
            let (q, id) = (queue(req)?, item_id(req)?);
            let item = desk
                .item(&who.dealer, q, &id)
                .await?
                .ok_or_else(|| Problem::not_found("queue item"))?;
            Ok(json(StatusCode::OK, &item))
        }
        "POST /v1/queues/{queue}/items/{itemId}/claim" => {
            let (q, id) = (queue(req)?, item_id(req)?);
            let item = queues::claim(desk, &who.dealer, q, &id, &who.user, now).await?;
            Ok(json(StatusCode::OK, &item))
        }
        "POST /v1/queues/{queue}/items/{itemId}/resolve" => {
            let (q, id) = (queue(req)?, item_id(req)?);
            let note = resolve_note(req)?;
            let item = queues::resolve(desk, &who.dealer, q, &id, &who.user, note, now).await?;
            Ok(json(StatusCode::OK, &item))
        }
        other => Err(Problem::not_found(&format!("route {other:?}"))),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ResolveBody {
    note: Option<String>,
}

fn resolve_note(req: &Request) -> Result<Option<String>, Problem> {
    let empty = consent_adapters::http::body_bytes(req)
        .iter()
        .all(u8::is_ascii_whitespace);
    let body: ResolveBody = if empty {
        ResolveBody::default()
    } else {
        json_body(req)?
    };
    Ok(body
        .note
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty()))
}

fn item_query(req: &Request) -> Result<ItemQuery, Problem> {
    let params = req.query_string_parameters();
    let status = match params.first("status").unwrap_or("open") {
        "open" => Some(WorkItemStatus::Open),
        "claimed" => Some(WorkItemStatus::Claimed),
        "resolved" => Some(WorkItemStatus::Resolved),
        "all" => None,
        other => {
            return Err(Problem::bad_request(format!(
                "status {:?}: expected open, claimed, resolved or all",
                other.chars().take(20).collect::<String>()
            )))
        }
    };
    let newest_first = match params.first("order").unwrap_or("newest") {
        "newest" => true,
        "oldest" => false,
        _ => return Err(Problem::bad_request("order: expected newest or oldest")),
    };
    let limit = match params.first("limit") {
        None => DEFAULT_LIMIT,
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=queues::MAX_PAGE).contains(l))
            .ok_or_else(|| {
                Problem::bad_request(format!("limit: expected 1 to {}", queues::MAX_PAGE))
            })?,
    };
    Ok(ItemQuery {
        status,
        contact_id: params
            .first("contactId")
            .map(ContactId::parse)
            .transpose()
            .map_err(|e| Problem::bad_request(format!("contactId: {e}")))?,
        account_id: params
            .first("accountId")
            .map(AccountId::parse)
            .transpose()
            .map_err(|e| Problem::bad_request(format!("accountId: {e}")))?,
        newest_first,
        limit,
        cursor: params.first("cursor").map(str::to_owned),
    })
}
