//! This function's settings (its `Environment` in infra/template.yaml), parsed once at
//! cold start; a missing or bad value fails init.

use consent_adapters::config::{ConfigError, Env, TableConfig};
use std::time::Duration;

use consent_adapters::secrets::SecretRef;

#[derive(Debug, Clone)]
pub struct Config {
    pub table: TableConfig,
    pub outbound_queue_url: String,
    /// Records from this queue are dead letters (the function consumes it too).
    pub dead_letter_arn: Option<String>,
    /// The outbound dead-letter queue's URL: a record received from it has its
    /// visibility changed there, never on the outbound queue.
    pub dead_letter_url: Option<String>,
    pub carrier_base_url: String,
    pub carrier_account_sid: String,
    /// The carrier auth token, in Secrets Manager.
    pub carrier_auth_token: SecretRef,
    /// How long one carrier call may take to answer.
    pub carrier_timeout: Duration,
    /// The code key (opens approval code texts' sealed codes), in Secrets Manager.
    pub code_key: SecretRef,
    /// Where the carrier reports delivery status (None: no status callbacks).
    pub public_base_url: Option<String>,
    /// Texts per second the carrier takes from one texting number (10DLC and toll-free
    /// numbers are rate limited); 0 or absent: no limit.
    pub send_rate_per_number: Option<u32>,
    /// Segments a day one dealer's brand may send (T-Mobile's 10DLC cap); 0 or absent: no cap.
    pub daily_segments_per_brand: Option<u32>,
    /// The End User Messaging configuration set its texts go with (absent: this stack
    /// texts through Twilio only, and refuses a number provisioned on End User Messaging).
    pub end_user_messaging_configuration_set: Option<String>,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            table: env.table()?,
            outbound_queue_url: env.required("OUTBOUND_QUEUE_URL")?,
            dead_letter_arn: env.optional("OUTBOUND_DLQ_ARN"),
            dead_letter_url: env.optional("OUTBOUND_DLQ_URL"),
            carrier_base_url: env
                .parsed("CARRIER_BASE_URL", "https://api.twilio.com".to_owned())?,
            carrier_account_sid: env.required("TWILIO_ACCOUNT_SID")?,
            carrier_auth_token: SecretRef::from_env(env, "TWILIO_AUTH_TOKEN_SECRET_ARN")?,
            carrier_timeout: Duration::from_secs(env.parsed("CARRIER_TIMEOUT_SECONDS", 10u64)?),
            code_key: SecretRef::from_env(env, "CODE_HASH_KEY_SECRET_ARN")?,
            public_base_url: env.optional("PUBLIC_BASE_URL"),
            send_rate_per_number: Some(env.parsed("SEND_RATE_PER_NUMBER", 0u32)?)
                .filter(|r| *r > 0),
            daily_segments_per_brand: Some(env.parsed("DAILY_SEGMENTS_PER_BRAND", 0u32)?)
                .filter(|r| *r > 0),
            end_user_messaging_configuration_set: env.optional("EUM_CONFIGURATION_SET"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template_env() -> Vec<(&'static str, &'static str)> {
        vec![
            ("TABLE_NAME", "t"),
            ("OUTBOUND_QUEUE_URL", "https://sqs/q"),
            ("OUTBOUND_DLQ_ARN", "arn:aws:sqs:us-east-1:1:dlq"),
            (
                "OUTBOUND_DLQ_URL",
                "https://sqs.us-east-1.amazonaws.com/1/dlq",
            ),
            ("TWILIO_ACCOUNT_SID", "AC1"),
            (
                "TWILIO_AUTH_TOKEN_SECRET_ARN",
                "arn:aws:secretsmanager:us-east-1:1:secret:t",
            ),
            (
                "CODE_HASH_KEY_SECRET_ARN",
                "arn:aws:secretsmanager:us-east-1:1:secret:c",
            ),
            ("CARRIER_TIMEOUT_SECONDS", "7"),
            ("SEND_RATE_PER_NUMBER", "3"),
            ("DAILY_SEGMENTS_PER_BRAND", "2000"),
        ]
    }

    #[test]
    fn the_template_environment_parses_and_names_secrets_not_values() {
        let c = Config::from_env(&Env::from_pairs(&template_env())).unwrap();
        assert_eq!(c.carrier_timeout, Duration::from_secs(7));
        assert_eq!(c.send_rate_per_number, Some(3));
        assert_eq!(c.daily_segments_per_brand, Some(2000));
        assert_eq!(c.carrier_base_url, "https://api.twilio.com");
        assert!(c
            .carrier_auth_token
            .arn
            .starts_with("arn:aws:secretsmanager:"));
        assert!(c.code_key.arn.starts_with("arn:aws:secretsmanager:"));
    }

    #[test]
    fn end_user_messaging_is_on_only_with_a_configuration_set() {
        let c = Config::from_env(&Env::from_pairs(&template_env())).unwrap();
        assert_eq!(c.end_user_messaging_configuration_set, None);
        for (value, expected) in [("", None), ("  ", None), ("texting", Some("texting"))] {
            let mut env = template_env();
            env.push(("EUM_CONFIGURATION_SET", value));
            let c = Config::from_env(&Env::from_pairs(&env)).unwrap();
            assert_eq!(
                c.end_user_messaging_configuration_set.as_deref(),
                expected,
                "{value:?}"
            );
        }
    }

    #[test]
    fn a_missing_or_bad_setting_fails_init() {
        for (drop, bad) in [
            (Some("CODE_HASH_KEY_SECRET_ARN"), None),
            (Some("TWILIO_AUTH_TOKEN_SECRET_ARN"), None),
            (Some("TABLE_NAME"), None),
            (None, Some(("CARRIER_TIMEOUT_SECONDS", "ten"))),
            (None, Some(("SEND_RATE_PER_NUMBER", "fast"))),
        ] {
            let mut env: Vec<_> = template_env()
                .into_iter()
                .filter(|(k, _)| Some(*k) != drop)
                .collect();
            if let Some((k, v)) = bad {
                env.retain(|(key, _)| *key != k);
                env.push((k, v));
            }
            assert!(
                Config::from_env(&Env::from_pairs(&env)).is_err(),
                "{drop:?} {bad:?}"
            );
        }
    }
}
