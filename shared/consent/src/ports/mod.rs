//! Ports: narrow traits, one per capability, that the services use and the adapters
//! implement (DynamoDB, SQS, EventBridge, carrier HTTP) — and the fakes, in memory.
//!
//! Each function's IAM policy in infra/template.yaml grants exactly the actions of the
//! ports it is wired with.
//!
//! One file per aggregate, named as the fakes' (`src/fakes/`) and the DynamoDB
//! adapter's (`shared/adapters/src/dynamo/`):
//!
//! | file          | ports                                                               |
//! |---------------|---------------------------------------------------------------------|
//! | `dealers.rs`  | `DealerStore`, `NumberDirectory`, `AutomationStore`, `TemplateStore` |
//! | `contacts.rs` | `ContactStore` (and `ContactLink`)                                  |
//! | `ledger.rs`   | `ConsentReader`, `ConsentWriter`, `LedgerExport`                    |
//! | `pending.rs`  | `PendingStore`                                                      |
//! | `limits.rs`   | `RateLimiter` (and `window_left`)                                   |
//! | `messages.rs` | `MessageReader`, `MessageWriter`, `DeliveryClaims`, `DueIndex`, `MessageStore` |
//! | `inbound.rs`  | `InboundLog`, `Conversations`                                       |
//! | `work.rs`     | `WorkQueue`, `WorkQueueDesk`                                        |
//! | `queue.rs`    | `OutboundQueue`, `WebhookInbox`                                     |
//! | `bus.rs`      | `EventPublisher`                                                    |
//! | `carrier.rs`  | `Carrier`                                                           |
//! | `code_key.rs` | `CodeKey`                                                           |
//!
//! The records the ports store live in their own modules of the crate ([`Dealer`] in
//! `dealer`, [`Contact`] in `contact`, [`InboundText`] in `conversation`, [`WorkItem`]
//! in `work`) and are re-exported here, as is every port, so `crate::ports::X` names
//! them all.

mod bus;
mod carrier;
mod code_key;
mod contacts;
mod dealers;
mod inbound;
mod ledger;
mod limits;
mod messages;
mod pending;
mod queue;
mod work;

pub use crate::error::StoreResult;

pub use crate::contact::Contact;
pub use crate::conversation::{ConversationEntry, ConversationPage, InboundText};
pub use crate::dealer::{CarrierKind, Dealer, ProvisionedNumber};
pub use crate::work::{Handling, ItemPage, ItemQuery, WorkItem, WorkItemStatus, WorkQueueName};

pub use bus::{BusEvent, EventPublisher};
pub use carrier::{Carrier, CarrierError, CarrierOptOuts, CarrierReceipt, CarrierSend};
pub use code_key::CodeKey;
pub use contacts::{ContactLink, ContactStore};
pub use dealers::{AutomationStore, DealerStore, NumberDirectory, TemplateStore};
pub use inbound::{ActedMark, Conversations, InboundLog};
pub use ledger::{
    Acted, ConsentChange, ConsentReader, ConsentWriter, LedgerExport, LedgerPage, PendingKey,
    Versioned,
};
pub use limits::{window_left, RateDecision, RateLimiter};
pub use messages::{
    CapBook, CapBookWrite, ClaimExpectation, ConsentGuard, DeliveryClaim, DeliveryClaims,
    DeliveryRecord, DueIndex, IdempotencyRecord, MessageReader, MessageStore, MessageWriter,
    IDEMPOTENCY_TTL,
};
pub use pending::PendingStore;
pub use queue::{OutboundQueue, WebhookInbox};
pub use work::{WorkQueue, WorkQueueDesk};
