//! The catalog over HTTP: validation errors in the standard body naming the field,
//! products (create, read, replace, delete) and cursor pagination, the catalog-write →
//! build → storefront loop, failed builds, image uploads and the Shopify CSV import.
//! Every test runs on SQLite and on PostgreSQL.

mod common;

use aurelio_api::jobs::{Coalesce, NewJob};
use common::{Db, Payload, Server, Shop, multipart, product, unique};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;

both!(validation_errors_name_the_field, product_lifecycle, pagination_walks_every_product);
both!(price_change_reaches_the_storefront, failed_build_keeps_the_live_storefront);
both!(image_uploads, shopify_import, export_builds_as_a_catalog_directory);
both!(one_queued_build_per_shop, builds_export_the_catalog_as_it_is_now);
both!(a_quiet_shop_builds_at_once);

/// A demo shop for the tests of this file that only read it or change it in their own
/// corner (one product each); provisioned once per server.
async fn demo_shop(server: &'static Server) -> Shop {
    static SHOPS: std::sync::Mutex<Vec<(std::net::SocketAddr, Shop)>> =
        std::sync::Mutex::new(Vec::new());
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _guard = LOCK.lock().await;
    if let Some((_, shop)) =
        SHOPS.lock().expect("shops").iter().find(|(addr, _)| *addr == server.addr)
    {
        return shop.clone();
    }
    let shop = server.client().provision(&unique("cat"), true).await;
    SHOPS.lock().expect("shops").push((server.addr, shop.clone()));
    shop
}

async fn validation_errors_name_the_field(db: Db) {
    let server = Server::shared(db);
    let api = server.client();
    let shop = api.provision(&unique("valid"), false).await;
    let sk = &shop.secret;
    let first = api.post("/api/v1/products", sk, product("taken", "TAKEN-1", "10.00")).await;
    first.expect(201);

    // A price with more decimals than the currency has.
    let r = api.post("/api/v1/products", sk, product("fine", "FINE-1", "19.999")).await;
    let e = r.error(422, "validation_failed", Some("variants[0].price"));
    assert!(e["message"].as_str().is_some_and(|m| m.contains("19.999")), "{e}");
    // A negative integer price (minor units).
    let mut body = product("fine", "FINE-1", "1.00");
    body["variants"][0]["price"] = json!(-5);
    api.post("/api/v1/products", sk, body).await.error(
        422,
        "validation_failed",
        Some("variants[0].price"),
    );
    // An unknown field, with a suggestion.
    let mut body = product("fine", "FINE-1", "1.00");
    body["titel"] = json!("Typo");
    let e = api.post("/api/v1/products", sk, body).await.error(422, "validation_failed", None);
    let message = e["message"].as_str().unwrap_or_default();
    assert!(message.contains("titel"), "the unknown field is named: {e}");
    assert!(message.contains("did you mean") && message.contains("title"), "{e}");
    assert!(e["field"].as_str().is_some_and(|f| f.contains("titel")), "{e}");
    // An unknown field inside a variant.
    let mut body = product("fine", "FINE-1", "1.00");
    body["variants"][0]["prize"] = json!("1.00");
    let e = api.post("/api/v1/products", sk, body).await.error(422, "validation_failed", None);
    assert!(e["field"].as_str().is_some_and(|f| f.starts_with("variants[0]")), "{e}");
    // Missing title; a bad handle.
    let mut body = product("fine", "FINE-1", "1.00");
    body.as_object_mut().expect("object").remove("title");
    api.post("/api/v1/products", sk, body).await.error(422, "validation_failed", Some("title"));
    let body = product("Not A Handle", "FINE-1", "1.00");
    api.post("/api/v1/products", sk, body).await.error(422, "validation_failed", Some("handle"));
    // Taken SKU and handle: 409 naming which.
    let r = api.post("/api/v1/products", sk, product("other", "TAKEN-1", "10.00")).await;
    let e = r.error(409, "conflict", Some("variants[0].sku"));
    assert!(e["message"].as_str().is_some_and(|m| m.contains("TAKEN-1")), "{e}");
    let mut body = product("other", "OTHER-1", "10.00");
    body["variants"]
        .as_array_mut()
        .expect("variants")
        .push(json!({ "sku": "TAKEN-1", "price": "2.00" }));
    body["options"] = json!([{ "name": "Size", "values": ["S", "M"] }]);
    body["variants"][0]["options"] = json!({ "Size": "S" });
    body["variants"][1]["options"] = json!({ "Size": "M" });
    api.post("/api/v1/products", sk, body).await.error(409, "conflict", Some("variants[1].sku"));
    let r = api.post("/api/v1/products", sk, product("taken", "NEW-1", "10.00")).await;
    r.error(409, "conflict", Some("handle"));
    // Not JSON at all; JSON that is not an object.
    let raw = Payload::Raw("application/json".into(), b"{\"handle\": \"x\",".to_vec());
    let r = api.send_with(Method::POST, "/api/v1/products", Some(sk), raw, &[]).await;
    r.error(400, "bad_request", None);
    api.post("/api/v1/products", sk, json!([1, 2])).await.error(422, "validation_failed", None);
    // Variant patches.
    let listed = api.all_products(sk, 50).await;
    assert_eq!(listed.len(), 1, "no failed request created anything: {listed:?}");
    let variant = listed[0]["variants"][0]["id"].as_str().expect("variant id").to_owned();
    let path = format!("/api/v1/variants/{variant}");
    api.patch(&path, sk, json!({ "price": -1 })).await.error(
        422,
        "validation_failed",
        Some("price"),
    );
    api.patch(&path, sk, json!({ "prise": 5 })).await.error(
        422,
        "validation_failed",
        Some("prise"),
    );
    api.patch(&path, sk, json!({ "price": "12.00" })).await.error(
        422,
        "validation_failed",
        Some("price"),
    );
    let r = api.patch(&path, sk, json!({ "price": 1000, "compare_at_price": 500 })).await;
    r.error(422, "validation_failed", None);
    api.patch("/api/v1/variants/var_nope", sk, json!({ "price": 5 })).await.error(
        404,
        "not_found",
        None,
    );
    let after =
        api.get(&format!("/api/v1/products/{}", listed[0]["id"].as_str().expect("id")), sk).await;
    assert_eq!(
        after.expect(200).json()["product"]["variants"][0]["price"],
        json!(1000),
        "unchanged"
    );
    // Pagination parameters.
    api.get("/api/v1/products?limit=0", sk).await.error(422, "validation_failed", Some("limit"));
    api.get("/api/v1/products?limit=251", sk).await.error(422, "validation_failed", Some("limit"));
    api.get("/api/v1/products?cursor=bogus", sk).await.error(
        422,
        "validation_failed",
        Some("cursor"),
    );
    // Documents.
    api.put("/api/v1/categories", sk, json!({ "categories": [{ "title": "No handle" }] }))
        .await
        .error(422, "validation_failed", None);
    let r = api.post("/api/v1/pages", sk, json!({ "handle": "Bad Handle", "title": "X" })).await;
    r.error(422, "validation_failed", Some("handle"));
    let r =
        api.post("/api/v1/pages", sk, json!({ "handle": "ok", "title": "X", "colour": 1 })).await;
    let e = r.error(422, "validation_failed", None);
    assert!(e["message"].as_str().is_some_and(|m| m.contains("colour")), "{e}");
    let theme = Payload::Raw("application/json".into(), b"{not json".to_vec());
    let r = api.send_with(Method::PUT, "/api/v1/theme", Some(sk), theme, &[]).await;
    r.error(422, "validation_failed", None);
    let r = api.put("/api/v1/theme", sk, json!({ "palette": "not a palette" })).await;
    r.error(422, "validation_failed", None);
    assert_eq!(api.get("/api/v1/theme", sk).await.expect(200).json()["theme"], Value::Null);
}

async fn product_lifecycle(db: Db) {
    let server = Server::shared(db);
    let api = server.client();
    let shop = api.provision(&unique("crud"), false).await;
    let sk = &shop.secret;
    let mut body = product("rain-hat", "HAT-1", "19.99");
    body["options"] = json!([{ "name": "Size", "values": ["S", "L"] }]);
    body["variants"] = json!([
        { "sku": "HAT-S", "options": { "Size": "S" }, "price": "19.99", "compare_at_price": "24.50", "inventory": 3 },
        { "sku": "HAT-L", "options": { "Size": "L" }, "price": 2100 },
    ]);
    body["tags"] = json!(["rain"]);
    let created = api.post("/api/v1/products", sk, body).await.expect(201).json();
    let p = &created["product"];
    let id = p["id"].as_str().expect("id").to_owned();
    assert!(id.starts_with("prod_"), "{p}");
    assert_eq!(p["handle"], json!("rain-hat"));
    assert_eq!(p["currency"], json!("EUR"));
    assert_eq!(p["status"], json!("active"));
    assert_eq!(p["variants"][0]["price"], json!(1999), "prices are minor units: {p}");
    assert_eq!(p["variants"][0]["compare_at_price"], json!(2450), "{p}");
    assert_eq!(p["variants"][0]["inventory"], json!(3), "{p}");
    assert_eq!(p["variants"][0]["options"], json!({ "Size": "S" }), "{p}");
    assert_eq!(p["variants"][1]["price"], json!(2100), "an integer price is minor units: {p}");
    assert_eq!(p["variants"][1]["inventory"], Value::Null, "{p}");
    assert_eq!(p["variants"][1]["availability"], json!("in_stock"), "{p}");
    assert_eq!(p["fields"]["tags"], json!(["rain"]), "{p}");
    assert!(p["variants"][0]["id"].is_string() && p["variants"][0]["id"] != p["variants"][1]["id"]);
    let build = created["build_id"].as_str().expect("a write queues a build");
    api.wait_built(sk, build).await;
    let page = api.storefront(&shop.handle, "/products/rain-hat/").await.expect(200).text();
    assert!(page.contains("Test rain-hat"), "the new product is on the storefront");

    // Read it back, with the secret and the publishable key.
    for key in [sk, &shop.publishable] {
        let got = api.get(&format!("/api/v1/products/{id}"), key).await.expect(200).json();
        assert_eq!(got["product"], created["product"], "the same product reads back");
    }

    // Replace it: the body may be the product as read (output members are dropped).
    let mut replacement = created["product"].clone();
    replacement["title"] = json!("Storm Hat");
    replacement["variants"][0]["price"] = json!(1500);
    replacement["variants"].as_array_mut().expect("variants").pop();
    replacement["options"] = json!([{ "name": "Size", "values": ["S"] }]);
    let replaced =
        api.put(&format!("/api/v1/products/{id}"), sk, replacement).await.expect(200).json();
    assert_eq!(replaced["product"]["id"], json!(id));
    assert_eq!(replaced["product"]["title"], json!("Storm Hat"));
    assert_eq!(replaced["product"]["variants"].as_array().map(Vec::len), Some(1));
    assert_eq!(replaced["product"]["variants"][0]["price"], json!(1500));
    let got = api.get(&format!("/api/v1/products/{id}"), sk).await.expect(200).json();
    assert_eq!(got["product"]["title"], json!("Storm Hat"));
    // The removed variant's SKU is free again.
    let other = api.post("/api/v1/products", sk, product("other-hat", "HAT-L", "5.00")).await;
    let other = other.expect(201).json();
    let build = api.wait_built(sk, other["build_id"].as_str().expect("build")).await;
    assert!(build["result"]["pages"].as_u64().is_some_and(|n| n > 0), "{build}");
    let page = api.storefront(&shop.handle, "/products/rain-hat/").await.expect(200).text();
    assert!(page.contains("Storm Hat") && page.contains("15.00"), "the replacement is live");
    let r = api.put("/api/v1/products/prod_nope", sk, product("x", "X-1", "1.00")).await;
    r.error(404, "not_found", None);

    // Delete it: gone from the API and, after the build, from the storefront.
    api.delete(&format!("/api/v1/products/{id}"), sk).await.expect(204);
    api.get(&format!("/api/v1/products/{id}"), sk).await.error(404, "not_found", None);
    api.delete(&format!("/api/v1/products/{id}"), sk).await.error(404, "not_found", None);
    let queued = api.post("/api/v1/builds", sk, json!({})).await.expect(202).json();
    api.wait_built(sk, queued["build_id"].as_str().expect("build_id")).await;
    api.storefront(&shop.handle, "/products/rain-hat/").await.expect(404);
    api.storefront(&shop.handle, "/products/other-hat/").await.expect(200);
    let left = api.all_products(sk, 10).await;
    assert_eq!(left.len(), 1, "{left:?}");
    let builds = api.get("/api/v1/builds?limit=100", sk).await.expect(200).json();
    let builds = builds["builds"].as_array().expect("builds");
    assert!(builds.len() >= 3, "{builds:?}");
    assert!(builds.iter().all(|b| b["status"] != json!("failed")), "{builds:?}");
}

async fn pagination_walks_every_product(db: Db) {
    let server = Server::shared(db);
    let api = server.client();
    let shop = demo_shop(server).await;
    let demo = common::demo_products();
    let expected: Vec<&str> = demo.iter().filter_map(|p| p["handle"].as_str()).collect();
    for limit in [1, 7, 50, 51, 250] {
        let all = api.all_products(&shop.secret, limit).await;
        let handles: Vec<&str> = all.iter().filter_map(|p| p["handle"].as_str()).collect();
        let unique: BTreeSet<&str> = handles.iter().copied().collect();
        assert_eq!(unique.len(), handles.len(), "limit {limit}: no duplicates");
        // Demo products first, in creation order, then any a test of this file added.
        assert_eq!(handles[..expected.len()], expected[..], "limit {limit}");
    }
    // The publishable key's pages hold active products only, and still all of them.
    let public = api.all_products(&shop.publishable, 4).await;
    let active = demo.iter().filter(|p| p["status"].as_str().is_none_or(|s| s == "active")).count();
    assert!(public.len() >= active, "every active product is public");
    assert!(public.iter().all(|p| p["status"] == json!("active")));
    let page = api.get("/api/v1/products?limit=2", &shop.secret).await.expect(200).json();
    assert_eq!(page["products"].as_array().map(Vec::len), Some(2));
    let next = page["next_cursor"].as_str().expect("a cursor");
    let second = api.get(&format!("/api/v1/products?limit=2&cursor={next}"), &shop.secret).await;
    let second = second.expect(200).json();
    assert_eq!(second["products"][0]["handle"], json!(expected[2]));
}

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

    let started = std::time::Instant::now();
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
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
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

/// A small PNG, made here.
fn png(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([u8::try_from(x % 256).unwrap_or(0), u8::try_from(y % 256).unwrap_or(0), 90])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).expect("encode a PNG");
    out.into_inner()
}

/// A JPEG, made here.
fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([
            u8::try_from((x * 7) % 256).unwrap_or(0),
            u8::try_from((y * 3) % 256).unwrap_or(0),
            40,
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).expect("encode a JPEG");
    out.into_inner()
}

async fn image_uploads(db: Db) {
    let server = Server::shared(db);
    let api = server.client();
    let shop = api.provision(&unique("img"), false).await;
    let sk = &shop.secret;
    let upload = |name: &str, content_type: &str, bytes: &[u8]| {
        let (ct, body) = multipart("file", name, content_type, bytes);
        let api = api.clone();
        let sk = sk.clone();
        async move {
            api.send_with(Method::POST, "/api/v1/images", Some(&sk), Payload::Raw(ct, body), &[])
                .await
        }
    };
    let bytes = png(120, 80);
    let first = upload("swatch.png", "image/png", &bytes).await.expect(201).json();
    let path = first["path"].as_str().expect("path").to_owned();
    assert!(path.starts_with("images/") && path.ends_with(".png"), "{first}");
    assert_eq!(first["content_type"], json!("image/png"));
    assert_eq!((first["width"].clone(), first["height"].clone()), (json!(120), json!(80)));
    assert_eq!(first["bytes"], json!(bytes.len()));
    // The same bytes are the same image.
    let again = upload("other-name.png", "image/png", &bytes).await.expect(201).json();
    assert_eq!(again["path"], json!(path));
    let jpg = upload("photo.jpg", "image/jpeg", &jpeg(64, 64)).await.expect(201).json();
    assert!(jpg["path"].as_str().is_some_and(|p| p.ends_with(".jpg")), "{jpg}");
    let listed = api.get("/api/v1/images", sk).await.expect(200).json();
    let paths: Vec<&str> = listed["images"]
        .as_array()
        .expect("images")
        .iter()
        .filter_map(|i| i["path"].as_str())
        .collect();
    assert_eq!(paths.len(), 2, "{listed}");
    assert!(paths.contains(&path.as_str()));

    // Not images: named as the `file` field's problem.
    let e = upload("notes.txt", "text/plain", b"just some text, not an image").await;
    e.error(422, "validation_failed", Some("file"));
    let e = upload("fake.png", "image/png", b"\x89PNG\r\n\x1a\nnot really").await;
    e.error(422, "validation_failed", Some("file"));
    let full = jpeg(256, 256);
    let truncated = &full[..full.len() / 2];
    let e = upload("cut.jpg", "image/jpeg", truncated).await;
    e.error(422, "validation_failed", Some("file"));
    let (ct, body) = multipart("picture", "swatch.png", "image/png", &bytes);
    let r =
        api.send_with(Method::POST, "/api/v1/images", Some(sk), Payload::Raw(ct, body), &[]).await;
    r.error(422, "validation_failed", Some("file"));
    let listed = api.get("/api/v1/images", sk).await.expect(200).json();
    assert_eq!(listed["images"].as_array().map(Vec::len), Some(2), "nothing bad was stored");
    // A viewer cannot upload.
    let viewer = api.post("/api/v1/keys", sk, json!({ "role": "viewer" })).await.expect(201).json();
    let (ct, body) = multipart("file", "swatch.png", "image/png", &bytes);
    let r = api
        .send_with(
            Method::POST,
            "/api/v1/images",
            viewer["key"].as_str(),
            Payload::Raw(ct, body),
            &[],
        )
        .await;
    r.error(403, "forbidden", None);

    // An uploaded image is used by a product and reaches the storefront.
    let mut body = product("swatch-card", "SW-1", "3.00");
    body["images"] = json!([{ "src": path, "alt": "A swatch" }]);
    let created = api.post("/api/v1/products", sk, body).await.expect(201).json();
    let build = api.wait_built(sk, created["build_id"].as_str().expect("build")).await;
    assert!(build["result"]["images_encoded"].as_u64().is_some(), "{build}");
    let page = api.storefront(&shop.handle, "/products/swatch-card/").await.expect(200).text();
    let tag = page
        .split("<img")
        .skip(1)
        .find(|t| t.contains("alt=\"A swatch\""))
        .unwrap_or_else(|| panic!("the product page shows the image"));
    let img = tag.split("src=\"").nth(1).and_then(|s| s.split('"').next()).expect("src");
    let img_path = img.find("/images/").map(|i| &img[i..]).expect("an image path");
    let served = api.storefront(&shop.handle, img_path).await.expect(200);
    assert!(served.header("content-type").is_some_and(|t| t.starts_with("image/")), "{img_path}");
}

async fn shopify_import(db: Db) {
    let server = Server::shared(db);
    let api = server.client();
    let shop = api.provision(&unique("shopify"), false).await;
    let sk = &shop.secret;
    let csv = std::fs::read(common::repo_path("fixtures/shopify/products.csv")).expect("the CSV");
    let text = String::from_utf8(csv.clone()).expect("UTF-8");
    let import = |query: &'static str, body: Vec<u8>| {
        let api = api.clone();
        let sk = sk.clone();
        async move {
            let path = format!("/api/v1/import/shopify{query}");
            api.send_with(
                Method::POST,
                &path,
                Some(&sk),
                Payload::Raw("text/csv".into(), body),
                &[],
            )
            .await
        }
    };

    // A dry run checks and changes nothing.
    let dry = import("?dry_run=true", csv.clone()).await.expect(200).json();
    assert_eq!(dry["created"], json!(4), "{dry}");
    assert_eq!(dry["failed"], json!(1), "{dry}");
    assert!(dry.get("build_id").is_none(), "{dry}");
    assert!(api.all_products(sk, 50).await.is_empty(), "a dry run changes nothing");

    let report = import("", csv.clone()).await.expect(200).json();
    assert_eq!(report["created"], json!(4), "{report}");
    assert_eq!(report["updated"], json!(0), "{report}");
    assert_eq!(report["failed"], json!(1), "{report}");
    // The bad price is reported at its CSV line (the header is line 1) and field.
    let bad_line =
        1 + text.lines().skip(1).position(|l| l.contains("12,5O")).expect("the bad row") + 1;
    let errors = report["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{report}");
    assert_eq!(errors[0]["row"], json!(bad_line), "{report}");
    assert_eq!(errors[0]["handle"], json!("enamel-mug"), "{report}");
    assert_eq!(errors[0]["field"], json!("variants[1].price"), "{report}");
    assert!(errors[0]["message"].as_str().is_some_and(|m| m.contains("12,5O")), "{report}");
    // Image URLs are listed, not fetched.
    let warnings = report["warnings"].as_array().expect("warnings");
    assert!(warnings.len() >= 4, "{report}");
    assert!(warnings.iter().all(|w| w["field"] == json!("Image Src")), "{report}");

    let products = api.all_products(sk, 50).await;
    let by_handle = |h: &str| {
        products.iter().find(|p| p["handle"] == json!(h)).unwrap_or_else(|| panic!("{h} imported"))
    };
    assert_eq!(products.len(), 4);
    assert!(
        !products.iter().any(|p| p["handle"] == json!("enamel-mug")),
        "the bad product is skipped"
    );
    let tee = by_handle("merino-crew-tee");
    assert_eq!(tee["title"], json!("Merino Crew Tee"));
    assert_eq!(tee["variants"].as_array().map(Vec::len), Some(4), "{tee}");
    assert_eq!(tee["variants"][0]["sku"], json!("MCT-S-BLK"));
    assert_eq!(tee["variants"][0]["price"], json!(4500));
    assert_eq!(tee["variants"][0]["compare_at_price"], json!(5500));
    assert_eq!(tee["variants"][0]["inventory"], json!(12));
    assert_eq!(tee["variants"][3]["options"], json!({ "Size": "M", "Color": "Navy" }), "{tee}");
    assert_eq!(
        tee["fields"]["options"],
        json!([{ "name": "Size", "values": ["S", "M"] }, { "name": "Color", "values": ["Black", "Navy"] }]),
        "{tee}"
    );
    assert_eq!(tee["fields"]["vendor"], json!("Northwind"), "{tee}");
    assert_eq!(tee["fields"]["tags"], json!(["merino", "base layer"]), "{tee}");
    let tote = by_handle("canvas-tote");
    assert_eq!(tote["variants"].as_array().map(Vec::len), Some(1));
    assert!(tote["fields"].get("options").is_none(), "Default Title is no option: {tote}");
    assert_eq!(tote["variants"][0]["price"], json!(2900));
    let beanie = by_handle("ribbed-beanie");
    assert_eq!(beanie["variants"].as_array().map(Vec::len), Some(3));
    assert!(
        beanie["fields"]["description"].as_str().is_some_and(|d| d.contains("\"chunky\"")),
        "{beanie}"
    );
    assert_eq!(by_handle("wool-socks")["status"], json!("draft"));

    let build = api.wait_built(sk, report["build_id"].as_str().expect("a build")).await;
    assert_eq!(build["status"], json!("succeeded"));
    let page = api.storefront(&shop.handle, "/products/merino-crew-tee/").await.expect(200).text();
    assert!(page.contains("Merino Crew Tee"));
    api.storefront(&shop.handle, "/products/wool-socks/").await.expect(404);

    // Importing again replaces by handle.
    let again = import("", csv).await.expect(200).json();
    assert_eq!(
        (again["created"].clone(), again["updated"].clone()),
        (json!(0), json!(4)),
        "{again}"
    );
    assert_eq!(api.all_products(sk, 50).await.len(), 4);
    // Not a Shopify export at all.
    let r = import("", b"name,price\nmug,12.00\n".to_vec()).await;
    r.error(422, "import_failed", Some("Handle"));
}

async fn export_builds_as_a_catalog_directory(db: Db) {
    let server = Server::shared(db);
    let api = server.client();
    let shop = demo_shop(server).await;
    let export = api.get("/api/v1/export", &shop.secret).await.expect(200);
    assert_eq!(export.header("content-type").as_deref(), Some("application/x-tar"));
    let disposition = export.header("content-disposition").expect("a file name");
    assert!(disposition.contains(&format!("{}.tar", shop.handle)), "{disposition}");
    let dir = tempfile::tempdir().expect("a directory");
    tar::Archive::new(std::io::Cursor::new(export.body)).unpack(dir.path()).expect("a tar archive");
    let site = dir.path().join(&shop.handle);
    for file in ["store.json", "products.jsonl", "categories.json", "collections.json"] {
        assert!(site.join(file).is_file(), "the export has {file}");
    }
    let pages = std::fs::read_dir(site.join("pages")).expect("pages/").count();
    assert_eq!(
        pages,
        std::fs::read_dir(common::repo_path("fixtures/demo-store/pages"))
            .expect("demo pages")
            .count()
    );
    let images = std::fs::read_dir(site.join("images")).expect("images/").count();
    assert!(images >= 10, "the images are exported: {images}");
    let store: Value =
        serde_json::from_slice(&std::fs::read(site.join("store.json")).expect("store.json"))
            .expect("JSON");
    assert_eq!(store["handle"], json!(shop.handle));
    // The same products as the API, one per line, in the catalog format (decimal prices).
    let lines: Vec<Value> = std::fs::read_to_string(site.join("products.jsonl"))
        .expect("products.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let listed = api.all_products(&shop.secret, 250).await;
    let handles = |v: &[Value]| {
        v.iter().filter_map(|p| p["handle"].as_str().map(str::to_owned)).collect::<Vec<_>>()
    };
    assert_eq!(handles(&lines), handles(&listed));
    assert!(lines.iter().all(|l| l.get("id").is_none() && l["variants"][0]["price"].is_string()));

    // It builds, as `aurelio build --site` builds it.
    let out = dir.path().join("site");
    let opts = aurelio_engine::BuildOptions {
        site: site.clone(),
        out: out.clone(),
        base_url: None,
        theme: None,
        clean: true,
        cache_dir: Some(server.data_dir.join("cache")),
    };
    let report =
        tokio::task::spawn_blocking(move || aurelio_engine::build(&opts, &aurelio_engine::Silent))
            .await
            .expect("the build ran")
            .unwrap_or_else(|e| panic!("the export does not build: {e}"));
    assert!(report.pages > listed.len(), "{} pages", report.pages);
    for p in listed.iter().filter(|p| p["status"] == json!("active")) {
        let page =
            out.join("products").join(p["handle"].as_str().expect("handle")).join("index.html");
        assert!(page.is_file(), "{} was built", page.display());
    }
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
    let debounce = std::time::Duration::from_millis(1500);
    let server = Server::start(db, |c| c.build_debounce = debounce);
    let api = server.client();
    let shop = api.provision(&unique("quiet"), false).await;
    std::thread::sleep(debounce); // since the provisioning build
    let waited = |id: String| {
        let registry = server.platform.registry.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT run_after - created_at FROM jobs WHERE id = $1")
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
    let at_once = waited(first.clone()).await;
    assert!(at_once <= 0, "the first write builds at once, not {at_once} ms after");
    let second = write(1).await;
    assert_ne!(first, second);
    let wait = i64::try_from(debounce.as_millis()).expect("ms");
    let later = waited(second.clone()).await;
    assert!(later > wait - 100, "the next one waits the debounce, not {later} ms");
    api.wait_built(&shop.secret, &first).await;
    api.wait_built(&shop.secret, &second).await;
}
