//! `aurelio jobs list|show|retry|schedules`: the job queue for operators, read straight
//! from the registry database `aurelio serve` uses (same `--config`, `--data` and
//! `--database-url`), so it works while the servers are down too.

use anyhow::bail;
use aurelio_api::Config;
use aurelio_api::jobs::{self, JobFilter, JobOut};
use std::path::PathBuf;

/// Arguments of `aurelio jobs`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
    /// The TOML configuration file of `aurelio serve` [default: none].
    #[arg(long, global = true, env = "AURELIO_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory of `aurelio serve` (its SQLite registry) [default: .aurelio/data].
    #[arg(long, global = true, env = "AURELIO_DATA")]
    data: Option<PathBuf>,
    /// PostgreSQL URL of `aurelio serve`'s registry [default: SQLite files under --data].
    #[arg(long, global = true, env = "AURELIO_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Jobs, newest first.
    List {
        /// Only this shop's (its id) [default: every shop].
        #[arg(long)]
        shop: Option<String>,
        /// Only platform jobs (of no shop).
        #[arg(long, conflicts_with = "shop")]
        platform: bool,
        /// Only this kind (`build`, `webhooks`, `holds`, `cleanup`, `domains.check`…)
        /// [default: every kind].
        #[arg(long)]
        kind: Option<String>,
        /// Only this state [default: every state].
        #[arg(long, value_parser = ["queued", "running", "succeeded", "failed", "dead"])]
        status: Option<String>,
        /// At most this many (1 to 200).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=200))]
        limit: i64,
        /// The next page: the cursor printed under the previous one [default: the first page].
        #[arg(long)]
        cursor: Option<String>,
    },
    /// One job in full: payload, progress, result, error.
    Show {
        /// The job id.
        id: String,
    },
    /// Queue a dead or failed job again with a fresh budget of attempts.
    Retry {
        /// The job id.
        id: String,
    },
    /// Recurring jobs and when each runs next.
    Schedules,
}

impl Args {
    fn config(&self) -> anyhow::Result<Config> {
        let mut c = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let Some(d) = &self.data {
            c.data_dir.clone_from(d);
        }
        if self.database_url.is_some() {
            c.database_url.clone_from(&self.database_url);
        }
        // An operator's look at the queue runs nothing itself.
        c.workers = 0;
        Ok(c)
    }
}

/// Runs `aurelio jobs`.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let config = args.config()?;
    if config.database_url.is_none() && !config.data_dir.join("registry.db").exists() {
        bail!(
            "no registry under `{}`: give the data directory of `aurelio serve` with --data, or \
             its PostgreSQL URL with --database-url",
            config.data_dir.display()
        );
    }
    crate::cmd::serve::runtime()?.block_on(async {
        let platform = aurelio_api::Platform::open(config).await?;
        let fail = |e: aurelio_api::error::ApiError| anyhow::anyhow!("{}", e.message);
        match &args.command {
            Sub::List { shop, platform: platform_only, kind, status, limit, cursor } => {
                let filter = JobFilter {
                    shop_id: shop.clone(),
                    platform_only: *platform_only,
                    kind: kind.clone(),
                    status: status.clone(),
                    cursor: cursor.clone(),
                    limit: *limit,
                };
                let page = jobs::list(&platform, &filter).await.map_err(fail)?;
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&page)?);
                } else {
                    print_table(&page.jobs);
                    if let Some(next) = &page.next_cursor {
                        println!("more: --cursor {next}");
                    }
                }
            }
            Sub::Show { id } => {
                let job = jobs::get(&platform, id, None).await.map_err(fail)?;
                println!("{}", serde_json::to_string_pretty(&job)?);
            }
            Sub::Retry { id } => {
                let job = jobs::get(&platform, id, None).await.map_err(fail)?;
                if !jobs::requeue_dead(&platform, id).await.map_err(fail)? {
                    bail!(
                        "job {id} is `{}`: only dead or failed jobs are retried, and not while \
                         another with its key is queued",
                        job.status
                    );
                }
                println!("queued {id} again ({}); a running server picks it up", job.kind);
            }
            Sub::Schedules => {
                let all = jobs::schedules(&platform).await.map_err(fail)?;
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&all)?);
                } else {
                    println!("{:<40} {:<16} {:<24} NEXT RUN", "NAME", "KIND", "TIMING");
                    for s in &all {
                        println!(
                            "{:<40} {:<16} {:<24} {}",
                            s.name, s.kind, s.timing, s.next_run_at
                        );
                    }
                }
            }
        }
        platform.registry.close().await;
        Ok(())
    })
}

fn print_table(jobs: &[JobOut]) {
    println!(
        "{:<40} {:<14} {:<38} {:<9} {:>5} {:<24} NOTE",
        "ID", "KIND", "SHOP", "STATUS", "TRIES", "CREATED"
    );
    for j in jobs {
        let note: String = match (&j.progress, &j.error) {
            (Some(p), _) if j.status == "running" => format!("{} {}/{}", p.stage, p.done, p.total),
            (_, Some(e)) => e["message"].as_str().unwrap_or_default().chars().take(60).collect(),
            _ => j.reason.chars().take(60).collect(),
        };
        println!(
            "{:<40} {:<14} {:<38} {:<9} {:>5} {:<24} {}",
            j.id,
            j.kind,
            j.shop_id.as_deref().unwrap_or("-"),
            j.status,
            format!("{}/{}", j.attempts, j.max_attempts),
            j.created_at,
            note
        );
    }
}
