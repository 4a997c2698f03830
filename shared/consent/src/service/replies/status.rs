//! Carrier status callbacks: a sent text delivered or failed, and a carrier's report
//! that the person blocks the number, recorded as a revocation.

use chrono::{DateTime, Utc};

use crate::error::{DomainError, StoreError};
use crate::ids::{DealerId, MessageId};
use crate::ledger::{Actor, ConsentEvent, LedgerEntry};
use crate::message::{MessageStatus, StatusReason};
use crate::phone::PhoneNumber;
use crate::ports::{ConsentReader, ConsentWriter, MessageStore};
use crate::service::update_consent;

/// A delivery status callback.
#[derive(Debug, Clone)]
pub struct StatusReport {
    pub message_id: MessageId,
    pub carrier_message_id: String,
    pub status: String,
    pub error_code: Option<u32>,
}

/// Twilio's "unsubscribed recipient" error: the carrier blocks us for this number.
pub const CARRIER_OPT_OUT_CODES: [u32; 1] = [21610];

/// What a status callback touches.
pub struct StatusPorts<'a> {
    pub consent: &'a dyn ConsentReader,
    pub consent_writer: &'a dyn ConsentWriter,
    pub messages: &'a dyn MessageStore,
}

/// Applies a carrier status callback. Unknown messages or stale reports change nothing.
pub async fn handle_status(
    ports: &StatusPorts<'_>,
    report: &StatusReport,
    now: DateTime<Utc>,
) -> Result<Option<MessageStatus>, DomainError> {
    let Some(mut message) = ports.messages.message(&report.message_id).await? else {
        return Ok(None);
    };
    if message.carrier_message_id.as_deref() != Some(report.carrier_message_id.as_str()) {
        return Ok(None);
    }
    if let Some(code) = report
        .error_code
        .filter(|c| CARRIER_OPT_OUT_CODES.contains(c))
    {
        revoke_by_carrier(
            ports.consent,
            ports.consent_writer,
            &message.dealer_id,
            (&message.from, &message.to),
            code,
            &report.carrier_message_id,
            now,
        )
        .await?;
    }
    let next = match report.status.as_str() {
        "delivered" => MessageStatus::Delivered,
        "failed" | "undelivered" => MessageStatus::Failed,
        _ => return Ok(Some(message.status)),
    };
    if message.status != MessageStatus::Sent && message.status != MessageStatus::Sending {
        return Ok(Some(message.status));
    }
    let expected = message.status;
    let reason = report.error_code.map(StatusReason::CarrierError);
    message.transition(next, now, reason);
    match ports.messages.save(&message, expected).await {
        Ok(()) | Err(StoreError::Conflict(_)) => Ok(Some(next)),
        Err(e) => Err(e.into()),
    }
}

/// The carrier says the number blocked us: record it so app and carrier agree.
pub async fn revoke_by_carrier(
    consent: &dyn ConsentReader,
    writer: &dyn ConsentWriter,
    dealer: &DealerId,
    (from, phone): (&PhoneNumber, &PhoneNumber),
    code: u32,
    carrier_message_id: &str,
    now: DateTime<Utc>,
) -> Result<Vec<LedgerEntry>, DomainError> {
    writer.set_opted_out(from, phone, true, now).await?;
    let (entries, _) = update_consent(consent, writer, dealer, phone, &[], |state| {
        state
            .categories_to_revoke(ConsentEvent::RevokedByCarrier)
            .into_iter()
            .map(|c| {
                LedgerEntry::new(
                    dealer,
                    phone,
                    c,
                    ConsentEvent::RevokedByCarrier,
                    Actor::Carrier,
                    now,
                )
                .with_evidence(format!("{carrier_message_id} error {code}"))
            })
            .collect()
    })
    .await?;
    Ok(entries)
}
