//! Issue 21, item 7: remote support. A person with the support role asks a store node, through
//! HQ, for a diagnostics bundle (recent log, status, configuration without secrets, integrity
//! check, the ledger's verification) and for a re-sync; the node fetches each request on its
//! sync cycle and answers it once. Nobody else can ask — no session, another role, no CSRF
//! token, the read token — and no other store can read or answer it. HQ restored from an older
//! backup gets what it lost back through the re-sync. Every step is in the audit log.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use common::{
    arg, held_at_hq, hq_client, last_seqs, ok, run_hq, run_node, sell, sign_in, wait_for_shifts,
    wait_synced,
};
use serde_json::{Value, json};
use test_support::{Process, client, demo_seed_path};

mod common;

const READ: &str = "support-test-read";
const STORE: &str = "vienna-01";
const T1: &str = "vienna-01-t1";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_hq(hq: &Path, port: u16) -> Process {
    let listen = format!("127.0.0.1:{port}");
    run_hq(&arg(hq), &listen, READ).await
}

/// The requests of the store as support reads them, once the newest is answered.
async fn answered(at_hq: &reqwest::Client, url: &str, support: &(String, String)) -> Value {
    let started = std::time::Instant::now();
    loop {
        let list: Value = at_hq
            .get(format!("{url}/v1/stores/{STORE}/support"))
            .header("cookie", &support.0)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let newest = &list["requests"][0];
        if newest["answered_ms"].is_i64() {
            return newest.clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the node never answered: {list}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn support_asks_a_node_for_diagnostics_and_a_resync_and_nobody_else_can() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let hq = path("hq");
    let hq_arg = arg(&hq);
    ok(&["hq", "--data", &hq_arg, "publish", &arg(&demo_seed_path())]);
    ok(&[
        "hq",
        "--data",
        &hq_arg,
        "tls",
        "init",
        "--name",
        "127.0.0.1",
    ]);
    let password = path("password");
    std::fs::write(&password, "a long enough password\n").unwrap();
    for (name, role) in [("sam", "support"), ("ada", "admin")] {
        ok(&[
            "hq",
            "--data",
            &hq_arg,
            "user",
            "add",
            "--name",
            name,
            "--role",
            role,
            "--password-file",
            &arg(&password),
        ]);
    }
    let port = free_port();
    let server = start_hq(&hq, port).await;
    let at_hq = hq_client(&hq);

    // The store, enrolled; a neighbour with a credential of its own.
    let code = ok(&[
        "hq",
        "--data",
        &hq_arg,
        "store",
        "add",
        "--id",
        STORE,
        "--name",
        "Wien",
        "--url",
        &server.url,
    ]);
    let node_dir = path("node");
    ok(&[
        "store",
        "--data",
        &arg(&node_dir),
        "enrol",
        code.lines().last().unwrap().trim(),
        "--terminal",
        T1,
    ]);
    let neighbour = ok(&[
        "hq", "--data", &hq_arg, "store", "add", "--id", "graz-01", "--name", "Graz",
    ]);
    let neighbour = neighbour.lines().last().unwrap().trim().to_owned();
    let node = run_node(&arg(&node_dir), &["--pull-every", "1"]).await;
    wait_for_shifts(&node.url, &[T1]).await;
    let http = client();
    assert!(sell(&http, &node.url, T1, "support-1").await.is_some());
    wait_synced(&http, &node.url, &at_hq, &server.url, READ).await;

    // Who may not ask: nobody signed in, an admin (no support role), support without the
    // session's CSRF token, the read token. Each refused, nothing asked.
    // HQ keeps its address when it is restarted below.
    let hq_url = server.url.clone();
    let ask = |cookie: Option<&str>, csrf: Option<&str>, bearer: Option<&str>, kind: &str| {
        let mut request = at_hq
            .post(format!("{hq_url}/v1/stores/{STORE}/support"))
            .json(&json!({"kind": kind, "reason": "till 1 slow since this morning"}));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        async move {
            let answer = request.send().await.unwrap();
            let status = answer.status().as_u16();
            (status, answer.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let sam = sign_in(&at_hq, &server.url, "sam").await;
    let ada = sign_in(&at_hq, &server.url, "ada").await;
    assert_eq!(ask(None, None, None, "diagnostics").await.0, 401);
    let (status, why) = ask(Some(&ada.0), Some(&ada.1), None, "diagnostics").await;
    assert_eq!(
        (status, why["code"].as_str()),
        (403, Some("missing_scope")),
        "{why}"
    );
    let (status, why) = ask(Some(&sam.0), None, None, "diagnostics").await;
    assert_eq!((status, why["code"].as_str()), (403, Some("csrf")), "{why}");
    assert_eq!(ask(None, None, Some(READ), "diagnostics").await.0, 403);
    let (status, why) = ask(Some(&sam.0), Some(&sam.1), None, "shell").await;
    assert_eq!(status, 400, "{why}");
    let none: Vec<i64> = sqlx::query_scalar("SELECT id FROM support_requests")
        .fetch_all(
            &sqlx::SqlitePool::connect(&format!("sqlite://{}", hq.join("hq.sqlite").display()))
                .await
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(none.is_empty(), "a refused ask was kept: {none:?}");

    // Support asks for diagnostics; the node answers on its next cycle.
    let (status, asked) = ask(Some(&sam.0), Some(&sam.1), None, "diagnostics").await;
    assert_eq!(status, 201, "{asked}");
    let id = asked["id"].as_i64().unwrap();
    assert_eq!(asked["asked_by"], "user:sam");
    // Another store's credential sees none of it and cannot answer it.
    let theirs: Value = at_hq
        .get(format!("{}/v1/sync/support", server.url))
        .bearer_auth(&neighbour)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(theirs, json!({"requests": []}));
    let forged = at_hq
        .post(format!("{}/v1/sync/support/{id}", server.url))
        .bearer_auth(&neighbour)
        .json(&json!({"done": true, "result": {"sound": true}}))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 404);

    let answer = answered(&at_hq, &server.url, &sam).await;
    assert_eq!(answer["id"], id);
    assert_eq!(answer["state"], "done", "{answer}");
    let bundle = &answer["result"];
    assert_eq!(bundle["sound"], true, "{bundle}");
    assert_eq!(bundle["database"]["integrity_check"], json!(["ok"]));
    assert_eq!(bundle["verify"][0]["terminal"], T1);
    assert!(
        bundle["verify"][0]["events"].as_u64().unwrap() >= 2,
        "{bundle}"
    );
    assert_eq!(bundle["verify"][0]["broken"], Value::Null);
    assert_eq!(bundle["status"]["store"], STORE);
    assert_eq!(bundle["configuration"]["hq_url"], server.url.as_str());
    assert!(
        bundle["recent_log"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().contains("reference change log")),
        "no recent log lines: {}",
        bundle["recent_log"]
    );
    // No secret of the node is in it.
    let text = bundle.to_string();
    for secret in ["keys/hq.credential", "keys/pin.pepper"] {
        let value = std::fs::read_to_string(node_dir.join(secret)).unwrap();
        assert!(!text.contains(value.trim()), "{secret} is in the bundle");
    }
    for key in std::fs::read_dir(node_dir.join("keys")).unwrap() {
        let bytes = std::fs::read(key.unwrap().path()).unwrap();
        assert!(
            !text.contains(&hex::encode(&bytes)),
            "a key file is in the bundle"
        );
    }
    // A configuration profile: a printer on a device path is refused at HQ (only network
    // printers are set from afar), a good one applied by the node.
    let profile = |profile: Value| {
        let (at_hq, url, sam) = (at_hq.clone(), hq_url.clone(), sam.clone());
        async move {
            let answer = at_hq
                .post(format!("{url}/v1/stores/{STORE}/support"))
                .header("cookie", &sam.0)
                .header("x-csrf-token", &sam.1)
                .json(&json!({"kind": "profile", "reason": "new printer at till 1", "profile": profile}))
                .send()
                .await
                .unwrap();
            (
                answer.status().as_u16(),
                answer.json::<Value>().await.unwrap(),
            )
        }
    };
    let (status, why) =
        profile(json!({"printers": {T1: {"target": "/etc/passwd", "paper": 80}}})).await;
    assert_eq!(status, 400, "{why}");
    assert_eq!(why["field"], format!("profile.printers.{T1}.target"));
    let (status, asked) = profile(json!({
        "stored_value_offline_cap": "250.00",
        "printers": {T1: {"target": "tcp:127.0.0.1:9100", "paper": 58}},
    }))
    .await;
    assert_eq!(status, 201, "{asked}");
    let applied = answered(&at_hq, &server.url, &sam).await;
    assert_eq!(applied["state"], "done", "{applied}");
    let ledger = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}?mode=ro",
        node_dir.join("ledger.sqlite").display()
    ))
    .await
    .unwrap();
    let printer: (String, String) =
        sqlx::query_as("SELECT target, paper FROM printers WHERE terminal = $1")
            .bind(T1)
            .fetch_one(&ledger)
            .await
            .unwrap();
    assert_eq!(printer, ("tcp:127.0.0.1:9100".to_owned(), "58".to_owned()));
    let cap: String = sqlx::query_scalar("SELECT offline_cap FROM stored_value_settings")
        .fetch_one(&ledger)
        .await
        .unwrap();
    assert_eq!(cap, "250.00");
    ledger.close().await;

    // Answered once.
    let again = at_hq
        .post(format!("{}/v1/sync/support/{id}", server.url))
        .bearer_auth(
            std::fs::read_to_string(node_dir.join("keys/hq.credential"))
                .unwrap()
                .trim(),
        )
        .json(&json!({"done": true, "result": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 409);

    // HQ is restored from a backup older than what it acknowledged: it lacks the last sales,
    // and the node, having nothing new to push, would not know. A re-sync pushes them again.
    let held_then = {
        let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", hq.join("hq.sqlite").display()))
            .await
            .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "VACUUM INTO '{}'",
            path("hq-backup.sqlite").display()
        )))
        .execute(&db)
        .await
        .unwrap();
        db.close().await;
        last_seqs(&http, &node.url).await[0].1
    };
    for n in 2..=4 {
        assert!(
            sell(&http, &node.url, T1, &format!("support-{n}"))
                .await
                .is_some()
        );
    }
    wait_synced(&http, &node.url, &at_hq, &server.url, READ).await;
    let last = last_seqs(&http, &node.url).await[0].1;
    server.kill9().await.unwrap();
    for file in ["hq.sqlite-wal", "hq.sqlite-shm"] {
        let _ = std::fs::remove_file(hq.join(file));
    }
    std::fs::copy(path("hq-backup.sqlite"), hq.join("hq.sqlite")).unwrap();
    let server = start_hq(&hq, port).await;
    let acked = |at_hq: reqwest::Client, url: String| async move {
        held_at_hq(&at_hq, &url, READ).await[T1]
    };
    assert_eq!(acked(at_hq.clone(), server.url.clone()).await, held_then);
    assert!(held_then < last);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        acked(at_hq.clone(), server.url.clone()).await,
        held_then,
        "HQ got the lost events back without being asked"
    );
    let sam = sign_in(&at_hq, &server.url, "sam").await;
    let (status, asked) = ask(Some(&sam.0), Some(&sam.1), None, "resync").await;
    assert_eq!(status, 201, "{asked}");
    let answer = answered(&at_hq, &server.url, &sam).await;
    assert_eq!(answer["state"], "done", "{answer}");
    assert_eq!(
        answer["result"]["terminals"][0]["pushed_again_from"],
        held_then + 1
    );
    wait_synced(&http, &node.url, &at_hq, &server.url, READ).await;
    assert_eq!(acked(at_hq.clone(), server.url.clone()).await, last);

    // The audit log: who asked what and why, and the node's answers, newest first.
    let ada = sign_in(&at_hq, &server.url, "ada").await;
    let audit = |query: &'static str| {
        let (at_hq, url, cookie) = (at_hq.clone(), server.url.clone(), ada.0.clone());
        async move {
            let read: Value = at_hq
                .get(format!("{url}/v1/audit-log?{query}"))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            read["entries"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["action"].as_str().unwrap().starts_with("support."))
                .map(|e| {
                    format!(
                        "{} {} {}",
                        e["action"].as_str().unwrap(),
                        e["actor"].as_str().unwrap(),
                        e["target"].as_str().unwrap()
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        audit("target=store:vienna-01").await,
        [
            "support.resync user:sam store:vienna-01",
            "support.profile user:sam store:vienna-01",
            "support.diagnostics user:sam store:vienna-01",
        ]
    );
    let resync = answer["id"].as_i64().unwrap();
    let applied = applied["id"].as_i64().unwrap();
    assert_eq!(
        audit("action=support.answered").await,
        [
            format!("support.answered store:vienna-01 support:{resync}"),
            format!("support.answered store:vienna-01 support:{applied}"),
            format!("support.answered store:vienna-01 support:{id}"),
        ]
    );
}
