//! E.164 phone numbers.
//!
//! Consent belongs to the number, so the number is normalised once at the edge
//! (any common US written form) and only the canonical `+1NPANXXXXXX` form travels.

use std::fmt;

use phonenumber::country::Id as Country;
use phonenumber::Mode;
use serde::{Deserialize, Serialize};

/// Why a phone number was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPhone {
    #[error("phone number is empty")]
    Empty,
    #[error("phone number is too long")]
    TooLong,
    #[error("not a phone number: {0}")]
    Unparseable(String),
    #[error("not a valid, dialable number in its numbering plan")]
    NotValid,
    #[error("only US and Canadian (+1) numbers can be texted")]
    NotNanp,
}

/// A valid North American number in E.164 form (`+14155550123`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Parses a number written the way people write them: `(415) 555-0123`,
    /// `415.555.0123`, `+1 415 555 0123`, `1-415-555-0123`, `4155550123`.
    pub fn parse(input: &str) -> Result<Self, InvalidPhone> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(InvalidPhone::Empty);
        }
        if trimmed.len() > 40 {
            return Err(InvalidPhone::TooLong);
        }
        if !trimmed
            .chars()
            .all(|c| c.is_ascii_digit() || " +-().".contains(c))
        {
            return Err(InvalidPhone::Unparseable(
                "only digits, spaces, + - ( ) and . are allowed".into(),
            ));
        }
        let parsed = phonenumber::parse(Some(Country::US), trimmed)
            .map_err(|e| InvalidPhone::Unparseable(e.to_string()))?;
        if parsed.code().value() != 1 {
            return Err(InvalidPhone::NotNanp);
        }
        if !phonenumber::is_valid(&parsed) {
            return Err(InvalidPhone::NotValid);
        }
        let e164 = parsed.format().mode(Mode::E164).to_string();
        Self::from_e164(&e164)
    }

    /// Accepts an already-canonical `+1` followed by ten digits (as stored, or as
    /// carriers send it). Cheaper than [`PhoneNumber::parse`]; no plan validation.
    pub fn from_e164(s: &str) -> Result<Self, InvalidPhone> {
        let b = s.as_bytes();
        if b.len() == 12
            && b[0] == b'+'
            && b[1] == b'1'
            && b[2..].iter().all(u8::is_ascii_digit)
            && (b'2'..=b'9').contains(&b[2])
            && (b'2'..=b'9').contains(&b[5])
        {
            Ok(Self(s.to_owned()))
        } else if s.starts_with('+') && !s.starts_with("+1") {
            Err(InvalidPhone::NotNanp)
        } else {
            Err(InvalidPhone::Unparseable(
                "expected +1 and ten digits".into(),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The three-digit NANP area code (NPA).
    pub fn area_code(&self) -> u16 {
        self.0[2..5].parse().unwrap_or(0)
    }

    /// A form safe for logs: only the last two digits (`+1*******23`).
    pub fn redacted(&self) -> String {
        format!("+1*******{}", &self.0[10..])
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = InvalidPhone;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::from_e164(&s).or_else(|_| Self::parse(&s))
    }
}

impl From<PhoneNumber> for String {
    fn from(p: PhoneNumber) -> String {
        p.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_common_us_forms_to_e164() {
        for s in [
            "(415) 555-2671",
            "415-555-2671",
            "415.555.2671",
            "4155552671",
            "+1 415 555 2671",
            "1-415-555-2671",
            "+14155552671",
            "  (415)555-2671 ",
        ] {
            assert_eq!(
                PhoneNumber::parse(s).unwrap().as_str(),
                "+14155552671",
                "{s}"
            );
        }
    }

    #[test]
    fn rejects_garbage_with_a_reason() {
        assert_eq!(PhoneNumber::parse(""), Err(InvalidPhone::Empty));
        assert!(matches!(
            PhoneNumber::parse("call me"),
            Err(InvalidPhone::Unparseable(_))
        ));
        assert!(PhoneNumber::parse("12345").is_err());
        assert!(PhoneNumber::parse("(015) 555-2671").is_err());
        assert_eq!(
            PhoneNumber::parse("+44 20 7946 0958"),
            Err(InvalidPhone::NotNanp)
        );
        assert!(PhoneNumber::parse(&"9".repeat(50)).is_err());
    }

    #[test]
    fn area_code_and_redaction() {
        let p = PhoneNumber::parse("(305) 555-0199").unwrap();
        assert_eq!(p.area_code(), 305);
        assert_eq!(p.redacted(), "+1*******99");
        assert!(!p.redacted().contains("5550"));
    }

    #[test]
    fn e164_fast_path_checks_shape() {
        assert!(PhoneNumber::from_e164("+14155552671").is_ok());
        assert!(PhoneNumber::from_e164("+11155552671").is_err());
        assert!(PhoneNumber::from_e164("4155552671").is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,60}") {
            let _ = PhoneNumber::parse(&s);
        }

        #[test]
        fn parsed_numbers_round_trip(npa in 201u16..=989, nxx in 200u16..=999, line in 0u16..=9999) {
            let written = format!("({npa}) {nxx}-{line:04}");
            if let Ok(p) = PhoneNumber::parse(&written) {
                prop_assert_eq!(PhoneNumber::from_e164(p.as_str()), Ok(p.clone()));
                prop_assert_eq!(PhoneNumber::parse(p.as_str()), Ok(p));
            }
        }
    }
}
