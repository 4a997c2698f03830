//! The one answer to a reply (a confirmation, the HELP text, a question back): made
//! under an id derived from the reply, so however often the reply comes, one goes.

use chrono::{DateTime, Utc};

use crate::answers;
use crate::category::Category;
use crate::error::{DomainError, StoreError};
use crate::message::{Message, MessageKind, MessageStatus};
use crate::ports::Dealer;
use crate::reply::Language;
use crate::service::Outbox;

use super::inbound::{InboundPorts, InboundSms};

/// The answer to HELP, in the person's language.
pub fn help_text(dealer: &Dealer, language: Language) -> String {
    answers::help(&dealer.name, dealer.help_contact.as_deref(), language)
}

/// The one answer to this reply: stored under an id derived from the carrier message id,
/// then queued. A redelivery finds it stored and queues it again only while it waits
/// (deliver's claim keeps a second record from sending twice).
pub(super) async fn reply(
    ports: &InboundPorts<'_>,
    dealer: &Dealer,
    sms: &InboundSms,
    body: String,
    now: DateTime<Utc>,
) -> Result<Message, DomainError> {
    let mut message = crate::service::system_message(
        dealer,
        &sms.from,
        Category::Accounting,
        MessageKind::Reply,
        body,
        now,
    );
    message.id = sms.answer_id(now);
    answer(ports, &message, now).await?;
    Ok(message)
}

/// Stores and queues an answer made under a derived id, once.
pub(super) async fn answer(
    ports: &InboundPorts<'_>,
    message: &Message,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    let outbox = Outbox {
        messages: ports.messages,
        queue: ports.queue,
    };
    match crate::service::store_and_queue(outbox, message, now).await {
        Err(DomainError::Store(StoreError::Conflict(_))) => {
            let waiting = ports
                .messages
                .message(&message.id)
                .await?
                .is_some_and(|m| m.status == MessageStatus::Queued);
            if waiting {
                crate::service::queue_stored(ports.queue, message, now).await?;
            }
            Ok(())
        }
        other => other,
    }
}
