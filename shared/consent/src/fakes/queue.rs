//! The outbound queue in memory.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::error::StoreError;
use crate::ids::MessageId;
use crate::message::Outbound;
use crate::ports::*;

#[derive(Clone, Default)]
pub struct FakeQueue {
    inner: Arc<Mutex<(Vec<Outbound>, u32)>>,
}

impl FakeQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything queued so far, in order.
    pub fn sent(&self) -> Vec<Outbound> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone()
    }

    /// Takes what was queued (as a consumer would).
    pub fn drain(&self) -> Vec<Outbound> {
        std::mem::take(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()).0)
    }

    /// The next `n` enqueue calls refuse every item.
    pub fn fail_next(&self, n: u32) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).1 = n;
    }
}

#[async_trait]
impl OutboundQueue for FakeQueue {
    async fn enqueue(&self, items: &[Outbound]) -> StoreResult<Vec<MessageId>> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if g.1 > 0 {
            g.1 -= 1;
            return Ok(items
                .iter()
                .map(|o| o.envelope.message_id.clone())
                .collect());
        }
        g.0.extend(items.iter().cloned());
        Ok(Vec::new())
    }
}

/// The inbound webhook queue in memory: keeps stored webhooks in order; can refuse the
/// next stores.
#[derive(Clone, Default)]
pub struct FakeInbox {
    inner: Arc<Mutex<(VecDeque<crate::webhook::CarrierWebhook>, u32)>>,
}

impl FakeInbox {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes what was stored, oldest first (as the consumer's event source would).
    pub fn drain(&self) -> Vec<crate::webhook::CarrierWebhook> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .drain(..)
            .collect()
    }

    /// Puts a webhook back at the front (a record the consumer handed back).
    pub fn put_back(&self, webhook: crate::webhook::CarrierWebhook) {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .push_front(webhook);
    }

    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The next `n` stores fail (the queue is unavailable).
    pub fn fail_next(&self, n: u32) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).1 = n;
    }
}

#[async_trait]
impl WebhookInbox for FakeInbox {
    async fn store(&self, webhook: &crate::webhook::CarrierWebhook) -> StoreResult<()> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if g.1 > 0 {
            g.1 -= 1;
            return Err(StoreError::unavailable(
                "fake inbox",
                std::io::Error::other("the queue is unavailable"),
            ));
        }
        g.0.push_back(webhook.clone());
        Ok(())
    }
}
