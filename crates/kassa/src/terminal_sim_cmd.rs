//! `kassa terminal-sim`: a simulated Adyen payment terminal (Terminal API over local
//! communication, encrypted) for development and tests.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use payments::crypto::SecurityKey;
use payments::sim::{Faults, SimConfig, Simulator};

/// Flags of `kassa terminal-sim`.
#[derive(Debug, clap::Args)]
pub struct TerminalSimArgs {
    /// Address to listen on (a real terminal listens on port 8443).
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// The terminal's POIID; its certificate is issued for `<POIID>.test.terminal.adyen.com`.
    #[arg(long, default_value = "V400m-324688179")]
    poi_id: String,
    /// Folder for the terminal's transactions and its test certificate (`ca.pem` is what
    /// clients trust); kept across restarts.
    #[arg(long, default_value = "kassa-terminal-sim")]
    state_dir: PathBuf,
    /// Key identifier of the shared key.
    #[arg(long, env = "KASSA_TERMINAL_KEY_ID", default_value = "KassaTestKey")]
    key_id: String,
    /// Key version of the shared key.
    #[arg(long, env = "KASSA_TERMINAL_KEY_VERSION", default_value_t = 1)]
    key_version: u64,
    /// Shared passphrase the message protection keys derive from. A flag shows in `ps` to
    /// every user of the machine: prefer `--passphrase-file` or `KASSA_TERMINAL_PASSPHRASE`.
    #[arg(
        long,
        env = "KASSA_TERMINAL_PASSPHRASE",
        hide_env_values = true,
        required_unless_present = "passphrase_file",
        conflicts_with = "passphrase_file"
    )]
    passphrase: Option<String>,
    /// A file holding the shared passphrase (its first line; read once at start).
    #[arg(long)]
    passphrase_file: Option<PathBuf>,
    /// Largest payment approved offline, in minor units.
    #[arg(long, default_value_t = 5_000)]
    offline_floor_limit: i64,
    /// Start with these faults and modes, as JSON (e.g. `{"offline":true}`); change them later
    /// with `POST /sim/faults`.
    #[arg(long)]
    faults: Option<String>,
}

/// Runs the simulator until Ctrl-C or SIGTERM.
pub fn run(args: TerminalSimArgs) -> anyhow::Result<()> {
    let passphrase = match (&args.passphrase, &args.passphrase_file) {
        (Some(p), _) => p.clone(),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --passphrase-file {}", path.display()))?;
            let first = text.lines().next().unwrap_or_default().to_owned();
            anyhow::ensure!(
                !first.is_empty(),
                "--passphrase-file {}: the first line is empty",
                path.display()
            );
            first
        }
        (None, None) => anyhow::bail!("give --passphrase-file or KASSA_TERMINAL_PASSPHRASE"),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let faults: Faults = match &args.faults {
            Some(json) => serde_json::from_str(json).context("--faults is not valid JSON")?,
            None => Faults::default(),
        };
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let sim = Simulator::start(
            SimConfig {
                poi_id: args.poi_id.clone(),
                key: SecurityKey::new(args.key_id, args.key_version, &passphrase),
                state_dir: args.state_dir.clone(),
                offline_floor_limit_minor: args.offline_floor_limit,
            },
            listener,
        )
        .await
        .context("cannot start the terminal simulator")?;
        sim.set_faults(faults);
        // One line on standard output so scripts and tests learn where it listens.
        println!(
            "terminal-sim poi={} ca={} listening on https://{}",
            args.poi_id,
            args.state_dir.join("ca.pem").display(),
            sim.addr()
        );
        tracing::info!(addr = %sim.addr(), poi_id = %args.poi_id, "terminal simulator ready");
        crate::shutdown_signal().await;
        Ok(())
    })
}
