//! The hand-off to staff: a reply the service does not act on goes to the dealer's
//! replies queue, once per carrier message id.

use chrono::{DateTime, Utc};

use crate::error::{DomainError, StoreError};
use crate::ports::{Contact, Dealer, WorkItem, WorkItemStatus, WorkQueueName};

use super::inbound::{InboundPorts, InboundSms};

pub(super) async fn to_staff(
    ports: &InboundPorts<'_>,
    dealer: &Dealer,
    sms: &InboundSms,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    let contacts: Vec<Contact> = ports
        .contacts
        .contacts_by_phone(&dealer.id, &sms.from)
        .await?;
    let contact = contacts.into_iter().next();
    let added = ports
        .work
        .add_item(&WorkItem {
            id: sms.derived_id(now, "staff"),
            dealer_id: dealer.id.clone(),
            queue: WorkQueueName::Replies,
            kind: if contact.is_some() {
                "reply-needs-attention".into()
            } else {
                "reply-from-unknown-number".into()
            },
            contact_id: contact.as_ref().map(|c| c.id.clone()),
            phone: Some(sms.from.clone()),
            account_id: contact
                .as_ref()
                .and_then(|c| c.account_ids.first().cloned()),
            deal_id: contact.as_ref().and_then(|c| c.deal_ids.first().cloned()),
            message_id: None,
            text: Some(sms.body.chars().take(1600).collect()),
            created_at: now,
            status: WorkItemStatus::Open,
            handling: Default::default(),
        })
        .await;
    match added {
        // A redelivery: the item is there.
        Ok(()) | Err(StoreError::Conflict(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
