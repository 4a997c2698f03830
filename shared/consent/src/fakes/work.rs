//! Texting queues (work items).

use super::*;

#[async_trait]
impl WorkQueue for InMemoryStore {
    async fn add_item(&self, item: &WorkItem) -> StoreResult<()> {
        let mut s = self.lock();
        s.take_write()?;
        if s.work
            .iter()
            .any(|w| w.dealer_id == item.dealer_id && w.queue == item.queue && w.id == item.id)
        {
            return Err(StoreError::Conflict("work item exists"));
        }
        s.work.push(item.clone());
        Ok(())
    }
}

/// The outbound queue in memory: records what was queued; can refuse the next sends.

#[async_trait]
impl WorkQueueDesk for InMemoryStore {
    async fn item(
        &self,
        dealer: &DealerId,
        queue: WorkQueueName,
        id: &str,
    ) -> StoreResult<Option<WorkItem>> {
        Ok(self
            .lock()
            .work
            .iter()
            .find(|w| &w.dealer_id == dealer && w.queue == queue && w.id == id)
            .cloned())
    }

    async fn items(
        &self,
        dealer: &DealerId,
        queue: WorkQueueName,
        query: &ItemQuery,
    ) -> StoreResult<ItemPage> {
        let mut items: Vec<WorkItem> = self
            .lock()
            .work
            .iter()
            .filter(|w| &w.dealer_id == dealer && w.queue == queue)
            .filter(|w| query.status.is_none_or(|s| w.status == s))
            .filter(|w| {
                query
                    .contact_id
                    .as_ref()
                    .is_none_or(|c| w.contact_id.as_ref() == Some(c))
            })
            .filter(|w| {
                query
                    .account_id
                    .as_ref()
                    .is_none_or(|a| w.account_id.as_ref() == Some(a))
            })
            .cloned()
            .collect();
        items.sort_by(|a, b| a.id.cmp(&b.id));
        if query.newest_first {
            items.reverse();
        }
        // The cursor is the last id of the previous page.
        if let Some(after) = &query.cursor {
            let pos = items
                .iter()
                .position(|w| &w.id == after)
                .ok_or(StoreError::Corrupt {
                    key: "cursor".into(),
                    reason: "unknown cursor".into(),
                })?;
            items.drain(..=pos);
        }
        let more = items.len() > query.limit as usize;
        items.truncate(query.limit as usize);
        let next_cursor = if more {
            items.last().map(|w| w.id.clone())
        } else {
            None
        };
        Ok(ItemPage { items, next_cursor })
    }

    async fn open_count(&self, dealer: &DealerId, queue: WorkQueueName) -> StoreResult<u64> {
        Ok(self
            .lock()
            .work
            .iter()
            .filter(|w| {
                &w.dealer_id == dealer && w.queue == queue && w.status == WorkItemStatus::Open
            })
            .count() as u64)
    }

    async fn save_item(&self, item: &WorkItem, expected: WorkItemStatus) -> StoreResult<()> {
        let mut s = self.lock();
        match s
            .work
            .iter_mut()
            .find(|w| w.dealer_id == item.dealer_id && w.queue == item.queue && w.id == item.id)
        {
            Some(w) if w.status == expected => {
                *w = item.clone();
                Ok(())
            }
            _ => Err(StoreError::Conflict("work item changed")),
        }
    }
}
