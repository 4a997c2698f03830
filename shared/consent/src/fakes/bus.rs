//! The event bus in memory.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::ports::*;

/// The event bus in memory.
#[derive(Clone, Default)]
pub struct FakeBus {
    events: Arc<Mutex<Vec<BusEvent>>>,
}

impl FakeBus {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn published(&self) -> Vec<BusEvent> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[async_trait]
impl EventPublisher for FakeBus {
    async fn publish(&self, events: &[BusEvent]) -> StoreResult<()> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(events.iter().cloned());
        Ok(())
    }
}
