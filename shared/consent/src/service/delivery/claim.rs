//! The claim: the one conditional write that makes a queued text this delivery's to
//! send, with consent, the number's opt-out and a cap re-checked in it. Everything the
//! claim can refuse is settled here (suppressed, held back, skipped); a won claim goes
//! on to the carrier.

use chrono::{DateTime, Duration, Utc};

use crate::error::{DomainError, StoreError};
use crate::message::{DeliverySnapshot, MessageStatus, OutboundEnvelope, StatusReason};
use crate::ports::{ClaimExpectation, ConsentGuard, DeliveryClaim};
use crate::service::sending::{earliest_send, Recipient, CLAIM_ATTEMPTS};

use super::outcome::DeliverOutcome;
use super::outcome::{hold_until, suppress_queued, to_failed_sends};
use super::ports::DeliverPorts;
use super::stale::{stale_claim, Stale};

/// How a claim ended.
pub(super) enum Claim {
    /// This delivery holds the text: it goes as this snapshot says (from its dealer's
    /// number now, when that changed since it was queued).
    Won(DeliverySnapshot),
    /// Nothing to send: the record's outcome.
    Settled(DeliverOutcome),
}

/// Claims a queued text for delivery. A template text is first checked against its
/// send time (quiet hours, a cap); a capped text's count and its claim hold together:
/// the claim moves the cap book on from the version the count read, and a claim that
/// lost that race counts again. A text whose dealer changed its number since is moved to
/// the new one and claimed again (`current` is the snapshot as it then stands).
pub(super) async fn claim(
    ports: &DeliverPorts<'_>,
    envelope: &OutboundEnvelope,
    snap: &DeliverySnapshot,
    public_base_url: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Claim, DomainError> {
    let id = &envelope.message_id;
    let template = snap.kind.is_under_consent();
    let guard = template.then(|| ConsentGuard {
        dealer: envelope.dealer_id.clone(),
        phone: snap.to.clone(),
        category: snap.category,
    });
    let mut current = snap.clone();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut book = None;
        if template {
            let recipient = Recipient {
                dealer: &envelope.dealer_id,
                phone: &snap.to,
                time_zone: snap.recipient_time_zone.clone(),
                category: snap.category,
            };
            let plan = earliest_send(ports.messages, &recipient, now, id, now).await?;
            // Quiet hours are kept to the minute; a cap to the second (a text 5 seconds
            // early would be the fourth in a 24-hour period).
            let hold = match plan.waits {
                Some(StatusReason::FrequencyCap) => plan.at > now,
                _ => plan.at > now + Duration::seconds(59),
            };
            if hold {
                let why = plan.waits.unwrap_or(StatusReason::QuietHours);
                return hold_until(ports.messages, id, plan.at, why, now)
                    .await
                    .map(Claim::Settled);
            }
            book = plan.book;
        }
        let expected = ClaimExpectation {
            dealer: &envelope.dealer_id,
            snapshot: &current,
            book: book.as_ref(),
        };
        let skipped = |status| Ok(Claim::Settled(DeliverOutcome::Skipped { status }));
        match ports
            .messages
            .claim_for_delivery(id, &expected, now, guard.as_ref())
            .await?
        {
            DeliveryClaim::Claimed => return Ok(Claim::Won(current)),
            DeliveryClaim::NotFound => return skipped(None),
            DeliveryClaim::OptedOut => {
                return suppress_queued(ports, envelope, snap, StatusReason::OptedOut, now)
                    .await
                    .map(Claim::Settled)
            }
            DeliveryClaim::Mismatch => {
                tracing::error!(message_id = %id, "queue record does not match the stored message; not sent");
                return skipped(None);
            }
            DeliveryClaim::NotClaimable(MessageStatus::Sending) => {
                match stale_claim(ports, id, snap, public_base_url, now).await? {
                    Stale::Settled(outcome) => return Ok(Claim::Settled(outcome)),
                    // Back to queued: claimed again (consent, opt-out and cap checked anew).
                    Stale::Released if attempt < CLAIM_ATTEMPTS => {}
                    Stale::Released => {
                        return Err(DomainError::Store(StoreError::Conflict(
                            "a released stale claim kept being taken",
                        )))
                    }
                }
            }
            DeliveryClaim::NotClaimable(status) => return skipped(Some(status)),
            DeliveryClaim::ConsentMissing => {
                let decision = ports
                    .consent
                    .consent(&envelope.dealer_id, &snap.to)
                    .await?
                    .value
                    .may_send(snap.category);
                // Consent given back since the claim was refused: the refusal stands (a
                // text sent again goes on the new consent).
                let refusal =
                    StatusReason::refusing(decision).unwrap_or(StatusReason::NotAuthorized);
                return suppress_queued(ports, envelope, snap, refusal, now)
                    .await
                    .map(Claim::Settled);
            }
            DeliveryClaim::ContactGone => {
                return suppress_queued(ports, envelope, snap, StatusReason::ContactDeleted, now)
                    .await
                    .map(Claim::Settled)
            }
            DeliveryClaim::NumberMoved => {
                // Never from a number the dealer no longer owns: from its number now, or,
                // when it has none we can take, not at all (staff see it in Failed sends).
                let now_number = ports
                    .dealers
                    .dealer(&envelope.dealer_id)
                    .await?
                    .map(|d| d.texting_number)
                    .filter(|n| *n != current.from);
                match now_number {
                    Some(number) if attempt < CLAIM_ATTEMPTS => {
                        if ports.messages.repoint(id, &current.from, &number).await? {
                            tracing::info!(message_id = %id, "the dealer's texting number changed; sent from the new one");
                            current.from = number;
                        }
                    }
                    _ => {
                        let reason = StatusReason::NumberChanged;
                        let outcome =
                            suppress_queued(ports, envelope, &current, reason.clone(), now).await?;
                        to_failed_sends(ports, envelope, &reason, now).await?;
                        return Ok(Claim::Settled(outcome));
                    }
                }
            }
            DeliveryClaim::BookMoved if attempt < CLAIM_ATTEMPTS => {}
            DeliveryClaim::BookMoved => {
                // Not claimed, nothing written: the record comes back and counts again.
                return Err(DomainError::Store(StoreError::Conflict(
                    "the recipient's cap book kept moving",
                )));
            }
        }
    }
}
