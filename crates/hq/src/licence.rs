//! The chain's licence at HQ: installed from the vendor's signed file (`kassa hq licence
//! install`), checked offline against the vendor keys HQ trusts, and held against what the chain
//! uses. Over a limit or expired, HQ warns and admits new stores and terminals for the grace
//! period, then admits none until a renewed licence is installed. Nothing here ever stops a
//! registered till: sync, sales and reports do not look at the licence.
//!
//! Terminals check in through sync (`terminals.last_contact_ms`); the report counts those heard
//! from in the last week beside those registered.
//!
//! Without an installed licence HQ runs unrestricted (the open-source edition); once one is
//! installed it can be replaced by a newer one of the same customer, never removed.

use ed25519_dalek::VerifyingKey;
use protocol::licence::{self, LicenceFile, Standing, Terms, Usage};
use serde::Serialize;
use serde_json::json;

use crate::HqError;
use crate::db::Db;
use crate::identity::Audit;

/// A vendor key built into this binary (`KASSA_LICENCE_VENDOR_KEY`, hex, at build time). A build
/// with one trusts it alone; a build without trusts the keys its operator names.
const BUILT_IN_KEY: Option<&str> = option_env!("KASSA_LICENCE_VENDOR_KEY");

/// How long a terminal's last push counts as a check-in.
const CHECK_IN_MS: i64 = 7 * 86_400_000;

/// The vendor keys a licence may be signed with: the built-in key when this build has one
/// (then no other), else `named` (`--licence-key`).
pub fn trusted_keys(named: &[VerifyingKey]) -> Result<Vec<VerifyingKey>, HqError> {
    match BUILT_IN_KEY {
        Some(hex_key) => {
            if !named.is_empty() {
                return Err(HqError::Invalid(
                    "this build trusts its vendor's built-in licence key alone: leave out --licence-key"
                        .into(),
                ));
            }
            Ok(vec![parse_key(hex_key).map_err(HqError::Invalid)?])
        }
        None if named.is_empty() => Err(HqError::Invalid(
            "name the vendor's public licence key with --licence-key FILE (the file `kassa licence keygen` wrote beside the secret key, `.pub`)"
                .into(),
        )),
        None => Ok(named.to_vec()),
    }
}

/// A vendor's public key from its hex text (as `kassa licence keygen` writes it).
pub fn parse_key(text: &str) -> Result<VerifyingKey, String> {
    crate::terminal_key(text).map_err(|_| {
        format!(
            "`{}` is not an Ed25519 public key in hex (64 characters)",
            text.trim()
        )
    })
}

/// The installed licence.
#[derive(Debug, Clone, Serialize)]
pub struct Installed {
    /// What it grants.
    pub terms: Terms,
    /// The vendor key that signed it.
    pub key_id: String,
    /// When it was installed (ms).
    pub installed_ms: i64,
    /// Who installed it.
    pub installed_by: String,
}

/// The licence and where the chain stands with it.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The installed licence; `None`: none installed, HQ runs unrestricted.
    pub licence: Option<Installed>,
    /// Stores and terminals registered (revoked tills not counted).
    pub usage: Usage,
    /// Terminals that pushed to HQ within the last seven days.
    pub checked_in: u32,
    /// Within, in grace, or lapsed; `None` without a licence.
    pub standing: Option<Standing>,
}

impl Report {
    /// One line on the standing for a person: `None` when there is nothing to say.
    pub fn notice(&self) -> Option<String> {
        match self.standing.as_ref()? {
            Standing::Valid => None,
            Standing::Grace {
                breaches: b,
                until_ms,
            } => Some(format!(
                "{}. New stores and terminals are admitted until {}; then none until a renewed licence is installed. Registered tills sell on.",
                breaches_text(b),
                licence::day_of(*until_ms)
            )),
            Standing::Lapsed {
                breaches: b,
                since_ms,
            } => Some(format!(
                "{}. Since {} no new store or terminal is admitted: install a renewed licence (`kassa hq licence install FILE`). Registered tills sell on.",
                breaches_text(b),
                licence::day_of(*since_ms)
            )),
        }
    }
}

/// Why a chain is outside its licence, as one sentence.
fn breaches_text(breaches: &[licence::Breach]) -> String {
    breaches
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

type Row = (String, String, String, i64, String, Option<i64>);

/// The installed licence's row; `lock`: held until the transaction ends (an update that changes
/// nothing takes the row's lock on PostgreSQL; SQLite's writes are one at a time anyway), so
/// that two HQ processes admitting at once count one after the other.
async fn installed_row(
    conn: &mut sqlx::AnyConnection,
    lock: bool,
) -> Result<Option<Row>, sqlx::Error> {
    if lock {
        sqlx::query("UPDATE licence SET over_since_ms = over_since_ms WHERE id = 1")
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query_as(
        "SELECT customer, terms, file_text, installed_ms, installed_by, over_since_ms FROM licence WHERE id = 1",
    )
    .fetch_optional(conn)
    .await
}

fn terms_of(text: &str) -> Result<Terms, HqError> {
    serde_json::from_str(text)
        .map_err(|e| HqError::Invalid(format!("the installed licence's terms: {e}")))
}

async fn usage(conn: &mut sqlx::AnyConnection) -> Result<Usage, sqlx::Error> {
    let stores: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM stores")
        .fetch_one(&mut *conn)
        .await?;
    let terminals: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM terminals WHERE revoked_ms IS NULL")
            .fetch_one(&mut *conn)
            .await?;
    Ok(Usage {
        stores: u32::try_from(stores).unwrap_or(u32::MAX),
        terminals: u32::try_from(terminals).unwrap_or(u32::MAX),
    })
}

fn over(terms: &Terms, usage: Usage) -> bool {
    usage.stores > terms.stores || usage.terminals > terms.terminals
}

/// Installs a licence file: its signature checked against `trusted`, its customer the same as
/// the installed licence's, not older than it, not expired. Audited (`licence.install`) as done
/// by `actor`. Refused, nothing changes.
pub async fn install(
    db: &Db,
    text: &str,
    trusted: &[VerifyingKey],
    actor: &str,
) -> Result<Terms, HqError> {
    let invalid = |e: licence::LicenceError| HqError::Invalid(e.to_string());
    let file = LicenceFile::parse(text).map_err(invalid)?;
    let terms = file.verify(trusted).map_err(invalid)?;
    let now = crate::now_ms();
    if now >= terms.expires_after_ms() {
        return Err(HqError::Invalid(format!(
            "licence {} expired on {}: ask the vendor for a renewed licence",
            terms.licence, terms.expires
        )));
    }
    let (_guard, mut tx) = db.begin_write().await?;
    let before = installed_row(&mut tx, true).await?;
    if let Some((customer, old_terms, ..)) = &before {
        if *customer != terms.customer {
            return Err(HqError::Invalid(format!(
                "this licence is for customer `{}`, and this HQ is licensed to `{customer}`: ask the vendor for a licence of `{customer}`",
                terms.customer
            )));
        }
        let old = terms_of(old_terms)?;
        if terms.issued_day() < old.issued_day() {
            return Err(HqError::Invalid(format!(
                "licence {} was issued on {}, before the installed licence {} (issued on {}): install the newer one",
                terms.licence, terms.issued, old.licence, old.issued
            )));
        }
    }
    let used = usage(&mut tx).await?;
    let over_since =
        over(&terms, used).then(|| before.as_ref().and_then(|row| row.5).unwrap_or(now));
    sqlx::query(
        "INSERT INTO licence (id, customer, terms, file_text, installed_ms, installed_by, over_since_ms)
         VALUES (1, $1, $2, $3, $4, $5, $6)
         ON CONFLICT (id) DO UPDATE SET customer = $1, terms = $2, file_text = $3,
             installed_ms = $4, installed_by = $5, over_since_ms = $6",
    )
    .bind(&terms.customer)
    .bind(&file.terms)
    .bind(text.trim())
    .bind(now)
    .bind(actor)
    .bind(over_since)
    .execute(&mut *tx)
    .await?;
    let before_json = before.as_ref().map(|(_, old_terms, ..)| old_terms.clone());
    let after = json!({"key_id": file.key_id, "terms": terms}).to_string();
    Audit {
        at_ms: now,
        actor,
        source: None,
        action: "licence.install",
        target: Some(&format!("licence:{}", terms.licence)),
        before: before_json.as_deref(),
        after: Some(&after),
    }
    .append(&mut tx)
    .await?;
    tx.commit().await?;
    Ok(terms)
}

/// The installed licence, what the chain uses and where it stands, at `now_ms`.
pub async fn report(db: &Db, now_ms: i64) -> Result<Report, HqError> {
    let mut conn = db.pool.acquire().await?;
    let row = installed_row(&mut conn, false).await?;
    let used = usage(&mut conn).await?;
    let checked_in: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM terminals WHERE revoked_ms IS NULL AND last_contact_ms >= $1",
    )
    .bind(now_ms - CHECK_IN_MS)
    .fetch_one(&mut *conn)
    .await?;
    let checked_in = u32::try_from(checked_in).unwrap_or(u32::MAX);
    let Some((_, terms, file_text, installed_ms, installed_by, over_since)) = row else {
        return Ok(Report {
            licence: None,
            usage: used,
            checked_in,
            standing: None,
        });
    };
    let terms = terms_of(&terms)?;
    let key_id = LicenceFile::parse(&file_text)
        .map(|f| f.key_id)
        .unwrap_or_default();
    let standing = licence::standing(
        &terms,
        used,
        over(&terms, used).then(|| over_since.unwrap_or(now_ms)),
        now_ms,
    );
    Ok(Report {
        licence: Some(Installed {
            terms,
            key_id,
            installed_ms,
            installed_by,
        }),
        usage: used,
        checked_in,
        standing: Some(standing),
    })
}

/// `403 licence_lapsed`: the answer to a registration [`admit`] refused.
pub(crate) fn refusal(message: String) -> crate::api::ApiError {
    crate::api::ApiError::new(axum::http::StatusCode::FORBIDDEN, "licence_lapsed", message)
}

/// What is being added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Adding {
    /// A store.
    Store,
    /// A terminal.
    Terminal,
}

/// Admits one more store or terminal under the licence, inside the caller's write transaction:
/// refused once the chain is past its grace period (`HqError::Licence`); going over a limit
/// starts the grace period. Without a licence everything is admitted.
pub(crate) async fn admit(
    tx: &mut sqlx::AnyConnection,
    adding: Adding,
    now_ms: i64,
) -> Result<(), HqError> {
    let Some((_, terms, _, _, _, over_since)) = installed_row(tx, true).await? else {
        return Ok(());
    };
    let terms = terms_of(&terms)?;
    let before = usage(tx).await?;
    let after = match adding {
        Adding::Store => Usage {
            stores: before.stores.saturating_add(1),
            ..before
        },
        Adding::Terminal => Usage {
            terminals: before.terminals.saturating_add(1),
            ..before
        },
    };
    let since = if over(&terms, before) {
        over_since.unwrap_or(now_ms)
    } else {
        now_ms
    };
    let over_after = over(&terms, after);
    let standing = licence::standing(&terms, after, over_after.then_some(since), now_ms);
    if let Standing::Lapsed { breaches, since_ms } = &standing {
        let why = breaches_text(breaches);
        let what = match adding {
            Adding::Store => "store",
            Adding::Terminal => "terminal",
        };
        return Err(HqError::Licence(format!(
            "no new {what} is admitted: {why} (with this one), and the grace period ended on {}. Registered tills sell on; install a renewed licence (`kassa hq licence install FILE`)",
            licence::day_of(*since_ms)
        )));
    }
    let keep = over_after.then_some(since);
    if keep != over_since {
        sqlx::query("UPDATE licence SET over_since_ms = $1 WHERE id = 1")
            .bind(keep)
            .execute(&mut *tx)
            .await?;
    }
    if let Standing::Grace { until_ms, .. } = standing {
        tracing::warn!(
            adding = ?adding,
            grace_until = %licence::day_of(until_ms),
            "admitted outside the licence, within its grace period"
        );
    }
    Ok(())
}
