//! Text to Pay: PAY answers a recent payment reminder with a "reply CONFIRM" text, and
//! CONFIRM answers that with one payment event per request.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::category::Category;
use crate::error::DomainError;
use crate::ids::MessageId;
use crate::message::{Message, MessageKind, MessageStatus};
use crate::phone::PhoneNumber;
use crate::ports::{BusEvent, Dealer};
use crate::service::system_message;

use super::answer::{answer, reply};
use super::inbound::{InboundPorts, InboundSms, ReplyOutcome, EVENT_SOURCE};

/// Template name of the Text to Pay reminder a PAY answers.
pub const TEXT_TO_PAY_TEMPLATE: &str = "text-to-pay-reminder";
/// Marker on the "reply CONFIRM" text that a CONFIRM answers.
pub const PAY_CONFIRM_MARKER: &str = "text-to-pay-confirm-request";
/// Event published when a person confirms a Text to Pay payment.
pub const TEXT_TO_PAY_CONFIRMED: &str = "TextToPayConfirmed";

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

pub(super) async fn pay(
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
    let mut message = system_message(
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

pub(super) async fn confirm(
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
