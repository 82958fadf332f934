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

use common::{arg, kassa, last_seqs, ok, run, run_node, sell, wait_for_shifts, wait_synced};
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
    let store = run_node(&node_arg, &[]).await;
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
        why.contains("fork")
            && why.contains("HQ already holds")
            && why.contains("kassa hq store enrol"),
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
    let store = run_node(&arg(&fresh), &[]).await;
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

    // Without a newer backup, the way the refusal names: that PC lost too, a new one is set up
    // afresh from a new code, its till under a new id; it sells and HQ takes it.
    store.kill9().await.unwrap();
    let code = ok(&[
        "hq",
        "--data",
        &hq_arg,
        "store",
        "enrol",
        "--id",
        STORE,
        "--url",
        &server.url,
    ]);
    let afresh = dir.path().join("afresh");
    const NEW_TILL: &str = "vienna-01-t5";
    ok(&[
        "store",
        "--data",
        &arg(&afresh),
        "enrol",
        code.lines().last().unwrap().trim(),
        "--terminal",
        NEW_TILL,
    ]);
    let store = run_node(&arg(&afresh), &[]).await;
    wait_for_shifts(&store.url, &[NEW_TILL]).await;
    assert!(
        sell(&client(), &store.url, NEW_TILL, "afresh-1")
            .await
            .is_some()
    );
    wait_synced(&client(), &store.url, &client(), &server.url, HQ_READ_TOKEN).await;
}

/// Fills `path` with `bytes` bytes that do not compress (a stand-in for a large file in the
/// data directory, so that writing and reading a backup take long enough to be cut short).
fn incompressible(path: &Path, bytes: usize) {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let data: Vec<u8> = (0..bytes / 8)
        .flat_map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()
        })
        .collect();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

/// Starts `kassa ARGS…` and kills it with SIGKILL the moment `marker` says it is half-way
/// (`Some(what was seen)`), or lets it finish (`None`) when it never did.
fn kill_when(args: &[&str], marker: impl Fn() -> Option<String>) -> Option<String> {
    let mut child = std::process::Command::new(kassa())
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    loop {
        if let Some(seen) = marker() {
            child.kill().unwrap();
            child.wait().unwrap();
            return Some(seen);
        }
        if child.try_wait().unwrap().is_some() {
            return None;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// A name in `dir` that starts with `prefix` or ends with `suffix`.
fn entry_like(dir: &Path, prefix: &str, suffix: &str) -> Option<String> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with(prefix) && n.ends_with(suffix))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_backups_keep_the_newest_and_a_backup_or_restore_killed_half_way_leaves_nothing_whole()
 {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let node = path("node");
    let node_arg = arg(&node);
    const T1: &str = "vienna-01-t1";
    ok(&[
        "store",
        "--data",
        &node_arg,
        "provision",
        "--store",
        STORE,
        "--terminal",
        T1,
    ]);
    ok(&[
        "store",
        "--data",
        &node_arg,
        "seed",
        &arg(&demo_seed_path()),
    ]);
    // A large file in the data directory: a backup carries the directory's files.
    incompressible(&node.join("notes/big.bin"), 16 << 20);

    // A backup directory inside the data directory is refused: each backup would hold the last.
    let why = run(&[
        "store",
        "--data",
        &node_arg,
        "run",
        "--listen",
        "127.0.0.1:0",
        "--backup-dir",
        &arg(&node.join("backups")),
    ])
    .unwrap_err();
    assert!(why.contains("inside the data directory"), "{why}");
    let why = run(&[
        "store",
        "--data",
        &node_arg,
        "run",
        "--backup-dir",
        &arg(&path("b")),
        "--backup-every",
        "6 hours",
    ])
    .unwrap_err();
    assert!(why.contains("not an interval"), "{why}");

    let backups = path("backups");
    let store = run_node(
        &node_arg,
        &[
            "--backup-dir",
            &arg(&backups),
            "--backup-every",
            "1s",
            "--backup-keep",
            "2",
        ],
    )
    .await;
    let http = client();
    open_shifts(&http, &store.url, &[T1]).await.unwrap();
    let mut sold = Vec::new();
    for n in 0..20 {
        sold.push(
            sell(&http, &store.url, T1, &format!("scheduled-{n}"))
                .await
                .unwrap(),
        );
    }
    // Three backups and more taken, the newest two kept.
    let started = std::time::Instant::now();
    let status = loop {
        let status: serde_json::Value = http
            .get(format!("{}/v1/status", store.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if status["backups"]["taken"].as_u64().unwrap_or(0) >= 3 {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no three scheduled backups: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(status["backups"]["last_error"], serde_json::Value::Null);
    let mut kept: Vec<String> = std::fs::read_dir(&backups)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".kassa-backup"))
        .collect();
    kept.sort();
    assert_eq!(kept.len(), 2, "{kept:?}");
    let metrics = http
        .get(format!("{}/metrics", store.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("kassa_store_backup_interval_seconds 1\n"),
        "{metrics}"
    );
    let newest = backups.join(kept.last().unwrap());
    let restored = path("restored");
    ok(&[
        "store",
        "--data",
        &arg(&restored),
        "restore",
        &arg(&newest),
        "--without-hq",
    ]);
    let mut in_backup = sales_in(&restored).await;
    in_backup.sort();
    sold.sort();
    assert_eq!(
        in_backup, sold,
        "the scheduled backup lacks sales made before it"
    );
    drop(store);

    // `kassa store backup` killed while it copies the ledger, and while it writes the file:
    // no file at the target, and the node's data as it was.
    let target = path("manual.kassa-backup");
    let out_arg = arg(&target);
    let backup_args = ["store", "--data", &node_arg, "backup", "--out", &out_arg];
    let scratch = kill_when(&backup_args, || {
        entry_like(dir.path(), ".kassa-backup-", "")
    });
    assert!(
        scratch.is_some(),
        "the backup never made its scratch directory"
    );
    assert!(
        !target.exists(),
        "a backup killed half-way left {}",
        target.display()
    );
    let partial = kill_when(&backup_args, || {
        entry_like(dir.path(), "manual", ".partial")
    });
    assert!(partial.is_some(), "the backup was never caught writing");
    assert!(
        !target.exists(),
        "a backup killed while writing left {}",
        target.display()
    );
    ok(&["store", "--data", &node_arg, "verify"]);
    ok(&backup_args);

    // `kassa store restore` killed while it writes the new directory: no data directory, and
    // the next restore succeeds.
    let fresh = path("fresh");
    let fresh_arg = arg(&fresh);
    let restore_args = [
        "store",
        "--data",
        &fresh_arg,
        "restore",
        &out_arg,
        "--without-hq",
    ];
    let staging = kill_when(&restore_args, || {
        entry_like(dir.path(), ".kassa-restore-", "")
    });
    assert!(staging.is_some(), "the restore was never caught half-way");
    assert!(
        !fresh.exists(),
        "a restore killed half-way left a data directory"
    );
    ok(&restore_args);
    ok(&["store", "--data", &fresh_arg, "verify"]);
    let mut again = sales_in(&fresh).await;
    again.sort();
    assert_eq!(again, sold);
}

/// `GET url` as JSON with `cookie` (a person signed in at HQ).
async fn json_with(http: &reqwest::Client, url: &str, cookie: &str) -> serde_json::Value {
    http.get(url)
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// `kassa hq run` on `listen` keeping store backups in `kept`, the newest two per store.
async fn hq_keeping_backups(hq: &Path, listen: &str, kept: &Path) -> Process {
    let (hq, kept) = (arg(hq), arg(kept));
    let args = [
        "hq",
        "--data",
        &hq,
        "run",
        "--listen",
        listen,
        "--api-token",
        HQ_READ_TOKEN,
        "--store-backups",
        &kept,
        "--store-backups-keep",
        "2",
    ];
    Process::spawn(&kassa(), &args).await.unwrap()
}

/// Issue 21, item 4, "and optionally to HQ": a node sends its scheduled backups to HQ encrypted
/// to the chain's recovery key, which neither holds; HQ killed half-way through one, the copy
/// waits and is finished from where HQ's copy ends when HQ is back; HQ keeps the newest two. Support fetches the newest from HQ, and it restores
/// onto a fresh directory with the recovery key alone — every sale present once; without the
/// key, or with another, it is refused and nothing is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_sent_to_hq_are_encrypted_resume_after_an_outage_and_restore_with_the_recovery_key()
{
    const T1: &str = "vienna-01-t1";
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let (hq, node, kept) = (path("hq"), path("node"), path("kept"));
    common::prepare_hq(&kassa(), &hq);
    std::fs::write(path("password"), "a long enough password\n").unwrap();
    ok(&[
        "hq",
        "--data",
        &arg(&hq),
        "user",
        "add",
        "--name",
        "sam",
        "--role",
        "support",
        "--password-file",
        &arg(&path("password")),
    ]);
    let listen = common::free_listen();
    let server = hq_keeping_backups(&hq, &listen, &kept).await;
    common::enrol_store(
        (&kassa(), &hq),
        (&kassa(), &node),
        &server.url,
        STORE,
        &[T1],
    );

    // The chain's recovery key, made once; its public half is all a node gets.
    let printed = ok(&[
        "store",
        "recovery-key",
        "--out",
        &arg(&path("recovery.key")),
    ]);
    let recipient = printed
        .split_whitespace()
        .find(|w| w.starts_with("age1"))
        .unwrap_or_else(|| panic!("no public key printed: {printed}"))
        .to_owned();
    let again = run(&[
        "store",
        "recovery-key",
        "--out",
        &arg(&path("recovery.key")),
    ])
    .unwrap_err();
    assert!(again.contains("must not exist"), "{again}");
    let why = run(&[
        "store",
        "--data",
        &arg(&node),
        "run",
        "--backup-dir",
        &arg(&path("backups")),
        "--backup-to-hq",
        "--backup-recipient",
        "age1-not-a-key",
    ])
    .unwrap_err();
    assert!(why.contains("--backup-recipient"), "{why}");
    let why = run(&[
        "store",
        "--data",
        &arg(&node),
        "run",
        "--backup-dir",
        &arg(&path("backups")),
        "--backup-to-hq",
    ])
    .unwrap_err();
    assert!(why.contains("needs --backup-recipient"), "{why}");

    // A large file in the data directory: each backup goes to HQ in a dozen pieces.
    incompressible(&node.join("notes/big.bin"), 12 << 20);
    let store = run_node(
        &arg(&node),
        &[
            "--backup-dir",
            &arg(&path("backups")),
            "--backup-every",
            "15s",
            "--backup-keep",
            "3",
            "--backup-to-hq",
            "--backup-recipient",
            &recipient,
        ],
    )
    .await;
    wait_for_shifts(&store.url, &[T1]).await;
    let http = client();
    let mut sold = Vec::new();
    for n in 0..5 {
        sold.push(
            sell(&http, &store.url, T1, &format!("online-{n}"))
                .await
                .unwrap(),
        );
    }
    let status = |http: reqwest::Client, url: String| async move {
        http.get(format!("{url}/v1/status"))
            .send()
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap()
    };
    let wait_for = |what: &'static str, done: Box<dyn Fn(&serde_json::Value) -> bool + Send>| {
        let (http, url) = (http.clone(), store.url.clone());
        async move {
            let started = std::time::Instant::now();
            loop {
                let now = status(http.clone(), url.clone()).await;
                if done(&now["backups"]["to_hq"]) {
                    return now;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(90),
                    "{what}: {}",
                    now["backups"]
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    // HQ is killed while the first backup is on its way, a few pieces in.
    let arriving = kept.join(STORE);
    let started = std::time::Instant::now();
    loop {
        let held = std::fs::read_dir(&arriving)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
            .filter_map(|e| e.metadata().ok())
            .any(|m| m.len() >= 3 << 20);
        if held {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "HQ never received the first backup's first pieces"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    server.kill9().await.unwrap();
    assert!(
        entry_like(&arriving, "", ".partial").is_some()
            && entry_like(&arriving, "", ".age").is_none(),
        "the first backup reached HQ whole before HQ was killed"
    );
    // The node sells on; its backup waits.
    for n in 0..3 {
        sold.push(
            sell(&http, &store.url, T1, &format!("offline-{n}"))
                .await
                .unwrap(),
        );
    }
    let after_sales = format!(
        "{STORE}-{}",
        jiff::Timestamp::now().strftime("%Y%m%dT%H%M%S%.3fZ")
    );
    wait_for(
        "the node never said HQ was out of reach",
        Box::new(|s| s["last_error"].is_string()),
    )
    .await;
    let server = hq_keeping_backups(&hq, &listen, &kept).await;
    let at_hq = common::hq_client(&hq);
    let (cookie, _) = common::sign_in(&at_hq, &server.url, "sam").await;

    // HQ back: the first backup is finished from where HQ's copy ended, not sent again whole.
    wait_for(
        "the first backup never reached HQ whole",
        Box::new(|s| s["sent"].as_u64().unwrap_or(0) >= 1 && s["last_error"].is_null()),
    )
    .await;
    let metrics = at_hq
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let listed = json_with(
        &at_hq,
        &format!("{}/v1/stores/{STORE}/backups", server.url),
        &cookie,
    )
    .await;
    assert!(
        listed["incoming"].is_null() || listed["incoming"]["received"] == 0,
        "the next backup was on its way before the first was measured: {listed}"
    );
    let first = listed["backups"][0]["bytes"].as_u64().unwrap();
    let resent: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("kassa_hq_store_backup_bytes_total "))
        .unwrap_or_else(|| panic!("no backup bytes counted: {metrics}"))
        .trim()
        .parse()
        .unwrap();
    println!("after its restart HQ took {resent} of the first backup's {first} bytes");
    assert!(
        resent > 0 && resent <= first - (2 << 20),
        "HQ received {resent} of the first backup's {first} bytes after its restart: not resumed"
    );

    let newest = {
        let after_sales = after_sales.clone();
        wait_for(
            "the backups taken while HQ was down never reached it",
            Box::new(move |s| {
                s["last_error"].is_null()
                    && s["last_file"]
                        .as_str()
                        .is_some_and(|f| *f > *after_sales.as_str())
            }),
        )
        .await
    };
    let newest = newest["backups"]["to_hq"]["last_file"]
        .as_str()
        .unwrap()
        .to_owned();
    store.kill9().await.unwrap();

    // At HQ: the newest two, each an age file; no key, no ledger in clear.
    let held: Vec<std::path::PathBuf> = std::fs::read_dir(kept.join(STORE))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(held.len(), 2, "{held:?}");
    let till_key = std::fs::read(node.join(format!("keys/{T1}.ed25519"))).unwrap();
    for file in &held {
        let bytes = std::fs::read(file).unwrap();
        assert!(bytes.starts_with(b"age-encryption.org/v1\n"), "{file:?}");
        assert!(
            !bytes
                .windows(till_key.len().min(32))
                .any(|w| w == &till_key[..till_key.len().min(32)]),
            "{file:?} holds the till's key in clear"
        );
        assert!(!bytes.windows(13).any(|w| w == b"manifest.json"));
    }

    // Support fetches the newest from HQ.
    let listed = json_with(
        &at_hq,
        &format!("{}/v1/stores/{STORE}/backups", server.url),
        &cookie,
    )
    .await;
    assert_eq!(listed["backups"][0]["name"], newest.as_str(), "{listed}");
    let fleet = at_hq
        .get(format!("{}/fleet", server.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        fleet.contains(&format!(
            "href=\"/v1/stores/{STORE}/backups/{newest}\" download"
        )),
        "the fleet page offers support no download of the newest backup:\n{fleet}"
    );
    let fetched = at_hq
        .get(format!("{}/v1/stores/{STORE}/backups/{newest}", server.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert!(fetched.status().is_success());
    let file = path(&newest);
    std::fs::write(&file, fetched.bytes().await.unwrap()).unwrap();

    // Without the recovery key, or with another: refused, nothing made.
    let restored = path("restored");
    let why = run(&["store", "--data", &arg(&restored), "restore", &arg(&file)]).unwrap_err();
    assert!(why.contains("--identity"), "{why}");
    ok(&["store", "recovery-key", "--out", &arg(&path("other.key"))]);
    let why = run(&[
        "store",
        "--data",
        &arg(&restored),
        "restore",
        &arg(&file),
        "--identity",
        &arg(&path("other.key")),
    ])
    .unwrap_err();
    assert!(why.contains("another key"), "{why}");
    assert!(!restored.exists());
    assert!(
        std::fs::read_dir(dir.path()).unwrap().flatten().all(|e| !e
            .file_name()
            .to_string_lossy()
            .starts_with(".kassa-restore-")),
        "a refused restore left its scratch"
    );

    // With it: every sale once, HQ asked how far it holds the till.
    ok(&[
        "store",
        "--data",
        &arg(&restored),
        "restore",
        &arg(&file),
        "--identity",
        &arg(&path("recovery.key")),
    ]);
    let mut present = sales_in(&restored).await;
    present.sort();
    sold.sort();
    assert_eq!(present, sold);
    drop(server);
}
