//! `aurelio demo`: the whole platform on an empty machine. Provisions the shop `demo` from
//! `fixtures/demo-store` (database, keys, first build and publish), then serves the
//! storefront and the API on one address and prints how to use them.

use crate::cmd::listen;
use anyhow::Context;
use aurelio_api::tenants::{NewTenant, provision};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Arguments of `aurelio demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to serve on (a bare port means 127.0.0.1:PORT).
    #[arg(long, alias = "port", default_value = "127.0.0.1:8080", value_parser = crate::cmd::listen::parse)]
    pub listen: SocketAddr,
    /// Data directory (SQLite files, built and published sites). Starts fresh each run.
    #[arg(long, default_value = ".aurelio/demo")]
    pub data: PathBuf,
    /// The demo catalog directory [default: fixtures/demo-store of the Aurelio sources,
    /// looked for from the current directory and from the binary's location].
    #[arg(long)]
    pub site: Option<PathBuf>,
}

/// The demo catalog named by `--site`, or `fixtures/demo-store` found at run time: under
/// the current directory, beside an ancestor of the binary (`target/debug/aurelio` of a
/// checkout), or where the sources were when the binary was built.
fn demo_catalog(args: &Args) -> anyhow::Result<PathBuf> {
    if let Some(site) = &args.site {
        return Ok(site.clone());
    }
    let relative = Path::new("fixtures").join("demo-store");
    let exe = std::env::current_exe().ok();
    let ancestors = exe.iter().flat_map(|e| e.ancestors().skip(1));
    let candidates = std::iter::once(PathBuf::from("."))
        .chain(ancestors.map(Path::to_path_buf))
        .chain(std::iter::once(PathBuf::from(env!("CARGO_MANIFEST_DIR"))));
    for dir in candidates {
        let catalog = dir.join(&relative);
        if catalog.join("store.json").is_file() {
            return Ok(catalog);
        }
    }
    anyhow::bail!(
        "cannot find the demo catalog `fixtures/demo-store`: run from the Aurelio sources or \
         pass --site DIR"
    )
}

/// Provisions the demo shop, then serves until Ctrl-C.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let catalog = demo_catalog(args)?;
    // A fresh shop each run; the image cache is kept, so images are encoded only once.
    for dir in ["registry.db", "registry.db-wal", "registry.db-shm"] {
        let _ = std::fs::remove_file(args.data.join(dir));
    }
    for dir in ["shops", "work", "published", "media"] {
        let _ = std::fs::remove_dir_all(args.data.join(dir));
    }
    let admin_token = std::env::var("AURELIO_ADMIN_TOKEN")
        .unwrap_or_else(|_| format!("adm_{}", aurelio_api::registry::random_hex(16)));
    super::serve::runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        let api = listen::local_url(addr);
        let storefront = format!("http://demo.localhost:{}", addr.port());
        let config = aurelio_api::Config {
            listen: addr,
            data_dir: args.data.clone(),
            admin_token: Some(admin_token.clone()),
            public_url: api.clone(),
            storefront_url: format!("http://{{shop}}.localhost:{}", addr.port()),
            default_shop: Some("demo".into()),
            secret_key: std::env::var("AURELIO_SECRET_KEY").ok(),
            demo_catalog: catalog,
            ..aurelio_api::Config::default()
        };
        let platform = aurelio_api::Platform::open(config).await?;
        aurelio_api::server::install(&platform).await?;
        println!("provisioning the demo shop (database, catalog, build, publish)...");
        let request = NewTenant {
            handle: "demo".into(),
            name: "Northwind Outfitters".into(),
            demo: true,
            theme: None,
            currency: None,
            locale: None,
        };
        let (shop, outcome) =
            provision(&platform, &request).await.map_err(|e| anyhow::anyhow!("{}", e.message))?;
        match outcome {
            Ok(result) => println!(
                "built and published {} pages in {} ms",
                result["pages"], shop.elapsed_ms.max(result["build_ms"].as_u64().unwrap_or(0))
            ),
            Err(problems) => anyhow::bail!("the demo build failed: {problems:#}"),
        }
        let running = aurelio_api::start(platform, listener).await?;
        let product = first_product(&running.platform, &shop.secret_key).await.unwrap_or_default();
        println!();
        println!("storefront:  {storefront}/   (also {api}/)");
        println!("API:         {api}/api/v1   (OpenAPI: {api}/api/v1/openapi.json)");
        println!("secret key:  {}", shop.secret_key);
        println!("publishable: {}", shop.publishable_key);
        println!("admin token: {admin_token}");
        for (code, what) in demo_codes(&running.platform).await {
            println!("code to try: {code:<12} {what}");
        }
        println!();
        println!("try:");
        println!("  curl -s {api}/api/v1/products?limit=2 -H 'Authorization: Bearer {}'", shop.secret_key);
        if !product.is_empty() {
            println!(
                "  curl -s -X PATCH {api}/api/v1/variants/{product} -H 'Authorization: Bearer {}' \\\n       -H 'Content-Type: application/json' -d '{{\"price\": 9900}}'   # the storefront follows",
                shop.secret_key
            );
        }
        println!("press Ctrl-C to stop");
        running.wait().await.context("the server stopped")
    })
}

/// The demo shop's discount codes and what each does.
async fn demo_codes(platform: &aurelio_api::Platform) -> Vec<(String, String)> {
    let Ok(Some(shop)) = aurelio_api::registry::shop_by_handle(&platform.registry, "demo").await
    else {
        return Vec::new();
    };
    let Ok(db) = platform.shop_db(&shop).await else { return Vec::new() };
    let currency = aurelio_api::catalog::store::currency(&db).await;
    let (Ok(codes), Ok(currency)) = (aurelio_api::commerce::discounts::active(&db).await, currency)
    else {
        return Vec::new();
    };
    codes.iter().map(|d| (d.code.clone(), d.describe(currency))).collect()
}

/// The first variant id of the demo catalog, for the example.
async fn first_product(platform: &aurelio_api::Platform, _key: &str) -> Option<String> {
    let shop = aurelio_api::registry::shop_by_handle(&platform.registry, "demo").await.ok()??;
    let db = platform.shop_db(&shop).await.ok()?;
    aurelio_api::catalog::store::first_variant(&db).await.ok().flatten()
}
