//! `kassa store …`: run, provision, seed, verify and export a store node.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use domain::{StoreId, TerminalId};
use serde::Deserialize;
use store::clock::SystemClock;

/// Arguments of `kassa store`.
/// Seconds between a store's pulls of stock from HQ, and between reference pulls when HQ does
/// not hold them open until a change.
pub const DEFAULT_PULL_EVERY_S: u64 = 5;

#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// A TOML file with defaults for the options below (flags and environment win).
    #[arg(long, env = "KASSA_STORE_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// The node's data directory (database and terminal keys).
    #[arg(long, env = "KASSA_STORE_DATA", global = true)]
    data: Option<PathBuf>,
    #[command(subcommand)]
    command: StoreCommand,
}

#[derive(Debug, clap::Subcommand)]
enum StoreCommand {
    /// Serve the node's API to the tills.
    Run {
        /// Listen address.
        #[arg(long, env = "KASSA_STORE_LISTEN")]
        listen: Option<SocketAddr>,
        /// HQ's base URL, for sync. A node enrolled with `kassa store enrol` needs none of
        /// the `--hq-…` options: it keeps HQ's URL, its credential and the chain's CA.
        #[arg(long, env = "KASSA_HQ_URL")]
        hq_url: Option<String>,
        /// The store credential HQ issued (`kassa hq store add`).
        #[arg(long, env = "KASSA_HQ_TOKEN", hide_env_values = true)]
        hq_token: Option<String>,
        /// The chain's CA (PEM, `ca.pem` of `kassa hq tls init`): the only CA trusted for an
        /// https:// `--hq-url`.
        #[arg(long, env = "KASSA_HQ_CA")]
        hq_ca: Option<PathBuf>,
        /// Allow an http:// `--hq-url` (a lab, or a link already encrypted underneath): the
        /// store's credential then crosses the network in clear.
        #[arg(long, env = "KASSA_INSECURE_HTTP")]
        insecure_http: bool,
        /// Seconds between pulls of stock from HQ; reference data comes as soon as HQ commits
        /// it (HQ holds each pull open until a change), or after this when HQ does not.
        #[arg(long, default_value_t = DEFAULT_PULL_EVERY_S)]
        pull_every: u64,
        /// The most this store may redeem from gift cards and store credit while HQ cannot be
        /// reached (major units, e.g. `500.00`), counting redemptions HQ has not acknowledged.
        /// Kept in the node's database; zero until set.
        #[arg(long, env = "KASSA_STORED_VALUE_OFFLINE_CAP")]
        stored_value_offline_cap: Option<String>,
        /// Back the node up into this directory while it runs (on another disk than the data
        /// directory, and not inside it): a hot backup like `kassa store backup`, every
        /// `--backup-every`, the newest `--backup-keep` files kept.
        #[arg(long, env = "KASSA_STORE_BACKUP_DIR")]
        backup_dir: Option<PathBuf>,
        /// How often (`30m`, `6h`, `1d`; `s` for seconds).
        #[arg(long, env = "KASSA_STORE_BACKUP_EVERY", default_value = "6h", value_parser = every, requires = "backup_dir")]
        backup_every: std::time::Duration,
        /// How many of the newest backups are kept.
        #[arg(long, env = "KASSA_STORE_BACKUP_KEEP", default_value_t = 28,
              value_parser = clap::value_parser!(u32).range(1..=10_000), requires = "backup_dir")]
        backup_keep: u32,
        /// Send each scheduled backup (`--backup-dir`) to HQ too, encrypted to the chain's
        /// recovery key (`--backup-recipient`): HQ keeps it without being able to read it, and
        /// a dead PC with a dead backup disk is restored from HQ's copy.
        #[arg(long, env = "KASSA_STORE_BACKUP_TO_HQ")]
        backup_to_hq: bool,
        /// The public half of the chain's recovery key (`age1…`, printed by `kassa store
        /// recovery-key`), the only key that can decrypt the backups sent to HQ.
        #[arg(long, env = "KASSA_STORE_BACKUP_RECIPIENT")]
        backup_recipient: Option<String>,
    },
    /// Make the chain's recovery key, which decrypts the backups store nodes send to HQ: writes
    /// the key file (keep it, and a copy, off the store PCs and off HQ) and prints its public
    /// half, which every node is given (`--backup-recipient`). Needs no data directory.
    RecoveryKey {
        /// The key file to write (refused when it exists).
        #[arg(long)]
        out: PathBuf,
    },
    /// Set the node up from a one-time enrolment code HQ printed (`kassa hq store add --url`
    /// or `kassa hq store enrol`): each terminal's key is made and registered with HQ, and the
    /// node keeps HQ's URL, the store's credential, the chain's CA and PIN pepper, so that
    /// `kassa store run` syncs with no `--hq-…` option.
    Enrol {
        /// The code (or `-` to read it from standard input, or `@FILE` to read it from a file).
        code: String,
        /// A terminal the node hosts (repeat for several).
        #[arg(long = "terminal")]
        terminals: Vec<String>,
        /// Allow a code for an HQ that serves plain HTTP (a lab).
        #[arg(long)]
        insecure_http: bool,
    },
    /// Copy the node — its ledger, consistent while it sells, and its keys and HQ link — into
    /// one file (`kassa-store-backup/1`, zstd). Keep it off the PC: it holds the tills'
    /// signing keys.
    Backup {
        /// The file to write (written beside and renamed when whole).
        #[arg(long)]
        out: PathBuf,
    },
    /// Restore a backup into `--data`, a new or empty directory (a new PC). Refused when the
    /// file is damaged, or when HQ already holds a till further than the backup (restored, the
    /// till would fork its chain).
    Restore {
        /// The backup file.
        file: PathBuf,
        /// Do not ask HQ how far it holds the tills (HQ out of reach, and the store has not
        /// synced since the backup was taken).
        #[arg(long)]
        without_hq: bool,
        /// The chain's recovery key file, for a backup HQ kept (encrypted).
        #[arg(long)]
        identity: Option<PathBuf>,
    },
    /// Replace an enrolled node's credential with a new one from HQ. HQ keeps the old one
    /// working for the overlap; a running node takes the new one the first time HQ refuses the
    /// old, so run this any time (from a timer, say monthly). Recorded in HQ's audit log.
    RotateCredential {
        /// How long the old credential keeps working, in hours (1 to 168).
        #[arg(long, default_value_t = protocol::enrol::DEFAULT_OVERLAP_HOURS)]
        overlap_hours: u32,
    },
    /// Replace a terminal's signing key (yearly, or when its key may have been seen): makes the
    /// new key beside the old one. When the node next starts it records the new public key in
    /// the terminal's ledger, signed by the old key, and signs with the new key from then on;
    /// HQ takes the new key from that event, offline periods included. The old key file is gone
    /// afterwards.
    RotateKey {
        /// The terminal.
        #[arg(long)]
        terminal: String,
    },
    /// Register the store and its terminals, creating each terminal's signing key.
    Provision {
        /// The store this node serves.
        #[arg(long, env = "KASSA_STORE_ID")]
        store: Option<String>,
        /// A terminal the node hosts (repeat for several).
        #[arg(long = "terminal")]
        terminals: Vec<String>,
        /// The chain's PIN pepper (the file HQ keeps in `keys/pin.pepper`), so that PINs
        /// published by HQ verify here. Without it a node keeps a pepper of its own.
        #[arg(long, env = "KASSA_PIN_PEPPER_FILE")]
        pin_pepper_file: Option<PathBuf>,
    },
    /// Load reference data (catalog, prices, tax, store configuration) from a file.
    Seed {
        /// A `kassa-seed/1` JSON file, such as data/demo/seed.json.
        file: PathBuf,
    },
    /// Stop following HQ's reference change log, so that a local `seed` is accepted again. The
    /// reference data stays; the next start with `--hq-url` takes HQ's snapshot.
    Detach,
    /// Recompute every terminal's hash chain and signatures; report the first broken link.
    Verify,
    /// Set a till's receipt printer: ESC/POS over raw TCP or to a device file.
    Printer {
        /// The till.
        #[arg(long)]
        terminal: String,
        /// `tcp:HOST[:PORT]` (port 9100 by default) or a device such as `/dev/usb/lp0`.
        #[arg(long)]
        target: String,
        /// Paper width in mm: 58 or 80.
        #[arg(long, default_value_t = 80)]
        paper: u32,
    },
    /// Set a till's payment terminal (Adyen Terminal API over the LAN). Offline limits are in
    /// minor units of the store currency (cents): 5000 is 50.00.
    PaymentTerminal {
        /// The till.
        #[arg(long)]
        terminal: String,
        /// The terminal's address on the LAN, `HOST:8443`.
        #[arg(long)]
        addr: String,
        /// The terminal's POIID (its certificate carries it).
        #[arg(long)]
        poi_id: String,
        /// The shared key's identifier.
        #[arg(long)]
        key_id: String,
        /// The shared key's version.
        #[arg(long)]
        key_version: u64,
        /// A file holding the shared passphrase (read when the node starts; not copied).
        #[arg(long)]
        passphrase_file: PathBuf,
        /// A PEM file with the CA the terminal's certificate chains to.
        #[arg(long)]
        ca_file: PathBuf,
        /// Largest single offline approval, minor units.
        #[arg(long, default_value_t = 5_000)]
        offline_per_transaction: i64,
        /// Offline approvals per shift, minor units.
        #[arg(long, default_value_t = 20_000)]
        offline_per_shift: i64,
        /// Offline approvals not yet settled, minor units.
        #[arg(long, default_value_t = 50_000)]
        offline_outstanding: i64,
    },
    /// Add or revoke an unattended device (a scale, a self-checkout) that writes at one till
    /// without a member signed in.
    Device {
        #[command(subcommand)]
        action: DeviceAction,
    },
    /// Fiscal receipts (Austria's RKSV): commission a till, export what the tax office reads.
    Fiscal {
        #[command(subcommand)]
        action: FiscalAction,
    },
    /// Write a terminal's journal as JSON lines to standard output.
    Export {
        /// The terminal.
        #[arg(long)]
        terminal: String,
        /// First sequence number.
        #[arg(long, default_value_t = 1)]
        from: u64,
    },
}

// Parsed once per run: the size of the commissioning variant costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, clap::Subcommand)]
enum FiscalAction {
    /// Commission a till for the RKSV: its register id (Kassen-ID), AES key and signature
    /// device. The till signs its start receipt when the node next starts; from then on every
    /// receipt carries its signed code.
    Commission {
        /// The terminal.
        #[arg(long)]
        terminal: String,
        /// The register id as registered with the tax office (FinanzOnline); the terminal's id
        /// when left out.
        #[arg(long)]
        register_id: Option<String>,
        /// A file holding the register's AES-256 key in base64; a new key is made and written
        /// there when the file does not exist (keep it: the tax office's checks need it).
        #[arg(long)]
        aes_key_file: PathBuf,
        /// A P-256 key in a PKCS#8 PEM file, made when it does not exist: NOT a legal signature
        /// device, for demonstrations and tests only.
        #[arg(long, conflicts_with = "pkcs11_module")]
        software_key_not_a_legal_device: Option<PathBuf>,
        /// The PKCS#11 module of a smart card or HSM (`/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so`).
        #[arg(long, requires_all = ["token", "pin_file", "key_label"])]
        pkcs11_module: Option<PathBuf>,
        /// The token's label.
        #[arg(long)]
        token: Option<String>,
        /// A file whose first line is the token's user PIN.
        #[arg(long)]
        pin_file: Option<PathBuf>,
        /// The key pair's label on the token.
        #[arg(long)]
        key_label: Option<String>,
        /// The key id receipts name the device with, as registered (`U:ATU12345678-K1`); a
        /// device with a certificate is named by the certificate's serial instead.
        #[arg(long, required_unless_present = "certificate")]
        key_id: Option<String>,
        /// The certificate of the device's key (PEM or DER), when a certification service
        /// provider certified it; it must be for the device's key and valid now.
        #[arg(long, requires = "provider")]
        certificate: Option<PathBuf>,
        /// The certification service provider of `--certificate` (`AT1` A-Trust, `AT2`
        /// GlobalTrust, …).
        #[arg(long, requires = "certificate")]
        provider: Option<String>,
        /// The time zone receipts are dated in.
        #[arg(long, default_value = "Europe/Vienna")]
        time_zone: String,
    },
    /// Write a till's DEP export (`dep7.json`), its cryptographic material container
    /// (`cryptographic-material.json`) and its full journal for the same days
    /// (`journal.jsonl`, DEP131: every event with its hash chain and signature) into a
    /// directory, for the tax office or a verifier.
    Export {
        /// The terminal.
        #[arg(long)]
        terminal: String,
        /// First day (local), inclusive.
        #[arg(long)]
        from: Option<jiff::civil::Date>,
        /// Last day (local), inclusive.
        #[arg(long)]
        to: Option<jiff::civil::Date>,
        /// The directory to write into (made when missing).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, clap::Subcommand)]
enum DeviceAction {
    /// Add a device and print its credential (shown once; the node keeps only a hash). The
    /// device sends it as `Authorization: Bearer <credential>` and acts as a cashier of the till.
    Add {
        /// The device's id, recorded as the cashier of what it writes.
        #[arg(long)]
        id: String,
        /// The till it writes at.
        #[arg(long)]
        terminal: String,
    },
    /// Give a device a new credential (printed once); the old one stops working at once.
    Rotate {
        /// The device's id.
        #[arg(long)]
        id: String,
    },
    /// Revoke a device: its credential is refused from the next request on.
    Revoke {
        /// The device's id.
        #[arg(long)]
        id: String,
    },
}

/// `kassa store recovery-key --out FILE`: the key file written (owner only, never over another
/// file), its public half printed.
fn recovery_key(out: &std::path::Path) -> anyhow::Result<()> {
    let (text, recipient) = store::offsite::new_recovery_key(jiff::Timestamp::now());
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(out)
        .with_context(|| format!("--out: cannot create {} (it must not exist)", out.display()))?;
    tls::restrict_to_owner(out).with_context(|| format!("--out: {}", out.display()))?;
    std::io::Write::write_all(&mut file, text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("--out: cannot write {}", out.display()))?;
    println!(
        "recovery key written to {}: keep it, and a copy, off the store PCs and off HQ",
        out.display()
    );
    println!("give each store node its public key: --backup-recipient {recipient}");
    Ok(())
}

/// Each terminal of a backup and its last sequence, for a message.
fn up_to(manifest: &store::backup::Manifest) -> String {
    manifest
        .terminals
        .iter()
        .map(|(t, seq)| format!("{t} up to {seq}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The optional TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data: Option<PathBuf>,
    listen: Option<SocketAddr>,
    store: Option<String>,
    terminals: Option<Vec<String>>,
    hq_url: Option<String>,
    hq_token: Option<String>,
    hq_ca: Option<PathBuf>,
}

fn file_config(path: Option<&PathBuf>) -> anyhow::Result<FileConfig> {
    let Some(path) = path else {
        return Ok(FileConfig::default());
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    toml::from_str(&text)
        .with_context(|| format!("{} is not a valid store configuration", path.display()))
}

/// Runs `kassa store …`.
pub fn run(args: StoreArgs) -> anyhow::Result<()> {
    if let StoreCommand::RecoveryKey { out } = &args.command {
        return recovery_key(out);
    }
    let file = file_config(args.config.as_ref())?;
    let data = args
        .data
        .clone()
        .or(file.data.clone())
        .context("--data (or KASSA_STORE_DATA, or `data` in the config file) is required")?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        match args.command {
            StoreCommand::Run {
                listen,
                hq_url,
                hq_token,
                hq_ca,
                insecure_http,
                pull_every,
                stored_value_offline_cap,
                backup_dir,
                backup_every,
                backup_keep,
                backup_to_hq,
                backup_recipient,
            } => {
                let listen = listen
                    .or(file.listen)
                    .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 7070)));
                let pull_every = std::time::Duration::from_secs(pull_every.max(1));
                let sync = match (hq_url.or(file.hq_url), hq_token.or(file.hq_token)) {
                    (Some(url), Some(token)) => Some(store::sync::SyncSettings {
                        hq_url: url.trim_end_matches('/').to_owned(),
                        token: token.into(),
                        pull_every,
                        hq_ca: hq_ca
                            .or(file.hq_ca)
                            .map(|f| {
                                std::fs::read_to_string(&f)
                                    .with_context(|| format!("--hq-ca: cannot read {}", f.display()))
                            })
                            .transpose()?,
                        hq_client_cert: None,
                    }),
                    (None, None) => store::enrol::link(&data, pull_every)?,
                    _ => bail!("--hq-url and --hq-token go together"),
                };
                if let Some(sync) = &sync {
                    if sync.hq_url.starts_with("http://") && !insecure_http {
                        bail!(
                            "{} is plain HTTP: the store's credential would cross the network in clear. Use HQ's https:// URL with --hq-ca (or enrol the node: `kassa store enrol`), or pass --insecure-http for a lab",
                            sync.hq_url
                        );
                    }
                    if !sync.hq_url.starts_with("https://") && !sync.hq_url.starts_with("http://") {
                        bail!("--hq-url `{}` is not an http(s) URL", sync.hq_url);
                    }
                }
                // Checked here, not by the parser: `KASSA_STORE_BACKUP_TO_HQ=false` is no request.
                let to_hq = match (backup_to_hq, backup_recipient, &sync) {
                    (false, _, _) => None,
                    (true, _, _) if backup_dir.is_none() => bail!(
                        "--backup-to-hq sends the node's scheduled backups: give --backup-dir too"
                    ),
                    (true, None, _) => bail!(
                        "--backup-to-hq needs --backup-recipient, the recovery key's public half (`kassa store recovery-key` printed it)"
                    ),
                    (true, Some(_), None) => bail!(
                        "--backup-to-hq: this node has no link to HQ (enrol it with `kassa store enrol`, or give --hq-url)"
                    ),
                    (true, Some(recipient), Some(link)) => Some(store::offsite::ToHq {
                        link: link.clone(),
                        recipient: store::offsite::parse_recipient(&recipient)
                            .map_err(|e| anyhow::anyhow!("--backup-recipient: {e}"))?,
                    }),
                };
                let settings = store::Settings {
                    data_dir: data.clone(),
                    listen,
                    sync,
                };
                let app = store::App::build(&settings, Arc::new(SystemClock)).await?;
                if let Some(dir) = backup_dir {
                    store::backup::schedule(
                        app.node(),
                        data,
                        store::backup::Schedule {
                            dir,
                            every: backup_every,
                            keep: usize::try_from(backup_keep)?,
                            to_hq,
                        },
                    )
                    .map_err(|e| anyhow::anyhow!("--backup-dir: {e}"))?;
                }
                if let Some(cap) = stored_value_offline_cap {
                    store::stored_value::set_offline_cap(&app.node(), &cap)
                        .await
                        .map_err(|e| anyhow::anyhow!("--stored-value-offline-cap: {e}"))?;
                }
                let addr = app.local_addr().context("listener has no address")?;
                println!("kassa store listening on http://{addr}");
                tracing::info!(%addr, "store node listening");
                app.run(crate::shutdown_signal()).await?;
                Ok(())
            }
            StoreCommand::Enrol {
                code,
                terminals,
                insecure_http,
            } => {
                let code = match code.as_str() {
                    "-" => std::io::read_to_string(std::io::stdin())
                        .context("cannot read the code from standard input")?,
                    other => match other.strip_prefix('@') {
                        Some(file) => std::fs::read_to_string(file)
                            .with_context(|| format!("cannot read {file}"))?,
                        None => code,
                    },
                };
                let terminals = if terminals.is_empty() {
                    file.terminals.unwrap_or_default()
                } else {
                    terminals
                };
                let terminals = terminals
                    .iter()
                    .map(|t| TerminalId::parse(t).map_err(|e| anyhow::anyhow!("--terminal: {e}")))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let enrolled = store::enrol::enrol(
                    &data,
                    &code,
                    &terminals,
                    insecure_http,
                    jiff::Timestamp::now().as_millisecond(),
                )
                .await?;
                println!(
                    "store {} enrolled with HQ at {}; terminals registered:",
                    enrolled.store, enrolled.url
                );
                for (terminal, public) in &enrolled.terminals {
                    println!("{terminal} {}", hex::encode(public));
                }
                println!("start the node with `kassa store run --data {}`", data.display());
                Ok(())
            }
            StoreCommand::RecoveryKey { out } => recovery_key(&out),
            StoreCommand::Backup { out } => {
                let manifest = store::backup::backup(&data, &out).await?;
                println!(
                    "backup of store {} written to {} ({})",
                    manifest.store,
                    out.display(),
                    up_to(&manifest)
                );
                Ok(())
            }
            StoreCommand::Restore {
                file,
                without_hq,
                identity,
            } => {
                let manifest =
                    store::backup::restore(&file, &data, !without_hq, identity.as_deref()).await?;
                println!(
                    "store {} restored into {} ({}); start it with `kassa store run --data {}`",
                    manifest.store,
                    data.display(),
                    up_to(&manifest),
                    data.display()
                );
                Ok(())
            }
            StoreCommand::RotateKey { terminal } => {
                let terminal = TerminalId::parse(&terminal)
                    .map_err(|e| anyhow::anyhow!("--terminal: {e}"))?;
                let public_key = store::prepare_key_rotation(&data, &terminal).await?;
                println!(
                    "terminal {terminal}: new key {} ready; (re)start the node to rotate to it",
                    hex::encode(public_key)
                );
                Ok(())
            }
            StoreCommand::RotateCredential { overlap_hours } => {
                let until = store::enrol::rotate(&data, overlap_hours).await?;
                println!(
                    "the node has a new credential; HQ takes the old one until {}",
                    jiff::Timestamp::from_millisecond(until)
                        .map_or_else(|_| until.to_string(), |t| t.to_string())
                );
                Ok(())
            }
            StoreCommand::Provision {
                store,
                terminals,
                pin_pepper_file,
            } => {
                let store = store.or(file.store).context(
                    "--store (or KASSA_STORE_ID, or `store` in the config file) is required",
                )?;
                let store = StoreId::parse(&store).map_err(|e| anyhow::anyhow!("--store: {e}"))?;
                let terminals = if terminals.is_empty() {
                    file.terminals.unwrap_or_default()
                } else {
                    terminals
                };
                if terminals.is_empty() {
                    bail!("--terminal: name at least one terminal");
                }
                let terminals = terminals
                    .iter()
                    .map(|t| TerminalId::parse(t).map_err(|e| anyhow::anyhow!("--terminal: {e}")))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let given = pin_pepper_file
                    .map(|f| {
                        std::fs::read_to_string(&f)
                            .with_context(|| format!("cannot read {}", f.display()))
                    })
                    .transpose()?;
                for (terminal, public) in store::provision(&data, &store, &terminals).await? {
                    println!("{terminal} {}", hex::encode(public));
                }
                store::keys::pepper(&data, given.as_deref())?;
                Ok(())
            }
            StoreCommand::Seed { file: seed_file } => {
                let text = std::fs::read_to_string(&seed_file)
                    .with_context(|| format!("cannot read {}", seed_file.display()))?;
                let seed: protocol::seed::SeedDto =
                    serde_json::from_str(&text).with_context(|| {
                        format!("{} is not a kassa-seed/1 file", seed_file.display())
                    })?;
                let version = store::seed(&data, &seed).await?;
                println!(
                    "reference data version {version} loaded from {}",
                    seed_file.display()
                );
                Ok(())
            }
            StoreCommand::Printer {
                terminal,
                target,
                paper,
            } => {
                let terminal =
                    TerminalId::parse(&terminal).map_err(|e| anyhow::anyhow!("--terminal: {e}"))?;
                let pools = store::db::open_existing(&data).await?;
                store::printing::set_printer(&pools.writer, &terminal, &target, paper)
                    .await
                    .map_err(|e| anyhow::anyhow!("--target/--paper: {e}"))?;
                println!("terminal {terminal} prints to {target} on {paper} mm paper");
                Ok(())
            }
            StoreCommand::Fiscal { action } => fiscal(&data, action).await,
            StoreCommand::Device { action } => {
                let pools = store::db::open(&data).await?;
                let now = jiff::Timestamp::now().as_millisecond();
                match action {
                    DeviceAction::Add { id, terminal } => {
                        let token = store::auth::add_device(&pools, &id, &terminal, now)
                            .await
                            .map_err(|e| anyhow::anyhow!("{e}"))?;
                        println!("device {id} writes at {terminal}; its credential (shown once):");
                        println!("{token}");
                    }
                    DeviceAction::Rotate { id } => {
                        let token = store::auth::rotate_device(&pools, &id)
                            .await
                            .map_err(|e| anyhow::anyhow!("{e}"))?;
                        println!("device {id} has a new credential (shown once):");
                        println!("{token}");
                    }
                    DeviceAction::Revoke { id } => {
                        store::auth::revoke_device(&pools, &id, now)
                            .await
                            .map_err(|e| anyhow::anyhow!("{e}"))?;
                        println!("device {id} is revoked");
                    }
                }
                Ok(())
            }
            StoreCommand::PaymentTerminal {
                terminal,
                addr,
                poi_id,
                key_id,
                key_version,
                passphrase_file,
                ca_file,
                offline_per_transaction,
                offline_per_shift,
                offline_outstanding,
            } => {
                let terminal =
                    TerminalId::parse(&terminal).map_err(|e| anyhow::anyhow!("--terminal: {e}"))?;
                let config = store::cards::TerminalConfig {
                    addr,
                    poi_id,
                    key_id,
                    key_version,
                    passphrase_file: passphrase_file.display().to_string(),
                    ca_file: ca_file.display().to_string(),
                    limits: payments::service::OfflineLimits {
                        per_transaction_minor: offline_per_transaction,
                        per_shift_minor: offline_per_shift,
                        outstanding_minor: offline_outstanding,
                    },
                };
                let pools = store::db::open_existing(&data).await?;
                store::cards::set_terminal(&pools.writer, &terminal, &config)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                println!(
                    "terminal {terminal} takes cards on {} ({}); restart the node to use it",
                    config.addr, config.poi_id
                );
                Ok(())
            }
            StoreCommand::Verify => {
                let pools = store::db::open_existing(&data).await?;
                let reports = store::verify::verify(&pools.reader).await?;
                let mut broken = false;
                for report in &reports {
                    match &report.broken {
                        None => println!(
                            "{}: {} events, chain and signatures verify",
                            report.terminal, report.events
                        ),
                        Some(link) => {
                            broken = true;
                            println!("BROKEN {link}");
                        }
                    }
                }
                if broken {
                    bail!("ledger verification failed");
                }
                Ok(())
            }
            StoreCommand::Detach => {
                match store::detach(&data).await? {
                    Some(left) => println!(
                        "store no longer follows HQ's reference change log {} ({}); a local seed is accepted now, and the next start with --hq-url takes HQ's snapshot",
                        left.log, left.url
                    ),
                    None => println!("store follows no HQ change log; nothing to do"),
                }
                Ok(())
            }
            StoreCommand::Export { terminal, from } => {
                let terminal =
                    TerminalId::parse(&terminal).map_err(|e| anyhow::anyhow!("--terminal: {e}"))?;
                let pools = store::db::open_existing(&data).await?;
                let known: Vec<String> = sqlx::query_scalar("SELECT id FROM terminals ORDER BY id")
                    .fetch_all(&pools.reader)
                    .await?;
                if !known.iter().any(|t| t == terminal.as_str()) {
                    bail!(
                        "--terminal: this store has no terminal `{terminal}` (it has: {})",
                        if known.is_empty() { "none".to_owned() } else { known.join(", ") }
                    );
                }
                let stdout = std::io::stdout();
                let mut out = std::io::BufWriter::new(stdout.lock());
                store::verify::export(&pools.reader, &terminal, from, &mut out).await?;
                Ok(())
            }
        }
    })
}

async fn fiscal(data: &std::path::Path, action: FiscalAction) -> anyhow::Result<()> {
    let pools = store::db::open(data).await?;
    let terminal_of =
        |id: &str| domain::TerminalId::parse(id).map_err(|e| anyhow::anyhow!("--terminal: {e}"));
    match action {
        FiscalAction::Commission {
            terminal,
            register_id,
            aes_key_file,
            software_key_not_a_legal_device,
            pkcs11_module,
            token,
            pin_file,
            key_label,
            key_id,
            certificate,
            provider,
            time_zone,
        } => {
            let terminal = terminal_of(&terminal)?;
            let key_id = key_id.unwrap_or_default();
            let certificate = match (certificate, provider) {
                (Some(file), Some(provider)) => Some(store::fiscal::CertificateConfig {
                    file: std::path::absolute(file)?,
                    provider,
                }),
                _ => None,
            };
            let aes_key =
                store::fiscal::ensure_aes_key(&aes_key_file).map_err(|e| anyhow::anyhow!("{e}"))?;
            let device = match (software_key_not_a_legal_device, pkcs11_module) {
                (Some(key_file), None) => {
                    store::fiscal::ensure_software_key(&key_file, &key_id)
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                    store::fiscal::DeviceConfig::SoftwareKeyNotALegalDevice {
                        key_file: std::path::absolute(&key_file)?,
                        key_id: key_id.clone(),
                        certificate,
                    }
                }
                (None, Some(module)) => store::fiscal::DeviceConfig::Pkcs11 {
                    module,
                    token: token.unwrap_or_default(),
                    pin_file: std::path::absolute(pin_file.unwrap_or_default())?,
                    key_label: key_label.unwrap_or_default(),
                    key_id: key_id.clone(),
                    certificate,
                },
                _ => anyhow::bail!(
                    "name the signature device: --pkcs11-module (a smart card or HSM) or --software-key-not-a-legal-device"
                ),
            };
            let register_id = register_id.unwrap_or_else(|| terminal.to_string());
            let device = store::fiscal::commission(
                &pools.writer,
                data,
                &terminal,
                &store::fiscal::Commission {
                    register_id: register_id.clone(),
                    aes_key,
                    device,
                    time_zone,
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "terminal {terminal} is commissioned as register {register_id} with device {device}; it signs its start receipt when the node next starts"
            );
            Ok(())
        }
        FiscalAction::Export {
            terminal,
            from,
            to,
            out,
        } => {
            let terminal = terminal_of(&terminal)?;
            let range = match (from, to) {
                (None, None) => None,
                (Some(from), Some(to)) if from <= to => Some((from, to)),
                (Some(_), Some(_)) => anyhow::bail!("--from is after --to"),
                _ => anyhow::bail!("give both --from and --to, or neither"),
            };
            let export = store::fiscal::export(&pools.reader, data, &terminal, range)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            std::fs::create_dir_all(&out)?;
            let files = [
                ("dep7.json", export.dep.as_bytes()),
                ("cryptographic-material.json", export.material.as_bytes()),
                ("journal.jsonl", export.journal.as_slice()),
            ];
            for (name, contents) in files {
                std::fs::write(out.join(name), contents)?;
                println!("wrote {}", out.join(name).display());
            }
            Ok(())
        }
    }
}

/// A backup interval: a whole number and a unit, `s`, `m`, `h` or `d` (`90s`, `30m`, `6h`).
fn every(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let unit = text.chars().last().unwrap_or(' ');
    let number = &text[..text.len() - unit.len_utf8().min(text.len())];
    let seconds = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        _ => {
            return Err(format!(
                "`{text}` is not an interval: a number and s, m, h or d (6h)"
            ));
        }
    };
    match number.parse::<u64>() {
        Ok(n) if n > 0 => Ok(std::time::Duration::from_secs(n.saturating_mul(seconds))),
        _ => Err(format!(
            "`{text}` is not an interval: a number above 0 and s, m, h or d (6h)"
        )),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn backup_intervals_read_as_people_write_them_and_nothing_else() {
        let secs = |t: &str| super::every(t).map(|d| d.as_secs());
        assert_eq!(secs("90s"), Ok(90));
        assert_eq!(secs(" 30m"), Ok(1_800));
        assert_eq!(secs("6h"), Ok(21_600));
        assert_eq!(secs("1d"), Ok(86_400));
        for bad in ["", "h", "0h", "6", "6 h", "-1h", "6é", "é", "1.5h"] {
            assert!(secs(bad).is_err(), "{bad}");
        }
    }
}
