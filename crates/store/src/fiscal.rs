//! The node's fiscal port: a till commissioned for a fiscal regime (Austria's RKSV, through
//! the `fiscal` crate) gets the regime's document for each of its receipts, made by the ledger
//! writer in the transaction of the receipt, with no network, and chained right after it as a
//! `FiscalReceipt` event of the till. The regime's own receipts come when they are due: the
//! start receipt when the till starts after commissioning, the month's null receipt (January's
//! is the year's) before the first receipt of a month, the Sammelbeleg before the first signed
//! receipt after the signature device failed. A sale is never refused for the device: while it
//! fails, receipts go on marked "Sicherheitseinrichtung ausgefallen".
//!
//! What a till is commissioned with is kept in `fiscal_registers` (its register id, AES key,
//! signature device and time zone) with the register's state after its last receipt; every
//! document in `fiscal_receipts`, which the DEP export reads.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use domain::TerminalId;
use domain::ledger::FiscalReceipt;
use fiscal::rksv::dep::{CryptographicMaterial, Dep};
use fiscal::rksv::{Amounts, ColumnTable, Kind, Receipt, Register, RegisterState, RksvError};
use fiscal::signer::{Signer, SoftwareKeyNotALegalDevice};
use serde::{Deserialize, Serialize};
use sqlx::{Row, SqliteConnection, SqlitePool};

use crate::ledger::WriteError;

/// The regime of Austria's RKSV.
pub const RKSV: &str = "AT-RKSV";

/// The signature device a till signs with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum DeviceConfig {
    /// A P-256 key in a PKCS#8 PEM file. Not a legal device: for the demo and tests.
    SoftwareKeyNotALegalDevice {
        /// The key file (relative to the data directory, or absolute).
        key_file: PathBuf,
        /// The key id receipts name it with (`U:ATU12345678-K1`).
        key_id: String,
        /// A certificate of the key (for tests of certified devices; a real one is a card's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        certificate: Option<CertificateConfig>,
    },
    /// A key pair on a PKCS#11 token (a smart card, an HSM).
    Pkcs11 {
        /// The PKCS#11 module (`/usr/lib/…/opensc-pkcs11.so`).
        module: PathBuf,
        /// The token's label.
        token: String,
        /// A file whose first line is the user PIN.
        pin_file: PathBuf,
        /// The key pair's label.
        key_label: String,
        /// The key id receipts name it with.
        key_id: String,
        /// The key's certificate, when a certification service provider certified it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        certificate: Option<CertificateConfig>,
    },
}

/// The certificate of a device's key: receipts then name the device by the provider's id and
/// the certificate's serial number, and the DEP export carries the certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateConfig {
    /// The certificate, PEM or DER (relative to the data directory, or absolute).
    pub file: PathBuf,
    /// The certification service provider's id (`AT1` A-Trust, `AT2` GlobalTrust, …).
    pub provider: String,
}

/// What a till is commissioned with.
#[derive(Debug, Clone)]
pub struct Commission {
    /// The register id (Kassen-ID) as registered with the tax office.
    pub register_id: String,
    /// The register's AES-256 key, base64.
    pub aes_key: String,
    /// The signature device.
    pub device: DeviceConfig,
    /// The time zone receipts are dated in (`Europe/Vienna`).
    pub time_zone: String,
}

/// A commissioned till, as the ledger writer keeps it.
#[derive(Clone)]
pub struct FiscalTill {
    register: Register,
    device: Arc<dyn Signer>,
    zone: jiff::tz::TimeZone,
    columns: Arc<ColumnTable>,
    /// The Schlussbeleg's number, once the register is closed.
    closed: Option<String>,
}

impl std::fmt::Debug for FiscalTill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FiscalTill")
            .field("register", &self.register)
            .finish_non_exhaustive()
    }
}

fn fiscal_error(e: impl std::fmt::Display) -> WriteError {
    WriteError::Db(format!("fiscal: {e}"))
}

fn resolve(data_dir: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_owned()
    } else {
        data_dir.join(path)
    }
}

/// Opens the device `config` names (with its certificate, checked against its key, when it
/// has one).
pub fn open_device(data_dir: &Path, config: &DeviceConfig) -> Result<Arc<dyn Signer>, String> {
    let (device, certificate): (Box<dyn Signer>, _) = match config {
        DeviceConfig::SoftwareKeyNotALegalDevice {
            key_file,
            key_id,
            certificate,
        } => {
            let path = resolve(data_dir, key_file);
            let pem = std::fs::read_to_string(&path)
                .map_err(|e| format!("the key file {}: {e}", path.display()))?;
            (
                Box::new(
                    SoftwareKeyNotALegalDevice::from_pkcs8_pem(&pem, key_id)
                        .map_err(|e| e.to_string())?,
                ),
                certificate,
            )
        }
        DeviceConfig::Pkcs11 {
            module,
            token,
            pin_file,
            key_label,
            key_id,
            certificate,
        } => {
            let path = resolve(data_dir, pin_file);
            let pin = std::fs::read_to_string(&path)
                .map_err(|e| format!("the PIN file {}: {e}", path.display()))?;
            let pin = pin.lines().next().unwrap_or_default().trim().to_owned();
            let token = fiscal::signer::pkcs11::Token::open(module, token, &pin)
                .map_err(|e| e.to_string())?;
            (
                Box::new(token.device(key_label, key_id).map_err(|e| e.to_string())?),
                certificate,
            )
        }
    };
    let Some(certificate) = certificate else {
        return Ok(Arc::from(device));
    };
    let path = resolve(data_dir, &certificate.file);
    let bytes =
        std::fs::read(&path).map_err(|e| format!("the certificate {}: {e}", path.display()))?;
    let certified = fiscal::signer::Certified::new(
        device,
        &bytes,
        &certificate.provider,
        jiff::Timestamp::now().as_second(),
    )
    .map_err(|e| format!("the certificate {}: {e}", path.display()))?;
    Ok(Arc::new(certified))
}

/// The register's AES key kept in `path` (base64, one line); a new key is made and written
/// there when the file does not exist.
pub fn ensure_aes_key(path: &Path) -> Result<String, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text.trim().to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = fiscal::rksv::new_aes_key().map_err(|e| e.to_string())?;
            std::fs::write(path, format!("{key}\n"))
                .map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(key)
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// A software key (not a legal device) in `path`, made when the file does not exist.
pub fn ensure_software_key(path: &Path, key_id: &str) -> Result<(), String> {
    if path.exists() {
        return Ok(());
    }
    let key = SoftwareKeyNotALegalDevice::generate(key_id).map_err(|e| e.to_string())?;
    std::fs::write(path, key.to_pkcs8_pem().map_err(|e| e.to_string())?)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Commissions `terminal` for the RKSV: checks the AES key, the device (it must sign; a
/// certificate must be for its key) and the time zone, and keeps them; the till signs its start
/// receipt when the node next starts. A till commissioned before is refused. Answers the name
/// receipts give the device (a certified one's certificate serial).
pub async fn commission(
    pool: &SqlitePool,
    data_dir: &Path,
    terminal: &TerminalId,
    commission: &Commission,
) -> Result<String, String> {
    Register::new(&commission.register_id, &commission.aes_key).map_err(|e| e.to_string())?;
    // The till's receipt numbers (`<terminal>-000042`) go into the code, whose separator is `_`.
    if terminal.as_str().contains('_') {
        return Err(format!(
            "terminal {terminal}: an id with `_` cannot number RKSV receipts (`_` separates the code's fields); register the till under an id without it"
        ));
    }
    jiff::tz::TimeZone::get(&commission.time_zone)
        .map_err(|e| format!("time zone `{}`: {e}", commission.time_zone))?;
    let device = open_device(data_dir, &commission.device)?;
    device
        .sign(b"commissioning")
        .map_err(|e| format!("the signature device does not sign: {e}"))?;
    // A certified device is named by its certificate's serial, whatever key id was given.
    let config = commission.device.clone().named(device.key_id());
    let known: Option<String> = sqlx::query_scalar("SELECT id FROM terminals WHERE id = $1")
        .bind(terminal.as_str())
        .fetch_optional(pool)
        .await
        .map_err(|e| e.to_string())?;
    if known.is_none() {
        return Err(format!("terminal {terminal} is not hosted by this node"));
    }
    let done = sqlx::query(
        "INSERT INTO fiscal_registers (terminal, regime, register_id, aes_key, device, time_zone)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (terminal) DO NOTHING",
    )
    .bind(terminal.as_str())
    .bind(RKSV)
    .bind(&commission.register_id)
    .bind(&commission.aes_key)
    .bind(serde_json::to_string(&config).map_err(|e| e.to_string())?)
    .bind(&commission.time_zone)
    .execute(pool)
    .await
    .map_err(|e| e.to_string())?;
    if done.rows_affected() == 0 {
        return Err(format!(
            "terminal {terminal} is commissioned already (its register and receipts stay as they are)"
        ));
    }
    Ok(device.key_id().to_owned())
}

/// A register's state after its last receipt, as columns `turnover`, `last_jws` and `last_at`,
/// with the `FROM` over `fiscal_registers r`: the last receipt's row, or the register's own
/// columns for a till whose last receipt predates the receipts carrying it (or that has none).
const STATE: &str = "COALESCE(last.turnover, r.turnover) AS turnover,
     COALESCE(last.document, r.last_jws) AS last_jws,
     CASE WHEN last.turnover IS NULL THEN r.last_at ELSE last.at END AS last_at
     FROM fiscal_registers r LEFT JOIN fiscal_receipts last
       ON last.terminal = r.terminal
      AND last.seq = (SELECT MAX(seq) FROM fiscal_receipts f WHERE f.terminal = r.terminal)";

/// The commissioned tills of this node, with their state after their last receipt. A device
/// that cannot be opened is opened as failed: its till goes on selling, marking its receipts.
pub async fn load(
    pool: &SqlitePool,
    data_dir: &Path,
) -> Result<HashMap<TerminalId, FiscalTill>, WriteError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT r.terminal, r.register_id, r.aes_key, r.device, r.time_zone, r.closed_receipt, {STATE}"
    )))
    .fetch_all(pool)
    .await?;
    let columns = Arc::new(ColumnTable::austria().map_err(fiscal_error)?);
    let mut out = HashMap::new();
    for row in rows {
        let terminal = TerminalId::parse(row.get::<&str, _>("terminal")).map_err(fiscal_error)?;
        let config: DeviceConfig =
            serde_json::from_str(row.get::<&str, _>("device")).map_err(fiscal_error)?;
        let device = match open_device(data_dir, &config) {
            Ok(device) => device,
            Err(e) => {
                tracing::error!(%terminal, error = %e, "the signature device cannot be opened: receipts are marked as made without it");
                Arc::new(Unavailable::of(&config, e)) as Arc<dyn Signer>
            }
        };
        let last_at = row
            .get::<Option<String>, _>("last_at")
            .map(|t| t.parse::<jiff::Zoned>())
            .transpose()
            .map_err(fiscal_error)?;
        let register = Register::resume(
            row.get("register_id"),
            row.get("aes_key"),
            RegisterState {
                turnover: row.get("turnover"),
                last_jws: row.get("last_jws"),
                last_at,
            },
        )
        .map_err(fiscal_error)?;
        let zone =
            jiff::tz::TimeZone::get(row.get::<&str, _>("time_zone")).map_err(fiscal_error)?;
        out.insert(
            terminal,
            FiscalTill {
                register,
                device,
                zone,
                columns: columns.clone(),
                closed: row.get("closed_receipt"),
            },
        );
    }
    Ok(out)
}

impl DeviceConfig {
    /// The key id and the certification service provider receipts name the device with.
    fn names(&self) -> (&str, &str) {
        let (key_id, certificate) = match self {
            DeviceConfig::SoftwareKeyNotALegalDevice {
                key_id,
                certificate,
                ..
            }
            | DeviceConfig::Pkcs11 {
                key_id,
                certificate,
                ..
            } => (key_id, certificate),
        };
        (
            key_id,
            certificate.as_ref().map_or("AT0", |c| c.provider.as_str()),
        )
    }

    /// The same device named `name` (a certified device by its certificate's serial).
    fn named(mut self, name: &str) -> Self {
        match &mut self {
            DeviceConfig::SoftwareKeyNotALegalDevice { key_id, .. }
            | DeviceConfig::Pkcs11 { key_id, .. } => name.clone_into(key_id),
        }
        self
    }
}

/// A device that could not be opened: every signature fails, as an unplugged card's would.
#[derive(Debug)]
struct Unavailable {
    key_id: String,
    provider: String,
    why: String,
}

impl Unavailable {
    fn of(config: &DeviceConfig, why: String) -> Self {
        let (key_id, provider) = config.names();
        Self {
            key_id: key_id.to_owned(),
            provider: provider.to_owned(),
            why,
        }
    }
}

impl Signer for Unavailable {
    fn key_id(&self) -> &str {
        &self.key_id
    }
    fn provider(&self) -> &str {
        &self.provider
    }
    fn public_key_sec1(&self) -> Vec<u8> {
        Vec::new()
    }
    fn sign(&self, _: &[u8]) -> Result<[u8; 64], fiscal::signer::SignerError> {
        Err(fiscal::signer::SignerError::Failed(self.why.clone()))
    }
}

impl FiscalTill {
    /// Whether the till has made its start receipt.
    pub fn started(&self) -> bool {
        self.register.state().last_jws.is_some()
    }

    /// The Schlussbeleg's number, when the register is closed.
    pub fn closed(&self) -> Option<&str> {
        self.closed.as_deref()
    }

    /// Closes the register with the Schlussbeleg `receipt`, in `conn`'s transaction.
    pub async fn close(
        &mut self,
        conn: &mut SqliteConnection,
        terminal: &TerminalId,
        receipt: &str,
    ) -> Result<(), WriteError> {
        sqlx::query("UPDATE fiscal_registers SET closed_receipt = $1 WHERE terminal = $2")
            .bind(receipt)
            .bind(terminal.as_str())
            .execute(&mut *conn)
            .await?;
        self.closed = Some(receipt.to_owned());
        Ok(())
    }

    /// The time `at_ms` in the till's zone, to the second.
    pub fn local(&self, at_ms: i64) -> jiff::Zoned {
        let at = jiff::Timestamp::from_second(at_ms.div_euclid(1000))
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        at.to_zoned(self.zone.clone())
    }

    /// Whether a month's null receipt is due before a receipt at `at` (the last receipt was
    /// in an earlier month).
    pub fn month_due(&self, at: &jiff::Zoned) -> bool {
        self.register
            .state()
            .last_at
            .as_ref()
            .is_some_and(|last| (last.year(), last.month()) != (at.year(), at.month()))
    }

    /// The amounts per RKSV column of gross amounts per tax rate (percent text, cents).
    pub fn amounts(
        &self,
        per_rate: &[(String, i64)],
        day: jiff::civil::Date,
    ) -> Result<Amounts, RksvError> {
        self.columns
            .amounts(per_rate.iter().map(|(r, c)| (r.as_str(), *c)), day)
    }

    /// Signs one receipt; answers the event body. A Sammelbeleg due is
    /// [`RksvError::SammelbelegDue`], for the caller to make first.
    pub fn sign(
        &mut self,
        number: &str,
        at: jiff::Zoned,
        kind: Kind,
        amounts: Amounts,
    ) -> Result<FiscalReceipt, RksvError> {
        let signed = self.register.sign(
            &Receipt {
                number,
                at,
                kind,
                amounts,
            },
            self.device.as_ref(),
        )?;
        // The start receipt carries what a verifier needs beside the documents, for HQ.
        let material = match kind {
            Kind::Start => Some(
                CryptographicMaterial::of(&self.register.aes_key_base64(), &[self.device.as_ref()])
                    .ok()
                    .and_then(|m| serde_json::to_string(&m).ok())
                    .ok_or_else(|| RksvError::Device("the device's public key".into()))?,
            ),
            _ => None,
        };
        Ok(FiscalReceipt {
            regime: RKSV.into(),
            receipt: number.to_owned(),
            kind: kind_name(kind).into(),
            document: signed.jws,
            device_failed: signed.device_failed,
            material,
        })
    }

    /// Keeps the register's state and the receipt's document, in `conn`'s transaction.
    pub async fn record(
        &self,
        conn: &mut SqliteConnection,
        terminal: &TerminalId,
        seq: u64,
        receipt: &FiscalReceipt,
    ) -> Result<(), WriteError> {
        // The register's state after the receipt goes into the receipt's own row: the till's
        // state is its last receipt's row (see `load`), no second row is rewritten per receipt.
        let state = self.register.state();
        sqlx::query(
            "INSERT INTO fiscal_receipts (terminal, seq, receipt, kind, document, device_failed, turnover, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(terminal.as_str())
        .bind(i64::try_from(seq).unwrap_or(i64::MAX))
        .bind(&receipt.receipt)
        .bind(&receipt.kind)
        .bind(&receipt.document)
        .bind(i64::from(receipt.device_failed))
        .bind(state.turnover)
        .bind(state.last_at.as_ref().map(ToString::to_string))
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Start => "start",
        Kind::Standard => "standard",
        Kind::Storno => "storno",
        Kind::Training => "training",
        Kind::Null => "null",
    }
}

/// The QR code's text of the fiscal document of receipt `number`, if its till is commissioned.
pub async fn qr_of(pool: &SqlitePool, number: &str) -> Result<Option<(String, bool)>, sqlx::Error> {
    let row: Option<(String, i64)> = sqlx::query_as(
        "SELECT document, device_failed FROM fiscal_receipts WHERE receipt = $1 AND kind = 'standard'",
    )
    .bind(number)
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|(jws, failed)| Some((fiscal::rksv::qr_text(&jws)?, failed != 0))))
}

/// What the tax office gets of a till for a range of days.
#[derive(Debug)]
pub struct FiscalExport {
    /// The DEP export (DEP7): the receipts' compact JWS, JSON.
    pub dep: String,
    /// The cryptographic material container a verifier reads with it, JSON.
    pub material: String,
    /// The full journal of the till for the same days (DEP131): every event of its ledger —
    /// sales, returns, voids, cash movements, shifts, the fiscal receipts — with its hash chain
    /// and signature, as JSON lines that `kassa verify` checks.
    pub journal: Vec<u8>,
}

/// The exports of `terminal` for receipts from `from` to `to` (local dates, inclusive; all
/// when none).
pub async fn export(
    pool: &SqlitePool,
    data_dir: &Path,
    terminal: &TerminalId,
    range: Option<(jiff::civil::Date, jiff::civil::Date)>,
) -> Result<FiscalExport, String> {
    let row =
        sqlx::query("SELECT aes_key, device, time_zone FROM fiscal_registers WHERE terminal = $1")
            .bind(terminal.as_str())
            .fetch_optional(pool)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| {
                format!("terminal {terminal} is not commissioned for a fiscal regime")
            })?;
    let documents: Vec<String> =
        sqlx::query_scalar("SELECT document FROM fiscal_receipts WHERE terminal = $1 ORDER BY seq")
            .bind(terminal.as_str())
            .fetch_all(pool)
            .await
            .map_err(|e| e.to_string())?;
    let in_range = |jws: &str| {
        let Some((from, to)) = range else {
            return true;
        };
        fiscal::rksv::qr_text(jws)
            .and_then(|code| code.split('_').nth(4).map(str::to_owned))
            .and_then(|t| t.parse::<jiff::civil::DateTime>().ok())
            .is_some_and(|t| from <= t.date() && t.date() <= to)
    };
    let chosen: Vec<&String> = documents.iter().filter(|d| in_range(d)).collect();
    if chosen.is_empty() {
        return Err(format!("terminal {terminal} has no receipts in that range"));
    }
    let config: DeviceConfig =
        serde_json::from_str(row.get::<&str, _>("device")).map_err(|e| e.to_string())?;
    let device = open_device(data_dir, &config)?;
    let certificate = device.certificate_der();
    let dep = Dep::of(chosen.iter().map(|d| (d.as_str(), certificate.as_deref())));
    let material = CryptographicMaterial::of(row.get("aes_key"), &[device.as_ref()])
        .map_err(|e| e.to_string())?;
    let zone =
        jiff::tz::TimeZone::get(row.get::<&str, _>("time_zone")).map_err(|e| e.to_string())?;
    let journal = journal(pool, terminal, &zone, range).await?;
    Ok(FiscalExport {
        dep: serde_json::to_string_pretty(&dep).map_err(|e| e.to_string())?,
        material: serde_json::to_string_pretty(&material).map_err(|e| e.to_string())?,
        journal,
    })
}

/// The till's journal for the local days of `range` (all of it when none), as JSON lines.
async fn journal(
    pool: &SqlitePool,
    terminal: &TerminalId,
    zone: &jiff::tz::TimeZone,
    range: Option<(jiff::civil::Date, jiff::civil::Date)>,
) -> Result<Vec<u8>, String> {
    let start_of = |day: jiff::civil::Date| {
        day.to_zoned(zone.clone())
            .map(|z| z.timestamp().as_millisecond())
            .map_err(|e| e.to_string())
    };
    let (from_ms, until_ms) = match range {
        None => (i64::MIN, i64::MAX),
        Some((from, to)) => (
            start_of(from)?,
            start_of(to.tomorrow().map_err(|e| e.to_string())?)?,
        ),
    };
    let (first, last): (Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT min(seq), max(seq) FROM events WHERE terminal = $1 AND hlc_wall >= $2 AND hlc_wall < $3",
    )
    .bind(terminal.as_str())
    .bind(from_ms)
    .bind(until_ms)
    .fetch_one(pool)
    .await
    .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    if let (Some(first), Some(last)) = (first, last) {
        crate::verify::export_range(pool, terminal, first..=last, &mut out)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// The fiscal state of each commissioned till, for the status the tills poll: its regime and
/// register, whether it has made its start receipt, and whether its last receipt was made
/// without the signature device (then every receipt is marked until the device is back).
pub async fn status(pool: &SqlitePool) -> Result<Vec<serde_json::Value>, sqlx::Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT r.terminal, r.regime, r.register_id, r.closed_receipt, {STATE} ORDER BY r.terminal"
    )))
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let last: Option<String> = r.get("last_jws");
            serde_json::json!({
                "terminal": r.get::<String, _>("terminal"),
                "regime": r.get::<String, _>("regime"),
                "register": r.get::<String, _>("register_id"),
                "started": last.is_some(),
                "device_failed": last.as_deref().is_some_and(fiscal::rksv::device_failed),
                "last_receipt_at": r.get::<Option<String>, _>("last_at"),
                "closed_receipt": r.get::<Option<String>, _>("closed_receipt"),
            })
        })
        .collect())
}

/// Per commissioned till: since when (epoch ms) its receipts go unsigned — the first receipt
/// marked "Sicherheitseinrichtung ausgefallen" after its last signed one — or none while its
/// device signs. What the alert on the RKSV's 48 hours reads.
pub async fn unsigned_since(pool: &SqlitePool) -> Result<Vec<(String, Option<i64>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.terminal,
                (SELECT min(e.hlc_wall) FROM fiscal_receipts f
                   JOIN events e ON e.terminal = f.terminal AND e.seq = f.seq
                  WHERE f.terminal = r.terminal AND f.device_failed = 1
                    AND f.seq > coalesce((SELECT max(g.seq) FROM fiscal_receipts g
                                           WHERE g.terminal = r.terminal AND g.device_failed = 0), 0))
           FROM fiscal_registers r ORDER BY r.terminal",
    )
    .fetch_all(pool)
    .await
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TillRequest {
    terminal: String,
}

/// `POST /v1/fiscal/null-receipt`: a signed null receipt now (for an inspector, a check of the
/// device), by a supervisor or above signed in at the till.
pub(crate) async fn null_receipt(
    axum::extract::State(node): axum::extract::State<Arc<crate::node::Node>>,
    request: crate::api::WriteRequest,
) -> crate::api::ApiResult<axum::response::Response> {
    null_or_close(&node, request, false).await
}

/// `POST /v1/fiscal/close`: the Schlussbeleg — the till's register is closed for good (the
/// till is decommissioned: report it to the tax office); it rings no receipt afterwards. A
/// manager or above signed in at the till.
pub(crate) async fn close(
    axum::extract::State(node): axum::extract::State<Arc<crate::node::Node>>,
    request: crate::api::WriteRequest,
) -> crate::api::ApiResult<axum::response::Response> {
    null_or_close(&node, request, true).await
}

/// `POST /v1/fiscal/training-receipt`: a basket rung in training mode — priced as a sale
/// would be and signed as a training receipt (its counter field says `TRA`). Nothing is sold:
/// no stock moves, no money, no report counts it.
pub(crate) async fn training_receipt(
    axum::extract::State(node): axum::extract::State<Arc<crate::node::Node>>,
    crate::api::WriteRequest { key, body, caller }: crate::api::WriteRequest,
) -> crate::api::ApiResult<axum::response::Response> {
    if let Some(response) = crate::api::replay(&node, &key).await? {
        return Ok(response);
    }
    let request: TrainingRequest = body.parse()?;
    let terminal = crate::api::terminal(&node, &request.terminal)?;
    caller.at(&terminal)?;
    if request.lines.is_empty() {
        return Err(crate::api::ApiError::invalid(
            "invalid_sale",
            "lines",
            "a training receipt needs at least one line",
        ));
    }
    let ctx = crate::api::context(&node)?;
    let lines = crate::api::resolve_lines(&node, &ctx, &request.lines).await?;
    let discount = crate::api::cart_discount(request.discount.as_ref(), &ctx)?;
    let cart =
        domain::sale::price_cart(&ctx.config.jurisdiction, &lines, discount, node.clock.now())
            .map_err(crate::api::sale_error)?;
    let op = crate::ledger::Op::FiscalTraining { terminal, cart };
    Ok(crate::api::recorded(
        node.ledger.write(Some(key), op).await?,
    ))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TrainingRequest {
    terminal: String,
    lines: Vec<protocol::api::CartLineRequest>,
    #[serde(default)]
    discount: Option<protocol::api::DiscountDto>,
}

async fn null_or_close(
    node: &crate::node::Node,
    crate::api::WriteRequest { key, body, caller }: crate::api::WriteRequest,
    close: bool,
) -> crate::api::ApiResult<axum::response::Response> {
    let request: TillRequest = body.parse()?;
    let terminal = crate::api::terminal(node, &request.terminal)?;
    caller.at(&terminal)?;
    if close {
        caller.with_role(domain::staff::Role::Manager, "closing the register")?;
    } else {
        caller.with_role(domain::staff::Role::Supervisor, "a null receipt")?;
    }
    let op = crate::ledger::Op::FiscalNull { terminal, close };
    Ok(crate::api::recorded(
        node.ledger.write(Some(key), op).await?,
    ))
}
