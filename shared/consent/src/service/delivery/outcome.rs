//! What became of a text, written on it: suppressed, failed (and raised to staff),
//! held back to the time index, released to wait in the queue. Each write is
//! conditional on the status the text was in; one that finds it moved on is skipped.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};

use crate::error::{DomainError, StoreError};
use crate::ids::{new_ulid, DealerId, MessageId};
use crate::message::{DeliverySnapshot, Message, MessageStatus, OutboundEnvelope, StatusReason};
use crate::ports::{DeliveryRecord, MessageStore, WorkItem, WorkItemStatus, WorkQueueName};

use super::gate::WaitReason;
use super::ports::DeliverPorts;

/// What happened to one queued record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliverOutcome {
    Sent {
        carrier_message_id: String,
    },
    /// Consent was gone at the moment of sending.
    Suppressed {
        reason: StatusReason,
    },
    /// Held back to the time index until `until`: quiet hours, a frequency cap, the
    /// brand's daily cap (`reason`, as the message's status reason).
    Deferred {
        until: DateTime<Utc>,
        reason: StatusReason,
    },
    /// Nothing to do (already handled, canceled, or unknown).
    Skipped {
        status: Option<MessageStatus>,
    },
    /// Claimed by another delivery that may still be at work: look again once the claim
    /// is stale (`stale_in`), when a dead holder's text is settled by the carrier's list.
    ClaimHeld {
        stale_in: StdDuration,
    },
    /// Try the record again after this long (the SQS record is reported failed).
    RetryLater {
        after: StdDuration,
    },
    /// Back to `queued`, to go in a few seconds: the consumer puts a new, delayed record
    /// on the queue (waiting is never a failed receive, so it never dead-letters).
    WaitInQueue {
        why: WaitReason,
    },
    Failed {
        reason: StatusReason,
    },
}

impl DeliverOutcome {
    /// What became of the text, in a word the dashboard counts by: sent, suppressed,
    /// deferred, failed, skipped, held, retry or waiting.
    pub fn kind(&self) -> &'static str {
        match self {
            DeliverOutcome::Sent { .. } => "sent",
            DeliverOutcome::Suppressed { .. } => "suppressed",
            DeliverOutcome::Deferred { .. } => "deferred",
            DeliverOutcome::Skipped { .. } => "skipped",
            DeliverOutcome::ClaimHeld { .. } => "held",
            DeliverOutcome::RetryLater { .. } => "retry",
            DeliverOutcome::WaitInQueue { .. } => "waiting",
            DeliverOutcome::Failed { .. } => "failed",
        }
    }

    /// Why, for the outcomes that have a reason (`opted-out`, `quiet-hours`, ...).
    pub fn reason(&self) -> Option<&StatusReason> {
        match self {
            DeliverOutcome::Suppressed { reason }
            | DeliverOutcome::Deferred { reason, .. }
            | DeliverOutcome::Failed { reason } => Some(reason),
            _ => None,
        }
    }
}

/// A claimed text that waits in the queue: back to `queued` (its requeue time pushed on,
/// so dispatch leaves it to the new record), attempts unchanged.
pub(super) async fn release(
    ports: &DeliverPorts<'_>,
    id: &MessageId,
    why: WaitReason,
    now: DateTime<Utc>,
) -> Result<DeliverOutcome, DomainError> {
    let reason = match why {
        WaitReason::NumberRate => StatusReason::NumberRate,
        WaitReason::CarrierBusy => StatusReason::CarrierBusy,
    };
    let released = status_record(MessageStatus::Queued, Some(reason), now);
    let result = ports
        .messages
        .record_delivery(id, MessageStatus::Sending, &released)
        .await;
    recorded(result, DeliverOutcome::WaitInQueue { why })
}

/// A claimed message that will not go (after a carrier call: `attempted`): failed, its
/// code request void, raised on the failed-sends queue.
pub(super) async fn fail_to_staff(
    ports: &DeliverPorts<'_>,
    envelope: &OutboundEnvelope,
    snap: &DeliverySnapshot,
    attempted: bool,
    reason: StatusReason,
    now: DateTime<Utc>,
) -> Result<DeliverOutcome, DomainError> {
    let failed = DeliveryRecord {
        attempted,
        ..status_record(MessageStatus::Failed, Some(reason.clone()), now)
    };
    ports
        .messages
        .record_delivery(&envelope.message_id, MessageStatus::Sending, &failed)
        .await?;
    void_code_request(ports, &envelope.dealer_id, snap).await?;
    to_failed_sends(ports, envelope, &reason, now).await?;
    Ok(DeliverOutcome::Failed { reason })
}

/// A queued message the claim refused (consent gone, the number opted out): suppressed
/// with `reason`, its code request (if a code text) void.
pub(super) async fn suppress_queued(
    ports: &DeliverPorts<'_>,
    envelope: &OutboundEnvelope,
    snap: &DeliverySnapshot,
    reason: StatusReason,
    now: DateTime<Utc>,
) -> Result<DeliverOutcome, DomainError> {
    let suppressed = status_record(MessageStatus::Suppressed, Some(reason.clone()), now);
    let result = ports
        .messages
        .record_delivery(&envelope.message_id, MessageStatus::Queued, &suppressed)
        .await;
    void_code_request(ports, &envelope.dealer_id, snap).await?;
    recorded(result, DeliverOutcome::Suppressed { reason })
}

/// A code text that did not go (failed, suppressed): its request is void, so no code
/// nobody received stays verifiable.
pub(super) async fn void_code_request(
    ports: &DeliverPorts<'_>,
    dealer: &DealerId,
    snap: &DeliverySnapshot,
) -> Result<(), DomainError> {
    if let Some(code) = &snap.code {
        ports
            .pending
            .void(
                dealer,
                &snap.to,
                snap.category,
                &code.request_id,
                code.sends,
            )
            .await?;
    }
    Ok(())
}

/// Fails a message that was read (if it has not changed since) and raises it on the
/// failed-sends queue.
pub(super) async fn fail_for_staff(
    ports: &DeliverPorts<'_>,
    mut message: Message,
    reason: StatusReason,
    now: DateTime<Utc>,
) -> Result<DeliverOutcome, DomainError> {
    let expected = message.status;
    message.transition(MessageStatus::Failed, now, Some(reason.clone()));
    // The sealed code goes with the failure; its request is void.
    let before = message.snapshot();
    message.code = None;
    match ports.messages.save(&message, expected).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => return Ok(DeliverOutcome::Skipped { status: None }),
        Err(e) => return Err(e.into()),
    }
    void_code_request(ports, &message.dealer_id, &before).await?;
    to_failed_sends(
        ports,
        &OutboundEnvelope::for_message(&message, now),
        &reason,
        now,
    )
    .await?;
    Ok(DeliverOutcome::Failed { reason })
}

/// Puts a queued message back on the time index until `until` (dispatch queues it then),
/// `deferred` for `reason`: quiet hours and caps, and a brand's carrier day. A message no
/// longer queued was handled already (`Skipped`).
pub async fn hold_until(
    messages: &dyn MessageStore,
    id: &MessageId,
    until: DateTime<Utc>,
    reason: StatusReason,
    now: DateTime<Utc>,
) -> Result<DeliverOutcome, DomainError> {
    hold_from(messages, id, MessageStatus::Queued, until, reason, now).await
}

/// [`hold_until`] for a message in `from` (a claimed one: `sending`).
pub(super) async fn hold_from(
    messages: &dyn MessageStore,
    id: &MessageId,
    from: MessageStatus,
    until: DateTime<Utc>,
    reason: StatusReason,
    now: DateTime<Utc>,
) -> Result<DeliverOutcome, DomainError> {
    let deferral = DeliveryRecord {
        send_at: Some(until),
        ..status_record(MessageStatus::Deferred, Some(reason.clone()), now)
    };
    let result = messages.record_delivery(id, from, &deferral).await;
    recorded(result, DeliverOutcome::Deferred { until, reason })
}

/// A delivery record of `status` (and `reason`) at `now`, nothing else set.
pub(super) fn status_record(
    status: MessageStatus,
    reason: Option<StatusReason>,
    now: DateTime<Utc>,
) -> DeliveryRecord {
    DeliveryRecord {
        status,
        at: now,
        reason,
        carrier_message_id: None,
        send_at: None,
        attempted: false,
    }
}

/// `outcome` if the write landed; skipped if the message changed under us (another
/// worker, a cancel, a STOP).
pub(super) fn recorded(
    result: Result<(), StoreError>,
    outcome: DeliverOutcome,
) -> Result<DeliverOutcome, DomainError> {
    match result {
        Ok(()) => Ok(outcome),
        Err(StoreError::Conflict(_)) => Ok(DeliverOutcome::Skipped { status: None }),
        Err(e) => Err(e.into()),
    }
}

/// Raises a failed send on the staff queue, from the envelope form of the message (its
/// snapshot carries the contact, account and deal).
pub(super) async fn to_failed_sends(
    ports: &DeliverPorts<'_>,
    envelope: &OutboundEnvelope,
    reason: &StatusReason,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    let snap = envelope.delivery.as_ref();
    ports
        .work
        .add_item(&WorkItem {
            id: new_ulid(),
            dealer_id: envelope.dealer_id.clone(),
            queue: WorkQueueName::FailedSends,
            kind: "send-failed".into(),
            contact_id: snap.and_then(|s| s.contact_id.clone()),
            phone: snap.map(|s| s.to.clone()),
            account_id: snap.and_then(|s| s.account_id.clone()),
            deal_id: snap.and_then(|s| s.deal_id.clone()),
            message_id: Some(envelope.message_id.clone()),
            text: Some(reason.to_string().chars().take(500).collect()),
            created_at: now,
            status: WorkItemStatus::Open,
            handling: Default::default(),
        })
        .await?;
    Ok(())
}
