//! Pending authorization requests.

use super::*;

#[async_trait]
impl PendingStore for InMemoryStore {
    async fn pending(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
        category: Category,
    ) -> StoreResult<Option<PendingAuthorization>> {
        Ok(self
            .lock()
            .pending
            .get(&(dealer.clone(), phone.clone(), category))
            .cloned())
    }

    async fn pending_for_number(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
    ) -> StoreResult<Vec<PendingAuthorization>> {
        self.pending_for_numbers(dealer, std::slice::from_ref(phone))
            .await
    }

    async fn pending_for_numbers(
        &self,
        dealer: &DealerId,
        phones: &[PhoneNumber],
    ) -> StoreResult<Vec<PendingAuthorization>> {
        Ok(self
            .lock()
            .pending
            .values()
            .filter(|p| &p.dealer_id == dealer && phones.contains(&p.phone))
            .cloned()
            .collect())
    }

    async fn put_pending(&self, pending: &PendingAuthorization) -> StoreResult<()> {
        let mut s = self.lock();
        let k = (
            pending.dealer_id.clone(),
            pending.phone.clone(),
            pending.category,
        );
        if s.pending
            .get(&k)
            .is_some_and(|p| p.is_live(pending.created_at))
        {
            return Err(StoreError::Conflict("a live request exists"));
        }
        s.pending.insert(
            (
                pending.dealer_id.clone(),
                pending.phone.clone(),
                pending.category,
            ),
            pending.clone(),
        );
        Ok(())
    }

    async fn overdue(
        &self,
        created_before: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<PendingAuthorization>> {
        let s = self.lock();
        let mut out: Vec<PendingAuthorization> = s
            .pending
            .values()
            .filter(|p| p.created_at <= created_before && !s.followed_up.contains(&p.request_id))
            .cloned()
            .collect();
        out.sort_by_key(|p| p.created_at);
        out.truncate(limit as usize);
        Ok(out)
    }

    async fn mark_followed_up(&self, pending: &PendingAuthorization) -> StoreResult<()> {
        let mut s = self.lock();
        let current = s
            .pending
            .get(&(
                pending.dealer_id.clone(),
                pending.phone.clone(),
                pending.category,
            ))
            .map(|p| p.request_id.clone());
        if current.as_deref() != Some(pending.request_id.as_str())
            || !s.followed_up.insert(pending.request_id.clone())
        {
            return Err(StoreError::Conflict("pending authorization changed"));
        }
        Ok(())
    }

    async fn take_attempt(
        &self,
        pending: &PendingAuthorization,
    ) -> StoreResult<Option<PendingAuthorization>> {
        let mut s = self.lock();
        match s.pending.get_mut(&(
            pending.dealer_id.clone(),
            pending.phone.clone(),
            pending.category,
        )) {
            Some(p) if p.request_id == pending.request_id && p.attempts < MAX_ATTEMPTS => {
                p.attempts += 1;
                Ok(Some(p.clone()))
            }
            _ => Ok(None),
        }
    }

    async fn replace_code(&self, pending: &PendingAuthorization) -> StoreResult<()> {
        let mut s = self.lock();
        match s.pending.get_mut(&(
            pending.dealer_id.clone(),
            pending.phone.clone(),
            pending.category,
        )) {
            Some(p) if p.request_id == pending.request_id && p.sends + 1 == pending.sends => {
                p.code_hash = pending.code_hash.clone();
                p.sends = pending.sends;
                Ok(())
            }
            _ => Err(StoreError::Conflict("pending authorization changed")),
        }
    }

    async fn void(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
        category: Category,
        request_id: &str,
        sends: Option<u32>,
    ) -> StoreResult<()> {
        let mut s = self.lock();
        let k = (dealer.clone(), phone.clone(), category);
        if s.pending
            .get(&k)
            .is_some_and(|p| p.request_id == request_id && sends.is_none_or(|n| p.sends == n))
        {
            s.pending.remove(&k);
        }
        Ok(())
    }
}
