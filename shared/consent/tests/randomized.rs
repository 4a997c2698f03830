//! No send without consent, under seeded random interleavings (repeatable: the seed is
//! printed and `RANDOMIZED_SEEDS` / `RANDOMIZED_STEPS` widen the search).
//!
//! Authorize by code, Agree, STOP, START, portal unsubscribe, send now, schedule,
//! dispatch runs and delivery runs (with redelivered and duplicated records) are
//! interleaved across three contacts. Invariants:
//! - the carrier never receives a template text whose category is not authorized, per
//!   the ledger, at the moment of delivery;
//! - the carrier is called at most once per message;
//! - once everything due has been dispatched and delivered, every message is sent
//!   exactly once, or suppressed / deferred / canceled, never stuck queued or sending.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Map, Value};

use consent::approval::ApprovalCode;
use consent::fakes;
use consent::ledger::ConsentState;
use consent::message::{MessageKind, MessageStatus, Origin};
use consent::ports::{Contact, ContactStore, Dealer};
use consent::service::authorization::{self as auth};
use consent::service::delivery::{deliver_envelope, DeliverOutcome};
use consent::service::replies::{self, InboundSms};
use consent::service::sending::{self, SendRequest};
use consent::{Category, ContactId, DealerId, PhoneNumber};

/// xorshift64*: small, seeded, repeatable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const DEALER_NUMBER: &str = "+12025550100";
const PHONES: [&str; 3] = ["+12025550141", "+12025550142", "+12025550143"];
const CATEGORIES: [Category; 2] = [Category::Accounting, Category::Marketing];

/// The one test world (`consent::fakes::World`: the store, queue, bus, carrier and code
/// key, the dealer and its first contact), with this run's clock and carrier ids.
struct World {
    base: fakes::World,
    now: DateTime<Utc>,
    sid: u64,
}

impl std::ops::Deref for World {
    type Target = fakes::World;

    fn deref(&self) -> &fakes::World {
        &self.base
    }
}

fn vars(category: Category) -> (String, Map<String, Value>) {
    let (name, v) = match category {
        Category::Marketing => (
            "marketing-offer",
            json!({"offer": "0% APR on new Civics.", "endDate": "2026-06-30", "offerUrl": "https://x.example/o"}),
        ),
        _ => (
            "past-due-alert",
            json!({"firstName": "Ann", "amount": "10.00", "dueDate": "2026-06-01", "paymentUrl": "https://x.example/p"}),
        ),
    };
    (name.to_owned(), v.as_object().cloned().unwrap_or_default())
}

impl World {
    /// Dealer "d" texting from +12025550100, and three contacts C-0 to C-2 (PHONES).
    async fn new() -> World {
        // Monday 10:00 EDT: hours of texting window ahead.
        let now = Utc.with_ymd_and_hms(2026, 6, 8, 14, 0, 0).unwrap();
        let dealer = DealerId::parse("d").unwrap();
        let contact = |i: usize| Contact {
            id: ContactId::parse(format!("C-{i}")).unwrap(),
            dealer_id: dealer.clone(),
            name: "Ann".into(),
            phone: PhoneNumber::from_e164(PHONES[i]).unwrap(),
            account_ids: vec![],
            deal_ids: vec![],
            time_zone: None,
            updated_at: now,
        };
        let seed = fakes::Seed {
            dealer: Dealer {
                id: dealer.clone(),
                name: "D".into(),
                texting_number: PhoneNumber::from_e164(DEALER_NUMBER).unwrap(),
                help_contact: None,
                time_zone: None,
            },
            contact: contact(0),
        };
        let base = fakes::World::seeded(seed).await;
        for i in 1..PHONES.len() {
            base.store.put_contact(&contact(i), None).await.unwrap();
        }
        World { base, now, sid: 0 }
    }

    async fn reply(&mut self, contact: usize, body: &str) {
        self.sid += 1;
        let sms = InboundSms {
            carrier_message_id: format!("SM{}", self.sid),
            from: PhoneNumber::from_e164(PHONES[contact]).unwrap(),
            to: PhoneNumber::from_e164(DEALER_NUMBER).unwrap(),
            body: body.into(),
        };
        replies::handle_inbound(&self.inbound(), &sms, self.now)
            .await
            .unwrap();
    }

    fn contact(i: usize) -> ContactId {
        ContactId::parse(format!("C-{i}")).unwrap()
    }

    /// Delivers what is on the queue (some records twice, some left for later), and
    /// checks consent at every carrier call.
    async fn deliver(&mut self, rng: &mut Rng, all: bool) {
        let records = self.queue.drain();
        let ports = self.deliver_ports();
        let mut later = Vec::new();
        for r in records {
            if !all && rng.below(4) == 0 {
                later.push(r);
                continue;
            }
            let copies = if rng.below(5) == 0 { 2 } else { 1 };
            for _ in 0..copies {
                let before = self.carrier.sent().len();
                let outcome = deliver_envelope(&ports, &r.envelope, None, self.now)
                    .await
                    .unwrap();
                if let DeliverOutcome::Sent { .. } = outcome {
                    assert_eq!(self.carrier.sent().len(), before + 1);
                    let snap = r.envelope.delivery.as_ref().expect("snapshot");
                    if snap.kind == MessageKind::Template {
                        let ledger = self.store.ledger(&self.dealer, &snap.to);
                        let state = ConsentState::from_ledger(&ledger);
                        assert!(
                            state.may_send(snap.category).is_allowed(),
                            "sent {} to {} without consent; ledger {ledger:?}",
                            snap.category,
                            snap.to.redacted()
                        );
                    }
                }
            }
        }
        // Records not delivered this round come back later, like an SQS redelivery.
        for r in later {
            let _ =
                consent::ports::OutboundQueue::enqueue(&self.queue, std::slice::from_ref(&r)).await;
        }
    }

    async fn dispatch(&self) {
        sending::dispatch(&self.dispatch_ports(), 0..1, self.now, 1000)
            .await
            .unwrap();
    }
}

/// Returns (texts sent, template messages suppressed) so the test can check it exercised both.
async fn run(seed: u64, steps: usize) -> (usize, usize) {
    let mut rng = Rng(seed.max(1));
    let mut w = World::new().await;
    for _ in 0..steps {
        let contact = rng.below(PHONES.len() as u64) as usize;
        let category = CATEGORIES[rng.below(2) as usize];
        match rng.below(11) {
            0 => {
                // Authorize by code: request, read the code from the stored text, verify.
                if auth::request(
                    &w.auth(),
                    &w.dealer,
                    &w.staff,
                    &World::contact(contact),
                    category,
                    w.now,
                )
                .await
                .is_ok()
                {
                    let body = w
                        .store
                        .messages()
                        .into_iter()
                        .filter(|m| m.kind == MessageKind::ApprovalCode)
                        .max_by_key(|m| m.id.clone())
                        .map(|m| m.body)
                        .unwrap_or_default();
                    if let Some(code) = body
                        .split(|c: char| !c.is_ascii_digit())
                        .find(|t| t.len() == 6)
                    {
                        let _ = auth::verify(
                            &w.auth(),
                            &w.dealer,
                            &w.staff,
                            &World::contact(contact),
                            category,
                            &ApprovalCode::parse(code).unwrap(),
                            w.now,
                        )
                        .await;
                    }
                }
            }
            1 => {
                let _ = auth::request(
                    &w.auth(),
                    &w.dealer,
                    &w.staff,
                    &World::contact(contact),
                    category,
                    w.now,
                )
                .await;
                w.reply(contact, "Agree").await;
            }
            2 => w.reply(contact, "STOP").await,
            3 => w.reply(contact, "start").await,
            4 => {
                let _ = auth::unsubscribe(
                    &w.auth(),
                    &w.dealer,
                    &w.staff,
                    &World::contact(contact),
                    category,
                    w.now,
                )
                .await;
            }
            5 | 6 => {
                let (template, variables) = vars(category);
                let scheduled_at = (rng.below(2) == 0)
                    .then(|| w.now + Duration::minutes(rng.below(90) as i64 + 1));
                let request = SendRequest {
                    contact_id: World::contact(contact),
                    template,
                    variables,
                    notes: None,
                    scheduled_at,
                    account_id: None,
                    deal_id: None,
                };
                let _ = sending::request_send(
                    &w.send_ports(),
                    &w.dealer,
                    Origin::Staff {
                        user: w.staff.clone(),
                    },
                    request,
                    None,
                    w.now,
                )
                .await;
            }
            7 => w.dispatch().await,
            8 | 9 => w.deliver(&mut rng, false).await,
            _ => w.now += Duration::minutes(rng.below(20) as i64),
        }
    }
    // Drain: time moves past every schedule; dispatch and deliver until quiet.
    w.now += Duration::minutes(120);
    for _ in 0..10 {
        w.dispatch().await;
        w.deliver(&mut rng, true).await;
    }
    let sent_ids: usize = w
        .store
        .messages()
        .iter()
        .filter(|m| matches!(m.status, MessageStatus::Sent))
        .count();
    assert_eq!(
        sent_ids,
        w.carrier.sent().len(),
        "seed {seed}: carrier calls = messages sent (once each)"
    );
    for m in w.store.messages() {
        assert!(
            !matches!(m.status, MessageStatus::Queued | MessageStatus::Sending),
            "seed {seed}: message {} stuck {:?}: {:?}",
            m.id,
            m.status,
            m.history
        );
        if m.status.is_waiting() {
            assert!(
                m.send_at > w.now - Duration::minutes(1),
                "seed {seed}: {} due but still waiting",
                m.id
            );
        }
    }
    let count = |status: MessageStatus| {
        w.store
            .messages()
            .iter()
            .filter(|m| m.kind == MessageKind::Template && m.status == status)
            .count()
    };
    (count(MessageStatus::Sent), count(MessageStatus::Suppressed))
}

#[tokio::test]
async fn no_send_without_consent_under_random_interleavings() {
    let seeds: u64 = std::env::var("RANDOMIZED_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12);
    let steps: usize = std::env::var("RANDOMIZED_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(250);
    let (mut sent, mut suppressed) = (0, 0);
    for seed in 1..=seeds {
        let (s, x) = run(seed * 0x9e37_79b9, steps).await;
        println!("randomized: seed {seed}, {steps} steps: {s} template texts sent, {x} suppressed");
        sent += s;
        suppressed += x;
    }
    // The interleavings must reach both outcomes, or the invariants were never tested.
    assert!(
        sent > 0 && suppressed > 0,
        "sent {sent}, suppressed {suppressed}"
    );
}
