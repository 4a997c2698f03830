//! A dealer's settings, which a dealer admin keeps: the dealer itself (its name, texting
//! number, help contact and time zone), its own templates (versioned; the built-ins are
//! read-only) and which template each DMS event sends.

use chrono::{DateTime, Utc};

use crate::automation::{self, Automation, EffectiveAutomation};
use crate::category::Category;
use crate::contact::DealerLabel;
use crate::error::{DomainError, StoreError};
use crate::ids::{DealerId, StaffUserId};
use crate::phone::PhoneNumber;
use crate::ports::{AutomationStore, Dealer, DealerStore, NumberDirectory, TemplateStore};
use crate::template::{self, DealerTemplate, PlaceholderKind};

use super::{require_dealer, truncate, Written};

/// The ports the settings use cases need.
pub struct SettingsPorts<'a> {
    pub dealers: &'a dyn DealerStore,
    /// The operator's texting numbers: a dealer picks one provisioned for it.
    pub numbers: &'a dyn NumberDirectory,
    pub templates: &'a dyn TemplateStore,
    pub automations: &'a dyn AutomationStore,
    /// Texting numbers handed to dealers on first use (empty in production).
    pub number_pool: &'a [PhoneNumber],
}

/// What a dealer admin sends for the dealer (`PUT /v1/dealer`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DealerInput {
    pub name: String,
    /// `None` keeps the dealer's number (or hands it one from the pool, the first time).
    pub texting_number: Option<String>,
    pub help_contact: Option<String>,
    pub time_zone: Option<String>,
}

/// Creates or changes the dealer. The texting number decides whose replies and STOPs
/// reach this dealer, so a change of number takes one the operator provisioned for this
/// dealer (or one of the pool), and one another dealer texts from is refused.
pub async fn put_dealer(
    ports: &SettingsPorts<'_>,
    dealer_id: &DealerId,
    input: DealerInput,
) -> Result<Dealer, DomainError> {
    let name = DealerLabel::parse("name", &input.name)?.into_inner();
    let time_zone = super::parse_zone("timeZone", input.time_zone.as_deref())?;
    let help_contact = input
        .help_contact
        .as_deref()
        .map(|h| DealerLabel::parse("helpContact", h).map(DealerLabel::into_inner))
        .transpose()?;
    let existing = ports.dealers.dealer(dealer_id).await?;
    let texting_number = match (&input.texting_number, &existing) {
        (Some(n), _) => PhoneNumber::parse(n)
            .map_err(|e| DomainError::Invalid(format!("textingNumber: {e}")))?,
        (None, Some(d)) => d.texting_number.clone(),
        (None, None) => {
            require_dealer(ports.dealers, dealer_id, ports.number_pool)
                .await?
                .texting_number
        }
    };
    let changes_number = existing
        .as_ref()
        .is_none_or(|d| d.texting_number != texting_number);
    // Only a number the operator provisioned for this dealer: one given up by another
    // dealer, or provisioned for a dealer who has not signed up, is refused the same way
    // as a number never provisioned (the answer tells nothing of other dealers).
    if changes_number
        && !ports.number_pool.contains(&texting_number)
        && ports
            .numbers
            .provisioned(&texting_number)
            .await?
            .is_none_or(|p| p.dealer.as_ref() != Some(dealer_id))
    {
        return Err(DomainError::NumberNotProvisioned {
            number: texting_number,
        });
    }
    let dealer = Dealer {
        id: dealer_id.clone(),
        name,
        texting_number,
        help_contact,
        time_zone,
    };
    match ports
        .dealers
        .put_dealer(&dealer, existing.as_ref().map(|d| &d.texting_number))
        .await
    {
        Ok(()) => Ok(dealer),
        Err(StoreError::Conflict(_)) => Err(DomainError::NumberTaken),
        Err(e) => Err(e.into()),
    }
}

/// What a dealer admin sends for one of the dealer's templates (`PUT /v1/templates/{name}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateInput {
    /// The name shown in the portal (the template's name when absent).
    pub title: Option<String>,
    pub category: String,
    pub body: String,
    pub placeholder_types: std::collections::BTreeMap<String, PlaceholderKind>,
}

/// A built-in template's name cannot be taken by a dealer's own.
fn refuse_built_in(name: &str) -> Result<(), DomainError> {
    if template::find(name).is_some() {
        return Err(DomainError::Conflict(format!(
            "{:?} is a built-in template, which is read-only; choose another name",
            truncate(name, 60)
        )));
    }
    Ok(())
}

/// Creates or changes one of the dealer's own templates: each write is a new version, and
/// a write that raced another one on the same version is refused (read it and try again).
pub async fn put_template(
    ports: &SettingsPorts<'_>,
    dealer_id: &DealerId,
    name: &str,
    input: TemplateInput,
    by: &StaffUserId,
    now: DateTime<Utc>,
) -> Result<(DealerTemplate, Written), DomainError> {
    refuse_built_in(name)?;
    let category: Category = input
        .category
        .parse()
        .map_err(|e: crate::category::UnknownCategory| DomainError::Invalid(e.to_string()))?;
    let previous = ports.templates.dealer_template(dealer_id, name).await?;
    let template = DealerTemplate {
        title: input.title.unwrap_or_else(|| name.to_owned()),
        name: name.to_owned(),
        category,
        body: input.body,
        placeholder_types: input.placeholder_types,
        version: previous.as_ref().map_or(1, |p| p.version + 1),
        updated_at: now,
        updated_by: by.as_str().to_owned(),
    };
    template.check().map_err(DomainError::Invalid)?;
    match ports
        .templates
        .put_template(dealer_id, &template, previous.as_ref().map(|p| p.version))
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(DomainError::Conflict(
                "the template was changed by someone else at the same time; read it and try again"
                    .into(),
            ))
        }
        Err(e) => return Err(e.into()),
    }
    let written = if previous.is_some() {
        Written::Replaced
    } else {
        Written::Created
    };
    Ok((template, written))
}

/// Deletes one of the dealer's own templates (a built-in cannot be deleted).
pub async fn delete_template(
    ports: &SettingsPorts<'_>,
    dealer_id: &DealerId,
    name: &str,
) -> Result<(), DomainError> {
    refuse_built_in(name)?;
    if ports.templates.delete_template(dealer_id, name).await? {
        Ok(())
    } else {
        Err(DomainError::NotFound { what: "template" })
    }
}

/// The dealer's effective automations: every default and every setting.
pub async fn automations(
    ports: &SettingsPorts<'_>,
    dealer_id: &DealerId,
) -> Result<Vec<EffectiveAutomation>, DomainError> {
    let settings = ports.automations.automations(dealer_id).await?;
    Ok(automation::effective(&settings))
}

/// Sets which template an event type sends for the dealer, or turns it off. The event type
/// must be one the bus routes, and the template a built-in or one of the dealer's.
pub async fn put_automation(
    ports: &SettingsPorts<'_>,
    dealer_id: &DealerId,
    event_type: &str,
    template_name: String,
    enabled: bool,
    by: &StaffUserId,
    now: DateTime<Utc>,
) -> Result<EffectiveAutomation, DomainError> {
    automation::check_event_type(event_type).map_err(DomainError::Invalid)?;
    let exists = template::find(&template_name).is_some()
        || ports
            .templates
            .dealer_template(dealer_id, &template_name)
            .await?
            .is_some();
    if !exists {
        return Err(DomainError::Invalid(format!(
            "template {:?} is neither a built-in nor one of the dealer's",
            truncate(&template_name, 60)
        )));
    }
    let setting = Automation {
        event_type: event_type.to_owned(),
        template: template_name,
        enabled,
        updated_at: now,
        updated_by: by.as_str().to_owned(),
    };
    ports
        .automations
        .put_automation(dealer_id, &setting)
        .await?;
    Ok(EffectiveAutomation::of(&setting))
}
