//! Secrets from AWS Secrets Manager, read once per container, off the init path.
//!
//! The environment names a secret (its ARN), never holds its value: anyone allowed
//! `lambda:GetFunctionConfiguration` can read a function's environment, while
//! `secretsmanager:GetSecretValue` is granted to the functions that need the value only.
//!
//! The read starts at cold start but does not hold up the first poll of the runtime API
//! ([`Deferred`]): the first event that needs the value waits for it, the others never do,
//! and the read overlaps whatever that event does first (a claim, a contact read).
//!
//! Secrets rotate without an outage. A value read at cold start is kept, but a failure that
//! a rotation explains (a webhook signature that does not match, a 401 from the carrier, a
//! code that does not verify) reads the secret again ([`Deferred::reread`]), at most once
//! per [`REREAD_INTERVAL`] however many such failures arrive (an attacker's bad signatures
//! must not become a flood of Secrets Manager reads). The version a rotation replaced
//! (stage `AWSPREVIOUS`) is read beside the current one ([`Versions`]): webhooks still signed
//! with the previous Twilio token, and codes hashed under the previous code key, are accepted
//! while the rotation is under way (docs/operations.md, "Rotating secrets").

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use consent::approval::CodeHasher;
use consent::ports::{Carrier, CarrierError, CarrierReceipt, CarrierSend, CodeKey};
use consent::StoreError;
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

    /// Reads the current value and, while a rotation is under way, the one it replaced
    /// (stage `AWSPREVIOUS`; none before the first rotation).
    pub async fn read_versions(
        &self,
        client: &aws_sdk_secretsmanager::Client,
    ) -> Result<Versions, SecretError> {
        let previous = async {
            let out = client
                .get_secret_value()
                .secret_id(&self.arn)
                .version_stage("AWSPREVIOUS")
                .send()
                .await;
            match out {
                Ok(out) => Ok(out
                    .secret_string()
                    .map(|v| v.trim().to_owned())
                    .filter(|v| !v.is_empty())),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_not_found_exception()) =>
                {
                    Ok(None)
                }
                Err(e) => Err(SecretError::Unreadable {
                    variable: self.variable,
                    source: Box::new(e),
                }),
            }
        };
        let (current, previous) = tokio::join!(self.read(client), previous);
        let current = current?;
        let previous = previous?.filter(|p| *p != current);
        Ok(Versions { current, previous })
    }
}

/// A secret's current value and, during a rotation, the value it replaced.
#[derive(Clone, PartialEq, Eq)]
pub struct Versions {
    pub current: String,
    pub previous: Option<String>,
}

impl Versions {
    /// A value no rotation has replaced yet.
    pub fn only(current: impl Into<String>) -> Self {
        Self {
            current: current.into(),
            previous: None,
        }
    }

    /// The current value, then the previous one.
    pub fn all(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.current.as_str()).chain(self.previous.as_deref())
    }
}

impl std::fmt::Debug for Versions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Versions")
            .field("previous", &self.previous.is_some())
            .finish_non_exhaustive()
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

/// The least time between two reads of a secret after failures a rotation would explain.
pub const REREAD_INTERVAL: Duration = Duration::from_secs(30);

/// A value built from secrets whose read starts at cold start, off the init path. The first
/// [`get`](Deferred::get) waits for that read; a failed read is not kept: the next `get`
/// reads again. Concurrent `get`s share one read. [`reread`](Deferred::reread) reads again
/// after a failure that a rotated secret would explain.
pub struct Deferred<T> {
    value: RwLock<Option<Arc<T>>>,
    first: Mutex<Option<JoinHandle<Result<T, SecretError>>>>,
    load: Option<Load<T>>,
    /// One read at a time: the first, a retry after a failed one, a re-read.
    reading: tokio::sync::Mutex<Option<Instant>>,
    reread_interval: Duration,
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
            value: RwLock::new(None),
            first: Mutex::new(Some(first)),
            load: Some(load),
            reading: tokio::sync::Mutex::new(None),
            reread_interval: REREAD_INTERVAL,
        }
    }

    /// A value already in hand (tests, or a value that needs no read).
    pub fn ready(value: T) -> Self {
        Self {
            value: RwLock::new(Some(Arc::new(value))),
            first: Mutex::new(None),
            load: None,
            reading: tokio::sync::Mutex::new(None),
            reread_interval: REREAD_INTERVAL,
        }
    }

    /// Another least time between re-reads (tests).
    pub fn with_reread_interval(mut self, interval: Duration) -> Self {
        self.reread_interval = interval;
        self
    }

    fn held(&self) -> Option<Arc<T>> {
        self.value.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn keep(&self, value: T) -> Arc<T> {
        let value = Arc::new(value);
        *self.value.write().unwrap_or_else(|e| e.into_inner()) = Some(value.clone());
        value
    }

    /// The value: at once when read, else when the read started at cold start (or a new
    /// one, if that one failed) answers.
    pub async fn get(&self) -> Result<Arc<T>, SecretError> {
        if let Some(value) = self.held() {
            return Ok(value);
        }
        let mut last_read = self.reading.lock().await;
        if let Some(value) = self.held() {
            return Ok(value); // read by whoever held the lock before us
        }
        let first = self.first.lock().unwrap_or_else(|e| e.into_inner()).take();
        let read = match (first, &self.load) {
            (Some(read), _) => read.await.map_err(|_| SecretError::Stopped)?,
            (None, Some(load)) => load().await,
            (None, None) => Err(SecretError::Stopped),
        };
        *last_read = Some(Instant::now());
        read.map(|value| self.keep(value))
    }

    /// Reads the secret again after a failure with `stale` (a value [`get`](Deferred::get)
    /// gave) that a rotation would explain, and returns the new value: the one another
    /// caller's re-read brought meanwhile, if any; else a fresh read, unless the last read
    /// was less than the re-read interval ago. `None` when nothing newer can be had (too
    /// soon, unreadable, or never read from a secret).
    pub async fn reread(&self, stale: &Arc<T>) -> Option<Arc<T>> {
        let load = self.load.as_ref()?;
        let mut last_read = self.reading.lock().await;
        if let Some(held) = self.held().filter(|held| !Arc::ptr_eq(held, stale)) {
            return Some(held);
        }
        if last_read.is_some_and(|at| at.elapsed() < self.reread_interval) {
            return None;
        }
        *last_read = Some(Instant::now());
        match load().await {
            Ok(value) => {
                tracing::info!("secret read again after a failure a rotation explains");
                Some(self.keep(value))
            }
            Err(e) => {
                tracing::warn!(error = %e, "secret not read again");
                None
            }
        }
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

    /// Starts reading the secret's current and previous values (see [`Deferred`]).
    pub fn deferred_versions(&self, client: &aws_sdk_secretsmanager::Client) -> Deferred<Versions> {
        let (secret, client) = (self.clone(), client.clone());
        Deferred::start(move || {
            let (secret, client) = (secret.clone(), client.clone());
            async move { secret.read_versions(&client).await }
        })
    }

    /// Starts reading the approval-code key, with the key it replaced while a rotation is
    /// under way (see [`Deferred`]).
    pub fn deferred_code_key(
        &self,
        client: &aws_sdk_secretsmanager::Client,
    ) -> Deferred<CodeHasher> {
        let (secret, client) = (self.clone(), client.clone());
        Deferred::start(move || {
            let (secret, client) = (secret.clone(), client.clone());
            async move {
                let versions = secret.read_versions(&client).await?;
                let invalid = |e: consent::approval::WeakKey| SecretError::Invalid {
                    variable: secret.variable,
                    reason: e.to_string(),
                };
                let current = CodeHasher::new(versions.current).map_err(invalid)?;
                Ok(match versions.previous.map(CodeHasher::new) {
                    Some(Ok(previous)) => current.with_previous(previous),
                    _ => current,
                })
            }
        })
    }
}

#[async_trait]
impl CodeKey for Deferred<CodeHasher> {
    async fn key(&self) -> Result<Arc<CodeHasher>, StoreError> {
        self.get()
            .await
            .map_err(|e| StoreError::unavailable("the approval-code key", e))
    }

    async fn reread(&self, stale: &Arc<CodeHasher>) -> Option<Arc<CodeHasher>> {
        Deferred::reread(self, stale).await
    }
}

/// A carrier whose credentials are still on their way: until they are read nothing is sent,
/// and the text is retried later (`Retryable`: the carrier was never called). A send the
/// carrier refuses for its credentials (HTTP 401: a token rotated since it was read) reads
/// them again and is sent once more; refused again, it is retried later, never failed.
#[async_trait]
impl<C: Carrier + 'static> Carrier for Deferred<C> {
    async fn send(&self, message: &CarrierSend) -> Result<CarrierReceipt, CarrierError> {
        let carrier = match self.get().await {
            Ok(carrier) => carrier,
            Err(e) => {
                tracing::warn!(error = %e, "carrier credentials unreadable; not sent");
                return Err(CarrierError::Retryable {
                    reason: "carrier credentials unreadable".into(),
                    retry_after: None,
                });
            }
        };
        match carrier.send(message).await {
            Err(e) if crate::carrier::credentials_refused(&e) => {
                let Some(newer) = self.reread(&carrier).await else {
                    return Err(credentials_refused());
                };
                match newer.send(message).await {
                    Err(e) if crate::carrier::credentials_refused(&e) => Err(credentials_refused()),
                    other => other,
                }
            }
            other => other,
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

/// Refused for its credentials: never processed, so retried later (the operator fixes the
/// secret; the alarm on the outbound queue's age says so).
fn credentials_refused() -> CarrierError {
    tracing::error!("the carrier refuses the auth token in the secret; texts wait in the queue");
    CarrierError::Retryable {
        reason: "carrier refused the credentials (HTTP 401)".into(),
        retry_after: None,
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
        assert_eq!(*value.get().await.unwrap(), "token");
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
        let ready = Deferred::ready(7);
        let seven = ready.get().await.unwrap();
        assert!(ready.reread(&seven).await.is_none(), "nothing to read");
    }

    /// A secret whose value is `n`, the number of reads before this one.
    fn counting(reads: &Arc<AtomicUsize>, interval: Duration) -> Deferred<usize> {
        let counted = reads.clone();
        Deferred::start(move || {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move { Ok::<_, SecretError>(n) }
        })
        .with_reread_interval(interval)
    }

    #[tokio::test]
    async fn a_reread_reads_again_at_most_once_per_interval_and_shares_the_new_value() {
        let reads = Arc::new(AtomicUsize::new(0));
        let value = counting(&reads, Duration::from_millis(200));
        let first = value.get().await.unwrap();
        assert_eq!(*first, 0);
        // Right after the first read: not again.
        assert!(value.reread(&first).await.is_none());
        tokio::time::sleep(Duration::from_millis(250)).await;
        // Many failures with the first value at once: one read, whose value all of them get.
        let rereads = futures::future::join_all((0..10).map(|_| value.reread(&first))).await;
        assert!(
            rereads.iter().all(|v| v.as_deref() == Some(&1)),
            "{rereads:?}"
        );
        assert_eq!(reads.load(Ordering::SeqCst), 2);
        let second = value.get().await.unwrap();
        assert_eq!(*second, 1, "the new value is kept");
        for _ in 0..10 {
            assert!(value.reread(&second).await.is_none());
        }
        assert_eq!(reads.load(Ordering::SeqCst), 2, "bounded");
    }

    /// A carrier that takes only the token `accepts`, refusing others as Twilio does (401).
    struct Carrier {
        token: &'static str,
        accepts: &'static str,
        sends: Arc<AtomicUsize>,
    }

    #[async_trait::async_trait]
    impl consent::ports::Carrier for Carrier {
        async fn send(
            &self,
            _: &consent::ports::CarrierSend,
        ) -> Result<consent::ports::CarrierReceipt, consent::ports::CarrierError> {
            self.sends.fetch_add(1, Ordering::SeqCst);
            if self.token == self.accepts {
                Ok(consent::ports::CarrierReceipt {
                    carrier_message_id: format!("SM-{}", self.token),
                })
            } else {
                Err(consent::ports::CarrierError::Permanent {
                    code: Some(20003),
                    reason: "HTTP 401".into(),
                })
            }
        }

        async fn find_sent(
            &self,
            _: &consent::ports::CarrierSend,
            _: chrono::DateTime<chrono::Utc>,
        ) -> Result<Option<consent::ports::CarrierReceipt>, consent::ports::CarrierError> {
            Ok(None)
        }
    }

    fn a_text() -> consent::ports::CarrierSend {
        consent::ports::CarrierSend {
            message_id: consent::MessageId::parse("01J00000000000000000000000").unwrap(),
            promotional: false,
            to: consent::PhoneNumber::parse("+13125550142").unwrap(),
            from: consent::PhoneNumber::parse("+12025550100").unwrap(),
            body: "Your payment is due".into(),
            status_callback: None,
        }
    }

    #[tokio::test]
    async fn a_401_reads_the_token_again_and_sends_once_more_with_the_new_one() {
        use consent::ports::Carrier as _;
        let (reads, sends) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (counted, sent) = (reads.clone(), sends.clone());
        // The account's token was rotated after the cold start read the old one.
        let carrier = Deferred::start(move || {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            let sends = sent.clone();
            async move {
                let token = if n == 0 { "old" } else { "new" };
                Ok::<_, SecretError>(Carrier {
                    token,
                    accepts: "new",
                    sends,
                })
            }
        })
        .with_reread_interval(Duration::ZERO);
        let receipt = carrier.send(&a_text()).await.unwrap();
        assert_eq!(receipt.carrier_message_id, "SM-new");
        assert_eq!(
            (reads.load(Ordering::SeqCst), sends.load(Ordering::SeqCst)),
            (2, 2)
        );
        assert_eq!(
            carrier.send(&a_text()).await.unwrap().carrier_message_id,
            "SM-new"
        );
        assert_eq!(reads.load(Ordering::SeqCst), 2, "the new token is kept");
    }

    #[tokio::test]
    async fn a_token_the_carrier_keeps_refusing_leaves_the_text_waiting_not_failed() {
        use consent::ports::Carrier as _;
        let sends = Arc::new(AtomicUsize::new(0));
        let sent = sends.clone();
        let carrier = Deferred::start(move || {
            let sends = sent.clone();
            async move {
                Ok::<_, SecretError>(Carrier {
                    token: "wrong",
                    accepts: "right",
                    sends,
                })
            }
        })
        .with_reread_interval(Duration::from_secs(3600));
        let refused = carrier.send(&a_text()).await.unwrap_err();
        assert!(
            matches!(&refused, consent::ports::CarrierError::Retryable { reason, .. } if reason.contains("401")),
            "{refused:?}"
        );
        assert_eq!(
            sends.load(Ordering::SeqCst),
            1,
            "no second send without a new token"
        );
    }
}
