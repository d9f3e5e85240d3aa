//! `aurelio theme`: list presets, validate a theme file, export and import a shop's theme.

use crate::cmd::build::print_diagnostics;
use anyhow::{Context, bail};
use aurelio_engine::theme::{self, ThemeSource};
use std::path::{Path, PathBuf};

/// Arguments of `aurelio theme`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// List the built-in presets.
    List,
    /// Check a theme file and report every problem with its JSON pointer and line:column.
    Validate {
        /// The theme JSON file.
        file: PathBuf,
        /// Check it as that catalog directory's theme: a file without `extends` then
        /// extends the preset named in its `store.json` (`minimal` when there is none), as
        /// the build does.
        #[arg(long, default_value = ".")]
        site: PathBuf,
    },
    /// Write the effective theme (preset plus overrides) of a catalog directory as one file.
    Export {
        /// The catalog directory whose theme to export.
        #[arg(long, default_value = ".")]
        site: PathBuf,
        /// Export this preset or theme file [default: the shop's theme].
        #[arg(long)]
        theme: Option<String>,
        /// The file to write [default: standard output].
        #[arg(short, long, alias = "output")]
        out: Option<PathBuf>,
    },
    /// Validate a theme file and make it the catalog directory's `theme.json`.
    Import {
        /// The theme JSON file.
        file: PathBuf,
        /// The catalog directory to import into.
        #[arg(long, default_value = ".")]
        site: PathBuf,
    },
}

/// Runs a theme subcommand.
pub fn run(args: &Args) -> anyhow::Result<()> {
    match &args.command {
        Command::List => {
            for name in theme::preset_names() {
                let (t, _) = theme::load(&ThemeSource::Preset(name))
                    .map_err(|d| anyhow::anyhow!("preset {name}: {d}"))?;
                let description = t.model.metadata.description.unwrap_or_default();
                println!("{name:<10} {:<10} {description}", t.model.metadata.name);
            }
            Ok(())
        }
        Command::Validate { file, site } => {
            let base = store_theme_or_default(site);
            let source = ThemeSource::File { path: file, default_base: &base };
            match theme::load(&source) {
                Ok((t, warnings)) => {
                    print_diagnostics(&warnings);
                    println!(
                        "`{}` is a valid theme ({}, {} warning(s))",
                        file.display(),
                        t.model.metadata.name,
                        warnings.warning_count()
                    );
                    Ok(())
                }
                Err(diags) => {
                    print_diagnostics(&diags);
                    bail!(
                        "`{}` is not a valid theme: {} error(s)",
                        file.display(),
                        diags.error_count()
                    )
                }
            }
        }
        Command::Export { site, theme: choice, out } => {
            let t = effective(site, choice.as_deref())?;
            let json = t.to_json();
            match out {
                Some(path) => {
                    write_atomically(path, json.as_bytes())?;
                    println!(
                        "exported theme `{}` ({} bytes) to {}",
                        t.model.metadata.name,
                        json.len(),
                        path.display()
                    );
                }
                None => print!("{json}"),
            }
            Ok(())
        }
        Command::Import { file, site } => {
            let store_theme = store_theme(site)?;
            let source = ThemeSource::File { path: file, default_base: &store_theme };
            let (t, warnings) = theme::load(&source).map_err(|diags| {
                print_diagnostics(&diags);
                anyhow::anyhow!("`{}` is not a valid theme; nothing was changed", file.display())
            })?;
            print_diagnostics(&warnings);
            let text =
                std::fs::read(file).with_context(|| format!("cannot read `{}`", file.display()))?;
            let target = site.join("theme.json");
            write_atomically(&target, &text)?;
            println!("imported theme `{}` into {}", t.model.metadata.name, target.display());
            Ok(())
        }
    }
}

/// The preset named by `store.json`, read without loading the whole catalog.
fn store_theme(site: &Path) -> anyhow::Result<String> {
    let path = site.join("store.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("`{}` is not JSON", path.display()))?;
    Ok(value.get("theme").and_then(|t| t.as_str()).unwrap_or("minimal").to_owned())
}

fn effective(site: &Path, choice: Option<&str>) -> anyhow::Result<theme::Theme> {
    let store_theme;
    let theme_file = site.join("theme.json");
    let source = match choice {
        Some(arg) => theme::source_from_arg(arg),
        None => {
            store_theme = store_theme_or_default(site);
            theme::for_site(&theme_file, &store_theme)
        }
    };
    let (t, warnings) = theme::load(&source).map_err(|diags| {
        print_diagnostics(&diags);
        anyhow::anyhow!("the theme is not valid")
    })?;
    print_diagnostics(&warnings);
    Ok(t)
}

fn store_theme_or_default(site: &Path) -> String {
    store_theme(site).unwrap_or_else(|_| "minimal".into())
}

/// Writes through a temporary file and a rename, so a reader never sees half a file.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().map_or("theme".into(), |n| n.to_string_lossy()),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write `{}`", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write `{}`", path.display()))?;
    Ok(())
}
