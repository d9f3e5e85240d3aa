//! The job queue's SQL: queue with coalescing, claim under a lease, renew, record the
//! outcome, list and prune. One statement per step, so any number of processes share the
//! queue (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite has one writer at a time).

use super::{Coalesce, Kind, NewJob, Progress, not_found};
use crate::db::{now_ms, rfc3339};
use crate::error::{ApiError, ApiResult};
use crate::platform::Platform;
use crate::registry;
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::Row;
use std::time::Duration;

/// Jobs on one page at most.
pub const MAX_PAGE: i64 = 200;

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

/// Inserts a job, or coalesces it into the queued one with its unique key; the id of the
/// queued job. One upsert on the one-queued-job-per-key index, so concurrent callers in
/// any number of processes queue one job.
pub(super) async fn queue(platform: &Platform, job: &NewJob, attempts: u32) -> ApiResult<String> {
    let limit = match job.coalesce {
        Coalesce::Earlier => -1,
        Coalesce::PushBack(limit) => ms(limit),
    };
    let _turn = platform.pools.backend().write_turn(&platform.registry).await?;
    let id: String = sqlx::query_scalar(
        "INSERT INTO jobs (id, shop_id, kind, status, reason, payload, unique_key, schedule, \
         run_after, max_attempts, created_at) \
         VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (unique_key) WHERE status = 'queued' DO UPDATE SET run_after = CASE \
         WHEN $11 < 0 AND jobs.run_after < excluded.run_after THEN jobs.run_after \
         WHEN $11 >= 0 AND excluded.run_after > jobs.created_at + $11 \
           THEN jobs.created_at + $11 \
         ELSE excluded.run_after END \
         RETURNING id",
    )
    .bind(registry::new_id(&id_prefix(&job.kind)))
    .bind(job.shop_id.as_deref())
    .bind(&job.kind)
    .bind(&job.reason)
    .bind(job.payload.to_string())
    .bind(job.unique_key.as_deref())
    .bind(job.schedule.as_deref())
    .bind(job.run_at)
    .bind(i64::from(attempts))
    .bind(now_ms())
    .bind(limit)
    .fetch_one(&platform.registry)
    .await?;
    Ok(id)
}

/// The id prefix of a kind's jobs: its name up to the first dot (`build_…`, `domains_…`).
fn id_prefix(kind: &str) -> String {
    let head = kind.split('.').next().unwrap_or("job");
    let clean: String = head.chars().filter(char::is_ascii_alphanumeric).take(16).collect();
    if clean.is_empty() { "job".into() } else { clean }
}

/// When the newest job with this unique key was queued.
pub(super) async fn last_queued(platform: &Platform, key: &str) -> ApiResult<Option<i64>> {
    Ok(sqlx::query_scalar("SELECT MAX(created_at) FROM jobs WHERE unique_key = $1")
        .bind(key)
        .fetch_one(&platform.registry)
        .await?)
}

/// A job a worker holds.
#[derive(Debug, Clone)]
pub(super) struct Claimed {
    pub id: String,
    pub shop_id: Option<String>,
    pub kind: String,
    pub reason: String,
    pub payload: Value,
    pub attempts: i64,
    pub max_attempts: i64,
    pub schedule: Option<String>,
}

/// Claims the next due job of one of `kinds` (queued, or running under an expired lease
/// with attempts left) whose unique key has no job running, under a lease until `lease`.
pub(super) async fn claim(
    platform: &Platform,
    worker: &str,
    kinds: &[&str],
    lease: Duration,
) -> ApiResult<Option<Claimed>> {
    if kinds.is_empty() {
        return Ok(None);
    }
    let backend = platform.pools.backend();
    let lock = if backend.is_postgres() { "FOR UPDATE SKIP LOCKED" } else { "" };
    let list: Vec<String> = (0..kinds.len()).map(|i| format!("${}", i + 4)).collect();
    let sql = format!(
        "UPDATE jobs SET status = 'running', worker = $1, started_at = $2, lease_until = $3, \
           attempts = attempts + 1, progress = NULL \
         WHERE id = (SELECT j.id FROM jobs j WHERE j.kind IN ({list}) \
           AND ((j.status = 'queued' AND j.run_after <= $2) \
             OR (j.status = 'running' AND j.lease_until < $2 AND j.attempts < j.max_attempts \
               AND NOT EXISTS (SELECT 1 FROM jobs q WHERE q.unique_key = j.unique_key \
                 AND q.status = 'queued'))) \
           AND (j.unique_key IS NULL OR NOT EXISTS (SELECT 1 FROM jobs r \
             WHERE r.unique_key = j.unique_key AND r.status = 'running' AND r.id <> j.id \
             AND r.lease_until >= $2)) \
           ORDER BY j.run_after LIMIT 1 {lock}) \
         AND (status = 'queued' OR (status = 'running' AND lease_until < $2)) \
         RETURNING id, shop_id, kind, reason, payload, attempts, max_attempts, schedule",
        list = list.join(", ")
    );
    let now = now_ms();
    let mut query =
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(worker).bind(now).bind(now + ms(lease));
    for kind in kinds {
        query = query.bind(*kind);
    }
    let _turn = backend.write_turn(&platform.registry).await?;
    let Some(r) = query.fetch_optional(&platform.registry).await? else { return Ok(None) };
    let payload: String = r.try_get("payload")?;
    Ok(Some(Claimed {
        id: r.try_get("id")?,
        shop_id: r.try_get("shop_id")?,
        kind: r.try_get("kind")?,
        reason: r.try_get("reason")?,
        payload: serde_json::from_str(&payload).unwrap_or_else(|_| json!({})),
        attempts: r.try_get("attempts")?,
        max_attempts: r.try_get("max_attempts")?,
        schedule: r.try_get("schedule")?,
    }))
}

/// Inserts a job that runs at once in the caller's task (`worker::run_inline`), running
/// under this process's lease; its id.
pub(super) async fn insert_running(
    platform: &Platform,
    job: &NewJob,
    worker: &str,
) -> ApiResult<String> {
    let id = registry::new_id(&id_prefix(&job.kind));
    let now = now_ms();
    let lease = now + ms(platform.jobs.lease());
    let _turn = platform.pools.backend().write_turn(&platform.registry).await?;
    sqlx::query(
        "INSERT INTO jobs (id, shop_id, kind, status, reason, payload, unique_key, run_after, \
         attempts, max_attempts, worker, lease_until, created_at, started_at) \
         VALUES ($1, $2, $3, 'running', $4, $5, $9, $6, 1, 1, $7, $8, $6, $6)",
    )
    .bind(&id)
    .bind(job.shop_id.as_deref())
    .bind(&job.kind)
    .bind(&job.reason)
    .bind(job.payload.to_string())
    .bind(now)
    .bind(worker)
    .bind(lease)
    .bind(job.unique_key.as_deref())
    .execute(&platform.registry)
    .await?;
    Ok(id)
}

/// Extends a running job's lease (and writes its progress); `false` when the job is no
/// longer this worker's (its lease ran out and another took it, or it was deleted).
pub(super) async fn renew(
    platform: &Platform,
    id: &str,
    worker: &str,
    progress: Option<&Progress>,
) -> ApiResult<bool> {
    let until = now_ms() + ms(platform.jobs.lease());
    let progress = progress.map(|p| json!(p).to_string());
    let done = platform
        .pools
        .backend()
        .write(
            &platform.registry,
            sqlx::query(
                "UPDATE jobs SET lease_until = $1, progress = COALESCE($2, progress) \
                 WHERE id = $3 AND worker = $4 AND status = 'running'",
            )
            .bind(until)
            .bind(progress)
            .bind(id)
            .bind(worker),
        )
        .await?;
    Ok(done.rows_affected() == 1)
}

/// How an attempt ended.
pub(super) enum Outcome {
    Succeeded(Value),
    Failed(Value),
    Retry(Value),
}

/// Records an attempt's outcome: `succeeded`, `failed`, queued again after the kind's
/// backoff while attempts are left (or `failed` when a newer job with its unique key is
/// queued: that one does its work), else `dead`. The state written, or `None` when the
/// job is no longer this worker's.
pub(super) async fn finish(
    platform: &Platform,
    job: &Claimed,
    worker: &str,
    kind: Option<&Kind>,
    outcome: Outcome,
    progress: Option<&Progress>,
) -> ApiResult<Option<&'static str>> {
    let now = now_ms();
    let progress = progress.map(|p| json!(p).to_string());
    let backend = platform.pools.backend();
    let (status, result, error) = match outcome {
        Outcome::Succeeded(v) => ("succeeded", Some(v), None),
        Outcome::Failed(e) => ("failed", None, Some(e)),
        Outcome::Retry(e) if job.attempts < job.max_attempts => {
            let delay = kind.map_or(Duration::from_secs(1), |k| k.delay_after(job.attempts));
            let requeued = backend
                .write(
                    &platform.registry,
                    sqlx::query(
                        "UPDATE jobs SET status = 'queued', worker = NULL, lease_until = NULL, \
                         run_after = $1, error = $2, progress = COALESCE($3, progress) \
                         WHERE id = $4 AND worker = $5 AND status = 'running' \
                         AND (unique_key IS NULL OR NOT EXISTS (SELECT 1 FROM jobs q \
                           WHERE q.unique_key = jobs.unique_key AND q.status = 'queued'))",
                    )
                    .bind(now + ms(delay))
                    .bind(e.to_string())
                    .bind(progress.clone())
                    .bind(&job.id)
                    .bind(worker),
                )
                .await;
            match requeued {
                Ok(done) if done.rows_affected() == 1 => return Ok(Some("queued")),
                // A newer job with its key is queued (or was, a moment ago): it does the work.
                Ok(_) | Err(sqlx::Error::Database(_)) => {
                    let mut e = e;
                    e["superseded"] = json!(true);
                    ("failed", None, Some(e))
                }
                Err(e) => return Err(e.into()),
            }
        }
        Outcome::Retry(e) => ("dead", None, Some(e)),
    };
    let done = backend
        .write(
            &platform.registry,
            sqlx::query(
                "UPDATE jobs SET status = $1, finished_at = $2, result = $3, error = $4, \
                 lease_until = NULL, progress = COALESCE($5, progress) \
                 WHERE id = $6 AND worker = $7 AND status = 'running'",
            )
            .bind(status)
            .bind(now)
            .bind(result.map(|r| r.to_string()))
            .bind(error.map(|e| e.to_string()))
            .bind(progress)
            .bind(&job.id)
            .bind(worker),
        )
        .await?;
    Ok((done.rows_affected() == 1).then_some(status))
}

/// Running jobs whose lease ran out (their worker stopped): `failed` when a job with
/// their unique key is queued (that one does their work), `dead` when no attempts are
/// left; the rest are claimed again (`claim`). The number of jobs ended.
pub async fn reap(platform: &Platform) -> ApiResult<u64> {
    let now = now_ms();
    let backend = platform.pools.backend();
    let mut tx = backend.begin_write(&platform.registry).await?;
    let superseded = sqlx::query(
        "UPDATE jobs SET status = 'failed', finished_at = $1, error = $2, lease_until = NULL \
         WHERE status = 'running' AND lease_until < $1 AND EXISTS (SELECT 1 FROM jobs q \
           WHERE q.unique_key = jobs.unique_key AND q.status = 'queued')",
    )
    .bind(now)
    .bind(json!({ "message": "its worker stopped; a newer job does its work" }).to_string())
    .execute(&mut *tx)
    .await?;
    let dead = sqlx::query(
        "UPDATE jobs SET status = 'dead', finished_at = $1, error = $2, lease_until = NULL \
         WHERE status = 'running' AND lease_until < $1 AND attempts >= max_attempts",
    )
    .bind(now)
    .bind(json!({ "message": "its worker stopped and no attempts are left" }).to_string())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(superseded.rows_affected() + dead.rows_affected())
}

/// Milliseconds until the next queued job of `kinds` is due (to sleep that long at most).
pub(super) async fn next_due(platform: &Platform) -> ApiResult<Option<i64>> {
    let due: Option<i64> =
        sqlx::query_scalar("SELECT MIN(run_after) FROM jobs WHERE status = 'queued'")
            .fetch_one(&platform.registry)
            .await?;
    Ok(due.map(|d| (d - now_ms()).max(0)))
}

/// Deletes finished jobs past their retention (succeeded runs of schedules after a day at
/// most: a check every few seconds adds up); the number deleted.
pub(super) async fn prune(platform: &Platform, done: Duration, kept: Duration) -> ApiResult<u64> {
    let now = now_ms();
    let deleted = platform
        .pools
        .backend()
        .write(
            &platform.registry,
            sqlx::query(
                "DELETE FROM jobs WHERE (status = 'succeeded' AND finished_at < $1) \
                 OR (status = 'succeeded' AND schedule IS NOT NULL AND finished_at < $3) \
                 OR (status IN ('failed', 'dead') AND finished_at < $2)",
            )
            .bind(now - ms(done))
            .bind(now - ms(kept))
            .bind(now - ms(done.min(Duration::from_secs(24 * 3600)))),
        )
        .await?;
    Ok(deleted.rows_affected())
}

/// A job as the API and `aurelio jobs` show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JobOut {
    /// Job id.
    pub id: String,
    /// Its kind (`build`, `webhooks`, `holds`, `cleanup`, `domains.check`, `jobs.prune`…).
    pub kind: String,
    /// The shop; absent for platform jobs.
    pub shop_id: Option<String>,
    /// `queued`, `running`, `succeeded`, `failed` (no retry helps) or `dead` (out of
    /// attempts).
    pub status: String,
    /// What queued it.
    pub reason: String,
    /// What it works on.
    #[schema(value_type = Object)]
    pub payload: Value,
    /// The schedule that queued it, if one did.
    pub schedule: Option<String>,
    /// Attempts made.
    pub attempts: i64,
    /// Attempts allowed.
    pub max_attempts: i64,
    /// When it is (or was) due.
    pub run_at: String,
    /// When it was queued.
    pub created_at: String,
    /// When its last attempt started.
    pub started_at: Option<String>,
    /// When it finished.
    pub finished_at: Option<String>,
    /// Until when its worker holds it (running jobs).
    pub lease_until: Option<String>,
    /// How far it is: `{done, total, stage}`.
    pub progress: Option<Progress>,
    /// What it did (counts, timings).
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    /// Its last error: a message, and more where the kind gives it.
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
}

const COLUMNS: &str = "id, kind, shop_id, status, reason, payload, schedule, attempts, \
    max_attempts, run_after, created_at, started_at, finished_at, lease_until, progress, \
    result, error";

fn job_out(r: &sqlx::any::AnyRow) -> Result<JobOut, sqlx::Error> {
    let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str::<Value>(&s).ok());
    let time = |c: &str| r.try_get::<Option<i64>, _>(c).map(|t| t.map(rfc3339));
    Ok(JobOut {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        shop_id: r.try_get("shop_id")?,
        status: r.try_get("status")?,
        reason: r.try_get("reason")?,
        payload: parse(Some(r.try_get("payload")?)).unwrap_or_else(|| json!({})),
        schedule: r.try_get("schedule")?,
        attempts: r.try_get("attempts")?,
        max_attempts: r.try_get("max_attempts")?,
        run_at: rfc3339(r.try_get("run_after")?),
        created_at: rfc3339(r.try_get("created_at")?),
        started_at: time("started_at")?,
        finished_at: time("finished_at")?,
        lease_until: time("lease_until")?,
        progress: r
            .try_get::<Option<String>, _>("progress")?
            .and_then(|s| serde_json::from_str(&s).ok()),
        result: parse(r.try_get("result")?),
        error: parse(r.try_get("error")?),
    })
}

/// Which jobs to list.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    /// One shop's (`None`: every shop's and the platform's).
    pub shop_id: Option<String>,
    /// Only platform jobs (no shop).
    pub platform_only: bool,
    /// Of this kind.
    pub kind: Option<String>,
    /// In this state.
    pub status: Option<String>,
    /// After this cursor (`JobPage::next_cursor`).
    pub cursor: Option<String>,
    /// At most this many (1 to `MAX_PAGE`).
    pub limit: i64,
}

/// A page of jobs, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobPage {
    /// Jobs.
    pub jobs: Vec<JobOut>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// The cursor of a job: `<created_at>.<id>`.
fn cursor_of(job: &sqlx::any::AnyRow) -> Result<String, sqlx::Error> {
    Ok(format!("{}.{}", job.try_get::<i64, _>("created_at")?, job.try_get::<String, _>("id")?))
}

fn parse_cursor(cursor: &str) -> ApiResult<(i64, String)> {
    let bad = || ApiError::invalid("cursor", "not a cursor from this API");
    let (at, id) = cursor.split_once('.').ok_or_else(bad)?;
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(bad());
    }
    Ok((at.parse().map_err(|_| bad())?, id.to_owned()))
}

/// Jobs newest first, filtered.
pub async fn list(platform: &Platform, filter: &JobFilter) -> ApiResult<JobPage> {
    let limit = filter.limit.clamp(1, MAX_PAGE);
    let mut clauses = Vec::new();
    let mut binds: Vec<Value> = Vec::new();
    let param = |v: Value, binds: &mut Vec<Value>| {
        binds.push(v);
        format!("${}", binds.len())
    };
    if let Some(shop) = &filter.shop_id {
        clauses.push(format!("shop_id = {}", param(json!(shop), &mut binds)));
    } else if filter.platform_only {
        clauses.push("shop_id IS NULL".to_owned());
    }
    if let Some(kind) = &filter.kind {
        clauses.push(format!("kind = {}", param(json!(kind), &mut binds)));
    }
    if let Some(status) = &filter.status {
        clauses.push(format!("status = {}", param(json!(status), &mut binds)));
    }
    if let Some(cursor) = &filter.cursor {
        let (at, id) = parse_cursor(cursor)?;
        let a = param(json!(at), &mut binds);
        let b = param(json!(at), &mut binds);
        let c = param(json!(id), &mut binds);
        clauses.push(format!("(created_at < {a} OR (created_at = {b} AND id < {c}))"));
    }
    let limit_param = param(json!(limit + 1), &mut binds);
    let filter_sql =
        if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
    let sql = format!(
        "SELECT {COLUMNS} FROM jobs {filter_sql} ORDER BY created_at DESC, id DESC LIMIT {limit_param}"
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in binds {
        query = match b {
            Value::Number(n) => query.bind(n.as_i64().unwrap_or(0)),
            Value::String(s) => query.bind(s),
            _ => query,
        };
    }
    let rows = query.fetch_all(&platform.registry).await?;
    let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    let rows = &rows[..rows.len().min(usize::try_from(limit).unwrap_or(usize::MAX))];
    let next_cursor = match (more, rows.last()) {
        (true, Some(last)) => Some(cursor_of(last)?),
        _ => None,
    };
    let jobs = rows.iter().map(job_out).collect::<Result<_, _>>()?;
    Ok(JobPage { jobs, next_cursor })
}

/// One job; with `shop_id`, only that shop's (another shop's job is not found).
pub async fn get(platform: &Platform, id: &str, shop_id: Option<&str>) -> ApiResult<JobOut> {
    let sql = format!("SELECT {COLUMNS} FROM jobs WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&platform.registry)
        .await?
        .ok_or_else(not_found)?;
    let job = job_out(&row)?;
    match shop_id {
        Some(shop) if job.shop_id.as_deref() != Some(shop) => Err(not_found()),
        _ => Ok(job),
    }
}

/// Queues a `dead` or `failed` job again with a fresh budget of attempts (an operator's
/// retry); `false` when it is not in one of those states, or one with its key is queued.
pub async fn requeue_dead(platform: &Platform, id: &str) -> ApiResult<bool> {
    let done = platform
        .pools
        .backend()
        .write(
            &platform.registry,
            sqlx::query(
                "UPDATE jobs SET status = 'queued', run_after = $1, attempts = 0, worker = NULL, \
                 finished_at = NULL, lease_until = NULL \
                 WHERE id = $2 AND status IN ('dead', 'failed') \
                 AND (unique_key IS NULL OR NOT EXISTS (SELECT 1 FROM jobs q \
                   WHERE q.unique_key = jobs.unique_key AND q.status = 'queued'))",
            )
            .bind(now_ms())
            .bind(id),
        )
        .await;
    match done {
        Ok(done) => Ok(done.rows_affected() == 1),
        Err(sqlx::Error::Database(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}
