//! `kassa hq …`: run head office, register stores and terminals, publish reference data.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use domain::{StoreId, TerminalId};

/// Arguments of `kassa hq`.
#[derive(Debug, clap::Args)]
pub struct HqArgs {
    /// Data directory for the embedded SQLite database (the default store).
    #[arg(long, env = "KASSA_HQ_DATA", global = true)]
    data: Option<PathBuf>,
    /// A PostgreSQL URL (`postgres://user@host/db`) instead of the embedded database.
    #[arg(
        long,
        env = "KASSA_HQ_DATABASE_URL",
        global = true,
        conflicts_with = "data"
    )]
    database_url: Option<String>,
    /// The chain's PIN pepper (a file holding 64 hex digits), shared with every store
    /// (`kassa store provision --pin-pepper-file`). With `--data` and no file, HQ keeps its own
    /// in `DIR/keys/pin.pepper`; copy that one to the stores.
    #[arg(long, env = "KASSA_PIN_PEPPER_FILE", global = true)]
    pin_pepper_file: Option<PathBuf>,
    /// Where the chain's CA and HQ's certificate are kept (`kassa hq tls init` writes them):
    /// `DIR/tls` under `--data` unless given.
    #[arg(long, env = "KASSA_HQ_TLS_DIR", global = true)]
    tls_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: HqCommand,
}

#[derive(Debug, clap::Subcommand)]
enum HqCommand {
    /// Serve sync, the read API and metrics.
    Run {
        /// Listen address.
        #[arg(long, env = "KASSA_HQ_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// A bearer token that reads the whole read API (for an operator's scripts); people sign in
        /// and other systems use API keys.
        #[arg(long, env = "KASSA_HQ_API_TOKEN", hide_env_values = true)]
        api_token: Option<String>,
        /// `/metrics` answers only a reader with `fleet:read` (a signed-in person, an API key
        /// or the read-API token) instead of anyone who can reach HQ.
        #[arg(long, env = "KASSA_HQ_CLOSE_METRICS")]
        close_metrics: bool,
        /// People reach HQ over HTTPS (a TLS-terminating proxy in front of it): the session
        /// cookie is marked `Secure`, so a browser never sends it over plain HTTP.
        #[arg(long, env = "KASSA_HQ_SECURE_COOKIES")]
        secure_cookies: bool,
        /// The wait before the first retry of a failed webhook delivery, in milliseconds; it
        /// doubles per failed attempt up to an hour, for 72 hours.
        #[arg(long, env = "KASSA_HQ_WEBHOOK_RETRY_MS", default_value_t = 5_000,
              value_parser = clap::value_parser!(i64).range(100..=3_600_000))]
        webhook_retry_ms: i64,
        /// HQ's certificate chain (PEM, its own certificate first) instead of the one `kassa
        /// hq tls init` made.
        #[arg(long, env = "KASSA_HQ_TLS_CERT", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The private key of `--tls-cert` (PEM).
        #[arg(long, env = "KASSA_HQ_TLS_KEY", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Serve plain HTTP: for a lab, or behind a proxy that terminates TLS. Stores then need
        /// `--insecure-http` too.
        #[arg(long, env = "KASSA_HQ_INSECURE_HTTP", conflicts_with_all = ["tls_cert", "tls_key"])]
        insecure_http: bool,
        /// Keep the backups store nodes send (`kassa store run --backup-to-hq`) in this
        /// directory, a folder per store. They arrive encrypted to the chain's recovery key:
        /// HQ cannot read them. Without it, HQ takes none.
        #[arg(long, env = "KASSA_HQ_STORE_BACKUPS")]
        store_backups: Option<PathBuf>,
        /// How many of each store's newest backups HQ keeps.
        #[arg(long, env = "KASSA_HQ_STORE_BACKUPS_KEEP", default_value_t = 7,
              value_parser = clap::value_parser!(u32).range(1..=1000), requires = "store_backups")]
        store_backups_keep: u32,
        /// The MiB the store backups' disk keeps free: a backup that would leave less is
        /// refused (the node tries again later), so backups never fill a disk HQ's database may
        /// share.
        #[arg(
            long,
            env = "KASSA_HQ_STORE_BACKUPS_MIN_FREE_MIB",
            default_value_t = 1024,
            requires = "store_backups"
        )]
        store_backups_min_free_mib: u64,
    },
    /// The chain's certificate authority and HQ's HTTPS certificate.
    Tls {
        #[command(subcommand)]
        command: TlsCommand,
    },
    /// Stores.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// The chain's licence from its vendor.
    Licence {
        #[command(subcommand)]
        command: LicenceCommand,
    },
    /// Fiscal receipts the tills made (Austria: RKSV).
    Fiscal {
        #[command(subcommand)]
        command: FiscalCommand,
    },
    /// Terminals.
    Terminal {
        #[command(subcommand)]
        command: TerminalCommand,
    },
    /// People who use the back office.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// API keys for other systems (each with scopes; recorded in the audit log).
    ApiKey {
        #[command(subcommand)]
        command: ApiKeyCommand,
    },
    /// Publish a reference data set (`kassa-seed/1`) as the new state; stores pull the changes.
    Publish {
        /// The file.
        file: PathBuf,
    },
}

#[derive(Debug, clap::Subcommand)]
enum StoreCommand {
    /// Register a new store. With `--url`, print its one-time enrolment code (for `kassa store
    /// enrol`); without, its sync credential (shown once). An existing store is refused: see
    /// `enrol` and `rotate-credential`.
    Add {
        /// Store id.
        #[arg(long)]
        id: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// HQ's URL as the store reaches it (`https://hq.example.com:8443`): print an
        /// enrolment code instead of the credential.
        #[arg(long)]
        url: Option<String>,
        /// How long the enrolment code works, in hours.
        #[arg(long, default_value_t = hq::enrol::DEFAULT_HOURS)]
        hours: u32,
    },
    /// Print a one-time enrolment code for a registered store (a new store PC, or a node set
    /// up again); an earlier code not yet used stops working. Recorded in the audit log.
    Enrol {
        /// Store id.
        #[arg(long)]
        id: String,
        /// HQ's URL as the store reaches it (`https://hq.example.com:8443`).
        #[arg(long)]
        url: String,
        /// How long the code works, in hours.
        #[arg(long, default_value_t = hq::enrol::DEFAULT_HOURS)]
        hours: u32,
    },
    /// Issue a registered store a new sync credential and print it. The old one is refused
    /// from then on: restart the store with the new one.
    RotateCredential {
        /// Store id.
        #[arg(long)]
        id: String,
    },
    /// Mutual TLS for a store: with `--require`, HQ takes a request made with the store's
    /// credential only over a connection on which the node presented its own client
    /// certificate (enrolment gives it one); `--allow` goes back to the credential alone.
    /// Recorded in the audit log.
    ClientCert {
        /// Store id.
        #[arg(long)]
        id: String,
        /// Require the store's client certificate.
        #[arg(long, conflicts_with = "allow", required_unless_present = "allow")]
        require: bool,
        /// Take the credential alone again.
        #[arg(long)]
        allow: bool,
    },
}

#[derive(Debug, clap::Subcommand)]
enum LicenceCommand {
    /// Install the licence file the vendor sent (its signature checked offline); it replaces
    /// the installed licence when it is of the same customer and not older. Recorded in the
    /// audit log.
    Install {
        /// The licence file.
        file: PathBuf,
        /// A vendor's public licence key to trust (repeat for several); a build with a
        /// built-in vendor key trusts that one alone.
        #[arg(long, env = "KASSA_LICENCE_KEY")]
        licence_key: Vec<PathBuf>,
    },
    /// Show the licence, what the chain uses of it and where it stands.
    Show,
}

#[derive(Debug, clap::Subcommand)]
enum TlsCommand {
    /// Make the chain's CA and HQ's certificate (in the TLS directory; refused when a CA is
    /// there). Prints the CA's fingerprint, which enrolment codes pin.
    Init {
        /// The chain's name, in the CA's name.
        #[arg(long, default_value = "Kassa")]
        chain: String,
        /// A host name or IP address stores reach HQ by (repeat for several).
        #[arg(long = "name", required = true)]
        names: Vec<String>,
    },
    /// Issue HQ a new certificate under the chain's CA (before the old one expires, or for
    /// other names); restart HQ to serve it. Stores keep trusting the same CA.
    Renew {
        /// A host name or IP address stores reach HQ by (repeat for several).
        #[arg(long = "name", required = true)]
        names: Vec<String>,
    },
    /// Show the CA's fingerprint and how long HQ's certificate has left.
    Show,
}

#[derive(Debug, clap::Subcommand)]
enum FiscalCommand {
    /// Write the DEP export of every till of a store, as HQ holds it, into a directory
    /// (`<till>.dep7.json`); the cryptographic material container comes from the store
    /// (`kassa store fiscal export`), which holds the AES key and the device.
    Export {
        /// The store.
        #[arg(long)]
        store: String,
        /// The directory to write into (made when missing).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, clap::Subcommand)]
enum UserCommand {
    /// Add a user (the first admin comes from here); recorded in the audit log as done by `cli`.
    Add {
        /// Sign-in name: a-z, 0-9, `.`, `_` and `-`.
        #[arg(long)]
        name: String,
        /// The name shown (defaults to the sign-in name).
        #[arg(long)]
        display_name: Option<String>,
        /// admin, merchandiser, store-manager, finance, support or auditor.
        #[arg(long)]
        role: String,
        /// A store a store manager runs (repeat for several).
        #[arg(long = "store")]
        stores: Vec<String>,
        /// A file whose first line is the password (at least 12 characters), or `-` to read it
        /// from standard input; never given on the command line, where others could see it.
        #[arg(long)]
        password_file: PathBuf,
    },
}

#[derive(Debug, clap::Subcommand)]
enum ApiKeyCommand {
    /// Make a key; its secret is printed once and never kept.
    Create {
        /// What it is for (shown in lists and the audit log).
        #[arg(long)]
        name: String,
        /// A scope: catalog:read, catalog:write, stock:read, reports:read, fleet:read,
        /// audit:read, exceptions:write, stores:write, reservations:write, orders:read,
        /// orders:write or webhooks:write (repeat for several).
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
    },
    /// List the keys (never their secrets).
    List,
    /// Replace a key with a new one of the same name and scopes; the old one keeps working for
    /// the overlap, then expires.
    Rotate {
        /// The key's id (`key-…`).
        #[arg(long)]
        id: String,
        /// How long the old key keeps working, in hours.
        #[arg(long, default_value_t = 24)]
        overlap_hours: u32,
    },
    /// Revoke a key at once.
    Revoke {
        /// The key's id (`key-…`).
        #[arg(long)]
        id: String,
    },
}

#[derive(Debug, clap::Subcommand)]
enum TerminalCommand {
    /// Register a terminal with the public key `kassa store provision` printed.
    Add {
        /// The store.
        #[arg(long)]
        store: String,
        /// Terminal id.
        #[arg(long)]
        id: String,
        /// Public key (hex).
        #[arg(long)]
        public_key: String,
    },
}

fn database_url(args: &HqArgs) -> anyhow::Result<String> {
    match (&args.database_url, &args.data) {
        (Some(url), _) => Ok(url.clone()),
        (None, Some(dir)) => Ok(hq::db::sqlite_url(dir)?),
        (None, None) => {
            anyhow::bail!("--data DIR (embedded SQLite) or --database-url postgres://… is required")
        }
    }
}

/// The chain's PIN pepper: from `--pin-pepper-file`, else the one kept in the data directory.
fn pin_pepper(
    data: Option<&std::path::Path>,
    file: Option<&std::path::Path>,
) -> anyhow::Result<[u8; 32]> {
    let given = file
        .map(|f| std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display())))
        .transpose()?;
    match (data, given) {
        (Some(dir), given) => Ok(store::keys::pepper(dir, given.as_deref())?),
        (None, Some(hex_text)) => <[u8; 32]>::try_from(hex::decode(hex_text.trim())?)
            .map_err(|_| anyhow::anyhow!("--pin-pepper-file must hold 64 hex digits")),
        (None, None) => anyhow::bail!(
            "publishing staff needs the chain's PIN pepper: give --pin-pepper-file FILE"
        ),
    }
}

/// The TLS directory: `--tls-dir`, else `tls` under `--data`.
fn tls_dir(data: &Option<PathBuf>, given: &Option<PathBuf>) -> anyhow::Result<PathBuf> {
    given
        .clone()
        .or_else(|| data.as_ref().map(|d| d.join("tls")))
        .context("--tls-dir DIR is needed: with --database-url, HQ has no data directory to keep its certificates in")
}

/// How `kassa hq run` serves.
#[derive(Default)]
struct Https {
    /// HTTPS with this configuration; plain HTTP without.
    config: Option<Arc<tls::rustls::ServerConfig>>,
    /// The chain's CA, for enrolment codes and to verify client certificates.
    ca_pem: Option<String>,
    /// The chain's CA with its key, for the store nodes' client certificates.
    client_ca: Option<Arc<tls::Authority>>,
}

/// What `kassa hq run` serves: HTTPS with the given files, else with the TLS directory's, or
/// plain HTTP when asked for; and the chain's CA, for enrolment codes and (with its key at hand)
/// the store nodes' client certificates.
fn https(
    data: &Option<PathBuf>,
    dir: &Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    insecure_http: bool,
) -> anyhow::Result<Https> {
    if insecure_http {
        tracing::warn!(
            "serving plain HTTP (--insecure-http): credentials cross the network in clear"
        );
        return Ok(Https::default());
    }
    let dir = tls_dir(data, dir).ok();
    let ca_pem = dir
        .as_ref()
        .and_then(|d| std::fs::read_to_string(d.join(CA_FILE)).ok());
    let client_ca = match &dir {
        Some(d) if d.join(CA_KEY_FILE).exists() => Some(Arc::new(
            tls::Authority::load(&d.join(CA_FILE), &d.join(CA_KEY_FILE))
                .context("the chain's CA, for the store nodes' client certificates")?,
        )),
        _ => None,
    };
    let (cert, key) = match (cert, key, &dir) {
        (Some(cert), Some(key), _) => (cert, key),
        (_, _, Some(d)) if d.join(CERT_FILE).exists() => (d.join(CERT_FILE), d.join(KEY_FILE)),
        _ => anyhow::bail!(
            "HQ serves HTTPS: run `kassa hq tls init --name HOST` once (the chain's CA and HQ's certificate{}), or give --tls-cert and --tls-key; --insecure-http serves plain HTTP (a lab, or behind a proxy that terminates TLS)",
            dir.map(|d| format!(", in {}", d.display()))
                .unwrap_or_default()
        ),
    };
    let identity = tls::Identity::load(&cert, &key)?;
    let config = identity
        .server_config(ca_pem.as_deref())
        .with_context(|| format!("{} and {}", cert.display(), key.display()))?;
    match identity.days_left() {
        Ok(days) if days < 0 => anyhow::bail!(
            "HQ's certificate {} has expired: `kassa hq tls renew --name HOST` issues a new one",
            cert.display()
        ),
        Ok(days) if days < 30 => tracing::warn!(
            days,
            "HQ's certificate expires soon: `kassa hq tls renew --name HOST` issues a new one"
        ),
        _ => {}
    }
    Ok(Https {
        config: Some(config),
        ca_pem,
        client_ca,
    })
}

const CA_FILE: &str = "ca.pem";
const CA_KEY_FILE: &str = "ca.key";
const CERT_FILE: &str = "hq.pem";
const KEY_FILE: &str = "hq.key";

fn tls_command(
    data: &Option<PathBuf>,
    dir: &Option<PathBuf>,
    command: TlsCommand,
) -> anyhow::Result<()> {
    let dir = tls_dir(data, dir)?;
    let (ca_file, ca_key) = (dir.join(CA_FILE), dir.join(CA_KEY_FILE));
    let issue = |ca: &tls::Authority, names: &[String]| -> anyhow::Result<()> {
        let identity = ca.issue_server(names)?;
        // Written beside, then renamed: a running HQ or a crash never sees half a pair.
        let (cert_new, key_new) = (dir.join("hq.pem.new"), dir.join("hq.key.new"));
        identity.save(&cert_new, &key_new)?;
        std::fs::rename(&key_new, dir.join(KEY_FILE))?;
        std::fs::rename(&cert_new, dir.join(CERT_FILE))?;
        println!(
            "HQ's certificate for {}: {} (valid {} days; restart HQ to serve it)",
            names.join(", "),
            dir.join(CERT_FILE).display(),
            tls::SERVER_DAYS
        );
        Ok(())
    };
    match command {
        TlsCommand::Init { chain, names } => {
            anyhow::ensure!(
                !ca_file.exists(),
                "{} holds a CA already; the stores trust it. `kassa hq tls renew --name HOST` issues HQ a new certificate under it",
                dir.display()
            );
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let ca = tls::Authority::create(&chain)?;
            ca.save(&ca_file, &ca_key)?;
            println!(
                "the chain's CA: {} (its key: {}; keep it safe, offline if you can)",
                ca_file.display(),
                ca_key.display()
            );
            println!(
                "its SHA-256 fingerprint, which enrolment codes pin: {}",
                ca.fingerprint()
            );
            issue(&ca, &names)?;
        }
        TlsCommand::Renew { names } => {
            let ca = tls::Authority::load(&ca_file, &ca_key)
                .context("the chain's CA (made by `kassa hq tls init`)")?;
            issue(&ca, &names)?;
        }
        TlsCommand::Show => {
            let ca = std::fs::read_to_string(&ca_file).with_context(|| {
                format!(
                    "cannot read {} (run `kassa hq tls init`)",
                    ca_file.display()
                )
            })?;
            println!("the chain's CA: {}", ca_file.display());
            println!("SHA-256 fingerprint: {}", tls::fingerprint(&ca)?);
            let identity = tls::Identity::load(&dir.join(CERT_FILE), &dir.join(KEY_FILE))?;
            println!("HQ's certificate: {} days left", identity.days_left()?);
        }
    }
    Ok(())
}

/// Prints a store's enrolment code, pinning the CA in `tls_dir` for an https URL.
async fn print_code(
    db: &hq::db::Db,
    store: &StoreId,
    url: String,
    hours: u32,
    tls_dir: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let ca_pem = match tls_dir {
        Some(dir) if url.starts_with("https://") => {
            Some(std::fs::read_to_string(dir.join(CA_FILE)).with_context(|| {
                format!(
                    "an https URL needs the chain's CA: cannot read {} (run `kassa hq tls init`)",
                    dir.join(CA_FILE).display()
                )
            })?)
        }
        _ => None,
    };
    let code = hq::enrol::issue(db, store, &hq::enrol::Issue { url, ca_pem, hours }, "cli").await?;
    eprintln!(
        "enrolment code for store {store} (works once, until {}); on the store's PC run `kassa store enrol CODE --terminal …`:",
        jiff::Timestamp::from_millisecond(code.expires_ms)
            .map_or_else(|_| String::new(), |t| t.to_string())
    );
    println!("{}", code.encode());
    Ok(())
}

/// Prints the licence and where the chain stands with it.
async fn print_licence(db: &hq::db::Db) -> anyhow::Result<()> {
    let report = hq::licence::report(db, jiff::Timestamp::now().as_millisecond()).await?;
    let Some(installed) = &report.licence else {
        println!(
            "no licence installed: HQ runs unrestricted ({} stores, {} terminals registered)",
            report.usage.stores, report.usage.terminals
        );
        return Ok(());
    };
    let t = &installed.terms;
    println!(
        "licence {} for {} ({}), valid through {}, signed by vendor key {}",
        t.licence, t.customer_name, t.customer, t.expires, installed.key_id
    );
    println!(
        "stores {} of {}, terminals {} of {} ({} checked in within a week); features: {}",
        report.usage.stores,
        t.stores,
        report.usage.terminals,
        t.terminals,
        report.checked_in,
        if t.features.is_empty() {
            "none".to_owned()
        } else {
            t.features.join(", ")
        }
    );
    match report.notice() {
        Some(notice) => println!("{notice}"),
        None => println!("within the licence"),
    }
    Ok(())
}

/// Runs `kassa hq …`.
pub fn run(args: HqArgs) -> anyhow::Result<()> {
    // The certificates live in files; the database is not needed for them.
    let url = match &args.command {
        HqCommand::Tls { .. } => String::new(),
        _ => database_url(&args)?,
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        match args.command {
            HqCommand::Tls { command } => tls_command(&args.data, &args.tls_dir, command)?,
            HqCommand::Run {
                listen,
                api_token,
                close_metrics,
                secure_cookies,
                webhook_retry_ms,
                tls_cert,
                tls_key,
                insecure_http,
                store_backups,
                store_backups_keep,
                store_backups_min_free_mib,
            } => {
                let Https {
                    config: tls,
                    ca_pem,
                    client_ca,
                } = https(&args.data, &args.tls_dir, tls_cert, tls_key, insecure_http)?;
                let scheme = if tls.is_some() { "https" } else { "http" };
                // The staff write API hashes PINs under the chain's pepper: the data directory's
                // own or the file given; on PostgreSQL without a file, PINs cannot be set.
                let pin_pepper =
                    pin_pepper(args.data.as_deref(), args.pin_pepper_file.as_deref()).ok();
                let app = hq::App::build(&hq::Settings {
                    database_url: url,
                    listen,
                    api_token,
                    close_metrics,
                    pin_pepper,
                    secure_cookies,
                    webhook_backoff: hq::webhooks::Backoff {
                        base_ms: webhook_retry_ms,
                        ..hq::webhooks::Backoff::default()
                    },
                    tls,
                    ca_pem,
                    client_ca,
                    store_backups: store_backups
                        .map(|dir| {
                            std::fs::create_dir_all(&dir).with_context(|| {
                                format!("--store-backups: cannot make {}", dir.display())
                            })?;
                            anyhow::Ok(hq::store_backups::StoreBackups {
                                dir,
                                keep: usize::try_from(store_backups_keep)?,
                                min_free: store_backups_min_free_mib.saturating_mul(1 << 20),
                            })
                        })
                        .transpose()?,
                })
                .await?;
                let addr = app.local_addr().context("listener has no address")?;
                println!("kassa hq listening on {scheme}://{addr}");
                app.run(crate::shutdown_signal()).await?;
            }
            HqCommand::Store {
                command:
                    StoreCommand::Add {
                        id,
                        name,
                        url: enrol_url,
                        hours,
                    },
            } => {
                let db = hq::db::open(&url).await?;
                let store = StoreId::parse(&id).map_err(|e| anyhow::anyhow!("--id: {e}"))?;
                let token = hq::add_store(&db, &store, &name).await?;
                match enrol_url {
                    Some(enrol_url) => {
                        let dir = tls_dir(&args.data, &args.tls_dir).ok();
                        print_code(&db, &store, enrol_url, hours, dir.as_deref()).await?;
                    }
                    None => println!("{token}"),
                }
            }
            HqCommand::Store {
                command:
                    StoreCommand::Enrol {
                        id,
                        url: enrol_url,
                        hours,
                    },
            } => {
                let db = hq::db::open(&url).await?;
                let store = StoreId::parse(&id).map_err(|e| anyhow::anyhow!("--id: {e}"))?;
                let dir = tls_dir(&args.data, &args.tls_dir).ok();
                print_code(&db, &store, enrol_url, hours, dir.as_deref()).await?;
            }
            HqCommand::Licence {
                command: LicenceCommand::Install { file, licence_key },
            } => {
                let named = licence_key
                    .iter()
                    .map(|p| crate::licence_cmd::read_public_key(p))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let trusted = hq::licence::trusted_keys(&named)?;
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                let db = hq::db::open(&url).await?;
                hq::licence::install(&db, &text, &trusted, "cli").await?;
                print_licence(&db).await?;
            }
            HqCommand::Licence {
                command: LicenceCommand::Show,
            } => {
                let db = hq::db::open(&url).await?;
                print_licence(&db).await?;
            }
            HqCommand::Store {
                command: StoreCommand::ClientCert { id, require, .. },
            } => {
                let db = hq::db::open(&url).await?;
                let store = StoreId::parse(&id).map_err(|e| anyhow::anyhow!("--id: {e}"))?;
                hq::require_client_cert(&db, &store, require).await?;
                println!(
                    "store {store}: {}",
                    if require {
                        "HQ takes its credential only with its client certificate (mutual TLS)"
                    } else {
                        "HQ takes its credential alone (no client certificate required)"
                    }
                );
            }
            HqCommand::Store {
                command: StoreCommand::RotateCredential { id },
            } => {
                let db = hq::db::open(&url).await?;
                let store = StoreId::parse(&id).map_err(|e| anyhow::anyhow!("--id: {e}"))?;
                let token = hq::rotate_credential(&db, &store).await?;
                eprintln!(
                    "store {store} has a new credential; the old one is refused from now on: restart the store with --hq-token set to the line below"
                );
                println!("{token}");
            }
            HqCommand::Fiscal {
                command: FiscalCommand::Export { store, out },
            } => {
                let db = hq::db::open(&url).await?;
                let exports = hq::fiscal::export_store(&db, &store).await?;
                anyhow::ensure!(
                    !exports.is_empty(),
                    "HQ holds no fiscal receipts of store {store} (is it a store whose tills are commissioned, and has it synced?)"
                );
                std::fs::create_dir_all(&out)?;
                for (terminal, export) in exports {
                    let mut files = vec![
                        ("dep7.json", export.dep.into_bytes()),
                        ("journal.jsonl", export.journal),
                    ];
                    match export.material {
                        Some(material) => {
                            files.push(("cryptographic-material.json", material.into_bytes()));
                        }
                        None => eprintln!(
                            "HQ has not had the start receipt of {terminal}: no cryptographic material container for it (take it from the store: kassa store fiscal export)"
                        ),
                    }
                    for (name, contents) in files {
                        let path = out.join(format!("{terminal}.{name}"));
                        std::fs::write(&path, contents)?;
                        println!("wrote {}", path.display());
                    }
                }
            }
            HqCommand::Terminal {
                command:
                    TerminalCommand::Add {
                        store,
                        id,
                        public_key,
                    },
            } => {
                let db = hq::db::open(&url).await?;
                let store = StoreId::parse(&store).map_err(|e| anyhow::anyhow!("--store: {e}"))?;
                let terminal = TerminalId::parse(&id).map_err(|e| anyhow::anyhow!("--id: {e}"))?;
                hq::add_terminal(&db, &store, &terminal, &public_key).await?;
                println!("terminal {terminal} registered to store {store}");
            }
            HqCommand::User {
                command:
                    UserCommand::Add {
                        name,
                        display_name,
                        role,
                        stores,
                        password_file,
                    },
            } => {
                let password = if password_file.as_os_str() == "-" {
                    let mut line = String::new();
                    std::io::stdin()
                        .read_line(&mut line)
                        .context("cannot read the password from standard input")?;
                    line
                } else {
                    std::fs::read_to_string(&password_file)
                        .with_context(|| format!("cannot read {}", password_file.display()))?
                };
                let password = password.lines().next().unwrap_or_default().to_owned();
                let role = hq::identity::Role::parse(&role)?;
                let db = hq::db::open(&url).await?;
                let user = hq::identity::add_user(
                    &db,
                    &hq::identity::NewUser {
                        display_name: display_name.unwrap_or_else(|| name.clone()),
                        name,
                        role,
                        stores,
                        password,
                    },
                    &hq::identity::Actor::Cli,
                    jiff::Timestamp::now().as_millisecond(),
                )
                .await?;
                println!("user {} added with role {}", user.name, user.role);
            }
            HqCommand::ApiKey { command } => {
                let db = hq::db::open(&url).await?;
                let (actor, now) = (
                    hq::identity::Actor::Cli,
                    jiff::Timestamp::now().as_millisecond(),
                );
                let made = match command {
                    ApiKeyCommand::Create { name, scopes } => {
                        let scopes = scopes
                            .iter()
                            .map(|s| hq::identity::Scope::parse(s))
                            .collect::<Result<Vec<_>, _>>()?;
                        hq::identity::create_api_key(&db, &actor, &name, &scopes, now).await?
                    }
                    ApiKeyCommand::Rotate { id, overlap_hours } => {
                        let overlap = i64::from(overlap_hours) * 3_600_000;
                        let made =
                            hq::identity::rotate_api_key(&db, &actor, &id, overlap, now).await?;
                        println!("{id} keeps working for {overlap_hours} hours, then expires");
                        made
                    }
                    ApiKeyCommand::Revoke { id } => {
                        hq::identity::revoke_api_key(&db, &actor, &id, now).await?;
                        println!("{id} revoked");
                        return Ok(());
                    }
                    ApiKeyCommand::List => {
                        let at = |ms: Option<i64>| {
                            ms.and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
                                .map_or_else(String::new, |t| t.to_string())
                        };
                        for k in hq::identity::api_keys(&db).await? {
                            let state = if k.live(now) { "live" } else { "not live" };
                            let scopes: Vec<&str> = k.scopes.iter().map(|s| s.as_str()).collect();
                            println!(
                                "{}\t{}\t{}\t{state}\texpires {}\trevoked {}\tmade by {}",
                                k.id,
                                k.name,
                                scopes.join(" "),
                                at(k.expires_ms),
                                at(k.revoked_ms),
                                k.created_by
                            );
                        }
                        return Ok(());
                    }
                };
                let scopes: Vec<&str> = made.key.scopes.iter().map(|s| s.as_str()).collect();
                println!(
                    "API key {} ({}) with scopes {}; its secret, shown this once:",
                    made.key.id,
                    made.key.name,
                    scopes.join(" ")
                );
                println!("{}", made.secret);
            }
            HqCommand::Publish { file } => {
                let pepper = pin_pepper(args.data.as_deref(), args.pin_pepper_file.as_deref())?;
                let db = hq::db::open(&url).await?;
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                let seed: protocol::seed::SeedDto = serde_json::from_str(&text)
                    .with_context(|| format!("{} is not a kassa-seed/1 file", file.display()))?;
                let version = hq::refdata::publish(&db, &seed, &pepper).await?;
                println!("reference data version {version}");
            }
        }
        Ok(())
    })
}
