//! Message templates: the built-in catalog and dealers' own templates, rendered with
//! checked, typed variables.
//!
//! Every template is named (kebab-case id), versioned, belongs to one category and
//! has typed placeholders. A body refers to a placeholder as `{name}`; `{dealerName}`
//! is filled in by the system from the dealer's profile and is never a caller
//! variable. Rendering checks every variable against its kind and formats it:
//!
//! | kind  | accepted                                               | rendered         |
//! |-------|--------------------------------------------------------|------------------|
//! | text  | a string (or number), 1-200 chars after trimming, no control characters or braces | trimmed |
//! | money | a JSON number or a string like `123.45`, `$1,234.50`; 0 to 1,000,000, at most 2 decimals | `$1,234.50` |
//! | date  | `YYYY-MM-DD`                                           | `Dec 3, 2026`    |
//! | time  | `HH:MM`, 24-hour                                       | `2:30 PM`        |
//! | url   | `https://...`, at most 200 characters, no whitespace   | as given         |
//!
//! Errors, in this order: every missing variable (absent or null), then every
//! unknown one, then the first invalid value in placeholder order, then a body
//! longer than 918 characters (6 GSM-7 segments). Missing values are errors, never
//! empty strings.
//!
//! This file holds what both kinds of template share (placeholders, the rendered text,
//! render errors); `catalog.rs` holds the built-ins, `dealer.rs` a dealer's own
//! templates and what a send resolves a name to, `values.rs` the checking, formatting
//! and substitution of variables.

mod catalog;
mod dealer;
mod values;

use serde::Serialize;

use crate::sms::Encoding;

pub use catalog::{catalog, find, Template};
pub use dealer::{DealerTemplate, Resolved, MAX_DEALER_PLACEHOLDERS};

/// The placeholder the system fills with the dealer's name.
pub const DEALER_NAME: &str = "dealerName";

/// Longest rendered body, in characters: 6 GSM-7 segments of 153.
pub const MAX_RENDERED_CHARS: usize = 918;

/// What a placeholder holds, which decides how it is checked and formatted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlaceholderKind {
    Text,
    Money,
    Date,
    Time,
    Url,
}

/// A typed variable of a template.
#[derive(Debug, Clone, Serialize)]
pub struct Placeholder {
    pub name: &'static str,
    pub kind: PlaceholderKind,
}

/// A rendered text, ready to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rendered {
    pub body: String,
    pub encoding: Encoding,
    pub segments: u32,
}

pub use crate::error::RenderError;

#[cfg(test)]
mod tests;
