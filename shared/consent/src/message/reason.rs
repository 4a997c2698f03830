//! Why a message is in its status, in the words stored with it.

use serde::{Deserialize, Serialize};

use crate::category::Category;
use crate::ledger::{ConsentEvent, Decision};

/// Why a message is in its status: kept as its status reason and in its history, in
/// the words below (the stored form; a message stores the string, so what was stored
/// before this type reads back the same). Reasons from outside (a carrier's refusal, a
/// rule's message, a gate's limit) are kept as they come: [`StatusReason::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", from = "String")]
pub enum StatusReason {
    /// `quiet-hours`: waits for the recipient's allowed hours.
    QuietHours,
    /// `frequency-cap`: the recipient's state caps the category per 24 hours and the cap
    /// is reached.
    FrequencyCap,
    /// `queue-unavailable`: the queue refused it at acceptance; dispatch queues it.
    QueueUnavailable,
    /// `requeued: not picked up`: queued long ago and put on the queue again.
    NotPickedUp,
    /// `canceled by staff`.
    CanceledByStaff,
    /// `not-authorized`: no consent for the category ever given.
    NotAuthorized,
    /// `revoked`: consent for the category taken back by staff in the portal.
    Revoked,
    /// `revoked-by-reply`: the person replied STOP.
    RevokedByReply,
    /// `revoked-by-carrier`: the carrier reported the number blocks the dealer.
    RevokedByCarrier,
    /// `opted-out`: the person opted out of the dealer's number.
    OptedOut,
    /// `consent-required: <category>`: an automated send the rules refused for consent.
    ConsentRequired(Category),
    /// `contact-deleted`: the contact went before its text did.
    ContactDeleted,
    /// `number-changed`: the dealer's texting number changed and no number can take it.
    NumberChanged,
    /// `brand-daily-cap`: the dealer's brand spent its segments of the carrier's day.
    BrandDailyCap,
    /// `approval code unreadable`: the sealed code could not be opened.
    CodeUnreadable,
    /// `retrying: limits unreadable`: the carrier's limits could not be read.
    LimitsUnreadable,
    /// `waiting: the number's sending rate`.
    NumberRate,
    /// `waiting: carrier busy`: the carrier answered 429.
    CarrierBusy,
    /// `retrying: <reason>`: a retryable carrier failure, tried again.
    CarrierRetrying(String),
    /// `carrier temporarily unavailable: <reason>`: retryable failures, too many.
    CarrierUnavailable(String),
    /// `carrier-opt-out (<code>)`: the carrier refused the text, the person blocks us.
    CarrierOptOut(u32),
    /// `carrier error <code>`: an error code on a carrier status callback.
    CarrierError(u32),
    /// `delivery interrupted; the approval code is unreadable`.
    InterruptedCodeUnreadable,
    /// `delivery interrupted; the carrier may not have it`.
    InterruptedCarrierUnsure,
    /// `resuming: the carrier does not have it`: a stale claim released.
    CarrierLacksIt,
    /// `not delivered after repeated attempts (dead-lettered)`.
    DeadLettered,
    /// Any other words, kept as given.
    Other(String),
}

impl StatusReason {
    /// The stored words of a reason without a value, `None` for the others.
    fn fixed(&self) -> Option<&'static str> {
        Some(match self {
            StatusReason::QuietHours => "quiet-hours",
            StatusReason::FrequencyCap => "frequency-cap",
            StatusReason::QueueUnavailable => "queue-unavailable",
            StatusReason::NotPickedUp => "requeued: not picked up",
            StatusReason::CanceledByStaff => "canceled by staff",
            StatusReason::NotAuthorized => "not-authorized",
            StatusReason::Revoked => "revoked",
            StatusReason::RevokedByReply => "revoked-by-reply",
            StatusReason::RevokedByCarrier => "revoked-by-carrier",
            StatusReason::OptedOut => "opted-out",
            StatusReason::ContactDeleted => "contact-deleted",
            StatusReason::NumberChanged => "number-changed",
            StatusReason::BrandDailyCap => "brand-daily-cap",
            StatusReason::CodeUnreadable => "approval code unreadable",
            StatusReason::LimitsUnreadable => "retrying: limits unreadable",
            StatusReason::NumberRate => "waiting: the number's sending rate",
            StatusReason::CarrierBusy => "waiting: carrier busy",
            StatusReason::InterruptedCodeUnreadable => {
                "delivery interrupted; the approval code is unreadable"
            }
            StatusReason::InterruptedCarrierUnsure => {
                "delivery interrupted; the carrier may not have it"
            }
            StatusReason::CarrierLacksIt => "resuming: the carrier does not have it",
            StatusReason::DeadLettered => "not delivered after repeated attempts (dead-lettered)",
            StatusReason::ConsentRequired(_)
            | StatusReason::CarrierRetrying(_)
            | StatusReason::CarrierUnavailable(_)
            | StatusReason::CarrierOptOut(_)
            | StatusReason::CarrierError(_)
            | StatusReason::Other(_) => return None,
        })
    }

    /// Every reason without a value (to read stored words back).
    const FIXED: [StatusReason; 21] = [
        StatusReason::QuietHours,
        StatusReason::FrequencyCap,
        StatusReason::QueueUnavailable,
        StatusReason::NotPickedUp,
        StatusReason::CanceledByStaff,
        StatusReason::NotAuthorized,
        StatusReason::Revoked,
        StatusReason::RevokedByReply,
        StatusReason::RevokedByCarrier,
        StatusReason::OptedOut,
        StatusReason::ContactDeleted,
        StatusReason::NumberChanged,
        StatusReason::BrandDailyCap,
        StatusReason::CodeUnreadable,
        StatusReason::LimitsUnreadable,
        StatusReason::NumberRate,
        StatusReason::CarrierBusy,
        StatusReason::InterruptedCodeUnreadable,
        StatusReason::InterruptedCarrierUnsure,
        StatusReason::CarrierLacksIt,
        StatusReason::DeadLettered,
    ];

    /// The reason stored words stand for: one of ours when they are exactly its words,
    /// else [`StatusReason::Other`]. Writing the result gives back the same words.
    pub fn parse(s: &str) -> StatusReason {
        if let Some(fixed) = Self::FIXED.iter().find(|r| r.fixed() == Some(s)) {
            return fixed.clone();
        }
        let valued = if let Some(c) = s.strip_prefix("consent-required: ") {
            c.parse().ok().map(StatusReason::ConsentRequired)
        } else if let Some(r) = s.strip_prefix("retrying: ") {
            Some(StatusReason::CarrierRetrying(r.to_owned()))
        } else if let Some(r) = s.strip_prefix("carrier temporarily unavailable: ") {
            Some(StatusReason::CarrierUnavailable(r.to_owned()))
        } else if let Some(code) = s
            .strip_prefix("carrier-opt-out (")
            .and_then(|r| r.strip_suffix(')'))
        {
            code.parse().ok().map(StatusReason::CarrierOptOut)
        } else if let Some(code) = s.strip_prefix("carrier error ") {
            code.parse().ok().map(StatusReason::CarrierError)
        } else {
            None
        };
        // Only words it writes the same way ("carrier error 07" stays as it came).
        match valued {
            Some(r) if r.to_string() == s => r,
            _ => StatusReason::Other(s.to_owned()),
        }
    }
}

impl std::fmt::Display for StatusReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StatusReason::ConsentRequired(c) => write!(f, "consent-required: {c}"),
            StatusReason::CarrierRetrying(r) => write!(f, "retrying: {r}"),
            StatusReason::CarrierUnavailable(r) => {
                write!(f, "carrier temporarily unavailable: {r}")
            }
            StatusReason::CarrierOptOut(code) => write!(f, "carrier-opt-out ({code})"),
            StatusReason::CarrierError(code) => write!(f, "carrier error {code}"),
            StatusReason::Other(words) => f.write_str(words),
            fixed => f.write_str(fixed.fixed().unwrap_or_default()),
        }
    }
}

impl std::str::FromStr for StatusReason {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(StatusReason::parse(s))
    }
}

impl From<String> for StatusReason {
    fn from(s: String) -> Self {
        StatusReason::parse(&s)
    }
}

impl From<&str> for StatusReason {
    fn from(s: &str) -> Self {
        StatusReason::parse(s)
    }
}

impl From<StatusReason> for String {
    fn from(r: StatusReason) -> Self {
        r.to_string()
    }
}

impl StatusReason {
    /// Why consent refuses a text; `None` when it allows it.
    pub fn refusing(decision: Decision) -> Option<StatusReason> {
        Some(match decision {
            Decision::Allowed => return None,
            Decision::NeverAuthorized => StatusReason::NotAuthorized,
            Decision::Revoked {
                by: ConsentEvent::RevokedByReply,
                ..
            } => StatusReason::RevokedByReply,
            Decision::Revoked {
                by: ConsentEvent::RevokedByCarrier,
                ..
            } => StatusReason::RevokedByCarrier,
            Decision::Revoked { .. } => StatusReason::Revoked,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::ConsentEvent;
    use chrono::{DateTime, Utc};

    /// Every reason with the words it is stored as (the words stored before the type).
    fn every_reason() -> Vec<(StatusReason, &'static str)> {
        vec![
            (StatusReason::QuietHours, "quiet-hours"),
            (StatusReason::FrequencyCap, "frequency-cap"),
            (StatusReason::QueueUnavailable, "queue-unavailable"),
            (StatusReason::NotPickedUp, "requeued: not picked up"),
            (StatusReason::CanceledByStaff, "canceled by staff"),
            (StatusReason::NotAuthorized, "not-authorized"),
            (StatusReason::Revoked, "revoked"),
            (StatusReason::RevokedByReply, "revoked-by-reply"),
            (StatusReason::RevokedByCarrier, "revoked-by-carrier"),
            (StatusReason::OptedOut, "opted-out"),
            (
                StatusReason::ConsentRequired(Category::Marketing),
                "consent-required: marketing",
            ),
            (StatusReason::ContactDeleted, "contact-deleted"),
            (StatusReason::NumberChanged, "number-changed"),
            (StatusReason::CodeUnreadable, "approval code unreadable"),
            (
                StatusReason::LimitsUnreadable,
                "retrying: limits unreadable",
            ),
            (
                StatusReason::NumberRate,
                "waiting: the number's sending rate",
            ),
            (StatusReason::CarrierBusy, "waiting: carrier busy"),
            (
                StatusReason::CarrierRetrying("HTTP 500".into()),
                "retrying: HTTP 500",
            ),
            (
                StatusReason::CarrierUnavailable("HTTP 503".into()),
                "carrier temporarily unavailable: HTTP 503",
            ),
            (
                StatusReason::CarrierOptOut(21610),
                "carrier-opt-out (21610)",
            ),
            (StatusReason::CarrierError(30007), "carrier error 30007"),
            (
                StatusReason::InterruptedCodeUnreadable,
                "delivery interrupted; the approval code is unreadable",
            ),
            (
                StatusReason::InterruptedCarrierUnsure,
                "delivery interrupted; the carrier may not have it",
            ),
            (
                StatusReason::CarrierLacksIt,
                "resuming: the carrier does not have it",
            ),
            (
                StatusReason::DeadLettered,
                "not delivered after repeated attempts (dead-lettered)",
            ),
            (StatusReason::BrandDailyCap, "brand-daily-cap"),
            (
                StatusReason::Other("carrier said no".into()),
                "carrier said no",
            ),
        ]
    }

    #[test]
    fn every_reason_is_written_as_it_was_stored_and_read_back_as_itself() {
        for (reason, words) in every_reason() {
            // GIVEN a reason WHEN written THEN its stored words
            assert_eq!(reason.to_string(), words);
            assert_eq!(String::from(reason.clone()), words);
            // WHEN the words are read back THEN the same reason
            assert_eq!(words.parse::<StatusReason>(), Ok(reason.clone()));
            // AND serialized, it is the bare string
            let json = serde_json::to_value(&reason).unwrap();
            assert_eq!(json, serde_json::Value::String(words.to_owned()));
            assert_eq!(
                serde_json::from_value::<StatusReason>(json).unwrap(),
                reason
            );
        }
    }

    #[test]
    fn every_fixed_reason_is_read_back() {
        for reason in StatusReason::FIXED {
            let words = reason.fixed().unwrap();
            assert_eq!(StatusReason::parse(words), reason);
        }
    }

    #[test]
    fn words_from_outside_are_kept_as_they_came() {
        for words in [
            "",
            "carrier refused the message (code Some(30007)): HTTP 400",
            "carrier error 07",
            "carrier error",
            "carrier-opt-out (x)",
            "consent-required: Marketing",
            "consent-required: weather",
            "unknown template \"x\"",
        ] {
            let reason = StatusReason::parse(words);
            assert_eq!(reason, StatusReason::Other(words.to_owned()), "{words}");
            assert_eq!(reason.to_string(), words);
        }
    }

    #[test]
    fn a_consent_refusal_is_written_in_the_decisions_words() {
        let since = DateTime::<Utc>::UNIX_EPOCH;
        for (decision, reason) in [
            (Decision::NeverAuthorized, StatusReason::NotAuthorized),
            (
                Decision::Revoked {
                    by: ConsentEvent::RevokedByReply,
                    since,
                },
                StatusReason::RevokedByReply,
            ),
            (
                Decision::Revoked {
                    by: ConsentEvent::RevokedByCarrier,
                    since,
                },
                StatusReason::RevokedByCarrier,
            ),
            (
                Decision::Revoked {
                    by: ConsentEvent::RevokedByPortal,
                    since,
                },
                StatusReason::Revoked,
            ),
        ] {
            assert_eq!(StatusReason::refusing(decision), Some(reason));
        }
    }
}
