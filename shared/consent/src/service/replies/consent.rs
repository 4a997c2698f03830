//! Consent replies: STOP revokes, START restores, Agree grants what a live request
//! asked. Each change is written with the reply's acted mark, so a redelivered reply
//! finds what it did and answers as it did the first time.

use chrono::{DateTime, Utc};

use crate::answers;
use crate::category::Category;
use crate::error::{DomainError, StoreError};
use crate::ledger::{Actor, ConsentEvent, ConsentState, LedgerEntry};
use crate::message::{MessageKind, MessageStatus, StatusReason};
use crate::phone::PhoneNumber;
use crate::ports::{CarrierError, Dealer, MessageStore, PendingKey};
use crate::reply::{agree_scope, AgreeScope, Language};
use crate::service::update_consent_acting;

use super::answer::reply;
use super::inbound::{InboundPorts, InboundSms, ReplyOutcome};

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

pub(super) async fn agree(
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
    let granted = change_by_reply(ports, dealer, sms, &consumed, |_| {
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
    })
    .await?;
    let Some(categories) = granted else {
        return Ok(None);
    };
    Ok(Some(
        agreed(ports, dealer, sms, categories, language, now).await?,
    ))
}

/// Writes the consent change `decide` makes, with this reply's acted mark and the
/// pending requests it consumes, and says what it changed: the categories of the mark
/// just written (a repeated STOP is written but changes none), or, when an earlier or
/// concurrent delivery of the same reply wrote first, those of its mark. `None`: nothing
/// written.
async fn change_by_reply<F>(
    ports: &InboundPorts<'_>,
    dealer: &Dealer,
    sms: &InboundSms,
    consumed: &[PendingKey],
    decide: F,
) -> Result<Option<Vec<Category>>, DomainError>
where
    F: FnMut(&ConsentState) -> Vec<LedgerEntry>,
{
    let written = update_consent_acting(
        ports.consent,
        ports.consent_writer,
        &dealer.id,
        &sms.from,
        consumed,
        &sms.carrier_message_id,
        decide,
    )
    .await;
    match written {
        Ok((entries, mark)) if !entries.is_empty() => Ok(Some(mark.categories)),
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
pub(super) async fn agreed(
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
pub(super) async fn opt_out(
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
    // A redelivery (or a concurrent delivery) of this STOP finds its own mark: what it
    // revoked decides the one confirmation, as it did the first time.
    let revoked = change_by_reply(ports, dealer, sms, &consumed, |state| {
        state
            .categories_a_stop_revokes(now)
            .into_iter()
            .map(|c| by_reply(dealer, sms, c, ConsentEvent::RevokedByReply, now, None))
            .collect()
    })
    .await?
    .unwrap_or_default();
    // The carrier now refuses texts from this number to the person until START, whoever
    // owns the number then: the block is kept with the pair of numbers.
    ports
        .consent_writer
        .set_opted_out(&sms.to, &sms.from, true, now)
        .await?;
    let suppressed = suppress_waiting(
        ports.messages,
        dealer,
        &sms.from,
        StatusReason::OptedOut,
        now,
    )
    .await?;
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
    reason: StatusReason,
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
        m.transition(MessageStatus::Suppressed, now, Some(reason.clone()));
        match messages.save(&m, expected).await {
            Ok(()) => count += 1,
            // It moved on meanwhile (deliver claimed it): deliver's own re-check decides.
            Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(count)
}

/// The person said START to the number: off its carrier's opt-out list first (a lift
/// that could not be made now leaves the reply to be acted on again, nothing recorded yet;
/// lifting twice is harmless), then off ours. A carrier that refuses to lift (End User
/// Messaging lifts a number once in 30 days) does not stop the START: it is on the ledger,
/// and the carrier's refusals of later texts are recorded as its blocks.
pub(super) async fn lift_blocks(
    ports: &InboundPorts<'_>,
    sms: &InboundSms,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    match ports.opt_outs.lift(&sms.to, &sms.from).await {
        Ok(()) => {}
        Err(e @ CarrierError::Permanent { .. }) => {
            tracing::warn!(to = %sms.to.redacted(), error = %e, "the carrier refused to lift its opt-out; the START is recorded all the same");
        }
        Err(e) => return Err(StoreError::unavailable("the carrier's opt-out list", e).into()),
    }
    ports
        .consent_writer
        .set_opted_out(&sms.to, &sms.from, false, now)
        .await?;
    Ok(())
}

pub(super) async fn opt_in(
    ports: &InboundPorts<'_>,
    dealer: &Dealer,
    sms: &InboundSms,
    language: Language,
    now: DateTime<Utc>,
) -> Result<Option<ReplyOutcome>, DomainError> {
    // A START the person texted before a STOP already acted on (a carrier that keeps no
    // order delivers it late) is past: the STOP stands, on the carrier's list as on ours.
    let state = ports.consent.consent(&dealer.id, &sms.from).await?.value;
    if state.stopped_after(now) {
        return Ok(None);
    }
    // START lifts the carrier's block of this number for the person, whatever it restores.
    lift_blocks(ports, sms, now).await?;
    let restored = change_by_reply(ports, dealer, sms, &[], |state| {
        state
            .categories_to_restore()
            .into_iter()
            // Never a STOP the person texted after this START, written since the read
            // above: `now` is when they texted.
            .filter(|c| state.get(*c).since.is_none_or(|since| since <= now))
            .map(|c| by_reply(dealer, sms, c, ConsentEvent::RestoredByStart, now, None))
            .collect()
    })
    .await?;
    let Some(categories) = restored else {
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
