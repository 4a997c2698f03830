//! Delivery: the moment of sending. Re-check, claim, call the carrier once, record.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};

use super::replies::revoke_by_carrier;
use super::sending::{
    earliest_send, parse_time_zone, Recipient, CAP_BOOK_ATTEMPTS, REASON_FREQUENCY_CAP,
    REASON_QUIET_HOURS,
};
use crate::approval::reveal_in;
use crate::error::{DomainError, StoreError};
use crate::ids::{new_ulid, MessageId};
use crate::message::{DeliverySnapshot, Message, MessageStatus, OutboundEnvelope};
use crate::ports::{
    Carrier, CarrierError, CarrierReceipt, CarrierSend, ClaimExpectation, CodeKey, ConsentGuard,
    ConsentReader, ConsentWriter, DealerStore, DeliveryClaim, DeliveryRecord, MessageStore,
    PendingStore, WorkItem, WorkItemStatus, WorkQueue, WorkQueueName,
};

/// What may hold a claimed text back just before the carrier call: the carrier's limits
/// (a number's sending rate, a brand's daily segments). It is asked only by a delivery
/// whose claim won, so a duplicate record or a redelivery never spends a limit.
#[async_trait::async_trait]
pub trait SendGate: Send + Sync {
    async fn admit(
        &self,
        envelope: &OutboundEnvelope,
        now: DateTime<Utc>,
    ) -> Result<Admission, StoreError>;
}

/// A gate's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    Go,
    /// Over the number's sending rate: wait in the queue a few seconds.
    Wait,
    /// Over a limit that lasts: back on the time index until then.
    HoldUntil {
        until: DateTime<Utc>,
        reason: &'static str,
    },
}

/// Why a text waits in the outbound queue (a new, delayed record) instead of going now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitReason {
    /// Its number's sending rate is spent for this second.
    NumberRate,
    /// The carrier answered 429: too many requests at once.
    CarrierBusy,
}

pub struct DeliverPorts<'a> {
    /// The dealer's texting number now (a text made before it changed goes from it).
    pub dealers: &'a dyn DealerStore,
    pub consent: &'a dyn ConsentReader,
    pub consent_writer: &'a dyn ConsentWriter,
    pub messages: &'a dyn MessageStore,
    pub carrier: &'a dyn Carrier,
    pub work: &'a dyn WorkQueue,
    /// Approval requests whose code text failed are voided here.
    pub pending: &'a dyn PendingStore,
    /// Opens the sealed code of an approval code text (the code key).
    pub codes: &'a dyn CodeKey,
    /// The carrier's limits, asked after the claim (none: no limits).
    pub gate: Option<&'a dyn SendGate>,
}

/// Carrier attempts before a retryable failure becomes permanent (the queue's
/// maxReceiveCount is higher, so the message fails here, visibly, before the DLQ).
pub const MAX_CARRIER_ATTEMPTS: u32 = 4;
/// How far before the claim the carrier's message list is searched for an unknown outcome.
pub const LIST_CLOCK_SKEW: Duration = Duration::seconds(10);
/// When the carrier's limits cannot be read, the record comes back after this long.
pub const LIMITS_RETRY: StdDuration = StdDuration::from_secs(5);
/// A claim older than this with no result means a worker died mid-call.
pub const STALE_CLAIM: Duration = Duration::minutes(5);

/// What happened to one queued record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliverOutcome {
    Sent {
        carrier_message_id: String,
    },
    /// Consent was gone at the moment of sending.
    Suppressed {
        reason: String,
    },
    /// Held back to the time index until `until`: quiet hours, a frequency cap, the
    /// brand's daily cap (`reason`, as the message's status reason).
    Deferred {
        until: DateTime<Utc>,
        reason: String,
    },
    /// Nothing to do (already handled, canceled, or unknown).
    Skipped {
        status: Option<MessageStatus>,
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
        reason: String,
    },
}

impl DeliverOutcome {
    /// What became of the text, in a word the dashboard counts by: sent, suppressed,
    /// deferred, failed, skipped, retry or waiting.
    pub fn kind(&self) -> &'static str {
        match self {
            DeliverOutcome::Sent { .. } => "sent",
            DeliverOutcome::Suppressed { .. } => "suppressed",
            DeliverOutcome::Deferred { .. } => "deferred",
            DeliverOutcome::Skipped { .. } => "skipped",
            DeliverOutcome::RetryLater { .. } => "retry",
            DeliverOutcome::WaitInQueue { .. } => "waiting",
            DeliverOutcome::Failed { .. } => "failed",
        }
    }

    /// Why, for the outcomes that have a reason (`opted-out`, `quiet-hours`, ...).
    pub fn reason(&self) -> Option<&str> {
        match self {
            DeliverOutcome::Suppressed { reason }
            | DeliverOutcome::Deferred { reason, .. }
            | DeliverOutcome::Failed { reason } => Some(reason),
            _ => None,
        }
    }
}

/// Status callback URL for a message (the carrier reports there).
pub fn status_callback(base: &str, id: &MessageId) -> String {
    format!(
        "{}/v1/carrier/twilio/status?messageId={id}",
        base.trim_end_matches('/')
    )
}

/// Delivers one queued record. With a delivery snapshot in the envelope (every
/// envelope this service writes), it takes two writes around the carrier call: a claim
/// that re-checks consent in the same conditional write, and the result. Quiet hours
/// are checked before the claim from the snapshot alone. Carrier attempts are counted on
/// the stored message (a re-queued record starts SQS's receive count again).
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

async fn deliver_snapshot(
    ports: &DeliverPorts<'_>,
    envelope: &OutboundEnvelope,
    snap: &DeliverySnapshot,
    public_base_url: Option<&str>,
    now: DateTime<Utc>,
) -> Result<DeliverOutcome, DomainError> {
    let id = &envelope.message_id;
    let record = |status, reason| status_record(status, reason, now);
    let template = snap.kind.is_under_consent();
    let guard = template.then(|| ConsentGuard {
        dealer: envelope.dealer_id.clone(),
        phone: snap.to.clone(),
        category: snap.category,
    });
    // A capped text's count and its claim hold together: the claim moves the cap book on
    // from the version the count read, and a claim that lost that race counts again.
    // A text whose dealer changed its number since is moved to the new one and claimed
    // again (`current` is the snapshot as it then stands).
    let mut current = snap.clone();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut book = None;
        if template {
            let recipient = Recipient {
                dealer: &envelope.dealer_id,
                phone: &snap.to,
                time_zone: parse_time_zone(snap.recipient_time_zone.as_deref()),
                category: snap.category,
            };
            let plan = earliest_send(ports.messages, &recipient, now, id, now).await?;
            // Quiet hours are kept to the minute; a cap to the second (a text 5 seconds
            // early would be the fourth in a 24-hour period).
            let hold = match plan.waits {
                Some(REASON_FREQUENCY_CAP) => plan.at > now,
                _ => plan.at > now + Duration::seconds(59),
            };
            if hold {
                let why = plan.waits.unwrap_or(REASON_QUIET_HOURS);
                return hold_until(ports.messages, id, plan.at, why, now).await;
            }
            book = plan.book;
        }
        let expected = ClaimExpectation {
            dealer: &envelope.dealer_id,
            snapshot: &current,
            book: book.as_ref(),
        };
        match ports
            .messages
            .claim_for_delivery(id, &expected, now, guard.as_ref())
            .await?
        {
            DeliveryClaim::Claimed => break,
            DeliveryClaim::NotFound => return Ok(DeliverOutcome::Skipped { status: None }),
            DeliveryClaim::OptedOut => {
                return suppress_queued(ports, envelope, snap, "opted-out".into(), now).await
            }
            DeliveryClaim::Mismatch => {
                tracing::error!(message_id = %id, "queue record does not match the stored message; not sent");
                return Ok(DeliverOutcome::Skipped { status: None });
            }
            DeliveryClaim::NotClaimable(MessageStatus::Sending) => {
                match stale_claim(ports, id, snap, public_base_url, now).await? {
                    Stale::Settled(outcome) => return Ok(outcome),
                    // Back to queued: claimed again (consent, opt-out and cap checked anew).
                    Stale::Released if attempt < CAP_BOOK_ATTEMPTS => {}
                    Stale::Released => {
                        return Err(DomainError::Store(StoreError::Conflict(
                            "a released stale claim kept being taken",
                        )))
                    }
                }
            }
            DeliveryClaim::NotClaimable(status) => {
                return Ok(DeliverOutcome::Skipped {
                    status: Some(status),
                })
            }
            DeliveryClaim::ConsentMissing => {
                let reason = ports
                    .consent
                    .consent(&envelope.dealer_id, &snap.to)
                    .await?
                    .value
                    .may_send(snap.category)
                    .reason()
                    .to_owned();
                return suppress_queued(ports, envelope, snap, reason, now).await;
            }
            DeliveryClaim::ContactGone => {
                return suppress_queued(ports, envelope, snap, "contact-deleted".into(), now).await
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
                    Some(number) if attempt < CAP_BOOK_ATTEMPTS => {
                        if ports.messages.repoint(id, &current.from, &number).await? {
                            tracing::info!(message_id = %id, "the dealer's texting number changed; sent from the new one");
                            current.from = number;
                        }
                    }
                    _ => {
                        let reason = "number-changed".to_owned();
                        let outcome =
                            suppress_queued(ports, envelope, &current, reason.clone(), now).await?;
                        to_failed_sends(ports, envelope, &reason, now).await?;
                        return Ok(outcome);
                    }
                }
            }
            DeliveryClaim::BookMoved if attempt < CAP_BOOK_ATTEMPTS => {}
            DeliveryClaim::BookMoved => {
                // Not claimed, nothing written: the record comes back and counts again.
                return Err(DomainError::Store(StoreError::Conflict(
                    "the recipient's cap book kept moving",
                )));
            }
        }
    }
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
                let released = record(
                    MessageStatus::Queued,
                    Some("retrying: limits unreadable".into()),
                );
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
            let reason = "approval code unreadable".to_owned();
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
                let reason = format!("carrier temporarily unavailable: {reason}");
                return fail_to_staff(ports, envelope, snap, true, reason, now).await;
            }
            finish(DeliveryRecord {
                attempted: true,
                ..record(MessageStatus::Queued, Some(format!("retrying: {reason}")))
            })
            .await?;
            let backoff = StdDuration::from_secs(10u64 << (attempts - 1).min(10));
            Ok(DeliverOutcome::RetryLater {
                after: retry_after.unwrap_or(backoff).max(backoff),
            })
        }
        Err(CarrierError::OptedOut { code }) => {
            let reason = format!("carrier-opt-out ({code})");
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
            fail_to_staff(ports, envelope, snap, true, e.to_string(), now).await
        }
    }
}

/// What the carrier is asked to send (or found to have sent) for a message.
fn carrier_send(
    snap: &DeliverySnapshot,
    id: &MessageId,
    body: String,
    public_base_url: Option<&str>,
) -> CarrierSend {
    CarrierSend {
        from: snap.from.clone(),
        to: snap.to.clone(),
        body,
        status_callback: public_base_url.map(|b| status_callback(b, id)),
    }
}

/// The words the carrier gets: the body, with an approval code text's sealed code
/// opened into it (None when it cannot be opened).
async fn text_of(
    ports: &DeliverPorts<'_>,
    id: &MessageId,
    snap: &DeliverySnapshot,
) -> Result<Option<String>, DomainError> {
    let Some(code) = &snap.code else {
        return Ok(Some(snap.body.clone()));
    };
    let key = ports.codes.key().await?;
    let mut opened = key.open(&code.sealed, id.as_str());
    if opened.is_err() {
        // Sealed under a key rotated in after ours was read: the key once more (bounded).
        if let Some(newer) = ports.codes.reread(&key).await {
            opened = newer.open(&code.sealed, id.as_str());
        }
    }
    Ok(opened.ok().and_then(|c| reveal_in(&snap.body, &c)))
}

/// A claimed text that waits in the queue: back to `queued` (its requeue time pushed on,
/// so dispatch leaves it to the new record), attempts unchanged.
async fn release(
    ports: &DeliverPorts<'_>,
    id: &MessageId,
    why: WaitReason,
    now: DateTime<Utc>,
) -> Result<DeliverOutcome, DomainError> {
    let reason = match why {
        WaitReason::NumberRate => "waiting: the number's sending rate",
        WaitReason::CarrierBusy => "waiting: carrier busy",
    };
    let released = status_record(MessageStatus::Queued, Some(reason.to_owned()), now);
    let result = ports
        .messages
        .record_delivery(id, MessageStatus::Sending, &released)
        .await;
    recorded(result, DeliverOutcome::WaitInQueue { why })
}

/// A claimed message that will not go (after a carrier call: `attempted`): failed, its
/// code request void, raised on the failed-sends queue.
async fn fail_to_staff(
    ports: &DeliverPorts<'_>,
    envelope: &OutboundEnvelope,
    snap: &DeliverySnapshot,
    attempted: bool,
    reason: String,
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

/// A queued message the claim refused (consent gone, the number opted out): suppressed
/// with `reason`, its code request (if a code text) void.
async fn suppress_queued(
    ports: &DeliverPorts<'_>,
    envelope: &OutboundEnvelope,
    snap: &DeliverySnapshot,
    reason: String,
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
async fn void_code_request(
    ports: &DeliverPorts<'_>,
    dealer: &crate::ids::DealerId,
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

/// What became of a message left in `sending`.
enum Stale {
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
async fn stale_claim(
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
    if message.status != MessageStatus::Sending || now - claimed_at < STALE_CLAIM {
        return Ok(Stale::Settled(DeliverOutcome::Skipped {
            status: Some(message.status),
        }));
    }
    let Some(body) = text_of(ports, id, snap).await? else {
        let reason = "delivery interrupted; the approval code is unreadable";
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
                Some("resuming: the carrier does not have it".into()),
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
            fail_for_staff(
                ports,
                message,
                "delivery interrupted; the carrier may not have it",
                now,
            )
            .await
            .map(Stale::Settled)
        }
    }
}

/// Fails a message that was read (if it has not changed since) and raises it on the
/// failed-sends queue.
async fn fail_for_staff(
    ports: &DeliverPorts<'_>,
    mut message: Message,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<DeliverOutcome, DomainError> {
    let expected = message.status;
    message.transition(MessageStatus::Failed, now, Some(reason.to_owned()));
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
        reason,
        now,
    )
    .await?;
    Ok(DeliverOutcome::Failed {
        reason: reason.to_owned(),
    })
}

/// Puts a queued message back on the time index until `until` (dispatch queues it then),
/// `deferred` for `reason`: quiet hours and caps, and a brand's carrier day. A message no
/// longer queued was handled already (`Skipped`).
pub async fn hold_until(
    messages: &dyn MessageStore,
    id: &MessageId,
    until: DateTime<Utc>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<DeliverOutcome, DomainError> {
    hold_from(messages, id, MessageStatus::Queued, until, reason, now).await
}

/// [`hold_until`] for a message in `from` (a claimed one: `sending`).
async fn hold_from(
    messages: &dyn MessageStore,
    id: &MessageId,
    from: MessageStatus,
    until: DateTime<Utc>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<DeliverOutcome, DomainError> {
    let deferral = DeliveryRecord {
        send_at: Some(until),
        ..status_record(MessageStatus::Deferred, Some(reason.to_owned()), now)
    };
    let result = messages.record_delivery(id, from, &deferral).await;
    recorded(
        result,
        DeliverOutcome::Deferred {
            until,
            reason: reason.to_owned(),
        },
    )
}

/// A delivery record of `status` (and `reason`) at `now`, nothing else set.
fn status_record(
    status: MessageStatus,
    reason: Option<String>,
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
fn recorded(
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
async fn to_failed_sends(
    ports: &DeliverPorts<'_>,
    envelope: &OutboundEnvelope,
    reason: &str,
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
            text: Some(reason.chars().take(500).collect()),
            created_at: now,
            status: WorkItemStatus::Open,
            handling: Default::default(),
        })
        .await?;
    Ok(())
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
    fail_for_staff(
        ports,
        message,
        "not delivered after repeated attempts (dead-lettered)",
        now,
    )
    .await
}
