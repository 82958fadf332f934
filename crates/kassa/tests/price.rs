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
    for width in ["100000000000", "5000000000", "0", "1000", "42"] {
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

fn receipt(dir: &Path, name: &str, basket_json: &str) -> String {
    let out = kassa_price(&[&basket(dir, name, basket_json)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_receipt_is_the_store_nodes_in_the_baskets_time_zone_and_conventions() {
    let dir = tempfile::tempdir().unwrap();
    // Zürich at 10:15 local time (+01:00): Swiss formatting, the local time, no UTC.
    let ch = receipt(
        dir.path(),
        "ch.json",
        r#"{"jurisdiction":"CH","at":"2026-11-23T10:15:00+01:00","store_name":"Kassa Zürich HB",
            "lines":[{"sku":"UMBRELLA","name":"Taschenschirm","price":"1234.50","tax":"standard"}],
            "tenders":[{"kind":"cash","amount":"1250.00"}]}"#,
    );
    assert!(ch.contains("23.11.2026 10:15"), "{ch}");
    assert!(ch.contains("1'234.50"), "{ch}");
    assert!(!ch.contains("UTC"), "{ch}");
    // Stockholm: decimal commas; Tokyo: the yen sign and no decimals.
    let se = receipt(
        dir.path(),
        "se.json",
        r#"{"jurisdiction":"SE","at":"2026-11-23T10:15:00+01:00",
            "lines":[{"sku":"BOK","name":"Bok","price":"249.90","tax":"reduced2"}]}"#,
    );
    assert!(se.contains("249,90"), "{se}");
    assert!(!se.contains("249.90"), "{se}");
    let jp = receipt(
        dir.path(),
        "jp.json",
        r#"{"jurisdiction":"JP","at":"2026-11-23T10:15:00+09:00",
            "lines":[{"sku":"TEA","name":"Tea","price":"1500","tax":"reduced"}]}"#,
    );
    assert!(jp.contains("¥1,500"), "{jp}");
    assert!(jp.contains("2026-11-23 10:15"), "{jp}");
    // Lines no wider than the paper.
    for line in ch.lines().chain(se.lines()).chain(jp.lines()) {
        assert!(line.chars().count() <= 48, "{line:?}");
    }
}
