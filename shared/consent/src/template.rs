//! The template catalog and rendering.
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

use std::collections::BTreeSet;
use std::fmt::Write as _;

use chrono::{Datelike, NaiveDate, NaiveTime, Timelike};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::sms::{self, Encoding};
use crate::Category;

/// The placeholder the system fills with the dealer's name.
pub const DEALER_NAME: &str = "dealerName";

/// Longest rendered body, in characters: 6 GSM-7 segments of 153.
pub const MAX_RENDERED_CHARS: usize = 918;

/// Longest text value, in characters.
const MAX_TEXT_CHARS: usize = 200;
/// Longest URL, in characters.
const MAX_URL_CHARS: usize = 200;
/// Largest money amount, in cents ($1,000,000.00).
const MAX_MONEY_CENTS: u64 = 100_000_000;

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

/// A named, versioned message template of one category.
#[derive(Debug, Serialize)]
pub struct Template {
    /// Kebab-case id, e.g. `auto-pay-failure`.
    pub name: &'static str,
    /// Human title, e.g. `Auto Pay Failure`.
    pub title: &'static str,
    pub version: u32,
    pub category: Category,
    /// The text with `{placeholder}`s, e.g. `{dealerName}: ... {amount} ...`.
    pub body: &'static str,
    /// The variables a caller supplies (not `dealerName`).
    pub placeholders: &'static [Placeholder],
}

/// A rendered text, ready to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rendered {
    pub body: String,
    pub encoding: Encoding,
    pub segments: u32,
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

const fn ph(name: &'static str, kind: PlaceholderKind) -> Placeholder {
    Placeholder { name, kind }
}

use PlaceholderKind::{Date, Money, Text, Time, Url};

static CATALOG: [Template; 7] = [
    Template {
        name: "auto-pay-failure",
        title: "Auto Pay Failure",
        version: 1,
        category: Category::Accounting,
        body: "{dealerName}: Hi {firstName}, your automatic payment of {amount} due {dueDate} \
               did not go through. Please update your payment method at {paymentUrl} or call \
               us. Reply STOP to opt out.",
        placeholders: &[
            ph("firstName", Text),
            ph("amount", Money),
            ph("dueDate", Date),
            ph("paymentUrl", Url),
        ],
    },
    Template {
        name: "past-due-alert",
        title: "Past Due Alert",
        version: 1,
        category: Category::Accounting,
        body: "{dealerName}: Hi {firstName}, your account is past due. A payment of {amount} \
               was due {dueDate}. Pay at {paymentUrl} or call us. Reply STOP to opt out.",
        placeholders: &[
            ph("firstName", Text),
            ph("amount", Money),
            ph("dueDate", Date),
            ph("paymentUrl", Url),
        ],
    },
    Template {
        name: "text-to-pay-reminder",
        title: "Text to Pay Reminder",
        version: 1,
        category: Category::Accounting,
        body: "{dealerName}: Hi {firstName}, your payment of {amount} is due {dueDate}. \
               Reply PAY to pay {amount} now. Reply STOP to opt out.",
        placeholders: &[
            ph("firstName", Text),
            ph("amount", Money),
            ph("dueDate", Date),
        ],
    },
    Template {
        name: "payment-received",
        title: "Payment Received",
        version: 1,
        category: Category::Accounting,
        body: "{dealerName}: Thank you, {firstName}! We received your payment of {amount} on \
               {paymentDate}. Reply STOP to opt out.",
        placeholders: &[
            ph("firstName", Text),
            ph("amount", Money),
            ph("paymentDate", Date),
        ],
    },
    Template {
        name: "service-reminder",
        title: "Service Reminder",
        version: 1,
        category: Category::Service,
        body: "{dealerName}: Hi {firstName}, your {vehicle} is due for {serviceName}. Book at \
               {bookingUrl} or reply to this text. Reply STOP to opt out.",
        placeholders: &[
            ph("firstName", Text),
            ph("vehicle", Text),
            ph("serviceName", Text),
            ph("bookingUrl", Url),
        ],
    },
    Template {
        name: "appointment-confirmation",
        title: "Appointment Confirmation",
        version: 1,
        category: Category::Service,
        body: "{dealerName}: Hi {firstName}, your {vehicle} service appointment is confirmed \
               for {appointmentDate} at {appointmentTime}. Reply to reschedule. Reply STOP to \
               opt out.",
        placeholders: &[
            ph("firstName", Text),
            ph("vehicle", Text),
            ph("appointmentDate", Date),
            ph("appointmentTime", Time),
        ],
    },
    Template {
        name: "marketing-offer",
        title: "Marketing Offer",
        version: 1,
        category: Category::Marketing,
        body: "{dealerName}: {offer} Offer ends {endDate}. Details: {offerUrl} Msg & data \
               rates may apply. Reply STOP to opt out.",
        placeholders: &[ph("offer", Text), ph("endDate", Date), ph("offerUrl", Url)],
    },
];

/// Every template, in a stable order.
pub fn catalog() -> &'static [Template] {
    &CATALOG
}

/// The template with this kebab-case name.
pub fn find(name: &str) -> Option<&'static Template> {
    CATALOG.iter().find(|t| t.name == name)
}

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

impl Template {
    /// The names of the variables a caller must supply, in template order.
    pub fn placeholder_names(&self) -> impl Iterator<Item = &'static str> {
        self.placeholders.iter().map(|p| p.name)
    }

    /// Renders the body with checked, formatted variables; `dealer_name` fills
    /// `{dealerName}`.
    pub fn render(
        &self,
        variables: &Map<String, Value>,
        dealer_name: &str,
    ) -> Result<Rendered, RenderError> {
        render_body(
            self.body,
            self.placeholders.iter().map(|p| (p.name, p.kind)),
            variables,
            dealer_name,
        )
    }
}

/// Renders `body` with checked, formatted variables for `placeholders`;
/// `dealer_name` fills `{dealerName}`.
fn render_body<'a>(
    body: &str,
    placeholders: impl Iterator<Item = (&'a str, PlaceholderKind)> + Clone,
    variables: &Map<String, Value>,
    dealer_name: &str,
) -> Result<Rendered, RenderError> {
    let names = || placeholders.clone().map(|(n, _)| n);
    let missing: BTreeSet<&str> = names()
        .filter(|n| variables.get(*n).is_none_or(Value::is_null))
        .collect();
    if !missing.is_empty() {
        return Err(RenderError::MissingVariables(
            missing.into_iter().map(str::to_owned).collect(),
        ));
    }
    let unknown: BTreeSet<&str> = variables
        .keys()
        .map(String::as_str)
        .filter(|k| !names().any(|n| n == *k))
        .collect();
    if !unknown.is_empty() {
        return Err(RenderError::UnknownVariables(
            unknown.into_iter().map(str::to_owned).collect(),
        ));
    }

    let dealer = check_text_str(dealer_name).map_err(|reason| invalid(DEALER_NAME, reason))?;
    let mut values: Vec<(&str, String)> = Vec::with_capacity(8);
    values.push((DEALER_NAME, dealer));
    for (name, kind) in placeholders {
        let value = variables.get(name).unwrap_or(&Value::Null);
        let formatted = format_value(kind, value).map_err(|reason| invalid(name, reason))?;
        values.push((name, formatted));
    }

    let body = substitute(body, &values);
    // Bytes bound characters from above: count characters only when it can matter.
    if body.len() > MAX_RENDERED_CHARS && body.chars().count() > MAX_RENDERED_CHARS {
        return Err(RenderError::TooLong {
            max: MAX_RENDERED_CHARS,
        });
    }
    let (encoding, segments) = sms::measure(&body);
    Ok(Rendered {
        encoding,
        segments,
        body,
    })
}

fn invalid(name: &str, reason: impl Into<String>) -> RenderError {
    RenderError::InvalidVariable {
        name: name.to_owned(),
        reason: reason.into(),
    }
}

/// Replaces each `{name}` found in `values`; anything else is copied as is.
fn substitute(body: &str, values: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(body.len() + 64);
    let mut rest = body;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}').and_then(|close| {
            let name = &after[..close];
            values
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (v, close))
        }) {
            Some((value, close)) => {
                out.push_str(value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn format_value(kind: PlaceholderKind, value: &Value) -> Result<String, String> {
    match kind {
        PlaceholderKind::Text => check_text(value),
        PlaceholderKind::Money => {
            let cents = match value {
                Value::Number(n) => parse_money(&n.to_string()),
                Value::String(s) => parse_money(s),
                _ => Err("expected a number or a string like \"1,234.50\"".to_owned()),
            }?;
            Ok(format_money(cents))
        }
        // Formatted by hand: chrono's strftime parses its pattern on every call.
        PlaceholderKind::Date => {
            let date = as_str(value).and_then(parse_date)?;
            const MONTHS: [&str; 12] = [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ];
            let month = MONTHS[date.month0() as usize];
            Ok(format!("{month} {}, {}", date.day(), date.year()))
        }
        PlaceholderKind::Time => {
            let time = as_str(value).and_then(parse_time)?;
            let (pm, hour) = time.hour12();
            let half = if pm { "PM" } else { "AM" };
            Ok(format!("{hour}:{:02} {half}", time.minute()))
        }
        PlaceholderKind::Url => as_str(value).and_then(check_url).map(str::to_owned),
    }
}

fn as_str(value: &Value) -> Result<&str, String> {
    value.as_str().ok_or_else(|| "expected a string".to_owned())
}

fn check_text(value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => check_text_str(s),
        Value::Number(n) => check_text_str(&n.to_string()),
        _ => Err("expected a string".to_owned()),
    }
}

fn check_text_str(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if s.len() > MAX_TEXT_CHARS && s.chars().count() > MAX_TEXT_CHARS {
        return Err(format!("longer than {MAX_TEXT_CHARS} characters"));
    }
    if s.chars().any(char::is_control) {
        return Err("must not contain control characters or line breaks".to_owned());
    }
    if s.chars().any(crate::sms::is_format) {
        return Err(
            "must not contain invisible format characters (Unicode Cf: bidirectional overrides, zero-width characters)"
                .to_owned(),
        );
    }
    if s.bytes().any(|b| b == b'{' || b == b'}') {
        return Err("must not contain { or }".to_owned());
    }
    Ok(s.to_owned())
}

/// Parses `123`, `123.4`, `123.45`, `$1,234.50` into cents.
fn parse_money(s: &str) -> Result<u64, String> {
    let s = s.trim();
    if s.starts_with('-') || s.starts_with("$-") {
        return Err("must not be negative".to_owned());
    }
    let digits = s.strip_prefix('$').unwrap_or(s);
    let not_amount = || "expected an amount like 1234.50 or $1,234.50".to_owned();
    let (whole, frac) = match digits.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (digits, None),
    };
    let cents = match frac {
        None => 0,
        Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => match f.len() {
            1 => u64::from(f.as_bytes()[0] - b'0') * 10,
            2 => u64::from(f.as_bytes()[0] - b'0') * 10 + u64::from(f.as_bytes()[1] - b'0'),
            _ => return Err("at most 2 decimal places".to_owned()),
        },
        Some(_) => return Err(not_amount()),
    };
    let mut groups = whole.split(',');
    let first = groups.next().unwrap_or("");
    let grouped = whole.contains(',');
    if first.is_empty()
        || !first.bytes().all(|b| b.is_ascii_digit())
        || (grouped && first.len() > 3)
    {
        return Err(not_amount());
    }
    let mut dollars = String::with_capacity(whole.len());
    dollars.push_str(first);
    for g in groups {
        if g.len() != 3 || !g.bytes().all(|b| b.is_ascii_digit()) {
            return Err(not_amount());
        }
        dollars.push_str(g);
    }
    let dollars = dollars.trim_start_matches('0');
    let too_large = || "must not be more than $1,000,000.00".to_owned();
    if dollars.len() > 7 {
        return Err(too_large());
    }
    let dollars: u64 = if dollars.is_empty() {
        0
    } else {
        dollars.parse().map_err(|_| not_amount())?
    };
    let total = dollars * 100 + cents;
    if total > MAX_MONEY_CENTS {
        return Err(too_large());
    }
    Ok(total)
}

/// `$1,234.50`.
fn format_money(cents: u64) -> String {
    let dollars = (cents / 100).to_string();
    let mut out = String::with_capacity(dollars.len() + 6);
    out.push('$');
    for (i, c) in dollars.chars().enumerate() {
        if i > 0 && (dollars.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    let _ = write!(out, ".{:02}", cents % 100);
    out
}

/// Exactly `YYYY-MM-DD`.
fn parse_date(s: &str) -> Result<NaiveDate, String> {
    let b = s.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    let bad = || "expected a date as YYYY-MM-DD".to_owned();
    if !shape {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().map_err(|_| bad());
    let year = i32::try_from(num(0..4)?).map_err(|_| bad())?;
    NaiveDate::from_ymd_opt(year, num(5..7)?, num(8..10)?)
        .ok_or_else(|| "not a calendar date".to_owned())
}

/// Exactly `HH:MM`, 24-hour.
fn parse_time(s: &str) -> Result<NaiveTime, String> {
    let b = s.as_bytes();
    let bad = || "expected a 24-hour time as HH:MM".to_owned();
    if b.len() != 5
        || b[2] != b':'
        || !b
            .iter()
            .enumerate()
            .all(|(i, c)| i == 2 || c.is_ascii_digit())
    {
        return Err(bad());
    }
    let h = s[0..2].parse().map_err(|_| bad())?;
    let m = s[3..5].parse().map_err(|_| bad())?;
    NaiveTime::from_hms_opt(h, m, 0).ok_or_else(bad)
}

fn check_url(s: &str) -> Result<&str, String> {
    let Some(rest) = s.strip_prefix("https://") else {
        return Err("must start with https://".to_owned());
    };
    if s.chars().count() > MAX_URL_CHARS {
        return Err(format!("longer than {MAX_URL_CHARS} characters"));
    }
    if rest.is_empty() || rest.starts_with(['/', '.', ':']) {
        return Err("must name a host after https://".to_owned());
    }
    if !s.chars().all(|c| c.is_ascii_graphic())
        || s.contains(['{', '}', '<', '>', '"', '\\', '^', '`', '|'])
    {
        return Err(
            "must not contain whitespace or characters that are not allowed in a URL".to_owned(),
        );
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn vars(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!("test helper takes an object"),
        }
    }

    fn template(name: &str) -> &'static Template {
        find(name).unwrap()
    }

    /// Realistic values for every placeholder name used in the catalog.
    fn sample(name: &str) -> Value {
        match name {
            "firstName" => json!("Maria"),
            "amount" => json!("412.37"),
            "dueDate" | "paymentDate" => json!("2026-12-03"),
            "endDate" => json!("2026-12-31"),
            "paymentUrl" => json!("https://pay.sunrisemotors.example/p/7Hq2x"),
            "bookingUrl" => json!("https://sunrisemotors.example/book"),
            "offerUrl" => json!("https://sunrisemotors.example/o/winter"),
            "vehicle" => json!("2021 Honda CR-V"),
            "serviceName" => json!("an oil change and tire rotation"),
            "appointmentDate" => json!("2026-12-08"),
            "appointmentTime" => json!("14:30"),
            "offer" => {
                json!("0% APR for 60 months on new 2026 Civics, plus a free first oil change.")
            }
            other => panic!("no sample for {other}"),
        }
    }

    fn all_samples(t: &Template) -> Map<String, Value> {
        t.placeholder_names()
            .map(|n| (n.to_owned(), sample(n)))
            .collect()
    }

    fn body_placeholders(body: &str) -> BTreeSet<&str> {
        body.split('{')
            .skip(1)
            .filter_map(|s| s.split_once('}').map(|(n, _)| n))
            .collect()
    }

    // ---- catalog ---------------------------------------------------------------

    #[test]
    fn catalog_is_consistent() {
        let mut names = BTreeSet::new();
        for t in catalog() {
            // GIVEN each template THEN its id is unique kebab-case and its title matches
            assert!(names.insert(t.name), "duplicate {}", t.name);
            assert!(
                t.name.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
                "{}",
                t.name
            );
            assert_eq!(t.title.to_lowercase().replace(' ', "-"), t.name);
            assert!(t.version >= 1);
            // AND it starts with the dealer's name
            assert!(t.body.starts_with("{dealerName}: "), "{}", t.name);
            // AND its body uses exactly its placeholders plus dealerName
            let mut declared: BTreeSet<&str> = t.placeholder_names().collect();
            assert_eq!(
                declared.len(),
                t.placeholders.len(),
                "{} repeats a placeholder",
                t.name
            );
            assert!(!declared.contains(DEALER_NAME));
            declared.insert(DEALER_NAME);
            assert_eq!(body_placeholders(t.body), declared, "{}", t.name);
            // AND it carries opt-out wording
            assert!(t.body.ends_with("Reply STOP to opt out."), "{}", t.name);
        }
        assert_eq!(
            names,
            BTreeSet::from([
                "auto-pay-failure",
                "past-due-alert",
                "text-to-pay-reminder",
                "payment-received",
                "service-reminder",
                "appointment-confirmation",
                "marketing-offer",
            ])
        );
    }

    #[test]
    fn every_marketing_template_carries_stop_wording() {
        let marketing: Vec<_> = catalog()
            .iter()
            .filter(|t| t.category == Category::Marketing)
            .collect();
        assert!(!marketing.is_empty());
        for t in marketing {
            assert!(t.body.contains("Reply STOP to opt out"), "{}", t.name);
        }
    }

    #[test]
    fn categories_are_as_designed() {
        for (name, category) in [
            ("auto-pay-failure", Category::Accounting),
            ("past-due-alert", Category::Accounting),
            ("text-to-pay-reminder", Category::Accounting),
            ("payment-received", Category::Accounting),
            ("service-reminder", Category::Service),
            ("appointment-confirmation", Category::Service),
            ("marketing-offer", Category::Marketing),
        ] {
            assert_eq!(template(name).category, category, "{name}");
        }
        assert!(find("no-such-template").is_none());
    }

    #[test]
    fn text_to_pay_invites_a_pay_reply() {
        let t = template("text-to-pay-reminder");
        assert!(t.body.contains("Reply PAY to pay {amount} now"));
        let r = t.render(&all_samples(t), "Sunrise Motors").unwrap();
        assert_eq!(
            r.body,
            "Sunrise Motors: Hi Maria, your payment of $412.37 is due Dec 3, 2026. \
             Reply PAY to pay $412.37 now. Reply STOP to opt out."
        );
        assert_eq!(r.encoding, Encoding::Gsm7);
        assert_eq!(r.segments, 1);
    }

    #[test]
    fn every_template_renders_short_with_realistic_values() {
        for t in catalog() {
            // GIVEN realistic values WHEN rendered
            let r = t
                .render(&all_samples(t), "Sunrise Motors of Springfield")
                .unwrap();
            // THEN no braces remain, GSM-7, at most 2 segments
            assert!(!r.body.contains(['{', '}']), "{}", r.body);
            assert!(r.body.starts_with("Sunrise Motors of Springfield: "));
            assert_eq!(r.encoding, Encoding::Gsm7, "{}", t.name);
            assert!(r.segments <= 2, "{}: {} segments", t.name, r.segments);
            assert_eq!(r.segments, sms::segments(&r.body));
        }
    }

    #[test]
    fn appointment_confirmation_formats_date_and_time() {
        let t = template("appointment-confirmation");
        let r = t.render(&all_samples(t), "Sunrise Motors").unwrap();
        assert!(
            r.body.contains("confirmed for Dec 8, 2026 at 2:30 PM."),
            "{}",
            r.body
        );
    }

    #[test]
    fn serializes_for_the_catalog_endpoint() {
        let v = serde_json::to_value(template("text-to-pay-reminder")).unwrap();
        assert_eq!(v["name"], "text-to-pay-reminder");
        assert_eq!(v["title"], "Text to Pay Reminder");
        assert_eq!(v["category"], "accounting");
        assert_eq!(
            v["placeholders"][1],
            json!({"name": "amount", "kind": "money"})
        );
        let r = serde_json::to_value(Rendered {
            body: "x".into(),
            encoding: Encoding::Ucs2,
            segments: 1,
        })
        .unwrap();
        assert_eq!(r, json!({"body": "x", "encoding": "ucs2", "segments": 1}));
    }

    // ---- errors ----------------------------------------------------------------

    #[test]
    fn reports_every_missing_variable_sorted() {
        // GIVEN only firstName WHEN rendering auto-pay-failure
        let t = template("auto-pay-failure");
        let err = t
            .render(&vars(json!({"firstName": "Maria"})), "Sunrise")
            .unwrap_err();
        // THEN all three others are reported, sorted
        assert_eq!(
            err,
            RenderError::MissingVariables(vec![
                "amount".into(),
                "dueDate".into(),
                "paymentUrl".into()
            ])
        );
        assert_eq!(
            err.to_string(),
            "missing template variables: amount, dueDate, paymentUrl"
        );
    }

    #[test]
    fn null_counts_as_missing_not_empty() {
        let t = template("text-to-pay-reminder");
        let mut v = all_samples(t);
        v.insert("amount".into(), Value::Null);
        assert_eq!(
            t.render(&v, "Sunrise"),
            Err(RenderError::MissingVariables(vec!["amount".into()]))
        );
    }

    #[test]
    fn reports_every_unknown_variable_and_refuses_caller_dealer_name() {
        // GIVEN all variables plus dealerName and a typo
        let t = template("text-to-pay-reminder");
        let mut v = all_samples(t);
        v.insert("dealerName".into(), json!("Evil Motors"));
        v.insert("amout".into(), json!("1.00"));
        // THEN both are unknown, sorted
        let err = t.render(&v, "Sunrise").unwrap_err();
        assert_eq!(
            err,
            RenderError::UnknownVariables(vec!["amout".into(), "dealerName".into()])
        );
        assert!(err
            .to_string()
            .contains("dealerName is filled in by the system"));
    }

    #[test]
    fn invalid_values_name_the_variable_not_the_value() {
        let t = template("text-to-pay-reminder");
        let mut v = all_samples(t);
        v.insert("dueDate".into(), json!("12/03/2026"));
        let err = t.render(&v, "Sunrise").unwrap_err();
        assert!(matches!(&err, RenderError::InvalidVariable { name, .. } if name == "dueDate"));
        assert!(!err.to_string().contains("12/03"));
        assert_eq!(
            err.to_string(),
            "invalid value for template variable dueDate: expected a date as YYYY-MM-DD"
        );
    }

    #[test]
    fn empty_dealer_name_is_refused() {
        let t = template("text-to-pay-reminder");
        assert!(matches!(
            t.render(&all_samples(t), "  "),
            Err(RenderError::InvalidVariable { name, .. }) if name == DEALER_NAME
        ));
    }

    #[test]
    fn too_long_bodies_are_refused() {
        // GIVEN a template with five 200-character text placeholders
        static LONG: Template = Template {
            name: "long",
            title: "Long",
            version: 1,
            category: Category::Service,
            body: "{dealerName}: {a} {b} {c} {d} {e}",
            placeholders: &[
                ph("a", Text),
                ph("b", Text),
                ph("c", Text),
                ph("d", Text),
                ph("e", Text),
            ],
        };
        let filled = |n: usize| -> Map<String, Value> {
            ["a", "b", "c", "d", "e"]
                .iter()
                .map(|k| (k.to_string(), json!("x".repeat(n))))
                .collect()
        };
        // WHEN filled to 200 each (1,000+ characters) THEN TooLong
        let err = LONG.render(&filled(200), "D").unwrap_err();
        assert_eq!(err, RenderError::TooLong { max: 918 });
        assert!(err.to_string().contains("918"));
        // WHEN 182 each: 3 + 5*182 + 4 = 917 characters THEN fine, 6 segments
        let ok = LONG.render(&filled(182), "D").unwrap();
        assert_eq!(ok.body.chars().count(), 917);
        assert_eq!(ok.segments, 6);
    }

    // ---- kinds -----------------------------------------------------------------

    fn money(v: Value) -> Result<String, String> {
        format_value(PlaceholderKind::Money, &v)
    }

    #[test]
    fn money_accepts_numbers_and_written_amounts() {
        for (input, expected) in [
            (json!(123.45), "$123.45"),
            (json!(1234), "$1,234.00"),
            (json!(0.5), "$0.50"),
            (json!(0), "$0.00"),
            (json!("123.45"), "$123.45"),
            (json!("$1,234.5"), "$1,234.50"),
            (json!(" $1,234.50 "), "$1,234.50"),
            (json!("1000000"), "$1,000,000.00"),
            (json!("$999,999.99"), "$999,999.99"),
            (json!("007.10"), "$7.10"),
        ] {
            assert_eq!(money(input.clone()).as_deref(), Ok(expected), "{input}");
        }
    }

    #[test]
    fn money_refuses_negative_huge_and_sloppy_amounts() {
        for input in [
            json!(-5),
            json!("-5.00"),
            json!("$-5"),
            json!("12.345"),
            json!(12.345),
            json!("1000000.01"),
            json!(1_000_001),
            json!("99999999999999999999999"),
            json!(1e300),
            json!("1,23"),
            json!("1234,567"),
            json!("12,3456"),
            json!(".50"),
            json!("12."),
            json!("abc"),
            json!("$"),
            json!(""),
            json!("1 000"),
            json!(true),
            json!(["1"]),
        ] {
            assert!(money(input.clone()).is_err(), "{input}");
        }
        assert_eq!(
            money(json!("12.345")),
            Err("at most 2 decimal places".into())
        );
        assert_eq!(money(json!(-1)), Err("must not be negative".into()));
    }

    #[test]
    fn dates_are_strict_and_rendered_unambiguously() {
        let date = |s: &str| format_value(PlaceholderKind::Date, &json!(s));
        assert_eq!(date("2026-12-03").as_deref(), Ok("Dec 3, 2026"));
        assert_eq!(date("2027-01-31").as_deref(), Ok("Jan 31, 2027"));
        for bad in [
            "2026-02-30",
            "12/03/2026",
            "2026-1-3",
            "2026-12-03T00:00",
            "",
            "abcd-ef-gh",
            "+202-12-03",
        ] {
            assert!(date(bad).is_err(), "{bad}");
        }
        assert!(format_value(PlaceholderKind::Date, &json!(20261203)).is_err());
    }

    #[test]
    fn times_are_24_hour_and_rendered_12_hour() {
        let time = |s: &str| format_value(PlaceholderKind::Time, &json!(s));
        assert_eq!(time("14:30").as_deref(), Ok("2:30 PM"));
        assert_eq!(time("00:05").as_deref(), Ok("12:05 AM"));
        assert_eq!(time("12:00").as_deref(), Ok("12:00 PM"));
        assert_eq!(time("09:00").as_deref(), Ok("9:00 AM"));
        for bad in ["24:00", "9:30", "12:60", "2:30 PM", "12-30", "", "+1:30"] {
            assert!(time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_must_be_https_short_and_without_spaces() {
        let url = |s: &str| format_value(PlaceholderKind::Url, &json!(s));
        assert_eq!(
            url("https://pay.example.com/p/7Hq2x?a=1").as_deref(),
            Ok("https://pay.example.com/p/7Hq2x?a=1")
        );
        let long = format!("https://example.com/{}", "a".repeat(181));
        assert_eq!(long.len(), 201);
        for bad in [
            "http://example.com",
            "https://",
            "https:///path",
            "https://exa mple.com",
            "https://example.com/\n",
            "https://example.com/{x}",
            "https://exämple.com",
            "ftp://example.com",
            "example.com",
            long.as_str(),
        ] {
            assert!(url(bad).is_err(), "{bad}");
        }
        assert!(url(&long[..200]).is_ok());
    }

    #[test]
    fn text_is_trimmed_and_checked() {
        let text = |v: Value| format_value(PlaceholderKind::Text, &v);
        assert_eq!(text(json!("  Maria ")).as_deref(), Ok("Maria"));
        assert_eq!(text(json!(2021)).as_deref(), Ok("2021"));
        assert_eq!(text(json!("x".repeat(200))).map(|s| s.len()), Ok(200));
        for bad in [
            json!(""),
            json!("   "),
            json!("x".repeat(201)),
            json!("line\nbreak"),
            json!("bell\u{7}"),
            json!("{firstName}"),
            json!(null),
            json!({"a": 1}),
        ] {
            assert!(text(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn substitution_leaves_unknown_braces_alone() {
        let values = [("a", "1".to_owned())];
        assert_eq!(substitute("{a} {b} { {a", &values), "1 {b} { {a");
        assert_eq!(substitute("no braces", &values), "no braces");
    }

    // ---- properties ------------------------------------------------------------

    fn arb_value(kind: PlaceholderKind) -> BoxedStrategy<Value> {
        match kind {
            Text => "[A-Za-z0-9][A-Za-z0-9 ,.'&-]{0,60}"
                .prop_map(Value::from)
                .boxed(),
            Money => prop_oneof![
                (0u64..=MAX_MONEY_CENTS).prop_map(|c| json!(format!("{}.{:02}", c / 100, c % 100))),
                (0u64..=MAX_MONEY_CENTS).prop_map(|c| json!(format_money(c))),
                (0u64..=1_000_000).prop_map(|d| json!(d)),
            ]
            .boxed(),
            Date => (0i64..20_000)
                .prop_map(|d| {
                    let date =
                        NaiveDate::from_ymd_opt(2000, 1, 1).unwrap() + chrono::Days::new(d as u64);
                    json!(date.format("%Y-%m-%d").to_string())
                })
                .boxed(),
            Time => (0u32..24, 0u32..60)
                .prop_map(|(h, m)| json!(format!("{h:02}:{m:02}")))
                .boxed(),
            Url => "https://[a-z]{1,20}\\.example/[A-Za-z0-9/?=&._-]{0,60}"
                .prop_map(Value::from)
                .boxed(),
        }
    }

    fn arb_valid_case() -> impl Strategy<Value = (usize, Map<String, Value>, String)> {
        (0..catalog().len()).prop_flat_map(|i| {
            let fields: Vec<_> = catalog()[i]
                .placeholders
                .iter()
                .map(|p| arb_value(p.kind).prop_map(move |v| (p.name.to_owned(), v)))
                .collect();
            (Just(i), fields, "[A-Za-z][A-Za-z0-9 &'.-]{0,40}")
                .prop_map(|(i, fields, dealer)| (i, fields.into_iter().collect(), dealer))
        })
    }

    proptest! {
        #[test]
        fn render_never_panics_on_arbitrary_string_maps(
            i in 0..catalog().len(),
            entries in prop::collection::vec(
                (prop_oneof![
                    prop::sample::select(vec![
                        "firstName", "amount", "dueDate", "paymentDate", "endDate", "paymentUrl",
                        "bookingUrl", "offerUrl", "vehicle", "serviceName", "appointmentDate",
                        "appointmentTime", "offer", "dealerName",
                    ]).prop_map(str::to_owned),
                    "\\PC{0,12}",
                ], "\\PC{0,250}"),
                0..16,
            ),
            dealer in "\\PC{0,60}",
        ) {
            let map: Map<String, Value> = entries.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
            let _ = catalog()[i].render(&map, &dealer);
        }

        #[test]
        fn valid_values_render_without_leftover_braces(case in arb_valid_case()) {
            let (i, vars, dealer) = case;
            let t = &catalog()[i];
            let r = t.render(&vars, &dealer);
            prop_assert!(r.is_ok(), "{:?}", r);
            let r = r.unwrap();
            prop_assert!(!r.body.contains('{') && !r.body.contains('}'), "{}", r.body);
            prop_assert!(r.body.starts_with(dealer.trim()));
            prop_assert_eq!(r.segments, sms::segments(&r.body));
            prop_assert_eq!(r.encoding, sms::encoding(&r.body));
        }

        #[test]
        fn money_round_trips_through_its_rendering(cents in 0u64..=MAX_MONEY_CENTS) {
            let shown = format_money(cents);
            prop_assert_eq!(parse_money(&shown), Ok(cents));
        }
    }
}
