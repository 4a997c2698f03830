//! Consent state, its ledger, and opt-outs of texting numbers.

use super::*;

fn consent_from(item: &Item) -> Result<Versioned<ConsentState>, StoreError> {
    let version = get_n(item, "version").unwrap_or(0);
    let value = match item.get("state") {
        Some(a) => serde_json::from_value(crate::attr::from_attr(a)).map_err(corrupt("consent"))?,
        None => ConsentState::default(),
    };
    Ok(Versioned { value, version })
}

#[async_trait]
impl ConsentReader for DynamoStore {
    async fn consent(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
    ) -> StoreResult<Versioned<ConsentState>> {
        match self.get(phone_pk(dealer, phone), "CONSENT").await? {
            Some(item) => consent_from(&item),
            None => Ok(Versioned::default()),
        }
    }

    async fn consents(
        &self,
        dealer: &DealerId,
        phones: &[PhoneNumber],
    ) -> StoreResult<HashMap<PhoneNumber, ConsentState>> {
        let keys = phones
            .iter()
            .map(|p| key(phone_pk(dealer, p), "CONSENT"))
            .collect();
        let mut out: HashMap<PhoneNumber, ConsentState> = phones
            .iter()
            .map(|p| (p.clone(), ConsentState::default()))
            .collect();
        for item in self.batch_get(keys).await? {
            let phone =
                crate::attr::get_s(&item, "phone").and_then(|p| PhoneNumber::from_e164(p).ok());
            if let Some(phone) = phone {
                out.insert(phone, consent_from(&item)?.value);
            }
        }
        Ok(out)
    }

    async fn history(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
    ) -> StoreResult<Vec<LedgerEntry>> {
        self.query_all(None, "PK", phone_pk(dealer, phone), "SK", "LEDGER#")
            .await?
            .iter()
            .map(|i| from_item(i).map_err(corrupt("ledger entry")))
            .collect()
    }

    async fn consent_to_text(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
        from: &PhoneNumber,
    ) -> StoreResult<(Versioned<ConsentState>, bool)> {
        // One strongly consistent BatchGetItem instead of two GetItems.
        let consent_pk = phone_pk(dealer, phone);
        let items = self
            .batch_get(vec![
                key(consent_pk.clone(), "CONSENT"),
                key(opt_out_pk(from, phone), "OPTOUT"),
            ])
            .await?;
        let mut state = Versioned::default();
        let mut opted_out = false;
        for item in &items {
            match item.get("PK").and_then(|v| v.as_s().ok()) {
                Some(pk) if *pk == consent_pk => state = consent_from(item)?,
                Some(_) => opted_out = true,
                None => {}
            }
        }
        Ok((state, opted_out))
    }

    async fn opted_out(&self, from: &PhoneNumber, to: &PhoneNumber) -> StoreResult<bool> {
        Ok(self.get(opt_out_pk(from, to), "OPTOUT").await?.is_some())
    }
}

#[async_trait]
impl ConsentWriter for DynamoStore {
    async fn set_opted_out(
        &self,
        from: &PhoneNumber,
        to: &PhoneNumber,
        opted_out: bool,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let k = key(opt_out_pk(from, to), "OPTOUT");
        if opted_out {
            let mut item = k;
            item.insert("since".into(), s(at.to_rfc3339()));
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .send()
                .await
                .map_err(unavailable("DynamoDB PutItem (opt-out)"))?;
        } else {
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(k))
                .send()
                .await
                .map_err(unavailable("DynamoDB DeleteItem (opt-out)"))?;
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
        let pk = phone_pk(dealer, phone);
        let state = serde_json::to_value(new_state).map_err(corrupt(&pk))?;
        let mut state_item = key(pk.clone(), "CONSENT");
        state_item.insert("version".into(), n(expected_version + 1));
        state_item.insert("state".into(), to_attr(&state));
        state_item.insert("phone".into(), s(phone.as_str()));
        state_item.insert("dealerId".into(), s(dealer.as_str()));
        let condition = if expected_version == 0 {
            "attribute_not_exists(PK)"
        } else {
            "version = :v"
        };
        let mut state_put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(state_item))
            .condition_expression(condition);
        if expected_version != 0 {
            state_put = state_put.expression_attribute_values(":v", n(expected_version));
        }
        let mut items = vec![TransactWriteItem::builder()
            .put(state_put.build().map_err(unavailable("building Put"))?)
            .build()];
        for e in entries {
            let mut item = to_item(e).map_err(corrupt(&pk))?;
            item.extend(key(pk.clone(), format!("LEDGER#{}", e.id)));
            items.push(put(&self.table, item, Some("attribute_not_exists(PK)"))?);
        }
        for c in consumed {
            let delete = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key(pk.clone(), format!("PENDING#{}", c.category))))
                .condition_expression("requestId = :r")
                .expression_attribute_values(":r", s(c.request_id.clone()))
                .build()
                .map_err(unavailable("building Delete"))?;
            items.push(TransactWriteItem::builder().delete(delete).build());
        }
        transact(&self.client, items, "consent changed concurrently").await
    }
}
