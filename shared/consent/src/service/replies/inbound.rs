//! The inbound text: what it is, what acting on it touches, and what became of it.

use chrono::{DateTime, Utc};

use crate::category::Category;
use crate::ids::{derived_ulid, MessageId};
use crate::phone::PhoneNumber;
use crate::ports::{
    CarrierOptOuts, ConsentReader, ConsentWriter, ContactStore, DealerStore, EventPublisher,
    InboundLog, MessageStore, NumberDirectory, OutboundQueue, PendingStore, WorkQueue,
};

/// Source of the events this service publishes.
pub const EVENT_SOURCE: &str = "texting.consent";

/// What acting on a reply touches.
pub struct InboundPorts<'a> {
    pub dealers: &'a dyn DealerStore,
    pub contacts: &'a dyn ContactStore,
    pub consent: &'a dyn ConsentReader,
    pub consent_writer: &'a dyn ConsentWriter,
    pub pending: &'a dyn PendingStore,
    pub messages: &'a dyn MessageStore,
    pub queue: &'a dyn OutboundQueue,
    pub events: &'a dyn EventPublisher,
    pub work: &'a dyn WorkQueue,
    pub inbound: &'a dyn InboundLog,
    /// The numbers we hold: a text to one no dealer owns now is still ours to honour.
    pub numbers: &'a dyn NumberDirectory,
    /// The carriers' own opt-out lists: a START lifts the person off the number's.
    pub opt_outs: &'a dyn CarrierOptOuts,
}

/// An inbound SMS, as the carrier reported it.
#[derive(Debug, Clone)]
pub struct InboundSms {
    pub carrier_message_id: String,
    pub from: PhoneNumber,
    pub to: PhoneNumber,
    pub body: String,
}

/// What was done with a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyOutcome {
    /// Acted on before (the same carrier message id): nothing more is done.
    Duplicate,
    /// A text to a number we never held: nothing is ours to do.
    UnknownDealer,
    /// A STOP to a number we hold that no dealer texts from: the number is blocked for
    /// the person (the carrier's own default reply answers it).
    NumberOptedOut,
    /// A START to such a number: the block is lifted.
    NumberOptedIn,
    Agreed(Vec<Category>),
    /// A bare Agree while requests for several categories wait: nothing is granted; the
    /// person is asked which (these), in their language.
    AskedWhich(Vec<Category>),
    OptedOut {
        revoked: Vec<Category>,
        suppressed: usize,
    },
    OptedIn(Vec<Category>),
    Help,
    PayConfirmationRequested,
    PaymentConfirmed,
    /// A CONFIRM for a pay request another CONFIRM already confirmed: nothing more is done.
    AlreadyConfirmed,
    /// Nothing the service acts on: handed to staff on the replies queue.
    Queued,
}

impl InboundSms {
    /// The id of what acting on this reply makes for `purpose` (its answer, a staff item):
    /// the same on every redelivery, so a conditional write keeps one.
    pub(super) fn derived_id(&self, now: DateTime<Utc>, purpose: &str) -> String {
        derived_ulid(now, &format!("{}:{purpose}", self.carrier_message_id))
    }

    /// The id of this reply's one answer (its confirmation, HELP text, CONFIRM request).
    pub(super) fn answer_id(&self, now: DateTime<Utc>) -> MessageId {
        MessageId::derived(now, &format!("{}:answer", self.carrier_message_id))
    }
}
