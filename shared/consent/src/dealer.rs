//! A dealer: its texting settings, and the texting numbers the operator provisioned
//! for dealers to text from.

use serde::{Deserialize, Serialize};

use crate::ids::DealerId;
use crate::phone::PhoneNumber;

/// A dealer's texting settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dealer {
    pub id: DealerId,
    pub name: String,
    pub texting_number: PhoneNumber,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help_contact: Option<String>,
    #[serde(
        default,
        with = "crate::zone::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub time_zone: Option<crate::zone::Zone>,
}

/// A texting number the operator provisioned, with the carrier account it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionedNumber {
    pub number: PhoneNumber,
    pub carrier_account: String,
    /// The dealer it was provisioned for: only that dealer may text from it (None: an
    /// item from before numbers named their dealer, which no dealer may take).
    pub dealer: Option<DealerId>,
}
