//! Licence files: what a chain bought — customer, stores and terminals allowed, until when, which
//! features — signed by the vendor with Ed25519 (`kassa licence issue`) and checked offline by HQ
//! (`kassa hq licence install`).
//!
//! A file is JSON: `{"format": "kassa-licence/1", "key_id": …, "terms": "…", "signature": …}`.
//! `terms` is the terms' JSON as text, and the signature covers `kassa-licence/1\n` followed by
//! exactly that text, so nothing has to be re-encoded the same way twice. `key_id` names the
//! vendor key (the first 8 bytes of its SHA-256, in hex).
//!
//! [`standing`] folds the terms, what the chain uses and the clock into what HQ shows and
//! enforces: within the terms; over them or expired, with a grace period; or lapsed, when no new
//! store or terminal is admitted. Tills already registered sell on whatever the standing.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The format tag of a licence file.
pub const FORMAT: &str = "kassa-licence/1";
/// The grace period when the terms name none.
pub const DEFAULT_GRACE_DAYS: u32 = 30;
const DAY_MS: i64 = 86_400_000;

/// What a licence grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Terms {
    /// The licence's own id (the vendor's reference).
    pub licence: String,
    /// The customer's id: a chain's licences all name the same one.
    pub customer: String,
    /// The customer's name, as shown.
    pub customer_name: String,
    /// How many stores the chain may register.
    pub stores: u32,
    /// How many terminals (tills) the chain may register.
    pub terminals: u32,
    /// The day it was issued (`YYYY-MM-DD`): a licence older than the one installed is refused.
    pub issued: String,
    /// The last day it is valid (`YYYY-MM-DD`, through the end of that day UTC).
    pub expires: String,
    /// Days after expiry, or after the chain first went over a limit, before new stores and
    /// terminals are refused.
    #[serde(default = "default_grace")]
    pub grace_days: u32,
    /// Features the licence names (shown; a later release may switch on what they name).
    #[serde(default)]
    pub features: Vec<String>,
}

fn default_grace() -> u32 {
    DEFAULT_GRACE_DAYS
}

/// A signed licence file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LicenceFile {
    /// [`FORMAT`].
    pub format: String,
    /// The id of the vendor key that signed it ([`key_id`]).
    pub key_id: String,
    /// The terms' JSON, exactly as signed.
    pub terms: String,
    /// The Ed25519 signature (base64) of [`FORMAT`], a line feed and `terms`.
    pub signature: String,
}

/// Why a licence is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LicenceError {
    /// Not a licence file.
    #[error("this is not a Kassa licence file ({0}): install the file the vendor sent as it is")]
    Malformed(String),
    /// Signed by a key this HQ does not trust.
    #[error(
        "the licence is signed by vendor key {0}, which this HQ does not trust: ask the vendor for a licence signed with its key, or name the key with --licence-key"
    )]
    UnknownKey(String),
    /// The signature does not match the terms.
    #[error(
        "the licence's signature does not match its terms (the file was changed after signing): install the file the vendor sent, unchanged"
    )]
    BadSignature,
    /// A term is wrong.
    #[error("the licence's {0}")]
    Field(String),
}

/// The id of a vendor key: the first 8 bytes of the SHA-256 of its public key, in hex.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

fn signed_message(terms: &str) -> Vec<u8> {
    let mut message = Vec::with_capacity(FORMAT.len() + 1 + terms.len());
    message.extend_from_slice(FORMAT.as_bytes());
    message.push(b'\n');
    message.extend_from_slice(terms.as_bytes());
    message
}

fn date(field: &str, text: &str) -> Result<jiff::civil::Date, LicenceError> {
    text.parse::<jiff::civil::Date>()
        .map_err(|_| LicenceError::Field(format!("{field} `{text}` is not a date (YYYY-MM-DD)")))
}

fn day_start_ms(day: jiff::civil::Date) -> i64 {
    day.to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp().as_millisecond())
        .unwrap_or(i64::MAX)
}

impl Terms {
    /// Checks every term, naming the first that is wrong.
    pub fn check(&self) -> Result<(), LicenceError> {
        for (field, value) in [
            ("licence", &self.licence),
            ("customer", &self.customer),
            ("customer_name", &self.customer_name),
        ] {
            if value.trim().is_empty() {
                return Err(LicenceError::Field(format!("{field} is empty")));
            }
        }
        if self.stores == 0 || self.terminals == 0 {
            return Err(LicenceError::Field(
                "stores and terminals must each allow at least one".into(),
            ));
        }
        let issued = date("issued", &self.issued)?;
        let expires = date("expires", &self.expires)?;
        if expires < issued {
            return Err(LicenceError::Field(format!(
                "expires {} is before issued {}",
                self.expires, self.issued
            )));
        }
        if self.grace_days > 365 {
            return Err(LicenceError::Field(format!(
                "grace_days {} is more than a year",
                self.grace_days
            )));
        }
        Ok(())
    }

    /// The first instant it is no longer valid (the start of the day after `expires`, UTC).
    pub fn expires_after_ms(&self) -> i64 {
        date("expires", &self.expires)
            .ok()
            .and_then(|d| d.tomorrow().ok())
            .map(day_start_ms)
            .unwrap_or(i64::MIN)
    }

    /// The day it was issued, for ordering licences.
    pub fn issued_day(&self) -> Option<jiff::civil::Date> {
        date("issued", &self.issued).ok()
    }

    /// The terms signed with the vendor's key.
    pub fn sign(&self, key: &SigningKey) -> Result<LicenceFile, LicenceError> {
        self.check()?;
        let terms =
            serde_json::to_string(self).map_err(|e| LicenceError::Malformed(e.to_string()))?;
        let signature = key.sign(&signed_message(&terms));
        Ok(LicenceFile {
            format: FORMAT.into(),
            key_id: key_id(&key.verifying_key()),
            terms,
            signature: STANDARD.encode(signature.to_bytes()),
        })
    }
}

impl LicenceFile {
    /// Reads a licence file's text (not yet verified).
    pub fn parse(text: &str) -> Result<Self, LicenceError> {
        let file: LicenceFile = serde_json::from_str(text.trim())
            .map_err(|e| LicenceError::Malformed(e.to_string()))?;
        if file.format != FORMAT {
            return Err(LicenceError::Malformed(format!(
                "format `{}`, not `{FORMAT}`",
                file.format
            )));
        }
        Ok(file)
    }

    /// The file as text.
    pub fn to_text(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// The terms, once the signature is checked against one of the `trusted` vendor keys.
    pub fn verify(&self, trusted: &[VerifyingKey]) -> Result<Terms, LicenceError> {
        let key = trusted
            .iter()
            .find(|k| key_id(k) == self.key_id)
            .ok_or_else(|| LicenceError::UnknownKey(self.key_id.clone()))?;
        let signature = STANDARD
            .decode(&self.signature)
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
            .map(|b| ed25519_dalek::Signature::from_bytes(&b))
            .ok_or(LicenceError::BadSignature)?;
        key.verify_strict(&signed_message(&self.terms), &signature)
            .map_err(|_| LicenceError::BadSignature)?;
        let terms: Terms = serde_json::from_str(&self.terms)
            .map_err(|e| LicenceError::Malformed(format!("its terms: {e}")))?;
        terms.check()?;
        Ok(terms)
    }
}

/// What the chain uses of a licence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Registered stores.
    pub stores: u32,
    /// Registered terminals not revoked.
    pub terminals: u32,
}

/// Why a chain is outside its licence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Breach {
    /// Past the last day.
    Expired {
        /// When it stopped being valid (ms).
        since_ms: i64,
    },
    /// More stores than allowed.
    Stores {
        /// Registered.
        used: u32,
        /// Allowed.
        allowed: u32,
    },
    /// More terminals than allowed.
    Terminals {
        /// Registered.
        used: u32,
        /// Allowed.
        allowed: u32,
    },
}

impl std::fmt::Display for Breach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Breach::Expired { since_ms } => write!(f, "the licence expired {}", day_of(*since_ms)),
            Breach::Stores { used, allowed } => {
                write!(
                    f,
                    "{used} stores are registered, the licence allows {allowed}"
                )
            }
            Breach::Terminals { used, allowed } => {
                write!(
                    f,
                    "{used} terminals are registered, the licence allows {allowed}"
                )
            }
        }
    }
}

/// The day (UTC) of an instant, as text.
pub fn day_of(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).date().to_string())
        .unwrap_or_else(|_| ms.to_string())
}

/// Where a chain stands with its licence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Standing {
    /// Within the terms.
    Valid,
    /// Outside them; new stores and terminals are still admitted until `until_ms`.
    Grace {
        /// Why.
        breaches: Vec<Breach>,
        /// When the grace period ends (ms).
        until_ms: i64,
    },
    /// Outside them past the grace period: no new store or terminal is admitted.
    Lapsed {
        /// Why.
        breaches: Vec<Breach>,
        /// When the grace period ended (ms).
        since_ms: i64,
    },
}

impl Standing {
    /// Whether a new store or terminal is admitted.
    pub fn admits(&self) -> bool {
        !matches!(self, Standing::Lapsed { .. })
    }
}

/// The standing of a chain that uses `usage` of `terms` at `now_ms`; `over_since_ms` is when it
/// first went over a limit (and has been over since), which starts that grace period. Expiry
/// starts its own; the earlier end counts.
pub fn standing(terms: &Terms, usage: Usage, over_since_ms: Option<i64>, now_ms: i64) -> Standing {
    let grace_ms = i64::from(terms.grace_days) * DAY_MS;
    let mut breaches = Vec::new();
    let mut grace_ends = Vec::new();
    let expired_at = terms.expires_after_ms();
    if now_ms >= expired_at {
        breaches.push(Breach::Expired {
            since_ms: expired_at,
        });
        grace_ends.push(expired_at.saturating_add(grace_ms));
    }
    let over = [
        (usage.stores > terms.stores).then_some(Breach::Stores {
            used: usage.stores,
            allowed: terms.stores,
        }),
        (usage.terminals > terms.terminals).then_some(Breach::Terminals {
            used: usage.terminals,
            allowed: terms.terminals,
        }),
    ];
    for breach in over.into_iter().flatten() {
        breaches.push(breach);
        grace_ends.push(over_since_ms.unwrap_or(now_ms).saturating_add(grace_ms));
    }
    match grace_ends.into_iter().min() {
        None => Standing::Valid,
        Some(end) if now_ms < end => Standing::Grace {
            breaches,
            until_ms: end,
        },
        Some(end) => Standing::Lapsed {
            breaches,
            since_ms: end,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms() -> Terms {
        Terms {
            licence: "L-1".into(),
            customer: "acme".into(),
            customer_name: "Acme Retail".into(),
            stores: 2,
            terminals: 4,
            issued: "2026-01-01".into(),
            expires: "2026-12-31".into(),
            grace_days: 30,
            features: vec!["fiscal-at".into()],
        }
    }

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn ms(day: &str) -> i64 {
        day_start_ms(day.parse().expect("a date"))
    }

    #[test]
    fn a_signed_licence_verifies_under_its_key_alone() {
        let file = terms().sign(&key(1)).expect("signs");
        let text = file.to_text();
        let back = LicenceFile::parse(&text).expect("parses");
        assert_eq!(back.verify(&[key(1).verifying_key()]), Ok(terms()));
        assert_eq!(
            back.verify(&[key(2).verifying_key()]),
            Err(LicenceError::UnknownKey(key_id(&key(1).verifying_key())))
        );
    }

    #[test]
    fn any_changed_term_breaks_the_signature() {
        let file = terms().sign(&key(1)).expect("signs");
        let changed = LicenceFile {
            terms: file.terms.replace("\"terminals\":4", "\"terminals\":400"),
            ..file.clone()
        };
        assert_ne!(changed.terms, file.terms);
        assert_eq!(
            changed.verify(&[key(1).verifying_key()]),
            Err(LicenceError::BadSignature)
        );
        let cut = LicenceFile {
            signature: file.signature[..20].into(),
            ..file
        };
        assert_eq!(
            cut.verify(&[key(1).verifying_key()]),
            Err(LicenceError::BadSignature)
        );
    }

    #[test]
    fn bad_terms_are_refused_naming_the_field() {
        let mut t = terms();
        t.expires = "2025-12-31".into();
        assert!(matches!(t.sign(&key(1)), Err(LicenceError::Field(m)) if m.contains("expires")));
        let mut t = terms();
        t.customer = " ".into();
        assert!(matches!(t.sign(&key(1)), Err(LicenceError::Field(m)) if m.contains("customer")));
        assert!(matches!(
            LicenceFile::parse(
                "{\"format\":\"other\",\"key_id\":\"\",\"terms\":\"\",\"signature\":\"\"}"
            ),
            Err(LicenceError::Malformed(_))
        ));
        assert!(matches!(
            LicenceFile::parse("licence"),
            Err(LicenceError::Malformed(_))
        ));
    }

    #[test]
    fn the_standing_follows_usage_and_the_clock() {
        let t = terms();
        let within = Usage {
            stores: 2,
            terminals: 4,
        };
        assert_eq!(
            standing(&t, within, None, ms("2026-06-01")),
            Standing::Valid
        );
        // The last day is valid to its end.
        assert_eq!(
            standing(&t, within, None, ms("2027-01-01") - 1),
            Standing::Valid
        );
        let expired = standing(&t, within, None, ms("2027-01-01"));
        assert_eq!(
            expired,
            Standing::Grace {
                breaches: vec![Breach::Expired {
                    since_ms: ms("2027-01-01")
                }],
                until_ms: ms("2027-01-31"),
            }
        );
        assert!(expired.admits());
        assert!(!standing(&t, within, None, ms("2027-01-31")).admits());

        let over = Usage {
            stores: 2,
            terminals: 5,
        };
        let since = ms("2026-06-01");
        assert!(matches!(
            standing(&t, over, Some(since), since + 29 * DAY_MS),
            Standing::Grace { until_ms, .. } if until_ms == since + 30 * DAY_MS
        ));
        assert_eq!(
            standing(&t, over, Some(since), since + 30 * DAY_MS),
            Standing::Lapsed {
                breaches: vec![Breach::Terminals {
                    used: 5,
                    allowed: 4
                }],
                since_ms: since + 30 * DAY_MS,
            }
        );
        // Over a limit and expired: the earlier end of the two grace periods counts.
        assert!(matches!(
            standing(&t, over, Some(ms("2026-12-20")), ms("2027-01-10")),
            Standing::Grace { breaches, until_ms } if breaches.len() == 2 && until_ms == ms("2027-01-19")
        ));
    }
}
