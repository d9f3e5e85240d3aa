//! Tenant isolation over every route, and the completeness of the OpenAPI document.
//!
//! Isolation: shop A gets one of everything (product, variant, build, collection, page,
//! key, cart, order, discount, webhook endpoint, domain). Then every shop route of the
//! OpenAPI document is called with shop B's keys and A's ids: each must answer 404 (never
//! 2xx, never 403), lists must show nothing of A, and A's data must be unchanged after.
//! A route with a path parameter this test cannot fill fails the test: add an id of A for
//! it here.
//!
//! Completeness: the document is OpenAPI 3.1, every route annotated in the code is in it
//! (and nothing else), the routes of the issue are there, no API route is added outside
//! it, and every documented route is answered by a handler (not the router's fallback).

mod common;

use common::{ADMIN, Client, Db, Payload, Server, Shop, product, unique};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

both!(a_key_of_one_shop_never_reaches_another, openapi_document_is_complete);

/// Everything of shop A a route can name.
#[derive(Debug, Default)]
struct Ids(BTreeMap<&'static str, String>);

impl Ids {
    fn get(&self, name: &str) -> &str {
        self.0.get(name).map_or_else(|| panic!("no id of A for `{name}`"), String::as_str)
    }
}

/// The value of A for a path parameter, by the collection the parameter follows.
fn fill(path: &str, ids: &Ids) -> String {
    let segments: Vec<&str> = path.split('/').collect();
    let mut out = Vec::new();
    for (i, seg) in segments.iter().enumerate() {
        let Some(param) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
            out.push((*seg).to_owned());
            continue;
        };
        let parent = segments.get(i.wrapping_sub(1)).copied().unwrap_or_default();
        if let Some(value) = vocabulary(parent, param) {
            out.push(value.to_owned());
            continue;
        }
        let name = match (parent, param) {
            ("products", "id") => "product",
            ("variants", "id") | ("lines", "variant_id") => "variant",
            ("builds", "id") | ("jobs", "id") => "build",
            ("keys", "id") => "key",
            ("collections", "handle") => "collection",
            ("pages", "handle") => "page",
            ("orders", "id") => "order",
            ("carts", "token") if path.ends_with("/order") => "ordered_cart",
            ("carts", "token") => "cart",
            ("discounts", "code") => "discount",
            ("webhooks", "id") => "webhook",
            ("domains", "hostname") => "domain",
            ("tenants", "id") | ("webhook", "shop_id") => "shop",
            _ => panic!(
                "{path}: the isolation test has no id of shop A for `{{{param}}}` after \
                 `{parent}`: add one to api/tests/isolation.rs"
            ),
        };
        out.push(ids.get(name).to_owned());
    }
    out.join("/")
}

/// Path parameters that name no thing of a shop but a fixed word (a feed's channel): a
/// route with only these reads the key's own shop, like a list.
fn vocabulary(parent: &str, param: &str) -> Option<&'static str> {
    match (parent, param) {
        ("feeds", "channel") => Some("google"),
        _ => None,
    }
}

/// Whether a route names a thing of a shop in its path.
fn names_a_thing(template: &str) -> bool {
    let segments: Vec<&str> = template.split('/').collect();
    segments.iter().enumerate().any(|(i, seg)| {
        seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')).is_some_and(|param| {
            vocabulary(segments.get(i.wrapping_sub(1)).copied().unwrap_or_default(), param)
                .is_none()
        })
    })
}

/// A valid body for each route, naming B's own things (`own`), so that only the ids in
/// the path are A's and the answer is about them.
fn body_for(method: &str, template: &str, own: &Ids) -> Value {
    let ids = own;
    let fresh = unique("b");
    match (method, template) {
        ("put", "/api/v1/products/{id}") => product(&fresh, &fresh.to_uppercase(), "1.00"),
        ("patch", "/api/v1/variants/{id}") => json!({ "price": 1 }),
        ("put", "/api/v1/pages/{handle}") => json!({ "handle": "x", "title": "Taken over" }),
        ("put", "/api/v1/collections/{handle}") => {
            json!({ "handle": ids.get("collection"), "title": "Taken over", "products": [] })
        }
        ("patch", "/api/v1/carts/{token}") => json!({ "country": "IE" }),
        ("post", "/api/v1/carts/{token}/lines") => {
            json!({ "variant_id": ids.get("variant"), "quantity": 1 })
        }
        ("patch", "/api/v1/carts/{token}/lines/{variant_id}") => json!({ "quantity": 3 }),
        ("post", "/api/v1/carts/{token}/discounts") => json!({ "code": ids.get("discount") }),
        ("post", "/api/v1/carts/{token}/checkout") => {
            json!({ "email": "eve@example.com", "shipping_address": address() })
        }
        ("post", "/api/v1/orders/{id}/refund") => json!({ "amount": 1 }),
        _ => json!({}),
    }
}

fn address() -> Value {
    json!({ "name": "Ada", "line1": "1 Quay Street", "city": "Galway", "postal_code": "H91", "country": "IE" })
}

/// The shop routes of the document: (method, path, whether a publishable key may call it).
fn shop_routes(doc: &Value) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("a path item") {
            let schemes: BTreeSet<String> = op["security"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_object)
                .flat_map(|o| o.keys().cloned())
                .collect();
            if schemes.contains("secret_key") || schemes.contains("publishable_key") {
                out.push((method.clone(), path.clone(), schemes.contains("publishable_key")));
            }
        }
    }
    out
}

async fn call(
    api: &Client,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Value,
) -> common::Resp {
    let method: Method = method.to_uppercase().parse().expect("a method");
    let payload = if method == Method::GET || method == Method::DELETE {
        Payload::None
    } else {
        Payload::Json(body)
    };
    let idem = unique("idem");
    api.send_with(method, path, key, payload, &[("idempotency-key", idem.as_str())]).await
}

/// Makes shop A's things; their ids.
async fn populate(api: &Client, shop: &Shop) -> Ids {
    let sk = &shop.secret;
    let mut ids = Ids::default();
    ids.0.insert("shop", shop.id.clone());
    let mut body = product("a-only-parka", "A-ONLY-PARKA", "120.00");
    body["variants"][0]["inventory"] = json!(50);
    let made = api.post("/api/v1/products", sk, body).await.expect(201).json();
    ids.0.insert("product", made["product"]["id"].as_str().expect("id").to_owned());
    ids.0.insert("variant", made["product"]["variants"][0]["id"].as_str().expect("id").to_owned());
    let build = made["build_id"].as_str().expect("build").to_owned();
    api.wait_built(sk, &build).await;
    ids.0.insert("build", build);
    let collection =
        json!({ "handle": "a-only-picks", "title": "A picks", "products": ["a-only-parka"] });
    api.post("/api/v1/collections", sk, collection).await.expect(201);
    ids.0.insert("collection", "a-only-picks".into());
    let page = json!({ "handle": "a-only-story", "title": "Our story", "body": "Only A." });
    api.post("/api/v1/pages", sk, page).await.expect(201);
    ids.0.insert("page", "a-only-story".into());
    let key = api.post("/api/v1/keys", sk, json!({ "role": "staff", "label": "a" })).await;
    ids.0.insert("key", key.expect(201).json()["id"].as_str().expect("id").to_owned());
    let settings = json!({
        "shipping_zones": [{ "name": "EU", "countries": ["IE"], "rates": [{ "id": "std", "name": "Standard", "amount": 500 }] }],
        "tax_rates": [{ "country": "IE", "rate_bp": 2300 }],
        "payment_providers": ["manual"],
    });
    api.put("/api/v1/settings/checkout", sk, settings).await.expect(200);
    let discount = json!({ "code": "AONLY10", "kind": "percentage", "value": 10 });
    api.post("/api/v1/discounts", sk, discount).await.expect(201);
    ids.0.insert("discount", "AONLY10".into());
    let webhook = json!({ "url": "http://127.0.0.1:9/a-only", "events": ["order.created"] });
    let webhook = api.post("/api/v1/webhooks", sk, webhook).await.expect(201).json();
    let webhook_id = webhook["id"].as_str().or_else(|| webhook["endpoint"]["id"].as_str());
    ids.0.insert("webhook", webhook_id.expect("a webhook id").to_owned());
    let hostname = format!("www.{}.ie", unique("aonly"));
    api.post("/api/v1/domains", sk, json!({ "hostname": hostname })).await.expect(201);
    ids.0.insert("domain", hostname);
    // A cart that became an order, and one still open.
    let pk = &shop.publishable;
    let line = json!({ "lines": [{ "variant_id": ids.get("variant"), "quantity": 2 }] });
    let cart = api.post("/api/v1/carts", pk, line.clone()).await.expect(201).json();
    let ordered = cart["cart"]["token"].as_str().expect("token").to_owned();
    let order = call(
        api,
        "post",
        &format!("/api/v1/carts/{ordered}/checkout"),
        Some(pk),
        json!({ "email": "ada@example.com", "shipping_address": address() }),
    )
    .await
    .expect(201)
    .json();
    ids.0.insert("order", order["order"]["id"].as_str().expect("order id").to_owned());
    ids.0.insert("ordered_cart", ordered);
    let open = api.post("/api/v1/carts", pk, line).await.expect(201).json();
    ids.0.insert("cart", open["cart"]["token"].as_str().expect("token").to_owned());
    ids
}

/// B's own things for request bodies: B has data of its own, so "nothing found" is not
/// just an empty shop, and bodies name things that exist in B.
async fn b_things(api: &Client, b: &Shop) -> Ids {
    let mut ids = Ids::default();
    let made = api
        .post("/api/v1/products", &b.secret, product("b-only-boot", "B-ONLY-BOOT", "9.00"))
        .await;
    let made = made.expect(201).json();
    ids.0.insert("variant", made["product"]["variants"][0]["id"].as_str().expect("id").to_owned());
    ids.0.insert("collection", "b-only-picks".into());
    let discount = json!({ "code": "BONLY5", "kind": "percentage", "value": 5 });
    api.post("/api/v1/discounts", &b.secret, discount).await.expect(201);
    ids.0.insert("discount", "BONLY5".into());
    ids
}

/// What A's key reads of everything A has (to compare before and after).
async fn snapshot(api: &Client, shop: &Shop, ids: &Ids) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let reads = [
        format!("/api/v1/products/{}", ids.get("product")),
        "/api/v1/products".to_owned(),
        format!("/api/v1/collections/{}", ids.get("collection")),
        format!("/api/v1/pages/{}", ids.get("page")),
        format!("/api/v1/orders/{}", ids.get("order")),
        format!("/api/v1/discounts/{}", ids.get("discount")),
        format!("/api/v1/domains/{}", ids.get("domain")),
        format!("/api/v1/builds/{}", ids.get("build")),
        "/api/v1/keys".to_owned(),
        "/api/v1/webhooks".to_owned(),
        "/api/v1/store".to_owned(),
        "/api/v1/categories".to_owned(),
        "/api/v1/images".to_owned(),
        "/api/v1/settings/checkout".to_owned(),
        "/api/v1/theme".to_owned(),
    ];
    for path in reads {
        let mut v = api.get(&path, &shop.secret).await.expect(200).json();
        // Domain checks run in the background and stamp their time.
        if path.starts_with("/api/v1/domains/") {
            v = json!({ "hostname": v["hostname"], "shop": v["shop_id"] });
        }
        out.insert(path, v);
    }
    let cart = api.get(&format!("/api/v1/carts/{}", ids.get("cart")), &shop.publishable).await;
    out.insert("cart".into(), cart.expect(200).json());
    out
}

async fn a_key_of_one_shop_never_reaches_another(db: Db) {
    let server = Server::shared(db);
    let api = server.client();
    let a = api.provision(&unique("shopa"), false).await;
    let b = api.provision(&unique("shopb"), false).await;
    let ids = populate(&api, &a).await;
    let b_ids = b_things(&api, &b).await;
    let before = snapshot(&api, &a, &ids).await;

    let doc = api.send_with(Method::GET, "/api/v1/openapi.json", None, Payload::None, &[]).await;
    let routes = shop_routes(&doc.expect(200).json());
    assert!(routes.len() >= 40, "the document lists the shop routes: {routes:?}");
    let secrets: Vec<&str> =
        ids.0.iter().filter(|(k, _)| **k != "shop").map(|(_, v)| v.as_str()).collect();
    let mut checked = 0;
    for (method, template, publishable) in &routes {
        if !names_a_thing(template) {
            // No id to name: lists answer with B's own data only.
            if method == "get" && !template.ends_with("/export") {
                let r = call(&api, method, &fill(template, &ids), Some(&b.secret), json!({})).await;
                assert!(r.status < 500, "{} answered {}: {}", r.request, r.status, r.text());
                let text = r.text();
                for secret in &secrets {
                    assert!(!text.contains(secret), "{} shows A's `{secret}`: {text}", r.request);
                }
            }
            continue;
        }
        let path = fill(template, &ids);
        let mut keys = vec![b.secret.as_str()];
        if *publishable {
            keys.push(b.publishable.as_str());
        }
        for key in keys {
            let r = call(&api, method, &path, Some(key), body_for(method, template, &b_ids)).await;
            assert_eq!(
                r.status,
                404,
                "{method} {template} with B's {} key and A's ids must be 404: {} {}",
                &key[..3],
                r.status,
                r.text()
            );
            r.error(404, "not_found", None);
            checked += 1;
        }
        // A's own key finds it (so the ids are real).
        if method == "get" {
            let key = if *publishable && template.contains("/carts/") {
                &a.publishable
            } else {
                &a.secret
            };
            let own = call(&api, method, &path, Some(key), json!({})).await;
            assert!(
                own.status == 200,
                "{method} {path} with A's key: {} {}",
                own.status,
                own.text()
            );
        }
    }
    assert!(checked >= 30, "{checked} routes with ids checked");
    // The export of B holds nothing of A.
    let export = api.get("/api/v1/export", &b.secret).await.expect(200);
    let tar = String::from_utf8_lossy(&export.body).into_owned();
    assert!(tar.contains("b-only-boot"), "B's export holds B's products");
    for secret in &secrets {
        assert!(!tar.contains(secret), "B's export holds A's `{secret}`");
    }
    let after = snapshot(&api, &a, &ids).await;
    for (path, value) in &before {
        assert_eq!(Some(value), after.get(path), "{path} of A changed");
    }
    // And the storefronts: B's host never serves A's pages.
    api.storefront(&a.handle, "/products/a-only-parka/").await.expect(200);
    api.storefront(&b.handle, "/products/a-only-parka/").await.expect(404);
}

/// Every `#[utoipa::path(method, path = "...")]` in the API's source: (method, path).
fn annotated_routes() -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    let mut stack = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("the source directory").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("a source file");
            for (i, _) in text.match_indices("#[utoipa::path(") {
                let rest = &text[i + "#[utoipa::path(".len()..];
                let method = rest.split(',').next().unwrap_or_default().trim().to_owned();
                let route = rest
                    .split("path = \"")
                    .nth(1)
                    .and_then(|s| s.split('"').next())
                    .unwrap_or_default()
                    .to_owned();
                out.insert((method, route));
            }
            // Routes added beside the document (outside tests) would be missing from it.
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for (i, _) in code.match_indices(".route(\"/api") {
                let route = code[i + 8..].split('"').next().unwrap_or_default();
                assert!(
                    ["/api/v1/openapi.json", "/api/{*rest}"].contains(&route),
                    "{}: `{route}` is routed outside the OpenAPI document",
                    path.display()
                );
            }
        }
    }
    out
}

async fn openapi_document_is_complete(db: Db) {
    let server = Server::shared(db);
    let api = server.client();
    let doc = api.send_with(Method::GET, "/api/v1/openapi.json", None, Payload::None, &[]).await;
    assert!(doc.header("content-type").is_some_and(|t| t.contains("json")));
    let doc = doc.expect(200).json();
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1.")), "{}", doc["openapi"]);
    assert!(doc["info"]["title"].is_string());
    let schemes = doc["components"]["securitySchemes"].as_object().expect("security schemes");
    for s in ["secret_key", "publishable_key", "admin_token"] {
        assert!(schemes.contains_key(s), "{s} is documented");
    }
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object().expect("item").keys().map(move |m| (m.clone(), path.clone()))
        })
        .collect();
    // Exactly the annotated routes are documented.
    let annotated = annotated_routes();
    let missing: Vec<_> = annotated.difference(&documented).collect();
    assert!(missing.is_empty(), "annotated but not served through the document: {missing:?}");
    // API routes are documented from their annotations; only the document's own route
    // (and the service's health routes outside /api/v1) may be added to it by hand.
    let extra: Vec<_> = documented
        .difference(&annotated)
        .filter(|(m, p)| {
            p.starts_with("/api/") && (m.as_str(), p.as_str()) != ("get", "/api/v1/openapi.json")
        })
        .collect();
    assert!(extra.is_empty(), "documented without an annotation: {extra:?}");
    // The routes of the API foundation, by name.
    let required = [
        ("get", "/api/v1/tenants"),
        ("post", "/api/v1/tenants"),
        ("get", "/api/v1/tenants/{id}"),
        ("delete", "/api/v1/tenants/{id}"),
        ("post", "/api/v1/tenants/{id}/suspend"),
        ("post", "/api/v1/tenants/{id}/resume"),
        ("get", "/api/v1/keys"),
        ("post", "/api/v1/keys"),
        ("delete", "/api/v1/keys/{id}"),
        ("get", "/api/v1/products"),
        ("post", "/api/v1/products"),
        ("get", "/api/v1/products/{id}"),
        ("put", "/api/v1/products/{id}"),
        ("delete", "/api/v1/products/{id}"),
        ("patch", "/api/v1/variants/{id}"),
        ("get", "/api/v1/store"),
        ("put", "/api/v1/store"),
        ("get", "/api/v1/categories"),
        ("put", "/api/v1/categories"),
        ("get", "/api/v1/collections"),
        ("post", "/api/v1/collections"),
        ("get", "/api/v1/collections/{handle}"),
        ("put", "/api/v1/collections/{handle}"),
        ("delete", "/api/v1/collections/{handle}"),
        ("get", "/api/v1/pages"),
        ("post", "/api/v1/pages"),
        ("get", "/api/v1/pages/{handle}"),
        ("put", "/api/v1/pages/{handle}"),
        ("delete", "/api/v1/pages/{handle}"),
        ("get", "/api/v1/theme"),
        ("put", "/api/v1/theme"),
        ("get", "/api/v1/images"),
        ("post", "/api/v1/images"),
        ("post", "/api/v1/import/shopify"),
        ("get", "/api/v1/export"),
        ("get", "/api/v1/builds"),
        ("post", "/api/v1/builds"),
        ("get", "/api/v1/builds/{id}"),
        ("post", "/api/v1/carts"),
        ("post", "/api/v1/carts/{token}/lines"),
        ("post", "/api/v1/carts/{token}/checkout"),
        ("get", "/api/v1/orders/{id}"),
    ];
    for (method, path) in required {
        assert!(
            documented.contains(&(method.to_owned(), path.to_owned())),
            "{method} {path} is documented"
        );
    }
    // Every documented route is answered by its handler, not the router's fallback (the
    // storefront origin) and not "method not allowed": called with made-up ids on a
    // shop of its own.
    let probe = api.provision(&unique("probe"), false).await;
    for (method, path) in &documented {
        let concrete = path
            .split('/')
            .map(|s| if s.starts_with('{') { "nothing-here" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        let key = if path.starts_with("/api/v1/tenants") { ADMIN } else { probe.secret.as_str() };
        let r = call(&api, method, &concrete, Some(key), json!({})).await;
        assert_ne!(r.status, 405, "{method} {concrete}: method not allowed");
        assert!(r.status < 500, "{method} {concrete}: {} {}", r.status, r.text());
        let is_json = r.header("content-type").is_some_and(|t| t.contains("json"));
        let handled = r.status != 404 || r.json()["error"]["code"] == json!("not_found");
        assert!(
            is_json || r.status < 300,
            "{method} {concrete}: not an API answer: {} {}",
            r.status,
            r.text()
        );
        assert!(handled, "{method} {concrete}: the router did not find it: {}", r.text());
    }
    // A path outside the document is not an API route.
    let r = api.get("/api/v1/no-such-route", &probe.secret).await;
    assert_eq!(r.status, 404);
    r.error(404, "route_not_found", None);
}
