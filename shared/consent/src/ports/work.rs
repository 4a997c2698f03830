//! Work-queue ports: adding items to the staff worklists, and reading and working them.

use async_trait::async_trait;

use crate::error::StoreResult;
use crate::ids::DealerId;
use crate::work::{ItemPage, ItemQuery, WorkItem, WorkItemStatus, WorkQueueName};

#[async_trait]
pub trait WorkQueue: Send + Sync {
    /// Adds an item; `Conflict` when an item with its id exists (it is kept as it is).
    async fn add_item(&self, item: &WorkItem) -> StoreResult<()>;
}

/// Reading and working the texting queues (the portal's worklists).
#[async_trait]
pub trait WorkQueueDesk: Send + Sync {
    async fn item(
        &self,
        dealer: &DealerId,
        queue: WorkQueueName,
        id: &str,
    ) -> StoreResult<Option<WorkItem>>;
    async fn items(
        &self,
        dealer: &DealerId,
        queue: WorkQueueName,
        query: &ItemQuery,
    ) -> StoreResult<ItemPage>;
    async fn open_count(&self, dealer: &DealerId, queue: WorkQueueName) -> StoreResult<u64>;
    /// Replaces the item if its stored status is still `expected` (`Conflict` otherwise).
    async fn save_item(&self, item: &WorkItem, expected: WorkItemStatus) -> StoreResult<()>;
}
