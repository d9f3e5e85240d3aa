//! The `aurelio` command line: a thin layer of subcommands over the engine and the API.
//!
//! Each subcommand lives in its own file under `cmd/`; this file parses arguments, sets up
//! logging and maps errors to exit codes.

mod cmd;
mod progress;

use clap::{Parser, Subcommand};
use std::io::IsTerminal;

/// Builds allocate many small strings from several threads at once; mimalloc's per-thread
/// heaps make that about twice as fast as the system allocator (see docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::process::ExitCode;

/// Multi-tenant commerce: static storefronts compiled from a catalog and a theme, plus a
/// headless commerce API.
#[derive(Debug, Parser)]
#[command(name = "aurelio", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Provision the demo shop and serve its storefront and the API on one port.
    Demo(cmd::demo::Args),
    /// Build a storefront from a catalog directory.
    Build(cmd::build::Args),
    /// Rebuild on every change and serve a live-reloading preview.
    Watch(cmd::watch::Args),
    /// Write a synthetic catalog directory for tests and benchmarks.
    Fixtures(cmd::fixtures::Args),
    /// Publish a built site to object storage; roll back or list deploys.
    Publish(cmd::publish::Args),
    /// Theme presets, validation, export and import.
    Theme(cmd::theme::Args),
    /// Run the API server and the storefront origin.
    Serve(Box<cmd::serve::Args>),
    /// A shop's custom domains: add, verify, status, primary, remove (through a running
    /// server's API).
    Domain(cmd::domain::Args),
    /// The job queue for operators: list, show, retry jobs; list schedules.
    Jobs(cmd::jobs::Args),
    /// Measure build speed and memory on a synthetic catalog.
    Bench(cmd::bench::Args),
    /// Write a product feed (Google, Meta, TikTok) or check a feed file.
    Feed(cmd::feed::Args),
}

/// Logs are coloured only on a terminal, and never when `NO_COLOR` is set (no-color.org):
/// a redirected log file gets no escape codes.
fn colour_logs() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("AURELIO_LOG")
                .unwrap_or_else(|_| "warn,aurelio=info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(colour_logs())
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => cmd::demo::run(&args),
        Command::Build(args) => cmd::build::run(&args),
        Command::Fixtures(args) => cmd::fixtures::run(&args),
        Command::Watch(args) => cmd::watch::run(&args),
        Command::Bench(args) => cmd::bench::run(&args),
        Command::Feed(args) => cmd::feed::run(&args),
        Command::Publish(args) => cmd::publish::run(&args),
        Command::Theme(args) => cmd::theme::run(&args),
        Command::Serve(args) => cmd::serve::run(&args),
        Command::Domain(args) => cmd::domain::run(&args),
        Command::Jobs(args) => cmd::jobs::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
