//! The shopper journey end to end in real headless Chromium against `aurelio serve`: a demo
//! shop is provisioned through the API (checkout settings, a discount code), then a browser
//! goes home → product → variant → add to cart → cart → quantity → discount code →
//! checkout (manual payments) → confirmation, meeting an out-of-stock answer and a lost
//! checkout answer on the way; the order is then checked through the merchant API.
//!
//! The browser is driven by `tests/browser/journey.mjs` (Node with `playwright-core`, using
//! the system's Chromium); this test starts the server, prepares the shop, runs the script
//! and asserts on what it saw and on the orders the API holds. `./scripts/test` installs
//! Chromium and the script's packages; without them the test fails saying how to install
//! them.

mod common;

use serde_json::{Value, json};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ADMIN_TOKEN: &str = "journey-admin-token";

// ---------------------------------------------------------------------------------------
// What the journey needs
// ---------------------------------------------------------------------------------------

/// The Chromium binary: `AURELIO_CHROMIUM`, else Debian's `/usr/bin/chromium`.
#[track_caller]
fn chromium() -> PathBuf {
    let path = std::env::var_os("AURELIO_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    if !path.is_file() {
        panic!(
            "Chromium is missing ({}): the browser test drives a real headless Chromium.\n\
             Run `./scripts/test`, which installs it, or install it by hand:\n  \
             apt-get install -y chromium\n\
             or point AURELIO_CHROMIUM at a Chromium or Chrome binary.",
            path.display()
        );
    }
    path
}

/// The directory of the journey script, with `playwright-core` installed.
#[track_caller]
fn driver() -> PathBuf {
    let dir = common::repo_path("tests/browser");
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        panic!(
            "Node.js is missing: the browser test drives Chromium from `tests/browser/journey.mjs`.\n\
             Install it (apt-get install -y nodejs npm), then: cd tests/browser && npm ci"
        );
    }
    if !dir.join("node_modules/playwright-core/package.json").is_file() {
        panic!(
            "`playwright-core` is not installed in tests/browser.\n\
             Run `./scripts/test`, or: cd tests/browser && npm ci\n\
             (never `npx playwright install`: the test uses the system's Chromium)"
        );
    }
    dir
}

// ---------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------

/// `aurelio serve` on a free port with its own data directory; killed when dropped.
struct Server {
    child: Child,
    port: u16,
    _data: tempfile::TempDir,
}

impl Server {
    fn start() -> Self {
        let data = common::tempdir();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log = std::fs::File::create(data.path().join("serve.log")).expect("log file");
        let child = Command::new(common::BIN)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--build-debounce-ms", "50"])
            .arg("--data")
            .arg(data.path().join("data"))
            .env("AURELIO_ADMIN_TOKEN", ADMIN_TOKEN)
            .env_remove("AURELIO_DATABASE_URL")
            .env_remove("AURELIO_PUBLIC_URL")
            .env_remove("AURELIO_STOREFRONT_URL")
            .env_remove("AURELIO_PUBLISH_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start aurelio serve");
        let mut server = Self { child, port, _data: data };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("aurelio serve exited ({status}):\n{}", server.log());
            }
            assert!(Instant::now() < deadline, "aurelio serve did not listen:\n{}", server.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn api(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._data.path().join("serve.log")).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A small blocking JSON client over reqwest.
struct Api {
    base: String,
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
}

impl Api {
    fn new(base: String) -> Self {
        // reqwest is built without a TLS provider of its own; the engine installs ring's.
        aurelio_engine::publish::install_crypto_provider();
        let rt =
            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        Self { base, rt, http: reqwest::Client::new() }
    }

    /// `(status, body)`; a body that is not JSON becomes a string.
    fn send(
        &self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<Value>,
        host: Option<&str>,
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(method, &url).bearer_auth(key);
        if let Some(host) = host {
            req = req.header("host", host);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        self.rt.block_on(async {
            let res = req.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
            let status = res.status().as_u16();
            let text = res.text().await.unwrap_or_default();
            (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
        })
    }

    #[track_caller]
    fn expect(
        &self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<Value>,
        status: u16,
    ) -> Value {
        let (got, json) = self.send(method, path, key, body, None);
        assert_eq!(got, status, "{method} {path} answered {got}: {json}");
        json
    }
}

// ---------------------------------------------------------------------------------------
// The journey
// ---------------------------------------------------------------------------------------

/// A product linked from the home page with several variants, and one of its variants
/// with stock that is not the one the page starts with (so the picker is exercised).
fn choose_variant(home: &str, products: &[Value]) -> (String, String, i64) {
    for p in products {
        let handle = p["handle"].as_str().unwrap_or_default();
        let variants = p["variants"].as_array().map(Vec::as_slice).unwrap_or_default();
        if p["status"] != "active"
            || variants.len() < 2
            || !home.contains(&format!("/products/{handle}/"))
        {
            continue;
        }
        let first_available = variants.iter().position(|v| v["availability"] != "out_of_stock");
        let pick = variants.iter().enumerate().find(|(i, v)| {
            Some(*i) != first_available
                && v["inventory_policy"] == "deny"
                && v["inventory"].as_i64().is_some_and(|n| n >= 3)
        });
        if let Some((_, v)) = pick {
            return (
                handle.to_owned(),
                v["sku"].as_str().expect("sku").to_owned(),
                v["price"].as_i64().expect("price"),
            );
        }
    }
    panic!("no product on the home page has a second variant with 3 or more in stock");
}

#[test]
fn shopper_journey_in_headless_chromium() {
    journey("journey", 1280);
}

/// The same journey on a phone (390 px wide, touch): most shoppers are on phones.
#[test]
fn shopper_journey_at_phone_width() {
    journey("journey-phone", 390);
}

/// The journey in a demo shop of its own (`handle`) with the viewport `width` px wide.
fn journey(shop: &str, width: u32) {
    let chromium = chromium();
    let driver = driver();
    let server = Server::start();
    let api = Api::new(server.api());
    let host = format!("{shop}.localhost:{}", server.port);

    // The shop, its checkout settings and a discount code, as a merchant sets them up.
    let provisioned = api.expect(
        "POST",
        "/api/v1/tenants",
        ADMIN_TOKEN,
        Some(json!({"handle": shop, "name": "Journey", "demo": true})),
        201,
    );
    let secret = provisioned["secret_key"].as_str().expect("secret key").to_owned();
    let publishable = provisioned["publishable_key"].as_str().expect("publishable key").to_owned();
    api.expect(
        "PUT",
        "/api/v1/settings/checkout",
        &secret,
        Some(json!({
            "shipping_zones": [{"name": "Ireland", "countries": ["IE"], "rates": [
                {"id": "standard", "name": "Standard", "amount": 495},
                {"id": "express", "name": "Express", "amount": 1295}
            ]}],
            "tax_rates": [{"country": "IE", "rate_bp": 2300},
                          {"country": "IE", "region": "Cork", "rate_bp": 1350}]
        })),
        200,
    );
    api.expect(
        "POST",
        "/api/v1/discounts",
        &secret,
        Some(json!({"code": "WELCOME10", "kind": "percentage", "value": 1000})),
        201,
    );

    let home = published_home(&api, &server, &host, &publishable);

    let products = api.expect("GET", "/api/v1/products?limit=100", &secret, None, 200);
    let (handle, sku, unit_price) =
        choose_variant(&home, products["products"].as_array().expect("products"));
    let artifacts = common::repo_path(&format!("target/browser-journey-{width}"));

    let started = Instant::now();
    let run = Command::new("node")
        .arg("journey.mjs")
        .current_dir(&driver)
        .env("JOURNEY_STORE", format!("http://{host}/"))
        .env("JOURNEY_API", server.api())
        .env("JOURNEY_SECRET_KEY", &secret)
        .env("JOURNEY_PRODUCT", &handle)
        .env("JOURNEY_SKU", &sku)
        .env("JOURNEY_CHROMIUM", &chromium)
        .env("JOURNEY_ARTIFACTS", &artifacts)
        .env("JOURNEY_WIDTH", width.to_string())
        .output()
        .expect("run node tests/browser/journey.mjs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    let seen: Value =
        stdout.lines().rev().find_map(|l| serde_json::from_str(l).ok()).unwrap_or_else(|| {
            panic!("the journey printed no result\nstdout:\n{stdout}\nstderr:\n{stderr}")
        });
    assert!(
        run.status.success() && seen["ok"] == true,
        "the journey failed after {:?} (evidence in {}):\n{}\nsteps: {}\nconsole: {}\nstderr:\n{stderr}\nserver log:\n{}",
        started.elapsed(),
        artifacts.display(),
        seen["error"].as_str().unwrap_or_default(),
        seen["steps"],
        seen["console_errors"],
        tail(&server.log(), 40),
    );
    check_journey(&seen, unit_price);
    check_order(&api, &secret, &seen, &sku, unit_price);
}

/// The home page once the storefront is published with the API URL and the publishable key.
fn published_home(api: &Api, server: &Server, host: &str, publishable: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    let home = loop {
        let (status, page) = api.send("GET", "/", "", None, Some(host));
        let page = page.as_str().unwrap_or_default().to_owned();
        if status == 200 && page.contains(&format!("data-key=\"{publishable}\"")) {
            break page;
        }
        assert!(
            Instant::now() < deadline,
            "the storefront was not published ({status}):\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(home.contains(&format!("data-api=\"{}\"", server.api())), "the pages name the API");
    home
}

/// Every page kind of the demo store at 390 px and 1280 px: no sideways scrolling, the
/// product image in view and loaded, add to cart reachable, tap targets of 44 px. Pages
/// with problems are photographed into `target/browser-layout/`.
#[test]
fn every_page_kind_fits_phones_and_desktops() {
    let chromium = chromium();
    let driver = driver();
    let server = Server::start();
    let api = Api::new(server.api());
    let shop = "layout";
    let host = format!("{shop}.localhost:{}", server.port);
    let provisioned = api.expect(
        "POST",
        "/api/v1/tenants",
        ADMIN_TOKEN,
        Some(json!({"handle": shop, "name": "Layout", "demo": true})),
        201,
    );
    let publishable = provisioned["publishable_key"].as_str().expect("publishable key");
    published_home(&api, &server, &host, publishable);
    let store = format!("http://{host}");
    // From the demo catalog: a product with one image and one with two, and one of each
    // other page kind.
    let pages = [
        ("home", "/", "home"),
        ("product-one-image", "/products/waxed-field-jacket/", "product"),
        ("product-several-images", "/products/stormline-shell-jacket/", "product"),
        ("collection", "/collections/new-arrivals/", "collection"),
        ("category", "/categories/clothing/", "category"),
        ("page", "/pages/about/", "page"),
        ("search", "/search/", "search"),
        ("not-found", "/no-such-page/", "404"),
        ("cart", "/cart/", "cart"),
    ];
    let pages: Vec<Value> = pages
        .iter()
        .map(|(name, path, kind)| json!({"name": name, "url": format!("{store}{path}"), "kind": kind}))
        .collect();
    let artifacts = common::repo_path("target/browser-layout");
    let _ = std::fs::remove_dir_all(&artifacts);
    let run = Command::new("node")
        .arg("layout.mjs")
        .current_dir(&driver)
        .env("LAYOUT_PAGES", Value::Array(pages).to_string())
        .env("LAYOUT_CHROMIUM", &chromium)
        .env("LAYOUT_ARTIFACTS", &artifacts)
        .env("LAYOUT_SCREENSHOTS", std::env::var("LAYOUT_SCREENSHOTS").unwrap_or_default())
        .output()
        .expect("run node tests/browser/layout.mjs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    let seen: Value =
        stdout.lines().rev().find_map(|l| serde_json::from_str(l).ok()).unwrap_or_else(|| {
            panic!("the layout check printed no result\nstdout:\n{stdout}\nstderr:\n{stderr}")
        });
    assert_eq!(seen["ok"], true, "{}\nstderr:\n{stderr}", seen["error"]);
    let checked = seen["checked"].as_array().map_or(0, Vec::len);
    assert_eq!(checked, 2 * 10, "9 pages and the checkout form at two widths: {}", seen["checked"]);
    assert_eq!(seen["console_errors"], json!([]), "no script errors");
    assert_eq!(
        seen["problems"],
        json!({}),
        "layout problems (screenshots: {}):\n{:#}",
        artifacts.display(),
        seen["problems"]
    );
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// What the shopper saw.
fn check_journey(seen: &Value, unit_price: i64) {
    let text =
        |k: &str| seen[k].as_str().unwrap_or_else(|| panic!("`{k}` missing in {seen}")).to_owned();
    assert_eq!(seen["home_status"], 200);
    assert_eq!(seen["unit_price"], unit_price, "the product JSON has the API's price");
    assert_eq!(seen["token_stored"], true, "the cart token is kept in localStorage");
    assert!(text("added_message").starts_with("Added to cart"), "{}", text("added_message"));
    assert_eq!(seen["console_errors"], json!([]), "no script errors in the page");

    // A region's own rate applies while it is entered; clearing the field clears it.
    assert_ne!(text("tax_regional"), text("tax_national"), "Cork's 13.5 % shows");
    assert_eq!(text("tax_region_cleared"), text("tax_national"), "an emptied region is cleared");

    // The unknown code: the machine reason, said politely.
    assert_eq!(seen["unknown_code_reason"], "unknown_code");
    assert!(
        text("unknown_code_message").contains("don\u{2019}t recognise"),
        "{}",
        text("unknown_code_message")
    );
    assert!(text("discount_message").contains("WELCOME10 applied"), "{}", text("discount_message"));
    assert!(
        text("discount_shown").starts_with('\u{2212}'),
        "a discount is shown: {}",
        text("discount_shown")
    );
    assert_eq!(seen["country_default"], "IE", "the country follows the shop's locale (en-IE)");
    assert!(
        text("shipping_shown").contains("4.95"),
        "standard shipping shown: {}",
        text("shipping_shown")
    );
    assert!(text("tax_label").contains("included"), "the demo shop's prices include tax");
    let breakdown = seen["breakdown"].as_array().expect("breakdown");
    assert!(
        breakdown.iter().any(|l| l.as_str().unwrap_or_default().contains("WELCOME10")),
        "{breakdown:?}"
    );

    // Stock ran out before the order: the answer names the line and what is left.
    let oos = text("out_of_stock_message");
    assert!(oos.contains("only 1 left (you asked for 2)"), "out-of-stock message: {oos}");
    assert_eq!(text("out_of_stock_note"), "Only 1 left", "the cart line shows the stock");

    // One attempt after the failure: a new key; its lost answer retried with the same key.
    let keys: Vec<&str> = seen["checkout_requests"]
        .as_array()
        .expect("checkout requests")
        .iter()
        .map(|k| k.as_str().unwrap_or_default())
        .collect();
    assert_eq!(seen["dropped_answers"], 1);
    assert!(keys.len() >= 3, "out-of-stock attempt, lost attempt, its retry: {keys:?}");
    assert!(
        keys.iter().all(|k| k.len() >= 16),
        "every checkout sends an Idempotency-Key: {keys:?}"
    );
    assert_ne!(keys[0], keys[1], "a new attempt gets a new key");
    assert!(
        keys[1..].iter().all(|k| *k == keys[1]),
        "the retry reuses the attempt's key: {keys:?}"
    );

    // The confirmation.
    assert!(text("confirmation_url").contains("/cart/?order="), "{}", text("confirmation_url"));
    assert!(text("order_number").starts_with('#'), "{}", text("order_number"));
    assert_eq!(seen["order_number_after_reload"], seen["order_number"]);
    assert_eq!(text("heading"), "Thank you for your order");
    assert_eq!(text("cart_count_after"), "0", "the header cart is empty after the order");
    let lines = seen["order_lines"].as_array().expect("order lines");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0][1], "2", "quantity on the confirmation");
    assert_eq!(
        seen["order_total_shown"], seen["total_shown"],
        "the total charged is the total shown"
    );

    // Nothing jumps: layout shifts not caused by input stay under the "good" CLS bound.
    for (page, value) in seen["layout_shift"].as_object().expect("layout shifts") {
        let value = value.as_f64().unwrap_or(f64::MAX);
        assert!((0.0..0.1).contains(&value), "layout shift on the {page} page: {value}");
    }
}

/// What the merchant sees.
fn check_order(api: &Api, secret: &str, seen: &Value, sku: &str, unit_price: i64) {
    let list = api.expect("GET", "/api/v1/orders", secret, None, 200);
    let orders = list["orders"].as_array().expect("orders");
    assert_eq!(orders.len(), 1, "exactly one order, although an answer was lost: {list}");
    let order = &orders[0];
    assert_eq!(format!("#{}", order["number"]), seen["order_number"].as_str().unwrap_or_default());
    assert_eq!(order["email"], "ada@example.com");
    assert_eq!(order["provider"], "manual");
    assert_eq!(order["status"], "pending");
    let lines = order["details"]["lines"].as_array().expect("order lines");
    assert_eq!(lines.len(), 1, "{order}");
    assert_eq!(lines[0]["sku"], sku);
    assert_eq!(lines[0]["variant_id"], seen["variant_id"]);
    assert_eq!(lines[0]["quantity"], 2);
    assert_eq!(lines[0]["unit_price"], unit_price);
    let subtotal = 2 * unit_price;
    let discount = (subtotal * 1000 + 5000) / 10_000; // 10 %, rounded half up
    assert_eq!(order["subtotal"], subtotal);
    assert_eq!(order["discount"], discount, "WELCOME10 took 10 %");
    assert_eq!(order["shipping"], 495, "standard shipping to Ireland");
    assert_eq!(
        order["total"],
        subtotal - discount + 495,
        "prices include tax: total = subtotal − discount + shipping"
    );
    let codes = order["details"]["discount_codes"].as_array().expect("codes");
    assert!(codes.iter().any(|c| c["code"] == "WELCOME10" && c["applied"] == true), "{codes:?}");
    assert!(order["tax"].as_i64().is_some_and(|t| t > 0), "23 % tax is part of the amounts");

    // Stock: set to 25 before the order, two reserved.
    let variant = seen["variant_id"].as_str().expect("variant id");
    let products = api.expect("GET", "/api/v1/products?limit=100", secret, None, 200);
    let stock = products["products"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["variants"].as_array().into_iter().flatten())
        .find(|v| v["id"] == variant)
        .map(|v| v["inventory"].clone());
    assert_eq!(stock, Some(json!(23)), "two units reserved from 25");
}
