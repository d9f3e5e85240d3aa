//! Findings of the security review replayed over HTTP: a theme whose custom CSS nests deep
//! enough to overflow the parser's stack, image bombs and upload sizes, the per-shop media
//! quota, an export held whole in memory, styles on Markdown table cells. Each attack gets
//! a clear 4xx in the standard error body, and the shop works afterwards.

mod common;
/// The bomb generator the end-to-end and engine tests use too.
#[path = "../../tests/common/png_bomb.rs"]
mod png_bomb;

use common::{Db, Payload, Server, multipart, product, unique};
use png_bomb::png_bomb;
use reqwest::Method;
use serde_json::{Value, json};

both!(deep_theme_css_is_refused_not_fatal, image_bombs_are_refused_from_their_header);
both!(uploads_over_the_documented_limit_get_a_json_413, media_quota_is_enforced);
both!(export_is_streamed, table_cell_styles_do_not_reach_the_storefront);

/// A theme over `minimal` with custom CSS `css`.
fn theme(css: &str) -> Value {
    json!({ "version": 1, "extends": "minimal", "metadata": { "name": "Mine" }, "css": css })
}

async fn deep_theme_css_is_refused_not_fatal(db: Db) {
    let server = Server::shared(db);
    let api = server.client();
    let shop = api.provision(&unique("css"), false).await;
    let sk = &shop.secret;
    // The review's input: 24 KB of `.a{` overflowed the blocking thread and aborted the
    // whole process.
    for (css, column, limit) in [(".a{".repeat(8_000), 195, 64), ("calc(".repeat(19_000), 45, 8)] {
        let e = api.put("/api/v1/theme", sk, theme(&css)).await;
        let e = e.error(422, "validation_failed", None);
        let message = e["message"].as_str().unwrap_or_default();
        assert!(message.contains(&format!("nesting limit is {limit})")), "{e}");
        assert!(message.contains(&format!("line 1, column {column}")), "{e}");
    }
    assert_eq!(api.get("/api/v1/theme", sk).await.expect(200).json()["theme"], Value::Null);
    // The server is up and the shop takes an ordinary theme and builds it.
    let saved = api.put("/api/v1/theme", sk, theme(".a { .b { color: red; } }")).await;
    let saved = saved.expect(200).json();
    let build = api.wait_built(sk, saved["build_id"].as_str().expect("build_id")).await;
    assert_eq!(build["status"], json!("succeeded"), "{build}");
}

/// This process's resident memory in bytes (the test server runs in it).
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// A PNG of noise (which does not compress): about `3 × width × height` bytes.
fn noise_png(width: u32, height: u32, seed: u32) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    let img = image::RgbImage::from_fn(width, height, |_, _| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let [a, b, c, _] = state.to_le_bytes();
        image::Rgb([a, b, c])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).expect("encode a PNG");
    out.into_inner()
}

/// `POST /api/v1/images` with `bytes` as the file.
async fn upload(api: &common::Client, sk: &str, bytes: &[u8]) -> common::Resp {
    let (ct, body) = multipart("file", "upload.png", "image/png", bytes);
    api.send_with(Method::POST, "/api/v1/images", Some(sk), Payload::Raw(ct, body), &[]).await
}

async fn image_bombs_are_refused_from_their_header(db: Db) {
    let server = Server::shared(db);
    let api = server.client();
    let shop = api.provision(&unique("bomb"), false).await;
    let sk = &shop.secret;
    let small = png_bomb(30, 20);
    let decoded = image::load_from_memory(&small).expect("the bomb recipe makes valid PNGs");
    assert!(matches!(decoded, image::DynamicImage::ImageRgba16(_)));
    // The review's bomb: 7070 × 7070 16-bit RGBA, 400 MB decoded; six at once took the
    // server from 37 MB to 2.48 GB, all answered 201.
    let bomb = png_bomb(7070, 7070);
    let before = rss();
    let answers = futures::future::join_all((0..6).map(|_| upload(&api, sk, &bomb))).await;
    let grown = rss().saturating_sub(before);
    for answer in &answers {
        let e = answer.error(422, "validation_failed", Some("file"));
        assert!(e["message"].as_str().is_some_and(|m| m.contains("40 megapixels")), "{e}");
    }
    assert!(grown < 300 << 20, "the server grew by {} MB", grown >> 20);
    // 16-bit within the pixel limit, over the decoded-size limit.
    let e = upload(&api, sk, &png_bomb(5000, 5000)).await;
    let e = e.error(422, "validation_failed", Some("file"));
    assert!(e["message"].as_str().is_some_and(|m| m.contains("200 MB decoded")), "{e}");
    // Nothing was stored, and an ordinary image goes in.
    let listed = api.get("/api/v1/images", sk).await.expect(200).json();
    assert_eq!(listed["images"], json!([]), "{listed}");
    upload(&api, sk, &small).await.expect(201);
}

async fn uploads_over_the_documented_limit_get_a_json_413(db: Db) {
    let server = Server::shared(db);
    let api = server.client();
    let shop = api.provision(&unique("big"), false).await;
    let sk = &shop.secret;
    let limit = aurelio_api::catalog::images::MAX_BYTES;
    assert_eq!(limit, 20 * 1024 * 1024, "docs/api.md documents 20 MiB");
    // Above axum's default 2 MB body limit, well within the documented one.
    let photo = noise_png(1100, 1000, 7);
    assert!(photo.len() > 3_000_000, "{}", photo.len());
    let stored = upload(&api, sk, &photo).await.expect(201).json();
    assert_eq!(stored["bytes"], json!(photo.len()));
    // One byte over: the file is over, the body within the body limit.
    let mut over = photo.clone();
    over.resize(limit + 1, 0);
    let e = upload(&api, sk, &over).await.error(413, "payload_too_large", Some("file"));
    assert!(e["message"].as_str().is_some_and(|m| m.contains("20 MiB")), "{e}");
    // The body itself over its limit: refused while it is read.
    over.resize(aurelio_api::catalog::images::MAX_BODY_BYTES + 1, 0);
    upload(&api, sk, &over).await.error(413, "payload_too_large", Some("file"));
    let listed = api.get("/api/v1/images", sk).await.expect(200).json();
    assert_eq!(listed["images"].as_array().map(Vec::len), Some(1), "{listed}");
}

async fn media_quota_is_enforced(db: Db) {
    let first = noise_png(40, 40, 1);
    let second = noise_png(40, 40, 2);
    let quota = first.len() + second.len() / 2;
    let server = Server::start(db, |c| c.media_quota_bytes = quota as u64);
    let api = server.client();
    let shop = api.provision(&unique("quota"), false).await;
    let sk = &shop.secret;
    let stored = upload(&api, sk, &first).await.expect(201).json();
    let e = upload(&api, sk, &second).await.error(413, "media_quota_exceeded", Some("file"));
    let message = e["message"].as_str().unwrap_or_default();
    assert!(message.contains(&format!("media quota of {quota} bytes")), "{e}");
    // The same bytes again take no room; the shop goes on working.
    let again = upload(&api, sk, &first).await.expect(201).json();
    assert_eq!(again["path"], stored["path"]);
    let mut body = product("quota-card", "QC-1", "3.00");
    body["images"] = json!([{ "src": stored["path"], "alt": "Noise" }]);
    let created = api.post("/api/v1/products", sk, body).await.expect(201).json();
    api.wait_built(sk, created["build_id"].as_str().expect("build_id")).await;
}

async fn export_is_streamed(db: Db) {
    let server = Server::shared(db);
    let api = server.client();
    let shop = api.provision(&unique("stream"), true).await;
    let export = api.get("/api/v1/export", &shop.secret).await.expect(200);
    assert_eq!(export.header("content-type").as_deref(), Some("application/x-tar"));
    // Written as it is made: no length known up front.
    assert_eq!(export.header("content-length"), None, "the archive was built whole first");
    assert_eq!(export.header("transfer-encoding").as_deref(), Some("chunked"));
    let dir = tempfile::tempdir().expect("a directory");
    tar::Archive::new(std::io::Cursor::new(&export.body)).unpack(dir.path()).expect("a tar");
    let site = dir.path().join(&shop.handle);
    for file in ["store.json", "products.jsonl", "images/logo.png"] {
        assert!(site.join(file).is_file(), "the export has {file}");
    }
    let source = common::repo_path("fixtures/demo-store/images/logo.png");
    assert_eq!(std::fs::read(site.join("images/logo.png")).ok(), std::fs::read(source).ok());
    // Compressed on the way: the compression layer polls the stream once more after its
    // end, which panicked mid-answer (found by schemathesis); the body must end cleanly.
    let gzip = api
        .send_with(
            Method::GET,
            "/api/v1/export",
            Some(&shop.secret),
            Payload::None,
            &[("accept-encoding", "gzip")],
        )
        .await
        .expect(200);
    assert_eq!(gzip.header("content-encoding").as_deref(), Some("gzip"));
    // A complete gzip member ends with the length of what it holds (mod 2^32).
    let tail: [u8; 4] = gzip.body[gzip.body.len() - 4..].try_into().expect("a gzip trailer");
    assert_eq!(u64::from(u32::from_le_bytes(tail)), export.body.len() as u64 % (1 << 32));
}

async fn table_cell_styles_do_not_reach_the_storefront(db: Db) {
    let server = Server::shared(db);
    let api = server.client();
    let shop = api.provision(&unique("cells"), false).await;
    let sk = &shop.secret;
    let body = "<table><tr><td style=\"position:fixed;inset:0;z-index:9999;\
                background:url(https://tracker.example/p.gif)\">win a prize</td></tr></table>\n\n\
                | a | b |\n|:-:|--:|\n| 1 | 2 |\n";
    let page = json!({ "handle": "offer", "title": "Offer", "body": body });
    let saved = api.post("/api/v1/pages", sk, page).await.expect(201).json();
    let build = api.wait_built(sk, saved["build_id"].as_str().expect("build_id")).await;
    assert_eq!(build["status"], json!("succeeded"), "{build}");
    let html = api.storefront(&shop.handle, "/pages/offer/").await.expect(200).text();
    assert!(html.contains("<td>win a prize</td>"), "{html}");
    assert!(!html.contains("position:fixed") && !html.contains("tracker.example"), "{html}");
    assert!(html.contains("<th style=\"text-align: center\">a</th>"), "{html}");
}
