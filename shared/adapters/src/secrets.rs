//! Secrets from AWS Secrets Manager, read once per container, off the init path.
//!
//! The environment names a secret (its ARN), never holds its value: anyone allowed
//! `lambda:GetFunctionConfiguration` can read a function's environment, while
//! `secretsmanager:GetSecretValue` is granted to the functions that need the value only.
//!
//! The read starts at cold start but does not hold up the first poll of the runtime API
//! ([`Deferred`]): the first event that needs the value waits for it, the others never do,
//! and the read overlaps whatever that event does first (a claim, a contact read).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use consent::approval::CodeHasher;
use consent::ports::{Carrier, CarrierError, CarrierReceipt, CarrierSend, CodeKey};
use consent::StoreError;
use tokio::sync::OnceCell;
use tokio::task::JoinHandle;

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

    /// Reads the secret's string value.
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

/// Why a secret, or what is built from it, could not be had. Transient for the event that
/// needed it; the next event tries again.
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
    #[error("the secret named by {variable} is not usable: {reason}")]
    Invalid {
        variable: &'static str,
        reason: String,
    },
    #[error("the read of a secret stopped before it answered")]
    Stopped,
}

type Load<T> =
    Box<dyn Fn() -> Pin<Box<dyn Future<Output = Result<T, SecretError>> + Send>> + Send + Sync>;

/// A value built from secrets whose read starts at cold start, off the init path. The first
/// [`get`](Deferred::get) waits for that read; a failed read is not kept: the next `get`
/// reads again. Concurrent `get`s share one read.
pub struct Deferred<T> {
    value: OnceCell<T>,
    first: Mutex<Option<JoinHandle<Result<T, SecretError>>>>,
    load: Option<Load<T>>,
}

impl<T: Send + Sync + 'static> Deferred<T> {
    /// Starts `load` now, on the runtime, and returns at once.
    pub fn start<F, Fut>(load: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, SecretError>> + Send + 'static,
    {
        let load: Load<T> = Box::new(move || Box::pin(load()));
        let first = tokio::spawn(load());
        Self {
            value: OnceCell::new(),
            first: Mutex::new(Some(first)),
            load: Some(load),
        }
    }

    /// A value already in hand (tests, or a value that needs no read).
    pub fn ready(value: T) -> Self {
        Self {
            value: OnceCell::new_with(Some(value)),
            first: Mutex::new(None),
            load: None,
        }
    }

    /// The value: at once when read, else when the read started at cold start (or a new
    /// one, if that one failed) answers.
    pub async fn get(&self) -> Result<&T, SecretError> {
        self.value
            .get_or_try_init(|| async {
                let first = self.first.lock().unwrap_or_else(|e| e.into_inner()).take();
                match (first, &self.load) {
                    (Some(read), _) => read.await.map_err(|_| SecretError::Stopped)?,
                    (None, Some(load)) => load().await,
                    (None, None) => Err(SecretError::Stopped),
                }
            })
            .await
    }
}

impl SecretRef {
    /// Starts reading the secret's string value (see [`Deferred`]).
    pub fn deferred(&self, client: &aws_sdk_secretsmanager::Client) -> Deferred<String> {
        self.deferred_map(client, Ok::<String, std::convert::Infallible>)
    }

    /// Starts reading the secret and building `make` from its value (see [`Deferred`]); a
    /// value `make` refuses is [`SecretError::Invalid`].
    pub fn deferred_map<T, E, F>(
        &self,
        client: &aws_sdk_secretsmanager::Client,
        make: F,
    ) -> Deferred<T>
    where
        T: Send + Sync + 'static,
        E: std::fmt::Display,
        F: Fn(String) -> Result<T, E> + Send + Sync + 'static,
    {
        let (secret, client, make) = (self.clone(), client.clone(), Arc::new(make));
        Deferred::start(move || {
            let (secret, client, make) = (secret.clone(), client.clone(), make.clone());
            async move {
                make(secret.read(&client).await?).map_err(|e| SecretError::Invalid {
                    variable: secret.variable,
                    reason: e.to_string(),
                })
            }
        })
    }

    /// Starts reading the approval-code key (see [`Deferred`]).
    pub fn deferred_code_key(
        &self,
        client: &aws_sdk_secretsmanager::Client,
    ) -> Deferred<CodeHasher> {
        self.deferred_map(client, |key: String| CodeHasher::new(key))
    }
}

#[async_trait]
impl CodeKey for Deferred<CodeHasher> {
    async fn key(&self) -> Result<&CodeHasher, StoreError> {
        self.get()
            .await
            .map_err(|e| StoreError::unavailable("the approval-code key", e))
    }
}

/// A carrier whose credentials are still on their way: until they are read nothing is sent,
/// and the text is retried later (`Retryable`: the carrier was never called).
#[async_trait]
impl<C: Carrier + 'static> Carrier for Deferred<C> {
    async fn send(&self, message: &CarrierSend) -> Result<CarrierReceipt, CarrierError> {
        match self.get().await {
            Ok(carrier) => carrier.send(message).await,
            Err(e) => {
                tracing::warn!(error = %e, "carrier credentials unreadable; not sent");
                Err(CarrierError::Retryable {
                    reason: "carrier credentials unreadable".into(),
                    retry_after: None,
                })
            }
        }
    }

    async fn find_sent(
        &self,
        message: &CarrierSend,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<CarrierReceipt>, CarrierError> {
        match self.get().await {
            Ok(carrier) => carrier.find_sent(message, since).await,
            Err(e) => {
                tracing::warn!(error = %e, "carrier credentials unreadable; message list not read");
                Err(CarrierError::Retryable {
                    reason: "carrier credentials unreadable".into(),
                    retry_after: None,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::{Deferred, SecretError};

    #[tokio::test]
    async fn the_read_starts_at_once_and_the_first_get_waits_for_it() {
        let reads = Arc::new(AtomicUsize::new(0));
        let counted = reads.clone();
        let value = Deferred::start(move || {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok::<_, SecretError>("token".to_owned())
            }
        });
        tokio::task::yield_now().await;
        assert_eq!(
            reads.load(Ordering::SeqCst),
            1,
            "started before anyone asked"
        );
        let (a, b) = tokio::join!(value.get(), value.get());
        assert_eq!(
            (a.unwrap().as_str(), b.unwrap().as_str()),
            ("token", "token")
        );
        assert_eq!(value.get().await.unwrap(), "token");
        assert_eq!(reads.load(Ordering::SeqCst), 1, "one read, shared");
    }

    #[tokio::test]
    async fn a_failed_read_is_not_kept_the_next_get_reads_again() {
        let reads = Arc::new(AtomicUsize::new(0));
        let counted = reads.clone();
        let value = Deferred::start(move || {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    Err(SecretError::Empty("TEST_SECRET_ARN"))
                } else {
                    Ok(n)
                }
            }
        });
        assert!(matches!(
            value.get().await,
            Err(SecretError::Empty("TEST_SECRET_ARN"))
        ));
        assert_eq!(*value.get().await.unwrap(), 1);
        assert_eq!(*value.get().await.unwrap(), 1, "kept once read");
        assert_eq!(reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_ready_value_needs_no_read() {
        assert_eq!(*Deferred::ready(7).get().await.unwrap(), 7);
    }
}
