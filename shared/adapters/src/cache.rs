//! A short-lived, per-container cache of dealer settings for the hot paths (send,
//! automated sends, inbound): settings change rarely, and a warm Lambda container
//! serving many texts need not read them each time. Writes go through and invalidate.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use consent::ports::{Dealer, DealerStore, StoreResult};
use consent::{DealerId, PhoneNumber};

/// How long a cached dealer is trusted.
pub const DEALER_TTL: Duration = Duration::from_secs(60);

pub struct CachedDealers<S> {
    inner: S,
    ttl: Duration,
    dealers: Mutex<HashMap<DealerId, (Instant, Dealer)>>,
    numbers: Mutex<HashMap<PhoneNumber, (Instant, DealerId)>>,
}

impl<S> CachedDealers<S> {
    pub fn new(inner: S, ttl: Duration) -> Self {
        Self {
            inner,
            ttl,
            dealers: Mutex::new(HashMap::new()),
            numbers: Mutex::new(HashMap::new()),
        }
    }
}

fn fresh<K: std::hash::Hash + Eq, V: Clone>(
    map: &Mutex<HashMap<K, (Instant, V)>>,
    key: &K,
    ttl: Duration,
) -> Option<V> {
    let guard = map.lock().unwrap_or_else(|e| e.into_inner());
    guard
        .get(key)
        .filter(|(at, _)| at.elapsed() < ttl)
        .map(|(_, v)| v.clone())
}

fn remember<K: std::hash::Hash + Eq, V>(map: &Mutex<HashMap<K, (Instant, V)>>, key: K, value: V) {
    let mut guard = map.lock().unwrap_or_else(|e| e.into_inner());
    // Bounded: a container serves few dealers; start over rather than grow without end.
    if guard.len() >= 10_000 {
        guard.clear();
    }
    guard.insert(key, (Instant::now(), value));
}

#[async_trait]
impl<S: DealerStore> DealerStore for CachedDealers<S> {
    async fn dealer(&self, id: &DealerId) -> StoreResult<Option<Dealer>> {
        if let Some(d) = fresh(&self.dealers, id, self.ttl) {
            return Ok(Some(d));
        }
        let found = self.inner.dealer(id).await?;
        if let Some(d) = &found {
            remember(&self.dealers, id.clone(), d.clone());
        }
        Ok(found)
    }

    async fn put_dealer(
        &self,
        dealer: &Dealer,
        previous_number: Option<&PhoneNumber>,
    ) -> StoreResult<()> {
        self.inner.put_dealer(dealer, previous_number).await?;
        self.dealers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&dealer.id);
        if let Some(p) = previous_number {
            self.numbers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(p);
        }
        Ok(())
    }

    async fn dealer_by_number(&self, number: &PhoneNumber) -> StoreResult<Option<DealerId>> {
        if let Some(d) = fresh(&self.numbers, number, self.ttl) {
            return Ok(Some(d));
        }
        let found = self.inner.dealer_by_number(number).await?;
        if let Some(d) = &found {
            remember(&self.numbers, number.clone(), d.clone());
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use consent::fakes::InMemoryStore;

    #[tokio::test]
    async fn reads_once_within_the_ttl_and_writes_invalidate() {
        let store = InMemoryStore::new();
        let cached = CachedDealers::new(store.clone(), Duration::from_secs(60));
        let d = Dealer {
            id: DealerId::parse("d").unwrap(),
            name: "A".into(),
            texting_number: PhoneNumber::from_e164("+12025550100").unwrap(),
            help_contact: None,
            time_zone: None,
        };
        cached.put_dealer(&d, None).await.unwrap();
        assert_eq!(cached.dealer(&d.id).await.unwrap().unwrap().name, "A");
        // A change behind the cache's back is not seen within the TTL ...
        store
            .put_dealer(
                &Dealer {
                    name: "B".into(),
                    ..d.clone()
                },
                None,
            )
            .await
            .unwrap();
        assert_eq!(cached.dealer(&d.id).await.unwrap().unwrap().name, "A");
        // ... but a write through the cache is.
        cached
            .put_dealer(
                &Dealer {
                    name: "C".into(),
                    ..d.clone()
                },
                None,
            )
            .await
            .unwrap();
        assert_eq!(cached.dealer(&d.id).await.unwrap().unwrap().name, "C");
        // A zero TTL always reads.
        let uncached = CachedDealers::new(store.clone(), Duration::ZERO);
        store
            .put_dealer(
                &Dealer {
                    name: "D".into(),
                    ..d.clone()
                },
                None,
            )
            .await
            .unwrap();
        assert_eq!(uncached.dealer(&d.id).await.unwrap().unwrap().name, "D");
    }
}
