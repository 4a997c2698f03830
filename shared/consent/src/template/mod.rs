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
//! `parts.rs` holds what both kinds of template share (placeholders, the rendered text);
//! `catalog.rs` holds the built-ins, `dealer.rs` a dealer's own
//! templates and what a send resolves a name to, `values.rs` the checking, formatting
//! and substitution of variables.

mod catalog;
mod dealer;
mod parts;
mod values;

pub use catalog::{catalog, find, Template};
pub use dealer::{DealerTemplate, Resolved, MAX_DEALER_PLACEHOLDERS};
pub use parts::{Placeholder, PlaceholderKind, Rendered, DEALER_NAME, MAX_RENDERED_CHARS};

pub use crate::error::RenderError;

#[cfg(test)]
mod tests;
