//! What the carrier is asked for a message: the numbers, the words (an approval code
//! opened into them), where it reports the status, and how far back its own list is
//! searched when the answer to a send is unknown.

use chrono::Duration;

use crate::approval::reveal_in;
use crate::error::DomainError;
use crate::ids::MessageId;
use crate::message::DeliverySnapshot;
use crate::ports::CarrierSend;

use super::ports::DeliverPorts;

/// How far before the claim the carrier's message list is searched for an unknown outcome.
pub const LIST_CLOCK_SKEW: Duration = Duration::seconds(10);
/// Status callback URL for a message (the carrier reports there).
pub fn status_callback(base: &str, id: &MessageId) -> String {
    format!(
        "{}/v1/carrier/twilio/status?messageId={id}",
        base.trim_end_matches('/')
    )
}

/// What the carrier is asked to send (or found to have sent) for a message.
pub(super) fn carrier_send(
    snap: &DeliverySnapshot,
    id: &MessageId,
    body: String,
    public_base_url: Option<&str>,
) -> CarrierSend {
    CarrierSend {
        message_id: id.clone(),
        promotional: snap.category == crate::Category::Marketing,
        from: snap.from.clone(),
        to: snap.to.clone(),
        body,
        status_callback: public_base_url.map(|b| status_callback(b, id)),
    }
}

/// The words the carrier gets: the body, with an approval code text's sealed code
/// opened into it (None when it cannot be opened).
pub(super) async fn text_of(
    ports: &DeliverPorts<'_>,
    id: &MessageId,
    snap: &DeliverySnapshot,
) -> Result<Option<String>, DomainError> {
    let Some(code) = &snap.code else {
        return Ok(Some(snap.body.clone()));
    };
    let key = ports.codes.key().await?;
    let mut opened = key.open(&code.sealed, id.as_str());
    if opened.is_err() {
        // Sealed under a key rotated in after ours was read: the key once more (bounded).
        if let Some(newer) = ports.codes.reread(&key).await {
            opened = newer.open(&code.sealed, id.as_str());
        }
    }
    Ok(opened.ok().and_then(|c| reveal_in(&snap.body, &c)))
}

#[cfg(test)]
mod tests {
    use super::carrier_send;
    use crate::Category;

    #[test]
    fn the_carrier_is_told_our_message_id_and_whether_the_text_is_marketing() {
        let mut m = crate::contract::sample_message();
        for (category, promotional) in [
            (Category::Accounting, false),
            (Category::Service, false),
            (Category::Sales, false),
            (Category::Marketing, true),
        ] {
            m.category = category;
            let send = carrier_send(&m.snapshot(), &m.id, m.body.clone(), None);
            assert_eq!(send.message_id, m.id);
            assert_eq!(send.promotional, promotional, "{category}");
        }
    }
}
