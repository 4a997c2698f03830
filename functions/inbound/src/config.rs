//! This function's settings (its `Environment` in infra/template.yaml), parsed once at
//! cold start; a missing or bad value fails init.

use consent_adapters::config::{ConfigError, Env};
use consent_adapters::secrets::SecretRef;

#[derive(Debug, Clone)]
pub struct Config {
    /// The FIFO queue a person's texts are kept on until the `webhooks` function acts.
    pub inbound_queue_url: String,
    /// The queue the carrier's status reports are kept on.
    pub status_queue_url: String,
    /// The carrier auth token (webhook signatures), in Secrets Manager.
    pub auth_token: SecretRef,
    /// The public base URL webhooks are signed over (None: from the request).
    pub public_base_url: Option<String>,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            inbound_queue_url: env.required("INBOUND_QUEUE_URL")?,
            status_queue_url: env.required("STATUS_QUEUE_URL")?,
            auth_token: SecretRef::from_env(env, "TWILIO_AUTH_TOKEN_SECRET_ARN")?,
            public_base_url: env.optional("PUBLIC_BASE_URL"),
        })
    }
}
