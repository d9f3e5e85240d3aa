//! Recurring jobs. A schedule (a row of `schedules`) names a kind, a shop or none, a
//! timing (every N milliseconds, or a five-field cron expression in UTC) and a payload.
//! Its runs are jobs with the unique key `schedule:<name>`: setting a schedule queues its
//! first run; when a run finishes, whatever its outcome, the next is queued; a sweep at
//! start and every minute queues the run of any schedule that has none (a process that
//! died between the two), so schedules survive restarts and never run twice at once.

use super::{Coalesce, NewJob, enqueue};
use crate::db::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::platform::Platform;
use serde_json::{Value, json};
use sqlx::Row;
use std::str::FromStr;
use std::time::Duration;

/// When a schedule runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timing {
    /// This long after the previous run finished (the first run at once).
    Every(Duration),
    /// At the times of a cron expression: minute, hour, day of month, month, day of week
    /// (`*/15 * * * *`), in UTC.
    Cron(String),
}

/// A recurring job.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Unique name (`<kind>` for platform schedules, `<kind>:<shop>` per shop by default).
    pub name: String,
    /// The kind of job it queues.
    pub kind: String,
    /// The shop; `None` for a platform-wide schedule.
    pub shop_id: Option<String>,
    /// When it runs.
    pub timing: Timing,
    /// The payload of its jobs.
    pub payload: Value,
}

impl Schedule {
    /// A platform-wide schedule of `kind`, named after it.
    pub fn platform(kind: &str, timing: Timing) -> Self {
        Self {
            name: kind.to_owned(),
            kind: kind.to_owned(),
            shop_id: None,
            timing,
            payload: json!({}),
        }
    }

    /// A schedule of `kind` for one shop, named `<kind>:<shop>`.
    pub fn shop(kind: &str, shop_id: &str, timing: Timing) -> Self {
        Self {
            name: format!("{kind}:{shop_id}"),
            kind: kind.to_owned(),
            shop_id: Some(shop_id.to_owned()),
            timing,
            payload: json!({}),
        }
    }
}

/// The shortest interval of an `Every` schedule.
const MIN_EVERY: Duration = Duration::from_millis(10);

/// A cron expression as the `cron` crate reads it (seconds first): ours have five fields.
fn parse_cron(expr: &str) -> Result<cron::Schedule, String> {
    let fields = expr.split_whitespace().count();
    if fields != 5 {
        return Err(format!(
            "`{expr}` has {fields} fields; a cron expression has five: minute hour day-of-month month day-of-week"
        ));
    }
    cron::Schedule::from_str(&format!("0 {expr}")).map_err(|e| format!("`{expr}`: {e}"))
}

/// Checks a timing: an interval of at least 10 ms, or a valid five-field cron expression.
pub fn check(timing: &Timing) -> Result<(), String> {
    match timing {
        Timing::Every(d) if *d < MIN_EVERY => Err("a schedule runs at most every 10 ms".into()),
        Timing::Every(_) => Ok(()),
        Timing::Cron(expr) => parse_cron(expr).map(|_| ()),
    }
}

/// The first time after `now` (Unix milliseconds) a timing gives.
pub fn next_after(timing: &Timing, now: i64) -> Result<i64, String> {
    match timing {
        Timing::Every(d) => {
            Ok(now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)))
        }
        Timing::Cron(expr) => {
            let schedule = parse_cron(expr)?;
            let from = chrono::DateTime::from_timestamp_millis(now)
                .ok_or_else(|| "the clock is out of range".to_owned())?;
            schedule
                .after(&from)
                .next()
                .map(|t| t.timestamp_millis())
                .ok_or_else(|| format!("`{expr}` never runs again"))
        }
    }
}

fn timing_columns(timing: &Timing) -> (Option<i64>, Option<String>) {
    match timing {
        Timing::Every(d) => (Some(i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)), None),
        Timing::Cron(expr) => (None, Some(expr.clone())),
    }
}

fn timing_of(every_ms: Option<i64>, cron: Option<String>) -> Option<Timing> {
    match (every_ms, cron) {
        (_, Some(expr)) => Some(Timing::Cron(expr)),
        (Some(ms), None) => Some(Timing::Every(Duration::from_millis(u64::try_from(ms).ok()?))),
        (None, None) => None,
    }
}

fn run_of(s: &Schedule, at: i64) -> NewJob {
    let mut job = match &s.shop_id {
        Some(shop) => NewJob::shop(&s.kind, shop, &format!("schedule {}", s.name)),
        None => NewJob::platform(&s.kind, &format!("schedule {}", s.name)),
    }
    .payload(s.payload.clone())
    .unique(Some(format!("schedule:{}", s.name)))
    .run_at(at)
    .coalesce(Coalesce::Earlier);
    job.schedule = Some(s.name.clone());
    job
}

/// Creates or replaces a schedule and queues its first run (an `Every` schedule's at once,
/// a cron schedule's at its next time) unless one is queued already.
pub async fn set_schedule(platform: &Platform, s: &Schedule) -> ApiResult<()> {
    check(&s.timing).map_err(|e| ApiError::invalid("schedule", e))?;
    let now = now_ms();
    let first = match &s.timing {
        Timing::Every(_) => now,
        Timing::Cron(_) => {
            next_after(&s.timing, now).map_err(|e| ApiError::invalid("schedule", e))?
        }
    };
    let (every_ms, cron) = timing_columns(&s.timing);
    platform
        .pools
        .backend()
        .write(
            &platform.registry,
            sqlx::query(
                "INSERT INTO schedules (name, kind, shop_id, every_ms, cron, payload, next_run_at, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
                 ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, \
                 shop_id = excluded.shop_id, every_ms = excluded.every_ms, cron = excluded.cron, \
                 payload = excluded.payload, updated_at = excluded.updated_at",
            )
            .bind(&s.name)
            .bind(&s.kind)
            .bind(s.shop_id.as_deref())
            .bind(every_ms)
            .bind(cron)
            .bind(s.payload.to_string())
            .bind(first)
            .bind(now),
        )
        .await?;
    if live_run(platform, &s.name).await? {
        return Ok(());
    }
    enqueue(platform, run_of(s, first)).await.map(|_| ())
}

/// Whether a schedule has a run queued or running.
async fn live_run(platform: &Platform, name: &str) -> ApiResult<bool> {
    let found: Option<String> = sqlx::query_scalar(
        "SELECT id FROM jobs WHERE unique_key = $1 AND status IN ('queued', 'running') LIMIT 1",
    )
    .bind(format!("schedule:{name}"))
    .fetch_optional(&platform.registry)
    .await?;
    Ok(found.is_some())
}

/// Deletes a schedule and its queued run; whether it existed.
pub async fn remove_schedule(platform: &Platform, name: &str) -> ApiResult<bool> {
    let backend = platform.pools.backend();
    let mut tx = backend.begin_write(&platform.registry).await?;
    sqlx::query("DELETE FROM jobs WHERE unique_key = $1 AND status = 'queued'")
        .bind(format!("schedule:{name}"))
        .execute(&mut *tx)
        .await?;
    let done =
        sqlx::query("DELETE FROM schedules WHERE name = $1").bind(name).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(done.rows_affected() == 1)
}

fn schedule_from(row: &sqlx::any::AnyRow) -> Result<Option<Schedule>, sqlx::Error> {
    let payload: String = row.try_get("payload")?;
    let Some(timing) = timing_of(row.try_get("every_ms")?, row.try_get("cron")?) else {
        return Ok(None);
    };
    Ok(Some(Schedule {
        name: row.try_get("name")?,
        kind: row.try_get("kind")?,
        shop_id: row.try_get("shop_id")?,
        timing,
        payload: serde_json::from_str(&payload).unwrap_or_else(|_| json!({})),
    }))
}

const SCHEDULE_COLUMNS: &str = "name, kind, shop_id, every_ms, cron, payload, next_run_at";

/// Queues the next run of the schedule a finished job belonged to (if it still exists).
pub(super) async fn queue_next(platform: &Platform, name: &str) -> ApiResult<()> {
    let sql = format!("SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE name = $1");
    let row =
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(name).fetch_optional(&platform.registry).await?;
    let Some(s) = row.as_ref().map(schedule_from).transpose()?.flatten() else { return Ok(()) };
    queue_run_after(platform, &s, now_ms()).await
}

async fn queue_run_after(platform: &Platform, s: &Schedule, now: i64) -> ApiResult<()> {
    let next = match next_after(&s.timing, now) {
        Ok(next) => next,
        Err(e) => {
            tracing::warn!(schedule = %s.name, error = %e, "schedule stopped");
            return Ok(());
        }
    };
    platform
        .pools
        .backend()
        .write(
            &platform.registry,
            sqlx::query("UPDATE schedules SET next_run_at = $1 WHERE name = $2")
                .bind(next)
                .bind(&s.name),
        )
        .await?;
    enqueue(platform, run_of(s, next)).await.map(|_| ())
}

/// Queues a run of every schedule that has none queued or running (at its recorded next
/// time, or now if that passed); the number queued.
pub(super) async fn sweep(platform: &Platform) -> ApiResult<usize> {
    let sql = format!(
        "SELECT {SCHEDULE_COLUMNS} FROM schedules s WHERE NOT EXISTS (SELECT 1 FROM jobs j \
         WHERE j.unique_key = 'schedule:' || s.name AND j.status IN ('queued', 'running')) \
         LIMIT 1000"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&platform.registry).await?;
    let mut queued = 0;
    for row in &rows {
        let next: i64 = row.try_get("next_run_at")?;
        if let Some(s) = schedule_from(row)? {
            enqueue(platform, run_of(&s, next.max(now_ms()))).await?;
            queued += 1;
        }
    }
    Ok(queued)
}

/// A schedule as `aurelio jobs schedules` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScheduleOut {
    /// Its name.
    pub name: String,
    /// The kind it queues.
    pub kind: String,
    /// The shop, if any.
    pub shop_id: Option<String>,
    /// `every 10000 ms` or `cron */15 * * * *`.
    pub timing: String,
    /// When its next run is due (RFC 3339).
    pub next_run_at: String,
}

/// Every schedule, by name.
pub async fn schedules(platform: &Platform) -> ApiResult<Vec<ScheduleOut>> {
    let sql = format!("SELECT {SCHEDULE_COLUMNS} FROM schedules ORDER BY name LIMIT 10000");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&platform.registry).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let Some(s) = schedule_from(row)? else { continue };
        out.push(ScheduleOut {
            timing: match &s.timing {
                Timing::Every(d) => format!("every {} ms", d.as_millis()),
                Timing::Cron(expr) => format!("cron {expr}"),
            },
            name: s.name,
            kind: s.kind,
            shop_id: s.shop_id,
            next_run_at: crate::db::rfc3339(row.try_get("next_run_at")?),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_expressions_have_five_fields_and_give_the_next_time() {
        // 2026-12-08T00:07:30Z
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-08T00:07:30Z")
            .expect("time")
            .timestamp_millis();
        let next = next_after(&Timing::Cron("*/15 * * * *".into()), now).expect("valid");
        let at = chrono::DateTime::from_timestamp_millis(next).expect("time");
        assert_eq!(at.to_rfc3339(), "2026-12-08T00:15:00+00:00");
        let daily = next_after(&Timing::Cron("30 2 * * *".into()), now).expect("valid");
        let at = chrono::DateTime::from_timestamp_millis(daily).expect("time");
        assert_eq!(at.to_rfc3339(), "2026-12-08T02:30:00+00:00");
        let six = check(&Timing::Cron("0 */5 * * * *".into())).expect_err("six fields");
        assert!(six.contains("has 6 fields"), "{six}");
        assert!(check(&Timing::Cron("61 * * * *".into())).is_err());
        assert!(check(&Timing::Every(Duration::from_millis(1))).is_err());
        assert_eq!(next_after(&Timing::Every(Duration::from_secs(2)), 1_000), Ok(3_000));
    }
}
