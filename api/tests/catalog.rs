//! The catalog over HTTP: validation errors in the standard body naming the field,
//! products (create, read, replace, delete) and cursor pagination, image uploads, the
//! Shopify CSV import and the export. The catalog-write → build → storefront loop and the
//! build queue are in `catalog_builds.rs`. Every test runs on SQLite and on PostgreSQL.

mod common;

use common::shop::demo_shop;
use common::{Db, Payload, Server, multipart, product, unique};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;

both!(validation_errors_name_the_field, product_lifecycle, pagination_walks_every_product);
both!(image_uploads, shopify_import, export_builds_as_a_catalog_directory);

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

/// A small PNG, made here.
fn png(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([u8::try_from(x % 256).unwrap_or(0), u8::try_from(y % 256).unwrap_or(0), 90])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).expect("encode a PNG");
    out.into_inner()
}

/// A PNG with a private text chunk of random bytes before its end (`IEND`), so that no
/// other run of the tests has encoded the same bytes into the shared image cache.
fn unique_png(mut png: Vec<u8>) -> Vec<u8> {
    let data = format!("aurelio-test\0{}", common::random_hex(8)).into_bytes();
    let iend = png.len() - 12;
    let mut chunk = u32::try_from(data.len()).expect("small").to_be_bytes().to_vec();
    let typed: Vec<u8> = b"tEXt".iter().chain(&data).copied().collect();
    chunk.extend_from_slice(&typed);
    chunk.extend_from_slice(&crc32(&typed).to_be_bytes());
    png.splice(iend..iend, chunk);
    png
}

/// CRC-32 (IEEE), as PNG chunks carry it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
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
    let bytes = unique_png(png(120, 80));
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
    // The PNG's bytes are new to the shared image cache (a random pixel): encoded here.
    assert_eq!(build["result"]["images_encoded"], json!(1), "{build}");
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
