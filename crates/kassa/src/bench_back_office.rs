//! The back office's benchmarks. `kassa bench search`: catalog search at HQ over a large
//! catalog (below). `kassa bench prices`: how long a price changed at HQ takes to reach a till. HQ (SQLite) and a
//! store node run with real HTTP on 127.0.0.1 and the store's default pull interval; prices are
//! changed through HQ's write API with an API key, and the node's item lookup (what the till
//! asks when an item is scanned) is watched for the new price. Beside it, the raw limit
//! measured in the same run: one item lookup's round trip.

use std::time::{Duration, Instant};

use anyhow::Context;
use domain::StoreId;
use serde_json::{Value, json};

use crate::bench::DEMO_SEED;
use crate::bench_sync::{BENCH_PEPPER, start_node};

/// The variant whose price changes, and the code a till scans for it.
const SKU: &str = "GRO-BRD-0012";
const CODE: &str = "9003909062415";

/// The price the node's item lookup answers for [`CODE`].
async fn till_price(http: &reqwest::Client, node: &str) -> anyhow::Result<Option<String>> {
    let item: Value = http
        .get(format!("{node}/v1/items/{CODE}"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(item["price"].as_str().map(str::to_owned))
}

async fn change(
    http: &reqwest::Client,
    hq: &str,
    key: &str,
    price: &str,
    effective: Option<String>,
) -> anyhow::Result<()> {
    let response = http
        .post(format!("{hq}/v1/price-changes"))
        .bearer_auth(key)
        .json(&json!({"sku": SKU, "price": price, "currency": "EUR", "effective": effective}))
        .send()
        .await?;
    anyhow::ensure!(
        response.status().as_u16() == 201,
        "price change refused: {}",
        response.text().await?
    );
    Ok(())
}

/// Waits until the till's price is `price`; the instant it was first seen.
async fn until_price(http: &reqwest::Client, node: &str, price: &str) -> anyhow::Result<Instant> {
    let asked = Instant::now();
    loop {
        if till_price(http, node).await?.as_deref() == Some(price) {
            return Ok(Instant::now());
        }
        anyhow::ensure!(
            asked.elapsed() < Duration::from_secs(60),
            "the till did not show {price} within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Serves HQ over `db` (at `url`) on 127.0.0.1 with an API key holding `scope`: its base URL
/// and the key's secret.
async fn serve_hq(
    db: &hq::db::Db,
    url: String,
    name: &str,
    scope: hq::identity::Scope,
) -> anyhow::Result<(String, String)> {
    let now = jiff::Timestamp::now().as_millisecond();
    let key = hq::identity::create_api_key(db, &hq::identity::Actor::Cli, name, &[scope], now)
        .await?
        .secret;
    let app = hq::App::build(&hq::Settings {
        tls: None,
        ca_pem: None,
        client_ca: None,
        store_backups: None,
        database_url: url,
        listen: "127.0.0.1:0".parse()?,
        api_token: None,
        close_metrics: false,
        pin_pepper: None,
        secure_cookies: false,
        webhook_backoff: hq::webhooks::Backoff::default(),
    })
    .await?;
    let hq_url = format!("http://{}", app.local_addr().context("no address")?);
    tokio::spawn(app.run(std::future::pending()));
    Ok((hq_url, key))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs the benchmark: `changes` immediate changes one after another, then `scheduled` changes
/// each a second and a half ahead.
pub async fn bench_prices(changes: usize, scheduled: usize) -> anyhow::Result<()> {
    let temp = tempfile::tempdir()?;
    let dir = temp.path();
    let url = hq::db::sqlite_url(&dir.join("hq"))?;
    let db = hq::db::open(&url).await?;
    let seed: protocol::seed::SeedDto = serde_json::from_str(DEMO_SEED)?;
    hq::refdata::publish(&db, &seed, BENCH_PEPPER).await?;
    let store = StoreId::parse("vienna-01").map_err(anyhow::Error::msg)?;
    let token = hq::add_store(&db, &store, "bench").await?;
    let (hq_url, key) = serve_hq(
        &db,
        url,
        "price benchmark",
        hq::identity::Scope::CatalogWrite,
    )
    .await?;
    let pull_every = Duration::from_secs(crate::store_cmd::DEFAULT_PULL_EVERY_S);
    let node = start_node(
        &dir.join("store"),
        Some(store::sync::SyncSettings {
            hq_url: hq_url.clone(),
            token: token.into(),
            pull_every,
            hq_ca: None,
            hq_client_cert: None,
        }),
        1,
    )
    .await?;
    let http = reqwest::Client::new();
    // The node follows HQ's change log once it has taken HQ's snapshot.
    let started = Instant::now();
    while crate::bench_sync::followed_version(&node).await? == 0 {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(30),
            "the node did not follow HQ within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut floor = Vec::new();
    for _ in 0..200 {
        let asked = Instant::now();
        till_price(&http, &node.url).await?;
        floor.push(asked.elapsed());
    }
    floor.sort();

    let mut now_samples = Vec::with_capacity(changes);
    for k in 0..changes {
        let price = format!("{}.{:02}", 1 + k / 100, k % 100);
        change(&http, &hq_url, &key, &price, None).await?;
        let committed = Instant::now();
        let seen = until_price(&http, &node.url, &price).await?;
        now_samples.push(seen - committed);
    }
    now_samples.sort();

    let mut late = Vec::with_capacity(scheduled);
    for k in 0..scheduled {
        let before = till_price(&http, &node.url).await?.unwrap_or_default();
        let price = format!("9.{k:02}");
        // HQ keeps instants to the millisecond: so does the instant compared with.
        let effective = jiff::Timestamp::from_millisecond(
            (jiff::Timestamp::now() + jiff::SignedDuration::from_millis(1500)).as_millisecond(),
        )?;
        change(&http, &hq_url, &key, &price, Some(effective.to_string())).await?;
        // Until the instant the till keeps the price before; from it on, the new one.
        loop {
            let shown = till_price(&http, &node.url).await?.unwrap_or_default();
            let at = jiff::Timestamp::now();
            if shown == price {
                anyhow::ensure!(at >= effective, "{price} was shown before its instant");
                let after = at.duration_since(effective);
                late.push(Duration::try_from(after).unwrap_or_default());
                break;
            }
            anyhow::ensure!(shown == before, "the till showed {shown} before {price}");
            anyhow::ensure!(
                at.duration_since(effective).as_secs() < 60,
                "{price} not shown within 60 s of its instant"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    late.sort();

    let p = crate::bench::percentile;
    println!(
        "## Price change at HQ → price on a till (HQ on SQLite, one store, pull interval {} s, HTTP on 127.0.0.1)",
        pull_every.as_secs()
    );
    println!(
        "raw limit: one item lookup at the store node, p50 {:.1} ms, p95 {:.1} ms (200 lookups)",
        ms(p(&floor, 50)),
        ms(p(&floor, 95))
    );
    println!(
        "effective now: committed (HQ's 201) → the till's lookup answers the new price: p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms ({changes} changes, one at a time)",
        ms(p(&now_samples, 50)),
        ms(p(&now_samples, 95)),
        ms(now_samples.last().copied().unwrap_or_default())
    );
    println!(
        "scheduled 1.5 s ahead: the old price until the instant, the new one after it by p50 {:.1} ms, p95 {:.1} ms ({scheduled} changes)",
        ms(p(&late, 50)),
        ms(p(&late, 95))
    );
    Ok(())
}

/// `kassa bench search`: catalog search over HTTP at HQ over `variants` variants (HQ on
/// SQLite, or on the PostgreSQL server `postgres` names), by kind of query, beside the raw limit measured in the same run: the same
/// database scanning every variant's folded text once (what a search that matches nothing
/// costs at least).
pub async fn bench_search(variants: usize, postgres: Option<&str>) -> anyhow::Result<()> {
    let temp = tempfile::Builder::new()
        .prefix("kassa-bench-search-")
        .tempdir_in(".")?;
    let url = match postgres {
        Some(server) => crate::bench_sync::fresh_postgres(server).await?,
        None => hq::db::sqlite_url(&temp.path().join("hq"))?,
    };
    let backend = if postgres.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let db = hq::db::open(&url).await?;
    let seed = crate::bench_sync::large_seed(variants)?;
    let started = Instant::now();
    hq::refdata::publish(&db, &seed, BENCH_PEPPER).await?;
    let publish = started.elapsed();
    let started = Instant::now();
    let indexed = hq::search::refresh(&db).await?;
    let index = started.elapsed();
    let (hq_url, key) = serve_hq(
        &db,
        url,
        "search benchmark",
        hq::identity::Scope::CatalogRead,
    )
    .await?;
    let http = reqwest::Client::new();
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        usize::try_from(rng % variants as u64).unwrap_or(0)
    };
    let gtin = |i: usize| -> anyhow::Result<String> {
        let payload = format!("20{i:010}");
        let check = domain::barcode::gtin_check_digit(&payload).context("check digit")?;
        Ok(format!("{payload}{check}"))
    };
    let mut kinds: Vec<(&str, Vec<String>)> = vec![
        ("name (a word of one product)", Vec::new()),
        ("SKU prefix", Vec::new()),
        ("barcode", Vec::new()),
        ("common word (first page)", Vec::new()),
        ("no match (whole catalog read)", Vec::new()),
    ];
    for k in 0..100 {
        kinds[0].1.push(format!("Artikel {} 500", next()));
        kinds[1].1.push(format!("bulk-{:05}", next() / 100));
        kinds[2].1.push(gtin(next())?);
        kinds[3]
            .1
            .push(["artikel", "500 g", "bulk"][k % 3].to_owned());
        kinds[4].1.push(format!("zz{k}qq"));
    }
    // Warm-up: the first queries read the tables from disk.
    for q in kinds.iter().flat_map(|(_, qs)| qs.iter().take(5)) {
        search(&http, &hq_url, &key, q).await?;
    }
    println!(
        "## Catalog search at HQ ({variants} variants, HQ on {backend}, HTTP on 127.0.0.1, 50 per page)"
    );
    println!(
        "publish {:.1} s; index built in {:.1} s ({indexed} variants)",
        publish.as_secs_f64(),
        index.as_secs_f64()
    );
    let mut all = Vec::new();
    for (kind, queries) in &kinds {
        let mut samples = Vec::with_capacity(queries.len());
        for q in queries {
            let asked = Instant::now();
            let found = search(&http, &hq_url, &key, q).await?;
            samples.push(asked.elapsed());
            anyhow::ensure!(
                !kind.starts_with("no match") || found == 0,
                "`{q}` found {found}"
            );
            anyhow::ensure!(
                kind.starts_with("no match") || found > 0,
                "`{q}` found nothing"
            );
        }
        samples.sort();
        let p = crate::bench::percentile;
        println!(
            "{kind}: p50 {:.1} ms, p95 {:.1} ms",
            ms(p(&samples, 50)),
            ms(p(&samples, 95))
        );
        all.extend(samples);
    }
    all.sort();
    let p = crate::bench::percentile;
    println!(
        "all {} searches: p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        all.len(),
        ms(p(&all, 50)),
        ms(p(&all, 95)),
        ms(all.last().copied().unwrap_or_default())
    );
    let mut raw = Vec::new();
    for k in 0..20 {
        let asked = Instant::now();
        let _: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM catalog_search WHERE folded LIKE $1")
            .bind(format!("%zz{k}qq%"))
            .fetch_one(&db.pool)
            .await?;
        raw.push(asked.elapsed());
    }
    raw.sort();
    println!(
        "raw limit: one scan of every variant's folded text in the same database, p50 {:.1} ms",
        ms(p(&raw, 50))
    );
    Ok(())
}

/// Searches HQ's catalog; how many variants the first page holds.
async fn search(http: &reqwest::Client, hq: &str, key: &str, q: &str) -> anyhow::Result<usize> {
    let url = reqwest::Url::parse_with_params(&format!("{hq}/v1/variants"), &[("q", q)])?;
    let page: Value = http
        .get(url)
        .bearer_auth(key)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(page["variants"].as_array().map_or(0, Vec::len))
}

/// `kassa bench pages`: the dashboard and a 90-day sales report of a chain of `stores` stores
/// with `tills` tills each, served by `kassa hq run` (this binary, a process of its own, as a
/// user runs it) on SQLite, fetched over HTTP with an admin's session; HQ's peak memory read
/// from the kernel. The chain's days are written into HQ's daily figures as ingest keeps them
/// (`sales_daily`, three tax rates a day): the pages read those figures, never the events, and
/// ingest has its own benchmark (`kassa bench sync`). Beside it, the raw limits measured in the
/// same run: a static asset's round trip through the same server and the report's query alone.
pub async fn bench_pages(
    stores: usize,
    tills: usize,
    days: usize,
    rounds: usize,
) -> anyhow::Result<()> {
    let temp = tempfile::tempdir()?;
    let data = temp.path().join("hq");
    std::fs::create_dir_all(&data)?;
    let url = hq::db::sqlite_url(&data)?;
    let db = hq::db::open(&url).await?;
    let today = jiff::Zoned::now()
        .with_time_zone(jiff::tz::TimeZone::get("Europe/Vienna")?)
        .date();
    let first = today
        .checked_sub(jiff::Span::new().days(i64::try_from(days.max(1) - 1)?))
        .context("range")?;
    eprintln!(
        "writing a chain of {stores} stores × {tills} tills, {days} days ({first} to {today}) …"
    );
    let mut seed: protocol::seed::SeedDto = serde_json::from_str(DEMO_SEED)?;
    let template = seed
        .stores
        .first()
        .cloned()
        .context("the demo has stores")?;
    seed.stores = (0..stores)
        .map(|i| protocol::seed::StoreDto {
            id: format!("store-{i:03}"),
            name: format!("Kassa Filiale {i:03}"),
            ..template.clone()
        })
        .collect();
    hq::refdata::publish(&db, &seed, BENCH_PEPPER).await?;
    let now = jiff::Timestamp::now().as_millisecond();
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for s in &seed.stores {
        let store = StoreId::parse(&s.id).map_err(anyhow::Error::msg)?;
        hq::add_store(&db, &store, &s.name).await?;
        for t in 1..=tills {
            let key = ed25519_dalek::SigningKey::from_bytes(
                &next().to_le_bytes().repeat(4)[..32].try_into()?,
            );
            let terminal =
                domain::TerminalId::parse(&format!("{}-t{t}", s.id)).map_err(anyhow::Error::msg)?;
            hq::add_terminal(
                &db,
                &store,
                &terminal,
                &hex::encode(key.verifying_key().as_bytes()),
            )
            .await?;
            // Most tills were heard from a moment ago, one in ten hours ago.
            let last = if next() % 10 == 0 {
                now - 5 * 3_600_000
            } else {
                now - 30_000
            };
            sqlx::query("UPDATE terminals SET last_contact_ms = $1 WHERE id = $2")
                .bind(last)
                .bind(terminal.as_str())
                .execute(&db.pool)
                .await?;
        }
        let mut tx = db.pool.begin().await?;
        for day in first.series(jiff::Span::new().days(1)).take(days) {
            let sales = i64::try_from(tills)? * (150 + (next() % 100) as i64);
            let gross = sales * (1_500 + (next() % 1_000) as i64);
            let tax = gross / 9;
            let expected = gross / 3;
            sqlx::query(
                "INSERT INTO sales_daily (store, day, currency, sales, voids, returns, gross_minor, tax_minor, refunds_minor, cash_minor, shifts_closed, cash_expected_minor, cash_counted_minor, voided_minor, goods_net_minor, rounding_minor)
                 VALUES ($1, $2, 'EUR', $3, $4, $5, $6, $7, $8, $9, $10, $9, $11, $12, $13, 0)",
            )
            .bind(&s.id)
            .bind(day.to_string())
            .bind(sales)
            .bind(sales / 50)
            .bind(sales / 40)
            .bind(gross)
            .bind(tax)
            .bind(gross / 60)
            .bind(expected)
            .bind(i64::try_from(tills)?)
            .bind(expected - (next() % 500) as i64)
            .bind(gross / 70)
            .bind(gross - tax)
            .execute(&mut *tx)
            .await?;
            for (code, rate, share) in [
                ("standard", "20", 5),
                ("reduced", "10", 3),
                ("zero", "0", 1),
            ] {
                let base = gross * share / 9;
                sqlx::query(
                    "INSERT INTO sales_daily_taxes (store, day, code, rate, base_minor, tax_minor) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&s.id)
                .bind(day.to_string())
                .bind(code)
                .bind(rate)
                .bind(base)
                .bind(base * rate.parse::<i64>()? / 100)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
    }
    let password = "benchmark password 1";
    hq::identity::add_user(
        &db,
        &hq::identity::NewUser {
            name: "bench".into(),
            display_name: "Benchmark".into(),
            role: hq::identity::Role::Admin,
            stores: Vec::new(),
            password: password.into(),
        },
        &hq::identity::Actor::Cli,
        now,
    )
    .await?;
    // The report's query alone, in this process, against the same file: the floor under the page.
    let range = hq::reports::Range {
        store: String::new(),
        from: first.to_string(),
        to: today.to_string(),
    };
    let mut query = Vec::with_capacity(rounds);
    let mut rows = 0;
    for _ in 0..rounds {
        let t = Instant::now();
        rows = hq::reports::sales_days(&db, &range).await?.len();
        query.push(t.elapsed());
    }
    db.pool.close().await;

    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .args(["hq", "--data"])
        .arg(&data)
        .args(["run", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().context("HQ has no process id")?;
    let stdout = child.stdout.take().context("HQ's output")?;
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let hq = loop {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .context("HQ did not say where it listens")??
            .context("HQ stopped before listening")?;
        if let Some(url) = line.strip_prefix("kassa hq listening on ") {
            break url.trim().to_owned();
        }
    };
    let http = reqwest::Client::new();
    let signed_in = http
        .post(format!("{hq}/v1/session"))
        .json(&json!({"name": "bench", "password": password}))
        .send()
        .await?;
    anyhow::ensure!(
        signed_in.status().is_success(),
        "sign-in refused: {}",
        signed_in.text().await?
    );
    // The session cookie, sent back as a browser would.
    let cookie = signed_in
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next())
        .collect::<Vec<_>>()
        .join("; ");
    let report = format!("{hq}/reports?from={first}&to={today}");
    let dashboard = format!("{hq}/dashboard");
    let asset = format!("{hq}/ui/hq.css");
    let mut timings: [(&str, &str, Vec<Duration>); 3] = [
        ("dashboard", &dashboard, Vec::new()),
        ("sales report", &report, Vec::new()),
        ("static asset (raw)", &asset, Vec::new()),
    ];
    for round in 0..=rounds {
        for (_, target, times) in &mut timings {
            let t = Instant::now();
            let response = http
                .get(*target)
                .header(reqwest::header::COOKIE, &cookie)
                .send()
                .await?;
            anyhow::ensure!(
                response.status().is_success(),
                "{target}: {}",
                response.status()
            );
            let body = response.bytes().await?;
            let took = t.elapsed();
            anyhow::ensure!(!body.is_empty(), "{target} answered nothing");
            // The first round warms the caches and is not counted.
            if round > 0 {
                times.push(took);
            }
        }
    }
    let peak = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        });
    child.kill().await.ok();

    println!(
        "back-office pages: {stores} stores × {tills} tills, {days} days ({rows} store-days), {rounds} fetches each, kassa hq run on SQLite"
    );
    for (what, _, times) in &mut timings {
        times.sort();
        println!(
            "  {what:<20} p50 {:>8.1} ms   p95 {:>8.1} ms   max {:>8.1} ms",
            ms(crate::bench::percentile(times, 50)),
            ms(crate::bench::percentile(times, 95)),
            ms(*times.last().unwrap_or(&Duration::ZERO)),
        );
    }
    query.sort();
    println!(
        "  {:<20} p50 {:>8.1} ms   p95 {:>8.1} ms   (raw: the report's query in-process)",
        "report query",
        ms(crate::bench::percentile(&query, 50)),
        ms(crate::bench::percentile(&query, 95)),
    );
    match peak {
        Some(kb) => println!("  HQ's peak memory (VmHWM): {:.1} MB", kb as f64 / 1024.0),
        None => println!("  HQ's peak memory: not readable on this system"),
    }
    Ok(())
}
