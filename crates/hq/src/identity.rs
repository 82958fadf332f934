//! People at HQ and the audit log (ADR 0004): users with a role and a password (argon2id),
//! signing in with a lockout after repeated failures, and an append-only log of every change
//! and every sign-in, written in the transaction of what it records; API keys with scopes for
//! other systems (secrets shown once, kept hashed, rotatable with an overlap, revocable).
//! Sessions and the pages that use them build on this.

use std::fmt;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use sqlx::Row;

use crate::db::Db;

/// Wrong passwords in a row before an account is locked.
pub const SIGN_IN_ATTEMPTS: i64 = 5;
/// How long a locked account stays locked, milliseconds.
pub const LOCKOUT_MS: i64 = 15 * 60 * 1000;
/// The shortest password taken.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// What a person may do at HQ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Everything, users and keys included.
    Admin,
    /// The catalog and prices.
    Merchandiser,
    /// Their stores: staff, stock, reports, exceptions.
    StoreManager,
    /// Reports, reconciliation, exports.
    Finance,
    /// The fleet and diagnostics.
    Support,
    /// Reads everything, changes nothing.
    Auditor,
}

impl Role {
    /// Every role, in the order the back office lists them.
    pub const ALL: [Role; 6] = [
        Role::Admin,
        Role::Merchandiser,
        Role::StoreManager,
        Role::Finance,
        Role::Support,
        Role::Auditor,
    ];

    /// The role's name, as stored and typed.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Merchandiser => "merchandiser",
            Role::StoreManager => "store-manager",
            Role::Finance => "finance",
            Role::Support => "support",
            Role::Auditor => "auditor",
        }
    }

    /// The role named `name`.
    pub fn parse(name: &str) -> Result<Role, IdentityError> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == name.trim())
            .ok_or_else(|| IdentityError::Invalid {
                field: "role",
                reason: format!(
                    "`{name}` is not a role: one of {}",
                    Role::ALL.map(Role::as_str).join(", ")
                ),
            })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a user could not be added or signed in.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// A field is not acceptable.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The sign-in name is taken.
    #[error("a user `{0}` exists already")]
    UserExists(String),
    /// Unknown user or wrong password (never which of the two).
    #[error("wrong name or password")]
    WrongPassword {
        /// Wrong passwords left before the account locks (`None` for an unknown name).
        attempts_left: Option<i64>,
    },
    /// Too many wrong passwords: locked until then (epoch ms).
    #[error("too many wrong passwords: locked for {} more minutes", ((until_ms - now_ms).max(0) + 59_999) / 60_000)]
    Locked {
        /// Until when.
        until_ms: i64,
        /// When it was asked.
        now_ms: i64,
    },
    /// The account was disabled.
    #[error("this account is disabled")]
    Disabled,
    /// The password could not be hashed.
    #[error("password hashing: {0}")]
    Hash(String),
    /// No user has that name.
    #[error("no user `{0}`")]
    UnknownUser(String),
    /// No API key has that id.
    #[error("no API key `{0}`")]
    UnknownKey(String),
    /// The key was revoked or has expired.
    #[error("the API key `{0}` is revoked or has expired")]
    KeyNotLive(String),
}

/// A user to add.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Sign-in name: 1 to 64 of `a-z 0-9 . _ -` (taken in lower case).
    pub name: String,
    /// The name shown.
    pub display_name: String,
    /// The role.
    pub role: Role,
    /// The stores of a store manager (at least one, each registered); none for other roles.
    pub stores: Vec<String>,
    /// The password, at least [`MIN_PASSWORD_CHARS`] characters.
    pub password: String,
}

/// A user as HQ holds it (without the password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Sign-in name.
    pub name: String,
    /// The name shown.
    pub display_name: String,
    /// The role.
    pub role: Role,
    /// A store manager's stores.
    pub stores: Vec<String>,
}

/// Who did something, as the audit log names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A person signed in.
    User(String),
    /// A command run on the HQ machine (`kassa hq …`), by whoever can reach its database.
    Cli,
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::User(name) => write!(f, "user:{name}"),
            Actor::Cli => f.write_str("cli"),
        }
    }
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditEntry {
    /// Its position in the log.
    pub id: i64,
    /// When, epoch ms.
    pub at_ms: i64,
    /// Who (`user:NAME`, `cli`, …).
    pub actor: String,
    /// From where, when it came over the network.
    pub source: Option<String>,
    /// What (`user.add`, `sign-in`, `sign-in.refused`, …).
    pub action: String,
    /// On what.
    pub target: Option<String>,
    /// The state before, JSON.
    pub before: Option<String>,
    /// The state after, JSON.
    pub after: Option<String>,
}

/// One line to append to the audit log.
pub(crate) struct Audit<'a> {
    pub at_ms: i64,
    pub actor: &'a str,
    pub source: Option<&'a str>,
    pub action: &'a str,
    pub target: Option<&'a str>,
    pub before: Option<&'a str>,
    pub after: Option<&'a str>,
}

impl Audit<'_> {
    /// Appends the line inside `conn`'s transaction, so the record and the change it records
    /// are kept or lost together.
    pub(crate) async fn append(self, conn: &mut sqlx::AnyConnection) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO audit_log (at_ms, actor, source, action, target, before_json, after_json)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(self.at_ms)
        .bind(self.actor)
        .bind(self.source)
        .bind(self.action)
        .bind(self.target)
        .bind(self.before)
        .bind(self.after)
        .execute(conn)
        .await?;
        Ok(())
    }
}

/// Records a privileged read (an export, a gift card's account, the people and keys who may
/// act, a reconciliation): who read `action` of `target`, and what they asked (`asked`).
pub(crate) async fn record_read(
    db: &crate::db::Db,
    actor: &str,
    action: &str,
    target: &str,
    asked: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    let mut conn = db.pool.acquire().await?;
    Audit {
        at_ms: crate::now_ms(),
        actor,
        source: None,
        action,
        target: Some(target),
        before: None,
        after: Some(&asked.to_string()),
    }
    .append(&mut conn)
    .await
}

fn check_name(name: &str) -> Result<String, IdentityError> {
    let name = name.trim().to_lowercase();
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(name)
    } else {
        Err(IdentityError::Invalid {
            field: "name",
            reason: "a sign-in name is 1 to 64 of a-z, 0-9, `.`, `_` and `-`".into(),
        })
    }
}

fn hash_password(password: &str) -> Result<String, IdentityError> {
    let mut salt = [0_u8; 16];
    getrandom::fill(&mut salt).map_err(|e| IdentityError::Hash(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| IdentityError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| IdentityError::Hash(e.to_string()))
}

/// [`password_matches`] on a blocking thread: argon2 takes tens of milliseconds of CPU, which
/// must not stall the runtime threads serving the stores' sync.
async fn checked(password: &str, stored: String) -> bool {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || password_matches(&password, &stored))
        .await
        .unwrap_or(false)
}

fn password_matches(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Adds a user, recorded in the audit log as done by `actor`. Refuses a bad name, a short
/// password, a store manager without stores or with a store HQ does not know, stores given to
/// another role, and a name that is taken; a refusal writes nothing.
pub async fn add_user(
    db: &Db,
    user: &NewUser,
    actor: &Actor,
    now_ms: i64,
) -> Result<User, IdentityError> {
    let name = check_name(&user.name)?;
    let display_name = user.display_name.trim();
    if display_name.is_empty() || display_name.chars().count() > 100 {
        return Err(IdentityError::Invalid {
            field: "display_name",
            reason: "1 to 100 characters".into(),
        });
    }
    if user.password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(IdentityError::Invalid {
            field: "password",
            reason: format!("at least {MIN_PASSWORD_CHARS} characters"),
        });
    }
    let mut stores: Vec<String> = user.stores.iter().map(|s| s.trim().to_owned()).collect();
    stores.sort_unstable();
    stores.dedup();
    match (user.role, stores.is_empty()) {
        (Role::StoreManager, true) => {
            return Err(IdentityError::Invalid {
                field: "stores",
                reason: "a store manager runs at least one store".into(),
            });
        }
        (Role::StoreManager, false) => {}
        (role, false) => {
            return Err(IdentityError::Invalid {
                field: "stores",
                reason: format!("a user with role {role} sees every store: give no stores"),
            });
        }
        (_, true) => {}
    }
    // Hashing is slow by design: on a blocking thread, not the server's.
    let password = user.password.clone();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| IdentityError::Hash(e.to_string()))??;
    let (_guard, mut tx) = db.begin_write().await?;
    for store in &stores {
        let known: Option<String> = sqlx::query_scalar("SELECT id FROM stores WHERE id = $1")
            .bind(store)
            .fetch_optional(&mut *tx)
            .await?;
        if known.is_none() {
            return Err(IdentityError::Invalid {
                field: "stores",
                reason: format!("no store `{store}` at HQ"),
            });
        }
    }
    let taken: Option<String> = sqlx::query_scalar("SELECT id FROM users WHERE id = $1")
        .bind(&name)
        .fetch_optional(&mut *tx)
        .await?;
    if taken.is_some() {
        return Err(IdentityError::UserExists(name));
    }
    sqlx::query(
        "INSERT INTO users (id, display_name, role, stores, password_hash, created_ms)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&name)
    .bind(display_name)
    .bind(user.role.as_str())
    .bind(stores.join(","))
    .bind(&hash)
    .bind(now_ms)
    .execute(&mut *tx)
    .await?;
    let after = serde_json::json!({
        "name": name, "display_name": display_name, "role": user.role.as_str(), "stores": stores,
    })
    .to_string();
    Audit {
        at_ms: now_ms,
        actor: &actor.to_string(),
        source: None,
        action: "user.add",
        target: Some(&format!("user:{name}")),
        before: None,
        after: Some(&after),
    }
    .append(&mut tx)
    .await?;
    tx.commit().await?;
    Ok(User {
        name,
        display_name: display_name.to_owned(),
        role: user.role,
        stores,
    })
}

/// Signs `name` in with `password` from `source`. After [`SIGN_IN_ATTEMPTS`] wrong passwords
/// in a row the account is locked for [`LOCKOUT_MS`], even to the right password; a success
/// clears the count. Every attempt on a known account is recorded in the audit log; an unknown
/// name costs the same hashing time as a known one and answers the same error.
pub async fn sign_in(
    db: &Db,
    name: &str,
    password: &str,
    source: Option<&str>,
    now_ms: i64,
) -> Result<User, IdentityError> {
    let name = name.trim().to_lowercase();
    // The password is checked (slow by design) before the write begins, so that a sign-in never
    // holds up the other writers; the check counts only if the hash is still the one checked.
    let hash: Option<String> = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
        .bind(&name)
        .fetch_optional(&db.pool)
        .await?;
    let right = match &hash {
        Some(hash) => checked(password, hash.clone()).await,
        // The same work as a known name, so that timing does not tell which names exist.
        None => {
            let _ = checked(password, dummy_hash().to_owned()).await;
            false
        }
    };
    let (_guard, mut tx) = db.begin_write().await?;
    let row = sqlx::query(
        "SELECT display_name, role, stores, password_hash, disabled_ms, failed_sign_ins, locked_until_ms
         FROM users WHERE id = $1",
    )
    .bind(&name)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Err(IdentityError::WrongPassword {
            attempts_left: None,
        });
    };
    let target = format!("user:{name}");
    if row.get::<Option<i64>, _>("disabled_ms").is_some() {
        attempt(&mut tx, now_ms, &target, source, Some("disabled")).await?;
        tx.commit().await?;
        return Err(IdentityError::Disabled);
    }
    if let Some(until_ms) = row
        .get::<Option<i64>, _>("locked_until_ms")
        .filter(|until| *until > now_ms)
    {
        attempt(&mut tx, now_ms, &target, source, Some("locked")).await?;
        tx.commit().await?;
        return Err(IdentityError::Locked { until_ms, now_ms });
    }
    let stored: String = row.get("password_hash");
    if !right || hash.as_deref() != Some(stored.as_str()) {
        let failed = row.get::<i64, _>("failed_sign_ins") + 1;
        let locked_until = (failed >= SIGN_IN_ATTEMPTS).then_some(now_ms + LOCKOUT_MS);
        sqlx::query("UPDATE users SET failed_sign_ins = $1, locked_until_ms = $2 WHERE id = $3")
            .bind(if locked_until.is_some() { 0 } else { failed })
            .bind(locked_until)
            .bind(&name)
            .execute(&mut *tx)
            .await?;
        let reason = if locked_until.is_some() {
            "wrong password, locked"
        } else {
            "wrong password"
        };
        attempt(&mut tx, now_ms, &target, source, Some(reason)).await?;
        tx.commit().await?;
        return Err(match locked_until {
            Some(until_ms) => IdentityError::Locked { until_ms, now_ms },
            None => IdentityError::WrongPassword {
                attempts_left: Some(SIGN_IN_ATTEMPTS - failed),
            },
        });
    }
    sqlx::query("UPDATE users SET failed_sign_ins = 0, locked_until_ms = NULL WHERE id = $1")
        .bind(&name)
        .execute(&mut *tx)
        .await?;
    attempt(&mut tx, now_ms, &target, source, None).await?;
    tx.commit().await?;
    user_of(&row, name)
}

/// Records a sign-in of `user` (`refused` with the reason, or not).
async fn attempt(
    tx: &mut sqlx::AnyConnection,
    now_ms: i64,
    user: &str,
    source: Option<&str>,
    refused: Option<&str>,
) -> Result<(), sqlx::Error> {
    let after = refused.map(|r| serde_json::json!({ "reason": r }).to_string());
    Audit {
        at_ms: now_ms,
        actor: user,
        source,
        action: if refused.is_some() {
            "sign-in.refused"
        } else {
            "sign-in"
        },
        target: Some(user),
        before: None,
        after: after.as_deref(),
    }
    .append(tx)
    .await
}

/// An argon2id hash of a password nobody has, checked against when the name is unknown.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("no one has this password").unwrap_or_default())
}

/// Which lines of the audit log to read: every field that is given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AuditFilter {
    /// Who (`user:NAME`, `key:ID`, `cli`, …).
    pub actor: Option<String>,
    /// What (`sign-in`, `key.revoke`, …).
    pub action: Option<String>,
    /// On what.
    pub target: Option<String>,
    /// From this instant on (epoch ms).
    pub from_ms: Option<i64>,
    /// Before this instant (epoch ms).
    pub to_ms: Option<i64>,
    /// Lines before this one (paging back).
    pub before_id: Option<i64>,
}

/// The audit log, newest first: at most `limit` entries before `before_id` (all when `None`),
/// of `actor` when given.
pub async fn audit_log(
    db: &Db,
    actor: Option<&str>,
    before_id: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditEntry>, sqlx::Error> {
    let filter = AuditFilter {
        actor: actor.map(str::to_owned),
        before_id,
        ..AuditFilter::default()
    };
    audit_entries(db, &filter, limit).await
}

/// The lines of the audit log `filter` matches, newest first, at most `limit`.
pub async fn audit_entries(
    db: &Db,
    filter: &AuditFilter,
    limit: i64,
) -> Result<Vec<AuditEntry>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, at_ms, actor, source, action, target, before_json, after_json FROM audit_log
         WHERE (CAST($1 AS TEXT) IS NULL OR actor = $1) AND (CAST($2 AS TEXT) IS NULL OR action = $2)
           AND (CAST($3 AS TEXT) IS NULL OR target = $3) AND (CAST($4 AS BIGINT) IS NULL OR at_ms >= $4)
           AND (CAST($5 AS BIGINT) IS NULL OR at_ms < $5) AND (CAST($6 AS BIGINT) IS NULL OR id < $6)
         ORDER BY id DESC LIMIT $7",
    )
    .bind(filter.actor.as_deref())
    .bind(filter.action.as_deref())
    .bind(filter.target.as_deref())
    .bind(filter.from_ms)
    .bind(filter.to_ms)
    .bind(filter.before_id)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| AuditEntry {
            id: r.get("id"),
            at_ms: r.get("at_ms"),
            actor: r.get("actor"),
            source: r.get("source"),
            action: r.get("action"),
            target: r.get("target"),
            before: r.get("before_json"),
            after: r.get("after_json"),
        })
        .collect())
}

/// The audit log's lines as [`audit_entries`] reads them, the reading itself recorded as a line
/// (`action`: `audit.read` or `audit.export`, with the filter) by `reader`.
pub(crate) async fn read_audit(
    db: &Db,
    reader: &str,
    filter: &AuditFilter,
    limit: i64,
    action: &str,
) -> Result<Vec<AuditEntry>, sqlx::Error> {
    let entries = audit_entries(db, filter, limit).await?;
    let asked = serde_json::to_string(filter).ok();
    let mut conn = db.pool.acquire().await?;
    Audit {
        at_ms: crate::now_ms(),
        actor: reader,
        source: None,
        action,
        target: None,
        before: None,
        after: asked.as_deref(),
    }
    .append(&mut conn)
    .await?;
    Ok(entries)
}

/// A user as the list of users shows them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UserView {
    /// Sign-in name.
    pub name: String,
    /// The name shown.
    pub display_name: String,
    /// The role.
    pub role: String,
    /// A store manager's stores.
    pub stores: Vec<String>,
    /// When they were added, epoch ms.
    pub created_ms: i64,
    /// When they were disabled, epoch ms.
    pub disabled_ms: Option<i64>,
    /// Locked after wrong passwords until then, epoch ms.
    pub locked_until_ms: Option<i64>,
}

/// Every user, by name.
pub async fn users(db: &Db) -> Result<Vec<UserView>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, display_name, role, stores, created_ms, disabled_ms, locked_until_ms FROM users ORDER BY id",
    )
    .fetch_all(&db.pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| UserView {
            name: r.get("id"),
            display_name: r.get("display_name"),
            role: r.get("role"),
            stores: r
                .get::<String, _>("stores")
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            created_ms: r.get("created_ms"),
            disabled_ms: r.get("disabled_ms"),
            locked_until_ms: r.get("locked_until_ms"),
        })
        .collect())
}

/// Disables the user `name` (their sessions end at once and they cannot sign in) or enables
/// them again (and lifts a lockout); recorded in the audit log as done by `actor`. A person
/// cannot disable themselves, so that a chain always keeps the admin who acts.
pub async fn set_disabled(
    db: &Db,
    actor: &Actor,
    name: &str,
    disabled: bool,
    now_ms: i64,
) -> Result<(), IdentityError> {
    let name = name.trim().to_lowercase();
    if disabled && *actor == Actor::User(name.clone()) {
        return Err(IdentityError::Invalid {
            field: "disabled",
            reason: "you cannot disable yourself: ask another admin".into(),
        });
    }
    let (_guard, mut tx) = db.begin_write().await?;
    let before: Option<Option<i64>> =
        sqlx::query_scalar("SELECT disabled_ms FROM users WHERE id = $1")
            .bind(&name)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(before) = before else {
        return Err(IdentityError::UnknownUser(name));
    };
    sqlx::query(
        "UPDATE users SET disabled_ms = $1, failed_sign_ins = 0, locked_until_ms = NULL WHERE id = $2",
    )
    .bind(disabled.then_some(now_ms))
    .bind(&name)
    .execute(&mut *tx)
    .await?;
    let ended = if disabled {
        sqlx::query("UPDATE sessions SET ended_ms = $1 WHERE user_id = $2 AND ended_ms IS NULL")
            .bind(now_ms)
            .bind(&name)
            .execute(&mut *tx)
            .await?
            .rows_affected()
    } else {
        0
    };
    let target = format!("user:{name}");
    let before = serde_json::json!({ "disabled": before.is_some() }).to_string();
    let after = serde_json::json!({ "disabled": disabled, "sessions_ended": ended }).to_string();
    Audit {
        at_ms: now_ms,
        actor: &actor.to_string(),
        source: None,
        action: if disabled {
            "user.disable"
        } else {
            "user.enable"
        },
        target: Some(&target),
        before: Some(&before),
        after: Some(&after),
    }
    .append(&mut tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// What an API key may do. A key holds the scopes it was made with; a read endpoint names the
/// scope it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Products, variants, prices.
    CatalogRead,
    /// Changing them (the write API).
    CatalogWrite,
    /// Stock levels and negative stock.
    StockRead,
    /// Sales, card and stored-value reports and exceptions.
    ReportsRead,
    /// Terminals, parked batches.
    FleetRead,
    /// The audit log.
    AuditRead,
    /// Acknowledging and resolving exceptions (with a note).
    ExceptionsWrite,
    /// Changing the chain's configuration through the write API: stores, staff, tax
    /// jurisdictions.
    StoresWrite,
    /// Holding stock: a web shop's carts, a store's holds for a customer.
    ReservationsWrite,
    /// Orders from the web and their state.
    OrdersRead,
    /// Placing orders (a shop) and working them (a store: pick, ready, ship, hand over).
    OrdersWrite,
    /// Subscribing to webhooks, redelivering, rotating their secrets.
    WebhooksWrite,
    /// Remote support of store nodes: diagnostics bundles, re-syncs (the `support` role only).
    SupportWrite,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 13] = [
        Scope::CatalogRead,
        Scope::CatalogWrite,
        Scope::StockRead,
        Scope::ReportsRead,
        Scope::FleetRead,
        Scope::AuditRead,
        Scope::ExceptionsWrite,
        Scope::StoresWrite,
        Scope::ReservationsWrite,
        Scope::OrdersRead,
        Scope::OrdersWrite,
        Scope::WebhooksWrite,
        Scope::SupportWrite,
    ];

    /// Its name (`catalog:read`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::CatalogRead => "catalog:read",
            Scope::CatalogWrite => "catalog:write",
            Scope::StockRead => "stock:read",
            Scope::ReportsRead => "reports:read",
            Scope::FleetRead => "fleet:read",
            Scope::AuditRead => "audit:read",
            Scope::ExceptionsWrite => "exceptions:write",
            Scope::StoresWrite => "stores:write",
            Scope::ReservationsWrite => "reservations:write",
            Scope::OrdersRead => "orders:read",
            Scope::OrdersWrite => "orders:write",
            Scope::WebhooksWrite => "webhooks:write",
            Scope::SupportWrite => "support:write",
        }
    }

    /// The scope of that name.
    pub fn parse(name: &str) -> Result<Scope, IdentityError> {
        Scope::ALL
            .into_iter()
            .find(|s| s.as_str() == name.trim())
            .ok_or_else(|| IdentityError::Invalid {
                field: "scopes",
                reason: format!(
                    "`{name}` is no scope (one of {})",
                    Scope::ALL.map(Scope::as_str).join(", ")
                ),
            })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An API key as HQ holds it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ApiKey {
    /// Its id (`key-…`), shown in lists and the audit log.
    pub id: String,
    /// What it is for.
    pub name: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// When it was made, epoch ms.
    pub created_ms: i64,
    /// Who made it.
    pub created_by: String,
    /// When it stops working (a rotated key, after its overlap), epoch ms.
    pub expires_ms: Option<i64>,
    /// When it was revoked, epoch ms.
    pub revoked_ms: Option<i64>,
}

impl serde::Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl ApiKey {
    /// Whether it works at `now_ms`.
    pub fn live(&self, now_ms: i64) -> bool {
        self.revoked_ms.is_none() && self.expires_ms.is_none_or(|at| at > now_ms)
    }
}

/// A key just made: its secret is shown now and never again.
#[derive(Debug, Clone)]
pub struct NewKey {
    /// The key.
    pub key: ApiKey,
    /// The secret to send as `Authorization: Bearer …`.
    pub secret: String,
}

/// The prefix of every API key's secret (`kassa_key_<id>_<random>`).
pub const KEY_PREFIX: &str = "kassa_key_";

fn key_of(row: &sqlx::any::AnyRow) -> ApiKey {
    let scopes: String = row.get("scopes");
    ApiKey {
        id: row.get("id"),
        name: row.get("name"),
        scopes: scopes
            .split_whitespace()
            .filter_map(|s| Scope::parse(s).ok())
            .collect(),
        created_ms: row.get("created_ms"),
        created_by: row.get("created_by"),
        expires_ms: row.get("expires_ms"),
        revoked_ms: row.get("revoked_ms"),
    }
}

const KEY_COLUMNS: &str = "id, name, scopes, created_ms, created_by, expires_ms, revoked_ms";

/// Makes a key and its secret, recorded in `tx` and its audit log.
async fn insert_key(
    tx: &mut sqlx::AnyConnection,
    actor: &Actor,
    name: &str,
    scopes: &[Scope],
    now_ms: i64,
    action: &str,
) -> Result<NewKey, IdentityError> {
    let id = format!("key-{}", random_hex(6)?);
    let secret = format!("{KEY_PREFIX}{id}_{}", random_hex(32)?);
    let key = ApiKey {
        id,
        name: name.to_owned(),
        scopes: scopes.to_vec(),
        created_ms: now_ms,
        created_by: actor.to_string(),
        expires_ms: None,
        revoked_ms: None,
    };
    sqlx::query(
        "INSERT INTO api_keys (id, name, scopes, secret_hash, created_ms, created_by)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&key.id)
    .bind(&key.name)
    .bind(
        scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" "),
    )
    .bind(crate::hex_hash(&secret))
    .bind(now_ms)
    .bind(&key.created_by)
    .execute(&mut *tx)
    .await?;
    let after = serde_json::to_string(&key).ok();
    Audit {
        at_ms: now_ms,
        actor: &key.created_by,
        source: None,
        action,
        target: Some(&format!("key:{}", key.id)),
        before: None,
        after: after.as_deref(),
    }
    .append(tx)
    .await?;
    Ok(NewKey { key, secret })
}

/// Makes an API key named `name` with `scopes` (at least one); its secret is in the answer
/// and nowhere else. Recorded in the audit log as done by `actor`.
pub async fn create_api_key(
    db: &Db,
    actor: &Actor,
    name: &str,
    scopes: &[Scope],
    now_ms: i64,
) -> Result<NewKey, IdentityError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(IdentityError::Invalid {
            field: "name",
            reason: "a key's name says what it is for: 1 to 100 characters".into(),
        });
    }
    if scopes.is_empty() {
        return Err(IdentityError::Invalid {
            field: "scopes",
            reason: "a key needs at least one scope".into(),
        });
    }
    let mut scopes = scopes.to_vec();
    scopes.sort_unstable();
    scopes.dedup();
    let (_guard, mut tx) = db.begin_write().await?;
    let made = insert_key(&mut tx, actor, name, &scopes, now_ms, "key.create").await?;
    tx.commit().await?;
    Ok(made)
}

/// The key `id` as HQ holds it, in `tx`.
async fn key_by_id(tx: &mut sqlx::AnyConnection, id: &str) -> Result<ApiKey, IdentityError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1"
    )))
    .bind(id.trim())
    .fetch_optional(&mut *tx)
    .await?;
    row.as_ref()
        .map(key_of)
        .ok_or_else(|| IdentityError::UnknownKey(id.trim().to_owned()))
}

/// Replaces the live key `id` with a new one of the same name and scopes; the old one keeps
/// working for `overlap_ms` more (so the systems using it can move over), then expires.
pub async fn rotate_api_key(
    db: &Db,
    actor: &Actor,
    id: &str,
    overlap_ms: i64,
    now_ms: i64,
) -> Result<NewKey, IdentityError> {
    if overlap_ms < 0 {
        return Err(IdentityError::Invalid {
            field: "overlap",
            reason: "the overlap cannot be negative".into(),
        });
    }
    let (_guard, mut tx) = db.begin_write().await?;
    let old = key_by_id(&mut tx, id).await?;
    if !old.live(now_ms) {
        return Err(IdentityError::KeyNotLive(old.id));
    }
    let expires = now_ms.saturating_add(overlap_ms);
    let expires = old.expires_ms.map_or(expires, |at| at.min(expires));
    sqlx::query("UPDATE api_keys SET expires_ms = $1 WHERE id = $2")
        .bind(expires)
        .bind(&old.id)
        .execute(&mut *tx)
        .await?;
    let made = insert_key(&mut tx, actor, &old.name, &old.scopes, now_ms, "key.rotate").await?;
    let before = serde_json::to_string(&old).ok();
    let after = serde_json::json!({"expires_ms": expires, "replaced_by": made.key.id}).to_string();
    Audit {
        at_ms: now_ms,
        actor: &actor.to_string(),
        source: None,
        action: "key.expire",
        target: Some(&format!("key:{}", old.id)),
        before: before.as_deref(),
        after: Some(&after),
    }
    .append(&mut tx)
    .await?;
    tx.commit().await?;
    Ok(made)
}

/// Revokes the key `id` at once; every HQ process refuses it from its next request.
pub async fn revoke_api_key(
    db: &Db,
    actor: &Actor,
    id: &str,
    now_ms: i64,
) -> Result<ApiKey, IdentityError> {
    let (_guard, mut tx) = db.begin_write().await?;
    let old = key_by_id(&mut tx, id).await?;
    if old.revoked_ms.is_some() {
        return Err(IdentityError::KeyNotLive(old.id));
    }
    sqlx::query("UPDATE api_keys SET revoked_ms = $1 WHERE id = $2")
        .bind(now_ms)
        .bind(&old.id)
        .execute(&mut *tx)
        .await?;
    let revoked = ApiKey {
        revoked_ms: Some(now_ms),
        ..old.clone()
    };
    let (before, after) = (
        serde_json::to_string(&old).ok(),
        serde_json::to_string(&revoked).ok(),
    );
    Audit {
        at_ms: now_ms,
        actor: &actor.to_string(),
        source: None,
        action: "key.revoke",
        target: Some(&format!("key:{}", old.id)),
        before: before.as_deref(),
        after: after.as_deref(),
    }
    .append(&mut tx)
    .await?;
    tx.commit().await?;
    Ok(revoked)
}

/// Every API key, oldest first.
pub async fn api_keys(db: &Db) -> Result<Vec<ApiKey>, sqlx::Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_ms, id"
    )))
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.iter().map(key_of).collect())
}

/// The live key whose secret is `secret`, if any (read from the database on every call, so a
/// revocation holds at once on every HQ process).
pub async fn key_for_secret(
    db: &Db,
    secret: &str,
    now_ms: i64,
) -> Result<Option<ApiKey>, sqlx::Error> {
    if !secret.starts_with(KEY_PREFIX) {
        return Ok(None);
    }
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE secret_hash = $1"
    )))
    .bind(crate::hex_hash(secret))
    .fetch_optional(&db.pool)
    .await?;
    Ok(row.as_ref().map(key_of).filter(|k| k.live(now_ms)))
}

/// A session ends this long after sign-in, whatever happens.
pub const SESSION_MS: i64 = 12 * 60 * 60 * 1000;
/// A session unused this long ends.
pub const SESSION_IDLE_MS: i64 = 30 * 60 * 1000;

/// A session just started: the token goes into the cookie, the CSRF token to the page.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The cookie's value; HQ keeps only its hash.
    pub token: String,
    /// What every state-changing request of the session sends in `X-CSRF-Token`.
    pub csrf: String,
    /// When it ends at the latest, epoch ms.
    pub expires_ms: i64,
}

/// A live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Who (as HQ holds them now: a changed role applies at once).
    pub user: User,
    /// Its CSRF token.
    pub csrf: String,
    /// When it ends at the latest, epoch ms.
    pub expires_ms: i64,
}

fn random_hex(bytes: usize) -> Result<String, IdentityError> {
    crate::random_hex(bytes).map_err(|e| IdentityError::Hash(format!("no randomness: {e}")))
}

fn user_of(row: &sqlx::any::AnyRow, name: String) -> Result<User, IdentityError> {
    let stores: String = row.get("stores");
    Ok(User {
        name,
        display_name: row.get("display_name"),
        role: Role::parse(&row.get::<String, _>("role"))?,
        stores: stores
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

/// Starts a session for `user`, just signed in.
pub async fn start_session(db: &Db, user: &User, now_ms: i64) -> Result<NewSession, IdentityError> {
    let session = NewSession {
        token: random_hex(32)?,
        csrf: random_hex(32)?,
        expires_ms: now_ms + SESSION_MS,
    };
    sqlx::query(
        "INSERT INTO sessions (token_hash, user_id, csrf, created_ms, last_seen_ms, expires_ms)
         VALUES ($1, $2, $3, $4, $4, $5)",
    )
    .bind(crate::hex_hash(&session.token))
    .bind(&user.name)
    .bind(&session.csrf)
    .bind(now_ms)
    .bind(session.expires_ms)
    .execute(&db.pool)
    .await?;
    Ok(session)
}

/// The live session whose cookie holds `token` (read from the database on every request, so
/// a sign-out, a disabled account or a changed role holds at once on every HQ process).
pub async fn session_for(
    db: &Db,
    token: &str,
    now_ms: i64,
) -> Result<Option<Session>, IdentityError> {
    let hash = crate::hex_hash(token);
    let row = sqlx::query(
        "SELECT s.user_id, s.csrf, s.expires_ms, s.last_seen_ms, u.display_name, u.role, u.stores
         FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.token_hash = $1 AND s.ended_ms IS NULL AND u.disabled_ms IS NULL",
    )
    .bind(&hash)
    .fetch_optional(&db.pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let (expires_ms, last_seen_ms): (i64, i64) = (row.get("expires_ms"), row.get("last_seen_ms"));
    if expires_ms <= now_ms || last_seen_ms + SESSION_IDLE_MS <= now_ms {
        return Ok(None);
    }
    // Kept alive, at most one write a minute.
    if now_ms - last_seen_ms >= 60_000 {
        sqlx::query("UPDATE sessions SET last_seen_ms = $1 WHERE token_hash = $2")
            .bind(now_ms)
            .bind(&hash)
            .execute(&db.pool)
            .await?;
    }
    Ok(Some(Session {
        user: user_of(&row, row.get("user_id"))?,
        csrf: row.get("csrf"),
        expires_ms,
    }))
}

/// Ends the session of `token` (signing out), or every session of its user when `everywhere`;
/// recorded in the audit log. Answers how many sessions ended.
pub async fn end_sessions(
    db: &Db,
    token: &str,
    everywhere: bool,
    now_ms: i64,
) -> Result<u64, IdentityError> {
    let hash = crate::hex_hash(token);
    let (_guard, mut tx) = db.begin_write().await?;
    let user: Option<String> = sqlx::query_scalar(
        "SELECT user_id FROM sessions WHERE token_hash = $1 AND ended_ms IS NULL",
    )
    .bind(&hash)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(user) = user else { return Ok(0) };
    let ended = if everywhere {
        sqlx::query("UPDATE sessions SET ended_ms = $1 WHERE user_id = $2 AND ended_ms IS NULL")
            .bind(now_ms)
            .bind(&user)
    } else {
        sqlx::query("UPDATE sessions SET ended_ms = $1 WHERE token_hash = $2")
            .bind(now_ms)
            .bind(&hash)
    }
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let actor = Actor::User(user).to_string();
    let after = serde_json::json!({ "sessions_ended": ended }).to_string();
    Audit {
        at_ms: now_ms,
        actor: &actor,
        source: None,
        action: if everywhere {
            "sign-out.everywhere"
        } else {
            "sign-out"
        },
        target: Some(&actor),
        before: None,
        after: Some(&after),
    }
    .append(&mut tx)
    .await?;
    tx.commit().await?;
    Ok(ended)
}

impl Role {
    /// What the role may read through the API. A store manager's reads are also limited to the
    /// stores they run.
    pub fn scopes(self) -> &'static [Scope] {
        use Scope::*;
        match self {
            Role::Admin => &[
                CatalogRead,
                CatalogWrite,
                StockRead,
                ReportsRead,
                FleetRead,
                AuditRead,
                ExceptionsWrite,
                StoresWrite,
                ReservationsWrite,
                OrdersRead,
                OrdersWrite,
                WebhooksWrite,
            ],
            Role::Merchandiser => &[CatalogRead, CatalogWrite, StockRead],
            Role::StoreManager => &[
                StockRead,
                ReportsRead,
                ExceptionsWrite,
                ReservationsWrite,
                OrdersRead,
                OrdersWrite,
            ],
            Role::Finance => &[ReportsRead, StockRead, ExceptionsWrite, OrdersRead],
            Role::Support => &[FleetRead, WebhooksWrite, SupportWrite],
            Role::Auditor => &[
                CatalogRead,
                StockRead,
                ReportsRead,
                FleetRead,
                AuditRead,
                OrdersRead,
            ],
        }
    }
}
