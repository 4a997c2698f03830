//! When a text may go: quiet hours (with state holidays) and, where the recipient's
//! state caps a category per 24 hours, the texts already counted against the cap.
//! Acceptance plans a text's time with it; delivery checks it again at the moment of
//! sending.

use chrono::{DateTime, Utc};

use crate::error::StoreError;
use crate::frequency;
use crate::ids::{DealerId, MessageId};
use crate::message::{Message, MessageStatus, StatusReason};
use crate::phone::PhoneNumber;
use crate::ports::{CapBookWrite, MessageReader};
use crate::quiet_hours::QuietHours;

/// How often an accept or a delivery claim that lost a race is tried again: another text
/// to the same person moved the cap book on in between (each retry saw one more text; a
/// person is rarely texted by more than a few writers at once), a stale claim was
/// released, or the dealer's number changed under the claim.
pub(in crate::service) const CLAIM_ATTEMPTS: u32 = 8;

/// The recipient of a template text, as the send-time rules see it.
pub struct Recipient<'a> {
    pub dealer: &'a DealerId,
    pub phone: &'a PhoneNumber,
    pub time_zone: Option<crate::Zone>,
    pub category: crate::Category,
}

/// When a text may go, why it waits if it does, and, for a capped text, the cap book
/// write that makes the count hold (its store write must carry it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendTime {
    pub at: DateTime<Utc>,
    pub waits: Option<StatusReason>,
    pub book: Option<CapBookWrite>,
}

/// The first moment at or after `wanted` a text may go, and why it waits if it does:
/// quiet hours (with state holidays) and, where the recipient's state caps the
/// category per 24 hours, the texts already sent to or due for the same person from
/// the same dealer. Those are read from the recipient's cap book, strongly consistent
/// (never from an index, which lags its table), and the returned book write keeps only
/// texts that can still count after `now` and adds `this`. `this` (the message being
/// delivered, or the one being created) is left out of the count.
pub async fn earliest_send(
    messages: &dyn MessageReader,
    to: &Recipient<'_>,
    wanted: DateTime<Utc>,
    this: &MessageId,
    now: DateTime<Utc>,
) -> Result<SendTime, StoreError> {
    let rules = QuietHours::standard();
    let allowed = |at| rules.next_allowed(to.phone, to.time_zone.as_ref(), to.category, at);
    let quiet = allowed(wanted);
    let Some(cap) = rules.cap_per_24h(to.phone, to.category) else {
        return Ok(SendTime {
            at: quiet,
            waits: (quiet > wanted).then_some(StatusReason::QuietHours),
            book: None,
        });
    };
    let mut book = messages.cap_book(to.dealer, to.phone, to.category).await?;
    if book.version == 0 {
        // No book yet: the person's texts from before books were kept (or none) are
        // found on the recipient index; that they are not new, the index's lag cannot
        // hide them. The first write starts the book with them.
        book.messages = messages
            .by_recipient(to.dealer, to.phone, &frequency::COUNTED_STATUSES)
            .await?;
    }
    let counted: Vec<(&Message, DateTime<Utc>)> = book
        .messages
        .iter()
        .filter(|m| &m.id != this && &m.dealer_id == to.dealer && &m.to == to.phone)
        .filter_map(|m| frequency::counted_at(m, to.category).map(|at| (m, at)))
        .collect();
    // What this text must fit around: every text that went, and the waiting texts
    // accepted before it (ids are ULIDs: creation order). Texts accepted after it were
    // planned around it and are counted again when they go, so a text that goes a few
    // seconds after its planned time does not push back every text planned after it.
    let others: Vec<DateTime<Utc>> = counted
        .iter()
        .filter(|(m, _)| {
            let waiting = matches!(
                m.status,
                MessageStatus::Scheduled | MessageStatus::Deferred | MessageStatus::Queued
            );
            !waiting || m.id.as_str() < this.as_str()
        })
        .map(|(_, at)| *at)
        .collect();
    let at = frequency::next_fitting(cap, &others, wanted, allowed);
    let waits = if at > quiet {
        Some(StatusReason::FrequencyCap)
    } else {
        (at > wanted).then_some(StatusReason::QuietHours)
    };
    // A text that went (or is due) 24 hours or more before now can no longer share a
    // period with any text from now on.
    let ids = counted
        .iter()
        .filter(|(_, at)| *at > now - frequency::CAP_PERIOD)
        .map(|(m, _)| m.id.clone())
        .chain(std::iter::once(this.clone()))
        .collect();
    Ok(SendTime {
        at,
        waits,
        book: Some(CapBookWrite {
            dealer: to.dealer.clone(),
            phone: to.phone.clone(),
            category: to.category,
            read: book.version,
            ids,
        }),
    })
}
