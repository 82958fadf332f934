//! A till's journal as JSON lines: one entry per event, in sequence, with its chain hash and
//! (where it was kept) its signature. What `kassa store export` writes, what the fiscal
//! exports give the tax office as the full journal (the RKSV's DEP131), and what HQ writes
//! of the events it holds.

use serde_json::{Value, json};

/// One journal entry: position, chain data and the event itself (its stored JSON).
pub fn entry(
    seq: i64,
    id: &str,
    kind: &str,
    body: &[u8],
    hash: &[u8],
    signature: Option<&[u8]>,
) -> Value {
    let event: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let mut entry = json!({
        "seq": seq,
        "id": id,
        "kind": kind,
        "hash": hex::encode(hash),
        "event": event,
    });
    if let Some(signature) = signature {
        entry["signature"] = json!(hex::encode(signature));
    }
    entry
}
