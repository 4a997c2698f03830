//! Carrier webhooks: form parsing and Twilio's request signature.
//!
//! Twilio signs `X-Twilio-Signature = base64(HMAC-SHA1(auth_token, url + k1 v1 + k2 v2 ...))`
//! where `url` is the full public URL the carrier posted to (query string included)
//! and the POST parameters are sorted by name and concatenated without separators.

use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha1::Sha1;
use subtle::ConstantTimeEq;

use crate::ids::MessageId;
use crate::phone::PhoneNumber;

/// A form body that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("form body is not valid UTF-8 after decoding")]
    NotUtf8,
    #[error("form body has more than {0} fields")]
    TooManyFields(usize),
    #[error("missing form field {0}")]
    Missing(&'static str),
}

/// Longest carrier message id kept (Twilio's are 34 characters).
pub const MAX_CARRIER_ID: usize = 64;

/// A signed carrier webhook, as stored until it is acted on (the inbound queue's body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum CarrierWebhook {
    /// A person texted a dealer's number.
    Reply {
        carrier_message_id: String,
        from: PhoneNumber,
        to: PhoneNumber,
        body: String,
        received_at: DateTime<Utc>,
    },
    /// The carrier reports what became of a text we sent.
    Status {
        message_id: MessageId,
        carrier_message_id: String,
        status: String,
        error_code: Option<u32>,
        received_at: DateTime<Utc>,
    },
}

impl CarrierWebhook {
    /// Reads an inbound SMS webhook. `None`: from or to a number outside +1 (short codes,
    /// foreign numbers), which this service cannot act on.
    pub fn reply(form: &[(String, String)], at: DateTime<Utc>) -> Result<Option<Self>, FormError> {
        let sid = required(form, "MessageSid")?;
        let (Some(from), Some(to)) = (phone(required(form, "From")?), phone(required(form, "To")?))
        else {
            return Ok(None);
        };
        Ok(Some(Self::Reply {
            carrier_message_id: sid.chars().take(MAX_CARRIER_ID).collect(),
            from,
            to,
            body: field(form, "Body").unwrap_or("").to_owned(),
            received_at: at,
        }))
    }

    /// Reads a status callback for our message `message_id` (the callback URL's query).
    /// `None`: no id of ours, nothing to update.
    pub fn status(
        form: &[(String, String)],
        message_id: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<Option<Self>, FormError> {
        let Some(message_id) = message_id.and_then(|m| MessageId::parse(m).ok()) else {
            return Ok(None);
        };
        Ok(Some(Self::Status {
            message_id,
            carrier_message_id: required(form, "MessageSid")?
                .chars()
                .take(MAX_CARRIER_ID)
                .collect(),
            status: required(form, "MessageStatus")?.to_ascii_lowercase(),
            error_code: field(form, "ErrorCode").and_then(|c| c.parse().ok()),
            received_at: at,
        }))
    }

    /// What must be acted on in order (the inbound queue's FIFO message group): a
    /// person's texts to one dealer number, in the order they arrived (STOP, then START),
    /// and one message's status reports.
    pub fn order_key(&self) -> String {
        match self {
            Self::Reply { from, to, .. } => format!("reply:{to}:{from}"),
            Self::Status { message_id, .. } => format!("status:{message_id}"),
        }
    }

    /// The same webhook delivered twice by the carrier (a retried connection) has the same
    /// key: a reply's message id, or a status report's message id and status.
    pub fn dedup_key(&self) -> String {
        match self {
            Self::Reply {
                carrier_message_id, ..
            } => format!("reply:{carrier_message_id}"),
            Self::Status {
                carrier_message_id,
                status,
                ..
            } => format!("status:{carrier_message_id}:{status}"),
        }
    }

    pub fn carrier_message_id(&self) -> &str {
        match self {
            Self::Reply {
                carrier_message_id, ..
            }
            | Self::Status {
                carrier_message_id, ..
            } => carrier_message_id,
        }
    }
}

fn required<'a>(form: &'a [(String, String)], name: &'static str) -> Result<&'a str, FormError> {
    field(form, name)
        .filter(|v| !v.is_empty())
        .ok_or(FormError::Missing(name))
}

fn phone(value: &str) -> Option<PhoneNumber> {
    PhoneNumber::from_e164(value)
        .or_else(|_| PhoneNumber::parse(value))
        .ok()
}

const MAX_FIELDS: usize = 200;

/// Parses `application/x-www-form-urlencoded` (`+` is a space), keeping order and duplicates.
pub fn parse_form(body: &[u8]) -> Result<Vec<(String, String)>, FormError> {
    let mut out = Vec::new();
    for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        if out.len() == MAX_FIELDS {
            return Err(FormError::TooManyFields(MAX_FIELDS));
        }
        let mut it = pair.splitn(2, |b| *b == b'=');
        let k = decode(it.next().unwrap_or_default())?;
        let v = decode(it.next().unwrap_or_default())?;
        out.push((k, v));
    }
    Ok(out)
}

fn decode(raw: &[u8]) -> Result<String, FormError> {
    let spaced: Vec<u8> = raw
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    let bytes: Vec<u8> = percent_encoding::percent_decode(&spaced).collect();
    String::from_utf8(bytes).map_err(|_| FormError::NotUtf8)
}

/// The first value of a field.
pub fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Twilio's signature for a URL and its POST parameters.
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    // Twilio sorts by key; equal keys keep their values in sorted order too.
    sorted.sort();
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(auth_token.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Constant-time check of a received `X-Twilio-Signature`.
pub fn verify_twilio_signature(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    received: &str,
) -> bool {
    if auth_token.is_empty() || received.is_empty() {
        return false;
    }
    let expected = twilio_signature(auth_token, url, params);
    expected.as_bytes().ct_eq(received.trim().as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn owned(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-06T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_reply_webhook_is_read_and_survives_its_stored_form() {
        let form = owned(&[
            ("MessageSid", "SM123"),
            ("From", "+12025550143"),
            ("To", "+12025550100"),
            ("Body", "STOP"),
        ]);
        let hook = CarrierWebhook::reply(&form, at()).unwrap().unwrap();
        assert_eq!(hook.carrier_message_id(), "SM123");
        assert_eq!(hook.order_key(), "reply:+12025550100:+12025550143");
        assert_eq!(hook.dedup_key(), "reply:SM123");
        let stored = serde_json::to_string(&hook).unwrap();
        assert!(stored.contains("\"kind\":\"reply\""), "{stored}");
        assert!(
            stored.contains("\"carrierMessageId\":\"SM123\""),
            "{stored}"
        );
        assert_eq!(
            serde_json::from_str::<CarrierWebhook>(&stored).unwrap(),
            hook
        );
    }

    #[test]
    fn webhooks_without_what_they_need_are_refused_or_ignored() {
        let no_sid = owned(&[("From", "+12025550143"), ("To", "+12025550100")]);
        assert_eq!(
            CarrierWebhook::reply(&no_sid, at()),
            Err(FormError::Missing("MessageSid"))
        );
        let short_code = owned(&[
            ("MessageSid", "SM1"),
            ("From", "22395"),
            ("To", "+12025550100"),
        ]);
        assert_eq!(CarrierWebhook::reply(&short_code, at()), Ok(None));
        let status = owned(&[("MessageSid", "SM1"), ("MessageStatus", "Delivered")]);
        assert_eq!(CarrierWebhook::status(&status, None, at()), Ok(None));
        let id = MessageId::generate();
        match CarrierWebhook::status(&status, Some(id.as_str()), at()) {
            Ok(Some(CarrierWebhook::Status {
                status, message_id, ..
            })) => {
                assert_eq!(status, "delivered");
                assert_eq!(message_id, id);
            }
            other => panic!("{other:?}"),
        }
        let no_status = owned(&[("MessageSid", "SM1")]);
        assert_eq!(
            CarrierWebhook::status(&no_status, Some(id.as_str()), at()),
            Err(FormError::Missing("MessageStatus"))
        );
    }

    /// Twilio's published example (docs: "Validating Signatures from Twilio"; the
    /// api-snippets signature_validation examples), with the caller's number varying.
    fn example_with(caller: &str) -> (String, Vec<(String, String)>) {
        (
            "https://mycompany.com/myapp.php?foo=1&bar=2".into(),
            owned(&[
                ("CallSid", "CA1234567890ABCDE"),
                ("Caller", caller),
                ("Digits", "1234"),
                ("From", caller),
                ("To", "+18005551212"),
            ]),
        )
    }

    fn example() -> (String, Vec<(String, String)>) {
        example_with("+14158675309")
    }

    #[test]
    fn matches_twilios_published_example_vector() {
        let (url, params) = example();
        assert_eq!(
            twilio_signature("12345", &url, &params),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        assert!(verify_twilio_signature(
            "12345",
            &url,
            &params,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        let (url, params) = example_with("+14158675310");
        assert_eq!(
            twilio_signature("12345", &url, &params),
            "GvWf1cFY/Q7PnoempGyD5oXAezc="
        );
    }

    #[test]
    fn any_changed_parameter_url_or_token_is_refused() {
        let (url, params) = example();
        let sig = twilio_signature("12345", &url, &params);
        for i in 0..params.len() {
            let mut changed = params.clone();
            changed[i].1.push('0');
            assert!(!verify_twilio_signature("12345", &url, &changed, &sig));
        }
        let mut extra = params.clone();
        extra.push(("Body".into(), "STOP".into()));
        assert!(!verify_twilio_signature("12345", &url, &extra, &sig));
        assert!(!verify_twilio_signature(
            "12345",
            "https://mycompany.com/myapp.php?foo=1&bar=3",
            &params,
            &sig
        ));
        assert!(!verify_twilio_signature("54321", &url, &params, &sig));
        assert!(!verify_twilio_signature("12345", &url, &params, ""));
        assert!(!verify_twilio_signature("", &url, &params, &sig));
    }

    #[test]
    fn parses_form_bodies_like_twilio_sends_them() {
        let form =
            parse_form(b"From=%2B14155552671&Body=Stop+texting+me%21&To=%2B12025550100&Empty=")
                .unwrap();
        assert_eq!(field(&form, "From"), Some("+14155552671"));
        assert_eq!(field(&form, "Body"), Some("Stop texting me!"));
        assert_eq!(field(&form, "Empty"), Some(""));
        assert_eq!(field(&form, "Missing"), None);
        assert_eq!(parse_form(b"Body=%FF%FE"), Err(FormError::NotUtf8));
        assert!(parse_form(&b"a=1&".repeat(201)).is_err());
    }

    proptest! {
        #[test]
        fn form_parser_never_panics(body in prop::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse_form(&body);
        }

        #[test]
        fn signature_round_trips(token in "[a-z0-9]{1,32}", body in "[ -~]{0,40}", url in "https://[a-z]{1,10}\\.example/[a-z?=&]{0,20}") {
            let params = vec![("Body".to_string(), body), ("From".to_string(), "+14155552671".to_string())];
            let sig = twilio_signature(&token, &url, &params);
            prop_assert!(verify_twilio_signature(&token, &url, &params, &sig));
        }
    }
}
