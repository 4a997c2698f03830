//! Consent evidence: what a dealer shows a regulator, a carrier or a court when
//! consent is disputed. One row per ledger entry: when, which number and category,
//! what happened and through which channel, who did it, the disclosure the person saw
//! (with its version and SHA-256), the words the person used, and the id of the
//! message or request behind it. As JSON, or as CSV for a spreadsheet.
//!
//! Ledger entries never expire (the TCPA's limitation period is four years; the
//! table keeps them for as long as it exists).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::error::{DomainError, StoreError};
use crate::ids::DealerId;
use crate::ledger::{Actor, LedgerEntry};
use crate::ports::LedgerExport;

/// Most rows in one page of the dealer-wide export.
pub const MAX_EXPORT_PAGE: u32 = 1000;

/// One ledger entry as evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EvidenceRow {
    pub at: String,
    pub phone: String,
    pub category: &'static str,
    pub event: String,
    pub channel: &'static str,
    /// `staff`, `phone` or `carrier`.
    pub actor: &'static str,
    /// The staff user, for a change made in the portal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staff_user: Option<String>,
    /// The inbound message id (a reply), the approval request id (a code), or the
    /// carrier's message id and error (a block).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    /// The person's own words, for a change made by a reply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub words: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disclosure_version: Option<String>,
    /// The disclosure as the person was shown it (any code masked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disclosure_text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disclosure_sha256: Option<String>,
    pub entry_id: String,
}

impl From<&LedgerEntry> for EvidenceRow {
    fn from(e: &LedgerEntry) -> Self {
        let (actor, staff_user) = match &e.actor {
            Actor::Staff(user) => ("staff", Some(user.as_str().to_owned())),
            Actor::Phone => ("phone", None),
            Actor::Carrier => ("carrier", None),
        };
        let event = serde_json::to_value(e.event)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        EvidenceRow {
            at: e.at.to_rfc3339_opts(SecondsFormat::Millis, true),
            phone: e.phone.as_str().to_owned(),
            category: e.category.as_str(),
            event,
            channel: e.event.channel().as_str(),
            actor,
            staff_user,
            evidence: e.evidence.clone(),
            words: e.words.clone(),
            disclosure_version: e.disclosure_version.clone(),
            disclosure_text: e.disclosure.as_ref().map(|d| d.text.clone()),
            disclosure_sha256: e.disclosure.as_ref().map(|d| d.sha256.clone()),
            entry_id: e.id.clone(),
        }
    }
}

/// The CSV header, in column order.
pub const CSV_COLUMNS: [&str; 13] = [
    "at",
    "phone",
    "category",
    "event",
    "channel",
    "actor",
    "staff_user",
    "evidence",
    "words",
    "disclosure_version",
    "disclosure_sha256",
    "disclosure_text",
    "entry_id",
];

/// The rows as CSV (RFC 4180: CRLF line ends, fields quoted when they hold a comma,
/// quote or line break). Text that came from outside (the person's words, the
/// disclosure, evidence ids) is defused when a spreadsheet would run it as a formula.
pub fn to_csv(rows: &[EvidenceRow]) -> String {
    let mut out = CSV_COLUMNS.join(",");
    out.push_str("\r\n");
    for r in rows {
        let plain = |s: &str| field(s, false);
        let outside = |s: Option<&str>| field(s.unwrap_or(""), true);
        let cells = [
            plain(&r.at),
            // "+1..." is a formula (or a number that loses its +) to a spreadsheet: the
            // number is kept as text.
            outside(Some(&r.phone)),
            plain(r.category),
            plain(&r.event),
            plain(r.channel),
            plain(r.actor),
            outside(r.staff_user.as_deref()),
            outside(r.evidence.as_deref()),
            outside(r.words.as_deref()),
            outside(r.disclosure_version.as_deref()),
            outside(r.disclosure_sha256.as_deref()),
            outside(r.disclosure_text.as_deref()),
            plain(&r.entry_id),
        ];
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}

fn field(s: &str, from_outside: bool) -> String {
    // A cell starting with = + - @ (or a tab or CR) is a formula to a spreadsheet.
    let defused = if from_outside && s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if defused.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}

/// One page of the dealer's ledger for `[from, to)`.
pub async fn export(
    ledger: &dyn LedgerExport,
    dealer: &DealerId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: u32,
    cursor: Option<&str>,
) -> Result<(Vec<EvidenceRow>, Option<String>), DomainError> {
    if limit == 0 || limit > MAX_EXPORT_PAGE {
        return Err(DomainError::Invalid(format!(
            "limit must be 1 to {MAX_EXPORT_PAGE}"
        )));
    }
    if from >= to {
        return Err(DomainError::Invalid("from must be before to".into()));
    }
    let page = ledger
        .ledger_between(dealer, from, to, limit, cursor.filter(|c| !c.is_empty()))
        .await
        .map_err(|e| match e {
            StoreError::Corrupt { key, .. } if key == "cursor" => {
                DomainError::Invalid("the cursor is not valid".into())
            }
            other => other.into(),
        })?;
    Ok((
        page.entries.iter().map(EvidenceRow::from).collect(),
        page.next_cursor,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{ConsentEvent, Disclosure};
    use crate::{Category, PhoneNumber, StaffUserId};
    use chrono::TimeZone;

    fn entry() -> LedgerEntry {
        LedgerEntry::new(
            &DealerId::parse("d1").unwrap(),
            &PhoneNumber::from_e164("+12025550143").unwrap(),
            Category::Marketing,
            ConsentEvent::RevokedByReply,
            Actor::Phone,
            Utc.with_ymd_and_hms(2026, 6, 10, 16, 0, 0).unwrap(),
        )
        .with_evidence("SM123")
        .with_words("=HYPERLINK(\"http://x\"), STOP\nplease")
    }

    #[test]
    fn a_revocation_row_names_words_channel_and_actor() {
        let row = EvidenceRow::from(&entry());
        assert_eq!(row.event, "revoked-by-reply");
        assert_eq!(row.channel, "sms");
        assert_eq!(row.actor, "phone");
        assert_eq!(row.at, "2026-06-10T16:00:00.000Z");
        assert_eq!(
            row.words.as_deref(),
            Some("=HYPERLINK(\"http://x\"), STOP\nplease")
        );
    }

    #[test]
    fn csv_quotes_and_defuses_what_came_from_outside() {
        let mut grant = LedgerEntry::new(
            &DealerId::parse("d1").unwrap(),
            &PhoneNumber::from_e164("+12025550143").unwrap(),
            Category::Service,
            ConsentEvent::GrantedByCode,
            Actor::Staff(StaffUserId::parse("jane@x.example").unwrap()),
            Utc.with_ymd_and_hms(2026, 6, 10, 16, 0, 0).unwrap(),
        );
        grant.disclosure = Some(Disclosure::of("Sunrise Motors: code ******, reply STOP"));
        let csv = to_csv(&[EvidenceRow::from(&entry()), EvidenceRow::from(&grant)]);
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(lines[0], CSV_COLUMNS.join(","));
        // The phone is kept as text (a leading quote: "+1..." is a formula to a
        // spreadsheet); the person's words are defused and quoted.
        assert!(lines[1].starts_with("2026-06-10T16:00:00.000Z,'+12025550143,marketing,revoked-by-reply,sms,phone,,SM123,\"'=HYPERLINK(\"\"http://x\"\"), STOP\nplease\""), "{csv}");
        assert!(csv.contains(",staff,jane@x.example,"));
        assert!(csv.contains("\"Sunrise Motors: code ******, reply STOP\""));
        assert!(csv.ends_with("\r\n"));
    }
}
