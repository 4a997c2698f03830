//! Pending authorization requests: codes, tries, resends, follow-ups.

use super::*;

fn pending_from(item: &Item) -> Result<PendingAuthorization, StoreError> {
    from_item(item).map_err(corrupt("pending authorization"))
}

#[async_trait]
impl PendingStore for DynamoStore {
    async fn pending(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
        category: Category,
    ) -> StoreResult<Option<PendingAuthorization>> {
        self.get(phone_pk(dealer, phone), &format!("PENDING#{category}"))
            .await?
            .map(|i| pending_from(&i))
            .transpose()
    }

    async fn pending_for_number(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
    ) -> StoreResult<Vec<PendingAuthorization>> {
        self.query_all(None, "PK", phone_pk(dealer, phone), "SK", "PENDING#")
            .await?
            .iter()
            .map(pending_from)
            .collect()
    }

    async fn pending_for_numbers(
        &self,
        dealer: &DealerId,
        phones: &[PhoneNumber],
    ) -> StoreResult<Vec<PendingAuthorization>> {
        let keys = phones
            .iter()
            .flat_map(|p| Category::ALL.map(|c| key(phone_pk(dealer, p), format!("PENDING#{c}"))))
            .collect();
        self.batch_get(keys)
            .await?
            .iter()
            .map(pending_from)
            .collect()
    }

    async fn put_pending(&self, p: &PendingAuthorization) -> StoreResult<()> {
        let pk = phone_pk(&p.dealer_id, &p.phone);
        let mut item = to_item(p).map_err(corrupt(&pk))?;
        item.extend(pending_key(p));
        // Kept two days past expiry: "expired" is told apart from "never asked", and a
        // request never completed is still there for the follow-up a day later.
        item.insert("ttl".into(), n(epoch(p.expires_at) + 2 * 24 * 3600));
        // The follow-up index (sparse: removed once followed up, deleted when completed).
        item.insert("GSI2PK".into(), s(FOLLOW_UP_PK));
        item.insert(
            "GSI2SK".into(),
            s(format!(
                "{:013}#{}",
                p.created_at.timestamp_millis().max(0),
                p.request_id
            )),
        );
        // Only where no request is live: none, expired by this one's creation (its ttl is
        // expiry + 2 days), or its tries used up.
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(PK) OR #ttl <= :expired OR attempts >= :max",
            )
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":expired", n(epoch(p.created_at) + 2 * 24 * 3600))
            .expression_attribute_values(":max", n(consent::approval::MAX_ATTEMPTS))
            .send()
            .await;
        conditional_write(
            result,
            "a live request exists",
            "DynamoDB PutItem (pending)",
        )
    }

    async fn overdue(
        &self,
        created_before: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<PendingAuthorization>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("GSI2")
            .key_condition_expression("GSI2PK = :pk AND GSI2SK <= :until")
            .expression_attribute_values(":pk", s(FOLLOW_UP_PK))
            .expression_attribute_values(
                ":until",
                s(format!(
                    "{:013}#~",
                    created_before.timestamp_millis().max(0)
                )),
            )
            .limit(limit.clamp(1, 1000) as i32)
            .send()
            .await
            .map_err(unavailable("DynamoDB Query (follow-ups)"))?;
        out.items
            .unwrap_or_default()
            .iter()
            .map(pending_from)
            .collect()
    }

    async fn mark_followed_up(&self, p: &PendingAuthorization) -> StoreResult<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(pending_key(p)))
            .update_expression("REMOVE GSI2PK, GSI2SK SET followedUp = :true")
            .condition_expression("requestId = :r AND attribute_exists(GSI2PK)")
            .expression_attribute_values(":r", s(p.request_id.clone()))
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .send()
            .await;
        conditional_write(
            result,
            "pending authorization changed",
            "DynamoDB UpdateItem (follow-up)",
        )
    }

    async fn take_attempt(
        &self,
        p: &PendingAuthorization,
    ) -> StoreResult<Option<PendingAuthorization>> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(pending_key(p)))
            .update_expression("SET attempts = attempts + :one")
            .condition_expression("requestId = :r AND attempts < :max")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":r", s(p.request_id.clone()))
            .expression_attribute_values(":max", n(consent::approval::MAX_ATTEMPTS))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => out
                .attributes
                .as_ref()
                .map(pending_from)
                .transpose()?
                .map(Some)
                .ok_or(StoreError::Partial(
                    "UpdateItem returned no attributes".into(),
                )),
            Err(e) if is_conditional(&e) => Ok(None),
            Err(e) => Err(StoreError::unavailable("DynamoDB UpdateItem (attempts)", e)),
        }
    }

    async fn replace_code(&self, p: &PendingAuthorization) -> StoreResult<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(pending_key(p)))
            .update_expression("SET codeHash = :h, sends = :sends")
            .condition_expression("requestId = :r AND sends = :before")
            .expression_attribute_values(":h", s(p.code_hash.clone()))
            .expression_attribute_values(":sends", n(p.sends))
            .expression_attribute_values(":before", n(p.sends.saturating_sub(1)))
            .expression_attribute_values(":r", s(p.request_id.clone()))
            .send()
            .await;
        conditional_write(
            result,
            "pending authorization changed",
            "DynamoDB UpdateItem (resend)",
        )
    }

    async fn void(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
        category: Category,
        request_id: &str,
        sends: Option<u32>,
    ) -> StoreResult<()> {
        let delete = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(
                phone_pk(dealer, phone),
                format!("PENDING#{category}"),
            )))
            .expression_attribute_values(":r", s(request_id.to_owned()));
        let delete = match sends {
            Some(n_sends) => delete
                .condition_expression("requestId = :r AND sends = :sends")
                .expression_attribute_values(":sends", n(n_sends)),
            None => delete.condition_expression("requestId = :r"),
        };
        let result = delete.send().await;
        match conditional_write(result, "replaced", "DynamoDB DeleteItem (void)") {
            Ok(()) | Err(StoreError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
