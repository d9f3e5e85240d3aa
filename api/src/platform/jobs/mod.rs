//! One job system for every kind of background work, in the registry, on SQLite and
//! PostgreSQL alike.
//!
//! A job has a kind, a shop (or none: a platform job), a JSON payload, a due time, a retry
//! budget, a lease, a state (`queued`, `running`, `succeeded`, `failed`, `dead`), progress
//! and its last error. Features register their kinds (`Kind`: handler, attempts, backoff,
//! timeout, concurrency per process) with `Jobs::register`; the core knows none of them.
//!
//! * `store`: the SQL: queue (with unique keys that coalesce duplicates), claim, lease
//!   renewal, outcome, listing, pruning.
//! * `worker`: the dispatcher of a process: claims what its free slots can run, renews
//!   leases while a job runs, records outcomes, retries with backoff.
//! * `schedule`: recurring jobs (every N milliseconds or a cron expression, per shop or
//!   platform-wide); the next run is queued when one finishes, and survives restarts.
//! * `routes`: `GET /api/v1/jobs` and `GET /api/v1/jobs/{id}` (a shop's, or every job with
//!   the admin token).
//!
//! Jobs with the same unique key (by default kind and shop) never run at once and
//! coalesce while queued. A worker that dies loses its lease, and the job runs again
//! elsewhere, counting an attempt; a worker that lost its lease stops the job and records
//! nothing. Payloads and results never hold secrets: operators read them.

pub mod routes;
mod schedule;
mod store;
mod worker;

pub use schedule::{Schedule, ScheduleOut, Timing, remove_schedule, schedules, set_schedule};
pub use store::{JobFilter, JobOut, JobPage, MAX_PAGE, get, list, reap, requeue_dead};
pub use worker::{run, run_inline};

use crate::error::{ApiError, ApiResult};
use crate::platform::Platform;
use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// The kind of a storefront build (registered by `builds`): every feature whose writes
/// change what a storefront shows asks for one with `request_build`.
pub const BUILD: &str = "build";

/// What a handler runs with: the job as claimed.
#[derive(Debug)]
pub struct Job {
    /// Job id.
    pub id: String,
    /// Its kind.
    pub kind: String,
    /// The shop; `None` for a platform job.
    pub shop_id: Option<String>,
    /// What queued it.
    pub reason: String,
    /// Its payload (`{}` when none was given).
    pub payload: Value,
    /// This attempt, from 1.
    pub attempt: i64,
    progress: Reporter,
    stop: tokio::sync::watch::Receiver<bool>,
    cancel: Cancel,
}

/// Set when a job's attempt is given up (its timeout passed, or its lease went to another
/// worker): work the handler handed to another thread checks it before anything lasting
/// (a build checks it before publishing).
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<std::sync::atomic::AtomicBool>);

impl Cancel {
    /// Whether the attempt was given up.
    pub fn is_set(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn set(&self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Reports a job's progress from any task or thread (`Job::reporter`).
#[derive(Debug, Clone)]
pub struct Reporter(Arc<tokio::sync::watch::Sender<Option<Progress>>>);

impl Reporter {
    /// `done` of `total` in `stage`.
    pub fn set(&self, done: u64, total: u64, stage: &str) {
        self.0.send_replace(Some(Progress { done, total, stage: stage.to_owned() }));
    }
}

impl Job {
    /// The shop of a shop job; a fatal error for a platform job.
    pub fn shop(&self) -> Result<&str, JobError> {
        self.shop_id.as_deref().ok_or_else(|| JobError::fatal("this kind needs a shop"))
    }

    /// Reports progress: `done` of `total` in `stage` (shown by the API and `aurelio jobs`;
    /// written with the lease, at most a few times a second). Callable from any thread.
    pub fn progress(&self, done: u64, total: u64, stage: &str) {
        self.progress.set(done, total, stage);
    }

    /// A handle that reports this job's progress from elsewhere (a blocking thread).
    pub fn reporter(&self) -> Reporter {
        self.progress.clone()
    }

    /// A flag set when this attempt is given up (`Cancel`).
    pub fn cancel(&self) -> Cancel {
        self.cancel.clone()
    }

    /// A receiver that turns `true` when the process shuts down: a long job returns early
    /// (and is queued again or finishes its round) instead of holding shutdown up.
    pub fn stopping(&self) -> tokio::sync::watch::Receiver<bool> {
        self.stop.clone()
    }
}

/// How far a running job is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Progress {
    /// Units done.
    pub done: u64,
    /// Units in all (0 when unknown).
    pub total: u64,
    /// What it is doing (`export`, `build`, `publish`…).
    pub stage: String,
}

/// Why a job failed, and whether trying again may help.
#[derive(Debug, Clone)]
pub struct JobError {
    /// What is recorded as the job's error (an object with at least a `message`).
    pub detail: Value,
    /// Whether the job is queued again (with backoff, within its attempts).
    pub retry: bool,
}

impl JobError {
    /// A failure another attempt would repeat (bad input): the job ends `failed`.
    pub fn fatal(message: impl std::fmt::Display) -> Self {
        Self { detail: json!({ "message": message.to_string() }), retry: false }
    }

    /// A failure another attempt may not repeat (a timeout, a database or network error).
    pub fn retry(message: impl std::fmt::Display) -> Self {
        Self { detail: json!({ "message": message.to_string() }), retry: true }
    }

    /// A fatal failure with a structured detail (`message` plus more).
    pub fn fatal_detail(detail: Value) -> Self {
        Self { detail, retry: false }
    }
}

impl From<ApiError> for JobError {
    fn from(e: ApiError) -> Self {
        Self::retry(e.message)
    }
}

impl From<sqlx::Error> for JobError {
    fn from(e: sqlx::Error) -> Self {
        Self::retry(e)
    }
}

/// A handler: runs one job; its result (recorded) or why it failed.
pub type Handler =
    Arc<dyn Fn(Arc<Platform>, Job) -> BoxFuture<'static, Result<Value, JobError>> + Send + Sync>;

/// A kind of job and how it runs.
pub struct Kind {
    /// Its name (`build`, `webhooks`, `domains.check`…).
    pub name: &'static str,
    handler: Handler,
    /// Attempts in all before a job that keeps failing is `dead`.
    pub max_attempts: u32,
    /// Delay before the second attempt; it doubles with each one after, up to `backoff_max`.
    pub backoff: Duration,
    /// The longest delay between attempts.
    pub backoff_max: Duration,
    /// How long one attempt may run before it is stopped (and retried).
    pub timeout: Duration,
    /// Jobs of this kind one process runs at once.
    pub concurrency: usize,
}

impl std::fmt::Debug for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kind").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Kind {
    /// A kind with its handler and defaults: 5 attempts, backoff from 1 s to 5 min, a
    /// 10-minute timeout, one at a time per process.
    pub fn new<F, Fut>(name: &'static str, handler: F) -> Self
    where
        F: Fn(Arc<Platform>, Job) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, JobError>> + Send + 'static,
    {
        Self {
            name,
            handler: Arc::new(move |p, j| Box::pin(handler(p, j))),
            max_attempts: 5,
            backoff: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            timeout: Duration::from_secs(600),
            concurrency: 1,
        }
    }

    /// Sets the attempts in all (at least 1).
    #[must_use]
    pub fn attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// Sets the first retry's delay and the longest one.
    #[must_use]
    pub fn backoff(mut self, first: Duration, max: Duration) -> Self {
        self.backoff = first;
        self.backoff_max = max.max(first);
        self
    }

    /// Sets how long one attempt may run.
    #[must_use]
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Sets how many run at once in one process (at least 1).
    #[must_use]
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// The delay before the attempt after `attempt` (1-based): `backoff · 2^(attempt−1)`,
    /// at most `backoff_max`.
    pub fn delay_after(&self, attempt: i64) -> Duration {
        let shift = u32::try_from(attempt.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        self.backoff.saturating_mul(1u32 << shift).min(self.backoff_max)
    }
}

/// The kinds this process knows and the signals around the queue.
pub struct Jobs {
    kinds: RwLock<HashMap<&'static str, Arc<Kind>>>,
    wake: tokio::sync::Notify,
    finished: tokio::sync::watch::Sender<String>,
    queued: Mutex<HashMap<(String, &'static str), Instant>>,
    lease: Duration,
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jobs").field("lease", &self.lease).finish_non_exhaustive()
    }
}

impl Jobs {
    /// No kinds yet; running jobs hold leases of `lease`, renewed at a third of it.
    pub fn new(lease: Duration) -> Self {
        Self {
            kinds: RwLock::default(),
            wake: tokio::sync::Notify::new(),
            finished: tokio::sync::watch::Sender::new(String::new()),
            queued: Mutex::default(),
            lease: lease.max(Duration::from_millis(300)),
        }
    }

    /// Registers a kind (replacing one of the same name).
    pub fn register(&self, kind: Kind) {
        let mut kinds = self.kinds.write().unwrap_or_else(PoisonError::into_inner);
        kinds.insert(kind.name, Arc::new(kind));
    }

    /// A registered kind.
    pub fn kind(&self, name: &str) -> Option<Arc<Kind>> {
        self.kinds.read().unwrap_or_else(PoisonError::into_inner).get(name).cloned()
    }

    /// Every registered kind.
    pub fn kinds(&self) -> Vec<Arc<Kind>> {
        self.kinds.read().unwrap_or_else(PoisonError::into_inner).values().cloned().collect()
    }

    /// Wakes this process's dispatcher (a job was queued).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The id of the last job this process finished, as it changes (tests and `demo`
    /// wait on it).
    pub fn finished(&self) -> tokio::sync::watch::Receiver<String> {
        self.finished.subscribe()
    }

    /// The lease a running job holds.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// Whether this process queued no `kind` job for the shop within `every` (then it is
    /// noted as queued now): spares the registry a write per request.
    pub fn first_in(&self, shop_id: &str, kind: &'static str, every: Duration) -> bool {
        let mut queued = self.queued.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if queued.len() >= 10_000 {
            queued.retain(|_, at| now.duration_since(*at) < every);
        }
        match queued.get(&(shop_id.to_owned(), kind)) {
            Some(at) if now.duration_since(*at) < every => false,
            _ => {
                queued.insert((shop_id.to_owned(), kind), now);
                true
            }
        }
    }
}

/// How a job meets a queued one with its unique key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coalesce {
    /// The queued one stays, due at the earlier of the two times.
    Earlier,
    /// The queued one moves to the new time, though never past this long after it was
    /// first queued (a burst of edits makes one build, steady ones still see builds).
    PushBack(Duration),
}

/// A job to queue.
#[derive(Debug, Clone)]
pub struct NewJob {
    kind: String,
    shop_id: Option<String>,
    reason: String,
    payload: Value,
    unique_key: Option<String>,
    run_at: i64,
    coalesce: Coalesce,
    schedule: Option<String>,
}

impl NewJob {
    /// A job of `kind` for a shop, due now, unique per kind and shop.
    pub fn shop(kind: &str, shop_id: &str, reason: &str) -> Self {
        Self::build(kind, Some(shop_id), reason)
    }

    /// A platform job of `kind`, due now, unique per kind.
    pub fn platform(kind: &str, reason: &str) -> Self {
        Self::build(kind, None, reason)
    }

    fn build(kind: &str, shop_id: Option<&str>, reason: &str) -> Self {
        let unique_key = match shop_id {
            Some(shop) => format!("{kind}:{shop}"),
            None => kind.to_owned(),
        };
        Self {
            kind: kind.to_owned(),
            shop_id: shop_id.map(str::to_owned),
            reason: reason.to_owned(),
            payload: json!({}),
            unique_key: Some(unique_key),
            run_at: crate::db::now_ms(),
            coalesce: Coalesce::Earlier,
            schedule: None,
        }
    }

    /// Sets the payload.
    #[must_use]
    pub fn payload(mut self, payload: Value) -> Self {
        self.payload = payload;
        self
    }

    /// Sets the unique key (`None`: every such job is queued, none coalesce).
    #[must_use]
    pub fn unique(mut self, key: Option<String>) -> Self {
        self.unique_key = key;
        self
    }

    /// Sets when it is due (Unix milliseconds).
    #[must_use]
    pub fn run_at(mut self, ms: i64) -> Self {
        self.run_at = ms;
        self
    }

    /// Sets how it meets a queued job with its unique key.
    #[must_use]
    pub fn coalesce(mut self, c: Coalesce) -> Self {
        self.coalesce = c;
        self
    }
}

/// Queues a job (or coalesces it with the queued one of its unique key) and wakes the
/// dispatcher; the id of the queued job.
pub async fn enqueue(platform: &Platform, job: NewJob) -> ApiResult<String> {
    let attempts = platform.jobs.kind(&job.kind).map_or(5, |k| k.max_attempts);
    let id = store::queue(platform, &job, attempts).await?;
    metrics::counter!("aurelio_jobs_queued_total", "kind" => job.kind.clone()).increment(1);
    platform.jobs.wake();
    Ok(id)
}

/// Asks for a build of the shop's storefront; the id of the queued build. The first
/// request after a quiet spell (no build queued within the debounce interval) builds at
/// once; later ones wait the interval and push a queued build back by it, so a burst of
/// edits makes one more build; but never more than `push_back_limit` after it was first
/// queued, so steady writes (a sale's checkouts) still see the storefront follow.
pub async fn request_build(platform: &Platform, shop_id: &str, reason: &str) -> ApiResult<String> {
    let debounce = platform.config.build_debounce;
    let wait = i64::try_from(debounce.as_millis()).unwrap_or(i64::MAX / 4);
    let now = crate::db::now_ms();
    let last = store::last_queued(platform, &format!("{BUILD}:{shop_id}")).await?;
    let due = if last.is_some_and(|t| t > now - wait) { now + wait } else { now };
    let job = NewJob::shop(BUILD, shop_id, reason)
        .run_at(due)
        .coalesce(Coalesce::PushBack(push_back_limit(debounce)));
    let id = enqueue(platform, job).await?;
    metrics::counter!("aurelio_builds_queued_total").increment(1);
    Ok(id)
}

/// How long after it was first queued a build starts at the latest: four debounce
/// intervals, and at least two seconds.
pub fn push_back_limit(debounce: Duration) -> Duration {
    (debounce * 4).max(Duration::from_secs(2))
}

/// Jobs of a kind past their retention are deleted: succeeded ones after `done`, failed
/// and dead ones after `kept`; the number deleted.
pub async fn prune(platform: &Platform, done: Duration, kept: Duration) -> ApiResult<u64> {
    store::prune(platform, done, kept).await
}

/// Registers the core's own kind: `jobs.prune`, hourly, keeping succeeded jobs a week and
/// failed or dead ones thirty days.
pub async fn install_core(platform: &Platform) -> ApiResult<()> {
    platform.jobs.register(
        Kind::new("jobs.prune", |platform: Arc<Platform>, _job| async move {
            let week = Duration::from_secs(7 * 24 * 3600);
            let month = Duration::from_secs(30 * 24 * 3600);
            let deleted = prune(&platform, week, month).await?;
            Ok(json!({ "deleted": deleted }))
        })
        .attempts(3),
    );
    set_schedule(
        platform,
        &Schedule::platform("jobs.prune", Timing::Every(Duration::from_secs(3600))),
    )
    .await
}

/// The error a job id or kind that names nothing gets.
fn not_found() -> ApiError {
    ApiError::not_found("job")
}
