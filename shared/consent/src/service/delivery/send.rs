//! Sending a claimed text: the carrier's limits asked, the code opened, the carrier
//! called once, and its answer recorded. An answer that leaves the outcome unknown is
//! settled from the carrier's own message list, never by a second text on a guess.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};

use crate::error::DomainError;
use crate::message::{DeliverySnapshot, MessageStatus, OutboundEnvelope, StatusReason};
use crate::ports::{CarrierError, CarrierReceipt, CarrierSend, DeliveryRecord};
use crate::service::replies::revoke_by_carrier;

use super::claim::{claim, Claim};
use super::gate::{Admission, WaitReason};
use super::outcome::DeliverOutcome;
use super::outcome::{
    fail_to_staff, hold_from, recorded, release, status_record, to_failed_sends, void_code_request,
};
use super::ports::DeliverPorts;
use super::request::{carrier_send, text_of, LIST_CLOCK_SKEW};

/// Carrier attempts before a retryable failure becomes permanent (the queue's
/// maxReceiveCount is higher, so the message fails here, visibly, before the DLQ).
pub const MAX_CARRIER_ATTEMPTS: u32 = 4;
/// When the carrier's limits cannot be read, the record comes back after this long.
pub const LIMITS_RETRY: StdDuration = StdDuration::from_secs(5);

/// Delivers one queued record. With a delivery snapshot in the envelope (every
/// envelope this service writes), it takes two writes around the carrier call: a claim
/// that re-checks consent in the same conditional write, and the result. Quiet hours
/// (from the snapshot) and a cap (from the recipient's cap book) are checked before the
/// claim. Carrier attempts are counted on the stored message (a re-queued record starts
/// SQS's receive count again).
pub async fn deliver_envelope(
    ports: &DeliverPorts<'_>,
    envelope: &OutboundEnvelope,
    public_base_url: Option<&str>,
    now: DateTime<Utc>,
) -> Result<DeliverOutcome, DomainError> {
    if let Some(snap) = &envelope.delivery {
        return deliver_snapshot(ports, envelope, snap, public_base_url, now).await;
    }
    // An envelope without its snapshot (an old sender, or one put on the queue by hand):
    // read the message once and deliver it the same way.
    let Some(message) = ports.messages.message(&envelope.message_id).await? else {
        return Ok(DeliverOutcome::Skipped { status: None });
    };
    if message.dealer_id != envelope.dealer_id {
        return Ok(DeliverOutcome::Skipped { status: None });
    }
    let filled = OutboundEnvelope::for_message(&message, envelope.time);
    let Some(snap) = &filled.delivery else {
        return Ok(DeliverOutcome::Skipped { status: None });
    };
    deliver_snapshot(ports, &filled, snap, public_base_url, now).await
}

/// A record with its snapshot: claimed, then sent.
async fn deliver_snapshot(
    ports: &DeliverPorts<'_>,
    envelope: &OutboundEnvelope,
    snap: &DeliverySnapshot,
    public_base_url: Option<&str>,
    now: DateTime<Utc>,
) -> Result<DeliverOutcome, DomainError> {
    let id = &envelope.message_id;
    let record = |status, reason| status_record(status, reason, now);
    let current = match claim(ports, envelope, snap, public_base_url, now).await? {
        Claim::Won(current) => current,
        Claim::Settled(outcome) => return Ok(outcome),
    };
    // From here on, the text as claimed (from its dealer's number now).
    let moved;
    let (envelope, snap) = if current.from == snap.from {
        (envelope, snap)
    } else {
        moved = OutboundEnvelope {
            delivery: Some(current.clone()),
            ..envelope.clone()
        };
        (&moved, &current)
    };
    if let Some(gate) = ports.gate {
        match gate.admit(envelope, now).await {
            Ok(Admission::Go) => {}
            Ok(Admission::Wait) => {
                return release(ports, id, WaitReason::NumberRate, now).await;
            }
            Ok(Admission::HoldUntil { until, reason }) => {
                return hold_from(
                    ports.messages,
                    id,
                    MessageStatus::Sending,
                    until,
                    reason,
                    now,
                )
                .await;
            }
            Err(e) => {
                // The limits cannot be read: the claim is released, the record comes back
                // soon (not after the whole visibility timeout).
                tracing::warn!(message_id = %id, error = %e, "carrier limits unreadable; retrying soon");
                let released = record(MessageStatus::Queued, Some(StatusReason::LimitsUnreadable));
                let result = ports
                    .messages
                    .record_delivery(id, MessageStatus::Sending, &released)
                    .await;
                return recorded(
                    result,
                    DeliverOutcome::RetryLater {
                        after: LIMITS_RETRY,
                    },
                );
            }
        }
    }
    let body = match text_of(ports, id, snap).await? {
        Some(text) => text,
        None => {
            let reason = StatusReason::CodeUnreadable;
            let failed = record(MessageStatus::Failed, Some(reason.clone()));
            ports
                .messages
                .record_delivery(id, MessageStatus::Sending, &failed)
                .await?;
            void_code_request(ports, &envelope.dealer_id, snap).await?;
            to_failed_sends(ports, envelope, &reason, now).await?;
            return Ok(DeliverOutcome::Failed { reason });
        }
    };
    let send = carrier_send(snap, id, body, public_base_url);
    let finish = |r: DeliveryRecord| async move {
        ports
            .messages
            .record_delivery(id, MessageStatus::Sending, &r)
            .await
    };
    let result = match ports.carrier.send(&send).await {
        Err(CarrierError::Unknown { reason }) => resolve_unknown(ports, &send, reason, now).await,
        other => other,
    };
    match result {
        Ok(receipt) => {
            finish(DeliveryRecord {
                carrier_message_id: Some(receipt.carrier_message_id.clone()),
                attempted: true,
                ..record(MessageStatus::Sent, None)
            })
            .await?;
            Ok(DeliverOutcome::Sent {
                carrier_message_id: receipt.carrier_message_id,
            })
        }
        Err(CarrierError::Throttled { .. }) => {
            // Never processed and not an attempt: back in the queue, the count unchanged.
            release(ports, id, WaitReason::CarrierBusy, now).await
        }
        Err(CarrierError::Retryable {
            reason,
            retry_after,
        }) => {
            // Attempts are counted on the message: a record put back on the queue (a rate
            // wait, a requeue) starts SQS's receive count again.
            let attempts = match ports.messages.message(id).await? {
                Some(m) => m.attempts + 1,
                None => MAX_CARRIER_ATTEMPTS,
            };
            if attempts >= MAX_CARRIER_ATTEMPTS {
                let reason = StatusReason::CarrierUnavailable(reason);
                return fail_to_staff(ports, envelope, snap, true, reason, now).await;
            }
            finish(DeliveryRecord {
                attempted: true,
                ..record(
                    MessageStatus::Queued,
                    Some(StatusReason::CarrierRetrying(reason)),
                )
            })
            .await?;
            let backoff = StdDuration::from_secs(10u64 << (attempts - 1).min(10));
            Ok(DeliverOutcome::RetryLater {
                after: retry_after.unwrap_or(backoff).max(backoff),
            })
        }
        Err(CarrierError::OptedOut { code }) => {
            let reason = StatusReason::CarrierOptOut(code);
            revoke_by_carrier(
                ports.consent,
                ports.consent_writer,
                &envelope.dealer_id,
                (&snap.from, &snap.to),
                code,
                id.as_str(),
                now,
            )
            .await?;
            finish(record(MessageStatus::Suppressed, Some(reason.clone()))).await?;
            void_code_request(ports, &envelope.dealer_id, snap).await?;
            Ok(DeliverOutcome::Suppressed { reason })
        }
        Err(e) => {
            // A refusal, or an outcome the carrier's list could not settle (the carrier may
            // have texted the person): never sent again, staff decide.
            let reason = StatusReason::Other(e.to_string());
            fail_to_staff(ports, envelope, snap, true, reason, now).await
        }
    }
}

/// A send whose outcome is unknown (the request may have reached the carrier): the
/// carrier's message list decides. Found: it was sent. Not found: sent once more, and a
/// second unknown outcome is looked up again. A list that cannot be read leaves the
/// outcome unknown (staff decide): never a second text on a guess.
async fn resolve_unknown(
    ports: &DeliverPorts<'_>,
    send: &CarrierSend,
    reason: String,
    now: DateTime<Utc>,
) -> Result<CarrierReceipt, CarrierError> {
    // The text, if the carrier took it, was created after the claim (`now`): the list is
    // searched from a little before, for the carrier's clock and its whole seconds, so the
    // same body sent to the same person a minute ago is not taken for this one.
    let since = now - LIST_CLOCK_SKEW;
    let unknown = |reason: String| CarrierError::Unknown { reason };
    let lookup = |why: String| async move {
        match ports.carrier.find_sent(send, since).await {
            Ok(found) => Ok(found),
            Err(e) => {
                tracing::warn!(error = %e, "carrier message list unreadable; outcome stays unknown");
                Err(unknown(format!(
                    "{why}; the carrier's message list could not be read"
                )))
            }
        }
    };
    if let Some(receipt) = lookup(reason.clone()).await? {
        tracing::info!("unknown outcome resolved: the carrier has the text");
        return Ok(receipt);
    }
    tracing::info!("unknown outcome resolved: the carrier does not have the text; sent once more");
    match ports.carrier.send(send).await {
        Err(CarrierError::Unknown { reason }) => match lookup(reason.clone()).await? {
            Some(receipt) => Ok(receipt),
            None => Err(unknown(format!("{reason}, twice"))),
        },
        other => other,
    }
}
