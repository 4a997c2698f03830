//! The outbound queue in memory.

use super::*;

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
