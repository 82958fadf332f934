//! Remote support: what support staff ask of a store node from HQ, and what the node answers.
//! The node learns from its stock pull that requests wait ([`PENDING_HEADER`]), fetches them
//! (`GET /v1/sync/support`) and answers each once (`POST /v1/sync/support/{id}`); there is no
//! remote shell, only these kinds.

use serde::{Deserialize, Serialize};

/// The header of HQ's answer to a node's stock pull: how many support requests wait for it.
pub const PENDING_HEADER: &str = "kassa-support-pending";

/// What support may ask of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SupportKind {
    /// A diagnostics bundle: recent logs, status, configuration without secrets, the
    /// database's integrity check and the ledger's verification.
    Diagnostics,
    /// Push again every event HQ does not hold (HQ restored from an older backup, say): each
    /// till's outbox cursor goes back to what HQ says it holds.
    Resync,
}

impl SupportKind {
    /// Its name on the wire and in the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            SupportKind::Diagnostics => "diagnostics",
            SupportKind::Resync => "resync",
        }
    }
}

/// A request as the node receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupportRequest {
    /// HQ's id of the request.
    pub id: i64,
    /// What is asked.
    pub kind: SupportKind,
    /// Who asked (`user:NAME`).
    pub asked_by: String,
    /// Why, in their words.
    pub reason: String,
}

/// The node's pending requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupportRequests {
    /// Oldest first.
    pub requests: Vec<SupportRequest>,
}

/// The node's answer to one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupportAnswer {
    /// Whether the node did what was asked.
    pub done: bool,
    /// The bundle (diagnostics), or what was done or went wrong.
    pub result: serde_json::Value,
}
