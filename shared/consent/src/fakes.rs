//! In-memory implementations of every port, for tests of services and handlers
//! (enabled by the `test-util` feature). They keep the same conditional-write
//! semantics as the real adapters, so races and replays can be tested without AWS.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::approval::{PendingAuthorization, MAX_ATTEMPTS};
use crate::category::Category;
use crate::error::StoreError;
use crate::ids::{AccountId, ContactId, DealId, DealerId, MessageId};
use crate::ledger::{ConsentState, LedgerEntry};
use crate::message::{Message, MessageStatus, Outbound};
use crate::phone::PhoneNumber;
use crate::ports::*;

#[derive(Default)]
struct State {
    dealers: HashMap<DealerId, Dealer>,
    numbers: HashMap<PhoneNumber, DealerId>,
    contacts: BTreeMap<(DealerId, ContactId), Contact>,
    consent: HashMap<(DealerId, PhoneNumber), Versioned<ConsentState>>,
    ledger: HashMap<(DealerId, PhoneNumber), Vec<LedgerEntry>>,
    pending: HashMap<(DealerId, PhoneNumber, Category), PendingAuthorization>,
    rates: HashMap<(String, i64), u32>,
    messages: BTreeMap<MessageId, Message>,
    idempotency: HashMap<(DealerId, String), IdempotencyRecord>,
    inbound: HashMap<String, DateTime<Utc>>,
    work: Vec<WorkItem>,
    followed_up: std::collections::HashSet<String>,
    /// The operator's texting numbers.
    provisioned: HashMap<PhoneNumber, ProvisionedNumber>,
    /// (texting number, person) pairs the person opted out of.
    opted_out: std::collections::HashSet<(PhoneNumber, PhoneNumber)>,
}

/// Every storage port in one in-memory store.
#[derive(Clone, Default)]
pub struct InMemoryStore {
    state: Arc<Mutex<State>>,
}

impl InMemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic in another test thread must not hide this test's result.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// All messages, oldest id first.
    pub fn messages(&self) -> Vec<Message> {
        self.lock().messages.values().cloned().collect()
    }

    pub fn work_items(&self) -> Vec<WorkItem> {
        self.lock().work.clone()
    }

    pub fn ledger(&self, dealer: &DealerId, phone: &PhoneNumber) -> Vec<LedgerEntry> {
        self.lock()
            .ledger
            .get(&(dealer.clone(), phone.clone()))
            .cloned()
            .unwrap_or_default()
    }

    /// Changes a stored message behind the services' back (tests of races).
    pub fn put_message_raw(&self, message: Message) {
        self.lock().messages.insert(message.id.clone(), message);
    }
}

#[async_trait]
impl DealerStore for InMemoryStore {
    async fn dealer(&self, id: &DealerId) -> StoreResult<Option<Dealer>> {
        Ok(self.lock().dealers.get(id).cloned())
    }

    async fn put_dealer(
        &self,
        dealer: &Dealer,
        previous_number: Option<&PhoneNumber>,
    ) -> StoreResult<()> {
        let mut s = self.lock();
        if let Some(owner) = s.numbers.get(&dealer.texting_number) {
            if owner != &dealer.id {
                return Err(StoreError::Conflict(
                    "texting number belongs to another dealer",
                ));
            }
        }
        if let Some(prev) = previous_number.filter(|p| **p != dealer.texting_number) {
            s.numbers.remove(prev);
        }
        s.numbers
            .insert(dealer.texting_number.clone(), dealer.id.clone());
        s.dealers.insert(dealer.id.clone(), dealer.clone());
        Ok(())
    }

    async fn dealer_by_number(&self, number: &PhoneNumber) -> StoreResult<Option<DealerId>> {
        Ok(self.lock().numbers.get(number).cloned())
    }
}

impl InMemoryStore {
    /// The operator provisions a texting number (as `infra/provision_numbers.py` does).
    pub fn provision(&self, number: &PhoneNumber, carrier_account: &str) {
        self.lock().provisioned.insert(
            number.clone(),
            ProvisionedNumber {
                number: number.clone(),
                carrier_account: carrier_account.to_owned(),
            },
        );
    }
}

#[async_trait]
impl NumberDirectory for InMemoryStore {
    async fn provisioned(&self, number: &PhoneNumber) -> StoreResult<Option<ProvisionedNumber>> {
        Ok(self.lock().provisioned.get(number).cloned())
    }
}

#[async_trait]
impl ContactStore for InMemoryStore {
    async fn contact(&self, dealer: &DealerId, id: &ContactId) -> StoreResult<Option<Contact>> {
        Ok(self
            .lock()
            .contacts
            .get(&(dealer.clone(), id.clone()))
            .cloned())
    }

    async fn put_contact(&self, contact: &Contact, previous: Option<&Contact>) -> StoreResult<()> {
        let mut s = self.lock();
        let stored = s
            .contacts
            .get(&(contact.dealer_id.clone(), contact.id.clone()))
            .map(|c| c.updated_at);
        if stored != previous.map(|p| p.updated_at) {
            return Err(StoreError::Conflict("contact changed"));
        }
        s.contacts.insert(
            (contact.dealer_id.clone(), contact.id.clone()),
            contact.clone(),
        );
        Ok(())
    }

    async fn contacts_by_account(
        &self,
        dealer: &DealerId,
        account: &AccountId,
    ) -> StoreResult<Vec<Contact>> {
        Ok(self
            .lock()
            .contacts
            .values()
            .filter(|c| &c.dealer_id == dealer && c.account_ids.contains(account))
            .cloned()
            .collect())
    }

    async fn contacts_by_deal(
        &self,
        dealer: &DealerId,
        deal: &DealId,
    ) -> StoreResult<Vec<Contact>> {
        Ok(self
            .lock()
            .contacts
            .values()
            .filter(|c| &c.dealer_id == dealer && c.deal_ids.contains(deal))
            .cloned()
            .collect())
    }

    async fn contacts_by_phone(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
    ) -> StoreResult<Vec<Contact>> {
        Ok(self
            .lock()
            .contacts
            .values()
            .filter(|c| &c.dealer_id == dealer && &c.phone == phone)
            .cloned()
            .collect())
    }
}

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

#[async_trait]
impl PendingStore for InMemoryStore {
    async fn pending(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
        category: Category,
    ) -> StoreResult<Option<PendingAuthorization>> {
        Ok(self
            .lock()
            .pending
            .get(&(dealer.clone(), phone.clone(), category))
            .cloned())
    }

    async fn pending_for_number(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
    ) -> StoreResult<Vec<PendingAuthorization>> {
        self.pending_for_numbers(dealer, std::slice::from_ref(phone))
            .await
    }

    async fn pending_for_numbers(
        &self,
        dealer: &DealerId,
        phones: &[PhoneNumber],
    ) -> StoreResult<Vec<PendingAuthorization>> {
        Ok(self
            .lock()
            .pending
            .values()
            .filter(|p| &p.dealer_id == dealer && phones.contains(&p.phone))
            .cloned()
            .collect())
    }

    async fn put_pending(&self, pending: &PendingAuthorization) -> StoreResult<()> {
        self.lock().pending.insert(
            (
                pending.dealer_id.clone(),
                pending.phone.clone(),
                pending.category,
            ),
            pending.clone(),
        );
        Ok(())
    }

    async fn overdue(
        &self,
        created_before: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<PendingAuthorization>> {
        let s = self.lock();
        let mut out: Vec<PendingAuthorization> = s
            .pending
            .values()
            .filter(|p| p.created_at <= created_before && !s.followed_up.contains(&p.request_id))
            .cloned()
            .collect();
        out.sort_by_key(|p| p.created_at);
        out.truncate(limit as usize);
        Ok(out)
    }

    async fn mark_followed_up(&self, pending: &PendingAuthorization) -> StoreResult<()> {
        let mut s = self.lock();
        let current = s
            .pending
            .get(&(
                pending.dealer_id.clone(),
                pending.phone.clone(),
                pending.category,
            ))
            .map(|p| p.request_id.clone());
        if current.as_deref() != Some(pending.request_id.as_str())
            || !s.followed_up.insert(pending.request_id.clone())
        {
            return Err(StoreError::Conflict("pending authorization changed"));
        }
        Ok(())
    }

    async fn take_attempt(
        &self,
        pending: &PendingAuthorization,
    ) -> StoreResult<Option<PendingAuthorization>> {
        let mut s = self.lock();
        match s.pending.get_mut(&(
            pending.dealer_id.clone(),
            pending.phone.clone(),
            pending.category,
        )) {
            Some(p) if p.request_id == pending.request_id && p.attempts < MAX_ATTEMPTS => {
                p.attempts += 1;
                Ok(Some(p.clone()))
            }
            _ => Ok(None),
        }
    }

    async fn replace_code(&self, pending: &PendingAuthorization) -> StoreResult<()> {
        let mut s = self.lock();
        match s.pending.get_mut(&(
            pending.dealer_id.clone(),
            pending.phone.clone(),
            pending.category,
        )) {
            Some(p) if p.request_id == pending.request_id => {
                p.code_hash = pending.code_hash.clone();
                p.sends = pending.sends;
                Ok(())
            }
            _ => Err(StoreError::Conflict("pending authorization changed")),
        }
    }

    async fn void(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
        category: Category,
        request_id: &str,
    ) -> StoreResult<()> {
        let mut s = self.lock();
        let k = (dealer.clone(), phone.clone(), category);
        if s.pending
            .get(&k)
            .is_some_and(|p| p.request_id == request_id)
        {
            s.pending.remove(&k);
        }
        Ok(())
    }
}

#[async_trait]
impl RateLimiter for InMemoryStore {
    async fn acquire(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
        at: DateTime<Utc>,
    ) -> StoreResult<RateDecision> {
        let secs = window.as_secs().max(1) as i64;
        let bucket = at.timestamp().div_euclid(secs);
        let mut s = self.lock();
        let count = s.rates.entry((key.to_owned(), bucket)).or_insert(0);
        if *count >= limit {
            let retry = (bucket + 1) * secs - at.timestamp();
            return Ok(RateDecision::Limited {
                retry_after: Duration::from_secs(retry.max(1) as u64),
            });
        }
        *count += 1;
        Ok(RateDecision::Allowed)
    }
}

#[async_trait]
impl MessageStore for InMemoryStore {
    async fn message(&self, id: &MessageId) -> StoreResult<Option<Message>> {
        Ok(self.lock().messages.get(id).cloned())
    }

    async fn create(
        &self,
        message: &Message,
        idempotency: Option<&IdempotencyRecord>,
    ) -> StoreResult<()> {
        let mut s = self.lock();
        if s.messages.contains_key(&message.id) {
            return Err(StoreError::Conflict("message exists"));
        }
        if let Some(r) = idempotency {
            let k = (r.dealer_id.clone(), r.key.clone());
            if s.idempotency
                .get(&k)
                .is_some_and(|old| r.created_at <= old.created_at + IDEMPOTENCY_TTL)
            {
                return Err(StoreError::Conflict("idempotency key exists"));
            }
            s.idempotency.insert(k, r.clone());
        }
        s.messages.insert(message.id.clone(), message.clone());
        Ok(())
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
        match s.messages.get_mut(&message.id) {
            Some(m) if m.status == expected && m.history.len() + 1 == message.history.len() => {
                *m = message.clone();
                Ok(())
            }
            _ => Err(StoreError::Conflict("message status changed")),
        }
    }

    async fn claim_for_delivery(
        &self,
        id: &MessageId,
        expected: &ClaimExpectation<'_>,
        at: DateTime<Utc>,
        consent: Option<&ConsentGuard>,
    ) -> StoreResult<DeliveryClaim> {
        let mut s = self.lock();
        let allowed = consent.is_none_or(|g| {
            s.consent
                .get(&(g.dealer.clone(), g.phone.clone()))
                .is_some_and(|v| v.value.may_send(g.category).is_allowed())
        });
        let blocked = s.messages.get(id).is_some_and(|m| {
            m.kind != crate::message::MessageKind::Reply
                && s.opted_out.contains(&(m.from.clone(), m.to.clone()))
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
        if blocked {
            return Ok(DeliveryClaim::OptedOut);
        }
        if !allowed {
            return Ok(DeliveryClaim::ConsentMissing);
        }
        m.transition(MessageStatus::Sending, at, None);
        Ok(DeliveryClaim::Claimed)
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
                if let Some(a) = r.attempts {
                    m.attempts = a;
                }
                if r.status != MessageStatus::Queued {
                    m.code = None;
                }
                Ok(())
            }
            _ => Err(StoreError::Conflict("message status changed")),
        }
    }

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
}

#[async_trait]
impl InboundLog for InMemoryStore {
    async fn first_delivery(
        &self,
        carrier_message_id: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        Ok(self
            .lock()
            .inbound
            .insert(carrier_message_id.to_owned(), at)
            .is_none())
    }

    async fn forget(&self, carrier_message_id: &str) -> StoreResult<()> {
        self.lock().inbound.remove(carrier_message_id);
        Ok(())
    }
}

#[async_trait]
impl WorkQueue for InMemoryStore {
    async fn add_item(&self, item: &WorkItem) -> StoreResult<()> {
        self.lock().work.push(item.clone());
        Ok(())
    }
}

/// The outbound queue in memory: records what was queued; can refuse the next sends.
#[derive(Clone, Default)]
pub struct FakeQueue {
    inner: Arc<Mutex<(Vec<Outbound>, u32)>>,
}

impl FakeQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything queued so far, in order.
    pub fn sent(&self) -> Vec<Outbound> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone()
    }

    /// Takes what was queued (as a consumer would).
    pub fn drain(&self) -> Vec<Outbound> {
        std::mem::take(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()).0)
    }

    /// The next `n` enqueue calls refuse every item.
    pub fn fail_next(&self, n: u32) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).1 = n;
    }
}

#[async_trait]
impl OutboundQueue for FakeQueue {
    async fn enqueue(&self, items: &[Outbound]) -> StoreResult<Vec<MessageId>> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if g.1 > 0 {
            g.1 -= 1;
            return Ok(items
                .iter()
                .map(|o| o.envelope.message_id.clone())
                .collect());
        }
        g.0.extend(items.iter().cloned());
        Ok(Vec::new())
    }
}

/// The event bus in memory.
#[derive(Clone, Default)]
pub struct FakeBus {
    events: Arc<Mutex<Vec<BusEvent>>>,
}

impl FakeBus {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn published(&self) -> Vec<BusEvent> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[async_trait]
impl EventPublisher for FakeBus {
    async fn publish(&self, events: &[BusEvent]) -> StoreResult<()> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(events.iter().cloned());
        Ok(())
    }
}

/// How the fake carrier answers the next sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CarrierScript {
    Retryable,
    OptedOut,
    Permanent,
    /// The carrier takes the text (the phone gets it) but the answer never arrives.
    AcceptThenTimeout,
}

#[derive(Default)]
struct CarrierState {
    sent: Vec<CarrierSend>,
    script: VecDeque<CarrierScript>,
    counter: u64,
}

/// The carrier in memory: records every send; can fail the next ones.
#[derive(Clone, Default)]
pub struct FakeCarrier {
    inner: Arc<Mutex<CarrierState>>,
}

impl FakeCarrier {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn sent(&self) -> Vec<CarrierSend> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .sent
            .clone()
    }

    /// Texts received by a number, oldest first.
    pub fn inbox(&self, to: &PhoneNumber) -> Vec<String> {
        self.sent()
            .into_iter()
            .filter(|s| &s.to == to)
            .map(|s| s.body)
            .collect()
    }

    pub fn fail_next(&self, n: usize, how: CarrierScript) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.script.extend(std::iter::repeat_n(how, n));
    }
}

#[async_trait]
impl Carrier for FakeCarrier {
    async fn send(&self, message: &CarrierSend) -> Result<CarrierReceipt, CarrierError> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match g.script.pop_front() {
            Some(CarrierScript::Retryable) => Err(CarrierError::Retryable {
                reason: "HTTP 500".into(),
                retry_after: None,
            }),
            Some(CarrierScript::OptedOut) => Err(CarrierError::OptedOut { code: 21610 }),
            Some(CarrierScript::Permanent) => Err(CarrierError::Permanent {
                code: Some(21211),
                reason: "HTTP 400".into(),
            }),
            Some(CarrierScript::AcceptThenTimeout) => {
                g.counter += 1;
                g.sent.push(message.clone());
                Err(CarrierError::Unknown {
                    reason: "timeout after the request was sent".into(),
                })
            }
            None => {
                g.counter += 1;
                let sid = format!("SM{:032x}", g.counter);
                g.sent.push(message.clone());
                Ok(CarrierReceipt {
                    carrier_message_id: sid,
                })
            }
        }
    }
}

#[async_trait]
impl WorkQueueDesk for InMemoryStore {
    async fn item(
        &self,
        dealer: &DealerId,
        queue: WorkQueueName,
        id: &str,
    ) -> StoreResult<Option<WorkItem>> {
        Ok(self
            .lock()
            .work
            .iter()
            .find(|w| &w.dealer_id == dealer && w.queue == queue && w.id == id)
            .cloned())
    }

    async fn items(
        &self,
        dealer: &DealerId,
        queue: WorkQueueName,
        query: &ItemQuery,
    ) -> StoreResult<ItemPage> {
        let mut items: Vec<WorkItem> = self
            .lock()
            .work
            .iter()
            .filter(|w| &w.dealer_id == dealer && w.queue == queue)
            .filter(|w| query.status.is_none_or(|s| w.status == s))
            .filter(|w| {
                query
                    .contact_id
                    .as_ref()
                    .is_none_or(|c| w.contact_id.as_ref() == Some(c))
            })
            .filter(|w| {
                query
                    .account_id
                    .as_ref()
                    .is_none_or(|a| w.account_id.as_ref() == Some(a))
            })
            .cloned()
            .collect();
        items.sort_by(|a, b| a.id.cmp(&b.id));
        if query.newest_first {
            items.reverse();
        }
        // The cursor is the last id of the previous page.
        if let Some(after) = &query.cursor {
            let pos = items
                .iter()
                .position(|w| &w.id == after)
                .ok_or(StoreError::Corrupt {
                    key: "cursor".into(),
                    reason: "unknown cursor".into(),
                })?;
            items.drain(..=pos);
        }
        let more = items.len() > query.limit as usize;
        items.truncate(query.limit as usize);
        let next_cursor = if more {
            items.last().map(|w| w.id.clone())
        } else {
            None
        };
        Ok(ItemPage { items, next_cursor })
    }

    async fn open_count(&self, dealer: &DealerId, queue: WorkQueueName) -> StoreResult<u64> {
        Ok(self
            .lock()
            .work
            .iter()
            .filter(|w| {
                &w.dealer_id == dealer && w.queue == queue && w.status == WorkItemStatus::Open
            })
            .count() as u64)
    }

    async fn save_item(&self, item: &WorkItem, expected: WorkItemStatus) -> StoreResult<()> {
        let mut s = self.lock();
        match s
            .work
            .iter_mut()
            .find(|w| w.dealer_id == item.dealer_id && w.queue == item.queue && w.id == item.id)
        {
            Some(w) if w.status == expected => {
                *w = item.clone();
                Ok(())
            }
            _ => Err(StoreError::Conflict("work item changed")),
        }
    }
}

// ------------------------------------------------------------------ shared scenario steps

/// The authorization ports over one in-memory store and queue (no number pool), as the
/// authorize function wires them.
pub fn authorization_ports<'a>(
    store: &'a InMemoryStore,
    queue: &'a FakeQueue,
    hasher: &'a crate::approval::CodeHasher,
) -> crate::service::authorization::AuthorizationPorts<'a> {
    crate::service::authorization::AuthorizationPorts {
        dealers: store,
        contacts: store,
        consent: store,
        consent_writer: store,
        pending: store,
        limits: store,
        messages: store,
        queue,
        hasher,
        number_pool: &[],
    }
}

/// The six-digit code in a code text, as the person reads it off the phone.
pub fn code_in(body: &str) -> crate::approval::ApprovalCode {
    body.split(|c: char| !c.is_ascii_digit())
        .find(|t| t.len() == 6)
        .and_then(|c| crate::approval::ApprovalCode::parse(c).ok())
        .unwrap_or_else(|| panic!("no approval code in {body:?}"))
}

/// Staff click Authorize for `category` at `at`; returns the code text (the newest
/// queued message, as the person's phone shows it) and the code in it.
pub async fn request_code(
    ports: &crate::service::authorization::AuthorizationPorts<'_>,
    store: &InMemoryStore,
    queue: &FakeQueue,
    staff: (&DealerId, &crate::ids::StaffUserId),
    contact: &ContactId,
    category: Category,
    at: DateTime<Utc>,
) -> (Message, crate::approval::ApprovalCode) {
    crate::service::authorization::request(ports, staff.0, staff.1, contact, category, at)
        .await
        .unwrap_or_else(|e| panic!("authorization request: {e}"));
    let newest = queue.sent().pop().expect("a queued code text");
    let text = store
        .message(&newest.envelope.message_id)
        .await
        .ok()
        .flatten()
        .expect("the code text is stored");
    assert_eq!(text.kind, crate::message::MessageKind::ApprovalCode);
    let sealed = text
        .code
        .as_ref()
        .expect("a code text carries its sealed code");
    let code = ports
        .hasher
        .open(&sealed.sealed, text.id.as_str())
        .expect("the sealed code opens with the code key");
    (text, code)
}

/// The person authorizes `category` by reading the texted code back to staff at `at`
/// (request and verify through the real authorization service). Returns the code text;
/// it stays on `queue` (callers that do not deliver it drain the queue).
pub async fn grant_by_code(
    store: &InMemoryStore,
    queue: &FakeQueue,
    staff: (&DealerId, &crate::ids::StaffUserId),
    contact: &ContactId,
    category: Category,
    at: DateTime<Utc>,
) -> Message {
    let hasher = crate::approval::CodeHasher::new("fakes-grant-by-code-key")
        .unwrap_or_else(|e| panic!("{e}"));
    let ports = authorization_ports(store, queue, &hasher);
    let (text, code) = request_code(&ports, store, queue, staff, contact, category, at).await;
    crate::service::authorization::verify(&ports, staff.0, staff.1, contact, category, &code, at)
        .await
        .unwrap_or_else(|e| panic!("authorization verify: {e}"));
    text
}
