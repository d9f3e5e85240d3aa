//! Keys and who may do what.
//!
//! A key is `sk_` (secret, for merchants, with a role) or `pk_` (publishable, for the
//! storefront script) followed by 48 random hex digits. Only its blake3 hash is stored; the
//! key itself is shown once, at creation, and never logged.
//!
//! `Tenant` is the one extractor that resolves a shop: every shop route takes it, and it
//! yields that shop's own database pool, so a handler cannot reach another shop's data.
//! An unknown key is 401; a key of shop A asking for an id of shop B finds nothing in A's
//! database: 404.

use crate::error::{ApiError, ApiResult};
use crate::platform::Platform;
use crate::registry::{self, Shop, random_hex};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::Serialize;
use sqlx::{AnyPool, Row};
use std::sync::Arc;

/// The role of a secret key. Each role can do what the one below it can, and more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads catalog, orders, builds and settings.
    Viewer,
    /// Also writes the catalog and handles orders (fulfil).
    Staff,
    /// Also theme, settings, domains, feeds, discounts, refunds, and keys up to admin.
    Admin,
    /// Everything in the shop, including owner keys.
    Owner,
}

impl Role {
    /// Parses `owner`, `admin`, `staff` or `viewer`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "owner" => Some(Self::Owner),
            "admin" => Some(Self::Admin),
            "staff" => Some(Self::Staff),
            "viewer" => Some(Self::Viewer),
            _ => None,
        }
    }

    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Staff => "staff",
            Self::Viewer => "viewer",
        }
    }
}

/// What a request wants to do; `Access::require` checks it against the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Public reads: products, collections (publishable keys too).
    PublicRead,
    /// Carts and checkout (publishable keys too).
    Shop,
    /// Read anything of the shop (orders, builds, settings).
    Read,
    /// Create, change and delete catalog data; trigger builds.
    CatalogWrite,
    /// Theme, store settings, domains, feeds.
    Settings,
    /// Create and revoke keys.
    Keys,
}

impl Permission {
    fn min_role(self) -> Role {
        match self {
            Self::PublicRead | Self::Shop | Self::Read => Role::Viewer,
            Self::CatalogWrite => Role::Staff,
            Self::Settings | Self::Keys => Role::Admin,
        }
    }
}

/// Which kind of key made the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A secret key with its role.
    Secret(Role),
    /// A publishable key: public reads, carts and checkout only.
    Publishable,
}

impl Access {
    /// 403 unless the key allows `p`.
    pub fn require(self, p: Permission) -> ApiResult<()> {
        let ok = match self {
            Self::Publishable => matches!(p, Permission::PublicRead | Permission::Shop),
            Self::Secret(role) => role >= p.min_role(),
        };
        if ok {
            Ok(())
        } else {
            Err(match self {
                Self::Publishable => ApiError::forbidden(
                    "a publishable key can only read the catalog and use carts and checkout",
                ),
                Self::Secret(role) => ApiError::forbidden(format!(
                    "a key with the role `{}` cannot do this (needs `{}`)",
                    role.as_str(),
                    p.min_role().as_str()
                )),
            })
        }
    }
}

/// A newly created key, shown once.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NewKey {
    /// Key id (for revoking).
    pub id: String,
    /// The key itself: store it now, it is never shown again.
    pub key: String,
    /// `secret` or `publishable`.
    pub kind: String,
    /// Role of a secret key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
}

/// The stored form of a key.
pub fn hash_key(key: &str) -> String {
    blake3::hash(key.as_bytes()).to_hex().to_string()
}

/// Creates a key for a shop: `Some(role)` for a secret key, `None` for a publishable one.
pub async fn create_key(
    pool: &AnyPool,
    shop_id: &str,
    role: Option<Role>,
    label: &str,
) -> Result<NewKey, sqlx::Error> {
    let (kind, prefix) = if role.is_some() { ("secret", "sk") } else { ("publishable", "pk") };
    let key = format!("{prefix}_{}", random_hex(24));
    let id = registry::new_id("key");
    sqlx::query(
        "INSERT INTO api_keys (id, shop_id, kind, role, hash, prefix, label, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&id)
    .bind(shop_id)
    .bind(kind)
    .bind(role.map_or("", Role::as_str))
    .bind(hash_key(&key))
    .bind(&key[..10])
    .bind(label)
    .bind(crate::db::now_ms())
    .execute(pool)
    .await?;
    Ok(NewKey { id, key, kind: kind.into(), role })
}

/// A request made with a shop's key: the shop, the key's access and the shop's database.
#[derive(Clone)]
pub struct Tenant {
    /// The shop.
    pub shop: Shop,
    /// What the key allows.
    pub access: Access,
    /// Id of the key (for the audit log).
    pub key_id: String,
    /// The shop's own database.
    pub db: AnyPool,
    /// The platform.
    pub platform: Arc<Platform>,
}

impl std::fmt::Debug for Tenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tenant").field("shop", &self.shop.id).field("access", &self.access).finish()
    }
}

impl Tenant {
    /// 403 unless the key allows `p`.
    pub fn require(&self, p: Permission) -> ApiResult<()> {
        self.access.require(p)
    }

    /// Records an action in the registry's audit log (best effort: logged on failure).
    pub async fn audit(&self, action: &str, detail: serde_json::Value) {
        let actor = format!("key:{}", self.key_id);
        if let Err(e) =
            registry::audit(&self.platform.registry, Some(&self.shop.id), &actor, action, &detail)
                .await
        {
            tracing::warn!(error = %e, action, "audit log write failed");
        }
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

impl FromRequestParts<Arc<Platform>> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        platform: &Arc<Platform>,
    ) -> Result<Self, Self::Rejection> {
        let Some(key) = bearer(parts) else {
            return Err(ApiError::unauthorized(
                "send a shop key as `Authorization: Bearer sk_...` or `pk_...`",
            ));
        };
        if !(key.starts_with("sk_") || key.starts_with("pk_")) {
            return Err(ApiError::unauthorized("that is not a shop key (sk_... or pk_...)"));
        }
        let hash = hash_key(key);
        let (shop, access, key_id) = match platform.keys.get(&hash) {
            Some(hit) => hit,
            None => {
                let hit = lookup_key(platform, &hash).await?;
                platform.keys.insert(hash, hit.clone());
                hit
            }
        };
        if shop.status != "active" {
            return Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "shop_suspended",
                "this shop is suspended",
            ));
        }
        let db = platform.shop_db(&shop).await?;
        Ok(Self { shop, access, key_id, db, platform: platform.clone() })
    }
}

/// What a key is: its shop, its access and its id. Cached briefly by `Platform::keys`;
/// revoking a key or suspending a shop clears that cache.
pub type KeyHit = (Shop, Access, String);

async fn lookup_key(platform: &Platform, hash: &str) -> ApiResult<KeyHit> {
    let row = sqlx::query(
        "SELECT k.id AS key_id, k.kind, k.role, s.id, s.handle, s.name, s.status, s.db_name, \
         s.created_at FROM api_keys k JOIN shops s ON s.id = k.shop_id \
         WHERE k.hash = $1 AND k.revoked_at IS NULL",
    )
    .bind(hash)
    .fetch_optional(&platform.registry)
    .await?;
    let Some(row) = row else {
        return Err(ApiError::unauthorized("unknown or revoked key"));
    };
    let kind: String = row.try_get("kind")?;
    let access = if kind == "secret" {
        let role: String = row.try_get("role")?;
        Access::Secret(Role::parse(&role).unwrap_or(Role::Viewer))
    } else {
        Access::Publishable
    };
    let shop = Shop {
        id: row.try_get("id")?,
        handle: row.try_get("handle")?,
        name: row.try_get("name")?,
        status: row.try_get("status")?,
        db_name: row.try_get("db_name")?,
        created_at: crate::db::rfc3339(row.try_get("created_at")?),
    };
    Ok((shop, access, row.try_get("key_id")?))
}

/// A request made with the platform admin token (`AURELIO_ADMIN_TOKEN`).
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequestParts<Arc<Platform>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        platform: &Arc<Platform>,
    ) -> Result<Self, Self::Rejection> {
        // An empty or blank token is no token: nothing may match it.
        let Some(expected) = admin_token(&platform.config) else {
            return Err(ApiError::forbidden(
                "no admin token is configured: set AURELIO_ADMIN_TOKEN to provision shops",
            ));
        };
        match bearer(parts) {
            Some(given)
                if !given.is_empty() && constant_time_eq(given.as_bytes(), expected.as_bytes()) =>
            {
                Ok(Admin)
            }
            Some(_) => Err(ApiError::unauthorized("wrong admin token")),
            None => Err(ApiError::unauthorized("send the admin token as `Authorization: Bearer`")),
        }
    }
}

/// The configured admin token; `None` when unset, empty or blank.
pub fn admin_token(config: &crate::platform::Config) -> Option<&str> {
    config.admin_token.as_deref().map(str::trim).filter(|t| !t.is_empty())
}

/// Compares secrets in time that does not depend on where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let ha = blake3::hash(a);
    let hb = blake3::hash(b);
    // blake3::Hash's equality is constant-time.
    ha == hb
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_checked() {
        assert!(Access::Secret(Role::Owner).require(Permission::Keys).is_ok());
        assert!(Access::Secret(Role::Admin).require(Permission::Settings).is_ok());
        assert!(Access::Secret(Role::Staff).require(Permission::Settings).is_err());
        assert!(Access::Secret(Role::Staff).require(Permission::CatalogWrite).is_ok());
        assert!(Access::Secret(Role::Viewer).require(Permission::CatalogWrite).is_err());
        assert!(Access::Secret(Role::Viewer).require(Permission::Read).is_ok());
        assert!(Access::Publishable.require(Permission::PublicRead).is_ok());
        assert!(Access::Publishable.require(Permission::Shop).is_ok());
        assert!(Access::Publishable.require(Permission::Read).is_err());
        assert!(Access::Publishable.require(Permission::CatalogWrite).is_err());
    }

    #[test]
    fn keys_hash_stably_and_differ() {
        assert_eq!(hash_key("sk_a"), hash_key("sk_a"));
        assert_ne!(hash_key("sk_a"), hash_key("sk_b"));
        assert!(constant_time_eq(b"token", b"token"));
        assert!(!constant_time_eq(b"token", b"tokem"));
    }
}
