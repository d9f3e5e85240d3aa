//! The dispatcher of one process: claims due jobs of the kinds it has free slots for (at
//! most `slots` at once, at most each kind's `concurrency`), runs each in a task that
//! renews its lease and writes its progress, records the outcome (retrying with backoff),
//! queues a schedule's next run, and on shutdown lets the jobs in progress finish.

use super::store::{self, Claimed, Outcome};
use super::{Cancel, Job, JobError, Kind, NewJob, Progress, Reporter, schedule};
use crate::error::ApiResult;
use crate::platform::Platform;
use crate::registry;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// How often the dispatcher sweeps for schedules without a run and for dead leases.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The longest the dispatcher sleeps without looking at the queue (another process may
/// have queued a job without waking this one).
const MAX_NAP: Duration = Duration::from_secs(1);

/// Runs jobs until `shutdown` fires, at most `slots` at once; jobs in progress finish
/// first (they see `Job::stopping`).
pub async fn run(platform: Arc<Platform>, slots: usize, mut shutdown: watch::Receiver<bool>) {
    let name = format!("{}-{}", std::process::id(), registry::random_hex(4));
    let mut per_kind: HashMap<&'static str, Arc<Semaphore>> = HashMap::new();
    let mut running = JoinSet::new();
    let mut swept = None::<Instant>;
    loop {
        if *shutdown.borrow() {
            break;
        }
        if swept.is_none_or(|at: Instant| at.elapsed() >= SWEEP_EVERY) {
            swept = Some(Instant::now());
            if let Err(e) = store::reap(&platform).await {
                tracing::warn!(error = %e, "cannot reap expired jobs");
            }
            if let Err(e) = schedule::sweep(&platform).await {
                tracing::warn!(error = %e, "cannot sweep schedules");
            }
        }
        while running.try_join_next().is_some() {}
        if running.len() < slots {
            let kinds = platform.jobs.kinds();
            let free: Vec<&str> = kinds
                .iter()
                .filter(|k| {
                    let sem = per_kind
                        .entry(k.name)
                        .or_insert_with(|| Arc::new(Semaphore::new(k.concurrency)));
                    sem.available_permits() > 0
                })
                .map(|k| k.name)
                .collect();
            match store::claim(&platform, &name, &free, platform.jobs.lease()).await {
                Ok(Some(job)) => {
                    let kind = platform.jobs.kind(&job.kind);
                    let permit = kind
                        .as_ref()
                        .and_then(|k| per_kind.get(k.name))
                        .and_then(|s| Arc::clone(s).try_acquire_owned().ok());
                    let (platform, name, stop) = (platform.clone(), name.clone(), shutdown.clone());
                    running.spawn(async move {
                        let _permit = permit;
                        let _ = execute(&platform, kind, job, &name, stop).await;
                    });
                    continue;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "cannot claim a job"),
            }
        }
        // Jobs due now that no claim took are waiting for their unique key or for a slot:
        // a finished job or a wake-up brings the dispatcher back, else the next nap.
        let nap = match store::next_due(&platform).await {
            Ok(Some(ms)) if ms > 0 => Duration::from_millis(u64::try_from(ms).unwrap_or(0)),
            _ => MAX_NAP,
        };
        tokio::select! {
            () = platform.jobs.wake.notified() => {}
            () = tokio::time::sleep(nap.min(MAX_NAP)) => {}
            Some(_) = running.join_next(), if !running.is_empty() => {}
            _ = shutdown.changed() => {}
        }
    }
    while running.join_next().await.is_some() {}
}

/// Runs a job at once in the caller's task (provisioning's first build), recorded like any
/// other: its id and its result or error.
pub async fn run_inline(
    platform: &Arc<Platform>,
    job: NewJob,
) -> ApiResult<(String, Result<Value, Value>)> {
    let worker = format!("inline-{}", registry::random_hex(4));
    let id = store::insert_running(platform, &job, &worker).await?;
    let claimed = Claimed {
        id: id.clone(),
        shop_id: job.shop_id.clone(),
        kind: job.kind.clone(),
        reason: job.reason.clone(),
        payload: job.payload.clone(),
        attempts: 1,
        max_attempts: 1,
        schedule: None,
    };
    let kind = platform.jobs.kind(&job.kind);
    let (_tx, stop) = watch::channel(false);
    // In a task of its own: if the caller gives up (a request past its time limit), the
    // job still finishes and records its outcome instead of waiting out its lease.
    let platform = Arc::clone(platform);
    let outcome = tokio::spawn(async move {
        let _keep = _tx;
        execute(&platform, kind, claimed, &worker, stop).await
    })
    .await
    .unwrap_or_else(|e| Err(serde_json::json!({ "message": format!("the job panicked: {e}") })));
    Ok((id, outcome))
}

/// Runs one claimed job under its lease and records how it ended.
async fn execute(
    platform: &Arc<Platform>,
    kind: Option<Arc<Kind>>,
    claimed: Claimed,
    worker: &str,
    stop: watch::Receiver<bool>,
) -> Result<Value, Value> {
    use tracing::Instrument;
    let span = tracing::info_span!("job", id = %claimed.id, kind = %claimed.kind,
        shop = claimed.shop_id.as_deref().unwrap_or("-"), attempt = claimed.attempts);
    attempt(platform, kind, claimed, worker, stop).instrument(span).await
}

async fn attempt(
    platform: &Arc<Platform>,
    kind: Option<Arc<Kind>>,
    claimed: Claimed,
    worker: &str,
    stop: watch::Receiver<bool>,
) -> Result<Value, Value> {
    let started = Instant::now();
    let (progress_tx, mut progress_rx) = watch::channel(None::<Progress>);
    let cancel = Cancel::default();
    let outcome = match &kind {
        None => Err(JobError::fatal(format!("no handler for the job kind `{}`", claimed.kind))),
        Some(kind) => {
            let job = Job {
                id: claimed.id.clone(),
                kind: claimed.kind.clone(),
                shop_id: claimed.shop_id.clone(),
                reason: claimed.reason.clone(),
                payload: claimed.payload.clone(),
                attempt: claimed.attempts,
                progress: Reporter(Arc::new(progress_tx)),
                stop,
                cancel: cancel.clone(),
            };
            let work = tokio::time::timeout(kind.timeout, (kind.handler)(platform.clone(), job));
            let lease = heartbeat(platform, &claimed.id, worker, &mut progress_rx);
            tokio::select! {
                done = work => done.unwrap_or_else(|_| {
                    cancel.set();
                    Err(JobError::retry(format!(
                        "stopped after its timeout of {} s", kind.timeout.as_secs()
                    )))
                }),
                () = lease => {
                    cancel.set();
                    tracing::warn!("lost the job's lease; another worker runs it");
                    metrics::counter!("aurelio_jobs_lost_total", "kind" => claimed.kind.clone())
                        .increment(1);
                    return Err(serde_json::json!({ "message": "lost its lease" }));
                }
            }
        }
    };
    let elapsed = started.elapsed();
    let progress = progress_rx.borrow().clone();
    let (recorded, answer) = match outcome {
        Ok(v) => (Outcome::Succeeded(v.clone()), Ok(v)),
        Err(JobError { detail, retry: true }) => (Outcome::Retry(detail.clone()), Err(detail)),
        Err(JobError { detail, retry: false }) => (Outcome::Failed(detail.clone()), Err(detail)),
    };
    // The next run of a schedule is queued before this one is marked finished, so no
    // sweep or starting process sees the schedule without a run and queues a second one.
    // (A run that will be tried again stays the schedule's run.)
    let retries = matches!(recorded, Outcome::Retry(_)) && claimed.attempts < claimed.max_attempts;
    if let Some(name) = claimed.schedule.as_deref().filter(|_| !retries)
        && let Err(e) = schedule::queue_next(platform, name).await
    {
        tracing::error!(schedule = %name, error = %e, "cannot queue the next run");
    }
    let state =
        store::finish(platform, &claimed, worker, kind.as_deref(), recorded, progress.as_ref())
            .await;
    let state = match state {
        Ok(Some(state)) => state,
        Ok(None) => "lost",
        Err(e) => {
            tracing::error!(error = %e, "cannot record the job's outcome");
            "unrecorded"
        }
    };
    metrics::counter!("aurelio_jobs_total", "kind" => claimed.kind.clone(), "status" => state)
        .increment(1);
    metrics::histogram!("aurelio_job_duration_seconds", "kind" => claimed.kind.clone())
        .record(elapsed.as_secs_f64());
    match &answer {
        Ok(_) => tracing::debug!(ms = elapsed.as_millis(), state, "job done"),
        Err(e) => tracing::warn!(ms = elapsed.as_millis(), state, error = %e, "job failed"),
    }
    platform.jobs.finished.send_replace(claimed.id.clone());
    answer
}

/// Renews the lease at a third of its length and writes progress as it changes (at most
/// every 200 ms); returns only when the lease is lost.
async fn heartbeat(
    platform: &Platform,
    id: &str,
    worker: &str,
    progress: &mut watch::Receiver<Option<Progress>>,
) {
    let every = platform.jobs.lease() / 3;
    let mut due = tokio::time::Instant::now() + every;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(due) => {}
            changed = progress.changed() => {
                if changed.is_err() {
                    // The handler is gone (its result is being recorded): keep the lease.
                    std::future::pending::<()>().await;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        let current = progress.borrow_and_update().clone();
        match store::renew(platform, id, worker, current.as_ref()).await {
            Ok(true) => due = tokio::time::Instant::now() + every,
            Ok(false) => return,
            // A database hiccup: try again soon; the lease has two thirds left.
            Err(e) => {
                tracing::warn!(error = %e, "cannot renew a job's lease");
                due = tokio::time::Instant::now() + Duration::from_millis(500);
            }
        }
    }
}
