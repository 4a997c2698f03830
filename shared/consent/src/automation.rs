//! Automations: which template a DMS event sends, per dealer.
//!
//! Every dealer starts with the built-in mapping ([`DEFAULTS`]); a dealer admin
//! replaces an event type's template or turns it off. An event type with neither a
//! dealer setting nor a default sends nothing.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The built-in mapping, used where the dealer has not set one.
pub const DEFAULTS: [(&str, &str); 6] = [
    ("AutoPayFailed", "auto-pay-failure"),
    ("PaymentPastDue", "past-due-alert"),
    ("PaymentReceived", "payment-received"),
    ("TextToPayReminder", "text-to-pay-reminder"),
    ("ServiceDue", "service-reminder"),
    ("AppointmentBooked", "appointment-confirmation"),
];

/// A dealer's setting for one event type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Automation {
    pub event_type: String,
    pub template: String,
    pub enabled: bool,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

/// The built-in template for an event type.
pub fn default_template(event_type: &str) -> Option<&'static str> {
    DEFAULTS
        .iter()
        .find(|(e, _)| *e == event_type)
        .map(|(_, t)| *t)
}

/// An event type a dealer can map: one the bus routes to the automation queue. The
/// template's `AutomationRule` lists exactly the event types of [`DEFAULTS`] (a test holds
/// them together), so a setting for any other type would never fire: it is refused.
pub fn check_event_type(event_type: &str) -> Result<(), String> {
    if DEFAULTS.iter().any(|(e, _)| *e == event_type) {
        return Ok(());
    }
    let routed: Vec<&str> = DEFAULTS.iter().map(|(e, _)| *e).collect();
    Err(format!(
        "not an event the bus routes to automations (those are {})",
        routed.join(", ")
    ))
}

/// What an event sends for a dealer: their setting, else the default. `None`: nothing
/// (no mapping, or the dealer turned it off).
pub fn template_for<'a>(event_type: &str, setting: Option<&'a Automation>) -> Option<&'a str> {
    match setting {
        Some(a) if a.enabled => Some(a.template.as_str()),
        Some(_) => None,
        None => default_template(event_type),
    }
}

/// What one event type sends for a dealer, as the portal lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EffectiveAutomation {
    pub event_type: String,
    pub template: String,
    pub enabled: bool,
    /// The built-in mapping, not a setting of the dealer.
    pub default: bool,
}

impl EffectiveAutomation {
    /// A dealer's own setting.
    pub fn of(setting: &Automation) -> Self {
        Self {
            event_type: setting.event_type.clone(),
            template: setting.template.clone(),
            enabled: setting.enabled,
            default: false,
        }
    }
}

/// The dealer's effective mapping: every default and every setting, by event type.
pub fn effective(settings: &[Automation]) -> Vec<EffectiveAutomation> {
    let mut out: Vec<EffectiveAutomation> = DEFAULTS
        .iter()
        .map(|(e, t)| {
            settings
                .iter()
                .find(|a| a.event_type == *e)
                .map(EffectiveAutomation::of)
                .unwrap_or(EffectiveAutomation {
                    event_type: (*e).to_owned(),
                    template: (*t).to_owned(),
                    enabled: true,
                    default: true,
                })
        })
        .collect();
    out.extend(
        settings
            .iter()
            .filter(|a| default_template(&a.event_type).is_none())
            .map(EffectiveAutomation::of),
    );
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn setting(event: &str, template: &str, enabled: bool) -> Automation {
        Automation {
            event_type: event.into(),
            template: template.into(),
            enabled,
            updated_at: Utc.with_ymd_and_hms(2026, 6, 10, 16, 0, 0).unwrap(),
            updated_by: "admin-1".into(),
        }
    }

    #[test]
    fn a_setting_replaces_or_turns_off_the_default() {
        assert_eq!(
            template_for("AutoPayFailed", None),
            Some("auto-pay-failure")
        );
        let own = setting("AutoPayFailed", "my-autopay", true);
        assert_eq!(
            template_for("AutoPayFailed", Some(&own)),
            Some("my-autopay")
        );
        let off = setting("AutoPayFailed", "auto-pay-failure", false);
        assert_eq!(template_for("AutoPayFailed", Some(&off)), None);
        assert_eq!(template_for("VehicleSold", None), None);
    }

    #[test]
    fn the_effective_list_has_every_default_and_every_setting_once() {
        let list = effective(&[
            setting("ServiceDue", "my-service", true),
            setting("VehicleSold", "thank-you", true),
        ]);
        assert_eq!(list.len(), DEFAULTS.len() + 1);
        let has = |event: &str, template: &str, default: bool| {
            list.contains(&EffectiveAutomation {
                event_type: event.into(),
                template: template.into(),
                enabled: true,
                default,
            })
        };
        assert!(has("ServiceDue", "my-service", false));
        assert!(has("VehicleSold", "thank-you", false));
        assert!(has("AutoPayFailed", "auto-pay-failure", true));
    }

    #[test]
    fn event_types_are_the_ones_the_bus_routes() {
        assert!(check_event_type("AutoPayFailed").is_ok());
        for bad in [
            "",
            "9Lives",
            "Auto Pay",
            "a-b",
            &"A".repeat(65),
            "VehicleSold",
        ] {
            assert!(check_event_type(bad).is_err(), "{bad}");
        }
    }
}
