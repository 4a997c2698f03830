//! The HTTP edge shared by the portal and carrier functions: RFC 9457 problem
//! responses, the one mapping from domain errors to status codes, JSON bodies,
//! and the portal identity from the JWT authorizer's claims.

use lambda_http::http::{header, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use consent::{DealerId, DomainError, StaffUserId};

/// Largest JSON body accepted from the portal.
pub const MAX_JSON_BODY: usize = 64 * 1024;

/// A finished HTTP answer (handlers return `Result<Response<Body>, Problem>`).
#[derive(Debug)]
pub struct Problem {
    pub status: StatusCode,
    pub slug: &'static str,
    pub title: &'static str,
    pub detail: String,
    pub extra: Map<String, Value>,
}

impl Problem {
    pub fn new(
        status: StatusCode,
        slug: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            slug,
            title,
            detail: detail.into(),
            extra: Map::new(),
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_owned(), value.into());
        self
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "Bad request",
            detail,
        )
    }

    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
            "Validation failed",
            detail,
        )
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            format!("{what} not found"),
        )
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            "a valid portal token is required",
        )
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
    }

    /// An infrastructure failure: opaque to the client, the cause chain logged.
    pub fn internal(err: &(dyn std::error::Error + 'static)) -> Self {
        let mut chain = err.to_string();
        let mut source = err.source();
        while let Some(s) = source {
            chain.push_str(": ");
            chain.push_str(&s.to_string());
            source = s.source();
        }
        tracing::error!(error = %chain, "request failed");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily-unavailable",
            "Temporarily unavailable",
            "the service could not complete the request; it is safe to retry",
        )
    }

    /// The problem with a relative `type` (`/problems/{slug}`): only where no request is at
    /// hand; handlers answer through [`respond`], which makes it absolute.
    pub fn into_response(self) -> Response<Body> {
        self.into_response_at("")
    }

    /// The problem as a response whose `type` is the absolute URI of its description on
    /// this API (`{base}/problems/{slug}`, see [`problem_base`]).
    pub fn into_response_at(self, base: &str) -> Response<Body> {
        let mut body = Map::new();
        body.insert(
            "type".into(),
            Value::String(format!("{base}/problems/{}", self.slug)),
        );
        body.insert("title".into(), Value::String(self.title.into()));
        body.insert("status".into(), Value::from(self.status.as_u16()));
        body.insert("detail".into(), Value::String(self.detail));
        body.extend(self.extra);
        let mut response = Response::builder()
            .status(self.status)
            .header(header::CONTENT_TYPE, "application/problem+json");
        if let Some(retry) = body.get("retryAfter").and_then(Value::as_u64) {
            response = response.header(header::RETRY_AFTER, retry.to_string());
        }
        response
            .body(Body::Text(Value::Object(body).to_string()))
            .unwrap_or_else(|_| Response::new(Body::Empty))
    }
}

impl From<DomainError> for Problem {
    fn from(e: DomainError) -> Self {
        use DomainError as E;
        match e {
            E::NotFound { what } => Problem::not_found(what),
            E::Invalid(detail) => Problem::invalid(detail),
            E::ConsentRequired { category } => Problem::new(
                StatusCode::FORBIDDEN,
                "consent-required",
                "Consent required",
                format!("the person has not authorized {category} texts"),
            )
            .with("category", category.as_str()),
            E::WrongCode { attempts_left } => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-code",
                "Invalid approval code",
                "the approval code does not match",
            )
            .with("attemptsLeft", attempts_left),
            E::CodeExpired => Problem::new(
                StatusCode::GONE,
                "code-expired",
                "Approval request expired",
                "the approval request expired or used up its attempts; request a new code",
            ),
            E::NoPendingRequest => Problem::new(
                StatusCode::NOT_FOUND,
                "no-pending-request",
                "No pending request",
                "no approval request is pending for this category; click Authorize first",
            ),
            E::RateLimited { retry_after } => Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
                "too many approval codes were requested; try again later",
            )
            .with("retryAfter", retry_after.as_secs().max(1)),
            E::Render(r) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "template-variables",
                "Template cannot be rendered",
                r.to_string(),
            ),
            E::IdempotencyKeyReused => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency-Key reused",
                "this Idempotency-Key was used for a different request",
            ),
            E::NotCancelable { status } => Problem::new(
                StatusCode::CONFLICT,
                "not-cancelable",
                "Message cannot be canceled",
                format!(
                    "the message is {status}; only scheduled or deferred messages can be canceled"
                ),
            )
            .with("messageStatus", status),
            E::OptedOut { from } => Problem::new(
                StatusCode::CONFLICT,
                "opted-out",
                "The person opted out",
                format!(
                    "the person replied STOP to {from} (or their carrier blocks it): nothing can be texted until they text START to {from}"
                ),
            )
            .with("textingNumber", from.as_str()),
            E::NoTextingNumber => Problem::new(
                StatusCode::CONFLICT,
                "no-texting-number",
                "No texting number",
                "the dealer has no texting number; set one with PUT /v1/dealer",
            ),
            E::AlreadyClaimed { by } => Problem::new(
                StatusCode::CONFLICT,
                "already-claimed",
                "Already claimed",
                "another staff user is working this item",
            )
            .with("claimedBy", by.as_str()),
            E::Conflict(detail) => {
                Problem::new(StatusCode::CONFLICT, "conflict", "Conflict", detail)
            }
            E::Store(err) => Problem::internal(&err),
        }
    }
}

/// A JSON response.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    match serde_json::to_string(value) {
        Ok(text) => Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::Text(text))
            .unwrap_or_else(|_| Response::new(Body::Empty)),
        Err(e) => Problem::internal(&e).into_response(),
    }
}

/// Turns a handler result into a response; a problem's `type` points at this API.
pub fn respond(req: &Request, result: Result<Response<Body>, Problem>) -> Response<Body> {
    result.unwrap_or_else(|p| p.into_response_at(&problem_base(req)))
}

/// The API's own base URL, from the request: the domain API Gateway served it on (its
/// execute-api name or the custom domain) and the scheme the client used
/// (`X-Forwarded-Proto`; API Gateway only speaks HTTPS). Problem `type`s are built on it,
/// so they resolve wherever the API is deployed, without configuration.
pub fn problem_base(req: &Request) -> String {
    let domain = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.domain_name.clone(),
        _ => None,
    }
    .filter(|d| {
        !d.is_empty()
            && d.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
    });
    let Some(domain) = domain else {
        return "https://texting.invalid".to_owned();
    };
    let scheme = match req
        .headers()
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
    {
        Some("http") => "http",
        _ => "https",
    };
    format!("{scheme}://{domain}")
}

/// A problem type this API answers with: its slug (the last segment of `type`), status,
/// title and what it means to a client. `GET /problems/{slug}` serves the description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProblemType {
    pub slug: &'static str,
    pub status: u16,
    pub title: &'static str,
    pub description: &'static str,
}

/// Every problem type, one rule for their statuses: 400 the request cannot be read, 401
/// no valid token, 403 the identity lacks the role or the person lacks the consent, 404
/// not yours or not there, 406/413/415 the representation, 409 a state conflict, 410
/// gone, 422 read but invalid, 428 a missing precondition, 429 too many, 503 retry.
pub const PROBLEM_TYPES: &[ProblemType] = &[
    ProblemType { slug: "bad-request", status: 400, title: "Bad request", description: "The request cannot be read: malformed JSON, a wrong type, a missing or unparseable query parameter or header. Fix the request; retrying it unchanged fails again." },
    ProblemType { slug: "unauthorized", status: 401, title: "Unauthorized", description: "No valid portal token: send `Authorization: Bearer <JWT>` from the portal's identity provider." },
    ProblemType { slug: "forbidden", status: 403, title: "Forbidden", description: "The token is valid but its identity may not do this: settings, templates, automations and the dealer-wide evidence export need the `dealer-admin` role; a carrier webhook with a bad signature is refused too." },
    ProblemType { slug: "consent-required", status: 403, title: "Consent required", description: "The person has not authorized texts of this category (member `category`). Ask staff to click Authorize for it; the person reads back the code or replies Agree." },
    ProblemType { slug: "not-found", status: 404, title: "Not found", description: "The resource does not exist for this dealer (another dealer's resources are not found either), or the route does not exist." },
    ProblemType { slug: "no-pending-request", status: 404, title: "No pending request", description: "No approval request is pending for this category: click Authorize first, then verify the code that was texted." },
    ProblemType { slug: "not-acceptable", status: 406, title: "Not acceptable", description: "The resource cannot be given in a type the Accept header allows; ask for application/json (or text/csv where the route offers it)." },
    ProblemType { slug: "opted-out", status: 409, title: "The person opted out", description: "The person replied STOP to the dealer's texting number, or their carrier blocks it (member `textingNumber`). Nothing can be texted until they text START to that number." },
    ProblemType { slug: "not-cancelable", status: 409, title: "Message cannot be canceled", description: "Only scheduled or deferred messages can be canceled; this one is already queued or further (member `messageStatus`)." },
    ProblemType { slug: "no-texting-number", status: 409, title: "No texting number", description: "The dealer has no texting number yet: a dealer admin sets one with PUT /v1/dealer." },
    ProblemType { slug: "texting-number-taken", status: 409, title: "Texting number taken", description: "Another dealer texts from this number; pick another of the operator's numbers." },
    ProblemType { slug: "already-claimed", status: 409, title: "Already claimed", description: "Another staff user is working this queue item (member `claimedBy`)." },
    ProblemType { slug: "conflict", status: 409, title: "Conflict", description: "The resource changed state in a way that forbids this request (for example, an authorization that is already granted)." },
    ProblemType { slug: "code-expired", status: 410, title: "Approval request expired", description: "The approval code expired (10 minutes) or its five tries are used up: click Authorize again for a new code." },
    ProblemType { slug: "body-too-large", status: 413, title: "Body too large", description: "The JSON body is larger than the API accepts (64 KiB)." },
    ProblemType { slug: "unsupported-media-type", status: 415, title: "Unsupported media type", description: "Portal routes take `application/json`; carrier webhooks take `application/x-www-form-urlencoded`." },
    ProblemType { slug: "validation-failed", status: 422, title: "Validation failed", description: "The request was read but a value is not acceptable (`detail` says which): a bad phone number, a time in the past, an unknown template, a limit out of range, a cursor from another list." },
    ProblemType { slug: "invalid-code", status: 422, title: "Invalid approval code", description: "The approval code does not match (member `attemptsLeft`); after five wrong codes the request is void." },
    ProblemType { slug: "template-variables", status: 422, title: "Template cannot be rendered", description: "A template placeholder has no value, or a value is not acceptable; `detail` names it." },
    ProblemType { slug: "idempotency-key-reused", status: 422, title: "Idempotency-Key reused", description: "This Idempotency-Key was used for a different request; use a new key for a new text." },
    ProblemType { slug: "texting-number-not-provisioned", status: 422, title: "Texting number not provisioned", description: "The number is not one of the operator's texting numbers (member `textingNumber`); ask the operator to provision it." },
    ProblemType { slug: "idempotency-key-required", status: 428, title: "Idempotency-Key required", description: "POST /v1/messages needs an `Idempotency-Key` header: a value unique to the text, sent again unchanged on a retry, so a double click or a retry never texts twice." },
    ProblemType { slug: "rate-limited", status: 429, title: "Too many requests", description: "Too many approval codes were requested for this number (member `retryAfter`, seconds; also the Retry-After header)." },
    ProblemType { slug: "temporarily-unavailable", status: 503, title: "Temporarily unavailable", description: "The service could not complete the request; nothing was half done. It is safe to retry (with the same Idempotency-Key for a send)." },
];

/// The problem type with this slug.
pub fn problem_type(slug: &str) -> Option<&'static ProblemType> {
    PROBLEM_TYPES.iter().find(|p| p.slug == slug)
}

/// The description of a problem type as a small HTML page (what its `type` URI shows).
pub fn problem_page(p: &ProblemType) -> Response<Body> {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><h1>{title}</h1><p>HTTP status {status}. Problem type <code>{slug}</code>.</p><p>{description}</p></body></html>",
        title = escape(p.title),
        status = p.status,
        slug = p.slug,
        description = escape(p.description),
    );
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "public, max-age=86400")
        .body(Body::Text(html))
        .unwrap_or_else(|_| Response::new(Body::Empty))
}

/// Who is calling: the dealer, the staff user and their roles, from the JWT
/// authorizer's claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub dealer: DealerId,
    pub user: StaffUserId,
    pub roles: Vec<String>,
}

/// The role that manages a dealer's settings (texting number included).
pub const DEALER_ADMIN: &str = "dealer-admin";

impl Identity {
    /// 403 problem unless the caller holds `role`.
    pub fn require(&self, role: &str) -> Result<(), Problem> {
        if self.roles.iter().any(|r| r == role) {
            Ok(())
        } else {
            Err(Problem::forbidden(format!("this needs the {role} role")))
        }
    }
}

/// The `roles` claim as API Gateway hands it over: a list claim arrives as the string
/// `[a b]`; a JSON array or a single name are read too.
fn roles_claim(value: Option<&String>) -> Vec<String> {
    let Some(raw) = value.map(|v| v.trim()) else {
        return Vec::new();
    };
    if let Ok(list) = serde_json::from_str::<Vec<String>>(raw) {
        return list;
    }
    raw.trim_start_matches('[')
        .trim_end_matches(']')
        .split([' ', ','])
        .map(|r| r.trim().trim_matches('"'))
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Which claims of the identity provider's token name the dealer, the staff user and
/// their roles: the stack's `DealerClaim`, `UserClaim` and `RolesClaim` parameters
/// (`CLAIM_DEALER`, `CLAIM_USER`, `CLAIM_ROLES`). A Cognito user pool issues
/// `custom:dealer_id`, `cognito:username` and `cognito:groups` (docs/operations.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimNames {
    pub dealer: String,
    pub user: String,
    pub roles: String,
}

impl Default for ClaimNames {
    /// `dealer_id`, `sub`, `roles`: what an identity provider of the DMS issues unless
    /// the stack is told otherwise.
    fn default() -> Self {
        Self {
            dealer: "dealer_id".into(),
            user: "sub".into(),
            roles: "roles".into(),
        }
    }
}

/// Reads the identity API Gateway's JWT authorizer put in the request context, from the
/// claims `names` says. No claims (no authorizer ran) or malformed ids -> 401.
pub fn identity(req: &Request, names: &ClaimNames) -> Result<Identity, Problem> {
    let claims = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx
            .authorizer
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .map(|j| &j.claims),
        _ => None,
    }
    .ok_or_else(Problem::unauthorized)?;
    let dealer = claims
        .get(&names.dealer)
        .and_then(|d| DealerId::parse(d.as_str()).ok())
        .ok_or_else(Problem::unauthorized)?;
    let user = claims
        .get(&names.user)
        .and_then(|u| StaffUserId::parse(u.as_str()).ok())
        .ok_or_else(Problem::unauthorized)?;
    let roles = roles_claim(claims.get(&names.roles));
    Ok(Identity {
        dealer,
        user,
        roles,
    })
}

/// The route API Gateway matched (`"PUT /v1/dealer"`): handlers dispatch on it, so a
/// route exists exactly when the template declares it.
pub fn route_key(req: &Request) -> String {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.route_key.clone().unwrap_or_default(),
        _ => String::new(),
    }
}

/// The request body as bytes (text or binary).
pub fn body_bytes(req: &Request) -> &[u8] {
    match req.body() {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    }
}

/// Parses a JSON body: 415 for another content type, 413 when too large, 400 with the
/// parser's reason when malformed.
pub fn json_body<T: DeserializeOwned>(req: &Request) -> Result<T, Problem> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = content_type.split(';').next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/json") {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            "send the body as application/json",
        ));
    }
    let bytes = body_bytes(req);
    if bytes.len() > MAX_JSON_BODY {
        return Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "Body too large",
            format!("the body is larger than {MAX_JSON_BODY} bytes"),
        ));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| Problem::bad_request(format!("malformed JSON body: {e}")))
}

/// A path parameter from the route (`{contactId}`), parsed by `parse`.
pub fn path_param<T, E: std::fmt::Display>(
    req: &Request,
    name: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, Problem> {
    let params = req.path_parameters();
    let raw = params
        .first(name)
        .ok_or_else(|| Problem::bad_request(format!("missing path parameter {name}")))?;
    parse(raw).map_err(|e| Problem::bad_request(format!("{name}: {e}")))
}

/// `limit` and `cursor` of a list request (every list that can grow takes both).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub limit: u32,
    /// A page's `nextCursor`, as given (None when absent or empty).
    pub cursor: Option<String>,
}

/// Longest cursor accepted (the stores' cursors are URL-safe base64 of a key).
const MAX_CURSOR: usize = 1024;

impl Page {
    /// From the query string: `limit` (default `default`, 1 to `max`: not a number is 400,
    /// out of range 422) and `cursor` (URL-safe characters only, else 422).
    pub fn from_query(req: &Request, default: u32, max: u32) -> Result<Page, Problem> {
        let params = req.query_string_parameters();
        let limit = match params.first("limit") {
            None => default,
            Some(l) => l
                .parse::<u32>()
                .map_err(|_| Problem::bad_request("limit: expected a whole number"))?,
        };
        if limit == 0 || limit > max {
            return Err(Problem::invalid(format!("limit must be 1 to {max}")));
        }
        let cursor = params
            .first("cursor")
            .filter(|c| !c.is_empty())
            .map(str::to_owned);
        let readable = |c: &str| {
            c.len() <= MAX_CURSOR
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        };
        if cursor.as_deref().is_some_and(|c| !readable(c)) {
            return Err(Problem::invalid("the cursor is not valid"));
        }
        Ok(Page { limit, cursor })
    }
}

/// Test support: when `API_SAMPLES_DIR` is set, writes the response a handler gave for
/// `route_key` there (status, content type, body), so the OpenAPI test can hold every
/// response the handler tests see to its schema. Does nothing otherwise.
#[cfg(feature = "test-util")]
pub fn record_sample(route_key: &str, response: &Response<Body>) {
    let body = match response.body() {
        Body::Text(t) => t.clone(),
        Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    };
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    write_sample(
        "handler",
        &serde_json::json!({
            "route": route_key,
            "status": response.status().as_u16(),
            "contentType": content_type,
            "body": body,
        }),
    );
}

/// Test support: writes one sample (`<prefix>-<pid>-<n>.json`) to `API_SAMPLES_DIR` when it
/// is set, for the checks of `make test-local` (OpenAPI responses, event schemas).
#[cfg(feature = "test-util")]
pub fn write_sample(prefix: &str, sample: &Value) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let Some(dir) = std::env::var_os("API_SAMPLES_DIR") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let _ = std::fs::create_dir_all(&dir);
    let name = format!(
        "{prefix}-{}-{}.json",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let _ = std::fs::write(dir.join(name), sample.to_string());
}

#[cfg(test)]
mod tests {
    #[test]
    fn roles_are_read_as_api_gateway_hands_them_over() {
        let read = |s: &str| super::roles_claim(Some(&s.to_owned()));
        assert_eq!(read("[dealer-admin staff]"), ["dealer-admin", "staff"]);
        assert_eq!(read(r#"["dealer-admin"]"#), ["dealer-admin"]);
        assert_eq!(read("dealer-admin"), ["dealer-admin"]);
        assert!(read("[]").is_empty());
        assert!(super::roles_claim(None).is_empty());
    }

    /// A request as API Gateway's JWT authorizer hands it over, with these claims.
    fn with_claims(claims: &[(&str, &str)]) -> lambda_http::Request {
        let claims: serde_json::Map<String, serde_json::Value> = claims
            .iter()
            .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
            .collect();
        let event = serde_json::json!({
            "version": "2.0", "routeKey": "GET /v1/x", "rawPath": "/v1/x", "rawQueryString": "",
            "headers": {}, "isBase64Encoded": false,
            "requestContext": {
                "accountId": "1", "apiId": "a", "domainName": "d", "domainPrefix": "d",
                "requestId": "r", "routeKey": "GET /v1/x", "stage": "$default", "time": "t",
                "timeEpoch": 0,
                "http": {"method": "GET", "path": "/v1/x", "protocol": "HTTP/1.1",
                         "sourceIp": "127.0.0.1", "userAgent": "t"},
                "authorizer": {"jwt": {"claims": claims, "scopes": null}}
            }
        });
        lambda_http::request::from_str(&event.to_string()).expect("an HTTP API event")
    }

    #[test]
    fn the_caller_is_read_from_the_claims_the_stack_names() {
        let cognito = super::ClaimNames {
            dealer: "custom:dealer_id".into(),
            user: "cognito:username".into(),
            roles: "cognito:groups".into(),
        };
        let from_pool = with_claims(&[
            ("sub", "5b1c0f0e-8d9e-4c1e-9f55-0d9c2a1f7e10"),
            ("custom:dealer_id", "dealer-7"),
            ("cognito:username", "staff-3"),
            ("cognito:groups", "[dealer-admin]"),
        ]);
        let who = super::identity(&from_pool, &cognito).expect("a Cognito identity");
        assert_eq!(who.dealer.as_str(), "dealer-7");
        assert_eq!(who.user.as_str(), "staff-3");
        assert_eq!(who.roles, ["dealer-admin"]);
        // The default names find no dealer in a Cognito token: 401, never another dealer's.
        let err = super::identity(&from_pool, &super::ClaimNames::default()).unwrap_err();
        assert_eq!(err.status, 401);
        // A dealer claim under the default name is not read when the stack names another.
        let plain = with_claims(&[("sub", "staff-1"), ("dealer_id", "dealer-1")]);
        assert!(super::identity(&plain, &super::ClaimNames::default()).is_ok());
        assert_eq!(super::identity(&plain, &cognito).unwrap_err().status, 401);
    }
}
