//! Remote support on the node: the requests HQ holds for this store (`protocol::support`),
//! fetched when HQ's answer to the stock pull says some wait, and each answered once — a
//! diagnostics bundle (recent log lines, status, configuration without secrets, SQLite's
//! integrity check, the ledger's verification), a re-sync (each till's outbox cursor back to
//! what HQ holds, then pushed) or a configuration profile (the offline cap of stored value,
//! network receipt printers). Nothing else is done for HQ; there is no remote shell.

use std::collections::VecDeque;
use std::sync::{Mutex, OnceLock};

use domain::TerminalId;
use protocol::support::{Profile, SupportAnswer, SupportKind, SupportRequest, SupportRequests};
use serde_json::json;

use crate::node::Node;
use crate::sync::{SyncSettings, error_chain};

/// How many recent log lines a bundle carries.
const RECENT_LINES: usize = 300;
/// The longest log line kept.
const LINE_CHARS: usize = 2_000;

fn recent() -> &'static Mutex<VecDeque<String>> {
    static RECENT: OnceLock<Mutex<VecDeque<String>>> = OnceLock::new();
    RECENT.get_or_init(|| Mutex::new(VecDeque::with_capacity(RECENT_LINES)))
}

/// A log writer that keeps the last lines written in memory, for a diagnostics bundle: the
/// binary writes its log to it beside its usual output.
#[derive(Debug, Default)]
pub struct RecentLog;

/// A [`RecentLog`], as a log subscriber's writer factory wants it.
pub fn recent_log() -> RecentLog {
    RecentLog
}

impl std::io::Write for RecentLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        if let Ok(mut lines) = recent().lock() {
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                if lines.len() == RECENT_LINES {
                    lines.pop_front();
                }
                lines.push_back(line.chars().take(LINE_CHARS).collect());
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The log lines kept, oldest first.
pub fn recent_lines() -> Vec<String> {
    recent()
        .lock()
        .map(|l| l.iter().cloned().collect())
        .unwrap_or_default()
}

/// Asks HQ for this store's pending requests and answers each; `Err` when HQ cannot be asked.
pub async fn serve(
    node: &Node,
    settings: &SyncSettings,
    http: &reqwest::Client,
) -> Result<usize, String> {
    let response = http
        .get(format!("{}/v1/sync/support", settings.hq_url))
        .bearer_auth(settings.token.get())
        .send()
        .await
        .map_err(|e| error_chain(&e))?;
    if !response.status().is_success() {
        return Err(format!("HQ answered {}", response.status()));
    }
    let pending: SupportRequests = response.json().await.map_err(|e| error_chain(&e))?;
    let mut answered = 0;
    for request in pending.requests {
        tracing::info!(id = request.id, kind = request.kind.as_str(), asked_by = %request.asked_by, reason = %request.reason, "support request from HQ");
        let answer = match request.kind {
            SupportKind::Diagnostics => diagnostics(node, settings, &request).await,
            SupportKind::Resync => resync(node, settings, http).await,
            SupportKind::Profile => apply_profile(node, request.profile.as_ref()).await,
        };
        let sent = http
            .post(format!(
                "{}/v1/sync/support/{}",
                settings.hq_url, request.id
            ))
            .bearer_auth(settings.token.get())
            .json(&answer)
            .send()
            .await
            .map_err(|e| error_chain(&e))?;
        match sent.status().as_u16() {
            204 => answered += 1,
            // Answered already (a previous round whose answer arrived but not HQ's reply).
            409 => {}
            status => {
                let text = sent.text().await.unwrap_or_default();
                return Err(format!(
                    "HQ refused the answer to {} ({status}): {text}",
                    request.id
                ));
            }
        }
    }
    Ok(answered)
}

/// The diagnostics bundle: what support needs to see, and no secret — no credential, key,
/// pepper or PIN is read for it.
async fn diagnostics(
    node: &Node,
    settings: &SyncSettings,
    request: &SupportRequest,
) -> SupportAnswer {
    let status = crate::api::status_json(node)
        .await
        .unwrap_or_else(|e| json!({"error": e.to_string()}));
    let integrity: Result<Vec<String>, _> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&node.pools.reader)
        .await;
    let size: Result<(i64, i64), _> = sqlx::query_as(
        "SELECT (SELECT page_count FROM pragma_page_count()), (SELECT page_size FROM pragma_page_size())",
    )
    .fetch_one(&node.pools.reader)
    .await;
    let verified = crate::verify::verify(&node.pools.reader).await;
    let verify = match &verified {
        Ok(reports) => json!(
            reports
                .iter()
                .map(|r| json!({
                    "terminal": r.terminal,
                    "events": r.events,
                    "broken": r.broken.as_ref().map(ToString::to_string),
                }))
                .collect::<Vec<_>>()
        ),
        Err(e) => json!({"error": e.to_string()}),
    };
    let sound = matches!(&integrity, Ok(lines) if lines == &["ok"])
        && matches!(&verified, Ok(reports) if reports.iter().all(|r| r.broken.is_none()));
    SupportAnswer {
        done: true,
        result: json!({
            "request": request.id,
            "made_ms": node.clock.now().millis(),
            "version": env!("CARGO_PKG_VERSION"),
            "sound": sound,
            "status": status,
            "configuration": {
                "store": node.store.to_string(),
                "terminals": node.terminals().iter().map(ToString::to_string).collect::<Vec<_>>(),
                "hq_url": settings.hq_url,
                "hq_ca_fingerprint": settings.hq_ca.as_deref().and_then(|pem| tls::fingerprint(pem).ok()),
                "pull_every_ms": u64::try_from(settings.pull_every.as_millis()).unwrap_or(u64::MAX),
            },
            "database": {
                "integrity_check": integrity.unwrap_or_else(|e| vec![e.to_string()]),
                "bytes": size.ok().map(|(pages, page)| pages * page),
            },
            "verify": verify,
            "recent_log": recent_lines(),
        }),
    }
}

/// A re-sync: each till's outbox cursor goes back to what HQ holds of it (HQ restored from an
/// older backup holds less than it once acknowledged), and the outbox pushes from there.
async fn resync(node: &Node, settings: &SyncSettings, http: &reqwest::Client) -> SupportAnswer {
    let failed = |why: String| SupportAnswer {
        done: false,
        result: json!({"error": why}),
    };
    let snapshot = match http
        .get(format!("{}/v1/sync/stock", settings.hq_url))
        .bearer_auth(settings.token.get())
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => r.json::<protocol::sync::StockSnapshot>().await,
        Ok(r) => return failed(format!("HQ answered {} to the stock read", r.status())),
        Err(e) => return failed(error_chain(&e)),
    };
    let marks = match snapshot {
        Ok(s) => s.watermarks,
        Err(e) => return failed(error_chain(&e)),
    };
    let mut terminals = Vec::new();
    for terminal in node.terminals() {
        let held =
            i64::try_from(marks.get(terminal.as_str()).copied().unwrap_or(0)).unwrap_or(i64::MAX);
        let before: Option<i64> =
            match sqlx::query_scalar("SELECT acked_seq FROM outbox WHERE terminal = $1")
                .bind(terminal.as_str())
                .fetch_optional(&node.pools.reader)
                .await
            {
                Ok(b) => b,
                Err(e) => return failed(e.to_string()),
            };
        let before = before.unwrap_or(0);
        if before > held
            && let Err(e) = sqlx::query(
                "UPDATE outbox SET acked_seq = $1 WHERE terminal = $2 AND acked_seq > $1",
            )
            .bind(held)
            .bind(terminal.as_str())
            .execute(&node.pools.writer)
            .await
        {
            return failed(e.to_string());
        }
        terminals.push(json!({
            "terminal": terminal.to_string(),
            "acked_before": before,
            "hq_holds": held,
            "pushed_again_from": (before > held).then_some(held + 1),
        }));
    }
    // Wake the outbox now rather than at its next look.
    node.appended().notify_waiters();
    let summary = serde_json::Value::from(terminals.clone()).to_string();
    tracing::info!(terminals = %summary, "re-sync for HQ: outbox cursors set to what HQ holds");
    SupportAnswer {
        done: true,
        result: json!({"terminals": terminals}),
    }
}

/// Applies a configuration profile: every setting checked first (the profile's own checks, the
/// tills being this node's, the amount in the store's currency), then each applied; a profile
/// with a setting that does not hold changes nothing.
async fn apply_profile(node: &Node, profile: Option<&Profile>) -> SupportAnswer {
    let refused = |why: String| SupportAnswer {
        done: false,
        result: json!({"error": why, "applied": false}),
    };
    let Some(profile) = profile else {
        return refused("the request carries no profile".into());
    };
    if let Err(e) = profile.check() {
        return refused(e.to_string());
    }
    let mut tills = Vec::new();
    for till in profile.printers.keys() {
        match TerminalId::parse(till) {
            Ok(t) if node.terminals().contains(&t) => tills.push(t),
            _ => {
                return refused(format!(
                    "profile.printers: `{till}` is not a till of this node"
                ));
            }
        }
    }
    if let Some(cap) = &profile.stored_value_offline_cap
        && let Some(ctx) = node.context()
        && let Err(e) = domain::Money::parse_major(cap, ctx.config.currency)
    {
        return refused(format!("profile.stored_value_offline_cap: {e}"));
    }
    if let Some(cap) = &profile.stored_value_offline_cap
        && let Err(e) = crate::stored_value::set_offline_cap(node, cap).await
    {
        return refused(e);
    }
    for (till, printer) in tills.iter().zip(profile.printers.values()) {
        if let Err(e) =
            crate::printing::set_printer(&node.pools.writer, till, &printer.target, printer.paper)
                .await
        {
            return refused(format!("profile.printers.{till}: {e}"));
        }
    }
    tracing::info!(profile = %serde_json::to_string(profile).unwrap_or_default(), "configuration profile from HQ applied");
    SupportAnswer {
        done: true,
        result: json!({"applied": true, "profile": profile}),
    }
}
