//! The jobs API: a shop's jobs with its secret key (any role), every job (platform jobs
//! too) with the admin token, which may also queue a `dead` or `failed` job again.

use super::store::{JobFilter, JobOut, JobPage, MAX_PAGE};
use crate::auth::{Access, Admin, Permission, Tenant};
use crate::error::{ApiError, ApiResult};
use crate::platform::Platform;
use axum::Json;
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::Deserialize;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Job routes.
pub fn router() -> OpenApiRouter<Arc<Platform>> {
    OpenApiRouter::new()
        .routes(routes!(list_jobs))
        .routes(routes!(get_job))
        .routes(routes!(retry_job))
}

/// Who asks: the platform admin, or a shop with a secret key.
enum Caller {
    Admin(Arc<Platform>),
    Shop(Box<Tenant>),
}

impl Caller {
    fn platform(&self) -> &Platform {
        match self {
            Self::Admin(p) => p,
            Self::Shop(t) => &t.platform,
        }
    }

    fn shop_id(&self) -> Option<&str> {
        match self {
            Self::Admin(_) => None,
            Self::Shop(t) => Some(&t.shop.id),
        }
    }
}

impl FromRequestParts<Arc<Platform>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        platform: &Arc<Platform>,
    ) -> Result<Self, Self::Rejection> {
        let shop_key = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .is_some_and(|(_, t)| t.trim().starts_with("sk_") || t.trim().starts_with("pk_"));
        if shop_key {
            let tenant = Tenant::from_request_parts(parts, platform).await?;
            tenant.require(Permission::Read)?;
            if tenant.access == Access::Publishable {
                return Err(ApiError::forbidden("jobs need a secret key"));
            }
            return Ok(Self::Shop(Box::new(tenant)));
        }
        Admin::from_request_parts(parts, platform).await?;
        Ok(Self::Admin(platform.clone()))
    }
}

/// Query of the job list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobQuery {
    /// Only jobs of this kind (`build`, `webhooks`, `holds`, `cleanup`, `domains.check`…).
    pub kind: Option<String>,
    /// Only jobs in this state: `queued`, `running`, `succeeded`, `failed` or `dead`.
    pub status: Option<String>,
    /// The admin token only: one shop's jobs (its id).
    pub shop: Option<String>,
    /// The admin token only: only platform jobs (those of no shop).
    pub platform: Option<bool>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Jobs on a page, 1 to 200 (default 50).
    pub limit: Option<i64>,
}

const STATES: [&str; 5] = ["queued", "running", "succeeded", "failed", "dead"];

fn checked_name(field: &str, value: Option<String>) -> ApiResult<Option<String>> {
    match value {
        Some(v)
            if v.is_empty()
                || v.len() > 64
                || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) =>
        {
            Err(ApiError::invalid(
                field,
                format!("`{field}` is 1 to 64 letters, digits, `.`, `_` or `-`"),
            ))
        }
        v => Ok(v),
    }
}

/// Jobs, newest first: a shop's own with its secret key; every job with the admin token.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs", params(JobQuery),
    security(("secret_key" = []), ("admin_token" = [])),
    responses((status = 200, body = JobPage)))]
async fn list_jobs(caller: Caller, Query(q): Query<JobQuery>) -> ApiResult<Json<JobPage>> {
    if let Some(s) = q.status.as_deref().filter(|s| !STATES.contains(s)) {
        return Err(ApiError::invalid(
            "status",
            format!("`{s}` is not a job state: queued, running, succeeded, failed or dead"),
        ));
    }
    let limit = q.limit.unwrap_or(50);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::invalid("limit", format!("limit is 1 to {MAX_PAGE}")));
    }
    let (shop_id, platform_only) = match caller.shop_id() {
        Some(own) => {
            if q.shop.is_some() || q.platform.is_some() {
                return Err(ApiError::forbidden("`shop` and `platform` need the admin token"));
            }
            (Some(own.to_owned()), false)
        }
        None => (checked_name("shop", q.shop)?, q.platform.unwrap_or(false)),
    };
    let filter = JobFilter {
        shop_id,
        platform_only,
        kind: checked_name("kind", q.kind)?,
        status: q.status,
        cursor: q.cursor,
        limit,
    };
    Ok(Json(super::list(caller.platform(), &filter).await?))
}

/// One job: a shop's own with its secret key; any with the admin token.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "job id")),
    security(("secret_key" = []), ("admin_token" = [])),
    responses((status = 200, body = JobOut)))]
async fn get_job(caller: Caller, Path(id): Path<String>) -> ApiResult<Json<JobOut>> {
    Ok(Json(super::get(caller.platform(), &id, caller.shop_id()).await?))
}

/// Queues a `dead` or `failed` job again with a fresh budget of attempts (admin token).
#[utoipa::path(post, path = "/api/v1/jobs/{id}/retry", tag = "jobs",
    params(("id" = String, Path, description = "job id")), security(("admin_token" = [])),
    responses((status = 202, body = JobOut)))]
async fn retry_job(
    _admin: Admin,
    axum::extract::State(platform): axum::extract::State<Arc<Platform>>,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<JobOut>)> {
    let job = super::get(&platform, &id, None).await?;
    if !super::requeue_dead(&platform, &id).await? {
        return Err(ApiError::conflict(
            "status",
            format!(
                "the job is `{}`; only dead or failed jobs are retried, and not while another with its key is queued",
                job.status
            ),
        ));
    }
    platform.jobs.wake();
    Ok((StatusCode::ACCEPTED, Json(super::get(&platform, &id, None).await?)))
}
