//! The use cases of the consent library, end to end over the in-memory ports:
//! authorization (codes), replies and carrier status, sending, dispatch and delivery.
//!
//! Every test builds its own `World` and passes explicit times. The customer has a
//! Washington D.C. number (+1 202, America/New_York): `noon()` is Wednesday
//! 2026-06-10 16:00 UTC = 12:00 EDT, inside the 08:00-21:00 window; `late_evening()`
//! is 2026-06-11 03:00 UTC = 23:00 EDT on the 10th, outside it.

use chrono::{DateTime, Duration, TimeZone, Utc};
use consent::approval::{ApprovalCode, CodeHasher, PendingAuthorization};
use consent::fakes::{
    authorization_ports, CarrierScript, FakeBus, FakeCarrier, FakeQueue, InMemoryStore,
};
use consent::ledger::{Actor, Channel, ConsentEvent, ConsentState, ConsentStatus, LedgerEntry};
use consent::message::{
    request_fingerprint, Message, MessageKind, MessageStatus, Origin, OutboundEnvelope,
};
use consent::ports::{
    CarrierSend, ConsentReader, Contact, ContactStore, ConversationEntry, Conversations, Dealer,
    DealerStore, PendingStore, WorkQueueName,
};
use consent::service::authorization::{
    self as auth, AuthorizationPorts, AuthorizationView, Requested,
};
use consent::service::delivery::{self, DeliverOutcome, DeliverPorts};
use consent::service::replies::{
    self, InboundPorts, InboundSms, ReplyOutcome, StatusPorts, StatusReport, TEXT_TO_PAY_CONFIRMED,
};
use consent::service::sending::{
    self, DispatchPorts, DispatchReport, SendAccepted, SendPorts, SendRequest,
};
use consent::{
    AccountId, Category, ContactId, DealerId, DomainError, MessageId, PhoneNumber, StaffUserId,
};
use serde_json::{json, Map, Value};

const DEALER: &str = "sunrise-motors";
const DEALER_NAME: &str = "Sunrise Motors";
const DEALER_NUMBER: &str = "+12025550100";
const CUSTOMER: &str = "+12025550143";

/// 12:00 EDT in Washington, D.C.
fn noon() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 10, 16, 0, 0).unwrap()
}

/// 23:00 EDT on 2026-06-10.
fn late_evening() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 11, 3, 0, 0).unwrap()
}

fn mins(n: i64) -> Duration {
    Duration::minutes(n)
}

fn phone(s: &str) -> PhoneNumber {
    PhoneNumber::from_e164(s).unwrap()
}

fn vars(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

fn reminder_vars() -> Map<String, Value> {
    vars(json!({"firstName": "Maria", "amount": "412.37", "dueDate": "2026-06-15"}))
}

fn past_due_vars() -> Map<String, Value> {
    vars(json!({
        "firstName": "Maria",
        "amount": "412.37",
        "dueDate": "2026-06-01",
        "paymentUrl": "https://pay.sunrise.example/p/7Hq2x",
    }))
}

fn offer_vars() -> Map<String, Value> {
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
fn wrong(code: &ApprovalCode) -> ApprovalCode {
    let mut s = code.reveal().to_owned();
    let first = (s.as_bytes()[0] - b'0' + 1) % 10;
    s.replace_range(0..1, &first.to_string());
    ApprovalCode::parse(&s).unwrap()
}

/// One dealer, one contact on one account, and every port in memory.
struct World {
    store: InMemoryStore,
    queue: FakeQueue,
    bus: FakeBus,
    carrier: FakeCarrier,
    hasher: CodeHasher,
    dealer: DealerId,
    contact: ContactId,
    phone: PhoneNumber,
    staff: StaffUserId,
}

impl World {
    async fn new() -> Self {
        Self::with_customer(CUSTOMER).await
    }

    /// The same world with the customer at another number.
    async fn with_customer(customer: &str) -> Self {
        let w = World {
            store: InMemoryStore::new(),
            queue: FakeQueue::new(),
            bus: FakeBus::new(),
            carrier: FakeCarrier::new(),
            hasher: CodeHasher::new("test-key-0123456789abcdef").unwrap(),
            dealer: DealerId::parse(DEALER).unwrap(),
            contact: ContactId::parse("C-1001").unwrap(),
            phone: phone(customer),
            staff: StaffUserId::parse("jane@sunrise.example").unwrap(),
        };
        w.seed_dealer_and_contact().await;
        w
    }

    async fn seed_dealer_and_contact(&self) {
        let dealer = Dealer {
            id: self.dealer.clone(),
            name: DEALER_NAME.into(),
            texting_number: phone(DEALER_NUMBER),
            help_contact: Some("(202) 555-0100".into()),
            time_zone: None,
        };
        self.store.put_dealer(&dealer, None).await.unwrap();
        let contact = Contact {
            id: self.contact.clone(),
            dealer_id: self.dealer.clone(),
            name: "Maria Lopez".into(),
            phone: self.phone.clone(),
            account_ids: vec![AccountId::parse("A-77").unwrap()],
            deal_ids: vec![],
            time_zone: None,
            updated_at: noon(),
        };
        self.store.put_contact(&contact, None).await.unwrap();
    }

    // ---- ports ----

    /// The dealer changes its texting number, giving up the one it had.
    async fn move_dealer_to(&self, number: &PhoneNumber) {
        let mut dealer = self.store.dealer(&self.dealer).await.unwrap().unwrap();
        let previous = std::mem::replace(&mut dealer.texting_number, number.clone());
        self.store
            .put_dealer(&dealer, Some(&previous))
            .await
            .unwrap();
    }

    fn auth(&self) -> AuthorizationPorts<'_> {
        authorization_ports(&self.store, &self.queue, &self.hasher)
    }

    fn inbound(&self) -> InboundPorts<'_> {
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
        }
    }

    fn status_ports(&self) -> StatusPorts<'_> {
        StatusPorts {
            consent: &self.store,
            consent_writer: &self.store,
            messages: &self.store,
        }
    }

    fn send_ports(&self) -> SendPorts<'_> {
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

    fn deliver_ports(&self) -> DeliverPorts<'_> {
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

    async fn request(
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

    async fn verify(
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

    async fn unsubscribe(&self, category: Category, now: DateTime<Utc>) {
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
    fn last_code_text(&self) -> Message {
        self.queue
            .sent()
            .iter()
            .rev()
            .map(|o| self.message(&o.envelope.message_id))
            .find(|m| m.kind == MessageKind::ApprovalCode && m.to == self.phone)
            .expect("an approval code text was queued")
    }

    /// The code of the newest code text: sealed in the store, opened with the code key.
    fn last_code(&self) -> ApprovalCode {
        let text = self.last_code_text();
        let sealed = text.code.expect("a code text carries its sealed code");
        self.hasher.open(&sealed.sealed, text.id.as_str()).unwrap()
    }

    /// The customer authorizes `category` the code way: staff request, the code text
    /// is delivered, the person reads it to staff, staff type it.
    async fn grant(&self, category: Category, now: DateTime<Utc>) {
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

    async fn consent(&self) -> ConsentState {
        ConsentReader::consent(&self.store, &self.dealer, &self.phone)
            .await
            .unwrap()
            .value
    }

    async fn status_of(&self, category: Category) -> ConsentStatus {
        self.consent().await.get(category).status
    }

    async fn views(&self, now: DateTime<Utc>) -> Vec<(Category, AuthorizationView)> {
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

    fn ledger(&self) -> Vec<LedgerEntry> {
        self.store.ledger(&self.dealer, &self.phone)
    }

    // ---- replies ----

    async fn reply(&self, sid: &str, body: &str, now: DateTime<Utc>) -> ReplyOutcome {
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

    fn request_for(
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

    async fn send(
        &self,
        template: &str,
        variables: Map<String, Value>,
        scheduled_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<SendAccepted, DomainError> {
        self.send_with_key(template, variables, scheduled_at, None, now)
            .await
    }

    async fn send_with_key(
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
            key.map(|(k, body)| (k.to_owned(), request_fingerprint(body.as_bytes()))),
            now,
        )
        .await
    }

    async fn dispatch(&self, now: DateTime<Utc>) -> DispatchReport {
        let ports = DispatchPorts {
            consent: &self.store,
            due: &self.store,
            messages: &self.store,
            queue: &self.queue,
        };
        sending::dispatch(&ports, 0..4, now, 100).await.unwrap()
    }

    /// The deliver worker receiving the message's queue record once more (the envelope
    /// as the sender writes it).
    async fn deliver(&self, id: &MessageId, now: DateTime<Utc>) -> DeliverOutcome {
        let envelope = OutboundEnvelope::for_message(&self.message(id), now);
        delivery::deliver_envelope(&self.deliver_ports(), &envelope, None, now)
            .await
            .unwrap()
    }

    fn message(&self, id: &MessageId) -> Message {
        self.store
            .messages()
            .into_iter()
            .find(|m| &m.id == id)
            .expect("message is stored")
    }

    fn messages_of(&self, kind: MessageKind) -> Vec<Message> {
        self.store
            .messages()
            .into_iter()
            .filter(|m| m.kind == kind)
            .collect()
    }

    /// Texts the carrier accepted for `m` (same recipient and body).
    fn carrier_copies(&self, m: &Message) -> Vec<CarrierSend> {
        self.carrier
            .sent()
            .into_iter()
            .filter(|s| s.to == m.to && s.body == m.body)
            .collect()
    }

    fn queued_ids(&self) -> Vec<MessageId> {
        self.queue
            .sent()
            .into_iter()
            .map(|o| o.envelope.message_id)
            .collect()
    }
}

// ============================== Authorization ==============================

#[tokio::test]
async fn requesting_authorization_texts_a_code_that_names_dealer_category_agree_and_stop() {
    // GIVEN a contact with no consent
    let w = World::new().await;

    // WHEN staff request accounting texts
    let requested = w.request(Category::Accounting, noon()).await.unwrap();

    // THEN a code text is stored and queued at once, valid for 10 minutes
    assert_eq!(requested.expires_at, noon() + mins(10));
    assert!(!requested.resent);
    let text = w.last_code_text();
    assert_eq!(text.kind, MessageKind::ApprovalCode);
    assert_eq!(text.to, w.phone);
    assert_eq!(text.from, phone(DEALER_NUMBER));
    assert_eq!(text.status, MessageStatus::Queued);
    assert_eq!(w.queued_ids(), vec![text.id.clone()]);
    assert_eq!(w.queue.sent()[0].delay_seconds, 0);
    // AND its body names the dealer and the category, carries 6 digits, AGREE and STOP
    assert!(text.body.starts_with(DEALER_NAME), "{}", text.body);
    assert!(text.body.contains("account and payment"), "{}", text.body);
    assert!(text.body.contains("AGREE"), "{}", text.body);
    assert!(text.body.contains("STOP"), "{}", text.body);
    // AND the stored text and its queue record hold the code only sealed: staff who can
    // read messages cannot read a live code
    let code = w.last_code();
    assert!(text.body.contains("is ******."), "{}", text.body);
    assert!(!text.body.contains(code.reveal()), "{}", text.body);
    let record = serde_json::to_string(&w.queue.sent()[0].envelope).unwrap();
    assert!(!record.contains(code.reveal()), "{record}");
    // AND the request is pending, consent untouched
    assert_eq!(
        w.views(noon()).await[0],
        (Category::Accounting, AuthorizationView::Pending)
    );
    assert!(w.ledger().is_empty());
}

#[tokio::test]
async fn the_right_code_authorizes_and_the_ledger_names_the_staff_user() {
    // GIVEN a code texted for accounting
    let w = World::new().await;
    w.request(Category::Accounting, noon()).await.unwrap();
    let code = w.last_code();

    // WHEN staff type it four minutes later
    let entry = w
        .verify(Category::Accounting, &code, noon() + mins(4))
        .await
        .unwrap();

    // THEN one ledger entry records a grant by code, by that staff user, with the disclosure
    assert_eq!(entry.event, ConsentEvent::GrantedByCode);
    assert_eq!(entry.actor, Actor::Staff(w.staff.clone()));
    assert_eq!(entry.category, Category::Accounting);
    assert_eq!(entry.at, noon() + mins(4));
    assert_eq!(entry.disclosure_version.as_deref(), Some("accounting-v1"));
    // AND the disclosure exactly as texted (code masked) with its SHA-256, as evidence
    let text = w.last_code_text().body;
    let disclosure = entry.disclosure.clone().expect("the disclosure as shown");
    assert_eq!(disclosure.text, text);
    assert!(disclosure.text.contains("******"));
    assert!(!disclosure.text.contains(code.reveal()));
    assert_eq!(disclosure, consent::ledger::Disclosure::of(text));
    assert_eq!(disclosure.sha256.len(), 64);
    assert_eq!(w.ledger(), vec![entry]);
    // AND the number is authorized for accounting only
    assert_eq!(
        w.status_of(Category::Accounting).await,
        ConsentStatus::Authorized
    );
    assert_eq!(w.status_of(Category::Marketing).await, ConsentStatus::None);
    // AND the pending request is consumed: the same code cannot be used again
    let pending = w
        .store
        .pending(&w.dealer, &w.phone, Category::Accounting)
        .await
        .unwrap();
    assert!(pending.is_none());
    assert!(matches!(
        w.verify(Category::Accounting, &code, noon() + mins(5))
            .await,
        Err(DomainError::NoPendingRequest)
    ));
}

#[tokio::test]
async fn wrong_codes_count_down_and_the_fifth_voids_the_request() {
    // GIVEN a code texted for service
    let w = World::new().await;
    w.request(Category::Service, noon()).await.unwrap();
    let code = w.last_code();
    let bad = wrong(&code);

    // WHEN staff type a wrong code four times
    for left in [4, 3, 2, 1] {
        // THEN each answer says how many tries are left
        match w.verify(Category::Service, &bad, noon() + mins(1)).await {
            Err(DomainError::WrongCode { attempts_left }) => assert_eq!(attempts_left, left),
            other => panic!("expected WrongCode({left}), got {other:?}"),
        }
    }
    // AND the fifth wrong try voids the request
    assert!(matches!(
        w.verify(Category::Service, &bad, noon() + mins(1)).await,
        Err(DomainError::CodeExpired)
    ));
    // AND afterwards even the right code is refused
    assert!(matches!(
        w.verify(Category::Service, &code, noon() + mins(2)).await,
        Err(DomainError::CodeExpired)
    ));
    assert!(w.ledger().is_empty());
    assert_eq!(w.status_of(Category::Service).await, ConsentStatus::None);
}

#[tokio::test]
async fn a_code_expires_after_ten_minutes() {
    // GIVEN a code texted at noon
    let w = World::new().await;
    w.request(Category::Accounting, noon()).await.unwrap();
    let code = w.last_code();

    // WHEN staff type the right code exactly 10 minutes later
    let result = w
        .verify(Category::Accounting, &code, noon() + mins(10))
        .await;

    // THEN it has expired and nothing was granted
    assert!(
        matches!(result, Err(DomainError::CodeExpired)),
        "{result:?}"
    );
    assert!(w.ledger().is_empty());
    // AND the portal no longer shows it pending
    assert_eq!(
        w.views(noon() + mins(10)).await[0],
        (Category::Accounting, AuthorizationView::None)
    );
}

#[tokio::test]
async fn a_repeat_request_within_the_window_resends_the_same_request() {
    // GIVEN a code texted at noon
    let w = World::new().await;
    let first = w.request(Category::Sales, noon()).await.unwrap();

    // WHEN staff click Authorize again three minutes later
    let second = w.request(Category::Sales, noon() + mins(3)).await.unwrap();

    // THEN the same request is texted again, keeping its expiry
    assert!(second.resent);
    assert_eq!(second.expires_at, first.expires_at);
    assert_eq!(w.messages_of(MessageKind::ApprovalCode).len(), 2);
    // AND the code in the newest text authorizes
    let entry = w
        .verify(Category::Sales, &w.last_code(), noon() + mins(4))
        .await
        .unwrap();
    assert_eq!(entry.event, ConsentEvent::GrantedByCode);

    // AND after the window a request is a new one with a new expiry
    w.unsubscribe(Category::Sales, noon() + mins(5)).await;
    let third = w.request(Category::Sales, noon() + mins(20)).await.unwrap();
    assert!(!third.resent);
    assert_eq!(third.expires_at, noon() + mins(30));
}

#[tokio::test]
async fn more_than_five_code_texts_per_number_per_day_are_rate_limited() {
    // GIVEN five code texts to the number today (across categories)
    let w = World::new().await;
    for (i, c) in [
        Category::Accounting,
        Category::Service,
        Category::Sales,
        Category::Marketing,
        Category::Accounting,
    ]
    .into_iter()
    .enumerate()
    {
        w.request(c, noon() + mins(i as i64)).await.unwrap();
    }

    // WHEN staff ask for a sixth
    let result = w.request(Category::Service, noon() + mins(30)).await;

    // THEN it is refused with a time to retry, and no text goes out
    match result {
        Err(DomainError::RateLimited { retry_after }) => {
            assert!(retry_after > std::time::Duration::ZERO);
            assert!(retry_after <= std::time::Duration::from_secs(24 * 3600));
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert_eq!(w.messages_of(MessageKind::ApprovalCode).len(), 5);
    assert_eq!(w.queue.sent().len(), 5);
}

#[tokio::test]
async fn unsubscribing_revokes_by_portal_and_is_idempotent() {
    // GIVEN the number authorized accounting
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;

    // WHEN staff unsubscribe accounting, twice
    w.unsubscribe(Category::Accounting, noon() + mins(1)).await;
    w.unsubscribe(Category::Accounting, noon() + mins(2)).await;

    // THEN one portal revocation by that staff user is on the ledger
    let ledger = w.ledger();
    assert_eq!(ledger.len(), 2);
    assert_eq!(ledger[1].event, ConsentEvent::RevokedByPortal);
    assert_eq!(ledger[1].actor, Actor::Staff(w.staff.clone()));
    assert_eq!(ledger[1].at, noon() + mins(1));
    assert_eq!(
        w.status_of(Category::Accounting).await,
        ConsentStatus::Revoked
    );
}

#[tokio::test]
async fn contact_views_show_none_pending_authorized_and_revoked() {
    // GIVEN accounting authorized, sales authorized then unsubscribed,
    // service requested (pending), marketing never touched
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    w.grant(Category::Sales, noon()).await;
    w.unsubscribe(Category::Sales, noon() + mins(1)).await;
    w.request(Category::Service, noon() + mins(2))
        .await
        .unwrap();

    // WHEN the portal lists the contact
    let views = w.views(noon() + mins(3)).await;

    // THEN each category shows its own state
    assert_eq!(
        views,
        vec![
            (Category::Accounting, AuthorizationView::Authorized),
            (Category::Service, AuthorizationView::Pending),
            (Category::Sales, AuthorizationView::Revoked),
            (Category::Marketing, AuthorizationView::None),
        ]
    );
    // AND once the service code expires it is no longer pending
    assert_eq!(
        w.views(noon() + mins(13)).await[1],
        (Category::Service, AuthorizationView::None)
    );
}

#[tokio::test]
async fn history_returns_the_ledger_oldest_first() {
    // GIVEN a grant, an unsubscribe and a grant again, an hour apart
    let w = World::new().await;
    w.grant(Category::Service, noon()).await;
    w.unsubscribe(Category::Service, noon() + mins(60)).await;
    w.grant(Category::Service, noon() + mins(120)).await;

    // WHEN the portal asks for the history
    let (contact, entries) = auth::history(&w.auth(), &w.dealer, &w.contact)
        .await
        .unwrap();

    // THEN it is the contact's number's ledger, oldest first
    assert_eq!(contact.id, w.contact);
    let events: Vec<_> = entries.iter().map(|e| (e.event, e.at)).collect();
    assert_eq!(
        events,
        vec![
            (ConsentEvent::GrantedByCode, noon()),
            (ConsentEvent::RevokedByPortal, noon() + mins(60)),
            (ConsentEvent::GrantedByCode, noon() + mins(120)),
        ]
    );
}

#[tokio::test]
async fn requesting_an_already_authorized_category_is_a_conflict() {
    // GIVEN accounting authorized
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    let texts = w.queue.sent().len();

    // WHEN staff request accounting again
    let result = w.request(Category::Accounting, noon() + mins(1)).await;

    // THEN it is a conflict and no code is texted
    assert!(
        matches!(result, Err(DomainError::Conflict(_))),
        "{result:?}"
    );
    assert_eq!(w.queue.sent().len(), texts);
}

// ============================== Replies ==============================

#[tokio::test]
async fn agree_grants_the_one_waiting_request_and_answers_once() {
    // GIVEN a code texted for service
    let w = World::new().await;
    w.request(Category::Service, noon()).await.unwrap();

    // WHEN the person replies "Agree" (with spaces and punctuation)
    let outcome = w.reply("SM-agree-1", "  Agree! ", noon() + mins(2)).await;

    // THEN the request is granted by reply, with the carrier message id and the
    // disclosure version as evidence
    assert_eq!(outcome, ReplyOutcome::Agreed(vec![Category::Service]));
    let ledger = w.ledger();
    assert_eq!(ledger.len(), 1);
    let e = &ledger[0];
    assert_eq!(e.category, Category::Service);
    assert_eq!(e.event, ConsentEvent::GrantedByReply);
    assert_eq!(e.actor, Actor::Phone);
    assert_eq!(e.evidence.as_deref(), Some("SM-agree-1"));
    assert_eq!(e.disclosure_version.as_deref(), Some("service-v1"));
    let shown = w.last_code_text().body;
    assert_eq!(e.disclosure, Some(consent::ledger::Disclosure::of(shown)));
    assert_eq!(
        w.status_of(Category::Service).await,
        ConsentStatus::Authorized
    );
    // AND exactly one confirmation is texted, naming what was granted
    let answers = w.messages_of(MessageKind::Reply);
    assert_eq!(answers.len(), 1);
    assert!(answers[0].body.starts_with(DEALER_NAME));
    assert!(answers[0].body.contains("service"), "{}", answers[0].body);
    assert!(answers[0].body.contains("STOP"));
}

#[tokio::test]
async fn a_bare_agree_with_several_requests_waiting_grants_nothing_and_asks_which() {
    // GIVEN codes texted for service, then five seconds later for marketing
    let w = World::new().await;
    w.request(Category::Service, noon()).await.unwrap();
    w.request(Category::Marketing, noon() + Duration::seconds(5))
        .await
        .unwrap();

    // WHEN the person replies a bare "Agree" (meant for service: the most recent request
    // is not always the text it answers)
    let outcome = w.reply("SM-which-1", "Agree", noon() + mins(1)).await;

    // THEN nothing is granted: both requests still wait
    assert_eq!(
        outcome,
        ReplyOutcome::AskedWhich(vec![Category::Service, Category::Marketing])
    );
    assert!(w.ledger().is_empty(), "{:?}", w.ledger());
    assert_eq!(
        w.store
            .pending_for_number(&w.dealer, &w.phone)
            .await
            .unwrap()
            .len(),
        2
    );
    // AND the person is asked which, with replies that do it
    let answers = w.messages_of(MessageKind::Reply);
    assert_eq!(answers.len(), 1);
    let question = &answers[0].body;
    assert!(question.starts_with(DEALER_NAME), "{question}");
    for option in ["AGREE SERVICE", "AGREE MARKETING", "AGREE ALL"] {
        assert!(question.contains(option), "{question}");
    }

    // WHEN they answer "Agree service"
    let outcome = w
        .reply("SM-which-2", "Agree service", noon() + mins(2))
        .await;

    // THEN service alone is granted; marketing still waits
    assert_eq!(outcome, ReplyOutcome::Agreed(vec![Category::Service]));
    assert_eq!(
        w.status_of(Category::Service).await,
        ConsentStatus::Authorized
    );
    assert_eq!(w.status_of(Category::Marketing).await, ConsentStatus::None);
    let pending = w
        .store
        .pending_for_number(&w.dealer, &w.phone)
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].category, Category::Marketing);

    // AND a bare Agree now answers the one request left
    assert_eq!(
        w.reply("SM-which-3", "Agree", noon() + mins(3)).await,
        ReplyOutcome::Agreed(vec![Category::Marketing])
    );
}

#[tokio::test]
async fn agree_all_grants_every_waiting_request_and_the_question_is_asked_in_the_persons_language()
{
    // GIVEN codes texted for accounting and for sales
    let w = World::new().await;
    w.request(Category::Accounting, noon()).await.unwrap();
    w.request(Category::Sales, noon() + mins(1)).await.unwrap();

    // WHEN the person replies "Acepto"
    let outcome = w.reply("SM-es-which", "Acepto", noon() + mins(2)).await;

    // THEN they are asked which, in Spanish
    assert_eq!(
        outcome,
        ReplyOutcome::AskedWhich(vec![Category::Accounting, Category::Sales])
    );
    let question = w.messages_of(MessageKind::Reply)[0].body.clone();
    for option in ["ACEPTO CUENTA", "ACEPTO VENTAS", "ACEPTO TODO"] {
        assert!(question.contains(option), "{question}");
    }

    // WHEN they answer "Acepto todo"
    let outcome = w.reply("SM-es-all", "Acepto todo", noon() + mins(3)).await;

    // THEN both are granted by that one reply, confirmed once in Spanish
    assert_eq!(
        outcome,
        ReplyOutcome::Agreed(vec![Category::Accounting, Category::Sales])
    );
    let ledger = w.ledger();
    assert_eq!(ledger.len(), 2);
    assert!(ledger
        .iter()
        .all(|e| e.event == ConsentEvent::GrantedByReply
            && e.evidence.as_deref() == Some("SM-es-all")));
    let answers = w.messages_of(MessageKind::Reply);
    assert_eq!(answers.len(), 2);
    assert!(
        answers
            .iter()
            .any(|a| a.body.contains("de cuenta y pagos y de ventas")),
        "{answers:?}"
    );
}

#[tokio::test]
async fn a_redelivered_webhook_is_a_duplicate_and_changes_nothing() {
    // GIVEN the person agreed to accounting with message SM-1
    let w = World::new().await;
    w.request(Category::Accounting, noon()).await.unwrap();
    w.reply("SM-1", "Agree", noon() + mins(1)).await;
    // AND staff then requested service
    w.request(Category::Service, noon() + mins(2))
        .await
        .unwrap();
    let ledger = w.ledger().len();
    let messages = w.store.messages().len();

    // WHEN the carrier posts SM-1 again
    let outcome = w.reply("SM-1", "Agree", noon() + mins(3)).await;

    // THEN it is a duplicate: service stays pending, nothing is recorded or texted
    assert_eq!(outcome, ReplyOutcome::Duplicate);
    assert_eq!(w.ledger().len(), ledger);
    assert_eq!(w.store.messages().len(), messages);
    assert_eq!(
        w.views(noon() + mins(3)).await[1],
        (Category::Service, AuthorizationView::Pending)
    );
    // AND the conversation shows the reply once, read as an Agree
    let page = w
        .store
        .conversation(&w.dealer, &w.phone, 50, None)
        .await
        .unwrap();
    let inbound: Vec<_> = page
        .entries
        .iter()
        .filter_map(|e| match e {
            ConversationEntry::Inbound(t) => Some(t),
            ConversationEntry::Outbound(_) => None,
        })
        .collect();
    assert_eq!(inbound.len(), 1);
    assert_eq!(
        (inbound[0].body.as_str(), inbound[0].read_as.as_str()),
        ("Agree", "agree")
    );
}

/// GIVEN accounting authorized, a pending service request whose code text is not
/// delivered yet, and three waiting accounting texts (scheduled, deferred, queued);
/// WHEN the person sends `body`; THEN everything is revoked, the four waiting texts
/// are suppressed and exactly one confirmation goes out.
async fn opt_out_scenario(body: &str) {
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    w.request(Category::Service, noon()).await.unwrap();
    let code_text = w.last_code_text();
    let scheduled = w
        .send(
            "past-due-alert",
            past_due_vars(),
            Some(noon() + mins(120)),
            noon(),
        )
        .await
        .unwrap()
        .message;
    let deferred = w
        .send(
            "past-due-alert",
            past_due_vars(),
            Some(late_evening()),
            noon(),
        )
        .await
        .unwrap()
        .message;
    let queued = w
        .send("past-due-alert", past_due_vars(), None, noon())
        .await
        .unwrap()
        .message;
    assert_eq!(
        [scheduled.status, deferred.status, queued.status],
        [
            MessageStatus::Scheduled,
            MessageStatus::Deferred,
            MessageStatus::Queued
        ]
    );

    let outcome = w.reply("SM-stop-1", body, noon() + mins(5)).await;

    assert_eq!(
        outcome,
        ReplyOutcome::OptedOut {
            revoked: Category::ALL.to_vec(),
            suppressed: 4
        }
    );
    for c in Category::ALL {
        assert!(
            !w.consent().await.may_send(c).is_allowed(),
            "{c} still allowed"
        );
    }
    let ledger = w.ledger();
    let stops: Vec<_> = ledger
        .iter()
        .filter(|e| e.event == ConsentEvent::RevokedByReply)
        .collect();
    assert_eq!(stops.len(), 4);
    assert!(stops
        .iter()
        .all(|e| e.actor == Actor::Phone && e.evidence.as_deref() == Some("SM-stop-1")));
    // Each revocation records the words the person used and the channel.
    assert!(
        stops
            .iter()
            .all(|e| e.words.as_deref() == Some(body) && e.event.channel() == Channel::Sms),
        "{stops:?}"
    );
    for m in [&scheduled, &deferred, &queued, &code_text] {
        let now = w.message(&m.id);
        assert_eq!(now.status, MessageStatus::Suppressed);
        assert_eq!(now.status_reason.as_deref(), Some("opted-out"));
    }
    // The pending service request is void, and its code text never goes out.
    assert_eq!(
        w.views(noon() + mins(5)).await[1],
        (Category::Service, AuthorizationView::Revoked)
    );
    let answers = w.messages_of(MessageKind::Reply);
    assert_eq!(answers.len(), 1, "exactly one confirmation");
    assert!(
        answers[0].body.contains("unsubscribed"),
        "{}",
        answers[0].body
    );
    assert!(w.queued_ids().contains(&answers[0].id));
    // The confirmation goes out at once (well within the 5 minutes the rules allow),
    // though the ledger now says revoked, and carries nothing but the confirmation.
    assert!(matches!(
        w.deliver(&answers[0].id, noon() + mins(5)).await,
        DeliverOutcome::Sent { .. }
    ));
    assert_eq!(answers[0].send_at, noon() + mins(5));
    assert_ne!(answers[0].category, Category::Marketing);
    let late = w.deliver(&code_text.id, noon() + mins(5)).await;
    assert_eq!(
        late,
        DeliverOutcome::Skipped {
            status: Some(MessageStatus::Suppressed)
        }
    );
    assert!(w.carrier_copies(&code_text).is_empty());

    // AND a second STOP changes nothing and is not answered again
    let again = w.reply("SM-stop-2", "STOP", noon() + mins(6)).await;
    assert_eq!(
        again,
        ReplyOutcome::OptedOut {
            revoked: vec![],
            suppressed: 0
        }
    );
    assert_eq!(w.messages_of(MessageKind::Reply).len(), 1);
    assert_eq!(w.ledger().len(), ledger.len());
}

#[tokio::test]
async fn stop_revokes_everything_suppresses_waiting_texts_and_confirms_once() {
    opt_out_scenario("STOP").await;
}

#[tokio::test]
async fn a_revocation_in_plain_words_works_like_stop() {
    opt_out_scenario("Stop texting me please").await;
}

#[tokio::test]
async fn start_restores_what_stop_removed_but_not_a_portal_unsubscribe() {
    // GIVEN accounting and service authorized, service then unsubscribed in the portal,
    // sales and marketing never authorized, and then a STOP
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    w.grant(Category::Service, noon()).await;
    w.unsubscribe(Category::Service, noon() + mins(1)).await;
    w.reply("SM-stop", "STOP", noon() + mins(2)).await;

    // WHEN the person replies START
    let outcome = w.reply("SM-start", "START", noon() + mins(3)).await;

    // THEN only accounting, which the STOP removed, is restored
    assert_eq!(outcome, ReplyOutcome::OptedIn(vec![Category::Accounting]));
    let state = w.consent().await;
    assert!(state.may_send(Category::Accounting).is_allowed());
    assert!(
        !state.may_send(Category::Service).is_allowed(),
        "portal unsubscribe stays"
    );
    assert!(
        !state.may_send(Category::Sales).is_allowed(),
        "never authorized"
    );
    assert!(
        !state.may_send(Category::Marketing).is_allowed(),
        "never authorized"
    );
    let restored: Vec<_> = w
        .ledger()
        .into_iter()
        .filter(|e| e.event == ConsentEvent::RestoredByStart)
        .map(|e| e.category)
        .collect();
    assert_eq!(restored, vec![Category::Accounting]);
    // AND the STOP confirmation and the START confirmation were texted
    let answers = w.messages_of(MessageKind::Reply);
    assert_eq!(answers.len(), 2);
}

#[tokio::test]
async fn help_answers_with_the_dealer_name_and_how_to_stop() {
    // GIVEN a known dealer number
    let w = World::new().await;

    // WHEN the person texts HELP
    let outcome = w.reply("SM-help", "help", noon()).await;

    // THEN the answer names the dealer and says how to stop
    assert_eq!(outcome, ReplyOutcome::Help);
    let answers = w.messages_of(MessageKind::Reply);
    assert_eq!(answers.len(), 1);
    assert!(answers[0].body.contains(DEALER_NAME), "{}", answers[0].body);
    assert!(answers[0].body.contains("STOP"), "{}", answers[0].body);
    assert!(answers[0].body.contains("Msg&data rates may apply"));
    assert!(w.ledger().is_empty());
}

#[tokio::test]
async fn pay_then_confirm_publishes_a_payment_request_event() {
    // GIVEN a Text to Pay reminder for $412.37, sent to the person
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    let reminder = w
        .send("text-to-pay-reminder", reminder_vars(), None, noon())
        .await
        .unwrap()
        .message;
    assert!(matches!(
        w.deliver(&reminder.id, noon()).await,
        DeliverOutcome::Sent { .. }
    ));

    // WHEN the person replies PAY
    let outcome = w.reply("SM-pay", "PAY", noon() + mins(5)).await;

    // THEN they are asked to CONFIRM the amount, and nothing is published yet
    assert_eq!(outcome, ReplyOutcome::PayConfirmationRequested);
    let ask = w
        .messages_of(MessageKind::Reply)
        .into_iter()
        .find(|m| m.template.as_deref() == Some(replies::PAY_CONFIRM_MARKER))
        .expect("a CONFIRM request");
    assert!(ask.body.contains("CONFIRM"), "{}", ask.body);
    assert!(ask.body.contains("$412.37"), "{}", ask.body);
    assert!(w.bus.published().is_empty());

    // WHEN that text is delivered and the person replies CONFIRM
    assert!(matches!(
        w.deliver(&ask.id, noon() + mins(5)).await,
        DeliverOutcome::Sent { .. }
    ));
    let outcome = w.reply("SM-confirm", "CONFIRM", noon() + mins(7)).await;

    // THEN one payment request event goes to the bus with the amount and the dealer
    assert_eq!(outcome, ReplyOutcome::PaymentConfirmed);
    let events = w.bus.published();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].detail_type, TEXT_TO_PAY_CONFIRMED);
    assert_eq!(events[0].source, replies::EVENT_SOURCE);
    let d = &events[0].detail;
    assert_eq!(d["dealerId"], json!(DEALER));
    assert_eq!(d["amount"], json!("412.37"));
    assert_eq!(d["contactId"], json!("C-1001"));
    assert_eq!(d["accountId"], json!("A-77"));
    assert_eq!(d["reminderMessageId"], json!(reminder.id.as_str()));
    assert_eq!(d["confirmationCarrierMessageId"], json!("SM-confirm"));
    assert_eq!(d["type"], json!(TEXT_TO_PAY_CONFIRMED));
}

/// A text from the person to `to`.
async fn text_to(w: &World, sid: &str, to: &str, body: &str, now: DateTime<Utc>) -> ReplyOutcome {
    let sms = InboundSms {
        carrier_message_id: sid.into(),
        from: w.phone.clone(),
        to: phone(to),
        body: body.into(),
    };
    replies::handle_inbound(&w.inbound(), &sms, now)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_stop_to_the_number_a_dealer_gave_up_revokes_that_dealers_consent_and_is_confirmed() {
    // GIVEN the person authorized accounting texts from the dealer's number, which the
    // operator provisioned for it, and a text waits to go
    let w = World::new().await;
    w.store.provision(&phone(DEALER_NUMBER), "AC-1", &w.dealer);
    w.grant(Category::Accounting, noon()).await;
    let waiting = w
        .send(
            "past-due-alert",
            past_due_vars(),
            Some(noon() + mins(90)),
            noon(),
        )
        .await
        .unwrap()
        .message;
    // AND the dealer moves to a new number
    let new_number = phone("+12025550177");
    w.move_dealer_to(&new_number).await;

    // WHEN the person replies STOP to the old number, which no dealer owns now
    let outcome = text_to(&w, "SM-old-stop", DEALER_NUMBER, "STOP", noon() + mins(5)).await;

    // THEN it is recorded as that dealer's opt-out: consent revoked with the reply as
    // evidence, the waiting text suppressed, the old number blocked for the person
    assert!(
        matches!(&outcome, ReplyOutcome::OptedOut { revoked, suppressed: 1 } if revoked.contains(&Category::Accounting)),
        "{outcome:?}"
    );
    assert!(w
        .ledger()
        .iter()
        .any(|e| e.event == ConsentEvent::RevokedByReply
            && e.evidence.as_deref() == Some("SM-old-stop")));
    assert_eq!(w.message(&waiting.id).status, MessageStatus::Suppressed);
    assert!(w
        .store
        .opted_out(&phone(DEALER_NUMBER), &w.phone)
        .await
        .unwrap());
    // AND one confirmation naming the dealer goes, from the number it owns now
    let answers = w.messages_of(MessageKind::Reply);
    assert_eq!(answers.len(), 1);
    assert!(
        answers[0].body.starts_with(DEALER_NAME),
        "{}",
        answers[0].body
    );
    assert!(answers[0].body.contains("START"), "{}", answers[0].body);
    assert!(matches!(
        w.deliver(&answers[0].id, noon() + mins(6)).await,
        DeliverOutcome::Sent { .. }
    ));
    assert_eq!(w.carrier_copies(&answers[0])[0].from, new_number);
    // AND words to the old number still reach the dealer's staff
    assert_eq!(
        text_to(
            &w,
            "SM-old-words",
            DEALER_NUMBER,
            "who is this?",
            noon() + mins(7)
        )
        .await,
        ReplyOutcome::Queued
    );
    assert_eq!(w.store.work_items().len(), 1);
}

#[tokio::test]
async fn a_stop_to_a_number_we_hold_that_no_dealer_texts_from_blocks_it_until_start() {
    // GIVEN a number provisioned for a dealer that has not signed up
    let w = World::new().await;
    let spare = "+12025550188";
    w.store.provision(
        &phone(spare),
        "AC-1",
        &DealerId::parse("not-signed-up").unwrap(),
    );

    // WHEN the person texts STOP to it
    let outcome = text_to(&w, "SM-spare-stop", spare, "Stop texting me", noon()).await;

    // THEN the number is blocked for the person, whoever takes it later
    assert_eq!(outcome, ReplyOutcome::NumberOptedOut);
    assert!(w.store.opted_out(&phone(spare), &w.phone).await.unwrap());
    // AND the same STOP delivered again is a duplicate
    assert_eq!(
        text_to(&w, "SM-spare-stop", spare, "Stop texting me", noon()).await,
        ReplyOutcome::Duplicate
    );
    // AND START lifts the block
    assert_eq!(
        text_to(&w, "SM-spare-start", spare, "START", noon() + mins(1)).await,
        ReplyOutcome::NumberOptedIn
    );
    assert!(!w.store.opted_out(&phone(spare), &w.phone).await.unwrap());
}

#[tokio::test]
async fn pay_without_a_reminder_goes_to_staff() {
    // GIVEN no Text to Pay reminder was sent
    let w = World::new().await;

    // WHEN the person replies PAY
    let outcome = w.reply("SM-pay", "pay", noon()).await;

    // THEN a person looks at it; nothing is asked or published
    assert_eq!(outcome, ReplyOutcome::Queued);
    assert_eq!(w.store.work_items().len(), 1);
    assert!(w.messages_of(MessageKind::Reply).is_empty());
    assert!(w.bus.published().is_empty());
}

#[tokio::test]
async fn free_text_goes_to_the_replies_queue_linked_to_the_contact() {
    // GIVEN a known contact
    let w = World::new().await;

    // WHEN they text something that needs a person ("weekend" is not END)
    let body = "Can I bring the car in this weekend?";
    let outcome = w.reply("SM-free", body, noon()).await;

    // THEN one open work item on the Replies queue links the contact and account
    assert_eq!(outcome, ReplyOutcome::Queued);
    let items = w.store.work_items();
    assert_eq!(items.len(), 1);
    let item = &items[0];
    assert_eq!(item.queue, WorkQueueName::Replies);
    assert_eq!(item.kind, "reply-needs-attention");
    assert_eq!(item.contact_id.as_ref(), Some(&w.contact));
    assert_eq!(item.account_id.as_ref().map(|a| a.as_str()), Some("A-77"));
    assert_eq!(item.phone.as_ref(), Some(&w.phone));
    assert_eq!(item.text.as_deref(), Some(body));
    assert_eq!(item.status, consent::ports::WorkItemStatus::Open);
    // AND consent is untouched and nothing is texted back
    assert!(w.ledger().is_empty());
    assert!(w.store.messages().is_empty());
}

#[tokio::test]
async fn a_text_to_an_unknown_dealer_number_is_not_acted_on() {
    // GIVEN a number no dealer texts from
    let w = World::new().await;
    let sms = InboundSms {
        carrier_message_id: "SM-x".into(),
        from: w.phone.clone(),
        to: phone("+13125550199"),
        body: "STOP".into(),
    };

    // WHEN a text arrives for it
    let outcome = replies::handle_inbound(&w.inbound(), &sms, noon())
        .await
        .unwrap();

    // THEN it is reported as an unknown dealer and nothing changes
    assert_eq!(outcome, ReplyOutcome::UnknownDealer);
    assert!(w.ledger().is_empty());
    assert!(w.store.messages().is_empty());
    assert!(w.store.work_items().is_empty());
}

/// Sends and delivers a past-due alert; returns the stored message and its carrier id.
async fn sent_alert(w: &World) -> (Message, String) {
    let m = w
        .send("past-due-alert", past_due_vars(), None, noon())
        .await
        .unwrap()
        .message;
    let DeliverOutcome::Sent { carrier_message_id } = w.deliver(&m.id, noon()).await else {
        panic!("not sent");
    };
    (w.message(&m.id), carrier_message_id)
}

#[tokio::test]
async fn a_carrier_opt_out_report_becomes_ledger_entries() {
    // GIVEN an accounting text the carrier accepted
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    let (m, sid) = sent_alert(&w).await;

    // WHEN the carrier reports it undelivered with error 21610 (unsubscribed recipient)
    let report = StatusReport {
        message_id: m.id.clone(),
        carrier_message_id: sid.clone(),
        status: "undelivered".into(),
        error_code: Some(21610),
    };
    let status = replies::handle_status(&w.status_ports(), &report, noon() + mins(1))
        .await
        .unwrap();

    // THEN the message failed and every category is revoked by the carrier
    assert_eq!(status, Some(MessageStatus::Failed));
    assert_eq!(w.message(&m.id).status, MessageStatus::Failed);
    let by_carrier: Vec<_> = w
        .ledger()
        .into_iter()
        .filter(|e| e.event == ConsentEvent::RevokedByCarrier)
        .collect();
    assert_eq!(by_carrier.len(), 4);
    assert!(by_carrier
        .iter()
        .all(|e| e.actor == Actor::Carrier
            && e.evidence.as_deref().is_some_and(|ev| ev.contains(&sid))));
    assert_eq!(
        w.consent().await.may_send(Category::Accounting).reason(),
        "revoked-by-carrier"
    );
}

#[tokio::test]
async fn a_delivered_report_marks_the_message_delivered() {
    // GIVEN an accounting text the carrier accepted
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    let (m, sid) = sent_alert(&w).await;
    assert_eq!(m.status, MessageStatus::Sent);

    // WHEN a report with another carrier id arrives, THEN it changes nothing
    let stale = StatusReport {
        message_id: m.id.clone(),
        carrier_message_id: "SM-someone-else".into(),
        status: "delivered".into(),
        error_code: None,
    };
    let result = replies::handle_status(&w.status_ports(), &stale, noon())
        .await
        .unwrap();
    assert_eq!(result, None);
    assert_eq!(w.message(&m.id).status, MessageStatus::Sent);

    // WHEN the carrier reports "delivered"
    let report = StatusReport {
        carrier_message_id: sid,
        ..stale
    };
    let status = replies::handle_status(&w.status_ports(), &report, noon() + mins(1))
        .await
        .unwrap();

    // THEN the message is delivered
    assert_eq!(status, Some(MessageStatus::Delivered));
    assert_eq!(w.message(&m.id).status, MessageStatus::Delivered);
    assert_eq!(
        w.status_of(Category::Accounting).await,
        ConsentStatus::Authorized
    );
}

// ============================== Sending ==============================

#[tokio::test]
async fn a_template_of_a_category_the_number_has_not_authorized_is_refused() {
    // GIVEN only accounting authorized
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;

    // WHEN staff send a marketing offer
    let result = w.send("marketing-offer", offer_vars(), None, noon()).await;

    // THEN consent for marketing is required and nothing is stored
    assert!(
        matches!(
            result,
            Err(DomainError::ConsentRequired {
                category: Category::Marketing
            })
        ),
        "{result:?}"
    );
    assert!(w.messages_of(MessageKind::Template).is_empty());
}

#[tokio::test]
async fn missing_template_variables_are_a_render_error() {
    // GIVEN accounting authorized
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    let mut variables = past_due_vars();
    variables.remove("paymentUrl");

    // WHEN staff send a past due alert without its payment link
    let result = w.send("past-due-alert", variables, None, noon()).await;

    // THEN the render error names the missing variable and nothing is stored
    match result {
        Err(DomainError::Render(consent::template::RenderError::MissingVariables(names))) => {
            assert_eq!(names, vec!["paymentUrl".to_owned()]);
        }
        other => panic!("expected a render error, got {other:?}"),
    }
    assert!(w.messages_of(MessageKind::Template).is_empty());
}

#[tokio::test]
async fn the_same_idempotency_key_and_body_replays_the_first_message() {
    // GIVEN a send with key K
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    let key = Some(("K-1", "body-a"));
    let first = w
        .send_with_key("past-due-alert", past_due_vars(), None, key, noon())
        .await
        .unwrap();
    assert!(!first.replayed);

    // WHEN the same request comes again with K
    let second = w
        .send_with_key(
            "past-due-alert",
            past_due_vars(),
            None,
            key,
            noon() + mins(1),
        )
        .await
        .unwrap();

    // THEN it is the first message again; one message is stored and queued
    assert!(second.replayed);
    assert_eq!(second.message.id, first.message.id);
    assert_eq!(w.messages_of(MessageKind::Template).len(), 1);
    let queued = w.queued_ids();
    assert_eq!(
        queued.iter().filter(|id| **id == first.message.id).count(),
        1
    );
}

#[tokio::test]
async fn the_same_idempotency_key_with_another_body_is_refused() {
    // GIVEN a send with key K
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    w.send_with_key(
        "past-due-alert",
        past_due_vars(),
        None,
        Some(("K-1", "body-a")),
        noon(),
    )
    .await
    .unwrap();

    // WHEN another request reuses K
    let result = w
        .send_with_key(
            "text-to-pay-reminder",
            reminder_vars(),
            None,
            Some(("K-1", "body-b")),
            noon(),
        )
        .await;

    // THEN it is refused and nothing new is stored
    assert!(
        matches!(result, Err(DomainError::IdempotencyKeyReused)),
        "{result:?}"
    );
    assert_eq!(w.messages_of(MessageKind::Template).len(), 1);
}

#[tokio::test]
async fn a_schedule_more_than_a_minute_in_the_past_is_invalid() {
    // GIVEN accounting authorized
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;

    // WHEN staff schedule a text 61 s in the past
    let result = w
        .send(
            "past-due-alert",
            past_due_vars(),
            Some(noon() - Duration::seconds(61)),
            noon(),
        )
        .await;

    // THEN it is invalid
    assert!(matches!(result, Err(DomainError::Invalid(_))), "{result:?}");
    assert!(w.messages_of(MessageKind::Template).is_empty());

    // AND 30 s in the past is clock skew: it goes now
    let ok = w
        .send(
            "past-due-alert",
            past_due_vars(),
            Some(noon() - Duration::seconds(30)),
            noon(),
        )
        .await
        .unwrap();
    assert_eq!(ok.message.status, MessageStatus::Queued);
}

#[tokio::test]
async fn a_send_at_23_00_local_is_deferred_to_08_00_the_next_morning() {
    // GIVEN accounting authorized
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    let queued_before = w.queue.sent().len();

    // WHEN staff send a text at 23:00 in the recipient's zone
    let m = w
        .send("past-due-alert", past_due_vars(), None, late_evening())
        .await
        .unwrap()
        .message;

    // THEN it is deferred, visibly, to 08:00 local the next day, and not queued
    assert_eq!(m.status, MessageStatus::Deferred);
    assert_eq!(m.status_reason.as_deref(), Some("quiet-hours"));
    assert_eq!(
        m.send_at,
        consent::Zone::named("America/New_York")
            .unwrap()
            .with_ymd_and_hms(2026, 6, 11, 8, 0, 0)
            .unwrap()
    );
    assert_eq!(
        m.send_at,
        Utc.with_ymd_and_hms(2026, 6, 11, 12, 0, 0).unwrap()
    );
    assert_eq!(w.queue.sent().len(), queued_before);
    // AND dispatch leaves it until then, and queues it at 08:00
    assert_eq!(w.dispatch(late_evening() + mins(60)).await.queued, 0);
    assert_eq!(w.dispatch(m.send_at).await.queued, 1);
    assert_eq!(w.message(&m.id).status, MessageStatus::Queued);
}

#[tokio::test]
async fn a_scheduled_message_can_be_canceled_but_a_queued_one_cannot() {
    // GIVEN a scheduled text and a queued text
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    let scheduled = w
        .send(
            "past-due-alert",
            past_due_vars(),
            Some(noon() + mins(90)),
            noon(),
        )
        .await
        .unwrap()
        .message;
    let queued = w
        .send("past-due-alert", past_due_vars(), None, noon())
        .await
        .unwrap()
        .message;

    // WHEN staff cancel both
    let canceled = sending::cancel(&w.store, &w.dealer, &scheduled.id, noon() + mins(1))
        .await
        .unwrap();
    let refused = sending::cancel(&w.store, &w.dealer, &queued.id, noon() + mins(1)).await;

    // THEN the scheduled one is canceled and dispatch never queues it
    assert_eq!(canceled.status, MessageStatus::Canceled);
    assert_eq!(w.message(&scheduled.id).status, MessageStatus::Canceled);
    assert_eq!(w.dispatch(noon() + mins(90)).await.queued, 0);
    assert!(!w.queued_ids().contains(&scheduled.id));
    // AND the queued one cannot be canceled
    match refused {
        Err(DomainError::NotCancelable { status }) => assert_eq!(status, "queued"),
        other => panic!("expected NotCancelable, got {other:?}"),
    }
    assert_eq!(w.message(&queued.id).status, MessageStatus::Queued);
}

#[tokio::test]
async fn texts_made_before_the_dealer_changed_its_number_go_from_the_new_one() {
    // GIVEN a queued text (its queue record made) and a scheduled text, from the dealer's
    // number
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    let queued = w
        .send("past-due-alert", past_due_vars(), None, noon())
        .await
        .unwrap()
        .message;
    let record = w
        .queue
        .sent()
        .into_iter()
        .map(|o| o.envelope)
        .find(|e| e.message_id == queued.id)
        .expect("the queued text's record");
    let scheduled = w
        .send(
            "past-due-alert",
            past_due_vars(),
            Some(noon() + mins(90)),
            noon(),
        )
        .await
        .unwrap()
        .message;
    assert_eq!(queued.from, phone(DEALER_NUMBER));

    // WHEN the dealer changes its texting number, releasing the old one
    let new_number = phone("+12025550177");
    w.move_dealer_to(&new_number).await;

    // THEN the queued text's old record delivers it from the new number
    let outcome = delivery::deliver_envelope(&w.deliver_ports(), &record, None, noon() + mins(1))
        .await
        .unwrap();
    assert!(
        matches!(outcome, DeliverOutcome::Sent { .. }),
        "{outcome:?}"
    );
    let sent = w.carrier_copies(&w.message(&queued.id));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].from, new_number);
    assert_eq!(w.message(&queued.id).from, new_number);
    // AND the scheduled one, when due, goes from the new number too
    assert_eq!(w.dispatch(noon() + mins(90)).await.queued, 1);
    w.deliver(&scheduled.id, noon() + mins(90)).await;
    assert_eq!(w.message(&scheduled.id).status, MessageStatus::Sent);
    let sent = w.carrier_copies(&w.message(&scheduled.id));
    assert_eq!(sent.len(), 2, "the two texts (same words)");
    assert!(sent.iter().all(|s| s.from == new_number), "{sent:?}");
}

#[tokio::test]
async fn another_dealers_message_is_not_found() {
    // GIVEN a scheduled text of our dealer
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    let m = w
        .send(
            "past-due-alert",
            past_due_vars(),
            Some(noon() + mins(90)),
            noon(),
        )
        .await
        .unwrap()
        .message;
    let other = DealerId::parse("other-dealer").unwrap();

    // WHEN another dealer reads or cancels it
    let read = sending::message_of(&w.store, &other, &m.id).await;
    let cancel = sending::cancel(&w.store, &other, &m.id, noon()).await;

    // THEN it does not exist for them, and it is unchanged
    assert!(
        matches!(read, Err(DomainError::NotFound { .. })),
        "{read:?}"
    );
    assert!(
        matches!(cancel, Err(DomainError::NotFound { .. })),
        "{cancel:?}"
    );
    assert_eq!(w.message(&m.id).status, MessageStatus::Scheduled);
}

#[tokio::test]
async fn a_queue_failure_leaves_an_immediate_send_scheduled_not_lost() {
    // GIVEN accounting authorized and a queue that refuses the next send
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    w.queue.fail_next(1);

    // WHEN staff send now
    let m = w
        .send("past-due-alert", past_due_vars(), None, noon())
        .await
        .unwrap()
        .message;

    // THEN the message waits in the time index, due now
    assert_eq!(m.status, MessageStatus::Scheduled);
    assert_eq!(m.status_reason.as_deref(), Some("queue-unavailable"));
    assert_eq!(w.message(&m.id).status, MessageStatus::Scheduled);
    assert!(!w.queued_ids().contains(&m.id));
    // AND the next dispatch run queues it
    assert_eq!(w.dispatch(noon() + mins(1)).await.queued, 1);
    assert!(w.queued_ids().contains(&m.id));
}

#[tokio::test]
async fn an_automated_send_without_consent_is_recorded_suppressed_once() {
    // GIVEN a contact with no consent
    let w = World::new().await;
    let event = || w.request_for("auto-pay-failure", past_due_vars(), None);
    let work = &w.store;
    let auto = |now| {
        let ports = w.send_ports();
        let dealer = w.dealer.clone();
        async move {
            sending::automated_send(
                &ports,
                work,
                &dealer,
                "AutoPayFailed",
                "evt-42",
                event(),
                now,
            )
            .await
        }
    };

    // WHEN the DMS event arrives, and is delivered again
    let first = auto(noon()).await.unwrap();
    let second = auto(noon() + mins(1)).await.unwrap();

    // THEN one suppressed message records why, and the redelivery replays it
    assert_eq!(first.message.status, MessageStatus::Suppressed);
    assert_eq!(
        first.message.status_reason.as_deref(),
        Some("consent-required: accounting")
    );
    assert!(
        matches!(first.message.origin, Origin::Automation { ref event_id, .. } if event_id == "evt-42")
    );
    assert!(second.replayed);
    assert_eq!(second.message.id, first.message.id);
    assert_eq!(w.messages_of(MessageKind::Template).len(), 1);
    assert!(w.queue.sent().is_empty());
    // AND one item on the automation-failures queue tells staff why, once
    let items: Vec<_> = w
        .store
        .work_items()
        .into_iter()
        .filter(|i| i.queue == WorkQueueName::AutomationFailures)
        .collect();
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0].message_id.as_ref(), Some(&first.message.id));
    assert_eq!(
        items[0].text.as_deref(),
        Some("AutoPayFailed: consent-required: accounting")
    );
}

// ============================== Dispatch ==============================

#[tokio::test]
async fn dispatch_queues_due_messages_once_with_sub_minute_delays() {
    // GIVEN two texts due at 12:10:00 and 12:10:30 EDT and one due at 14:00
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    let at = noon() + mins(10);
    let a = w
        .send("past-due-alert", past_due_vars(), Some(at), noon())
        .await
        .unwrap()
        .message;
    let b = w
        .send(
            "past-due-alert",
            past_due_vars(),
            Some(at + Duration::seconds(30)),
            noon(),
        )
        .await
        .unwrap()
        .message;
    let later = w
        .send(
            "past-due-alert",
            past_due_vars(),
            Some(noon() + mins(120)),
            noon(),
        )
        .await
        .unwrap()
        .message;
    let before = w.queue.sent().len();

    // WHEN dispatch runs at 12:10, twice
    let first = w.dispatch(at).await;
    let second = w.dispatch(at).await;

    // THEN the due ones are queued once, each with its delay within the minute
    assert_eq!(first.queued, 2, "{first:?}");
    assert_eq!(second, DispatchReport::default());
    let sent = w.queue.sent();
    assert_eq!(sent.len(), before + 2);
    let delay = |id: &MessageId| {
        let found: Vec<_> = sent
            .iter()
            .filter(|o| &o.envelope.message_id == id)
            .collect();
        assert_eq!(found.len(), 1, "queued exactly once");
        found[0].delay_seconds
    };
    assert_eq!(delay(&a.id), 0);
    assert_eq!(delay(&b.id), 30);
    assert!(sent[before..].iter().all(|o| o.delay_seconds <= 60));
    assert_eq!(w.message(&a.id).status, MessageStatus::Queued);
    assert_eq!(w.message(&b.id).status, MessageStatus::Queued);
    // AND the later one still waits
    assert_eq!(w.message(&later.id).status, MessageStatus::Scheduled);
}

#[tokio::test]
async fn a_stop_between_scheduling_and_dispatch_keeps_the_text_from_going() {
    // GIVEN a text scheduled for 12:30
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    let m = w
        .send(
            "past-due-alert",
            past_due_vars(),
            Some(noon() + mins(30)),
            noon(),
        )
        .await
        .unwrap()
        .message;

    // WHEN the person replies STOP at 12:05 and dispatch runs at 12:30
    w.reply("SM-stop", "STOP", noon() + mins(5)).await;
    let report = w.dispatch(noon() + mins(30)).await;

    // THEN it is suppressed and never queued
    assert_eq!(report.queued, 0);
    assert_eq!(w.message(&m.id).status, MessageStatus::Suppressed);
    assert!(!w.queued_ids().contains(&m.id));
}

#[tokio::test]
async fn dispatch_rechecks_consent_and_suppresses_after_a_portal_unsubscribe() {
    // GIVEN a text scheduled for 12:30, and accounting unsubscribed in the portal at 12:05
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    let m = w
        .send(
            "past-due-alert",
            past_due_vars(),
            Some(noon() + mins(30)),
            noon(),
        )
        .await
        .unwrap()
        .message;
    w.unsubscribe(Category::Accounting, noon() + mins(5)).await;
    assert_eq!(w.message(&m.id).status, MessageStatus::Scheduled);

    // WHEN dispatch runs at 12:30
    let report = w.dispatch(noon() + mins(30)).await;

    // THEN dispatch suppresses it with the reason instead of queueing it
    assert_eq!(report.suppressed, 1, "{report:?}");
    assert_eq!(report.queued, 0);
    let now = w.message(&m.id);
    assert_eq!(now.status, MessageStatus::Suppressed);
    assert_eq!(now.status_reason.as_deref(), Some("revoked"));
    assert!(!w.queued_ids().contains(&m.id));
}

// ============================== Deliver ==============================

/// Accounting authorized and one past-due alert queued at noon.
async fn queued_alert() -> (World, Message) {
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

#[tokio::test]
async fn deliver_calls_the_carrier_once_and_records_its_id() {
    // GIVEN a queued text
    let (w, m) = queued_alert().await;

    // WHEN the worker delivers it, and SQS redelivers the record
    let first = w.deliver(&m.id, noon()).await;
    let second = w.deliver(&m.id, noon() + Duration::seconds(30)).await;

    // THEN the carrier got it once, from the dealer's number, and the id is recorded
    let DeliverOutcome::Sent { carrier_message_id } = first else {
        panic!("expected Sent, got {first:?}");
    };
    let sent = w.carrier_copies(&m);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].from, phone(DEALER_NUMBER));
    assert_eq!(sent[0].to, w.phone);
    assert_eq!(sent[0].body, m.body);
    let stored = w.message(&m.id);
    assert_eq!(stored.status, MessageStatus::Sent);
    assert_eq!(
        stored.carrier_message_id.as_deref(),
        Some(carrier_message_id.as_str())
    );
    assert_eq!(stored.attempts, 1);
    // AND the redelivery is skipped
    assert_eq!(
        second,
        DeliverOutcome::Skipped {
            status: Some(MessageStatus::Sent)
        }
    );
}

#[tokio::test]
async fn retryable_carrier_failures_retry_then_send_once() {
    // GIVEN a queued text and a carrier failing the first two attempts
    let (w, m) = queued_alert().await;
    w.carrier.fail_next(2, CarrierScript::Retryable);

    // WHEN the worker delivers it three times
    let a = w.deliver(&m.id, noon()).await;
    let status_between = w.message(&m.id).status;
    let b = w.deliver(&m.id, noon() + Duration::seconds(10)).await;
    let c = w.deliver(&m.id, noon() + Duration::seconds(30)).await;

    // THEN it backs off twice, then it is sent, and the carrier has one copy
    assert_eq!(
        a,
        DeliverOutcome::RetryLater {
            after: std::time::Duration::from_secs(10)
        }
    );
    assert_eq!(status_between, MessageStatus::Queued);
    assert_eq!(
        b,
        DeliverOutcome::RetryLater {
            after: std::time::Duration::from_secs(20)
        }
    );
    assert!(matches!(c, DeliverOutcome::Sent { .. }), "{c:?}");
    assert_eq!(w.carrier_copies(&m).len(), 1);
    let stored = w.message(&m.id);
    assert_eq!(stored.status, MessageStatus::Sent);
    assert_eq!(stored.attempts, 3);
}

#[tokio::test]
async fn a_permanent_carrier_failure_fails_and_goes_to_staff() {
    // GIVEN a queued text and a carrier that refuses it for good
    let (w, m) = queued_alert().await;
    w.carrier.fail_next(1, CarrierScript::Permanent);

    // WHEN the worker delivers it
    let outcome = w.deliver(&m.id, noon()).await;

    // THEN the message failed visibly and a work item on FailedSends points at it
    assert!(
        matches!(outcome, DeliverOutcome::Failed { .. }),
        "{outcome:?}"
    );
    assert_eq!(w.message(&m.id).status, MessageStatus::Failed);
    let items = w.store.work_items();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].queue, WorkQueueName::FailedSends);
    assert_eq!(items[0].message_id.as_ref(), Some(&m.id));
    assert_eq!(items[0].contact_id.as_ref(), Some(&w.contact));
    assert!(w.carrier_copies(&m).is_empty());
}

#[tokio::test]
async fn a_carrier_opt_out_suppresses_and_is_recorded_on_the_ledger() {
    // GIVEN a queued text and a carrier that says the number opted out
    let (w, m) = queued_alert().await;
    w.carrier.fail_next(1, CarrierScript::OptedOut);

    // WHEN the worker delivers it
    let outcome = w.deliver(&m.id, noon()).await;

    // THEN the text is suppressed and the block is a ledger entry, so app and carrier agree
    assert!(
        matches!(outcome, DeliverOutcome::Suppressed { .. }),
        "{outcome:?}"
    );
    assert_eq!(w.message(&m.id).status, MessageStatus::Suppressed);
    let by_carrier: Vec<_> = w
        .ledger()
        .into_iter()
        .filter(|e| e.event == ConsentEvent::RevokedByCarrier)
        .collect();
    assert_eq!(by_carrier.len(), 4);
    assert!(by_carrier.iter().all(|e| e.actor == Actor::Carrier));
    assert!(!w
        .consent()
        .await
        .may_send(Category::Accounting)
        .is_allowed());
}

#[tokio::test]
async fn consent_revoked_after_queueing_suppresses_without_calling_the_carrier() {
    // GIVEN a queued text, and accounting unsubscribed in the portal before delivery
    let (w, m) = queued_alert().await;
    w.unsubscribe(Category::Accounting, noon() + Duration::seconds(5))
        .await;

    // WHEN the worker delivers it
    let outcome = w.deliver(&m.id, noon() + Duration::seconds(10)).await;

    // THEN it is suppressed and the carrier is never called
    assert_eq!(
        outcome,
        DeliverOutcome::Suppressed {
            reason: "revoked".into()
        }
    );
    assert_eq!(w.message(&m.id).status, MessageStatus::Suppressed);
    assert!(w.carrier_copies(&m).is_empty());
}

#[tokio::test]
async fn a_text_reaching_the_worker_in_quiet_hours_is_deferred_not_sent() {
    // GIVEN a text queued at noon whose record reaches the worker only at 23:00 local
    let (w, m) = queued_alert().await;

    // WHEN the worker delivers it at 23:00
    let outcome = w.deliver(&m.id, late_evening()).await;

    // THEN it goes back to the time index until 08:00 local, without a carrier call
    let eight = Utc.with_ymd_and_hms(2026, 6, 11, 12, 0, 0).unwrap();
    assert!(
        matches!(&outcome, DeliverOutcome::Deferred { until, reason } if *until == eight && reason == "quiet-hours"),
        "{outcome:?}"
    );
    let stored = w.message(&m.id);
    assert_eq!(stored.status, MessageStatus::Deferred);
    assert_eq!(stored.send_at, eight);
    assert!(w.carrier_copies(&m).is_empty());
    // AND at 08:00 dispatch queues it again and it is sent
    assert_eq!(w.dispatch(eight).await.queued, 1);
    assert!(matches!(
        w.deliver(&m.id, eight).await,
        DeliverOutcome::Sent { .. }
    ));
    assert_eq!(w.carrier_copies(&m).len(), 1);
}

#[tokio::test]
async fn a_claim_older_than_five_minutes_is_settled_by_the_carriers_list() {
    for list_readable in [true, false] {
        // GIVEN a message a worker claimed at noon and never finished (it died before
        // its carrier call)
        let (w, m) = queued_alert().await;
        let mut stuck = w.message(&m.id);
        stuck.transition(MessageStatus::Sending, noon(), None);
        w.store.put_message_raw(stuck);

        // WHEN the record comes back four minutes later, THEN it is left alone
        let early = w.deliver(&m.id, noon() + mins(4)).await;
        assert_eq!(
            early,
            DeliverOutcome::Skipped {
                status: Some(MessageStatus::Sending)
            }
        );
        assert!(w.store.work_items().is_empty());

        // WHEN it comes back after five minutes
        if !list_readable {
            w.carrier.fail_next(1, CarrierScript::ListUnavailable);
        }
        let late = w
            .deliver(&m.id, noon() + mins(5) + Duration::seconds(1))
            .await;

        if list_readable {
            // THEN the carrier's list does not have it: claimed again and sent, once
            assert!(matches!(late, DeliverOutcome::Sent { .. }), "{late:?}");
            assert_eq!(w.message(&m.id).status, MessageStatus::Sent);
            assert_eq!(w.carrier_copies(&m).len(), 1);
            assert!(w.store.work_items().is_empty());
        } else {
            // THEN the outcome stays unknown: it fails (the carrier may have it, so it is
            // not sent again) and goes to staff
            assert!(matches!(late, DeliverOutcome::Failed { .. }), "{late:?}");
            assert_eq!(w.message(&m.id).status, MessageStatus::Failed);
            let items = w.store.work_items();
            assert_eq!(items.len(), 1);
            assert_eq!(items[0].queue, WorkQueueName::FailedSends);
            assert_eq!(items[0].message_id.as_ref(), Some(&m.id));
            assert!(w.carrier_copies(&m).is_empty());
        }
    }
}

#[tokio::test]
async fn approval_codes_and_replies_are_delivered_without_consent_even_at_night() {
    // GIVEN a number with no consent and a code text requested at 23:00 local
    let w = World::new().await;
    w.request(Category::Accounting, late_evening())
        .await
        .unwrap();
    let code_text = w.last_code_text();
    let code = w.last_code();

    // WHEN it is delivered at 23:00 local
    let a = w.deliver(&code_text.id, late_evening()).await;

    // THEN it reaches the carrier
    assert!(matches!(a, DeliverOutcome::Sent { .. }), "{a:?}");

    // AND WHEN the person replies STOP and the confirmation is delivered
    w.reply("SM-stop", "STOP", late_evening() + mins(1)).await;
    let confirmation = w.messages_of(MessageKind::Reply).remove(0);
    let b = w.deliver(&confirmation.id, late_evening() + mins(1)).await;

    // THEN the confirmation reaches the carrier too, though every category is revoked
    assert!(matches!(b, DeliverOutcome::Sent { .. }), "{b:?}");
    // AND the phone got the code text with the code in it (the stored one is masked)
    let inbox = w.carrier.inbox(&w.phone);
    let texted = code_text.body.replace("******", code.reveal());
    assert_eq!(inbox, vec![texted, confirmation.body]);
    // AND once it went, the store keeps no sealed code either
    assert_eq!(w.message(&code_text.id).code, None);
}

/// A texting queue that is down: every add fails like an unreachable table.
struct DownWorkQueue;

#[derive(Debug)]
struct Down;

impl std::fmt::Display for Down {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("down")
    }
}

impl std::error::Error for Down {}

#[async_trait::async_trait]
impl consent::ports::WorkQueue for DownWorkQueue {
    async fn add_item(&self, _: &consent::ports::WorkItem) -> consent::ports::StoreResult<()> {
        Err(consent::StoreError::unavailable("work queue", Down))
    }
}

#[tokio::test]
async fn a_reply_that_failed_is_acted_on_when_it_is_delivered_again() {
    // GIVEN the texting queues are down when a free-text reply arrives
    let w = World::new().await;
    let sms = InboundSms {
        carrier_message_id: "SM-retry".into(),
        from: w.phone.clone(),
        to: phone(DEALER_NUMBER),
        body: "Is my car ready?".into(),
    };
    let mut ports = w.inbound();
    ports.work = &DownWorkQueue;
    // WHEN it is handled THEN it fails (the stored webhook stays on the inbound queue)
    assert!(replies::handle_inbound(&ports, &sms, noon()).await.is_err());
    // AND the queue's redelivery of the same MessageSid is acted on, not dropped as a duplicate
    assert_eq!(
        replies::handle_inbound(&w.inbound(), &sms, noon())
            .await
            .unwrap(),
        ReplyOutcome::Queued
    );
    assert_eq!(w.store.work_items().len(), 1);
}

#[tokio::test]
async fn stop_after_a_portal_unsubscribe_is_recorded_and_confirmed_once() {
    // GIVEN every category unsubscribed in the portal
    let w = World::new().await;
    for c in Category::ALL {
        auth::unsubscribe(&w.auth(), &w.dealer, &w.staff, &w.contact, c, noon())
            .await
            .unwrap();
    }
    // WHEN the person texts STOP
    let outcome = w.reply("SM-stop-1", "STOP", noon() + mins(1)).await;
    // THEN their own revocation is on the ledger for every category, with one confirmation
    match outcome {
        ReplyOutcome::OptedOut { revoked, .. } => assert_eq!(revoked.len(), 4),
        other => panic!("expected an opt-out, got {other:?}"),
    }
    let by_reply = w
        .ledger()
        .iter()
        .filter(|e| e.event == ConsentEvent::RevokedByReply)
        .count();
    assert_eq!(by_reply, 4);
    assert_eq!(w.messages_of(MessageKind::Reply).len(), 1);
    // AND a second STOP records and sends nothing more
    w.reply("SM-stop-2", "stop", noon() + mins(2)).await;
    assert_eq!(w.ledger().len(), 8);
    assert_eq!(w.messages_of(MessageKind::Reply).len(), 1);
    // AND START restores nothing the portal removed
    w.reply("SM-start", "START", noon() + mins(3)).await;
    assert!(w.consent().await.authorized().is_empty());
}

#[tokio::test]
async fn the_confirm_request_carries_its_marker_from_the_start() {
    // GIVEN a sent Text to Pay reminder and a PAY reply
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    let reminder = w
        .send("text-to-pay-reminder", reminder_vars(), None, noon())
        .await
        .unwrap()
        .message;
    w.deliver(&reminder.id, noon()).await;
    w.reply("SM-pay", "PAY", noon() + mins(1)).await;
    // THEN the queued CONFIRM request already names what it confirms (no later rewrite
    // that a delivery worker could race)
    let ask = w
        .messages_of(MessageKind::Reply)
        .into_iter()
        .find(|m| m.template.as_deref() == Some(replies::PAY_CONFIRM_MARKER))
        .expect("a CONFIRM request");
    assert_eq!(ask.status, MessageStatus::Queued);
    assert_eq!(ask.history.len(), 1);
    assert_eq!(ask.contact_id, Some(w.contact.clone()));
}

// ---- trust: the defects of issue 13, each proven here ----

#[tokio::test]
async fn a_carrier_that_took_the_text_but_never_answered_is_found_in_its_list_not_sent_again() {
    // GIVEN a queued text and a carrier that accepts it, then never answers in time
    let (w, m) = queued_alert().await;
    w.carrier.fail_next(1, CarrierScript::AcceptThenTimeout);

    // WHEN the worker delivers it, and SQS hands the record out again
    let first = w.deliver(&m.id, noon()).await;
    let again = w.deliver(&m.id, noon() + Duration::seconds(40)).await;

    // THEN the carrier's message list shows it took the text: sent, with the carrier's id
    let DeliverOutcome::Sent { carrier_message_id } = first else {
        panic!("expected Sent, got {first:?}");
    };
    assert!(matches!(again, DeliverOutcome::Skipped { .. }), "{again:?}");
    // AND the phone got the text exactly once, and nobody is asked to look at it
    assert_eq!(w.carrier_copies(&m).len(), 1);
    let stored = w.message(&m.id);
    assert_eq!(stored.status, MessageStatus::Sent);
    assert_eq!(stored.carrier_message_id, Some(carrier_message_id));
    assert!(w.store.work_items().is_empty());
}

#[tokio::test]
async fn a_text_lost_on_its_way_to_the_carrier_is_sent_once_more_after_the_list_says_so() {
    // GIVEN a carrier that never got the request and never answered
    let (w, m) = queued_alert().await;
    w.carrier.fail_next(1, CarrierScript::LostThenTimeout);

    // WHEN the worker delivers it
    let outcome = w.deliver(&m.id, noon()).await;

    // THEN the list did not have it, so it was sent once more: one copy at the phone
    assert!(
        matches!(outcome, DeliverOutcome::Sent { .. }),
        "{outcome:?}"
    );
    assert_eq!(w.carrier_copies(&m).len(), 1);
    assert_eq!(w.message(&m.id).status, MessageStatus::Sent);
}

#[tokio::test]
async fn an_unknown_outcome_the_list_cannot_settle_goes_to_staff_never_a_second_text() {
    // GIVEN a carrier that takes the text without answering and whose list is down
    let (w, m) = queued_alert().await;
    w.carrier.fail_next(1, CarrierScript::AcceptThenTimeout);
    w.carrier.fail_next(1, CarrierScript::ListUnavailable);

    // WHEN the worker delivers it, and the record comes again
    let first = w.deliver(&m.id, noon()).await;
    let again = w.deliver(&m.id, noon() + Duration::seconds(40)).await;

    // THEN it fails to staff, and the phone has exactly the one copy the carrier took
    assert!(matches!(first, DeliverOutcome::Failed { .. }), "{first:?}");
    assert!(matches!(again, DeliverOutcome::Skipped { .. }), "{again:?}");
    assert_eq!(w.carrier_copies(&m).len(), 1);
    assert_eq!(w.message(&m.id).status, MessageStatus::Failed);
    let items = w.store.work_items();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].queue, WorkQueueName::FailedSends);
    assert_eq!(items[0].message_id.as_ref(), Some(&m.id));
}

#[tokio::test]
async fn a_text_lost_twice_goes_to_staff_after_one_more_try() {
    // GIVEN a carrier that loses the request twice
    let (w, m) = queued_alert().await;
    w.carrier.fail_next(2, CarrierScript::LostThenTimeout);

    // WHEN the worker delivers it
    let outcome = w.deliver(&m.id, noon()).await;

    // THEN one more try, not a third: the message fails to staff, the phone got nothing
    assert!(
        matches!(outcome, DeliverOutcome::Failed { .. }),
        "{outcome:?}"
    );
    assert!(w.carrier_copies(&m).is_empty());
    assert_eq!(w.store.work_items().len(), 1);
}

#[tokio::test]
async fn a_busy_carrier_429_is_never_an_attempt() {
    // GIVEN a carrier answering 429 (over the account's concurrency) ten times in a row,
    // more than the attempts a text has
    let (w, m) = queued_alert().await;
    w.carrier.fail_next(10, CarrierScript::Throttled);

    // WHEN the text is delivered until it goes
    let mut outcomes = Vec::new();
    for i in 0..11 {
        outcomes.push(w.deliver(&m.id, noon() + Duration::seconds(2 * i)).await);
    }

    // THEN each 429 put it back to wait in the queue, and the eleventh try sent it
    for o in &outcomes[..10] {
        assert_eq!(
            o,
            &DeliverOutcome::WaitInQueue {
                why: delivery::WaitReason::CarrierBusy
            }
        );
    }
    assert!(
        matches!(outcomes[10], DeliverOutcome::Sent { .. }),
        "{:?}",
        outcomes[10]
    );
    // AND only the call that went counts as an attempt; nothing went to staff
    let stored = w.message(&m.id);
    assert_eq!(stored.attempts, 1);
    assert!(w.store.work_items().is_empty());
    assert_eq!(w.carrier_copies(&m).len(), 1);
}

#[tokio::test]
async fn a_code_text_that_fails_voids_its_request() {
    // GIVEN a code text the carrier refuses
    let w = World::new().await;
    w.request(Category::Accounting, noon()).await.unwrap();
    let code = w.last_code();
    let text = w.last_code_text();
    w.carrier.fail_next(1, CarrierScript::Permanent);

    // WHEN it is delivered
    let outcome = w.deliver(&text.id, noon()).await;

    // THEN it failed, its request is void (nobody received that code) and the stored
    // message keeps no sealed code
    assert!(
        matches!(outcome, DeliverOutcome::Failed { .. }),
        "{outcome:?}"
    );
    assert!(matches!(
        w.verify(Category::Accounting, &code, noon() + mins(1))
            .await,
        Err(DomainError::NoPendingRequest)
    ));
    assert_eq!(w.message(&text.id).code, None);
    // AND the failed-sends item says why without the text
    let items = w.store.work_items();
    assert_eq!(items.len(), 1);
    assert!(!items[0]
        .text
        .as_deref()
        .unwrap_or("")
        .contains(code.reveal()));
}

#[tokio::test]
async fn a_queue_record_that_lies_about_the_message_sends_nothing() {
    // GIVEN a marketing text the person never authorized, queued (as a bug or an
    // attacker with queue access would leave it)
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    let m = w
        .send("past-due-alert", past_due_vars(), None, noon())
        .await
        .unwrap()
        .message;
    let sent_before = w.carrier.sent().len();

    // WHEN its queue record claims it is a consent-exempt reply, or to another number,
    // or says something else
    for forge in [
        |s: &mut consent::message::DeliverySnapshot| s.kind = MessageKind::Reply,
        |s: &mut consent::message::DeliverySnapshot| s.to = phone("+13125550199"),
        |s: &mut consent::message::DeliverySnapshot| s.body = "Click evil.example".into(),
        |s: &mut consent::message::DeliverySnapshot| s.category = Category::Marketing,
    ] {
        let mut envelope = OutboundEnvelope::for_message(&m, noon());
        forge(envelope.delivery.as_mut().unwrap());
        let outcome = delivery::deliver_envelope(&w.deliver_ports(), &envelope, None, noon())
            .await
            .unwrap();
        // THEN nothing is sent and the message stays as stored
        assert_eq!(outcome, DeliverOutcome::Skipped { status: None });
    }
    assert_eq!(w.carrier.sent().len(), sent_before);
    assert_eq!(w.message(&m.id).status, MessageStatus::Queued);
    // AND the true record still goes
    assert!(matches!(
        w.deliver(&m.id, noon()).await,
        DeliverOutcome::Sent { .. }
    ));
}

/// A reminder answered PAY, and the "reply CONFIRM" request delivered: the request.
async fn pay_requested(w: &World) -> Message {
    w.grant(Category::Accounting, noon()).await;
    let reminder = w
        .send("text-to-pay-reminder", reminder_vars(), None, noon())
        .await
        .unwrap()
        .message;
    w.deliver(&reminder.id, noon()).await;
    w.reply("SM-pay", "PAY", noon() + mins(5)).await;
    let ask = w
        .messages_of(MessageKind::Reply)
        .into_iter()
        .find(|m| m.template.as_deref() == Some(replies::PAY_CONFIRM_MARKER))
        .unwrap();
    w.deliver(&ask.id, noon() + mins(5)).await;
    ask
}

#[tokio::test]
async fn confirm_twice_is_one_payment_request() {
    // GIVEN a pay request waiting for CONFIRM
    let w = World::new().await;
    let ask = pay_requested(&w).await;

    // WHEN CONFIRM is handled but its answer cannot be queued (the delivery fails after
    // the event was published) and the same MessageSid is delivered again
    let sms = InboundSms {
        carrier_message_id: "SM-confirm".into(),
        from: w.phone.clone(),
        to: phone(DEALER_NUMBER),
        body: "CONFIRM".into(),
    };
    w.queue.fail_next(1);
    assert!(
        replies::handle_inbound(&w.inbound(), &sms, noon() + mins(7))
            .await
            .is_err()
    );
    assert_eq!(
        replies::handle_inbound(&w.inbound(), &sms, noon() + mins(7))
            .await
            .unwrap(),
        ReplyOutcome::PaymentConfirmed
    );
    // AND the person texts CONFIRM again, a new MessageSid, within the 30 minutes
    let again = w.reply("SM-confirm-2", "confirm", noon() + mins(8)).await;

    // THEN the second CONFIRM confirms nothing more
    assert_eq!(again, ReplyOutcome::AlreadyConfirmed);
    // AND every publication carries the pay request's one id, so the payment system acts once
    let events = w.bus.published();
    assert_eq!(
        events.len(),
        2,
        "the redelivery republished; nothing else did"
    );
    for e in &events {
        assert_eq!(
            e.detail["id"],
            json!(replies::confirmation_event_id(&ask.id))
        );
    }
    // AND the person got one thank-you
    let thanks = w
        .messages_of(MessageKind::Reply)
        .into_iter()
        .filter(|m| m.body.contains("payment request was sent"))
        .count();
    assert_eq!(thanks, 1);
}

/// A queue and a bus that crash with the store (its write budget), as one killed
/// instance would stop making every call.
struct Crashing<'a>(&'a World);

#[async_trait::async_trait]
impl consent::ports::OutboundQueue for Crashing<'_> {
    async fn enqueue(
        &self,
        items: &[consent::message::Outbound],
    ) -> consent::ports::StoreResult<Vec<MessageId>> {
        self.0.store.take_write()?;
        self.0.queue.enqueue(items).await
    }
}

#[async_trait::async_trait]
impl consent::ports::EventPublisher for Crashing<'_> {
    async fn publish(
        &self,
        events: &[consent::ports::BusEvent],
    ) -> consent::ports::StoreResult<()> {
        self.0.store.take_write()?;
        self.0.bus.publish(events).await
    }
}

/// What acting on replies left behind, to compare a crashed and redelivered run with a
/// clean one.
#[derive(Debug, PartialEq, Eq)]
struct Effects {
    ledger: Vec<(Category, ConsentEvent)>,
    answers: Vec<String>,
    /// Answers still queued that no queue record carries (they would wait for a requeue).
    answers_not_queued: usize,
    staff_items: usize,
    payment_event_ids: std::collections::BTreeSet<String>,
    opted_out: bool,
}

impl World {
    async fn effects(&self) -> Effects {
        let queued: std::collections::HashSet<MessageId> = self
            .queue
            .sent()
            .into_iter()
            .map(|o| o.envelope.message_id)
            .collect();
        let answers = self.messages_of(MessageKind::Reply);
        Effects {
            ledger: self
                .ledger()
                .iter()
                .map(|e| (e.category, e.event))
                .collect(),
            answers_not_queued: answers
                .iter()
                .filter(|m| m.status == MessageStatus::Queued && !queued.contains(&m.id))
                .count(),
            answers: answers.into_iter().map(|m| m.body).collect(),
            staff_items: self.store.work_items().len(),
            payment_event_ids: self
                .bus
                .published()
                .iter()
                .filter(|e| e.detail_type == replies::TEXT_TO_PAY_CONFIRMED)
                .map(|e| e.detail["id"].to_string())
                .collect(),
            opted_out: self
                .store
                .opted_out(&phone(DEALER_NUMBER), &self.phone)
                .await
                .unwrap(),
        }
    }
}

#[tokio::test]
async fn a_reply_acts_exactly_once_wherever_an_instance_dies() {
    // Each kind of reply, with what it needs set up first.
    type Setup = for<'a> fn(&'a World) -> futures::future::BoxFuture<'a, ()>;
    let nothing: Setup = |_| Box::pin(async {});
    let granted: Setup = |w| {
        Box::pin(async move {
            w.grant(Category::Accounting, noon()).await;
            w.grant(Category::Service, noon()).await;
        })
    };
    let requested: Setup = |w| {
        Box::pin(async move {
            w.request(Category::Marketing, noon()).await.unwrap();
        })
    };
    let stopped: Setup = |w| {
        Box::pin(async move {
            w.grant(Category::Service, noon()).await;
            w.reply("SM-before", "STOP", noon()).await;
        })
    };
    let pay: Setup = |w| {
        Box::pin(async move {
            pay_requested(w).await;
        })
    };
    let cases: [(&str, &str, Setup); 7] = [
        ("STOP", "STOP", granted),
        ("Agree", "Agree", requested),
        ("START", "START", stopped),
        ("HELP", "HELP", nothing),
        ("PAY", "PAY", pay),
        ("CONFIRM", "CONFIRM", pay),
        ("free text", "Is my car ready?", granted),
    ];
    for (name, body, setup) in cases {
        // GIVEN the effects of one clean delivery
        let clean = World::new().await;
        setup(&clean).await;
        clean.reply("SM-x", body, noon() + mins(10)).await;
        let expected = clean.effects().await;
        assert_eq!(expected.answers_not_queued, 0, "{name}");
        let mut crash_points = 0;
        for budget in 0..40 {
            // WHEN the instance dies after `budget` writes (store, queue or bus), and the
            // stored webhook is delivered again, twice
            let w = World::new().await;
            setup(&w).await;
            let sms = InboundSms {
                carrier_message_id: "SM-x".into(),
                from: w.phone.clone(),
                to: phone(DEALER_NUMBER),
                body: body.into(),
            };
            let crashing = Crashing(&w);
            let mut ports = w.inbound();
            ports.queue = &crashing;
            ports.events = &crashing;
            w.store.crash_after_writes(budget);
            let first = replies::handle_inbound(&ports, &sms, noon() + mins(10)).await;
            w.store.recover();
            if first.is_ok() {
                // Every write fitted in the budget: no more crash points for this kind.
                break;
            }
            crash_points += 1;
            let again = replies::handle_inbound(&w.inbound(), &sms, noon() + mins(10))
                .await
                .unwrap();
            assert_ne!(again, ReplyOutcome::Duplicate, "{name} at {budget}");
            assert_eq!(
                w.reply("SM-x", body, noon() + mins(10)).await,
                ReplyOutcome::Duplicate,
                "{name} at {budget}"
            );
            // THEN what it did is what one clean delivery does: no effect lost, none doubled
            assert_eq!(
                w.effects().await,
                expected,
                "{name}, crashed after {budget} writes"
            );
        }
        assert!(
            crash_points >= 2,
            "{name}: only {crash_points} crash points"
        );
    }
}

/// A pending store where a guess lands between a resend's read and its write.
struct GuessDuringResend<'a>(&'a InMemoryStore);

#[async_trait::async_trait]
impl consent::ports::PendingStore for GuessDuringResend<'_> {
    async fn pending(
        &self,
        d: &DealerId,
        p: &PhoneNumber,
        c: Category,
    ) -> consent::ports::StoreResult<Option<PendingAuthorization>> {
        self.0.pending(d, p, c).await
    }
    async fn pending_for_number(
        &self,
        d: &DealerId,
        p: &PhoneNumber,
    ) -> consent::ports::StoreResult<Vec<PendingAuthorization>> {
        self.0.pending_for_number(d, p).await
    }
    async fn pending_for_numbers(
        &self,
        d: &DealerId,
        p: &[PhoneNumber],
    ) -> consent::ports::StoreResult<Vec<PendingAuthorization>> {
        self.0.pending_for_numbers(d, p).await
    }
    async fn put_pending(&self, p: &PendingAuthorization) -> consent::ports::StoreResult<()> {
        self.0.take_attempt(p).await?;
        self.0.put_pending(p).await
    }
    async fn take_attempt(
        &self,
        p: &PendingAuthorization,
    ) -> consent::ports::StoreResult<Option<PendingAuthorization>> {
        self.0.take_attempt(p).await
    }
    async fn replace_code(&self, p: &PendingAuthorization) -> consent::ports::StoreResult<()> {
        self.0.take_attempt(p).await?;
        self.0.replace_code(p).await
    }
    async fn void(
        &self,
        d: &DealerId,
        p: &PhoneNumber,
        c: Category,
        r: &str,
        n: Option<u32>,
    ) -> consent::ports::StoreResult<()> {
        self.0.void(d, p, c, r, n).await
    }
    async fn overdue(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> consent::ports::StoreResult<Vec<PendingAuthorization>> {
        self.0.overdue(before, limit).await
    }
    async fn mark_followed_up(&self, p: &PendingAuthorization) -> consent::ports::StoreResult<()> {
        self.0.mark_followed_up(p).await
    }
}

#[tokio::test]
async fn a_resend_keeps_the_tries_already_counted() {
    // GIVEN a request with three wrong tries
    let w = World::new().await;
    w.request(Category::Accounting, noon()).await.unwrap();
    let first = w.last_code();
    for _ in 0..3 {
        let _ = w.verify(Category::Accounting, &wrong(&first), noon()).await;
    }

    // WHEN staff click Authorize again inside the window while a fourth guess lands
    // between the resend's read and its write
    let racing = GuessDuringResend(&w.store);
    let mut ports = w.auth();
    ports.pending = &racing;
    let again = auth::request(
        &ports,
        &w.dealer,
        &w.staff,
        &w.contact,
        Category::Accounting,
        noon() + mins(1),
    )
    .await
    .unwrap();
    assert!(again.resent);
    let code = w.last_code();

    // THEN all four tries stay counted: one wrong guess uses the request up, and even
    // the right code is refused after it
    assert!(matches!(
        w.verify(Category::Accounting, &wrong(&code), noon() + mins(2))
            .await,
        Err(DomainError::CodeExpired)
    ));
    assert!(matches!(
        w.verify(Category::Accounting, &code, noon() + mins(2))
            .await,
        Err(DomainError::CodeExpired)
    ));
}

#[tokio::test]
async fn a_texting_number_that_changes_owner_keeps_its_opt_outs() {
    // GIVEN the person replied STOP to the dealer's texting number
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    w.reply("SM-stop", "STOP", noon() + mins(1)).await;

    // WHEN the number moves to another dealer who knows the person (no ledger there)
    let other = DealerId::parse("next-owner").unwrap();
    w.store
        .put_dealer(
            &Dealer {
                id: w.dealer.clone(),
                name: DEALER_NAME.into(),
                texting_number: phone("+12025550109"),
                help_contact: None,
                time_zone: None,
            },
            Some(&phone(DEALER_NUMBER)),
        )
        .await
        .unwrap();
    w.store
        .put_dealer(
            &Dealer {
                id: other.clone(),
                name: "Next Owner Motors".into(),
                texting_number: phone(DEALER_NUMBER),
                help_contact: None,
                time_zone: None,
            },
            None,
        )
        .await
        .unwrap();
    w.store
        .put_contact(
            &Contact {
                id: w.contact.clone(),
                dealer_id: other.clone(),
                name: "Maria Lopez".into(),
                phone: w.phone.clone(),
                account_ids: vec![],
                deal_ids: vec![],
                time_zone: None,
                updated_at: noon(),
            },
            None,
        )
        .await
        .unwrap();

    // THEN the new owner cannot text a code there: 409 opted-out, nothing queued
    let queued_before = w.queue.sent().len();
    let refused = auth::request(
        &w.auth(),
        &other,
        &w.staff,
        &w.contact,
        Category::Service,
        noon() + mins(2),
    )
    .await;
    assert!(
        matches!(refused, Err(DomainError::OptedOut { ref from }) if *from == phone(DEALER_NUMBER)),
        "{refused:?}"
    );
    assert_eq!(w.queue.sent().len(), queued_before);

    // AND after the person texts START to the number, it can
    let start = InboundSms {
        carrier_message_id: "SM-start".into(),
        from: w.phone.clone(),
        to: phone(DEALER_NUMBER),
        body: "START".into(),
    };
    replies::handle_inbound(&w.inbound(), &start, noon() + mins(3))
        .await
        .unwrap();
    auth::request(
        &w.auth(),
        &other,
        &w.staff,
        &w.contact,
        Category::Service,
        noon() + mins(4),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_text_queued_before_a_carrier_block_is_suppressed_at_delivery() {
    // GIVEN an accounting text queued, then the carrier reports the number blocked us on
    // another message (a status callback with 21610)
    let (w, m) = queued_alert().await;
    consent::ports::ConsentWriter::set_opted_out(
        &w.store,
        &phone(DEALER_NUMBER),
        &w.phone,
        true,
        noon(),
    )
    .await
    .unwrap();

    // WHEN the worker delivers the queued text
    let outcome = w.deliver(&m.id, noon()).await;

    // THEN it is suppressed at the claim, and the carrier never sees it
    assert_eq!(
        outcome,
        DeliverOutcome::Suppressed {
            reason: "opted-out".into()
        }
    );
    assert!(w.carrier_copies(&m).is_empty());
}

#[tokio::test]
async fn a_portal_unsubscribe_does_not_block_a_new_code_request_but_stop_does() {
    // GIVEN staff unsubscribed the person from accounting in the portal
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    w.unsubscribe(Category::Accounting, noon() + mins(1)).await;

    // WHEN staff ask again THEN a code is texted: the carrier does not block the number
    assert!(w
        .request(Category::Accounting, noon() + mins(2))
        .await
        .is_ok());

    // BUT after the person replies STOP, a request is refused at once, naming the number
    w.reply("SM-stop-2", "STOP", noon() + mins(3)).await;
    let queued = w.queue.sent().len();
    assert!(matches!(
        w.request(Category::Service, noon() + mins(4)).await,
        Err(DomainError::OptedOut { .. })
    ));
    assert_eq!(w.queue.sent().len(), queued);
}

// ============================== Frequency caps ==============================

/// Miami (+1 305): Florida allows at most 3 marketing texts in any 24 hours.
const MIAMI: &str = "+13055550143";

/// 12:00 EDT in Miami on Wednesday 2026-06-10, plus `h` hours.
fn miami(h: i64) -> DateTime<Utc> {
    noon() + Duration::hours(h)
}

async fn florida_marketing() -> World {
    let w = World::with_customer(MIAMI).await;
    w.grant(Category::Marketing, noon() - mins(5)).await;
    w.grant(Category::Accounting, noon() - mins(4)).await;
    w
}

#[tokio::test]
async fn a_fourth_marketing_text_in_24_hours_to_florida_is_deferred_never_dropped() {
    // GIVEN three marketing texts to a Miami number sent at 12:00, 13:00, 14:00
    let w = florida_marketing().await;
    for h in 0..3 {
        let m = w
            .send("marketing-offer", offer_vars(), None, miami(h))
            .await
            .unwrap()
            .message;
        assert_eq!(m.status, MessageStatus::Queued, "text {h}");
        assert!(matches!(
            w.deliver(&m.id, miami(h)).await,
            DeliverOutcome::Sent { .. }
        ));
    }

    // WHEN staff send a fourth at 15:00
    let fourth = w
        .send("marketing-offer", offer_vars(), None, miami(3))
        .await
        .unwrap()
        .message;

    // THEN it is deferred, with the reason, to 24 hours after the first: 12:00 next day
    assert_eq!(fourth.status, MessageStatus::Deferred);
    assert_eq!(fourth.status_reason.as_deref(), Some("frequency-cap"));
    assert_eq!(fourth.send_at, miami(24));
    // AND an accounting text is not capped
    let bill = w
        .send("past-due-alert", past_due_vars(), None, miami(3))
        .await
        .unwrap()
        .message;
    assert_eq!(bill.status, MessageStatus::Queued);
    // AND dispatch sends the fourth at 12:00 the next day, not before
    assert_eq!(w.dispatch(miami(23)).await.queued, 0);
    assert_eq!(w.dispatch(miami(24)).await.queued, 1);
    assert!(matches!(
        w.deliver(&fourth.id, miami(24)).await,
        DeliverOutcome::Sent { .. }
    ));
}

#[tokio::test]
async fn texts_accepted_together_go_as_planned_though_each_goes_a_little_late() {
    // GIVEN five offers accepted at 12:00 Miami: three queued, two deferred to 24 hours
    // after the first two
    let w = florida_marketing().await;
    let mut queued = Vec::new();
    let mut deferred = Vec::new();
    for _ in 0..5 {
        let m = w
            .send("marketing-offer", offer_vars(), None, miami(0))
            .await
            .unwrap()
            .message;
        match m.status {
            MessageStatus::Queued => queued.push(m),
            MessageStatus::Deferred => deferred.push(m),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((queued.len(), deferred.len()), (3, 2));
    // WHEN the queued ones go a few seconds after their planned time (the number's
    // rate, the queue), the last one 20 seconds late
    for (k, m) in queued.iter().enumerate() {
        let late = miami(0) + Duration::seconds(5 + 5 * k as i64);
        // THEN each still goes: the texts deferred after it were planned around it
        assert!(
            matches!(w.deliver(&m.id, late).await, DeliverOutcome::Sent { .. }),
            "text {k}"
        );
    }
    // AND the deferred ones, due 24 hours after the first two were planned, wait again
    // until 24 hours after those actually went: never four in 24 hours at the phone
    assert_eq!(w.dispatch(miami(24)).await.queued, 2);
    for m in &deferred {
        let outcome = w.deliver(&m.id, miami(24)).await;
        assert!(
            matches!(outcome, DeliverOutcome::Deferred { .. }),
            "{outcome:?}"
        );
    }
}

#[tokio::test]
async fn texts_scheduled_ahead_count_against_the_cap() {
    // GIVEN three marketing texts scheduled for tomorrow 09:00, 10:00 and 11:00 Miami
    let w = florida_marketing().await;
    for h in [21, 22, 23] {
        let m = w
            .send("marketing-offer", offer_vars(), Some(miami(h)), miami(0))
            .await
            .unwrap()
            .message;
        assert_eq!(m.status, MessageStatus::Scheduled);
    }
    // WHEN staff send one now (12:00): the period 12:00-12:00 would hold four
    let now = w
        .send("marketing-offer", offer_vars(), None, miami(0))
        .await
        .unwrap()
        .message;
    // THEN it waits until 24 hours after tomorrow's 09:00 text
    assert_eq!(now.status, MessageStatus::Deferred);
    assert_eq!(now.status_reason.as_deref(), Some("frequency-cap"));
    assert_eq!(now.send_at, miami(21 + 24));
    // AND a canceled one stops counting: the next send goes now
    let first = w.messages_of(MessageKind::Template)[0].clone();
    sending::cancel(&w.store, &w.dealer, &first.id, miami(0))
        .await
        .unwrap();
    let after_cancel = w
        .send("marketing-offer", offer_vars(), None, miami(0))
        .await
        .unwrap()
        .message;
    assert_eq!(after_cancel.status, MessageStatus::Queued);
}

#[tokio::test]
async fn delivery_checks_the_cap_again_and_defers_a_text_that_would_be_the_fourth() {
    // GIVEN three marketing texts accepted at the same moment by racing requests (each
    // saw two before it), queued together with a fourth sent earlier
    let w = florida_marketing().await;
    let early = w
        .send("marketing-offer", offer_vars(), None, miami(0))
        .await
        .unwrap()
        .message;
    assert!(matches!(
        w.deliver(&early.id, miami(0)).await,
        DeliverOutcome::Sent { .. }
    ));
    let mut racing = Vec::new();
    for _ in 0..2 {
        racing.push(
            w.send("marketing-offer", offer_vars(), None, miami(1))
                .await
                .unwrap()
                .message,
        );
    }
    // The third racer's accept did not see the second (written as a race would leave it).
    let mut third = racing[1].clone();
    third.id = MessageId::generate();
    w.store.put_message_raw(third.clone());

    // WHEN the worker delivers them one after another
    let mut outcomes = Vec::new();
    for m in [&racing[0], &racing[1], &third] {
        outcomes.push(w.deliver(&m.id, miami(1)).await);
    }

    // THEN two go and the one that would be the fourth is deferred to 24 hours after
    // the first text, with the reason
    let sent = outcomes
        .iter()
        .filter(|o| matches!(o, DeliverOutcome::Sent { .. }))
        .count();
    assert_eq!(sent, 2, "{outcomes:?}");
    let deferred: Vec<_> = [&racing[0], &racing[1], &third]
        .into_iter()
        .map(|m| w.message(&m.id))
        .filter(|m| m.status == MessageStatus::Deferred)
        .collect();
    assert_eq!(deferred.len(), 1, "{outcomes:?}");
    assert_eq!(deferred[0].send_at, miami(24));
    assert_eq!(deferred[0].status_reason.as_deref(), Some("frequency-cap"));
    assert!(outcomes.contains(&DeliverOutcome::Deferred {
        until: miami(24),
        reason: "frequency-cap".into()
    }));
    assert_eq!(
        w.carrier_copies(&early).len(),
        3,
        "three offers reached the phone"
    );
}

#[tokio::test]
async fn a_washington_number_has_no_cap() {
    // GIVEN a D.C. number (no state cap) with marketing authorized
    let w = World::new().await;
    w.grant(Category::Marketing, noon() - mins(5)).await;
    // WHEN five marketing texts are sent within an hour THEN all are queued
    for i in 0..5 {
        let m = w
            .send("marketing-offer", offer_vars(), None, noon() + mins(i))
            .await
            .unwrap()
            .message;
        assert_eq!(m.status, MessageStatus::Queued);
    }
}

// ============================== Replies in Spanish and French ==============================

#[tokio::test]
async fn a_spanish_revocation_in_plain_words_stops_everything_and_is_answered_in_spanish() {
    // GIVEN accounting authorized and a text scheduled
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    let scheduled = w
        .send(
            "past-due-alert",
            past_due_vars(),
            Some(noon() + mins(60)),
            noon(),
        )
        .await
        .unwrap()
        .message;
    // WHEN the person writes "Ya no me manden mensajes"
    let outcome = w
        .reply("SM-es-1", "Ya no me manden mensajes", noon() + mins(1))
        .await;
    // THEN every category is revoked, the text suppressed, and the one confirmation is
    // in Spanish with the dealer's name and how to come back
    assert!(
        matches!(outcome, ReplyOutcome::OptedOut { .. }),
        "{outcome:?}"
    );
    assert_eq!(w.message(&scheduled.id).status, MessageStatus::Suppressed);
    let answers = w.messages_of(MessageKind::Reply);
    assert_eq!(answers.len(), 1);
    assert!(
        answers[0].body.starts_with(DEALER_NAME),
        "{}",
        answers[0].body
    );
    assert!(
        answers[0].body.contains("no recibirá más mensajes"),
        "{}",
        answers[0].body
    );
    assert!(answers[0].body.contains("START"));
    // AND the ledger keeps the words
    assert!(w
        .ledger()
        .iter()
        .any(|e| e.event == ConsentEvent::RevokedByReply
            && e.words.as_deref() == Some("Ya no me manden mensajes")));
}

#[tokio::test]
async fn help_and_agree_are_answered_in_the_language_they_were_written_in() {
    let w = World::new().await;
    // AYUDA: the Spanish help text, with the required content
    w.reply("SM-es-help", "AYUDA", noon()).await;
    // AIDE: the French one
    w.reply("SM-fr-help", "Aide svp", noon() + mins(1)).await;
    // Acepto answers a marketing request: granted, confirmed in Spanish
    w.request(Category::Marketing, noon() + mins(2))
        .await
        .unwrap();
    let agreed = w.reply("SM-es-agree", "Sí, acepto", noon() + mins(3)).await;
    assert_eq!(agreed, ReplyOutcome::Agreed(vec![Category::Marketing]));
    let bodies: Vec<String> = w
        .messages_of(MessageKind::Reply)
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(bodies.len(), 3, "{bodies:?}");
    let find = |needle: &str| {
        bodies
            .iter()
            .find(|b| b.contains(needle))
            .unwrap_or_else(|| panic!("no answer with {needle:?} in {bodies:?}"))
    };
    let es_help = find("Responda ALTO o STOP para cancelar");
    assert!(
        es_help.starts_with(DEALER_NAME)
            && es_help.contains("Pueden aplicarse tarifas de mensajes y datos")
    );
    assert!(es_help.contains("(202) 555-0100"), "{es_help}");
    let fr_help = find("Répondez ARRET ou STOP");
    assert!(fr_help.contains("Des frais de messagerie et de données peuvent s'appliquer"));
    let es_agree = find("recibirá mensajes de ofertas");
    assert!(es_agree.contains("ALTO o STOP"), "{es_agree}");
}

#[tokio::test]
async fn a_french_revocation_is_confirmed_in_french_and_a_non_revocation_goes_to_staff() {
    let w = World::new().await;
    w.grant(Category::Service, noon()).await;
    // "Arrêtez de me facturer des frais!" is a billing complaint, not a revocation
    let complaint = w
        .reply("SM-fr-1", "Arrêtez de me facturer des frais!", noon())
        .await;
    assert_eq!(complaint, ReplyOutcome::Queued);
    assert!(w.consent().await.may_send(Category::Service).is_allowed());
    // "Arrêtez de m'envoyer des messages" is
    let stop = w
        .reply(
            "SM-fr-2",
            "Arrêtez de m'envoyer des messages",
            noon() + mins(1),
        )
        .await;
    assert!(matches!(stop, ReplyOutcome::OptedOut { .. }), "{stop:?}");
    let answers = w.messages_of(MessageKind::Reply);
    assert_eq!(answers.len(), 1);
    assert!(
        answers[0].body.contains("vous êtes désabonné"),
        "{}",
        answers[0].body
    );
}

// ------------------------------------------------------------------ dispatch fans out

/// The in-memory store's due index spread over shards by message id, counting the shard
/// reads in flight at once (each takes a little while, as a Query does).
struct Shards<'a> {
    store: &'a InMemoryStore,
    count: u32,
    in_flight: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl consent::ports::DueIndex for Shards<'_> {
    async fn due(
        &self,
        shard: u32,
        until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Message>, consent::StoreError> {
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.in_flight.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(now, SeqCst);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        self.in_flight.fetch_sub(1, SeqCst);
        let all = consent::ports::DueIndex::due(self.store, 0, until, u32::MAX).await?;
        Ok(all
            .into_iter()
            .filter(|m| m.id.as_str().bytes().map(u32::from).sum::<u32>() % self.count == shard)
            .take(limit as usize)
            .collect())
    }
}

/// The fake queue, keeping each `enqueue` call's size.
struct CountingQueue<'a> {
    inner: &'a FakeQueue,
    calls: std::sync::Mutex<Vec<usize>>,
}

#[async_trait::async_trait]
impl consent::ports::OutboundQueue for CountingQueue<'_> {
    async fn enqueue(
        &self,
        items: &[consent::message::Outbound],
    ) -> Result<Vec<MessageId>, consent::StoreError> {
        self.calls.lock().unwrap().push(items.len());
        self.inner.enqueue(items).await
    }
}

#[tokio::test]
async fn dispatch_reads_shards_at_once_and_queues_each_shards_group_when_marked() {
    // GIVEN 40 texts due at 10:00 spread over 16 shards
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    for _ in 0..40 {
        w.send(
            "past-due-alert",
            past_due_vars(),
            Some(noon() + mins(60)),
            noon(),
        )
        .await
        .unwrap();
    }
    w.queue.drain();
    let shards = Shards {
        store: &w.store,
        count: 16,
        in_flight: Default::default(),
        most: Default::default(),
    };
    let queue = CountingQueue {
        inner: &w.queue,
        calls: Default::default(),
    };
    let ports = DispatchPorts {
        consent: &w.store,
        due: &shards,
        messages: &w.store,
        queue: &queue,
    };

    // WHEN one pass runs when they are due
    let report = sending::dispatch(&ports, 0..16, noon() + mins(60), 100)
        .await
        .unwrap();

    // THEN every text is queued once; SHARDS_AT_ONCE shard reads ran together, never
    // more; and each shard's group went to the queue on its own, as soon as it was
    // marked (one call per shard that had texts, not one at the end of the pass)
    assert_eq!(report.queued, 40);
    assert_eq!(w.queue.drain().len(), 40);
    assert_eq!(
        shards.most.load(std::sync::atomic::Ordering::SeqCst),
        sending::SHARDS_AT_ONCE
    );
    let calls = queue.calls.lock().unwrap().clone();
    let busy_shards = (0..16u32)
        .filter(|s| {
            w.store.messages().iter().any(|m| {
                m.kind == MessageKind::Template
                    && m.id.as_str().bytes().map(u32::from).sum::<u32>() % 16 == *s
            })
        })
        .count();
    assert_eq!(calls.len(), busy_shards, "{calls:?}");
    assert_eq!(calls.iter().sum::<usize>(), 40);
}

#[tokio::test]
async fn a_numbers_ledger_entries_carry_a_strictly_increasing_sequence() {
    // GIVEN two grants by code, then STOP (four revocations in one change), then START
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    w.grant(Category::Service, noon()).await;
    w.reply("SM-seq-stop", "STOP", noon() + mins(1)).await;
    w.reply("SM-seq-start", "START", noon() + mins(2)).await;

    // THEN every entry has a sequence, strictly increasing in the order they were written,
    // the ones of one change next to each other
    let sequences: Vec<u64> = w.ledger().iter().map(|e| e.sequence.unwrap()).collect();
    assert!(sequences.len() >= 8, "{sequences:?}");
    assert!(sequences.windows(2).all(|p| p[0] < p[1]), "{sequences:?}");
    // AND the event for the DMS carries it
    let last = w.ledger().last().cloned().unwrap();
    let change = consent::service::changes::Change {
        event_name: "INSERT".into(),
        sort_key: format!("LEDGER#{}", last.id),
        old: None,
        new: Some(serde_json::to_value(&last).unwrap()),
    };
    let events = consent::service::changes::events_for(&change).unwrap();
    assert_eq!(events[0].detail["sequence"], json!(last.sequence));
}

#[tokio::test]
async fn deleting_a_contact_cancels_its_waiting_texts_and_voids_its_requests() {
    // GIVEN accounting authorized with a text scheduled for tomorrow, and a marketing
    // request pending (its code texted)
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    let scheduled = w
        .send(
            "past-due-alert",
            past_due_vars(),
            Some(noon() + Duration::hours(24)),
            noon(),
        )
        .await
        .unwrap()
        .message;
    assert_eq!(scheduled.status, MessageStatus::Scheduled);
    w.request(Category::Marketing, noon()).await.unwrap();

    // WHEN staff delete the contact
    let ports = consent::service::contacts::ContactsPorts {
        contacts: &w.store,
        pending: &w.store,
        messages: &w.store,
    };
    let removed =
        consent::service::contacts::remove(&ports, &w.dealer, &w.contact, noon() + mins(1))
            .await
            .unwrap();

    // THEN its scheduled text is canceled and its request void, in that operation
    assert_eq!((removed.canceled, removed.voided), (1, 1));
    assert_eq!(w.message(&scheduled.id).status, MessageStatus::Canceled);
    // AND dispatch sends nothing tomorrow
    assert_eq!(w.dispatch(noon() + Duration::hours(25)).await.queued, 0);
    // AND an Agree afterwards grants nothing (it goes to staff)
    let agreed = w.reply("SM-after-delete", "Agree", noon() + mins(2)).await;
    assert!(!matches!(agreed, ReplyOutcome::Agreed(_)), "{agreed:?}");
    // AND the number's evidence stays
    assert_eq!(
        w.status_of(Category::Accounting).await,
        ConsentStatus::Authorized
    );
}
