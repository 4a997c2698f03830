//! Categories of text a person can authorize.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a text is about. Consent is given and revoked per category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// Account servicing, payments, Text to Pay.
    Accounting,
    /// Service department: reminders, appointments.
    Service,
    /// Sales conversations about a deal.
    Sales,
    /// Offers and promotions; needs express written consent.
    Marketing,
}

impl Category {
    /// Every category, in a stable order.
    pub const ALL: [Category; 4] = [
        Category::Accounting,
        Category::Service,
        Category::Sales,
        Category::Marketing,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Accounting => "accounting",
            Category::Service => "service",
            Category::Sales => "sales",
            Category::Marketing => "marketing",
        }
    }

    /// Human wording used in texts ("accounting texts").
    pub fn label(self) -> &'static str {
        match self {
            Category::Accounting => "account and payment",
            Category::Service => "service",
            Category::Sales => "sales",
            Category::Marketing => "marketing",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A category name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown category {0:?}: expected one of accounting, service, sales, marketing")]
pub struct UnknownCategory(pub String);

impl FromStr for Category {
    type Err = UnknownCategory;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "accounting" => Ok(Category::Accounting),
            "service" => Ok(Category::Service),
            "sales" => Ok(Category::Sales),
            "marketing" => Ok(Category::Marketing),
            _ => Err(UnknownCategory(s.chars().take(40).collect())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_category_case_insensitively() {
        for c in Category::ALL {
            assert_eq!(c.as_str().to_uppercase().parse::<Category>(), Ok(c));
        }
    }

    #[test]
    fn rejects_unknown_names() {
        assert!("billing".parse::<Category>().is_err());
        assert!("".parse::<Category>().is_err());
    }
}
