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
    std::fs::create_dir_all(hq).unwrap();
    publish_london_to(&hq.join(".."), &["--data", hq.to_str().unwrap()]);
}

/// The London reference data: the store `london-01` in GBP with tax categories `standard` and
/// `zero`.
fn london_seed() -> serde_json::Value {
    serde_json::json!({
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
    })
}

/// Publishes the London reference data to the HQ that `target` names (`--data DIR` or
/// `--database-url URL`).
fn publish_london_to(dir: &Path, target: &[&str]) {
    let path = dir.join("london-seed.json");
    std::fs::write(&path, london_seed().to_string()).unwrap();
    // An HQ on PostgreSQL keeps no PIN pepper of its own: the chain's comes from a file.
    let pepper = dir.join("pin.pepper");
    std::fs::write(&pepper, "ab".repeat(32)).unwrap();
    let mut args = vec!["hq"];
    args.extend(target.iter().copied());
    if target.first() == Some(&"--database-url") {
        args.extend(["--pin-pepper-file", pepper.to_str().unwrap()]);
    }
    args.extend(["publish", path.to_str().unwrap()]);
    kassa(&args);
}

/// What HQ holds, in numbers: reference version, live entities, import batches, stock levels
/// and the sum of on-hand.
async fn hq_state(hq: &Path) -> (i64, i64, i64, i64, i64) {
    hq_state_at(&hq::db::sqlite_url(hq).unwrap()).await
}

/// [`hq_state`] of the HQ at database `url`.
async fn hq_state_at(url: &str) -> (i64, i64, i64, i64, i64) {
    let db = hq::db::open(url).await.unwrap();
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
        one("SELECT CAST(COALESCE(SUM(on_hand), 0) AS BIGINT) FROM stock_levels").await,
    );
    db.pool.close().await;
    state
}

/// HQ's stock at `location` as its store pulls it.
async fn hq_levels(hq: &Path, location: &str) -> std::collections::BTreeMap<String, i64> {
    hq_levels_at(&hq::db::sqlite_url(hq).unwrap(), location).await
}

/// [`hq_levels`] of the HQ at database `url`.
async fn hq_levels_at(url: &str, location: &str) -> std::collections::BTreeMap<String, i64> {
    let db = hq::db::open(url).await.unwrap();
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
    variants_at(&hq::db::sqlite_url(hq).unwrap()).await
}

/// [`variants`] of the HQ at database `url`.
async fn variants_at(url: &str) -> std::collections::BTreeMap<String, serde_json::Value> {
    let db = hq::db::open(url).await.unwrap();
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
        .bearer_auth(test_support::HQ_READ_TOKEN)
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

/// Runs `kassa ARGS…` whatever its outcome.
fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kassa"))
        .args(args)
        .env("KASSA_LOG", "text")
        .output()
        .unwrap()
}

/// Everything `kassa` printed, standard output then standard error.
fn printed(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A mapping for the small semicolon files of the tests below: SKU, title, EAN, gross price
/// with a decimal comma, and stock at `filiale`.
const SHOP_MAPPING: &str = "delimiter = \";\"\ndecimal = \"comma\"\nprices_include_tax = true\n[columns]\n\"Artikelnr\" = \"sku\"\n\"Bezeichnung\" = \"title\"\n\"EAN\" = \"barcode\"\n\"VK\" = \"price\"\n\"Bestand\" = \"stock:filiale\"\n";

/// A plan over two mapped sources `shop` and `web`, both stocking the one London store.
fn two_source_plan(dir: &Path, shop: &str, web: &str) -> String {
    let mapping = write(dir, "shop-mapping.toml", SHOP_MAPPING);
    let shop = write(dir, "shop.csv", shop);
    let web = write(dir, "web.csv", web);
    write(
        dir,
        "two.toml",
        &format!(
            "currency = \"GBP\"\nprices_include_tax = true\neffective_from = \"2026-12-01T00:00:00Z\"\nreview = \"review.csv\"\ntitle_precedence = [\"shop\", \"web\"]\n\n[[source]]\nname = \"shop\"\nfile = \"{shop}\"\nmapping = \"{mapping}\"\n\n[[source]]\nname = \"web\"\nfile = \"{web}\"\nmapping = \"{mapping}\"\n\n[locations]\n\"shop/filiale\" = \"london-01\"\n\"web/filiale\" = \"london-01\"\n"
        ),
    )
}

fn batch_of(out: &str) -> String {
    out.split_whitespace()
        .find(|w| w.starts_with("import-"))
        .unwrap()
        .trim_end_matches('`')
        .to_owned()
}

/// A merge decided in the review file moves the stock, a rollback moves it back, and rolling
/// back every batch leaves no stock row, on the HQ that `target` names at database `url`.
async fn a_merge_moves_the_stock(dir: &Path, target: &[&str], url: &str) {
    publish_london_to(dir, target);
    // The same five towels on the shelf, recorded by the till system and by the web shop.
    let plan = two_source_plan(
        dir,
        "Artikelnr;Bezeichnung;EAN;VK;Bestand\nTT-1;Linen Tea Towel;;4,50;5\n",
        "Artikelnr;Bezeichnung;EAN;VK;Bestand\nW-9;Linen Tea Towell;;4,50;5\n",
    );
    let import = |extra: &[&str]| {
        let mut args = vec!["catalog", "import", "--config", &plan];
        args.extend(target.iter().copied());
        args.extend(extra.iter().copied());
        stdout(&kassa(&args))
    };
    let rollback = |batch: &str| {
        let mut args = vec!["catalog", "rollback", batch];
        args.extend(target.iter().copied());
        kassa(&args);
    };
    let first_batch = batch_of(&import(&["--allow-undecided"]));
    let soho = hq_levels_at(url, "london-01").await;
    assert_eq!(
        (soho.get("TT-1"), soho.get("W-9")),
        (Some(&5_000), Some(&5_000)),
        "{soho:?}"
    );

    // The suggested pair is accepted: one variant, and its five towels counted once.
    let review_path = dir.join("review.csv");
    let review = std::fs::read_to_string(&review_path).unwrap();
    let mut lines: Vec<String> = review.lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 2, "{review}");
    lines[1] = format!("accept{}", lines[1]);
    std::fs::write(&review_path, lines.join("\n")).unwrap();
    let second = import(&[]);
    assert!(second.contains("1 from the review file"), "{second}");
    let merge_batch = batch_of(&second);
    assert!(!variants_at(url).await.contains_key("W-9"));
    let (_, _, _, _, on_hand) = hq_state_at(url).await;
    assert_eq!(on_hand, 5_000, "the merged-away SKU keeps no stock");
    let soho = hq_levels_at(url, "london-01").await;
    assert_eq!(soho.get("TT-1"), Some(&5_000), "{soho:?}");

    // Rolling the merge back moves the stock back.
    rollback(&merge_batch);
    let soho = hq_levels_at(url, "london-01").await;
    assert_eq!(
        (soho.get("TT-1"), soho.get("W-9")),
        (Some(&5_000), Some(&5_000)),
        "{soho:?}"
    );

    // Rolling the first batch back leaves no stock row behind.
    rollback(&first_batch);
    let (_, entities, _, levels, _) = hq_state_at(url).await;
    assert_eq!(levels, 0, "stock rows left behind");
    assert!(variants_at(url).await.is_empty(), "{entities} entities");
}

#[tokio::test]
async fn a_merge_decided_in_the_review_file_moves_the_stock_and_rollbacks_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let hq = dir.path().join("hq");
    std::fs::create_dir_all(&hq).unwrap();
    let url = hq::db::sqlite_url(&hq).unwrap();
    a_merge_moves_the_stock(dir.path(), &["--data", hq.to_str().unwrap()], &url).await;
}

#[tokio::test]
async fn on_postgresql_a_merge_moves_the_stock_and_rollbacks_leave_nothing() {
    let Some(server) = test_support::skip::postgres_url("kassa catalog on PostgreSQL").await else {
        return;
    };
    sqlx::any::install_default_drivers();
    let admin = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&server)
        .await
        .unwrap();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let name = format!("kassa_catalog_{}_{nanos}", std::process::id());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .unwrap();
    let base = server.rsplit_once('/').map_or(server.as_str(), |(b, _)| b);
    let url = format!("{base}/{name}");
    let dir = tempfile::tempdir().unwrap();
    a_merge_moves_the_stock(dir.path(), &["--database-url", &url], &url).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&admin)
    .await
    .unwrap();
}

#[test]
fn restricted_circulation_codes_never_match_across_sources() {
    let dir = tempfile::tempdir().unwrap();
    // A weighed cheese in one system and a bread roll in the other carry the same in-store
    // code (prefix 20), and two other items the same company-internal UPC (prefix 04).
    let plan = two_source_plan(
        dir.path(),
        "Artikelnr;Bezeichnung;EAN;VK;Bestand\nK-1;Mountain Cheese;2012345000001;12,00;\nK-2;Paper Bag;401234567893;0,10;\n",
        "Artikelnr;Bezeichnung;EAN;VK;Bestand\nB-7;Bread Roll;2012345000001;0,60;\nB-8;Gift Card Sleeve;401234567893;0,50;\n",
    );
    let out = run(&["catalog", "import", "--config", &plan, "--dry-run"]);
    let text = printed(&out);
    assert!(
        text.contains("4 source variants -> 4 catalog variants (0 merges on GTIN"),
        "{text}"
    );
    let profile = printed(&run(&["catalog", "profile", "--config", &plan]));
    assert!(profile.contains("restricted circulation"), "{profile}");
    assert!(profile.contains("never matched"), "{profile}");
}

#[test]
fn a_barcode_shaped_sku_with_a_bad_check_digit_is_flagged() {
    let dir = tempfile::tempdir().unwrap();
    // X-Series keeps the scanned code in `sku`; 9300000000003 has a wrong check digit.
    let file = write(
        dir.path(),
        "vend.csv",
        "id,handle,sku,name,retail_price,supply_price\nv-1,tee,9300000000003,Tee Shirt,19.90,5.00\nv-2,cap,9300000000002,Cap,9.90,2.00\n",
    );
    let diagnostics = dir.path().join("d.csv");
    kassa(&[
        "catalog",
        "profile",
        &file,
        "--diagnostics",
        diagnostics.to_str().unwrap(),
    ]);
    let csv = std::fs::read_to_string(&diagnostics).unwrap();
    assert!(
        csv.lines()
            .any(|l| l.contains(",2,") && l.contains("barcode-check-digit")),
        "{csv}"
    );
    assert!(!csv.contains(",3,,warning,barcode-check-digit"), "{csv}");
}

#[tokio::test]
async fn an_unterminated_quote_names_its_line_and_nothing_is_committed() {
    let dir = tempfile::tempdir().unwrap();
    let hq = dir.path().join("hq");
    let hq_arg = hq.to_str().unwrap();
    publish_london(&hq);
    let plan = two_source_plan(
        dir.path(),
        "Artikelnr;Bezeichnung;EAN;VK;Bestand\nA-1;Mug;;4,00;1\nA-2;\"Tall Mug;;5,00;1\nA-3;Plate;;6,00;1\nA-4;Bowl;;7,00;1\n",
        "Artikelnr;Bezeichnung;EAN;VK;Bestand\nW-1;Spoon;;1,00;1\n",
    );
    let before = hq_state(&hq).await;
    for args in [
        vec!["catalog", "profile", "--config", &plan],
        vec!["catalog", "import", "--config", &plan, "--dry-run"],
        vec!["catalog", "import", "--config", &plan, "--data", hq_arg],
    ] {
        let out = run(&args);
        let text = printed(&out);
        assert!(!out.status.success(), "{args:?} succeeded:\n{text}");
        assert!(
            text.contains("shop.csv:3: error: a quote opened on line 3 is never closed"),
            "{args:?}:\n{text}"
        );
    }
    assert_eq!(hq_state(&hq).await, before);
}

#[test]
fn a_currency_sign_must_agree_with_the_sources_currency() {
    let dir = tempfile::tempdir().unwrap();
    let mapping = write(
        dir.path(),
        "m.toml",
        "[columns]\n\"sku\" = \"sku\"\n\"title\" = \"title\"\n\"price\" = \"price\"\n",
    );
    let file = write(
        dir.path(),
        "p.csv",
        "sku,title,price\nA-1,Mug,£4.00\nA-2,Plate,€5.00\nA-3,Bowl,6.00\n",
    );
    // No currency declared: the first sign decides it, and the profile says so.
    let diagnostics = dir.path().join("d.csv");
    let out = run(&[
        "catalog",
        "profile",
        "--mapping",
        &mapping,
        &format!("mapped:{file}"),
        "--diagnostics",
        diagnostics.to_str().unwrap(),
    ]);
    let text = printed(&out);
    assert!(
        text.contains("prices in GBP decided by `£` in column `price` on line 2"),
        "{text}"
    );
    let csv = std::fs::read_to_string(&diagnostics).unwrap();
    assert!(
        csv.contains("price `€5.00` is in EUR (`€`) but its currency is GBP"),
        "{csv}"
    );
    // A declared currency the sign disagrees with: an error, the price is not taken.
    let declared = write(
        dir.path(),
        "m-eur.toml",
        "currency = \"EUR\"\n[columns]\n\"sku\" = \"sku\"\n\"title\" = \"title\"\n\"price\" = \"price\"\n",
    );
    let out = run(&[
        "catalog",
        "profile",
        "--mapping",
        &declared,
        &format!("mapped:{file}"),
        "--diagnostics",
        diagnostics.to_str().unwrap(),
    ]);
    let csv = std::fs::read_to_string(&diagnostics).unwrap();
    assert!(
        csv.contains(
            "3,price,error,price-currency,price `£4.00` is in GBP (`£`) but the source's declared currency is EUR"
        ) || csv.contains("2,price,error,price-currency,price `£4.00` is in GBP (`£`) but the source's declared currency is EUR"),
        "{csv}\n{}",
        printed(&out)
    );
}

#[tokio::test]
async fn a_windows_1252_file_of_a_known_format_is_refused_until_its_encoding_is_declared() {
    let dir = tempfile::tempdir().unwrap();
    let hq = dir.path().join("hq");
    let hq_arg = hq.to_str().unwrap();
    publish_london(&hq);
    // A Square export saved as Windows-1252: `é` is the single byte 0xE9.
    let mut bytes = b"Token,Item Name,Variation Name,SKU,GTIN,Price\nT1,Caf".to_vec();
    bytes.push(0xE9);
    bytes.extend_from_slice(b" Cup,Regular,CUP-1,,\"\xA34.00\"\n");
    let file = dir.path().join("square-1252.csv");
    std::fs::write(&file, &bytes).unwrap();
    let plan = |extra: &str| {
        write(
            dir.path(),
            "enc.toml",
            &format!(
                "currency = \"GBP\"\neffective_from = \"2026-12-01T00:00:00Z\"\n\n[[source]]\nname = \"sq\"\nfile = \"{}\"\n{extra}",
                file.display()
            ),
        )
    };
    let undeclared = plan("");
    let text = printed(&run(&[
        "catalog",
        "import",
        "--config",
        &undeclared,
        "--data",
        hq_arg,
    ]));
    assert!(
        text.contains("is not UTF-8 (line 2 has byte 0xE9)")
            && text.contains("encoding = \"windows-1252\""),
        "{text}"
    );
    assert!(variants(&hq).await.is_empty());
    let declared = plan("encoding = \"windows-1252\"\n");
    kassa(&["catalog", "import", "--config", &declared, "--data", hq_arg]);
    let held = variants(&hq).await;
    let name = held["CUP-1"]["variant"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(name.starts_with("Café Cup"), "{name}");
    assert!(!name.contains('\u{FFFD}'), "{name}");
}

#[test]
fn descriptions_and_composite_parts_are_reported_as_not_imported() {
    let dir = tempfile::tempdir().unwrap();
    let diagnostics = dir.path().join("d.csv");
    let vend = write(
        dir.path(),
        "vend.csv",
        "id,handle,sku,composite_handle,composite_sku,composite_quantity,name,retail_price\nv-1,gift-set,GS-1,,,,Gift Set,29.90\nv-2,gift-set,GS-1,mug,MUG-1,2,Gift Set,\n",
    );
    kassa(&[
        "catalog",
        "profile",
        data("square.csv").to_str().unwrap(),
        &vend,
        "--diagnostics",
        diagnostics.to_str().unwrap(),
    ]);
    let csv = std::fs::read_to_string(&diagnostics).unwrap();
    assert!(
        csv.lines()
            .any(|l| l.contains(",Description,warning,not-imported,")
                && l.contains("descriptions are not imported")),
        "{csv}"
    );
    assert!(
        csv.lines()
            .any(|l| l.contains(",composite_sku,warning,not-imported,") && l.contains("bundles")),
        "{csv}"
    );
}

#[tokio::test]
async fn sources_that_hold_nothing_and_plans_that_name_nothing_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let hq = dir.path().join("hq");
    let hq_arg = hq.to_str().unwrap().to_owned();
    publish_london(&hq);
    let before = hq_state(&hq).await;
    let good = "Artikelnr;Bezeichnung;EAN;VK;Bestand\nA-1;Mug;;4,00;1\n";
    let header = "Artikelnr;Bezeichnung;EAN;VK;Bestand\n";
    let long_name = format!("{header}A-1;{};;4,00;1\n", "x".repeat(1 << 20));
    // Each case: the shop file, a change to the plan, what the error says.
    type Edit = fn(String) -> String;
    let cases: Vec<(String, Edit, &str)> = vec![
        (String::new(), |p| p, "shop.csv:1: error: the file is empty"),
        (
            header.to_owned(),
            |p| p,
            "the file has a header row but no items",
        ),
        (
            format!("{header}A-1;;;4,00;1\nA-2;;;5,00;1\n"),
            |p| p,
            "none of its 2 rows could be imported",
        ),
        (
            good.to_owned(),
            |p| {
                p.replace(
                    "title_precedence = [\"shop\", \"web\"]",
                    "title_precedence = [\"shpo\"]",
                )
            },
            "title_precedence names `shpo`, which is no source of this import",
        ),
        (
            good.to_owned(),
            |p| p.replace("name = \"web\"", "name = \"shop\""),
            "two sources are named `shop`",
        ),
        (
            good.to_owned(),
            |p| p.replace("\"web/filiale\"", "\"web/filialle\""),
            "[locations] names `web/filialle`, which is no stock or price location",
        ),
        (long_name, |p| p, "characters long; Kassa keeps at most 255"),
    ];
    for (n, (shop, edit, expected)) in cases.into_iter().enumerate() {
        let case = dir.path().join(format!("case-{n}"));
        std::fs::create_dir_all(&case).unwrap();
        let plan = two_source_plan(&case, &shop, good.replace("A-1", "W-1").as_str());
        let text = edit(std::fs::read_to_string(&plan).unwrap());
        std::fs::write(&plan, text).unwrap();
        let out = run(&["catalog", "import", "--config", &plan, "--data", &hq_arg]);
        let printed = printed(&out);
        assert!(!out.status.success(), "case {n} succeeded:\n{printed}");
        assert!(
            printed.contains(expected),
            "case {n}: expected `{expected}` in:\n{printed}"
        );
        assert_eq!(hq_state(&hq).await, before, "case {n} wrote to HQ");
    }
}

#[tokio::test]
async fn a_dry_run_reports_every_phase_and_writes_a_readable_list() {
    let dir = tempfile::tempdir().unwrap();
    let hq = dir.path().join("hq");
    let hq_arg = hq.to_str().unwrap();
    publish_london(&hq);
    let plan = two_source_plan(
        dir.path(),
        "Artikelnr;Bezeichnung;EAN;VK;Bestand;Notiz\nM-1;Stoneware Mug;4006381333931;9,90;3;fragile\nTT-1;Linen Tea Towel;;4,50;5;\nN-1;;;1,00;1;\n",
        "Artikelnr;Bezeichnung;EAN;VK;Bestand;Notiz\nWEB-MUG;Mug, stoneware;4006381333931;9,90;;\nW-9;Linen Tea Towell;;4,50;5;\n",
    );
    let report = dir.path().join("report.md");
    let out = stdout(&kassa(&[
        "catalog",
        "import",
        "--config",
        &plan,
        "--data",
        hq_arg,
        "--dry-run",
        "--report",
        report.to_str().unwrap(),
    ]));
    for phase in [
        "reading shop",
        "reading web",
        "reading HQ's catalog",
        "matching",
        "building the catalog",
        "spelling out the entities",
        "opening counts",
        "comparing with HQ",
    ] {
        assert!(
            out.contains(&format!("{phase} ")),
            "no `{phase}` in:\n{out}"
        );
    }
    assert!(out.lines().any(|l| l.starts_with("took ")), "{out}");
    let text = std::fs::read_to_string(&report).unwrap();
    let section = |title: &str| {
        let start = text
            .find(title)
            .unwrap_or_else(|| panic!("no {title} in:\n{text}"));
        let rest = &text[start..];
        let end = rest[2..].find("\n## ").map_or(rest.len(), |e| e + 2);
        rest[..end].to_owned()
    };
    let merged = section("## Merged: 1 variants");
    assert!(merged.contains("M-1 \"Stoneware Mug\""), "{merged}");
    assert!(merged.contains("same GTIN 4006381333931"), "{merged}");
    assert!(merged.contains("web line 2, SKU WEB-MUG"), "{merged}");
    let created = section("## New: 3 variants");
    assert!(
        created.contains("TT-1 \"Linen Tea Towel\" (4.50 GBP)"),
        "{created}"
    );
    let suggestions = section("## Suggestions to review: 1");
    assert!(
        suggestions.contains("shop line 3, SKU TT-1")
            && suggestions.contains("web line 3, SKU W-9"),
        "{suggestions}"
    );
    let left_out = section("## Not imported");
    assert!(left_out.contains("column `Notiz`"), "{left_out}");
    assert!(left_out.contains("shop.csv:4:"), "{left_out}");
    // Diagnostics are kept apart: the report holds no warning about the towel's stock.
    assert!(!text.contains("warning: stock"), "{text}");
}

/// HQ's live prices entities, by key.
async fn prices(hq: &Path) -> std::collections::BTreeMap<String, serde_json::Value> {
    let db = hq::db::open(&hq::db::existing_sqlite_url(hq).unwrap())
        .await
        .unwrap();
    hq::import::entities(&db, "prices").await.unwrap()
}

/// An import reads what HQ holds a chunk at a time, never the whole catalog: a variant HQ
/// already prices in a chain book of another name (published, not imported) is found again by
/// its barcode and priced in that book, a new one in the import's; a re-run changes nothing.
#[tokio::test]
async fn a_variant_hq_already_prices_is_priced_in_its_book_and_a_re_run_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let hq = dir.path().join("hq");
    std::fs::create_dir_all(&hq).unwrap();
    let mut seed = london_seed();
    seed["products"] = serde_json::json!([{
        "id": "mugs", "name": "Mugs",
        "variants": [{"sku": "MUG-1", "name": "Blue Mug",
            "identifiers": [{"gtin": "4006381333931"}],
            "tax": "standard", "unit": "each", "channels": "all"}]
    }]);
    seed["pricebooks"] = serde_json::json!([{
        "id": "london-gbp", "version": 1, "scope": "chain", "currency": "GBP",
        "entries": [{"sku": "MUG-1", "price": "5.00", "from": "2026-01-01T00:00:00Z", "to": null}]
    }]);
    let seed_path = write(dir.path(), "seed.json", &seed.to_string());
    kassa(&["hq", "--data", hq.to_str().unwrap(), "publish", &seed_path]);
    let plan = two_source_plan(
        dir.path(),
        "Artikelnr;Bezeichnung;EAN;VK;Bestand\nS-1;Blue Mug;4006381333931;6,50;4\nS-2;Tea Towel;5000112637922;3,00;2\n",
        "Artikelnr;Bezeichnung;EAN;VK;Bestand\nW-9;Mug Rack;036000291452;9,00;1\n",
    );
    let args = [
        "catalog",
        "import",
        "--config",
        &plan,
        "--data",
        hq.to_str().unwrap(),
    ];
    let first = printed(&run(&args));
    assert!(first.contains("committed batch"), "{first}");
    let held = prices(&hq).await;
    let keys: Vec<&str> = held.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["catalog|S-2", "catalog|W-9", "london-gbp|MUG-1"],
        "{held:#?}"
    );
    let entries = &held["london-gbp|MUG-1"]["entries"];
    assert_eq!(entries.as_array().unwrap().len(), 2, "{entries}");
    assert_eq!(entries[1]["price"], "6.50");
    assert_eq!(entries[1]["from"], "2026-12-01T00:00:00Z");
    let mug = &variants(&hq).await["MUG-1"];
    assert_eq!(mug["product_id"], "mugs", "{mug}");

    let again = printed(&run(&args));
    assert!(again.contains("nothing changed"), "{again}");
    assert_eq!(prices(&hq).await, held);
}
