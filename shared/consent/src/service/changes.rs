//! Events for the DMS from what changed in the table: a new ledger entry is a
//! `ConsentChanged`, a message whose status changed is a `MessageStatusChanged`.
//!
//! The publisher reads the table's change stream, so an event exists exactly when the
//! change was written (no second write to lose). Delivery is at least once: every event
//! carries a stable `id` (the ledger entry's id; the message id and the number of its
//! status changes) for consumers to de-duplicate on.

use serde_json::{json, Value};

use crate::ledger::LedgerEntry;
use crate::message::Message;
use crate::ports::BusEvent;

use super::replies::EVENT_SOURCE;

/// `detail-type` of a consent change.
pub const CONSENT_CHANGED: &str = "ConsentChanged";
/// `detail-type` of a message status change.
pub const MESSAGE_STATUS_CHANGED: &str = "MessageStatusChanged";
/// Version of both details' shape (docs/events/README.md).
pub const DETAIL_VERSION: u32 = 1;

/// One change of one item, as the stream reports it (images as plain JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// `INSERT`, `MODIFY` or `REMOVE`.
    pub event_name: String,
    /// The item's sort key (`LEDGER#...`, `MESSAGE`, ...).
    pub sort_key: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

/// Why a change could not be read (a corrupt image): logged and skipped, since
/// retrying cannot help.
#[derive(Debug, thiserror::Error)]
#[error("unreadable {what} image: {source}")]
pub struct Unreadable {
    what: &'static str,
    #[source]
    source: serde_json::Error,
}

/// The events a change makes (none for most changes).
pub fn events_for(change: &Change) -> Result<Vec<BusEvent>, Unreadable> {
    let Some(new) = &change.new else {
        return Ok(Vec::new()); // a removal says nothing to the DMS
    };
    if change.sort_key.starts_with("LEDGER#") && change.event_name == "INSERT" {
        let entry: LedgerEntry =
            serde_json::from_value(new.clone()).map_err(|source| Unreadable {
                what: "ledger entry",
                source,
            })?;
        return Ok(vec![consent_changed(&entry)]);
    }
    if change.sort_key == "MESSAGE" {
        let message: Message =
            serde_json::from_value(new.clone()).map_err(|source| Unreadable {
                what: "message",
                source,
            })?;
        let before = change
            .old
            .as_ref()
            .and_then(|o| o.get("status"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let now = serde_json::to_value(message.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned));
        if before == now {
            return Ok(Vec::new()); // attempts, index keys, ...: not a status change
        }
        return Ok(vec![message_status_changed(&message, before)]);
    }
    Ok(Vec::new())
}

fn consent_changed(e: &LedgerEntry) -> BusEvent {
    let event = serde_json::to_value(e.event).unwrap_or(Value::Null);
    BusEvent {
        source: EVENT_SOURCE.to_owned(),
        detail_type: CONSENT_CHANGED.to_owned(),
        detail: json!({
            "version": DETAIL_VERSION,
            "id": e.id,
            "dealerId": e.dealer_id,
            "phone": e.phone,
            "category": e.category,
            "change": if e.event.is_grant() { "grant" } else { "revoke" },
            "event": event,
            "channel": e.event.channel().as_str(),
            "at": e.at,
        }),
    }
    .with_sequence(e.sequence)
}

impl BusEvent {
    /// Adds the ledger entry's `sequence` (strictly increasing per dealer and number: a
    /// consumer orders a number's events by it); entries written before it have none.
    fn with_sequence(mut self, sequence: Option<u64>) -> Self {
        if let (Some(n), Some(detail)) = (sequence, self.detail.as_object_mut()) {
            detail.insert("sequence".into(), json!(n));
        }
        self
    }
}

fn message_status_changed(m: &Message, previous: Option<String>) -> BusEvent {
    let last = m.history.last();
    BusEvent {
        source: EVENT_SOURCE.to_owned(),
        detail_type: MESSAGE_STATUS_CHANGED.to_owned(),
        detail: json!({
            "version": DETAIL_VERSION,
            "id": format!("{}:{}", m.id, m.history.len()),
            "dealerId": m.dealer_id,
            "messageId": m.id,
            "contactId": m.contact_id,
            "accountId": m.account_id,
            "dealId": m.deal_id,
            "kind": m.kind,
            "category": m.category,
            "template": m.template,
            "status": m.status,
            "previousStatus": previous,
            "reason": m.status_reason,
            "at": last.map(|c| c.at).unwrap_or(m.created_at),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Actor, ConsentEvent};
    use crate::{Category, DealerId, PhoneNumber, StaffUserId};
    use chrono::TimeZone;

    fn entry() -> LedgerEntry {
        LedgerEntry::new(
            &DealerId::parse("d1").unwrap(),
            &PhoneNumber::from_e164("+12025550143").unwrap(),
            Category::Marketing,
            ConsentEvent::RevokedByReply,
            Actor::Phone,
            chrono::Utc.with_ymd_and_hms(2026, 6, 10, 16, 0, 0).unwrap(),
        )
    }

    #[test]
    fn a_new_ledger_entry_is_a_consent_change_with_its_channel() {
        let e = entry();
        let change = Change {
            event_name: "INSERT".into(),
            sort_key: format!("LEDGER#{}", e.id),
            old: None,
            new: Some(serde_json::to_value(&e).unwrap()),
        };
        let events = events_for(&change).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].detail_type, CONSENT_CHANGED);
        let d = &events[0].detail;
        assert_eq!(
            (d["change"].as_str(), d["channel"].as_str()),
            (Some("revoke"), Some("sms"))
        );
        assert_eq!(d["id"], json!(e.id));
        // A staff grant is a grant through the portal.
        let mut grant = entry();
        grant.event = ConsentEvent::GrantedByCode;
        grant.actor = Actor::Staff(StaffUserId::parse("s-1").unwrap());
        let change = Change {
            new: Some(serde_json::to_value(&grant).unwrap()),
            ..change
        };
        let d = &events_for(&change).unwrap()[0].detail;
        assert_eq!(
            (d["change"].as_str(), d["channel"].as_str()),
            (Some("grant"), Some("portal"))
        );
    }

    #[test]
    fn only_a_status_change_of_a_message_is_an_event() {
        let message = crate::contract::sample_message();
        let image = serde_json::to_value(&message).unwrap();
        let mut sent = image.clone();
        sent["status"] = json!("sent");
        let modify = |old: Value, new: Value| Change {
            event_name: "MODIFY".into(),
            sort_key: "MESSAGE".into(),
            old: Some(old),
            new: Some(new),
        };
        let events = events_for(&modify(image.clone(), sent.clone())).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].detail["status"], "sent");
        assert_eq!(events[0].detail["previousStatus"], image["status"]);
        // Same status (attempts, index keys): nothing
        assert!(events_for(&modify(sent.clone(), sent.clone()))
            .unwrap()
            .is_empty());
        // Other items and removals: nothing
        let other = Change {
            sort_key: "CONSENT".into(),
            ..modify(image.clone(), sent.clone())
        };
        assert!(events_for(&other).unwrap().is_empty());
        let removed = Change {
            event_name: "REMOVE".into(),
            new: None,
            ..modify(image, sent)
        };
        assert!(events_for(&removed).unwrap().is_empty());
        // A corrupt image is refused, not published
        let corrupt = modify(json!({"status": "queued"}), json!({"status": "sent"}));
        assert!(events_for(&corrupt).is_err());
    }
}
