//! Identifiers that can only hold valid values.
//!
//! Ids from callers end up inside DynamoDB keys (`DEALER#{id}#...`), so they are
//! restricted to a safe alphabet and length: letters, digits, `-`, `_`, `.`, `:`, `@`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why an id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidId {
    #[error("{kind} must not be empty")]
    Empty { kind: &'static str },
    #[error("{kind} is longer than {max} characters")]
    TooLong { kind: &'static str, max: usize },
    #[error("{kind} may only contain letters, digits and - _ . : @")]
    BadCharacter { kind: &'static str },
}

const MAX_ID_LEN: usize = 128;

fn check(kind: &'static str, s: &str) -> Result<(), InvalidId> {
    if s.is_empty() {
        return Err(InvalidId::Empty { kind });
    }
    if s.len() > MAX_ID_LEN {
        return Err(InvalidId::TooLong {
            kind,
            max: MAX_ID_LEN,
        });
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'@'))
    {
        return Err(InvalidId::BadCharacter { kind });
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses a caller-supplied id.
            pub fn parse(s: impl Into<String>) -> Result<Self, InvalidId> {
                let s = s.into();
                check($kind, &s)?;
                Ok(Self(s))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A dealership (tenant). Every portal request is scoped to one.
    DealerId, "dealer id");
id_type!(
    /// A contact record in the DMS (a person on an account or deal).
    ContactId, "contact id");
id_type!(
    /// A DMS account.
    AccountId, "account id");
id_type!(
    /// A DMS deal.
    DealId, "deal id");
id_type!(
    /// A staff user of the dealer portal (the token's `sub`).
    StaffUserId, "staff user id");
id_type!(
    /// An outbound message. New ones are ULIDs (time-ordered).
    MessageId, "message id");

impl MessageId {
    /// A new, unique, time-ordered message id.
    pub fn generate() -> Self {
        Self(new_ulid())
    }
}

/// The same ULID every time for the same time and key: the id of something an effect
/// makes (a reply's answer, a staff item), so a redelivered webhook makes it again with
/// the same id and a conditional write keeps one. Ordered by `at` like [`new_ulid`]'s.
pub fn derived_ulid(at: chrono::DateTime<chrono::Utc>, key: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(key.as_bytes());
    let mut random = [0u8; 16];
    random.copy_from_slice(&digest[..16]);
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    ulid::Ulid::from_parts(millis, u128::from_be_bytes(random)).to_string()
}

impl MessageId {
    /// The id of the message an effect keyed `key` makes at `at` (see [`derived_ulid`]).
    pub fn derived(at: chrono::DateTime<chrono::Utc>, key: &str) -> Self {
        Self(derived_ulid(at, key))
    }
}

/// A new unique id for ledger entries, queue items and the like.
/// Monotonic within the process: two ids made in the same millisecond still sort in
/// the order they were made (ledger entries of one STOP, a burst of messages).
pub fn new_ulid() -> String {
    static GENERATOR: std::sync::Mutex<Option<ulid::Generator>> = std::sync::Mutex::new(None);
    let mut guard = GENERATOR.lock().unwrap_or_else(|e| e.into_inner());
    let generator = guard.get_or_insert_with(ulid::Generator::new);
    // The generator only fails when 2^80 ids were made in one millisecond.
    generator
        .generate()
        .unwrap_or_else(|_| ulid::Ulid::new())
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_per_key_and_ordered_by_time() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-06T12:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            derived_ulid(at, "SM1:answer"),
            derived_ulid(at, "SM1:answer")
        );
        assert_ne!(
            derived_ulid(at, "SM1:answer"),
            derived_ulid(at, "SM2:answer")
        );
        let later = at + chrono::Duration::milliseconds(1);
        assert!(derived_ulid(at, "zzz") < derived_ulid(later, "aaa"));
        assert!(MessageId::parse(derived_ulid(at, "k")).is_ok());
    }

    #[test]
    fn accepts_ordinary_ids() {
        assert!(DealerId::parse("demo-dealer").is_ok());
        assert!(ContactId::parse("C-1001").is_ok());
        assert!(StaffUserId::parse("jane@dealer.example").is_ok());
    }

    #[test]
    fn rejects_ids_that_could_break_keys() {
        assert_eq!(
            DealerId::parse("a#b"),
            Err(InvalidId::BadCharacter { kind: "dealer id" })
        );
        assert!(DealerId::parse("").is_err());
        assert!(DealerId::parse("x".repeat(129)).is_err());
        assert!(ContactId::parse("a b").is_err());
        assert!(ContactId::parse("{\"$ne\":1}").is_err());
    }

    #[test]
    fn ids_made_in_a_burst_sort_in_order() {
        let ids: Vec<String> = (0..1000).map(|_| new_ulid()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }

    #[test]
    fn generated_message_ids_are_valid_and_unique() {
        let a = MessageId::generate();
        let b = MessageId::generate();
        assert_ne!(a, b);
        assert!(MessageId::parse(a.as_str()).is_ok());
    }

    #[test]
    fn deserializing_checks_the_value() {
        assert!(serde_json::from_str::<DealerId>("\"ok-1\"").is_ok());
        assert!(serde_json::from_str::<DealerId>("\"bad#1\"").is_err());
    }
}
