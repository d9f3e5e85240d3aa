//! Source images: multipart upload into the media object store, validated as images
//! (format, dimensions and size within the engine's limits), named by content hash so an
//! upload of the same bytes is the same image.
//!
//! An upload is read up to `MAX_BYTES` (larger bodies are refused with 413 while they
//! arrive), its header checked against the engine's limits before anything is decoded,
//! and decoded on the blocking pool: at most `UPLOAD_DECODES` at once wait there, and the
//! decodes themselves share the engine's process-wide budget with builds. A shop's images
//! together stay within its media quota (`Config::media_quota_bytes`).

use crate::auth::{Permission, Tenant};
use crate::db::{now_ms, rfc3339};
use crate::error::{ApiError, ApiResult};
use crate::platform::Platform;
use axum::Json;
use axum::extract::{DefaultBodyLimit, Multipart};
use axum::http::StatusCode;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::Serialize;
use sqlx::Row;
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Largest accepted upload: 20 MiB (20,971,520 bytes) of image file.
pub const MAX_BYTES: usize = 20 * 1024 * 1024;
/// Largest request body of an upload: the file plus room for the multipart framing.
pub const MAX_BODY_BYTES: usize = MAX_BYTES + 64 * 1024;
/// Largest accepted image, in pixels (width × height): the engine's, which builds it.
pub const MAX_PIXELS: u64 = aurelio_engine::images::MAX_PIXELS;
/// Uploads checked at once in this process; more wait their turn without holding a
/// blocking thread (each decode also waits for the engine's decode budget).
pub const UPLOAD_DECODES: usize = 4;

/// The turn of an upload to be checked (see `UPLOAD_DECODES`).
static UPLOAD_TURNS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(UPLOAD_DECODES);

/// Routes for images.
pub fn router() -> OpenApiRouter<Arc<Platform>> {
    OpenApiRouter::new()
        .routes(routes!(list_images, upload_image))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// The answer to an image over `MAX_BYTES`.
fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the image is larger than {} MiB ({MAX_BYTES} bytes)", MAX_BYTES / (1024 * 1024)),
    )
    .with_field("file")
}

/// An uploaded source image.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImageOut {
    /// Path to use in a product's `images[].src`.
    pub path: String,
    /// MIME type.
    pub content_type: String,
    /// Size in bytes.
    pub bytes: i64,
    /// Width in pixels.
    pub width: i64,
    /// Height in pixels.
    pub height: i64,
    /// Upload time.
    pub created_at: String,
}

fn key(shop_id: &str, path: &str) -> StorePath {
    StorePath::from(format!("{shop_id}/{path}"))
}

/// Checks that `bytes` are a JPEG, PNG, WebP or GIF image within the limits; its
/// extension, MIME type and dimensions. The header is checked before anything is decoded
/// (pixels, decoded bytes: `aurelio_engine::images::probe`); decoding waits for its share
/// of the engine's decode budget. Blocks: run it on the blocking pool.
pub fn inspect(bytes: &[u8]) -> Result<(&'static str, &'static str, u32, u32), String> {
    use image::ImageFormat;
    if bytes.len() > MAX_BYTES {
        return Err(format!("the image is larger than {} MiB", MAX_BYTES / (1024 * 1024)));
    }
    let format = image::guess_format(bytes)
        .map_err(|_| "the file is not an image (JPEG, PNG, WebP or GIF)".to_owned())?;
    let (ext, mime) = match format {
        ImageFormat::Jpeg => ("jpg", "image/jpeg"),
        ImageFormat::Png => ("png", "image/png"),
        ImageFormat::WebP => ("webp", "image/webp"),
        ImageFormat::Gif => ("gif", "image/gif"),
        other => {
            return Err(format!("{other:?} images are not supported (use JPEG, PNG, WebP or GIF)"));
        }
    };
    let header = aurelio_engine::images::probe(bytes, Some(format))?;
    // Decode it all: a truncated or corrupt file fails here, not in a build later.
    drop(aurelio_engine::images::decode(bytes, Some(format))?);
    // The JPEG decoder fills in what a cut-off file lacks: a whole JPEG ends its last scan
    // with an end-of-image marker (which cannot occur inside scan data).
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err("the image is truncated: the JPEG has no end-of-image marker".to_owned());
    }
    Ok((ext, mime, header.width, header.height))
}

/// Whether an end-of-image marker (FF D9) follows the last start-of-scan marker (FF DA).
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let last_scan = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    last_scan.is_some_and(|at| bytes[at..].windows(2).any(|w| w == [0xFF, 0xD9]))
}

/// Stores an image for a shop; the same bytes give the same path.
pub async fn store_image(
    platform: &Platform,
    db: &sqlx::AnyPool,
    shop_id: &str,
    bytes: Vec<u8>,
) -> ApiResult<ImageOut> {
    if bytes.len() > MAX_BYTES {
        return Err(too_large());
    }
    let bytes = Arc::new(bytes);
    let checked = {
        let _turn = UPLOAD_TURNS.acquire().await.map_err(|e| ApiError::internal(&e))?;
        let bytes = Arc::clone(&bytes);
        tokio::task::spawn_blocking(move || {
            inspect(&bytes).map(|(e, m, w, h)| (e.to_owned(), m.to_owned(), w, h))
        })
        .await
        .map_err(|e| ApiError::internal(&e))?
    };
    let (ext, mime, w, h) = checked.map_err(|m| ApiError::invalid("file", m))?;
    let hash = blake3::hash(&bytes).to_hex();
    let path = format!("images/{}.{ext}", &hash[..20]);
    let len = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
    check_quota(db, &path, len, platform.config.media_quota_bytes).await?;
    let bytes = Arc::try_unwrap(bytes).unwrap_or_else(|shared| (*shared).clone());
    platform
        .media
        .put(&key(shop_id, &path), PutPayload::from(bytes))
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let now = now_ms();
    sqlx::query(
        "INSERT INTO images (path, hash, content_type, bytes, width, height, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (path) DO NOTHING",
    )
    .bind(&path)
    .bind(hash.as_str())
    .bind(&mime)
    .bind(len)
    .bind(i64::from(w))
    .bind(i64::from(h))
    .bind(now)
    .execute(db)
    .await?;
    Ok(ImageOut {
        path,
        content_type: mime,
        bytes: len,
        width: i64::from(w),
        height: i64::from(h),
        created_at: rfc3339(now),
    })
}

/// Refuses an image whose `len` bytes would take the shop's images past `quota` (an image
/// stored already, the same bytes again, adds nothing). Concurrent uploads may each pass
/// the check: the quota can be overshot by what is in flight at once.
async fn check_quota(db: &sqlx::AnyPool, path: &str, len: i64, quota: u64) -> ApiResult<()> {
    let stored: Option<i64> = sqlx::query_scalar("SELECT bytes FROM images WHERE path = $1")
        .bind(path)
        .fetch_optional(db)
        .await?;
    if stored.is_some() {
        return Ok(());
    }
    let used: i64 =
        sqlx::query_scalar("SELECT CAST(COALESCE(SUM(bytes), 0) AS BIGINT) FROM images")
            .fetch_one(db)
            .await?;
    let after = u64::try_from(used.max(0))
        .unwrap_or(0)
        .saturating_add(u64::try_from(len).unwrap_or(u64::MAX));
    if after > quota {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "media_quota_exceeded",
            format!(
                "the shop's images would take {after} bytes, more than its media quota of \
                 {quota} bytes ({used} bytes used): delete unused images or ask for a larger quota"
            ),
        )
        .with_field("file"));
    }
    Ok(())
}

/// Stores an image of a trusted source (the demo catalog) under its own path, checking
/// only its header.
pub async fn store_named(
    platform: &Platform,
    db: &sqlx::AnyPool,
    shop_id: &str,
    path: &str,
    bytes: Vec<u8>,
) -> ApiResult<()> {
    let size = image::ImageReader::new(std::io::Cursor::new(&bytes))
        .with_guessed_format()
        .ok()
        .and_then(|r| r.format().zip(r.into_dimensions().ok()));
    let Some((format, (w, h))) = size else {
        return Ok(()); // not an image: the demo's other files are not needed
    };
    let hash = blake3::hash(&bytes).to_hex();
    let len = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
    platform
        .media
        .put(&key(shop_id, path), PutPayload::from(bytes))
        .await
        .map_err(|e| ApiError::internal(&e))?;
    sqlx::query(
        "INSERT INTO images (path, hash, content_type, bytes, width, height, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (path) DO NOTHING",
    )
    .bind(path)
    .bind(hash.as_str())
    .bind(format.to_mime_type())
    .bind(len)
    .bind(i64::from(w))
    .bind(i64::from(h))
    .bind(now_ms())
    .execute(db)
    .await?;
    Ok(())
}

/// The uploaded images.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImageList {
    /// Newest first.
    pub images: Vec<ImageOut>,
}

/// List uploaded images.
#[utoipa::path(get, path = "/api/v1/images", tag = "catalog", security(("secret_key" = [])),
    responses((status = 200, body = ImageList)))]
async fn list_images(tenant: Tenant) -> ApiResult<Json<ImageList>> {
    tenant.require(Permission::Read)?;
    let rows = sqlx::query(
        "SELECT path, content_type, bytes, width, height, created_at FROM images \
         ORDER BY created_at DESC, path",
    )
    .fetch_all(&tenant.db)
    .await?;
    let images = rows
        .iter()
        .map(|r| {
            Ok(ImageOut {
                path: r.try_get("path")?,
                content_type: r.try_get("content_type")?,
                bytes: r.try_get("bytes")?,
                width: r.try_get("width")?,
                height: r.try_get("height")?,
                created_at: rfc3339(r.try_get("created_at")?),
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(Json(ImageList { images }))
}

/// Upload an image (multipart form, field `file`). Answers with the `path` to use in a
/// product's `images`.
#[utoipa::path(post, path = "/api/v1/images", tag = "catalog", security(("secret_key" = [])),
    request_body(content_type = "multipart/form-data", content = Object,
        description = "the image as the field `file`: JPEG, PNG, WebP or GIF, at most 20 MiB \
                       and 40 megapixels"),
    responses((status = 201, body = ImageOut),
        (status = 413, description = "over 20 MiB (`payload_too_large`) or over the shop's \
                                      media quota (`media_quota_exceeded`)",
            body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn upload_image(
    tenant: Tenant,
    form: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> ApiResult<(StatusCode, Json<ImageOut>)> {
    tenant.require(Permission::CatalogWrite)?;
    // Not a multipart body: the standard error body, not axum's plain text.
    let mut form = form.map_err(|e| {
        ApiError::bad_request(format!("send the image as multipart/form-data: {}", e.body_text()))
    })?;
    // A body over `MAX_BODY_BYTES` fails while it is read: 413, in our error shape.
    let read_error = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            ApiError::bad_request(e.body_text())
        }
    };
    while let Some(field) = form.next_field().await.map_err(read_error)? {
        if field.name() != Some("file") {
            continue;
        }
        let bytes = field.bytes().await.map_err(read_error)?;
        let image =
            store_image(&tenant.platform, &tenant.db, &tenant.shop.id, bytes.to_vec()).await?;
        tenant.audit("image.upload", serde_json::json!({ "path": image.path })).await;
        return Ok((StatusCode::CREATED, Json(image)));
    }
    Err(ApiError::invalid("file", "send the image as the multipart field `file`"))
}

/// Copies the shop's images into `dir/images/` (only those missing there).
pub async fn export(tenant: &Tenant, dir: &std::path::Path) -> ApiResult<usize> {
    export_images(&tenant.platform.media, &tenant.db, &tenant.shop.id, dir).await
}

/// Copies a shop's images from the media store into a catalog directory.
pub async fn export_images(
    media: &Arc<dyn ObjectStore>,
    db: &sqlx::AnyPool,
    shop_id: &str,
    dir: &std::path::Path,
) -> ApiResult<usize> {
    let paths: Vec<String> = sqlx::query_scalar("SELECT path FROM images").fetch_all(db).await?;
    let mut copied = 0;
    for path in paths {
        let target = dir.join(&path);
        if target.exists() {
            continue;
        }
        let bytes = media
            .get(&key(shop_id, &path))
            .await
            .map_err(|e| ApiError::internal(&e))?
            .bytes()
            .await
            .map_err(|e| ApiError::internal(&e))?;
        super::store::write_if_changed(&target, &bytes).map_err(|e| ApiError::internal(&e))?;
        copied += 1;
    }
    Ok(copied)
}

/// Deletes every image of a shop from the media store.
pub async fn delete_all(media: &Arc<dyn ObjectStore>, shop_id: &str) {
    use futures::StreamExt;
    let prefix = StorePath::from(shop_id);
    let mut listing = media.list(Some(&prefix));
    while let Some(Ok(meta)) = listing.next().await {
        let _ = media.delete(&meta.location).await;
    }
}
