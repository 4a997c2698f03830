//! This function's settings (its `Environment` in infra/template.yaml), parsed once at
//! cold start; a missing or bad value fails init.

use consent_adapters::config::{ConfigError, Env, TableConfig};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    pub table: TableConfig,
    pub outbound_queue_url: String,
    /// Messages read per shard per pass.
    pub page: u32,
    /// The most one run spends before it stops starting passes (the invocation's
    /// deadline bounds it too).
    pub budget: Duration,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            table: env.table()?,
            outbound_queue_url: env.required("OUTBOUND_QUEUE_URL")?,
            page: env.parsed("DISPATCH_PAGE", 500u32)?,
            budget: Duration::from_secs(env.parsed("DISPATCH_BUDGET_SECONDS", 40u64)?),
        })
    }
}
