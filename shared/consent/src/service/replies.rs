//! Inbound texts from people and delivery reports from the carrier.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::answers;
use crate::category::Category;
use crate::error::DomainError;
use crate::error::StoreError;
use crate::ids::{derived_ulid, MessageId};
use crate::ledger::{Actor, ConsentEvent, LedgerEntry};
use crate::message::{Message, MessageKind, MessageStatus};
use crate::phone::PhoneNumber;
use crate::ports::{
    BusEvent, ConsentReader, ConsentWriter, Contact, ContactStore, Dealer, DealerStore,
    EventPublisher, InboundLog, InboundText, MessageStore, NumberDirectory, OutboundQueue,
    PendingKey, PendingStore, WorkItem, WorkItemStatus, WorkQueue, WorkQueueName,
};
use crate::reply::{agree_scope, classify_reply, AgreeScope, Classified, Language, ReplyKind};

use super::{update_consent, update_consent_acting, Outbox};

/// Template name of the Text to Pay reminder a PAY answers.
pub const TEXT_TO_PAY_TEMPLATE: &str = "text-to-pay-reminder";
/// Marker on the "reply CONFIRM" text that a CONFIRM answers.
pub const PAY_CONFIRM_MARKER: &str = "text-to-pay-confirm-request";
/// Event published when a person confirms a Text to Pay payment.
pub const TEXT_TO_PAY_CONFIRMED: &str = "TextToPayConfirmed";
/// Source of the events this service publishes.
pub const EVENT_SOURCE: &str = "texting.consent";

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
    Queued,
}

/// The answer to HELP, in the person's language.
pub fn help_text(dealer: &Dealer, language: Language) -> String {
    answers::help(&dealer.name, dealer.help_contact.as_deref(), language)
}

impl InboundSms {
    /// The id of what acting on this reply makes for `purpose` (its answer, a staff item):
    /// the same on every redelivery, so a conditional write keeps one.
    fn derived_id(&self, now: DateTime<Utc>, purpose: &str) -> String {
        derived_ulid(now, &format!("{}:{purpose}", self.carrier_message_id))
    }

    /// The id of this reply's one answer (its confirmation, HELP text, CONFIRM request).
    fn answer_id(&self, now: DateTime<Utc>) -> MessageId {
        MessageId::derived(now, &format!("{}:answer", self.carrier_message_id))
    }
}

/// Acts on an inbound text exactly once per carrier message id, however often it is
/// delivered and wherever an earlier delivery stopped.
///
/// `now` is when the webhook was received (a redelivery decides as the first did). Every
/// effect is written once: a consent change carries the reply's acted mark in its own
/// transaction (a redelivery finds the mark and only finishes what followed it), an answer
/// or a staff item has an id derived from the carrier message id (a conditional write keeps
/// one), a payment confirmation is claimed once per request. What follows an effect is
/// idempotent, and the reply is marked finished last.
pub async fn handle_inbound(
    ports: &InboundPorts<'_>,
    sms: &InboundSms,
    now: DateTime<Utc>,
) -> Result<ReplyOutcome, DomainError> {
    // The dealer that texts from the number, or, for a number it gave up (or one provisioned
    // for it), the dealer it was provisioned for: the person's STOP is about that dealer's
    // texts, and their words still reach its staff.
    // The number is ours when a dealer owns it or the operator provisioned it (read once).
    let (held, dealer_id) = match ports.dealers.dealer_by_number(&sms.to).await? {
        Some(id) => (true, Some(id)),
        None => match ports.numbers.provisioned(&sms.to).await? {
            Some(p) => (true, p.dealer),
            None => (false, None),
        },
    };
    let dealer = match &dealer_id {
        Some(id) => ports.dealers.dealer(id).await?,
        None => None,
    };
    if ports.inbound.finished(&sms.carrier_message_id).await? {
        return Ok(ReplyOutcome::Duplicate);
    }
    let outcome = match dealer {
        Some(dealer) => act(ports, &dealer, sms, now).await?,
        None => no_dealer(ports, sms, held, now).await?,
    };
    ports.inbound.finish(&sms.carrier_message_id, now).await?;
    Ok(outcome)
}

/// A text to a number no dealer texts from. A number we never held is not ours; to one we
/// hold, a STOP still blocks the number for the person (and START lifts it), whoever
/// takes the number later: an opt-out belongs to the number and the person.
async fn no_dealer(
    ports: &InboundPorts<'_>,
    sms: &InboundSms,
    held: bool,
    now: DateTime<Utc>,
) -> Result<ReplyOutcome, DomainError> {
    if !held {
        tracing::warn!(to = %sms.to.redacted(), "a text to a number we never held; not ours");
        return Ok(ReplyOutcome::UnknownDealer);
    }
    Ok(match classify_reply(&sms.body).kind {
        ReplyKind::OptOut => {
            ports
                .consent_writer
                .set_opted_out(&sms.to, &sms.from, true, now)
                .await?;
            ReplyOutcome::NumberOptedOut
        }
        ReplyKind::OptIn => {
            ports
                .consent_writer
                .set_opted_out(&sms.to, &sms.from, false, now)
                .await?;
            ReplyOutcome::NumberOptedIn
        }
        _ => {
            tracing::warn!(to = %sms.to.redacted(), "a text to a number no dealer texts from; nobody to read it");
            ReplyOutcome::UnknownDealer
        }
    })
}

async fn act(
    ports: &InboundPorts<'_>,
    dealer: &Dealer,
    sms: &InboundSms,
    now: DateTime<Utc>,
) -> Result<ReplyOutcome, DomainError> {
    let Classified { kind, language } = classify_reply(&sms.body);
    // Kept for the conversation view (once per carrier message id), with how it was read.
    let read_as = match kind {
        ReplyKind::OptOut => "opt-out",
        ReplyKind::OptIn => "opt-in",
        ReplyKind::Agree => "agree",
        ReplyKind::Help => "help",
        ReplyKind::Pay => "pay",
        ReplyKind::Confirm => "confirm",
        ReplyKind::Other => "other",
    };
    ports
        .inbound
        .record_text(&InboundText {
            id: crate::ids::new_ulid(),
            dealer_id: dealer.id.clone(),
            from: sms.from.clone(),
            to: sms.to.clone(),
            body: sms
                .body
                .chars()
                .take(crate::ledger::MAX_WORDS_CHARS)
                .collect(),
            carrier_message_id: sms.carrier_message_id.clone(),
            received_at: now,
            read_as: read_as.to_owned(),
            language: language.as_str().to_owned(),
        })
        .await?;
    let outcome = match kind {
        ReplyKind::OptOut => Some(opt_out(ports, dealer, sms, language, now).await?),
        ReplyKind::Agree => match ports.inbound.acted(&sms.carrier_message_id).await? {
            // An earlier delivery granted: finish what followed (the one answer).
            Some(mark) => Some(agreed(ports, dealer, sms, mark.categories, language, now).await?),
            None => agree(ports, dealer, sms, language, now).await?,
        },
        ReplyKind::OptIn => opt_in(ports, dealer, sms, language, now).await?,
        ReplyKind::Help => {
            reply(ports, dealer, sms, help_text(dealer, language), now).await?;
            Some(ReplyOutcome::Help)
        }
        ReplyKind::Pay => pay(ports, dealer, sms, now).await?,
        ReplyKind::Confirm => confirm(ports, dealer, sms, now).await?,
        ReplyKind::Other => None,
    };
    match outcome {
        Some(o) => Ok(o),
        None => {
            to_staff(ports, dealer, sms, now).await?;
            Ok(ReplyOutcome::Queued)
        }
    }
}

/// The one answer to this reply: stored under an id derived from the carrier message id,
/// then queued. A redelivery finds it stored and queues it again only while it waits
/// (deliver's claim keeps a second record from sending twice).
async fn reply(
    ports: &InboundPorts<'_>,
    dealer: &Dealer,
    sms: &InboundSms,
    body: String,
    now: DateTime<Utc>,
) -> Result<Message, DomainError> {
    let mut message = super::system_message(
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
async fn answer(
    ports: &InboundPorts<'_>,
    message: &Message,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    let outbox = Outbox {
        messages: ports.messages,
        queue: ports.queue,
    };
    match super::store_and_queue(outbox, message, now).await {
        Err(DomainError::Store(StoreError::Conflict(_))) => {
            let waiting = ports
                .messages
                .message(&message.id)
                .await?
                .is_some_and(|m| m.status == MessageStatus::Queued);
            if waiting {
                super::queue_stored(ports.queue, message, now).await?;
            }
            Ok(())
        }
        other => other,
    }
}

fn by_reply(
    dealer: &Dealer,
    sms: &InboundSms,
    category: Category,
    event: ConsentEvent,
    now: DateTime<Utc>,
    disclosure: Option<String>,
) -> LedgerEntry {
    let entry = LedgerEntry::new(&dealer.id, &sms.from, category, event, Actor::Phone, now)
        .with_evidence(sms.carrier_message_id.clone())
        .with_words(&sms.body);
    match disclosure {
        Some(d) => entry.with_disclosure(d),
        None => entry,
    }
}

async fn agree(
    ports: &InboundPorts<'_>,
    dealer: &Dealer,
    sms: &InboundSms,
    language: Language,
    now: DateTime<Utc>,
) -> Result<Option<ReplyOutcome>, DomainError> {
    // An Agree grants what it names ("Agree service", "Agree all"); a bare one grants
    // the one category with a live request, and with several it grants nothing and asks
    // which: the most recent request is not always the text it answers.
    let mut live = ports
        .pending
        .pending_for_number(&dealer.id, &sms.from)
        .await?
        .into_iter()
        .filter(|p| p.is_live(now))
        .collect::<Vec<_>>();
    // The newest live request of each category.
    live.sort_by(|a, b| (b.created_at, &b.request_id).cmp(&(a.created_at, &a.request_id)));
    let mut seen = Vec::new();
    live.retain(|p| {
        let first = !seen.contains(&p.category);
        seen.push(p.category);
        first
    });
    live.sort_by_key(|p| p.category);
    let waiting: Vec<Category> = live.iter().map(|p| p.category).collect();
    let answered: Vec<_> = match agree_scope(&sms.body) {
        AgreeScope::All => live,
        AgreeScope::Named(named) => live
            .into_iter()
            .filter(|p| named.contains(&p.category))
            .collect(),
        AgreeScope::Unnamed if live.len() == 1 => live,
        AgreeScope::Unnamed => Vec::new(),
    };
    if answered.is_empty() {
        if waiting.is_empty() {
            return Ok(None);
        }
        let question = answers::which_agree(&dealer.name, &waiting, language);
        reply(ports, dealer, sms, question, now).await?;
        return Ok(Some(ReplyOutcome::AskedWhich(waiting)));
    }
    let consumed: Vec<PendingKey> = answered
        .iter()
        .map(|p| PendingKey {
            category: p.category,
            request_id: p.request_id.clone(),
        })
        .collect();
    let written = update_consent_acting(
        ports.consent,
        ports.consent_writer,
        &dealer.id,
        &sms.from,
        &consumed,
        Some(&sms.carrier_message_id),
        |_| {
            answered
                .iter()
                .map(|p| {
                    by_reply(
                        dealer,
                        sms,
                        p.category,
                        ConsentEvent::GrantedByReply,
                        now,
                        Some(p.disclosure_version.clone()),
                    )
                    .with_disclosure_text(p.disclosure_text.as_deref())
                })
                .collect()
        },
    )
    .await;
    let categories = match acted_categories(ports, sms, written).await? {
        Some(categories) => categories,
        None => return Ok(None),
    };
    Ok(Some(
        agreed(ports, dealer, sms, categories, language, now).await?,
    ))
}

/// What a consent change written with this reply's acted mark changed: the entries just
/// written, or, when a concurrent delivery of the same reply wrote first, its mark.
async fn acted_categories(
    ports: &InboundPorts<'_>,
    sms: &InboundSms,
    written: Result<(Vec<LedgerEntry>, crate::ledger::ConsentState), DomainError>,
) -> Result<Option<Vec<Category>>, DomainError> {
    match written {
        Ok((entries, _)) if !entries.is_empty() => {
            Ok(Some(entries.iter().map(|e| e.category).collect()))
        }
        Ok(_) | Err(DomainError::Conflict(_)) => {
            match ports.inbound.acted(&sms.carrier_message_id).await? {
                Some(mark) => Ok(Some(mark.categories)),
                None => written.map(|_| None),
            }
        }
        Err(e) => Err(e),
    }
}

/// The answer to an Agree that granted `categories`.
async fn agreed(
    ports: &InboundPorts<'_>,
    dealer: &Dealer,
    sms: &InboundSms,
    categories: Vec<Category>,
    language: Language,
    now: DateTime<Utc>,
) -> Result<ReplyOutcome, DomainError> {
    reply(
        ports,
        dealer,
        sms,
        answers::agreed(&dealer.name, &categories, language),
        now,
    )
    .await?;
    Ok(ReplyOutcome::Agreed(categories))
}

/// STOP: revoke every category with this dealer, void pending requests, suppress
/// everything waiting or queued, and confirm once.
async fn opt_out(
    ports: &InboundPorts<'_>,
    dealer: &Dealer,
    sms: &InboundSms,
    language: Language,
    now: DateTime<Utc>,
) -> Result<ReplyOutcome, DomainError> {
    let consumed: Vec<PendingKey> = ports
        .pending
        .pending_for_number(&dealer.id, &sms.from)
        .await?
        .into_iter()
        .map(|p| PendingKey {
            category: p.category,
            request_id: p.request_id,
        })
        .collect();
    let written = update_consent_acting(
        ports.consent,
        ports.consent_writer,
        &dealer.id,
        &sms.from,
        &consumed,
        Some(&sms.carrier_message_id),
        |state| {
            state
                .categories_to_revoke(ConsentEvent::RevokedByReply)
                .into_iter()
                .map(|c| by_reply(dealer, sms, c, ConsentEvent::RevokedByReply, now, None))
                .collect()
        },
    )
    .await;
    // A redelivery (or a concurrent delivery) of this STOP finds its own mark: what it
    // revoked decides the one confirmation, as it did the first time.
    let revoked = acted_categories(ports, sms, written)
        .await?
        .unwrap_or_default();
    // The carrier now refuses texts from this number to the person until START, whoever
    // owns the number then: the block is kept with the pair of numbers.
    ports
        .consent_writer
        .set_opted_out(&sms.to, &sms.from, true, now)
        .await?;
    let suppressed = suppress_waiting(ports.messages, dealer, &sms.from, "opted-out", now).await?;
    // One confirmation per opt-out: a repeated STOP that changes nothing is not answered again.
    if !revoked.is_empty() {
        reply(
            ports,
            dealer,
            sms,
            answers::opted_out(&dealer.name, language),
            now,
        )
        .await?;
    }
    Ok(ReplyOutcome::OptedOut {
        revoked,
        suppressed,
    })
}

/// Marks this number's template messages and approval code texts that are waiting or
/// queued as suppressed (a code text is void once the STOP consumed its request; only
/// answers to the person's own texts still go). Deliver re-checks consent for
/// templates too, so a template message that slips past this is still stopped.
pub async fn suppress_waiting(
    messages: &dyn MessageStore,
    dealer: &Dealer,
    phone: &PhoneNumber,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<usize, DomainError> {
    let waiting = messages
        .by_recipient(
            &dealer.id,
            phone,
            &[
                MessageStatus::Scheduled,
                MessageStatus::Deferred,
                MessageStatus::Queued,
            ],
        )
        .await?;
    let mut count = 0;
    for mut m in waiting.into_iter().filter(|m| m.kind != MessageKind::Reply) {
        let expected = m.status;
        m.transition(MessageStatus::Suppressed, now, Some(reason.to_owned()));
        match messages.save(&m, expected).await {
            Ok(()) => count += 1,
            // It moved on meanwhile (deliver claimed it): deliver's own re-check decides.
            Err(crate::error::StoreError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(count)
}

async fn opt_in(
    ports: &InboundPorts<'_>,
    dealer: &Dealer,
    sms: &InboundSms,
    language: Language,
    now: DateTime<Utc>,
) -> Result<Option<ReplyOutcome>, DomainError> {
    // START lifts the carrier's block of this number for the person, whatever it restores.
    ports
        .consent_writer
        .set_opted_out(&sms.to, &sms.from, false, now)
        .await?;
    let written = update_consent_acting(
        ports.consent,
        ports.consent_writer,
        &dealer.id,
        &sms.from,
        &[],
        Some(&sms.carrier_message_id),
        |state| {
            state
                .categories_to_restore()
                .into_iter()
                .map(|c| by_reply(dealer, sms, c, ConsentEvent::RestoredByStart, now, None))
                .collect()
        },
    )
    .await;
    let Some(categories) = acted_categories(ports, sms, written).await? else {
        return Ok(None);
    };
    reply(
        ports,
        dealer,
        sms,
        answers::resubscribed(&dealer.name, &categories, language),
        now,
    )
    .await?;
    Ok(Some(ReplyOutcome::OptedIn(categories)))
}

/// The newest message of `template` sent to the number within `within`.
async fn recent_sent(
    ports: &InboundPorts<'_>,
    dealer: &Dealer,
    phone: &PhoneNumber,
    template: &str,
    within: Duration,
    now: DateTime<Utc>,
) -> Result<Option<Message>, DomainError> {
    // The newest one noted on the base table: a reply sent the moment the text reached
    // the phone finds it (the recipient index may not show it yet).
    if let Some(id) = ports.messages.latest(&dealer.id, phone, template).await? {
        if let Some(m) = ports.messages.message(&id).await? {
            if m.dealer_id == dealer.id
                && &m.to == phone
                && m.status.went_to_carrier()
                && now - m.created_at <= within
            {
                return Ok(Some(m));
            }
        }
    }
    let sent = ports
        .messages
        .by_recipient(
            &dealer.id,
            phone,
            &[
                MessageStatus::Sending,
                MessageStatus::Sent,
                MessageStatus::Delivered,
            ],
        )
        .await?;
    Ok(sent
        .into_iter()
        .filter(|m| m.template.as_deref() == Some(template) && now - m.created_at <= within)
        .max_by_key(|m| m.created_at))
}

async fn pay(
    ports: &InboundPorts<'_>,
    dealer: &Dealer,
    sms: &InboundSms,
    now: DateTime<Utc>,
) -> Result<Option<ReplyOutcome>, DomainError> {
    let Some(reminder) = recent_sent(
        ports,
        dealer,
        &sms.from,
        TEXT_TO_PAY_TEMPLATE,
        Duration::days(7),
        now,
    )
    .await?
    else {
        return Ok(None);
    };
    let amount = reminder
        .variables
        .as_ref()
        .and_then(|v| v.get("amount"))
        .and_then(|v| {
            v.as_str()
                .map(str::to_owned)
                .or_else(|| v.as_f64().map(|f| format!("{f:.2}")))
        })
        .unwrap_or_default();
    // What CONFIRM confirms travels on the answer itself, stored before it is queued.
    let mut message = super::system_message(
        dealer,
        &sms.from,
        Category::Accounting,
        MessageKind::Reply,
        format!(
            "{}: reply CONFIRM within 30 min to pay {} on your account. We never ask for card details by text. Reply STOP to opt out.",
            dealer.name,
            if amount.starts_with('$') { amount.clone() } else { format!("${amount}") }
        ),
        now,
    );
    message.id = sms.answer_id(now);
    message.template = Some(PAY_CONFIRM_MARKER.to_owned());
    message.contact_id = reminder.contact_id.clone();
    message.account_id = reminder.account_id.clone();
    message.variables = Some(
        json!({"amount": amount, "reminderMessageId": reminder.id})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    );
    answer(ports, &message, now).await?;
    ports
        .messages
        .note_latest(&dealer.id, &sms.from, PAY_CONFIRM_MARKER, &message.id)
        .await?;
    Ok(Some(ReplyOutcome::PayConfirmationRequested))
}

/// The id of the `TextToPayConfirmed` event for the pay request (the "reply CONFIRM" text)
/// a CONFIRM answers: one request is one payment, however many CONFIRMs answer it.
pub fn confirmation_event_id(request: &MessageId) -> String {
    format!("{TEXT_TO_PAY_CONFIRMED}:{request}")
}

async fn confirm(
    ports: &InboundPorts<'_>,
    dealer: &Dealer,
    sms: &InboundSms,
    now: DateTime<Utc>,
) -> Result<Option<ReplyOutcome>, DomainError> {
    let Some(request) = recent_sent(
        ports,
        dealer,
        &sms.from,
        PAY_CONFIRM_MARKER,
        Duration::minutes(30),
        now,
    )
    .await?
    else {
        return Ok(None);
    };
    // The request is confirmed once, by one CONFIRM (a conditional write); a redelivery of
    // that CONFIRM holds the claim and finishes, another CONFIRM finds it taken.
    if !ports
        .inbound
        .claim_confirmation(&request.id, &sms.carrier_message_id)
        .await?
    {
        return Ok(Some(ReplyOutcome::AlreadyConfirmed));
    }
    let vars = request.variables.clone().unwrap_or_default();
    ports
        .events
        .publish(&[BusEvent {
            source: EVENT_SOURCE.to_owned(),
            detail_type: TEXT_TO_PAY_CONFIRMED.to_owned(),
            detail: json!({
                // One request is one event: a republished confirmation has the same id, so
                // the payment system de-duplicates on it.
                "id": confirmation_event_id(&request.id),
                "type": TEXT_TO_PAY_CONFIRMED,
                "version": 1,
                "time": now,
                "dealerId": dealer.id,
                "contactId": request.contact_id,
                "accountId": request.account_id,
                "amount": vars.get("amount"),
                "reminderMessageId": vars.get("reminderMessageId"),
                "payRequestMessageId": request.id,
                "confirmationCarrierMessageId": sms.carrier_message_id,
            }),
        }])
        .await?;
    reply(
        ports,
        dealer,
        sms,
        format!(
            "{}: thank you, your payment request was sent. You will get a receipt when it is processed.",
            dealer.name
        ),
        now,
    )
    .await?;
    Ok(Some(ReplyOutcome::PaymentConfirmed))
}

async fn to_staff(
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

/// A delivery status callback.
#[derive(Debug, Clone)]
pub struct StatusReport {
    pub message_id: MessageId,
    pub carrier_message_id: String,
    pub status: String,
    pub error_code: Option<u32>,
}

/// Twilio's "unsubscribed recipient" error: the carrier blocks us for this number.
pub const CARRIER_OPT_OUT_CODES: [u32; 1] = [21610];

pub struct StatusPorts<'a> {
    pub consent: &'a dyn ConsentReader,
    pub consent_writer: &'a dyn ConsentWriter,
    pub messages: &'a dyn MessageStore,
}

/// Applies a carrier status callback. Unknown messages or stale reports change nothing.
pub async fn handle_status(
    ports: &StatusPorts<'_>,
    report: &StatusReport,
    now: DateTime<Utc>,
) -> Result<Option<MessageStatus>, DomainError> {
    let Some(mut message) = ports.messages.message(&report.message_id).await? else {
        return Ok(None);
    };
    if message.carrier_message_id.as_deref() != Some(report.carrier_message_id.as_str()) {
        return Ok(None);
    }
    if let Some(code) = report
        .error_code
        .filter(|c| CARRIER_OPT_OUT_CODES.contains(c))
    {
        revoke_by_carrier(
            ports.consent,
            ports.consent_writer,
            &message.dealer_id,
            (&message.from, &message.to),
            code,
            &report.carrier_message_id,
            now,
        )
        .await?;
    }
    let next = match report.status.as_str() {
        "delivered" => MessageStatus::Delivered,
        "failed" | "undelivered" => MessageStatus::Failed,
        _ => return Ok(Some(message.status)),
    };
    if message.status != MessageStatus::Sent && message.status != MessageStatus::Sending {
        return Ok(Some(message.status));
    }
    let expected = message.status;
    let reason = report.error_code.map(|c| format!("carrier error {c}"));
    message.transition(next, now, reason);
    match ports.messages.save(&message, expected).await {
        Ok(()) | Err(crate::error::StoreError::Conflict(_)) => Ok(Some(next)),
        Err(e) => Err(e.into()),
    }
}

/// The carrier says the number blocked us: record it so app and carrier agree.
pub async fn revoke_by_carrier(
    consent: &dyn ConsentReader,
    writer: &dyn ConsentWriter,
    dealer: &crate::ids::DealerId,
    (from, phone): (&PhoneNumber, &PhoneNumber),
    code: u32,
    carrier_message_id: &str,
    now: DateTime<Utc>,
) -> Result<Vec<LedgerEntry>, DomainError> {
    writer.set_opted_out(from, phone, true, now).await?;
    let (entries, _) = update_consent(consent, writer, dealer, phone, &[], |state| {
        state
            .categories_to_revoke(ConsentEvent::RevokedByCarrier)
            .into_iter()
            .map(|c| {
                LedgerEntry::new(
                    dealer,
                    phone,
                    c,
                    ConsentEvent::RevokedByCarrier,
                    Actor::Carrier,
                    now,
                )
                .with_evidence(format!("{carrier_message_id} error {code}"))
            })
            .collect()
    })
    .await?;
    Ok(entries)
}
