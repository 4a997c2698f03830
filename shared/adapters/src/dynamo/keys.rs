//! Every key format of the table, in one place (docs/data-model.md).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use consent::approval::PendingAuthorization;
use consent::ports::{Contact, ContactLink, WorkQueueName};
use consent::{DealerId, MessageId, PhoneNumber};

use crate::attr::{s, Item};

pub(super) fn phone_pk(dealer: &DealerId, phone: &PhoneNumber) -> String {
    format!("DEALER#{dealer}#PHONE#{phone}")
}

/// The opt-out of a person (`to`) from a texting number (`from`), whoever owns it.
pub(super) fn opt_out_pk(from: &PhoneNumber, to: &PhoneNumber) -> String {
    format!("OPTOUT#{from}#{to}")
}

pub(super) fn msg_pk(id: &MessageId) -> String {
    format!("MSG#{id}")
}

/// The key of a pending authorization (one per number and category).
pub(super) fn pending_key(p: &PendingAuthorization) -> HashMap<String, AttributeValue> {
    key(
        phone_pk(&p.dealer_id, &p.phone),
        format!("PENDING#{}", p.category),
    )
}

pub(super) fn queue_pk(dealer: &DealerId, queue: WorkQueueName) -> String {
    format!("DEALER#{dealer}#QUEUE#{}", queue.as_str())
}

/// The dealer's ledger by time (GSI2), for the evidence export.
pub(super) fn ledger_index_pk(dealer: &DealerId) -> String {
    format!("DEALER#{dealer}#LEDGER")
}

/// `<13-digit epoch ms>#<entry id>`: time order, then id order. Instants before 1970
/// sort as 0 (the service never writes one).
pub(super) fn ledger_index_sk(at: DateTime<Utc>, id: &str) -> String {
    format!("{:013}#{id}", at.timestamp_millis().max(0))
}

/// The partition listing the contacts of an account or a deal.
pub(super) fn link_pk(dealer: &DealerId, link: &ContactLink) -> String {
    match link {
        ContactLink::Account(a) => format!("DEALER#{dealer}#ACCOUNT#{a}"),
        ContactLink::Deal(d) => format!("DEALER#{dealer}#DEAL#{d}"),
    }
}

/// Every link partition a contact is copied into.
pub(super) fn link_pks(contact: &Contact) -> Vec<String> {
    contact
        .account_ids
        .iter()
        .cloned()
        .map(ContactLink::Account)
        .chain(contact.deal_ids.iter().cloned().map(ContactLink::Deal))
        .map(|l| link_pk(&contact.dealer_id, &l))
        .collect()
}

pub(super) fn key(pk: String, sk: impl Into<String>) -> Item {
    HashMap::from([("PK".to_owned(), s(pk)), ("SK".to_owned(), s(sk))])
}
