//! `kassa demo`: a whole chain on this machine — HQ on the embedded database and three stores
//! (two in Austria, one in Switzerland) with two tills each, provisioned, syncing over
//! 127.0.0.1; with `--simulate`, tills ring random sales so HQ's figures move.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use domain::{StoreId, TerminalId};
use serde_json::{Value, json};
use store::clock::SystemClock;
use tokio::sync::watch;

use crate::bench::DEMO_SEED;

/// Arguments of `kassa demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Keep the chain's data here (default: a temporary directory removed on exit).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Ring random sales on every till.
    #[arg(long)]
    simulate: bool,
    /// Sales per second per till when simulating.
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    seconds: Option<u64>,
    /// Seconds between progress lines (sales rung, events at HQ, events waiting to sync).
    #[arg(long, default_value_t = 5)]
    progress_every: u64,
}

/// The simulator's salt for till `n` in this run, part of every idempotency key it sends
/// (`demo-<till>-<salt>-<k>`): a re-run on the same `--dir` must ring new sales, not replay the
/// last run's keys, which the stores answer with the first response and nothing new. The run's
/// start instant in milliseconds (two runs never start in the same one) above eight bits of
/// till number.
fn run_salt(n: usize) -> u64 {
    static RUN: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let run = *RUN
        .get_or_init(|| u64::try_from(jiff::Timestamp::now().as_millisecond()).unwrap_or_default());
    (run << 8) | (n as u64 & 0xff)
}

/// Sales the simulator rang in this run (answered 2xx), for the progress line.
static RUNG: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

const STORES: [(&str, &str); 3] = [
    ("vienna-01", "Kassa Wien Mariahilf"),
    ("graz-01", "Kassa Graz Herrengasse"),
    ("zurich-01", "Kassa Zürich HB"),
];

/// Runs `kassa demo`.
pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(demo(args))
}

async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let temp;
    let root = match &args.dir {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::Builder::new().prefix("kassa-demo-").tempdir()?;
            temp.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&root)
        .with_context(|| format!("cannot create the demo directory {}", root.display()))?;
    let log_path = root.join("kassa-demo.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    crate::init_logging(Some(log));
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };

    let hq_url = hq::db::sqlite_url(&root.join("hq"))?;
    let seed: protocol::seed::SeedDto = serde_json::from_str(DEMO_SEED)?;
    // One PIN pepper for the chain: HQ hashes the staff PINs with it, every store checks them.
    let pepper = store::keys::pepper(&root.join("hq"), None)?;
    // HTTPS, as a chain runs across the WAN: the demo's own CA (made on the first run, like
    // `kassa hq tls init`), HQ's certificate under it, and every store enrolled with a code
    // that pins it.
    let tls_dir = root.join("hq").join("tls");
    let (ca, identity) = demo_tls(&tls_dir)?;
    let ca = Arc::new(ca);
    let hq_app = hq::App::build(&hq::Settings {
        tls: Some(identity.server_config(Some(&ca.cert_pem))?),
        ca_pem: Some(ca.cert_pem.clone()),
        client_ca: Some(ca.clone()),
        store_backups: None,
        database_url: hq_url,
        listen: "127.0.0.1:0".parse()?,
        api_token: None,
        close_metrics: false,
        pin_pepper: Some(pepper),
        secure_cookies: false,
        webhook_backoff: hq::webhooks::Backoff::default(),
    })
    .await?;
    // The demo's own writes (publish, stores, tills, people) go through HQ's pool, so that
    // HQ's write guard orders them with the writes HQ makes while it serves.
    let db = hq_app.state().db.clone();
    hq::refdata::publish(&db, &seed, &pepper).await?;
    demo_licence(&db, &root.join("vendor")).await?;
    let hq_addr = format!("https://{}", hq_app.local_addr().context("no HQ address")?);
    let hq_http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .tls_backend_preconfigured(tls::client_config(&ca.cert_pem)?)
        .build()?;
    tokio::spawn(hq_app.run(stopped(stop_rx.clone())));
    println!(
        "Kassa demo chain (data in {}, log in {})",
        root.display(),
        log_path.display()
    );

    let mut tills = Vec::new();
    let mut store_urls = Vec::new();
    for (id, name) in STORES {
        let store = StoreId::parse(id).map_err(anyhow::Error::msg)?;
        let terminals: Vec<TerminalId> = (1..=2)
            .map(|n| TerminalId::parse(&format!("{id}-t{n}")))
            .collect::<Result<_, _>>()
            .map_err(anyhow::Error::msg)?;
        let data = root.join(id);
        // Enrolled as an operator would: a one-time code from HQ, redeemed by the node, which
        // registers its tills' keys and keeps HQ's URL, its credential and the chain's CA. A
        // re-run with `--dir` finds the store registered and enrols it again.
        match hq::add_store(&db, &store, name).await {
            Err(hq::HqError::StoreExists(_)) => {}
            other => {
                other?;
            }
        }
        let code = hq::enrol::issue(
            &db,
            &store,
            &hq::enrol::Issue {
                url: hq_addr.clone(),
                ca_pem: Some(ca.cert_pem.clone()),
                hours: 1,
            },
            "demo",
        )
        .await?;
        store::enrol::enrol(
            &data,
            &code.encode(),
            &terminals,
            false,
            jiff::Timestamp::now().as_millisecond(),
        )
        .await?;
        // Enrolment gave the node a client certificate: HQ takes this store's credential only
        // with it (mutual TLS), as a chain that wants it would configure.
        hq::require_client_cert(&db, &store, true).await?;
        let jurisdiction = seed
            .stores
            .iter()
            .find(|s| s.id == id)
            .map(|s| s.jurisdiction.clone())
            .unwrap_or_default();
        if jurisdiction == "AT" {
            commission_rksv(&data, &terminals).await?;
        }
        let sync = store::enrol::link(&data, Duration::from_secs(2))?;
        let app = store::App::build(
            &store::Settings {
                data_dir: data,
                listen: "127.0.0.1:0".parse()?,
                sync,
            },
            Arc::new(SystemClock),
        )
        .await?;
        let url = format!("http://{}", app.local_addr().context("no store address")?);
        println!(
            "  {id:<9} {url}   (tills {})",
            terminals
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
        store_urls.push(url.clone());
        // Each till starts the day with a shift opened by the demo cashier.
        let currency = seed
            .stores
            .iter()
            .find(|s| s.id == id)
            .map(|s| s.currency.as_str())
            .context("store missing from the demo seed")?;
        let float = domain::Money::parse_major("150.00", domain::Currency::parse(currency)?)?;
        let anna = domain::StaffId::parse("anna").map_err(anyhow::Error::msg)?;
        for t in &terminals {
            store::shifts::ensure_open(&app.node(), t, &anna, float).await?;
            // The simulated till rings as an unattended device of that till.
            let token = crate::bench::device_token(&app.node(), t.as_str()).await?;
            tills.push((url.clone(), t.to_string(), token));
        }
        tokio::spawn(app.run(stopped(stop_rx.clone())));
    }
    // After the stores: the manager runs one of them.
    let read_key = demo_people(&db, &hq_addr, &tls_dir.join("ca.pem")).await?;
    println!(
        "Stores pull their catalog, prices and tax rules from HQ; sales reach HQ within seconds."
    );
    if args.simulate {
        let codes = sellable_codes(&seed);
        for (n, (url, terminal, token)) in tills.into_iter().enumerate() {
            tokio::spawn(simulate(
                (url, token),
                terminal,
                codes.clone(),
                args.rate,
                // Unique per run (see `run_id`): it is part of every idempotency key.
                run_salt(n),
                stop_rx.clone(),
            ));
        }
        println!("Simulating sales at {} per second per till.", args.rate);
    }
    println!("Ctrl-C stops the chain.");
    tokio::spawn(progress(
        hq_http.clone(),
        (hq_addr.clone(), read_key.clone()),
        store_urls,
        Duration::from_secs(args.progress_every.max(1)),
        stop_rx.clone(),
    ));
    match args.seconds {
        Some(s) => {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(s)) => {},
                () = crate::shutdown_signal() => {},
            }
        }
        None => crate::shutdown_signal().await,
    }
    let report = hq_http
        .get(format!("{hq_addr}/v1/reports/sales"))
        .bearer_auth(&read_key)
        .send()
        .await;
    if let Ok(report) = report {
        let report: Value = report.json().await.unwrap_or(Value::Null);
        println!("HQ sales by store and day at shutdown:");
        for day in report["days"].as_array().into_iter().flatten() {
            println!(
                "  {} {}  {} sales  {} {}",
                day["store"].as_str().unwrap_or("?"),
                day["day"].as_str().unwrap_or("?"),
                day["sales"],
                day["gross"].as_str().unwrap_or("?"),
                day["currency"].as_str().unwrap_or("?"),
            );
        }
    }
    let _ = stop_tx.send(true);
    // Give the servers a moment to finish in-flight requests.
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(())
}

/// Prints a line every `every`: sales the simulator rang in this run, events HQ holds, and the
/// events the stores hold that HQ has not acknowledged yet (with the age of the oldest).
async fn progress(
    http: reqwest::Client,
    (hq, read_key): (String, String),
    stores: Vec<String>,
    every: Duration,
    stop: watch::Receiver<bool>,
) {
    let get = |url: String| {
        let http = http.clone();
        // HQ's read API needs the key; a store node's status does not.
        let request = if url.starts_with(&hq) {
            http.get(url).bearer_auth(&read_key)
        } else {
            http.get(url)
        };
        async move {
            match request.send().await {
                Ok(r) => r.json::<Value>().await.unwrap_or(Value::Null),
                Err(_) => Value::Null,
            }
        }
    };
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    while !*stop.borrow() {
        tick.tick().await;
        let at_hq: i64 = get(format!("{hq}/v1/terminals")).await["terminals"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["acked_seq"].as_i64())
            .sum();
        let (mut waiting, mut oldest_ms) = (0_i64, 0_i64);
        for store in &stores {
            let status = get(format!("{store}/v1/status")).await;
            for t in status["sync"]["outbox"].as_array().into_iter().flatten() {
                waiting += t["unsynced"].as_i64().unwrap_or(0);
                oldest_ms = oldest_ms.max(t["oldest_unsynced_age_ms"].as_i64().unwrap_or(0));
            }
        }
        println!(
            "{}  sales rung {}  events at HQ {at_hq}  waiting to sync {waiting} (oldest {:.1} s)",
            jiff::Zoned::now().strftime("%H:%M:%S"),
            RUNG.load(std::sync::atomic::Ordering::Relaxed),
            oldest_ms as f64 / 1000.0,
        );
    }
}

/// Codes a till can sell in every store: store-sold variants priced in both chain books.
fn sellable_codes(seed: &protocol::seed::SeedDto) -> Vec<String> {
    let priced = |currency: &str, sku: &str| {
        seed.pricebooks
            .iter()
            .any(|b| b.currency == currency && b.entries.iter().any(|e| e.sku == sku))
    };
    seed.products
        .iter()
        .flat_map(|p| p.variants.iter())
        .filter(|v| {
            v.channels != "online"
                && v.unit == "each"
                && priced("EUR", &v.sku)
                && priced("CHF", &v.sku)
        })
        .map(|v| v.sku.clone())
        .collect()
}

async fn simulate(
    (url, token): (String, String),
    terminal: String,
    codes: Vec<String>,
    rate: f64,
    salt: u64,
    stop: watch::Receiver<bool>,
) {
    let http = reqwest::Client::new();
    let mut x = 0x9E37_79B9_7F4A_7C15_u64 ^ (salt + 1);
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let pause = Duration::from_secs_f64(1.0 / rate.max(0.01));
    let mut k = 0_u64;
    while !*stop.borrow() {
        tokio::time::sleep(pause).await;
        if codes.is_empty() {
            continue;
        }
        let lines: Vec<Value> = (0..(next() % 4 + 1))
            .map(|_| json!({"code": codes[(next() % codes.len() as u64) as usize], "quantity": (next() % 3 + 1).to_string()}))
            .collect();
        let body = json!({"terminal": terminal, "lines": lines, "tenders": [{"kind": "cash", "amount": "1000.00"}]});
        k += 1;
        let sent = http
            .post(format!("{url}/v1/sales"))
            .header("Idempotency-Key", format!("demo-{terminal}-{salt}-{k}"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await;
        if sent.is_ok_and(|r| r.status().is_success()) {
            RUNG.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// The people and the key the demo's HQ is used with: an admin, the manager of the first store
/// (each with a fresh password) and a read-only API key; prints how to use them and answers the
/// key's secret. A person who exists from an earlier run in the same directory keeps the
/// password printed then.
async fn demo_people(
    db: &hq::db::Db,
    hq_addr: &str,
    ca_file: &std::path::Path,
) -> anyhow::Result<String> {
    use hq::identity::{Actor, IdentityError, NewUser, Role, Scope};
    let now = jiff::Timestamp::now().as_millisecond();
    let store = STORES.first().map_or("vienna-01", |(id, _)| *id);
    let mut signins = Vec::new();
    for (name, role, stores) in [
        ("admin", Role::Admin, vec![]),
        ("manager", Role::StoreManager, vec![store.to_owned()]),
    ] {
        let mut secret = [0_u8; 9];
        getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        let password = hex::encode(secret);
        let user = NewUser {
            name: name.to_owned(),
            display_name: name.to_owned(),
            role,
            stores,
            password: password.clone(),
        };
        let shown = match hq::identity::add_user(db, &user, &Actor::Cli, now).await {
            Ok(_) => password,
            Err(IdentityError::UserExists(_)) => "(as printed by the first run here)".to_owned(),
            Err(e) => return Err(e.into()),
        };
        signins.push(format!("{name} / {shown} ({role})"));
    }
    let key = hq::identity::create_api_key(
        db,
        &Actor::Cli,
        "kassa demo",
        &[
            Scope::CatalogRead,
            Scope::StockRead,
            Scope::ReportsRead,
            Scope::FleetRead,
            Scope::AuditRead,
        ],
        now,
    )
    .await?;
    println!("  HQ        {hq_addr}   (/metrics is open; the read API needs a sign-in or a key)");
    println!(
        "            back office: {hq_addr}/ — sign in as {}",
        signins.join(", ")
    );
    println!(
        "            HTTPS under the demo chain's own CA, {}: a browser warns until it trusts it",
        ca_file.display()
    );
    println!(
        "            read-only key: curl --cacert {} -H 'Authorization: Bearer {}' {hq_addr}/v1/reports/sales",
        ca_file.display(),
        key.secret
    );
    Ok(key.secret)
}

/// The demo chain's CA and HQ's certificate in `dir`, the files `kassa hq tls init` writes (so
/// `kassa hq --data DIR/hq run` serves the same chain afterwards): the CA made on the first run
/// and kept, so the stores enrolled then still trust it; HQ's certificate issued on every run.
/// The demo chain's licence, issued as a vendor would (`kassa licence issue`) with a vendor key
/// the demo makes on its first run, and installed at HQ: a year, room for two more stores.
async fn demo_licence(db: &hq::db::Db, dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let key_file = dir.join("licence.key");
    let key = if key_file.exists() {
        crate::licence_cmd::read_secret_key(&key_file)?
    } else {
        crate::licence_cmd::keygen(&key_file)?
    };
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let stores = u32::try_from(STORES.len())?;
    let terms = protocol::licence::Terms {
        licence: "DEMO-1".into(),
        customer: "kassa-demo".into(),
        customer_name: "Kassa demo chain".into(),
        stores: stores + 2,
        terminals: 2 * (stores + 2),
        issued: today.to_string(),
        expires: (today + jiff::Span::new().days(365)).to_string(),
        grace_days: protocol::licence::DEFAULT_GRACE_DAYS,
        features: vec!["fiscal-at".into(), "web-shop".into()],
    };
    let file = terms.sign(&key)?;
    hq::licence::install(db, &file.to_text(), &[key.verifying_key()], "demo").await?;
    Ok(())
}

fn demo_tls(dir: &std::path::Path) -> anyhow::Result<(tls::Authority, tls::Identity)> {
    let (cert, key) = (dir.join("ca.pem"), dir.join("ca.key"));
    let ca = if cert.exists() {
        tls::Authority::load(&cert, &key)?
    } else {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let ca = tls::Authority::create("Kassa demo")?;
        ca.save(&cert, &key)?;
        ca
    };
    let identity = ca.issue_server(&["127.0.0.1".into(), "localhost".into()])?;
    identity.save(&dir.join("hq.pem"), &dir.join("hq.key"))?;
    Ok((ca, identity))
}

/// Commissions the Austrian tills for the RKSV with a software key each — **not a legal
/// signature device**, a demonstration's — so that their receipts carry signed codes; a till
/// commissioned by an earlier run stays as it is.
async fn commission_rksv(data: &std::path::Path, terminals: &[TerminalId]) -> anyhow::Result<()> {
    let pools = store::db::open(data).await?;
    for terminal in terminals {
        let key_file = data.join(format!("rksv-{terminal}.pem"));
        let key_id = format!("U:ATU13572463-{terminal}");
        store::fiscal::ensure_software_key(&key_file, &key_id).map_err(anyhow::Error::msg)?;
        let aes_key = store::fiscal::ensure_aes_key(&data.join(format!("rksv-{terminal}.aes")))
            .map_err(anyhow::Error::msg)?;
        let commission = store::fiscal::Commission {
            register_id: terminal.to_string(),
            aes_key,
            device: store::fiscal::DeviceConfig::SoftwareKeyNotALegalDevice {
                key_file: key_file.clone(),
                key_id,
                certificate: None,
            },
            time_zone: "Europe/Vienna".into(),
        };
        match store::fiscal::commission(&pools.writer, data, terminal, &commission).await {
            Err(e) if !e.contains("commissioned already") => anyhow::bail!("{e}"),
            _ => {}
        }
    }
    pools.writer.close().await;
    pools.reader.close().await;
    Ok(())
}
