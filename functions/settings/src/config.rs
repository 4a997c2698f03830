//! This function's settings (its `Environment` in infra/template.yaml), parsed once at
//! cold start; a missing or bad value fails init.

use consent_adapters::config::{ConfigError, Env, TableConfig};
use consent_adapters::http::ClaimNames;

#[derive(Debug, Clone)]
pub struct Config {
    pub table: TableConfig,
    /// The token claims naming the caller (the stack's claim parameters).
    pub claims: ClaimNames,
    /// Texting numbers handed to dealers on first use (local stacks; empty in production).
    pub number_pool: Vec<consent::PhoneNumber>,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            table: env.table()?,
            claims: env.claim_names(),
            number_pool: env.number_pool("NUMBER_POOL")?,
        })
    }
}
