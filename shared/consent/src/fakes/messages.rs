//! Messages, delivery claims and the due index.

use super::*;

#[async_trait]
impl MessageReader for InMemoryStore {
    async fn message(&self, id: &MessageId) -> StoreResult<Option<Message>> {
        Ok(self.lock().messages.get(id).cloned())
    }
    async fn by_recipient(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
        statuses: &[MessageStatus],
    ) -> StoreResult<Vec<Message>> {
        Ok(self
            .lock()
            .messages
            .values()
            .filter(|m| &m.dealer_id == dealer && &m.to == phone && statuses.contains(&m.status))
            .cloned()
            .collect())
    }
    async fn latest(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
        kind: &str,
    ) -> StoreResult<Option<MessageId>> {
        Ok(self
            .lock()
            .latest
            .get(&(dealer.clone(), phone.clone(), kind.to_owned()))
            .cloned())
    }
    async fn cap_book(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
        category: Category,
    ) -> StoreResult<CapBook> {
        let s = self.lock();
        let Some((version, ids)) = s.cap_books.get(&(dealer.clone(), phone.clone(), category))
        else {
            return Ok(CapBook::default());
        };
        Ok(CapBook {
            version: *version,
            messages: ids
                .iter()
                .filter_map(|id| s.messages.get(id).cloned())
                .collect(),
        })
    }
}

#[async_trait]
impl MessageWriter for InMemoryStore {
    async fn create(
        &self,
        message: &Message,
        idempotency: Option<&IdempotencyRecord>,
    ) -> StoreResult<()> {
        let mut s = self.lock();
        s.take_write()?;
        s.insert_message(message, idempotency)
    }
    async fn note_latest(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
        kind: &str,
        id: &MessageId,
    ) -> StoreResult<()> {
        let mut s = self.lock();
        s.take_write()?;
        s.latest
            .insert((dealer.clone(), phone.clone(), kind.to_owned()), id.clone());
        Ok(())
    }
    async fn create_counted(
        &self,
        message: &Message,
        idempotency: Option<&IdempotencyRecord>,
        book: &CapBookWrite,
    ) -> StoreResult<()> {
        // One lock: the message, its key and the book move together or not at all.
        let mut s = self.lock();
        s.take_write()?;
        if s.book_version(book) != book.read {
            return Err(StoreError::Conflict("cap book moved on"));
        }
        s.insert_message(message, idempotency)?;
        s.move_book(book)
    }
    async fn idempotency(
        &self,
        dealer: &DealerId,
        key: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        Ok(self
            .lock()
            .idempotency
            .get(&(dealer.clone(), key.to_owned()))
            .filter(|r| at <= r.created_at + IDEMPOTENCY_TTL)
            .cloned())
    }
    async fn save(&self, message: &Message, expected: MessageStatus) -> StoreResult<()> {
        let mut s = self.lock();
        s.take_write()?;
        match s.messages.get_mut(&message.id) {
            Some(m) if m.status == expected && m.history.len() + 1 == message.history.len() => {
                *m = message.clone();
                Ok(())
            }
            _ => Err(StoreError::Conflict("message status changed")),
        }
    }
}

#[async_trait]
impl DeliveryClaims for InMemoryStore {
    async fn claim_for_delivery(
        &self,
        id: &MessageId,
        expected: &ClaimExpectation<'_>,
        at: DateTime<Utc>,
        consent: Option<&ConsentGuard>,
    ) -> StoreResult<DeliveryClaim> {
        let mut s = self.lock();
        s.take_write()?;
        let allowed = consent.is_none_or(|g| {
            s.consent
                .get(&(g.dealer.clone(), g.phone.clone()))
                .is_some_and(|v| v.value.may_send(g.category).is_allowed())
        });
        let blocked = s.messages.get(id).is_some_and(|m| {
            m.kind != crate::message::MessageKind::Reply
                && s.opted_out.contains(&(m.from.clone(), m.to.clone()))
        });
        let book_current = expected.book.is_none_or(|b| s.book_version(b) == b.read);
        let number_moved = s
            .messages
            .get(id)
            .is_some_and(|m| s.numbers.get(&m.from) != Some(&m.dealer_id));
        let contact_gone = s.messages.get(id).is_some_and(|m| {
            m.kind != crate::message::MessageKind::Reply
                && m.contact_id
                    .as_ref()
                    .is_some_and(|c| !s.contacts.contains_key(&(m.dealer_id.clone(), c.clone())))
        });
        let Some(m) = s.messages.get_mut(id) else {
            return Ok(DeliveryClaim::NotFound);
        };
        if m.status != MessageStatus::Queued {
            return Ok(DeliveryClaim::NotClaimable(m.status));
        }
        if !m.agrees_with(expected.dealer, expected.snapshot) {
            return Ok(DeliveryClaim::Mismatch);
        }
        if number_moved {
            return Ok(DeliveryClaim::NumberMoved);
        }
        if blocked {
            return Ok(DeliveryClaim::OptedOut);
        }
        if !allowed {
            return Ok(DeliveryClaim::ConsentMissing);
        }
        if contact_gone {
            return Ok(DeliveryClaim::ContactGone);
        }
        if !book_current {
            return Ok(DeliveryClaim::BookMoved);
        }
        m.transition(MessageStatus::Sending, at, None);
        if let Some(book) = expected.book {
            s.move_book(book)?;
        }
        Ok(DeliveryClaim::Claimed)
    }
    async fn repoint(
        &self,
        id: &MessageId,
        from: &PhoneNumber,
        to: &PhoneNumber,
    ) -> StoreResult<bool> {
        let mut s = self.lock();
        s.take_write()?;
        Ok(match s.messages.get_mut(id) {
            Some(m) if m.status == MessageStatus::Queued && &m.from == from => {
                m.from = to.clone();
                true
            }
            _ => false,
        })
    }
    async fn record_delivery(
        &self,
        id: &MessageId,
        from: MessageStatus,
        r: &DeliveryRecord,
    ) -> StoreResult<()> {
        let mut s = self.lock();
        match s.messages.get_mut(id) {
            Some(m) if m.status == from => {
                m.transition(r.status, r.at, r.reason.clone());
                if let Some(c) = &r.carrier_message_id {
                    m.carrier_message_id = Some(c.clone());
                }
                if let Some(t) = r.send_at {
                    m.send_at = t;
                }
                if r.attempted {
                    m.attempts += 1;
                }
                if r.status != MessageStatus::Queued {
                    m.code = None;
                }
                Ok(())
            }
            _ => Err(StoreError::Conflict("message status changed")),
        }
    }
}

#[async_trait]
impl DueIndex for InMemoryStore {
    async fn due(&self, shard: u32, until: DateTime<Utc>, limit: u32) -> StoreResult<Vec<Message>> {
        let _ = shard; // one shard in memory: shard 0 holds everything
        if shard != 0 {
            return Ok(Vec::new());
        }
        let mut due: Vec<Message> = self
            .lock()
            .messages
            .values()
            .filter(|m| m.index_time().is_some_and(|t| t <= until))
            .cloned()
            .collect();
        due.sort_by_key(|m| m.index_time());
        due.truncate(limit as usize);
        Ok(due)
    }
}
