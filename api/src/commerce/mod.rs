//! Commerce: carts, discounts, shipping and tax, checkout, payments, orders and outgoing
//! webhooks. Money is integer minor units of the shop's currency everywhere; totals are
//! computed on the server from catalog prices only (`totals`).

mod cart_codes;
mod cart_lines;
pub mod carts;
pub mod checkout;
pub mod discounts;
pub mod holds;
pub mod orders;
pub mod payments;
pub mod pricing;
pub mod settings;
pub mod totals;
pub mod webhooks;

use crate::server::Platform;
use carts::Members;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;

/// The commerce routes.
pub fn router() -> OpenApiRouter<Arc<Platform>> {
    OpenApiRouter::new()
        .merge(carts::router())
        .merge(checkout::router())
        .merge(discounts::router())
        .merge(orders::router())
        .merge(payments::router())
        .merge(settings::router())
        .merge(webhooks::router())
}

/// Which collections each product is in, as the engine computes them from the shop's last
/// exported catalog (manual and rule-based collections alike), cached until the next build.
pub async fn collection_members(platform: &Platform, shop_id: &str) -> Arc<Members> {
    let dir = platform.work_dir(shop_id).join("catalog");
    let stamp = ["products.jsonl", "collections.json", "categories.json"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).and_then(|m| m.modified()).ok())
        .max();
    if let Some((seen, members)) = platform.members.lock().expect("members cache").get(shop_id)
        && Some(*seen) == stamp
    {
        return members.clone();
    }
    let computed = tokio::task::spawn_blocking(move || {
        let mut members = Members::new();
        if let Ok(loaded) = aurelio_engine::catalog::load(&dir) {
            let catalog = loaded.catalog;
            for c in &catalog.collections {
                for &i in &c.products {
                    if let Some(p) = catalog.products.get(i) {
                        members.entry(p.handle.clone()).or_default().insert(c.handle.clone());
                    }
                }
            }
        }
        members
    })
    .await
    .unwrap_or_default();
    let computed = Arc::new(computed);
    if let Some(stamp) = stamp {
        platform
            .members
            .lock()
            .expect("members cache")
            .insert(shop_id.to_owned(), (stamp, computed.clone()));
    }
    computed
}
