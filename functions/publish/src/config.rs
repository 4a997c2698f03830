//! This function's settings (its `Environment` in infra/template.yaml), parsed once at
//! cold start; a missing or bad value fails init.

use consent_adapters::config::{ConfigError, Env};

#[derive(Debug, Clone)]
pub struct Config {
    pub event_bus_name: String,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            event_bus_name: env.required("EVENT_BUS_NAME")?,
        })
    }
}
