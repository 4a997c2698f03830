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

/// The carrier a texting number is on: every text from it goes through that carrier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CarrierKind {
    /// A Twilio-compatible REST API (what every number was on before there were two).
    #[default]
    Twilio,
    /// AWS End User Messaging SMS (`pinpoint-sms-voice-v2`).
    EndUserMessaging,
}

impl CarrierKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CarrierKind::Twilio => "twilio",
            CarrierKind::EndUserMessaging => "end-user-messaging",
        }
    }

    /// The stored name; `None` for a name no carrier has.
    pub fn parse(name: &str) -> Option<CarrierKind> {
        [CarrierKind::Twilio, CarrierKind::EndUserMessaging]
            .into_iter()
            .find(|k| k.as_str() == name)
    }
}

/// A texting number the operator provisioned, with the carrier it is on and the carrier
/// account it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionedNumber {
    pub number: PhoneNumber,
    /// Absent on the items of before: Twilio.
    #[serde(default)]
    pub carrier: CarrierKind,
    pub carrier_account: String,
    /// The dealer it was provisioned for: only that dealer may text from it (None: an
    /// item from before numbers named their dealer, which no dealer may take).
    pub dealer: Option<DealerId>,
    /// The carrier's opt-out list the number is on (End User Messaging's; None: the
    /// carrier's default, or a carrier without lists).
    #[serde(default)]
    pub opt_out_list: Option<String>,
}
