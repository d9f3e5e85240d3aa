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

use crate::cache::TtlCache;
use crate::platform::Platform;
use crate::platform::jobs::{JobError, Kind};
use carts::{Members, ShopFacts};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use utoipa_axum::router::OpenApiRouter;

/// What commerce keeps in memory (`Platform::state`).
pub struct Caches {
    /// Shop id → what cart totals need (currency, tax mode, checkout settings), for a few
    /// seconds (cleared by `Platform::forget`).
    pub facts: TtlCache<String, Arc<ShopFacts>>,
    /// Collection membership per shop, for discounts limited to collections.
    members: Mutex<HashMap<String, (SystemTime, Arc<Members>)>>,
}

impl Default for Caches {
    fn default() -> Self {
        Self { facts: TtlCache::new(Duration::from_secs(5), 10_000), members: Mutex::default() }
    }
}

/// Registers commerce's job kinds (`webhooks` deliveries, order `holds`, cart `cleanup`)
/// and drops its cached facts of a shop whose settings change.
pub fn install(platform: &Platform) {
    let retry = |detail| JobError { detail, retry: true };
    platform.jobs.register(
        Kind::new("webhooks", move |platform: Arc<Platform>, job| async move {
            webhooks::deliver_due(&platform, job.shop()?).await.map_err(retry)
        })
        .concurrency(2)
        .timeout(Duration::from_secs(300)),
    );
    platform.jobs.register(
        Kind::new("holds", move |platform: Arc<Platform>, job| async move {
            holds::release_due(&platform, job.shop()?).await.map_err(retry)
        })
        .timeout(Duration::from_secs(300)),
    );
    platform.jobs.register(
        Kind::new("cleanup", move |platform: Arc<Platform>, job| async move {
            holds::clean(&platform, job.shop()?).await.map_err(retry)
        })
        .timeout(Duration::from_secs(300)),
    );
    platform.state.on_forget(|platform, shop_id| {
        platform.state.get::<Caches>().facts.remove(&shop_id.to_owned());
    });
}

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
    let caches = platform.state.get::<Caches>();
    if let Some((seen, members)) = caches.members.lock().expect("members cache").get(shop_id)
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
        caches
            .members
            .lock()
            .expect("members cache")
            .insert(shop_id.to_owned(), (stamp, computed.clone()));
    }
    computed
}
