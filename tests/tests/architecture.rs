//! `ARCHITECTURE.md` stays true to the tree: its code map names every source file, and its
//! crate graph is what each crate's `Cargo.toml` allows (so a pure crate that gains tokio,
//! aya or libc fails here, not in review). No root needed.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::Command,
};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn architecture() -> String {
    std::fs::read_to_string(repo().join("ARCHITECTURE.md")).expect("reading ARCHITECTURE.md")
}

/// The section under `## {title}`, up to the next `## `.
fn section<'a>(text: &'a str, title: &str) -> &'a str {
    let start = text
        .find(&format!("\n## {title}\n"))
        .unwrap_or_else(|| panic!("ARCHITECTURE.md has no `## {title}` section"));
    let body = &text[start + title.len() + 5..];
    body.find("\n## ").map_or(body, |end| &body[..end])
}

/// The words between backticks, in order.
fn backticked(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// The code map's bullets, each with its continuation lines joined.
fn bullets(code_map: &str) -> Vec<String> {
    let mut bullets: Vec<String> = Vec::new();
    for line in code_map.lines() {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix("- ") {
            bullets.push(rest.to_owned());
        } else if let Some(last) = bullets.last_mut()
            && !trimmed.is_empty()
        {
            last.push(' ');
            last.push_str(trimmed);
        }
    }
    bullets
}

/// Every Rust file git tracks, relative to the repository.
fn tracked_sources() -> Vec<String> {
    let out = Command::new("git")
        .args(["ls-files", "*.rs"])
        .current_dir(repo())
        .output()
        .expect("running git ls-files");
    assert!(out.status.success(), "git ls-files failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A file `dir/name.rs` is on the map when a bullet opens with `` `dir/` `` and names
/// `` `name.rs` `` (the map groups files by directory, each with what it holds).
#[test]
fn the_code_map_names_every_source_file() {
    let text = architecture();
    let bullets = bullets(section(&text, "Code map"));
    let missing: Vec<String> = tracked_sources()
        .into_iter()
        .filter(|path| {
            let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
            let dir = format!("{dir}/");
            !bullets.iter().any(|bullet| {
                let words = backticked(bullet);
                words.first() == Some(&dir.as_str()) && words.contains(&name)
            })
        })
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md's code map does not name these files (a bullet opening with \
         `dir/` that names `file.rs`):\n{}",
        missing.join("\n")
    );
}

/// A row of the `## Crate graph` table.
struct Layer {
    /// The crate's directory, relative to the repository.
    dir: String,
    /// The dependencies it may have.
    allowed: BTreeSet<String>,
    /// Marked "pure": no I/O, not even through a dependency.
    pure: bool,
}

fn crate_graph(text: &str) -> BTreeMap<String, Layer> {
    section(text, "Crate graph")
        .lines()
        .filter(|line| line.starts_with("| `"))
        .map(|row| {
            let cells: Vec<&str> = row.trim_matches('|').split('|').collect();
            assert_eq!(cells.len(), 3, "a crate graph row has 3 cells: {row}");
            let name = backticked(cells[0])[0].to_owned();
            let layer = Layer {
                dir: backticked(cells[1])[0].trim_end_matches('/').to_owned(),
                allowed: backticked(cells[2])
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
                pure: cells[0].contains("pure"),
            };
            (name, layer)
        })
        .collect()
}

/// The names in `[dependencies]` and `[target.*.dependencies]` of a manifest (build and dev
/// dependencies are tools, not layers).
fn dependencies(manifest: &Path) -> (String, BTreeSet<String>) {
    let text = std::fs::read_to_string(manifest)
        .unwrap_or_else(|e| panic!("reading {}: {e}", manifest.display()));
    let doc: toml::Table = text
        .parse()
        .unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
    let name = doc["package"]["name"].as_str().unwrap().to_owned();
    let mut deps: BTreeSet<String> = BTreeSet::new();
    let mut add = |table: Option<&toml::Value>| {
        if let Some(table) = table.and_then(toml::Value::as_table) {
            deps.extend(table.keys().cloned());
        }
    };
    add(doc.get("dependencies"));
    if let Some(targets) = doc.get("target").and_then(toml::Value::as_table) {
        for target in targets.values() {
            add(target.get("dependencies"));
        }
    }
    (name, deps)
}

/// The workspace's members, from the root manifest.
fn members() -> Vec<String> {
    let text = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let doc: toml::Table = text.parse().unwrap();
    doc["workspace"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn every_crate_depends_only_on_what_the_crate_graph_allows() {
    let text = architecture();
    let graph = crate_graph(&text);
    let mut problems = Vec::new();
    for member in members() {
        let (name, deps) = dependencies(&repo().join(&member).join("Cargo.toml"));
        let Some(layer) = graph.get(&name) else {
            problems.push(format!("{name} ({member}/) has no row in the crate graph"));
            continue;
        };
        if layer.dir != member {
            problems.push(format!(
                "{name}: the crate graph says `{}/`, the workspace `{member}/`",
                layer.dir
            ));
        }
        for dep in deps.difference(&layer.allowed) {
            problems.push(format!(
                "{name} depends on {dep}, which its row in the crate graph does not allow"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// What the pure crates exist for: no I/O runtime anywhere below them, with the features
/// they turn on (a `vipflip-common` with `user` would bring aya in).
#[test]
fn the_pure_crates_have_no_io_dependency_even_indirectly() {
    const IO: [&str; 7] = ["tokio", "aya", "libc", "socket2", "rtnetlink", "nix", "mio"];
    let text = architecture();
    let pure: Vec<String> = crate_graph(&text)
        .into_iter()
        .filter(|(_, layer)| layer.pure)
        .map(|(name, _)| name)
        .collect();
    assert!(pure.len() >= 2, "the crate graph marks no pure crates");
    for name in pure {
        let out = Command::new(env!("CARGO"))
            .args([
                "tree",
                "--offline",
                "-e",
                "normal",
                "--prefix",
                "none",
                "--format",
                "{p}",
            ])
            .args(["-p", &name])
            .current_dir(repo())
            .output()
            .expect("running cargo tree");
        assert!(
            out.status.success(),
            "cargo tree -p {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tree = String::from_utf8(out.stdout).unwrap();
        let found: Vec<&str> = tree
            .lines()
            .filter_map(|line| line.split_whitespace().next())
            .filter(|dep| IO.contains(dep))
            .collect();
        assert!(
            found.is_empty(),
            "{name} is pure but depends on {found:?}:\n{tree}"
        );
    }
}
