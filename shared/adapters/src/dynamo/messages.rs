//! Messages: creation with idempotency, status changes, delivery claims, the due index.

use super::*;

fn message_from(item: &Item) -> Result<Message, StoreError> {
    from_item(item).map_err(corrupt("message"))
}

#[async_trait]
impl MessageReader for DynamoStore {
    async fn message(&self, id: &MessageId) -> StoreResult<Option<Message>> {
        self.get(msg_pk(id), "MESSAGE")
            .await?
            .map(|i| message_from(&i))
            .transpose()
    }
    async fn by_recipient(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
        statuses: &[MessageStatus],
    ) -> StoreResult<Vec<Message>> {
        let items = self
            .query_all(
                Some("GSI1"),
                "GSI1PK",
                phone_pk(dealer, phone),
                "GSI1SK",
                "MSG#",
            )
            .await?;
        let mut out = Vec::new();
        // The number's inbound texts share the index (SK `TEXT`): messages only.
        let messages = items.iter().filter(|i| {
            i.get("SK").and_then(|v| v.as_s().ok()).map(String::as_str) == Some("MESSAGE")
        });
        for item in messages {
            let m = message_from(item)?;
            if statuses.contains(&m.status) {
                out.push(m);
            }
        }
        Ok(out)
    }
    async fn latest(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
        kind: &str,
    ) -> StoreResult<Option<MessageId>> {
        let Some(item) = self
            .get_consistent(phone_pk(dealer, phone), &format!("LATEST#{kind}"))
            .await?
        else {
            return Ok(None);
        };
        item.get("messageId")
            .and_then(|v| v.as_s().ok())
            .map(|id| {
                MessageId::parse(id).map_err(|e| StoreError::Corrupt {
                    key: format!("LATEST#{kind}"),
                    reason: e.to_string(),
                })
            })
            .transpose()
    }
    async fn cap_book(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
        category: Category,
    ) -> StoreResult<CapBook> {
        let Some(book) = self
            .get_consistent(phone_pk(dealer, phone), &cap_book_sk(category))
            .await?
        else {
            return Ok(CapBook::default());
        };
        let version = get_n(&book, "version").unwrap_or(0);
        let keys = match book.get("ids") {
            Some(AttributeValue::L(ids)) => ids
                .iter()
                .filter_map(|v| v.as_s().ok())
                .map(|id| key(format!("MSG#{id}"), "MESSAGE"))
                .collect(),
            _ => Vec::new(),
        };
        // Consistent reads of the base table: a text accepted a moment ago counts.
        let messages = self
            .batch_get(keys)
            .await?
            .iter()
            .map(message_from)
            .collect::<Result<_, _>>()?;
        Ok(CapBook { version, messages })
    }
}

/// The sort key of a person's cap book for a category (beside its consent item).
fn cap_book_sk(category: Category) -> String {
    format!("CAPBOOK#{category}")
}

/// The Update that moves a cap book on from the version its writer read (the item is
/// made by the first write, version 1).
fn move_book(table: &str, book: &CapBookWrite) -> Result<TransactWriteItem, StoreError> {
    let ids = book.ids.iter().map(|id| s(id.as_str())).collect::<Vec<_>>();
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(key(
            phone_pk(&book.dealer, &book.phone),
            cap_book_sk(book.category),
        )))
        .update_expression("SET #version = :next, #ids = :ids")
        .condition_expression(if book.read == 0 {
            "attribute_not_exists(#version)"
        } else {
            "#version = :read"
        })
        .expression_attribute_names("#version", "version")
        .expression_attribute_names("#ids", "ids")
        .expression_attribute_values(":next", n(book.read + 1))
        .expression_attribute_values(":ids", AttributeValue::L(ids));
    let update = if book.read == 0 {
        update
    } else {
        update.expression_attribute_values(":read", n(book.read))
    };
    Ok(TransactWriteItem::builder()
        .update(update.build().map_err(unavailable("building Update"))?)
        .build())
}

#[async_trait]
impl MessageWriter for DynamoStore {
    async fn create(
        &self,
        message: &Message,
        idempotency: Option<&IdempotencyRecord>,
    ) -> StoreResult<()> {
        let item = self.message_item(message)?;
        let Some(record) = idempotency else {
            return self
                .put_new(item, "message exists", "DynamoDB PutItem")
                .await;
        };
        let items = vec![
            self.idempotency_put(record)?,
            put(&self.table, item, Some("attribute_not_exists(PK)"))?,
        ];
        transact(&self.client, items, "idempotency key exists").await
    }
    async fn note_latest(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
        kind: &str,
        id: &MessageId,
    ) -> StoreResult<()> {
        let mut item = key(phone_pk(dealer, phone), format!("LATEST#{kind}"));
        item.insert("messageId".into(), s(id.as_str()));
        self.put_item(item, "DynamoDB PutItem (latest)").await
    }
    async fn create_counted(
        &self,
        message: &Message,
        idempotency: Option<&IdempotencyRecord>,
        book: &CapBookWrite,
    ) -> StoreResult<()> {
        let item = self.message_item(message)?;
        let mut items = vec![
            put(&self.table, item, Some("attribute_not_exists(PK)"))?,
            move_book(&self.table, book)?,
        ];
        if let Some(record) = idempotency {
            items.push(self.idempotency_put(record)?);
        }
        transact(
            &self.client,
            items,
            "idempotency key exists or cap book moved on",
        )
        .await
    }
    async fn idempotency(
        &self,
        dealer: &DealerId,
        key_name: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        let Some(item) = self
            .get(format!("DEALER#{dealer}#IDEM#{key_name}"), "IDEM")
            .await?
        else {
            return Ok(None);
        };
        let record: IdempotencyRecord = from_item(&item).map_err(corrupt("idempotency"))?;
        // TTL deletion is eventual: an expired key is treated as absent.
        let expired = at.timestamp() > get_n(&item, "ttl").map(|t| t as i64).unwrap_or(i64::MAX);
        Ok((!expired).then_some(record))
    }
    async fn save(&self, message: &Message, expected: MessageStatus) -> StoreResult<()> {
        let item = self.message_item(message)?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("#status = :expected AND size(#history) = :seen")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#history", "history")
            .expression_attribute_values(":expected", s(expected.as_str()))
            .expression_attribute_values(":seen", n(message.history.len().saturating_sub(1)))
            .send()
            .await;
        conditional_write(result, "message status changed", "DynamoDB PutItem")
    }
}

impl DynamoStore {
    /// The Put of an idempotency key, conditional on the key being free (or expired).
    fn idempotency_put(&self, record: &IdempotencyRecord) -> Result<TransactWriteItem, StoreError> {
        let mut idem = to_item(record).map_err(corrupt("idempotency"))?;
        idem.extend(key(
            format!("DEALER#{}#IDEM#{}", record.dealer_id, record.key),
            "IDEM",
        ));
        idem.insert(
            "ttl".into(),
            n(epoch(record.created_at) + IDEMPOTENCY_TTL.num_seconds()),
        );
        // An expired key DynamoDB has not deleted yet counts as absent, as on read.
        let idem = Put::builder()
            .table_name(&self.table)
            .set_item(Some(idem))
            .condition_expression("attribute_not_exists(PK) OR #ttl < :now")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":now", n(epoch(record.created_at)))
            .build()
            .map_err(unavailable("building Put"))?;
        Ok(TransactWriteItem::builder().put(idem).build())
    }
}

#[async_trait]
impl DeliveryClaims for DynamoStore {
    async fn claim_for_delivery(
        &self,
        id: &MessageId,
        expected: &ClaimExpectation<'_>,
        at: DateTime<Utc>,
        consent: Option<&ConsentGuard>,
    ) -> StoreResult<DeliveryClaim> {
        let change = serde_json::json!({"status": "sending", "at": at});
        let snap = expected.snapshot;
        // The stored message must be what the queue record says: who, from where, what,
        // under which category and kind (and, for a code text, the same sealed code).
        let code_condition = match &snap.code {
            Some(_) => "#code.#sealed = :sealed",
            None => "attribute_not_exists(#code)",
        };
        let mut claim = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(msg_pk(id), "MESSAGE")))
            .update_expression("SET #status = :sending, #history = list_append(#history, :change) REMOVE DuePK, DueSK, statusReason")
            .condition_expression(format!(
                "#status = :queued AND #dealer = :dealer AND #kind = :kind AND #to = :to \
                 AND #from = :from AND #body = :body AND #category = :category AND {code_condition}"
            ))
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#history", "history")
            .expression_attribute_names("#dealer", "dealerId")
            .expression_attribute_names("#kind", "kind")
            .expression_attribute_names("#to", "to")
            .expression_attribute_names("#from", "from")
            .expression_attribute_names("#body", "body")
            .expression_attribute_names("#category", "category")
            .expression_attribute_names("#code", "code")
            .expression_attribute_values(":sending", s("sending"))
            .expression_attribute_values(":queued", s("queued"))
            .expression_attribute_values(":dealer", s(expected.dealer.as_str()))
            .expression_attribute_values(":kind", to_attr(&serde_json::to_value(snap.kind).map_err(corrupt(id.as_str()))?))
            .expression_attribute_values(":to", s(snap.to.as_str()))
            .expression_attribute_values(":from", s(snap.from.as_str()))
            .expression_attribute_values(":body", s(snap.body.clone()))
            .expression_attribute_values(":category", s(snap.category.as_str()))
            .expression_attribute_values(":change", AttributeValue::L(vec![to_attr(&change)]));
        if let Some(code) = &snap.code {
            claim = claim
                .expression_attribute_names("#sealed", "sealed")
                .expression_attribute_values(":sealed", s(code.sealed.clone()));
        }
        let claim = claim.build().map_err(unavailable("building Update"))?;
        // The dealer still owns the number it would send from (it may have changed its
        // texting number since the message was made).
        let owner = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(format!("NUMBER#{}", snap.from), "OWNER")))
            .condition_expression("dealerId = :dealer")
            .expression_attribute_values(":dealer", s(expected.dealer.as_str()))
            .build()
            .map_err(unavailable("building ConditionCheck"))?;
        let mut items = vec![
            TransactWriteItem::builder().update(claim).build(),
            TransactWriteItem::builder().condition_check(owner).build(),
        ];
        // Everything but an answer to the person's own text stops at an opt-out of the
        // sending number.
        let opt_out_checked = snap.kind != consent::message::MessageKind::Reply;
        if opt_out_checked {
            let check = ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(key(opt_out_pk(&snap.from, &snap.to), "OPTOUT")))
                .condition_expression("attribute_not_exists(PK)")
                .build()
                .map_err(unavailable("building ConditionCheck"))?;
            items.push(TransactWriteItem::builder().condition_check(check).build());
        }
        if let Some(g) = consent {
            // The consent state's stored form: state.categories[slot].status.
            let check = ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(key(phone_pk(&g.dealer, &g.phone), "CONSENT")))
                .condition_expression(format!(
                    "#state.#categories[{}].#status = :authorized",
                    consent::ledger::slot(g.category)
                ))
                .expression_attribute_names("#state", "state")
                .expression_attribute_names("#categories", "categories")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":authorized", s("authorized"))
                .build()
                .map_err(unavailable("building ConditionCheck"))?;
            items.push(TransactWriteItem::builder().condition_check(check).build());
        }
        // A deleted contact's texts do not go.
        let contact_at = items.len();
        let contact_checked = match &snap.contact_id {
            Some(contact) if opt_out_checked => {
                let check = ConditionCheck::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(
                        format!("DEALER#{}", expected.dealer),
                        format!("CONTACT#{contact}"),
                    )))
                    .condition_expression("attribute_exists(PK)")
                    .build()
                    .map_err(unavailable("building ConditionCheck"))?;
                items.push(TransactWriteItem::builder().condition_check(check).build());
                true
            }
            _ => false,
        };
        let book_at = items.len();
        if let Some(book) = expected.book {
            items.push(move_book(&self.table, book)?);
        }
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        let reasons = match result {
            Ok(_) => return Ok(DeliveryClaim::Claimed),
            Err(e) => {
                use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError as E;
                match e.as_service_error() {
                    Some(E::TransactionCanceledException(t)) => t
                        .cancellation_reasons()
                        .iter()
                        .map(|r| r.code() == Some("ConditionalCheckFailed"))
                        .collect::<Vec<bool>>(),
                    _ => {
                        return Err(StoreError::unavailable(
                            "DynamoDB TransactWriteItems (claim)",
                            e,
                        ))
                    }
                }
            }
        };
        if reasons.first().copied().unwrap_or(false) {
            return Ok(match self.message(id).await? {
                Some(m) if m.status == MessageStatus::Queued => DeliveryClaim::Mismatch,
                Some(m) => DeliveryClaim::NotClaimable(m.status),
                None => DeliveryClaim::NotFound,
            });
        }
        if reasons.get(1).copied().unwrap_or(false) {
            return Ok(DeliveryClaim::NumberMoved);
        }
        let consent_at = if opt_out_checked {
            if reasons.get(2).copied().unwrap_or(false) {
                return Ok(DeliveryClaim::OptedOut);
            }
            3
        } else {
            2
        };
        if consent.is_some() && reasons.get(consent_at).copied().unwrap_or(false) {
            return Ok(DeliveryClaim::ConsentMissing);
        }
        if contact_checked && reasons.get(contact_at).copied().unwrap_or(false) {
            return Ok(DeliveryClaim::ContactGone);
        }
        if expected.book.is_some() && reasons.get(book_at).copied().unwrap_or(false) {
            return Ok(DeliveryClaim::BookMoved);
        }
        Err(StoreError::Partial(
            "the claim was canceled for another reason".into(),
        ))
    }
    async fn repoint(
        &self,
        id: &MessageId,
        from: &PhoneNumber,
        to: &PhoneNumber,
    ) -> StoreResult<bool> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(msg_pk(id), "MESSAGE")))
            .update_expression("SET #from = :to")
            .condition_expression("#status = :queued AND #from = :from")
            .expression_attribute_names("#from", "from")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":to", s(to.as_str()))
            .expression_attribute_values(":from", s(from.as_str()))
            .expression_attribute_values(":queued", s("queued"))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_conditional(&e) => Ok(false),
            Err(e) => Err(StoreError::unavailable("DynamoDB UpdateItem (repoint)", e)),
        }
    }
    async fn record_delivery(
        &self,
        id: &MessageId,
        from: MessageStatus,
        r: &DeliveryRecord,
    ) -> StoreResult<()> {
        let change = serde_json::to_value(consent::message::StatusChange {
            status: r.status,
            at: r.at,
            reason: r.reason.clone(),
        })
        .map_err(corrupt(id.as_str()))?;
        let mut set = vec!["#status = :to", "#history = list_append(#history, :change)"];
        let mut remove = Vec::new();
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(msg_pk(id), "MESSAGE")))
            .condition_expression("#status = :from")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#history", "history")
            .expression_attribute_values(":to", s(r.status.as_str()))
            .expression_attribute_values(":from", s(from.as_str()))
            .expression_attribute_values(":change", AttributeValue::L(vec![to_attr(&change)]));
        match &r.reason {
            Some(reason) => {
                set.push("statusReason = :reason");
                update = update.expression_attribute_values(":reason", s(reason.clone()));
            }
            None => remove.push("statusReason"),
        }
        if let Some(c) = &r.carrier_message_id {
            set.push("carrierMessageId = :carrier");
            update = update.expression_attribute_values(":carrier", s(c.clone()));
        }
        let mut add = Vec::new();
        if r.attempted {
            add.push("attempts :one");
            update = update.expression_attribute_values(":one", n(1));
        }
        if let Some(t) = r.send_at {
            set.push("sendAt = :sendAt");
            set.push("dueEpoch = :dueEpoch");
            update = update
                .expression_attribute_values(
                    ":sendAt",
                    to_attr(&serde_json::to_value(t).map_err(corrupt(id.as_str()))?),
                )
                .expression_attribute_values(":dueEpoch", n(epoch(t)));
        }
        // The due index follows the new status, as `Message::index_time` defines it.
        let index_at = match r.status {
            MessageStatus::Scheduled | MessageStatus::Deferred => r.send_at,
            MessageStatus::Queued => Some(r.at + consent::message::REQUEUE_AFTER),
            _ => None,
        };
        match index_at {
            Some(at) => {
                set.push("DuePK = :duePK");
                set.push("DueSK = :dueSK");
                update = update
                    .expression_attribute_values(":duePK", s(format!("DUE#{}", self.shard_of(id))))
                    .expression_attribute_values(
                        ":dueSK",
                        s(format!("{:013}#{id}", at.timestamp_millis().max(0))),
                    );
            }
            None => remove.extend(["DuePK", "DueSK"]),
        }
        // A code text's sealed code is kept only while it may still go.
        if r.status != MessageStatus::Queued {
            remove.push("code");
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        if !add.is_empty() {
            expression.push_str(&format!(" ADD {}", add.join(", ")));
        }
        conditional_write(
            update.update_expression(expression).send().await,
            "message status changed",
            "DynamoDB UpdateItem (delivery)",
        )
    }
}

#[async_trait]
impl DueIndex for DynamoStore {
    async fn due(&self, shard: u32, until: DateTime<Utc>, limit: u32) -> StoreResult<Vec<Message>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("Due")
            .key_condition_expression("DuePK = :pk AND DueSK <= :until")
            .expression_attribute_values(":pk", s(format!("DUE#{shard}")))
            .expression_attribute_values(
                ":until",
                s(format!("{:013}#~", until.timestamp_millis().max(0))),
            )
            .limit(limit.clamp(1, 1000) as i32)
            .send()
            .await
            .map_err(unavailable("DynamoDB Query (due)"))?;
        out.items
            .unwrap_or_default()
            .iter()
            .map(message_from)
            // The index is eventually consistent: keep only what is still waiting.
            .filter(|m| m.as_ref().map(|m| m.index_time().is_some()).unwrap_or(true))
            .collect()
    }
}
