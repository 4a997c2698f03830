//! Inbound ports: the texts people send, kept once per carrier message id, what a reply
//! did (its acted mark), pay confirmations, and the conversation view.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::category::Category;
use crate::conversation::{ConversationPage, InboundText};
use crate::error::StoreResult;
use crate::ids::{DealerId, MessageId};
use crate::phone::PhoneNumber;

/// The texts between a dealer and a number, both ways (Query GSI1 `DEALER#d#PHONE#p`,
/// newest first).
#[async_trait]
pub trait Conversations: Send + Sync {
    /// At most `limit` (1 or more) entries older than the cursor's, newest first. A cursor
    /// that is not from this conversation is `Corrupt` with key `cursor`.
    async fn conversation(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
        limit: u32,
        cursor: Option<&str>,
    ) -> StoreResult<ConversationPage>;
}

/// The consent change a reply made: written in the transaction of the change itself
/// ([`ConsentWriter::append`](super::ConsentWriter::append) with `acted`), so a
/// redelivered reply finds what it did.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActedMark {
    pub categories: Vec<Category>,
}

#[async_trait]
pub trait InboundLog: Send + Sync {
    /// Keeps an inbound text for the conversation view, once per carrier message id (a
    /// retried webhook keeps the first copy).
    async fn record_text(&self, text: &InboundText) -> StoreResult<()>;
    /// Whether every effect of this carrier message is done (a strongly consistent read).
    async fn finished(&self, carrier_message_id: &str) -> StoreResult<bool>;
    /// Marks a carrier message as acted on in full; kept as long as the ledger (never
    /// expires), so a replay years later is still a duplicate.
    async fn finish(&self, carrier_message_id: &str, at: DateTime<Utc>) -> StoreResult<()>;
    /// The consent change this carrier message made, if it made one.
    async fn acted(&self, carrier_message_id: &str) -> StoreResult<Option<ActedMark>>;
    /// Claims a pay request for the CONFIRM with this carrier message id (a conditional
    /// write, never expiring): true when this CONFIRM holds the claim (taken now or by an
    /// earlier delivery of the same CONFIRM), false when another CONFIRM took it.
    async fn claim_confirmation(
        &self,
        request: &MessageId,
        carrier_message_id: &str,
    ) -> StoreResult<bool>;
}
