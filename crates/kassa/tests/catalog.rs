//! `kassa catalog` end to end on a real SQLite HQ: a dry run writes nothing, an import of four
//! sources (one product in three of them under different SKUs with the same GTIN) commits one
//! batch, a fuzzy suggestion accepted in the review file merges two variants on the next run,
//! the same import again changes nothing, and a rollback undoes exactly its batch.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../import/tests/data")
        .join(name)
        .canonicalize()
        .unwrap()
}

fn kassa(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_kassa"))
        .args(args)
        .env("KASSA_LOG", "text")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kassa {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn plan(dir: &Path) -> PathBuf {
    let text = format!(
        r#"currency = "GBP"
prices_include_tax = true
effective_from = "2026-12-01T00:00:00Z"
title_precedence = ["lightspeed"]
price_precedence = ["ospos", "square"]
review = "review.csv"

[[source]]
name = "square"
file = "{square}"

[[source]]
name = "lightspeed"
file = "{lightspeed}"

[[source]]
name = "ospos"
file = "{ospos}"
prices_include_tax = false

[[source]]
name = "odoo"
file = "{odoo}"

[tax]
VAT = "standard"

[tax_rates]
standard = "20"
zero = "0"

[locations]
"square/Soho" = "london-01"
"#,
        square = data("square.csv").display(),
        lightspeed = data("lightspeed-r.csv").display(),
        ospos = data("ospos.csv").display(),
        odoo = data("odoo-small.csv").display(),
    );
    let path = dir.join("plan.toml");
    std::fs::write(&path, text).unwrap();
    path
}

async fn variants(hq: &Path) -> std::collections::BTreeMap<String, serde_json::Value> {
    let db = hq::db::open(&hq::db::sqlite_url(hq).unwrap())
        .await
        .unwrap();
    let out = hq::import::entities(&db, "variant").await.unwrap();
    db.pool.close().await;
    out
}

#[tokio::test]
async fn import_review_reimport_and_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan(dir.path());
    let plan = plan.to_str().unwrap();
    let hq = dir.path().join("hq");
    let hq_arg = hq.to_str().unwrap();

    let dry = stdout(&kassa(&[
        "catalog",
        "import",
        "--config",
        plan,
        "--dry-run",
    ]));
    assert!(dry.contains("would create"), "{dry}");
    assert!(dry.contains("1 fuzzy suggestions to review"), "{dry}");

    let first = stdout(&kassa(&[
        "catalog", "import", "--config", plan, "--data", hq_arg,
    ]));
    assert!(first.contains("committed batch import-1"), "{first}");
    let held = variants(&hq).await;
    // 12 source rows: the espresso machine from three sources is one variant, the beans from
    // two another, the archived grinder is left out.
    assert_eq!(held.len(), 8, "{:?}", held.keys());
    let machine = &held["MFR-ESP"]["variant"];
    assert_eq!(machine["name"], "Espresso Machine");
    let ids = machine["identifiers"].to_string();
    for id in ["4006381333931", "TKN1A", "210000000029", "ESP-DLX"] {
        assert!(ids.contains(id), "{ids}");
    }
    assert!(held.contains_key("TT-9") && held.contains_key("INT-77"));

    // A person accepts the proposed merge of the two tea towels.
    let review_path = dir.path().join("review.csv");
    let review = std::fs::read_to_string(&review_path).unwrap();
    let accepted: Vec<String> = review
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 1 {
                format!("accept{l}")
            } else {
                l.to_owned()
            }
        })
        .collect();
    std::fs::write(&review_path, accepted.join("\n")).unwrap();
    let second = stdout(&kassa(&[
        "catalog", "import", "--config", plan, "--data", hq_arg,
    ]));
    assert!(second.contains("committed batch import-2"), "{second}");
    assert!(second.contains("1 from the review file"), "{second}");
    let held = variants(&hq).await;
    assert!(!held.contains_key("TT-9"), "the merged variant is removed");
    let towel = held["INT-77"]["variant"]["identifiers"].to_string();
    assert!(towel.contains("odoo_towel"), "{towel}");

    // The same import again changes nothing.
    let third = stdout(&kassa(&[
        "catalog", "import", "--config", plan, "--data", hq_arg,
    ]));
    assert!(third.contains("nothing changed"), "{third}");

    // Rolling back the merge brings the second towel back and leaves the first batch alone.
    let undo = stdout(&kassa(&[
        "catalog", "rollback", "import-2", "--data", hq_arg,
    ]));
    assert!(undo.contains("rolled back import-2"), "{undo}");
    let held = variants(&hq).await;
    assert!(held.contains_key("TT-9"));
    assert!(
        !held["INT-77"]["variant"]["identifiers"]
            .to_string()
            .contains("odoo_towel")
    );
    assert!(held.contains_key("MFR-ESP"));
    let batches = stdout(&kassa(&["catalog", "batches", "--data", hq_arg]));
    assert!(
        batches.contains("import-1") && batches.contains("import-2"),
        "{batches}"
    );
}

#[test]
fn profile_prints_the_tables_and_writes_every_diagnostic() {
    let dir = tempfile::tempdir().unwrap();
    let diagnostics = dir.path().join("diagnostics.csv");
    let out = stdout(&kassa(&[
        "catalog",
        "profile",
        data("square.csv").to_str().unwrap(),
        &format!("ls=lightspeed-r:{}", data("lightspeed-r.csv").display()),
        "--diagnostics",
        diagnostics.to_str().unwrap(),
    ]));
    assert!(out.contains("scientific notation"), "{out}");
    assert!(out.contains("│ ls "), "{out}");
    let csv = std::fs::read_to_string(&diagnostics).unwrap();
    assert!(csv.starts_with("file,line,column,severity,code,reason"));
    assert!(csv.contains(",7,Price,error,price-invalid,"), "{csv}");
}
