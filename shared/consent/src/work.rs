//! Work items: what staff are asked to look at, on which texting queue (worklist), how
//! an item is claimed and resolved, and how a worklist is queried a page at a time.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, ContactId, DealId, DealerId, MessageId};
use crate::phone::PhoneNumber;

/// A texting queue (worklist) for staff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkQueueName {
    Replies,
    FailedSends,
    Authorizations,
    /// Automated sends the rules refused (no consent, unknown contact, bad variables).
    AutomationFailures,
}

impl WorkQueueName {
    pub const ALL: [WorkQueueName; 4] = [
        WorkQueueName::Replies,
        WorkQueueName::FailedSends,
        WorkQueueName::Authorizations,
        WorkQueueName::AutomationFailures,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WorkQueueName::Replies => "replies",
            WorkQueueName::FailedSends => "failed-sends",
            WorkQueueName::Authorizations => "authorizations",
            WorkQueueName::AutomationFailures => "automation-failures",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|q| q.as_str() == s)
    }
}

/// An item on a texting queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkItem {
    pub id: String,
    pub dealer_id: DealerId,
    pub queue: WorkQueueName,
    /// reply-needs-attention, send-failed, authorization-pending-too-long, ...
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<ContactId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<PhoneNumber>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<AccountId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deal_id: Option<DealId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<MessageId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    pub created_at: DateTime<Utc>,
    pub status: WorkItemStatus,
    /// Who works it and how it ended.
    #[serde(default, flatten)]
    pub handling: Handling,
}

/// Where a work item is in its life: open -> claimed (by one user) -> resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkItemStatus {
    Open,
    Claimed,
    Resolved,
}

impl WorkItemStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkItemStatus::Open => "open",
            WorkItemStatus::Claimed => "claimed",
            WorkItemStatus::Resolved => "resolved",
        }
    }
}

/// Claim and resolution details of a work item.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Handling {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_by: Option<crate::ids::StaffUserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<crate::ids::StaffUserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A worklist query: filters, order and a cursor (opaque to callers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemQuery {
    pub status: Option<WorkItemStatus>,
    pub contact_id: Option<ContactId>,
    pub account_id: Option<AccountId>,
    pub newest_first: bool,
    pub limit: u32,
    pub cursor: Option<String>,
}

/// One page of a worklist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemPage {
    pub items: Vec<WorkItem>,
    /// Pass back to get the next page; None at the end.
    pub next_cursor: Option<String>,
}
