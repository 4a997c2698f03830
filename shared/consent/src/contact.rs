//! Contacts: the people on accounts and deals, with the cell number they are texted on,
//! and what people type about a contact or a dealer, parsed once at the edge: names and
//! labels, and the accounts and deals a contact is on.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::ids::{AccountId, ContactId, DealId, DealerId};
use crate::phone::PhoneNumber;

/// A person on accounts and deals, with the cell number they are texted on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    pub id: ContactId,
    pub dealer_id: DealerId,
    pub name: String,
    pub phone: PhoneNumber,
    #[serde(default)]
    pub account_ids: Vec<AccountId>,
    #[serde(default)]
    pub deal_ids: Vec<DealId>,
    #[serde(
        default,
        with = "crate::zone::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub time_zone: Option<crate::zone::Zone>,
    pub updated_at: DateTime<Utc>,
}

/// At most this many accounts and deals per contact: each is a link item written in the
/// contact's one transaction (DynamoDB takes 100 items per transaction, and an edit also
/// deletes the links it drops).
pub const MAX_LINKS: usize = 45;

// An edit that drops every old link and adds as many new ones, with the contact itself,
// fits in one transaction.
const _: () = assert!(2 * MAX_LINKS < 100);

/// A name or label people type: trimmed, 1 to `MAX` characters, none of them control
/// characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label<const MAX: usize>(String);

/// A contact's name.
pub type ContactName = Label<200>;
/// A dealer's name, or its help contact.
pub type DealerLabel = Label<100>;

impl<const MAX: usize> Label<MAX> {
    /// `field` names the input in the error.
    pub fn parse(field: &str, value: &str) -> Result<Self, DomainError> {
        let v = value.trim();
        if v.is_empty() || v.chars().count() > MAX || v.chars().any(char::is_control) {
            return Err(DomainError::Invalid(format!(
                "{field} must be 1 to {MAX} printable characters"
            )));
        }
        Ok(Self(v.to_owned()))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// The accounts and deals a contact is on: valid ids, each once, at most [`MAX_LINKS`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Links {
    pub accounts: Vec<AccountId>,
    pub deals: Vec<DealId>,
}

impl Links {
    pub fn parse(accounts: Vec<String>, deals: Vec<String>) -> Result<Self, DomainError> {
        let mut accounts = accounts
            .into_iter()
            .map(AccountId::parse)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| DomainError::Invalid(format!("accountIds: {e}")))?;
        let mut deals = deals
            .into_iter()
            .map(DealId::parse)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| DomainError::Invalid(format!("dealIds: {e}")))?;
        accounts.sort();
        accounts.dedup();
        deals.sort();
        deals.dedup();
        if accounts.len() + deals.len() > MAX_LINKS {
            return Err(DomainError::Invalid(format!(
                "a contact may be on at most {MAX_LINKS} accounts and deals"
            )));
        }
        Ok(Self { accounts, deals })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_trimmed_printable_and_bounded() {
        assert_eq!(
            ContactName::parse("name", "  Alex Rivera ")
                .unwrap()
                .into_inner(),
            "Alex Rivera"
        );
        assert!(ContactName::parse("name", "   ").is_err());
        assert!(ContactName::parse("name", "Alex\u{0}Rivera").is_err());
        assert!(DealerLabel::parse("name", &"x".repeat(100)).is_ok());
        assert!(DealerLabel::parse("name", &"x".repeat(101)).is_err());
    }

    #[test]
    fn links_are_deduplicated_and_capped_below_the_transaction_limit() {
        let l = Links::parse(vec!["A-1".into(), "A-1".into()], vec!["D-1".into()]).unwrap();
        assert_eq!((l.accounts.len(), l.deals.len()), (1, 1));
        let many: Vec<String> = (0..=MAX_LINKS).map(|i| format!("A-{i}")).collect();
        assert!(Links::parse(many, vec![]).is_err());
    }
}
