//! Storefront builds as jobs in the registry.
//!
//! A catalog write calls `enqueue`: after a quiet spell a build is queued to start at
//! once; otherwise the queued build's start is pushed back by the debounce interval (a
//! burst of edits makes one more build; steady writes one every `push_back_limit`). Workers claim due jobs with one conditional `UPDATE ... RETURNING` (with
//! `FOR UPDATE SKIP LOCKED` on PostgreSQL, so several API processes share the queue; a
//! shop never has two builds running). A job exports the shop's database to its catalog
//! directory, runs an incremental build and publishes the result. A failed build leaves
//! the live storefront as it was and records why.

use crate::auth::{Permission, Tenant};
use crate::db::{now_ms, rfc3339};
use crate::error::{ApiError, ApiResult};
use crate::registry;
use crate::server::Platform;
use aurelio_engine::{BuildOptions, Session};
use axum::Json;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::Row;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Build routes.
pub fn router() -> OpenApiRouter<Arc<Platform>> {
    OpenApiRouter::new().routes(routes!(list_builds, trigger_build)).routes(routes!(get_build))
}

/// Queues a build of the shop; the id of the queued job. The first write after a quiet
/// spell (no build queued within the debounce interval) builds at once; later writes wait
/// the interval and push a queued build back by it, so a burst of edits makes one more
/// build; but never more than `push_back_limit` after it was first queued, so steady
/// writes (a sale's checkouts) still see the storefront follow.
pub async fn enqueue(platform: &Platform, shop_id: &str, reason: &str) -> ApiResult<String> {
    let debounce = platform.config.build_debounce;
    let wait = i64::try_from(debounce.as_millis()).unwrap_or(i64::MAX / 4);
    let now = now_ms();
    let last: Option<i64> = sqlx::query_scalar(
        "SELECT MAX(created_at) FROM jobs WHERE shop_id = $1 AND kind = 'build'",
    )
    .bind(shop_id)
    .fetch_one(&platform.registry)
    .await?;
    let due = if last.is_some_and(|t| t > now - wait) { now + wait } else { now };
    let later = Some(push_back_limit(debounce));
    let id = queue_job(platform, shop_id, "build", reason, due, later).await?;
    metrics::counter!("aurelio_builds_queued_total").increment(1);
    Ok(id)
}

/// How long after it was first queued a build starts at the latest: four debounce
/// intervals, and at least two seconds.
pub fn push_back_limit(debounce: Duration) -> Duration {
    (debounce * 4).max(Duration::from_secs(2))
}

/// Queues a job of `kind` for the shop, due at `due`, unless one is queued already: that
/// one then stays due at the earlier of the two times, or, with `later: Some(limit)`,
/// moves to `due`, though never past `limit` after it was first queued. One upsert on the
/// registry's one-queued-job-per-shop-and-kind index, so concurrent callers queue one job,
/// in any number of processes. Wakes the job runner; the job's id.
pub async fn queue_job(
    platform: &Platform,
    shop_id: &str,
    kind: &str,
    reason: &str,
    due: i64,
    later: Option<Duration>,
) -> ApiResult<String> {
    let limit = later.map_or(-1, |l| i64::try_from(l.as_millis()).unwrap_or(i64::MAX / 4));
    let _turn = platform.pools.backend().write_turn(&platform.registry).await?;
    let id: String = sqlx::query_scalar(
        "INSERT INTO jobs (id, shop_id, kind, status, reason, run_after, created_at) \
         VALUES ($1, $2, $3, 'queued', $4, $5, $6) \
         ON CONFLICT (shop_id, kind) WHERE status = 'queued' DO UPDATE SET run_after = CASE \
         WHEN $7 < 0 AND jobs.run_after < excluded.run_after THEN jobs.run_after \
         WHEN $7 >= 0 AND excluded.run_after > jobs.created_at + $7 \
           THEN jobs.created_at + $7 \
         ELSE excluded.run_after END \
         RETURNING id",
    )
    .bind(registry::new_id(kind))
    .bind(shop_id)
    .bind(kind)
    .bind(reason)
    .bind(due)
    .bind(now_ms())
    .bind(limit)
    .fetch_one(&platform.registry)
    .await?;
    platform.wake.notify_one();
    Ok(id)
}

/// A claimed job.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// Job id.
    pub id: String,
    /// The shop.
    pub shop_id: String,
    /// `build`, `webhooks`, `holds` (unpaid orders' stock) or `cleanup` (idle carts).
    pub kind: String,
}

/// Claims the next due job whose shop has no job of the same kind running.
pub async fn claim(platform: &Platform, worker: &str) -> ApiResult<Option<Claimed>> {
    let lock = if platform.pools.backend().is_postgres() { "FOR UPDATE SKIP LOCKED" } else { "" };
    let sql = format!(
        "UPDATE jobs SET status = 'running', worker = $1, started_at = $2, attempts = attempts + 1 \
         WHERE id = (SELECT id FROM jobs j WHERE j.status = 'queued' AND j.run_after <= $2 \
           AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.shop_id = j.shop_id AND r.kind = j.kind \
             AND r.status = 'running') \
           ORDER BY j.run_after LIMIT 1 {lock}) AND status = 'queued' \
         RETURNING id, shop_id, kind"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(worker)
        .bind(now_ms())
        .fetch_optional(&platform.registry)
        .await?;
    Ok(match row {
        Some(r) => Some(Claimed {
            id: r.try_get("id")?,
            shop_id: r.try_get("shop_id")?,
            kind: r.try_get("kind")?,
        }),
        None => None,
    })
}

/// Milliseconds until the next queued job is due (to sleep that long at most).
async fn next_due(platform: &Platform) -> ApiResult<Option<i64>> {
    let due: Option<i64> =
        sqlx::query_scalar("SELECT MIN(run_after) FROM jobs WHERE status = 'queued'")
            .fetch_one(&platform.registry)
            .await?;
    Ok(due.map(|d| (d - now_ms()).max(0)))
}

/// Jobs a crashed process left `running` go back to the queue; one whose shop has a job
/// of its kind queued meanwhile is failed instead, as that job does its work.
pub async fn requeue_stale(platform: &Platform, older_than: Duration) -> ApiResult<u64> {
    let cutoff = now_ms() - i64::try_from(older_than.as_millis()).unwrap_or(0);
    let backend = platform.pools.backend();
    let mut tx = backend.begin_write(&platform.registry).await?;
    let requeued = sqlx::query(
        "UPDATE jobs SET status = 'queued', worker = NULL \
         WHERE status = 'running' AND started_at < $1 AND NOT EXISTS (SELECT 1 FROM jobs q \
           WHERE q.shop_id = jobs.shop_id AND q.kind = jobs.kind AND q.status = 'queued')",
    )
    .bind(cutoff)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE jobs SET status = 'failed', finished_at = $2, error = $3 \
         WHERE status = 'running' AND started_at < $1",
    )
    .bind(cutoff)
    .bind(now_ms())
    .bind(json!({"message": "its process stopped; a newer job does its work"}).to_string())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(requeued.rows_affected())
}

/// What the worker keeps of a shop between builds: the engine's session (parsed products
/// and more), locked while a build runs, and the last export's product lines.
#[derive(Default)]
struct ShopSession {
    engine: Mutex<Session>,
    export: tokio::sync::Mutex<crate::catalog::store::ExportMemo>,
}

type SharedSession = Arc<ShopSession>;

/// What the worker keeps per shop between builds (`ShopSession`), bounded.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, (SharedSession, Instant)>>,
    /// When this process last queued a job of a kind for a shop (`first_in`).
    queued: Mutex<HashMap<(String, &'static str), Instant>>,
}

impl Sessions {
    const MAX: usize = 32;

    /// Whether this process queued no `kind` job for the shop within `every` (then it is
    /// noted as queued now): spares the registry a write per cart.
    pub fn first_in(&self, shop_id: &str, kind: &'static str, every: Duration) -> bool {
        let mut queued = self.queued.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
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

    fn get(&self, shop_id: &str) -> SharedSession {
        let mut map = self.map.lock().expect("sessions lock");
        if !map.contains_key(shop_id) && map.len() >= Self::MAX {
            let oldest = map.iter().min_by_key(|(_, (_, t))| *t).map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                map.remove(&k);
            }
        }
        let entry = map.entry(shop_id.to_owned()).or_insert_with(|| {
            // Pages are published first, the product feeds a change affects right after.
            let engine = Mutex::new(Session::deferring_feeds());
            (Arc::new(ShopSession { engine, export: Default::default() }), Instant::now())
        });
        entry.1 = Instant::now();
        entry.0.clone()
    }
}

/// Runs build jobs until `shutdown` fires; the job in progress finishes first.
pub async fn worker(platform: Arc<Platform>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let name = format!("{}-{}", std::process::id(), registry::random_hex(4));
    if let Err(e) = requeue_stale(&platform, Duration::from_secs(600)).await {
        tracing::warn!(error = %e, "cannot requeue stale jobs");
    }
    loop {
        if *shutdown.borrow() {
            break;
        }
        match claim(&platform, &name).await {
            Ok(Some(job)) => {
                let _ = run(&platform, &job).await;
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot claim a build job"),
        }
        let wait = match next_due(&platform).await {
            Ok(Some(ms)) => Duration::from_millis(u64::try_from(ms).unwrap_or(0).max(5)),
            _ => Duration::from_secs(2),
        };
        tokio::select! {
            () = platform.wake.notified() => {}
            () = tokio::time::sleep(wait.min(Duration::from_secs(2))) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Runs a build of the shop at once in this task (provisioning), recorded as a job like
/// any other; its id and outcome.
pub async fn run_now(
    platform: &Arc<Platform>,
    shop_id: &str,
    reason: &str,
) -> ApiResult<(String, Result<Value, Value>)> {
    let id = registry::new_id("build");
    let now = now_ms();
    sqlx::query(
        "INSERT INTO jobs (id, shop_id, kind, status, reason, run_after, attempts, worker, \
         created_at, started_at) VALUES ($1, $2, 'build', 'running', $3, $4, 1, 'inline', $4, $4)",
    )
    .bind(&id)
    .bind(shop_id)
    .bind(reason)
    .bind(now)
    .execute(&platform.registry)
    .await?;
    let job = Claimed { id: id.clone(), shop_id: shop_id.to_owned(), kind: "build".into() };
    let outcome = run(platform, &job).await;
    Ok((id, outcome))
}

/// Runs one claimed build job and records its outcome.
async fn run(platform: &Arc<Platform>, job: &Claimed) -> Result<Value, Value> {
    let started = Instant::now();
    let span = tracing::info_span!("build", job = %job.id, shop = %job.shop_id);
    let _enter = span.enter();
    let outcome = match job.kind.as_str() {
        "webhooks" => crate::commerce::webhooks::deliver_due(platform, &job.shop_id).await,
        "holds" => crate::commerce::holds::release_due(platform, &job.shop_id).await,
        "cleanup" => crate::commerce::holds::clean(platform, &job.shop_id).await,
        _ => build_and_publish(platform, &job.shop_id).await,
    };
    let elapsed = started.elapsed();
    let (status, result, error) = match &outcome {
        Ok(result) => ("succeeded", Some(result), None),
        Err(error) => ("failed", None, Some(error)),
    };
    metrics::counter!("aurelio_builds_total", "status" => status).increment(1);
    metrics::histogram!("aurelio_build_duration_seconds").record(elapsed.as_secs_f64());
    match &error {
        None => tracing::info!(ms = elapsed.as_millis(), "build published"),
        Some(e) => tracing::warn!(ms = elapsed.as_millis(), error = %e, "build failed"),
    }
    let saved = sqlx::query(
        "UPDATE jobs SET status = $1, finished_at = $2, result = $3, error = $4 WHERE id = $5",
    )
    .bind(status)
    .bind(now_ms())
    .bind(result.map(|r| r.to_string()))
    .bind(error.map(|e| e.to_string()))
    .bind(&job.id)
    .execute(&platform.registry)
    .await;
    if let Err(e) = saved {
        tracing::error!(error = %e, "cannot record the build's outcome");
    }
    platform.builds_done.send_replace(job.id.clone());
    outcome
}

/// Exports, builds and publishes one shop; the counts, or the problems as JSON.
async fn build_and_publish(platform: &Arc<Platform>, shop_id: &str) -> Result<Value, Value> {
    let fail = |message: String| json!({ "message": message });
    let shop = registry::shop(&platform.registry, shop_id)
        .await
        .map_err(|e| fail(e.to_string()))?
        .ok_or_else(|| fail("the shop no longer exists".into()))?;
    let db = platform.shop_db(&shop).await.map_err(|e| fail(e.message))?;
    let work = platform.work_dir(shop_id);
    let catalog_dir = work.join("catalog");
    let session = platform.sessions.get(shop_id);
    let t0 = Instant::now();
    let mut memo = session.export.lock().await;
    let backend = platform.pools.backend();
    let exported = crate::catalog::store::export_with(backend, &db, &catalog_dir, &mut memo).await;
    drop(memo);
    exported.map_err(|e| fail(e.message))?;
    crate::catalog::images::export_images(&platform.media, &db, shop_id, &catalog_dir)
        .await
        .map_err(|e| fail(e.message))?;
    let export_ms = t0.elapsed().as_millis();
    // Built for the primary custom domain once one is verified (served over HTTPS by the
    // CDN in front), else for the platform's storefront address.
    let base_url = match crate::domains::primary(platform, shop_id).await {
        Ok(Some(host)) => format!("https://{host}"),
        _ => platform.storefront_url(&shop.handle),
    };
    let opts = BuildOptions {
        site: catalog_dir,
        out: work.join("site"),
        base_url: Some(base_url),
        theme: None,
        clean: false,
        cache_dir: Some(platform.config.data_dir.join("cache")),
    };
    let target_url = platform.publish_url(shop_id);
    let (platform2, shop) = (Arc::clone(platform), shop_id.to_owned());
    let blocking = tokio::task::spawn_blocking(move || {
        let mut session = session.engine.lock().expect("session lock");
        let report = aurelio_engine::build_in(&mut session, &opts, &aurelio_engine::Silent)
            .map_err(|e| build_error_json(&e))?;
        let target = aurelio_engine::publish::Target::from_url(&target_url)
            .map_err(|e| json!({ "message": format!("publish target: {e}") }))?;
        let publish = || {
            let published = aurelio_engine::publish::publish(
                &target,
                &opts.out,
                &aurelio_engine::publish::PublishOptions::default(),
                &aurelio_engine::Silent,
            )
            .map_err(|e| json!({ "message": format!("publish: {e}") }))?;
            // A publish that changed nothing records no deploy and leaves the live state.
            if published.recorded {
                platform2.origin.forget(&shop);
            }
            Ok::<_, Value>(published)
        };
        let published = publish()?;
        // The storefront is live; the feeds the change affected follow.
        let feeds = session.finish_feeds().map_err(|e| build_error_json(&e))?;
        let feeds = match feeds {
            Some(done) => {
                let again = publish()?;
                json!({
                    "written": done.written,
                    "build_ms": done.elapsed.as_millis(),
                    "uploaded": again.summary.uploaded,
                    "publish_ms": again.elapsed.as_millis(),
                })
            }
            None => Value::Null,
        };
        Ok::<_, Value>(json!({
            "feeds": feeds,
            "pages": report.pages,
            "rendered": report.rendered,
            "unchanged": report.unchanged,
            "removed": report.removed,
            "images_encoded": report.images.encoded,
            "build_ms": report.elapsed.as_millis(),
            "deploy": published.summary.id,
            "recorded": published.recorded,
            "uploaded": published.summary.uploaded,
            "deleted": published.summary.deleted,
            "publish_ms": published.elapsed.as_millis(),
            "purge": published.purge.urls,
        }))
    })
    .await
    .map_err(|e| fail(format!("the build panicked: {e}")))?;
    let mut result = blocking?;
    result["export_ms"] = json!(export_ms);
    if result["recorded"] == json!(true) || !result["feeds"].is_null() {
        platform.origin.forget(shop_id);
    }
    Ok(result)
}

fn build_error_json(e: &aurelio_engine::BuildError) -> Value {
    let problems: Vec<Value> = e
        .diagnostics()
        .map(|d| {
            d.iter()
                .filter(|d| d.severity == aurelio_engine::Severity::Error)
                .map(|d| {
                    json!({
                        "code": d.code, "file": d.file, "line": d.line, "field": d.field,
                        "message": d.message, "text": d.to_string(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    json!({ "message": e.to_string(), "problems": problems })
}

/// A build job as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct BuildOut {
    /// Job id.
    pub id: String,
    /// `queued`, `running`, `succeeded` or `failed`.
    pub status: String,
    /// What queued it.
    pub reason: String,
    /// When it was queued.
    pub created_at: String,
    /// When it started.
    pub started_at: Option<String>,
    /// When it finished.
    pub finished_at: Option<String>,
    /// Counts: pages rendered / unchanged / removed, files uploaded / deleted, timings.
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    /// Why it failed: a message and every problem with file, line and field.
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
}

fn build_out(r: &sqlx::any::AnyRow) -> Result<BuildOut, sqlx::Error> {
    let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
    Ok(BuildOut {
        id: r.try_get("id")?,
        status: r.try_get("status")?,
        reason: r.try_get("reason")?,
        created_at: rfc3339(r.try_get("created_at")?),
        started_at: r.try_get::<Option<i64>, _>("started_at")?.map(rfc3339),
        finished_at: r.try_get::<Option<i64>, _>("finished_at")?.map(rfc3339),
        result: parse(r.try_get("result")?),
        error: parse(r.try_get("error")?),
    })
}

const BUILD_COLUMNS: &str =
    "id, status, reason, created_at, started_at, finished_at, result, error";

/// One build of the shop.
#[utoipa::path(get, path = "/api/v1/builds/{id}", tag = "builds",
    params(("id" = String, Path, description = "build id")), security(("secret_key" = [])),
    responses((status = 200, body = BuildOut), (status = 404, body = crate::error::ErrorBody)))]
async fn get_build(tenant: Tenant, Path(id): Path<String>) -> ApiResult<Json<BuildOut>> {
    tenant.require(Permission::Read)?;
    let sql = format!(
        "SELECT {BUILD_COLUMNS} FROM jobs WHERE id = $1 AND shop_id = $2 AND kind = 'build'"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&id)
        .bind(&tenant.shop.id)
        .fetch_optional(&tenant.platform.registry)
        .await?
        .ok_or_else(|| ApiError::not_found("build"))?;
    Ok(Json(build_out(&row)?))
}

/// Query of the build list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BuildQuery {
    /// At most this many, newest first (default 20, at most 100).
    pub limit: Option<i64>,
}

/// The shop's builds, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct BuildList {
    /// Builds.
    pub builds: Vec<BuildOut>,
}

/// Recent builds of the shop.
#[utoipa::path(get, path = "/api/v1/builds", tag = "builds", params(BuildQuery),
    security(("secret_key" = [])), responses((status = 200, body = BuildList)))]
async fn list_builds(tenant: Tenant, Query(q): Query<BuildQuery>) -> ApiResult<Json<BuildList>> {
    tenant.require(Permission::Read)?;
    let limit = q.limit.unwrap_or(20).clamp(1, 100);
    let sql = format!(
        "SELECT {BUILD_COLUMNS} FROM jobs WHERE shop_id = $1 AND kind = 'build' \
         ORDER BY created_at DESC, id LIMIT $2"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&tenant.shop.id)
        .bind(limit)
        .fetch_all(&tenant.platform.registry)
        .await?;
    let builds = rows.iter().map(build_out).collect::<Result<_, _>>()?;
    Ok(Json(BuildList { builds }))
}

/// The id of a queued build.
#[derive(Debug, Serialize, ToSchema)]
pub struct Queued {
    /// Build id: poll `GET /api/v1/builds/{id}`.
    pub build_id: String,
}

/// Queue a build of the storefront now.
#[utoipa::path(post, path = "/api/v1/builds", tag = "builds", security(("secret_key" = [])),
    responses((status = 202, body = Queued)))]
async fn trigger_build(tenant: Tenant) -> ApiResult<(StatusCode, Json<Queued>)> {
    tenant.require(Permission::CatalogWrite)?;
    let build_id = enqueue(&tenant.platform, &tenant.shop.id, "requested").await?;
    Ok((StatusCode::ACCEPTED, Json(Queued { build_id })))
}
