//! Inbound de-duplication, the inbound texts and the conversation view.

use super::*;

#[async_trait]
impl InboundLog for InMemoryStore {
    async fn record_text(&self, text: &InboundText) -> StoreResult<()> {
        let mut s = self.lock();
        s.take_write()?;
        s.texts
            .entry(text.carrier_message_id.clone())
            .or_insert_with(|| text.clone());
        Ok(())
    }

    async fn finished(&self, carrier_message_id: &str) -> StoreResult<bool> {
        Ok(self.lock().inbound.contains_key(carrier_message_id))
    }

    async fn finish(&self, carrier_message_id: &str, at: DateTime<Utc>) -> StoreResult<()> {
        let mut s = self.lock();
        s.take_write()?;
        s.inbound.entry(carrier_message_id.to_owned()).or_insert(at);
        Ok(())
    }

    async fn acted(&self, carrier_message_id: &str) -> StoreResult<Option<ActedMark>> {
        Ok(self.lock().acted.get(carrier_message_id).cloned())
    }

    async fn claim_confirmation(
        &self,
        request: &MessageId,
        carrier_message_id: &str,
    ) -> StoreResult<bool> {
        let mut s = self.lock();
        if let Some(holder) = s.confirmations.get(request) {
            return Ok(holder == carrier_message_id);
        }
        s.take_write()?;
        s.confirmations
            .insert(request.clone(), carrier_message_id.to_owned());
        Ok(true)
    }
}

#[async_trait]
impl Conversations for InMemoryStore {
    async fn conversation(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
        limit: u32,
        cursor: Option<&str>,
    ) -> StoreResult<ConversationPage> {
        let before = match cursor {
            None => None,
            Some(c) => Some(decode_conversation_cursor(dealer, phone, c)?),
        };
        let s = self.lock();
        let mut entries: Vec<ConversationEntry> = s
            .messages
            .values()
            .filter(|m| &m.dealer_id == dealer && &m.to == phone)
            .map(|m| ConversationEntry::Outbound(Box::new(m.clone())))
            .chain(
                s.texts
                    .values()
                    .filter(|t| &t.dealer_id == dealer && &t.from == phone)
                    .map(|t| ConversationEntry::Inbound(t.clone())),
            )
            .filter(|e| before.as_deref().is_none_or(|b| e.id() < b))
            .collect();
        entries.sort_by(|a, b| b.id().cmp(a.id()));
        let more = entries.len() > limit as usize;
        entries.truncate(limit as usize);
        let next_cursor = more
            .then(|| {
                entries
                    .last()
                    .map(|e| encode_conversation_cursor(dealer, phone, e.id()))
            })
            .flatten();
        Ok(ConversationPage {
            entries,
            next_cursor,
        })
    }
}

fn encode_conversation_cursor(dealer: &DealerId, phone: &PhoneNumber, id: &str) -> String {
    hex_cursor(&[dealer.as_str(), phone.as_str(), id])
}

fn decode_conversation_cursor(
    dealer: &DealerId,
    phone: &PhoneNumber,
    cursor: &str,
) -> StoreResult<String> {
    match &unhex_cursor(cursor)?[..] {
        [d, p, id] if d == dealer.as_str() && p == phone.as_str() && !id.is_empty() => {
            Ok(id.clone())
        }
        _ => Err(foreign_cursor()),
    }
}
