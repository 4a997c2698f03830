//! This function's settings (its `Environment` in infra/template.yaml), parsed once at
//! cold start; a missing or bad value fails init.

use consent_adapters::config::{ConfigError, Env, TableConfig};

#[derive(Debug, Clone)]
pub struct Config {
    pub table: TableConfig,
    pub outbound_queue_url: String,
    pub event_bus_name: String,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            table: env.table()?,
            outbound_queue_url: env.required("OUTBOUND_QUEUE_URL")?,
            event_bus_name: env.required("EVENT_BUS_NAME")?,
        })
    }
}
