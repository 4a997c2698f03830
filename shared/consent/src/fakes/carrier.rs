//! The carrier in memory, with scripted failures.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::phone::PhoneNumber;
use crate::ports::*;

/// How the fake carrier answers the next sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CarrierScript {
    Retryable,
    OptedOut,
    Permanent,
    /// The carrier takes the text (the phone gets it) but the answer never arrives.
    AcceptThenTimeout,
    /// The request is lost on its way (the phone gets nothing) and no answer arrives.
    LostThenTimeout,
    /// Over the account's concurrency: 429, never processed.
    Throttled,
    /// The message list cannot be read (the next `find_sent`).
    ListUnavailable,
}

#[derive(Default)]
struct CarrierState {
    sent: Vec<CarrierSend>,
    /// The carrier's ids of what it took, in the order of `sent`.
    sids: Vec<String>,
    script: VecDeque<CarrierScript>,
    list_down: u32,
    counter: u64,
}

impl CarrierState {
    fn take(&mut self, message: &CarrierSend) -> String {
        self.counter += 1;
        let sid = format!("SM{:032x}", self.counter);
        self.sent.push(message.clone());
        self.sids.push(sid.clone());
        sid
    }
}

/// The carrier in memory: records every send; can fail the next ones.
#[derive(Clone, Default)]
pub struct FakeCarrier {
    inner: Arc<Mutex<CarrierState>>,
}

impl FakeCarrier {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn sent(&self) -> Vec<CarrierSend> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .sent
            .clone()
    }

    /// Texts received by a number, oldest first.
    pub fn inbox(&self, to: &PhoneNumber) -> Vec<String> {
        self.sent()
            .into_iter()
            .filter(|s| &s.to == to)
            .map(|s| s.body)
            .collect()
    }

    pub fn fail_next(&self, n: usize, how: CarrierScript) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if how == CarrierScript::ListUnavailable {
            g.list_down += u32::try_from(n).unwrap_or(u32::MAX);
            return;
        }
        g.script.extend(std::iter::repeat_n(how, n));
    }
}

#[async_trait]
impl Carrier for FakeCarrier {
    async fn send(&self, message: &CarrierSend) -> Result<CarrierReceipt, CarrierError> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match g.script.pop_front() {
            Some(CarrierScript::Retryable) => Err(CarrierError::Retryable {
                reason: "HTTP 500".into(),
                retry_after: None,
            }),
            Some(CarrierScript::OptedOut) => Err(CarrierError::OptedOut { code: 21610 }),
            Some(CarrierScript::Permanent) => Err(CarrierError::Permanent {
                code: Some(21211),
                reason: "HTTP 400".into(),
            }),
            Some(CarrierScript::AcceptThenTimeout) => {
                g.take(message);
                Err(CarrierError::Unknown {
                    reason: "timeout after the request was sent".into(),
                })
            }
            Some(CarrierScript::LostThenTimeout) => Err(CarrierError::Unknown {
                reason: "timeout after the request was sent".into(),
            }),
            Some(CarrierScript::Throttled) => Err(CarrierError::Throttled { retry_after: None }),
            Some(CarrierScript::ListUnavailable) | None => Ok(CarrierReceipt {
                carrier_message_id: g.take(message),
            }),
        }
    }

    async fn find_sent(
        &self,
        message: &CarrierSend,
        _since: DateTime<Utc>,
    ) -> Result<Option<CarrierReceipt>, CarrierError> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if g.list_down > 0 {
            g.list_down -= 1;
            return Err(CarrierError::Retryable {
                reason: "HTTP 503".into(),
                retry_after: None,
            });
        }
        Ok(g.sent
            .iter()
            .zip(&g.sids)
            .rev()
            .find(|(s, _)| s.to == message.to && s.from == message.from && s.body == message.body)
            .map(|(_, sid)| CarrierReceipt {
                carrier_message_id: sid.clone(),
            }))
    }
}

/// The carriers' opt-out lists in memory: records each lift; can fail the next ones.
#[derive(Clone, Default)]
pub struct FakeOptOuts {
    inner: Arc<Mutex<OptOutState>>,
}

#[derive(Default)]
struct OptOutState {
    lifted: Vec<(PhoneNumber, PhoneNumber)>,
    failures: u32,
}

impl FakeOptOuts {
    pub fn new() -> Self {
        Self::default()
    }

    /// Each lift so far: (number, person).
    pub fn lifted(&self) -> Vec<(PhoneNumber, PhoneNumber)> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .lifted
            .clone()
    }

    /// The next `n` lifts fail (the carrier is unavailable).
    pub fn fail_next(&self, n: u32) {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .failures = n;
    }
}

#[async_trait]
impl CarrierOptOuts for FakeOptOuts {
    async fn lift(&self, number: &PhoneNumber, person: &PhoneNumber) -> Result<(), CarrierError> {
        let mut state = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if state.failures > 0 {
            state.failures -= 1;
            return Err(CarrierError::Retryable {
                reason: "opt-out list unavailable (scripted)".into(),
                retry_after: None,
            });
        }
        state.lifted.push((number.clone(), person.clone()));
        Ok(())
    }
}
