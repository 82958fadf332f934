//! `kassa price` as a real process: bad input gets a clear error naming the field or the limit,
//! and never a panic or an abort.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Output;

fn kassa_price(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_kassa"))
        .arg("price")
        .args(args)
        .output()
        .unwrap()
}

fn basket(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

const ONE_LINE: &str = r#"{"jurisdiction":"AT","at":"2025-03-14T12:00:00Z",
  "lines":[{"sku":"A","name":"Apfel","price":"1.20","tax":"reduced"}]}"#;

fn refused(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "accepted: {stderr}");
    // A refusal, not a crash: Rust panics exit with 101 and aborts by a signal.
    assert!(out.status.code().is_some_and(|c| c != 101), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn a_width_out_of_bounds_is_refused_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let file = basket(dir.path(), "b.json", ONE_LINE);
    for width in ["100000000000", "5000000000", "0", "1000"] {
        let err = refused(&kassa_price(&["--width", width, &file]));
        assert!(err.contains("--width"), "{width}: {err}");
    }
    assert!(kassa_price(&["--width", "32", &file]).status.success());
}

#[test]
fn a_basket_file_over_the_size_limit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let big = format!("{ONE_LINE}{}", " ".repeat(2 * 1024 * 1024));
    let err = refused(&kassa_price(&[&basket(dir.path(), "big.json", &big)]));
    assert!(err.contains("larger than 1024 KiB"), "{err}");
}

#[test]
fn a_basket_without_lines_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = basket(
        dir.path(),
        "empty.json",
        r#"{"jurisdiction":"AT","lines":[]}"#,
    );
    let err = refused(&kassa_price(&[&file]));
    assert!(
        err.contains("lines: a sale needs at least one line"),
        "{err}"
    );
}

#[test]
fn a_negative_price_is_refused_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = basket(
        dir.path(),
        "negative.json",
        r#"{"jurisdiction":"AT","at":"2025-03-14T12:00:00Z",
            "lines":[{"sku":"A","name":"Apfel","price":"-1.00","tax":"standard"}],
            "tenders":[{"kind":"cash","amount":"5.00"}]}"#,
    );
    let err = refused(&kassa_price(&[&file]));
    assert!(err.contains("lines[0].price"), "{err}");
    assert!(!err.contains("non-cash"), "{err}");
}

#[test]
fn a_basket_with_a_byte_order_mark_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let file = basket(dir.path(), "bom.json", &format!("\u{feff}{ONE_LINE}"));
    let out = kassa_price(&["--json", &file]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cart: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cart["total"], "1.20");
}
