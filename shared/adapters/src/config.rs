//! Configuration read once at cold start into typed values; a bad value fails init.

use std::str::FromStr;

/// A missing or malformed setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// A required, non-empty variable.
pub fn required(name: &'static str) -> Result<String, ConfigError> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v.trim().to_owned()),
        _ => Err(ConfigError::Missing(name)),
    }
}

/// An optional variable (unset or empty = None).
pub fn optional(name: &'static str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// An optional variable parsed into `T`, with a default.
pub fn parsed<T>(name: &'static str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match optional(name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|e: T::Err| ConfigError::Invalid {
            name,
            reason: e.to_string(),
        }),
    }
}

/// The number pool new dealers get a texting number from (comma-separated E.164).
pub fn number_pool(name: &'static str) -> Result<Vec<consent::PhoneNumber>, ConfigError> {
    optional(name)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            consent::PhoneNumber::parse(s).map_err(|e| ConfigError::Invalid {
                name,
                reason: e.to_string(),
            })
        })
        .collect()
}

/// The shared AWS SDK configuration: region, credentials and `AWS_ENDPOINT_URL`
/// (the emulator locally) come from the standard environment, nothing else.
pub async fn aws() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}
