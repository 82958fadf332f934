//! Issue 21, item 4: a hot backup of a store node taken while four tills sell, and its restore
//! onto a fresh directory with every sale present once; a backup older than what HQ holds is
//! refused (restored, the tills would fork their chains); a damaged file and a directory that
//! is not empty are refused and change nothing; a restored node carries on selling and HQ takes
//! its events, the sequences continuing with no gap.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{arg, kassa, last_seqs, ok, run, sell, wait_for_shifts, wait_synced};
use test_support::{HQ_READ_TOKEN, Process, client, demo_seed_path, open_shifts, test_ca};

mod common;

const STORE: &str = "vienna-01";
const TILLS: [&str; 4] = [
    "vienna-01-t1",
    "vienna-01-t2",
    "vienna-01-t3",
    "vienna-01-t4",
];
/// Receipt numbers of the sales in a node's ledger (every one, with repeats).
async fn sales_in(data: &Path) -> Vec<String> {
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}?mode=ro",
        data.join("ledger.sqlite").display()
    ))
    .await
    .unwrap();
    let numbers = sqlx::query_scalar("SELECT number FROM receipts WHERE kind = 'sale'")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    numbers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_taken_while_four_tills_sell_restores_every_sale_once_and_never_forks() {
    let dir = tempfile::tempdir().unwrap();
    let hq = dir.path().join("hq");
    let hq_arg = arg(&hq);
    ok(&["hq", "--data", &hq_arg, "publish", &arg(&demo_seed_path())]);
    // HTTPS with the tests' certificate; its CA in HQ's TLS directory pins the code.
    std::fs::create_dir_all(hq.join("tls")).unwrap();
    std::fs::copy(&test_ca().ca_file, hq.join("tls/ca.pem")).unwrap();
    let mut hq_args = vec![
        "hq".to_owned(),
        "--data".into(),
        hq_arg.clone(),
        "run".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--api-token".into(),
        HQ_READ_TOKEN.into(),
    ];
    hq_args.extend(test_ca().hq_run_args());
    let hq_args: Vec<&str> = hq_args.iter().map(String::as_str).collect();
    let server = Process::spawn(&kassa(), &hq_args).await.unwrap();
    let code = ok(&[
        "hq",
        "--data",
        &hq_arg,
        "store",
        "add",
        "--id",
        STORE,
        "--name",
        "Kassa Wien",
        "--url",
        &server.url,
    ]);
    let code = code.lines().last().unwrap().trim().to_owned();
    let node = dir.path().join("node");
    let node_arg = arg(&node);
    let mut enrol = vec!["store", "--data", &node_arg, "enrol", &code];
    for till in TILLS {
        enrol.extend(["--terminal", till]);
    }
    ok(&enrol);
    let store = Process::spawn(
        &kassa(),
        &[
            "store",
            "--data",
            &node_arg,
            "run",
            "--listen",
            "127.0.0.1:0",
        ],
    )
    .await
    .unwrap();
    wait_for_shifts(&store.url, &TILLS).await;

    // Four tills sell as fast as they can; a backup is taken in the middle.
    let selling = Arc::new(AtomicBool::new(true));
    let mut tills = Vec::new();
    for till in TILLS {
        let (url, selling) = (store.url.clone(), selling.clone());
        tills.push(tokio::spawn(async move {
            let mut sold = Vec::new();
            let mut n = 0;
            while selling.load(Ordering::Relaxed) {
                n += 1;
                if let Some(receipt) = sell(&client(), &url, till, &format!("{till}-{n}")).await {
                    sold.push((std::time::Instant::now(), receipt));
                }
            }
            sold
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let hot = dir.path().join("hot.kassa-backup");
    let backup_started = std::time::Instant::now();
    let hot_arg = arg(&hot);
    let printed = tokio::task::spawn_blocking(move || {
        ok(&["store", "--data", &node_arg, "backup", "--out", &hot_arg])
    })
    .await
    .unwrap();
    let backup_ended = std::time::Instant::now();
    assert!(printed.contains("backup of store vienna-01"), "{printed}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    selling.store(false, Ordering::Relaxed);
    let mut sold = Vec::new();
    for till in tills {
        sold.extend(till.await.unwrap());
    }
    assert!(sold.len() > 40, "the tills sold only {}", sold.len());
    wait_synced(&client(), &store.url, &client(), &server.url, HQ_READ_TOKEN).await;

    // The hot backup is older than what HQ holds now: refused, nothing restored.
    let early = dir.path().join("early");
    let why = run(&["store", "--data", &arg(&early), "restore", &arg(&hot)]).unwrap_err();
    assert!(
        why.contains("fork") && why.contains("HQ already holds"),
        "{why}"
    );
    assert!(
        !early.exists(),
        "a refused restore left {}",
        early.display()
    );
    // Restored without asking HQ (to look inside it), it holds every sale answered before the
    // backup began, none answered after it ended, and each once.
    ok(&[
        "store",
        "--data",
        &arg(&early),
        "restore",
        &arg(&hot),
        "--without-hq",
    ]);
    let inside = sales_in(&early).await;
    let distinct: BTreeSet<&String> = inside.iter().collect();
    assert_eq!(distinct.len(), inside.len(), "a sale twice in the backup");
    for (at, receipt) in &sold {
        if *at < backup_started {
            assert!(
                distinct.contains(receipt),
                "{receipt}, sold before the backup, is missing"
            );
        }
        if *at > backup_ended {
            assert!(
                !distinct.contains(receipt),
                "{receipt}, sold after the backup, is in it"
            );
        }
    }
    ok(&["store", "--data", &arg(&early), "verify"]);

    // The PC dies (SIGKILL); the last backup, taken of its disk, goes onto a new PC.
    let heads = last_seqs(&client(), &store.url).await;
    store.kill9().await.unwrap();
    let last = dir.path().join("last.kassa-backup");
    ok(&[
        "store",
        "--data",
        &arg(&node),
        "backup",
        "--out",
        &arg(&last),
    ]);
    // A damaged file and a directory that is not empty are refused.
    let bytes = std::fs::read(&last).unwrap();
    let cut = dir.path().join("cut.kassa-backup");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let fresh = dir.path().join("new-pc");
    let why = run(&["store", "--data", &arg(&fresh), "restore", &arg(&cut)]).unwrap_err();
    assert!(why.contains("not a whole Kassa store backup"), "{why}");
    assert!(!fresh.exists());
    let why = run(&["store", "--data", &arg(&early), "restore", &arg(&last)]).unwrap_err();
    assert!(why.contains("not empty"), "{why}");
    let restored = ok(&["store", "--data", &arg(&fresh), "restore", &arg(&last)]);
    assert!(restored.contains("restored"), "{restored}");
    let all = sales_in(&fresh).await;
    let all_distinct: BTreeSet<&String> = all.iter().collect();
    assert_eq!(all.len(), sold.len(), "every sale answered, and no other");
    assert_eq!(all_distinct.len(), all.len(), "a sale twice");
    for (_, receipt) in &sold {
        assert!(all_distinct.contains(receipt), "{receipt} is missing");
    }

    // The new PC carries on: the same sequences, then the next ones, which HQ takes.
    let store = Process::spawn(
        &kassa(),
        &[
            "store",
            "--data",
            &arg(&fresh),
            "run",
            "--listen",
            "127.0.0.1:0",
        ],
    )
    .await
    .unwrap();
    assert_eq!(last_seqs(&client(), &store.url).await, heads);
    open_shifts(&client(), &store.url, &TILLS).await.unwrap();
    for till in TILLS {
        assert!(
            sell(&client(), &store.url, till, &format!("{till}-after"))
                .await
                .is_some()
        );
    }
    wait_synced(&client(), &store.url, &client(), &server.url, HQ_READ_TOKEN).await;
}
