//! Storefront builds: the `build` job kind and the builds API.
//!
//! A write that changes what a storefront shows calls `jobs::request_build` (debounced:
//! a burst of edits makes one more build). A build job exports the shop's database to its
//! catalog directory, runs an incremental build in the engine session this process keeps
//! for the shop (`Sessions`) and publishes the result, reporting its stage as progress. A
//! failed build leaves the live storefront as it was and records why, with every problem.

use crate::auth::{Permission, Tenant};
use crate::db::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::platform::Platform;
use crate::platform::jobs::{self, Job, JobError, Kind};
use crate::registry;
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

/// Registers the `build` job kind: export, build and publish a shop's storefront. A build
/// whose catalog has problems fails at once (another attempt would find the same); one
/// stopped by anything else (a database, the object store) is tried three times.
pub fn install(platform: &Platform) {
    platform.jobs.register(
        Kind::new(jobs::BUILD, |platform: Arc<Platform>, job: Job| async move {
            let shop = job.shop()?.to_owned();
            let started = Instant::now();
            let outcome = build_and_publish(&platform, &shop, &job).await;
            let status = if outcome.is_ok() { "succeeded" } else { "failed" };
            if let Ok(done) = &outcome {
                tracing::info!(shop = %shop, pages = %done["pages"], ms = started.elapsed().as_millis(), "build published");
            }
            metrics::counter!("aurelio_builds_total", "status" => status).increment(1);
            metrics::histogram!("aurelio_build_duration_seconds")
                .record(started.elapsed().as_secs_f64());
            outcome
        })
        .attempts(3)
        .backoff(Duration::from_secs(2), Duration::from_secs(60))
        .timeout(Duration::from_secs(1800)),
    );
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
}

impl Sessions {
    const MAX: usize = 32;

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

/// Exports, builds and publishes one shop; the counts, or the problems as JSON.
async fn build_and_publish(
    platform: &Arc<Platform>,
    shop_id: &str,
    job: &Job,
) -> Result<Value, JobError> {
    let shop = registry::shop(&platform.registry, shop_id)
        .await?
        .ok_or_else(|| JobError::fatal("the shop no longer exists"))?;
    let db = platform.shop_db(&shop).await?;
    let work = platform.work_dir(shop_id);
    let catalog_dir = work.join("catalog");
    let session = platform.state.get::<Sessions>().get(shop_id);
    let t0 = Instant::now();
    job.progress(0, 4, "export");
    let mut memo = session.export.lock().await;
    let backend = platform.pools.backend();
    let exported = crate::catalog::store::export_with(backend, &db, &catalog_dir, &mut memo).await;
    drop(memo);
    exported?;
    crate::catalog::images::export_images(&platform.media, &db, shop_id, &catalog_dir).await?;
    let export_ms = t0.elapsed().as_millis();
    // Built for the primary custom domain once one is verified (served over HTTPS by the
    // CDN in front), else for the platform's storefront address.
    let base_url = match registry::primary_domain(&platform.registry, shop_id).await {
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
    let progress = job.reporter();
    let cancel = job.cancel();
    let blocking = tokio::task::spawn_blocking(move || {
        let mut session = session.engine.lock().expect("session lock");
        progress.set(1, 4, "build");
        let report = aurelio_engine::build_in(&mut session, &opts, &aurelio_engine::Silent)
            .map_err(|e| JobError::fatal_detail(build_error_json(&e)))?;
        let target = aurelio_engine::publish::Target::from_url(&target_url)
            .map_err(|e| JobError::fatal(format!("publish target: {e}")))?;
        let publish = || {
            // An attempt given up (its lease went to another worker) never publishes.
            if cancel.is_set() {
                return Err(JobError::retry("given up before publishing"));
            }
            let published = aurelio_engine::publish::publish(
                &target,
                &opts.out,
                &aurelio_engine::publish::PublishOptions::default(),
                &aurelio_engine::Silent,
            )
            .map_err(|e| JobError::retry(format!("publish: {e}")))?;
            // A publish that changed nothing records no deploy and leaves the live state.
            if published.recorded {
                platform2.forget(&shop);
            }
            Ok::<_, JobError>(published)
        };
        progress.set(2, 4, "publish");
        let published = publish()?;
        // The storefront is live; the feeds the change affected follow.
        progress.set(3, 4, "feeds");
        let feeds =
            session.finish_feeds().map_err(|e| JobError::fatal_detail(build_error_json(&e)))?;
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
        progress.set(4, 4, "published");
        Ok::<_, JobError>(json!({
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
    .map_err(|e| JobError::fatal(format!("the build panicked: {e}")))?;
    let mut result = blocking?;
    result["export_ms"] = json!(export_ms);
    if result["recorded"] == json!(true) || !result["feeds"].is_null() {
        platform.forget(shop_id);
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
    let build_id = jobs::request_build(&tenant.platform, &tenant.shop.id, "requested").await?;
    Ok((StatusCode::ACCEPTED, Json(Queued { build_id })))
}
