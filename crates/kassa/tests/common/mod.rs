//! What the fleet process tests (enrolment, backup) share: the `kassa` command run to its end,
//! a sale at a till, and the wait until HQ holds what a node has.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use test_support::session;

/// A bread the demo chain's Austrian stores sell.
pub const BREAD_GTIN: &str = "9003909062415";

/// The binary under test.
pub fn kassa() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kassa"))
}

/// A path as a command-line argument.
pub fn arg(p: &Path) -> String {
    p.display().to_string()
}

/// Runs `kassa ARGS…`: `Ok(stdout)` or `Err(stderr)`.
pub fn run(args: &[&str]) -> Result<String, String> {
    let out = std::process::Command::new(kassa())
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Runs `kassa ARGS…`, which must succeed: its standard output.
pub fn ok(args: &[&str]) -> String {
    ok_with(&kassa(), args)
}

/// Runs `BINARY ARGS…` (this release's `kassa`, or another's), which must succeed: its
/// standard output.
pub fn ok_with(binary: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new(binary)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "`{} {}` failed: {}",
        binary.display(),
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// HQ's data directory `hq` made ready by `binary` as the fleet tests start it: the demo
/// chain's reference data published, the chain's CA and HQ's certificate for 127.0.0.1.
pub fn prepare_hq(binary: &Path, hq: &Path) {
    let hq = arg(hq);
    let seed = arg(&test_support::demo_seed_path());
    ok_with(binary, &["hq", "--data", &hq, "publish", &seed]);
    ok_with(
        binary,
        &["hq", "--data", &hq, "tls", "init", "--name", "127.0.0.1"],
    );
}

/// Store `store` added by `hq_binary` at the HQ under `hq` (serving at `url`) and enrolled
/// by `node_binary` into `node` with `terminals`, from the one-time code HQ printed.
pub fn enrol_store(
    (hq_binary, hq): (&Path, &Path),
    (node_binary, node): (&Path, &Path),
    url: &str,
    store: &str,
    terminals: &[&str],
) {
    let printed = ok_with(
        hq_binary,
        &[
            "hq",
            "--data",
            &arg(hq),
            "store",
            "add",
            "--id",
            store,
            "--name",
            store,
            "--url",
            url,
        ],
    );
    let code = printed
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or_else(|| panic!("no enrolment code printed: {printed}"));
    let node = arg(node);
    let mut args = vec!["store", "--data", &node, "enrol", code];
    for terminal in terminals {
        args.extend(["--terminal", terminal]);
    }
    ok_with(node_binary, &args);
}

/// A free address on 127.0.0.1, for a process that must keep it across a restart.
pub fn free_listen() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("127.0.0.1:{port}")
}

/// One bread sold for cash at `till` of the node at `url` by the member signed in there: its
/// receipt number, or `None` when the node did not answer `201`.
pub async fn sell(http: &reqwest::Client, url: &str, till: &str, key: &str) -> Option<String> {
    let response = http
        .post(format!("{url}/v1/sales"))
        .header("Idempotency-Key", key)
        .bearer_auth(session(url, till)?)
        .json(&json!({"terminal": till, "lines": [{"code": BREAD_GTIN}],
                      "tenders": [{"kind": "cash", "amount": "10.00"}]}))
        .send()
        .await
        .ok()?;
    if response.status().as_u16() != 201 {
        return None;
    }
    let sale: Value = response.json().await.ok()?;
    sale["receipt"].as_str().map(str::to_owned)
}

/// Each terminal of the node at `url` with its last sequence.
pub async fn last_seqs(http: &reqwest::Client, url: &str) -> Vec<(String, u64)> {
    let status: Value = http
        .get(format!("{url}/v1/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    status["terminals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["id"].as_str().unwrap().to_owned(),
                t["last_seq"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Waits until HQ at `hq` (read with `at_hq` and the read-API token `token`) holds every event
/// the node at `node` has.
pub async fn wait_synced(
    http: &reqwest::Client,
    node: &str,
    at_hq: &reqwest::Client,
    hq: &str,
    token: &str,
) {
    let heads = last_seqs(http, node).await;
    let started = std::time::Instant::now();
    loop {
        let at = held_at_hq(at_hq, hq, token).await;
        let held = |id: &str| at.get(id).copied().unwrap_or(0);
        if heads.iter().all(|(id, seq)| held(id) >= *seq) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "HQ never caught up with the node's {heads:?}: {at:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Waits until the node at `url` has HQ's staff and catalog and a shift is open at each of
/// `tills`.
pub async fn wait_for_shifts(url: &str, tills: &[&str]) {
    let http = test_support::client();
    let started = std::time::Instant::now();
    while test_support::open_shifts(&http, url, tills).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the node never had HQ's staff and catalog"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// A client of HQ that trusts the CA `kassa hq tls init` made in HQ's data directory `hq`
/// alone, as an enrolled node does.
pub fn hq_client(hq: &Path) -> reqwest::Client {
    let ca = std::fs::read_to_string(hq.join("tls/ca.pem")).unwrap();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls::client_config(&ca).unwrap())
        .build()
        .unwrap()
}

/// Each till HQ at `hq` knows with the sequence it holds it up to (`GET /v1/terminals`, read
/// with the read-API token `token`).
pub async fn held_at_hq(
    at_hq: &reqwest::Client,
    hq: &str,
    token: &str,
) -> std::collections::BTreeMap<String, u64> {
    let at: Value = at_hq
        .get(format!("{hq}/v1/terminals"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    at["terminals"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| Some((t["id"].as_str()?.to_owned(), t["acked_seq"].as_u64()?)))
        .collect()
}

/// `kassa store --data DATA run --listen 127.0.0.1:0 EXTRA…`, once it listens.
pub async fn run_node(data: &str, extra: &[&str]) -> test_support::Process {
    let mut args = vec!["store", "--data", data, "run", "--listen", "127.0.0.1:0"];
    args.extend(extra);
    test_support::Process::spawn(&kassa(), &args).await.unwrap()
}

/// `kassa hq --data HQ run --listen LISTEN --api-token TOKEN`, once it listens: HTTPS with the
/// certificate `kassa hq tls init` made in HQ's data directory.
pub async fn run_hq(data: &str, listen: &str, token: &str) -> test_support::Process {
    let args = [
        "hq",
        "--data",
        data,
        "run",
        "--listen",
        listen,
        "--api-token",
        token,
    ];
    test_support::Process::spawn(&kassa(), &args).await.unwrap()
}

/// `name` signed in at HQ at `url` with the tests' password (`a long enough password`): the
/// session cookie and its CSRF token.
pub async fn sign_in(at_hq: &reqwest::Client, url: &str, name: &str) -> (String, String) {
    let answer = at_hq
        .post(format!("{url}/v1/session"))
        .json(&json!({"name": name, "password": "a long enough password"}))
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{name} could not sign in");
    let cookie = answer
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_owned();
    let body: Value = answer.json().await.unwrap();
    (cookie, body["csrf"].as_str().unwrap().to_owned())
}
