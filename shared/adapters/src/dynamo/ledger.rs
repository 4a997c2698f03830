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

    async fn history_page(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
        limit: u32,
        after: Option<&str>,
    ) -> StoreResult<(Vec<LedgerEntry>, bool)> {
        let (items, more) = self
            .query_page(
                phone_pk(dealer, phone),
                "LEDGER#",
                limit,
                after.map(|a| format!("LEDGER#{a}")),
            )
            .await?;
        let entries = items
            .iter()
            .map(|i| from_item(i).map_err(corrupt("ledger entry")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((entries, more))
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
            self.put_item(item, "DynamoDB PutItem (opt-out)").await?;
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
        change: ConsentChange<'_>,
    ) -> StoreResult<()> {
        let ConsentChange {
            expected_version,
            entries,
            new_state,
            consumed,
            acted,
        } = change;
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
            item.insert("GSI2PK".into(), s(ledger_index_pk(dealer)));
            item.insert("GSI2SK".into(), s(ledger_index_sk(e.at, &e.id)));
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
        if let Some(acted) = acted {
            let mut item = to_item(acted.mark).map_err(corrupt("acted mark"))?;
            item.extend(key(
                format!("INBOUND#{}", acted.carrier_message_id),
                super::inbound::ACTED_SK,
            ));
            items.push(put(&self.table, item, Some("attribute_not_exists(PK)"))?);
        }
        transact(&self.client, items, "consent changed concurrently").await
    }
}

#[async_trait]
impl LedgerExport for DynamoStore {
    async fn ledger_between(
        &self,
        dealer: &DealerId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
        cursor: Option<&str>,
    ) -> StoreResult<LedgerPage> {
        let index_pk = ledger_index_pk(dealer);
        let start = cursor
            .map(|c| decode_ledger_cursor(dealer, &index_pk, c))
            .transpose()?;
        // [from, to): "<from>#" sorts before every entry at `from`, "<to>#" before every
        // entry at `to`.
        let lo = format!("{:013}#", from.timestamp_millis().max(0));
        let hi = format!("{:013}#", to.timestamp_millis().max(0));
        if lo >= hi {
            return Ok(LedgerPage::default());
        }
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("GSI2")
            .key_condition_expression("GSI2PK = :pk AND GSI2SK BETWEEN :lo AND :hi")
            .expression_attribute_values(":pk", s(index_pk))
            .expression_attribute_values(":lo", s(lo))
            .expression_attribute_values(":hi", s(hi))
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(unavailable("DynamoDB Query (ledger export)"))?;
        let entries = out
            .items
            .unwrap_or_default()
            .iter()
            .map(|i| from_item::<LedgerEntry>(i).map_err(corrupt("ledger entry")))
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = out
            .last_evaluated_key
            .and_then(|_| entries.last().map(encode_ledger_cursor));
        Ok(LedgerPage {
            entries,
            next_cursor,
        })
    }
}

/// A cursor names the last entry returned (its dealer, number, id and time), as URL-safe
/// base64.
fn encode_ledger_cursor(e: &LedgerEntry) -> String {
    use base64::Engine;
    let text = serde_json::json!([
        e.dealer_id.as_str(),
        e.phone.as_str(),
        e.id,
        ledger_index_sk(e.at, &e.id)
    ]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text.to_string())
}

/// The ExclusiveStartKey a cursor stands for; only within the token's dealer's index.
fn decode_ledger_cursor(dealer: &DealerId, index_pk: &str, cursor: &str) -> StoreResult<Item> {
    let bad = super::bad_cursor;
    let (owner, phone, id, sort): (String, String, String, String) = super::read_cursor(cursor)?;
    if owner != dealer.as_str() {
        return Err(bad());
    }
    let phone = PhoneNumber::from_e164(&phone).map_err(|_| bad())?;
    let well_formed = sort.len() > 14
        && sort.as_bytes()[13] == b'#'
        && sort[..13].bytes().all(|b| b.is_ascii_digit())
        && sort[14..] == id;
    if !well_formed {
        return Err(bad());
    }
    let mut start = key(phone_pk(dealer, &phone), format!("LEDGER#{id}"));
    start.insert("GSI2PK".into(), s(index_pk.to_owned()));
    start.insert("GSI2SK".into(), s(sort));
    Ok(start)
}
