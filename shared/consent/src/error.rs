//! Errors of the domain and of the ports.
//!
//! `DomainError` is what a rule refuses (a caller can fix it); `StoreError` is what
//! infrastructure failed at (retry or 5xx). The HTTP edge maps both, once.

use std::time::Duration;

use crate::category::Category;
use crate::phone::PhoneNumber;

/// An infrastructure failure behind a port. The adapter keeps the SDK error as the source.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write lost: someone else changed the item first.
    #[error("conditional write failed: {0}")]
    Conflict(&'static str),
    /// Anything else: network, throttling, the service itself.
    #[error("{context}")]
    Unavailable {
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Part of a batch was refused by the service.
    #[error("partial failure: {0}")]
    Partial(String),
    /// Stored data that does not parse: a bug or a hand-edited item.
    #[error("corrupt stored item {key}: {reason}")]
    Corrupt { key: String, reason: String },
}

impl StoreError {
    pub fn unavailable(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StoreError::Unavailable {
            context: context.into(),
            source: Box::new(source),
        }
    }
}

/// What a port answers.
pub type StoreResult<T> = Result<T, StoreError>;

/// What the rules refuse, plus infrastructure failures passed through.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("{what} not found")]
    NotFound { what: &'static str },
    #[error("invalid input: {0}")]
    Invalid(String),
    #[error("the person has not authorized {category} texts")]
    ConsentRequired { category: Category },
    #[error("the approval code is wrong")]
    WrongCode { attempts_left: u32 },
    #[error("the approval request has expired or used up its attempts; request a new code")]
    CodeExpired,
    #[error("no approval request is pending for this category")]
    NoPendingRequest,
    #[error("too many requests")]
    RateLimited { retry_after: Duration },
    #[error("template cannot be rendered: {0}")]
    Render(#[from] RenderError),
    #[error("the Idempotency-Key was already used for a different request")]
    IdempotencyKeyReused,
    #[error("the message can no longer be canceled: it is {status}")]
    NotCancelable { status: String },
    #[error("the dealer has no texting number configured")]
    NoTextingNumber,
    #[error("the person opted out of texts from {from}; they must text START to it first")]
    OptedOut { from: PhoneNumber },
    #[error("the item is claimed by {by}")]
    AlreadyClaimed { by: crate::ids::StaffUserId },
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("{number} is not one of the operator's texting numbers for this dealer")]
    NumberNotProvisioned { number: PhoneNumber },
    #[error("another dealer texts from this number")]
    NumberTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a template could not be rendered. Messages name variables, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("missing template variables: {}", .0.join(", "))]
    MissingVariables(Vec<String>),
    #[error(
        "unknown template variables: {} (only the template's placeholders are accepted; \
         dealerName is filled in by the system)",
        .0.join(", ")
    )]
    UnknownVariables(Vec<String>),
    #[error("invalid value for template variable {name}: {reason}")]
    InvalidVariable { name: String, reason: String },
    #[error("rendered text is longer than {max} characters (6 SMS segments)")]
    TooLong { max: usize },
}
