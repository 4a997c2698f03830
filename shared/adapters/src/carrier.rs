//! The Twilio-compatible REST carrier: `POST {base}/2010-04-01/Accounts/{sid}/Messages.json`,
//! form-encoded, basic auth, StatusCallback set. The base URL is configuration, so the
//! same adapter talks to Twilio in AWS and to the fake carrier locally.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use consent::ports::{Carrier, CarrierError, CarrierReceipt, CarrierSend};

/// Twilio error codes meaning the recipient opted out / is blocked.
pub const OPT_OUT_CODES: [u32; 1] = [21610];

/// How a send refused for its credentials comes back (HTTP 401, Twilio error 20003).
const REFUSED_CREDENTIALS: &str = "HTTP 401";

/// The carrier refused our credentials: the auth token may have been rotated since it was read.
pub fn credentials_refused(e: &CarrierError) -> bool {
    matches!(e, CarrierError::Permanent { reason, .. } if reason == REFUSED_CREDENTIALS)
}

#[derive(Clone)]
pub struct TwilioCarrier {
    http: reqwest::Client,
    base_url: String,
    account_sid: String,
    auth_token: String,
}

impl std::fmt::Debug for TwilioCarrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioCarrier")
            .field("base_url", &self.base_url)
            .field("account_sid", &self.account_sid)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Created {
    sid: String,
}

#[derive(Deserialize, Default)]
struct TwilioError {
    code: Option<u32>,
}

/// A page of Twilio's message list (`GET .../Messages.json`), newest first.
#[derive(Deserialize)]
struct MessagePage {
    messages: Vec<ListedMessage>,
}

#[derive(Deserialize)]
struct ListedMessage {
    sid: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    date_created: Option<String>,
}

/// How many of the newest texts between two numbers are searched for an unknown outcome.
const LIST_PAGE_SIZE: &str = "50";

impl TwilioCarrier {
    /// How long connecting may take: a send whose connection never opened surely did
    /// not reach the carrier and is retried.
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

    pub fn new(
        base_url: impl Into<String>,
        account_sid: impl Into<String>,
        auth_token: impl Into<String>,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(Self::CONNECT_TIMEOUT)
                .build()?,
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            account_sid: account_sid.into(),
            auth_token: auth_token.into(),
        })
    }

    fn url(&self) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.base_url, self.account_sid
        )
    }
}

#[async_trait]
impl Carrier for TwilioCarrier {
    async fn send(&self, m: &CarrierSend) -> Result<CarrierReceipt, CarrierError> {
        let mut form = vec![
            ("To", m.to.as_str()),
            ("From", m.from.as_str()),
            ("Body", m.body.as_str()),
        ];
        if let Some(cb) = &m.status_callback {
            form.push(("StatusCallback", cb.as_str()));
        }
        let body = serde_urlencoded::to_string(&form).map_err(|e| CarrierError::Permanent {
            code: None,
            reason: format!("cannot encode request: {e}"),
        })?;
        let response = self
            .http
            .post(self.url())
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() {
                    // The request never left: sending again cannot text twice.
                    CarrierError::Retryable {
                        reason: "connection failed".into(),
                        retry_after: None,
                    }
                } else {
                    // Sent, or partly sent, and no answer: the carrier may have it.
                    CarrierError::Unknown {
                        reason: if e.is_timeout() {
                            "no answer within the timeout".into()
                        } else {
                            "connection lost after the request was sent".into()
                        },
                    }
                }
            })?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = match response.text().await {
            Ok(text) => text,
            Err(_) if status.is_success() => {
                return Err(CarrierError::Unknown {
                    reason: format!("HTTP {}: body not read", status.as_u16()),
                })
            }
            // An error status was read: the carrier did not take the message.
            Err(_) => String::new(),
        };
        if status.is_success() {
            let created: Created =
                serde_json::from_str(&text).map_err(|_| CarrierError::Unknown {
                    reason: format!("HTTP {}: unreadable body", status.as_u16()),
                })?;
            return Ok(CarrierReceipt {
                carrier_message_id: created.sid,
            });
        }
        let err: TwilioError = serde_json::from_str(&text).unwrap_or_default();
        match status.as_u16() {
            // Over the account's concurrency: Twilio never processed it.
            429 => return Err(CarrierError::Throttled { retry_after }),
            // Not taken: the service is down or in maintenance.
            503 => {
                return Err(CarrierError::Retryable {
                    reason: "HTTP 503".into(),
                    retry_after,
                })
            }
            // Twilio may have processed it (500, 502, 504, ...): its message list decides.
            code if status.is_server_error() => {
                return Err(CarrierError::Unknown {
                    reason: format!("HTTP {code}"),
                })
            }
            _ => {}
        }
        match err.code {
            Some(code) if OPT_OUT_CODES.contains(&code) => Err(CarrierError::OptedOut { code }),
            // The carrier's message is not kept: it often quotes the recipient's number.
            code if status.as_u16() == 401 => Err(CarrierError::Permanent {
                code,
                reason: REFUSED_CREDENTIALS.into(),
            }),
            code => Err(CarrierError::Permanent {
                code,
                reason: format!("HTTP {}", status.as_u16()),
            }),
        }
    }

    async fn find_sent(
        &self,
        m: &CarrierSend,
        since: DateTime<Utc>,
    ) -> Result<Option<CarrierReceipt>, CarrierError> {
        // By To and From only: a text still queued at the carrier has no DateSent yet.
        let unreadable = |reason: String| CarrierError::Retryable {
            reason,
            retry_after: None,
        };
        let response = self
            .http
            .get(self.url())
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .query(&[
                ("To", m.to.as_str()),
                ("From", m.from.as_str()),
                ("PageSize", LIST_PAGE_SIZE),
            ])
            .send()
            .await
            .map_err(|_| unreadable("message list: no answer".into()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(unreadable(format!(
                "message list: HTTP {}",
                status.as_u16()
            )));
        }
        let page: MessagePage = response
            .text()
            .await
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .ok_or_else(|| unreadable("message list: unreadable body".into()))?;
        Ok(page
            .messages
            .into_iter()
            .filter(|listed| {
                listed
                    .date_created
                    .as_deref()
                    .and_then(|d| DateTime::parse_from_rfc2822(d).ok())
                    .is_none_or(|d| d >= since)
            })
            .find(|listed| listed.body == m.body)
            .map(|listed| CarrierReceipt {
                carrier_message_id: listed.sid,
            }))
    }
}
