//! Conversations: the texts between a dealer and a number, both ways, newest first:
//! the dealer's outbound messages and the texts the person sent in.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::DealerId;
use crate::message::Message;
use crate::phone::PhoneNumber;

/// A text the person sent to the dealer's number, kept for the conversation view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InboundText {
    /// Time-ordered (ULID), sorted with the outbound messages' ids.
    pub id: String,
    pub dealer_id: DealerId,
    /// The person.
    pub from: PhoneNumber,
    /// The dealer's texting number.
    pub to: PhoneNumber,
    pub body: String,
    pub carrier_message_id: String,
    pub received_at: DateTime<Utc>,
    /// What the service read it as (`opt-out`, `agree`, `help`, ..., `other`).
    pub read_as: String,
    /// The language it was answered in (`en`, `es`, `fr`).
    pub language: String,
}

/// One line of a conversation, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConversationEntry {
    Outbound(Box<Message>),
    Inbound(InboundText),
}

impl ConversationEntry {
    pub fn id(&self) -> &str {
        match self {
            ConversationEntry::Outbound(m) => m.id.as_str(),
            ConversationEntry::Inbound(t) => &t.id,
        }
    }
}

/// One page of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConversationPage {
    pub entries: Vec<ConversationEntry>,
    pub next_cursor: Option<String>,
}
