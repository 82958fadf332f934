//! Harnesses for Kassa's integration tests: provision and seed a store node on disk, run a real
//! `kassa` process on 127.0.0.1 port 0, kill it with SIGKILL, and talk to it over HTTP.

pub mod browser;
pub mod chain;
pub mod proxy;
pub mod skip;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use domain::{StoreId, TerminalId};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The demo reference data shipped in the repository.
pub fn demo_seed_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/demo/seed.json")
}

/// Reads the demo reference data.
pub fn demo_seed() -> anyhow::Result<protocol::seed::SeedDto> {
    let text = std::fs::read_to_string(demo_seed_path())?;
    Ok(serde_json::from_str(&text)?)
}

/// Provisions `store` with `terminals` in `data_dir` and loads the demo reference data.
pub async fn provision_demo_store(
    data_dir: &Path,
    store: &str,
    terminals: &[&str],
) -> anyhow::Result<()> {
    let store = StoreId::parse(store)?;
    let terminals = terminals
        .iter()
        .map(|t| TerminalId::parse(t))
        .collect::<Result<Vec<_>, _>>()?;
    store::provision(data_dir, &store, &terminals).await?;
    store::seed(data_dir, &demo_seed()?).await?;
    Ok(())
}

/// A running `kassa` process and the base URL it announced.
#[derive(Debug)]
pub struct Process {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl Process {
    /// Starts `kassa ARGS…` and waits until it prints `listening on http://…`.
    pub async fn spawn(binary: &Path, args: &[&str]) -> anyhow::Result<Process> {
        let mut child = Command::new(binary)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let url = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(at) = line.find("listening on ") {
                    return Ok::<_, anyhow::Error>(
                        line[at + "listening on ".len()..].trim().to_owned(),
                    );
                }
            }
            bail!("process exited before it listened")
        })
        .await
        .context("process did not start listening within 30 s")??;
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Process { child, url })
    }

    /// The process id, while the process runs (for reading `/proc/PID/status`).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Kills the process with SIGKILL, as a power cut or the OOM killer would, and reaps it.
    pub async fn kill9(mut self) -> anyhow::Result<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }
}

/// The read-API token the tests' HQ processes run with (`kassa hq run --api-token`): HQ's read
/// API answers nothing without a session, a key or this token.
pub const HQ_READ_TOKEN: &str = "kassa-test-read-token";

/// An HTTP client with short timeouts, for tests; over HTTPS it trusts the tests' CA
/// ([`test_ca`]) alone, as a store node trusts its chain's.
pub fn client() -> reqwest::Client {
    with_test_ca(reqwest::Client::builder())
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(16)
        .build()
        .unwrap_or_default()
}

/// `builder` trusting the tests' CA alone for HTTPS.
pub fn with_test_ca(builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
    match tls::client_config(&test_ca().ca_pem) {
        Ok(config) => builder.tls_backend_preconfigured(config),
        Err(_) => builder,
    }
}

/// The chain CA of the tests, and HQ's certificate under it for 127.0.0.1 and `localhost`, in
/// files (made once per test process): what `kassa hq run --tls-cert/--tls-key` serves and
/// `kassa store run --hq-ca` trusts.
#[derive(Debug)]
pub struct TestCa {
    /// The CA (PEM).
    pub ca_pem: String,
    /// The CA's file.
    pub ca_file: PathBuf,
    /// HQ's certificate chain.
    pub cert_file: PathBuf,
    /// HQ's key.
    pub key_file: PathBuf,
}

impl TestCa {
    /// `kassa hq run`'s options that serve HTTPS with the tests' certificate.
    pub fn hq_run_args(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            self.cert_file.display().to_string(),
            "--tls-key".into(),
            self.key_file.display().to_string(),
        ]
    }
}

/// The tests' CA (see [`TestCa`]).
pub fn test_ca() -> &'static TestCa {
    static CA: std::sync::OnceLock<TestCa> = std::sync::OnceLock::new();
    CA.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("kassa-test-ca-{}", std::process::id()));
        let made = (|| -> anyhow::Result<TestCa> {
            std::fs::create_dir_all(&dir)?;
            let ca = tls::Authority::create("Kassa tests")?;
            let hq = ca.issue_server(&["127.0.0.1".into(), "localhost".into()])?;
            let ca_file = dir.join("ca.pem");
            std::fs::write(&ca_file, &ca.cert_pem)?;
            let (cert_file, key_file) = (dir.join("hq.pem"), dir.join("hq.key"));
            hq.save(&cert_file, &key_file)?;
            Ok(TestCa {
                ca_pem: ca.cert_pem.clone(),
                ca_file,
                cert_file,
                key_file,
            })
        })();
        made.unwrap_or_else(|e| panic!("cannot make the tests' CA in {}: {e}", dir.display()))
    })
}

/// The sessions `open_shifts` signed in, by node URL and terminal: every write to a store node
/// needs the session of a member signed in at its till.
static SESSIONS: std::sync::Mutex<BTreeMap<(String, String), String>> =
    std::sync::Mutex::new(BTreeMap::new());

/// The session `open_shifts` signed in at `terminal` (at any till when `None`) of the node
/// `url` belongs to.
pub fn session_at(url: &str, terminal: Option<&str>) -> Option<String> {
    let of_node = |node: &str| {
        url.strip_prefix(node)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    SESSIONS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .find(|((node, t), _)| of_node(node) && terminal.is_none_or(|terminal| t == terminal))
        .map(|(_, session)| session.clone())
}

/// The session `open_shifts` signed in at `terminal` of the node `url` belongs to.
pub fn session(url: &str, terminal: &str) -> Option<String> {
    session_at(url, Some(terminal))
}

/// The URLs of the HQ processes the chains of this test process run (each with
/// [`HQ_READ_TOKEN`]).
static HQ_URLS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Records that an HQ process started with [`HQ_READ_TOKEN`] answers at `url`.
pub fn hq_at(url: &str) {
    if let Ok(mut urls) = HQ_URLS.lock() {
        urls.push(url.to_owned());
    }
}

/// `request` to `url` sent as the member `open_shifts` signed in at the till `body` names, or,
/// to a read endpoint of a chain's HQ, with the read-API token.
pub fn signed(
    request: reqwest::RequestBuilder,
    url: &str,
    body: &serde_json::Value,
) -> reqwest::RequestBuilder {
    let hq_read = !url.contains("/v1/sync/")
        && HQ_URLS.lock().is_ok_and(|urls| {
            urls.iter().any(|u| {
                url.strip_prefix(u.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
            })
        });
    match session_at(url, body["terminal"].as_str()) {
        Some(session) => request.bearer_auth(session),
        None if hq_read => request.bearer_auth(HQ_READ_TOKEN),
        None => request,
    }
}

/// Signs `staff` in at `terminal` of the node at `url` with `pin`; answers the sign-in answer
/// (`session`, `staff`, `shift`).
pub async fn sign_in(
    http: &reqwest::Client,
    url: &str,
    terminal: &str,
    staff: &str,
    pin: &str,
) -> anyhow::Result<serde_json::Value> {
    Ok(http
        .post(format!("{url}/v1/sign-in"))
        .json(&serde_json::json!({"terminal": terminal, "staff": staff, "pin": pin}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

/// Signs the demo cashier in at each of `terminals` of the node at `url` and opens a shift
/// with a float of 100.00 where none is open (a sale needs an open shift). The sessions are
/// kept for `session` and `signed`.
pub async fn open_shifts(
    http: &reqwest::Client,
    url: &str,
    terminals: &[&str],
) -> anyhow::Result<()> {
    for terminal in terminals {
        let signed_in = sign_in(http, url, terminal, "anna", "1111").await?;
        let session = signed_in["session"].as_str().unwrap_or_default();
        SESSIONS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((url.to_owned(), (*terminal).to_owned()), session.to_owned());
        if !signed_in["shift"].is_null() {
            continue;
        }
        let response = http
            .post(format!("{url}/v1/shifts/open"))
            .header(
                "Idempotency-Key",
                format!("open-shift-{terminal}-{session}"),
            )
            .bearer_auth(session)
            .json(&serde_json::json!({"terminal": terminal, "float": "100.00"}))
            .send()
            .await?;
        anyhow::ensure!(
            response.status().as_u16() == 201,
            "opening a shift on {terminal}: {}",
            response.text().await?
        );
    }
    Ok(())
}

/// A till's payment terminal as `kassa store payment-terminal` takes it.
#[derive(Debug, Clone)]
pub struct PaymentTerminal {
    /// The till.
    pub till: String,
    /// `HOST:PORT` of the terminal (or its simulator).
    pub addr: String,
    /// Its POIID.
    pub poi_id: String,
    /// The shared key's identifier (version 1).
    pub key_id: String,
    /// The shared passphrase.
    pub passphrase: String,
    /// The CA the terminal's certificate chains to (PEM).
    pub ca_pem: String,
}

/// Configures `terminal` for the node in `data` with `kassa store payment-terminal` (as an
/// operator would; the passphrase and CA go to files beside `data`), adding `extra` flags.
pub async fn set_payment_terminal(
    kassa: &Path,
    data: &Path,
    terminal: &PaymentTerminal,
    extra: &[&str],
) -> anyhow::Result<String> {
    let secrets = data.with_extension("secrets");
    std::fs::create_dir_all(&secrets)?;
    let passphrase = secrets.join(format!("{}.pass", terminal.till));
    let ca = secrets.join(format!("{}-ca.pem", terminal.till));
    std::fs::write(&passphrase, format!("{}\n", terminal.passphrase))?;
    std::fs::write(&ca, &terminal.ca_pem)?;
    let mut args: Vec<String> = [
        "store",
        "--data",
        &data.display().to_string(),
        "payment-terminal",
        "--terminal",
        &terminal.till,
        "--addr",
        &terminal.addr,
        "--poi-id",
        &terminal.poi_id,
        "--key-id",
        &terminal.key_id,
        "--key-version",
        "1",
        "--passphrase-file",
        &passphrase.display().to_string(),
        "--ca-file",
        &ca.display().to_string(),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    chain::kassa_cli(kassa, &args).await
}

/// A small deterministic random generator (xorshift), so failures can be replayed by seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (zero is replaced by a constant).
    pub fn new(seed: u64) -> Self {
        Rng(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A value in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// Sends `request` to `router` in process: the status and the body as JSON (`Null` when it is
/// empty or not JSON).
pub async fn respond(
    router: &axum::Router,
    request: axum::http::Request<axum::body::Body>,
) -> (axum::http::StatusCode, serde_json::Value) {
    use tower::ServiceExt as _;
    let response = router
        .clone()
        .oneshot(request)
        .await
        .unwrap_or_else(|e| match e {});
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}
