//! What a send texts: a template rendered with its values, or staff's own words,
//! checked and measured; and the portal's preview of it.

use serde_json::{Map, Value};

use crate::category::Category;
use crate::error::{DomainError, StoreError};
use crate::ids::DealerId;
use crate::message::MessageKind;
use crate::template::{self, Resolved};

use super::ports::SendPorts;
use crate::service::require_dealer;
use crate::service::truncate;

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
pub(super) async fn resolve(
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
pub(super) fn compose(
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
pub(super) async fn resolve_template(
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
