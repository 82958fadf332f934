//! The till screen and the customer display in headless Chromium against a real `kassa store`
//! process on 127.0.0.1: scanning at scanner speed, weighed labels, cash with change, receipts,
//! returns, the live customer display, the offline banner, a gift card paying part of a sale,
//! a card tender (with a partial approval) through the payment terminal simulator, and returns
//! refunded to card through it (by reference, and to a card presented without a receipt).
//! Screenshots go to `artifacts/`.
#![allow(clippy::unwrap_used)] // Test code: a panic is a test failure.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use test_support::browser::{Browser, TestPage, dt};
use test_support::{PaymentTerminal, Process, client, provision_demo_store, set_payment_terminal};

const T1: &str = "vienna-01-t1";
const BREAD_GTIN: &str = "9003909062415";
const BANANA_LABEL: &str = "2104011012507";
/// The bananas' PLU, typed for loose bananas weighed at the till.
const BANANA_PLU_CODE: &str = "4011";
const WATER_GTIN: &str = "9113446044673";
const WAIT: Duration = Duration::from_secs(15);

fn kassa() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kassa"))
}

/// A provisioned, seeded Vienna store node running as a real process.
struct Node {
    _dir: tempfile::TempDir,
    process: Process,
}

async fn start_node(extra: &[&str]) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    provision_demo_store(&data, "vienna-01", &[T1, "vienna-01-t2"])
        .await
        .unwrap();
    let process = spawn(&data, extra).await;
    Node { _dir: dir, process }
}

async fn spawn(data: &Path, extra: &[&str]) -> Process {
    let data = data.display().to_string();
    let mut args = vec!["store", "--data", &data, "run", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    Process::spawn(&kassa(), &args).await.unwrap()
}

/// Minor units of a decimal amount string with two decimals ("12.5" is 1250).
fn minor(amount: &str) -> i64 {
    let (whole, frac) = amount.split_once('.').unwrap_or((amount, ""));
    let frac = format!("{frac:0<2}");
    let sign = if whole.starts_with('-') { -1 } else { 1 };
    let whole: i64 = whole.trim_start_matches('-').parse().unwrap();
    sign * (whole * 100 + frac[..2].parse::<i64>().unwrap())
}

/// Opens the till for `terminal` in English and gets to the selling screen: signs in and opens
/// a shift when the node asks for them.
async fn open_till(browser: &Browser, url: &str, terminal: &str) -> TestPage {
    let page = browser
        .open(&format!("{url}/till?terminal={terminal}&lang=en"))
        .await
        .unwrap();
    page.wait_for(
        "till start",
        "document.body.dataset.screen === 'sell' || document.body.dataset.screen === 'signin'",
        WAIT,
    )
    .await
    .unwrap();
    if page.eval("document.body.dataset.screen").await.unwrap() == "signin" {
        sign_in(&page, "anna", "1111").await;
    }
    page.wait_for(
        "selling screen",
        "document.body.dataset.screen === 'sell'",
        WAIT,
    )
    .await
    .unwrap();
    page
}

/// Signs `staff` in with `pin` and opens a shift with a float of 150.00 if none is open.
async fn sign_in(page: &TestPage, staff: &str, pin: &str) {
    page.click(&dt(&format!("staff-{staff}"))).await.unwrap();
    page.wait_visible(&dt("pin-input")).await.unwrap();
    for digit in pin.chars() {
        page.click(&format!("{} [data-key=\"{digit}\"]", dt("pin-pad")))
            .await
            .unwrap();
    }
    page.click(&dt("pin-ok")).await.unwrap();
    page.wait_for(
        "signed in",
        "document.body.dataset.screen === 'sell' || document.body.dataset.screen === 'shift'",
        WAIT,
    )
    .await
    .unwrap();
    if page.eval("document.body.dataset.screen").await.unwrap() == "shift" {
        page.fill(&dt("float-input"), "150.00").await.unwrap();
        page.click(&dt("open-shift")).await.unwrap();
    }
}

async fn wait_lines(page: &TestPage, n: usize) {
    page.wait_for(
        &format!("{n} cart lines"),
        &format!("document.querySelectorAll('[data-test=cart-line]').length === {n}"),
        WAIT,
    )
    .await
    .unwrap();
}

/// `[sku, quantity]` of every line on screen.
async fn lines(page: &TestPage) -> Vec<(String, String)> {
    let value = page
        .eval("Array.from(document.querySelectorAll('[data-test=cart-line]')).map(l => [l.dataset.sku, l.dataset.qty])")
        .await
        .unwrap();
    serde_json::from_value(value).unwrap()
}

async fn price(url: &str, lines: Value) -> Value {
    let response = client()
        .post(format!("{url}/v1/carts/price"))
        .json(&json!({ "lines": lines }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// GETs `url` of a node as its admin: reading receipts and the journal needs a member signed
/// in, and no browser here signs the admin in (one session per member and till).
async fn get(url: &str) -> Value {
    let base = &url[..url.find("/v1/").unwrap()];
    let admin = test_support::sign_in(&client(), base, T1, "admin", "9999")
        .await
        .unwrap();
    let response = client()
        .get(url)
        .bearer_auth(admin["session"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

async fn journal_kinds(url: &str, terminal: &str) -> Vec<String> {
    let journal = get(&format!("{url}/v1/journal?terminal={terminal}")).await;
    journal["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

/// Opens the return dialog on the receipt `number` (of `lines` lines) and marks one of its first
/// line to come back.
async fn return_one_of_the_first_line(page: &TestPage, number: &str, lines: usize) {
    page.click(&dt("btn-return")).await.unwrap();
    page.wait_visible(&dt("return-dialog")).await.unwrap();
    page.fill(&dt("return-receipt"), number).await.unwrap();
    page.click(&dt("return-load")).await.unwrap();
    page.wait_for(
        "receipt lines to return",
        &format!("document.querySelectorAll('[data-test=return-line]').length === {lines}"),
        WAIT,
    )
    .await
    .unwrap();
    page.fill(
        &format!(
            "{}[data-index=\"0\"] {}",
            dt("return-line"),
            dt("return-line-qty")
        ),
        "1",
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scanned_sale_with_a_weighed_label_is_paid_cash_with_change_and_one_line_comes_back() {
    let Some(browser) = Browser::launch_or_skip().await else {
        return;
    };
    let node = start_node(&[]).await;
    let url = node.process.url.clone();
    let page = open_till(&browser, &url, T1).await;

    for code in [BREAD_GTIN, BANANA_LABEL, WATER_GTIN] {
        page.scan(code).await.unwrap();
    }
    wait_lines(&page, 3).await;
    let on_screen = lines(&page).await;
    assert_eq!(
        on_screen,
        vec![
            ("GRO-BRD-0012".to_owned(), "1".to_owned()),
            ("GRO-FRU-0001".to_owned(), "1.25".to_owned()),
            ("GRO-DRK-0001-6ER".to_owned(), "1".to_owned()),
        ]
    );
    // The total on screen is the node's, for exactly these codes.
    let priced = price(
        &url,
        json!([{"code": BREAD_GTIN}, {"code": BANANA_LABEL}, {"code": WATER_GTIN}]),
    )
    .await;
    let total = priced["total"].as_str().unwrap().to_owned();
    page.wait_for(
        "server total on screen",
        &format!("document.querySelector('[data-test=cart-total]').dataset.amount === '{total}'"),
        WAIT,
    )
    .await
    .unwrap();
    let shown = page.text(&dt("cart-total")).await.unwrap();
    assert!(shown.contains('€'), "total formatted in EUR: {shown}");
    // The last item's stock on hand is shown.
    assert!(
        page.attr(&dt("stock-on-hand"), "data-on-hand")
            .await
            .unwrap()
            .is_some()
    );
    page.screenshot("till-cart").await.unwrap();

    let names = page
        .eval("Array.from(document.querySelectorAll('[data-test=line-name]')).map(n => n.textContent)")
        .await
        .unwrap();
    assert_eq!(names.as_array().unwrap().len(), 3);

    // Cash 50.00: the node settles and the till shows the change.
    page.click(&dt("btn-pay")).await.unwrap();
    page.wait_visible(&dt("pay-dialog")).await.unwrap();
    page.fill(&dt("tender-amount"), "50").await.unwrap();
    page.click(&dt("tender-cash")).await.unwrap();
    page.wait_visible(&dt("receipt-dialog")).await.unwrap();
    page.wait_visible(&dt("receipt-html")).await.unwrap();
    let change = page
        .attr(&dt("receipt-change"), "data-amount")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(minor(&change), 5000 - minor(&total));
    let number = receipt_number(&page).await;
    // The receipt on screen is the one the printer prints: every line's name is on it.
    let printed = page.text(&dt("receipt-html")).await.unwrap();
    for name in names.as_array().unwrap() {
        let name = name.as_str().unwrap();
        assert!(
            printed.contains(&name[..name.len().min(12)]),
            "{name} not on the receipt:\n{printed}"
        );
    }
    page.screenshot("till-receipt").await.unwrap();
    let receipt = get(&format!("{url}/v1/receipts/{number}")).await;
    assert_eq!(receipt["kind"], "SaleCompleted");
    assert_eq!(receipt["cart"]["total"], total.as_str());
    assert_eq!(receipt["tenders"][0]["kind"], "cash");
    assert_eq!(receipt["tenders"][0]["amount"], "50.00");
    assert_eq!(receipt["cart"]["change"], change.as_str());
    page.click(&dt("receipt-close")).await.unwrap();
    assert_eq!(page.count(&dt("cart-line")).await.unwrap(), 0);

    // Return the bread against the receipt.
    return_one_of_the_first_line(&page, &number, 3).await;
    page.fill(&dt("return-reason"), "customer changed mind")
        .await
        .unwrap();
    page.click(&dt("return-submit")).await.unwrap();
    page.wait_for(
        "refund shown",
        "document.querySelector('[data-test=return-result]').dataset.refund",
        WAIT,
    )
    .await
    .unwrap();
    let refund = page
        .attr(&dt("return-result"), "data-refund")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        refund,
        receipt["cart"]["lines"][0]["gross"].as_str().unwrap()
    );
    let kinds = journal_kinds(&url, T1).await;
    assert!(kinds.contains(&"SaleCompleted".to_owned()), "{kinds:?}");
    assert!(kinds.contains(&"ReturnCompleted".to_owned()), "{kinds:?}");
    // Every request the screen sent follows the node's OpenAPI document.
    page.assert_requests_follow(store::api::OPENAPI)
        .await
        .unwrap();
    browser.close().await;
}

/// GTINs of `n` different items sold in the store by the piece, from the demo catalog.
fn piece_gtins(n: usize) -> Vec<String> {
    let seed: Value =
        serde_json::from_str(&std::fs::read_to_string(test_support::demo_seed_path()).unwrap())
            .unwrap();
    let mut out = Vec::new();
    for product in seed["products"].as_array().unwrap() {
        for variant in product["variants"].as_array().unwrap() {
            if variant["unit"] != "each" || variant["channels"] == "online" {
                continue;
            }
            if let Some(gtin) = variant["identifiers"]
                .as_array()
                .unwrap()
                .iter()
                .find_map(|i| i["gtin"].as_str())
            {
                if gtin.len() == 13 {
                    out.push(gtin.to_owned());
                }
            }
        }
    }
    out.truncate(n);
    assert_eq!(out.len(), n);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyboard_wedge_bursts_lose_no_keystroke_and_double_no_line() {
    let Some(browser) = Browser::launch_or_skip().await else {
        return;
    };
    let node = start_node(&[]).await;
    let url = node.process.url.clone();
    let page = open_till(&browser, &url, T1).await;

    // Twenty 13-digit scans, each typed with Enter and no pause between any two keys: ten
    // items, each scanned twice.
    let gtins = piece_gtins(10);
    for _ in 0..2 {
        for gtin in &gtins {
            page.scan(gtin).await.unwrap();
        }
    }
    page.wait_for(
        "20 pieces on 10 lines",
        "Array.from(document.querySelectorAll('[data-test=cart-line]')).reduce((n, l) => n + Number(l.dataset.qty), 0) === 20",
        WAIT,
    )
    .await
    .unwrap();
    let on_screen = lines(&page).await;
    assert_eq!(on_screen.len(), 10, "{on_screen:?}");
    assert!(on_screen.iter().all(|(_, q)| q == "2"), "{on_screen:?}");

    // The same twenty scans sent as one single burst of 280 key events.
    page.click(&dt("btn-clear")).await.unwrap();
    page.click(&dt("confirm-yes")).await.unwrap();
    wait_lines(&page, 0).await;
    // Each `scan` sends a code and Enter; all of them are on their way before any is answered.
    let scans: Vec<_> = gtins
        .iter()
        .chain(&gtins)
        .map(|code| page.scan(code))
        .collect();
    for result in futures_util::future::join_all(scans).await {
        result.unwrap();
    }
    page.wait_for(
        "20 pieces after one burst",
        "Array.from(document.querySelectorAll('[data-test=cart-line]')).reduce((n, l) => n + Number(l.dataset.qty), 0) === 20",
        WAIT,
    )
    .await
    .unwrap();
    assert_eq!(lines(&page).await.len(), 10);
    assert_eq!(
        page.text(&dt("scan-entry")).await.unwrap(),
        "Scan or type a code"
    );

    // A scan while the search field has the focus still adds the item and leaves the field empty.
    page.click(&dt("search-input")).await.unwrap();
    page.scan(&gtins[0]).await.unwrap();
    page.wait_for(
        "third piece of the first item",
        "document.querySelector('[data-test=cart-line]').dataset.qty === '3'",
        WAIT,
    )
    .await
    .unwrap();
    assert_eq!(
        page.eval("document.querySelector('[data-test=search-input]').value")
            .await
            .unwrap(),
        ""
    );
    // Nothing arrives late: after a pause the cart is unchanged.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(lines(&page).await.len(), 10);
    let timings = page.eval("window.kassaScanTimings.length").await.unwrap();
    assert_eq!(timings, 41);
    // Every request the screen sent follows the node's OpenAPI document.
    page.assert_requests_follow(store::api::OPENAPI)
        .await
        .unwrap();
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_display_follows_the_cart_live() {
    let Some(browser) = Browser::launch_or_skip().await else {
        return;
    };
    // The display is another device: its own browser.
    let Some(screen) = Browser::launch_or_skip().await else {
        return;
    };
    let node = start_node(&[]).await;
    let url = node.process.url.clone();
    let till = open_till(&browser, &url, T1).await;
    let display = screen
        .open(&format!("{url}/display?terminal={T1}&lang=en"))
        .await
        .unwrap();
    display
        .wait_for(
            "display connected",
            "document.body.dataset.connected === '1'",
            WAIT,
        )
        .await
        .unwrap();

    till.scan(BREAD_GTIN).await.unwrap();
    wait_lines(&till, 1).await;
    display
        .wait_for(
            "one line on the display",
            "document.querySelectorAll('[data-test=display-line]').length === 1",
            WAIT,
        )
        .await
        .unwrap();
    till.scan(BANANA_LABEL).await.unwrap();
    wait_lines(&till, 2).await;
    let total = till
        .attr(&dt("cart-total"), "data-amount")
        .await
        .unwrap()
        .unwrap();
    display
        .wait_for(
            "the till's total on the display",
            &format!(
                "document.querySelectorAll('[data-test=display-line]').length === 2 && document.querySelector('[data-test=display-total]').dataset.amount === '{total}'"
            ),
            WAIT,
        )
        .await
        .unwrap();
    display.screenshot("display-cart").await.unwrap();

    // Paid by card: the display thanks the customer and shows the total paid.
    till.click(&dt("btn-pay")).await.unwrap();
    till.wait_visible(&dt("pay-dialog")).await.unwrap();
    till.click(&dt("tender-card")).await.unwrap();
    till.click(&dt("confirm-yes")).await.unwrap();
    till.wait_visible(&dt("receipt-dialog")).await.unwrap();
    display
        .wait_for(
            "thank-you on the display",
            "document.body.dataset.state === 'paid'",
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(
        display
            .attr(&dt("display-total"), "data-amount")
            .await
            .unwrap()
            .unwrap(),
        total
    );
    display.screenshot("display-paid").await.unwrap();
    screen.close().await;
    // Every request the screen sent follows the node's OpenAPI document.
    till.assert_requests_follow(store::api::OPENAPI)
        .await
        .unwrap();
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_banner_and_pending_count_show_while_hq_is_unreachable_and_the_sale_completes() {
    let Some(browser) = Browser::launch_or_skip().await else {
        return;
    };
    // A port nobody listens on.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let hq = format!("https://127.0.0.1:{closed}");
    let ca = test_support::test_ca().ca_file.display().to_string();
    let node = start_node(&["--hq-url", &hq, "--hq-token", "unused", "--hq-ca", &ca]).await;
    let url = node.process.url.clone();
    let page = open_till(&browser, &url, T1).await;

    page.scan(WATER_GTIN).await.unwrap();
    wait_lines(&page, 1).await;
    page.click(&dt("btn-pay")).await.unwrap();
    page.wait_visible(&dt("quick-exact")).await.unwrap();
    page.click(&dt("quick-exact")).await.unwrap();
    page.wait_visible(&dt("receipt-dialog")).await.unwrap();
    let number = receipt_number(&page).await;
    page.click(&dt("receipt-close")).await.unwrap();

    page.wait_visible(&dt("offline-banner")).await.unwrap();
    page.wait_for(
        "pending count",
        "Number(document.querySelector('[data-test=pending-count]').dataset.count) >= 1",
        WAIT,
    )
    .await
    .unwrap();
    let banner = page.text(&dt("offline-banner")).await.unwrap();
    assert!(banner.contains("Offline"), "{banner}");
    page.screenshot("till-offline").await.unwrap();
    // The sale is in the ledger all the same.
    let receipt = get(&format!("{url}/v1/receipts/{number}")).await;
    assert_eq!(receipt["kind"], "SaleCompleted");
    // The banner takes its room without pushing Pay or the total off the screen.
    page.scan(WATER_GTIN).await.unwrap();
    wait_lines(&page, 1).await;
    assert_on_screen(&page, &["btn-pay", "cart-total"]).await;
    // Every request the screen sent follows the node's OpenAPI document.
    page.assert_requests_follow(store::api::OPENAPI)
        .await
        .unwrap();

    // The node itself goes away: the header no longer claims anything is synced.
    let Node { _dir, process } = node;
    process.kill9().await.unwrap();
    page.wait_for(
        "the header says the node is unreachable",
        "document.querySelector('[data-test=pending-count]').dataset.state === 'node-down'",
        WAIT,
    )
    .await
    .unwrap();
    let header = page.text(&dt("pending-count")).await.unwrap();
    assert!(!header.contains("synced"), "{header}");
    assert_eq!(
        page.attr(&dt("offline-banner"), "data-reason")
            .await
            .unwrap()
            .as_deref(),
        Some("node")
    );
    assert_on_screen(&page, &["btn-pay", "cart-total"]).await;
    page.screenshot("till-node-down").await.unwrap();
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cashier_signs_in_opens_a_shift_gets_a_discount_approved_and_closes_the_shift_blind() {
    let Some(browser) = Browser::launch_or_skip().await else {
        return;
    };
    let node = start_node(&[]).await;
    let url = node.process.url.clone();
    let page = browser
        .open(&format!("{url}/till?terminal={T1}&lang=en"))
        .await
        .unwrap();
    page.wait_for(
        "sign-in screen",
        "document.body.dataset.screen === 'signin'",
        WAIT,
    )
    .await
    .unwrap();
    for staff in ["anna", "sven", "maria"] {
        assert_eq!(page.count(&dt(&format!("staff-{staff}"))).await.unwrap(), 1);
    }

    // A wrong PIN is refused with the node's reason and signs nobody in.
    page.click(&dt("staff-anna")).await.unwrap();
    page.wait_visible(&dt("pin-input")).await.unwrap();
    page.type_keys("9999").await.unwrap();
    page.click(&dt("pin-ok")).await.unwrap();
    page.wait_for(
        "wrong PIN refused",
        "document.querySelector('[data-test=signin-error]').dataset.code === 'wrong_pin'",
        WAIT,
    )
    .await
    .unwrap();
    page.click(&dt("pin-back")).await.unwrap();
    // The right PIN; no shift is open, so the till asks for the counted float first.
    sign_in(&page, "anna", "1111").await;
    page.wait_for(
        "selling screen",
        "document.body.dataset.screen === 'sell'",
        WAIT,
    )
    .await
    .unwrap();
    assert_eq!(page.text(&dt("cashier")).await.unwrap(), "Anna Berger");

    // 15 % off the bread is more than a cashier may give: the supervisor is asked the moment
    // the discount is given, in words; a wrong PIN asks again; Sven approves with his PIN.
    page.scan(BREAD_GTIN).await.unwrap();
    wait_lines(&page, 1).await;
    page.click(&dt("btn-line-discount")).await.unwrap();
    page.fill(&dt("discount-input"), "15").await.unwrap();
    page.click(&dt("discount-ok")).await.unwrap();
    page.wait_visible(&dt("approval-dialog")).await.unwrap();
    let reason = page.text(&dt("approval-reason")).await.unwrap();
    assert!(
        reason.contains("a discount above the cashier's limit"),
        "{reason}"
    );
    // Supervisors and managers are offered; cashiers are not.
    assert_eq!(page.count(&dt("approval-staff-sven")).await.unwrap(), 1);
    assert_eq!(page.count(&dt("approval-staff-anna")).await.unwrap(), 0);
    page.eval("document.querySelector('[data-test=approval-staff]').value = 'sven'")
        .await
        .unwrap();
    page.fill(&dt("approval-pin"), "2223").await.unwrap();
    page.click(&dt("approval-ok")).await.unwrap();
    page.wait_for(
        "the wrong PIN is said and asked again",
        "document.querySelector('[data-test=approval-error]').textContent !== '' && !document.querySelector('[data-test=approval-dialog]').hidden",
        WAIT,
    )
    .await
    .unwrap();
    page.eval("document.querySelector('[data-test=approval-staff]').value = 'sven'")
        .await
        .unwrap();
    page.fill(&dt("approval-pin"), "2222").await.unwrap();
    page.click(&dt("approval-ok")).await.unwrap();
    page.wait_visible(&dt("line-discount")).await.unwrap();
    let approved_total = page
        .attr(&dt("cart-total"), "data-amount")
        .await
        .unwrap()
        .unwrap();
    // A further 30 % off the whole sale is not approved: Cancel takes it back, the approved
    // line discount stays, and nothing is asked again.
    page.click(&dt("btn-cart-discount")).await.unwrap();
    page.fill(&dt("discount-input"), "30").await.unwrap();
    page.click(&dt("discount-ok")).await.unwrap();
    page.wait_visible(&dt("approval-dialog")).await.unwrap();
    page.click(&dt("approval-cancel")).await.unwrap();
    page.wait_for(
        "the cart as it was",
        &format!(
            "document.querySelector('[data-test=approval-dialog]').hidden && document.querySelector('[data-test=cart-total]').dataset.amount === '{approved_total}'"
        ),
        WAIT,
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        page.eval("document.querySelector('[data-test=approval-dialog]').hidden")
            .await
            .unwrap(),
        json!(true),
        "asked again for what was approved"
    );
    assert_eq!(lines(&page).await.len(), 1);
    let total = page
        .attr(&dt("cart-total"), "data-amount")
        .await
        .unwrap()
        .unwrap();
    // Approved once: payment asks nothing more.
    page.click(&dt("btn-pay")).await.unwrap();
    page.wait_visible(&dt("pay-dialog")).await.unwrap();
    page.fill(&dt("tender-amount"), "10").await.unwrap();
    page.click(&dt("tender-cash")).await.unwrap();
    page.wait_visible(&dt("receipt-dialog")).await.unwrap();
    let change = page
        .attr(&dt("receipt-change"), "data-amount")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(minor(&change), 1000 - minor(&total));
    let number = receipt_number(&page).await;
    let receipt = get(&format!("{url}/v1/receipts/{number}")).await;
    assert_eq!(receipt["cashier"], "anna");
    assert_ne!(receipt["cart"]["lines"][0]["discount"], "0.00");
    page.click(&dt("receipt-close")).await.unwrap();

    // Cash paid in and out through the shift menu, with the values the screen sends: 20.00
    // in, 5.00 out (a paid-out needs Sven's approval).
    page.click(&dt("btn-shift")).await.unwrap();
    for (kind, amount, reason) in [
        ("paid-in", "20.00", "change from the bank"),
        ("paid-out", "5.00", "window cleaner"),
    ] {
        page.eval(&format!(
            "document.querySelector('[data-test=cash-kind]').value = '{kind}'"
        ))
        .await
        .unwrap();
        page.fill(&dt("cash-amount"), amount).await.unwrap();
        page.fill(&dt("cash-reason"), reason).await.unwrap();
        page.click(&dt("cash-ok")).await.unwrap();
        if kind == "paid-out" {
            page.wait_visible(&dt("approval-dialog")).await.unwrap();
            page.eval("document.querySelector('[data-test=approval-staff]').value = 'sven'")
                .await
                .unwrap();
            page.fill(&dt("approval-pin"), "2222").await.unwrap();
            page.click(&dt("approval-ok")).await.unwrap();
        }
        page.wait_for(
            kind,
            &format!(
                "document.querySelector('[data-test=shift-report]').textContent.includes('{}')",
                &amount[..amount.len() - 3]
            ),
            WAIT,
        )
        .await
        .unwrap();
    }
    let moved = journal_kinds(&url, T1).await;
    assert_eq!(
        moved.iter().filter(|k| *k == "CashMovement").count(),
        2,
        "{moved:?}"
    );

    // Close the shift blind: 3 × 50.00 and 2 × 1.00 counted; the expected cash is shown only
    // in the Z report that follows.
    page.click(&dt("shift-close-start")).await.unwrap();
    let report_before = page.text(&dt("shift-report")).await.unwrap();
    assert!(
        report_before.is_empty(),
        "nothing expected shown before the count"
    );
    page.fill(&dt("count-50.00"), "3").await.unwrap();
    page.fill(&dt("count-1.00"), "2").await.unwrap();
    page.click(&dt("shift-close-ok")).await.unwrap();
    page.wait_for(
        "Z report",
        "document.querySelector('[data-test=shift-report]').dataset.overShort",
        WAIT,
    )
    .await
    .unwrap();
    // Expected: the float plus the cash kept from the sale (its total), 20.00 in, 5.00 out.
    let expected = 15000 + minor(&total) + 2000 - 500;
    let over_short = page
        .attr(&dt("shift-report"), "data-over-short")
        .await
        .unwrap()
        .unwrap();
    let z = page.text(&dt("shift-report")).await.unwrap();
    assert_eq!(minor(&over_short), 15200 - expected, "{z}");
    page.screenshot("till-z-report").await.unwrap();

    let kinds = journal_kinds(&url, T1).await;
    for kind in ["ShiftOpened", "SaleCompleted", "ShiftClosed"] {
        assert!(
            kinds.contains(&kind.to_owned()),
            "{kind} missing from {kinds:?}"
        );
    }
    let opened = kinds.iter().position(|k| k == "ShiftOpened").unwrap();
    let sold = kinds.iter().position(|k| k == "SaleCompleted").unwrap();
    let closed = kinds.iter().position(|k| k == "ShiftClosed").unwrap();
    assert!(opened < sold && sold < closed, "{kinds:?}");
    // Closing the dialog after the Z report signs the cashier out.
    page.click(&dt("shift-dialog-close")).await.unwrap();
    page.wait_for(
        "signed out",
        "document.body.dataset.screen === 'signin'",
        WAIT,
    )
    .await
    .unwrap();
    // Every request the screen sent follows the node's OpenAPI document.
    page.assert_requests_follow(store::api::OPENAPI)
        .await
        .unwrap();
    browser.close().await;
}

/// Pays the cart with the exact amount in cash, closes the receipt and returns its number.
async fn pay_exact_in_cash(page: &TestPage) -> String {
    page.click(&dt("btn-pay")).await.unwrap();
    page.click(&dt("quick-exact")).await.unwrap();
    page.wait_visible(&dt("receipt-dialog")).await.unwrap();
    let number = receipt_number(page).await;
    page.click(&dt("receipt-close")).await.unwrap();
    number
}

/// Pays the open pay dialog's total by card ("yes" to the charge), waits for the receipt and
/// closes it: the sale's receipt number.
async fn pay_by_card(page: &TestPage) -> String {
    page.click(&dt("tender-card")).await.unwrap();
    page.click(&dt("confirm-yes")).await.unwrap();
    page.wait_visible(&dt("receipt-dialog")).await.unwrap();
    let number = receipt_number(page).await;
    page.click(&dt("receipt-close")).await.unwrap();
    number
}

/// The number of the receipt the receipt dialog shows.
async fn receipt_number(page: &TestPage) -> String {
    page.attr(&dt("receipt-number"), "data-number")
        .await
        .unwrap()
        .unwrap()
}

/// Whether the `data-test` element `name` is hidden.
async fn hidden(page: &TestPage, name: &str) -> bool {
    page.eval(&format!(
        "document.querySelector('[data-test={name}]').hidden"
    ))
    .await
    .unwrap()
        == json!(true)
}

/// Asserts that each `data-test` element lies wholly inside the window.
async fn assert_on_screen(page: &TestPage, names: &[&str]) {
    for name in names {
        let inside = page
            .eval(&format!(
                "(() => {{ const r = document.querySelector('[data-test={name}]').getBoundingClientRect(); return r.width > 0 && r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight && r.right <= innerWidth; }})()"
            ))
            .await
            .unwrap();
        assert_eq!(inside, json!(true), "{name} is not wholly on screen");
    }
}

/// Scans three loaves of bread and waits for the cart's total, 10.47.
async fn scan_three_loaves(page: &TestPage) {
    for _ in 0..3 {
        page.scan(BREAD_GTIN).await.unwrap();
    }
    page.wait_for(
        "three loaves",
        "document.querySelector('[data-test=cart-total]').dataset.amount === '10.47'",
        WAIT,
    )
    .await
    .unwrap();
}

/// The terminal simulator of the card till under `dir` (its state kept in `dir/terminal`).
fn sim_config(dir: &Path) -> payments::sim::SimConfig {
    payments::sim::SimConfig {
        poi_id: "V400m-324688179".into(),
        key: payments::crypto::SecurityKey::new("TillKey", 1, "till card passphrase"),
        state_dir: dir.join("terminal"),
        offline_floor_limit_minor: 5_000,
    }
}

/// A Vienna node under `dir` whose till T1 has the terminal simulator as its payment terminal,
/// running as a real process.
async fn node_with_terminal(dir: &Path) -> (payments::sim::Simulator, Process) {
    let data = dir.join("node");
    provision_demo_store(&data, "vienna-01", &[T1])
        .await
        .unwrap();
    let sim = payments::sim::Simulator::start(
        sim_config(dir),
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
    )
    .await
    .unwrap();
    let terminal = PaymentTerminal {
        till: T1.into(),
        addr: sim.addr().to_string(),
        poi_id: "V400m-324688179".into(),
        key_id: "TillKey".into(),
        passphrase: "till card passphrase".into(),
        ca_pem: sim.ca_pem().into(),
    };
    set_payment_terminal(&kassa(), &data, &terminal, &[])
        .await
        .unwrap();
    let process = spawn(&data, &[]).await;
    (sim, process)
}

/// The till of a node whose T1 has the terminal simulator, with three loaves scanned and the pay
/// dialog open.
async fn three_loaves_to_pay_at_a_card_till(
    browser: &Browser,
    dir: &Path,
) -> (payments::sim::Simulator, Process, TestPage) {
    let (sim, process) = node_with_terminal(dir).await;
    let page = open_till(browser, &process.url, T1).await;
    scan_three_loaves(&page).await;
    page.click(&dt("btn-pay")).await.unwrap();
    page.wait_visible(&dt("pay-dialog")).await.unwrap();
    (sim, process, page)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_tender_goes_through_the_payment_terminal_and_a_partial_approval_leaves_the_rest_due()
 {
    let Some(browser) = Browser::launch_or_skip().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (sim, process, page) = three_loaves_to_pay_at_a_card_till(&browser, dir.path()).await;
    let url = process.url.clone();

    // 10.01 typed: the customer takes a while at the terminal, which approves half of it.
    sim.set_faults(payments::sim::Faults {
        latency_ms: 1_500,
        ..payments::sim::Faults::default()
    });
    page.fill(&dt("tender-amount"), "10.01").await.unwrap();
    page.click(&dt("tender-card")).await.unwrap();
    page.click(&dt("confirm-yes")).await.unwrap();
    page.wait_visible(&dt("pay-card-wait")).await.unwrap();
    page.screenshot("till-card-follow-terminal").await.unwrap();
    page.wait_for(
        "the partial card tender",
        "document.querySelector('[data-test=tender-row][data-kind=card]') !== null && document.querySelector('[data-test=pay-remaining]').dataset.amount === '5.47'",
        WAIT,
    )
    .await
    .unwrap();
    assert_eq!(
        page.attr(
            &format!("{}[data-kind=card]", dt("tender-row")),
            "data-amount"
        )
        .await
        .unwrap()
        .as_deref(),
        Some("5.00")
    );
    // The rest by card too: the sale completes with both approvals as references.
    sim.set_faults(payments::sim::Faults::default());
    page.click(&dt("tender-card")).await.unwrap();
    page.click(&dt("confirm-yes")).await.unwrap();
    page.wait_visible(&dt("receipt-dialog")).await.unwrap();
    let number = receipt_number(&page).await;
    let receipt = get(&format!("{url}/v1/receipts/{number}")).await;
    let captured: Vec<String> = sim
        .transactions()
        .iter()
        .map(|t| t.poi_transaction_id.clone())
        .collect();
    assert_eq!(captured.len(), 2);
    assert_eq!(
        receipt["tenders"],
        json!([
            {"kind": "card", "amount": "5.00", "reference": captured[0]},
            {"kind": "card", "amount": "5.47", "reference": captured[1]},
        ])
    );
    let kinds = journal_kinds(&url, T1).await;
    let cards: Vec<&str> = kinds
        .iter()
        .map(String::as_str)
        .filter(|k| k.starts_with("Card") || *k == "SaleCompleted")
        .collect();
    assert_eq!(
        cards,
        [
            "CardRequestStarted",
            "CardRequestEnded",
            "CardRequestStarted",
            "CardRequestEnded",
            "SaleCompleted"
        ]
    );

    // All three loaves come back to card: refunded across both card payments, each by its own
    // reference, and the screen shows both parts.
    page.click(&dt("receipt-close")).await.unwrap();
    page.click(&dt("btn-return")).await.unwrap();
    page.fill(&dt("return-receipt"), &number).await.unwrap();
    page.click(&dt("return-load")).await.unwrap();
    page.wait_visible(&dt("return-line")).await.unwrap();
    page.fill(&dt("return-line-qty"), "3").await.unwrap();
    submit_return_to_card(&page, false).await;
    let refunded = card_refunded(&page).await;
    assert_eq!(
        page.attr(&dt("return-card-result"), "data-parts")
            .await
            .unwrap()
            .as_deref(),
        Some("2"),
        "{refunded}"
    );
    let mut parts: Vec<&str> = refunded.split('+').collect();
    parts.sort_unstable();
    assert_eq!(parts, ["5.00", "5.47"]);
    let refunds: Vec<(Option<String>, i64)> = sim
        .transactions()
        .iter()
        .filter(|t| t.kind == "Refund")
        .map(|t| (t.original.clone(), t.captured_minor))
        .collect();
    assert_eq!(refunds.len(), 2, "{refunds:?}");
    assert!(
        refunds.contains(&(Some(captured[0].clone()), 500)),
        "{refunds:?}"
    );
    assert!(
        refunds.contains(&(Some(captured[1].clone()), 547)),
        "{refunds:?}"
    );
    page.screenshot("till-return-two-cards").await.unwrap();
    // Every request the screen sent follows the node's OpenAPI document.
    page.assert_requests_follow(store::api::OPENAPI)
        .await
        .unwrap();
    browser.close().await;
}

/// Submits the open return dialog refunded to card (approved by the supervisor Sven when
/// `approved`) and waits until the node answered the return.
async fn submit_return_to_card(page: &TestPage, approved: bool) {
    page.eval("document.querySelector('[data-test=return-tender]').value = 'card'")
        .await
        .unwrap();
    page.click(&dt("return-submit")).await.unwrap();
    if approved {
        page.wait_visible(&dt("approval-dialog")).await.unwrap();
        page.eval("document.querySelector('[data-test=approval-staff]').value = 'sven'")
            .await
            .unwrap();
        page.fill(&dt("approval-pin"), "2222").await.unwrap();
        page.click(&dt("approval-ok")).await.unwrap();
    }
    page.wait_for(
        "the return recorded",
        "document.querySelector('[data-test=return-result]').dataset.refund",
        WAIT,
    )
    .await
    .unwrap();
}

/// Waits until the return dialog shows the money given back to a card, and returns the amount.
async fn card_refunded(page: &TestPage) -> String {
    page.wait_for(
        "the card refund",
        "document.querySelector('[data-test=return-card-result]').dataset.amount",
        WAIT,
    )
    .await
    .unwrap();
    page.attr(&dt("return-card-result"), "data-amount")
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_return_refunded_to_card_goes_back_through_the_terminal_by_reference_or_to_a_presented_card()
 {
    let Some(browser) = Browser::launch_or_skip().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (sim, process, page) = three_loaves_to_pay_at_a_card_till(&browser, dir.path()).await;
    let url = process.url.clone();

    // Three loaves paid by card through the terminal.
    let number = pay_by_card(&page).await;
    let payment = sim.transactions()[0].poi_transaction_id.clone();

    // One loaf back with the receipt: refunded by reference to that card payment.
    return_one_of_the_first_line(&page, &number, 1).await;
    submit_return_to_card(&page, false).await;
    assert_eq!(card_refunded(&page).await, "3.49");
    let txns = sim.transactions();
    assert_eq!(txns.len(), 2, "{txns:?}");
    assert_eq!(txns[1].kind, "Refund");
    assert_eq!(txns[1].original.as_deref(), Some(payment.as_str()));
    assert_eq!(txns[1].captured_minor, 349);
    page.click(&dt("return-close")).await.unwrap();

    // One loaf back without a receipt: the customer presents a card. The first attempt never
    // reaches the terminal; the cashier asks again, and the card is refunded once.
    page.click(&dt("btn-return")).await.unwrap();
    page.wait_visible(&dt("return-dialog")).await.unwrap();
    page.click(&dt("return-mode-free")).await.unwrap();
    page.fill(&dt("return-code"), BREAD_GTIN).await.unwrap();
    page.fill(&dt("return-reason"), "no receipt").await.unwrap();
    sim.set_faults(payments::sim::Faults {
        drop_before_auth: true,
        ..payments::sim::Faults::default()
    });
    // A return without receipt needs a supervisor.
    submit_return_to_card(&page, true).await;
    page.wait_visible(&dt("return-card-retry")).await.unwrap();
    assert!(
        page.attr(&dt("return-card-result"), "data-amount")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(sim.transactions().len(), 2, "nothing reached the terminal");
    sim.set_faults(payments::sim::Faults {
        latency_ms: 1_500,
        ..payments::sim::Faults::default()
    });
    page.click(&dt("return-card-retry")).await.unwrap();
    page.wait_visible(&dt("return-card-wait")).await.unwrap();
    page.screenshot("till-card-refund-follow-terminal")
        .await
        .unwrap();
    assert_eq!(card_refunded(&page).await, "3.49");
    let txns = sim.transactions();
    assert_eq!(txns.len(), 3, "{txns:?}");
    assert_eq!(txns[2].kind, "UnreferencedRefund");
    assert_eq!(txns[2].original, None);
    assert_eq!(txns[2].captured_minor, 349);
    let returns: Vec<Value> = get(&format!("{url}/v1/journal?terminal={T1}")).await["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "ReturnCompleted")
        .cloned()
        .collect();
    assert_eq!(
        returns.len(),
        2,
        "asking the terminal again records no second return"
    );
    assert_eq!(
        Some(txns[2].sale_transaction_id.as_str()),
        returns[1]["event"]["body"]["ReturnCompleted"]["receipt"].as_str()
    );
    // Every request the screen sent follows the node's OpenAPI document.
    page.assert_requests_follow(store::api::OPENAPI)
        .await
        .unwrap();
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_refund_no_terminal_can_give_is_paid_in_cash_and_recorded_as_cash() {
    let Some(browser) = Browser::launch_or_skip().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (sim, process, page) = three_loaves_to_pay_at_a_card_till(&browser, dir.path()).await;
    let url = process.url.clone();
    let number = pay_by_card(&page).await;

    // One loaf back to the card, but the terminal cannot be reached: the cashier may ask again
    // or pay the rest in cash.
    sim.set_faults(payments::sim::Faults {
        drop_before_auth: true,
        ..payments::sim::Faults::default()
    });
    return_one_of_the_first_line(&page, &number, 1).await;
    submit_return_to_card(&page, false).await;
    page.wait_visible(&dt("return-card-cash")).await.unwrap();
    assert!(!hidden(&page, "return-card-retry").await);
    // Asked first, and "no" changes nothing.
    page.click(&dt("return-card-cash")).await.unwrap();
    page.wait_visible(&dt("confirm-dialog")).await.unwrap();
    let asked = page.text(&dt("confirm-text")).await.unwrap();
    assert!(asked.contains("3,49"), "{asked}");
    page.click(&dt("confirm-no")).await.unwrap();
    assert!(
        !journal_kinds(&url, T1)
            .await
            .iter()
            .any(|k| k == "CardRefundPaidInCash")
    );
    page.click(&dt("return-card-cash")).await.unwrap();
    page.click(&dt("confirm-yes")).await.unwrap();
    page.wait_for(
        "the refund paid in cash",
        "document.querySelector('[data-test=return-card-result]').dataset.inCash === '3.49'",
        WAIT,
    )
    .await
    .unwrap();
    assert!(hidden(&page, "return-card-cash").await);
    assert!(hidden(&page, "return-card-retry").await);
    page.screenshot("till-card-refund-paid-in-cash")
        .await
        .unwrap();

    // The ledger holds what was given back: nothing to the card, 3.49 from the drawer.
    let kinds = journal_kinds(&url, T1).await;
    assert_eq!(
        kinds
            .iter()
            .filter(|k| *k == "CardRefundPaidInCash")
            .count(),
        1
    );
    let x = get(&format!("{url}/v1/shifts/report?terminal={T1}")).await;
    let given_back = |kind: &str| {
        x["tenders"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["kind"] == kind)
            .map(|t| t["given_back"].as_str().unwrap().to_owned())
    };
    assert_eq!(given_back("card").as_deref(), Some("0.00"), "{x}");
    assert_eq!(given_back("cash").as_deref(), Some("3.49"), "{x}");
    assert!(
        sim.transactions().iter().all(|t| t.kind == "Payment"),
        "no refund reached the terminal"
    );
    page.assert_requests_follow(store::api::OPENAPI)
        .await
        .unwrap();
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gift_card_issued_at_the_till_pays_part_of_a_sale_and_cash_the_rest() {
    let Some(browser) = Browser::launch_or_skip().await else {
        return;
    };
    let node = start_node(&[]).await;
    let url = node.process.url.clone();
    let page = open_till(&browser, &url, T1).await;
    let card = domain::stored_value::AccountNumber::generate(
        domain::stored_value::StoredValueKind::GiftCard,
        u64::from(std::process::id()),
    )
    .to_string();

    // Issued with 5.00, paid in cash, from the till's gift card action.
    page.click(&dt("btn-gift-card")).await.unwrap();
    page.fill(&dt("sv-number"), &card).await.unwrap();
    page.fill(&dt("sv-amount"), "5.00").await.unwrap();
    page.click(&dt("sv-issue")).await.unwrap();
    page.wait_for(
        "gift card issued",
        &format!("document.querySelector('[data-test=sv-result]').dataset.number === '{card}'"),
        WAIT,
    )
    .await
    .unwrap();
    assert_eq!(
        page.attr(&dt("sv-balance-amount"), "data-amount")
            .await
            .unwrap()
            .as_deref(),
        Some("5.00")
    );
    // A node without HQ: its own ledger is the whole story.
    assert_eq!(
        page.attr(&dt("sv-balance-source"), "data-source")
            .await
            .unwrap()
            .as_deref(),
        Some("node")
    );
    page.click(&dt("sv-close")).await.unwrap();

    // Three loaves (10.47): the card covers 5.00, cash the rest.
    scan_three_loaves(&page).await;
    page.click(&dt("btn-pay")).await.unwrap();
    page.wait_visible(&dt("pay-dialog")).await.unwrap();
    page.click(&dt("tender-gift-card")).await.unwrap();
    page.wait_visible(&dt("sv-number")).await.unwrap();
    page.scan(&card).await.unwrap();
    page.wait_for(
        "the card's balance",
        "!!document.querySelector('[data-test=sv-balance-amount]')",
        WAIT,
    )
    .await
    .unwrap();
    page.screenshot("till-gift-card").await.unwrap();
    // 8.00 typed, more than the card holds: the node refuses the card at completion; the card
    // comes off (nothing shows as paid that is not), what it covers is offered, the rest stays
    // due.
    page.fill(&dt("sv-amount"), "8.00").await.unwrap();
    page.click(&dt("sv-use")).await.unwrap();
    page.wait_visible(&format!("{}[data-kind=gift-card]", dt("tender-row")))
        .await
        .unwrap();
    page.click(&dt("tender-cash")).await.unwrap();
    page.wait_visible(&dt("confirm-dialog")).await.unwrap();
    let offer = page.text(&dt("confirm-text")).await.unwrap();
    assert!(offer.contains("5,00"), "{offer}");
    assert_eq!(
        page.count(&format!("{}[data-kind=gift-card]", dt("tender-row")))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        page.attr(&dt("pay-remaining"), "data-amount")
            .await
            .unwrap()
            .as_deref(),
        Some("8.00")
    );
    page.click(&dt("confirm-yes")).await.unwrap();
    page.wait_for(
        "a gift card tender of what the card holds",
        "!!document.querySelector('[data-test=tender-row][data-kind=gift-card][data-amount=\"5.00\"]')",
        WAIT,
    )
    .await
    .unwrap();
    assert_eq!(
        page.attr(&dt("pay-remaining"), "data-amount")
            .await
            .unwrap()
            .as_deref(),
        Some("3.00")
    );
    page.click(&dt("tender-cash")).await.unwrap();
    page.wait_visible(&dt("receipt-dialog")).await.unwrap();

    let balance = get(&format!("{url}/v1/stored-value/{card}")).await;
    assert_eq!(balance["balance"], "0.00", "{balance}");
    let kinds = journal_kinds(&url, T1).await;
    assert_eq!(
        kinds[kinds.len() - 2..],
        ["StoredValueIssued", "SaleCompleted"],
        "{kinds:?}"
    );
    // Every request the screen sent follows the node's OpenAPI document.
    page.assert_requests_follow(store::api::OPENAPI)
        .await
        .unwrap();
    browser.close().await;
}

/// Reversals the terminal simulator has made.
fn reversals(sim: &payments::sim::Simulator) -> usize {
    sim.transactions()
        .iter()
        .filter(|t| t.kind == "Reversal")
        .count()
}

/// Types `amount` and takes it by card after confirming; waits for the card tender on screen.
async fn part_paid_by_card(page: &TestPage, amount: &str) {
    page.fill(&dt("tender-amount"), amount).await.unwrap();
    page.click(&dt("tender-card")).await.unwrap();
    page.click(&dt("confirm-yes")).await.unwrap();
    page.wait_visible(&format!("{}[data-kind=card]", dt("tender-row")))
        .await
        .unwrap();
}

async fn wait_reversals(sim: &payments::sim::Simulator, n: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while reversals(sim) != n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} reversals at the terminal, expected {n}",
            reversals(sim)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_card_payment_goes_back_on_every_way_out_of_a_sale_and_one_the_terminal_misses_stays_listed()
 {
    let Some(browser) = Browser::launch_or_skip().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (sim, process, page) = three_loaves_to_pay_at_a_card_till(&browser, dir.path()).await;

    // Card asks before it charges: "no" sends nothing to the terminal.
    page.fill(&dt("tender-amount"), "4.00").await.unwrap();
    page.click(&dt("tender-card")).await.unwrap();
    page.wait_visible(&dt("confirm-dialog")).await.unwrap();
    let question = page.text(&dt("confirm-text")).await.unwrap();
    assert!(question.contains("4,00"), "{question}");
    page.click(&dt("confirm-no")).await.unwrap();
    assert!(sim.transactions().is_empty());

    // 4.00 approved, then the sale is abandoned: "Cancel sale" asks, "keep" keeps it, "cancel"
    // gives the card payment back.
    part_paid_by_card(&page, "4.00").await;
    page.click(&dt("pay-cancel")).await.unwrap();
    page.click(&dt("btn-clear")).await.unwrap();
    page.wait_visible(&dt("confirm-dialog")).await.unwrap();
    page.click(&dt("confirm-no")).await.unwrap();
    assert_eq!(lines(&page).await.len(), 1);
    assert_eq!(reversals(&sim), 0);
    page.click(&dt("btn-clear")).await.unwrap();
    page.click(&dt("confirm-yes")).await.unwrap();
    wait_lines(&page, 0).await;
    wait_reversals(&sim, 1).await;

    // Parked with an approved card payment: it goes back, and the cashier is told.
    scan_three_loaves(&page).await;
    page.click(&dt("btn-pay")).await.unwrap();
    part_paid_by_card(&page, "4.00").await;
    page.click(&dt("pay-cancel")).await.unwrap();
    page.click(&dt("btn-park")).await.unwrap();
    wait_lines(&page, 0).await;
    wait_reversals(&sim, 2).await;
    let told = page.text(&dt("message")).await.unwrap();
    assert!(told.contains("given back"), "{told}");

    // The terminal does not take the reversal: the payment stays listed to give back, and the
    // retry gives it back once the terminal answers again.
    page.click(&dt("btn-resume")).await.unwrap();
    page.click(&dt("parked-sale")).await.unwrap();
    wait_lines(&page, 1).await;
    page.click(&dt("btn-pay")).await.unwrap();
    part_paid_by_card(&page, "4.00").await;
    let addr = sim.addr();
    drop(sim);
    page.click(&dt("pay-cancel")).await.unwrap();
    page.click(&dt("btn-clear")).await.unwrap();
    page.click(&dt("confirm-yes")).await.unwrap();
    page.wait_visible(&dt("give-back")).await.unwrap();
    assert_eq!(
        page.attr(&dt("give-back"), "data-count")
            .await
            .unwrap()
            .as_deref(),
        Some("1")
    );
    page.screenshot("till-card-to-give-back").await.unwrap();
    // The terminal is back, with what it remembers.
    let sim = payments::sim::Simulator::start(
        sim_config(dir.path()),
        tokio::net::TcpListener::bind(addr).await.unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(reversals(&sim), 2);
    page.click(&dt("give-back")).await.unwrap();
    page.wait_for(
        "nothing left to give back",
        "document.querySelector('[data-test=give-back]').hidden",
        WAIT,
    )
    .await
    .unwrap();
    wait_reversals(&sim, 3).await;
    // Every approval was given back: the terminal holds no money for these abandoned sales.
    let kept: i64 = sim
        .transactions()
        .iter()
        .filter(|t| t.kind == "Payment")
        .map(|t| t.captured_minor - t.refunded_minor)
        .sum();
    assert_eq!(kept, 0, "{:?}", sim.transactions());
    page.assert_requests_follow(store::api::OPENAPI)
        .await
        .unwrap();
    drop(process);
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_return_is_refunded_once_however_often_refund_is_pressed() {
    let Some(browser) = Browser::launch_or_skip().await else {
        return;
    };
    let node = start_node(&[]).await;
    let url = node.process.url.clone();
    let page = open_till(&browser, &url, T1).await;
    scan_three_loaves(&page).await;
    let number = pay_exact_in_cash(&page).await;

    return_one_of_the_first_line(&page, &number, 1).await;
    // A double press while the first request is on its way, then a third after it is done.
    page.eval("(() => { const b = document.querySelector('[data-test=return-submit]'); b.click(); b.click(); })()")
        .await
        .unwrap();
    page.wait_visible(&dt("return-new")).await.unwrap();
    assert_eq!(
        page.eval("document.querySelector('[data-test=return-submit]').hidden")
            .await
            .unwrap(),
        json!(true)
    );
    page.eval("document.querySelector('[data-test=return-submit]').click()")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let kinds = journal_kinds(&url, T1).await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "ReturnCompleted").count(),
        1,
        "{kinds:?}"
    );
    // "New return" starts from scratch: nothing of the last one is armed.
    page.click(&dt("return-new")).await.unwrap();
    assert_eq!(page.count(&dt("return-line")).await.unwrap(), 0);
    assert_eq!(page.text(&dt("return-result")).await.unwrap(), "");
    page.assert_requests_follow(store::api::OPENAPI)
        .await
        .unwrap();
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_german_till_takes_a_decimal_comma_keeps_a_mistyped_weight_and_speaks_german() {
    let Some(browser) = Browser::launch_or_skip().await else {
        return;
    };
    let node = start_node(&[]).await;
    let url = node.process.url.clone();
    let page = browser
        .open(&format!("{url}/till?terminal={T1}&lang=de"))
        .await
        .unwrap();
    page.wait_for("sign-in", "document.body.dataset.screen === 'signin'", WAIT)
        .await
        .unwrap();
    // A wrong PIN is said in German, by the error's code.
    page.click(&dt("staff-anna")).await.unwrap();
    page.fill(&dt("pin-input"), "0000").await.unwrap();
    page.click(&dt("pin-ok")).await.unwrap();
    page.wait_for(
        "wrong PIN",
        "document.querySelector('[data-test=signin-error]').dataset.code === 'wrong_pin'",
        WAIT,
    )
    .await
    .unwrap();
    assert_eq!(
        page.text(&dt("signin-error")).await.unwrap(),
        "Falsche PIN (noch 4 Versuche)."
    );
    page.click(&dt("pin-back")).await.unwrap();
    sign_in(&page, "anna", "1111").await;
    page.wait_for("selling", "document.body.dataset.screen === 'sell'", WAIT)
        .await
        .unwrap();

    // The sell keypad is in numeric-pad order: 7 8 9 above 4 5 6 above 1 2 3 above 0.
    let rows = page
        .eval("['7','8','9','4','5','6','1','2','3','0'].map(k => Math.round(document.querySelector(`[data-test=sell-pad] [data-key=\"${k}\"]`).getBoundingClientRect().top))")
        .await
        .unwrap();
    let rows: Vec<i64> = serde_json::from_value(rows).unwrap();
    assert!(rows[0] == rows[1] && rows[1] == rows[2], "{rows:?}");
    assert!(
        rows[3] == rows[4] && rows[4] == rows[5] && rows[3] > rows[0],
        "{rows:?}"
    );
    assert!(
        rows[6] == rows[7] && rows[7] == rows[8] && rows[6] > rows[3],
        "{rows:?}"
    );
    assert!(rows[9] > rows[6], "{rows:?}");
    // Its decimal key types the German comma.
    assert_eq!(
        page.text(&format!("{} [data-key=\".\"]", dt("sell-pad")))
            .await
            .unwrap(),
        ","
    );

    // Loose bananas weighed by hand: a mistyped weight is said and kept; "1,234" is taken.
    page.scan(BANANA_PLU_CODE).await.unwrap();
    page.wait_visible(&dt("qty-dialog")).await.unwrap();
    page.fill(&dt("qty-input"), "1,2x").await.unwrap();
    page.click(&dt("qty-ok")).await.unwrap();
    page.wait_for(
        "the mistyped weight is refused and kept",
        "document.querySelector('[data-test=qty-error]').textContent !== '' && !document.querySelector('[data-test=qty-dialog]').hidden && document.querySelector('[data-test=qty-input]').value === '1,2x'",
        WAIT,
    )
    .await
    .unwrap();
    page.fill(&dt("qty-input"), "1,234").await.unwrap();
    page.click(&dt("qty-ok")).await.unwrap();
    wait_lines(&page, 1).await;
    assert_eq!(lines(&page).await[0].1, "1.234");
    page.screenshot("till-de-weight").await.unwrap();
    page.assert_requests_follow(store::api::OPENAPI)
        .await
        .unwrap();
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_void_dialog_names_the_sale_it_voids() {
    let Some(browser) = Browser::launch_or_skip().await else {
        return;
    };
    let node = start_node(&[]).await;
    let url = node.process.url.clone();
    let page = open_till(&browser, &url, T1).await;
    scan_three_loaves(&page).await;
    let number = pay_exact_in_cash(&page).await;
    page.click(&dt("btn-void-last")).await.unwrap();
    page.wait_for(
        "the sale named",
        &format!("document.querySelector('[data-test=void-sale]').dataset.receipt === '{number}'"),
        WAIT,
    )
    .await
    .unwrap();
    let named = page.text(&dt("void-sale")).await.unwrap();
    assert!(
        named.contains(&number) && named.contains("10,47"),
        "{named}"
    );
    page.screenshot("till-void").await.unwrap();
    page.assert_requests_follow(store::api::OPENAPI)
        .await
        .unwrap();
    browser.close().await;
}

/// The screens a cashier sees, at the sizes real tills have, in English and German: every
/// control that matters lies wholly on screen, quick keys included, and the screenshots are
/// kept in `artifacts/` to be looked at. The customer display at 800×480 shows the total and
/// the change whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_screen_fits_1024x768_to_1920x1080_in_english_and_german() {
    let Some(browser) = Browser::launch_or_skip().await else {
        return;
    };
    let node = start_node(&[]).await;
    let url = node.process.url.clone();
    let page = open_till(&browser, &url, T1).await;
    let display = browser
        .open(&format!("{url}/display?terminal={T1}"))
        .await
        .unwrap();
    display.set_viewport(800, 480).await.unwrap();
    for lang in ["en", "de"] {
        if page.eval("Kassa.state.lang").await.unwrap() != json!(lang) {
            page.click(&dt("btn-lang")).await.unwrap();
        }
        for (width, height) in [(1024, 768), (1280, 800), (1920, 1080)] {
            page.set_viewport(width, height).await.unwrap();
            let at = format!("{lang}-{width}x{height}");
            scan_three_loaves(&page).await;
            page.scan(BANANA_LABEL).await.unwrap();
            wait_lines(&page, 2).await;
            assert_on_screen(&page, &["btn-pay", "cart-total", "cart-count", "btn-clear"]).await;
            let whole_keys = page
                .eval("Array.from(document.querySelectorAll('[data-test=quick-key]')).filter(k => { const r = k.getBoundingClientRect(), box = document.querySelector('[data-test=quick-keys]').getBoundingClientRect(); return r.height >= 44 && r.top >= box.top && r.bottom <= box.bottom; }).length")
                .await
                .unwrap();
            assert!(
                whole_keys.as_u64().unwrap() >= 4,
                "{at}: {whole_keys} quick keys wholly visible"
            );
            // No label of the selling screen is cut off.
            let cut = page
                .eval("Array.from(document.querySelectorAll('.actions button, .right .pay')).filter(b => b.scrollWidth > b.clientWidth + 1).map(b => b.textContent)")
                .await
                .unwrap();
            assert_eq!(cut, json!([]), "{at}: labels cut off");
            page.screenshot(&format!("till-sell-{at}")).await.unwrap();
            display
                .wait_for(
                    "the cart on the display",
                    "document.body.dataset.state === 'cart'",
                    WAIT,
                )
                .await
                .unwrap();
            assert_on_screen(&display, &["display-total"]).await;
            display
                .screenshot(&format!("display-cart-{lang}-800x480"))
                .await
                .unwrap();
            // The till's tab in front again: a background tab gets no input.
            page.page().bring_to_front().await.unwrap();

            page.click(&dt("btn-pay")).await.unwrap();
            page.wait_visible(&dt("pay-dialog")).await.unwrap();
            assert_on_screen(&page, &["tender-cash", "tender-card", "pay-remaining"]).await;
            page.screenshot(&format!("till-pay-{at}")).await.unwrap();
            page.fill(&dt("tender-amount"), "50").await.unwrap();
            page.click(&dt("tender-cash")).await.unwrap();
            page.wait_visible(&dt("receipt-html")).await.unwrap();
            assert_on_screen(&page, &["receipt-close", "receipt-change"]).await;
            page.screenshot(&format!("till-receipt-{at}"))
                .await
                .unwrap();
            display
                .wait_for(
                    "the change on the display",
                    "document.body.dataset.state === 'paid'",
                    WAIT,
                )
                .await
                .unwrap();
            assert_on_screen(&display, &["display-total", "display-change"]).await;
            display
                .screenshot(&format!("display-paid-{lang}-800x480"))
                .await
                .unwrap();
            // The till's tab in front again: a background tab gets no input.
            page.page().bring_to_front().await.unwrap();
            page.click(&dt("receipt-close")).await.unwrap();

            page.click(&dt("btn-shift")).await.unwrap();
            page.click(&dt("shift-x")).await.unwrap();
            page.wait_for(
                "the X report",
                "document.querySelector('[data-test=shift-report]').textContent.length > 0",
                WAIT,
            )
            .await
            .unwrap();
            // Formatted for the cashier too, in the till's language, and blind: no expected
            // cash.
            let x = page.text(&dt("shift-report")).await.unwrap();
            let (title, expected) = if lang == "de" {
                ("X-BERICHT", "Soll-Bestand")
            } else {
                ("X REPORT", "Expected cash")
            };
            assert!(x.contains(title) && !x.contains(expected), "{at}:\n{x}");
            assert!(!x.trim_start().starts_with('{'), "{at}: raw JSON");
            page.screenshot(&format!("till-x-report-{at}"))
                .await
                .unwrap();
            page.click(&dt("shift-dialog-close")).await.unwrap();
        }
    }
    // The Z report, once, at the smallest size.
    page.set_viewport(1024, 768).await.unwrap();
    page.click(&dt("btn-shift")).await.unwrap();
    page.click(&dt("shift-close-start")).await.unwrap();
    page.fill(&dt("count-50.00"), "3").await.unwrap();
    page.click(&dt("shift-close-ok")).await.unwrap();
    page.wait_for(
        "the Z report",
        "document.querySelector('[data-test=shift-report]').dataset.overShort !== undefined",
        WAIT,
    )
    .await
    .unwrap();
    let z = page.text(&dt("shift-report")).await.unwrap();
    assert!(z.contains("Z-BERICHT") && z.contains("Soll-Bestand"), "{z}");
    page.screenshot("till-z-report-de-1024x768").await.unwrap();
    page.assert_requests_follow(store::api::OPENAPI)
        .await
        .unwrap();
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_keys_come_in_the_stores_pages_and_ring_up_their_item() {
    let Some(browser) = Browser::launch_or_skip().await else {
        return;
    };
    let node = start_node(&[]).await;
    let page = open_till(&browser, &node.process.url, T1).await;
    page.wait_for(
        "the store's quick-key pages",
        "document.querySelectorAll('[data-test=quick-page]').length === 5",
        WAIT,
    )
    .await
    .unwrap();
    let tabs = page
        .eval("Array.from(document.querySelectorAll('[data-test=quick-page]')).map(t => t.textContent)")
        .await
        .unwrap();
    assert_eq!(
        tabs,
        json!([
            "Gebäck",
            "Diverses",
            "Obst & Gemüse",
            "Feinkost",
            "Getränke"
        ])
    );
    // A department key: the cashier types the price; one the node refuses is asked again with
    // what was typed, never dropped.
    page.click(&format!("{}[data-index=\"1\"]", dt("quick-page")))
        .await
        .unwrap();
    page.wait_for(
        "the department keys",
        "document.querySelector('[data-test=quick-key]').dataset.sku === 'MIS-DEP-0001-STD'",
        WAIT,
    )
    .await
    .unwrap();
    page.click(&dt("quick-key")).await.unwrap();
    page.wait_visible(&dt("qty-dialog")).await.unwrap();
    page.fill(&dt("qty-input"), "10000").await.unwrap();
    page.click(&dt("qty-ok")).await.unwrap();
    page.wait_for(
        "the refused price asked again",
        "!document.querySelector('[data-test=qty-dialog]').hidden && document.querySelector('[data-test=qty-error]').textContent.includes('9999.99') && document.querySelector('[data-test=qty-input]').value === '10000'",
        WAIT,
    )
    .await
    .unwrap();
    page.fill(&dt("qty-input"), "12,50").await.unwrap();
    page.click(&dt("qty-ok")).await.unwrap();
    wait_lines(&page, 1).await;
    assert_eq!(
        page.attr(&dt("cart-total"), "data-amount")
            .await
            .unwrap()
            .as_deref(),
        Some("12.50")
    );
    page.click(&dt("btn-clear")).await.unwrap();
    page.click(&dt("confirm-yes")).await.unwrap();
    wait_lines(&page, 0).await;
    // The drinks page, in its colour: its first key rings up a drink.
    page.click(&format!("{}[data-index=\"4\"]", dt("quick-page")))
        .await
        .unwrap();
    page.wait_for(
        "the drinks",
        "document.querySelector('[data-test=quick-key]').dataset.sku.startsWith('GRO-DRK-')",
        WAIT,
    )
    .await
    .unwrap();
    let colour = page
        .eval("getComputedStyle(document.querySelector('[data-test=quick-key]')).backgroundColor")
        .await
        .unwrap();
    assert_eq!(colour, json!("rgb(144, 202, 249)"));
    let sku = page
        .attr(&dt("quick-key"), "data-sku")
        .await
        .unwrap()
        .unwrap();
    page.click(&dt("quick-key")).await.unwrap();
    wait_lines(&page, 1).await;
    assert_eq!(lines(&page).await[0].0, sku);
    page.screenshot("till-quick-keys-drinks").await.unwrap();
    page.assert_requests_follow(store::api::OPENAPI)
        .await
        .unwrap();
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_card_is_explained_in_the_tills_language() {
    let Some(browser) = Browser::launch_or_skip().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (sim, process, page) = three_loaves_to_pay_at_a_card_till(&browser, dir.path()).await;
    page.click(&dt("pay-cancel")).await.unwrap();
    page.click(&dt("btn-lang")).await.unwrap();
    page.click(&dt("btn-pay")).await.unwrap();
    // 10,02 typed the German way: the terminal refuses it (not enough balance).
    page.fill(&dt("tender-amount"), "10,02").await.unwrap();
    page.click(&dt("tender-card")).await.unwrap();
    page.click(&dt("confirm-yes")).await.unwrap();
    page.wait_for(
        "the refusal",
        "document.querySelector('[data-test=pay-error]').textContent !== ''",
        WAIT,
    )
    .await
    .unwrap();
    assert_eq!(
        page.text(&dt("pay-error")).await.unwrap(),
        "Karte abgelehnt: von der Bank abgelehnt"
    );
    assert_eq!(sim.transactions()[0].requested_minor, 1002);
    assert_eq!(page.count(&dt("tender-row")).await.unwrap(), 0);
    page.assert_requests_follow(store::api::OPENAPI)
        .await
        .unwrap();
    drop(process);
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gift_card_is_sold_by_card_through_the_terminal_and_an_unknown_card_says_so() {
    let Some(browser) = Browser::launch_or_skip().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (sim, process) = node_with_terminal(dir.path()).await;
    let url = process.url.clone();
    let page = open_till(&browser, &url, T1).await;
    let card = domain::stored_value::AccountNumber::generate(
        domain::stored_value::StoredValueKind::GiftCard,
        u64::from(std::process::id()) + 7,
    )
    .to_string();

    // A number nobody issued: "unknown", not a balance of 0.00.
    page.click(&dt("btn-gift-card")).await.unwrap();
    page.fill(&dt("sv-number"), &card).await.unwrap();
    page.click(&dt("sv-check")).await.unwrap();
    page.wait_visible(&dt("sv-balance-amount")).await.unwrap();
    assert_eq!(
        page.attr(&dt("sv-balance-amount"), "data-status")
            .await
            .unwrap()
            .as_deref(),
        Some("unknown")
    );
    let said = page.text(&dt("sv-balance-amount")).await.unwrap();
    assert!(said.starts_with("Unknown card"), "{said}");

    // Issued with 25.00 paid by card: the terminal takes it, the issue references it.
    page.fill(&dt("sv-amount"), "25.00").await.unwrap();
    page.eval("document.querySelector('[data-test=sv-pay]').value = 'card'")
        .await
        .unwrap();
    page.click(&dt("sv-issue")).await.unwrap();
    page.click(&dt("confirm-yes")).await.unwrap();
    page.wait_for(
        "gift card issued",
        &format!("document.querySelector('[data-test=sv-result]').dataset.number === '{card}'"),
        WAIT,
    )
    .await
    .unwrap();
    let taken = sim.transactions();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].kind, "Payment");
    assert_eq!(taken[0].captured_minor, 2500);
    let journal = get(&format!("{url}/v1/journal?terminal={T1}")).await;
    let issued = journal["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "StoredValueIssued")
        .unwrap()
        .to_string();
    assert!(issued.contains(&taken[0].poi_transaction_id), "{issued}");
    // Nothing is left to give back: the gift card took the payment.
    assert!(
        page.eval("document.querySelector('[data-test=give-back]').hidden")
            .await
            .unwrap()
            == json!(true)
    );
    page.assert_requests_follow(store::api::OPENAPI)
        .await
        .unwrap();
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_price_check_shows_the_price_and_nothing_else_and_no_sale_opens_the_drawer_with_approval()
{
    let Some(browser) = Browser::launch_or_skip().await else {
        return;
    };
    let node = start_node(&[]).await;
    let url = node.process.url.clone();
    let page = open_till(&browser, &url, T1).await;
    page.click(&dt("btn-price-check")).await.unwrap();
    page.fill(&dt("price-check-input"), BREAD_GTIN)
        .await
        .unwrap();
    page.press("Enter").await.unwrap();
    page.wait_visible(&dt("price-check-name")).await.unwrap();
    let shown = page.text(&dt("price-check-result")).await.unwrap();
    assert!(
        !shown.contains("null") && !shown.contains("undefined"),
        "{shown}"
    );
    assert!(shown.contains("3,49"), "{shown}");
    page.click(&dt("price-check-close")).await.unwrap();
    assert_eq!(page.count(&dt("cart-line")).await.unwrap(), 0);

    // Opening the drawer without a sale needs a supervisor; the node records it and says there
    // is no printer to open it with.
    page.click(&dt("btn-shift")).await.unwrap();
    page.click(&dt("shift-no-sale")).await.unwrap();
    page.wait_visible(&dt("approval-dialog")).await.unwrap();
    page.eval("document.querySelector('[data-test=approval-staff]').value = 'sven'")
        .await
        .unwrap();
    page.fill(&dt("approval-pin"), "2222").await.unwrap();
    page.click(&dt("approval-ok")).await.unwrap();
    page.wait_for(
        "the no-sale recorded",
        "document.querySelector('[data-test=shift-report]').textContent.includes('printer')",
        WAIT,
    )
    .await
    .unwrap();
    let kinds = journal_kinds(&url, T1).await;
    assert_eq!(
        kinds.last().map(String::as_str),
        Some("NoSale"),
        "{kinds:?}"
    );
    page.assert_requests_follow(store::api::OPENAPI)
        .await
        .unwrap();
    browser.close().await;
}

/// An order from the web as HQ routes it, written into the node's own table of them (how it
/// gets there from HQ is `kassa/tests/sync.rs`'s real-process test).
async fn route_order(data: &Path, number: &str, payment: &str, status: &str) {
    use sqlx::Connection;
    let order = protocol::sync::OrderEntity {
        id: format!("id-{number}"),
        number: number.to_owned(),
        store: "vienna-01".into(),
        fulfilment: "pickup".into(),
        payment: payment.into(),
        psp_reference: (payment == "paid").then(|| "psp-1".to_owned()),
        status: status.into(),
        customer: protocol::sync::OrderCustomer {
            name: "Eva Huber".into(),
            email: None,
            phone: None,
        },
        shipping_address: None,
        currency: "EUR".into(),
        lines: vec![protocol::sync::OrderLine {
            sku: "GRO-BRD-0012".into(),
            name: "Bauernbrot 750 g".into(),
            quantity: 2000,
            picked: None,
            returned: None,
            unit_price_minor: 420,
        }],
        created_ms: 1,
    };
    let url = format!("sqlite://{}", store::db::db_path(data).display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("INSERT INTO web_orders (id, number, status, payload) VALUES ($1, $2, $3, $4)")
        .bind(&order.id)
        .bind(number)
        .bind(status)
        .bind(serde_json::to_string(&order).unwrap())
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_order_is_picked_short_handed_over_by_its_qr_code_and_taken_back_at_the_till() {
    let Some(browser) = Browser::launch_or_skip().await else {
        return;
    };
    let node = start_node(&[]).await;
    let url = node.process.url.clone();
    route_order(&node._dir.path().join("node"), "W-000007", "paid", "placed").await;
    let before = get(&format!("{url}/v1/stock/GRO-BRD-0012")).await;
    let page = open_till(&browser, &url, T1).await;

    // The task list, then the order: one of two loaves found.
    page.click(&dt("btn-orders")).await.unwrap();
    page.wait_visible(&dt("order-W-000007")).await.unwrap();
    let listed = page.text(&dt("order-W-000007")).await.unwrap();
    assert!(
        listed.contains("Eva Huber") && listed.contains("to pick"),
        "{listed}"
    );
    page.click(&dt("order-W-000007")).await.unwrap();
    page.wait_visible(&dt("order-pick-qty")).await.unwrap();
    page.fill(&dt("order-pick-qty"), "1").await.unwrap();
    page.click(&dt("order-step")).await.unwrap();
    page.wait_for(
        "picked",
        "document.querySelector('[data-test=orders-result]').textContent.includes('picked')",
        WAIT,
    )
    .await
    .unwrap();
    // Ready for pickup.
    page.click(&dt("order-step")).await.unwrap();
    page.wait_for(
        "ready",
        "document.querySelector('[data-test=orders-result]').textContent.includes('ready')",
        WAIT,
    )
    .await
    .unwrap();
    page.screenshot("till-web-order").await.unwrap();

    // The customer shows the QR code: scanned into the open dialog, found, handed over.
    page.click(&format!("{} [data-close]", dt("orders-dialog")))
        .await
        .unwrap();
    page.click(&dt("btn-orders")).await.unwrap();
    page.wait_visible(&dt("orders-find")).await.unwrap();
    page.scan("kassa-order:W-000007").await.unwrap();
    page.wait_for(
        "found by its QR code",
        "document.querySelector('[data-test=order-title]').textContent.includes('ready for pickup')",
        WAIT,
    )
    .await
    .unwrap();
    page.click(&dt("order-step")).await.unwrap();
    page.wait_for(
        "handed over",
        "document.querySelector('[data-test=orders-result]').textContent.includes('collected')",
        WAIT,
    )
    .await
    .unwrap();
    page.wait_visible(&dt("orders-none")).await.unwrap();
    let order = get(&format!("{url}/v1/web-orders/W-000007")).await;
    assert_eq!(order["status"], "collected", "{order}");
    assert_eq!(order["picked"][0]["quantity"], "1", "{order}");
    let handed = get(&format!("{url}/v1/stock/GRO-BRD-0012")).await;
    let on_hand =
        |v: &Value| domain::quantity::parse_signed_milli(v["on_hand"].as_str().unwrap()).unwrap();
    assert_eq!(
        on_hand(&before) - on_hand(&handed),
        1000,
        "{before} {handed}"
    );

    // The customer brings the loaf back: more than was delivered is refused at the line; one
    // goes back into stock, and the till pays nothing out.
    page.wait_visible(&dt("order-return-qty")).await.unwrap();
    page.fill(&dt("order-return-qty"), "2").await.unwrap();
    page.click(&dt("order-return")).await.unwrap();
    page.wait_for(
        "a return of more than was delivered refused",
        "document.querySelector('[data-test=orders-error]').textContent.includes('at most 1 more')",
        WAIT,
    )
    .await
    .unwrap();
    // The customer takes store credit here rather than wait for the web shop's refund.
    page.fill(&dt("order-return-qty"), "1").await.unwrap();
    page.eval("(() => { const s = document.querySelector('[data-test=order-refund]'); s.value = 'store-credit'; s.dispatchEvent(new Event('change')); return true; })()")
        .await
        .unwrap();
    page.click(&dt("order-return")).await.unwrap();
    page.wait_for(
        "taken back as store credit",
        "document.querySelector('[data-test=orders-result]').textContent.includes('Store credit SC')",
        WAIT,
    )
    .await
    .unwrap();
    let result = page.text(&dt("orders-result")).await.unwrap();
    let credit = result
        .split_whitespace()
        .find(|w| w.starts_with("SC"))
        .unwrap()
        .to_owned();
    // The account holds the loaf at the order's price (4.20, shown the Austrian way).
    assert!(result.contains("4,20"), "{result}");
    let balance = get(&format!("{url}/v1/stored-value/{credit}")).await;
    assert_eq!(balance["balance"], "4.20", "{balance}");
    page.wait_for(
        "nothing more to take back",
        "document.querySelector('[data-test=order-return]').hidden",
        WAIT,
    )
    .await
    .unwrap();

    // Four order steps on the till's ledger; the loaf left at the handover and came back.
    let kinds = journal_kinds(&url, T1).await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "OrderStep").count(),
        4,
        "{kinds:?}"
    );
    let order = get(&format!("{url}/v1/web-orders/W-000007")).await;
    assert_eq!(order["returned"][0]["quantity"], "1", "{order}");
    let after = get(&format!("{url}/v1/stock/GRO-BRD-0012")).await;
    assert_eq!(on_hand(&before), on_hand(&after), "{before} {after}");

    // An order paid at pickup was paid, and its stock taken, by a till sale: it comes back as
    // a return of that sale, never as an order return (no second refund, no second restock).
    route_order(
        &node._dir.path().join("node"),
        "W-000008",
        "at-pickup",
        "collected",
    )
    .await;
    page.fill(&dt("orders-find"), "W-000008").await.unwrap();
    page.click(&dt("orders-load")).await.unwrap();
    page.wait_for(
        "the order paid at pickup",
        "document.querySelector('[data-test=order-title]').textContent.includes('W-000008')",
        WAIT,
    )
    .await
    .unwrap();
    assert!(hidden(&page, "order-return").await);
    let steps = format!("{url}/v1/web-orders/W-000008/steps");
    let body = json!({"terminal": T1, "step": "returned",
                      "lines": [{"sku": "GRO-BRD-0012", "quantity": "1"}]});
    let signed_in = test_support::sign_in(&client(), &url, T1, "anna", "1111")
        .await
        .unwrap();
    let answer = client()
        .post(&steps)
        .bearer_auth(signed_in["session"].as_str().unwrap())
        .header("Idempotency-Key", "return-paid-at-till")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 409);
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(answer["code"], "paid_at_till", "{answer}");
    assert_eq!(
        on_hand(&get(&format!("{url}/v1/stock/GRO-BRD-0012")).await),
        on_hand(&after)
    );
    page.assert_requests_follow(store::api::OPENAPI)
        .await
        .unwrap();
}

/// A parcel of goods bought here and sent back through the web shop is listed under the
/// orders and received with one press: the loaves go back into stock with a `ReturnReceived`
/// event, and the list empties.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parcel_returned_through_the_web_shop_is_received_into_stock_at_the_till() {
    use sqlx::Connection;
    let Some(browser) = Browser::launch_or_skip().await else {
        return;
    };
    let node = start_node(&[]).await;
    let url = node.process.url.clone();
    let parcel = protocol::sync::WebReturnEntity {
        id: "id-R-000009".into(),
        number: "R-000009".into(),
        sale_receipt: "vienna-01-t1-000003".into(),
        sale_store: "vienna-01".into(),
        receive_at: "vienna-01".into(),
        status: "open".into(),
        currency: "EUR".into(),
        refund_minor: 840,
        lines: vec![protocol::sync::WebReturnLine {
            line: 0,
            sku: "GRO-BRD-0012".into(),
            name: "Bauernbrot 750 g".into(),
            quantity: 2000,
        }],
        created_ms: 1,
    };
    let db = format!(
        "sqlite://{}",
        store::db::db_path(&node._dir.path().join("node")).display()
    );
    let mut conn = sqlx::SqliteConnection::connect(&db).await.unwrap();
    sqlx::query("INSERT INTO web_returns (id, number, sale_receipt, receive_at, status, payload) VALUES ($1, $2, $3, $4, 'open', $5)")
        .bind(&parcel.id)
        .bind(&parcel.number)
        .bind(&parcel.sale_receipt)
        .bind(&parcel.receive_at)
        .bind(serde_json::to_string(&parcel).unwrap())
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let before = get(&format!("{url}/v1/stock/GRO-BRD-0012")).await;
    let page = open_till(&browser, &url, T1).await;
    page.click(&dt("btn-orders")).await.unwrap();
    page.wait_visible(&dt("parcel-R-000009")).await.unwrap();
    let listed = page.text(&dt("parcels-list")).await.unwrap();
    assert!(
        listed.contains("vienna-01-t1-000003") && listed.contains("Bauernbrot"),
        "{listed}"
    );
    page.click(&dt("parcel-R-000009")).await.unwrap();
    page.wait_for(
        "the parcel received",
        "document.querySelector('[data-test=orders-result]').textContent.includes('R-000009')",
        WAIT,
    )
    .await
    .unwrap();
    page.wait_for(
        "the list emptied",
        "document.querySelector('[data-test=parcels-list]').hidden",
        WAIT,
    )
    .await
    .unwrap();
    let after = get(&format!("{url}/v1/stock/GRO-BRD-0012")).await;
    let on_hand =
        |v: &Value| domain::quantity::parse_signed_milli(v["on_hand"].as_str().unwrap()).unwrap();
    assert_eq!(on_hand(&after) - on_hand(&before), 2000, "{before} {after}");
    let kinds = journal_kinds(&url, T1).await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "ReturnReceived").count(),
        1,
        "{kinds:?}"
    );
    let all = get(&format!("{url}/v1/web-returns?show=all")).await;
    assert_eq!(all["returns"][0]["status"], "received", "{all}");
    page.assert_requests_follow(store::api::OPENAPI)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_for_a_customer_is_refused_without_hq_and_the_cart_stays() {
    let Some(browser) = Browser::launch_or_skip().await else {
        return;
    };
    let node = start_node(&[]).await;
    let url = node.process.url.clone();
    let page = open_till(&browser, &url, T1).await;
    page.scan("9003909062415").await.unwrap();
    wait_lines(&page, 1).await;
    page.click(&dt("btn-hold")).await.unwrap();
    page.wait_visible(&dt("hold-customer")).await.unwrap();
    assert!(
        page.text(&dt("hold-lines"))
            .await
            .unwrap()
            .contains("Bauernbrot"),
        "the hold names the cart's goods"
    );
    page.wait_visible(&dt("holds-none")).await.unwrap();
    // Without a customer: refused at the field, before HQ is asked.
    page.click(&dt("hold-ok")).await.unwrap();
    page.wait_for(
        "the customer asked for",
        "document.querySelector('[data-test=hold-error]').textContent.includes('Say who it is held for')",
        WAIT,
    )
    .await
    .unwrap();
    // A node without HQ keeps no holds: a hold is HQ's promise to the web shop.
    page.fill(&dt("hold-customer"), "Frau Berger")
        .await
        .unwrap();
    page.click(&dt("hold-ok")).await.unwrap();
    page.wait_for(
        "refused without HQ",
        "document.querySelector('[data-test=hold-error]').textContent.includes('without HQ')",
        WAIT,
    )
    .await
    .unwrap();
    page.click(&format!("{} [data-close]", dt("hold-dialog")))
        .await
        .unwrap();
    wait_lines(&page, 1).await;
    page.assert_requests_follow(store::api::OPENAPI)
        .await
        .unwrap();
}

/// An Austrian till commissioned for the RKSV (the command the README shows): from the shift
/// menu a cashier rings the basket as a training receipt — signed as training, nothing sold,
/// the basket cleared; a null receipt is refused to a cashier and made for a manager.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_austrian_till_makes_training_and_null_receipts_from_the_shift_menu() {
    let Some(browser) = Browser::launch_or_skip().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    provision_demo_store(&data, "vienna-01", &[T1])
        .await
        .unwrap();
    let at = |name: &str| data.join(name).display().to_string();
    let commissioned = std::process::Command::new(kassa())
        .args(["store", "--data", &at(""), "fiscal", "commission"])
        .args(["--terminal", T1, "--aes-key-file", &at("rksv.aes")])
        .args(["--software-key-not-a-legal-device", &at("rksv.pem")])
        .args(["--key-id", "U:ATU13572463-K1"])
        .output()
        .unwrap();
    assert!(
        commissioned.status.success(),
        "{}",
        String::from_utf8_lossy(&commissioned.stderr)
    );
    let process = spawn(&data, &[]).await;
    let page = open_till(&browser, &process.url, T1).await;
    let report_says = |text: &'static str| {
        format!("document.querySelector('[data-test=shift-report]').textContent.includes('{text}')")
    };

    scan_three_loaves(&page).await;
    page.click(&dt("btn-shift")).await.unwrap();
    page.wait_for(
        "the fiscal buttons",
        "!document.querySelector('[data-test=shift-fiscal]').hidden",
        WAIT,
    )
    .await
    .unwrap();
    page.click(&dt("fiscal-training")).await.unwrap();
    page.wait_for(
        "the training receipt",
        &report_says("nothing was sold"),
        WAIT,
    )
    .await
    .unwrap();
    let report = page.text(&dt("shift-report")).await.unwrap();
    assert!(
        report.contains("10,47") && report.contains("_VFJB_"),
        "{report}"
    );
    wait_lines(&page, 0).await;

    page.click(&dt("fiscal-null")).await.unwrap();
    page.wait_for(
        "the null receipt refused",
        "document.querySelector('[data-test=shift-dialog-error]').textContent !== ''",
        WAIT,
    )
    .await
    .unwrap();
    assert!(
        !page
            .text(&dt("shift-report"))
            .await
            .unwrap()
            .contains("Null receipt"),
    );
    page.click(&dt("shift-dialog-close")).await.unwrap();
    page.click(&dt("sign-out")).await.unwrap();
    page.wait_for(
        "signed out",
        "document.body.dataset.screen === 'signin'",
        WAIT,
    )
    .await
    .unwrap();
    sign_in(&page, "maria", "3333").await;
    page.click(&dt("btn-shift")).await.unwrap();
    page.click(&dt("fiscal-null")).await.unwrap();
    page.wait_for("the null receipt", &report_says("Null receipt"), WAIT)
        .await
        .unwrap();
    let report = page.text(&dt("shift-report")).await.unwrap();
    assert!(report.contains("_0,00_0,00_0,00_0,00_0,00_"), "{report}");
    page.screenshot("till-fiscal-null").await.unwrap();
    page.assert_requests_follow(store::api::OPENAPI)
        .await
        .unwrap();
    browser.close().await;
}
