//! The back office end to end, with real `kassa` processes on 127.0.0.1: a price changed
//! through HQ's write API (an API key made with `kassa hq api-key create`) reaches a running
//! store node through sync, and the till's item lookup answers it from its instant on; and the
//! back office's pages in headless Chromium, signed in as people with roles made with
//! `kassa hq user add`, each page checked with axe-core and kept as a screenshot.
#![allow(clippy::unwrap_used)] // Test code: a panic is a test failure.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use test_support::Process;
use test_support::browser::{Browser, TestPage, dt};
use test_support::chain::{ChainSpec, HqDatabase, StoreSpec, kassa_cli, spawn_chain};

/// The bread's barcode, as a till scans it, and its SKU.
const BREAD: &str = "9003909062415";
const BREAD_SKU: &str = "GRO-BRD-0012";

fn kassa() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kassa"))
}

/// The price the store node answers for the bread now.
async fn till_price(http: &reqwest::Client, store: &str) -> String {
    let item: Value = http
        .get(format!("{store}/v1/items/{BREAD}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    item["price"].as_str().unwrap_or_default().to_owned()
}

async fn schedule(http: &reqwest::Client, hq: &str, key: &str, body: Value) -> Value {
    let response = http
        .post(format!("{hq}/v1/price-changes"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "{answer}");
    answer
}

/// A price scheduled at HQ for a few seconds ahead reaches a running store node before its
/// instant, and the till keeps the old price until the instant and shows the new one from it
/// on; a price changed for now reaches the till within seconds (the store pulls every 5 s, but
/// HQ answers its waiting pull as soon as the change is committed).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_price_scheduled_at_hq_reaches_a_running_till_at_its_instant() {
    let root = tempfile::tempdir().unwrap();
    let database = HqDatabase::Sqlite(root.path().join("hq"));
    let chain = spawn_chain(
        &kassa(),
        root.path(),
        database.clone(),
        ChainSpec {
            stores: vec![StoreSpec::new("vienna-01", "Kassa Wien", &["vienna-01-t1"])],
            hq_up: true,
            pull_every_secs: 5,
        },
    )
    .await
    .unwrap();
    let mut create = vec!["hq".to_owned()];
    create.extend(database.cli_args());
    create.extend(
        [
            "api-key",
            "create",
            "--name",
            "merchandising",
            "--scope",
            "catalog:write",
        ]
        .map(str::to_owned),
    );
    let printed = kassa_cli(&kassa(), &create).await.unwrap();
    let key = printed.lines().last().unwrap().trim().to_owned();
    let hq = chain.hq.url().unwrap().to_owned();
    let store = chain.stores[0].url().unwrap().to_owned();
    let http = test_support::client();
    let before = till_price(&http, &store).await;
    assert!(!before.is_empty(), "the bread has a price at the till");

    // HQ keeps instants to the millisecond: so does the instant compared with.
    let effective = jiff::Timestamp::from_millisecond(
        (jiff::Timestamp::now() + jiff::SignedDuration::from_secs(4)).as_millisecond(),
    )
    .unwrap();
    let change = schedule(
        &http,
        &hq,
        &key,
        json!({"sku": BREAD_SKU, "price": "4.44", "currency": "EUR", "effective": effective.to_string()}),
    )
    .await;
    assert_eq!(change["status"], "scheduled");
    let seen = loop {
        let shown = till_price(&http, &store).await;
        let now = jiff::Timestamp::now();
        if shown == "4.44" {
            break now;
        }
        assert_eq!(
            shown, before,
            "the till shows the old price until the change"
        );
        assert!(
            now < effective + jiff::SignedDuration::from_secs(10),
            "4.44 not shown 10 s after its instant"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        seen >= effective,
        "shown at {seen}, before its instant {effective}"
    );
    let late = seen.duration_since(effective);
    assert!(
        late < jiff::SignedDuration::from_secs(1),
        "shown {late:?} after its instant"
    );
    // HQ says the store has been sent the change.
    let id = change["id"].as_str().unwrap();
    let read: Value = http
        .get(format!("{hq}/v1/price-changes/{id}"))
        .bearer_auth(test_support::HQ_READ_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let vienna = read["stores"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["store"] == "vienna-01")
        .unwrap();
    assert_eq!(vienna["sent"], true, "{read}");
    assert_eq!(vienna["terminals"], json!(["vienna-01-t1"]), "{read}");

    schedule(
        &http,
        &hq,
        &key,
        json!({"sku": BREAD_SKU, "price": "3.33", "currency": "EUR"}),
    )
    .await;
    let committed = Instant::now();
    while till_price(&http, &store).await != "3.33" {
        assert!(
            committed.elapsed() < Duration::from_secs(5),
            "a price changed for now did not reach the till within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(chain);
}

// ---------------------------------------------------------------------------------------------
// The pages

/// axe-core as `.ci/tools` installs it (pinned by its package-lock.json).
fn axe_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../hq/tests/node/node_modules/axe-core/axe.min.js")
}

/// Runs axe-core on the page as it is and fails on any serious or critical violation.
async fn assert_accessible(page: &TestPage, axe: &str, what: &str) {
    page.eval(axe).await.unwrap();
    let violations = page
        .eval(
            "axe.run(document, {resultTypes: ['violations']}).then(r => r.violations \
               .filter(v => v.impact === 'serious' || v.impact === 'critical') \
               .map(v => v.id + ' (' + v.impact + '): ' + v.nodes.map(n => n.target.join(' ')).join(' | ')))",
        )
        .await
        .unwrap();
    assert_eq!(violations, json!([]), "{what}: accessibility violations");
}

/// Opens `url` in the page and waits until the new document has loaded and shows `ready`.
/// The document being left is marked first, so that a page like the one being left (its
/// `ready` element present) is never taken for the new one.
async fn go(page: &TestPage, url: &str, ready: &str) {
    page.eval(&format!(
        "window.kassaLeaving = true; location.assign({})",
        json!(url)
    ))
    .await
    .unwrap();
    page.wait_for(
        ready,
        &format!(
            "!window.kassaLeaving && document.querySelector('{}') && document.readyState === 'complete'",
            ready.replace('\'', "\\'")
        ),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
}

async fn sign_in(page: &TestPage, name: &str, password: &str) {
    page.wait_visible(&dt("sign-in")).await.unwrap();
    page.fill("#name", name).await.unwrap();
    page.fill("#password", password).await.unwrap();
    page.click("form[data-sign-in] button[type=submit]")
        .await
        .unwrap();
}

/// Fetches `path` from the page (with its session cookie): status and JSON answer.
async fn fetch(
    page: &TestPage,
    method: &str,
    path: &str,
    headers: Value,
    body: Option<Value>,
) -> (u64, Value) {
    let answer = page
        .eval(&format!(
            "fetch({}, {{method: {}, headers: Object.assign({{'Content-Type': 'application/json'}}, {}), body: {}}}) \
               .then(async r => ({{status: r.status, body: await r.json().catch(() => null)}}))",
            json!(path),
            json!(method),
            headers,
            body.map_or("undefined".to_owned(), |b| json!(b.to_string()).to_string()),
        ))
        .await
        .unwrap();
    (
        answer["status"].as_u64().unwrap_or(0),
        answer["body"].clone(),
    )
}

/// An admin and a store manager sign in to HQ's back office in Chromium: the admin sees the
/// dashboard of every store, searches the catalog, opens a variant, previews and schedules a
/// price change (a bad price is refused at its field), sees it listed and in the audit log,
/// and reads the dashboard in German; a request without the CSRF token is refused; the store
/// manager sees only their store and may not open the catalog. Every page passes axe-core's
/// check and is kept as a screenshot in `artifacts/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn people_run_the_chain_from_the_back_office_pages() {
    let Some(browser) = Browser::launch_or_skip().await else {
        return;
    };
    let axe = match std::fs::read_to_string(axe_path()) {
        Ok(axe) => axe,
        Err(_) => {
            test_support::skip::skip(
                "the back office's page test needs axe-core, which is not installed",
                "run `npm ci --prefix crates/hq/tests/node` (.ci/tools does)",
            );
            return;
        }
    };
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("hq").display().to_string();
    let seed = test_support::demo_seed_path().display().to_string();
    let hq = |args: &[&str]| {
        let mut all = vec!["hq".to_owned(), "--data".to_owned(), data.clone()];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        all
    };
    kassa_cli(&kassa(), &hq(&["publish", &seed])).await.unwrap();
    kassa_cli(
        &kassa(),
        &hq(&["store", "add", "--id", "vienna-01", "--name", "Kassa Wien"]),
    )
    .await
    .unwrap();
    // A till provisioned at the store and registered at HQ, never heard from yet.
    let store_data = root.path().join("store").display().to_string();
    let printed = kassa_cli(
        &kassa(),
        &[
            "store".into(),
            "--data".into(),
            store_data,
            "provision".into(),
            "--store".into(),
            "vienna-01".into(),
            "--terminal".into(),
            "vienna-01-t1".into(),
        ],
    )
    .await
    .unwrap();
    let public_key = printed
        .lines()
        .find_map(|l| l.trim().strip_prefix("vienna-01-t1 "))
        .unwrap()
        .trim()
        .to_owned();
    kassa_cli(
        &kassa(),
        &hq(&[
            "terminal",
            "add",
            "--store",
            "vienna-01",
            "--id",
            "vienna-01-t1",
            "--public-key",
            &public_key,
        ]),
    )
    .await
    .unwrap();
    let password = root.path().join("password");
    std::fs::write(&password, "correct horse battery\n").unwrap();
    let password_file = password.display().to_string();
    kassa_cli(
        &kassa(),
        &hq(&[
            "user",
            "add",
            "--name",
            "ana",
            "--role",
            "admin",
            "--password-file",
            &password_file,
        ]),
    )
    .await
    .unwrap();
    kassa_cli(
        &kassa(),
        &hq(&[
            "user",
            "add",
            "--name",
            "max",
            "--role",
            "store-manager",
            "--store",
            "vienna-01",
            "--password-file",
            &password_file,
        ]),
    )
    .await
    .unwrap();
    let server = Process::spawn(
        &kassa(),
        // Plain HTTP: the browser under test knows no chain CA (the TLS link is the stores').
        &[
            "hq",
            "--data",
            &data,
            "run",
            "--listen",
            "127.0.0.1:0",
            "--insecure-http",
        ],
    )
    .await
    .unwrap();
    let url = server.url.clone();

    // Signed out, every page sends to the sign-in page; a wrong password is said at the form.
    let page = browser.open(&format!("{url}/dashboard")).await.unwrap();
    page.set_viewport(1280, 800).await.unwrap();
    sign_in(&page, "ana", "wrong horse battery").await;
    page.wait_for(
        "the refusal",
        "document.querySelector('[data-error=form]').textContent.length > 0",
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_accessible(&page, &axe, "sign-in").await;
    page.screenshot("back-office-sign-in").await.unwrap();
    page.fill("#password", "").await.unwrap();
    sign_in(&page, "ana", "correct horse battery").await;
    page.wait_visible(&dt("dashboard")).await.unwrap();
    assert_eq!(page.text(&dt("user")).await.unwrap(), "ana");
    assert_eq!(page.count("[data-test=sales] tbody tr").await.unwrap(), 3);
    // Every kind of the inbox and the offline card approvals waiting.
    assert_eq!(
        page.count("[data-test=exceptions] tbody tr").await.unwrap(),
        hq::exceptions::KINDS.len() + 1
    );
    assert_accessible(&page, &axe, "dashboard").await;
    page.screenshot("back-office-dashboard").await.unwrap();

    // The catalog: search, then a variant.
    go(
        &page,
        &format!("{url}/catalog?q=bauernbrot"),
        "[data-test=results]",
    )
    .await;
    assert_eq!(page.count("[data-test=results] tbody tr").await.unwrap(), 1);
    assert_accessible(&page, &axe, "catalog").await;
    page.screenshot("back-office-catalog").await.unwrap();
    page.click("[data-test=results] tbody a").await.unwrap();
    page.wait_visible(&dt("variant")).await.unwrap();
    assert!(
        page.text(&dt("variant"))
            .await
            .unwrap()
            .contains("GRO-BRD-0012")
    );
    // Its category, and no import wrote it (the demo chain was published, not imported).
    assert_eq!(
        page.text(&dt("category")).await.unwrap(),
        "Lebensmittel › Brot & Gebäck"
    );
    assert_eq!(page.count(&dt("no-imports")).await.unwrap(), 1);
    // Edited in place: a barcode whose check digit is wrong is refused at the barcodes, then
    // a new name and category are saved with the version it was read at.
    page.eval("document.querySelector('[data-test=variant-edit]').closest('details').open = true")
        .await
        .unwrap();
    let gtins = page
        .eval("document.querySelector('#edit-gtins').value")
        .await
        .unwrap();
    page.fill("#edit-gtins", "4006381333932").await.unwrap();
    page.click("[data-variant-edit] button[type=submit]")
        .await
        .unwrap();
    page.wait_for(
        "the barcode refused",
        "document.querySelector('#edit-gtins-error').textContent.length > 0",
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    page.fill("#edit-gtins", gtins.as_str().unwrap_or_default())
        .await
        .unwrap();
    page.fill("#edit-name", "Bauernbrot 1 kg").await.unwrap();
    page.eval("document.querySelector('#edit-category').value = 'feinkost'")
        .await
        .unwrap();
    page.eval("window.kassaLeaving = true").await.unwrap();
    page.click("[data-variant-edit] button[type=submit]")
        .await
        .unwrap();
    page.wait_for(
        "the variant saved",
        "!window.kassaLeaving && document.querySelector('[data-test=variant]').textContent.startsWith('Bauernbrot 1 kg')",
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(
        page.text(&dt("category")).await.unwrap(),
        "Lebensmittel › Feinkost"
    );

    // A price change for tomorrow 06:00 in the stores' time, previewed, then scheduled.
    let tomorrow = jiff::Zoned::now()
        .with_time_zone(jiff::tz::TimeZone::get("Europe/Vienna").unwrap())
        .date()
        .tomorrow()
        .unwrap();
    page.fill("#price", "4.44").await.unwrap();
    page.eval(&format!(
        "document.querySelector('#effective').value = '{tomorrow}T06:00:00'; document.querySelector('#currency').value = 'EUR'"
    ))
    .await
    .unwrap();
    page.click(&dt("preview")).await.unwrap();
    page.wait_for(
        "the preview",
        "document.querySelectorAll('[data-preview-rows] tr').length === 2",
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let preview = page.text(&dt("preview-table")).await.unwrap();
    assert!(
        preview.contains("vienna-01") && preview.contains("4.44"),
        "{preview}"
    );
    assert!(
        preview.contains(&format!("{tomorrow}T06:00:00+01:00")),
        "{preview}"
    );
    assert_accessible(&page, &axe, "variant with a preview").await;
    page.screenshot("back-office-price-change-preview")
        .await
        .unwrap();
    page.assert_requests_follow(hq::api::OPENAPI).await.unwrap();
    // A bad price is refused at its field and changes nothing.
    page.fill("#price", "4,44").await.unwrap();
    page.click(&dt("schedule")).await.unwrap();
    page.wait_for("the price refused", "document.querySelector('#price').getAttribute('aria-invalid') === 'true' && document.querySelector('[data-error=price]').textContent.length > 0", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(page.count("[data-test=changes] tbody tr").await.unwrap(), 0);
    page.fill("#price", "4.44").await.unwrap();
    page.click(&dt("schedule")).await.unwrap();
    page.wait_for(
        "the change listed",
        "document.querySelectorAll('[data-test=changes] tbody tr').length === 1",
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(
        page.text("[data-test=changes] [data-test=status]")
            .await
            .unwrap(),
        "scheduled"
    );
    assert_accessible(&page, &axe, "variant with a change").await;
    page.screenshot("back-office-variant").await.unwrap();

    // Without the CSRF token the API refuses the page's session; the audit log names Ana.
    let (status, body) = fetch(
        &page,
        "POST",
        "/v1/price-changes",
        json!({}),
        Some(json!({"sku": "GRO-BRD-0012", "price": "1.00", "currency": "EUR"})),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("csrf")),
        "{body}"
    );
    let (status, log) = fetch(
        &page,
        "GET",
        "/v1/audit-log?action=price.schedule",
        json!({}),
        None,
    )
    .await;
    assert_eq!(status, 200, "{log}");
    assert_eq!(log["entries"][0]["actor"], "user:ana", "{log}");

    // The catalog's scheduled changes on a page of their own, each with its cancel button.
    go(
        &page,
        &format!("{url}/price-changes"),
        "[data-test=price-changes]",
    )
    .await;
    assert_eq!(
        page.eval("[...document.querySelectorAll('[data-test=changes] tbody tr')].map(r => [r.querySelector('th').textContent, !!r.querySelector('[data-cancel]')])")
            .await
            .unwrap(),
        json!([["GRO-BRD-0012", true]])
    );
    assert_accessible(&page, &axe, "price changes").await;
    page.screenshot("back-office-price-changes").await.unwrap();

    // Reconciliation of the first store: yesterday by default (still `open` in the first two
    // hours after its midnight), and two days ago, long ended, reconciled (no till closed a
    // shift).
    go(
        &page,
        &format!("{url}/reconciliation"),
        "[data-test=reconciliation]",
    )
    .await;
    let yesterday = tomorrow.checked_sub(jiff::Span::new().days(2)).unwrap();
    assert_eq!(
        page.eval("document.querySelector('#day').value")
            .await
            .unwrap(),
        json!(yesterday.to_string())
    );
    let before = yesterday.yesterday().unwrap();
    go(
        &page,
        &format!("{url}/reconciliation?store=graz-01&day={before}"),
        "[data-test=reconciliation]",
    )
    .await;
    assert_eq!(
        page.attr(&dt("status"), "data-status")
            .await
            .unwrap()
            .as_deref(),
        Some("reconciled")
    );
    assert_accessible(&page, &axe, "reconciliation").await;
    page.screenshot("back-office-reconciliation").await.unwrap();
    go(
        &page,
        &format!("{url}/audit-log?action=price.schedule"),
        "[data-test=entries]",
    )
    .await;
    assert_eq!(page.count("[data-test=entries] tbody tr").await.unwrap(), 1);
    assert!(
        page.text("[data-test=entries] tbody tr")
            .await
            .unwrap()
            .contains("user:ana")
    );
    let csv = page
        .attr(&dt("csv"), "href")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(
        csv.starts_with("/v1/audit-log?action=price.schedule"),
        "{csv}"
    );
    assert_accessible(&page, &axe, "audit log").await;
    page.screenshot("back-office-audit-log").await.unwrap();

    // The exceptions inbox: stock gone negative at vienna-01 (written into HQ's database as
    // the projection would), resolved with a note.
    {
        use sqlx::Connection as _;
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{data}/hq.sqlite"))
            .await
            .unwrap();
        sqlx::query("INSERT INTO stock_levels (location, sku, on_hand) VALUES ('vienna-01', 'GRO-BRD-0012', -3000)")
            .execute(&mut conn)
            .await
            .unwrap();
    }
    // The dashboard counts what the inbox lists, until it is resolved.
    let negative_on_dashboard = "[...document.querySelectorAll('[data-test=exceptions] tbody tr')].find(r => r.querySelector('th').textContent == 'Negative stock').querySelector('td').textContent";
    go(&page, &format!("{url}/"), "[data-test=dashboard]").await;
    assert_eq!(page.eval(negative_on_dashboard).await.unwrap(), "1");
    go(&page, &format!("{url}/exceptions"), "[data-test=inbox]").await;
    assert_eq!(page.count("[data-test=inbox] tbody tr").await.unwrap(), 1);
    assert_accessible(&page, &axe, "exceptions").await;
    page.screenshot("back-office-exceptions").await.unwrap();
    // A resolution without a note is refused at the note.
    page.click("[data-answer] button[value=resolved]")
        .await
        .unwrap();
    page.wait_for(
        "the note asked for",
        "document.querySelector('[data-answer] [data-error=note]').textContent.length > 0",
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    page.fill("[data-answer] input[name=note]", "counted again")
        .await
        .unwrap();
    page.click("[data-answer] button[value=resolved]")
        .await
        .unwrap();
    page.wait_visible(&dt("none")).await.unwrap();
    let (_, said) = fetch(
        &page,
        "GET",
        "/v1/audit-log?action=exception.resolve",
        json!({}),
        None,
    )
    .await;
    assert_eq!(said["entries"][0]["actor"], "user:ana", "{said}");
    go(&page, &format!("{url}/"), "[data-test=dashboard]").await;
    assert_eq!(page.eval(negative_on_dashboard).await.unwrap(), "0");

    // Stock: the negative level found by name and by the negative filter, with a page of its
    // own; a SKU the store has no stock record of is not listed.
    go(
        &page,
        &format!("{url}/stock?location=vienna-01&q=bauernbrot"),
        "[data-test=stock]",
    )
    .await;
    assert_eq!(
        page.eval("[...document.querySelectorAll('[data-test=levels] tbody tr')].map(r => [r.dataset.sku, r.querySelector('td.num').textContent])")
            .await
            .unwrap(),
        json!([["GRO-BRD-0012", "-3 (negative)"]])
    );
    go(
        &page,
        &format!("{url}/stock?location=vienna-01&negative=1"),
        "[data-test=stock]",
    )
    .await;
    assert_eq!(page.count("[data-test=levels] tbody tr").await.unwrap(), 1);
    assert_accessible(&page, &axe, "stock").await;
    page.screenshot("back-office-stock").await.unwrap();
    go(
        &page,
        &format!("{url}/stock?location=graz-01&negative=1"),
        "[data-test=stock]",
    )
    .await;
    page.wait_visible(&dt("none")).await.unwrap();

    // The fleet: the till HQ has never heard from needs attention.
    go(
        &page,
        &format!("{url}/fleet?silent_minutes=30"),
        "[data-test=fleet]",
    )
    .await;
    assert_eq!(
        page.attr("tr[data-till=vienna-01-t1]", "data-state")
            .await
            .unwrap()
            .as_deref(),
        Some("offline")
    );
    assert_accessible(&page, &axe, "fleet").await;
    page.screenshot("back-office-fleet").await.unwrap();

    // The sales report over the last 30 days (days written into HQ's database as ingest keeps
    // them): a row per store, a total and a chart per currency, the same days as CSV.
    let (day1, day2) = (
        tomorrow.checked_sub(jiff::Span::new().days(3)).unwrap(),
        tomorrow.checked_sub(jiff::Span::new().days(2)).unwrap(),
    );
    {
        use sqlx::Connection as _;
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{data}/hq.sqlite"))
            .await
            .unwrap();
        for (store, day, currency, gross, refunds) in [
            ("vienna-01", day1, "EUR", 10_000, 0),
            ("vienna-01", day2, "EUR", 20_000, 1_500),
            ("graz-01", day2, "EUR", 5_000, 0),
            ("zurich-01", day1, "CHF", 7_000, 0),
        ] {
            sqlx::query(
                "INSERT INTO sales_daily (store, day, currency, sales, voids, returns, gross_minor, tax_minor, refunds_minor, cash_minor, shifts_closed, cash_expected_minor, cash_counted_minor, voided_minor, goods_net_minor, rounding_minor)
                 VALUES ($1, $2, $3, 4, 0, 1, $4, $5, $6, 0, 1, 1000, 990, 0, $7, 0)",
            )
            .bind(store)
            .bind(day.to_string())
            .bind(currency)
            .bind(gross)
            .bind(gross / 10)
            .bind(refunds)
            .bind(gross - gross / 10)
            .execute(&mut conn)
            .await
            .unwrap();
        }
        // The breakdowns of the same days, and one shift whose count was off.
        for (store, day, dimension, key, currency, count, amount) in [
            ("vienna-01", day1, "hour", "09", "EUR", 3, 6_000),
            ("vienna-01", day2, "hour", "09", "EUR", 1, 2_000),
            ("vienna-01", day1, "hour", "17", "EUR", 1, 4_000),
            ("graz-01", day2, "hour", "12", "EUR", 4, 5_000),
            ("vienna-01", day1, "tender", "cash", "EUR", 3, 6_000),
            ("vienna-01", day1, "tender", "card", "EUR", 1, 4_000),
            ("vienna-01", day1, "cashier", "anna", "EUR", 4, 10_000),
            ("graz-01", day2, "cashier", "", "EUR", 4, 5_000),
        ] {
            sqlx::query(
                "INSERT INTO sales_breakdown (store, day, dimension, key, currency, count, amount_minor) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(store)
            .bind(day.to_string())
            .bind(dimension)
            .bind(key)
            .bind(currency)
            .bind(count)
            .bind(amount)
            .execute(&mut conn)
            .await
            .unwrap();
        }
        for (store, terminal, counted) in [
            ("vienna-01", "vienna-01-t1", 990),
            ("graz-01", "graz-01-t1", 1_000),
        ] {
            sqlx::query(
                "INSERT INTO shift_closes (terminal, shift, store, day, closed_ms, staff, currency, expected_minor, counted_minor)
                 VALUES ($1, 's1', $2, $3, $4, 'anna', 'EUR', 1000, $5)",
            )
            .bind(terminal)
            .bind(store)
            .bind(day1.to_string())
            .bind(jiff::Timestamp::now().as_millisecond())
            .bind(counted)
            .execute(&mut conn)
            .await
            .unwrap();
        }
    }
    go(&page, &format!("{url}/reports"), "[data-test=reports]").await;
    // By hour: a bar per hour with sales (the days of the stores summed), and the same in a table.
    assert_eq!(
        page.count("[data-test=hour-chart][data-currency=EUR] rect")
            .await
            .unwrap(),
        3
    );
    let table = |test: &str| {
        format!(
            "[...document.querySelectorAll('[data-test={test}] tbody tr')].map(r => [...r.children].map(c => c.textContent))"
        )
    };
    assert_eq!(
        page.eval(&table("by-hour")).await.unwrap(),
        json!([
            ["09:00", "EUR", "4", "EUR 80.00"],
            ["12:00", "EUR", "4", "EUR 50.00"],
            ["17:00", "EUR", "1", "EUR 40.00"]
        ])
    );
    assert_eq!(
        page.eval(&table("by-tender")).await.unwrap(),
        json!([
            ["Card", "EUR", "1", "EUR 40.00"],
            ["Cash", "EUR", "3", "EUR 60.00"]
        ])
    );
    assert_eq!(
        page.eval(&table("by-cashier")).await.unwrap(),
        json!([
            ["No cashier named", "EUR", "4", "EUR 50.00"],
            ["Anna Berger (anna)", "EUR", "4", "EUR 100.00"]
        ])
    );
    // Only the shift whose count was off is listed.
    assert_eq!(
        page.eval(
            "[...document.querySelectorAll('[data-test=shifts] tbody th')].map(c => c.textContent)"
        )
        .await
        .unwrap(),
        json!(["vienna-01-t1"])
    );
    assert_eq!(page.count("[data-test=liability]").await.unwrap(), 1);
    assert_eq!(page.count("[data-test=stores] tbody tr").await.unwrap(), 3);
    let gross =
        |store: &str| format!("[data-test=stores] tr[data-store={store}] td:nth-of-type(4)");
    assert_eq!(page.text(&gross("vienna-01")).await.unwrap(), "EUR 300.00");
    assert_eq!(
        page.text("[data-test=stores] tr[data-store=vienna-01] td:nth-of-type(6)")
            .await
            .unwrap(),
        "EUR 285.00",
        "net is gross less refunds"
    );
    let totals = page
        .eval("[...document.querySelectorAll('[data-test=total]')].map(r => [r.querySelector('th').textContent, r.querySelector('td:nth-of-type(4)').textContent])")
        .await
        .unwrap();
    assert_eq!(
        totals,
        json!([["Total (CHF)", "CHF 70.00"], ["Total (EUR)", "EUR 350.00"]])
    );
    assert_eq!(
        page.count("[data-test=chart][data-currency=EUR] rect")
            .await
            .unwrap(),
        2,
        "a bar per day with sales"
    );
    let csv_href = page
        .attr(&dt("csv"), "href")
        .await
        .unwrap()
        .unwrap_or_default();
    let csv = page
        .eval(&format!("fetch({}).then(r => r.text())", json!(csv_href)))
        .await
        .unwrap();
    let lines: Vec<&str> = csv.as_str().unwrap_or_default().lines().collect();
    assert_eq!(lines.len(), 5, "a header and four days: {csv}");
    assert!(lines[0].starts_with("store,day,currency,"), "{csv}");
    assert!(
        lines.contains(&format!("vienna-01,{day2},EUR,4,0,1,200.00,0.00,15.00,185.00,180.00,20.00,0.00,0.00,1,10.00,9.90,-0.10").as_str()),
        "{csv}"
    );
    assert_accessible(&page, &axe, "reports").await;
    page.screenshot("back-office-reports").await.unwrap();
    // A range that ends before it starts is refused at its field.
    go(
        &page,
        &format!("{url}/reports?from={day2}&to={day1}"),
        "[data-test=error]",
    )
    .await;
    assert_eq!(
        page.attr("#to", "aria-invalid").await.unwrap().as_deref(),
        Some("true")
    );
    assert_accessible(&page, &axe, "reports with an error").await;

    // Users and API keys: a person added (a short password refused at its field), a key made
    // (its secret shown once, working as a bearer), revoked (refused at once), a person
    // disabled; each step in the audit log as the admin's.
    go(&page, &format!("{url}/users"), "[data-test=people]").await;
    page.fill("#u-name", "lena").await.unwrap();
    page.fill("#u-password", "short").await.unwrap();
    page.click("[data-test=add-user] button[type=submit]")
        .await
        .unwrap();
    page.wait_for(
        "the password refused",
        "document.querySelector('#u-password-error').textContent.length > 0",
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(
        page.attr("#u-password", "aria-invalid")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
    page.fill("#u-password", "a long enough passphrase")
        .await
        .unwrap();
    page.eval(
        "document.querySelector('#u-role').value = 'merchandiser'; window.kassaLeaving = true",
    )
    .await
    .unwrap();
    page.click("[data-test=add-user] button[type=submit]")
        .await
        .unwrap();
    page.wait_for(
        "lena listed",
        "!window.kassaLeaving && document.querySelector('tr[data-user=lena]')",
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    page.fill("#k-name", "web shop").await.unwrap();
    page.click("[data-test=add-key] input[value='catalog:read']")
        .await
        .unwrap();
    page.click("[data-test=add-key] button[type=submit]")
        .await
        .unwrap();
    page.wait_visible(&dt("secret")).await.unwrap();
    let secret = page.text(&dt("secret")).await.unwrap();
    let with_key = |path: &str| {
        format!(
            "fetch({}, {{credentials: 'omit', headers: {{Authorization: 'Bearer ' + {}}}}}).then(r => r.status)",
            json!(path),
            json!(secret)
        )
    };
    assert_eq!(
        page.eval(&with_key("/v1/variants?q=brot")).await.unwrap(),
        json!(200)
    );
    assert_eq!(
        page.eval(&with_key("/v1/users")).await.unwrap(),
        json!(401),
        "a key never manages people"
    );
    go(&page, &format!("{url}/users"), "[data-test=keys]").await;
    assert_accessible(&page, &axe, "users and keys").await;
    page.screenshot("back-office-users").await.unwrap();
    page.eval("window.kassaLeaving = true").await.unwrap();
    page.click("[data-test=keys] [data-test=revoke]")
        .await
        .unwrap();
    page.wait_for(
        "the key revoked",
        "!window.kassaLeaving && document.querySelector('[data-test=keys] tbody tr [data-test=state]').textContent === 'revoked'",
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(
        page.eval(&with_key("/v1/variants?q=brot")).await.unwrap(),
        json!(401)
    );
    page.eval("window.kassaLeaving = true").await.unwrap();
    page.click("tr[data-user=lena] button[data-call]")
        .await
        .unwrap();
    page.wait_for(
        "lena disabled",
        "!window.kassaLeaving && document.querySelector('tr[data-user=lena] [data-test=state]').textContent === 'disabled'",
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(
        page.count("tr[data-user=ana] button").await.unwrap(),
        0,
        "nobody disables themselves"
    );
    for action in ["user.add", "key.create", "key.revoke", "user.disable"] {
        let (_, log) = fetch(
            &page,
            "GET",
            &format!("/v1/audit-log?action={action}"),
            json!({}),
            None,
        )
        .await;
        assert_eq!(log["entries"][0]["actor"], "user:ana", "{action}: {log}");
    }

    // Stores and tills: a store's details edited in place (a time zone the tz database does
    // not know is refused at its field), a new reference version, audited.
    go(&page, &format!("{url}/stores"), "[data-test=stores]").await;
    assert_eq!(
        page.text("[data-store=vienna-01] [data-test=tills] tbody th")
            .await
            .unwrap(),
        "vienna-01-t1"
    );
    let version: i64 = page.text(&dt("version")).await.unwrap().parse().unwrap();
    assert_accessible(&page, &axe, "stores").await;
    page.screenshot("back-office-stores").await.unwrap();
    page.click("[data-store=vienna-01] summary").await.unwrap();
    page.fill("#timezone-vienna-01", "Europe/Wien")
        .await
        .unwrap();
    page.click("[data-store-edit=vienna-01] button[type=submit]")
        .await
        .unwrap();
    page.wait_for(
        "the time zone refused",
        "document.querySelector('#timezone-vienna-01-error').textContent.length > 0",
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    page.fill("#timezone-vienna-01", "Europe/Vienna")
        .await
        .unwrap();
    page.fill("#name-vienna-01", "Kassa Wien Neubau")
        .await
        .unwrap();
    page.eval("window.kassaLeaving = true").await.unwrap();
    page.click("[data-store-edit=vienna-01] button[type=submit]")
        .await
        .unwrap();
    page.wait_for(
        "the store renamed",
        "!window.kassaLeaving && document.querySelector('#store-vienna-01').textContent.startsWith('Kassa Wien Neubau')",
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(
        page.text(&dt("version")).await.unwrap(),
        (version + 1).to_string()
    );
    let (_, log) = fetch(
        &page,
        "GET",
        "/v1/audit-log?action=store.update",
        json!({}),
        None,
    )
    .await;
    assert_eq!(log["entries"][0]["actor"], "user:ana", "{log}");
    // A till revoked (stolen): without a reason refused at the field, then revoked after all
    // HQ holds of it, shown so, audited.
    let till = "[data-till=vienna-01-t1]";
    page.click(&format!("{till} button[type=submit]"))
        .await
        .unwrap();
    page.wait_for(
        "the reason asked for",
        "document.querySelector('#reason-vienna-01-t1-error').textContent.length > 0",
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    page.fill("#reason-vienna-01-t1", "stolen from the counter")
        .await
        .unwrap();
    page.eval("window.kassaLeaving = true").await.unwrap();
    page.click(&format!("{till} button[type=submit]"))
        .await
        .unwrap();
    page.wait_for(
        "the till revoked",
        "!window.kassaLeaving && document.querySelector('[data-till=vienna-01-t1] [data-test=state]').textContent.startsWith('revoked after sequence 0')",
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert!(
        page.text(&format!("{till} [data-test=state]"))
            .await
            .unwrap()
            .ends_with("by user:ana: stolen from the counter")
    );
    let (_, log) = fetch(
        &page,
        "GET",
        "/v1/audit-log?action=terminal.revoke",
        json!({}),
        None,
    )
    .await;
    assert_eq!(
        log["entries"][0]["target"], "terminal:vienna-01-t1",
        "{log}"
    );

    // Staff: a member added at the tills' sign-in (a PIN that is not 4 to 8 digits refused at
    // its field); the PIN is never shown.
    go(&page, &format!("{url}/staff"), "[data-test=staff]").await;
    let members = page.count("[data-test=members] tbody tr").await.unwrap();
    page.fill("#m-id", "s-950").await.unwrap();
    page.fill("#m-name", "Eva Berger").await.unwrap();
    page.fill("#m-pin", "12").await.unwrap();
    page.click("[data-staff-edit] button[type=submit]")
        .await
        .unwrap();
    page.wait_for(
        "the PIN refused",
        "document.querySelector('#m-pin-error').textContent.length > 0",
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    page.fill("#m-pin", "4711").await.unwrap();
    page.eval("window.kassaLeaving = true").await.unwrap();
    page.click("[data-staff-edit] button[type=submit]")
        .await
        .unwrap();
    page.wait_for(
        "the member listed",
        "!window.kassaLeaving && document.querySelector('tr[data-member=s-950]')",
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(
        page.count("[data-test=members] tbody tr").await.unwrap(),
        members + 1
    );
    assert!(!page.text("main").await.unwrap().contains("4711"));
    assert_accessible(&page, &axe, "staff").await;
    page.screenshot("back-office-staff").await.unwrap();

    // Every page the admin opens, at the smallest and the largest screen the back office is
    // made for, each checked by axe-core at both.
    for path in [
        "/dashboard",
        "/catalog?q=brot",
        "/catalog/GRO-BRD-0012",
        "/price-changes?all=1",
        "/stock?location=vienna-01",
        "/reports",
        "/reconciliation",
        "/exceptions?state=all",
        "/stores",
        "/staff",
        "/fleet",
        "/users",
        "/audit-log",
        "/orders",
        "/webhooks",
        "/reorder",
    ] {
        let name = path
            .trim_start_matches('/')
            .split(['?', '/'])
            .next()
            .unwrap_or("page")
            .to_owned()
            + if path.starts_with("/catalog/") {
                "-variant"
            } else {
                ""
            };
        for (width, height) in [(1280, 800), (1920, 1080)] {
            page.set_viewport(width, height).await.unwrap();
            go(&page, &format!("{url}{path}"), "main h1").await;
            assert_accessible(&page, &axe, &format!("{path} at {width}×{height}")).await;
            page.screenshot(&format!("back-office-{name}-{width}x{height}"))
                .await
                .unwrap();
        }
    }
    page.set_viewport(1280, 800).await.unwrap();

    // In German.
    go(
        &page,
        &format!("{url}/dashboard?lang=de"),
        "[data-test=dashboard]",
    )
    .await;
    assert_eq!(page.text(&dt("dashboard")).await.unwrap(), "Übersicht");
    assert_eq!(
        page.attr("html", "lang").await.unwrap().as_deref(),
        Some("de")
    );
    assert_accessible(&page, &axe, "dashboard in German").await;
    page.set_viewport(1920, 1080).await.unwrap();
    page.screenshot("back-office-dashboard-de").await.unwrap();

    // Signed out, and in as the store manager of vienna-01.
    page.click(&dt("sign-out")).await.unwrap();
    page.wait_visible(&dt("sign-in")).await.unwrap();
    sign_in(&page, "max", "correct horse battery").await;
    page.wait_visible(&dt("dashboard")).await.unwrap();
    assert_eq!(page.count("[data-test=sales] tbody tr").await.unwrap(), 1);
    assert_eq!(
        page.count("[data-test=sales] tbody tr[data-store=vienna-01]")
            .await
            .unwrap(),
        1
    );
    page.screenshot("back-office-dashboard-store-manager")
        .await
        .unwrap();
    let (status, _) = fetch(
        &page,
        "GET",
        "/v1/reports/sales?store=graz-01",
        json!({}),
        None,
    )
    .await;
    assert_eq!(status, 403);
    let links = page
        .eval("[...document.querySelectorAll('header nav a')].map(a => a.getAttribute('href'))")
        .await
        .unwrap();
    assert_eq!(
        links,
        json!([
            "/dashboard",
            "/stock",
            "/orders",
            "/reorder",
            "/reports",
            "/reconciliation",
            "/exceptions"
        ]),
        "a store manager's pages"
    );
    assert_eq!(
        page.count("[data-test=tills] tbody tr").await.unwrap(),
        1,
        "their store's till on their dashboard"
    );
    // Another store's stock is never shown to them.
    go(
        &page,
        &format!("{url}/stock?location=graz-01"),
        "[data-test=stock]",
    )
    .await;
    assert_eq!(
        page.eval("document.querySelector('#location').value")
            .await
            .unwrap(),
        "vienna-01"
    );
    // Their report is of their store only, and offers no other.
    go(&page, &format!("{url}/reports"), "[data-test=reports]").await;
    assert_eq!(
        page.eval("[...document.querySelectorAll('[data-test=stores] tbody tr')].map(r => r.dataset.store)")
            .await
            .unwrap(),
        json!(["vienna-01"])
    );
    // Its breakdowns hold nothing of another store's, and the chain's liability is not theirs.
    assert_eq!(
        page.eval(
            "[...document.querySelectorAll('[data-test=by-hour] tbody th')].map(c => c.textContent)"
        )
        .await
        .unwrap(),
        json!(["09:00", "17:00"])
    );
    assert_eq!(page.count("[data-test=liability]").await.unwrap(), 0);
    assert_eq!(
        page.eval("[...document.querySelectorAll('#store option')].map(o => o.value)")
            .await
            .unwrap(),
        json!(["vienna-01"])
    );
    go(
        &page,
        &format!("{url}/reconciliation?store=graz-01"),
        "[data-test=reconciliation]",
    )
    .await;
    let shown = page
        .eval("document.querySelector('#store').value")
        .await
        .unwrap();
    assert_eq!(shown, "vienna-01", "another store's day is never shown");
    go(&page, &format!("{url}/catalog"), "[data-test=message]").await;
    // The language chosen earlier is kept (a cookie) across sign-out and sign-in.
    assert_eq!(
        page.text(&dt("message")).await.unwrap(),
        "Ihre Rolle darf diese Seite nicht sehen."
    );
    assert_accessible(&page, &axe, "forbidden").await;
    browser.close().await;
    drop(server);
}
