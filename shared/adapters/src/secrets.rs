//! Secrets from AWS Secrets Manager, read once per container at cold start.
//!
//! The environment names a secret (its ARN), never holds its value: anyone allowed
//! `lambda:GetFunctionConfiguration` can read a function's environment, while
//! `secretsmanager:GetSecretValue` is granted to the functions that need the value only.

use crate::config::{ConfigError, Env};

/// A secret named in the configuration (its ARN, from `variable`), not yet read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    pub variable: &'static str,
    pub arn: String,
}

impl SecretRef {
    /// The ARN in the required variable `variable`.
    pub fn from_env(env: &Env, variable: &'static str) -> Result<Self, ConfigError> {
        Ok(Self {
            variable,
            arn: env.required(variable)?,
        })
    }

    /// Reads the secret's string value (once per container, at cold start).
    pub async fn read(
        &self,
        client: &aws_sdk_secretsmanager::Client,
    ) -> Result<String, SecretError> {
        let out = client
            .get_secret_value()
            .secret_id(&self.arn)
            .send()
            .await
            .map_err(|e| SecretError::Unreadable {
                variable: self.variable,
                source: Box::new(e),
            })?;
        match out.secret_string() {
            Some(v) if !v.trim().is_empty() => Ok(v.trim().to_owned()),
            _ => Err(SecretError::Empty(self.variable)),
        }
    }
}

/// Why a secret could not be had at cold start (init fails: nothing works without it).
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the secret named by {variable} cannot be read")]
    Unreadable {
        variable: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("the secret named by {0} has no string value")]
    Empty(&'static str),
}
