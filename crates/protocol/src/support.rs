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
    /// Apply a configuration profile ([`Profile`]).
    Profile,
}

impl SupportKind {
    /// Its name on the wire and in the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            SupportKind::Diagnostics => "diagnostics",
            SupportKind::Resync => "resync",
            SupportKind::Profile => "profile",
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
    /// The profile to apply (`profile` requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
}

/// Settings support may set on a store node from HQ. Every field is optional; what is given is
/// checked whole, then applied, or nothing is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The most the store may redeem from gift cards and store credit while HQ cannot be
    /// reached, in major units of its currency (`500.00`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_value_offline_cap: Option<String>,
    /// Receipt printers by till. Only network printers (`tcp:HOST[:PORT]`): a device path is
    /// set at the store, never from afar.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub printers: std::collections::BTreeMap<String, PrinterProfile>,
}

/// A till's receipt printer in a [`Profile`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrinterProfile {
    /// `tcp:HOST[:PORT]` (port 9100 when not given).
    pub target: String,
    /// Paper width in mm: 58 or 80.
    pub paper: u32,
}

impl Profile {
    /// Checks what can be checked without the store's data, naming the first field that is
    /// wrong (`stored_value_offline_cap`, `printers.<till>.target`, …).
    pub fn check(&self) -> Result<(), crate::FieldError> {
        if self.stored_value_offline_cap.is_none() && self.printers.is_empty() {
            return Err(crate::FieldError::new("profile", "sets nothing"));
        }
        if let Some(cap) = &self.stored_value_offline_cap {
            let (whole, cents) = cap.trim().split_once('.').unwrap_or((cap.trim(), ""));
            let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
            if whole.is_empty()
                || whole.len() > 12
                || !digits(whole)
                || cents.len() > 2
                || !digits(cents)
            {
                return Err(crate::FieldError::new(
                    "profile.stored_value_offline_cap",
                    format!("`{cap}` is not an amount such as 500.00"),
                ));
            }
        }
        for (till, printer) in &self.printers {
            domain::TerminalId::parse(till).map_err(|e| {
                crate::FieldError::new(format!("profile.printers.{till}"), e.to_string())
            })?;
            match printer.target.strip_prefix("tcp:") {
                Some(host) if !host.is_empty() && !host.chars().any(char::is_whitespace) => {}
                _ => {
                    return Err(crate::FieldError::new(
                        format!("profile.printers.{till}.target"),
                        format!(
                            "`{}` is not tcp:HOST[:PORT]: only network printers are set from afar",
                            printer.target
                        ),
                    ));
                }
            }
            if printer.paper != 58 && printer.paper != 80 {
                return Err(crate::FieldError::new(
                    format!("profile.printers.{till}.paper"),
                    format!("{} mm: use 58 or 80", printer.paper),
                ));
            }
        }
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn printer(target: &str, paper: u32) -> Profile {
        Profile {
            printers: [(
                "vienna-01-t1".to_owned(),
                PrinterProfile {
                    target: target.into(),
                    paper,
                },
            )]
            .into(),
            ..Profile::default()
        }
    }

    #[test]
    fn a_profile_is_refused_naming_the_setting_that_does_not_hold() {
        let field = |p: &Profile| p.check().map_err(|e| e.field);
        assert_eq!(field(&Profile::default()), Err("profile".into()));
        for cap in ["", "-1", "1.234", "12,50", "1e3", "1234567890123"] {
            let p = Profile {
                stored_value_offline_cap: Some(cap.into()),
                ..Profile::default()
            };
            assert_eq!(
                field(&p),
                Err("profile.stored_value_offline_cap".into()),
                "{cap}"
            );
        }
        for target in ["/dev/usb/lp0", "/etc/passwd", "tcp:", "tcp:a b", "http://x"] {
            assert_eq!(
                field(&printer(target, 80)),
                Err("profile.printers.vienna-01-t1.target".into()),
                "{target}"
            );
        }
        assert_eq!(
            field(&printer("tcp:10.0.0.31", 70)),
            Err("profile.printers.vienna-01-t1.paper".into())
        );
        assert_eq!(field(&printer("tcp:10.0.0.31:9100", 58)), Ok(()));
        let cap = Profile {
            stored_value_offline_cap: Some("250.00".into()),
            ..Profile::default()
        };
        assert_eq!(field(&cap), Ok(()));
    }
}
