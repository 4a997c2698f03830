//! Consent state, its ledger, and opt-outs of texting numbers.

use super::*;

#[async_trait]
impl ConsentReader for InMemoryStore {
    async fn consent(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
    ) -> StoreResult<Versioned<ConsentState>> {
        Ok(self
            .lock()
            .consent
            .get(&(dealer.clone(), phone.clone()))
            .cloned()
            .unwrap_or_default())
    }

    async fn consents(
        &self,
        dealer: &DealerId,
        phones: &[PhoneNumber],
    ) -> StoreResult<HashMap<PhoneNumber, ConsentState>> {
        let s = self.lock();
        Ok(phones
            .iter()
            .map(|p| {
                let state = s
                    .consent
                    .get(&(dealer.clone(), p.clone()))
                    .map(|v| v.value.clone())
                    .unwrap_or_default();
                (p.clone(), state)
            })
            .collect())
    }

    async fn history(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
    ) -> StoreResult<Vec<LedgerEntry>> {
        Ok(self.ledger(dealer, phone))
    }

    async fn opted_out(&self, from: &PhoneNumber, to: &PhoneNumber) -> StoreResult<bool> {
        Ok(self.lock().opted_out.contains(&(from.clone(), to.clone())))
    }
}

#[async_trait]
impl ConsentWriter for InMemoryStore {
    async fn set_opted_out(
        &self,
        from: &PhoneNumber,
        to: &PhoneNumber,
        opted_out: bool,
        _at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let pair = (from.clone(), to.clone());
        let mut s = self.lock();
        if opted_out {
            s.opted_out.insert(pair);
        } else {
            s.opted_out.remove(&pair);
        }
        Ok(())
    }

    async fn append(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
        expected_version: u64,
        entries: &[LedgerEntry],
        new_state: &ConsentState,
        consumed: &[PendingKey],
    ) -> StoreResult<()> {
        let mut s = self.lock();
        let key = (dealer.clone(), phone.clone());
        let current = s.consent.get(&key).map(|v| v.version).unwrap_or(0);
        if current != expected_version {
            return Err(StoreError::Conflict("consent version changed"));
        }
        for k in consumed {
            let pk = (dealer.clone(), phone.clone(), k.category);
            match s.pending.get(&pk) {
                Some(p) if p.request_id == k.request_id => {}
                _ => return Err(StoreError::Conflict("pending authorization changed")),
            }
        }
        for k in consumed {
            s.pending
                .remove(&(dealer.clone(), phone.clone(), k.category));
        }
        s.consent.insert(
            key.clone(),
            Versioned {
                value: new_state.clone(),
                version: expected_version + 1,
            },
        );
        s.ledger
            .entry(key)
            .or_default()
            .extend(entries.iter().cloned());
        Ok(())
    }
}
