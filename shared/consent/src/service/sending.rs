//! Sending: a staff or automated request becomes a stored message, queued now or
//! waiting in the time index; dispatch moves due messages to the queue.

use std::collections::HashMap;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use futures::stream::{self, StreamExt};
use serde_json::{Map, Value};

use crate::category::Category;
use crate::error::{DomainError, StoreError};
use crate::frequency;
use crate::ids::{AccountId, ContactId, DealId, DealerId, MessageId};
use crate::message::{
    Message, MessageKind, MessageStatus, Origin, Outbound, OutboundEnvelope, StatusChange,
};
use crate::phone::PhoneNumber;
use crate::ports::MessageReader;
use crate::ports::{
    CapBookWrite, ConsentReader, Contact, ContactStore, DealerStore, DueIndex, IdempotencyRecord,
    MessageStore, MessageWriter, OutboundQueue, TemplateStore, WorkItem, WorkItemStatus, WorkQueue,
    WorkQueueName,
};
use crate::quiet_hours::QuietHours;
use crate::template::{self, Resolved};

use super::require_dealer;

pub struct SendPorts<'a> {
    pub dealers: &'a dyn DealerStore,
    pub contacts: &'a dyn ContactStore,
    /// The dealer's own templates (beside the built-ins).
    pub templates: &'a dyn TemplateStore,
    pub consent: &'a dyn ConsentReader,
    pub messages: &'a dyn MessageStore,
    pub queue: &'a dyn OutboundQueue,
    /// Texting numbers handed to dealers on first use (empty in production).
    pub number_pool: &'a [PhoneNumber],
}

/// How far ahead a text may be scheduled.
pub const MAX_SCHEDULE_AHEAD_DAYS: i64 = 365;
/// A `scheduledAt` this far in the past is refused (clock skew tolerance below it).
pub const PAST_TOLERANCE_SECONDS: i64 = 60;
/// Longest staff note kept with a message.
pub const MAX_NOTES_CHARS: usize = 2000;

/// A send request from the portal or an automated task.
#[derive(Debug, Clone)]
pub struct SendRequest {
    pub contact_id: ContactId,
    pub template: String,
    pub variables: Map<String, Value>,
    pub notes: Option<String>,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub account_id: Option<AccountId>,
    pub deal_id: Option<DealId>,
}

/// Staff's own words to a person (an answer to their reply), instead of a template:
/// the same consent, quiet-hour and cap rules for its category.
#[derive(Debug, Clone)]
pub struct TextRequest {
    pub contact_id: ContactId,
    pub body: String,
    pub category: Category,
    pub notes: Option<String>,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub account_id: Option<AccountId>,
    pub deal_id: Option<DealId>,
}

/// Longest free text staff may send (ten GSM-7 segments).
pub const MAX_TEXT_CHARS: usize = 1530;
/// What every marketing text carries; added to a free text that lacks it.
pub use crate::opt_out_wording::OPT_OUT_WORDING;

/// What a send texts: a template with its values, or staff's own words.
#[derive(Debug, Clone)]
pub enum Content {
    Template {
        name: String,
        variables: Map<String, Value>,
    },
    Text {
        body: String,
        category: Category,
    },
}

/// A send request of either kind, as `accept` takes it.
struct Draft {
    contact_id: ContactId,
    content: Content,
    notes: Option<String>,
    scheduled_at: Option<DateTime<Utc>>,
    account_id: Option<AccountId>,
    deal_id: Option<DealId>,
}

impl From<SendRequest> for Draft {
    fn from(r: SendRequest) -> Self {
        Draft {
            contact_id: r.contact_id,
            content: Content::Template {
                name: r.template,
                variables: r.variables,
            },
            notes: r.notes,
            scheduled_at: r.scheduled_at,
            account_id: r.account_id,
            deal_id: r.deal_id,
        }
    }
}

impl From<TextRequest> for Draft {
    fn from(r: TextRequest) -> Self {
        Draft {
            contact_id: r.contact_id,
            content: Content::Text {
                body: r.body,
                category: r.category,
            },
            notes: r.notes,
            scheduled_at: r.scheduled_at,
            account_id: r.account_id,
            deal_id: r.deal_id,
        }
    }
}

/// How often a capped text is counted again when other texts to the same person
/// moved its cap book on in between (each retry saw one more text; a person is rarely
/// texted by more than a few writers at once).
pub(super) const CAP_BOOK_ATTEMPTS: u32 = 8;

/// The confirmation staff see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendAccepted {
    pub message: Message,
    /// The same Idempotency-Key was seen before: this is the first answer again.
    pub replayed: bool,
}

pub fn parse_time_zone(tz: Option<&str>) -> Option<crate::Zone> {
    tz.and_then(|s| crate::Zone::from_str(s).ok())
}

/// Why a text waits past the time it was wanted.
pub const REASON_QUIET_HOURS: &str = "quiet-hours";
/// The recipient's state caps the category per 24 hours and the cap is reached.
pub const REASON_FREQUENCY_CAP: &str = "frequency-cap";

/// The recipient of a template text, as the send-time rules see it.
pub struct Recipient<'a> {
    pub dealer: &'a DealerId,
    pub phone: &'a PhoneNumber,
    pub time_zone: Option<crate::Zone>,
    pub category: crate::Category,
}

/// When a text may go, why it waits if it does, and, for a capped text, the cap book
/// write that makes the count hold (its store write must carry it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendTime {
    pub at: DateTime<Utc>,
    pub waits: Option<&'static str>,
    pub book: Option<CapBookWrite>,
}

/// The first moment at or after `wanted` a text may go, and why it waits if it does:
/// quiet hours (with state holidays) and, where the recipient's state caps the
/// category per 24 hours, the texts already sent to or due for the same person from
/// the same dealer. Those are read from the recipient's cap book, strongly consistent
/// (never from an index, which lags its table), and the returned book write keeps only
/// texts that can still count after `now` and adds `this`. `this` (the message being
/// delivered, or the one being created) is left out of the count.
pub async fn earliest_send(
    messages: &dyn MessageReader,
    to: &Recipient<'_>,
    wanted: DateTime<Utc>,
    this: &MessageId,
    now: DateTime<Utc>,
) -> Result<SendTime, StoreError> {
    let rules = QuietHours::standard();
    let allowed = |at| rules.next_allowed(to.phone, to.time_zone.as_ref(), to.category, at);
    let quiet = allowed(wanted);
    let Some(cap) = rules.cap_per_24h(to.phone, to.category) else {
        return Ok(SendTime {
            at: quiet,
            waits: (quiet > wanted).then_some(REASON_QUIET_HOURS),
            book: None,
        });
    };
    let mut book = messages.cap_book(to.dealer, to.phone, to.category).await?;
    if book.version == 0 {
        // No book yet: the person's texts from before books were kept (or none) are
        // found on the recipient index; that they are not new, the index's lag cannot
        // hide them. The first write starts the book with them.
        book.messages = messages
            .by_recipient(to.dealer, to.phone, &frequency::COUNTED_STATUSES)
            .await?;
    }
    let counted: Vec<(&Message, DateTime<Utc>)> = book
        .messages
        .iter()
        .filter(|m| &m.id != this && &m.dealer_id == to.dealer && &m.to == to.phone)
        .filter_map(|m| frequency::counted_at(m, to.category).map(|at| (m, at)))
        .collect();
    // What this text must fit around: every text that went, and the waiting texts
    // accepted before it (ids are ULIDs: creation order). Texts accepted after it were
    // planned around it and are counted again when they go, so a text that goes a few
    // seconds after its planned time does not push back every text planned after it.
    let others: Vec<DateTime<Utc>> = counted
        .iter()
        .filter(|(m, _)| {
            let waiting = matches!(
                m.status,
                MessageStatus::Scheduled | MessageStatus::Deferred | MessageStatus::Queued
            );
            !waiting || m.id.as_str() < this.as_str()
        })
        .map(|(_, at)| *at)
        .collect();
    let at = frequency::next_fitting(cap, &others, wanted, allowed);
    let waits = if at > quiet {
        Some(REASON_FREQUENCY_CAP)
    } else {
        (at > wanted).then_some(REASON_QUIET_HOURS)
    };
    // A text that went (or is due) 24 hours or more before now can no longer share a
    // period with any text from now on.
    let ids = counted
        .iter()
        .filter(|(_, at)| *at > now - frequency::CAP_PERIOD)
        .map(|(m, _)| m.id.clone())
        .chain(std::iter::once(this.clone()))
        .collect();
    Ok(SendTime {
        at,
        waits,
        book: Some(CapBookWrite {
            dealer: to.dealer.clone(),
            phone: to.phone.clone(),
            category: to.category,
            read: book.version,
            ids,
        }),
    })
}

/// Requests a send: template, consent, rendering, quiet hours, then stored (with
/// its idempotency key, atomically) and either queued now or left for dispatch.
///
/// The idempotency key is not read up front (a retry is the rare case): the store's
/// conditional create detects a reused key, and a refusal checks for a first answer
/// before it is returned, so the same key always gets the same answer.
pub async fn request_send(
    ports: &SendPorts<'_>,
    dealer_id: &DealerId,
    origin: Origin,
    request: SendRequest,
    idempotency: Option<(String, String)>,
    now: DateTime<Utc>,
) -> Result<SendAccepted, DomainError> {
    self::request(ports, dealer_id, origin, request.into(), idempotency, now).await
}

/// Requests staff's own words to a person, under the rules a template of the same
/// category would meet (consent, opt-out, quiet hours, caps, idempotency).
pub async fn request_text(
    ports: &SendPorts<'_>,
    dealer_id: &DealerId,
    origin: Origin,
    request: TextRequest,
    idempotency: Option<(String, String)>,
    now: DateTime<Utc>,
) -> Result<SendAccepted, DomainError> {
    self::request(ports, dealer_id, origin, request.into(), idempotency, now).await
}

async fn request(
    ports: &SendPorts<'_>,
    dealer_id: &DealerId,
    origin: Origin,
    request: Draft,
    idempotency: Option<(String, String)>,
    now: DateTime<Utc>,
) -> Result<SendAccepted, DomainError> {
    match accept(ports, dealer_id, origin, request, idempotency.as_ref(), now).await {
        Ok(accepted) => Ok(accepted),
        Err(DomainError::Store(e)) => Err(DomainError::Store(e)),
        Err(refusal) => {
            if let Some((key, hash)) = &idempotency {
                if let Some(found) = replay(ports, dealer_id, key, hash, now).await? {
                    return Ok(found);
                }
            }
            Err(refusal)
        }
    }
}

async fn accept(
    ports: &SendPorts<'_>,
    dealer_id: &DealerId,
    origin: Origin,
    request: Draft,
    idempotency: Option<&(String, String)>,
    now: DateTime<Utc>,
) -> Result<SendAccepted, DomainError> {
    let (kind, category, tpl) = resolve(ports, dealer_id, &request.content).await?;
    if let Some(notes) = &request.notes {
        if notes.chars().count() > MAX_NOTES_CHARS {
            return Err(DomainError::Invalid(format!(
                "notes are longer than {MAX_NOTES_CHARS} characters"
            )));
        }
    }
    if let Some(at) = request.scheduled_at {
        if at < now - Duration::seconds(PAST_TOLERANCE_SECONDS) {
            return Err(DomainError::Invalid("scheduledAt is in the past".into()));
        }
        if at > now + Duration::days(MAX_SCHEDULE_AHEAD_DAYS) {
            return Err(DomainError::Invalid(format!(
                "scheduledAt is more than {MAX_SCHEDULE_AHEAD_DAYS} days ahead"
            )));
        }
    }
    let contact = ports
        .contacts
        .contact(dealer_id, &request.contact_id)
        .await?
        .ok_or(DomainError::NotFound { what: "contact" })?;
    let dealer = require_dealer(ports.dealers, dealer_id, ports.number_pool).await?;
    let (state, opted_out) = ports
        .consent
        .consent_to_text(dealer_id, &contact.phone, &dealer.texting_number)
        .await?;
    if !state.value.may_send(category).is_allowed() {
        return Err(DomainError::ConsentRequired { category });
    }
    // Authorized with this dealer, yet opted out of its number (it STOPped the number's
    // previous owner, or the carrier blocks it): the carrier would refuse the text.
    if opted_out {
        return Err(DomainError::OptedOut {
            from: dealer.texting_number.clone(),
        });
    }
    let (body, variables) = compose(request.content, tpl.as_ref(), category, &dealer.name)?;
    let (encoding, segments) = crate::sms::measure(&body);
    let wanted = request.scheduled_at.unwrap_or(now).max(now);
    let recipient = Recipient {
        dealer: dealer_id,
        phone: &contact.phone,
        time_zone: parse_time_zone(contact.time_zone.as_deref()),
        category,
    };
    let mut message = Message {
        id: MessageId::generate(),
        dealer_id: dealer_id.clone(),
        kind,
        contact_id: Some(contact.id.clone()),
        to: contact.phone.clone(),
        from: dealer.texting_number.clone(),
        category,
        template: tpl.as_ref().map(|t| t.name().to_owned()),
        template_version: tpl.as_ref().map(Resolved::version),
        body,
        variables,
        encoding,
        segments,
        notes: request.notes,
        origin,
        account_id: request
            .account_id
            .or_else(|| contact.account_ids.first().cloned()),
        deal_id: request.deal_id,
        recipient_time_zone: contact.time_zone.clone(),
        created_at: now,
        requested_at: request.scheduled_at,
        send_at: wanted,
        status: MessageStatus::Queued,
        status_reason: None,
        history: Vec::new(),
        carrier_message_id: None,
        attempts: 0,
        code: None,
    };
    let record = idempotency.map(|(key, hash)| IdempotencyRecord {
        dealer_id: dealer_id.clone(),
        key: key.clone(),
        request_hash: hash.clone(),
        message_id: message.id.clone(),
        created_at: now,
    });
    // A capped text is stored with its recipient's cap book moved on from the version
    // its count read; when another text got there first, the count is made again.
    let mut attempt = 0;
    let status = loop {
        attempt += 1;
        let plan = earliest_send(ports.messages, &recipient, wanted, &message.id, now).await?;
        let (status, reason) = if let Some(why) = plan.waits {
            (MessageStatus::Deferred, Some(why.to_owned()))
        } else if wanted > now + Duration::seconds(1) {
            (MessageStatus::Scheduled, None)
        } else {
            (MessageStatus::Queued, None)
        };
        message.send_at = plan.at;
        message.status = status;
        message.status_reason = reason.clone();
        message.history = vec![StatusChange {
            status,
            at: now,
            reason,
        }];
        let stored = match &plan.book {
            Some(book) => {
                ports
                    .messages
                    .create_counted(&message, record.as_ref(), book)
                    .await
            }
            None => ports.messages.create(&message, record.as_ref()).await,
        };
        match stored {
            Ok(()) => break status,
            Err(StoreError::Conflict(_)) => {
                // Another request with the same key won the race: answer as it did.
                if let Some((key, hash)) = idempotency {
                    if let Some(found) = replay(ports, dealer_id, key, hash, now).await? {
                        return Ok(found);
                    }
                }
                if plan.book.is_none() || attempt >= CAP_BOOK_ATTEMPTS {
                    return Err(DomainError::Conflict(
                        "the message could not be stored".into(),
                    ));
                }
            }
            Err(e) => return Err(e.into()),
        }
    };
    // A reply to it (PAY) finds the newest reminder on the base table.
    if message.template.as_deref() == Some(super::replies::TEXT_TO_PAY_TEMPLATE) {
        ports
            .messages
            .note_latest(
                dealer_id,
                &message.to,
                super::replies::TEXT_TO_PAY_TEMPLATE,
                &message.id,
            )
            .await?;
    }
    if status == MessageStatus::Queued {
        let outbound = Outbound {
            envelope: OutboundEnvelope::for_message(&message, now),
            delay_seconds: 0,
        };
        let failed = match ports.queue.enqueue(&[outbound]).await {
            Ok(failed) => !failed.is_empty(),
            Err(e) => {
                tracing::warn!(message_id = %message.id, error = %e, "enqueue failed; leaving the message to dispatch");
                true
            }
        };
        if failed {
            // Not lost: back into the time index, due now, for the next dispatch run.
            message.transition(
                MessageStatus::Scheduled,
                now,
                Some("queue-unavailable".into()),
            );
            ports.messages.save(&message, MessageStatus::Queued).await?;
        }
    }
    Ok(SendAccepted {
        message,
        replayed: false,
    })
}

/// What a send would text and how it measures, without sending: the portal's
/// live preview. The same template, rendering and opt-out wording as a send; no
/// contact, consent or schedule is looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    pub category: Category,
    pub body: String,
    pub encoding: crate::sms::Encoding,
    pub segments: u32,
}

pub async fn preview(
    ports: &SendPorts<'_>,
    dealer_id: &DealerId,
    content: Content,
) -> Result<Preview, DomainError> {
    let (_, category, tpl) = resolve(ports, dealer_id, &content).await?;
    let dealer = require_dealer(ports.dealers, dealer_id, ports.number_pool).await?;
    let (body, _) = compose(content, tpl.as_ref(), category, &dealer.name)?;
    let (encoding, segments) = crate::sms::measure(&body);
    Ok(Preview {
        category,
        body,
        encoding,
        segments,
    })
}

/// The kind and category of what a send texts, and its template (checked to exist),
/// or a refusal of staff's own words that are empty or too long.
async fn resolve(
    ports: &SendPorts<'_>,
    dealer_id: &DealerId,
    content: &Content,
) -> Result<(MessageKind, Category, Option<Resolved>), DomainError> {
    match content {
        Content::Template { name, .. } => {
            let tpl = resolve_template(ports, dealer_id, name)
                .await?
                .ok_or_else(|| {
                    DomainError::Invalid(format!("unknown template {:?}", truncate(name, 60)))
                })?;
            Ok((MessageKind::Template, tpl.category(), Some(tpl)))
        }
        Content::Text { body, category } => {
            let chars = body.trim().chars().count();
            if chars == 0 || chars > MAX_TEXT_CHARS {
                return Err(DomainError::Invalid(format!(
                    "body must be 1 to {MAX_TEXT_CHARS} characters"
                )));
            }
            if body.chars().any(crate::sms::is_format) {
                return Err(DomainError::Invalid(
                    "body must not contain invisible format characters (Unicode Cf: bidirectional overrides, zero-width characters)".into(),
                ));
            }
            Ok((MessageKind::Text, *category, None))
        }
    }
}

/// The text itself: a template rendered with its checked values, or staff's words
/// trimmed, a marketing text given the opt-out wording it lacks.
fn compose(
    content: Content,
    tpl: Option<&Resolved>,
    category: Category,
    dealer_name: &str,
) -> Result<(String, Option<Map<String, Value>>), DomainError> {
    let (body, variables) = compose_words(content, tpl, category, dealer_name)?;
    // The limit is what the person's phone receives: segments, not characters (one
    // emoji makes a long text UCS-2 and more than doubles its segments).
    let (_, segments) = crate::sms::measure(&body);
    if segments > crate::sms::MAX_SEGMENTS {
        return Err(DomainError::Invalid(format!(
            "the text would be {segments} SMS segments; at most {}",
            crate::sms::MAX_SEGMENTS
        )));
    }
    Ok((body, variables))
}

fn compose_words(
    content: Content,
    tpl: Option<&Resolved>,
    category: Category,
    dealer_name: &str,
) -> Result<(String, Option<Map<String, Value>>), DomainError> {
    match (content, tpl) {
        (Content::Template { variables, .. }, Some(tpl)) => {
            Ok((tpl.render(&variables, dealer_name)?.body, Some(variables)))
        }
        (Content::Text { body, .. }, _) => {
            let body = body.trim();
            let body = if category == Category::Marketing
                && !crate::opt_out_wording::carries_opt_out_wording(body)
            {
                format!("{body} {OPT_OUT_WORDING}")
            } else {
                body.to_owned()
            };
            Ok((body, None))
        }
        (Content::Template { .. }, None) => Err(DomainError::Invalid("unknown template".into())),
    }
}

/// The template a send names: a built-in, else the dealer's own (one GetItem), else none.
async fn resolve_template(
    ports: &SendPorts<'_>,
    dealer_id: &DealerId,
    name: &str,
) -> Result<Option<Resolved>, StoreError> {
    if let Some(t) = template::find(name) {
        return Ok(Some(Resolved::BuiltIn(t)));
    }
    Ok(ports
        .templates
        .dealer_template(dealer_id, name)
        .await?
        .map(Resolved::Dealer))
}

async fn replay(
    ports: &SendPorts<'_>,
    dealer_id: &DealerId,
    key: &str,
    hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<SendAccepted>, DomainError> {
    let Some(record) = ports.messages.idempotency(dealer_id, key, now).await? else {
        return Ok(None);
    };
    if record.request_hash != hash {
        return Err(DomainError::IdempotencyKeyReused);
    }
    let message =
        ports
            .messages
            .message(&record.message_id)
            .await?
            .ok_or(DomainError::Conflict(
                "the idempotent message is missing".into(),
            ))?;
    Ok(Some(SendAccepted {
        message,
        replayed: true,
    }))
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// A message of the token's dealer (another dealer's is "not found").
pub async fn message_of(
    messages: &dyn MessageStore,
    dealer_id: &DealerId,
    id: &MessageId,
) -> Result<Message, DomainError> {
    match messages.message(id).await? {
        Some(m) if &m.dealer_id == dealer_id => Ok(m),
        _ => Err(DomainError::NotFound { what: "message" }),
    }
}

/// Cancels a message that is not yet queued.
pub async fn cancel(
    messages: &dyn MessageStore,
    dealer_id: &DealerId,
    id: &MessageId,
    now: DateTime<Utc>,
) -> Result<Message, DomainError> {
    let mut message = message_of(messages, dealer_id, id).await?;
    if message.status == MessageStatus::Canceled {
        return Ok(message);
    }
    if !message.status.is_waiting() {
        return Err(DomainError::NotCancelable {
            status: message.status.to_string(),
        });
    }
    let expected = message.status;
    message.transition(
        MessageStatus::Canceled,
        now,
        Some("canceled by staff".into()),
    );
    match messages.save(&message, expected).await {
        Ok(()) => Ok(message),
        Err(StoreError::Conflict(_)) => {
            let now_status = message_of(messages, dealer_id, id).await?.status;
            Err(DomainError::NotCancelable {
                status: now_status.to_string(),
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// What dispatch touches: the due index it reads, the messages it marks (each a
/// conditional PutItem), consent it re-checks and the queue it fills.
pub struct DispatchPorts<'a> {
    pub consent: &'a dyn ConsentReader,
    pub due: &'a dyn DueIndex,
    pub messages: &'a dyn MessageWriter,
    pub queue: &'a dyn OutboundQueue,
}

/// What one dispatch run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DispatchReport {
    pub queued: usize,
    /// Queued before but never picked up: put on the queue again.
    pub requeued: usize,
    /// Authorization requests never completed, raised to staff.
    pub follow_ups: usize,
    pub deferred: usize,
    pub suppressed: usize,
    /// Lost a conditional write to another run or a cancel: left alone.
    pub skipped: usize,
    pub failed: usize,
}

/// The schedule's window: a run at `now` takes what is due before the next run and
/// delays each by its seconds within the minute.
pub const DISPATCH_HORIZON_SECONDS: i64 = 60;

/// Moves due messages of the given shards to the outbound queue.
///
/// Each message is first marked queued with a conditional write (status and version),
/// so overlapping runs queue it once; only the runs that won send it, in batches of
/// ten. A message marked queued whose queue send failed, or whose process died before
/// sending, stays in the due index at its requeue time (`Message::index_time`) and is
/// queued again by a later run; delivery's claim makes the carrier call once even if
/// a message ever reaches the queue twice.
pub async fn dispatch(
    ports: &DispatchPorts<'_>,
    shards: std::ops::Range<u32>,
    now: DateTime<Utc>,
    limit_per_shard: u32,
) -> Result<DispatchReport, DomainError> {
    let reports: Vec<Result<DispatchReport, DomainError>> = stream::iter(shards)
        .map(|shard| dispatch_shard(ports, shard, now, limit_per_shard))
        .buffer_unordered(SHARDS_AT_ONCE)
        .collect()
        .await;
    let mut total = DispatchReport::default();
    let mut failure = None;
    for report in reports {
        match report {
            Ok(r) => total.add(&r),
            // What the other shards did is durable; the run reports the first error.
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(total),
    }
}

/// Shards read and worked at once in a pass: each is one Query and its page of
/// conditional writes, so eight keep a 1,024 MB function busy without going past
/// DynamoDB's per-partition limits (each shard is its own partition).
pub const SHARDS_AT_ONCE: usize = 8;
/// Conditional writes in flight per shard while marking its page.
pub const MARKS_AT_ONCE: usize = 16;

/// What dispatch does with one due message.
enum Verdict {
    /// Put on the queue (again, for `requeued`).
    Queue {
        requeued: bool,
    },
    Defer,
    Suppress,
}

/// One shard: its due page read, every message marked (concurrently, each with its
/// own conditional write), and the ones marked queued sent to the queue at once, so
/// nothing marked waits for the rest of the pass.
async fn dispatch_shard(
    ports: &DispatchPorts<'_>,
    shard: u32,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<DispatchReport, DomainError> {
    let horizon = now + Duration::seconds(DISPATCH_HORIZON_SECONDS);
    let due = ports.due.due(shard, horizon, limit).await?;
    // Consent for every (dealer, number) in one batched read per dealer.
    let mut by_dealer: HashMap<DealerId, Vec<PhoneNumber>> = HashMap::new();
    for m in due
        .iter()
        .filter(|m| m.needs_consent() && m.status.is_waiting())
    {
        by_dealer
            .entry(m.dealer_id.clone())
            .or_default()
            .push(m.to.clone());
    }
    let mut consent = HashMap::new();
    for (dealer, mut phones) in by_dealer {
        phones.sort();
        phones.dedup();
        for (phone, state) in ports.consent.consents(&dealer, &phones).await? {
            consent.insert((dealer.clone(), phone), state);
        }
    }
    let decided: Vec<(Message, MessageStatus, Verdict)> = due
        .into_iter()
        .filter_map(|m| {
            let expected = m.status;
            decide(m, &consent, now).map(|(m, verdict)| (m, expected, verdict))
        })
        .collect();
    let marked: Vec<(Message, Verdict, Result<(), StoreError>)> = stream::iter(decided)
        .map(|(m, expected, verdict)| async move {
            let saved = ports.messages.save(&m, expected).await;
            (m, verdict, saved)
        })
        .buffer_unordered(MARKS_AT_ONCE)
        .collect()
        .await;
    let mut report = DispatchReport::default();
    let mut won = Vec::new();
    for (m, verdict, saved) in marked {
        match saved {
            Ok(()) => match verdict {
                Verdict::Queue { requeued } => {
                    if requeued {
                        report.requeued += 1;
                    } else {
                        report.queued += 1;
                    }
                    won.push(m);
                }
                Verdict::Defer => report.deferred += 1,
                Verdict::Suppress => report.suppressed += 1,
            },
            Err(StoreError::Conflict(_)) => report.skipped += 1,
            Err(e) => return Err(e.into()),
        }
    }
    if won.is_empty() {
        return Ok(report);
    }
    let outbound: Vec<Outbound> = won
        .iter()
        .map(|m| Outbound {
            envelope: OutboundEnvelope::for_message(m, now),
            delay_seconds: (m.send_at - now).num_seconds().clamp(0, 900) as u32,
        })
        .collect();
    match ports.queue.enqueue(&outbound).await {
        // Not lost: they stay queued in the index and a later run requeues them.
        Ok(failed) => report.failed += failed.len(),
        Err(e) => {
            tracing::warn!(error = %e, count = outbound.len(), "queue send failed; a later run requeues");
            report.failed += outbound.len();
        }
    }
    Ok(report)
}

/// The message as dispatch leaves it, and why; `None` to leave it alone (queued and
/// not yet due for a requeue).
fn decide(
    mut m: Message,
    consent: &HashMap<(DealerId, PhoneNumber), crate::ledger::ConsentState>,
    now: DateTime<Utc>,
) -> Option<(Message, Verdict)> {
    if m.status == MessageStatus::Queued {
        // Queued long ago and never picked up: put it on the queue again.
        if m.index_time().is_none_or(|t| t > now) {
            return None;
        }
        m.transition(
            MessageStatus::Queued,
            now,
            Some("requeued: not picked up".into()),
        );
        return Some((m, Verdict::Queue { requeued: true }));
    }
    if m.needs_consent() {
        let allowed = consent
            .get(&(m.dealer_id.clone(), m.to.clone()))
            .map(|s| s.may_send(m.category))
            .unwrap_or(crate::ledger::Decision::NeverAuthorized);
        if !allowed.is_allowed() {
            m.transition(
                MessageStatus::Suppressed,
                now,
                Some(allowed.reason().into()),
            );
            return Some((m, Verdict::Suppress));
        }
    }
    if m.honours_quiet_hours() {
        let tz = parse_time_zone(m.recipient_time_zone.as_deref());
        let at = m.send_at.max(now);
        let allowed_at = QuietHours::standard().next_allowed(&m.to, tz.as_ref(), m.category, at);
        if allowed_at > at {
            m.send_at = allowed_at;
            m.transition(MessageStatus::Deferred, now, Some("quiet-hours".into()));
            return Some((m, Verdict::Defer));
        }
    }
    m.transition(MessageStatus::Queued, now, None);
    Some((m, Verdict::Queue { requeued: false }))
}

impl DispatchReport {
    /// Adds another shard's or pass's counts.
    pub fn add(&mut self, other: &DispatchReport) {
        self.queued += other.queued;
        self.requeued += other.requeued;
        self.follow_ups += other.follow_ups;
        self.deferred += other.deferred;
        self.suppressed += other.suppressed;
        self.skipped += other.skipped;
        self.failed += other.failed;
    }
}

/// The template an automated-task event sends.
pub fn template_for_event(detail_type: &str) -> Option<&'static str> {
    crate::automation::default_template(detail_type)
}

/// An automated-task send. A refusal by the rules (no consent, bad variables,
/// unknown contact) is recorded as a suppressed message with the reason instead of
/// failing, so the event is not retried in a loop, and raises an item on the
/// dealer's `automation-failures` queue so staff see it. Only infrastructure errors fail.
/// `event_key` is the producer's idempotency key of the event (the same on every retry of
/// it): one send per key and dealer.
pub async fn automated_send(
    ports: &SendPorts<'_>,
    work: &dyn WorkQueue,
    dealer_id: &DealerId,
    event: &str,
    event_key: &str,
    request: SendRequest,
    now: DateTime<Utc>,
) -> Result<SendAccepted, DomainError> {
    // The producer's key, not EventBridge's id: a DMS that retries PutEvents sends the same
    // key under a new event id, and must text once. The origin keeps it as the event's id.
    let event_id = event_key;
    let key = format!("event:{}", truncate(event_id, 200));
    let fingerprint = crate::message::request_fingerprint(key.as_bytes());
    let origin = Origin::Automation {
        event: event.to_owned(),
        event_id: event_id.to_owned(),
    };
    let contact_id = request.contact_id.clone();
    let template_name = request.template.clone();
    match request_send(
        ports,
        dealer_id,
        origin.clone(),
        request,
        Some((key.clone(), fingerprint.clone())),
        now,
    )
    .await
    {
        Ok(accepted) => Ok(accepted),
        Err(DomainError::Store(e)) => Err(DomainError::Store(e)),
        Err(refusal) => {
            let reason = match &refusal {
                DomainError::ConsentRequired { category } => {
                    format!("consent-required: {category}")
                }
                DomainError::OptedOut { .. } => "opted-out".to_owned(),
                other => other.to_string(),
            };
            let contact = ports.contacts.contact(dealer_id, &contact_id).await?;
            let dealer = ports.dealers.dealer(dealer_id).await?;
            let summary = format!("{}: {}", truncate(event, 64), truncate(&reason, 300));
            let failure = |message_id: Option<MessageId>, contact: Option<&Contact>| WorkItem {
                id: crate::ids::new_ulid(),
                dealer_id: dealer_id.clone(),
                queue: WorkQueueName::AutomationFailures,
                kind: "automated-send-refused".into(),
                contact_id: Some(contact_id.clone()),
                phone: contact.map(|c| c.phone.clone()),
                account_id: contact.and_then(|c| c.account_ids.first().cloned()),
                deal_id: None,
                message_id,
                text: Some(summary.clone()),
                created_at: now,
                status: WorkItemStatus::Open,
                handling: Default::default(),
            };
            let (Some(contact), Some(dealer)) = (contact, dealer.as_ref()) else {
                tracing::warn!(dealer = %dealer_id, event_id, reason = %reason, "automated send refused: unknown contact or dealer");
                if dealer.is_some() {
                    work.add_item(&failure(None, None)).await?;
                }
                return Err(refusal);
            };
            let tpl = resolve_template(ports, dealer_id, &template_name).await?;
            let message = Message {
                id: MessageId::generate(),
                dealer_id: dealer_id.clone(),
                kind: MessageKind::Template,
                contact_id: Some(contact.id.clone()),
                to: contact.phone.clone(),
                from: dealer.texting_number.clone(),
                category: tpl
                    .as_ref()
                    .map(Resolved::category)
                    .unwrap_or(crate::Category::Accounting),
                template: Some(template_name),
                template_version: tpl.as_ref().map(Resolved::version),
                body: String::new(),
                variables: None,
                encoding: crate::sms::Encoding::Gsm7,
                segments: 0,
                notes: None,
                origin,
                account_id: contact.account_ids.first().cloned(),
                deal_id: None,
                recipient_time_zone: contact.time_zone.clone(),
                created_at: now,
                requested_at: None,
                send_at: now,
                status: MessageStatus::Suppressed,
                status_reason: Some(reason.clone()),
                history: vec![StatusChange {
                    status: MessageStatus::Suppressed,
                    at: now,
                    reason: Some(reason),
                }],
                carrier_message_id: None,
                attempts: 0,
                code: None,
            };
            let record = IdempotencyRecord {
                dealer_id: dealer_id.clone(),
                key: key.clone(),
                request_hash: fingerprint.clone(),
                message_id: message.id.clone(),
                created_at: now,
            };
            match ports.messages.create(&message, Some(&record)).await {
                Ok(()) => {
                    // Once per event: a redelivered event replays the first message below.
                    work.add_item(&failure(Some(message.id.clone()), Some(&contact)))
                        .await?;
                    Ok(SendAccepted {
                        message,
                        replayed: false,
                    })
                }
                Err(StoreError::Conflict(_)) => replay(ports, dealer_id, &key, &fingerprint, now)
                    .await?
                    .ok_or(DomainError::Conflict(
                        "the idempotent message is missing".into(),
                    )),
                Err(e) => Err(e.into()),
            }
        }
    }
}
