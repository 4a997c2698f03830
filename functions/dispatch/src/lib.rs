//! The minute schedule: moves due scheduled messages to the outbound queue.

pub mod config;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use consent::ports::{ConsentReader, MessageStore, OutboundQueue, PendingStore, WorkQueue};
use consent::service::sending::{dispatch, DispatchPorts, DispatchReport};
use consent::DomainError;

#[derive(Clone)]
pub struct App {
    pub consent: Arc<dyn ConsentReader>,
    pub messages: Arc<dyn MessageStore>,
    pub queue: Arc<dyn OutboundQueue>,
    pub pending: Arc<dyn PendingStore>,
    pub work: Arc<dyn WorkQueue>,
    pub shards: u32,
    /// Messages read per shard per pass.
    pub page: u32,
    /// Stop starting new passes after this long (the function's timeout is longer).
    pub budget: Duration,
}

/// The time one pass over every shard may take, kept in hand before the deadline.
pub const PASS_RESERVE: Duration = Duration::from_secs(15);

/// How long a run may keep starting passes: the configured budget, but never past the
/// invocation's deadline less one pass (`remaining` is what the runtime's deadline leaves).
pub fn pass_budget(configured: Duration, remaining: Duration) -> Duration {
    configured.min(remaining.saturating_sub(PASS_RESERVE))
}

/// Runs passes over every shard until nothing due is left or the time budget is spent.
pub async fn handle(app: &App, now: DateTime<Utc>) -> Result<DispatchReport, DomainError> {
    handle_for(app, now, app.budget).await
}

/// As [`handle`], starting no new pass after `budget` (the invocation's remaining time
/// less a pass's worth, when the runtime gives a deadline).
pub async fn handle_for(
    app: &App,
    now: DateTime<Utc>,
    budget: Duration,
) -> Result<DispatchReport, DomainError> {
    let started = Instant::now();
    let ports = DispatchPorts {
        consent: app.consent.as_ref(),
        due: app.messages.as_ref(),
        messages: app.messages.as_ref(),
        queue: app.queue.as_ref(),
    };
    let mut total = DispatchReport::default();
    // Bounded: at most 100 passes, and no pass outlives the budget and its reserve (a pass
    // cut short leaves what it marked queued in the index, for a later run to requeue).
    for _ in 0..100 {
        let left = (budget + PASS_RESERVE).saturating_sub(started.elapsed());
        let Ok(report) =
            tokio::time::timeout(left, dispatch(&ports, 0..app.shards, now, app.page)).await
        else {
            tracing::warn!(
                seconds = left.as_secs(),
                "dispatch pass cut at the deadline; a later run takes the rest"
            );
            break;
        };
        let report = report?;
        let handled = report.queued + report.requeued + report.deferred + report.suppressed;
        total.add(&report);
        if handled == 0 || report.failed > 0 || started.elapsed() > budget {
            break;
        }
    }
    // Authorization requests never completed within a day go to staff.
    total.follow_ups = consent::service::authorization::follow_up_pending(
        app.pending.as_ref(),
        app.work.as_ref(),
        now,
        100,
    )
    .await?;
    tracing::info!(
        follow_ups = total.follow_ups,
        queued = total.queued,
        deferred = total.deferred,
        suppressed = total.suppressed,
        skipped = total.skipped,
        failed = total.failed,
        "dispatch run"
    );
    Ok(total)
}
