//! STYLE.md §1: the runtime never names a concrete provider. Only the CLI and the manifest
//! wire them in; the host knows the Provider trait and contract ids.

use std::process::Command;

#[test]
fn weft_host_depends_on_no_concrete_provider() {
    let output = Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            "weft-host",
            "-e",
            "normal,build",
            "--prefix",
            "none",
            "--offline",
            "--locked",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8(output.stdout).unwrap();
    assert!(
        tree.contains("weft-provider-sdk"),
        "the host should build on the provider SDK:\n{tree}"
    );
    for concrete in [
        "weft-http-server",
        "weft-keyvalue-memory",
        "weft-keyvalue-redis",
        "weft-messaging-nats",
        "hyper ",
    ] {
        assert!(
            !tree.lines().any(|l| l.starts_with(concrete)),
            "weft-host depends on {concrete}:\n{tree}"
        );
    }
}

/// A crate's source files by module path (`lib.rs`/`main.rs` is the root, `a/mod.rs` and
/// `a.rs` are `a`), with their text.
fn modules(src: &std::path::Path) -> Vec<(Vec<String>, String, String)> {
    let mut found = Vec::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let relative = path.strip_prefix(src).unwrap();
            let mut segments: Vec<String> = relative
                .iter()
                .map(|s| s.to_string_lossy().trim_end_matches(".rs").to_string())
                .collect();
            if matches!(
                segments.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                segments.pop();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            found.push((segments, relative.display().to_string(), text));
        }
    }
    found
}

/// The modules `text` (the file of module `me`) imports with `use crate::…` or `use super::…`,
/// each resolved to the longest prefix that is one of `known`.
fn imports(me: &[String], text: &str, known: &[Vec<String>]) -> Vec<Vec<String>> {
    let mut targets = Vec::new();
    // Comments dropped (they may hold `;`), then one statement per `;`.
    let code: String = text
        .lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    for statement in code.split(';') {
        // Attributes before a statement are not part of it.
        let statement = statement
            .lines()
            .map(str::trim)
            .filter(|line| !line.starts_with("#["))
            .collect::<Vec<_>>()
            .join(" ");
        let statement = statement.trim_start();
        let Some(rest) = statement
            .strip_prefix("use ")
            .or_else(|| statement.strip_prefix("pub use "))
            .or_else(|| statement.strip_prefix("pub(crate) use "))
        else {
            continue;
        };
        let rest: String = rest.chars().filter(|c| !c.is_whitespace()).collect();
        let (base, items) = match rest.split_once('{') {
            Some((base, items)) => (base.to_string(), items.trim_end_matches('}').to_string()),
            None => (rest.clone(), String::new()),
        };
        let mut paths = vec![base.trim_end_matches("::").to_string()];
        for item in items.split(',').filter(|i| !i.is_empty()) {
            let item = item.split(['{', ':']).next().unwrap_or_default();
            paths.push(format!("{}::{item}", base.trim_end_matches("::")));
        }
        for path in paths {
            let mut segments: Vec<&str> = path.split("::").collect();
            let mut module: Vec<String> = match segments.first() {
                Some(&"crate") => Vec::new(),
                // `super` in `a/b.rs` is `a`; in `a/mod.rs` (module `a`) the crate root.
                Some(&"super") => me
                    .iter()
                    .take(me.len().saturating_sub(1))
                    .cloned()
                    .collect(),
                _ => continue,
            };
            segments.remove(0);
            let mut best = module.clone();
            for segment in segments {
                module.push(segment.to_string());
                if known.contains(&module) {
                    best = module.clone();
                }
            }
            targets.push(best);
        }
    }
    targets
}

/// Files that import each other (directly or round a loop) cannot be read one at a time. A
/// module using its parent's items, or a parent its children's, is the shape of the module
/// tree and does not count. Regression: `engine.rs ↔ instance.rs`, and in the CLI
/// `up.rs → ctl/serve.rs → provider.rs → up.rs`.
fn assert_no_import_circles(src: &std::path::Path) {
    let files = modules(src);
    let known: Vec<Vec<String>> = files.iter().map(|(m, _, _)| m.clone()).collect();
    let edges: Vec<(Vec<String>, Vec<String>)> = files
        .iter()
        .flat_map(|(module, _, text)| {
            imports(module, text, &known)
                .into_iter()
                .filter(|target| !target.starts_with(module) && !module.starts_with(target))
                .map(|target| (module.clone(), target))
                .collect::<Vec<_>>()
        })
        .collect();
    // Depth-first search from every module, looking for a path back to it.
    for start in &known {
        let mut stack = vec![vec![start.clone()]];
        let mut seen = Vec::new();
        while let Some(path) = stack.pop() {
            let last = path.last().unwrap().clone();
            for (_, to) in edges.iter().filter(|(from, _)| *from == last) {
                if to == start {
                    let circle: Vec<String> =
                        path.iter().chain([to]).map(|m| m.join("::")).collect();
                    panic!("import circle in {}: {}", src.display(), circle.join(" → "));
                }
                if !seen.contains(to) {
                    seen.push(to.clone());
                    let mut longer = path.clone();
                    longer.push(to.clone());
                    stack.push(longer);
                }
            }
        }
    }
}

#[test]
fn no_import_circles_between_files() {
    let host = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    assert_no_import_circles(&host.join("src"));
    assert_no_import_circles(&host.join("cli/src"));
}

/// A file is one concern a newcomer can read at a sitting (regression: `host.rs` had grown
/// to 947 lines holding the facade, lattice serving, update policy, provider lifecycle and
/// the router).
#[test]
fn no_runtime_file_is_over_600_lines() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for (_, name, text) in modules(&src) {
        let lines = text.lines().count();
        assert!(
            lines <= 600,
            "host/src/{name} has {lines} lines; split it by concern"
        );
    }
}
