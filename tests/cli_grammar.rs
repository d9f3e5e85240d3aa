//! One grammar for the whole command line, checked through the binary's own `--help`:
//! every subcommand is walked, every option read, and the rules below asserted. The older
//! spellings (hidden aliases) are then run to show they still work.
//!
//! The rules: one spelling per meaning (`-o/--out`, `--cache-dir`, `--listen`, `--site`),
//! the same short flag for the same long one everywhere, `--site` defaulting to the current
//! directory, every optional value stating its default, and no path of the machine the
//! binary was built on.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_aurelio");

/// Spellings that mean the same as a canonical one and must not be shown.
const SYNONYMS: &[(&str, &str)] = &[
    ("output", "out"),
    ("output-dir", "out"),
    ("out-dir", "out"),
    ("dest", "out"),
    ("cache", "cache-dir"),
    ("port", "listen"),
    ("bind", "listen"),
    ("addr", "listen"),
    ("address", "listen"),
    ("catalog", "site"),
    ("site-dir", "site"),
];

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("COLUMNS", "100")
        .env_remove("AURELIO_CACHE_DIR")
        .env_remove("AURELIO_LISTEN")
        .output()
        .expect("the binary runs")
}

fn help(path: &[&str]) -> String {
    let mut args = path.to_vec();
    args.push("--help");
    let out = run(&args);
    assert!(out.status.success(), "`aurelio {}` failed", args.join(" "));
    String::from_utf8(out.stdout).expect("UTF-8 help")
}

/// One option as `--help` shows it.
#[derive(Debug, Clone)]
struct Opt {
    short: Option<char>,
    long: String,
    /// The value's name, for options that take one.
    value: Option<String>,
    /// Its description, continuation lines joined.
    text: String,
}

/// A help page taken apart: its usage, and each section's entries (first line, then the
/// continuation lines joined).
struct Page {
    usage: String,
    sections: BTreeMap<String, Vec<String>>,
}

fn parse(help: &str) -> Page {
    let mut usage = String::new();
    let mut sections: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut section: Option<String> = None;
    for line in help.lines().skip_while(|l| !l.starts_with("Usage:")) {
        if let Some(rest) = line.strip_prefix("Usage:") {
            usage = rest.trim().to_owned();
            section = Some("Usage".into());
        } else if !line.starts_with(' ') && line.ends_with(':') {
            section = Some(line.trim_end_matches(':').to_owned());
        } else if line.trim().is_empty() {
            if section.as_deref() == Some("Usage") {
                section = None;
            }
        } else if let Some(name) = &section {
            if name == "Usage" {
                usage.push(' ');
                usage.push_str(line.trim());
                continue;
            }
            let entries = sections.entry(name.clone()).or_default();
            // Entries start at an indent of 2 (6 for a long flag without a short one);
            // descriptions and their continuations are indented further.
            let indent = line.len() - line.trim_start().len();
            match entries.last_mut() {
                Some(last) if indent > 6 => {
                    last.push(' ');
                    last.push_str(line.trim());
                }
                _ => entries.push(line.trim().to_owned()),
            }
        }
    }
    Page { usage, sections }
}

impl Page {
    fn commands(&self) -> Vec<(String, String)> {
        self.sections
            .get("Commands")
            .into_iter()
            .flatten()
            .filter_map(|e| {
                let (name, text) = e.split_once(' ').unwrap_or((e, ""));
                (name != "help").then(|| (name.to_owned(), text.trim().to_owned()))
            })
            .collect()
    }

    fn options(&self) -> Vec<Opt> {
        let mut options = Vec::new();
        for entry in self.sections.get("Options").into_iter().flatten() {
            let mut rest = entry.as_str();
            let mut short = None;
            if let Some(s) = rest.strip_prefix('-').filter(|s| !s.starts_with('-')) {
                short = s.chars().next();
                rest = s[1..].trim_start_matches(',').trim_start();
            }
            let Some(spec) = rest.strip_prefix("--") else { continue };
            let (long, after) = spec.split_at(spec.find([' ', '=']).unwrap_or(spec.len()));
            let after = after.trim_start();
            let (value, text) = match after.strip_prefix('<') {
                Some(v) => {
                    let end = v.find('>').expect("a closed value name");
                    (Some(v[..end].to_owned()), v[end + 1..].trim_start_matches("...").trim())
                }
                None => (None, after.trim()),
            };
            if long == "help" || long == "version" {
                continue;
            }
            options.push(Opt { short, long: long.to_owned(), value, text: text.to_owned() });
        }
        options
    }
}

/// Every subcommand path with its help page, the top level first.
fn walk() -> Vec<(Vec<String>, String)> {
    let mut pages = Vec::new();
    let mut queue = vec![Vec::<String>::new()];
    while let Some(path) = queue.pop() {
        let args: Vec<&str> = path.iter().map(String::as_str).collect();
        let text = help(&args);
        for (name, _) in parse(&text).commands() {
            let mut sub = path.clone();
            sub.push(name);
            queue.push(sub);
        }
        pages.push((path, text));
    }
    pages
}

#[test]
fn every_subcommand_follows_one_grammar() {
    let pages = walk();
    let names: Vec<String> = pages.iter().map(|(p, _)| p.join(" ")).collect();
    for expected in
        ["build", "watch", "demo", "serve", "theme export", "feed google", "domain remove"]
    {
        assert!(names.iter().any(|n| n == expected), "`{expected}` is walked: {names:?}");
    }
    let build_dir = env!("CARGO_MANIFEST_DIR");
    let mut shorts: BTreeMap<String, BTreeSet<Option<char>>> = BTreeMap::new();
    let mut problems = Vec::new();
    for (path, text) in &pages {
        let command = format!("aurelio {}", path.join(" "));
        if text.contains(build_dir) || text.contains("[default: /") {
            problems.push(format!("{command}: shows a path of the build machine"));
        }
        let page = parse(text);
        let required: BTreeSet<&str> = page
            .usage
            .split(|c: char| c.is_whitespace() || "<>|[]".contains(c))
            .filter_map(|t| t.strip_prefix("--"))
            .collect();
        for opt in page.options() {
            let flag = format!("--{}", opt.long);
            shorts.entry(opt.long.clone()).or_default().insert(opt.short);
            if let Some((_, canonical)) = SYNONYMS.iter().find(|(s, _)| *s == opt.long) {
                problems.push(format!("{command}: {flag} should be spelled --{canonical}"));
            }
            let optional = !required.contains(opt.long.as_str());
            if opt.value.is_some()
                && optional
                && !opt.text.contains("[default: ")
                && !opt.text.contains("required")
            {
                problems.push(format!("{command}: {flag} does not say its default: {}", opt.text));
            }
            let demo = path.first().map(String::as_str) == Some("demo");
            if opt.long == "site" && !demo && !opt.text.contains("[default: .]") {
                problems.push(format!("{command}: --site does not default to `.`"));
            }
            if opt.long == "listen" && !opt.text.contains("a bare port means") {
                problems.push(format!("{command}: --listen does not say it takes a bare port"));
            }
        }
    }
    for (long, set) in &shorts {
        if set.len() > 1 {
            problems.push(format!("--{long} has different short flags: {set:?}"));
        }
    }
    if shorts.get("out") != Some(&BTreeSet::from([Some('o')])) {
        problems.push("-o is not --out everywhere".to_owned());
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // The top level names every subcommand of `domain`.
    let top = parse(&pages.iter().find(|(p, _)| p.is_empty()).expect("top level").1);
    let (_, about) = top.commands().into_iter().find(|(n, _)| n == "domain").expect("domain");
    let domain = parse(&help(&["domain"]));
    for (sub, _) in domain.commands() {
        assert!(about.contains(&sub), "`aurelio --help` on domain names `{sub}`: {about}");
    }
}

/// `serve --help` shows the configuration's defaults, `demo --help` a described catalog.
#[test]
fn serve_and_demo_show_their_defaults() {
    // Lines wrapped at the terminal's width joined again.
    let flat = |text: String| text.split_whitespace().collect::<Vec<_>>().join(" ");
    let serve = flat(help(&["serve"]));
    for default in ["[default: 127.0.0.1:8080]", "[default: .aurelio/data]", "[default: 250]"] {
        assert!(serve.contains(default), "serve --help shows {default}:\n{serve}");
    }
    let demo = flat(help(&["demo"]));
    assert!(demo.contains("[default: fixtures/demo-store"), "{demo}");
    assert!(demo.contains("[default: 127.0.0.1:8080]"), "{demo}");
}

fn fixtures(dir: &Path) -> std::path::PathBuf {
    let site = dir.join("site");
    let out = run(&["fixtures", "--products", "3", "-o", site.to_str().expect("UTF-8 path")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    site
}

fn ok(args: &[&Path]) -> Output {
    let args: Vec<&str> = args.iter().map(|a| a.to_str().expect("UTF-8")).collect();
    let out = run(&args);
    assert!(
        out.status.success(),
        "`aurelio {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn has_files(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some())
}

/// The new spellings and the old ones (hidden aliases) of the output and cache flags.
#[test]
fn old_and_new_spellings_of_output_and_cache_both_work() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let site = fixtures(tmp.path());
    let p = |name: &str| tmp.path().join(name);
    let (build, site_flag, out) = (Path::new("build"), Path::new("--site"), Path::new("-o"));

    ok(&[build, site_flag, &site, out, &p("a"), Path::new("--cache-dir"), &p("cache-a")]);
    assert!(p("a/index.html").is_file() && has_files(&p("cache-a")));
    ok(&[
        build,
        site_flag,
        &site,
        Path::new("--out"),
        &p("b"),
        Path::new("--cache"),
        &p("cache-b"),
    ]);
    assert!(p("b/index.html").is_file() && has_files(&p("cache-b")), "--cache still works");

    let google = Path::new("google");
    ok(&[Path::new("feed"), google, site_flag, &site, out, &p("g1.xml")]);
    ok(&[Path::new("feed"), google, site_flag, &site, Path::new("--output"), &p("g2.xml")]);
    assert_eq!(std::fs::read(p("g1.xml")).ok(), std::fs::read(p("g2.xml")).ok());

    let export = |flag: &str, file: &str| {
        let written = ok(&[
            Path::new("theme"),
            Path::new("export"),
            site_flag,
            &site,
            Path::new(flag),
            &p(file),
        ]);
        let said = String::from_utf8_lossy(&written.stdout).into_owned();
        assert!(
            said.contains("exported theme") && said.contains(file),
            "says what it wrote: {said}"
        );
        assert!(std::fs::read_to_string(p(file)).is_ok_and(|t| t.contains("\"palette\"")));
    };
    export("--out", "t1.json");
    export("--output", "t2.json");
    export("-o", "t3.json");
}

/// `--listen` and its older spelling `--port` reach the same address: with that port
/// already taken, each serving command says it cannot listen there.
#[test]
fn listen_and_the_old_port_spelling_name_the_same_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let tmp = tempfile::tempdir().expect("tempdir");
    let site = fixtures(tmp.path());
    let data = tmp.path().join("data");
    let (site, data) = (site.to_str().expect("UTF-8"), data.to_str().expect("UTF-8"));
    let out = tmp.path().join("out");
    let out = out.to_str().expect("UTF-8");
    let address = format!("127.0.0.1:{port}");
    for flag in ["--listen", "--port"] {
        for value in [port.as_str(), address.as_str()] {
            let runs: [Vec<&str>; 3] = [
                vec!["serve", flag, value, "--data", data],
                vec!["demo", flag, value, "--data", data],
                vec!["watch", flag, value, "--site", site, "--out", out],
            ];
            for args in runs {
                let done = run(&args);
                let said = String::from_utf8_lossy(&done.stderr);
                assert!(!done.status.success(), "`aurelio {}` fails", args.join(" "));
                assert!(
                    said.contains(&format!("cannot listen on {address}")),
                    "`aurelio {}`: {said}",
                    args.join(" ")
                );
            }
        }
    }
    drop(taken);
}

/// Logs on a redirected stderr carry no colour codes.
#[test]
fn logs_into_a_file_have_no_colour_codes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut serve = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(tmp.path())
        .env("AURELIO_LOG", "info")
        .env_remove("NO_COLOR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    // Read standard output to its end on a thread (a closed pipe would stop the server).
    let stdout = serve.stdout.take().expect("stdout");
    let (lines, printed) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let wait = deadline.saturating_duration_since(Instant::now());
        let line = printed.recv_timeout(wait).expect("serve says where it listens");
        if line.contains("listening on") {
            break;
        }
    }
    let stopped =
        Command::new("kill").args(["-TERM", &serve.id().to_string()]).status().expect("kill");
    assert!(stopped.success());
    let done = serve.wait_with_output().expect("serve stops");
    reader.join().expect("reader");
    let log = String::from_utf8_lossy(&done.stderr);
    assert!(log.contains("shutting down"), "the log was written: {log}");
    assert!(!log.contains('\u{1b}'), "no escape codes: {log:?}");
}
