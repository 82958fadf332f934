//! A whole chain as real processes on 127.0.0.1: HQ (`kassa hq … run`) and store nodes
//! (`kassa store … run`), set up only through the CLI as an operator would, each store talking
//! to HQ through its own [`FaultProxy`] so a test can break the link, and HQ or a store can be
//! killed with SIGKILL and started again.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::proxy::FaultProxy;
use crate::{Process, demo_seed_path};

/// Where HQ keeps its data.
#[derive(Debug, Clone)]
pub enum HqDatabase {
    /// The embedded SQLite database in this directory (`--data DIR`).
    Sqlite(PathBuf),
    /// A PostgreSQL database (`--database-url postgres://…`).
    Postgres(String),
}

impl HqDatabase {
    /// The `kassa hq` options naming the database.
    pub fn cli_args(&self) -> Vec<String> {
        match self {
            HqDatabase::Sqlite(dir) => vec!["--data".into(), dir.display().to_string()],
            HqDatabase::Postgres(url) => vec!["--database-url".into(), url.clone()],
        }
    }

    /// The database URL, as `kassa hq` derives it (for a test that reads HQ's tables).
    pub fn url(&self) -> String {
        match self {
            HqDatabase::Sqlite(dir) => {
                format!("sqlite://{}?mode=rwc", dir.join("hq.sqlite").display())
            }
            HqDatabase::Postgres(url) => url.clone(),
        }
    }

    /// `sqlite` or `postgres`, for messages.
    pub fn backend(&self) -> &'static str {
        match self {
            HqDatabase::Sqlite(_) => "sqlite",
            HqDatabase::Postgres(_) => "postgres",
        }
    }
}

/// A store of the chain and its terminals.
#[derive(Debug, Clone)]
pub struct StoreSpec {
    /// Store id (as in the reference data, e.g. `vienna-01`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Terminal ids.
    pub terminals: Vec<String>,
    /// `(terminal, other)`: register `terminal` at HQ with `other`'s public key, so HQ refuses
    /// its batches.
    pub hq_key_of: Vec<(String, String)>,
    /// More arguments of its `kassa store run`.
    pub run_args: Vec<String>,
}

impl StoreSpec {
    /// A store with terminals.
    pub fn new(id: &str, name: &str, terminals: &[&str]) -> Self {
        StoreSpec {
            id: id.into(),
            name: name.into(),
            terminals: terminals.iter().map(|t| (*t).to_owned()).collect(),
            hq_key_of: Vec::new(),
            run_args: Vec::new(),
        }
    }

    /// Adds arguments to the store's `kassa store run`.
    pub fn with_run_args(mut self, args: &[&str]) -> Self {
        self.run_args.extend(args.iter().map(|a| (*a).to_owned()));
        self
    }

    /// Registers `terminal` at HQ with the public key of `other` (a wrong key).
    pub fn with_hq_key_of(mut self, terminal: &str, other: &str) -> Self {
        self.hq_key_of.push((terminal.into(), other.into()));
        self
    }
}

/// What to set up.
#[derive(Debug, Clone)]
pub struct ChainSpec {
    /// The stores.
    pub stores: Vec<StoreSpec>,
    /// Whether HQ runs from the start (otherwise the stores begin offline).
    pub hq_up: bool,
    /// `--pull-every` of the stores, in seconds.
    pub pull_every_secs: u64,
}

/// A store node of the chain.
#[derive(Debug)]
pub struct StoreNode {
    /// Store id.
    pub id: String,
    /// Its data directory.
    pub data: PathBuf,
    /// Its terminals.
    pub terminals: Vec<String>,
    /// Terminal → public key (hex), as `kassa store provision` printed.
    pub public_keys: BTreeMap<String, String>,
    /// The credential HQ issued.
    pub token: String,
    /// The link to HQ.
    pub proxy: FaultProxy,
    run_args: Vec<String>,
    process: Option<Process>,
}

impl StoreNode {
    /// The node's base URL, while it runs.
    pub fn url(&self) -> Option<&str> {
        self.process.as_ref().map(|p| p.url.as_str())
    }
}

/// HQ of the chain.
#[derive(Debug)]
pub struct HqNode {
    /// Its database.
    pub database: HqDatabase,
    process: Option<Process>,
}

impl HqNode {
    /// HQ's base URL (direct, not through a proxy), while it runs.
    pub fn url(&self) -> Option<&str> {
        self.process.as_ref().map(|p| p.url.as_str())
    }
}

/// A running chain. Dropping it kills every process.
#[derive(Debug)]
pub struct Chain {
    kassa: PathBuf,
    /// HQ.
    pub hq: HqNode,
    /// The stores, in the order of the spec.
    pub stores: Vec<StoreNode>,
    pull_every_secs: u64,
}

/// Runs `kassa ARGS…` to completion and returns its standard output; fails with its standard
/// error when it fails.
pub async fn kassa_cli(kassa: &Path, args: &[String]) -> anyhow::Result<String> {
    let out = tokio::process::Command::new(kassa)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .with_context(|| format!("cannot run {}", kassa.display()))?;
    if !out.status.success() {
        bail!(
            "`kassa {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// An address nothing listens on (connections are refused), for a proxy whose HQ is not up:
/// a privileged port, which no test server can be given when it binds port 0 (a freed ephemeral
/// port could be, while other tests run).
pub async fn dead_addr() -> anyhow::Result<SocketAddr> {
    let addr: SocketAddr = "127.0.0.1:1".parse()?;
    anyhow::ensure!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "something listens on {addr}; the tests need it closed"
    );
    Ok(addr)
}

/// The socket address of a base URL `http(s)://IP:PORT` (as [`Process::url`] has it).
pub fn addr_of(url: &str) -> anyhow::Result<SocketAddr> {
    url.trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .with_context(|| format!("`{url}` is not http://IP:PORT"))
}

/// Sets up HQ (reference data published, stores and terminals registered) and the stores
/// (provisioned, seeded with the demo data) under `root`, all through the `kassa` CLI, then
/// starts HQ (if `spec.hq_up`) and every store node, each store's `--hq-url` pointing at its
/// own fault proxy in front of HQ.
pub async fn spawn_chain(
    kassa: &Path,
    root: &Path,
    database: HqDatabase,
    spec: ChainSpec,
) -> anyhow::Result<Chain> {
    let seed = demo_seed_path().display().to_string();
    // The chain's PIN pepper, shared by HQ and every store, as an installer would copy it.
    let pepper = root.join("pin.pepper");
    std::fs::write(
        &pepper,
        "6b617373612d636861696e2d746573742d7065707065722d3030303030303030",
    )?;
    let pepper = pepper.display().to_string();
    let hq = |args: &[&str]| {
        let mut all = vec!["hq".to_owned()];
        all.extend(database.cli_args());
        all.extend(["--pin-pepper-file".to_owned(), pepper.clone()]);
        all.extend(args.iter().map(|a| (*a).to_owned()));
        all
    };
    kassa_cli(kassa, &hq(&["publish", &seed])).await?;
    let placeholder = dead_addr().await?;
    let mut stores = Vec::new();
    for s in &spec.stores {
        let data = root.join(&s.id);
        let data_arg = data.display().to_string();
        let mut provision = vec![
            "store".to_owned(),
            "--data".into(),
            data_arg.clone(),
            "provision".into(),
            "--store".into(),
            s.id.clone(),
            "--pin-pepper-file".into(),
            pepper.clone(),
        ];
        for t in &s.terminals {
            provision.push("--terminal".into());
            provision.push(t.clone());
        }
        let printed = kassa_cli(kassa, &provision).await?;
        let mut public_keys = BTreeMap::new();
        for line in printed.lines() {
            if let Some((terminal, key)) = line.trim().split_once(' ') {
                public_keys.insert(terminal.to_owned(), key.trim().to_owned());
            }
        }
        for t in &s.terminals {
            if !public_keys.contains_key(t) {
                bail!("provision printed no key for {t}: {printed}");
            }
        }
        kassa_cli(
            kassa,
            &[
                "store".into(),
                "--data".into(),
                data_arg,
                "seed".into(),
                seed.clone(),
            ],
        )
        .await?;
        let printed = kassa_cli(
            kassa,
            &hq(&["store", "add", "--id", &s.id, "--name", &s.name]),
        )
        .await?;
        let token = printed
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .context("`kassa hq store add` printed no credential")?
            .to_owned();
        for t in &s.terminals {
            let key_of = s
                .hq_key_of
                .iter()
                .find(|(terminal, _)| terminal == t)
                .map_or(t, |(_, other)| other);
            let key = public_keys
                .get(key_of)
                .with_context(|| format!("no key for {key_of}"))?;
            kassa_cli(
                kassa,
                &hq(&[
                    "terminal",
                    "add",
                    "--store",
                    &s.id,
                    "--id",
                    t,
                    "--public-key",
                    key,
                ]),
            )
            .await?;
        }
        stores.push(StoreNode {
            id: s.id.clone(),
            data,
            terminals: s.terminals.clone(),
            public_keys,
            token,
            proxy: FaultProxy::start(placeholder).await?,
            run_args: s.run_args.clone(),
            process: None,
        });
    }
    let mut chain = Chain {
        kassa: kassa.to_path_buf(),
        hq: HqNode {
            database,
            process: None,
        },
        stores,
        pull_every_secs: spec.pull_every_secs.max(1),
    };
    if spec.hq_up {
        chain.start_hq().await?;
    }
    for i in 0..chain.stores.len() {
        chain.start_store(i).await?;
    }
    Ok(chain)
}

impl Chain {
    /// Starts another `kassa hq … run` process on HQ's database (on a new port), apart from
    /// the chain's own HQ and wired to no proxy: for tests of several HQ processes serving one
    /// database. Dropping the [`Process`] kills it.
    pub async fn spawn_hq_process(&self) -> anyhow::Result<Process> {
        let mut args = vec!["hq".to_owned()];
        args.extend(self.hq.database.cli_args());
        args.extend(["run".into(), "--listen".into(), "127.0.0.1:0".into()]);
        args.extend(["--api-token".into(), crate::HQ_READ_TOKEN.into()]);
        // HTTPS, as across a WAN: the stores trust the tests' CA alone.
        args.extend(crate::test_ca().hq_run_args());
        // Webhook retries in the tests' time, not a shop's.
        args.extend(["--webhook-retry-ms".into(), "200".into()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let process = Process::spawn(&self.kassa, &args).await?;
        crate::hq_at(&process.url);
        Ok(process)
    }

    /// Starts HQ (on a new port) and points every store's proxy at it.
    pub async fn start_hq(&mut self) -> anyhow::Result<()> {
        if self.hq.process.is_some() {
            return Ok(());
        }
        let process = self.spawn_hq_process().await?;
        let addr = addr_of(&process.url)?;
        for store in &self.stores {
            store.proxy.set_upstream(addr);
        }
        self.hq.process = Some(process);
        Ok(())
    }

    /// Kills HQ with SIGKILL (if it runs).
    pub async fn kill_hq(&mut self) -> anyhow::Result<()> {
        if let Some(process) = self.hq.process.take() {
            process.kill9().await?;
        }
        Ok(())
    }

    /// HQ's URL, while it runs.
    pub fn hq_url(&self) -> Option<&str> {
        self.hq.url()
    }

    /// Starts store `index` (on a new port), syncing through its proxy.
    pub async fn start_store(&mut self, index: usize) -> anyhow::Result<()> {
        let pull_every = self.pull_every_secs.to_string();
        let store = self.stores.get_mut(index).context("no such store")?;
        if store.process.is_some() {
            return Ok(());
        }
        let data = store.data.display().to_string();
        // TLS passes through the proxy: the store checks HQ's certificate for 127.0.0.1.
        let hq_url = format!("https://{}", store.proxy.addr());
        let ca = crate::test_ca().ca_file.display().to_string();
        let mut args = vec![
            "store",
            "--data",
            &data,
            "run",
            "--listen",
            "127.0.0.1:0",
            "--hq-url",
            &hq_url,
            "--hq-token",
            &store.token,
            "--hq-ca",
            &ca,
            "--pull-every",
            &pull_every,
        ];
        args.extend(store.run_args.iter().map(String::as_str));
        let process = Process::spawn(&self.kassa, &args).await?;
        let terminals: Vec<&str> = store.terminals.iter().map(String::as_str).collect();
        crate::open_shifts(&crate::client(), &process.url, &terminals).await?;
        store.process = Some(process);
        Ok(())
    }

    /// Kills store `index` with SIGKILL (if it runs).
    pub async fn kill_store(&mut self, index: usize) -> anyhow::Result<()> {
        let store = self.stores.get_mut(index).context("no such store")?;
        if let Some(process) = store.process.take() {
            process.kill9().await?;
        }
        Ok(())
    }

    /// The store with this id.
    pub fn store(&self, id: &str) -> Option<&StoreNode> {
        self.stores.iter().find(|s| s.id == id)
    }

    /// Each terminal's `last_seq` as its node reports it (every store must run).
    pub async fn node_heads(
        &self,
        http: &reqwest::Client,
    ) -> anyhow::Result<BTreeMap<String, u64>> {
        let mut heads = BTreeMap::new();
        for store in &self.stores {
            let url = store
                .url()
                .with_context(|| format!("store {} is not running", store.id))?;
            let status: Value = http
                .get(format!("{url}/v1/status"))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            for t in status["terminals"].as_array().context("no terminals")? {
                heads.insert(
                    t["id"].as_str().context("no id")?.to_owned(),
                    t["last_seq"].as_u64().context("no last_seq")?,
                );
            }
        }
        Ok(heads)
    }

    /// Each terminal's `acked_seq` at HQ (HQ must run).
    pub async fn hq_acked(&self, http: &reqwest::Client) -> anyhow::Result<BTreeMap<String, u64>> {
        let url = self.hq_url().context("HQ is not running")?;
        let answer: Value = http
            .get(format!("{url}/v1/terminals"))
            .bearer_auth(crate::HQ_READ_TOKEN)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let mut acked = BTreeMap::new();
        for t in answer["terminals"].as_array().context("no terminals")? {
            acked.insert(
                t["id"].as_str().context("no id")?.to_owned(),
                t["acked_seq"].as_u64().context("no acked_seq")?,
            );
        }
        Ok(acked)
    }

    /// Polls until HQ's `acked_seq` of every terminal (but those in `except`) equals the node's
    /// `last_seq`, for at most `timeout`; returns the heads.
    pub async fn wait_synced(
        &self,
        http: &reqwest::Client,
        timeout: Duration,
        except: &[&str],
    ) -> anyhow::Result<BTreeMap<String, u64>> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match (self.node_heads(http).await, self.hq_acked(http).await) {
                (Ok(heads), Ok(acked)) => {
                    let behind: Vec<String> = heads
                        .iter()
                        .filter(|(t, _)| !except.contains(&t.as_str()))
                        .filter(|(t, seq)| acked.get(*t) != Some(*seq))
                        .map(|(t, seq)| format!("{t}: node {seq}, HQ {:?}", acked.get(t)))
                        .collect();
                    if behind.is_empty() {
                        return Ok(heads);
                    }
                    behind.join("; ")
                }
                (Err(e), _) | (_, Err(e)) => e.to_string(),
            };
            if Instant::now() >= deadline {
                bail!("not in sync after {timeout:?}: {last}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}
