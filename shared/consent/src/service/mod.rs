//! The service layer: the use cases, written once over the ports.
//!
//! Every use case takes the ports it needs (nothing more) and the current time.
//! Functions wire adapters into these and translate their results to HTTP or SQS.

pub mod authorization;
pub mod changes;
pub mod contacts;
pub mod delivery;
pub mod evidence;
pub mod queues;
pub mod replies;
pub mod sending;
pub mod settings;

use chrono::{DateTime, Utc};

use crate::category::Category;
use crate::error::{DomainError, StoreError};
use crate::ids::DealerId;
use crate::ledger::{ConsentState, LedgerEntry};
use crate::message::{
    Message, MessageKind, MessageStatus, NewMessage, Origin, Outbound, OutboundEnvelope,
};
use crate::phone::PhoneNumber;
use crate::ports::{
    Acted, ActedMark, ConsentChange, ConsentReader, ConsentWriter, Dealer, DealerStore,
    MessageWriter, OutboundQueue, PendingKey,
};
use crate::zone::Zone;

/// The first `n` characters of `s` (for words quoted in a refusal or a staff item).
pub(crate) fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// What people type for a time zone: an IANA name, parsed once where it comes in.
pub(crate) fn parse_zone(field: &str, given: Option<&str>) -> Result<Option<Zone>, DomainError> {
    given
        .map(|name| {
            Zone::named(name).map_err(|_| {
                DomainError::Invalid(format!(
                    "{field} {:?} is not an IANA time zone",
                    truncate(name, 60)
                ))
            })
        })
        .transpose()
}

/// Whether a write made the resource or replaced one (201 or 200 at the HTTP edge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Created,
    Replaced,
}

/// How many times an optimistic write is retried when another writer won.
const MAX_CONFLICT_RETRIES: u32 = 5;

/// Appends ledger entries computed from the current state, retrying when another
/// writer changed the state in between. `decide` returns the entries to append
/// given the current state (empty = nothing to do). Returns the entries written and
/// the resulting state.
pub async fn update_consent<F>(
    reader: &dyn ConsentReader,
    writer: &dyn ConsentWriter,
    dealer: &DealerId,
    phone: &PhoneNumber,
    consumed: &[PendingKey],
    decide: F,
) -> Result<(Vec<LedgerEntry>, ConsentState), DomainError>
where
    F: FnMut(&ConsentState) -> Vec<LedgerEntry>,
{
    let (entries, state, _) =
        append_decided(reader, writer, dealer, phone, consumed, None, decide).await?;
    Ok((entries, state))
}

/// [`update_consent`] for the effect of a reply: the reply's acted mark (`acted`, its
/// carrier message id) is written in the same transaction as the entries, and a second
/// writer of the same mark loses with `Conflict` (retried here: it then finds the change
/// made and decides nothing). Returns the entries written and the mark: what they
/// changed (an entry that only repeats its category's revocation is not in it).
pub async fn update_consent_acting<F>(
    reader: &dyn ConsentReader,
    writer: &dyn ConsentWriter,
    dealer: &DealerId,
    phone: &PhoneNumber,
    consumed: &[PendingKey],
    acted: &str,
    decide: F,
) -> Result<(Vec<LedgerEntry>, ActedMark), DomainError>
where
    F: FnMut(&ConsentState) -> Vec<LedgerEntry>,
{
    let (entries, _, mark) =
        append_decided(reader, writer, dealer, phone, consumed, Some(acted), decide).await?;
    Ok((entries, mark))
}

async fn append_decided<F>(
    reader: &dyn ConsentReader,
    writer: &dyn ConsentWriter,
    dealer: &DealerId,
    phone: &PhoneNumber,
    consumed: &[PendingKey],
    acted: Option<&str>,
    mut decide: F,
) -> Result<(Vec<LedgerEntry>, ConsentState, ActedMark), DomainError>
where
    F: FnMut(&ConsentState) -> Vec<LedgerEntry>,
{
    for _ in 0..MAX_CONFLICT_RETRIES {
        let current = reader.consent(dealer, phone).await?;
        let mut entries = decide(&current.value);
        if entries.is_empty() && consumed.is_empty() {
            return Ok((entries, current.value, ActedMark::default()));
        }
        // Ordered within the number's ledger: the state's version after this change, and
        // each entry's place in it.
        let base = (current.version + 1) * crate::ledger::SEQUENCE_STRIDE;
        for (i, e) in (0u64..).zip(entries.iter_mut()) {
            e.sequence = Some(base + i);
        }
        let mut next = current.value.clone();
        for e in &entries {
            next.apply(e);
        }
        let mark = ActedMark {
            categories: entries
                .iter()
                .filter(|e| !current.value.repeats(e))
                .map(|e| e.category)
                .collect(),
        };
        match writer
            .append(
                dealer,
                phone,
                ConsentChange {
                    expected_version: current.version,
                    entries: &entries,
                    new_state: &next,
                    consumed,
                    acted: acted
                        .filter(|_| !entries.is_empty())
                        .map(|carrier_message_id| Acted {
                            carrier_message_id,
                            mark: &mark,
                        }),
                },
            )
            .await
        {
            Ok(()) => return Ok((entries, next, mark)),
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(DomainError::Conflict(
        "consent changed concurrently too many times; try again".into(),
    ))
}

/// Looks up a dealer's settings. A dealer without settings gets a texting number on
/// first use from the configured pool (local development and tests; empty in
/// production, where a dealer without settings cannot text).
pub async fn require_dealer(
    dealers: &dyn DealerStore,
    dealer: &DealerId,
    pool: &[PhoneNumber],
) -> Result<Dealer, DomainError> {
    if let Some(d) = dealers.dealer(dealer).await? {
        return Ok(d);
    }
    // Start where this dealer's id points, so dealers made one after another do not all
    // walk over the numbers already taken.
    let start = dealer.as_str().bytes().fold(2166136261u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(16777619)
    }) as usize;
    let offset = if pool.is_empty() {
        0
    } else {
        start % pool.len()
    };
    for number in pool[offset..].iter().chain(&pool[..offset]) {
        let candidate = Dealer {
            id: dealer.clone(),
            name: dealer.to_string(),
            texting_number: number.clone(),
            help_contact: None,
            time_zone: None,
        };
        match dealers.put_dealer(&candidate, None).await {
            Ok(()) => return Ok(candidate),
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(DomainError::NoTextingNumber)
}

/// Where system texts go: stored, then queued at once.
pub struct Outbox<'a> {
    pub messages: &'a dyn MessageWriter,
    pub queue: &'a dyn OutboundQueue,
}

/// A system text (approval code, STOP/HELP/Agree answers), ready to queue at once.
/// These bypass consent and quiet hours by kind (see [`Message::needs_consent`]).
pub fn system_message(
    dealer: &Dealer,
    to: &PhoneNumber,
    category: Category,
    kind: MessageKind,
    body: String,
    now: DateTime<Utc>,
) -> Message {
    Message::new(
        NewMessage {
            dealer_id: dealer.id.clone(),
            kind,
            to: to.clone(),
            from: dealer.texting_number.clone(),
            category,
            body,
            origin: Origin::System,
        },
        MessageStatus::Queued,
        None,
        now,
    )
}

/// Stores a queued system message and puts it on the outbound queue.
pub async fn store_and_queue(
    outbox: Outbox<'_>,
    message: &Message,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    outbox.messages.create(message, None).await?;
    queue_stored(outbox.queue, message, now).await
}

/// Puts a stored, queued message on the outbound queue.
pub async fn queue_stored(
    queue: &dyn OutboundQueue,
    message: &Message,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    let failed = queue
        .enqueue(&[Outbound {
            envelope: OutboundEnvelope::for_message(message, now),
            delay_seconds: 0,
        }])
        .await?;
    if !failed.is_empty() {
        return Err(DomainError::Store(StoreError::Partial(
            "the outbound queue refused the message".into(),
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_typed_zone_is_parsed_once_with_a_clear_refusal() {
        let refused = super::parse_zone("timeZone", Some("Mars/Olympus")).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("timeZone \"Mars/Olympus\" is not an IANA time zone"),
            "{refused}"
        );
        assert_eq!(super::parse_zone("timeZone", None).unwrap(), None);
        assert_eq!(
            super::parse_zone("timeZone", Some("America/Chicago"))
                .unwrap()
                .map(|z| z.to_string()),
            Some("America/Chicago".to_owned())
        );
    }
}
