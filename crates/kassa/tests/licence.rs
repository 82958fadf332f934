//! Issue 21, item 8: a licence signed with the vendor's Ed25519 key (`kassa licence issue`),
//! installed and checked offline at HQ (`kassa hq licence install`). A changed file, another
//! vendor's key, another customer's licence, an older or an expired one are refused and change
//! nothing. Over its limits the chain gets a grace period with a warning, then no new store or
//! terminal is admitted — not by the command line, not by enrolment — while the tills already
//! registered sell on and sync.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use common::{arg, hq_client, ok, run, run_hq, run_node, sell, wait_for_shifts, wait_synced};
use serde_json::Value;
use test_support::{client, demo_seed_path};

mod common;

const READ: &str = "licence-test-read";

fn refused(args: &[&str]) -> String {
    match run(args) {
        Ok(out) => panic!("`kassa {}` succeeded: {out}", args.join(" ")),
        Err(e) => e,
    }
}

fn day(offset_days: i64) -> String {
    (jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        + jiff::Span::new().days(offset_days))
    .to_string()
}

/// `kassa licence issue` with the vendor key `key`; `terms` overrides the defaults (customer
/// acme, 2 stores, 3 terminals, a year, issued today).
fn issue(key: &Path, out: &Path, terms: &[(&str, &str)]) -> String {
    let expires = day(365);
    let issued = day(0);
    let mut fields = vec![
        ("--licence", "L-1"),
        ("--customer", "acme"),
        ("--customer-name", "Acme Retail"),
        ("--stores", "2"),
        ("--terminals", "3"),
        ("--expires", expires.as_str()),
        ("--issued", issued.as_str()),
    ];
    for (flag, value) in terms {
        match fields.iter_mut().find(|(f, _)| f == flag) {
            Some(field) => field.1 = value,
            None => fields.push((flag, value)),
        }
    }
    let (key, out) = (arg(key), arg(out));
    let mut args = vec!["licence", "issue", "--key", &key, "--out", &out];
    for (flag, value) in &fields {
        args.extend([*flag, *value]);
    }
    ok(&args)
}

async fn report(at_hq: &reqwest::Client, url: &str) -> Value {
    at_hq
        .get(format!("{url}/v1/licence"))
        .bearer_auth(READ)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_licence_is_checked_offline_and_past_its_grace_admits_no_new_till_while_registered_ones_sell()
 {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let hq = path("hq");
    let hq_arg = arg(&hq);
    let vendor = path("vendor.key");
    let vendor_pub = arg(&path("vendor.key.pub"));

    // The vendor's key: the secret readable by its owner alone, made once.
    let made = ok(&["licence", "keygen", "--out", &arg(&vendor)]);
    assert!(made.contains("vendor key"), "{made}");
    let mode = {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(&vendor).unwrap().permissions().mode() & 0o777
    };
    assert_eq!(mode, 0o600, "the vendor's secret key is readable by others");
    let again = refused(&["licence", "keygen", "--out", &arg(&vendor)]);
    assert!(again.contains("exists"), "{again}");

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
    let install = |file: &Path| {
        run(&[
            "hq",
            "--data",
            &hq_arg,
            "licence",
            "install",
            &arg(file),
            "--licence-key",
            &vendor_pub,
        ])
    };
    let show = || ok(&["hq", "--data", &hq_arg, "licence", "show"]);
    assert!(show().contains("no licence installed"), "{}", show());

    // Refused, each with what to do, and nothing installed: a changed term, another vendor's
    // key, no key named at all, an expired licence.
    let good = path("acme.licence");
    let printed = issue(&vendor, &good, &[]);
    assert!(printed.contains("2 stores, 3 terminals"), "{printed}");
    let shown = ok(&["licence", "show", &arg(&good), "--licence-key", &vendor_pub]);
    assert!(shown.contains("Acme Retail"), "{shown}");
    let text = std::fs::read_to_string(&good).unwrap();
    let changed = path("changed.licence");
    std::fs::write(
        &changed,
        text.replace(r#"\"terminals\":3"#, r#"\"terminals\":300"#),
    )
    .unwrap();
    assert_ne!(std::fs::read_to_string(&changed).unwrap(), text);
    let why = install(&changed).unwrap_err();
    assert!(why.contains("signature does not match"), "{why}");
    let stranger = path("stranger.key");
    ok(&["licence", "keygen", "--out", &arg(&stranger)]);
    let forged = path("forged.licence");
    issue(&stranger, &forged, &[]);
    let why = install(&forged).unwrap_err();
    assert!(why.contains("does not trust"), "{why}");
    let why = refused(&["hq", "--data", &hq_arg, "licence", "install", &arg(&good)]);
    assert!(why.contains("--licence-key"), "{why}");
    let expired = path("expired.licence");
    let (long_ago, yesterday) = (day(-400), day(-1));
    issue(
        &vendor,
        &expired,
        &[("--issued", &long_ago), ("--expires", &yesterday)],
    );
    let why = install(&expired).unwrap_err();
    assert!(why.contains("expired"), "{why}");
    assert!(show().contains("no licence installed"), "{}", show());

    // The licence itself; then another customer's and an older one are refused.
    let installed = install(&good).unwrap();
    assert!(installed.contains("within the licence"), "{installed}");
    let other = path("other.licence");
    issue(&vendor, &other, &[("--customer", "globex")]);
    let why = install(&other).unwrap_err();
    assert!(
        why.contains("`globex`") && why.contains("licensed to `acme`"),
        "{why}"
    );
    let older = path("older.licence");
    let last_month = day(-30);
    issue(
        &vendor,
        &older,
        &[("--licence", "L-0"), ("--issued", &last_month)],
    );
    let why = install(&older).unwrap_err();
    assert!(why.contains("before the installed licence"), "{why}");
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", hq.join("hq.sqlite").display()))
        .await
        .unwrap();
    let installs: Vec<String> =
        sqlx::query_scalar("SELECT target FROM audit_log WHERE action = 'licence.install'")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(installs, ["licence:L-1"]);

    let server = run_hq(&hq_arg, "127.0.0.1:0", READ).await;
    let at_hq = hq_client(&hq);
    // A new store: registered with a code (`store add --url`), then the node enrolled with it.
    let enrol = |store: &str, data: &Path, tills: &[&str]| {
        let code = run(&[
            "hq",
            "--data",
            &hq_arg,
            "store",
            "add",
            "--id",
            store,
            "--name",
            store,
            "--url",
            &server.url,
        ])?;
        let code = code.lines().last().unwrap().trim().to_owned();
        let data = arg(data);
        let mut args = vec!["store", "--data", data.as_str(), "enrol", code.as_str()];
        for till in tills {
            args.extend(["--terminal", till]);
        }
        run(&args)
    };

    // Two tills in Vienna, one in Graz: within. A second till in Graz: one over, admitted for
    // the grace period with a warning.
    enrol(
        "vienna-01",
        &path("vienna"),
        &["vienna-01-t1", "vienna-01-t2"],
    )
    .unwrap();
    enrol("graz-01", &path("graz"), &["graz-01-t1"]).unwrap();
    let within = report(&at_hq, &server.url).await;
    assert_eq!(within["standing"]["state"], "valid", "{within}");
    assert_eq!(within["usage"]["terminals"], 3);
    let provisioned = ok(&[
        "store",
        "--data",
        &arg(&path("spare")),
        "provision",
        "--store",
        "graz-01",
        "--terminal",
        "graz-01-t2",
    ]);
    let spare_key = provisioned
        .split_whitespace()
        .find(|w| w.len() == 64 && w.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(|| panic!("no public key printed:\n{provisioned}"))
        .to_owned();
    let admitted = run(&[
        "hq",
        "--data",
        &hq_arg,
        "terminal",
        "add",
        "--store",
        "graz-01",
        "--id",
        "graz-01-t2",
        "--public-key",
        &spare_key,
    ]);
    assert!(admitted.is_ok(), "{admitted:?}");
    let grace = report(&at_hq, &server.url).await;
    assert_eq!(grace["standing"]["state"], "grace", "{grace}");
    assert_eq!(
        grace["standing"]["breaches"][0],
        serde_json::json!({"kind": "terminals", "used": 4, "allowed": 3})
    );
    let notice = grace["notice"].as_str().unwrap();
    assert!(
        notice.contains("4 terminals are registered, the licence allows 3")
            && notice.contains(&day(30)),
        "{notice}"
    );
    assert!(show().contains("admitted until"), "{}", show());

    // The grace period runs out (its start moved back, as the clock cannot be): no new till
    // by enrolment nor by the command line, no new store; the node's directory is not left.
    sqlx::query("UPDATE licence SET over_since_ms = over_since_ms - 31 * 86400000")
        .execute(&db)
        .await
        .unwrap();
    let lapsed = report(&at_hq, &server.url).await;
    assert_eq!(lapsed["standing"]["state"], "lapsed", "{lapsed}");
    let why = enrol("linz-01", &path("linz"), &["linz-01-t1"]).unwrap_err();
    assert!(why.contains("no new store is admitted"), "{why}");
    let code = ok(&[
        "hq",
        "--data",
        &hq_arg,
        "store",
        "enrol",
        "--id",
        "graz-01",
        "--url",
        &server.url,
    ]);
    let why = run(&[
        "store",
        "--data",
        &arg(&path("graz-new")),
        "enrol",
        code.lines().last().unwrap().trim(),
        "--terminal",
        "graz-01-t3",
    ])
    .unwrap_err();
    assert!(
        why.contains("licence_lapsed") && why.contains("no new terminal is admitted"),
        "{why}"
    );
    assert!(!path("graz-new").exists());
    let counted: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM terminals")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(counted, 4, "a till was registered past the grace period");

    // A till registered before sells on, and HQ takes its sale.
    let node = run_node(&arg(&path("vienna")), &[]).await;
    let http = client();
    wait_for_shifts(&node.url, &["vienna-01-t1"]).await;
    assert!(
        sell(&http, &node.url, "vienna-01-t1", "licence-1")
            .await
            .is_some(),
        "a registered till refused a sale"
    );
    wait_synced(&http, &node.url, &at_hq, &server.url, READ).await;

    // A renewed licence for more tills ends it.
    let renewed = path("renewed.licence");
    issue(
        &vendor,
        &renewed,
        &[
            ("--licence", "L-2"),
            ("--stores", "5"),
            ("--terminals", "10"),
        ],
    );
    let installed = install(&renewed).unwrap();
    assert!(installed.contains("within the licence"), "{installed}");
    assert_eq!(
        report(&at_hq, &server.url).await["standing"]["state"],
        "valid"
    );
    enrol("linz-01", &path("linz"), &["linz-01-t1"]).unwrap();
}
