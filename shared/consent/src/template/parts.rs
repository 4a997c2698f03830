//! What both kinds of template share: typed placeholders, the rendered text and its
//! limits.

use serde::Serialize;

use crate::sms::Encoding;

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
