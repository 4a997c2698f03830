//! Dispatch: due messages move from the time index to the outbound queue, consent and
//! quiet hours checked again on the way.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use futures::stream::{self, StreamExt};

use crate::error::{DomainError, StoreError};
use crate::ids::DealerId;
use crate::message::{Message, MessageStatus, Outbound, OutboundEnvelope, StatusReason};
use crate::phone::PhoneNumber;
use crate::ports::{ConsentReader, DueIndex, MessageWriter, OutboundQueue};
use crate::quiet_hours::QuietHours;

/// What dispatch touches: the due index it reads, the messages it marks (each a
/// conditional PutItem), consent it re-checks and the queue it fills.
pub struct DispatchPorts<'a> {
    pub consent: &'a dyn ConsentReader,
    pub due: &'a dyn DueIndex,
    pub messages: &'a dyn MessageWriter,
    pub queue: &'a dyn OutboundQueue,
}

/// What one dispatch run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DispatchReport {
    pub queued: usize,
    /// Queued before but never picked up: put on the queue again.
    pub requeued: usize,
    /// Authorization requests never completed, raised to staff.
    pub follow_ups: usize,
    pub deferred: usize,
    pub suppressed: usize,
    /// Lost a conditional write to another run or a cancel: left alone.
    pub skipped: usize,
    pub failed: usize,
}

/// The schedule's window: a run at `now` takes what is due before the next run and
/// delays each by its seconds within the minute.
pub const DISPATCH_HORIZON_SECONDS: i64 = 60;

/// Moves due messages of the given shards to the outbound queue.
///
/// Each message is first marked queued with a conditional write (status and version),
/// so overlapping runs queue it once; only the runs that won send it, in batches of
/// ten. A message marked queued whose queue send failed, or whose process died before
/// sending, stays in the due index at its requeue time (`Message::index_time`) and is
/// queued again by a later run; delivery's claim makes the carrier call once even if
/// a message ever reaches the queue twice.
pub async fn dispatch(
    ports: &DispatchPorts<'_>,
    shards: std::ops::Range<u32>,
    now: DateTime<Utc>,
    limit_per_shard: u32,
) -> Result<DispatchReport, DomainError> {
    let reports: Vec<Result<DispatchReport, DomainError>> = stream::iter(shards)
        .map(|shard| dispatch_shard(ports, shard, now, limit_per_shard))
        .buffer_unordered(SHARDS_AT_ONCE)
        .collect()
        .await;
    let mut total = DispatchReport::default();
    let mut failure = None;
    for report in reports {
        match report {
            Ok(r) => total.add(&r),
            // What the other shards did is durable; the run reports the first error.
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(total),
    }
}

/// Shards read and worked at once in a pass: each is one Query and its page of
/// conditional writes, so eight keep a 1,024 MB function busy without going past
/// DynamoDB's per-partition limits (each shard is its own partition).
pub const SHARDS_AT_ONCE: usize = 8;
/// Conditional writes in flight per shard while marking its page.
pub const MARKS_AT_ONCE: usize = 16;

/// What dispatch does with one due message.
enum Verdict {
    /// Put on the queue (again, for `requeued`).
    Queue {
        requeued: bool,
    },
    Defer,
    Suppress,
}

/// One shard: its due page read, every message marked (concurrently, each with its
/// own conditional write), and the ones marked queued sent to the queue at once, so
/// nothing marked waits for the rest of the pass.
async fn dispatch_shard(
    ports: &DispatchPorts<'_>,
    shard: u32,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<DispatchReport, DomainError> {
    let horizon = now + Duration::seconds(DISPATCH_HORIZON_SECONDS);
    let due = ports.due.due(shard, horizon, limit).await?;
    // Consent for every (dealer, number) in one batched read per dealer.
    let mut by_dealer: HashMap<DealerId, Vec<PhoneNumber>> = HashMap::new();
    for m in due
        .iter()
        .filter(|m| m.needs_consent() && m.status.is_waiting())
    {
        by_dealer
            .entry(m.dealer_id.clone())
            .or_default()
            .push(m.to.clone());
    }
    let mut consent = HashMap::new();
    for (dealer, mut phones) in by_dealer {
        phones.sort();
        phones.dedup();
        for (phone, state) in ports.consent.consents(&dealer, &phones).await? {
            consent.insert((dealer.clone(), phone), state);
        }
    }
    let decided: Vec<(Message, MessageStatus, Verdict)> = due
        .into_iter()
        .filter_map(|m| {
            let expected = m.status;
            decide(m, &consent, now).map(|(m, verdict)| (m, expected, verdict))
        })
        .collect();
    let marked: Vec<(Message, Verdict, Result<(), StoreError>)> = stream::iter(decided)
        .map(|(m, expected, verdict)| async move {
            let saved = ports.messages.save(&m, expected).await;
            (m, verdict, saved)
        })
        .buffer_unordered(MARKS_AT_ONCE)
        .collect()
        .await;
    let mut report = DispatchReport::default();
    let mut won = Vec::new();
    for (m, verdict, saved) in marked {
        match saved {
            Ok(()) => match verdict {
                Verdict::Queue { requeued } => {
                    if requeued {
                        report.requeued += 1;
                    } else {
                        report.queued += 1;
                    }
                    won.push(m);
                }
                Verdict::Defer => report.deferred += 1,
                Verdict::Suppress => report.suppressed += 1,
            },
            Err(StoreError::Conflict(_)) => report.skipped += 1,
            Err(e) => return Err(e.into()),
        }
    }
    if won.is_empty() {
        return Ok(report);
    }
    let outbound: Vec<Outbound> = won
        .iter()
        .map(|m| Outbound {
            envelope: OutboundEnvelope::for_message(m, now),
            delay_seconds: (m.send_at - now).num_seconds().clamp(0, 900) as u32,
        })
        .collect();
    match ports.queue.enqueue(&outbound).await {
        // Not lost: they stay queued in the index and a later run requeues them.
        Ok(failed) => report.failed += failed.len(),
        Err(e) => {
            tracing::warn!(error = %e, count = outbound.len(), "queue send failed; a later run requeues");
            report.failed += outbound.len();
        }
    }
    Ok(report)
}

/// The message as dispatch leaves it, and why; `None` to leave it alone (queued and
/// not yet due for a requeue).
fn decide(
    mut m: Message,
    consent: &HashMap<(DealerId, PhoneNumber), crate::ledger::ConsentState>,
    now: DateTime<Utc>,
) -> Option<(Message, Verdict)> {
    if m.status == MessageStatus::Queued {
        // Queued long ago and never picked up: put it on the queue again.
        if m.index_time().is_none_or(|t| t > now) {
            return None;
        }
        m.transition(MessageStatus::Queued, now, Some(StatusReason::NotPickedUp));
        return Some((m, Verdict::Queue { requeued: true }));
    }
    if m.needs_consent() {
        let decision = consent
            .get(&(m.dealer_id.clone(), m.to.clone()))
            .map(|s| s.may_send(m.category))
            .unwrap_or(crate::ledger::Decision::NeverAuthorized);
        if let Some(refusal) = StatusReason::refusing(decision) {
            m.transition(MessageStatus::Suppressed, now, Some(refusal));
            return Some((m, Verdict::Suppress));
        }
    }
    if m.honours_quiet_hours() {
        let tz = m.recipient_time_zone.clone();
        let at = m.send_at.max(now);
        let allowed_at = QuietHours::standard().next_allowed(&m.to, tz.as_ref(), m.category, at);
        if allowed_at > at {
            m.send_at = allowed_at;
            m.transition(MessageStatus::Deferred, now, Some(StatusReason::QuietHours));
            return Some((m, Verdict::Defer));
        }
    }
    m.transition(MessageStatus::Queued, now, None);
    Some((m, Verdict::Queue { requeued: false }))
}

impl DispatchReport {
    /// Adds another shard's or pass's counts.
    pub fn add(&mut self, other: &DispatchReport) {
        self.queued += other.queued;
        self.requeued += other.requeued;
        self.follow_ups += other.follow_ups;
        self.deferred += other.deferred;
        self.suppressed += other.suppressed;
        self.skipped += other.skipped;
        self.failed += other.failed;
    }
}
