//! Builds over HTTP, on SQLite and PostgreSQL: a catalog write reaches the storefront, a
//! failed build keeps the live storefront, one queued build per shop, what a build exports
//! is the catalog as it is now, a quiet shop builds at once, and two shops build at once
//! in one process, each to its own storefront.

mod common;

use aurelio_api::jobs::{Coalesce, NewJob};
use common::shop::demo_shop;
use common::{Db, Payload, Server, Shop, product, unique};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;

both!(price_change_reaches_the_storefront, failed_build_keeps_the_live_storefront);
both!(one_queued_build_per_shop, builds_export_the_catalog_as_it_is_now);
both!(a_quiet_shop_builds_at_once, two_shops_build_at_once_in_one_process);

async fn price_change_reaches_the_storefront(db: Db) {
    let server = Server::shared(db);
    let api = server.client();
    let shop = demo_shop(server).await;
    let sk = &shop.secret;
    let all = api.all_products(sk, 250).await;
    let target = all
        .iter()
        .find(|p| {
            p["status"] == json!("active") && p["variants"].as_array().is_some_and(|v| v.len() == 1)
        })
        .expect("a one-variant active demo product");
    let handle = target["handle"].as_str().expect("handle");
    let variant = target["variants"][0]["id"].as_str().expect("variant id");
    let path = format!("/products/{handle}/");
    let before = api.storefront(&shop.handle, &path).await.expect(200).text();
    assert!(!before.contains("4321.09"), "the new price is not there yet");

    let patched = api
        .patch(
            &format!("/api/v1/variants/{variant}"),
            sk,
            json!({ "price": 432_109, "compare_at_price": null }),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(patched["product"]["variants"][0]["price"], json!(432_109), "{patched}");
    let build = patched["build_id"].as_str().expect("a price change queues a build");
    let done = api.wait_built(sk, build).await;
    let after = api.storefront(&shop.handle, &path).await.expect(200).text();
    assert!(
        after.contains("4321.09") || after.contains("4,321.09"),
        "the storefront shows the new price"
    );
    // (How fast it gets there is measured by `scripts/bench-api`, "catalog write ->
    // storefront updated"; a wall-clock bound here would only fail on a busy machine.)
    // An incremental build: far fewer pages rendered than the site has.
    let rendered = done["result"]["rendered"].as_u64().expect("rendered");
    let pages = done["result"]["pages"].as_u64().expect("pages");
    assert!(rendered < pages, "only the pages the change touches are rendered: {done}");
    let read =
        api.get(&format!("/api/v1/products/{}", target["id"].as_str().expect("id")), sk).await;
    assert_eq!(read.expect(200).json()["product"]["variants"][0]["price"], json!(432_109));

    // Stock: out of stock shows as sold out.
    let patched =
        api.patch(&format!("/api/v1/variants/{variant}"), sk, json!({ "inventory": 0 })).await;
    let patched = patched.expect(200).json();
    let v = &patched["product"]["variants"][0];
    assert_eq!(v["inventory"], json!(0), "{v}");
    assert!(
        v["availability"] == json!("out_of_stock") || v["availability"] == json!("backorder"),
        "{v}"
    );
}

async fn failed_build_keeps_the_live_storefront(db: Db) {
    let server = Server::shared(db);
    let api = server.client();
    let shop = api.provision(&unique("fail"), false).await;
    let sk = &shop.secret;
    let ok = api.post("/api/v1/products", sk, product("good-boot", "BOOT-1", "80.00")).await;
    api.wait_built(sk, ok.expect(201).json()["build_id"].as_str().expect("build")).await;
    let home = api.storefront(&shop.handle, "/").await.expect(200);
    let etag = home.header("etag").expect("an ETag");

    // A product whose image is not in the media store: accepted, but its build fails.
    let mut broken = product("broken-boot", "BOOT-2", "90.00");
    broken["images"] = json!([{ "src": "images/not-uploaded.jpg", "alt": "missing" }]);
    let created = api.post("/api/v1/products", sk, broken).await.expect(201).json();
    let build = api.wait_build(sk, created["build_id"].as_str().expect("build")).await;
    assert_eq!(build["status"], json!("failed"), "{build}");
    let error = &build["error"];
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{build}");
    let problems = error["problems"].as_array().expect("the problems are listed");
    let problem = problems
        .iter()
        .find(|p| p.to_string().contains("not-uploaded.jpg"))
        .unwrap_or_else(|| panic!("a problem names the missing image: {build}"));
    assert!(problem["file"].as_str().is_some_and(|f| f.contains("products.jsonl")), "{problem}");
    assert!(problem["field"].as_str().is_some_and(|f| f.starts_with("images")), "{problem}");
    assert!(build["finished_at"].is_string(), "{build}");

    // The live storefront is the one before: same home page, no page for the new product.
    let home = api.storefront(&shop.handle, "/").await.expect(200);
    assert_eq!(home.header("etag"), Some(etag.clone()), "the home page did not change");
    api.storefront(&shop.handle, "/products/broken-boot/").await.expect(404);
    api.storefront(&shop.handle, "/products/good-boot/").await.expect(200);
    let health = api.get(&format!("/api/v1/tenants/{}", shop.id), common::ADMIN).await.expect(200);
    assert_eq!(health.json()["last_build"]["status"], json!("failed"));

    // Fixing the catalog makes the next build succeed and publish.
    let id = created["product"]["id"].as_str().expect("id");
    let mut fixed = product("broken-boot", "BOOT-2", "90.00");
    fixed["title"] = json!("Mended Boot");
    let fixed = api.put(&format!("/api/v1/products/{id}"), sk, fixed).await.expect(200).json();
    api.wait_built(sk, fixed["build_id"].as_str().expect("build")).await;
    let page = api.storefront(&shop.handle, "/products/broken-boot/").await.expect(200).text();
    assert!(page.contains("Mended Boot"));
}

/// However many builds are queued at once, a shop has one queued build; a build that a
/// stopped process left running is failed when another is queued, and runs again (with
/// its attempts counted) when none is.
async fn one_queued_build_per_shop(db: Db) {
    let server = Server::start(db, |c| c.build_debounce = std::time::Duration::from_secs(600));
    let api = server.client();
    let shop = api.provision(&unique("queue"), false).await;
    let platform = &server.platform;
    let queue = (0..64).map(|i| {
        let due = 4_000_000_000_000 + i; // in 2096: no worker claims it meanwhile
        aurelio_api::jobs::enqueue(platform, NewJob::shop("build", &shop.id, "test").run_at(due))
    });
    let ids: BTreeSet<String> =
        futures::future::join_all(queue).await.into_iter().map(|id| id.expect("queued")).collect();
    assert_eq!(ids.len(), 1, "64 at once queue one build: {ids:?}");
    let registry = &server.platform.registry;
    let status_of = |id: &'static str| {
        sqlx::query_scalar::<_, String>("SELECT status FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_one(registry)
    };
    let queued = || {
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM jobs WHERE shop_id = $1 AND kind = 'build' AND status = 'queued'",
        )
        .bind(&shop.id)
        .fetch_one(registry)
    };
    assert_eq!(queued().await.expect("count"), 1);
    api.post("/api/v1/products", &shop.secret, product("p", "P-1", "1.00")).await.expect(201);
    assert_eq!(queued().await.expect("count"), 1, "a catalog write pushes the queued build");

    sqlx::query(
        "INSERT INTO jobs (id, shop_id, kind, status, reason, run_after, attempts, max_attempts, \
         worker, lease_until, unique_key, created_at, started_at) VALUES ('build_stale', $1, \
         'build', 'running', 'test', 0, 1, 3, 'gone', 0, 'build:' || $1, 0, 0)",
    )
    .bind(&shop.id)
    .execute(registry)
    .await
    .expect("a stale job");
    let duplicate = sqlx::query(
        "INSERT INTO jobs (id, shop_id, kind, status, reason, run_after, unique_key, \
         created_at) VALUES ('build_twin', $1, 'build', 'queued', 'test', 0, 'build:' || $1, 0)",
    )
    .bind(&shop.id)
    .execute(registry)
    .await;
    assert!(duplicate.is_err(), "the registry holds one queued build per shop");
    // (The dispatcher reaps too, once a minute: it may have ended it first.)
    aurelio_api::jobs::reap(&server.platform).await.expect("reap");
    assert_eq!(status_of("build_stale").await.expect("status"), "failed", "one is queued");
    assert_eq!(queued().await.expect("count"), 1);

    sqlx::query("DELETE FROM jobs WHERE shop_id = $1 AND status = 'queued'")
        .bind(&shop.id)
        .execute(registry)
        .await
        .expect("unqueue");
    let mut finished = server.platform.jobs.finished();
    sqlx::query("UPDATE jobs SET status = 'running', finished_at = NULL, lease_until = 0 WHERE id = 'build_stale'")
        .execute(registry)
        .await
        .expect("running again");
    assert_eq!(aurelio_api::jobs::reap(&server.platform).await.expect("reap"), 0);
    server.platform.jobs.wake();
    tokio::time::timeout(std::time::Duration::from_secs(60), async {
        loop {
            finished.borrow_and_update();
            if status_of("build_stale").await.expect("status") != "running" {
                break;
            }
            finished.changed().await.expect("the dispatcher runs");
        }
    })
    .await
    .expect("a stopped worker's build runs again");
    assert_eq!(status_of("build_stale").await.expect("status"), "succeeded");
    let attempts: i64 = sqlx::query_scalar("SELECT attempts FROM jobs WHERE id = 'build_stale'")
        .fetch_one(registry)
        .await
        .expect("attempts");
    assert_eq!(attempts, 2, "the second attempt of the job");

    // Writes keep pushing a queued build back, but not past its limit (steady writes
    // would otherwise hold it back for ever).
    let other = api.provision(&unique("later"), false).await;
    let limit = aurelio_api::jobs::push_back_limit(std::time::Duration::from_secs(600));
    let queue = |due: i64| {
        let job = NewJob::shop("build", &other.id, "test")
            .run_at(due)
            .coalesce(Coalesce::PushBack(limit));
        aurelio_api::jobs::enqueue(platform, job)
    };
    let now = || i64::try_from(std::time::UNIX_EPOCH.elapsed().expect("time").as_millis());
    let first = queue(now().expect("ms") + 600_000).await.expect("queued");
    let pushed = queue(now().expect("ms") + 36_000_000).await.expect("pushed");
    assert_eq!(first, pushed);
    let waited: i64 = sqlx::query_scalar("SELECT run_after - created_at FROM jobs WHERE id = $1")
        .bind(&first)
        .fetch_one(registry)
        .await
        .expect("times");
    assert_eq!(
        waited,
        i64::try_from(limit.as_millis()).expect("ms"),
        "held back at most {limit:?}"
    );
}

/// What a build job exports (reusing the lines of its last export) is what a fresh export
/// of the shop gives, after new products, a price, stock, and a deleted product.
async fn builds_export_the_catalog_as_it_is_now(db: Db) {
    let server = Server::shared(db);
    let api = server.client();
    let shop = api.provision(&unique("export"), false).await;
    let sk = &shop.secret;
    let built = server.platform.work_dir(&shop.id).join("catalog").join("products.jsonl");
    let handle = &shop.handle;
    let same_as_fresh = |build: Value| {
        let (api, built) = (api.clone(), built.clone());
        async move {
            api.wait_built(sk, build.as_str().expect("a build id")).await;
            let export = api.get("/api/v1/export", sk).await.expect(200);
            let dir = tempfile::tempdir().expect("a directory");
            tar::Archive::new(std::io::Cursor::new(export.body)).unpack(dir.path()).expect("tar");
            let fresh = std::fs::read_to_string(dir.path().join(handle).join("products.jsonl"));
            let built = std::fs::read_to_string(&built).expect("the build's export");
            assert_eq!(built, fresh.expect("a fresh export"));
            built
        }
    };
    let mut variants = Vec::new();
    let mut products = Vec::new();
    let mut build = Value::Null;
    for i in 0..3 {
        let body = product(&format!("m{i}"), &format!("M-{i}"), "5.00");
        let created = api.post("/api/v1/products", sk, body).await.expect(201).json();
        products.push(created["product"]["id"].as_str().expect("id").to_owned());
        variants.push(created["product"]["variants"][0]["id"].as_str().expect("id").to_owned());
        build = created["build_id"].clone();
    }
    assert_eq!(same_as_fresh(build).await.lines().count(), 3);
    let patch = |variant: &str, body: Value| {
        let (api, path) = (api.clone(), format!("/api/v1/variants/{variant}"));
        async move { api.patch(&path, sk, body).await.expect(200).json()["build_id"].clone() }
    };
    let exported = same_as_fresh(patch(&variants[1], json!({"price": 777})).await).await;
    assert!(exported.contains("\"7.77\""), "{exported}");
    let exported = same_as_fresh(patch(&variants[2], json!({"inventory": 3})).await).await;
    assert!(exported.contains("\"inventory\":3"), "{exported}");
    // A checkout changes only the stock column (the stored document keeps the old count).
    let zones = json!({"shipping_zones": [{"name": "IE", "countries": ["IE"],
        "rates": [{"id": "post", "name": "Post", "amount": 0}]}]});
    api.put("/api/v1/settings/checkout", sk, zones).await.expect(200);
    let lines = json!({"lines": [{"variant_id": variants[2], "quantity": 1}]});
    let cart = api.post("/api/v1/carts", &shop.publishable, lines).await.expect(201).json();
    let token = cart["cart"]["token"].as_str().expect("token");
    let address = json!({"name": "Ada", "line1": "1 Quay St", "city": "Galway",
        "postal_code": "H91", "country": "IE"});
    api.send_with(
        Method::POST,
        &format!("/api/v1/carts/{token}/checkout"),
        Some(&shop.publishable),
        Payload::Json(json!({"email": "ada@example.com", "shipping_address": address})),
        &[("Idempotency-Key", "export-1")],
    )
    .await
    .expect(201);
    api.delete(&format!("/api/v1/products/{}", products[0]), sk).await.expect(204);
    let body = product("m3", "M-3", "6.00");
    let created = api.post("/api/v1/products", sk, body).await.expect(201).json();
    let exported = same_as_fresh(created["build_id"].clone()).await;
    assert!(!exported.contains("\"m0\"") && exported.contains("\"m3\""), "{exported}");
    assert!(exported.contains("\"inventory\":2"), "the checkout's stock: {exported}");
}

/// The first catalog write after a quiet spell builds at once; one right after it waits
/// the debounce interval (and coalesces with any that follow).
async fn a_quiet_shop_builds_at_once(db: Db) {
    // A debounce far longer than any step here takes, so no step outlasts it by chance;
    // the quiet spell is made by ageing the provisioning build, not by waiting it out.
    let debounce = std::time::Duration::from_secs(600);
    let wait = i64::try_from(debounce.as_millis()).expect("ms");
    let server = Server::start(db, |c| c.build_debounce = debounce);
    let api = server.client();
    let shop = api.provision(&unique("quiet"), false).await;
    let registry = &server.platform.registry;
    sqlx::query("UPDATE jobs SET created_at = created_at - $1 WHERE shop_id = $2")
        .bind(2 * wait)
        .bind(&shop.id)
        .execute(registry)
        .await
        .expect("a quiet spell");
    let job = |id: String| {
        let registry = registry.clone();
        async move {
            sqlx::query_as::<_, (i64, String)>(
                "SELECT run_after - created_at, status FROM jobs WHERE id = $1",
            )
            .bind(id)
            .fetch_one(&registry)
            .await
            .expect("the job")
        }
    };
    let write = |i: usize| {
        let body = product(&format!("q{i}"), &format!("Q-{i}"), "2.00");
        let (api, secret) = (api.clone(), shop.secret.clone());
        async move {
            let created = api.post("/api/v1/products", &secret, body).await.expect(201).json();
            created["build_id"].as_str().expect("a build").to_owned()
        }
    };
    let first = write(0).await;
    let (at_once, _) = job(first.clone()).await;
    assert!(at_once <= 0, "the first write builds at once, not {at_once} ms after");
    // It runs (with a 600 s debounce it would not within `wait_built`'s minute otherwise);
    // once it has, the next write cannot join it.
    api.wait_built(&shop.secret, &first).await;
    let second = write(1).await;
    assert_ne!(first, second);
    let (later, status) = job(second.clone()).await;
    assert!(
        later > wait - 60_000 && later <= wait,
        "the next one waits the debounce ({wait} ms), not {later} ms"
    );
    assert_eq!(status, "queued");
    // Writes right after it join it.
    let third = write(2).await;
    assert_eq!(third, second, "a burst of writes makes one build");
    assert_eq!(job(second).await.1, "queued");
}

/// Two shops building at once in one process both succeed, each storefront with its own
/// products: builds of two shops queued at the same moment (the worker runs them), while
/// a third shop's provisioning builds inline in its request.
async fn two_shops_build_at_once_in_one_process(db: Db) {
    let server = Server::shared(db);
    let api = server.client();
    let (twin_a, twin_b) = (unique("twin-a"), unique("twin-b"));
    let (a, b) = tokio::join!(api.provision(&twin_a, false), api.provision(&twin_b, false));
    let write = |shop: &Shop, handle: &'static str| {
        let (api, secret) = (api.clone(), shop.secret.clone());
        async move {
            let body = product(handle, &handle.to_uppercase(), "7.00");
            let created = api.post("/api/v1/products", &secret, body).await.expect(201).json();
            created["build_id"].as_str().expect("a build").to_owned()
        }
    };
    let twin_demo = unique("twin-demo");
    let (built_a, built_b, demo) = tokio::join!(
        async {
            let id = write(&a, "only-in-a").await;
            api.wait_built(&a.secret, &id).await
        },
        async {
            let id = write(&b, "only-in-b").await;
            api.wait_built(&b.secret, &id).await
        },
        api.provision(&twin_demo, true),
    );
    assert_ne!(built_a["id"], built_b["id"], "a build of each shop");
    let demo_product = common::demo_products()[0]["handle"].as_str().expect("a handle").to_owned();
    for (shop, own, other) in [(&a, "only-in-a", "only-in-b"), (&b, "only-in-b", "only-in-a")] {
        let page = api.storefront(&shop.handle, &format!("/products/{own}/")).await;
        assert!(page.expect(200).text().contains(&format!("Test {own}")), "{own} on its shop");
        api.storefront(&shop.handle, &format!("/products/{other}/")).await.expect(404);
        api.storefront(&shop.handle, &format!("/products/{demo_product}/")).await.expect(404);
    }
    for own in ["only-in-a", "only-in-b"] {
        api.storefront(&demo.handle, &format!("/products/{own}/")).await.expect(404);
    }
    api.storefront(&demo.handle, &format!("/products/{demo_product}/")).await.expect(200);
}
