//! The alert rules and the dashboard shipped in `ops/` read what Kassa exports: every Kassa
//! metric they name is on a real store node's or HQ's `/metrics`, and the fiscal signature
//! device's gauges follow a real outage of an Austrian till (its key file gone at start, back
//! at the next). `promtool` checks the rules' own logic in CI (`ops/prometheus/*.test.yml`).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use test_support::{Process, client, open_shifts, provision_demo_store, session};

const T1: &str = "vienna-01-t1";
const BREAD_GTIN: &str = "9003909062415";

fn kassa() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kassa"))
}

fn ops(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../ops")
        .join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `kassa_…` name in `text`.
fn kassa_metrics_named(text: &str) -> BTreeSet<String> {
    text.match_indices("kassa_")
        .filter(|(at, _)| {
            !text[..*at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        })
        .map(|(at, _)| {
            text[at..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect()
        })
        .collect()
}

/// The metric families a `/metrics` answer declares.
fn families(metrics: &str) -> BTreeSet<String> {
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// The value of the sample `series` (name and labels as printed).
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

async fn scrape(url: &str) -> String {
    let response = client().get(format!("{url}/metrics")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.text().await.unwrap()
}

fn cli(args: &[&str]) {
    let out = std::process::Command::new(kassa())
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "`kassa {}`: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn start_store(data: &str) -> Process {
    let store = Process::spawn(
        &kassa(),
        &["store", "--data", data, "run", "--listen", "127.0.0.1:0"],
    )
    .await
    .unwrap();
    open_shifts(&client(), &store.url, &[T1]).await.unwrap();
    store
}

async fn sell(store: &str, key: &str) {
    let response = client()
        .post(format!("{store}/v1/sales"))
        .header("Idempotency-Key", key)
        .bearer_auth(session(store, T1).unwrap())
        .json(
            &serde_json::json!({"terminal": T1, "lines": [{"code": BREAD_GTIN}],
                                  "tenders": [{"kind": "cash", "amount": "10.00"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        201,
        "{}",
        response.text().await.unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alert_rules_and_the_dashboard_read_what_kassa_exports() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("vienna-01");
    provision_demo_store(&data, "vienna-01", &[T1])
        .await
        .unwrap();
    let node = data.display().to_string();
    let key_file = data.join("rksv.pem");
    cli(&[
        "store",
        "--data",
        &node,
        "fiscal",
        "commission",
        "--terminal",
        T1,
        "--aes-key-file",
        &data.join("rksv.aes").display().to_string(),
        "--software-key-not-a-legal-device",
        &key_file.display().to_string(),
        "--key-id",
        "U:ATU13572463-K1",
    ]);
    let hq_data = dir.path().join("hq").display().to_string();
    cli(&[
        "hq",
        "--data",
        &hq_data,
        "store",
        "add",
        "--id",
        "vienna-01",
        "--name",
        "Kassa Wien",
    ]);
    let tls = test_support::test_ca().hq_run_args();
    let mut hq_args = vec!["hq", "--data", &hq_data, "run", "--listen", "127.0.0.1:0"];
    hq_args.extend(tls.iter().map(String::as_str));
    let hq = Process::spawn(&kassa(), &hq_args).await.unwrap();
    let store = start_store(&node).await;
    sell(&store.url, "alerting-1").await;

    let exported: BTreeSet<String> = families(&scrape(&store.url).await)
        .union(&families(&scrape(&hq.url).await))
        .cloned()
        .collect();
    for file in ["prometheus/kassa-rules.yml", "grafana/kassa-fleet.json"] {
        let named = kassa_metrics_named(&ops(file));
        assert!(named.len() >= 8, "{file} names only {named:?}");
        let missing: Vec<&String> = named.difference(&exported).collect();
        assert!(
            missing.is_empty(),
            "{file} reads metrics Kassa does not export: {missing:?} (exported: {exported:?})"
        );
    }

    // The signature device's gauges: signing, then out (the key file cannot be read at start,
    // a sale is marked), then back (the Sammelbeleg signs again).
    let failed = format!("kassa_store_fiscal_device_failed{{terminal=\"{T1}\"}}");
    let unsigned = format!("kassa_store_fiscal_unsigned_seconds{{terminal=\"{T1}\"}}");
    let metrics = scrape(&store.url).await;
    assert_eq!(sample(&metrics, &failed), Some(0.0), "{metrics}");
    assert_eq!(sample(&metrics, &unsigned), Some(0.0), "{metrics}");
    store.kill9().await.unwrap();
    let away = data.join("rksv.pem.away");
    std::fs::rename(&key_file, &away).unwrap();
    let store = start_store(&node).await;
    sell(&store.url, "alerting-2").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let metrics = scrape(&store.url).await;
    assert_eq!(sample(&metrics, &failed), Some(1.0), "{metrics}");
    let age = sample(&metrics, &unsigned).unwrap_or_else(|| panic!("{metrics}"));
    assert!((1.0..120.0).contains(&age), "{metrics}");
    store.kill9().await.unwrap();
    std::fs::rename(&away, &key_file).unwrap();
    let store = start_store(&node).await;
    sell(&store.url, "alerting-3").await;
    let metrics = scrape(&store.url).await;
    assert_eq!(sample(&metrics, &failed), Some(0.0), "{metrics}");
    assert_eq!(sample(&metrics, &unsigned), Some(0.0), "{metrics}");
    store.kill9().await.unwrap();
    hq.kill9().await.unwrap();
}
