//! Shops over HTTP: provisioning with the demo catalog, health, list, suspend, resume,
//! delete; keys, roles and how keys are stored; the bounded cache of shop pools. Every
//! test runs on SQLite and on PostgreSQL.

mod common;

use common::{ADMIN, Db, Server, product, unique};
use reqwest::Method;
use serde_json::{Value, json};

both!(provisioning_lifecycle, provisioning_rejects_bad_requests, roles, keys_are_stored_hashed);
both!(pool_cache_stays_bounded);

/// Escapes text as the storefront's templates do.
fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('\'', "&#x27;")
}

async fn provisioning_lifecycle(db: Db) {
    let server = Server::shared(db);
    let api = server.client();
    let handle = unique("life");
    let shop = api.provision(&handle, true).await;

    // The answer: the shop and its keys, shown once.
    assert!(shop.secret.starts_with("sk_") && shop.secret.len() > 20, "{}", shop.body);
    assert!(shop.publishable.starts_with("pk_") && shop.publishable.len() > 20, "{}", shop.body);
    assert_ne!(shop.secret[3..], shop.publishable[3..]);
    let tenant = &shop.body["tenant"];
    assert_eq!(tenant["handle"], json!(handle));
    assert_eq!(tenant["status"], json!("active"));
    assert!(shop.id.starts_with("shop_"), "{tenant}");
    assert!(
        tenant["storefront_url"].as_str().is_some_and(|u| u.contains(&handle)),
        "the storefront URL names the shop: {tenant}"
    );

    // The storefront is served by Host, with every active demo product.
    let home = api.storefront(&handle, "/").await.expect(200);
    assert!(home.header("content-type").is_some_and(|t| t.starts_with("text/html")));
    assert!(home.text().contains(&handle), "the home page shows the shop's name");
    let demo = common::demo_products();
    let active: Vec<&Value> =
        demo.iter().filter(|p| p["status"].as_str().is_none_or(|s| s == "active")).collect();
    assert!(active.len() >= 10, "the demo catalog has products");
    for p in active.iter().take(5) {
        let path = format!("/products/{}/", p["handle"].as_str().expect("handle"));
        let page = api.storefront(&handle, &path).await.expect(200).text();
        let title = html_escape(p["title"].as_str().expect("title"));
        assert!(page.contains(&title), "{path} shows the title {title}");
    }
    let listed = api.all_products(&shop.secret, 250).await;
    assert_eq!(listed.len(), demo.len(), "every demo product is in the shop's database");

    // Health of the shop's database, by id and by handle.
    for id in [&shop.id, &handle] {
        let health = api.get(&format!("/api/v1/tenants/{id}"), ADMIN).await.expect(200).json();
        assert_eq!(health["tenant"]["id"], json!(shop.id), "{health}");
        let database = &health["database"];
        assert_eq!(database["ok"], json!(true), "{health}");
        let backend = if db == Db::Sqlite { "sqlite" } else { "postgres" };
        assert_eq!(database["backend"], json!(backend), "{health}");
        assert_eq!(database["products"], json!(demo.len()), "{health}");
        assert!(database["schema_version"].as_i64().is_some_and(|v| v >= 1), "{health}");
        let latency = database["latency_ms"].as_f64().expect("a latency");
        assert!(latency.is_finite() && latency >= 0.0, "{health}");
        assert_eq!(health["last_build"]["id"], json!(shop.build_id), "{health}");
        assert_eq!(health["last_build"]["status"], json!("succeeded"), "{health}");
    }

    // The list holds it; walking pages of one finds it exactly once.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let path = format!("/api/v1/tenants?limit=1{cursor}");
        let page = api.get(&path, ADMIN).await.expect(200).json();
        let tenants = page["tenants"].as_array().expect("tenants");
        assert!(tenants.len() <= 1, "{page}");
        seen.extend(tenants.iter().map(|t| t["handle"].as_str().expect("handle").to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.iter().filter(|h| **h == handle).count(), 1, "{seen:?}");
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "shops are listed by handle, each once");

    // Suspended: its keys get 403 `shop_suspended`, its storefront is gone.
    let suspended =
        api.post(&format!("/api/v1/tenants/{}/suspend", shop.id), ADMIN, json!({})).await;
    assert_eq!(suspended.expect(200).json()["status"], json!("suspended"));
    for key in [&shop.secret, &shop.publishable] {
        api.get("/api/v1/products", key).await.error(403, "shop_suspended", None);
    }
    api.storefront(&handle, "/").await.expect(404);
    let health = api.get(&format!("/api/v1/tenants/{}", shop.id), ADMIN).await.expect(200);
    assert_eq!(health.json()["tenant"]["status"], json!("suspended"));

    // Resumed: all back.
    let resumed =
        api.post(&format!("/api/v1/tenants/{handle}/resume"), ADMIN, json!({})).await.expect(200);
    assert_eq!(resumed.json()["status"], json!("active"));
    api.get("/api/v1/products", &shop.secret).await.expect(200);
    api.get("/api/v1/products", &shop.publishable).await.expect(200);
    api.storefront(&handle, "/").await.expect(200);

    // Deleted: database, keys, storefront and files go.
    match db {
        Db::Sqlite => assert!(server.sqlite_file(&shop.id).exists(), "the shop's file exists"),
        Db::Postgres => {
            let name = server.postgres_shop_db(&shop.id);
            assert!(server.postgres_database_exists(&name).await, "{name} exists");
        }
    }
    assert!(server.platform.published_dir(&shop.id).exists());
    api.delete(&format!("/api/v1/tenants/{}", shop.id), ADMIN).await.expect(204);
    match db {
        Db::Sqlite => {
            let file = server.sqlite_file(&shop.id);
            assert!(!file.exists(), "{} is deleted", file.display());
            let wal = file.with_extension("db-wal");
            assert!(!wal.exists(), "{} is deleted", wal.display());
        }
        Db::Postgres => {
            let name = server.postgres_shop_db(&shop.id);
            assert!(!server.postgres_database_exists(&name).await, "{name} is dropped");
        }
    }
    assert!(!server.platform.published_dir(&shop.id).exists(), "the published files are gone");
    assert!(!server.platform.work_dir(&shop.id).exists(), "the build files are gone");
    api.storefront(&handle, "/").await.expect(404);
    api.get("/api/v1/products", &shop.secret).await.error(401, "unauthorized", None);
    api.get(&format!("/api/v1/tenants/{}", shop.id), ADMIN).await.error(404, "not_found", None);
    api.delete(&format!("/api/v1/tenants/{}", shop.id), ADMIN).await.error(404, "not_found", None);
    let list = api.get("/api/v1/tenants?limit=250", ADMIN).await.expect(200).json();
    assert!(
        !list["tenants"].as_array().expect("tenants").iter().any(|t| t["id"] == json!(shop.id)),
        "a deleted shop is not listed"
    );
}

async fn provisioning_rejects_bad_requests(db: Db) {
    let server = Server::shared(db);
    let api = server.client();
    let handle = unique("dup");
    let body = json!({ "handle": handle, "name": "Dup" });
    api.post("/api/v1/tenants", ADMIN, body.clone()).await.expect(201);
    api.post("/api/v1/tenants", ADMIN, body.clone()).await.error(409, "conflict", Some("handle"));

    // The admin token is needed, and nothing else will do.
    let other = json!({ "handle": unique("noauth"), "name": "X" });
    let r = api
        .send_with(Method::POST, "/api/v1/tenants", None, common::Payload::Json(other.clone()), &[])
        .await;
    r.error(401, "unauthorized", None);
    api.post("/api/v1/tenants", "wrong-token", other.clone()).await.error(
        401,
        "unauthorized",
        None,
    );
    let shop = api.get("/api/v1/tenants?limit=1", ADMIN).await.expect(200);
    assert!(shop.json()["tenants"].as_array().is_some_and(|t| !t.is_empty()));
    api.get("/api/v1/tenants", "wrong-token").await.error(401, "unauthorized", None);

    // Bad bodies name the field.
    let cases = [
        (json!({ "handle": "Not A Handle", "name": "X" }), "handle"),
        (json!({ "handle": unique("x"), "name": "  " }), "name"),
        (json!({ "handle": unique("x"), "name": "X", "currency": "EURO" }), "currency"),
        (json!({ "handle": unique("x"), "name": "X", "theme": "no-such-theme" }), "theme"),
        (json!({ "handle": unique("x"), "name": "X", "demo": "yes" }), "demo"),
    ];
    for (body, field) in cases {
        let r = api.post("/api/v1/tenants", ADMIN, body.clone()).await;
        r.error(422, "validation_failed", Some(field));
    }
    let r = api
        .post(
            "/api/v1/tenants",
            ADMIN,
            json!({ "handle": unique("x"), "name": "X", "demoo": true }),
        )
        .await;
    let error = r.error(422, "validation_failed", Some("demoo"));
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains("demoo"), "the unknown field is named: {error}");
    let r = api.post("/api/v1/tenants", ADMIN, json!({ "name": "No handle" })).await;
    r.error(422, "validation_failed", Some("handle"));
    let r = api
        .send_with(
            Method::POST,
            "/api/v1/tenants",
            Some(ADMIN),
            common::Payload::Raw("application/json".into(), b"{\"handle\": ".to_vec()),
            &[],
        )
        .await;
    r.error(400, "bad_request", None);
    // Nothing of the failed attempts was made.
    let list = api.get("/api/v1/tenants?limit=250", ADMIN).await.expect(200).json();
    let handles: Vec<&str> = list["tenants"]
        .as_array()
        .expect("tenants")
        .iter()
        .filter_map(|t| t["handle"].as_str())
        .collect();
    assert!(!handles.iter().any(|h| h.starts_with("x-") || h.starts_with("noauth")), "{handles:?}");
}

async fn roles(db: Db) {
    let server = Server::shared(db);
    let api = server.client();
    let shop = api.provision(&unique("roles"), false).await;
    let owner = &shop.secret;
    let mut keys = std::collections::BTreeMap::new();
    for role in ["viewer", "staff", "admin", "owner"] {
        let r = api.post("/api/v1/keys", owner, json!({ "role": role, "label": role })).await;
        let key = r.expect(201).json();
        assert_eq!(key["role"], json!(role), "{key}");
        assert_eq!(key["kind"], json!("secret"), "{key}");
        let secret = key["key"].as_str().expect("key").to_owned();
        assert!(secret.starts_with("sk_"), "{key}");
        keys.insert(role, (secret, key["id"].as_str().expect("id").to_owned()));
    }
    let viewer = &keys["viewer"].0;
    let staff = &keys["staff"].0;
    let admin = &keys["admin"].0;

    // A viewer reads and cannot write.
    api.get("/api/v1/products", viewer).await.expect(200);
    api.get("/api/v1/store", viewer).await.expect(200);
    api.get("/api/v1/builds", viewer).await.expect(200);
    let r = api.post("/api/v1/products", viewer, product("v-made", "V-1", "10.00")).await;
    r.error(403, "forbidden", None);
    api.post("/api/v1/builds", viewer, json!({})).await.error(403, "forbidden", None);
    api.get("/api/v1/keys", viewer).await.error(403, "forbidden", None);

    // Staff writes the catalog, not the settings, theme or keys.
    let created = api.post("/api/v1/products", staff, product("s-made", "S-1", "10.00")).await;
    let created = created.expect(201).json();
    let mut store = api.get("/api/v1/store", staff).await.expect(200).json();
    store["name"] = json!("Renamed by staff");
    api.put("/api/v1/store", staff, store.clone()).await.error(403, "forbidden", None);
    api.put("/api/v1/theme", staff, json!({})).await.error(403, "forbidden", None);
    let r = api.post("/api/v1/keys", staff, json!({ "role": "owner" })).await;
    r.error(403, "forbidden", None);
    let r = api.post("/api/v1/keys", staff, json!({ "role": "staff" })).await;
    r.error(403, "forbidden", None);

    // An admin changes settings and makes keys up to admin, never owner.
    store["name"] = json!("Renamed by admin");
    let saved = api.put("/api/v1/store", admin, store).await.expect(200).json();
    assert_eq!(saved["document"]["name"], json!("Renamed by admin"));
    let stored = api.get("/api/v1/store", viewer).await.expect(200).json();
    assert_eq!(stored["name"], json!("Renamed by admin"), "the change was stored");
    api.post("/api/v1/keys", admin, json!({ "role": "owner" })).await.error(403, "forbidden", None);
    let made = api.post("/api/v1/keys", admin, json!({ "role": "admin" })).await.expect(201);
    assert_eq!(made.json()["role"], json!("admin"));
    let r = api.post("/api/v1/keys", owner, json!({ "role": "superuser" })).await;
    r.error(422, "validation_failed", Some("role"));

    // A publishable key reads active products only, and writes nothing.
    let mut draft = product("draft-one", "D-1", "12.00");
    draft["status"] = json!("draft");
    let draft = api.post("/api/v1/products", owner, draft).await.expect(201).json();
    let draft_id = draft["product"]["id"].as_str().expect("id");
    let pk = &shop.publishable;
    let public = api.all_products(pk, 50).await;
    let ids: Vec<&str> = public.iter().filter_map(|p| p["id"].as_str()).collect();
    assert!(ids.contains(&created["product"]["id"].as_str().expect("id")), "{ids:?}");
    assert!(!ids.contains(&draft_id), "a draft is not public: {ids:?}");
    assert!(public.iter().all(|p| p["status"] == json!("active")));
    api.get(&format!("/api/v1/products/{draft_id}"), pk).await.error(404, "not_found", None);
    api.get(&format!("/api/v1/products/{draft_id}"), viewer).await.expect(200);
    let all = api.all_products(viewer, 50).await;
    assert!(all.iter().any(|p| p["id"] == json!(draft_id)), "secret keys see drafts");
    let r = api.post("/api/v1/products", pk, product("pk-made", "PK-1", "1.00")).await;
    r.error(403, "forbidden", None);
    api.get("/api/v1/store", pk).await.error(403, "forbidden", None);
    api.get("/api/v1/builds", pk).await.error(403, "forbidden", None);
    api.get("/api/v1/export", pk).await.error(403, "forbidden", None);
    api.post("/api/v1/keys", pk, json!({})).await.error(403, "forbidden", None);

    // Keys are listed without the keys themselves; a revoked key stops working.
    let listed = api.get("/api/v1/keys", owner).await.expect(200);
    let text = listed.text();
    for (secret, _) in keys.values() {
        assert!(!text.contains(secret.as_str()), "a listed key shows only its prefix");
        assert!(text.contains(&secret[..10]), "a listed key shows its prefix");
    }
    let (viewer_key, viewer_id) = &keys["viewer"];
    api.delete(&format!("/api/v1/keys/{viewer_id}"), admin).await.expect(204);
    api.get("/api/v1/products", viewer_key).await.error(401, "unauthorized", None);
    api.delete(&format!("/api/v1/keys/{viewer_id}"), admin).await.error(404, "not_found", None);
    // No key at all, or something that is not a key.
    let r = api.send_with(Method::GET, "/api/v1/products", None, common::Payload::None, &[]).await;
    r.error(401, "unauthorized", None);
    api.get("/api/v1/products", ADMIN).await.error(401, "unauthorized", None);
    api.get("/api/v1/products", "sk_0000000000").await.error(401, "unauthorized", None);
}

async fn keys_are_stored_hashed(db: Db) {
    let server = Server::shared(db);
    let api = server.client();
    let handle = unique("hash");
    let shop = api.provision(&handle, false).await;
    let mut keys = vec![shop.secret.clone(), shop.publishable.clone()];
    for body in [json!({ "role": "staff" }), json!({ "kind": "publishable" })] {
        let made = api.post("/api/v1/keys", &shop.secret, body).await.expect(201).json();
        keys.push(made["key"].as_str().expect("key").to_owned());
    }
    // The keys work (so they are stored somehow).
    for key in &keys {
        api.get("/api/v1/products", key).await.expect(200);
    }
    // Everything the registry holds, as text.
    let stored = match db {
        Db::Sqlite => {
            // The database file and its write-ahead log, byte for byte.
            let mut bytes = Vec::new();
            for name in ["registry.db", "registry.db-wal"] {
                if let Ok(b) = std::fs::read(server.data_dir.join(name)) {
                    bytes.extend(b);
                }
            }
            String::from_utf8_lossy(&bytes).into_owned()
        }
        Db::Postgres => {
            let url = server.database_url.as_ref().expect("url");
            let pool = sqlx::PgPool::connect(url.as_str()).await.expect("connect");
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
            )
            .fetch_all(&pool)
            .await
            .expect("tables");
            assert!(tables.iter().any(|t| t == "api_keys"), "{tables:?}");
            let mut all = String::new();
            for table in tables {
                let sql =
                    format!("SELECT COALESCE(string_agg(t::text, E'\\n'), '') FROM \"{table}\" t");
                let rows: String = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .fetch_one(&pool)
                    .await
                    .expect("rows");
                all.push_str(&rows);
            }
            pool.close().await;
            all
        }
    };
    assert!(stored.contains(&handle), "the registry was read (it names the shop)");
    for key in &keys {
        assert!(!stored.contains(key.as_str()), "the key {}... is stored in clear", &key[..10]);
        assert!(!stored.contains(&key[3..]), "the key's secret part is stored in clear");
        let hash = blake3::hash(key.as_bytes()).to_hex().to_string();
        assert!(stored.contains(&hash), "the key is stored as its hash");
    }
}

async fn pool_cache_stays_bounded(db: Db) {
    let server = Server::start(db, |c| c.max_open_pools = 3);
    let api = server.client();
    let mut shops = Vec::new();
    for i in 0..5 {
        let shop = api.provision(&unique(&format!("pool{i}")), false).await;
        let made = api
            .post(
                "/api/v1/products",
                &shop.secret,
                product(&format!("p{i}"), &format!("P-{i}"), "5.00"),
            )
            .await
            .expect(201)
            .json();
        let id = made["product"]["id"].as_str().expect("id").to_owned();
        assert!(
            server.platform.pools.open_count() <= 3,
            "{} pools open",
            server.platform.pools.open_count()
        );
        shops.push((shop, id));
    }
    // Every shop still answers, in turns and all at once, and never more than 3 pools.
    for round in 0..2 {
        for (shop, id) in &shops {
            let got = api.get(&format!("/api/v1/products/{id}"), &shop.secret).await.expect(200);
            assert_eq!(got.json()["product"]["id"], json!(id), "round {round}");
            let open = server.platform.pools.open_count();
            assert!(open <= 3, "{open} pools open after a request");
        }
        let all = futures::future::join_all(shops.iter().map(|(shop, id)| {
            let api = api.clone();
            async move { api.get(&format!("/api/v1/products/{id}"), &shop.secret).await }
        }))
        .await;
        for r in all {
            r.expect(200);
        }
        assert!(server.platform.pools.open_count() <= 3);
    }
    let metrics = api.send_with(Method::GET, "/metrics", None, common::Payload::None, &[]).await;
    let text = metrics.expect(200).text();
    let open: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("aurelio_shop_pools_open "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the metrics show the open pools");
    assert!((1.0..=3.0).contains(&open), "aurelio_shop_pools_open {open}");
}
