//! The one test world: a seeded dealer and contact, grant, and the ports over the
//! in-memory fakes; services, randomized and handler tests use it.
//!
//! The customer has a Washington D.C. number (+1 202, America/New_York): [`noon`] is
//! Wednesday 2026-06-10 16:00 UTC = 12:00 EDT, inside the 08:00-21:00 window;
//! [`late_evening`] is 2026-06-11 03:00 UTC = 23:00 EDT on the 10th, outside it.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Map, Value};

use super::bus::FakeBus;
use super::carrier::{FakeCarrier, FakeOptOuts};
use super::queue::FakeQueue;
use super::scenario::authorization_ports;
use super::store::InMemoryStore;
use crate::approval::{ApprovalCode, CodeHasher};
use crate::ledger::{ConsentState, ConsentStatus, LedgerEntry};
use crate::message::{Idempotency, Message, MessageKind, MessageStatus, Origin, OutboundEnvelope};
use crate::ports::{CarrierSend, ConsentReader, Contact, ContactStore, Dealer, DealerStore};
use crate::service::authorization::{
    self as auth, AuthorizationPorts, AuthorizationView, Requested,
};
use crate::service::contacts::ContactsPorts;
use crate::service::delivery::{self, DeliverOutcome, DeliverPorts};
use crate::service::replies::InboundSms;
use crate::service::replies::{self, InboundPorts, ReplyOutcome, StatusPorts};
use crate::service::sending::{
    self, DispatchPorts, DispatchReport, SendAccepted, SendPorts, SendRequest,
};
use crate::{
    AccountId, Category, ContactId, DealerId, DomainError, MessageId, PhoneNumber, StaffUserId,
};

pub const DEALER: &str = "sunrise-motors";
pub const DEALER_NAME: &str = "Sunrise Motors";
pub const DEALER_NUMBER: &str = "+12025550100";
pub const CUSTOMER: &str = "+12025550143";

/// 12:00 EDT in Washington, D.C.
pub fn noon() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 10, 16, 0, 0).unwrap()
}

/// 23:00 EDT on 2026-06-10.
pub fn late_evening() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 11, 3, 0, 0).unwrap()
}

pub fn mins(n: i64) -> Duration {
    Duration::minutes(n)
}

pub fn phone(s: &str) -> PhoneNumber {
    PhoneNumber::from_e164(s).unwrap()
}

pub fn vars(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

pub fn reminder_vars() -> Map<String, Value> {
    vars(json!({"firstName": "Maria", "amount": "412.37", "dueDate": "2026-06-15"}))
}

pub fn past_due_vars() -> Map<String, Value> {
    vars(json!({
        "firstName": "Maria",
        "amount": "412.37",
        "dueDate": "2026-06-01",
        "paymentUrl": "https://pay.sunrise.example/p/7Hq2x",
    }))
}

pub fn offer_vars() -> Map<String, Value> {
    vars(json!({
        "offer": "0% APR on new Civics.",
        "endDate": "2026-06-30",
        "offerUrl": "https://sunrise.example/o/june",
    }))
}

/// The six digits of a code text.
fn code_in(body: &str) -> ApprovalCode {
    let digits: Vec<&str> = body
        .split(|c: char| !c.is_ascii_digit())
        .filter(|t| t.len() == 6)
        .collect();
    assert_eq!(digits.len(), 1, "one 6-digit code in {body:?}");
    ApprovalCode::parse(digits[0]).unwrap()
}

/// A code that differs from `code` in its first digit.
pub fn wrong(code: &ApprovalCode) -> ApprovalCode {
    let mut s = code.reveal().to_owned();
    let first = (s.as_bytes()[0] - b'0' + 1) % 10;
    s.replace_range(0..1, &first.to_string());
    ApprovalCode::parse(&s).unwrap()
}

/// The one test world: a seeded dealer and contact, grant, and the ports over the
/// in-memory fakes; services, randomized and handler tests use it. One dealer, one
/// contact on one account, and every port in memory.
pub struct World {
    pub store: InMemoryStore,
    pub queue: FakeQueue,
    pub bus: FakeBus,
    pub carrier: FakeCarrier,
    /// The carriers' opt-out lists (what a START lifts).
    pub opt_outs: FakeOptOuts,
    pub hasher: CodeHasher,
    pub dealer: DealerId,
    pub contact: ContactId,
    pub phone: PhoneNumber,
    pub staff: StaffUserId,
}

/// Whom a world is seeded with: a dealer and its one contact.
#[derive(Debug, Clone)]
pub struct Seed {
    pub dealer: Dealer,
    pub contact: Contact,
}

impl Seed {
    /// The services tests' Sunrise Motors and Maria Lopez at `customer`, on account A-77.
    pub fn sunrise(customer: &str) -> Seed {
        Seed::of(
            DEALER,
            DEALER_NAME,
            Some("(202) 555-0100"),
            customer,
            "A-77",
        )
    }

    /// The dealer and contact the sample events of `events/` name, which the handler tests
    /// send: `demo-dealer` (Demo Motors, +12025550100) and C-1001, Maria Lopez at
    /// +12025550143 on account A-1001.
    pub fn demo() -> Seed {
        Seed::of("demo-dealer", "Demo Motors", None, CUSTOMER, "A-1001")
    }

    /// A dealer texting from +12025550100 and its contact C-1001, Maria Lopez, known for
    /// 30 days.
    fn of(dealer: &str, name: &str, help: Option<&str>, customer: &str, account: &str) -> Seed {
        let dealer = DealerId::parse(dealer).unwrap();
        Seed {
            dealer: Dealer {
                id: dealer.clone(),
                name: name.into(),
                texting_number: phone(DEALER_NUMBER),
                help_contact: help.map(str::to_owned),
                time_zone: None,
            },
            contact: Contact {
                id: ContactId::parse("C-1001").unwrap(),
                dealer_id: dealer,
                name: "Maria Lopez".into(),
                phone: phone(customer),
                account_ids: vec![AccountId::parse(account).unwrap()],
                deal_ids: vec![],
                time_zone: None,
                updated_at: noon() - Duration::days(30),
            },
        }
    }
}

impl World {
    pub async fn new() -> Self {
        Self::with_customer(CUSTOMER).await
    }

    /// The same world with the customer at another number.
    pub async fn with_customer(customer: &str) -> Self {
        Self::seeded(Seed::sunrise(customer)).await
    }

    /// A world of `seed`'s dealer and contact, stored through the ports.
    pub async fn seeded(seed: Seed) -> Self {
        let w = Self::unseeded(&seed);
        w.store.put_dealer(&seed.dealer, None).await.unwrap();
        w.store.put_contact(&seed.contact, None).await.unwrap();
        w
    }

    /// The ports and names of `seed`'s world with nothing stored yet: for tests that
    /// create the dealer and contact themselves (through a handler).
    pub fn unseeded(seed: &Seed) -> Self {
        World {
            store: InMemoryStore::new(),
            queue: FakeQueue::new(),
            bus: FakeBus::new(),
            carrier: FakeCarrier::new(),
            opt_outs: FakeOptOuts::new(),
            hasher: CodeHasher::new("test-key-0123456789abcdef").unwrap(),
            dealer: seed.dealer.id.clone(),
            contact: seed.contact.id.clone(),
            phone: seed.contact.phone.clone(),
            staff: StaffUserId::parse("jane@sunrise.example").unwrap(),
        }
    }

    // ---- ports ----

    /// The dealer changes its texting number, giving up the one it had.
    pub async fn move_dealer_to(&self, number: &PhoneNumber) {
        let mut dealer = self.store.dealer(&self.dealer).await.unwrap().unwrap();
        let previous = std::mem::replace(&mut dealer.texting_number, number.clone());
        self.store
            .put_dealer(&dealer, Some(&previous))
            .await
            .unwrap();
    }

    pub fn auth(&self) -> AuthorizationPorts<'_> {
        authorization_ports(&self.store, &self.queue, &self.hasher)
    }

    pub fn inbound(&self) -> InboundPorts<'_> {
        InboundPorts {
            dealers: &self.store,
            contacts: &self.store,
            consent: &self.store,
            consent_writer: &self.store,
            pending: &self.store,
            messages: &self.store,
            queue: &self.queue,
            events: &self.bus,
            work: &self.store,
            inbound: &self.store,
            numbers: &self.store,
            opt_outs: &self.opt_outs,
        }
    }

    pub fn status_ports(&self) -> StatusPorts<'_> {
        StatusPorts {
            consent: &self.store,
            consent_writer: &self.store,
            messages: &self.store,
        }
    }

    pub fn send_ports(&self) -> SendPorts<'_> {
        SendPorts {
            dealers: &self.store,
            contacts: &self.store,
            templates: &self.store,
            consent: &self.store,
            messages: &self.store,
            queue: &self.queue,
            number_pool: &[],
        }
    }

    pub fn dispatch_ports(&self) -> DispatchPorts<'_> {
        DispatchPorts {
            consent: &self.store,
            due: &self.store,
            messages: &self.store,
            queue: &self.queue,
        }
    }

    pub fn contacts_ports(&self) -> ContactsPorts<'_> {
        ContactsPorts {
            contacts: &self.store,
            pending: &self.store,
            messages: &self.store,
        }
    }

    pub fn deliver_ports(&self) -> DeliverPorts<'_> {
        DeliverPorts {
            dealers: &self.store,
            consent: &self.store,
            consent_writer: &self.store,
            messages: &self.store,
            carrier: &self.carrier,
            work: &self.store,
            pending: &self.store,
            codes: &self.hasher,
            gate: None,
        }
    }

    // ---- authorization ----

    pub async fn request(
        &self,
        category: Category,
        now: DateTime<Utc>,
    ) -> Result<Requested, DomainError> {
        auth::request(
            &self.auth(),
            &self.dealer,
            &self.staff,
            &self.contact,
            category,
            now,
        )
        .await
    }

    pub async fn verify(
        &self,
        category: Category,
        code: &ApprovalCode,
        now: DateTime<Utc>,
    ) -> Result<LedgerEntry, DomainError> {
        let ports = self.auth();
        auth::verify(
            &ports,
            &self.dealer,
            &self.staff,
            &self.contact,
            category,
            code,
            now,
        )
        .await
    }

    pub async fn unsubscribe(&self, category: Category, now: DateTime<Utc>) {
        let ports = self.auth();
        auth::unsubscribe(
            &ports,
            &self.dealer,
            &self.staff,
            &self.contact,
            category,
            now,
        )
        .await
        .unwrap();
    }

    /// The newest approval code text queued for the customer.
    pub fn last_code_text(&self) -> Message {
        self.queue
            .sent()
            .iter()
            .rev()
            .map(|o| self.message(&o.envelope.message_id))
            .find(|m| m.kind == MessageKind::ApprovalCode && m.to == self.phone)
            .expect("an approval code text was queued")
    }

    /// The code of the newest code text: sealed in the store, opened with the code key.
    pub fn last_code(&self) -> ApprovalCode {
        let text = self.last_code_text();
        let sealed = text.code.expect("a code text carries its sealed code");
        self.hasher.open(&sealed.sealed, text.id.as_str()).unwrap()
    }

    /// The customer authorizes `category` the code way: staff request, the code text
    /// is delivered, the person reads it to staff, staff type it.
    pub async fn grant(&self, category: Category, now: DateTime<Utc>) {
        self.request(category, now).await.unwrap();
        let text = self.last_code_text();
        let delivered = self.deliver(&text.id, now).await;
        assert!(
            matches!(delivered, DeliverOutcome::Sent { .. }),
            "{delivered:?}"
        );
        // The person reads the code off the phone: only the carrier's copy has it.
        let texted = self.carrier.sent().last().unwrap().body.clone();
        self.verify(category, &code_in(&texted), now).await.unwrap();
    }

    pub async fn consent(&self) -> ConsentState {
        ConsentReader::consent(&self.store, &self.dealer, &self.phone)
            .await
            .unwrap()
            .value
    }

    pub async fn status_of(&self, category: Category) -> ConsentStatus {
        self.consent().await.get(category).status
    }

    pub async fn views(&self, now: DateTime<Utc>) -> Vec<(Category, AuthorizationView)> {
        let contact = self
            .store
            .contact(&self.dealer, &self.contact)
            .await
            .unwrap()
            .unwrap();
        let views = auth::contact_views(&self.auth(), &self.dealer, vec![contact], now)
            .await
            .unwrap();
        assert_eq!(views.len(), 1);
        Category::ALL
            .into_iter()
            .map(|c| (c, views[0].authorizations[&c]))
            .collect()
    }

    pub fn ledger(&self) -> Vec<LedgerEntry> {
        self.store.ledger(&self.dealer, &self.phone)
    }

    // ---- replies ----

    pub async fn reply(&self, sid: &str, body: &str, now: DateTime<Utc>) -> ReplyOutcome {
        let sms = InboundSms {
            carrier_message_id: sid.into(),
            from: self.phone.clone(),
            to: phone(DEALER_NUMBER),
            body: body.into(),
        };
        replies::handle_inbound(&self.inbound(), &sms, now)
            .await
            .unwrap()
    }

    // ---- sending ----

    pub fn request_for(
        &self,
        template: &str,
        variables: Map<String, Value>,
        scheduled_at: Option<DateTime<Utc>>,
    ) -> SendRequest {
        SendRequest {
            contact_id: self.contact.clone(),
            template: template.into(),
            variables,
            notes: None,
            scheduled_at,
            account_id: None,
            deal_id: None,
        }
    }

    pub async fn send(
        &self,
        template: &str,
        variables: Map<String, Value>,
        scheduled_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<SendAccepted, DomainError> {
        self.send_with_key(template, variables, scheduled_at, None, now)
            .await
    }

    pub async fn send_with_key(
        &self,
        template: &str,
        variables: Map<String, Value>,
        scheduled_at: Option<DateTime<Utc>>,
        key: Option<(&str, &str)>,
        now: DateTime<Utc>,
    ) -> Result<SendAccepted, DomainError> {
        sending::request_send(
            &self.send_ports(),
            &self.dealer,
            Origin::Staff {
                user: self.staff.clone(),
            },
            self.request_for(template, variables, scheduled_at),
            key.map(|(k, body)| Idempotency::new(k, body.as_bytes()).expect("a valid key")),
            now,
        )
        .await
    }

    pub async fn dispatch(&self, now: DateTime<Utc>) -> DispatchReport {
        sending::dispatch(&self.dispatch_ports(), 0..4, now, 100)
            .await
            .unwrap()
    }

    /// The deliver worker receiving the message's queue record once more (the envelope
    /// as the sender writes it).
    pub async fn deliver(&self, id: &MessageId, now: DateTime<Utc>) -> DeliverOutcome {
        let envelope = OutboundEnvelope::for_message(&self.message(id), now);
        delivery::deliver_envelope(&self.deliver_ports(), &envelope, None, now)
            .await
            .unwrap()
    }

    pub fn message(&self, id: &MessageId) -> Message {
        self.store
            .messages()
            .into_iter()
            .find(|m| &m.id == id)
            .expect("message is stored")
    }

    pub fn messages_of(&self, kind: MessageKind) -> Vec<Message> {
        self.store
            .messages()
            .into_iter()
            .filter(|m| m.kind == kind)
            .collect()
    }

    /// Texts the carrier accepted for `m` (same recipient and body).
    pub fn carrier_copies(&self, m: &Message) -> Vec<CarrierSend> {
        self.carrier
            .sent()
            .into_iter()
            .filter(|s| s.to == m.to && s.body == m.body)
            .collect()
    }

    pub fn queued_ids(&self) -> Vec<MessageId> {
        self.queue
            .sent()
            .into_iter()
            .map(|o| o.envelope.message_id)
            .collect()
    }
}

/// Accounting authorized and one past-due alert queued at noon.
pub async fn queued_alert() -> (World, Message) {
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    let m = w
        .send("past-due-alert", past_due_vars(), None, noon())
        .await
        .unwrap()
        .message;
    assert_eq!(m.status, MessageStatus::Queued);
    (w, m)
}
