//! The catalog's small files over the API: store settings (`store.json`), the category
//! tree, collections, pages and the theme, plus export of the whole shop as a catalog
//! directory (a tar archive).
//!
//! A change is checked by loading the shop's catalog with the change applied, with the
//! engine's loader and theme validator: the API accepts what `aurelio build` accepts.

use super::active_only;
use super::store::{self, CATEGORIES_JSON, COLLECTIONS_JSON, STORE_JSON, THEME_JSON};
use crate::auth::{Permission, Tenant};
use crate::error::{ApiError, ApiResult};
use crate::extract::Body;
use crate::platform::Platform;
use crate::platform::jobs;
use axum::Json;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes for the small files and export.
pub fn router() -> OpenApiRouter<Arc<Platform>> {
    OpenApiRouter::new()
        .routes(routes!(get_store, put_store))
        .routes(routes!(get_categories, put_categories))
        .routes(routes!(list_collections, create_collection))
        .routes(routes!(get_collection, put_collection, delete_collection))
        .routes(routes!(list_pages, create_page))
        .routes(routes!(get_page, put_page, delete_page))
        .routes(routes!(get_theme, put_theme))
        .routes(routes!(export_catalog))
}

/// Loads the shop's catalog with `path` replaced by `body` (or removed) and reports every
/// problem the engine finds, as `aurelio build` would.
async fn check_change(tenant: &Tenant, path: &str, body: Option<&str>) -> ApiResult<()> {
    let dir = tempfile::tempdir().map_err(|e| ApiError::internal(&e))?;
    store::export(tenant.platform.pools.backend(), &tenant.db, dir.path()).await?;
    let target = dir.path().join(path);
    match body {
        Some(b) => {
            store::write_if_changed(&target, b.as_bytes()).map_err(|e| ApiError::internal(&e))?;
        }
        None => {
            let _ = std::fs::remove_file(&target);
        }
    }
    let root = dir.path().to_owned();
    tokio::task::spawn_blocking(move || {
        let loaded = match aurelio_engine::catalog::load(&root) {
            Ok(l) => l,
            Err(aurelio_engine::CatalogError::Invalid(d)) => {
                return Err(ApiError::from_diagnostics(&d));
            }
            Err(e) => return Err(ApiError::internal(&e)),
        };
        let theme_file = root.join(THEME_JSON);
        let source = aurelio_engine::theme::for_site(&theme_file, &loaded.catalog.store.theme);
        aurelio_engine::theme::load(&source).map_err(|d| ApiError::from_diagnostics(&d))?;
        Ok(())
    })
    .await
    .map_err(|e| ApiError::internal(&e))?
}

/// Checks and stores a document, then queues a build.
async fn save(tenant: &Tenant, path: &str, body: &str, action: &str) -> ApiResult<String> {
    check_change(tenant, path, Some(body)).await?;
    store::put_document(&tenant.db, path, body).await?;
    tenant.platform.forget(&tenant.shop.id);
    tenant.audit(action, json!({ "path": path })).await;
    jobs::request_build(&tenant.platform, &tenant.shop.id, action).await
}

fn pretty(v: &Value) -> ApiResult<String> {
    let mut s = serde_json::to_string_pretty(v).map_err(|e| ApiError::internal(&e))?;
    s.push('\n');
    Ok(s)
}

async fn read_json(tenant: &Tenant, path: &str, default: Value) -> ApiResult<Value> {
    match store::document(&tenant.db, path).await? {
        Some(body) => serde_json::from_str(&body).map_err(|e| ApiError::internal(&e)),
        None => Ok(default),
    }
}

/// A document and the build its change queued.
#[derive(Debug, Serialize, ToSchema)]
pub struct Saved {
    /// The stored document.
    #[schema(value_type = Object)]
    pub document: Value,
    /// The queued storefront build.
    pub build_id: String,
}

/// The store settings (`store.json`).
#[utoipa::path(get, path = "/api/v1/store", tag = "catalog", security(("secret_key" = [])),
    responses((status = 200, body = Object)))]
async fn get_store(tenant: Tenant) -> ApiResult<Json<Value>> {
    tenant.require(Permission::Read)?;
    Ok(Json(read_json(&tenant, STORE_JSON, json!({})).await?))
}

/// Replace the store settings; checked like `store.json`.
#[utoipa::path(put, path = "/api/v1/store", tag = "catalog", security(("secret_key" = [])),
    request_body = Object,
    responses((status = 200, body = Saved), (status = 422, body = crate::error::ErrorBody)))]
async fn put_store(tenant: Tenant, Body(body): Body<Value>) -> ApiResult<Json<Saved>> {
    tenant.require(Permission::Settings)?;
    let current = read_json(&tenant, STORE_JSON, json!({})).await?;
    // The handle is the shop's and the currency is fixed once prices exist.
    if body.get("handle") != current.get("handle") {
        return Err(ApiError::invalid("handle", "the shop's handle cannot change"));
    }
    let build_id = save(&tenant, STORE_JSON, &pretty(&body)?, "store.update").await?;
    Ok(Json(Saved { document: body, build_id }))
}

/// The category tree (`categories.json`).
#[utoipa::path(get, path = "/api/v1/categories", tag = "catalog",
    security(("secret_key" = []), ("publishable_key" = [])), responses((status = 200, body = Object)))]
async fn get_categories(tenant: Tenant) -> ApiResult<Json<Value>> {
    tenant.require(Permission::PublicRead)?;
    Ok(Json(json!({ "categories": read_json(&tenant, CATEGORIES_JSON, json!([])).await? })))
}

/// Request body holding the category tree.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CategoryTree {
    /// The tree, as in `categories.json`.
    #[schema(value_type = Vec<Object>)]
    pub categories: Value,
}

/// Replace the category tree.
#[utoipa::path(put, path = "/api/v1/categories", tag = "catalog", security(("secret_key" = [])),
    request_body = CategoryTree,
    responses((status = 200, body = Saved), (status = 422, body = crate::error::ErrorBody)))]
async fn put_categories(tenant: Tenant, Body(body): Body<CategoryTree>) -> ApiResult<Json<Saved>> {
    tenant.require(Permission::CatalogWrite)?;
    let build_id =
        save(&tenant, CATEGORIES_JSON, &pretty(&body.categories)?, "categories.update").await?;
    Ok(Json(Saved { document: body.categories, build_id }))
}

async fn collections(tenant: &Tenant) -> ApiResult<Vec<Value>> {
    match read_json(tenant, COLLECTIONS_JSON, json!([])).await? {
        Value::Array(items) => Ok(items),
        _ => Ok(Vec::new()),
    }
}

fn handle_of(v: &Value) -> Option<&str> {
    v.get("handle").and_then(Value::as_str)
}

/// Handles of the shop's products that are not published (`draft`, `archived`).
async fn unpublished_products(tenant: &Tenant) -> ApiResult<HashSet<String>> {
    let handles: Vec<String> =
        sqlx::query_scalar("SELECT handle FROM products WHERE status <> 'active'")
            .fetch_all(&tenant.db)
            .await?;
    Ok(handles.into_iter().collect())
}

/// A collection as a publishable key sees it: a manual list without the products that
/// are not published, whose handles are not public.
fn published_view(mut collection: Value, unpublished: &HashSet<String>) -> Value {
    if let Some(Value::Array(products)) = collection.get_mut("products") {
        products.retain(|p| p.as_str().is_none_or(|h| !unpublished.contains(h)));
    }
    collection
}

/// Collections, as in `collections.json`. For publishable keys, manual lists leave out
/// products that are not published.
#[utoipa::path(get, path = "/api/v1/collections", tag = "catalog",
    security(("secret_key" = []), ("publishable_key" = [])), responses((status = 200, body = Object)))]
async fn list_collections(tenant: Tenant) -> ApiResult<Json<Value>> {
    tenant.require(Permission::PublicRead)?;
    let mut all = collections(&tenant).await?;
    if active_only(&tenant) {
        let unpublished = unpublished_products(&tenant).await?;
        all = all.into_iter().map(|c| published_view(c, &unpublished)).collect();
    }
    Ok(Json(json!({ "collections": all })))
}

/// Add a collection (manual `products` or `rules`).
#[utoipa::path(post, path = "/api/v1/collections", tag = "catalog", security(("secret_key" = [])),
    request_body = Object,
    responses((status = 201, body = Saved), (status = 409, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn create_collection(
    tenant: Tenant,
    Body(body): Body<Value>,
) -> ApiResult<(StatusCode, Json<Saved>)> {
    tenant.require(Permission::CatalogWrite)?;
    let Some(handle) = handle_of(&body).map(str::to_owned) else {
        return Err(ApiError::invalid("handle", "a collection needs a handle"));
    };
    let mut all = collections(&tenant).await?;
    if all.iter().any(|c| handle_of(c) == Some(handle.as_str())) {
        return Err(ApiError::conflict("handle", format!("the collection `{handle}` exists")));
    }
    all.push(body.clone());
    let build_id =
        save(&tenant, COLLECTIONS_JSON, &pretty(&Value::Array(all))?, "collection.create").await?;
    Ok((StatusCode::CREATED, Json(Saved { document: body, build_id })))
}

/// One collection (for publishable keys, as `GET /api/v1/collections` shows it).
#[utoipa::path(get, path = "/api/v1/collections/{handle}", tag = "catalog",
    params(("handle" = String, Path, description = "collection handle")),
    security(("secret_key" = []), ("publishable_key" = [])),
    responses((status = 200, body = Object), (status = 404, body = crate::error::ErrorBody)))]
async fn get_collection(tenant: Tenant, Path(handle): Path<String>) -> ApiResult<Json<Value>> {
    tenant.require(Permission::PublicRead)?;
    let mut collection = collections(&tenant)
        .await?
        .into_iter()
        .find(|c| handle_of(c) == Some(handle.as_str()))
        .ok_or_else(|| ApiError::not_found("collection"))?;
    if active_only(&tenant) {
        collection = published_view(collection, &unpublished_products(&tenant).await?);
    }
    Ok(Json(json!({ "collection": collection })))
}

/// Replace a collection.
#[utoipa::path(put, path = "/api/v1/collections/{handle}", tag = "catalog",
    params(("handle" = String, Path, description = "collection handle")),
    security(("secret_key" = [])), request_body = Object,
    responses((status = 200, body = Saved), (status = 404, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn put_collection(
    tenant: Tenant,
    Path(handle): Path<String>,
    Body(body): Body<Value>,
) -> ApiResult<Json<Saved>> {
    tenant.require(Permission::CatalogWrite)?;
    let mut all = collections(&tenant).await?;
    let Some(slot) = all.iter_mut().find(|c| handle_of(c) == Some(handle.as_str())) else {
        return Err(ApiError::not_found("collection"));
    };
    *slot = body.clone();
    let build_id =
        save(&tenant, COLLECTIONS_JSON, &pretty(&Value::Array(all))?, "collection.update").await?;
    Ok(Json(Saved { document: body, build_id }))
}

/// Delete a collection.
#[utoipa::path(delete, path = "/api/v1/collections/{handle}", tag = "catalog",
    params(("handle" = String, Path, description = "collection handle")),
    security(("secret_key" = [])),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
async fn delete_collection(tenant: Tenant, Path(handle): Path<String>) -> ApiResult<StatusCode> {
    tenant.require(Permission::CatalogWrite)?;
    let mut all = collections(&tenant).await?;
    let before = all.len();
    all.retain(|c| handle_of(c) != Some(handle.as_str()));
    if all.len() == before {
        return Err(ApiError::not_found("collection"));
    }
    save(&tenant, COLLECTIONS_JSON, &pretty(&Value::Array(all))?, "collection.delete").await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A Markdown page.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PageDoc {
    /// URL handle (`pages/<handle>/`).
    pub handle: String,
    /// Title.
    pub title: String,
    /// Markdown body.
    #[serde(default)]
    pub body: String,
    /// Meta description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seo_description: Option<String>,
    /// Linked from the footer.
    #[serde(default)]
    pub footer: bool,
    /// Order in the footer.
    #[serde(default)]
    pub order: i64,
    /// Drafts are not published.
    #[serde(default)]
    pub draft: bool,
}

impl PageDoc {
    fn path(handle: &str) -> ApiResult<String> {
        if !aurelio_engine::catalog::is_handle(handle) {
            return Err(ApiError::invalid(
                "handle",
                "a handle is 1 to 100 lowercase letters, digits and dashes",
            ));
        }
        Ok(format!("pages/{handle}.md"))
    }

    /// The `pages/<handle>.md` file: TOML front matter between `+++` lines, then Markdown.
    fn to_file(&self) -> ApiResult<String> {
        #[derive(Serialize)]
        struct Front<'a> {
            title: &'a str,
            handle: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            seo_description: Option<&'a str>,
            footer: bool,
            order: i64,
            draft: bool,
        }
        let front = toml::to_string(&Front {
            title: &self.title,
            handle: &self.handle,
            seo_description: self.seo_description.as_deref(),
            footer: self.footer,
            order: self.order,
            draft: self.draft,
        })
        .map_err(|e| ApiError::internal(&e))?;
        Ok(format!("+++\n{front}+++\n\n{}\n", self.body.trim_end()))
    }

    fn from_file(text: &str) -> Option<Self> {
        let rest = text.strip_prefix("+++\n")?;
        let (front, body) = rest.split_once("+++\n")?;
        #[derive(Deserialize)]
        struct Front {
            title: String,
            handle: Option<String>,
            seo_description: Option<String>,
            #[serde(default)]
            footer: bool,
            #[serde(default)]
            order: i64,
            #[serde(default)]
            draft: bool,
        }
        let f: Front = toml::from_str(front).ok()?;
        Some(Self {
            handle: f.handle.unwrap_or_default(),
            title: f.title,
            body: body.trim().to_owned(),
            seo_description: f.seo_description,
            footer: f.footer,
            order: f.order,
            draft: f.draft,
        })
    }
}

/// Every page; publishable keys see published pages only (no drafts).
#[utoipa::path(get, path = "/api/v1/pages", tag = "catalog",
    security(("secret_key" = []), ("publishable_key" = [])), responses((status = 200, body = Object)))]
async fn list_pages(tenant: Tenant) -> ApiResult<Json<Value>> {
    tenant.require(Permission::PublicRead)?;
    let published_only = active_only(&tenant);
    let pages: Vec<PageDoc> = store::documents_under(&tenant.db, "pages/")
        .await?
        .iter()
        .filter_map(|(path, body)| {
            let mut page = PageDoc::from_file(body)?;
            if page.handle.is_empty() {
                page.handle = path.trim_start_matches("pages/").trim_end_matches(".md").into();
            }
            Some(page)
        })
        .filter(|page| !(published_only && page.draft))
        .collect();
    Ok(Json(json!({ "pages": pages })))
}

/// Add a page.
#[utoipa::path(post, path = "/api/v1/pages", tag = "catalog", security(("secret_key" = [])),
    request_body = PageDoc,
    responses((status = 201, body = Saved), (status = 409, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn create_page(
    tenant: Tenant,
    Body(page): Body<PageDoc>,
) -> ApiResult<(StatusCode, Json<Saved>)> {
    tenant.require(Permission::CatalogWrite)?;
    let path = PageDoc::path(&page.handle)?;
    if store::document(&tenant.db, &path).await?.is_some() {
        return Err(ApiError::conflict("handle", format!("the page `{}` exists", page.handle)));
    }
    let build_id = save(&tenant, &path, &page.to_file()?, "page.create").await?;
    let document = serde_json::to_value(&page).map_err(|e| ApiError::internal(&e))?;
    Ok((StatusCode::CREATED, Json(Saved { document, build_id })))
}

/// One page; a draft is 404 to publishable keys.
#[utoipa::path(get, path = "/api/v1/pages/{handle}", tag = "catalog",
    params(("handle" = String, Path, description = "page handle")),
    security(("secret_key" = []), ("publishable_key" = [])),
    responses((status = 200, body = PageDoc), (status = 404, body = crate::error::ErrorBody)))]
async fn get_page(tenant: Tenant, Path(handle): Path<String>) -> ApiResult<Json<PageDoc>> {
    tenant.require(Permission::PublicRead)?;
    let path = PageDoc::path(&handle).map_err(|_| ApiError::not_found("page"))?;
    let body =
        store::document(&tenant.db, &path).await?.ok_or_else(|| ApiError::not_found("page"))?;
    let mut page = PageDoc::from_file(&body).ok_or_else(|| ApiError::not_found("page"))?;
    if page.draft && active_only(&tenant) {
        return Err(ApiError::not_found("page"));
    }
    page.handle = handle;
    Ok(Json(page))
}

/// Replace a page (the handle stays).
#[utoipa::path(put, path = "/api/v1/pages/{handle}", tag = "catalog",
    params(("handle" = String, Path, description = "page handle")),
    security(("secret_key" = [])), request_body = PageDoc,
    responses((status = 200, body = Saved), (status = 404, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn put_page(
    tenant: Tenant,
    Path(handle): Path<String>,
    Body(mut page): Body<PageDoc>,
) -> ApiResult<Json<Saved>> {
    tenant.require(Permission::CatalogWrite)?;
    let path = PageDoc::path(&handle).map_err(|_| ApiError::not_found("page"))?;
    if store::document(&tenant.db, &path).await?.is_none() {
        return Err(ApiError::not_found("page"));
    }
    page.handle = handle;
    let build_id = save(&tenant, &path, &page.to_file()?, "page.update").await?;
    let document = serde_json::to_value(&page).map_err(|e| ApiError::internal(&e))?;
    Ok(Json(Saved { document, build_id }))
}

/// Delete a page.
#[utoipa::path(delete, path = "/api/v1/pages/{handle}", tag = "catalog",
    params(("handle" = String, Path, description = "page handle")),
    security(("secret_key" = [])),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
async fn delete_page(tenant: Tenant, Path(handle): Path<String>) -> ApiResult<StatusCode> {
    tenant.require(Permission::CatalogWrite)?;
    let path = PageDoc::path(&handle).map_err(|_| ApiError::not_found("page"))?;
    if !store::delete_document(&tenant.db, &path).await? {
        return Err(ApiError::not_found("page"));
    }
    tenant.audit("page.delete", json!({ "handle": handle })).await;
    jobs::request_build(&tenant.platform, &tenant.shop.id, "page.delete").await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The shop's theme file (`theme.json`); `null` when the shop uses a preset from
/// `store.json` as is.
#[utoipa::path(get, path = "/api/v1/theme", tag = "theme", security(("secret_key" = [])),
    responses((status = 200, body = Object)))]
async fn get_theme(tenant: Tenant) -> ApiResult<Json<Value>> {
    tenant.require(Permission::Read)?;
    Ok(Json(json!({ "theme": read_json(&tenant, THEME_JSON, Value::Null).await? })))
}

/// Import a theme file: validated with the theme schema and checks of `aurelio theme
/// validate`; nothing changes when it is invalid.
#[utoipa::path(put, path = "/api/v1/theme", tag = "theme", security(("secret_key" = [])),
    request_body = Object,
    responses((status = 200, body = Saved), (status = 422, body = crate::error::ErrorBody)))]
async fn put_theme(tenant: Tenant, body: Bytes) -> ApiResult<Json<Saved>> {
    tenant.require(Permission::Settings)?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("the theme is not UTF-8"))?
        .to_owned();
    let document: Value = serde_json::from_str(&text)
        .map_err(|e| ApiError::invalid("", format!("the theme is not JSON: {e}")))?;
    let build_id = save(&tenant, THEME_JSON, &text, "theme.import").await?;
    Ok(Json(Saved { document, build_id }))
}

/// Export the shop as a catalog directory (a tar archive): exactly what `aurelio build
/// --site` reads, images included. The archive is streamed as it is written (from the
/// exported directory, on the blocking pool), never held whole in memory.
#[utoipa::path(get, path = "/api/v1/export", tag = "catalog", security(("secret_key" = [])),
    responses((status = 200, description = "application/x-tar", content_type = "application/x-tar")))]
async fn export_catalog(tenant: Tenant) -> ApiResult<impl IntoResponse> {
    tenant.require(Permission::Read)?;
    let dir = tempfile::tempdir().map_err(|e| ApiError::internal(&e))?;
    let root = dir.path().join(&tenant.shop.handle);
    store::export(tenant.platform.pools.backend(), &tenant.db, &root).await?;
    super::images::export(&tenant, &root).await?;
    let handle = tenant.shop.handle.clone();
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(EXPORT_CHUNKS_IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let mut out = ChunkWriter { tx, chunk: Vec::with_capacity(EXPORT_CHUNK) };
        if let Err(e) = write_archive(&mut out, &handle, &root) {
            // The client sees the stream fail (a cut-off archive is never a whole one).
            tracing::warn!(error = %e, "export stopped");
            let _ = out.tx.blocking_send(Err(e));
        }
        drop(dir);
    });
    // Fused: a body wrapper (compression) may poll again after the end, which a bare
    // `unfold` answers with a panic.
    let stream = futures::StreamExt::fuse(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    }));
    let disposition = format!("attachment; filename=\"{}.tar\"", tenant.shop.handle);
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-tar".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        axum::body::Body::from_stream(stream),
    ))
}

/// Writes the tar of `root` (as `handle/`) into `out`, to its last chunk.
fn write_archive(
    out: &mut ChunkWriter,
    handle: &str,
    root: &std::path::Path,
) -> std::io::Result<()> {
    let mut builder = tar::Builder::new(&mut *out);
    builder.follow_symlinks(false);
    builder.append_dir_all(handle, root)?;
    builder.finish()?;
    drop(builder);
    out.send_chunk()
}

/// Bytes of the archive sent at a time.
const EXPORT_CHUNK: usize = 64 * 1024;
/// Chunks written ahead of the client: an export holds at most this many in memory.
const EXPORT_CHUNKS_IN_FLIGHT: usize = 4;

/// Writes the archive into chunks sent to the response as they fill up; waits (on the
/// blocking pool) while the client is behind, and fails once it has gone.
struct ChunkWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    chunk: Vec<u8>,
}

impl ChunkWriter {
    fn send_chunk(&mut self) -> std::io::Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(&mut self.chunk, Vec::with_capacity(EXPORT_CHUNK));
        self.tx
            .blocking_send(Ok(Bytes::from(full)))
            .map_err(|_| std::io::Error::other("the client went away"))
    }
}

impl std::io::Write for ChunkWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = EXPORT_CHUNK - self.chunk.len();
        let n = buf.len().min(room);
        self.chunk.extend_from_slice(&buf[..n]);
        if self.chunk.len() >= EXPORT_CHUNK {
            self.send_chunk()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
