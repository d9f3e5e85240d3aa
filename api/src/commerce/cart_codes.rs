//! Discount codes on a cart: applying one (refused with the reason when it does not
//! apply to this cart) and removing one.

use super::carts::*;
use super::discounts;
use crate::auth::{Permission, Tenant};
use crate::db::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::extract::Body;
use crate::platform::Platform;
use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes.
pub(super) fn router() -> OpenApiRouter<Arc<Platform>> {
    OpenApiRouter::new().routes(routes!(add_code)).routes(routes!(remove_code))
}

/// A code to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// The discount code.
    pub code: String,
}

/// Apply a discount code. A code that does not apply is refused with `422`,
/// `error.code` `discount_not_applicable` and the reason in `error.details[0].code`
/// (`unknown_code`, `expired`, `minimum_not_met`, `usage_limit_reached`, ...).
#[utoipa::path(post, path = "/api/v1/carts/{token}/discounts", tag = "carts", request_body = CodeRequest,
    params(("token" = String, Path, description = "cart token")),
    security(("publishable_key" = []), ("secret_key" = [])),
    responses((status = 200, body = CartResponse), (status = 422, body = crate::error::ErrorBody)))]
async fn add_code(
    tenant: Tenant,
    Path(token): Path<String>,
    Body(req): Body<CodeRequest>,
) -> ApiResult<Json<CartResponse>> {
    tenant.require(Permission::Shop)?;
    let mut row = cart_row(&tenant.db, &token).await?;
    check_open(&row)?;
    let code = discounts::normalize_code(&req.code);
    if !row.codes.contains(&code) {
        row.codes.push(code.clone());
    }
    let lines = stored_lines(&tenant.db, &token).await?;
    let facts = shop_facts(&tenant).await?;
    let priced = price(&tenant.platform, &tenant.shop.id, &tenant.db, &row, &lines, &facts).await?;
    let status = priced.cart.discount_codes.iter().find(|s| s.code == code);
    if let Some(CodeStatus { applied: false, reason: Some(reason), .. }) = status {
        let mut e = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "discount_not_applicable",
            reason.message(),
        )
        .with_field("code");
        e.details.push(crate::error::Detail {
            code: reason.code(),
            message: reason.message().into(),
            field: Some("code".into()),
        });
        return Err(e);
    }
    save_codes(&tenant, &token, &row.codes).await?;
    Ok(Json(CartResponse { cart: priced.cart }))
}

/// Remove a discount code.
#[utoipa::path(delete, path = "/api/v1/carts/{token}/discounts/{code}", tag = "carts",
    params(("token" = String, Path, description = "cart token"), ("code" = String, Path, description = "the code")),
    security(("publishable_key" = []), ("secret_key" = [])),
    responses((status = 200, body = CartResponse), (status = 404, body = crate::error::ErrorBody)))]
async fn remove_code(
    tenant: Tenant,
    Path((token, code)): Path<(String, String)>,
) -> ApiResult<Json<CartResponse>> {
    tenant.require(Permission::Shop)?;
    let mut row = cart_row(&tenant.db, &token).await?;
    check_open(&row)?;
    let code = discounts::normalize_code(&code);
    row.codes.retain(|c| *c != code);
    save_codes(&tenant, &token, &row.codes).await?;
    Ok(Json(CartResponse { cart: show(&tenant, &token).await? }))
}

/// Stores an open cart's discount codes.
async fn save_codes(tenant: &Tenant, token: &str, codes: &[String]) -> ApiResult<()> {
    let update = sqlx::query(
        "UPDATE carts SET codes = $1, updated_at = $2, version = version + 1 \
         WHERE token = $3 AND status = 'open'",
    )
    .bind(json!(codes).to_string())
    .bind(now_ms())
    .bind(token);
    let changed = tenant.platform.pools.backend().write(&tenant.db, update).await?;
    still_open(tenant, token, changed.rows_affected()).await
}
