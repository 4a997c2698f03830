//! What a reply is read as: its kind, the language to answer in, and what an Agree
//! names.

use serde::Serialize;

use crate::category::Category;

/// What an inbound reply asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ReplyKind {
    /// Confirms a pending authorization.
    Agree,
    /// Revokes consent.
    OptOut,
    /// Restores what an opt-out removed.
    OptIn,
    /// Asks for the help text.
    Help,
    /// Asks to pay the amount of a Text to Pay reminder.
    Pay,
    /// Confirms a payment.
    Confirm,
    /// Anything else: goes to staff.
    Other,
}

/// The language of a reply, as far as the rule that classified it tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    #[default]
    En,
    Es,
    Fr,
}

impl Language {
    pub(super) fn parse(s: &str) -> Option<Language> {
        match s {
            "en" => Some(Language::En),
            "es" => Some(Language::Es),
            "fr" => Some(Language::Fr),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Es => "es",
            Language::Fr => "fr",
        }
    }
}

/// A classified reply: what it asks for, and the language to answer in (English
/// when no rule decided, i.e. for `Other`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Classified {
    pub kind: ReplyKind,
    pub language: Language,
}

/// What an Agree names: nothing (it answers the one live request), some categories
/// (`Agree service`, `Acepto servicio y ofertas`) or all of them (`Agree all`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AgreeScope {
    #[default]
    Unnamed,
    Named(Vec<Category>),
    All,
}

/// Sentence break marker in the normalised text.
pub(super) const BREAK: &str = "|";

/// The marker of a comma in the normalised text: a clause break inside a sentence.
pub(super) const COMMA: &str = ",";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_by_variant_name() {
        assert_eq!(
            serde_json::json!(ReplyKind::OptOut),
            serde_json::json!("OptOut")
        );
    }
}
