//! A dealer's contacts as the DMS or staff keep them: create or replace one, up to
//! [`MAX_BATCH`] at once, and remove one with what would still act for it.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use crate::contact::{ContactName, Links};
use crate::error::{DomainError, StoreError};
use crate::ids::{ContactId, DealerId};
use crate::message::{MessageStatus, StatusReason};
use crate::phone::PhoneNumber;
use crate::ports::{Contact, ContactStore, MessageStore, PendingStore};

use super::Written;

/// The ports the contact use cases need.
pub struct ContactsPorts<'a> {
    pub contacts: &'a dyn ContactStore,
    /// Removing a contact voids its pending requests...
    pub pending: &'a dyn PendingStore,
    /// ... and cancels its waiting texts.
    pub messages: &'a dyn MessageStore,
}

/// A contact as the DMS or staff send it (`PUT /v1/contacts/{contactId}`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContactInput {
    pub name: String,
    pub phone: String,
    pub account_ids: Vec<String>,
    pub deal_ids: Vec<String>,
    pub time_zone: Option<String>,
}

/// The dealer's contact, or `NotFound` (another dealer's contacts are not found either).
pub async fn contact(
    contacts: &dyn ContactStore,
    dealer: &DealerId,
    id: &ContactId,
) -> Result<Contact, DomainError> {
    contacts
        .contact(dealer, id)
        .await?
        .ok_or(DomainError::NotFound { what: "contact" })
}

/// A contact write that lost to a concurrent edit: a conflict the caller can retry.
fn changed(e: StoreError) -> DomainError {
    match e {
        StoreError::Conflict(_) => DomainError::Conflict(
            "the contact was changed by someone else at the same time; read it and try again"
                .into(),
        ),
        other => other.into(),
    }
}

/// Creates or replaces one contact.
pub async fn upsert(
    contacts: &dyn ContactStore,
    dealer_id: &DealerId,
    id: ContactId,
    input: ContactInput,
    now: DateTime<Utc>,
) -> Result<(Contact, Written), DomainError> {
    let name = ContactName::parse("name", &input.name)?.into_inner();
    let phone = PhoneNumber::parse(&input.phone)
        .map_err(|e| DomainError::Invalid(format!("phone: {e}")))?;
    let time_zone = super::parse_zone("timeZone", input.time_zone.as_deref())?;
    let Links { accounts, deals } = Links::parse(input.account_ids, input.deal_ids)?;
    let previous = contacts.contact(dealer_id, &id).await?;
    let contact = Contact {
        id,
        dealer_id: dealer_id.clone(),
        name,
        phone,
        account_ids: accounts,
        deal_ids: deals,
        time_zone,
        updated_at: now,
    };
    contacts
        .put_contact(&contact, previous.as_ref())
        .await
        .map_err(changed)?;
    let written = if previous.is_some() {
        Written::Replaced
    } else {
        Written::Created
    };
    Ok((contact, written))
}

/// Most contacts in one batch.
pub const MAX_BATCH: usize = 100;

/// One contact of a batch: its id as given, and its fields, or why they could not be read.
#[derive(Debug, Clone)]
pub struct BatchItem {
    pub contact_id: String,
    pub input: Result<ContactInput, String>,
}

/// Why one contact of a batch was not written.
#[derive(Debug)]
pub enum BatchRefusal {
    /// Its fields could not be read (a 400 at the HTTP edge).
    Unreadable(String),
    /// A rule or the store refused it.
    Refused(DomainError),
}

/// Upserts 1 to [`MAX_BATCH`] contacts, each on its own and in order: a contact id given
/// twice is refused the second time, and one refusal stops none of the others.
pub async fn batch(
    contacts: &dyn ContactStore,
    dealer_id: &DealerId,
    items: Vec<BatchItem>,
    now: DateTime<Utc>,
) -> Result<Vec<Result<(Contact, Written), BatchRefusal>>, DomainError> {
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(DomainError::Invalid(format!(
            "contacts: 1 to {MAX_BATCH} per batch"
        )));
    }
    let mut seen = HashSet::new();
    let mut results = Vec::with_capacity(items.len());
    for item in items {
        let outcome = async {
            let id = ContactId::parse(&item.contact_id).map_err(|e| {
                BatchRefusal::Refused(DomainError::Invalid(format!("contactId: {e}")))
            })?;
            if !seen.insert(id.clone()) {
                return Err(BatchRefusal::Refused(DomainError::Invalid(
                    "contactId appears twice in the batch".into(),
                )));
            }
            let input = item.input.map_err(BatchRefusal::Unreadable)?;
            upsert(contacts, dealer_id, id, input, now)
                .await
                .map_err(BatchRefusal::Refused)
        }
        .await;
        results.push(outcome);
    }
    Ok(results)
}

/// What removing a contact did besides removing it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContactRemoved {
    /// Its scheduled, deferred or queued texts, now canceled.
    pub canceled: usize,
    /// Its pending authorization requests, now void (an Agree grants nothing).
    pub voided: usize,
}

/// Removes a contact with what would still act for it: its waiting texts are canceled
/// and its pending requests voided; the number's ledger stays (it is evidence, and
/// consent belongs to the number). The contact goes first, so no new send or request
/// can name it; a text accepted in that instant (the recipient index lags its table)
/// is stopped by the delivery claim, which checks that the contact still exists.
pub async fn remove(
    ports: &ContactsPorts<'_>,
    dealer_id: &DealerId,
    contact_id: &ContactId,
    now: DateTime<Utc>,
) -> Result<ContactRemoved, DomainError> {
    let contact = contact(ports.contacts, dealer_id, contact_id).await?;
    ports
        .contacts
        .delete_contact(&contact)
        .await
        .map_err(changed)?;
    let mut removed = ContactRemoved::default();
    for p in ports
        .pending
        .pending_for_number(dealer_id, &contact.phone)
        .await
        .map_err(changed)?
    {
        if p.contact_id == contact.id {
            ports
                .pending
                .void(dealer_id, &p.phone, p.category, &p.request_id, None)
                .await
                .map_err(changed)?;
            removed.voided += 1;
        }
    }
    let waiting = ports
        .messages
        .by_recipient(
            dealer_id,
            &contact.phone,
            &[
                MessageStatus::Scheduled,
                MessageStatus::Deferred,
                MessageStatus::Queued,
            ],
        )
        .await
        .map_err(changed)?;
    for mut m in waiting
        .into_iter()
        .filter(|m| m.contact_id.as_ref() == Some(&contact.id))
    {
        let expected = m.status;
        m.transition(
            MessageStatus::Canceled,
            now,
            Some(StatusReason::ContactDeleted),
        );
        match ports.messages.save(&m, expected).await {
            Ok(()) => removed.canceled += 1,
            // It moved on meanwhile (claimed, sent): the claim's contact check has it.
            Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(removed)
}
