//! Reads the crate manifests and sources and fails when a crate reaches across a line that
//! ARCHITECTURE.md forbids, or when the pure domain crate gains IO, a clock or floating point.
#![allow(clippy::unwrap_used)] // Test code: a panic is a test failure.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

struct Manifest {
    name: String,
    dir: PathBuf,
    deps: BTreeSet<String>,
    value: toml::Table,
}

fn manifests() -> Vec<Manifest> {
    let mut out = Vec::new();
    for entry in fs::read_dir(root().join("crates")).unwrap() {
        let dir = entry.unwrap().path();
        let text = fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        let value: toml::Table = toml::from_str(&text).unwrap();
        let name = value["package"]["name"].as_str().unwrap().to_owned();
        let keys = |section: &str| -> BTreeSet<String> {
            value
                .get(section)
                .and_then(|v| v.as_table())
                .map(|t| t.keys().cloned().collect())
                .unwrap_or_default()
        };
        out.push(Manifest {
            deps: keys("dependencies"),
            name,
            dir,
            value,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// What each crate may depend on, by the layering in ARCHITECTURE.md. `None` = anything.
fn allowed(name: &str) -> Option<&'static [&'static str]> {
    match name {
        "domain" => Some(&["thiserror", "rust_decimal", "iso_currency", "uuid"]),
        // Receipt printing: the domain plus printing libraries; its transport is std::net.
        "printer" => Some(&["domain", "thiserror", "qrcode"]),
        _ => None,
    }
}

/// Crates that must never appear in a crate's dependencies.
fn forbidden(name: &str) -> &'static [&'static str] {
    const IO: &[&str] = &[
        "tokio",
        "async-std",
        "futures",
        "serde",
        "serde_json",
        "sqlx",
        "rusqlite",
        "axum",
        "hyper",
        "reqwest",
        "tower",
        "tracing",
        "jiff",
        "chrono",
        "time",
    ];
    match name {
        "domain" => IO,
        "protocol" => &[
            "store",
            "hq",
            "import",
            "kassa",
            "test-support",
            "sqlx",
            "axum",
            "tokio",
        ],
        "store" => &["hq", "import", "kassa", "test-support"],
        "hq" => &["store", "kassa", "test-support"],
        "import" => &[
            "store",
            "hq",
            "kassa",
            "test-support",
            "sqlx",
            "axum",
            "tokio",
        ],
        "payments" => &["store", "hq", "import", "kassa", "test-support", "sqlx"],
        "fiscal" => &[
            "store",
            "hq",
            "import",
            "kassa",
            "test-support",
            "sqlx",
            "axum",
            "tokio",
        ],
        "tls" => &[
            "store",
            "hq",
            "import",
            "kassa",
            "test-support",
            "sqlx",
            "axum",
            "tokio",
        ],
        "test-support" => &[],
        _ => &[],
    }
}

#[test]
fn every_crate_folder_is_named_like_its_crate_and_uses_workspace_lints() {
    for m in manifests() {
        assert_eq!(
            m.dir.file_name().unwrap().to_str().unwrap(),
            m.name,
            "crate folder and name differ"
        );
        let lints = m.value.get("lints").and_then(|l| l.get("workspace"));
        assert_eq!(
            lints.and_then(toml::Value::as_bool),
            Some(true),
            "{} must say [lints] workspace = true",
            m.name
        );
    }
}

#[test]
fn no_crate_reaches_across_a_forbidden_line() {
    let mut problems = Vec::new();
    for m in manifests() {
        if let Some(allow) = allowed(&m.name) {
            for dep in &m.deps {
                if !allow.contains(&dep.as_str()) {
                    problems.push(format!(
                        "{} may not depend on {dep} (allowed: {allow:?})",
                        m.name
                    ));
                }
            }
        }
        for dep in &m.deps {
            if forbidden(&m.name).contains(&dep.as_str()) {
                problems.push(format!("{} must not depend on {dep}", m.name));
            }
        }
        // The test harness is a dev-dependency only.
        if m.name != "kassa" && m.deps.contains("test-support") {
            problems.push(format!(
                "{} uses test-support outside dev-dependencies",
                m.name
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "layering violations:\n{}",
        problems.join("\n")
    );
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn domain_does_no_io_reads_no_clock_and_uses_no_floats() {
    let mut files = Vec::new();
    rust_files(&root().join("crates/domain/src"), &mut files);
    let banned = [
        "f32",
        "f64",
        "std::fs",
        "std::net",
        "std::env",
        "std::thread",
        "std::process",
        "SystemTime",
        "Instant::now",
        "println!",
        "eprintln!",
        "now_v7",
        "new_v4",
        "unsafe",
    ];
    let mut problems = Vec::new();
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for word in banned {
                let hit = code.match_indices(word).any(|(at, _)| {
                    let before = code[..at].chars().next_back();
                    let after = code[at + word.len()..].chars().next();
                    let ident =
                        |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
                    !ident(before) && !ident(after)
                });
                if hit {
                    problems.push(format!("{}:{}: `{word}`", file.display(), number + 1));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "the domain crate must stay pure:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_source_file_says_what_it_is_for() {
    let mut files = Vec::new();
    rust_files(&root().join("crates"), &mut files);
    let missing: Vec<String> = files
        .iter()
        .filter(|f| {
            let text = fs::read_to_string(f).unwrap();
            !text.trim_start().starts_with("//!")
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "files without a `//!` first line:\n{}",
        missing.join("\n")
    );
}
