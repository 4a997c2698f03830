//! Carrier webhooks: form parsing and Twilio's request signature.
//!
//! Twilio signs `X-Twilio-Signature = base64(HMAC-SHA1(auth_token, url + k1 v1 + k2 v2 ...))`
//! where `url` is the full public URL the carrier posted to (query string included)
//! and the POST parameters are sorted by name and concatenated without separators.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// A form body that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("form body is not valid UTF-8 after decoding")]
    NotUtf8,
    #[error("form body has more than {0} fields")]
    TooManyFields(usize),
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
