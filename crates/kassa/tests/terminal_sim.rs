//! `kassa terminal-sim` as a real process: Adyen's official Node library (its local Terminal API
//! client with NexoCrypto encryption) sends a payment and decrypts a valid PaymentResponse.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;

use test_support::Process;

const PASSPHRASE: &str = "interop passphrase 123";
const KEY_ID: &str = "KassaInteropKey";
const POI: &str = "V400m-324688179";

fn node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../payments/tests/node")
}

/// Whether Node.js is installed: without it the test fails, or is skipped when the run allows
/// skipping (`test_support::skip`), like the other optional tools.
async fn node_installed() -> bool {
    let found = tokio::process::Command::new("node")
        .arg("--version")
        .output()
        .await
        .is_ok_and(|o| o.status.success());
    if !found {
        test_support::skip::skip(
            "the Node interoperability test needs Node.js (`node` and `npm`), which is not installed",
            "install Debian's `nodejs` and `npm` packages",
        );
    }
    found
}

/// The Node library must be installed (`npm ci`, which downloads it from npm on the first run);
/// CI installs it, so there a missing `node_modules` is a failure, not something to paper over.
async fn ensure_node_modules() {
    let dir = node_dir();
    if dir.join("node_modules/@adyen/api-library").exists() {
        return;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{}/node_modules is missing: CI must run `npm ci --prefix crates/payments/tests/node`",
        dir.display()
    );
    let status = tokio::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .status()
        .await
        .expect("npm is needed for the Node interoperability test");
    assert!(status.success(), "npm ci failed in {}", dir.display());
}

async fn start_sim(state: &Path) -> Process {
    // The passphrase comes from a file, as the README recommends: a flag would show in `ps`.
    std::fs::create_dir_all(state).unwrap();
    let passphrase_file = state.join("terminal.pass");
    std::fs::write(&passphrase_file, format!("{PASSPHRASE}\n")).unwrap();
    Process::spawn(
        Path::new(env!("CARGO_BIN_EXE_kassa")),
        &[
            "terminal-sim",
            "--listen",
            "127.0.0.1:0",
            "--poi-id",
            POI,
            "--state-dir",
            state.to_str().unwrap(),
            "--key-id",
            KEY_ID,
            "--passphrase-file",
            passphrase_file.to_str().unwrap(),
        ],
    )
    .await
    .unwrap()
}

async fn node_pay(url: &str, ca: &Path, passphrase: &str, amount: &str) -> std::process::Output {
    tokio::process::Command::new("node")
        .arg(node_dir().join("pay.js"))
        .env("TERMINAL_URL", url)
        .env("TERMINAL_CA", ca)
        .env("POI_ID", POI)
        .env("KEY_ID", KEY_ID)
        .env("KEY_VERSION", "1")
        .env("PASSPHRASE", passphrase)
        .env("AMOUNT", amount)
        .env("CURRENCY", "EUR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .expect("node is needed for the Node interoperability test")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adyens_node_library_pays_through_the_simulator_and_decrypts_the_answer() {
    if !node_installed().await {
        return;
    }
    ensure_node_modules().await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("terminal");
    let sim = start_sim(&state).await;
    let ca = state.join("ca.pem");

    let out = node_pay(&sim.url, &ca, PASSPHRASE, "12.34").await;
    assert!(
        out.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let response = &printed["response"]["SaleToPOIResponse"];
    assert_eq!(response["MessageHeader"]["ServiceID"], printed["serviceId"]);
    let payment = &response["PaymentResponse"];
    assert_eq!(payment["Response"]["Result"], "Success", "{printed}");
    assert_eq!(
        payment["SaleData"]["SaleTransactionID"]["TransactionID"],
        "node-sale-1"
    );
    assert_eq!(
        payment["PaymentResult"]["AmountsResp"]["AuthorizedAmount"].to_string(),
        "12.34"
    );
    // Adyen's library keeps only the fields its typings name: the masked PAN arrives under
    // the documented spelling `MaskedPan` (12.34 is even, so the simulator's Visa test card).
    assert_eq!(
        payment["PaymentResult"]["PaymentInstrumentData"]["CardData"]["MaskedPan"],
        "411111 **** 1111",
        "{printed}"
    );
    assert!(
        !payment["POIData"]["POITransactionID"]["TransactionID"]
            .as_str()
            .unwrap()
            .is_empty()
    );

    // The terminal kept exactly that payment, in minor units.
    let txns: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("transactions.json")).unwrap()).unwrap();
    let txns = txns["txns"].as_array().unwrap();
    assert_eq!(txns.len(), 1);
    assert_eq!(txns[0]["requested_minor"], 1234);
    assert_eq!(txns[0]["state"], "Approved");

    // A client with another passphrase is refused and nothing is charged.
    let wrong = node_pay(&sim.url, &ca, "not the passphrase", "5.00").await;
    assert!(!wrong.status.success());
    let txns: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("transactions.json")).unwrap()).unwrap();
    assert_eq!(txns["txns"].as_array().unwrap().len(), 1);
    sim.kill9().await.unwrap();
}
