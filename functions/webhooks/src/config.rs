//! This function's settings (its `Environment` in infra/template.yaml), parsed once at
//! cold start; a missing or bad value fails init.

use consent_adapters::config::{ConfigError, Env, TableConfig};

#[derive(Debug, Clone)]
pub struct Config {
    pub table: TableConfig,
    pub outbound_queue_url: String,
    pub event_bus_name: String,
    /// End User Messaging's queue and topics, all three or none (a stack without it).
    pub end_user_messaging: Option<EumConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EumConfig {
    pub queue_arn: String,
    pub replies_topic_arn: String,
    pub events_topic_arn: String,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            table: env.table()?,
            outbound_queue_url: env.required("OUTBOUND_QUEUE_URL")?,
            event_bus_name: env.required("EVENT_BUS_NAME")?,
            end_user_messaging: match env.optional("EUM_QUEUE_ARN") {
                None => None,
                Some(queue_arn) => Some(EumConfig {
                    queue_arn,
                    replies_topic_arn: env.required("EUM_REPLIES_TOPIC_ARN")?,
                    events_topic_arn: env.required("EUM_EVENTS_TOPIC_ARN")?,
                }),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(extra: &[(&'static str, &'static str)]) -> Env {
        let mut pairs = vec![
            ("TABLE_NAME", "t"),
            ("OUTBOUND_QUEUE_URL", "https://sqs/q"),
            ("EVENT_BUS_NAME", "bus"),
        ];
        pairs.extend_from_slice(extra);
        Env::from_pairs(&pairs)
    }

    #[test]
    fn end_user_messaging_needs_its_queue_and_both_topics() {
        assert_eq!(
            Config::from_env(&env(&[])).unwrap().end_user_messaging,
            None
        );
        let full = [
            ("EUM_QUEUE_ARN", "arn:aws:sqs:us-east-1:1:eum"),
            ("EUM_REPLIES_TOPIC_ARN", "arn:aws:sns:us-east-1:1:replies"),
            ("EUM_EVENTS_TOPIC_ARN", "arn:aws:sns:us-east-1:1:events"),
        ];
        let c = Config::from_env(&env(&full)).unwrap();
        assert_eq!(
            c.end_user_messaging.unwrap().events_topic_arn,
            "arn:aws:sns:us-east-1:1:events"
        );
        // A queue without its topics fails init rather than refusing every record.
        assert!(Config::from_env(&env(&full[..2])).is_err());
    }
}
