//! Staff's cancel: a message still waiting in the time index is canceled; one already
//! queued is on its way.

use chrono::{DateTime, Utc};

use crate::error::{DomainError, StoreError};
use crate::ids::{DealerId, MessageId};
use crate::message::{Message, MessageStatus, StatusReason};
use crate::ports::MessageStore;

/// A message of the token's dealer (another dealer's is "not found").
pub async fn message_of(
    messages: &dyn MessageStore,
    dealer_id: &DealerId,
    id: &MessageId,
) -> Result<Message, DomainError> {
    match messages.message(id).await? {
        Some(m) if &m.dealer_id == dealer_id => Ok(m),
        _ => Err(DomainError::NotFound { what: "message" }),
    }
}

/// Cancels a message that is not yet queued.
pub async fn cancel(
    messages: &dyn MessageStore,
    dealer_id: &DealerId,
    id: &MessageId,
    now: DateTime<Utc>,
) -> Result<Message, DomainError> {
    let mut message = message_of(messages, dealer_id, id).await?;
    if message.status == MessageStatus::Canceled {
        return Ok(message);
    }
    if !message.status.is_waiting() {
        return Err(DomainError::NotCancelable {
            status: message.status.to_string(),
        });
    }
    let expected = message.status;
    message.transition(
        MessageStatus::Canceled,
        now,
        Some(StatusReason::CanceledByStaff),
    );
    match messages.save(&message, expected).await {
        Ok(()) => Ok(message),
        Err(StoreError::Conflict(_)) => {
            let now_status = message_of(messages, dealer_id, id).await?.status;
            Err(DomainError::NotCancelable {
                status: now_status.to_string(),
            })
        }
        Err(e) => Err(e.into()),
    }
}
