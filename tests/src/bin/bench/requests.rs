//! AWS requests per delivered text, counted by an SDK interceptor on the services with the
//! real adapters (the event source mapping played by hand).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use chrono::Utc;
use serde_json::{json, Map, Value};

use consent::fakes::FakeCarrier;
use consent::ledger::{Actor, ConsentEvent, ConsentState, LedgerEntry};
use consent::message::{Origin, OutboundEnvelope};
use consent::ports::{
    ConsentChange, ConsentWriter, Contact, ContactStore, Dealer, DealerStore, MessageReader,
};
use consent::service::delivery::{deliver_envelope, DeliverPorts};
use consent::service::sending::{dispatch, request_send, DispatchPorts, SendPorts, SendRequest};
use consent::webhook::CarrierWebhook;
use consent::{Category, ContactId, DealerId, MessageId, PhoneNumber, StaffUserId};
use consent_adapters::eum::events::Topics;
use consent_adapters::{DynamoStore, SqsOutboundQueue};
use stack_tests::portal::daytime_zone;
use stack_tests::Stack;

use crate::round;

#[derive(Debug, Clone, Default)]
pub(crate) struct Counter(Arc<Mutex<BTreeMap<String, u64>>>);

impl Counter {
    pub(crate) fn take(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Intercept for Counter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(m) = cfg.load::<Metadata>() {
            *self
                .0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(format!("{}.{}", m.service(), m.name()))
                .or_default() += 1;
        }
        Ok(())
    }
}

pub(crate) struct Counted {
    pub(crate) store: DynamoStore,
    /// As the send function wires it: dealer settings cached per container.
    pub(crate) dealers: consent_adapters::CachedDealers<DynamoStore>,
    pub(crate) queue: SqsOutboundQueue,
    pub(crate) sqs: aws_sdk_sqs::Client,
    pub(crate) queue_url: String,
    pub(crate) counter: Counter,
    pub(crate) dealer: DealerId,
    pub(crate) contact: ContactId,
}

impl Counted {
    pub(crate) async fn new(stack: &Stack) -> Counted {
        let counter = Counter::default();
        let ddb = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&stack.sdk)
                .interceptor(counter.clone())
                .build(),
        );
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(&stack.sdk)
                .interceptor(counter.clone())
                .build(),
        );
        let queue_url = stack.var("OUTBOUND_QUEUE_URL").to_owned();
        let store = DynamoStore::new(ddb, stack.var("TABLE_NAME"), 16);
        let dealer = DealerId::parse("bench-dealer").unwrap_or_else(|e| panic!("{e}"));
        let contact = ContactId::parse("C-1").unwrap_or_else(|e| panic!("{e}"));
        let phone = PhoneNumber::from_e164("+12025550143").unwrap_or_else(|e| panic!("{e}"));
        store
            .put_dealer(
                &Dealer {
                    id: dealer.clone(),
                    name: "Bench Motors".into(),
                    texting_number: PhoneNumber::from_e164("+12025550100")
                        .unwrap_or_else(|e| panic!("{e}")),
                    help_contact: None,
                    time_zone: None,
                },
                None,
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        store
            .put_contact(
                &Contact {
                    id: contact.clone(),
                    dealer_id: dealer.clone(),
                    name: "Ann".into(),
                    phone: phone.clone(),
                    account_ids: vec![],
                    deal_ids: vec![],
                    time_zone: consent::Zone::named(&daytime_zone(Utc::now())).ok(),
                    updated_at: Utc::now(),
                },
                None,
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let grant = LedgerEntry::new(
            &dealer,
            &phone,
            Category::Accounting,
            ConsentEvent::GrantedByCode,
            Actor::Phone,
            Utc::now(),
        );
        store
            .append(
                &dealer,
                &phone,
                ConsentChange {
                    expected_version: 0,
                    entries: std::slice::from_ref(&grant),
                    new_state: &ConsentState::from_ledger([&grant]),
                    consumed: &[],
                    acted: None,
                },
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let queue = SqsOutboundQueue::new(sqs.clone(), queue_url.clone());
        counter.take();
        let dealers = consent_adapters::CachedDealers::new(
            store.clone(),
            consent_adapters::cache::DEALER_TTL,
        );
        Counted {
            store,
            dealers,
            queue,
            sqs,
            queue_url,
            counter,
            dealer,
            contact,
        }
    }

    pub(crate) fn send_ports(&self) -> SendPorts<'_> {
        SendPorts {
            dealers: &self.dealers,
            contacts: &self.store,
            templates: &self.store,
            consent: &self.store,
            messages: &self.store,
            queue: &self.queue,
            number_pool: &[],
        }
    }

    pub(crate) async fn send(&self, i: usize, scheduled: bool) {
        let variables = json!({"firstName": "Ann", "amount": "412.50", "dueDate": "2026-12-01", "paymentUrl": "https://pay.example.com/a1"});
        let request = SendRequest {
            contact_id: self.contact.clone(),
            template: "auto-pay-failure".into(),
            variables: variables.as_object().cloned().unwrap_or_default(),
            notes: None,
            scheduled_at: scheduled.then(|| Utc::now() + chrono::Duration::seconds(2)),
            account_id: None,
            deal_id: None,
        };
        let staff = StaffUserId::parse("staff-1").unwrap_or_else(|e| panic!("{e}"));
        let key = format!("bench-{scheduled}-{i}-{}", std::process::id());
        request_send(
            &self.send_ports(),
            &self.dealer,
            Origin::Staff { user: staff },
            request,
            Some(consent::message::Idempotency::of_event(key)),
            Utc::now(),
        )
        .await
        .unwrap_or_else(|e| panic!("send: {e}"));
    }

    /// The deliver function's ports on `carrier`, as the function wires them.
    pub(crate) fn deliver_ports<'a>(
        &'a self,
        carrier: &'a FakeCarrier,
        codes: &'a consent::approval::CodeHasher,
    ) -> DeliverPorts<'a> {
        DeliverPorts {
            dealers: &self.store,
            consent: &self.store,
            consent_writer: &self.store,
            messages: &self.store,
            carrier,
            work: &self.store,
            pending: &self.store,
            codes,
            gate: None,
        }
    }

    /// The event source mapping's ReceiveMessage: up to 10 records.
    pub(crate) async fn receive(&self, wait_seconds: i32) -> Vec<aws_sdk_sqs::types::Message> {
        self.sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait_seconds)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .messages
            .unwrap_or_default()
    }

    /// The deliver function's work on a batch.
    pub(crate) async fn deliver_records(
        &self,
        ports: &DeliverPorts<'_>,
        records: &[aws_sdk_sqs::types::Message],
    ) {
        for r in records {
            let env: OutboundEnvelope = serde_json::from_str(r.body.as_deref().unwrap_or(""))
                .unwrap_or_else(|e| panic!("{e}"));
            deliver_envelope(ports, &env, None, Utc::now())
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }

    /// The event source mapping's DeleteMessageBatch of a batch that succeeded.
    pub(crate) async fn delete(&self, records: &[aws_sdk_sqs::types::Message]) {
        if records.is_empty() {
            return;
        }
        let entries = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(r.receipt_handle.clone().unwrap_or_default())
                    .build()
                    .unwrap_or_else(|e| panic!("{e}"))
            })
            .collect();
        self.sqs
            .delete_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Plays the SQS event source mapping (receive 10, invoke deliver, delete) until
    /// `count` messages were delivered.
    /// Also the ids of the messages delivered.
    pub(crate) async fn deliver_all(
        &self,
        count: usize,
    ) -> (BTreeMap<String, u64>, BTreeMap<String, u64>, Vec<MessageId>) {
        let carrier = FakeCarrier::new();
        let codes = bench_code_key();
        let ports = self.deliver_ports(&carrier, &codes);
        let mut function = BTreeMap::new();
        let mut mapping = BTreeMap::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while carrier.sent().len() < count && Instant::now() < deadline {
            let records = self.receive(1).await;
            add(&mut mapping, self.counter.take());
            self.deliver_records(&ports, &records).await;
            add(&mut function, self.counter.take());
            self.delete(&records).await;
            add(&mut mapping, self.counter.take());
        }
        assert_eq!(carrier.sent().len(), count, "every message delivered once");
        let ids = carrier.sent().into_iter().map(|m| m.message_id).collect();
        (function, mapping, ids)
    }

    /// The webhooks function over the counted store, as its `main` wires it.
    fn webhooks(&self, topics: Topics) -> ::webhooks::App {
        let store = Arc::new(self.store.clone());
        ::webhooks::App {
            dealers: store.clone(),
            contacts: store.clone(),
            consent: store.clone(),
            consent_writer: store.clone(),
            pending: store.clone(),
            messages: store.clone(),
            queue: Arc::new(self.queue.clone()),
            events: Arc::new(consent::fakes::FakeBus::new()),
            work: store.clone(),
            inbound: store.clone(),
            numbers: store.clone(),
            opt_outs: Arc::new(consent::fakes::FakeOptOuts::new()),
            end_user_messaging: Some(::webhooks::EumSource {
                queue_arn: EUM_QUEUE.into(),
                topics,
            }),
        }
    }

    /// The requests a carrier's status reports of one delivered text make, acted on by the
    /// webhooks function with the real adapters: Twilio's two callbacks (sent, delivered)
    /// as `inbound` stores them, End User Messaging's two events (successful, delivered) as
    /// SNS delivers them. Per text, by operation; each carrier on texts of its own.
    pub(crate) async fn status_requests(&self, carrier: &str, sent: &[MessageId]) -> Value {
        let topics = Topics {
            replies: "arn:aws:sns:us-east-1:000000000000:bench-EumRepliesTopic".into(),
            events: "arn:aws:sns:us-east-1:000000000000:bench-EumEventsTopic".into(),
        };
        let app = self.webhooks(topics.clone());
        let now = Utc::now();
        self.counter.take();
        {
            for id in sent {
                let message = self
                    .store
                    .message(id)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"))
                    .unwrap_or_else(|| panic!("message {id} is gone"));
                let carrier_id = message.carrier_message_id.unwrap_or_default();
                for (status, event) in
                    [("sent", "TEXT_SUCCESSFUL"), ("delivered", "TEXT_DELIVERED")]
                {
                    let (source, body) = if carrier == "twilio" {
                        let webhook = CarrierWebhook::Status {
                            message_id: id.clone(),
                            carrier_message_id: carrier_id.clone(),
                            status: status.into(),
                            error_code: None,
                            received_at: now,
                        };
                        (None, serde_json::to_string(&webhook).unwrap_or_default())
                    } else {
                        let event = json!({"eventType": event, "messageId": carrier_id, "context": {"messageId": id.as_str()}});
                        let envelope = json!({"Type": "Notification", "TopicArn": topics.events, "Message": event.to_string(), "Timestamp": now});
                        (Some(EUM_QUEUE), envelope.to_string())
                    };
                    let outcome = ::webhooks::process_record(&app, source, &body, now).await;
                    assert_eq!(
                        outcome,
                        ::webhooks::RecordOutcome::Done,
                        "{carrier} {status}"
                    );
                }
            }
        }
        let (ops, total) = per_message(&self.counter.take(), sent.len());
        json!({"by_operation": ops, "total": total})
    }
}

/// The End User Messaging queue the bench's webhooks function reads (a name: nothing is sent
/// to it; the records are handed to the function as the mapping would).
const EUM_QUEUE: &str = "arn:aws:sqs:us-east-1:000000000000:bench-EumQueue";

pub(crate) fn bench_code_key() -> consent::approval::CodeHasher {
    consent::approval::CodeHasher::new("bench-code-key-0123456789")
        .unwrap_or_else(|e| panic!("{e}"))
}

pub(crate) fn add(into: &mut BTreeMap<String, u64>, from: BTreeMap<String, u64>) {
    for (k, v) in from {
        *into.entry(k).or_default() += v;
    }
}

pub(crate) fn per_message(counts: &BTreeMap<String, u64>, n: usize) -> (Value, f64) {
    let total: u64 = counts.values().sum();
    let map: Map<String, Value> = counts
        .iter()
        .map(|(k, v)| (k.clone(), json!(round(*v as f64 / n as f64, 2))))
        .collect();
    (Value::Object(map), round(total as f64 / n as f64, 2))
}

pub(crate) async fn requests_per_message() -> Value {
    const N: usize = 20;
    // Scheduled texts share a run's per-shard requests (a Query per shard, a consent read and a
    // queue send per busy shard): ten a shard on average, so the share is a run's, not a lone
    // text's (20 over 16 shards measured the shards, 7.8 to 8.1 requests a text by chance).
    const DUE: usize = 160;
    let stack = Stack::create("bench-requests").await;
    let c = Counted::new(&stack).await;
    // Immediate: the send function's work, then the deliver function's.
    for i in 0..N {
        c.send(i, false).await;
    }
    let send_counts = c.counter.take();
    let (deliver_counts, mapping_immediate, delivered) = c.deliver_all(N).await;
    // Each carrier's status path (the webhooks function's requests), on texts of its own: a
    // report for a text already delivered changes nothing and would cost less.
    let twilio_status = c.status_requests("twilio", &delivered).await;
    for i in 0..N {
        c.send(N + i, false).await;
    }
    let (_, _, more) = c.deliver_all(N).await;
    let eum_status = c.status_requests("end-user-messaging", &more).await;
    let status = json!({"twilio": twilio_status, "end-user-messaging": eum_status});
    // Scheduled: send, then the dispatch run when due, then deliver.
    for i in 0..DUE {
        c.send(i, true).await;
    }
    let scheduled_send = c.counter.take();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ports = DispatchPorts {
        consent: &c.store,
        due: &c.store,
        messages: &c.store,
        queue: &c.queue,
    };
    let report = dispatch(&ports, 0..c.store.due_shards(), Utc::now(), 500)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        report.queued, DUE,
        "dispatch queued every due message: {report:?}"
    );
    let dispatch_counts = c.counter.take();
    let (scheduled_deliver, mapping_scheduled, _) = c.deliver_all(DUE).await;

    let mut immediate = BTreeMap::new();
    add(&mut immediate, send_counts.clone());
    add(&mut immediate, deliver_counts.clone());
    let mut scheduled = BTreeMap::new();
    add(&mut scheduled, scheduled_send.clone());
    add(&mut scheduled, dispatch_counts.clone());
    add(&mut scheduled, scheduled_deliver.clone());
    let (imm_ops, imm_total) = per_message(&immediate, N);
    let (sch_ops, sch_total) = per_message(&scheduled, DUE);
    let (imm_map, imm_map_total) = per_message(&mapping_immediate, N);
    let (sch_map, sch_map_total) = per_message(&mapping_scheduled, DUE);
    json!({
        "method": format!("{N} immediate and {DUE} scheduled messages (due in the same dispatch run, 16 shards) through the services with the real adapters on the emulator; an SDK interceptor counts every request by service and operation; the event source mapping's receive/delete are counted apart (Lambda makes them)"),
        "immediate": {
            "by_operation": imm_ops,
            "total": imm_total,
            "send_function": per_message(&send_counts, N).1,
            "deliver_function": per_message(&deliver_counts, N).1,
            "event_source_mapping": {"by_operation": imm_map, "total": imm_map_total},
        },
        "scheduled": {
            "by_operation": sch_ops,
            "total": sch_total,
            "send_function": per_message(&scheduled_send, DUE).1,
            "dispatch_function": per_message(&dispatch_counts, DUE).1,
            "deliver_function": per_message(&scheduled_deliver, DUE).1,
            "event_source_mapping": {"by_operation": sch_map, "total": sch_map_total},
        },
        "status_path_per_text": status,
        "reference": {
            "design_minimum": {
                "immediate": 6,
                "scheduled": 6.1,
                "explanation": "immediate: send reads the contact and the consent, writes the message with its idempotency key (one transaction) and queues it; deliver claims it with the consent re-check in one transaction and records the result. Scheduled: the same without the queue send, plus dispatch marking it queued and 1/10 of a SendMessageBatch (the due-index queries are shared by every message of a run). Dealer settings come from a per-container cache",
            },
            "goal": {"immediate": 6, "scheduled": 8},
        },
    })
}
