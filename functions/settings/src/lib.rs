//! A dealer's settings over HTTP: the dealer (name, texting number, help contact, time
//! zone), the template list (built-in and the dealer's own), the dealer's own templates
//! and which template each DMS event sends. Reading is for all staff; changing is for
//! dealer admins. The rules live in `consent::service::settings`; this file wires them.

pub mod config;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use consent::ports::{AutomationStore, DealerStore, NumberDirectory, TemplateStore};
use consent::service::settings::{self, DealerInput, SettingsPorts, TemplateInput};
use consent::service::{require_dealer, Written};
use consent::template::DealerTemplate;
use consent::PhoneNumber;
use consent_adapters::http::{
    identity, json, json_body, path_param, respond, route_key, Identity, Problem, DEALER_ADMIN,
};

/// Everything the handler needs, built once at cold start.
#[derive(Clone)]
pub struct App {
    /// The token claims naming the caller.
    pub claims: consent_adapters::http::ClaimNames,
    pub dealers: Arc<dyn DealerStore>,
    /// The operator's texting numbers (a dealer admin picks one of them).
    pub numbers: Arc<dyn NumberDirectory>,
    /// The dealers' own templates.
    pub templates: Arc<dyn TemplateStore>,
    /// Which template each DMS event type sends, per dealer.
    pub automations: Arc<dyn AutomationStore>,
    /// Texting numbers handed to dealers on first use (empty in production).
    pub number_pool: Vec<PhoneNumber>,
}

impl App {
    fn ports(&self) -> SettingsPorts<'_> {
        SettingsPorts {
            dealers: self.dealers.as_ref(),
            numbers: self.numbers.as_ref(),
            templates: self.templates.as_ref(),
            automations: self.automations.as_ref(),
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
        "GET /v1/dealer" => {
            let dealer =
                require_dealer(app.dealers.as_ref(), &who.dealer, &app.number_pool).await?;
            Ok(json(StatusCode::OK, &dealer))
        }
        "PUT /v1/dealer" => {
            // The texting number decides whose replies and STOPs reach this dealer: only
            // a dealer admin sets it.
            who.require(DEALER_ADMIN)?;
            let body: DealerBody = json_body(req)?;
            let input = DealerInput {
                name: body.name,
                texting_number: body.texting_number,
                help_contact: body.help_contact,
                time_zone: body.time_zone,
            };
            let dealer = settings::put_dealer(&app.ports(), &who.dealer, input).await?;
            Ok(json(StatusCode::OK, &dealer))
        }
        "GET /v1/templates" => {
            let own = app.templates.dealer_templates(&who.dealer).await?;
            let mut all = built_in_templates();
            all.extend(own.iter().map(dealer_template_view));
            Ok(json(StatusCode::OK, &json!({ "templates": all })))
        }
        "PUT /v1/templates/{name}" => {
            who.require(DEALER_ADMIN)?;
            put_template(app, &who, req, now).await
        }
        "DELETE /v1/templates/{name}" => {
            who.require(DEALER_ADMIN)?;
            let name = path_param(req, "name", |s| Ok::<_, String>(s.to_owned()))?;
            settings::delete_template(&app.ports(), &who.dealer, &name).await?;
            Ok(Response::builder()
                .status(StatusCode::NO_CONTENT)
                .body(Body::Empty)
                .unwrap_or_else(|_| Response::new(Body::Empty)))
        }
        "GET /v1/automations" => {
            let list = settings::automations(&app.ports(), &who.dealer).await?;
            Ok(json(StatusCode::OK, &json!({ "automations": list })))
        }
        "PUT /v1/automations/{eventType}" => {
            who.require(DEALER_ADMIN)?;
            let event_type = path_param(req, "eventType", |s| {
                consent::automation::check_event_type(s).map(|()| s.to_owned())
            })?;
            let body: AutomationBody = json_body(req)?;
            let set = settings::put_automation(
                &app.ports(),
                &who.dealer,
                &event_type,
                body.template,
                body.enabled,
                &who.user,
                now,
            )
            .await?;
            Ok(json(StatusCode::OK, &set))
        }
        other => Err(Problem::not_found(&format!("route {other:?}"))),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DealerBody {
    name: String,
    texting_number: Option<String>,
    help_contact: Option<String>,
    time_zone: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AutomationBody {
    template: String,
    enabled: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TemplateBody {
    title: Option<String>,
    category: String,
    body: String,
    #[serde(default)]
    placeholder_types: std::collections::BTreeMap<String, consent::template::PlaceholderKind>,
}

/// Creates or changes one of the dealer's own templates (a new version each time).
async fn put_template(
    app: &App,
    who: &Identity,
    req: &Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, Problem> {
    let name = path_param(req, "name", |s| Ok::<_, String>(s.to_owned()))?;
    let body: TemplateBody = json_body(req)?;
    let input = TemplateInput {
        title: body.title,
        category: body.category,
        body: body.body,
        placeholder_types: body.placeholder_types,
    };
    let (template, written) =
        settings::put_template(&app.ports(), &who.dealer, &name, input, &who.user, now).await?;
    let status = match written {
        Written::Created => StatusCode::CREATED,
        Written::Replaced => StatusCode::OK,
    };
    Ok(json(status, &dealer_template_view(&template)))
}

fn dealer_template_view(t: &DealerTemplate) -> Value {
    let placeholders = t.placeholders();
    json!({
        "name": t.name,
        "title": t.title,
        "version": t.version,
        "category": t.category,
        "placeholders": placeholders.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        "placeholderTypes": placeholders.iter().map(|(n, k)| (n.clone(), json!(k))).collect::<Map<String, Value>>(),
        "body": t.body,
        "builtIn": false,
        "updatedAt": t.updated_at,
        "updatedBy": t.updated_by,
    })
}

fn built_in_templates() -> Vec<Value> {
    consent::template::catalog()
        .iter()
        .map(|t| {
            json!({
                "name": t.name,
                "title": t.title,
                "version": t.version,
                "category": t.category,
                "placeholders": t.placeholder_names().collect::<Vec<_>>(),
                "placeholderTypes": t.placeholders.iter().map(|p| (p.name.to_owned(), json!(p.kind))).collect::<Map<String, Value>>(),
                "body": t.body,
                "builtIn": true,
            })
        })
        .collect()
}
