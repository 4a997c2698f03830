//! The problem response (RFC 9457) and the one mapping from domain and store errors to
//! HTTP statuses; `respond` turns a handler's result into the answer.

use lambda_http::http::{header, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde_json::{Map, Value};

use consent::{DomainError, StoreError};

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
            E::NumberNotProvisioned { number } => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "texting-number-not-provisioned",
                "Texting number not provisioned",
                "this number is not one of the operator's texting numbers for this dealer; ask the operator to provision it",
            )
            .with("textingNumber", number.as_str()),
            E::NumberTaken => Problem::new(
                StatusCode::CONFLICT,
                "texting-number-taken",
                "Texting number taken",
                "another dealer texts from this number",
            ),
            E::Conflict(detail) => {
                Problem::new(StatusCode::CONFLICT, "conflict", "Conflict", detail)
            }
            E::Store(err) => Problem::internal(&err),
        }
    }
}

/// A store failure is a 503 (retry) unless the domain says more: through `DomainError`, once.
impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        Problem::from(DomainError::from(e))
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
