//! The shape of the code, checked: the core (`api/src/platform/`) imports no feature;
//! features import the core and only the other features `FEATURE_DEPS` allows (a graph
//! without cycles); only `server` and `openapi` assemble features; and no Rust source file
//! of the workspace is over 800 lines. Read from the sources, so a new `use` that breaks a
//! rule fails here with the file and line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The core's modules, also re-exported at the crate root (`crate::db` is the core's).
const CORE: &[&str] = &[
    "platform",
    "auth",
    "cache",
    "conn",
    "cors",
    "crypto",
    "db",
    "egress",
    "error",
    "extract",
    "jobs",
    "limits",
    "registry",
    "schema",
    "sqlite_writer",
    "shutdown_signal",
    "Platform",
    "Config",
];

/// Which features a feature may use. Adding an edge is a design decision: record why in
/// `ARCHITECTURE.md`.
const FEATURE_DEPS: &[(&str, &[&str])] = &[
    ("builds", &["catalog"]),
    ("catalog", &[]),
    ("commerce", &["catalog"]),
    ("domains", &[]),
    ("feeds", &["origin"]),
    ("origin", &["domains"]),
    ("preview", &[]),
    ("tenants", &["catalog", "commerce"]),
];

/// The assembly: the only modules that may name every feature.
const ASSEMBLY: &[&str] = &["server", "openapi", "lib"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a source directory") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target" || n == "node_modules") {
                continue;
            }
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top module a file of `api/src` belongs to (`platform`, `catalog`, `builds`…).
fn module_of(file: &Path) -> String {
    let rel = file.strip_prefix(src()).expect("under src");
    let first = rel.components().next().expect("a component").as_os_str().to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// Every `crate::<name>` a line names, including grouped `use crate::{a, b::c}`.
fn crate_refs(line: &str) -> Vec<String> {
    let mut refs = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            let inner = group.split('}').next().unwrap_or_default();
            for part in inner.split(',') {
                let name: String =
                    part.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !name.is_empty() && name != "self" {
                    refs.push(name);
                }
            }
        } else {
            let name: String =
                after.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                refs.push(name);
            }
        }
        rest = after;
    }
    refs
}

/// (file, line number, module named) for every `crate::` reference outside comments.
fn references() -> Vec<(PathBuf, usize, String, String)> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut out = Vec::new();
    for file in files {
        let from = module_of(&file);
        let text = std::fs::read_to_string(&file).expect("a readable source");
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            for name in crate_refs(code) {
                out.push((file.clone(), n + 1, from.clone(), name));
            }
        }
    }
    out
}

#[test]
fn the_core_imports_no_feature() {
    let mut broken = Vec::new();
    let mut seen = 0;
    for (file, line, from, name) in references() {
        if from != "platform" {
            continue;
        }
        seen += 1;
        if !CORE.contains(&name.as_str()) {
            broken.push(format!("{}:{line}: the core names `crate::{name}`", file.display()));
        }
    }
    assert!(seen > 20, "the core's references were read ({seen})");
    assert!(broken.is_empty(), "core modules import features:\n{}", broken.join("\n"));
}

#[test]
fn features_use_the_core_and_only_the_features_they_build_on() {
    let allowed: BTreeMap<&str, &[&str]> = FEATURE_DEPS.iter().copied().collect();
    let mut broken = Vec::new();
    let mut seen = 0;
    for (file, line, from, name) in references() {
        let Some(deps) = allowed.get(from.as_str()) else { continue };
        seen += 1;
        let ok = CORE.contains(&name.as_str()) || name == from || deps.contains(&name.as_str());
        if !ok {
            broken.push(format!("{}:{line}: `{from}` names `crate::{name}`", file.display()));
        }
    }
    assert!(seen > 100, "the features' references were read ({seen})");
    assert!(broken.is_empty(), "features reach past their layer:\n{}", broken.join("\n"));
}

#[test]
fn the_feature_graph_has_no_cycle() {
    let graph: BTreeMap<&str, &[&str]> = FEATURE_DEPS.iter().copied().collect();
    // Depth-first search with colours: meeting a node on the current path is a cycle.
    fn visit<'a>(
        node: &'a str,
        graph: &BTreeMap<&'a str, &'a [&'a str]>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) {
        if done.contains(node) {
            return;
        }
        assert!(!path.contains(&node), "a cycle: {} -> {node}", path.join(" -> "));
        path.push(node);
        for next in graph.get(node).copied().unwrap_or_default() {
            assert!(graph.contains_key(next), "`{node}` builds on `{next}`, which is no feature");
            visit(next, graph, path, done);
        }
        path.pop();
        done.insert(node);
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        visit(node, &graph, &mut Vec::new(), &mut done);
    }
    assert_eq!(done.len(), FEATURE_DEPS.len());
}

#[test]
fn every_feature_and_core_module_is_on_the_map() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let known: BTreeSet<String> = FEATURE_DEPS
        .iter()
        .map(|(f, _)| (*f).to_owned())
        .chain(ASSEMBLY.iter().map(|m| (*m).to_owned()))
        .chain(std::iter::once("platform".to_owned()))
        .collect();
    for file in files {
        let module = module_of(&file);
        assert!(
            known.contains(&module),
            "{} is in no layer: add `{module}` to FEATURE_DEPS",
            file.display()
        );
    }
}

#[test]
fn no_source_file_is_over_800_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace");
    let mut files = Vec::new();
    for dir in
        ["api/src", "api/tests", "engine/src", "engine/tests", "engine/benches", "src", "tests"]
    {
        let dir = root.join(dir);
        if dir.is_dir() {
            rust_files(&dir, &mut files);
        }
    }
    assert!(files.len() > 100, "the workspace's sources were found ({})", files.len());
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let lines = std::fs::read_to_string(f).ok()?.lines().count();
            (lines > 800).then(|| format!("{} ({lines} lines)", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "split by responsibility:\n{}", long.join("\n"));
}

#[test]
fn references_are_read_from_grouped_imports_too() {
    assert_eq!(crate_refs("use crate::{builds, openapi::x};"), ["builds", "openapi"]);
    assert_eq!(crate_refs("let x = crate::db::now_ms() + crate::jobs::BUILD;"), ["db", "jobs"]);
    assert!(crate_refs("use std::sync::Arc;").is_empty());
}
