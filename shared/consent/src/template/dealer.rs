//! A dealer's own templates, checked before they are kept, and the template a send
//! names: a built-in or the dealer's own.

use serde::Serialize;
use serde_json::{Map, Value};

use super::catalog::{find, Template};
use super::parts::{PlaceholderKind, Rendered, DEALER_NAME, MAX_RENDERED_CHARS};
use super::values::{check_text_str, render_body};
use crate::error::RenderError;
use crate::Category;

/// A dealer's own template, kept per dealer; the built-ins stay read-only. Its
/// placeholders are the `{name}`s of its body (text unless `placeholder_types` says
/// money, date, time or url), rendered by the same rules as a built-in's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DealerTemplate {
    pub name: String,
    pub title: String,
    pub category: Category,
    pub body: String,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub placeholder_types: std::collections::BTreeMap<String, PlaceholderKind>,
    /// 1 for a new template, one more on every change (a message records it).
    pub version: u32,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub updated_by: String,
}

/// Most placeholders in a dealer template.
pub const MAX_DEALER_PLACEHOLDERS: usize = 20;

impl DealerTemplate {
    /// The placeholders a caller fills, in body order (not `dealerName`), with kinds.
    pub fn placeholders(&self) -> Vec<(String, PlaceholderKind)> {
        let mut out: Vec<(String, PlaceholderKind)> = Vec::new();
        let mut rest = self.body.as_str();
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else { break };
            let name = &after[..close];
            if name != DEALER_NAME && !out.iter().any(|(n, _)| n == name) {
                let kind = self
                    .placeholder_types
                    .get(name)
                    .copied()
                    .unwrap_or(PlaceholderKind::Text);
                out.push((name.to_owned(), kind));
            }
            rest = &after[close + 1..];
        }
        out
    }

    /// Why the template cannot be kept, if it cannot: its name (kebab-case, not a
    /// built-in's), title, body (1-918 characters, `{placeholder}`s of letters and
    /// digits, braces closed), types only for its placeholders, and a marketing
    /// template's opt-out wording.
    pub fn check(&self) -> Result<(), String> {
        let kebab = !self.name.is_empty()
            && self.name.len() <= 60
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !self.name.starts_with('-')
            && !self.name.ends_with('-');
        if !kebab {
            return Err("name: 1 to 60 lowercase letters, digits and inner hyphens".into());
        }
        if find(&self.name).is_some() {
            return Err(format!(
                "{:?} is a built-in template, which cannot be changed",
                self.name
            ));
        }
        check_text_str(&self.title).map_err(|e| format!("title: {e}"))?;
        let chars = self.body.chars().count();
        if chars == 0 || chars > MAX_RENDERED_CHARS {
            return Err(format!("body: 1 to {MAX_RENDERED_CHARS} characters"));
        }
        if self.body.chars().any(|c| c.is_control() && c != '\n') {
            return Err("body: no control characters".into());
        }
        if self.body.chars().any(crate::sms::is_format) {
            return Err(
                "body: no invisible format characters (Unicode Cf: bidirectional overrides, zero-width characters)".into(),
            );
        }
        let (mut depth, mut name) = (0, String::new());
        for c in self.body.chars() {
            match (c, depth) {
                ('{', 0) => {
                    depth = 1;
                    name.clear();
                }
                ('}', 1) => {
                    let ok = name.len() <= 40
                        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                        && name.chars().all(|c| c.is_ascii_alphanumeric());
                    if !ok {
                        return Err(format!(
                            "body: placeholder {{{name}}} must be a letter then letters or digits"
                        ));
                    }
                    depth = 0;
                }
                ('{' | '}', _) => return Err("body: braces must enclose placeholder names".into()),
                (c, 1) => name.push(c),
                _ => {}
            }
        }
        if depth != 0 {
            return Err("body: a { is not closed".into());
        }
        let placeholders = self.placeholders();
        if placeholders.len() > MAX_DEALER_PLACEHOLDERS {
            return Err(format!(
                "body: at most {MAX_DEALER_PLACEHOLDERS} placeholders"
            ));
        }
        if let Some(stray) = self
            .placeholder_types
            .keys()
            .find(|k| !placeholders.iter().any(|(n, _)| n == *k))
        {
            return Err(format!(
                "placeholderTypes: {stray} is not a placeholder of the body"
            ));
        }
        if self.category == Category::Marketing
            && !crate::opt_out_wording::carries_opt_out_wording(&self.body)
        {
            return Err(
                "a marketing template tells how to opt out, as a phrase: add \"Reply STOP to opt out.\" (or its Spanish or French equivalent)".into(),
            );
        }
        let (_, segments) = crate::sms::measure(&self.body);
        if segments > crate::sms::MAX_SEGMENTS {
            return Err(format!(
                "body: {segments} SMS segments; at most {}",
                crate::sms::MAX_SEGMENTS
            ));
        }
        Ok(())
    }

    /// Renders the body as a built-in would be: every placeholder checked and formatted.
    pub fn render(
        &self,
        variables: &Map<String, Value>,
        dealer_name: &str,
    ) -> Result<Rendered, RenderError> {
        let placeholders = self.placeholders();
        render_body(
            &self.body,
            placeholders.iter().map(|(n, k)| (n.as_str(), *k)),
            variables,
            dealer_name,
        )
    }
}

/// A template a send names: a built-in or the dealer's own.
#[derive(Debug, Clone)]
pub enum Resolved {
    BuiltIn(&'static Template),
    Dealer(DealerTemplate),
}

impl Resolved {
    pub fn name(&self) -> &str {
        match self {
            Resolved::BuiltIn(t) => t.name,
            Resolved::Dealer(t) => &t.name,
        }
    }
    pub fn version(&self) -> u32 {
        match self {
            Resolved::BuiltIn(t) => t.version,
            Resolved::Dealer(t) => t.version,
        }
    }
    pub fn category(&self) -> Category {
        match self {
            Resolved::BuiltIn(t) => t.category,
            Resolved::Dealer(t) => t.category,
        }
    }
    pub fn render(
        &self,
        variables: &Map<String, Value>,
        dealer_name: &str,
    ) -> Result<Rendered, RenderError> {
        match self {
            Resolved::BuiltIn(t) => t.render(variables, dealer_name),
            Resolved::Dealer(t) => t.render(variables, dealer_name),
        }
    }
}
