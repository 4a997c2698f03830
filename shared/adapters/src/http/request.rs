//! Reading a request: its route, JSON body, path parameters and page of a list.

use lambda_http::http::{header, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt};
use serde::de::DeserializeOwned;

use super::problem::Problem;

/// Largest JSON body accepted from the portal.
pub const MAX_JSON_BODY: usize = 64 * 1024;

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
