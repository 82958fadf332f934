//! `kassa catalog` end to end on a real SQLite HQ: a dry run writes nothing, an import of four
//! sources (one product in three of them under different SKUs with the same GTIN) commits one
//! batch with its opening counts, a fuzzy suggestion accepted in the review file merges two
//! variants on the next run, the same import again changes nothing, and a rollback undoes
//! exactly its batch. An import with undecided suggestions, an unreadable source, a broken
//! mapping, or a location or tax category HQ does not know is refused before anything is
//! written. With HQ and a store running as processes, the opening counts reach the store
//! through the stock sync, its sales apply on top, and a rollback keeps them.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

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

/// Runs `kassa ARGS…`, which must fail; returns its standard error.
fn kassa_fails(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_kassa"))
        .args(args)
        .env("KASSA_LOG", "text")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "kassa {args:?} succeeded:\n{}\n{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Publishes reference data with the store `london-01` (GBP, tax categories `standard` and
/// `zero`) to the HQ in `hq`.
fn publish_london(hq: &Path) {
    let seed = serde_json::json!({
        "format": "kassa-seed/1",
        "jurisdictions": [{
            "code": "GB", "currency": "GBP", "pricing": "inclusive",
            "rounding": {"mode": "half-up", "level": "document"}, "cash_rounding": null,
            "rules": [
                {"category": "standard", "components": [{"code": "VAT", "rate": "20", "compound": false}], "from": null, "to": null},
                {"category": "zero", "components": [{"code": "VAT", "rate": "0", "compound": false}], "from": null, "to": null}
            ]
        }],
        "stores": [{
            "id": "london-01", "name": "Soho", "address": "1 Soho Square, London",
            "jurisdiction": "GB", "currency": "GBP", "locale": "en-GB",
            "timezone": "Europe/London", "scale_layouts": []
        }],
        "products": [],
        "pricebooks": []
    });
    std::fs::create_dir_all(hq).unwrap();
    let path = hq.join("../london-seed.json");
    std::fs::write(&path, seed.to_string()).unwrap();
    kassa(&[
        "hq",
        "--data",
        hq.to_str().unwrap(),
        "publish",
        path.to_str().unwrap(),
    ]);
}

/// What HQ holds, in numbers: reference version, live entities, import batches, stock levels
/// and the sum of on-hand.
async fn hq_state(hq: &Path) -> (i64, i64, i64, i64, i64) {
    let db = hq::db::open(&hq::db::sqlite_url(hq).unwrap())
        .await
        .unwrap();
    let one = |sql: &'static str| {
        let pool = db.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let state = (
        one("SELECT COALESCE(MAX(version), 0) FROM ref_meta").await,
        one("SELECT COUNT(*) FROM ref_entities WHERE payload IS NOT NULL").await,
        one("SELECT COUNT(*) FROM import_batches").await,
        one("SELECT COUNT(*) FROM stock_levels").await,
        one("SELECT COALESCE(SUM(on_hand), 0) FROM stock_levels").await,
    );
    db.pool.close().await;
    state
}

/// HQ's stock at `location` as its store pulls it.
async fn hq_levels(hq: &Path, location: &str) -> std::collections::BTreeMap<String, i64> {
    let db = hq::db::open(&hq::db::sqlite_url(hq).unwrap())
        .await
        .unwrap();
    let levels = hq::api::stock_snapshot(&db, location).await.unwrap().levels;
    db.pool.close().await;
    levels
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
    publish_london(&hq);

    let dry = stdout(&kassa(&[
        "catalog",
        "import",
        "--config",
        plan,
        "--dry-run",
    ]));
    assert!(dry.contains("would create"), "{dry}");
    assert!(dry.contains("1 fuzzy suggestions to review"), "{dry}");

    assert!(dry.contains("a commit would be refused"), "{dry}");
    // The suggestion is undecided: a commit is refused and writes nothing.
    let before = hq_state(&hq).await;
    let refused = kassa_fails(&["catalog", "import", "--config", plan, "--data", hq_arg]);
    assert!(
        refused.contains("1 fuzzy suggestions in") && refused.contains("are undecided"),
        "{refused}"
    );
    assert!(refused.contains("nothing was written to HQ"), "{refused}");
    assert_eq!(hq_state(&hq).await, before);

    // Committed with the suggestion left undecided (the two towels stay apart for now).
    let first = stdout(&kassa(&[
        "catalog",
        "import",
        "--config",
        plan,
        "--data",
        hq_arg,
        "--allow-undecided",
    ]));
    assert!(first.contains("committed batch import-2"), "{first}");
    assert!(
        first.contains("opening counts: set 4, 0 unchanged"),
        "{first}"
    );
    // Square's stock at Soho is london-01's opening count (the gift wrap counted as none).
    let soho = hq_levels(&hq, "london-01").await;
    assert_eq!(soho.get("MFR-ESP"), Some(&3_000), "{soho:?}");
    assert_eq!(soho.get("LS-100"), Some(&40_000), "{soho:?}");
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
    assert!(second.contains("committed batch import-3"), "{second}");
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
    assert!(
        third.contains("opening counts: set 0, 4 unchanged"),
        "{third}"
    );

    // Rolling back the merge brings the second towel back and leaves the first batch alone.
    let undo = stdout(&kassa(&[
        "catalog", "rollback", "import-3", "--data", hq_arg,
    ]));
    assert!(undo.contains("rolled back import-3"), "{undo}");
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
        batches.contains("import-2") && batches.contains("import-3"),
        "{batches}"
    );
    assert_eq!(
        hq_levels(&hq, "london-01").await.get("MFR-ESP"),
        Some(&3_000)
    );

    // Rolling back the first batch withdraws its opening counts too: with no sale, nothing.
    let undo = stdout(&kassa(&[
        "catalog", "rollback", "import-2", "--data", hq_arg,
    ]));
    assert!(undo.contains("4 opening counts withdrawn"), "{undo}");
    let soho = hq_levels(&hq, "london-01").await;
    assert!(soho.values().all(|v| *v == 0), "{soho:?}");
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

/// Writes `text` to `dir/name` and returns the path as a string.
fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_import_with_problems_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let hq = dir.path().join("hq");
    let hq_arg = hq.to_str().unwrap().to_owned();
    publish_london(&hq);
    let before = hq_state(&hq).await;
    let base = std::fs::read_to_string(plan(dir.path())).unwrap();
    // Each case: the plan (from the working one), the extra arguments, what the error says.
    let broken_mapping = write(
        dir.path(),
        "broken-mapping.toml",
        "delimiter = \";\"\n[columns]\n\"Artikelnr\" = \"sku\"\n\"Bezeichnung\" = \"titel\"\n",
    );
    let missing_column = write(
        dir.path(),
        "missing-column.toml",
        "delimiter = \";\"\nencoding = \"ISO-8859-1\"\n[columns]\n\"Artikelnr\" = \"sku\"\n\"Bezeichnung\" = \"title\"\n\"Bestand Lager\" = \"stock:lager\"\n",
    );
    let kasse = data("kasse-latin1.csv");
    let unreadable = dir.path().join("a-directory.csv");
    std::fs::create_dir(&unreadable).unwrap();
    let cases: Vec<(String, &[&str], String)> = vec![
        (base.clone(), &[], "1 fuzzy suggestions in".to_owned()),
        (
            base.replace("\"london-01\"", "\"paris-99\""),
            &["--allow-undecided"],
            "maps `square/Soho` to `paris-99`, which is not a store at HQ (stores: london-01)"
                .to_owned(),
        ),
        (
            base.replace("VAT = \"standard\"", "VAT = \"luxury\"")
                .replace("standard = \"20\"", "standard = \"20\"\nluxury = \"20\""),
            &["--allow-undecided"],
            "[tax] maps `VAT` to tax category `luxury`, which no jurisdiction at HQ has".to_owned(),
        ),
        (
            format!(
                "{base}\n[[source]]\nname = \"kasse\"\nfile = \"{}\"\nmapping = \"{}\"\n",
                kasse.display(),
                missing_column
            ),
            &["--allow-undecided"],
            "column `Bestand Lager` is not in the file".to_owned(),
        ),
        (
            format!(
                "{base}\n[[source]]\nname = \"kasse\"\nfile = \"{}\"\nmapping = \"{}\"\n",
                kasse.display(),
                broken_mapping
            ),
            &["--allow-undecided"],
            "column `Bezeichnung` maps to `titel`, which is not one of".to_owned(),
        ),
        (
            format!(
                "{base}\n[[source]]\nname = \"odoo2\"\nformat = \"odoo\"\nfile = \"{}\"\n",
                unreadable.display()
            ),
            &["--allow-undecided"],
            format!("{}:1: error: cannot read the file", unreadable.display()),
        ),
        (
            format!(
                "{base}\n[[source]]\nname = \"gone\"\nfile = \"{}\"\n",
                dir.path().join("missing.csv").display()
            ),
            &["--allow-undecided"],
            format!("cannot open {}", dir.path().join("missing.csv").display()),
        ),
    ];
    for (n, (text, extra, expected)) in cases.iter().enumerate() {
        let path = write(dir.path(), &format!("plan-{n}.toml"), text);
        let mut args = vec!["catalog", "import", "--config", &path, "--data", &hq_arg];
        args.extend(extra.iter());
        let refused = kassa_fails(&args);
        assert!(
            refused.contains(expected.as_str()),
            "case {n}: expected `{expected}` in:\n{refused}"
        );
        assert_eq!(hq_state(&hq).await, before, "case {n} wrote to HQ");
    }
    // The working plan commits.
    let path = write(dir.path(), "plan-ok.toml", &base);
    let out = stdout(&kassa(&[
        "catalog",
        "import",
        "--config",
        &path,
        "--data",
        &hq_arg,
        "--allow-undecided",
    ]));
    assert!(out.contains("committed batch"), "{out}");
}

/// Polls `check` every 200 ms until it answers `Some`, for at most a minute.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_counts_reach_the_store_and_a_rollback_keeps_its_sales() {
    use test_support::chain::{ChainSpec, HqDatabase, StoreSpec, spawn_chain};
    let dir = tempfile::tempdir().unwrap();
    let hq = dir.path().join("hq");
    let chain = spawn_chain(
        Path::new(env!("CARGO_BIN_EXE_kassa")),
        dir.path(),
        HqDatabase::Sqlite(hq.clone()),
        ChainSpec {
            stores: vec![StoreSpec::new(
                "vienna-01",
                "Kassa Wien Mariahilf",
                &["vienna-01-t1"],
            )],
            hq_up: true,
            pull_every_secs: 1,
        },
    )
    .await
    .unwrap();
    let hq_url = chain.hq_url().unwrap().to_owned();
    let store = &chain.stores[0];
    let store_url = store.url().unwrap().to_owned();
    let http = test_support::client();

    // A legacy till system's export: 12 mugs in the shop that becomes vienna-01.
    let csv = write(
        dir.path(),
        "kasse.csv",
        "Artikelnr;Bezeichnung;EAN;VK brutto;Bestand Filiale\nMUG-1;Opening Mug;4012345000016;9,90;12\n",
    );
    let mapping = write(
        dir.path(),
        "kasse.toml",
        "delimiter = \";\"\ndecimal = \"comma\"\ncurrency = \"EUR\"\nprices_include_tax = true\n[columns]\n\"Artikelnr\" = \"sku\"\n\"Bezeichnung\" = \"title\"\n\"EAN\" = \"barcode\"\n\"VK brutto\" = \"price\"\n\"Bestand Filiale\" = \"stock:filiale\"\n",
    );
    let plan = write(
        dir.path(),
        "plan.toml",
        &format!(
            "currency = \"EUR\"\nprices_include_tax = true\neffective_from = \"2020-01-01T00:00:00Z\"\n\n[[source]]\nname = \"shop\"\nfile = \"{csv}\"\nmapping = \"{mapping}\"\n\n[locations]\n\"shop/filiale\" = \"vienna-01\"\n"
        ),
    );
    let hq_arg = hq.to_str().unwrap();
    let out = stdout(&kassa(&[
        "catalog", "import", "--config", &plan, "--data", hq_arg,
    ]));
    assert!(out.contains("opening counts: set 1, 0 unchanged"), "{out}");
    let batch = out
        .split_whitespace()
        .find(|w| w.starts_with("import-"))
        .unwrap()
        .trim_end_matches('`')
        .to_owned();

    // The store's stock sync: the count is in HQ's figures though no terminal made it.
    let snapshot = |http: reqwest::Client, url: String, token: String| async move {
        let answer: serde_json::Value = http
            .get(format!("{url}/v1/sync/stock"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap();
        answer
    };
    let pulled = snapshot(http.clone(), hq_url.clone(), store.token.clone()).await;
    assert_eq!(pulled["location"], "vienna-01");
    assert_eq!(pulled["levels"]["MUG-1"], 12_000, "{pulled}");
    assert!(
        pulled["watermarks"].get("vienna-01-t1").is_some(),
        "{pulled}"
    );

    // The store receives the imported item and sells two.
    eventually("the store to know the imported mug", || {
        let http = http.clone();
        let url = format!("{store_url}/v1/items/4012345000016");
        async move {
            let response = http.get(url).send().await.ok()?;
            response.status().is_success().then_some(())
        }
    })
    .await;
    let body = serde_json::json!({
        "terminal": "vienna-01-t1",
        "lines": [{"code": "4012345000016", "quantity": "2"}],
        "tenders": [{"kind": "cash", "amount": "50.00"}],
    });
    let sale = test_support::signed(
        http.post(format!("{store_url}/v1/sales")),
        &store_url,
        &body,
    )
    .header("Idempotency-Key", "mug-sale-1")
    .json(&body)
    .send()
    .await
    .unwrap();
    assert!(sale.status().is_success(), "{:?}", sale.text().await);
    let pulled = eventually("HQ to apply the sale", || {
        let (http, url, token) = (http.clone(), hq_url.clone(), store.token.clone());
        async move {
            let pulled = snapshot(http, url, token).await;
            (pulled["levels"]["MUG-1"] == 10_000).then_some(pulled)
        }
    })
    .await;
    assert!(
        pulled["watermarks"]["vienna-01-t1"].as_u64().unwrap() >= 2,
        "{pulled}"
    );

    // The same import again changes nothing; the sale stays counted.
    let again = stdout(&kassa(&[
        "catalog", "import", "--config", &plan, "--data", hq_arg,
    ]));
    assert!(again.contains("nothing changed"), "{again}");
    assert_eq!(
        hq_levels(&hq, "vienna-01").await.get("MUG-1"),
        Some(&10_000)
    );

    // Rolling back withdraws the count: the level is the sum of its movements, the sale.
    let undo = stdout(&kassa(&["catalog", "rollback", &batch, "--data", hq_arg]));
    assert!(undo.contains("1 opening counts withdrawn"), "{undo}");
    let pulled = snapshot(http.clone(), hq_url.clone(), store.token.clone()).await;
    assert_eq!(pulled["levels"]["MUG-1"], -2_000, "{pulled}");
    let report: serde_json::Value = http
        .get(format!("{hq_url}/v1/reports/sales?store=vienna-01"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sales: i64 = report["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["sales"].as_i64().unwrap())
        .sum();
    assert_eq!(sales, 1, "{report}");
}
