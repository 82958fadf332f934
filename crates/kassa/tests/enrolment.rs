//! Issue 21, items 1 to 3: HQ serves HTTPS under the chain's own CA (`kassa hq tls init`), and
//! a store node is set up from a one-time enrolment code alone (`kassa store enrol CODE`): it
//! pins the CA, registers its tills' keys, receives its credential and syncs with no `--hq-…`
//! option. A damaged, replayed, expired or mis-pinned code, a CA that is not the chain's and
//! plain HTTP without `--insecure-http` are refused with what to do, and change nothing. A
//! till's key rotates across an offline period, announced in its ledger under the old key.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use common::{
    arg, enrol_store, free_listen, hq_client, ok, prepare_hq, run, run_hq, run_node, sell,
    wait_for_shifts, wait_synced,
};
use protocol::enrol::EnrolmentCode;
use serde_json::Value;
use test_support::{client, demo_seed_path, open_shifts};

mod common;

const STORE: &str = "vienna-01";
const T1: &str = "vienna-01-t1";
const T2: &str = "vienna-01-t2";
fn refused(args: &[&str]) -> String {
    match run(args) {
        Ok(out) => panic!("`kassa {}` succeeded: {out}", args.join(" ")),
        Err(e) => e,
    }
}

/// The last line a command printed (the code, the credential).
fn last_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap()
        .to_owned()
}

async fn sqlite(hq: &Path) -> sqlx::SqlitePool {
    sqlx::SqlitePool::connect(&format!("sqlite://{}", hq.join("hq.sqlite").display()))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_enrolled_with_a_one_time_code_syncs_over_tls_and_bad_codes_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let hq = dir.path().join("hq");
    let hq_arg = arg(&hq);
    ok(&["hq", "--data", &hq_arg, "publish", &arg(&demo_seed_path())]);

    // Without certificates HQ does not fall back to plain HTTP: it says what to do.
    let why = refused(&["hq", "--data", &hq_arg, "run", "--listen", "127.0.0.1:0"]);
    assert!(
        why.contains("kassa hq tls init") && why.contains("--insecure-http"),
        "{why}"
    );
    let made = ok(&[
        "hq",
        "--data",
        &hq_arg,
        "tls",
        "init",
        "--chain",
        "Test",
        "--name",
        "127.0.0.1",
    ]);
    let pin = made
        .lines()
        .find_map(|l| l.split("pin: ").nth(1))
        .unwrap_or_else(|| panic!("no fingerprint printed:\n{made}"))
        .trim()
        .to_owned();
    assert_eq!(pin.len(), 64, "{made}");
    let again = refused(&[
        "hq",
        "--data",
        &hq_arg,
        "tls",
        "init",
        "--name",
        "127.0.0.1",
    ]);
    assert!(again.contains("holds a CA already"), "{again}");
    let key_mode = {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(hq.join("tls/ca.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(key_mode, 0o600, "the CA's key is readable by others");

    let server = run_hq(&hq_arg, "127.0.0.1:0", "enrolment-test-read").await;
    assert!(server.url.starts_with("https://"), "{}", server.url);
    // A client that trusts the operating system's roots does not trust the chain's CA.
    let stranger = reqwest::Client::new()
        .get(format!("{}/openapi.json", server.url))
        .send()
        .await;
    assert!(
        stranger.is_err(),
        "HQ's certificate passed a stranger's check"
    );

    // The code, printed by `store add --url`; HQ keeps only its secret's hash.
    let code_text = last_line(&ok(&[
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
    ]));
    let code = EnrolmentCode::decode(&code_text).unwrap();
    assert_eq!(code.ca_pin.as_deref(), Some(pin.as_str()));
    let db = sqlite(&hq).await;
    let kept: Vec<String> = sqlx::query_scalar("SELECT secret_hash FROM enrolments")
        .fetch_all(&db)
        .await
        .unwrap();
    assert_eq!(kept, vec![protocol::enrol::secret_hash(&code.secret)]);

    let node = dir.path().join("node");
    let node_arg = arg(&node);
    let enrol = |code: &str, data: &str, extra: &[&str]| {
        let mut args = vec![
            "store",
            "--data",
            data,
            "enrol",
            code,
            "--terminal",
            T1,
            "--terminal",
            T2,
        ];
        args.extend(extra);
        run(&args)
    };

    // A damaged code, a code pinning another CA, and a plain-HTTP code without the flag: each
    // refused with what to do, and the node's directory never made.
    let cut = enrol(&code_text[..code_text.len() - 3], &node_arg, &[]).unwrap_err();
    assert!(cut.contains("not a Kassa enrolment code"), "{cut}");
    let other_ca = tls::Authority::create("Someone else").unwrap();
    let mispinned = EnrolmentCode {
        ca_pin: Some(other_ca.fingerprint()),
        ..code.clone()
    };
    let why = enrol(&mispinned.encode(), &node_arg, &[]).unwrap_err();
    assert!(
        why.contains("cannot reach HQ") && why.contains("pinned fingerprint"),
        "{why}"
    );
    let plain = EnrolmentCode {
        url: server.url.replace("https://", "http://"),
        ca_pin: None,
        ..code.clone()
    };
    let why = enrol(&plain.encode(), &node_arg, &[]).unwrap_err();
    assert!(why.contains("--insecure-http"), "{why}");
    let stale = EnrolmentCode {
        expires_ms: 1_000,
        ..code.clone()
    };
    let why = enrol(&stale.encode(), &node_arg, &[]).unwrap_err();
    assert!(why.contains("expired"), "{why}");
    assert!(
        !node.exists(),
        "a refused enrolment left {}",
        node.display()
    );

    // The code itself: the node is set up, its tills registered at HQ with their keys.
    let done = enrol(&code_text, &node_arg, &[]).unwrap();
    assert!(done.contains("enrolled"), "{done}");
    for file in [
        "hq.json",
        "keys/hq-ca.pem",
        "keys/hq.credential",
        "keys/pin.pepper",
    ] {
        assert!(node.join(file).exists(), "no {file}");
    }
    assert_eq!(
        std::fs::read(node.join("keys/pin.pepper")).unwrap(),
        std::fs::read(hq.join("keys/pin.pepper")).unwrap(),
        "the node holds another PIN pepper than HQ"
    );
    let registered: Vec<(String, Vec<u8>)> =
        sqlx::query_as("SELECT id, public_key FROM terminals WHERE store = $1 ORDER BY id")
            .bind(STORE)
            .fetch_all(&db)
            .await
            .unwrap();
    let printed: Vec<(String, String)> = done
        .lines()
        .filter_map(|l| l.trim().split_once(' '))
        .filter(|(t, _)| t.starts_with(STORE))
        .map(|(t, k)| (t.to_owned(), k.to_owned()))
        .collect();
    assert_eq!(
        registered
            .iter()
            .map(|(t, k)| (t.clone(), hex::encode(k)))
            .collect::<Vec<_>>(),
        printed
    );

    // The same code again, on another PC: used, refused; that directory never made either.
    let second = dir.path().join("second");
    let why = enrol(&code_text, &arg(&second), &[]).unwrap_err();
    assert!(why.contains("enrolment_used"), "{why}");
    assert!(!second.exists());
    // A new code HQ holds as expired is refused by HQ.
    let late = last_line(&ok(&[
        "hq",
        "--data",
        &hq_arg,
        "store",
        "enrol",
        "--id",
        STORE,
        "--url",
        &server.url,
    ]));
    sqlx::query("UPDATE enrolments SET expires_ms = 1 WHERE used_ms IS NULL")
        .execute(&db)
        .await
        .unwrap();
    let why = enrol(&late, &arg(&second), &[]).unwrap_err();
    assert!(why.contains("enrolment_expired"), "{why}");
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE target = $1 ORDER BY id")
            .bind(format!("store:{STORE}"))
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(
        actions,
        [
            "store.enrolment_issued",
            "store.enrolled",
            "store.enrolment_issued"
        ]
    );

    // The enrolled node syncs over HTTPS with nothing but its data directory.
    let store = run_node(&node_arg, &[]).await;
    let http = client();
    wait_for_shifts(&store.url, &[T1]).await;
    assert!(
        sell(&http, &store.url, T1, "enrolled-1").await.is_some(),
        "the sale"
    );
    // Read back at HQ by a client that trusts the chain's CA, as the node does.
    let at_hq = hq_client(&hq);
    wait_synced(
        &http,
        &store.url,
        &at_hq,
        &server.url,
        "enrolment-test-read",
    )
    .await;

    // Item 3: the node replaces its own credential while it runs. HQ takes the old one for
    // the overlap, then refuses it; the running node takes the new one from its data directory
    // the first time HQ refuses the old, and nothing waits longer than that.
    let old = std::fs::read_to_string(node.join("keys/hq.credential")).unwrap();
    let rotated = ok(&[
        "store",
        "--data",
        &node_arg,
        "rotate-credential",
        "--overlap-hours",
        "2",
    ]);
    assert!(rotated.contains("new credential"), "{rotated}");
    let new = std::fs::read_to_string(node.join("keys/hq.credential")).unwrap();
    assert_ne!(old.trim(), new.trim());
    let stock_with = |credential: String| {
        let (at_hq, url) = (at_hq.clone(), server.url.clone());
        async move {
            at_hq
                .get(format!("{url}/v1/sync/stock"))
                .bearer_auth(credential.trim())
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        stock_with(old.clone()).await,
        200,
        "the old credential within the overlap"
    );
    assert_eq!(stock_with(new.clone()).await, 200);
    sqlx::query("UPDATE stores SET previous_until_ms = 1 WHERE id = $1")
        .bind(STORE)
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(
        stock_with(old.clone()).await,
        401,
        "the old credential after the overlap"
    );
    assert!(
        sell(&http, &store.url, T1, "enrolled-rotated")
            .await
            .is_some(),
        "the sale"
    );
    wait_synced(
        &http,
        &store.url,
        &at_hq,
        &server.url,
        "enrolment-test-read",
    )
    .await;
    let rotations: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'store.credential_rotated' AND actor = $1",
    )
    .bind(format!("store:{STORE}"))
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(rotations, 1);
    drop(store);

    // A node told to trust another CA does not send its credential to HQ: the push is
    // refused at the handshake, and its status says why.
    let credential = std::fs::read_to_string(node.join("keys/hq.credential")).unwrap();
    let wrong_ca = dir.path().join("other-ca.pem");
    std::fs::write(&wrong_ca, &other_ca.cert_pem).unwrap();
    let store = run_node(
        &node_arg,
        &[
            "--hq-url",
            &server.url,
            "--hq-token",
            credential.trim(),
            "--hq-ca",
            &arg(&wrong_ca),
        ],
    )
    .await;
    open_shifts(&http, &store.url, &[T1]).await.unwrap();
    assert!(
        sell(&http, &store.url, T1, "enrolled-2").await.is_some(),
        "a sale waits on no link"
    );
    let started = std::time::Instant::now();
    let reason = loop {
        let status: Value = http
            .get(format!("{}/v1/status", store.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let outbox = status["sync"]["outbox"].to_string();
        if outbox.contains("unreachable") && outbox.contains("certificate") {
            break outbox;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the node never said why HQ is out of reach: {status}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(reason.to_lowercase().contains("issuer"), "{reason}");

    // Plain HTTP is a choice the operator makes out loud.
    let why = refused(&[
        "store",
        "--data",
        &node_arg,
        "run",
        "--listen",
        "127.0.0.1:0",
        "--hq-url",
        "http://127.0.0.1:1",
        "--hq-token",
        "x",
    ]);
    assert!(why.contains("--insecure-http"), "{why}");
}

/// The node's ledger, read directly.
async fn ledger(node: &Path) -> sqlx::SqlitePool {
    sqlx::SqlitePool::connect(&format!(
        "sqlite://{}?mode=ro",
        node.join("ledger.sqlite").display()
    ))
    .await
    .unwrap()
}

/// The hex key `kassa store rotate-key` announced.
fn new_key(printed: &str) -> String {
    printed
        .split("new key ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no key printed: {printed}"))
        .to_owned()
}

/// Issue 21, item 3: a till's signing key rotates twice while HQ is out of reach, once with the
/// node killed between recording the rotation and renaming the key file. Back in reach, HQ takes
/// every event once, verifies each batch with the key of its time and ends with the newest key;
/// the node's own `verify` follows the chain across both changes. The first key, stolen, signs
/// nothing HQ takes any more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tills_key_rotates_while_hq_is_out_of_reach_and_hq_verifies_across_the_change() {
    const READ: &str = "rotation-test-read";
    let dir = tempfile::tempdir().unwrap();
    let hq = dir.path().join("hq");
    let hq_arg = arg(&hq);
    prepare_hq(&common::kassa(), &hq);
    let listen = free_listen();
    let server = run_hq(&hq_arg, &listen, READ).await;
    let hq_url = server.url.clone();
    let node = dir.path().join("node");
    let node_arg = arg(&node);
    let kassa = common::kassa();
    enrol_store((&kassa, &hq), (&kassa, &node), &hq_url, STORE, &[T1, T2]);
    let first_key = std::fs::read_to_string(node.join(format!("keys/{T1}.ed25519"))).unwrap();
    let http = client();
    let at_hq = hq_client(&hq);
    let running = run_node(&node_arg, &["--pull-every", "1"]).await;
    wait_for_shifts(&running.url, &[T1, T2]).await;
    assert!(sell(&http, &running.url, T1, "rot-1").await.is_some());
    wait_synced(&http, &running.url, &at_hq, &hq_url, READ).await;

    // HQ goes out of reach; the store sells on and rotates T1's key.
    server.kill9().await.unwrap();
    assert!(sell(&http, &running.url, T1, "rot-2").await.is_some());
    running.kill9().await.unwrap();
    let why = run(&[
        "store",
        "--data",
        &node_arg,
        "rotate-key",
        "--terminal",
        "vienna-01-t9",
    ])
    .unwrap_err();
    assert!(why.contains("no terminal `vienna-01-t9`"), "{why}");
    let second = new_key(&ok(&[
        "store",
        "--data",
        &node_arg,
        "rotate-key",
        "--terminal",
        T1,
    ]));
    let why = run(&["store", "--data", &node_arg, "rotate-key", "--terminal", T1]).unwrap_err();
    assert!(why.contains("already waiting"), "{why}");
    let running = run_node(&node_arg, &["--pull-every", "1"]).await;
    wait_for_shifts(&running.url, &[T1, T2]).await;
    assert!(sell(&http, &running.url, T1, "rot-3").await.is_some());
    assert!(sell(&http, &running.url, T2, "rot-4").await.is_some());
    running.kill9().await.unwrap();
    assert!(!node.join(format!("keys/{T1}.ed25519.next")).exists());
    assert_eq!(
        std::fs::read_to_string(node.join(format!("keys/{T1}.ed25519")))
            .unwrap()
            .len(),
        64
    );

    // The second rotation; the node is killed after recording it and before renaming the key
    // file (put back as it was then): the next start finishes it and announces nothing twice.
    let third = new_key(&ok(&[
        "store",
        "--data",
        &node_arg,
        "rotate-key",
        "--terminal",
        T1,
    ]));
    let second_file = std::fs::read(node.join(format!("keys/{T1}.ed25519"))).unwrap();
    let running = run_node(&node_arg, &["--pull-every", "1"]).await;
    wait_for_shifts(&running.url, &[T1, T2]).await;
    running.kill9().await.unwrap();
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        let key_file = node.join(format!("keys/{T1}.ed25519"));
        std::fs::rename(&key_file, node.join(format!("keys/{T1}.ed25519.next"))).unwrap();
        let mut old = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&key_file)
            .unwrap();
        std::io::Write::write_all(&mut old, &second_file).unwrap();
    }
    let running = run_node(&node_arg, &["--pull-every", "1"]).await;
    wait_for_shifts(&running.url, &[T1, T2]).await;
    assert!(sell(&http, &running.url, T1, "rot-5").await.is_some());
    let rotations: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT body FROM events WHERE terminal = $1 AND kind = 'KeyRotated' ORDER BY seq",
    )
    .bind(T1)
    .fetch_all(&ledger(&node).await)
    .await
    .unwrap();
    assert_eq!(
        rotations.len(),
        2,
        "a rotation was recorded twice or not at all"
    );
    for (body, key) in rotations.iter().zip([&second, &third]) {
        let text = String::from_utf8_lossy(body);
        assert!(text.contains(key.as_str()), "{text} does not name {key}");
    }

    // HQ back in reach: everything arrives once, verified across both rotations.
    let server = run_hq(&hq_arg, &listen, READ).await;
    wait_synced(&http, &running.url, &at_hq, &hq_url, READ).await;
    let db = sqlite(&hq).await;
    let keys: Vec<(i64, Vec<u8>)> = sqlx::query_as(
        "SELECT from_seq, public_key FROM terminal_keys WHERE terminal_id = $1 ORDER BY from_seq",
    )
    .bind(T1)
    .fetch_all(&db)
    .await
    .unwrap();
    let key_hexes: Vec<String> = keys.iter().map(|(_, k)| hex::encode(k)).collect();
    assert_eq!(key_hexes.len(), 3, "{keys:?}");
    assert_eq!(&key_hexes[1..], &[second.clone(), third.clone()]);
    let current: Vec<u8> = sqlx::query_scalar("SELECT public_key FROM terminals WHERE id = $1")
        .bind(T1)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(hex::encode(current), third);
    let inbox: Vec<(i64, String)> =
        sqlx::query_as("SELECT seq, kind FROM inbox WHERE terminal = $1 ORDER BY seq")
            .bind(T1)
            .fetch_all(&db)
            .await
            .unwrap();
    let seqs: Vec<i64> = inbox.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(
        seqs,
        (1..=i64::try_from(seqs.len()).unwrap()).collect::<Vec<_>>()
    );
    let sales = inbox.iter().filter(|(_, k)| k == "SaleCompleted").count();
    assert_eq!(sales, 4, "{inbox:?}");
    let audited: Vec<String> = sqlx::query_scalar(
        "SELECT actor FROM audit_log WHERE action = 'terminal.key_rotated' ORDER BY id",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(audited, vec![format!("store:{STORE}"); 2]);

    // The first key, stolen, cannot add to the chain: a batch after HQ's head signed with it
    // is refused, nothing taken.
    let (head_seq, head_hash): (i64, Vec<u8>) = sqlx::query_as(
        "SELECT seq, hash FROM events WHERE terminal = $1 ORDER BY seq DESC LIMIT 1",
    )
    .bind(T1)
    .fetch_one(&ledger(&node).await)
    .await
    .unwrap();
    // The node says where each till's ledger ends on its reference pulls (what HQ compares a
    // restored node with, to name what it lost).
    let started = std::time::Instant::now();
    loop {
        let reported: Option<i64> =
            sqlx::query_scalar("SELECT reported_seq FROM terminals WHERE id = $1")
                .bind(T1)
                .fetch_one(&db)
                .await
                .unwrap();
        if reported == Some(head_seq) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "HQ never heard where {T1}'s ledger ends ({head_seq}): {reported:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    running.kill9().await.unwrap();
    let seq = head_seq + 1;
    let forged = format!(
        r#"{{"v":1,"id":"01935f4e-8a2b-7c3d-9e4f-{seq:012}","store":"{STORE}","terminal":"{T1}","seq":{seq},"hlc":[1790000000000,0],"body":{{"StockCounted":{{"sku":"GRO-BRD-0012","counted":0}}}}}}"#
    );
    let prev: protocol::chain::Hash = head_hash.try_into().unwrap();
    let stolen = ed25519_dalek::SigningKey::from_bytes(
        &hex::decode(first_key.trim()).unwrap().try_into().unwrap(),
    );
    let batch = protocol::sync::Batch {
        header: protocol::sync::BatchHeader {
            format: protocol::sync::BATCH_FORMAT.into(),
            store: STORE.into(),
            terminal: T1.into(),
            from_seq: u64::try_from(seq).unwrap(),
            count: 1,
            prev_hash: hex::encode(prev),
            head_signature: hex::encode(protocol::chain::sign(
                &stolen,
                &protocol::chain::link(&prev, forged.as_bytes()),
            )),
        },
        events: vec![forged.into_bytes()],
    };
    let credential = std::fs::read_to_string(node.join("keys/hq.credential")).unwrap();
    let answer = at_hq
        .post(format!("{hq_url}/v1/sync/push"))
        .bearer_auth(credential.trim())
        .header("content-type", protocol::sync::BATCH_MEDIA_TYPE)
        .body(protocol::sync::encode_batch(&batch, 3))
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    let why: Value = answer.json().await.unwrap();
    assert_eq!(status, 422, "{why}");
    assert!(
        why["message"]
            .as_str()
            .unwrap()
            .contains("signature does not verify"),
        "{why}"
    );
    let held: i64 = sqlx::query_scalar("SELECT acked_seq FROM terminals WHERE id = $1")
        .bind(T1)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(held, head_seq);

    // The node's own audit follows the chain across both rotations.
    let verified = ok(&["store", "--data", &node_arg, "verify"]);
    assert!(
        verified.contains(&format!(
            "{T1}: {head_seq} events, chain and signatures verify"
        )),
        "{verified}"
    );
    drop(server);
}

/// A client of HQ that trusts the chain's CA and presents `identity` when asked.
fn client_as(hq: &Path, identity: Option<&tls::Identity>) -> reqwest::Client {
    let ca = std::fs::read_to_string(hq.join("tls/ca.pem")).unwrap();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls::client_config_as(&ca, identity).unwrap())
        .build()
        .unwrap()
}

/// Issue 21, item 1: mutual TLS per store. Enrolment gives the node a client certificate under
/// the chain's CA; once HQ requires it for the store, the node syncs as before, while the
/// store's credential alone, or with another store's certificate, or with a certificate of
/// another CA, is refused. Rotating the credential renews the certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_must_show_its_client_certificate_syncs_with_it_and_nothing_else_passes() {
    const READ: &str = "mtls-test-read";
    let dir = tempfile::tempdir().unwrap();
    let hq = dir.path().join("hq");
    let hq_arg = arg(&hq);
    prepare_hq(&common::kassa(), &hq);
    let server = run_hq(&hq_arg, "127.0.0.1:0", READ).await;
    let node = dir.path().join("node");
    let node_arg = arg(&node);
    let kassa = common::kassa();
    enrol_store((&kassa, &hq), (&kassa, &node), &server.url, STORE, &[T1]);
    let (chain, key) = (
        node.join("keys/hq-client.pem"),
        node.join("keys/hq-client.key"),
    );
    let key_mode = {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777
    };
    assert_eq!(key_mode, 0o600, "the client key is readable by others");
    let issued = std::fs::read_to_string(&chain).unwrap();

    let why = run(&[
        "hq",
        "--data",
        &hq_arg,
        "store",
        "client-cert",
        "--id",
        "graz-01",
        "--require",
    ])
    .unwrap_err();
    assert!(why.contains("graz-01"), "{why}");
    ok(&[
        "hq",
        "--data",
        &hq_arg,
        "store",
        "client-cert",
        "--id",
        STORE,
        "--require",
    ]);

    // The node presents its certificate and syncs as before.
    let http = client();
    let at_hq = hq_client(&hq);
    let running = run_node(&node_arg, &["--pull-every", "1"]).await;
    wait_for_shifts(&running.url, &[T1]).await;
    assert!(sell(&http, &running.url, T1, "mtls-1").await.is_some());
    wait_synced(&http, &running.url, &at_hq, &server.url, READ).await;

    // The credential alone, or with another store's certificate, is refused.
    let credential = std::fs::read_to_string(node.join("keys/hq.credential")).unwrap();
    let pull = |client: reqwest::Client| {
        let request = client
            .get(format!("{}/v1/sync/stock", server.url))
            .bearer_auth(credential.trim())
            .send();
        async move {
            match request.await {
                Ok(answer) => {
                    let status = answer.status().as_u16();
                    Ok((status, answer.json::<Value>().await.unwrap_or(Value::Null)))
                }
                Err(e) => Err(format!("{e:?}")),
            }
        }
    };
    let (status, why) = pull(client_as(&hq, None)).await.unwrap();
    assert_eq!(
        (status, why["code"].as_str()),
        (401, Some("client_certificate_required")),
        "{why}"
    );
    let ca = tls::Authority::load(&hq.join("tls/ca.pem"), &hq.join("tls/ca.key")).unwrap();
    let graz = ca.issue_store_client("graz-01").unwrap();
    let (status, why) = pull(client_as(&hq, Some(&graz))).await.unwrap();
    assert_eq!(
        (status, why["code"].as_str()),
        (403, Some("client_certificate_mismatch")),
        "{why}"
    );
    // A certificate for this store from another CA does not pass the handshake.
    let stranger = tls::Authority::create("Stranger")
        .unwrap()
        .issue_store_client(STORE)
        .unwrap();
    assert!(pull(client_as(&hq, Some(&stranger))).await.is_err());
    // With its own certificate the same request passes.
    let own = tls::Identity::load(&chain, &key).unwrap();
    let (status, why) = pull(client_as(&hq, Some(&own))).await.unwrap();
    assert_eq!(status, 200, "{why}");

    // The credential's rotation renews the certificate; `--allow` takes the credential alone.
    ok(&["store", "--data", &node_arg, "rotate-credential"]);
    let renewed = std::fs::read_to_string(&chain).unwrap();
    assert_ne!(renewed, issued, "the client certificate was not renewed");
    ok(&[
        "hq",
        "--data",
        &hq_arg,
        "store",
        "client-cert",
        "--id",
        STORE,
        "--allow",
    ]);
    let credential = std::fs::read_to_string(node.join("keys/hq.credential")).unwrap();
    let answer = client_as(&hq, None)
        .get(format!("{}/v1/sync/stock", server.url))
        .bearer_auth(credential.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    let db = sqlite(&hq).await;
    let audited: Vec<String> = sqlx::query_scalar(
        "SELECT after_json FROM audit_log WHERE action = 'store.client_cert_required' ORDER BY id",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(audited.len(), 2, "{audited:?}");
    assert!(
        audited[0].contains("true") && audited[1].contains("false"),
        "{audited:?}"
    );
    drop(running);
}
