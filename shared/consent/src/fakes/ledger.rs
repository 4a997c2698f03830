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
        s.take_write()?;
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
        change: ConsentChange<'_>,
    ) -> StoreResult<()> {
        let ConsentChange {
            expected_version,
            entries,
            new_state,
            consumed,
            acted,
        } = change;
        let mut s = self.lock();
        s.take_write()?;
        let key = (dealer.clone(), phone.clone());
        let current = s.consent.get(&key).map(|v| v.version).unwrap_or(0);
        if current != expected_version {
            return Err(StoreError::Conflict("consent version changed"));
        }
        if acted.is_some_and(|a| s.acted.contains_key(a.carrier_message_id)) {
            return Err(StoreError::Conflict("the reply has acted"));
        }

        for k in consumed {
            let pk = (dealer.clone(), phone.clone(), k.category);
            match s.pending.get(&pk) {
                Some(p) if p.request_id == k.request_id => {}
                _ => return Err(StoreError::Conflict("pending authorization changed")),
            }
        }
        if let Some(a) = acted {
            s.acted
                .insert(a.carrier_message_id.to_owned(), a.mark.clone());
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

/// The fake's cursor: the sort key of the last entry returned, `<epoch ms>#<id>` in
/// hex, so a tampered cursor is refused like DynamoDB's.
fn ledger_sort_key(e: &LedgerEntry) -> (i64, String) {
    (e.at.timestamp_millis(), e.id.clone())
}

#[async_trait]
impl LedgerExport for InMemoryStore {
    async fn ledger_between(
        &self,
        dealer: &DealerId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
        cursor: Option<&str>,
    ) -> StoreResult<LedgerPage> {
        let after = match cursor {
            None => None,
            Some(c) => Some(decode_ledger_cursor(dealer, c)?),
        };
        let mut entries: Vec<LedgerEntry> = self
            .lock()
            .ledger
            .iter()
            .filter(|((d, _), _)| d == dealer)
            .flat_map(|(_, es)| es.iter().cloned())
            .filter(|e| e.at >= from && e.at < to)
            .filter(|e| after.as_ref().is_none_or(|a| ledger_sort_key(e) > *a))
            .collect();
        entries.sort_by_key(ledger_sort_key);
        let more = entries.len() > limit as usize;
        entries.truncate(limit as usize);
        let next_cursor = more
            .then(|| entries.last().map(|e| encode_ledger_cursor(dealer, e)))
            .flatten();
        Ok(LedgerPage {
            entries,
            next_cursor,
        })
    }
}

fn encode_ledger_cursor(dealer: &DealerId, e: &LedgerEntry) -> String {
    let (ms, id) = ledger_sort_key(e);
    hex_cursor(&[dealer.as_str(), &ms.to_string(), &id])
}

fn decode_ledger_cursor(dealer: &DealerId, cursor: &str) -> StoreResult<(i64, String)> {
    match &unhex_cursor(cursor)?[..] {
        [d, ms, id] if d == dealer.as_str() => {
            Ok((ms.parse().map_err(|_| foreign_cursor())?, id.clone()))
        }
        _ => Err(foreign_cursor()),
    }
}
