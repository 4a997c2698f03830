//! Texting queues: worklists of replies that need a person, failed sends and other
//! items raised by automated tasks. One staff user at a time works an item.

use chrono::{DateTime, Utc};

use crate::error::{DomainError, StoreError};
use crate::ids::{DealerId, StaffUserId};
use crate::ports::{ItemPage, ItemQuery, WorkItem, WorkItemStatus, WorkQueueDesk, WorkQueueName};

/// Largest page of a worklist.
pub const MAX_PAGE: u32 = 100;
/// Longest resolution note.
pub const MAX_NOTE_CHARS: usize = 2000;

/// The queues of a dealer with their open counts.
pub async fn overview(
    desk: &dyn WorkQueueDesk,
    dealer: &DealerId,
) -> Result<Vec<(WorkQueueName, u64)>, DomainError> {
    let mut out = Vec::with_capacity(WorkQueueName::ALL.len());
    for q in WorkQueueName::ALL {
        out.push((q, desk.open_count(dealer, q).await?));
    }
    Ok(out)
}

pub async fn list(
    desk: &dyn WorkQueueDesk,
    dealer: &DealerId,
    queue: WorkQueueName,
    mut query: ItemQuery,
) -> Result<ItemPage, DomainError> {
    if query.limit == 0 || query.limit > MAX_PAGE {
        return Err(DomainError::Invalid(format!(
            "limit must be 1 to {MAX_PAGE}"
        )));
    }
    query.cursor = query.cursor.filter(|c| !c.is_empty());
    desk.items(dealer, queue, &query)
        .await
        .map_err(|e| match e {
            StoreError::Corrupt { .. } => DomainError::Invalid("the cursor is not valid".into()),
            other => other.into(),
        })
}

async fn item(
    desk: &dyn WorkQueueDesk,
    dealer: &DealerId,
    queue: WorkQueueName,
    id: &str,
) -> Result<WorkItem, DomainError> {
    desk.item(dealer, queue, id)
        .await?
        .ok_or(DomainError::NotFound { what: "queue item" })
}

/// Claims an item for `user`. Claiming one's own claim again is fine; an item held
/// by someone else is `AlreadyClaimed`; a race is decided by a conditional write.
pub async fn claim(
    desk: &dyn WorkQueueDesk,
    dealer: &DealerId,
    queue: WorkQueueName,
    id: &str,
    user: &StaffUserId,
    now: DateTime<Utc>,
) -> Result<WorkItem, DomainError> {
    let mut it = item(desk, dealer, queue, id).await?;
    match it.status {
        WorkItemStatus::Resolved => {
            return Err(DomainError::Conflict("the item is already resolved".into()))
        }
        WorkItemStatus::Claimed => {
            return match &it.handling.claimed_by {
                Some(by) if by == user => Ok(it),
                Some(by) => Err(DomainError::AlreadyClaimed { by: by.clone() }),
                None => Err(DomainError::Conflict("the item is claimed".into())),
            }
        }
        WorkItemStatus::Open => {}
    }
    it.status = WorkItemStatus::Claimed;
    it.handling.claimed_by = Some(user.clone());
    it.handling.claimed_at = Some(now);
    match desk.save_item(&it, WorkItemStatus::Open).await {
        Ok(()) => Ok(it),
        Err(StoreError::Conflict(_)) => {
            let now_held = item(desk, dealer, queue, id).await?;
            match now_held.handling.claimed_by.clone() {
                Some(by) if &by == user => Ok(now_held),
                Some(by) => Err(DomainError::AlreadyClaimed { by }),
                None => Err(DomainError::Conflict("the item changed; try again".into())),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Resolves an item with a note. An open item or one's own claim can be resolved;
/// someone else's claim cannot.
pub async fn resolve(
    desk: &dyn WorkQueueDesk,
    dealer: &DealerId,
    queue: WorkQueueName,
    id: &str,
    user: &StaffUserId,
    note: Option<String>,
    now: DateTime<Utc>,
) -> Result<WorkItem, DomainError> {
    if let Some(n) = &note {
        if n.chars().count() > MAX_NOTE_CHARS {
            return Err(DomainError::Invalid(format!(
                "note is longer than {MAX_NOTE_CHARS} characters"
            )));
        }
    }
    let mut it = item(desk, dealer, queue, id).await?;
    let expected = it.status;
    match (it.status, &it.handling.claimed_by) {
        (WorkItemStatus::Resolved, _) => return Ok(it),
        (WorkItemStatus::Claimed, Some(by)) if by != user => {
            return Err(DomainError::AlreadyClaimed { by: by.clone() })
        }
        _ => {}
    }
    it.status = WorkItemStatus::Resolved;
    it.handling.resolved_by = Some(user.clone());
    it.handling.resolved_at = Some(now);
    it.handling.note = note;
    match desk.save_item(&it, expected).await {
        Ok(()) => Ok(it),
        Err(StoreError::Conflict(_)) => {
            Err(DomainError::Conflict("the item changed; reload it".into()))
        }
        Err(e) => Err(e.into()),
    }
}
