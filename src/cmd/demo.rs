//! `aurelio demo`: builds the demo store and serves it on one port.

use crate::progress::CliProgress;
use anyhow::Context;
use aurelio_engine::BuildOptions;
use std::path::PathBuf;
use std::sync::Arc;

/// Arguments of `aurelio demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Port to serve on (127.0.0.1).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Data directory (built sites live under it).
    #[arg(long, default_value = ".aurelio/demo")]
    pub data: PathBuf,
    /// The demo catalog directory.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/demo-store"))]
    pub site: PathBuf,
}

/// Builds, then serves until Ctrl-C.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let base_url = format!("http://127.0.0.1:{}", args.port);
    let out = args.data.join("sites/demo");
    let opts = BuildOptions {
        site: args.site.clone(),
        out: out.clone(),
        base_url: Some(base_url.clone()),
        ..BuildOptions::default()
    };
    let report = aurelio_engine::build(&opts, &CliProgress::new()).map_err(|e| {
        if let Some(d) = e.diagnostics() {
            crate::cmd::build::print_diagnostics(d);
        }
        anyhow::anyhow!("building the demo store failed: {e}")
    })?;
    println!("built the demo store: {} pages in {:.2?}", report.pages, report.elapsed);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
            .await
            .with_context(|| format!("cannot listen on port {}", args.port))?;
        println!("storefront: {base_url}/");
        println!("health:     {base_url}/healthz");
        println!("press Ctrl-C to stop");
        let app = aurelio_api::app(aurelio_api::AppState { site_dir: Arc::new(out) });
        aurelio_api::serve(listener, app).await.context("the server stopped")
    })
}
