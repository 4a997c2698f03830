//! Configuration read once at cold start into typed values; a bad value fails init.

use std::collections::HashMap;
use std::str::FromStr;

/// A missing or malformed setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Where settings come from: the process environment at cold start, or a map in tests.
#[derive(Debug, Clone, Default)]
pub struct Env(HashMap<String, String>);

impl Env {
    /// The process environment (read once, at cold start).
    pub fn process() -> Self {
        Self(std::env::vars().collect())
    }

    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Self(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    /// A required, non-empty variable.
    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name).ok_or(ConfigError::Missing(name))
    }

    /// An optional variable (unset or empty = None).
    pub fn optional(&self, name: &'static str) -> Option<String> {
        self.0
            .get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// An optional variable parsed into `T`, with a default.
    pub fn parsed<T>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        match self.optional(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|e: T::Err| ConfigError::Invalid {
                name,
                reason: e.to_string(),
            }),
        }
    }

    /// The number pool (`NUMBER_POOL`) new dealers get a texting number from.
    pub fn number_pool(
        &self,
        name: &'static str,
    ) -> Result<Vec<consent::PhoneNumber>, ConfigError> {
        parse_number_pool(&self.optional(name).unwrap_or_default())
            .map_err(|reason| ConfigError::Invalid { name, reason })
    }

    /// The claims the API reads the caller from (`CLAIM_DEALER`, `CLAIM_USER`,
    /// `CLAIM_ROLES`; each defaults to `ClaimNames::default()`'s).
    pub fn claim_names(&self) -> crate::http::ClaimNames {
        let default = crate::http::ClaimNames::default();
        crate::http::ClaimNames {
            dealer: self.optional("CLAIM_DEALER").unwrap_or(default.dealer),
            user: self.optional("CLAIM_USER").unwrap_or(default.user),
            roles: self.optional("CLAIM_ROLES").unwrap_or(default.roles),
        }
    }

    /// The table every function uses (`TABLE_NAME`, `DUE_SHARDS`).
    pub fn table(&self) -> Result<TableConfig, ConfigError> {
        let due_shards = self.parsed("DUE_SHARDS", 16u32)?;
        if !(1..=256).contains(&due_shards) {
            return Err(ConfigError::Invalid {
                name: "DUE_SHARDS",
                reason: "must be 1 to 256".into(),
            });
        }
        Ok(TableConfig {
            name: self.required("TABLE_NAME")?,
            due_shards,
        })
    }
}

/// The table and the shards of its due index (every writer of messages must agree).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableConfig {
    pub name: String,
    pub due_shards: u32,
}

impl TableConfig {
    /// The store over this table.
    pub fn store(&self, aws: &aws_config::SdkConfig) -> crate::DynamoStore {
        crate::DynamoStore::new(
            aws_sdk_dynamodb::Client::new(aws),
            self.name.clone(),
            self.due_shards,
        )
    }
}

/// Ranges larger than this are a typo, not a pool.
const MAX_RANGE: u64 = 10_000;

fn parse_number_pool(value: &str) -> Result<Vec<consent::PhoneNumber>, String> {
    let mut pool = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (first, last) = item.split_once("..").unwrap_or((item, item));
        let (first, last) = (first.trim(), last.trim());
        let digits = |s: &str| -> Result<u64, String> {
            s.strip_prefix('+')
                .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|d| d.parse().ok())
                .ok_or_else(|| format!("{s:?} is not an E.164 number"))
        };
        let (a, b) = (digits(first)?, digits(last)?);
        if first.len() != last.len() || b < a || b - a >= MAX_RANGE {
            return Err(format!(
                "{item:?} is not a range of at most {MAX_RANGE} numbers"
            ));
        }
        for n in a..=b {
            pool.push(consent::PhoneNumber::parse(&format!("+{n}")).map_err(|e| e.to_string())?);
        }
    }
    Ok(pool)
}

/// The shared AWS SDK configuration: region, credentials and `AWS_ENDPOINT_URL`
/// (the emulator locally) come from the standard environment, nothing else.
pub async fn aws() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// What every function's `main` starts with: tracing on, its settings read from the
/// process environment by `settings` (a missing or bad value fails init), and the AWS
/// SDK's configuration.
pub async fn start<C>(
    settings: impl FnOnce(&Env) -> Result<C, ConfigError>,
) -> Result<(C, aws_config::SdkConfig), ConfigError> {
    crate::telemetry::init();
    let config = settings(&Env::process())?;
    Ok((config, aws().await))
}

#[cfg(test)]
mod tests {
    use super::parse_number_pool;

    #[test]
    fn pools_take_numbers_and_ranges() {
        let pool = parse_number_pool("+12025550100..+12025550102, +13125550150").unwrap();
        let pool: Vec<&str> = pool.iter().map(|p| p.as_str()).collect();
        assert_eq!(
            pool,
            [
                "+12025550100",
                "+12025550101",
                "+12025550102",
                "+13125550150"
            ]
        );
        assert!(parse_number_pool("").unwrap().is_empty());
    }

    #[test]
    fn the_table_needs_a_name_and_sane_shards() {
        use super::{ConfigError, Env};
        assert!(matches!(
            Env::from_pairs(&[]).table(),
            Err(ConfigError::Missing("TABLE_NAME"))
        ));
        let t = Env::from_pairs(&[("TABLE_NAME", "t")]).table().unwrap();
        assert_eq!((t.name.as_str(), t.due_shards), ("t", 16));
        for bad in ["0", "257", "x"] {
            assert!(Env::from_pairs(&[("TABLE_NAME", "t"), ("DUE_SHARDS", bad)])
                .table()
                .is_err());
        }
    }

    #[test]
    fn bad_pools_are_refused() {
        for bad in [
            "+12025550199..+12025550100",
            "+1202555010..+12025550100",
            "12025550100",
            "+12025550100..+12035550100",
        ] {
            assert!(parse_number_pool(bad).is_err(), "{bad}");
        }
    }
}
