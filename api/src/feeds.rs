//! Product feeds over the API: each shop's Google, Meta and TikTok feeds as published by
//! its last build (so they always agree with the storefront), with `ETag`/304 and
//! compression, and the feed generation log (when, items, warnings).
//!
//! Which feeds a shop has, product exclusions and per-product overrides are catalog
//! settings (`feeds` in the store settings, `feed` on a product; see docs/feeds.md), changed
//! through `PUT /api/v1/store` and the product routes like any other catalog data.

use crate::auth::{Permission, Tenant};
use crate::db::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::platform::Platform;
use aurelio_engine::feeds::{Format, site};
use axum::Json;
use axum::extract::{Path, Query};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes.
pub fn router() -> OpenApiRouter<Arc<Platform>> {
    OpenApiRouter::new().routes(routes!(list_feeds)).routes(routes!(get_feed))
}

const FORMATS: [Format; 4] =
    [Format::GoogleXml, Format::MetaCsv, Format::TiktokCsv, Format::TiktokJson];

fn channel_name(f: Format) -> &'static str {
    match f {
        Format::GoogleXml => "google",
        Format::MetaCsv => "meta",
        Format::TiktokCsv | Format::TiktokJson => "tiktok",
    }
}

/// One feed of the shop.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeedOut {
    /// `google`, `meta` or `tiktok`.
    pub channel: String,
    /// Path in the storefront (`feeds/google.xml`).
    pub path: String,
    /// Public URL on the storefront.
    pub url: String,
    /// Whether the last published build carries it.
    pub published: bool,
    /// The last generation: time, items, products, exclusions, skipped variants, warnings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generated_at: Option<String>,
    /// Items (one per variant).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<usize>,
    /// Variants left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<usize>,
    /// Products excluded by settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub excluded: Option<usize>,
    /// Why variants were left out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Size in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

/// The shop's feeds.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeedList {
    /// One per format.
    pub feeds: Vec<FeedOut>,
}

/// The shop's feeds and their generation log.
#[utoipa::path(get, path = "/api/v1/feeds", tag = "feeds", security(("secret_key" = [])),
    responses((status = 200, body = FeedList)))]
async fn list_feeds(tenant: Tenant) -> ApiResult<Json<FeedList>> {
    tenant.require(Permission::Read)?;
    let p = &tenant.platform;
    let site = p.work_dir(&tenant.shop.id).join("site");
    let cache = p.config.data_dir.join("cache");
    let storefront = p.storefront_url(&tenant.shop.handle);
    let mut feeds = Vec::new();
    for f in FORMATS {
        let published = site.join(f.site_path()).is_file();
        let log = if published { site::generation_log(&cache, &site, f) } else { None };
        feeds.push(FeedOut {
            channel: channel_name(f).into(),
            path: f.site_path().into(),
            url: format!("{storefront}/{}", f.site_path()),
            published,
            generated_at: log.as_ref().map(|l| rfc3339(l.generated_at_ms)),
            items: log.as_ref().map(|l| l.items),
            skipped: log.as_ref().map(|l| l.skipped),
            excluded: log.as_ref().map(|l| l.excluded),
            warnings: log.as_ref().map(|l| l.warnings.clone()).unwrap_or_default(),
            bytes: log.as_ref().map(|l| l.bytes),
        });
    }
    Ok(Json(FeedList { feeds }))
}

/// Format of a TikTok feed.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// TikTok only: `csv` (default, the template TikTok ingests) or `json`.
    pub format: Option<String>,
}

/// A feed as published by the shop's last build: Google RSS 2.0 XML, Meta CSV, TikTok CSV
/// (or JSON). `ETag` and `If-None-Match`, gzip or brotli when accepted.
#[utoipa::path(get, path = "/api/v1/feeds/{channel}", tag = "feeds", params(FeedQuery,
    ("channel" = String, Path, description = "`google`, `meta` or `tiktok`")),
    security(("secret_key" = []), ("publishable_key" = [])),
    responses((status = 200, description = "the feed"), (status = 304, description = "not modified"),
        (status = 404, body = crate::error::ErrorBody)))]
async fn get_feed(
    tenant: Tenant,
    Path(channel): Path<String>,
    Query(q): Query<FeedQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    tenant.require(Permission::PublicRead)?;
    let format = match (channel.as_str(), q.format.as_deref()) {
        ("google", None | Some("xml")) => Format::GoogleXml,
        ("meta", None | Some("csv")) => Format::MetaCsv,
        ("tiktok", None | Some("csv")) => Format::TiktokCsv,
        ("tiktok", Some("json")) => Format::TiktokJson,
        ("google" | "meta" | "tiktok", Some(other)) => {
            return Err(ApiError::invalid(
                "format",
                format!("`{other}` is not a format of the {channel} feed"),
            ));
        }
        _ => return Err(ApiError::not_found("feed")),
    };
    crate::origin::published_file(&tenant.platform, &tenant.shop.id, format.site_path(), &headers)
        .await
        .ok_or_else(|| {
            let mut e = ApiError::not_found("feed").with_field("channel");
            e.message = format!(
                "the {channel} feed is not published: switch it on in the store's \
                 `feeds.channels` and wait for the build"
            );
            e
        })
}
