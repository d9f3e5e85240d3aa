//! `aurelio publish`: a built site to object storage (diff upload, safe order, purge
//! list), `--rollback` to an earlier deploy, `--list` of deploys.

use crate::progress::CliProgress;
use anyhow::Context;
use aurelio_engine::publish::{
    self, DeployKind, DeploySummary, PublishError, PublishOptions, PublishReport, Target,
};
use clap::ArgGroup;
use std::path::PathBuf;
use std::time::Duration;

/// Hidden: stop after this many writes, as a crash would (the kill tests use it).
const FAIL_AFTER_ENV: &str = "AURELIO_PUBLISH_FAIL_AFTER";

/// Arguments of `aurelio publish`.
#[derive(Debug, clap::Args)]
#[command(group(ArgGroup::new("action").required(true).args(["from", "rollback", "list"])))]
pub struct Args {
    /// The built site to publish (the `--out` of `aurelio build`).
    #[arg(long, value_name = "DIR")]
    pub from: Option<PathBuf>,
    /// Destination: `file:///path`, `s3://bucket/prefix` (endpoint, region and keys from the
    /// `AWS_*` variables), `gs://bucket/prefix`, `az://container/prefix`.
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// Make an earlier deploy live again (an id from `--list`, or a unique prefix of one).
    #[arg(long, value_name = "DEPLOY")]
    pub rollback: Option<String>,
    /// List the deploys of the destination, the live one marked.
    #[arg(long)]
    pub list: bool,
    /// Base URL of the site for the purge list [default: from the site's robots.txt].
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// How long hashed assets and images that left the site stay in the bucket, so that
    /// pages still cached somewhere find them: `0`, `90s`, `30m`, `24h`, `7d`.
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    pub grace: Duration,
    /// Store operations in flight at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// POST the purge list (JSON) to this URL after a deploy that changed files; a failure
    /// is reported and does not undo the deploy [default: none].
    #[arg(long, value_name = "URL", env = "AURELIO_PURGE_WEBHOOK")]
    pub purge_webhook: Option<String>,
    /// Where to write the purge list (`-` for standard output) [default: a file in the
    /// temporary directory, named after the deploy].
    #[arg(long, value_name = "FILE")]
    pub purge_list: Option<PathBuf>,
    /// Deploys kept restorable: older ones leave `--list`, and their records and the copies
    /// only they used are deleted.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..))]
    pub keep: u16,
    /// Print the result as one JSON object instead of a sentence.
    #[arg(long)]
    pub json: bool,
}

/// `0`, `45s`, `30m`, `24h`, `7d` (a bare number is seconds).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) =
        text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: u64 = number.parse().map_err(|_| format!("`{text}` is not a duration like `24h`"))?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit `{unit}` in `{text}`: use s, m, h or d")),
    };
    Ok(Duration::from_secs(n.saturating_mul(seconds)))
}

/// Runs `aurelio publish`.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let target = Target::from_url(&args.to)?;
    if args.list {
        return list(&target, args.json);
    }
    let fail_after = match std::env::var(FAIL_AFTER_ENV) {
        Ok(n) => Some(
            n.parse::<u64>().with_context(|| format!("{FAIL_AFTER_ENV}=`{n}` is not a number"))?,
        ),
        Err(_) => None,
    };
    target.fail_after(fail_after);
    let opts = PublishOptions {
        base_url: args.base_url.clone(),
        grace: args.grace,
        concurrency: usize::from(args.concurrency),
        purge_webhook: args.purge_webhook.clone(),
        keep: usize::from(args.keep),
    };
    let progress = CliProgress::new();
    let report = match (&args.rollback, &args.from) {
        (Some(deploy), _) => publish::rollback(&target, deploy, &opts, &progress)
            .map_err(|e| explain(e, &format!("rollback of `{}` to `{deploy}`", args.to)))?,
        (None, Some(dir)) => publish::publish(&target, dir, &opts, &progress)
            .map_err(|e| explain(e, &format!("publish to `{}`", args.to)))?,
        (None, None) => anyhow::bail!("give `--from DIR`, `--rollback DEPLOY` or `--list`"),
    };
    let purge_path = write_purge_list(args, &report)?;
    if let Some(Err(problem)) = &report.webhook {
        eprintln!("warning: purge webhook failed: {problem}; the deploy is live, purge by hand");
    }
    print_report(args, &report, purge_path.as_deref());
    Ok(())
}

/// Adds what the user needs to know when a deploy stopped halfway: nothing is lost.
fn explain(error: PublishError, what: &str) -> anyhow::Error {
    match error {
        PublishError::Store { .. } | PublishError::Interrupted(_) | PublishError::Read { .. } => {
            anyhow::Error::new(error).context(format!(
                "{what} stopped; the previous deploy is still live and whole: run the same command again to finish"
            ))
        }
        other => anyhow::Error::new(other),
    }
}

fn write_purge_list(args: &Args, report: &PublishReport) -> anyhow::Result<Option<PathBuf>> {
    let json = serde_json::to_string_pretty(&report.purge)?;
    if !report.recorded && args.purge_list.is_none() {
        return Ok(None); // nothing changed: the live deploy's list stays as it was
    }
    let path = match &args.purge_list {
        Some(p) if p.as_os_str() == "-" => {
            println!("{json}");
            return Ok(None);
        }
        Some(p) => p.clone(),
        None => std::env::temp_dir().join(format!("aurelio-purge-{}.json", report.summary.id)),
    };
    std::fs::write(&path, json + "\n")
        .with_context(|| format!("cannot write the purge list to `{}`", path.display()))?;
    Ok(Some(path))
}

fn print_report(args: &Args, report: &PublishReport, purge_path: Option<&std::path::Path>) {
    let s = &report.summary;
    let secs = report.elapsed.as_secs_f64();
    if args.json {
        let webhook = match &report.webhook {
            None => serde_json::Value::Null,
            Some(Ok(status)) => serde_json::json!({ "status": status }),
            Some(Err(error)) => serde_json::json!({ "error": error }),
        };
        let value = serde_json::json!({
            "deploy": s,
            "url": report.url,
            "kept": report.kept,
            "elapsed_ms": report.elapsed.as_millis() as u64,
            "purge_list": purge_path,
            "purge_urls": report.purge.urls.len(),
            "webhook": webhook,
            "recorded": report.recorded,
            "pruned_deploys": report.pruned_deploys,
            "pruned_copies": report.pruned_copies,
        });
        println!("{value}");
        return;
    }
    let what = match &s.restores {
        Some(restored) => format!("rolled back to {restored} as deploy {}", s.id),
        None if !report.recorded => format!("nothing changed: deploy {} stays live", s.id),
        None => format!("published deploy {}", s.id),
    };
    let kept = if report.kept > 0 {
        format!(" ({} kept for the grace period)", report.kept)
    } else {
        String::new()
    };
    let purge = match purge_path {
        Some(p) => format!("purge list ({} URLs): {}", report.purge.urls.len(), p.display()),
        None => format!("purge list: {} URLs above", report.purge.urls.len()),
    };
    let webhook = match &report.webhook {
        Some(Ok(status)) => format!(", webhook answered {status}"),
        Some(Err(_)) => ", webhook FAILED".to_owned(),
        None => String::new(),
    };
    println!(
        "{what} to {}: {} uploaded, {} unchanged, {} deleted{kept}; {} uploaded in {secs:.2} s ({:.0} files/s); {purge}{webhook}",
        report.url,
        s.uploaded,
        s.unchanged,
        s.deleted,
        human_bytes(s.bytes_uploaded),
        s.uploaded as f64 / secs.max(1e-9),
    );
}

fn list(target: &Target, json: bool) -> anyhow::Result<()> {
    let deploys = publish::list(target)?;
    if json {
        let value = serde_json::json!({ "live": deploys.live, "deploys": deploys.history });
        println!("{value}");
        return Ok(());
    }
    if deploys.history.is_empty() {
        println!("nothing is published at {} yet", target.url());
        return Ok(());
    }
    println!(
        "{:<23} {:<8} {:<19} {:>7} {:>8} {:>7} {:>10}",
        "DEPLOY", "KIND", "FINISHED (UTC)", "FILES", "UPLOADED", "DELETED", "BYTES"
    );
    for d in &deploys.history {
        println!("{}", row(d, deploys.live.as_deref() == Some(d.id.as_str())));
    }
    Ok(())
}

fn row(d: &DeploySummary, live: bool) -> String {
    let kind = match d.kind {
        DeployKind::Publish => "publish",
        DeployKind::Rollback => "rollback",
    };
    let mut line = format!(
        "{:<23} {:<8} {:<19} {:>7} {:>8} {:>7} {:>10}",
        d.id,
        kind,
        d.finished_at.format("%Y-%m-%d %H:%M:%S"),
        d.files,
        d.uploaded,
        d.deleted,
        human_bytes(d.bytes_uploaded)
    );
    if let Some(restored) = &d.restores {
        line.push_str(&format!("  restores {restored}"));
    }
    if live {
        line.push_str("  (live)");
    }
    line
}

fn human_bytes(n: u64) -> String {
    match n {
        0..1_000 => format!("{n} B"),
        1_000..1_000_000 => format!("{:.1} kB", n as f64 / 1e3),
        _ => format!("{:.1} MB", n as f64 / 1e6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert!(parse_duration("3w").is_err_and(|e| e.contains("unknown unit `w`")));
        assert!(parse_duration("h").is_err());
    }
}
