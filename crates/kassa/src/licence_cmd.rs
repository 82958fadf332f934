//! `kassa licence …`: the vendor's side of licences — a signing key, and licence files signed
//! with it for a customer. HQ installs them (`kassa hq licence install`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use ed25519_dalek::{SigningKey, VerifyingKey};
use protocol::licence::{self, LicenceFile, Terms};

/// Arguments of `kassa licence`.
#[derive(Debug, clap::Args)]
pub struct LicenceArgs {
    #[command(subcommand)]
    command: LicenceCommand,
}

#[derive(Debug, clap::Subcommand)]
enum LicenceCommand {
    /// Make the vendor's signing key: the secret key in FILE (readable by its owner alone), the
    /// public key HQs trust in FILE.pub. Refused when FILE exists.
    Keygen {
        /// Where to write the secret key.
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign a licence for a customer and write it to a file.
    Issue {
        /// The vendor's secret key (`kassa licence keygen`).
        #[arg(long)]
        key: PathBuf,
        /// The licence's id (the vendor's reference).
        #[arg(long)]
        licence: String,
        /// The customer's id; every licence of one chain names the same.
        #[arg(long)]
        customer: String,
        /// The customer's name, as shown.
        #[arg(long)]
        customer_name: String,
        /// Stores allowed.
        #[arg(long)]
        stores: u32,
        /// Terminals (tills) allowed.
        #[arg(long)]
        terminals: u32,
        /// The last day it is valid (YYYY-MM-DD, UTC).
        #[arg(long)]
        expires: String,
        /// The day of issue (YYYY-MM-DD); today (UTC) unless given.
        #[arg(long)]
        issued: Option<String>,
        /// Days of grace after expiry or after going over a limit.
        #[arg(long, default_value_t = licence::DEFAULT_GRACE_DAYS)]
        grace_days: u32,
        /// A feature the licence names (repeat for several).
        #[arg(long = "feature")]
        features: Vec<String>,
        /// Where to write the licence file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Check a licence file's signature against a vendor's public key and print its terms.
    Show {
        /// The licence file.
        file: PathBuf,
        /// The vendor's public key (FILE.pub of `kassa licence keygen`).
        #[arg(long)]
        licence_key: PathBuf,
    },
}

/// Reads a vendor's public key file (hex).
pub fn read_public_key(path: &Path) -> anyhow::Result<VerifyingKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the licence key {}", path.display()))?;
    hq::licence::parse_key(&text)
        .map_err(|e| anyhow::anyhow!("licence key {}: {e}", path.display()))
}

/// Reads the vendor's secret key file.
pub fn read_secret_key(path: &Path) -> anyhow::Result<SigningKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the vendor key {}", path.display()))?;
    let seed = hex::decode(text.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .with_context(|| {
            format!(
                "{} is not a vendor secret key (64 hex digits, as `kassa licence keygen` writes)",
                path.display()
            )
        })?;
    Ok(SigningKey::from_bytes(&seed))
}

/// The public key file beside a secret key file.
pub fn public_key_path(secret: &Path) -> PathBuf {
    let mut name = secret.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// Makes a vendor key pair (`FILE`, `FILE.pub`); returns the signing key.
pub fn keygen(out: &Path) -> anyhow::Result<SigningKey> {
    anyhow::ensure!(
        !out.exists(),
        "{} exists: a vendor key is made once (licences signed with it would stop verifying)",
        out.display()
    );
    let mut seed = [0_u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let key = SigningKey::from_bytes(&seed);
    tls::write_private(out, hex::encode(seed).as_bytes())
        .with_context(|| format!("cannot write {}", out.display()))?;
    std::fs::write(
        public_key_path(out),
        format!("{}\n", hex::encode(key.verifying_key().as_bytes())),
    )?;
    Ok(key)
}

fn print_terms(terms: &Terms, key_id: &str) {
    println!(
        "licence {} for {} ({}): {} stores, {} terminals, issued {}, valid through {}, {} days of grace; features: {}; signed by vendor key {key_id}",
        terms.licence,
        terms.customer_name,
        terms.customer,
        terms.stores,
        terms.terminals,
        terms.issued,
        terms.expires,
        terms.grace_days,
        if terms.features.is_empty() {
            "none".to_owned()
        } else {
            terms.features.join(", ")
        }
    );
}

/// Runs `kassa licence …`.
pub fn run(args: LicenceArgs) -> anyhow::Result<()> {
    match args.command {
        LicenceCommand::Keygen { out } => {
            let key = keygen(&out)?;
            println!(
                "vendor key {} written to {} (keep it secret and backed up); HQs trust {}",
                licence::key_id(&key.verifying_key()),
                out.display(),
                public_key_path(&out).display()
            );
        }
        LicenceCommand::Issue {
            key,
            licence,
            customer,
            customer_name,
            stores,
            terminals,
            expires,
            issued,
            grace_days,
            features,
            out,
        } => {
            let key = read_secret_key(&key)?;
            let terms = Terms {
                licence,
                customer,
                customer_name,
                stores,
                terminals,
                issued: issued.unwrap_or_else(|| {
                    jiff::Timestamp::now()
                        .to_zoned(jiff::tz::TimeZone::UTC)
                        .date()
                        .to_string()
                }),
                expires,
                grace_days,
                features,
            };
            let file = terms.sign(&key)?;
            std::fs::write(&out, file.to_text())
                .with_context(|| format!("cannot write {}", out.display()))?;
            print_terms(&terms, &file.key_id);
            println!("written to {}", out.display());
        }
        LicenceCommand::Show { file, licence_key } => {
            let key = read_public_key(&licence_key)?;
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let licence = LicenceFile::parse(&text)?;
            let terms = licence.verify(&[key])?;
            print_terms(&terms, &licence.key_id);
        }
    }
    Ok(())
}
