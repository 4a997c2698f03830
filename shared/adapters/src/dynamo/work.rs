//! Texting queues (work items) and their cursor pages.

use super::*;

fn work_item(w: &WorkItem) -> Result<Item, StoreError> {
    let pk = queue_pk(&w.dealer_id, w.queue);
    let mut item = to_item(w).map_err(corrupt(&pk))?;
    item.extend(key(pk.clone(), format!("ITEM#{}", w.id)));
    item.insert(
        "GSI2PK".into(),
        s(format!("{pk}#STATUS#{}", w.status.as_str())),
    );
    item.insert("GSI2SK".into(), s(format!("ITEM#{}", w.id)));
    Ok(item)
}

fn decode_cursor(cursor: &str, pk: &str) -> Result<Item, StoreError> {
    decode_key_cursor(cursor, |map| {
        map.get("PK").is_some_and(|v| v == pk)
            && map.get("SK").is_some_and(|v| v.starts_with("ITEM#"))
            && map.len() <= 4
    })
}

#[async_trait]
impl WorkQueue for DynamoStore {
    async fn add_item(&self, w: &WorkItem) -> StoreResult<()> {
        self.put_new(
            work_item(w)?,
            "work item exists",
            "DynamoDB PutItem (work item)",
        )
        .await
    }
}

#[async_trait]
impl WorkQueueDesk for DynamoStore {
    async fn item(
        &self,
        dealer: &DealerId,
        queue: WorkQueueName,
        id: &str,
    ) -> StoreResult<Option<WorkItem>> {
        self.get(queue_pk(dealer, queue), &format!("ITEM#{id}"))
            .await?
            .map(|i| from_item(&i).map_err(corrupt("work item")))
            .transpose()
    }

    async fn items(
        &self,
        dealer: &DealerId,
        queue: WorkQueueName,
        q: &ItemQuery,
    ) -> StoreResult<ItemPage> {
        let pk = queue_pk(dealer, queue);
        let mut start = q
            .cursor
            .as_deref()
            .map(|c| decode_cursor(c, &pk))
            .transpose()?;
        let mut items = Vec::new();
        let mut filters = Vec::new();
        if q.contact_id.is_some() {
            filters.push("contactId = :contact");
        }
        if q.account_id.is_some() {
            filters.push("accountId = :account");
        }
        // Bounded: a filtered page may need a few reads to fill.
        for _ in 0..10 {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .scan_index_forward(!q.newest_first)
                .limit((q.limit - items.len() as u32).max(1) as i32)
                .set_exclusive_start_key(start.take());
            query = match q.status {
                Some(status) => query
                    .index_name("GSI2")
                    .key_condition_expression("GSI2PK = :pk")
                    .expression_attribute_values(
                        ":pk",
                        s(format!("{pk}#STATUS#{}", status.as_str())),
                    ),
                None => query
                    .key_condition_expression("PK = :pk AND begins_with(SK, :item)")
                    .expression_attribute_values(":pk", s(pk.clone()))
                    .expression_attribute_values(":item", s("ITEM#")),
            };
            if !filters.is_empty() {
                query = query.filter_expression(filters.join(" AND "));
            }
            if let Some(c) = &q.contact_id {
                query = query.expression_attribute_values(":contact", s(c.as_str()));
            }
            if let Some(a) = &q.account_id {
                query = query.expression_attribute_values(":account", s(a.as_str()));
            }
            let out = query
                .send()
                .await
                .map_err(unavailable("DynamoDB Query (work items)"))?;
            for i in out.items.unwrap_or_default() {
                items.push(from_item::<WorkItem>(&i).map_err(corrupt("work item"))?);
            }
            start = out.last_evaluated_key;
            if start.is_none() || items.len() as u32 >= q.limit {
                break;
            }
        }
        // Base-table keys continue either list (index keys carry PK and SK too).
        let next_cursor = start.map(|k| encode_key_cursor(&k));
        Ok(ItemPage { items, next_cursor })
    }

    async fn open_count(&self, dealer: &DealerId, queue: WorkQueueName) -> StoreResult<u64> {
        let mut count = 0u64;
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name("GSI2")
                .set_limit(self.page_limit)
                .key_condition_expression("GSI2PK = :pk")
                .expression_attribute_values(
                    ":pk",
                    s(format!("{}#STATUS#open", queue_pk(dealer, queue))),
                )
                .select(aws_sdk_dynamodb::types::Select::Count)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable("DynamoDB Query (count)"))?;
            count += out.count.max(0) as u64;
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        Ok(count)
    }

    async fn save_item(&self, w: &WorkItem, expected: WorkItemStatus) -> StoreResult<()> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(work_item(w)?))
            .condition_expression("#status = :expected")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":expected", s(expected.as_str()))
            .send()
            .await;
        conditional_write(result, "work item changed", "DynamoDB PutItem (work item)")
    }
}
