//! Inbound de-duplication by carrier message id, inbound texts, and the conversation
//! (outbound messages and inbound texts of a number share GSI1, sorted by ULID).

use super::*;

#[async_trait]
impl InboundLog for DynamoStore {
    async fn record_text(&self, text: &InboundText) -> StoreResult<()> {
        let mut item = to_item(text).map_err(corrupt("inbound text"))?;
        item.extend(key(format!("INBOUND#{}", text.carrier_message_id), "TEXT"));
        item.insert("GSI1PK".into(), s(phone_pk(&text.dealer_id, &text.from)));
        item.insert("GSI1SK".into(), s(format!("MSG#{}", text.id)));
        match self
            .put_new(item, "inbound text", "DynamoDB PutItem (inbound text)")
            .await
        {
            // A retried webhook: the first copy stays.
            Ok(()) | Err(StoreError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn finished(&self, carrier_message_id: &str) -> StoreResult<bool> {
        Ok(self
            .get_consistent(format!("INBOUND#{carrier_message_id}"), "DEDUP")
            .await?
            .is_some())
    }

    async fn finish(&self, carrier_message_id: &str, at: DateTime<Utc>) -> StoreResult<()> {
        // Kept as long as the ledger (never expired): a replayed signed START years later
        // must not act again on someone who said STOP since. Written last, after every
        // effect: a second finish (a concurrent delivery) keeps the first time.
        let mut item = key(format!("INBOUND#{carrier_message_id}"), "DEDUP");
        item.insert("receivedAt".into(), s(at.to_rfc3339()));
        match self
            .put_new(item, "finished", "DynamoDB PutItem (inbound finished)")
            .await
        {
            Ok(()) | Err(StoreError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn acted(&self, carrier_message_id: &str) -> StoreResult<Option<ActedMark>> {
        self.get_consistent(format!("INBOUND#{carrier_message_id}"), ACTED_SK)
            .await?
            .map(|i| from_item(&i).map_err(corrupt("acted mark")))
            .transpose()
    }

    async fn claim_confirmation(
        &self,
        request: &MessageId,
        carrier_message_id: &str,
    ) -> StoreResult<bool> {
        // One item per pay request, never expired: the CONFIRM that holds it, or its
        // redelivery, passes; any other CONFIRM finds it taken.
        let mut item = key(format!("PAYREQUEST#{request}"), "CONFIRMED");
        item.insert("carrierMessageId".into(), s(carrier_message_id));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK) OR carrierMessageId = :sid")
            .expression_attribute_values(":sid", s(carrier_message_id))
            .send()
            .await;
        match conditional_write(result, "confirmed", "DynamoDB PutItem (pay request)") {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Sort key of a reply's acted mark (`INBOUND#{carrier message id}`), written in the
/// transaction of the consent change it made.
pub(super) const ACTED_SK: &str = "ACTED";

#[async_trait]
impl Conversations for DynamoStore {
    async fn conversation(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
        limit: u32,
        cursor: Option<&str>,
    ) -> StoreResult<ConversationPage> {
        let pk = phone_pk(dealer, phone);
        let start = cursor
            .map(|c| decode_conversation_cursor(&pk, c))
            .transpose()?;
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("GSI1")
            .key_condition_expression("GSI1PK = :pk AND begins_with(GSI1SK, :msg)")
            .expression_attribute_values(":pk", s(pk.clone()))
            .expression_attribute_values(":msg", s("MSG#"))
            .scan_index_forward(false)
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(unavailable("DynamoDB Query (conversation)"))?;
        let mut entries = Vec::new();
        for item in out.items.unwrap_or_default() {
            match item
                .get("SK")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str)
            {
                Some("MESSAGE") => entries.push(ConversationEntry::Outbound(Box::new(
                    from_item(&item).map_err(corrupt("message"))?,
                ))),
                Some("TEXT") => entries.push(ConversationEntry::Inbound(
                    from_item(&item).map_err(corrupt("inbound text"))?,
                )),
                _ => {}
            }
        }
        let next_cursor = out.last_evaluated_key.map(|k| encode_key_cursor(&k));
        Ok(ConversationPage {
            entries,
            next_cursor,
        })
    }
}

/// A cursor only continues the conversation it came from.
fn decode_conversation_cursor(pk: &str, cursor: &str) -> StoreResult<Item> {
    decode_key_cursor(cursor, |map| {
        map.get("GSI1PK").is_some_and(|v| v == pk)
            && map.get("GSI1SK").is_some_and(|v| v.starts_with("MSG#"))
            && map.len() == 4
            && ["PK", "SK"].iter().all(|k| map.contains_key(*k))
    })
}
