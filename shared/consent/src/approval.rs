//! Approval codes: the six digits a person reads back to staff to authorize a category.
//!
//! Rules (their tests are in docs/reliability.md): 6 random digits from a CSPRNG, stored
//! only as a keyed hash, valid 10 minutes, at most 5 wrong tries, compared in constant
//! time, never logged.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::category::Category;
use crate::ids::DealerId;
use crate::phone::PhoneNumber;

/// How long a code is valid.
pub const CODE_TTL: Duration = Duration::from_secs(10 * 60);
/// Wrong tries before the request is void.
pub const MAX_ATTEMPTS: u32 = 5;
/// Code texts per number per day (SMS pumping protection).
pub const MAX_CODES_PER_NUMBER_PER_DAY: u32 = 5;
/// Code texts per dealer per hour.
pub const MAX_CODES_PER_DEALER_PER_HOUR: u32 = 300;

/// What staff see where a code text's code was: the stored body, the message view, the
/// conversation and the queue carry this; only the carrier call gets the digits.
pub const CODE_MASK: &str = "******";

/// A six-digit approval code. `Debug` and `Display` never show the digits.
#[derive(Clone, PartialEq, Eq)]
pub struct ApprovalCode([u8; 6]);

/// Why a typed code was refused before any comparison.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an approval code is exactly 6 digits")]
pub struct MalformedCode;

impl ApprovalCode {
    /// A new code from the operating system's CSPRNG, uniform over 000000..=999999.
    pub fn generate() -> Result<Self, getrandom::Error> {
        // Rejection sampling over u32 keeps the distribution uniform.
        const LIMIT: u32 = u32::MAX - (u32::MAX % 1_000_000);
        loop {
            let mut buf = [0u8; 4];
            getrandom::fill(&mut buf)?;
            let n = u32::from_le_bytes(buf);
            if n < LIMIT {
                return Ok(Self::from_number(n % 1_000_000));
            }
        }
    }

    fn from_number(mut n: u32) -> Self {
        let mut digits = [b'0'; 6];
        for d in digits.iter_mut().rev() {
            *d = b'0' + (n % 10) as u8;
            n /= 10;
        }
        Self(digits)
    }

    /// Parses what staff typed: 6 digits, surrounding spaces and one inner space or
    /// dash allowed ("123 456", "123-456").
    pub fn parse(input: &str) -> Result<Self, MalformedCode> {
        let mut digits = [0u8; 6];
        let mut n = 0;
        for c in input.trim().bytes() {
            match c {
                b'0'..=b'9' if n < 6 => {
                    digits[n] = c;
                    n += 1;
                }
                b' ' | b'-' if n == 3 => {}
                _ => return Err(MalformedCode),
            }
        }
        if n == 6 {
            Ok(Self(digits))
        } else {
            Err(MalformedCode)
        }
    }

    /// The digits, for the text that carries them (and nowhere else).
    pub fn reveal(&self) -> &str {
        // Only ASCII digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl fmt::Debug for ApprovalCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApprovalCode(******)")
    }
}

/// The code key: keyed hashing of codes, bound to what the code authorizes, so a stored
/// hash is useless without the key and cannot be replayed for another number or category;
/// and sealing of the code a code text carries (ChaCha20-Poly1305 under a key derived from
/// the same secret, bound to the message id), so the stored message, the queue envelope
/// and the dead-letter queue hold the code only in a form staff cannot read.
///
/// While the key is rotated, the one it replaces stays `previous`: codes hashed and sealed
/// before the rotation still verify and open for as long as they live (new ones use the
/// current key only).
#[derive(Clone)]
pub struct CodeHasher {
    key: Vec<u8>,
    previous: Option<Box<CodeHasher>>,
}

impl fmt::Debug for CodeHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeHasher(..)")
    }
}

/// The key is too short to be a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the code hash key must be at least 16 bytes")]
pub struct WeakKey;

impl CodeHasher {
    pub fn new(key: impl Into<Vec<u8>>) -> Result<Self, WeakKey> {
        let key = key.into();
        if key.len() < 16 {
            return Err(WeakKey);
        }
        Ok(Self {
            key,
            previous: None,
        })
    }

    /// This key, and `previous` (the key it replaced) for what was hashed or sealed
    /// before the rotation. Only one previous key is kept.
    pub fn with_previous(mut self, mut previous: CodeHasher) -> Self {
        previous.previous = None;
        self.previous = Some(Box::new(previous));
        self
    }

    fn mac(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
        category: Category,
        request_id: &str,
    ) -> Hmac<Sha256> {
        // HMAC accepts keys of any length; the constructor cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        for part in [
            dealer.as_str(),
            phone.as_str(),
            category.as_str(),
            request_id,
        ] {
            mac.update(part.as_bytes());
            mac.update(&[0]);
        }
        mac
    }

    /// Hex of HMAC-SHA256(key, dealer|phone|category|request|code).
    pub fn hash(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
        category: Category,
        request_id: &str,
        code: &ApprovalCode,
    ) -> String {
        let mut mac = self.mac(dealer, phone, category, request_id);
        mac.update(&code.0);
        hex(&mac.finalize().into_bytes())
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(b"approval-code-seal-v1");
        ChaCha20Poly1305::new(&mac.finalize().into_bytes())
    }

    /// Seals `code` for the message `message_id`: base64 of nonce and ciphertext.
    pub fn seal(&self, code: &ApprovalCode, message_id: &str) -> Result<String, SealError> {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|_| SealError)?;
        let sealed = self
            .cipher()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &code.0,
                    aad: message_id.as_bytes(),
                },
            )
            .map_err(|_| SealError)?;
        let mut out = nonce.to_vec();
        out.extend(sealed);
        Ok(base64::engine::general_purpose::STANDARD.encode(out))
    }

    /// Opens a sealed code, only for the message it was sealed for (under this key or the
    /// previous one).
    pub fn open(&self, sealed: &str, message_id: &str) -> Result<ApprovalCode, SealError> {
        self.open_with_this_key(sealed, message_id)
            .or_else(|e| match &self.previous {
                Some(previous) => previous.open_with_this_key(sealed, message_id),
                None => Err(e),
            })
    }

    fn open_with_this_key(
        &self,
        sealed: &str,
        message_id: &str,
    ) -> Result<ApprovalCode, SealError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|_| SealError)?;
        if bytes.len() < 12 {
            return Err(SealError);
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        let clear = self
            .cipher()
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: message_id.as_bytes(),
                },
            )
            .map_err(|_| SealError)?;
        let digits: [u8; 6] = clear.try_into().map_err(|_| SealError)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err(SealError);
        }
        Ok(ApprovalCode(digits))
    }

    /// Constant-time comparison of a typed code against the stored hash (made with this
    /// key or the previous one).
    pub fn verify(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
        category: Category,
        request_id: &str,
        code: &ApprovalCode,
        stored_hash: &str,
    ) -> bool {
        let computed = self.hash(dealer, phone, category, request_id, code);
        let this: bool = computed.as_bytes().ct_eq(stored_hash.as_bytes()).into();
        this || self.previous.as_ref().is_some_and(|previous| {
            previous.verify(dealer, phone, category, request_id, code, stored_hash)
        })
    }
}

/// A sealed code that does not open with this key for this message (tampered, moved to
/// another message, or sealed under another key), or no randomness to seal one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the sealed approval code cannot be used")]
pub struct SealError;

/// The text that goes to the carrier: the masked body with the code put back.
pub fn reveal_in(masked_body: &str, code: &ApprovalCode) -> Option<String> {
    let at = masked_body.rfind(CODE_MASK)?;
    Some(format!(
        "{}{}{}",
        &masked_body[..at],
        code.reveal(),
        &masked_body[at + CODE_MASK.len()..]
    ))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 0xf) as usize] as char);
    }
    s
}

/// A pending authorization: a code was texted and has not been verified yet.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingAuthorization {
    pub dealer_id: DealerId,
    pub phone: PhoneNumber,
    pub category: Category,
    pub request_id: String,
    pub code_hash: String,
    pub contact_id: crate::ids::ContactId,
    pub requested_by: crate::ids::StaffUserId,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub attempts: u32,
    /// How many times the same request's text was (re)sent.
    pub sends: u32,
    /// The disclosure the person is asked to agree to (marketing needs it recorded).
    pub disclosure_version: String,
    /// That disclosure as texted, with the code masked (the evidence a grant records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disclosure_text: Option<String>,
}

impl PendingAuthorization {
    /// Still usable at `at`: not expired and tries left.
    pub fn is_live(&self, at: DateTime<Utc>) -> bool {
        at < self.expires_at && self.attempts < MAX_ATTEMPTS
    }

    pub fn attempts_left(&self) -> u32 {
        MAX_ATTEMPTS.saturating_sub(self.attempts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (DealerId, PhoneNumber) {
        (
            DealerId::parse("d1").unwrap(),
            PhoneNumber::from_e164("+14155552671").unwrap(),
        )
    }

    #[test]
    fn generated_codes_are_six_digits_and_vary() {
        let codes: Vec<String> = (0..50)
            .map(|_| ApprovalCode::generate().unwrap().reveal().to_owned())
            .collect();
        assert!(codes
            .iter()
            .all(|c| c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit())));
        let distinct: std::collections::HashSet<_> = codes.iter().collect();
        assert!(
            distinct.len() > 45,
            "50 codes gave only {} distinct",
            distinct.len()
        );
    }

    #[test]
    fn codes_parse_in_typed_forms_and_reject_others() {
        assert_eq!(ApprovalCode::parse(" 123456 ").unwrap().reveal(), "123456");
        assert_eq!(ApprovalCode::parse("123-456").unwrap().reveal(), "123456");
        assert_eq!(ApprovalCode::parse("123 456").unwrap().reveal(), "123456");
        for bad in ["12345", "1234567", "12a456", "", "12-3456", "１２３４５６"] {
            assert_eq!(ApprovalCode::parse(bad), Err(MalformedCode), "{bad}");
        }
    }

    #[test]
    fn debug_never_shows_the_digits() {
        let code = ApprovalCode::parse("987654").unwrap();
        assert!(!format!("{code:?}").contains("987654"));
    }

    #[test]
    fn hash_verifies_only_the_same_code_for_the_same_request() {
        let (dealer, phone) = ids();
        let hasher = CodeHasher::new("0123456789abcdef-key").unwrap();
        let code = ApprovalCode::parse("123456").unwrap();
        let stored = hasher.hash(&dealer, &phone, Category::Accounting, "r1", &code);
        assert!(!stored.contains("123456"));
        assert!(hasher.verify(&dealer, &phone, Category::Accounting, "r1", &code, &stored));
        let other = ApprovalCode::parse("123457").unwrap();
        assert!(!hasher.verify(&dealer, &phone, Category::Accounting, "r1", &other, &stored));
        assert!(!hasher.verify(&dealer, &phone, Category::Marketing, "r1", &code, &stored));
        assert!(!hasher.verify(&dealer, &phone, Category::Accounting, "r2", &code, &stored));
        let other_key = CodeHasher::new("another-key-0123456").unwrap();
        assert!(!other_key.verify(&dealer, &phone, Category::Accounting, "r1", &code, &stored));
    }

    #[test]
    fn a_sealed_code_opens_only_for_its_message_and_key() {
        let hasher = CodeHasher::new("a-key-of-sixteen-bytes-or-more").unwrap();
        let code = ApprovalCode::parse("042917").unwrap();
        let sealed = hasher.seal(&code, "M1").unwrap();
        assert!(!sealed.contains("042917"));
        assert_eq!(hasher.open(&sealed, "M1"), Ok(code.clone()));
        assert_eq!(hasher.open(&sealed, "M2"), Err(SealError));
        let other = CodeHasher::new("another-key-of-sixteen-bytes").unwrap();
        assert_eq!(other.open(&sealed, "M1"), Err(SealError));
        let mut tampered = sealed.into_bytes();
        tampered[20] ^= 1;
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(hasher.open(&tampered, "M1").is_err());
    }

    #[test]
    fn during_a_rotation_codes_of_the_previous_key_still_verify_and_open() {
        let (dealer, phone) = ids();
        let old = CodeHasher::new("the-key-before-the-rotation").unwrap();
        let code = ApprovalCode::parse("314159").unwrap();
        let stored = old.hash(&dealer, &phone, Category::Service, "r1", &code);
        let sealed = old.seal(&code, "M1").unwrap();
        let new = CodeHasher::new("the-key-after-the-rotation!").unwrap();
        assert!(!new.verify(&dealer, &phone, Category::Service, "r1", &code, &stored));
        let rotating = new.clone().with_previous(old.clone());
        assert!(rotating.verify(&dealer, &phone, Category::Service, "r1", &code, &stored));
        assert_eq!(rotating.open(&sealed, "M1"), Ok(code.clone()));
        // New codes are the current key's: the previous key alone does not take them.
        let fresh = rotating.hash(&dealer, &phone, Category::Service, "r2", &code);
        assert_eq!(
            fresh,
            new.hash(&dealer, &phone, Category::Service, "r2", &code)
        );
        assert!(!old.verify(&dealer, &phone, Category::Service, "r2", &code, &fresh));
        // A wrong code is wrong under both keys; only one previous key is kept.
        let wrong = ApprovalCode::parse("314150").unwrap();
        assert!(!rotating.verify(&dealer, &phone, Category::Service, "r1", &wrong, &stored));
        let oldest = CodeHasher::new("the-key-two-rotations-ago").unwrap();
        let older_code = oldest.hash(&dealer, &phone, Category::Service, "r0", &code);
        let twice = new.with_previous(old.with_previous(oldest));
        assert!(!twice.verify(&dealer, &phone, Category::Service, "r0", &code, &older_code));
    }

    #[test]
    fn the_code_goes_back_where_the_mask_is() {
        let code = ApprovalCode::parse("123456").unwrap();
        assert_eq!(
            reveal_in(
                "Dealer ****** Motors: your code is ******. Reply STOP",
                &code
            )
            .as_deref(),
            Some("Dealer ****** Motors: your code is 123456. Reply STOP")
        );
        assert_eq!(reveal_in("no mask", &code), None);
    }

    #[test]
    fn short_keys_are_refused() {
        assert_eq!(CodeHasher::new("short").unwrap_err(), WeakKey);
    }
}
