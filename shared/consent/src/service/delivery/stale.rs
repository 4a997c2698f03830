//! Texts stuck mid-delivery: a claim whose worker died before it recorded the result,
//! and a record the outbound queue gave up on. The carrier's message list decides what
//! happened; what cannot be decided fails visibly and goes to staff.

use chrono::{DateTime, Duration, Utc};

use crate::error::{DomainError, StoreError};
use crate::ids::MessageId;
use crate::message::{DeliverySnapshot, MessageStatus, StatusReason};
use crate::ports::DeliveryRecord;

use super::outcome::DeliverOutcome;
use super::outcome::{fail_for_staff, recorded, status_record};
use super::ports::DeliverPorts;
use super::request::{carrier_send, text_of, LIST_CLOCK_SKEW};

/// A claim older than this with no result means a worker died mid-call: no worker lives
/// longer than deliver's Lambda timeout (60 s, `infra/template.yaml`; Lambda ends an
/// invocation there), and 30 s more lets a request it made just before it died reach the
/// carrier's message list. A claim can be this old only when its holder is gone. (It was 5
/// minutes: a record that met a store error after its claim, as around a storage outage,
/// came back in 15 s to its own claim and waited out the rest.) `infra/local/tests/
/// test_template.py` holds it to deliver's Timeout plus 30 s.
pub const STALE_CLAIM: Duration = Duration::seconds(90);

/// What became of a message left in `sending`.
pub(super) enum Stale {
    /// Nothing more to do with this record (still fresh, settled as sent, or failed).
    Settled(DeliverOutcome),
    /// The carrier does not have the text: back to `queued`, to be claimed again.
    Released,
}

/// A message left in `sending`: if the claim is stale, the worker died between claim
/// and result, before or after the carrier took the text. The carrier's message list
/// decides, as for any unknown outcome: found, it was sent (recorded with its id); not
/// found, the claim is released and the text is claimed again, consent checked anew; a
/// list that cannot be read leaves it unknown: it fails visibly and goes to staff, never
/// a second text on a guess.
pub(super) async fn stale_claim(
    ports: &DeliverPorts<'_>,
    id: &MessageId,
    snap: &DeliverySnapshot,
    public_base_url: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Stale, DomainError> {
    let Some(message) = ports.messages.message(id).await? else {
        return Ok(Stale::Settled(DeliverOutcome::Skipped { status: None }));
    };
    let claimed_at = message
        .history
        .last()
        .map(|h| h.at)
        .unwrap_or(message.created_at);
    if message.status != MessageStatus::Sending {
        return Ok(Stale::Settled(DeliverOutcome::Skipped {
            status: Some(message.status),
        }));
    }
    let age = now - claimed_at;
    if age < STALE_CLAIM {
        // Held by another delivery, alive or dead: look again the moment it is stale.
        let stale_in = (STALE_CLAIM - age).to_std().unwrap_or_default();
        return Ok(Stale::Settled(DeliverOutcome::ClaimHeld { stale_in }));
    }
    let Some(body) = text_of(ports, id, snap).await? else {
        let reason = StatusReason::InterruptedCodeUnreadable;
        return fail_for_staff(ports, message, reason, now)
            .await
            .map(Stale::Settled);
    };
    let send = carrier_send(snap, id, body, public_base_url);
    match ports
        .carrier
        .find_sent(&send, claimed_at - LIST_CLOCK_SKEW)
        .await
    {
        Ok(Some(receipt)) => {
            tracing::info!(message_id = %id, "stale claim resolved: the carrier has the text");
            let sent = DeliveryRecord {
                carrier_message_id: Some(receipt.carrier_message_id.clone()),
                attempted: true,
                ..status_record(MessageStatus::Sent, None, now)
            };
            let result = ports
                .messages
                .record_delivery(id, MessageStatus::Sending, &sent)
                .await;
            recorded(
                result,
                DeliverOutcome::Sent {
                    carrier_message_id: receipt.carrier_message_id,
                },
            )
            .map(Stale::Settled)
        }
        Ok(None) => {
            tracing::info!(message_id = %id, "stale claim resolved: the carrier does not have the text");
            let released = status_record(
                MessageStatus::Queued,
                Some(StatusReason::CarrierLacksIt),
                now,
            );
            match ports
                .messages
                .record_delivery(id, MessageStatus::Sending, &released)
                .await
            {
                Ok(()) => Ok(Stale::Released),
                Err(StoreError::Conflict(_)) => {
                    Ok(Stale::Settled(DeliverOutcome::Skipped { status: None }))
                }
                Err(e) => Err(e.into()),
            }
        }
        Err(e) => {
            tracing::warn!(message_id = %id, error = %e, "carrier message list unreadable; a stale claim goes to staff");
            fail_for_staff(ports, message, StatusReason::InterruptedCarrierUnsure, now)
                .await
                .map(Stale::Settled)
        }
    }
}

/// A record the outbound queue gave up on (its dead-letter queue): the message fails
/// visibly and goes to staff instead of waiting forever. A message that already
/// reached a final state is left alone.
pub async fn dead_lettered(
    ports: &DeliverPorts<'_>,
    id: &MessageId,
    now: DateTime<Utc>,
) -> Result<DeliverOutcome, DomainError> {
    let Some(message) = ports.messages.message(id).await? else {
        return Ok(DeliverOutcome::Skipped { status: None });
    };
    if message.status.is_final() || message.status == MessageStatus::Sent {
        return Ok(DeliverOutcome::Skipped {
            status: Some(message.status),
        });
    }
    fail_for_staff(ports, message, StatusReason::DeadLettered, now).await
}
