//! Product feeds over the API, on SQLite and PostgreSQL: the published feeds with ETag,
//! 304 and gzip, identical to the storefront's; the generation log; channels switched off
//! and products excluded through the store settings.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Db, Server, unique};
use serde_json::{Value, json};

both!(feeds_follow_the_catalog);

async fn feeds_follow_the_catalog(db: Db) {
    let server = Server::shared(db);
    let c = server.client();
    let shop = c.provision(&unique("feeds"), true).await;
    let list = c.get("/api/v1/feeds", &shop.secret).await.expect(200).json();
    let google = list["feeds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "feeds/google.xml")
        .unwrap()
        .clone();
    assert_eq!(google["published"], json!(true), "{list}");
    let items = google["items"].as_u64().unwrap();
    assert!(items > 50, "one item per variant of the demo store: {google}");
    assert!(google["generated_at"].as_str().unwrap().ends_with('Z'));
    assert!(google["url"].as_str().unwrap().ends_with("/feeds/google.xml"));

    // The feed over the API is the storefront's, byte for byte, with an ETag.
    let feed = c.get("/api/v1/feeds/google", &shop.publishable).await.expect(200);
    assert!(feed.header("content-type").unwrap().contains("xml"), "{:?}", feed.headers);
    let etag = feed.header("etag").expect("an ETag");
    let public = c.storefront(&shop.handle, "/feeds/google.xml").await.expect(200);
    assert_eq!(feed.body, public.body);
    assert_eq!(feed.text().matches("<item>").count() as u64, items);
    let again = c
        .send_with(
            reqwest::Method::GET,
            "/api/v1/feeds/google",
            Some(&shop.publishable),
            common::Payload::None,
            &[("If-None-Match", &etag)],
        )
        .await;
    assert_eq!(again.status, 304);
    let gz = c
        .send_with(
            reqwest::Method::GET,
            "/api/v1/feeds/meta",
            Some(&shop.publishable),
            common::Payload::None,
            &[("Accept-Encoding", "gzip")],
        )
        .await
        .expect(200);
    assert_eq!(gz.header("content-encoding").as_deref(), Some("gzip"));
    c.get("/api/v1/feeds/tiktok?format=json", &shop.publishable).await.expect(200).json();
    c.get("/api/v1/feeds/tiktok?format=pdf", &shop.publishable).await.error(
        422,
        "validation_failed",
        Some("format"),
    );
    c.get("/api/v1/feeds/amazon", &shop.publishable).await.error(404, "not_found", None);

    // Switch Meta off and exclude a product: the next build follows.
    let mut store: Value = c.get("/api/v1/store", &shop.secret).await.expect(200).json();
    let products = c.get("/api/v1/products?limit=1", &shop.secret).await.expect(200).json();
    let handle = products["products"][0]["handle"].as_str().unwrap().to_owned();
    let variants = products["products"][0]["variants"].as_array().unwrap().len() as u64;
    store["feeds"] = json!({"channels": ["google", "tiktok"], "exclude": [handle]});
    let saved = c.put("/api/v1/store", &shop.secret, store).await.expect(200).json();
    c.wait_built(&shop.secret, saved["build_id"].as_str().unwrap()).await;
    let e = c.get("/api/v1/feeds/meta", &shop.publishable).await.error(
        404,
        "not_found",
        Some("channel"),
    );
    assert!(e["message"].as_str().unwrap().contains("feeds.channels"), "{e}");
    let list = c.get("/api/v1/feeds", &shop.secret).await.expect(200).json();
    let google = list["feeds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "feeds/google.xml")
        .unwrap()
        .clone();
    assert_eq!(google["excluded"], json!(1), "{google}");
    assert_eq!(google["items"].as_u64().unwrap(), items - variants, "{google}");
    let meta = list["feeds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "feeds/meta.csv")
        .unwrap()
        .clone();
    assert_eq!(meta["published"], json!(false));
    let feed = c.get("/api/v1/feeds/google", &shop.publishable).await.expect(200);
    assert_ne!(feed.header("etag").unwrap(), etag, "a new feed, a new ETag");
    assert!(!feed.text().contains(&format!("/products/{handle}/")), "the excluded product is gone");
    // Another shop's key sees its own feeds only.
    let other = c.provision(&unique("other"), false).await;
    let theirs = c.get("/api/v1/feeds", &other.secret).await.expect(200).json();
    assert!(
        theirs["feeds"].as_array().unwrap().iter().all(|f| f["items"].as_u64().unwrap_or(0) == 0),
        "{theirs}"
    );
}
