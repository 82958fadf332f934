//! Staff at the till: PIN sign-in with lockout, sessions, and supervisor approvals given on the
//! spot with a PIN. PINs are checked against salted and peppered argon2 hashes; five wrong PINs
//! in a row lock the member out of that till for five minutes, recorded as a ledger event.

use std::collections::HashMap;
use std::sync::Mutex;

use domain::ledger::Approval;
use domain::staff::{Permission, PermissionTable, PinAttempts, PinOutcome, Role};
use domain::{StaffId, TerminalId};
use sqlx::Row;

use crate::ledger::{Op, WriteError};
use crate::node::Node;

/// The chain's PIN pepper; never printed.
#[derive(Clone, Copy)]
pub struct Pepper(pub [u8; 32]);

impl std::fmt::Debug for Pepper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pepper(..)")
    }
}

/// A signed-in member of staff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Who.
    pub staff: StaffId,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// The till signed in at.
    pub terminal: TerminalId,
}

/// How long a session may go unused before it ends: a till left signed in overnight asks for
/// a PIN again in the morning.
pub const SESSION_IDLE_MS: i64 = 8 * 60 * 60 * 1000;

/// Sessions by token. Held in memory: a restarted node signs everyone out.
#[derive(Debug, Default)]
pub struct Sessions(Mutex<HashMap<String, (Session, i64)>>);

impl Sessions {
    /// The session of `token` at `now_ms`, which counts as its latest use; `None` when there is
    /// none or it has been idle for longer than [`SESSION_IDLE_MS`] (it ends then).
    pub fn get(&self, token: &str, now_ms: i64) -> Option<Session> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let (session, last_used) = map.get_mut(token)?;
        if now_ms - *last_used > SESSION_IDLE_MS {
            map.remove(token);
            return None;
        }
        *last_used = now_ms.max(*last_used);
        Some(session.clone())
    }

    fn insert(&self, token: String, session: Session, now_ms: i64) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // One session per member and till: signing in again replaces the old one. Sessions
        // idle past their time go too, so the map never grows with abandoned sign-ins.
        map.retain(|_, (s, last_used)| {
            !(s.staff == session.staff && s.terminal == session.terminal)
                && now_ms - *last_used <= SESSION_IDLE_MS
        });
        map.insert(token, (session, now_ms));
    }

    /// Ends the session of `token`; whether there was one.
    pub fn remove(&self, token: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(token)
            .is_some()
    }
}

/// A member of staff as stored.
#[derive(Debug, Clone)]
pub struct Member {
    /// Id.
    pub id: StaffId,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: Role,
    pin_hash: String,
}

/// Why a PIN was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    /// No such member.
    #[error("no member of staff `{0}`")]
    UnknownStaff(String),
    /// Wrong PIN.
    #[error("wrong PIN; {attempts_left} tries left before a five-minute lockout")]
    Wrong {
        /// Tries left.
        attempts_left: u32,
    },
    /// Locked out.
    #[error("locked out of this till after five wrong PINs; try again in {seconds} s")]
    Locked {
        /// Seconds left.
        seconds: i64,
    },
    /// HQ's PIN hashes need a pepper this node does not have: no PIN from HQ can be checked,
    /// so none is counted as wrong.
    #[error("{0}")]
    PepperMissing(String),
    /// Storage failed.
    #[error(transparent)]
    Write(#[from] WriteError),
}

impl From<sqlx::Error> for PinError {
    fn from(e: sqlx::Error) -> Self {
        PinError::Write(WriteError::from(e))
    }
}

/// Every member of staff, by name.
pub async fn members(node: &Node) -> Result<Vec<Member>, sqlx::Error> {
    let rows = sqlx::query("SELECT id, name, role, pin_hash FROM staff ORDER BY name")
        .fetch_all(&node.pools.reader)
        .await?;
    Ok(rows.iter().filter_map(member_of).collect())
}

fn member_of(row: &sqlx::sqlite::SqliteRow) -> Option<Member> {
    Some(Member {
        id: StaffId::parse(row.get::<&str, _>("id")).ok()?,
        name: row.get("name"),
        role: Role::parse(row.get::<&str, _>("role"))?,
        pin_hash: row.get("pin_hash"),
    })
}

/// The display name of member `id`, for receipts and reports; the id itself when the
/// reference data no longer knows the member.
pub async fn display_name(node: &Node, id: &str) -> Result<String, sqlx::Error> {
    let name: Option<String> = sqlx::query_scalar("SELECT name FROM staff WHERE id = $1")
        .bind(id)
        .fetch_optional(&node.pools.reader)
        .await?;
    Ok(name.unwrap_or_else(|| id.to_owned()))
}

async fn member(node: &Node, id: &str) -> Result<Member, PinError> {
    let row = sqlx::query("SELECT id, name, role, pin_hash FROM staff WHERE id = $1")
        .bind(id)
        .fetch_optional(&node.pools.reader)
        .await?;
    row.as_ref()
        .and_then(member_of)
        .ok_or_else(|| PinError::UnknownStaff(id.to_owned()))
}

/// Checks `pin` for `staff` at `terminal`, counting wrong PINs and locking out after five.
pub async fn check_pin(
    node: &Node,
    terminal: &TerminalId,
    staff: &str,
    pin: &str,
) -> Result<Member, PinError> {
    let member = member(node, staff).await?;
    // Checked before anything is counted: with the wrong pepper every PIN would be "wrong" and
    // cashiers would lock themselves out typing the right one.
    if let Some(problem) = node.pin_pepper_problem() {
        return Err(PinError::PepperMissing(problem));
    }
    let row = sqlx::query(
        "SELECT failures, locked_until FROM pin_attempts WHERE staff = $1 AND terminal = $2",
    )
    .bind(member.id.as_str())
    .bind(terminal.as_str())
    .fetch_optional(&node.pools.reader)
    .await?;
    let mut attempts = row.map_or(PinAttempts::default(), |r| PinAttempts {
        failures: u32::try_from(r.get::<i64, _>("failures")).unwrap_or(0),
        locked_until: r.get("locked_until"),
    });
    let now = node.clock.now().millis();
    let correct = attempts.locked_at(now).is_none() && {
        // argon2 is deliberately slow: keep it off the async workers.
        let pepper = node.pepper.0;
        let pin = pin.to_owned();
        let hash = member.pin_hash.clone();
        tokio::task::spawn_blocking(move || protocol::pin::verify(&pepper, &pin, &hash))
            .await
            .unwrap_or(false)
    };
    let outcome = attempts.attempt(now, correct);
    sqlx::query(
        "INSERT INTO pin_attempts (staff, terminal, failures, locked_until) VALUES ($1, $2, $3, $4)
         ON CONFLICT (staff, terminal) DO UPDATE SET failures = excluded.failures, locked_until = excluded.locked_until",
    )
    .bind(member.id.as_str())
    .bind(terminal.as_str())
    .bind(i64::from(attempts.failures))
    .bind(attempts.locked_until)
    .execute(&node.pools.writer)
    .await?;
    match outcome {
        PinOutcome::Accepted => Ok(member),
        PinOutcome::Rejected { attempts_left } => Err(PinError::Wrong { attempts_left }),
        PinOutcome::LockedNow { until } => {
            node.ledger
                .write(
                    None,
                    Op::LockOut {
                        terminal: terminal.clone(),
                        staff: member.id.clone(),
                        until_ms: until,
                    },
                )
                .await?;
            Err(PinError::Locked {
                seconds: (until - now + 999) / 1000,
            })
        }
        PinOutcome::Locked { until } => Err(PinError::Locked {
            seconds: (until - now + 999) / 1000,
        }),
    }
}

/// Signs `staff` in at `terminal`; answers the session token.
pub async fn sign_in(
    node: &Node,
    terminal: &TerminalId,
    staff: &str,
    pin: &str,
) -> Result<(String, Session), PinError> {
    let member = check_pin(node, terminal, staff, pin).await?;
    let mut bytes = [0_u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| WriteError::Db(format!("no randomness: {e}")))?;
    let token = hex::encode(bytes);
    let session = Session {
        staff: member.id,
        name: member.name,
        role: member.role,
        terminal: terminal.clone(),
    };
    node.sessions
        .insert(token.clone(), session.clone(), node.clock.now().millis());
    Ok((token, session))
}

/// The permission table in force.
pub fn table() -> PermissionTable {
    PermissionTable::default()
}

/// Why an action was not authorised.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    /// Someone with more authority has to approve.
    #[error("{permission} needs the approval of a {minimum} or above")]
    Required {
        /// What needs approving.
        permission: Permission,
        /// The lowest role that may approve.
        minimum: Role,
    },
    /// The approver's PIN failed.
    #[error("approval: {0}")]
    Pin(#[from] PinError),
    /// The approver has too little authority.
    #[error("{approver} is a {role}; {permission} needs a {minimum} or above")]
    TooLow {
        /// Who tried to approve.
        approver: String,
        /// Their role.
        role: Role,
        /// What needs approving.
        permission: Permission,
        /// The lowest role that may approve.
        minimum: Role,
    },
}

/// Authorises `needed` for someone with role `acting`: nothing to record when the role allows
/// it, otherwise the approval of the member `approver` (checked by PIN at `terminal`).
pub async fn authorise(
    node: &Node,
    terminal: &TerminalId,
    acting: Role,
    needed: &[Permission],
    approver: Option<(&str, &str)>,
) -> Result<Vec<Approval>, ApprovalError> {
    let table = table();
    let missing: Vec<Permission> = needed
        .iter()
        .copied()
        .filter(|p| !table.allows(acting, *p))
        .collect();
    let Some(first) = missing.first().copied() else {
        return Ok(Vec::new());
    };
    let Some((staff, pin)) = approver else {
        return Err(ApprovalError::Required {
            permission: first,
            minimum: table.minimum(first),
        });
    };
    let member = check_pin(node, terminal, staff, pin).await?;
    if let Some(p) = missing.iter().find(|p| !table.allows(member.role, **p)) {
        return Err(ApprovalError::TooLow {
            approver: member.id.to_string(),
            role: member.role,
            permission: *p,
            minimum: table.minimum(*p),
        });
    }
    Ok(missing
        .into_iter()
        .map(|permission| Approval {
            permission,
            by: member.id.clone(),
        })
        .collect())
}
