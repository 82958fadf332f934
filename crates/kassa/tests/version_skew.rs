//! Issue 21, item 6: upgrades with version skew. The previous release (built from the git
//! history by `.ci/previous`) and this one meet in both directions: the previous store node
//! syncs with this HQ, and this store node with the previous HQ; then the older side is
//! upgraded in place on its data (its migrations run, a copy of its database is kept first) and
//! sells and syncs on. Every sale reaches HQ exactly once, in an unbroken chain, either way. A
//! backup the previous release took restores with this one.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use common::{
    arg, enrol_store, free_listen, hq_client, kassa, ok_with, prepare_hq, sell, wait_for_shifts,
    wait_synced,
};
use test_support::{Process, client};

mod common;

const READ: &str = "skew-test-read";
const STORE: &str = "vienna-01";
const T1: &str = "vienna-01-t1";

/// The previous release's binary: built by `.ci/previous` (CI runs it before the tests; here
/// it is built the first time, in a target directory of its own, which takes minutes).
fn previous_release() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = std::process::Command::new("bash")
        .arg(root.join(".ci/previous"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the previous release could not be built: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    root.join(path)
}

async fn hq_process(binary: &Path, hq: &Path, listen: &str) -> Process {
    let args = [
        "hq",
        "--data",
        &arg(hq),
        "run",
        "--listen",
        listen,
        "--api-token",
        READ,
    ];
    Process::spawn(binary, &args).await.unwrap()
}

async fn node_process(binary: &Path, node: &Path) -> Process {
    let args = [
        "store",
        "--data",
        &arg(node),
        "run",
        "--listen",
        "127.0.0.1:0",
        "--pull-every",
        "1",
    ];
    Process::spawn(binary, &args).await.unwrap()
}

/// The sales HQ holds of the till (from its SQLite database), and whether its sequences run
/// from 1 without a gap or a repeat.
async fn sales_at_hq(hq: &Path) -> (usize, bool) {
    let db = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}?mode=ro",
        hq.join("hq.sqlite").display()
    ))
    .await
    .unwrap();
    let rows: Vec<(i64, String)> =
        sqlx::query_as("SELECT seq, kind FROM inbox WHERE terminal = $1 ORDER BY seq")
            .bind(T1)
            .fetch_all(&db)
            .await
            .unwrap();
    db.close().await;
    let unbroken = rows
        .iter()
        .zip(1_i64..)
        .all(|((seq, _), expected)| *seq == expected);
    let sales = rows.iter().filter(|(_, k)| k == "SaleCompleted").count();
    (sales, unbroken)
}

async fn sell_n(url: &str, prefix: &str, n: usize) {
    let http = client();
    for i in 0..n {
        assert!(
            sell(&http, url, T1, &format!("{prefix}-{i}"))
                .await
                .is_some(),
            "sale {prefix}-{i} refused"
        );
    }
}

/// The newest migration applied to the SQLite database `file`.
async fn schema_of(file: &Path) -> i64 {
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", file.display()))
        .await
        .unwrap();
    let version: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(&db)
            .await
            .unwrap();
    db.close().await;
    version.unwrap_or(0)
}

/// The newest migration this release has in `crates/<dir>` (`store/migrations`,
/// `hq/migrations/sqlite`), by the number its file name starts with.
fn newest_migration(dir: &str) -> i64 {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir);
    std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.split('_').next()?.parse::<i64>().ok()
        })
        .max()
        .unwrap_or_else(|| panic!("no migrations in {}", dir.display()))
}

/// How many copies an upgrade of the database `file` to this release keeps before migrating:
/// one when this release has a migration the database lacks, none when it has none to run.
async fn copies_expected(file: &Path, migrations: &str) -> usize {
    usize::from(schema_of(file).await < newest_migration(migrations))
}

/// A copy of the database the upgrade migrated, kept in `dir/pre-migration`.
fn copies_before_migrating(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("pre-migration"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_previous_store_node_syncs_with_this_hq_and_is_upgraded_in_place() {
    let previous = previous_release();
    let current = kassa();
    let dir = tempfile::tempdir().unwrap();
    let (hq, node) = (dir.path().join("hq"), dir.path().join("node"));
    let listen = free_listen();
    let url = format!("https://{listen}");
    prepare_hq(&current, &hq);
    let server = hq_process(&current, &hq, &listen).await;
    enrol_store((&current, &hq), (&previous, &node), &url, STORE, &[T1]);
    let http = client();
    let at_hq = hq_client(&hq);

    let old = node_process(&previous, &node).await;
    wait_for_shifts(&old.url, &[T1]).await;
    sell_n(&old.url, "old-node", 3).await;
    wait_synced(&http, &old.url, &at_hq, &server.url, READ).await;
    assert_eq!(sales_at_hq(&hq).await, (3, true));

    // A backup the previous release took restores with this one (its ledger checked as it
    // was written, then migrated when the node opens it).
    old.kill9().await.unwrap();
    let backup = dir.path().join("old.kassa-backup");
    ok_with(
        &previous,
        &[
            "store",
            "--data",
            &arg(&node),
            "backup",
            "--out",
            &arg(&backup),
        ],
    );
    let restored = dir.path().join("restored");
    ok_with(
        &current,
        &["store", "--data", &arg(&restored), "restore", &arg(&backup)],
    );
    let verified = ok_with(&current, &["store", "--data", &arg(&restored), "verify"]);
    assert!(
        verified.contains("chain and signatures verify"),
        "{verified}"
    );

    // The node upgraded in place: this release on the previous one's data directory, a copy
    // of the ledger kept first when the upgrade migrates it.
    let expected = copies_expected(&node.join("ledger.sqlite"), "store/migrations").await;
    let new = node_process(&current, &node).await;
    assert_eq!(
        copies_before_migrating(&node),
        expected,
        "a copy of the ledger before migrating, and only then"
    );
    wait_for_shifts(&new.url, &[T1]).await;
    sell_n(&new.url, "new-node", 2).await;
    wait_synced(&http, &new.url, &at_hq, &server.url, READ).await;
    assert_eq!(sales_at_hq(&hq).await, (5, true));
    drop(new);
    let verified = ok_with(&current, &["store", "--data", &arg(&node), "verify"]);
    assert!(
        verified.contains("chain and signatures verify"),
        "{verified}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn this_store_node_syncs_with_the_previous_hq_which_is_upgraded_in_place() {
    let previous = previous_release();
    let current = kassa();
    let dir = tempfile::tempdir().unwrap();
    let (hq, node) = (dir.path().join("hq"), dir.path().join("node"));
    let listen = free_listen();
    let url = format!("https://{listen}");
    prepare_hq(&previous, &hq);
    let old = hq_process(&previous, &hq, &listen).await;
    enrol_store((&previous, &hq), (&current, &node), &url, STORE, &[T1]);
    let http = client();
    let at_hq = hq_client(&hq);

    let running = node_process(&current, &node).await;
    wait_for_shifts(&running.url, &[T1]).await;
    sell_n(&running.url, "old-hq", 3).await;
    wait_synced(&http, &running.url, &at_hq, &old.url, READ).await;
    assert_eq!(sales_at_hq(&hq).await, (3, true));

    // HQ upgraded in place; the node sells on through the restart.
    old.kill9().await.unwrap();
    sell_n(&running.url, "hq-down", 2).await;
    let expected = copies_expected(&hq.join("hq.sqlite"), "hq/migrations/sqlite").await;
    let upgraded = hq_process(&current, &hq, &listen).await;
    assert_eq!(
        copies_before_migrating(&hq),
        expected,
        "a copy of HQ's database before migrating, and only then"
    );
    sell_n(&running.url, "new-hq", 2).await;
    wait_synced(&http, &running.url, &at_hq, &upgraded.url, READ).await;
    assert_eq!(sales_at_hq(&hq).await, (7, true));
}
