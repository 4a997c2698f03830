//! The catalog of problem types this API answers with, and the page each `type` URI shows.

use lambda_http::http::{header, StatusCode};
use lambda_http::{Body, Response};

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
