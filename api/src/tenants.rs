//! Shops (tenants): provisioning by the platform admin, health, suspension, deletion; and
//! each shop's own keys.
//!
//! Provisioning creates the shop's database, migrates it, optionally loads the demo
//! catalog, applies a theme preset, runs the first build and publish, and answers with the
//! keys, shown this once.

use crate::auth::{self, Admin, NewKey, Permission, Role, Tenant};
use crate::catalog::{images, store};
use crate::db::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::extract::Body;
use crate::platform::Platform;
use crate::registry::{self, Shop};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::Row;
use std::sync::Arc;
use std::time::Instant;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Tenant and key routes.
pub fn router() -> OpenApiRouter<Arc<Platform>> {
    OpenApiRouter::new()
        .routes(routes!(list_tenants, create_tenant))
        .routes(routes!(get_tenant, delete_tenant))
        .routes(routes!(suspend_tenant))
        .routes(routes!(resume_tenant))
        .routes(routes!(list_keys, create_key))
        .routes(routes!(revoke_key))
}

/// What to provision.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    /// URL-safe handle: lowercase letters, digits and dashes (the storefront is
    /// `<handle>.localhost` locally).
    pub handle: String,
    /// Display name.
    pub name: String,
    /// Load the demo catalog (products, categories, collections, pages, images).
    #[serde(default)]
    pub demo: bool,
    /// Theme preset (default: the demo's, or `minimal`).
    pub theme: Option<String>,
    /// ISO 4217 currency of an empty shop (default EUR; the demo catalog is in EUR).
    pub currency: Option<String>,
    /// Locale such as `en-IE` (default `en-IE`).
    pub locale: Option<String>,
}

/// A shop as the admin API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantOut {
    /// The registry's record.
    #[serde(flatten)]
    pub shop: Shop,
    /// Where the storefront is served.
    pub storefront_url: String,
}

/// Answer to provisioning: the shop and its keys (shown once).
#[derive(Debug, Serialize, ToSchema)]
pub struct Provisioned {
    /// The shop.
    pub tenant: TenantOut,
    /// Owner secret key (`sk_...`).
    pub secret_key: String,
    /// Publishable key (`pk_...`) for the storefront script.
    pub publishable_key: String,
    /// The first build.
    pub build_id: String,
    /// Milliseconds from request to published storefront.
    pub elapsed_ms: u64,
}

fn tenant_out(platform: &Platform, shop: Shop) -> TenantOut {
    let storefront_url = format!("{}/", platform.storefront_url(&shop.handle));
    TenantOut { shop, storefront_url }
}

/// Provision a shop (admin token).
#[utoipa::path(post, path = "/api/v1/tenants", tag = "tenants", request_body = NewTenant,
    security(("admin_token" = [])),
    responses((status = 201, body = Provisioned), (status = 409, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn create_tenant(
    _: Admin,
    State(platform): State<Arc<Platform>>,
    Body(req): Body<NewTenant>,
) -> ApiResult<(StatusCode, Json<Provisioned>)> {
    let started = Instant::now();
    let (provisioned, _) = provision(&platform, &req).await?;
    let mut provisioned = provisioned;
    provisioned.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    metrics::histogram!("aurelio_provision_duration_seconds")
        .record(started.elapsed().as_secs_f64());
    Ok((StatusCode::CREATED, Json(provisioned)))
}

/// Provisions a shop; also used by `aurelio demo`. Returns the answer and the build's
/// outcome (`Err` with the problems when the first build failed; the shop exists anyway).
pub async fn provision(
    platform: &Arc<Platform>,
    req: &NewTenant,
) -> ApiResult<(Provisioned, Result<Value, Value>)> {
    if !aurelio_engine::catalog::is_handle(&req.handle) || req.handle.len() > 40 {
        return Err(ApiError::invalid(
            "handle",
            "a handle is 1 to 40 lowercase letters, digits and dashes",
        ));
    }
    if req.name.trim().is_empty() {
        return Err(ApiError::invalid("name", "the name is empty"));
    }
    if let Some(theme) = &req.theme
        && !aurelio_engine::theme::preset_names().any(|p| p == theme)
    {
        let known: Vec<&str> = aurelio_engine::theme::preset_names().collect();
        return Err(ApiError::invalid(
            "theme",
            format!("`{theme}` is not a preset ({})", known.join(", ")),
        ));
    }
    let currency = req.currency.as_deref().unwrap_or("EUR");
    if aurelio_engine::money::Currency::from_code(currency).is_none() {
        return Err(ApiError::invalid("currency", format!("`{currency}` is not an ISO 4217 code")));
    }
    if registry::shop_by_handle(&platform.registry, &req.handle).await?.is_some() {
        return Err(ApiError::conflict("handle", format!("the handle `{}` is taken", req.handle)));
    }
    let id = registry::new_id("shop");
    let backend = platform.pools.backend().clone();
    let db_name = backend.shop_db_name(&id);
    backend
        .create_shop_db(&platform.registry, &db_name)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let shop = match registry::insert_shop(
        &platform.registry,
        &id,
        &req.handle,
        &req.name,
        &db_name,
    )
    .await
    {
        Ok(shop) => shop,
        Err(e) => {
            let _ = backend.drop_shop_db(&platform.registry, &db_name).await;
            return Err(if crate::error::is_unique_violation(&e) {
                ApiError::conflict("handle", format!("the handle `{}` is taken", req.handle))
            } else {
                e.into()
            });
        }
    };
    let result = fill(platform, &shop, req).await;
    let (secret, publishable) = match result {
        Ok(keys) => keys,
        Err(e) => {
            // Nothing half-made stays behind.
            let _ = remove(platform, &shop).await;
            return Err(e);
        }
    };
    let (build_id, outcome) = crate::platform::jobs::run_inline(
        platform,
        crate::platform::jobs::NewJob::shop(crate::platform::jobs::BUILD, &shop.id, "provisioned"),
    )
    .await?;
    registry::audit(
        &platform.registry,
        Some(&shop.id),
        "admin",
        "tenant.create",
        &json!({ "handle": shop.handle, "demo": req.demo }),
    )
    .await?;
    Ok((
        Provisioned {
            tenant: tenant_out(platform, shop),
            secret_key: secret.key,
            publishable_key: publishable.key,
            build_id,
            elapsed_ms: 0,
        },
        outcome,
    ))
}

/// Migrates the new shop's database, loads its catalog and creates its keys.
async fn fill(
    platform: &Arc<Platform>,
    shop: &Shop,
    req: &NewTenant,
) -> ApiResult<(NewKey, NewKey)> {
    let db = platform.shop_db(shop).await?;
    let secret = auth::create_key(&platform.registry, &shop.id, Some(Role::Owner), "owner").await?;
    let publishable = auth::create_key(&platform.registry, &shop.id, None, "storefront").await?;
    let demo_dir = platform.config.demo_catalog.clone();
    let mut store_json = if req.demo {
        let text = std::fs::read_to_string(demo_dir.join(store::STORE_JSON))
            .map_err(|e| ApiError::internal(&format!("demo catalog: {e}")))?;
        serde_json::from_str::<Value>(&text).map_err(|e| ApiError::internal(&e))?
    } else {
        // Said outright, so the storefront's "prices include tax" and checkout agree; the
        // merchant changes it with `PUT /api/v1/store`.
        json!({
            "currency": req.currency.as_deref().unwrap_or("EUR"),
            "locale": req.locale.as_deref().unwrap_or("en-IE"),
            "prices_include_tax": false,
        })
    };
    store_json["name"] = json!(req.name);
    store_json["handle"] = json!(shop.handle);
    store_json["base_url"] = json!(platform.storefront_url(&shop.handle));
    store_json["api_url"] = json!(platform.config.public_url.trim_end_matches('/'));
    store_json["publishable_key"] = json!(publishable.key);
    if let Some(theme) = &req.theme {
        store_json["theme"] = json!(theme);
    } else if store_json.get("theme").is_none() {
        store_json["theme"] = json!("minimal");
    }
    if let Some(locale) = &req.locale {
        store_json["locale"] = json!(locale);
    }
    let mut tx = platform.pools.backend().begin_write(&db).await?;
    store::put_document(&mut *tx, store::STORE_JSON, &format!("{store_json:#}\n")).await?;
    if req.demo {
        for name in [store::CATEGORIES_JSON, store::COLLECTIONS_JSON] {
            let body = std::fs::read_to_string(demo_dir.join(name))
                .map_err(|e| ApiError::internal(&format!("demo catalog: {e}")))?;
            store::put_document(&mut *tx, name, &body).await?;
        }
        let pages =
            std::fs::read_dir(demo_dir.join("pages")).map_err(|e| ApiError::internal(&e))?;
        for entry in pages.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".md") {
                let body =
                    std::fs::read_to_string(entry.path()).map_err(|e| ApiError::internal(&e))?;
                store::put_document(&mut *tx, &format!("pages/{name}"), &body).await?;
            }
        }
    }
    if req.demo {
        // The demo sells like a real shop: shipping zones, VAT, codes to try.
        let checkout = demo_dir.join(crate::commerce::settings::CHECKOUT_JSON);
        if let Ok(body) = std::fs::read_to_string(&checkout) {
            let settings: crate::commerce::settings::CheckoutSettings =
                crate::extract::parse_json(body.as_bytes())?;
            settings.check()?;
            store::put_document(&mut *tx, crate::commerce::settings::CHECKOUT_JSON, &body).await?;
        }
    }
    tx.commit().await?;
    if req.demo {
        load_demo_products(platform, &db, &demo_dir).await?;
        load_demo_images(platform, &db, &shop.id, &demo_dir).await?;
        load_demo_discounts(&db, &demo_dir).await?;
    }
    Ok((secret, publishable))
}

async fn load_demo_products(
    platform: &Platform,
    db: &sqlx::AnyPool,
    dir: &std::path::Path,
) -> ApiResult<()> {
    let text = std::fs::read_to_string(dir.join("products.jsonl"))
        .map_err(|e| ApiError::internal(&format!("demo catalog: {e}")))?;
    let currency = store::currency(db).await?;
    let categories = store::category_handles(db).await?;
    let refs: Vec<&str> = categories.iter().map(String::as_str).collect();
    let backend = platform.pools.backend();
    let mut parsed = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let product = aurelio_engine::catalog::parse_product_line(line, currency, &refs)
            .map_err(|d| ApiError::from_diagnostics(&d))?;
        parsed.push((product, line.to_owned()));
    }
    store::insert_products(backend, db, &parsed).await
}

/// The demo's discount codes (`discounts.json`, a list of discounts as the API takes them).
async fn load_demo_discounts(db: &sqlx::AnyPool, dir: &std::path::Path) -> ApiResult<()> {
    let Ok(text) = std::fs::read_to_string(dir.join("discounts.json")) else { return Ok(()) };
    let codes: Vec<crate::commerce::discounts::Discount> = serde_json::from_str(&text)
        .map_err(|e| ApiError::internal(&format!("demo catalog: discounts.json: {e}")))?;
    for mut d in codes {
        crate::commerce::discounts::insert(db, &mut d).await?;
    }
    Ok(())
}

async fn load_demo_images(
    platform: &Platform,
    db: &sqlx::AnyPool,
    shop_id: &str,
    dir: &std::path::Path,
) -> ApiResult<()> {
    let entries = std::fs::read_dir(dir.join("images")).map_err(|e| ApiError::internal(&e))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let bytes = std::fs::read(entry.path()).map_err(|e| ApiError::internal(&e))?;
        images::store_named(platform, db, shop_id, &format!("images/{name}"), bytes).await?;
    }
    Ok(())
}

/// Removes everything of a shop: pool, database, registry rows and files.
async fn remove(platform: &Platform, shop: &Shop) -> ApiResult<()> {
    let backend = platform.pools.backend().clone();
    platform.pools.close(&shop.db_name).await;
    backend
        .drop_shop_db(&platform.registry, &shop.db_name)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    registry::delete_shop(&platform.registry, &shop.id).await?;
    images::delete_all(&platform.media, &shop.id).await;
    for dir in [platform.work_dir(&shop.id), platform.published_dir(&shop.id)] {
        let _ = std::fs::remove_dir_all(dir);
    }
    platform.forget(&shop.id);
    platform.keys.clear();
    Ok(())
}

/// Cursor pagination of shops.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TenantQuery {
    /// At most this many (default 50, at most 250).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of shops.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantList {
    /// Shops by handle.
    pub tenants: Vec<TenantOut>,
    /// Cursor of the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// List shops (admin token).
#[utoipa::path(get, path = "/api/v1/tenants", tag = "tenants", params(TenantQuery),
    security(("admin_token" = [])), responses((status = 200, body = TenantList)))]
async fn list_tenants(
    _: Admin,
    State(platform): State<Arc<Platform>>,
    Query(q): Query<TenantQuery>,
) -> ApiResult<Json<TenantList>> {
    let limit = q.limit.unwrap_or(50).clamp(1, 250);
    let after = q.cursor.unwrap_or_default();
    let mut shops = registry::shops(&platform.registry, &after, limit + 1).await?;
    let next = (shops.len() > usize::try_from(limit).unwrap_or(0)).then(|| {
        shops.truncate(usize::try_from(limit).unwrap_or(0));
        shops.last().map(|s| s.handle.clone()).unwrap_or_default()
    });
    let tenants = shops.into_iter().map(|s| tenant_out(&platform, s)).collect();
    Ok(Json(TenantList { tenants, next_cursor: next }))
}

/// A shop with the health of its database.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantHealth {
    /// The shop.
    pub tenant: TenantOut,
    /// Its database: reachable, latency, schema version, products.
    #[schema(value_type = Object)]
    pub database: Value,
    /// The last build.
    #[schema(value_type = Option<Object>)]
    pub last_build: Option<Value>,
}

/// One shop with database health (admin token).
#[utoipa::path(get, path = "/api/v1/tenants/{id}", tag = "tenants",
    params(("id" = String, Path, description = "shop id or handle")), security(("admin_token" = [])),
    responses((status = 200, body = TenantHealth), (status = 404, body = crate::error::ErrorBody)))]
async fn get_tenant(
    _: Admin,
    State(platform): State<Arc<Platform>>,
    Path(id): Path<String>,
) -> ApiResult<Json<TenantHealth>> {
    let shop = find(&platform, &id).await?;
    let started = Instant::now();
    let database = match platform.shop_db(&shop).await {
        Ok(db) => {
            let checked: Result<(i64, i64), sqlx::Error> = async {
                let version: i64 =
                    sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
                        .fetch_one(&db)
                        .await?;
                let products: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM products").fetch_one(&db).await?;
                Ok((version, products))
            }
            .await;
            match checked {
                Ok((version, products)) => json!({
                    "ok": true, "backend": platform.pools.backend().name(),
                    "latency_ms": started.elapsed().as_secs_f64() * 1000.0,
                    "schema_version": version, "products": products,
                }),
                Err(e) => json!({ "ok": false, "error": e.to_string() }),
            }
        }
        Err(e) => json!({ "ok": false, "error": e.message }),
    };
    let last_build = sqlx::query(
        "SELECT id, status, finished_at FROM jobs WHERE shop_id = $1 ORDER BY created_at DESC LIMIT 1",
    )
    .bind(&shop.id)
    .fetch_optional(&platform.registry)
    .await?
    .map(|r| -> Result<Value, sqlx::Error> {
        Ok(json!({
            "id": r.try_get::<String, _>("id")?,
            "status": r.try_get::<String, _>("status")?,
            "finished_at": r.try_get::<Option<i64>, _>("finished_at")?.map(crate::db::rfc3339),
        }))
    })
    .transpose()?;
    Ok(Json(TenantHealth { tenant: tenant_out(&platform, shop), database, last_build }))
}

async fn find(platform: &Platform, id: &str) -> ApiResult<Shop> {
    let shop = match registry::shop(&platform.registry, id).await? {
        Some(s) => Some(s),
        None => registry::shop_by_handle(&platform.registry, id).await?,
    };
    shop.ok_or_else(|| ApiError::not_found("tenant"))
}

/// Suspend a shop: its keys stop working and its storefront is no longer served.
#[utoipa::path(post, path = "/api/v1/tenants/{id}/suspend", tag = "tenants",
    params(("id" = String, Path, description = "shop id or handle")), security(("admin_token" = [])),
    responses((status = 200, body = TenantOut), (status = 404, body = crate::error::ErrorBody)))]
async fn suspend_tenant(
    _: Admin,
    State(platform): State<Arc<Platform>>,
    Path(id): Path<String>,
) -> ApiResult<Json<TenantOut>> {
    set_status(&platform, &id, "suspended").await
}

/// Resume a suspended shop.
#[utoipa::path(post, path = "/api/v1/tenants/{id}/resume", tag = "tenants",
    params(("id" = String, Path, description = "shop id or handle")), security(("admin_token" = [])),
    responses((status = 200, body = TenantOut), (status = 404, body = crate::error::ErrorBody)))]
async fn resume_tenant(
    _: Admin,
    State(platform): State<Arc<Platform>>,
    Path(id): Path<String>,
) -> ApiResult<Json<TenantOut>> {
    set_status(&platform, &id, "active").await
}

async fn set_status(
    platform: &Arc<Platform>,
    id: &str,
    status: &str,
) -> ApiResult<Json<TenantOut>> {
    let mut shop = find(platform, id).await?;
    registry::set_status(&platform.registry, &shop.id, status).await?;
    registry::audit(
        &platform.registry,
        Some(&shop.id),
        "admin",
        &format!("tenant.{status}"),
        &json!({}),
    )
    .await?;
    platform.forget(&shop.id);
    platform.keys.clear();
    shop.status = status.to_owned();
    Ok(Json(tenant_out(platform, shop)))
}

/// Delete a shop: its database, keys, jobs, storefront files and images.
#[utoipa::path(delete, path = "/api/v1/tenants/{id}", tag = "tenants",
    params(("id" = String, Path, description = "shop id or handle")), security(("admin_token" = [])),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
async fn delete_tenant(
    _: Admin,
    State(platform): State<Arc<Platform>>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let shop = find(&platform, &id).await?;
    remove(&platform, &shop).await?;
    registry::audit(
        &platform.registry,
        Some(&shop.id),
        "admin",
        "tenant.delete",
        &json!({ "handle": shop.handle }),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A key as listed (never the key itself).
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyOut {
    /// Key id.
    pub id: String,
    /// `secret` or `publishable`.
    pub kind: String,
    /// Role of a secret key.
    pub role: String,
    /// The first characters, to recognise it.
    pub prefix: String,
    /// Label.
    pub label: String,
    /// Created.
    pub created_at: String,
    /// Revoked.
    pub revoked_at: Option<String>,
}

/// The shop's keys.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    /// Keys, newest first.
    pub keys: Vec<KeyOut>,
}

/// List the shop's keys (admin or owner).
#[utoipa::path(get, path = "/api/v1/keys", tag = "keys", security(("secret_key" = [])),
    responses((status = 200, body = KeyList)))]
async fn list_keys(tenant: Tenant) -> ApiResult<Json<KeyList>> {
    tenant.require(Permission::Keys)?;
    let rows = sqlx::query(
        "SELECT id, kind, role, prefix, label, created_at, revoked_at FROM api_keys \
         WHERE shop_id = $1 ORDER BY created_at DESC, id",
    )
    .bind(&tenant.shop.id)
    .fetch_all(&tenant.platform.registry)
    .await?;
    let keys = rows
        .iter()
        .map(|r| {
            Ok(KeyOut {
                id: r.try_get("id")?,
                kind: r.try_get("kind")?,
                role: r.try_get("role")?,
                prefix: r.try_get("prefix")?,
                label: r.try_get("label")?,
                created_at: crate::db::rfc3339(r.try_get("created_at")?),
                revoked_at: r.try_get::<Option<i64>, _>("revoked_at")?.map(crate::db::rfc3339),
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(Json(KeyList { keys }))
}

/// A key to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyRequest {
    /// `secret` (default) or `publishable`.
    pub kind: Option<String>,
    /// Role of a secret key: `owner`, `admin`, `staff` or `viewer`.
    pub role: Option<String>,
    /// Label to recognise it.
    #[serde(default)]
    pub label: String,
}

/// Create a key; the answer holds the key, shown this once.
#[utoipa::path(post, path = "/api/v1/keys", tag = "keys", request_body = KeyRequest,
    security(("secret_key" = [])),
    responses((status = 201, body = NewKey), (status = 403, body = crate::error::ErrorBody)))]
async fn create_key(
    tenant: Tenant,
    Body(req): Body<KeyRequest>,
) -> ApiResult<(StatusCode, Json<NewKey>)> {
    tenant.require(Permission::Keys)?;
    let role = match req.kind.as_deref().unwrap_or("secret") {
        "publishable" => None,
        "secret" => {
            let name = req.role.as_deref().unwrap_or("staff");
            let role = Role::parse(name).ok_or_else(|| {
                ApiError::invalid("role", "the role is one of owner, admin, staff, viewer")
            })?;
            // Nobody hands out more than they have.
            if let auth::Access::Secret(own) = tenant.access
                && role > own
            {
                return Err(ApiError::forbidden(format!(
                    "a `{}` key cannot create a `{}` key",
                    own.as_str(),
                    role.as_str()
                )));
            }
            Some(role)
        }
        _ => return Err(ApiError::invalid("kind", "the kind is `secret` or `publishable`")),
    };
    let key =
        auth::create_key(&tenant.platform.registry, &tenant.shop.id, role, &req.label).await?;
    tenant.audit("key.create", json!({ "id": key.id, "kind": key.kind, "role": key.role })).await;
    Ok((StatusCode::CREATED, Json(key)))
}

/// Revoke a key (of a role up to the caller's own).
#[utoipa::path(delete, path = "/api/v1/keys/{id}", tag = "keys",
    params(("id" = String, Path, description = "key id")), security(("secret_key" = [])),
    responses((status = 204), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
async fn revoke_key(tenant: Tenant, Path(id): Path<String>) -> ApiResult<StatusCode> {
    tenant.require(Permission::Keys)?;
    // Nobody takes away more than they have: an admin key cannot revoke an owner key.
    let role: Option<String> = sqlx::query_scalar(
        "SELECT role FROM api_keys WHERE id = $1 AND shop_id = $2 AND revoked_at IS NULL",
    )
    .bind(&id)
    .bind(&tenant.shop.id)
    .fetch_optional(&tenant.platform.registry)
    .await?;
    let Some(role) = role else { return Err(ApiError::not_found("key")) };
    if let (auth::Access::Secret(own), Some(theirs)) = (tenant.access, Role::parse(&role))
        && theirs > own
    {
        return Err(ApiError::forbidden(format!(
            "a `{}` key cannot revoke a `{}` key",
            own.as_str(),
            theirs.as_str()
        )));
    }
    let done = sqlx::query(
        "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND shop_id = $3 AND revoked_at IS NULL",
    )
    .bind(now_ms())
    .bind(&id)
    .bind(&tenant.shop.id)
    .execute(&tenant.platform.registry)
    .await?;
    if done.rows_affected() == 0 {
        return Err(ApiError::not_found("key"));
    }
    tenant.platform.keys.clear();
    tenant.audit("key.revoke", json!({ "id": id })).await;
    Ok(StatusCode::NO_CONTENT)
}
