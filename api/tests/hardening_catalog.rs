//! Hardening of the catalog API, each test replaying a finding of the security review:
//! products are capped (2,048 variants, 3 options, 255-character titles) for every way in,
//! imports are bounded and run off the async threads so that other shops keep answering,
//! and what is not published (draft pages, draft or archived products) is invisible to
//! publishable keys. Every test runs on SQLite and on PostgreSQL.

mod common;

use common::{Client, Db, Payload, Server, Shop, product, unique};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

both!(variant_cap_is_enforced_everywhere, other_shops_answer_during_heavy_imports);
both!(imports_are_bounded, drafts_are_hidden_from_publishable_keys);

/// A product body with `n` variants over one `Size` option of `n` values.
fn product_with_variants(handle: &str, n: usize) -> Value {
    let values: Vec<String> = (0..n).map(|i| format!("S{i}")).collect();
    let variants: Vec<Value> = (0..n)
        .map(|i| {
            json!({"sku": format!("{handle}-{i}"), "options": {"Size": format!("S{i}")},
                   "price": "10.00", "inventory": 3})
        })
        .collect();
    json!({"handle": handle, "title": format!("Product {handle}"), "status": "active",
           "options": [{"name": "Size", "values": values}], "variants": variants})
}

/// The header of the Shopify CSVs of these tests; `Note` is a column the import ignores.
const HEADER: &str =
    "Handle,Title,Option1 Name,Option1 Value,Variant SKU,Variant Price,Status,Note\n";

/// Shopify CSV rows of one product with `n` variants, each row padded to `row_bytes`.
fn csv_product(out: &mut String, handle: &str, n: usize, row_bytes: usize) {
    for i in 0..n {
        let start = out.len();
        if i == 0 {
            out.push_str(&format!(
                "{handle},Product {handle},Size,S{i},{handle}-{i},10.00,active,"
            ));
        } else {
            out.push_str(&format!("{handle},,,S{i},{handle}-{i},10.00,,"));
        }
        let used = out.len() - start + 1;
        out.push_str(&"x".repeat(row_bytes.saturating_sub(used)));
        out.push('\n');
    }
}

/// `POST /api/v1/import/shopify` with a CSV body.
async fn import(api: &Client, key: &str, query: &str, csv: Vec<u8>) -> common::Resp {
    let path = format!("/api/v1/import/shopify{query}");
    api.send_with(Method::POST, &path, Some(key), Payload::Raw("text/csv".into(), csv), &[]).await
}

/// Whether the shop still lists its products and builds: a product is created and the
/// build it queued succeeds.
async fn still_works(api: &Client, shop: &Shop) {
    api.get("/api/v1/products?limit=5", &shop.publishable).await.expect(200);
    let handle = unique("after");
    let made = api
        .post("/api/v1/products", &shop.secret, product(&handle, &handle.to_uppercase(), "5.00"))
        .await
        .expect(201)
        .json();
    api.wait_built(&shop.secret, made["build_id"].as_str().expect("a build")).await;
    api.storefront(&shop.handle, &format!("/products/{handle}/")).await.expect(200);
}

/// 2,049 variants are refused with 422 naming `variants`, through a product write, a
/// replacement and an import; 2,048 are taken, and read back whole with the publishable
/// key; a page of products holds at most 10,000 variants; the shop lists and builds
/// afterwards.
async fn variant_cap_is_enforced_everywhere(db: Db) {
    let server = Server::shared(db);
    let api = server.client();
    let shop = api.provision(&unique("cap"), false).await;
    let sk = &shop.secret;

    let over = product_with_variants("too-many", 2049);
    let e = api.post("/api/v1/products", sk, over).await.error(
        422,
        "validation_failed",
        Some("variants"),
    );
    assert!(e["message"].as_str().is_some_and(|m| m.contains("2048")), "{e}");
    // Three options at most, and a title of at most 255 characters.
    let mut four = product("four", "FOUR-1", "1.00");
    four["options"] = json!([{"name": "A", "values": ["1"]}, {"name": "B", "values": ["1"]},
        {"name": "C", "values": ["1"]}, {"name": "D", "values": ["1"]}]);
    api.post("/api/v1/products", sk, four).await.error(422, "validation_failed", None);
    let mut long = product("long", "LONG-1", "1.00");
    long["title"] = json!("t".repeat(256));
    api.post("/api/v1/products", sk, long).await.error(422, "validation_failed", Some("title"));

    let most = api.post("/api/v1/products", sk, product_with_variants("most", 2048)).await;
    let made = most.expect(201).json();
    let id = made["product"]["id"].as_str().expect("an id").to_owned();
    assert_eq!(made["product"]["variants"].as_array().map(Vec::len), Some(2048));
    let path = format!("/api/v1/products/{id}");
    api.put(&path, sk, product_with_variants("most", 2049)).await.error(
        422,
        "validation_failed",
        Some("variants"),
    );
    let read = api.get(&path, &shop.publishable).await.expect(200).json();
    let variants = read["product"]["variants"].as_array().expect("variants");
    assert_eq!(variants.len(), 2048, "unchanged by the refused replacement");
    assert_eq!(variants[2047]["options"], json!({"Size": "S2047"}));
    assert_eq!(variants[2047]["inventory"], json!(3));

    // A page of products ends early once it holds 10,000 variants: four of these.
    for n in 2..=5 {
        let body = product_with_variants(&format!("most-{n}"), 2048);
        api.post("/api/v1/products", sk, body).await.expect(201);
    }
    let page = api.get("/api/v1/products?limit=50", &shop.publishable).await.expect(200).json();
    assert_eq!(page["products"].as_array().map(Vec::len), Some(4));
    assert!(page["next_cursor"].is_string(), "more on the next page");
    assert_eq!(api.all_products(&shop.publishable, 50).await.len(), 5);

    let mut csv = HEADER.to_owned();
    csv_product(&mut csv, "csv-too-many", 2049, 0);
    let report = import(&api, sk, "", csv.into_bytes()).await.expect(200).json();
    assert_eq!(report["failed"], json!(1), "{report}");
    assert_eq!(report["created"], json!(0), "{report}");
    let errors = report["errors"].as_array().expect("errors");
    assert!(errors.iter().any(|e| e["field"] == json!("variants")), "{report}");

    // A rule-based collection has at most 60 conditions.
    let conditions: Vec<Value> = (0..61).map(|i| json!({"tag": format!("t{i}")})).collect();
    let rules =
        json!({"handle": "many-rules", "title": "Many", "rules": {"conditions": conditions}});
    api.post("/api/v1/collections", sk, rules).await.error(
        422,
        "validation_failed",
        Some("[0].rules.conditions"),
    );

    api.wait_built(sk, made["build_id"].as_str().expect("a build")).await;
    still_works(&api, &shop).await;
}

/// Imports larger than allowed are refused with 413 in the standard error body, by bytes
/// and by rows, and change nothing.
async fn imports_are_bounded(db: Db) {
    let server = Server::shared(db);
    let api = server.client();
    let shop = api.provision(&unique("bound"), false).await;
    let sk = &shop.secret;

    let mut rows = HEADER.to_owned();
    for p in 0..=(50_000 / 1000) {
        csv_product(&mut rows, &format!("rows-{p}"), 1000, 0);
    }
    let r = import(&api, sk, "?dry_run=true", rows.into_bytes()).await;
    let e = r.error(413, "too_large", Some("body"));
    assert!(e["message"].as_str().is_some_and(|m| m.contains("50000 rows")), "{e}");

    let mut bytes = HEADER.to_owned();
    csv_product(&mut bytes, "bytes", 1, 16 * 1024 * 1024 + 1);
    let r = import(&api, sk, "", bytes.into_bytes()).await;
    let e = r.error(413, "too_large", Some("body"));
    assert!(e["message"].as_str().is_some_and(|m| m.contains("16 MiB")), "{e}");

    assert!(api.all_products(sk, 50).await.is_empty(), "nothing imported");
    still_works(&api, &shop).await;
}

/// While two heavy imports run for one shop (the largest allowed, 50,000 rows in 16 MiB,
/// and a product of 20,000 variants), another shop's storefront and `/healthz` keep
/// answering within 2 s each.
async fn other_shops_answer_during_heavy_imports(db: Db) {
    let server = Server::shared(db);
    let api = server.client();
    let busy = api.provision(&unique("busy"), false).await;
    let quiet = api.provision(&unique("quiet"), false).await;
    api.storefront(&quiet.handle, "/").await.expect(200);

    // The largest import allowed: 50,000 rows (24 products of 2,048 variants and one of
    // 848) in just under 16 MiB.
    let mut largest = HEADER.to_owned();
    let row_bytes = (16 * 1024 * 1024 - HEADER.len()) / 50_000;
    for p in 0..25 {
        let n = if p < 24 { 2048 } else { 50_000 - 24 * 2048 };
        csv_product(&mut largest, &format!("big-{p}"), n, row_bytes);
    }
    assert!(largest.len() <= 16 * 1024 * 1024, "{}", largest.len());
    // One product of 20,000 variants (quadratic work before the cap).
    let mut hostile = HEADER.to_owned();
    csv_product(&mut hostile, "hostile", 20_000, 0);

    let started = Instant::now();
    let heavy = |csv: String| {
        let (api, sk) = (api.clone(), busy.secret.clone());
        tokio::spawn(async move { import(&api, &sk, "?dry_run=true", csv.into_bytes()).await })
    };
    let (first, second) = (heavy(largest), heavy(hostile));
    let mut probes = 0;
    let mut slowest = Duration::ZERO;
    while !(first.is_finished() && second.is_finished()) {
        let t = Instant::now();
        api.send_with(Method::GET, "/healthz", None, Payload::None, &[]).await.expect(200);
        slowest = slowest.max(t.elapsed());
        let t = Instant::now();
        api.storefront(&quiet.handle, "/").await.expect(200);
        slowest = slowest.max(t.elapsed());
        probes += 1;
        assert!(started.elapsed() < Duration::from_secs(300), "the imports never end");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let largest = first.await.expect("the import task").expect(200).json();
    assert_eq!(largest["created"], json!(25), "{largest}");
    assert_eq!(largest["failed"], json!(0), "{largest}");
    let hostile = second.await.expect("the import task").expect(200).json();
    assert_eq!(hostile["failed"], json!(1), "{hostile}");
    assert!(probes > 0);
    assert!(slowest < Duration::from_secs(2), "a probe took {slowest:?} during the imports");
    still_works(&api, &busy).await;
}

/// Draft pages and draft or archived products are 404 to publishable keys, and left out
/// of their lists (collections' manual lists too); secret keys see everything.
async fn drafts_are_hidden_from_publishable_keys(db: Db) {
    let server = Server::shared(db);
    let api = server.client();
    let shop = api.provision(&unique("drafts"), false).await;
    let (sk, pk) = (&shop.secret, &shop.publishable);

    for (handle, draft) in [("shipping", false), ("secret-sale", true)] {
        let page = json!({"handle": handle, "title": handle, "body": "Text.", "draft": draft});
        api.post("/api/v1/pages", sk, page).await.expect(201);
    }
    let mut ids = Vec::new();
    for status in ["active", "draft", "archived"] {
        let mut body = product(&format!("lamp-{status}"), &format!("LAMP-{status}"), "9.00");
        body["status"] = json!(status);
        let made = api.post("/api/v1/products", sk, body).await.expect(201).json();
        ids.push(made["product"]["id"].as_str().expect("an id").to_owned());
    }
    let collection = json!({"handle": "lamps", "title": "Lamps",
        "products": ["lamp-active", "lamp-draft", "lamp-archived"]});
    api.post("/api/v1/collections", sk, collection).await.expect(201);

    // Pages.
    let handles = |v: &Value, key: &str| -> Vec<String> {
        v[key].as_array().expect("a list").iter().map(|p| p["handle"].to_string()).collect()
    };
    let listed = api.get("/api/v1/pages", pk).await.expect(200).json();
    assert_eq!(handles(&listed, "pages"), vec!["\"shipping\""], "{listed}");
    api.get("/api/v1/pages/secret-sale", pk).await.error(404, "not_found", None);
    api.get("/api/v1/pages/shipping", pk).await.expect(200);
    let all = api.get("/api/v1/pages", sk).await.expect(200).json();
    assert_eq!(handles(&all, "pages").len(), 2, "{all}");
    let draft = api.get("/api/v1/pages/secret-sale", sk).await.expect(200).json();
    assert_eq!(draft["draft"], json!(true));

    // Products.
    let listed = api.get("/api/v1/products", pk).await.expect(200).json();
    assert_eq!(handles(&listed, "products"), vec!["\"lamp-active\""], "{listed}");
    api.get(&format!("/api/v1/products/{}", ids[0]), pk).await.expect(200);
    for id in &ids[1..] {
        api.get(&format!("/api/v1/products/{id}"), pk).await.error(404, "not_found", None);
        api.get(&format!("/api/v1/products/{id}"), sk).await.expect(200);
    }
    let all = api.get("/api/v1/products", sk).await.expect(200).json();
    assert_eq!(handles(&all, "products").len(), 3, "{all}");

    // Collections: the manual list shows published products only.
    let public = json!(["lamp-active"]);
    let listed = api.get("/api/v1/collections", pk).await.expect(200).json();
    assert_eq!(listed["collections"][0]["products"], public, "{listed}");
    let one = api.get("/api/v1/collections/lamps", pk).await.expect(200).json();
    assert_eq!(one["collection"]["products"], public, "{one}");
    let full = api.get("/api/v1/collections/lamps", sk).await.expect(200).json();
    assert_eq!(full["collection"]["products"].as_array().map(Vec::len), Some(3), "{full}");

    // The storefront agrees: neither the draft page nor the draft product is published.
    still_works(&api, &shop).await;
    api.storefront(&shop.handle, "/pages/secret-sale/").await.expect(404);
    api.storefront(&shop.handle, "/products/lamp-draft/").await.expect(404);
}
