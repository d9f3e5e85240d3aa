//! The catalog API: products and variants, the store's settings, categories, collections,
//! pages, theme, images, Shopify CSV import and export as a catalog directory.
//!
//! Every write is validated with the engine's rules (the same messages and field paths as
//! `aurelio build`) and enqueues a debounced storefront build.

pub mod documents;
pub mod images;
pub mod import;
mod read;
pub mod store;

use crate::auth::{Permission, Tenant};
use crate::error::{ApiError, ApiResult};
use crate::extract::Body;
use crate::platform::Platform;
use crate::platform::jobs;
use axum::Json;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use store::ProductOut;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The catalog routes.
pub fn router() -> OpenApiRouter<Arc<Platform>> {
    OpenApiRouter::new()
        .routes(routes!(list_products, create_product))
        .routes(routes!(get_product, replace_product, delete_product))
        .routes(routes!(patch_variant))
        .merge(documents::router())
        .merge(images::router())
        .merge(import::router())
}

/// Cursor pagination.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 250 (default 50).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageQuery {
    /// The limit, checked.
    pub fn limit(&self) -> ApiResult<i64> {
        match self.limit {
            None => Ok(50),
            Some(n) if (1..=250).contains(&n) => Ok(n),
            Some(_) => Err(ApiError::invalid("limit", "limit must be between 1 and 250")),
        }
    }

    /// The position after which the page starts (0: from the start).
    pub fn after(&self) -> ApiResult<i64> {
        match &self.cursor {
            None => Ok(0),
            Some(c) => c
                .strip_prefix("p")
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| ApiError::invalid("cursor", "not a cursor from this API")),
        }
    }
}

/// A page of products.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductList {
    /// The products.
    pub products: Vec<ProductOut>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// One product.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductResponse {
    /// The product.
    pub product: ProductOut,
    /// The storefront build this change queued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
}

/// Whether the request is a publishable key's: it sees published things only (active
/// products, pages that are not drafts), and anything else is 404 to it.
pub(crate) fn active_only(tenant: &Tenant) -> bool {
    matches!(tenant.access, crate::auth::Access::Publishable)
}

/// Runs CPU work (parsing and validating products, mapping many variants, imports) on the
/// blocking pool when `heavy`, so that the async worker threads keep answering every other
/// request and shop meanwhile; small work runs inline.
pub(crate) async fn off_async<T, F>(heavy: bool, work: F) -> ApiResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    if !heavy {
        return Ok(work());
    }
    tokio::task::spawn_blocking(work).await.map_err(|e| ApiError::internal(&e))
}

/// List products in creation order. Publishable keys see active products only. A page
/// holds at most `limit` products and ends early (with a `next_cursor`) once its products
/// hold 10,000 variants or 8 MiB of product data; a single product is always shown.
#[utoipa::path(get, path = "/api/v1/products", tag = "catalog", params(PageQuery),
    security(("secret_key" = []), ("publishable_key" = [])),
    responses((status = 200, body = ProductList), (status = 401, body = crate::error::ErrorBody)))]
async fn list_products(tenant: Tenant, Query(q): Query<PageQuery>) -> ApiResult<Json<ProductList>> {
    tenant.require(Permission::PublicRead)?;
    let (products, next) =
        store::products(&tenant.db, q.after()?, q.limit()?, active_only(&tenant)).await?;
    Ok(Json(ProductList { products, next_cursor: next.map(|n| format!("p{n}")) }))
}

/// Create a product; the body is one line of `products.jsonl` (prices as decimal strings,
/// or integers in minor units). A product has at most 2,048 variants, 3 options, 2,048
/// values per option, 250 tags, images and categories; a title, vendor, product type, tag,
/// option name or value at most 255 characters (422 naming the field otherwise).
#[utoipa::path(post, path = "/api/v1/products", tag = "catalog",
    request_body(content = Object, description = "one line of products.jsonl"),
    security(("secret_key" = [])),
    responses((status = 201, body = ProductResponse), (status = 409, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn create_product(
    tenant: Tenant,
    Body(body): Body<Value>,
) -> ApiResult<(StatusCode, Json<ProductResponse>)> {
    tenant.require(Permission::CatalogWrite)?;
    let (product, line) = store::validate(&tenant.db, body).await?;
    let backend = tenant.platform.pools.backend();
    let id = store::insert_product(backend, &tenant.db, None, &product, &line).await?;
    let build = jobs::request_build(&tenant.platform, &tenant.shop.id, "product created").await?;
    tenant.audit("product.create", serde_json::json!({"id": id, "handle": product.handle})).await;
    let product = store::product(&tenant.db, &id, false).await?;
    Ok((StatusCode::CREATED, Json(ProductResponse { product, build_id: Some(build) })))
}

/// Read a product (publishable keys: active products only).
#[utoipa::path(get, path = "/api/v1/products/{id}", tag = "catalog",
    params(("id" = String, Path, description = "product id")),
    security(("secret_key" = []), ("publishable_key" = [])),
    responses((status = 200, body = ProductResponse), (status = 404, body = crate::error::ErrorBody)))]
async fn get_product(tenant: Tenant, Path(id): Path<String>) -> ApiResult<Json<ProductResponse>> {
    tenant.require(Permission::PublicRead)?;
    let product = store::product(&tenant.db, &id, active_only(&tenant)).await?;
    Ok(Json(ProductResponse { product, build_id: None }))
}

/// Replace a product with a new `products.jsonl` line (the limits of `POST` apply).
#[utoipa::path(put, path = "/api/v1/products/{id}", tag = "catalog",
    params(("id" = String, Path, description = "product id")),
    request_body(content = Object, description = "one line of products.jsonl"),
    security(("secret_key" = [])),
    responses((status = 200, body = ProductResponse), (status = 404, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn replace_product(
    tenant: Tenant,
    Path(id): Path<String>,
    Body(body): Body<Value>,
) -> ApiResult<Json<ProductResponse>> {
    tenant.require(Permission::CatalogWrite)?;
    let (product, line) = store::validate(&tenant.db, body).await?;
    let backend = tenant.platform.pools.backend();
    if !store::replace_product(backend, &tenant.db, &id, &product, &line).await? {
        return Err(ApiError::not_found("product"));
    }
    let build = jobs::request_build(&tenant.platform, &tenant.shop.id, "product changed").await?;
    tenant.audit("product.update", serde_json::json!({"id": id})).await;
    let product = store::product(&tenant.db, &id, false).await?;
    Ok(Json(ProductResponse { product, build_id: Some(build) }))
}

/// Delete a product: its page leaves the storefront with the next build.
#[utoipa::path(delete, path = "/api/v1/products/{id}", tag = "catalog",
    params(("id" = String, Path, description = "product id")),
    security(("secret_key" = [])),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
async fn delete_product(tenant: Tenant, Path(id): Path<String>) -> ApiResult<StatusCode> {
    tenant.require(Permission::CatalogWrite)?;
    let backend = tenant.platform.pools.backend();
    if !store::delete_product(backend, &tenant.db, &id).await? {
        return Err(ApiError::not_found("product"));
    }
    jobs::request_build(&tenant.platform, &tenant.shop.id, "product deleted").await?;
    tenant.audit("product.delete", serde_json::json!({"id": id})).await;
    Ok(StatusCode::NO_CONTENT)
}

/// A change to one variant: price, sale price or stock.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VariantPatch {
    /// New price in minor units.
    pub price: Option<i64>,
    /// New price before the sale in minor units; `null` removes it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub compare_at_price: Option<Option<i64>>,
    /// New stock; `null` stops tracking.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub inventory: Option<Option<i64>>,
}

/// Tells a member set to `null` (`Some(None)`) from an absent one (`None`).
pub(crate) fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Change a variant's price or stock.
#[utoipa::path(patch, path = "/api/v1/variants/{id}", tag = "catalog",
    params(("id" = String, Path, description = "variant id")),
    request_body = VariantPatch, security(("secret_key" = [])),
    responses((status = 200, body = ProductResponse), (status = 404, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn patch_variant(
    tenant: Tenant,
    Path(id): Path<String>,
    Body(patch): Body<VariantPatch>,
) -> ApiResult<Json<ProductResponse>> {
    tenant.require(Permission::CatalogWrite)?;
    if patch.price.is_some_and(|p| p < 0) {
        return Err(ApiError::invalid("price", "the price must be 0 or more"));
    }
    let backend = tenant.platform.pools.backend();
    let product_id = store::patch_variant(
        backend,
        &tenant.db,
        &id,
        patch.price,
        patch.compare_at_price,
        patch.inventory,
    )
    .await?;
    let build = jobs::request_build(&tenant.platform, &tenant.shop.id, "variant changed").await?;
    tenant.audit("variant.update", serde_json::json!({"id": id})).await;
    let product = store::product(&tenant.db, &product_id, false).await?;
    Ok(Json(ProductResponse { product, build_id: Some(build) }))
}
