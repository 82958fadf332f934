//! Who is asking: a member of staff signed in at a till (a session from PIN sign-in) or an
//! unattended device of a till (a device credential from `kassa store device add`). The one
//! place every route learns its caller; the trust model it enforces is stated in
//! ARCHITECTURE.md ("The store LAN").

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use domain::staff::Role;
use domain::{StaffId, TerminalId};
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::api::{ApiError, ApiResult};
use crate::node::Node;

/// The prefix of every device credential, so a device token is never mistaken for a session.
pub const DEVICE_TOKEN_PREFIX: &str = "kassa-device-";

/// The bearer token of a request, if it carries one.
pub(crate) fn bearer(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// A caller whose credential checked out: a member signed in at `terminal`, or a device of it.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// The member, or the device's id (recorded as the cashier of what it writes).
    pub staff: StaffId,
    /// Their role; a device acts as a cashier.
    pub role: Role,
    /// The till the session or device belongs to.
    pub terminal: TerminalId,
    /// Whether this is a device credential rather than a member's session.
    pub device: bool,
}

impl Caller {
    /// The caller acting at `terminal`: a session or device of another till is refused, so a
    /// session cannot write in another till's ledger.
    pub(crate) fn at(&self, terminal: &TerminalId) -> ApiResult<&Caller> {
        if &self.terminal == terminal {
            Ok(self)
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "wrong_terminal",
                format!(
                    "this session belongs to terminal {}, not {terminal}",
                    self.terminal
                ),
            )
            .at("terminal"))
        }
    }

    /// The caller, when their role is `minimum` or above (a read of the journal or of cash
    /// figures); devices never read those.
    pub(crate) fn with_role(&self, minimum: Role, what: &str) -> ApiResult<&Caller> {
        if !self.device && self.role >= minimum {
            Ok(self)
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "role_required",
                format!("{what} needs a {minimum} or above to be signed in"),
            )
            .at("Authorization"))
        }
    }

    /// The cashier to record: the caller, and `named` only when it is the caller. Acting in
    /// another member's name needs their own session; naming them is no proof.
    pub(crate) fn cashier(&self, named: Option<&str>) -> ApiResult<StaffId> {
        match named {
            Some(name) if name != self.staff.as_str() => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "cashier_not_signed_in",
                format!(
                    "`{name}` is not the member signed in ({}): {name} signs in to act in their own name",
                    self.staff
                ),
            )
            .at("cashier")),
            _ => Ok(self.staff.clone()),
        }
    }
}

/// The caller of a request from its `Authorization` header, before any body is read.
pub(crate) async fn caller(node: &Node, token: Option<&str>) -> ApiResult<Caller> {
    let token = token.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "sign_in_required",
            "sign in at the till first and send the session as `Authorization: Bearer <session>` (an unattended device sends its device credential)",
        )
        .at("Authorization")
    })?;
    if token.starts_with(DEVICE_TOKEN_PREFIX) {
        return device(node, token).await;
    }
    let session = node
        .sessions
        .get(token, node.clock.now().millis())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_session",
                "the session has ended or never existed: sign in again",
            )
            .at("Authorization")
        })?;
    Ok(Caller {
        staff: session.staff,
        role: session.role,
        terminal: session.terminal,
        device: false,
    })
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

async fn device(node: &Node, token: &str) -> ApiResult<Caller> {
    // Device tokens are 32 random bytes, so a plain SHA-256 is enough to keep them unreadable
    // at rest (no PIN-style stretching is needed for a secret that cannot be guessed).
    let row = sqlx::query(
        "SELECT id, terminal FROM devices WHERE token_hash = $1 AND revoked_ms IS NULL",
    )
    .bind(token_hash(token))
    .fetch_optional(&node.pools.reader)
    .await?;
    let refused = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_device",
            "this device credential is unknown or revoked: add the device again with `kassa store device add`",
        )
        .at("Authorization")
    };
    let row = row.ok_or_else(refused)?;
    let staff = StaffId::parse(row.get::<&str, _>("id")).map_err(|_| refused())?;
    let terminal = TerminalId::parse(row.get::<&str, _>("terminal")).map_err(|_| refused())?;
    Ok(Caller {
        staff,
        role: Role::Cashier,
        terminal,
        device: true,
    })
}

impl FromRequestParts<Arc<Node>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, node: &Arc<Node>) -> ApiResult<Caller> {
        caller(node, bearer(&parts.headers).as_deref()).await
    }
}

/// Errors from managing device credentials.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The id is not a valid identifier.
    #[error("device id: {0}")]
    Id(#[from] domain::IdError),
    /// The terminal is not hosted here.
    #[error("terminal `{0}` is not provisioned on this node")]
    UnknownTerminal(String),
    /// The id belongs to a member of staff or another device.
    #[error("`{0}` is already the id of a member of staff or of a device: choose another")]
    Taken(String),
    /// No such device.
    #[error("no device `{0}`")]
    Unknown(String),
    /// Randomness was not available.
    #[error("no randomness for a credential: {0}")]
    Random(String),
    /// SQLite failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

/// Adds an unattended device (a scale, a self-checkout) that writes at `terminal`, and answers
/// its credential: shown once, kept here only as a hash.
pub async fn add_device(
    pools: &crate::db::Pools,
    id: &str,
    terminal: &str,
    now_ms: i64,
) -> Result<String, DeviceError> {
    let id = StaffId::parse(id)?;
    let terminal = TerminalId::parse(terminal)?;
    let hosted: Option<i64> = sqlx::query_scalar("SELECT 1 FROM terminals WHERE id = $1")
        .bind(terminal.as_str())
        .fetch_optional(&pools.writer)
        .await?;
    if hosted.is_none() {
        return Err(DeviceError::UnknownTerminal(terminal.to_string()));
    }
    let taken: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM staff WHERE id = $1 UNION ALL SELECT 1 FROM devices WHERE id = $1",
    )
    .bind(id.as_str())
    .fetch_optional(&pools.writer)
    .await?;
    if taken.is_some() {
        return Err(DeviceError::Taken(id.to_string()));
    }
    let token = new_token()?;
    sqlx::query(
        "INSERT INTO devices (id, terminal, token_hash, created_ms) VALUES ($1, $2, $3, $4)",
    )
    .bind(id.as_str())
    .bind(terminal.as_str())
    .bind(token_hash(&token))
    .bind(now_ms)
    .execute(&pools.writer)
    .await?;
    Ok(token)
}

fn new_token() -> Result<String, DeviceError> {
    let mut bytes = [0_u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| DeviceError::Random(e.to_string()))?;
    Ok(format!("{DEVICE_TOKEN_PREFIX}{}", hex::encode(bytes)))
}

/// Gives device `id` a new credential; the old one is refused from the next request on.
pub async fn rotate_device(pools: &crate::db::Pools, id: &str) -> Result<String, DeviceError> {
    let token = new_token()?;
    let done =
        sqlx::query("UPDATE devices SET token_hash = $2 WHERE id = $1 AND revoked_ms IS NULL")
            .bind(id)
            .bind(token_hash(&token))
            .execute(&pools.writer)
            .await?;
    if done.rows_affected() == 0 {
        return Err(DeviceError::Unknown(id.to_owned()));
    }
    Ok(token)
}

/// Revokes device `id`: its credential is refused from the next request on.
pub async fn revoke_device(
    pools: &crate::db::Pools,
    id: &str,
    now_ms: i64,
) -> Result<(), DeviceError> {
    let done =
        sqlx::query("UPDATE devices SET revoked_ms = $2 WHERE id = $1 AND revoked_ms IS NULL")
            .bind(id)
            .bind(now_ms)
            .execute(&pools.writer)
            .await?;
    if done.rows_affected() == 0 {
        return Err(DeviceError::Unknown(id.to_owned()));
    }
    Ok(())
}
