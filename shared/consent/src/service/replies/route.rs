//! Routing a reply: the number it was sent to names the dealer (or none), its words
//! name what it asks, and it is acted on exactly once per carrier message id.

use chrono::{DateTime, Utc};

use crate::error::DomainError;
use crate::ports::{Dealer, InboundText};
use crate::reply::{classify_reply, Classified, ReplyKind};

use super::answer::{help_text, reply};
use super::consent::{agree, agreed, lift_blocks, opt_in, opt_out};
use super::inbound::{InboundPorts, InboundSms, ReplyOutcome};
use super::pay::{confirm, pay};
use super::staff::to_staff;

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
            lift_blocks(ports, sms, now).await?;
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
