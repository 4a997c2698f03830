//! Template variables: each value checked against its placeholder's kind and formatted
//! (text, money, date, time, url), then substituted into the body.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use chrono::{Datelike, NaiveDate, NaiveTime, Timelike};
use serde_json::{Map, Value};

use super::parts::{PlaceholderKind, Rendered, DEALER_NAME, MAX_RENDERED_CHARS};
use crate::error::RenderError;
use crate::sms;

/// Longest text value, in characters.
pub(super) const MAX_TEXT_CHARS: usize = 200;
/// Longest URL, in characters.
pub(super) const MAX_URL_CHARS: usize = 200;
/// Largest money amount, in cents ($1,000,000.00).
pub(super) const MAX_MONEY_CENTS: u64 = 100_000_000;

/// Renders `body` with checked, formatted variables for `placeholders`;
/// `dealer_name` fills `{dealerName}`.
pub(super) fn render_body<'a>(
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

pub(super) fn invalid(name: &str, reason: impl Into<String>) -> RenderError {
    RenderError::InvalidVariable {
        name: name.to_owned(),
        reason: reason.into(),
    }
}

/// Replaces each `{name}` found in `values`; anything else is copied as is.
pub(super) fn substitute(body: &str, values: &[(&str, String)]) -> String {
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

pub(super) fn format_value(kind: PlaceholderKind, value: &Value) -> Result<String, String> {
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

pub(super) fn as_str(value: &Value) -> Result<&str, String> {
    value.as_str().ok_or_else(|| "expected a string".to_owned())
}

pub(super) fn check_text(value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => check_text_str(s),
        Value::Number(n) => check_text_str(&n.to_string()),
        _ => Err("expected a string".to_owned()),
    }
}

pub(super) fn check_text_str(s: &str) -> Result<String, String> {
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
pub(super) fn parse_money(s: &str) -> Result<u64, String> {
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
pub(super) fn format_money(cents: u64) -> String {
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
pub(super) fn parse_date(s: &str) -> Result<NaiveDate, String> {
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
pub(super) fn parse_time(s: &str) -> Result<NaiveTime, String> {
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

pub(super) fn check_url(s: &str) -> Result<&str, String> {
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
