//! Secrets from AWS Secrets Manager, read once per container at cold start.
//!
//! The environment names a secret (its ARN), never holds its value: anyone allowed
//! `lambda:GetFunctionConfiguration` can read a function's environment, while
//! `secretsmanager:GetSecretValue` is granted to the functions that need the value only.

use crate::config::ConfigError;

/// Reads the secret named by the environment variable `arn_variable` (required).
pub async fn from_env(
    client: &aws_sdk_secretsmanager::Client,
    arn_variable: &'static str,
) -> Result<String, SecretError> {
    let arn = crate::config::required(arn_variable)?;
    let out = client
        .get_secret_value()
        .secret_id(&arn)
        .send()
        .await
        .map_err(|e| SecretError::Unreadable {
            variable: arn_variable,
            source: Box::new(e),
        })?;
    match out.secret_string() {
        Some(v) if !v.trim().is_empty() => Ok(v.trim().to_owned()),
        _ => Err(SecretError::Empty(arn_variable)),
    }
}

/// Why a secret could not be had at cold start (init fails: nothing works without it).
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("the secret named by {variable} cannot be read")]
    Unreadable {
        variable: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("the secret named by {0} has no string value")]
    Empty(&'static str),
}
