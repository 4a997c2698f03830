//! Dealer ports: a dealer's settings and texting number, the operator's provisioned
//! numbers, and a dealer's automations and own templates.

use async_trait::async_trait;

use crate::automation::Automation;
use crate::dealer::{Dealer, ProvisionedNumber};
use crate::error::StoreResult;
use crate::ids::DealerId;
use crate::phone::PhoneNumber;
use crate::template::DealerTemplate;

#[async_trait]
pub trait DealerStore: Send + Sync {
    async fn dealer(&self, id: &DealerId) -> StoreResult<Option<Dealer>>;
    /// Saves the settings and claims the texting number for this dealer atomically
    /// (`Conflict` when another dealer holds it); releases `previous_number`.
    async fn put_dealer(
        &self,
        dealer: &Dealer,
        previous_number: Option<&PhoneNumber>,
    ) -> StoreResult<()>;
    /// Which dealer texts from this number.
    async fn dealer_by_number(&self, number: &PhoneNumber) -> StoreResult<Option<DealerId>>;
}

/// The operator's allow-list of texting numbers: a dealer can only text from one of them.
#[async_trait]
pub trait NumberDirectory: Send + Sync {
    async fn provisioned(&self, number: &PhoneNumber) -> StoreResult<Option<ProvisionedNumber>>;
}

/// A dealer's automations (`DEALER#d` / `AUTOMATION#<eventType>`).
#[async_trait]
pub trait AutomationStore: Send + Sync {
    async fn automations(&self, dealer: &DealerId) -> StoreResult<Vec<Automation>>;
    async fn automation(
        &self,
        dealer: &DealerId,
        event_type: &str,
    ) -> StoreResult<Option<Automation>>;
    async fn put_automation(&self, dealer: &DealerId, automation: &Automation) -> StoreResult<()>;
}

/// A dealer's own templates (`DEALER#d` / `TEMPLATE#name`).
#[async_trait]
pub trait TemplateStore: Send + Sync {
    /// The dealer's templates, by name.
    async fn dealer_templates(&self, dealer: &DealerId) -> StoreResult<Vec<DealerTemplate>>;
    async fn dealer_template(
        &self,
        dealer: &DealerId,
        name: &str,
    ) -> StoreResult<Option<DealerTemplate>>;
    /// Stores `template` if the stored version is still `previous` (`None`: none stored):
    /// `Conflict` otherwise, so two edits from one read cannot both land.
    async fn put_template(
        &self,
        dealer: &DealerId,
        template: &DealerTemplate,
        previous: Option<u32>,
    ) -> StoreResult<()>;
    /// Deletes the template; false when there was none.
    async fn delete_template(&self, dealer: &DealerId, name: &str) -> StoreResult<bool>;
}
