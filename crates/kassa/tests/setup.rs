//! Setting up stores and HQ the way the README shows, step by step with the real `kassa`
//! binary, and combining its sections as someone setting up a real store would: a store seeded
//! locally and then attached to HQ, a store without HQ's PIN pepper, a store added twice, a
//! mistyped data directory, a re-run demo. Each of these once went wrong without a word.
#![allow(clippy::unwrap_used)] // Test code: a panic is a test failure.

#[path = "../../fiscal/tests/verifier/mod.rs"]
mod verifier;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use test_support::{client, demo_seed_path, open_shifts};
use tokio::io::{AsyncBufReadExt, BufReader};

const STORE: &str = "vienna-01";
const TILL: &str = "vienna-01-t1";
const BREAD: &str = "9003909062415";
const BREAD_SKU: &str = "GRO-BRD-0012";
/// The chain's PIN pepper in the tests that share one (64 hex digits).
const PEPPER: &str = "6b617373612d636861696e2d746573742d7065707065722d3030303030303030";
/// How long a test waits for something that takes a few pull intervals (a bound, not a
/// measurement: a slow machine only makes the test wait longer).
const PATIENCE: Duration = Duration::from_secs(90);

fn kassa() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kassa"))
}

fn arg(p: &Path) -> String {
    p.display().to_string()
}

/// Runs `kassa ARGS…` to completion: (success, stdout, stderr).
fn run(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(kassa())
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `kassa ARGS…`, which must succeed; its standard output.
fn ok(args: &[&str]) -> String {
    let (success, stdout, stderr) = run(args);
    assert!(success, "`kassa {}` failed: {stderr}", args.join(" "));
    stdout
}

/// Runs `kassa ARGS…`, which must fail; its standard error.
fn refused(args: &[&str]) -> String {
    let (success, stdout, stderr) = run(args);
    assert!(
        !success,
        "`kassa {}` succeeded, printing {stdout}",
        args.join(" ")
    );
    stderr
}

/// A `kassa` process serving HTTP, its log (standard error, `RUST_LOG=info`) in a file.
struct Server {
    child: tokio::process::Child,
    url: String,
    log: PathBuf,
}

impl Server {
    async fn start(args: &[&str], log: &Path) -> Server {
        let mut child = tokio::process::Command::new(kassa())
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(log).unwrap()))
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(at) = line.find("listening on ") {
                    return line[at + "listening on ".len()..].trim().to_owned();
                }
            }
            panic!(
                "`kassa {}` exited before it listened: {}",
                args.join(" "),
                std::fs::read_to_string(log).unwrap_or_default()
            )
        })
        .await
        .unwrap();
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Server {
            child,
            url,
            log: log.to_path_buf(),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn stop(mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }
}

async fn get(url: &str) -> Value {
    client()
        .get(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Polls `url` until `done` holds for its JSON; panics with the last answer after [`PATIENCE`].
async fn wait_for(url: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let value = get(url).await;
        if done(&value) {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited in vain for {what}; last answer: {value:#}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Polls a log file until it contains `needle`.
async fn wait_for_log(server: &Server, needle: &str) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !server.log().contains(needle) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the log never said `{needle}`:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The demo data with the bread's chain price in euros set to `price`.
fn seed_with_bread_at(root: &Path, price: &str) -> PathBuf {
    let mut seed: Value =
        serde_json::from_str(&std::fs::read_to_string(demo_seed_path()).unwrap()).unwrap();
    for book in seed["pricebooks"].as_array_mut().unwrap() {
        if book["currency"] == "EUR" && book["scope"] == "chain" {
            for entry in book["entries"].as_array_mut().unwrap() {
                if entry["sku"] == BREAD_SKU {
                    entry["price"] = json!(price);
                }
            }
        }
    }
    let path = root.join(format!("seed-bread-{price}.json"));
    std::fs::write(&path, serde_json::to_vec(&seed).unwrap()).unwrap();
    path
}

/// Provisions the store in `data` (with the chain's pepper when `pepper` is given); answers
/// the till's public key.
fn provision(data: &Path, pepper: Option<&Path>) -> String {
    let data = arg(data);
    let mut args = vec![
        "store",
        "--data",
        &data,
        "provision",
        "--store",
        STORE,
        "--terminal",
        TILL,
    ];
    let pepper = pepper.map(arg);
    if let Some(p) = &pepper {
        args.extend(["--pin-pepper-file", p]);
    }
    let printed = ok(&args);
    printed
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{TILL} ")))
        .unwrap()
        .trim()
        .to_owned()
}

/// Sets HQ up in `hq` (`hq_args` name its database and pepper) with each seed file published in
/// turn, the store registered and its till's key; answers the store's credential.
fn set_up_hq(hq_args: &[String], seeds: &[&Path], public_key: &str) -> String {
    let with = |rest: &[&str]| -> Vec<String> {
        let mut all = vec!["hq".to_owned()];
        all.extend(hq_args.iter().cloned());
        all.extend(rest.iter().map(|s| (*s).to_owned()));
        all
    };
    let call = |rest: &[&str]| ok(&with(rest).iter().map(String::as_str).collect::<Vec<_>>());
    for (n, seed) in seeds.iter().enumerate() {
        let printed = call(&["publish", &arg(seed)]);
        assert_eq!(printed.trim(), format!("reference data version {}", n + 1));
    }
    let token = call(&["store", "add", "--id", STORE, "--name", "Wien Mariahilf"])
        .trim()
        .to_owned();
    call(&[
        "terminal",
        "add",
        "--store",
        STORE,
        "--id",
        TILL,
        "--public-key",
        public_key,
    ]);
    token
}

async fn start_hq(hq_args: &[String], log: &Path) -> Server {
    let mut args: Vec<&str> = vec!["hq"];
    args.extend(hq_args.iter().map(String::as_str));
    args.extend(["run", "--listen", "127.0.0.1:0"]);
    let tls = test_support::test_ca().hq_run_args();
    args.extend(tls.iter().map(String::as_str));
    Server::start(&args, log).await
}

async fn start_store(data: &Path, hq: &str, token: &str, log: &Path) -> Server {
    let data = arg(data);
    Server::start(
        &[
            "store",
            "--data",
            &data,
            "run",
            "--listen",
            "127.0.0.1:0",
            "--hq-url",
            hq,
            "--hq-token",
            token,
            "--hq-ca",
            &arg(&test_support::test_ca().ca_file),
            "--pull-every",
            "1",
        ],
        log,
    )
    .await
}

/// Issue 16, item 1: a store seeded locally twice (reference version 2) and then attached to
/// an HQ whose version 2 is a price change used to ask HQ only for versions above 2, keep the
/// old price and log nothing. It must take HQ's snapshot, sell at HQ's price, refuse a local
/// seed from then on, and report another HQ's change log as an error instead of ignoring it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_seeded_twice_then_attached_to_hq_sells_at_hqs_price() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let pepper = root.join("pin.pepper");
    std::fs::write(&pepper, PEPPER).unwrap();
    let store = root.join("store");
    let demo = demo_seed_path();
    let key = provision(&store, Some(&pepper));
    for n in 1..=2 {
        let printed = ok(&["store", "--data", &arg(&store), "seed", &arg(&demo)]);
        assert!(
            printed.contains(&format!("reference data version {n} ")),
            "{printed}"
        );
    }
    let dearer = seed_with_bread_at(root, "3.79");
    let hq_args = vec![
        "--data".to_owned(),
        arg(&root.join("hq")),
        "--pin-pepper-file".to_owned(),
        arg(&pepper),
    ];
    let token = set_up_hq(&hq_args, &[&demo, &dearer], &key);
    let hq = start_hq(&hq_args, &root.join("hq.log")).await;
    let node = start_store(&store, &hq.url, &token, &root.join("store.log")).await;

    let status = wait_for(
        &format!("{}/v1/status", node.url),
        "the store to follow HQ's change log",
        |s| s["reference_source"]["kind"] == "hq",
    )
    .await;
    assert_eq!(status["reference_version"], 2, "{status:#}");
    assert!(status["sync"]["reference_error"].is_null(), "{status:#}");
    let bread = get(&format!("{}/v1/items/{BREAD}", node.url)).await;
    assert_eq!(bread["price"], "3.79", "HQ's price, not the local seed's");
    wait_for_log(&node, "took HQ's snapshot").await;

    // A local seed would start a second version history beside HQ's: refused, nothing changed.
    let why = refused(&["store", "--data", &arg(&store), "seed", &arg(&demo)]);
    assert!(why.contains("kassa store detach"), "{why}");
    let bread = get(&format!("{}/v1/items/{BREAD}", node.url)).await;
    assert_eq!(bread["price"], "3.79");

    // Another HQ (its own database, its own change log, also at version 2) is an error in the
    // status and the log; the store keeps selling on what it has.
    node.stop().await;
    let cheaper = seed_with_bread_at(root, "2.99");
    let other_args = vec![
        "--data".to_owned(),
        arg(&root.join("hq-other")),
        "--pin-pepper-file".to_owned(),
        arg(&pepper),
    ];
    let other_token = set_up_hq(&other_args, &[&demo, &cheaper], &key);
    let other = start_hq(&other_args, &root.join("hq-other.log")).await;
    let node = start_store(&store, &other.url, &other_token, &root.join("store-2.log")).await;
    let status = wait_for(
        &format!("{}/v1/status", node.url),
        "the status to report the other change log",
        |s| s["sync"]["reference_error"].is_string(),
    )
    .await;
    let error = status["sync"]["reference_error"].as_str().unwrap();
    assert!(
        error.contains("change log") && error.contains("kassa store detach"),
        "{error}"
    );
    assert_eq!(status["reference_version"], 2);
    wait_for_log(&node, "reference data from HQ refused").await;
    let bread = get(&format!("{}/v1/items/{BREAD}", node.url)).await;
    assert_eq!(bread["price"], "3.79", "nothing from the other HQ applied");

    // Detaching explicitly is the way to move: the next start takes the other HQ's snapshot.
    node.stop().await;
    let printed = ok(&["store", "--data", &arg(&store), "detach"]);
    assert!(printed.contains("no longer follows"), "{printed}");
    let node = start_store(&store, &other.url, &other_token, &root.join("store-3.log")).await;
    wait_for(
        &format!("{}/v1/items/{BREAD}", node.url),
        "the other HQ's price after detaching",
        |item| item["price"] == "2.99",
    )
    .await;
    node.stop().await;
    other.stop().await;
    hq.stop().await;
}

/// Issue 16, item 2: a store provisioned without HQ's pepper answered "wrong PIN, 4 tries left"
/// to the right PIN and counted each try towards the lockout. It must say what is wrong, at
/// start, in its status and in the sign-in answer, and count nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_without_hqs_pin_pepper_says_so_and_counts_no_tries() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let store = root.join("store");
    let hq_dir = root.join("hq");
    // HQ keeps its own pepper in hq/keys/pin.pepper; the store is provisioned without it.
    let key = provision(&store, None);
    let hq_args = vec!["--data".to_owned(), arg(&hq_dir)];
    let token = set_up_hq(&hq_args, &[&demo_seed_path()], &key);
    let hq = start_hq(&hq_args, &root.join("hq.log")).await;
    let node = start_store(&store, &hq.url, &token, &root.join("store.log")).await;

    let status = wait_for(
        &format!("{}/v1/status", node.url),
        "the status to name the missing pepper",
        |s| s["pin_pepper_error"].is_string(),
    )
    .await;
    let problem = status["pin_pepper_error"].as_str().unwrap();
    assert!(problem.contains("give it HQ's pin.pepper"), "{problem}");
    wait_for_log(&node, "staff PINs from HQ cannot be checked").await;

    // More tries than the lockout allows, all with the right PIN: each is told why, none locks.
    for _ in 0..7 {
        let response = client()
            .post(format!("{}/v1/sign-in", node.url))
            .json(&json!({"terminal": TILL, "staff": "anna", "pin": "1111"}))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 503, "{body:#}");
        assert_eq!(body["code"], "pin_pepper_missing", "{body:#}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("this store cannot check PINs published by HQ"),
            "{body:#}"
        );
    }

    // Said at start, before any pull: a restarted node logs it from what it holds.
    node.stop().await;
    let node = start_store(
        &store,
        "https://127.0.0.1:1",
        &token,
        &root.join("store-2.log"),
    )
    .await;
    wait_for_log(&node, "staff PINs from HQ cannot be checked").await;
    node.stop().await;

    // The fix the message names: HQ's pepper file, given to `provision`.
    std::fs::remove_file(store.join("keys/pin.pepper")).unwrap();
    provision(&store, Some(&hq_dir.join("keys/pin.pepper")));
    let node = start_store(&store, &hq.url, &token, &root.join("store-3.log")).await;
    let response = client()
        .post(format!("{}/v1/sign-in", node.url))
        .json(&json!({"terminal": TILL, "staff": "anna", "pin": "1111"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        200,
        "no try was counted, so anna is not locked out: {}",
        response.text().await.unwrap()
    );
    node.stop().await;
    hq.stop().await;
}

/// Issue 16, item 3: `kassa hq store add` for a registered store exited 0 and replaced its
/// credential, and the running store got 401 from then on with no line in either log. Adding
/// must be refused; replacing a credential is its own command, and the refused pushes that
/// follow are logged at HQ and at the store with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_adding_a_store_is_refused_and_a_replaced_credential_is_logged_at_both_ends() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let pepper = root.join("pin.pepper");
    std::fs::write(&pepper, PEPPER).unwrap();
    let store = root.join("store");
    let key = provision(&store, Some(&pepper));
    let hq_args = vec![
        "--data".to_owned(),
        arg(&root.join("hq")),
        "--pin-pepper-file".to_owned(),
        arg(&pepper),
    ];
    let token = set_up_hq(&hq_args, &[&demo_seed_path()], &key);
    let hq_data = arg(&root.join("hq"));
    let why = refused(&[
        "hq", "--data", &hq_data, "store", "add", "--id", STORE, "--name", "again",
    ]);
    assert!(
        why.contains("already registered") && why.contains("rotate-credential"),
        "{why}"
    );

    let hq = start_hq(&hq_args, &root.join("hq.log")).await;
    let node = start_store(&store, &hq.url, &token, &root.join("store.log")).await;
    // The first credential still works: the refused `add` changed nothing.
    wait_for(
        &format!("{}/v1/status", node.url),
        "HQ's reference data (and staff)",
        |s| s["reference_source"]["kind"] == "hq",
    )
    .await;
    open_shifts(&client(), &node.url, &[TILL]).await.unwrap();
    let synced = |s: &Value| {
        s["sync"]["outbox"][0]["unsynced"] == 0 && s["sync"]["outbox"][0]["state"] == "ok"
    };
    wait_for(
        &format!("{}/v1/status", node.url),
        "the shift to reach HQ",
        synced,
    )
    .await;

    let printed = ok(&[
        "hq",
        "--data",
        &hq_data,
        "store",
        "rotate-credential",
        "--id",
        STORE,
    ]);
    let new_token = printed.trim().to_owned();
    assert!(new_token.starts_with("kassa_vienna-01_") && new_token != token);

    // A cash movement is a write the outbox pushes with the old credential.
    let sale = client()
        .post(format!("{}/v1/sales", node.url))
        .header("Idempotency-Key", "after-rotation")
        .header(
            "Authorization",
            format!("Bearer {}", sign_in(&node.url).await),
        )
        .json(
            &json!({"terminal": TILL, "lines": [{"code": BREAD, "quantity": "1"}],
                      "tenders": [{"kind": "cash", "amount": "5.00"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        sale.status().as_u16(),
        201,
        "{}",
        sale.text().await.unwrap()
    );
    let status = wait_for(
        &format!("{}/v1/status", node.url),
        "the status to show the refused credential",
        |s| {
            s["sync"]["outbox"][0]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("refused this store's credential"))
        },
    )
    .await;
    assert_eq!(status["sync"]["outbox"][0]["unsynced"], 1, "{status:#}");
    wait_for_log(&node, "HQ refused a push").await;
    wait_for_log(&hq, "unknown store credential").await;
    assert!(hq.log().contains("vienna-01"), "{}", hq.log());

    // Restarted with the new credential, the store catches up.
    node.stop().await;
    let node = start_store(&store, &hq.url, &new_token, &root.join("store-2.log")).await;
    wait_for(
        &format!("{}/v1/status", node.url),
        "the sale to reach HQ",
        synced,
    )
    .await;
    node.stop().await;
    hq.stop().await;
}

/// Signs the demo cashier in at the test's till; answers the session token.
async fn sign_in(url: &str) -> String {
    let body: Value = client()
        .post(format!("{url}/v1/sign-in"))
        .json(&json!({"terminal": TILL, "staff": "anna", "pin": "1111"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["session"].as_str().unwrap().to_owned()
}

/// Issue 16, item 4: `verify` or `export` on a directory that does not exist created an empty
/// ledger there and exited 0, a catalog dry run against a mistyped HQ directory reported what
/// it would create in an empty HQ, and `export --terminal nope` printed nothing. Only
/// `provision` (and HQ's set-up commands) create a data directory.
#[test]
fn commands_other_than_provision_refuse_a_missing_or_empty_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let missing = root.join("mistyped");
    let demo = arg(&demo_seed_path());
    let m = arg(&missing);
    for args in [
        vec!["store", "--data", &m, "verify"],
        vec!["store", "--data", &m, "export", "--terminal", TILL],
        vec!["store", "--data", &m, "seed", &demo],
        vec!["store", "--data", &m, "detach"],
        vec!["store", "--data", &m, "run", "--listen", "127.0.0.1:0"],
        vec![
            "store",
            "--data",
            &m,
            "printer",
            "--terminal",
            TILL,
            "--target",
            "tcp:x",
        ],
    ] {
        let why = refused(&args);
        assert!(
            why.contains("does not exist") && why.contains("kassa store provision"),
            "`kassa {}`: {why}",
            args.join(" ")
        );
        assert!(!missing.exists(), "`kassa {}` created it", args.join(" "));
    }

    let empty = root.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let why = refused(&["store", "--data", &arg(&empty), "verify"]);
    assert!(why.contains("holds no store ledger"), "{why}");
    assert!(std::fs::read_dir(&empty).unwrap().next().is_none());

    let store = root.join("store");
    provision(&store, None);
    let why = refused(&[
        "store",
        "--data",
        &arg(&store),
        "export",
        "--terminal",
        "nope",
    ]);
    assert!(why.contains("`nope`") && why.contains(TILL), "{why}");

    let plan = root.join("plan.toml");
    std::fs::write(
        &plan,
        "currency = \"EUR\"\nprices_include_tax = true\neffective_from = \"2026-12-01T00:00:00Z\"\n",
    )
    .unwrap();
    let hq = root.join("hq-mistyped");
    let why = refused(&[
        "catalog",
        "import",
        "--config",
        &arg(&plan),
        "--data",
        &arg(&hq),
        "--dry-run",
    ]);
    assert!(why.contains("no HQ database"), "{why}");
    assert!(!hq.exists(), "the catalog dry run created {}", hq.display());
}

/// Sales recorded in the demo's three stores under `dir` (their receipts).
async fn demo_receipts(dir: &Path) -> i64 {
    let mut total = 0;
    for store in ["vienna-01", "graz-01", "zurich-01"] {
        let url = format!(
            "sqlite://{}?mode=ro",
            dir.join(store).join("ledger.sqlite").display()
        );
        let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
            .await
            .unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM receipts")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        total += n;
    }
    total
}

/// Runs `kassa demo --dir DIR --simulate` for `seconds`; its console output.
fn demo(dir: &Path, seconds: &str) -> String {
    ok(&[
        "demo",
        "--dir",
        &arg(dir),
        "--simulate",
        "--rate",
        "4",
        "--seconds",
        seconds,
        "--progress-every",
        "1",
    ])
}

/// Issue 16, items 6 and 7: a re-run of `kassa demo --dir D` replayed the first run's
/// idempotency keys, so the stores answered with the first run's sales and HQ showed nothing
/// new; and the demo's console mixed JSON log lines into its output and said nothing while it
/// ran. A re-run rings new sales; the console shows progress lines and no log lines, which go to
/// a file in the data directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_of_the_demo_rings_new_sales_and_its_console_shows_progress_not_logs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let first = demo(&data, "6");
    let after_first = demo_receipts(&data).await;
    assert!(after_first > 0, "the first run rang no sales:\n{first}");
    // The Austrian tills are commissioned for the RKSV: a till's DEP export, written by the
    // command the README shows, verifies receipt by receipt; the Swiss store has none.
    let export = dir.path().join("dep-vienna-01-t1");
    let vienna = arg(&data.join("vienna-01"));
    ok(&[
        "store",
        "--data",
        &vienna,
        "fiscal",
        "export",
        "--terminal",
        "vienna-01-t1",
        "--out",
        &arg(&export),
    ]);
    let report = verifier::verify(
        &std::fs::read_to_string(export.join("dep7.json")).unwrap(),
        &std::fs::read_to_string(export.join("cryptographic-material.json")).unwrap(),
    )
    .unwrap_or_else(|finding| panic!("{finding}"));
    assert!(report.receipts > 1, "{report:?}");
    // Beside it, the till's full journal (DEP131): every event, chained and signed.
    let journal = std::fs::read_to_string(export.join("journal.jsonl")).unwrap();
    assert!(
        journal.lines().count() > report.receipts,
        "{} journal lines for {} receipts",
        journal.lines().count(),
        report.receipts
    );
    // HQ holds the same receipts, as far as the till had synced when the demo stopped: its
    // export is the store's from the start, and verifies with the material the till sent
    // with its start receipt; beside it, the till's journal as HQ holds it.
    let at_hq_dir = dir.path().join("dep-hq");
    ok(&[
        "hq",
        "--data",
        &arg(&data.join("hq")),
        "fiscal",
        "export",
        "--store",
        "vienna-01",
        "--out",
        &arg(&at_hq_dir),
    ]);
    let hq_dep = std::fs::read_to_string(at_hq_dir.join("vienna-01-t1.dep7.json")).unwrap();
    let at_store = verifier::receipts(&std::fs::read_to_string(export.join("dep7.json")).unwrap());
    let at_hq = verifier::receipts(&hq_dep);
    assert!(
        !at_hq.is_empty() && at_store.starts_with(&at_hq),
        "HQ holds {} receipts that are not the store's first ones ({} at the store)",
        at_hq.len(),
        at_store.len()
    );
    verifier::verify(
        &hq_dep,
        &std::fs::read_to_string(at_hq_dir.join("vienna-01-t1.cryptographic-material.json"))
            .unwrap(),
    )
    .unwrap_or_else(|finding| panic!("HQ's export: {finding}"));
    let hq_journal = std::fs::read_to_string(at_hq_dir.join("vienna-01-t1.journal.jsonl")).unwrap();
    assert!(
        hq_journal.lines().count() >= at_hq.len(),
        "{} journal lines at HQ for {} receipts",
        hq_journal.lines().count(),
        at_hq.len()
    );
    let zurich = refused(&[
        "store",
        "--data",
        &arg(&data.join("zurich-01")),
        "fiscal",
        "export",
        "--terminal",
        "zurich-01-t1",
        "--out",
        &arg(&dir.path().join("dep-zurich")),
    ]);
    assert!(zurich.contains("not commissioned"), "{zurich}");
    // The second run is shorter: with the first run's keys it would ring nothing new.
    let second = demo(&data, "3");
    let after_second = demo_receipts(&data).await;
    assert!(
        after_second > after_first,
        "the re-run added no sales ({after_first} before, {after_second} after):\n{second}"
    );

    for console in [&first, &second] {
        assert!(
            console
                .lines()
                .any(|l| l.contains("sales rung") && l.contains("events at HQ")),
            "no progress line:\n{console}"
        );
        assert!(
            !console.lines().any(|l| l.trim_start().starts_with('{')),
            "log lines on the console:\n{console}"
        );
    }
    let log = std::fs::read_to_string(data.join("kassa-demo.log")).unwrap();
    assert!(
        log.lines()
            .any(|l| l.starts_with('{') && l.contains("\"level\"")),
        "the log file holds no log lines:\n{log}"
    );

    // The back office of the chain the demo ran (its HQ started again on the demo's data,
    // signed in as the admin the first run printed) shows the simulated sales moving: today's
    // sales on the dashboard, a chart on the report, the tills online on the fleet page.
    let admin = first
        .split("sign in as ")
        .nth(1)
        .and_then(|rest| rest.split(", ").next())
        .and_then(|entry| entry.split_once(" / "))
        .map(|(name, rest)| {
            (
                name.to_owned(),
                rest.split(' ').next().unwrap_or("").to_owned(),
            )
        })
        .unwrap_or_else(|| panic!("no sign-in printed:\n{first}"));
    let hq_data = arg(&data.join("hq"));
    // HQ serves HTTPS with the certificate the demo left in its TLS directory (as `kassa hq
    // tls init` would have), under the demo chain's CA.
    let server = test_support::Process::spawn(
        &kassa(),
        &["hq", "--data", &hq_data, "run", "--listen", "127.0.0.1:0"],
    )
    .await
    .unwrap();
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let demo_ca = std::fs::read_to_string(data.join("hq").join("tls").join("ca.pem")).unwrap();
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(tls::client_config(&demo_ca).unwrap())
        .build()
        .unwrap();
    let signed_in = http
        .post(format!("{}/v1/session", server.url))
        .json(&json!({"name": admin.0, "password": admin.1}))
        .send()
        .await
        .unwrap();
    assert!(signed_in.status().is_success(), "{admin:?}");
    let cookie = signed_in
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_owned();
    let page = |path: &'static str| {
        let (http, cookie, url) = (http.clone(), cookie.clone(), server.url.clone());
        async move {
            let response = http
                .get(format!("{url}{path}"))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success(), "{path}");
            response.text().await.unwrap()
        }
    };
    let dashboard = page("/dashboard").await;
    let counts: Vec<i64> = dashboard
        .split("<tr data-store=")
        .skip(1)
        .filter_map(|row| row.split("<td class=\"num\">").nth(2))
        .filter_map(|cell| cell.split('<').next()?.trim().parse().ok())
        .collect();
    assert_eq!(counts.len(), 3, "a sales row per store:\n{dashboard}");
    assert!(
        counts.iter().sum::<i64>() > 0,
        "no sales today on the dashboard: {counts:?}"
    );
    assert!(
        dashboard.contains("class=\"state online\""),
        "no till online on the dashboard"
    );
    let report = page("/reports").await;
    assert!(
        report.contains("data-test=\"chart\"") && report.contains("<rect"),
        "no chart"
    );
    let fleet = page("/fleet").await;
    assert!(
        fleet.contains("data-state=\"online\""),
        "no till online on the fleet page"
    );
    // The demo's licence, issued and installed as a vendor's would be, with what the chain uses.
    assert!(
        fleet.contains("DEMO-1")
            && fleet.contains("data-test=\"licence-stores\">3 / 5")
            && fleet.contains("data-test=\"licence-terminals\">6 / 10")
            && !fleet.contains("licence-notice"),
        "no demo licence on the fleet page:\n{fleet}"
    );
    // Each store node reported its version on its pulls.
    assert!(
        fleet.contains(&format!("<td>{}</td>", env!("CARGO_PKG_VERSION"))),
        "no node version on the fleet page"
    );
    // The demo's stores connect with their client certificates, and HQ requires them; no till
    // has rotated its key or lost sequences.
    assert_eq!(
        fleet
            .matches("data-test=\"client-cert\">required (mutual TLS)")
            .count(),
        3,
        "the fleet page does not show the demo's stores requiring client certificates"
    );
    assert_eq!(
        fleet.matches("data-test=\"key-since\">1<").count(),
        6,
        "the fleet page does not show each till's key since sequence 1"
    );
    drop(server);
}

/// Issue 16, item 7: `KASSA_LOG=text` wrote colour codes into pipes and files. Plain lines
/// there; colour only on a terminal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_written_to_a_file_carry_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let store = root.join("store");
    provision(&store, None);
    let data = arg(&store);
    let log = root.join("store.log");
    let mut child = tokio::process::Command::new(kassa())
        .args(["store", "--data", &data, "run", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .env("KASSA_LOG", "text")
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("store node listening") {
            break text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the node never logged that it listens:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    assert!(!text.contains('\u{1b}'), "colour codes in a file: {text:?}");
    assert!(
        !text.trim_start().starts_with('{'),
        "not text lines: {text}"
    );
}

/// Issue 16, item 1, the other silent case: a store seeded locally and started against an HQ
/// that has published nothing yet sells on data HQ does not know about. It says so in its status
/// and log, and takes HQ's snapshot as soon as HQ publishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeded_store_attached_to_an_empty_hq_says_so_until_hq_publishes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let pepper = root.join("pin.pepper");
    std::fs::write(&pepper, PEPPER).unwrap();
    let store = root.join("store");
    let key = provision(&store, Some(&pepper));
    ok(&[
        "store",
        "--data",
        &arg(&store),
        "seed",
        &arg(&demo_seed_path()),
    ]);
    let hq_data = arg(&root.join("hq"));
    let hq_args = vec![
        "--data".to_owned(),
        hq_data.clone(),
        "--pin-pepper-file".to_owned(),
        arg(&pepper),
    ];
    // Registered, but nothing published.
    let token = set_up_hq(&hq_args, &[], &key);
    let hq = start_hq(&hq_args, &root.join("hq.log")).await;
    let node = start_store(&store, &hq.url, &token, &root.join("store.log")).await;
    let status = wait_for(
        &format!("{}/v1/status", node.url),
        "the status to say HQ has published nothing",
        |s| s["sync"]["reference_error"].is_string(),
    )
    .await;
    assert!(
        status["sync"]["reference_error"]
            .as_str()
            .unwrap()
            .contains("published no reference data"),
        "{status:#}"
    );
    assert_eq!(status["reference_source"]["kind"], "local");
    wait_for_log(&node, "published no reference data").await;

    let dearer = seed_with_bread_at(root, "3.79");
    ok(&[
        "hq",
        "--data",
        &hq_data,
        "--pin-pepper-file",
        &arg(&pepper),
        "publish",
        &arg(&dearer),
    ]);
    let status = wait_for(
        &format!("{}/v1/status", node.url),
        "the store to take HQ's snapshot",
        |s| s["reference_source"]["kind"] == "hq",
    )
    .await;
    assert!(status["sync"]["reference_error"].is_null(), "{status:#}");
    let bread = get(&format!("{}/v1/items/{BREAD}", node.url)).await;
    assert_eq!(bread["price"], "3.79");
    node.stop().await;
    hq.stop().await;
}

/// The first admin and a store manager come from `kassa hq user add`, with the password from a
/// file or standard input, never from the command line; a bad user is refused by name of the
/// field and adds nothing.
#[test]
fn users_are_added_from_the_command_line_with_the_password_from_a_file() {
    let root = tempfile::tempdir().unwrap();
    let hq = root.path().join("hq");
    let hq_arg = arg(&hq);
    ok(&[
        "hq", "--data", &hq_arg, "store", "add", "--id", STORE, "--name", "Wien",
    ]);
    let password = root.path().join("password");
    std::fs::write(&password, "correct horse battery\n").unwrap();
    let out = ok(&[
        "hq",
        "--data",
        &hq_arg,
        "user",
        "add",
        "--name",
        "Admin",
        "--role",
        "admin",
        "--password-file",
        &arg(&password),
    ]);
    assert!(out.contains("user admin added with role admin"), "{out}");
    let e = refused(&[
        "hq",
        "--data",
        &hq_arg,
        "user",
        "add",
        "--name",
        "maria",
        "--role",
        "store-manager",
        "--password-file",
        &arg(&password),
    ]);
    assert!(
        e.contains("stores: a store manager runs at least one store"),
        "{e}"
    );
    let e = refused(&[
        "hq",
        "--data",
        &hq_arg,
        "user",
        "add",
        "--name",
        "admin",
        "--role",
        "auditor",
        "--password-file",
        &arg(&password),
    ]);
    assert!(e.contains("a user `admin` exists already"), "{e}");
    // From standard input.
    let mut child = std::process::Command::new(kassa())
        .args([
            "hq",
            "--data",
            &hq_arg,
            "user",
            "add",
            "--name",
            "maria",
            "--role",
            "store-manager",
            "--store",
            STORE,
            "--password-file",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"another long password\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("user maria added with role store-manager")
    );
}

/// API keys from the command line against a running HQ: the secret is printed once, the key
/// reads what its scope allows, a rotated key keeps working for its overlap, and a key revoked
/// from the command line is refused by the running HQ at once; bad scopes are refused by name.
#[tokio::test]
async fn api_keys_are_made_rotated_and_revoked_from_the_command_line_against_a_running_hq() {
    let root = tempfile::tempdir().unwrap();
    let hq_arg = arg(&root.path().join("hq"));
    ok(&[
        "hq", "--data", &hq_arg, "store", "add", "--id", STORE, "--name", "Wien",
    ]);
    let e = refused(&[
        "hq",
        "--data",
        &hq_arg,
        "api-key",
        "create",
        "--name",
        "erp",
        "--scope",
        "stock:write",
    ]);
    assert!(e.contains("scopes: `stock:write` is no scope"), "{e}");
    let secret_of = |out: &str| {
        out.lines()
            .map(str::trim)
            .rfind(|l| l.starts_with("kassa_key_"))
            .unwrap_or_else(|| panic!("no secret in {out}"))
            .to_owned()
    };
    let made = ok(&[
        "hq",
        "--data",
        &hq_arg,
        "api-key",
        "create",
        "--name",
        "erp",
        "--scope",
        "stock:read",
    ]);
    let secret = secret_of(&made);
    let id = made.split_whitespace().nth(2).unwrap().to_owned();
    assert!(id.starts_with("key-"), "{made}");
    let listed = ok(&["hq", "--data", &hq_arg, "api-key", "list"]);
    assert!(
        listed.contains(&id) && listed.contains("stock:read"),
        "{listed}"
    );
    assert!(
        !listed.contains(&secret),
        "a list never shows a secret: {listed}"
    );

    let tls = test_support::test_ca().hq_run_args();
    let mut hq_args = vec!["hq", "--data", &hq_arg, "run", "--listen", "127.0.0.1:0"];
    hq_args.extend(tls.iter().map(String::as_str));
    let hq = test_support::Process::spawn(&kassa(), &hq_args)
        .await
        .unwrap();
    let http = client();
    let status = |path: &'static str, secret: String| {
        let (http, url) = (http.clone(), hq.url.clone());
        async move {
            http.get(format!("{url}{path}"))
                .bearer_auth(secret)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(status("/v1/stock", secret.clone()).await, 200);
    assert_eq!(status("/v1/terminals", secret.clone()).await, 403);

    let rotated = ok(&[
        "hq",
        "--data",
        &hq_arg,
        "api-key",
        "rotate",
        "--id",
        &id,
        "--overlap-hours",
        "1",
    ]);
    let new_secret = secret_of(&rotated);
    assert_ne!(new_secret, secret);
    assert_eq!(
        status("/v1/stock", secret.clone()).await,
        200,
        "within the overlap"
    );
    assert_eq!(status("/v1/stock", new_secret.clone()).await, 200);

    ok(&["hq", "--data", &hq_arg, "api-key", "revoke", "--id", &id]);
    assert_eq!(status("/v1/stock", secret).await, 401);
    assert_eq!(status("/v1/stock", new_secret).await, 200);
}
