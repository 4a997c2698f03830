//! This function's settings (its `Environment` in infra/template.yaml), parsed once at
//! cold start; a missing or bad value fails init.

use consent_adapters::config::{ConfigError, Env, TableConfig};
use consent_adapters::http::ClaimNames;
use consent_adapters::secrets::SecretRef;

#[derive(Debug, Clone)]
pub struct Config {
    pub table: TableConfig,
    /// The token claims naming the caller (the stack's claim parameters).
    pub claims: ClaimNames,
    pub outbound_queue_url: String,
    pub number_pool: Vec<consent::PhoneNumber>,
    /// The code key (hashes and seals approval codes), in Secrets Manager.
    pub code_key: SecretRef,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            table: env.table()?,
            claims: env.claim_names(),
            outbound_queue_url: env.required("OUTBOUND_QUEUE_URL")?,
            number_pool: env.number_pool("NUMBER_POOL")?,
            code_key: SecretRef::from_env(env, "CODE_HASH_KEY_SECRET_ARN")?,
        })
    }
}
