//! The workspace's `rust-version` is the real minimum: no locked dependency declares a newer
//! one (read from `cargo metadata`, since an older toolchain cannot be installed here to try),
//! and the README states the same version. The workspace once said 1.85 while sqlx 0.9 needed
//! 1.94, so a toolchain the README accepted could not build Kassa.
#![allow(clippy::unwrap_used)] // Test code: a panic is a test failure.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// `1.94` or `1.94.0` as comparable numbers (missing parts count as 0).
fn version(text: &str) -> [u64; 3] {
    let mut out = [0; 3];
    for (slot, part) in out.iter_mut().zip(text.trim().split('.')) {
        *slot = part
            .parse()
            .unwrap_or_else(|_| panic!("rust-version `{text}` is not a version"));
    }
    out
}

fn workspace_rust_version() -> String {
    let text = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let value: toml::Table = toml::from_str(&text).unwrap();
    value["workspace"]["package"]["rust-version"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Every package in the locked dependency graph that declares a `rust-version` newer than `msrv`.
fn newer_than(metadata: &serde_json::Value, msrv: &str) -> Vec<String> {
    let msrv = version(msrv);
    metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| {
            let declared = p["rust_version"].as_str()?;
            (version(declared) > msrv).then(|| {
                format!(
                    "{} {} needs Rust {declared}",
                    p["name"].as_str().unwrap_or("?"),
                    p["version"].as_str().unwrap_or("?")
                )
            })
        })
        .collect()
}

#[test]
fn no_locked_dependency_needs_a_newer_rust_than_the_workspace_declares() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let msrv = workspace_rust_version();
    let newer = newer_than(&metadata, &msrv);
    assert!(
        newer.is_empty(),
        "the workspace declares rust-version {msrv}, but:\n  {}\nraise `rust-version` in Cargo.toml (and the README's requirement) or lock older versions",
        newer.join("\n  ")
    );
    // The check itself can fail: a declared minimum below what the graph needs is caught.
    assert!(
        !newer_than(&metadata, "1.60").is_empty(),
        "the dependency graph should hold packages that need more than Rust 1.60"
    );
}

#[test]
fn the_readme_states_the_workspaces_rust_version() {
    let msrv = workspace_rust_version();
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(
        readme.contains(&format!("Rust toolchain ({msrv} or newer)")),
        "README.md must say \"Rust toolchain ({msrv} or newer)\", as Cargo.toml's rust-version says"
    );
}
