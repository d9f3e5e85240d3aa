//! Source images: multipart upload into the media object store, validated as images
//! (format, dimensions and size within the engine's limits), named by content hash so an
//! upload of the same bytes is the same image.

use crate::auth::{Permission, Tenant};
use crate::db::{now_ms, rfc3339};
use crate::error::{ApiError, ApiResult};
use crate::server::Platform;
use axum::Json;
use axum::extract::Multipart;
use axum::http::StatusCode;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::Serialize;
use sqlx::Row;
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Largest accepted upload.
pub const MAX_BYTES: usize = 20 * 1024 * 1024;
/// Largest accepted image, in pixels (width × height).
pub const MAX_PIXELS: u64 = 50_000_000;

/// Routes for images.
pub fn router() -> OpenApiRouter<Arc<Platform>> {
    OpenApiRouter::new().routes(routes!(list_images, upload_image))
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
/// extension, MIME type and dimensions.
pub fn inspect(bytes: &[u8]) -> Result<(&'static str, &'static str, u32, u32), String> {
    use image::ImageFormat;
    if bytes.len() > MAX_BYTES {
        return Err(format!("the image is larger than {} MB", MAX_BYTES / (1024 * 1024)));
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
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(512 * 1024 * 1024);
    reader.limits(limits);
    let (w, h) = reader.into_dimensions().map_err(|e| format!("the image cannot be read: {e}"))?;
    if u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(format!("the image is {w}×{h}, more than {MAX_PIXELS} pixels"));
    }
    // Decode it all: a truncated or corrupt file fails here, not in a build later.
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(512 * 1024 * 1024);
    reader.limits(limits);
    reader.decode().map_err(|e| format!("the image is corrupt: {e}"))?;
    // The JPEG decoder fills in what a cut-off file lacks: a whole JPEG ends its last scan
    // with an end-of-image marker (which cannot occur inside scan data).
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err("the image is truncated: the JPEG has no end-of-image marker".to_owned());
    }
    Ok((ext, mime, w, h))
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
    let checked = tokio::task::spawn_blocking({
        let bytes = bytes.clone();
        move || inspect(&bytes).map(|(e, m, w, h)| (e.to_owned(), m.to_owned(), w, h))
    })
    .await
    .map_err(|e| ApiError::internal(&e))?;
    let (ext, mime, w, h) = checked.map_err(|m| ApiError::invalid("file", m))?;
    let hash = blake3::hash(&bytes).to_hex();
    let path = format!("images/{}.{ext}", &hash[..20]);
    let len = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
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
    request_body(content_type = "multipart/form-data", content = Object),
    responses((status = 201, body = ImageOut), (status = 422, body = crate::error::ErrorBody)))]
async fn upload_image(
    tenant: Tenant,
    form: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> ApiResult<(StatusCode, Json<ImageOut>)> {
    tenant.require(Permission::CatalogWrite)?;
    // Not a multipart body: the standard error body, not axum's plain text.
    let mut form = form.map_err(|e| {
        ApiError::bad_request(format!("send the image as multipart/form-data: {}", e.body_text()))
    })?;
    while let Some(field) =
        form.next_field().await.map_err(|e| ApiError::bad_request(e.body_text()))?
    {
        if field.name() != Some("file") {
            continue;
        }
        let bytes = field.bytes().await.map_err(|e| ApiError::bad_request(e.body_text()))?;
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
