//! The sync wire format, versioned here and nowhere else.
//!
//! Upstream, a terminal pushes a **batch**: a zstd-compressed text whose first line is a JSON
//! header and whose following lines are the canonical bytes of consecutive events (canonical
//! JSON never contains a raw newline). Only the last event's signature travels: the receiver
//! recomputes the chain from `prev_hash` over every event, and the one signature over the head
//! covers them all.

use std::io::Read;

use domain::ledger::{Event, EventBody};
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use crate::FieldError;
use crate::chain::{self, Hash};

/// The batch format this build writes and reads.
pub const BATCH_FORMAT: &str = "kassa-batch/1";

/// The media type of a batch body.
pub const BATCH_MEDIA_TYPE: &str = "application/vnd.kassa.batch+zstd";

/// The most a batch may decompress to; a bigger one is refused before it is read whole.
pub const MAX_BATCH_BYTES: u64 = 64 * 1024 * 1024;

/// The most a pushed batch may be on the wire (compressed). Canonical event JSON is ASCII text
/// whose random parts (ids, hash links, signatures) are hex digits and UUIDs, at most four bits
/// of information per byte, so zstd brings any batch within [`MAX_BATCH_BYTES`] under half of
/// it; a bigger body cannot be a batch a terminal built, and HQ refuses it unread.
pub const MAX_PUSH_BYTES: u64 = MAX_BATCH_BYTES / 2;

/// The first line of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchHeader {
    /// Always [`BATCH_FORMAT`].
    pub format: String,
    /// The store.
    pub store: String,
    /// The terminal whose events these are.
    pub terminal: String,
    /// Sequence number of the first event.
    pub from_seq: u64,
    /// Number of events.
    pub count: u32,
    /// Hex of the chain link before the first event.
    pub prev_hash: String,
    /// Hex of the terminal's signature over the last event's link.
    pub head_signature: String,
}

/// A batch: header plus the canonical bytes of each event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The header.
    pub header: BatchHeader,
    /// Canonical event bytes, in sequence order.
    pub events: Vec<Vec<u8>>,
}

/// Compresses a batch for the wire.
pub fn encode_batch(batch: &Batch, level: i32) -> Vec<u8> {
    let mut text = serde_json::to_vec(&batch.header).unwrap_or_default();
    for event in &batch.events {
        text.push(b'\n');
        text.extend_from_slice(event);
    }
    zstd::encode_all(text.as_slice(), level).unwrap_or_default()
}

/// Reads a batch from the wire; refuses one that decompresses beyond [`MAX_BATCH_BYTES`].
pub fn decode_batch(bytes: &[u8]) -> Result<Batch, FieldError> {
    let decoder = zstd::Decoder::new(bytes)
        .map_err(|e| FieldError::new("batch", format!("not zstd: {e}")))?;
    let mut text = Vec::new();
    decoder
        .take(MAX_BATCH_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(|e| FieldError::new("batch", format!("corrupt compressed data: {e}")))?;
    if text.len() as u64 > MAX_BATCH_BYTES {
        return Err(FieldError::new(
            "batch",
            format!("decompresses to more than {MAX_BATCH_BYTES} bytes"),
        ));
    }
    let mut lines = text.split(|b| *b == b'\n');
    let header: BatchHeader = serde_json::from_slice(lines.next().unwrap_or_default())
        .map_err(|e| FieldError::new("batch.header", format!("not a batch header: {e}")))?;
    if header.format != BATCH_FORMAT {
        return Err(FieldError::new(
            "batch.header.format",
            format!("`{}` is not {BATCH_FORMAT}", header.format),
        ));
    }
    let events: Vec<Vec<u8>> = lines.map(<[u8]>::to_vec).collect();
    if events.len() != header.count as usize || events.is_empty() {
        return Err(FieldError::new(
            "batch.header.count",
            format!(
                "header says {} events, batch has {}",
                header.count,
                events.len()
            ),
        ));
    }
    Ok(Batch { header, events })
}

/// An event of a verified batch, with its link hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEvent {
    /// The event.
    pub event: Event,
    /// Its canonical bytes.
    pub bytes: Vec<u8>,
    /// The link before it.
    pub prev_hash: Hash,
    /// Its link.
    pub hash: Hash,
}

/// Verifies a batch against the store it came from and the terminal's public key at the batch's
/// first event: every event decodes, belongs to that store and terminal, the sequence is
/// contiguous from `from_seq`, the chain recomputed from `prev_hash` ends in a link the head
/// signature verifies. A key rotation may only be the last event, so the key that signs the
/// head is always `key` and a rotation is vouched for by the key it replaces; the receiver
/// takes the new key for the events after it ([`rotated_key`]).
pub fn verify_batch(
    batch: &Batch,
    store: &str,
    key: &VerifyingKey,
) -> Result<Vec<VerifiedEvent>, FieldError> {
    let h = &batch.header;
    if h.store != store {
        return Err(FieldError::new(
            "batch.header.store",
            format!(
                "batch names store `{}`, credential is for `{store}`",
                h.store
            ),
        ));
    }
    let mut previous: Hash = hex::decode(&h.prev_hash)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| FieldError::new("batch.header.prev_hash", "not 32 bytes of hex"))?;
    let signature = hex::decode(&h.head_signature)
        .map_err(|_| FieldError::new("batch.header.head_signature", "not hex"))?;
    let mut out = Vec::with_capacity(batch.events.len());
    for (i, (bytes, decoded)) in batch
        .events
        .iter()
        .zip(decode_all(&batch.events))
        .enumerate()
    {
        let event = decoded.map_err(|e| FieldError::new(format!("events[{i}]"), e))?;
        let expected_seq = h.from_seq + i as u64;
        if event.meta.terminal.as_str() != h.terminal || event.meta.store.as_str() != store {
            return Err(FieldError::new(
                format!("events[{i}]"),
                "event belongs to another terminal or store",
            ));
        }
        if event.meta.seq != expected_seq {
            return Err(FieldError::new(
                format!("events[{i}].seq"),
                format!("expected sequence {expected_seq}, found {}", event.meta.seq),
            ));
        }
        if matches!(event.body, EventBody::KeyRotated { .. }) && i + 1 != batch.events.len() {
            return Err(FieldError::new(
                format!("events[{i}]"),
                "a key rotation must end its batch, so that the old key signs it",
            ));
        }
        let hash = chain::link(&previous, bytes);
        out.push(VerifiedEvent {
            event,
            bytes: bytes.clone(),
            prev_hash: previous,
            hash,
        });
        previous = hash;
    }
    if !chain::verify(key, &previous, &signature) {
        return Err(FieldError::new(
            "batch.header.head_signature",
            "signature does not verify: the events were altered or not signed by this terminal",
        ));
    }
    Ok(out)
}

/// The key a verified batch hands over to, when its last event is a key rotation.
pub fn rotated_key(verified: &[VerifiedEvent]) -> Option<(u64, [u8; 32])> {
    match verified.last() {
        Some(VerifiedEvent {
            event:
                Event {
                    body: EventBody::KeyRotated { public_key },
                    meta,
                },
            ..
        }) => Some((meta.seq, *public_key)),
        _ => None,
    }
}

/// Below this many events a batch is decoded on the calling thread: starting threads would cost
/// more than they save.
const PARALLEL_DECODE_FROM: usize = 256;

/// Decodes every event of a batch, on as many threads as the machine has cores. Decoding (with
/// the canonical re-encoding that checks it) is most of a batch's verification, and events are
/// independent until they are linked, which stays sequential and cheap.
fn decode_all(events: &[Vec<u8>]) -> Vec<Result<Event, FieldError>> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    if threads < 2 || events.len() < PARALLEL_DECODE_FROM {
        return events.iter().map(|b| crate::event::decode(b)).collect();
    }
    let chunk = events.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> = events
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|b| crate::event::decode(b))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|part| part.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

/// HQ's answer to a push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushAck {
    /// The highest sequence up to which HQ holds every event of the terminal.
    pub acked_seq: u64,
    /// Events new to HQ in this batch.
    pub accepted: u32,
    /// Events HQ already had, identical.
    pub duplicates: u32,
    /// Missing ranges (inclusive) between the acknowledged sequence and what HQ holds beyond it.
    pub gaps: Vec<(u64, u64)>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    fn counted(seq: u64) -> String {
        format!(
            r#"{{"v":1,"id":"01935f4e-8a2b-7c3d-9e4f-{seq:012}","store":"s1","terminal":"t1","seq":{seq},"hlc":[1790000000000,{seq}],"body":{{"StockCounted":{{"sku":"A","counted":{seq}000}}}}}}"#
        )
    }

    fn rotated(seq: u64, to: &SigningKey) -> String {
        format!(
            r#"{{"v":1,"id":"01935f4e-8a2b-7c3d-9e4f-{seq:012}","store":"s1","terminal":"t1","seq":{seq},"hlc":[1790000000000,{seq}],"body":{{"KeyRotated":{{"key":"{}"}}}}}}"#,
            hex::encode(to.verifying_key().to_bytes())
        )
    }

    /// `texts` as the batch from `from_seq` after the link `prev`, its head signed by `key`;
    /// and the link after its last event.
    fn signed(texts: Vec<String>, from_seq: u64, prev: Hash, key: &SigningKey) -> (Batch, Hash) {
        let mut head = prev;
        for text in &texts {
            head = chain::link(&head, text.as_bytes());
        }
        let header = BatchHeader {
            format: BATCH_FORMAT.into(),
            store: "s1".into(),
            terminal: "t1".into(),
            from_seq,
            count: u32::try_from(texts.len()).unwrap(),
            prev_hash: hex::encode(prev),
            head_signature: hex::encode(chain::sign(key, &head)),
        };
        let events = texts.into_iter().map(String::into_bytes).collect();
        (Batch { header, events }, head)
    }

    fn events(n: u64) -> (Batch, SigningKey) {
        let key = SigningKey::from_bytes(&[3; 32]);
        let (batch, _) = signed((1..=n).map(counted).collect(), 1, chain::GENESIS, &key);
        (batch, key)
    }

    #[test]
    fn a_key_rotation_ends_its_batch_signed_by_the_key_it_replaces() {
        let old = SigningKey::from_bytes(&[3; 32]);
        let new = SigningKey::from_bytes(&[5; 32]);
        // Counted, counted, rotated: signed by the old key, it hands over to the new one.
        let (first, head) = signed(
            vec![counted(1), counted(2), rotated(3, &new)],
            1,
            chain::GENESIS,
            &old,
        );
        let verified = verify_batch(&first, "s1", &old.verifying_key()).unwrap();
        assert_eq!(
            rotated_key(&verified),
            Some((3, new.verifying_key().to_bytes()))
        );
        assert_eq!(rotated_key(&verified[..2]), None);
        // The same batch signed by the new key is not vouched for by the old one.
        let (forged, _) = signed(
            vec![counted(1), counted(2), rotated(3, &new)],
            1,
            chain::GENESIS,
            &new,
        );
        assert!(verify_batch(&forged, "s1", &old.verifying_key()).is_err());
        // After the rotation the new key signs; the old key no longer does.
        let (after, _) = signed(vec![counted(4), counted(5)], 4, head, &new);
        assert!(verify_batch(&after, "s1", &new.verifying_key()).is_ok());
        let (stale, _) = signed(vec![counted(4), counted(5)], 4, head, &old);
        assert_eq!(
            verify_batch(&stale, "s1", &new.verifying_key())
                .unwrap_err()
                .field,
            "batch.header.head_signature"
        );
        // A rotation inside a batch would let the new key vouch for itself: refused.
        let (inside, _) = signed(
            vec![counted(1), rotated(2, &new), counted(3)],
            1,
            chain::GENESIS,
            &new,
        );
        let err = verify_batch(&inside, "s1", &old.verifying_key()).unwrap_err();
        assert_eq!(err.field, "events[1]", "{err}");
        assert!(err.to_string().contains("must end its batch"), "{err}");
    }

    #[test]
    fn heads_round_trip_and_a_bad_entry_is_left_out() {
        let heads = vec![
            ("vienna-01-t1".to_owned(), 130),
            ("vienna-01-t2".to_owned(), 0),
        ];
        assert_eq!(parse_heads(&encode_heads(&heads)), heads);
        assert_eq!(
            parse_heads("t1=5, =3,t2=x,t 3=4,t4=-1,t5"),
            vec![("t1".to_owned(), 5)]
        );
        assert!(parse_heads("").is_empty());
    }

    #[test]
    fn batches_round_trip_and_verify() {
        let (batch, key) = events(5);
        let wire = encode_batch(&batch, 3);
        let back = decode_batch(&wire).unwrap();
        assert_eq!(back, batch);
        let verified = verify_batch(&back, "s1", &key.verifying_key()).unwrap();
        assert_eq!(verified.len(), 5);
        assert_eq!(verified[4].event.meta.seq, 5);
    }

    #[test]
    fn tampered_batches_are_refused_naming_why() {
        let (mut batch, key) = events(3);
        batch.events[1] = String::from_utf8(batch.events[1].clone())
            .unwrap()
            .replace("2000", "9000")
            .into_bytes();
        let err = verify_batch(&batch, "s1", &key.verifying_key()).unwrap_err();
        assert_eq!(err.field, "batch.header.head_signature");
        let (batch, key) = events(3);
        assert_eq!(
            verify_batch(&batch, "s2", &key.verifying_key())
                .unwrap_err()
                .field,
            "batch.header.store"
        );
        let other = SigningKey::from_bytes(&[4; 32]);
        assert!(verify_batch(&batch, "s1", &other.verifying_key()).is_err());
        assert!(decode_batch(b"not zstd").is_err());
        let mut short = batch.clone();
        short.header.count = 7;
        assert_eq!(
            decode_batch(&encode_batch(&short, 3)).unwrap_err().field,
            "batch.header.count"
        );
    }

    #[test]
    fn a_batch_decoded_on_several_threads_keeps_its_order_and_names_the_first_bad_event() {
        let n = PARALLEL_DECODE_FROM as u64 * 3 + 7;
        let (batch, key) = events(n);
        let verified = verify_batch(&batch, "s1", &key.verifying_key()).unwrap();
        let seqs: Vec<u64> = verified.iter().map(|v| v.event.meta.seq).collect();
        assert_eq!(seqs, (1..=n).collect::<Vec<_>>());
        // Two undecodable events in different threads' parts: the first one is named.
        let mut broken = batch.clone();
        for i in [700, 300] {
            broken.events[i] = b"{not an event".to_vec();
        }
        let err = verify_batch(&broken, "s1", &key.verifying_key()).unwrap_err();
        assert_eq!(err.field, "events[300]");
    }

    #[test]
    fn a_decompression_bomb_is_refused() {
        let zeros = vec![b'0'; usize::try_from(MAX_BATCH_BYTES).unwrap() + 10];
        let bomb = zstd::encode_all(zeros.as_slice(), 1).unwrap();
        assert!(bomb.len() < 100_000);
        assert!(
            decode_batch(&bomb)
                .unwrap_err()
                .reason
                .contains("decompresses to more than")
        );
    }
}

/// The reference data format this build writes and reads.
pub const REFERENCE_FORMAT: &str = "kassa-ref/1";

/// The media type of a reference update body (zstd-compressed JSON).
pub const REFERENCE_MEDIA_TYPE: &str = "application/vnd.kassa.ref+zstd";

/// The response header naming HQ's reference change log (a random id HQ makes once). A store's
/// reference version means something only within one log: a store records the log it follows
/// and refuses updates from another, so a replaced HQ database or another HQ never passes for
/// the one whose versions it holds. A header rather than a field keeps `kassa-ref/1` readable by
/// stores that predate it.
pub const REFERENCE_LOG_HEADER: &str = "kassa-reference-log";

/// The software version a store node sends with each push and pull.
pub const NODE_VERSION_HEADER: &str = "kassa-node-version";
/// The sync protocol a store node speaks, sent with each push and pull: the formats of this
/// module (`kassa-batch/1`, `kassa-ref/1`, stock snapshots) and the meaning of the sync routes.
/// A change a node or HQ of the previous release could not read takes the next number.
pub const NODE_PROTOCOL_HEADER: &str = "kassa-sync-protocol";
/// The sync protocol this build speaks.
pub const SYNC_PROTOCOL: u32 = 1;
/// The response header in which HQ states the sync protocols it accepts (`1-1`).
pub const ACCEPTED_PROTOCOLS_HEADER: &str = "kassa-sync-protocols";
/// The node's clock (epoch ms) when it sent the pull, for HQ to tell how far apart they are.
pub const NODE_CLOCK_HEADER: &str = "kassa-node-clock";
/// The events the node's tills hold that HQ has not acknowledged yet.
pub const NODE_UNSYNCED_HEADER: &str = "kassa-node-unsynced";
/// Each of the node's tills with the last sequence its ledger holds (`T1=130,T2=55`, see
/// [`encode_heads`]): what HQ names lost when a node comes back with less.
pub const NODE_HEADS_HEADER: &str = "kassa-node-heads";
/// The most tills one heads header names.
pub const MAX_HEADS: usize = 256;

/// The value of [`NODE_HEADS_HEADER`].
pub fn encode_heads(heads: &[(String, u64)]) -> String {
    heads
        .iter()
        .take(MAX_HEADS)
        .map(|(terminal, seq)| format!("{terminal}={seq}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Reads [`NODE_HEADS_HEADER`]: the tills it names with their last sequence; an entry that is
/// not `TERMINAL=SEQUENCE` with a valid terminal id is left out, never guessed.
pub fn parse_heads(text: &str) -> Vec<(String, u64)> {
    text.split(',')
        .take(MAX_HEADS)
        .filter_map(|entry| {
            let (terminal, seq) = entry.trim().split_once('=')?;
            let terminal = domain::TerminalId::parse(terminal).ok()?;
            Some((terminal.as_str().to_owned(), seq.parse().ok()?))
        })
        .collect()
}
/// When (epoch ms, the event's clock) the oldest of those was recorded; absent when none.
pub const NODE_OLDEST_UNSYNCED_HEADER: &str = "kassa-node-oldest-unsynced";

/// The entity kind HQ publishes the identity of its PIN pepper under ([`crate::pin::pepper_id`]),
/// so a store can tell that it lacks the pepper the published PIN hashes are keyed with.
pub const PIN_PEPPER_KIND: &str = "pin_pepper";

/// Reference data changes from one version to another, applied by a store whole or not at all.
/// `from_version` 0 means a snapshot: everything the store needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceUpdate {
    /// Always [`REFERENCE_FORMAT`].
    pub format: String,
    /// The version the store had.
    pub from_version: i64,
    /// The version the store has after applying this.
    pub to_version: i64,
    /// Changed entities; a `null` payload removes the entity.
    pub entities: Vec<EntityChange>,
}

/// One changed entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityChange {
    /// `store`, `jurisdiction`, `variant` or `prices`.
    pub kind: String,
    /// Store id, jurisdiction code, SKU, or `book|sku`.
    pub key: String,
    /// The entity, or `null` when it was removed.
    pub payload: Option<serde_json::Value>,
}

/// A variant entity: the variant and the product it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantEntity {
    /// The product id.
    pub product_id: String,
    /// The product name.
    pub product_name: String,
    /// The product's category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// The variant.
    pub variant: crate::seed::VariantDto,
}

/// The entity kind HQ publishes orders from the web under, keyed by the order's id; a store
/// takes those routed to it.
pub const ORDER_KIND: &str = "order";

/// An order from the web as HQ routes it to its store through the reference change log (its
/// latest state at every change). A store older than orders ignores the kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderEntity {
    /// HQ's id.
    pub id: String,
    /// The number the customer knows (`W-000123`), also in the pickup QR code.
    pub number: String,
    /// The store that fulfils it.
    pub store: String,
    /// `pickup` or `ship-from-store`.
    pub fulfilment: String,
    /// `paid` (online, `psp_reference` names the payment) or `at-pickup`.
    pub payment: String,
    /// The payment service provider's reference of an order paid online.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psp_reference: Option<String>,
    /// `placed`, `picked`, `ready`, `shipped`, `collected` or `cancelled`.
    pub status: String,
    /// Who ordered.
    pub customer: OrderCustomer,
    /// Where to ship (ship-from-store), as the customer wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<String>,
    /// The currency of the prices.
    pub currency: String,
    /// What was ordered.
    pub lines: Vec<OrderLine>,
    /// When it was placed, epoch ms.
    pub created_ms: i64,
}

/// The customer of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCustomer {
    /// Their name.
    pub name: String,
    /// Their e-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Their phone number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// A line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    /// The variant.
    pub sku: String,
    /// Its name when ordered.
    pub name: String,
    /// Ordered, in thousandths.
    pub quantity: i64,
    /// Picked, in thousandths (once picked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picked: Option<i64>,
    /// Brought back to a store after delivery, in thousandths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub returned: Option<i64>,
    /// The price of one unit in minor units, tax included, as the shop charged or quoted it.
    pub unit_price_minor: i64,
}

/// The reference kind of a return made through the web shop.
pub const WEB_RETURN_KIND: &str = "web-return";

/// An in-store sale returned through the web shop (HQ's returns API, with the sale's receipt
/// number), as HQ routes it through the reference change log to the store that sold it (whose
/// tills may then return only what is left) and to the store the goods are sent back to (which
/// receives them into its stock). A store older than web returns ignores the kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebReturnEntity {
    /// HQ's id.
    pub id: String,
    /// The number the customer knows (`R-000123`), also on the parcel.
    pub number: String,
    /// The receipt number of the sale.
    pub sale_receipt: String,
    /// The store that sold the goods.
    pub sale_store: String,
    /// The store the goods are sent back to.
    pub receive_at: String,
    /// `open` (on the way) or `received`.
    pub status: String,
    /// The currency of the refund.
    pub currency: String,
    /// What the web shop refunds, in minor units (the returned lines' share of the sale).
    pub refund_minor: i64,
    /// What comes back.
    pub lines: Vec<WebReturnLine>,
    /// When it was made, epoch ms.
    pub created_ms: i64,
}

/// A line of a web return: which line of the sale, and how much of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebReturnLine {
    /// The line's index on the sale.
    pub line: u32,
    /// The variant.
    pub sku: String,
    /// Its name on the sale.
    pub name: String,
    /// Returned, in thousandths.
    pub quantity: i64,
}

/// The prices of one SKU in one pricebook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PricesEntity {
    /// The book's id.
    pub book: String,
    /// The book's version.
    pub version: u64,
    /// The book's scope.
    pub scope: crate::seed::ScopeDto,
    /// The book's currency.
    pub currency: String,
    /// The SKU.
    pub sku: String,
    /// Its entries in the book.
    pub entries: Vec<crate::seed::PriceEntryDto>,
}

/// Every entity of a reference data set, keyed by (kind, key), as JSON values: what HQ publishes
/// and what a store loads from a seed file.
pub fn entities_of(
    seed: &crate::seed::SeedDto,
) -> std::collections::BTreeMap<(String, String), serde_json::Value> {
    use std::collections::BTreeMap;
    fn value<T: Serialize>(v: &T) -> serde_json::Value {
        serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
    }
    let mut out = BTreeMap::new();
    for store in &seed.stores {
        out.insert(("store".to_owned(), store.id.clone()), value(store));
    }
    for j in &seed.jurisdictions {
        out.insert(("jurisdiction".to_owned(), j.code.clone()), value(j));
    }
    for member in &seed.staff {
        out.insert(("staff".to_owned(), member.id.clone()), value(member));
    }
    for category in &seed.categories {
        out.insert(
            ("category".to_owned(), category.id.clone()),
            value(category),
        );
    }
    for product in &seed.products {
        for variant in &product.variants {
            let entity = VariantEntity {
                product_id: product.id.clone(),
                product_name: product.name.clone(),
                category: product.category.clone(),
                variant: variant.clone(),
            };
            out.insert(("variant".to_owned(), variant.sku.clone()), value(&entity));
        }
    }
    for book in &seed.pricebooks {
        let mut by_sku: BTreeMap<&str, Vec<crate::seed::PriceEntryDto>> = BTreeMap::new();
        for entry in &book.entries {
            by_sku
                .entry(entry.sku.as_str())
                .or_default()
                .push(entry.clone());
        }
        for (sku, entries) in by_sku {
            let entity = PricesEntity {
                book: book.id.clone(),
                version: book.version,
                scope: book.scope.clone(),
                currency: book.currency.clone(),
                sku: sku.to_owned(),
                entries,
            };
            out.insert(
                ("prices".to_owned(), format!("{}|{sku}", book.id)),
                value(&entity),
            );
        }
    }
    out
}

/// Compresses a reference update.
pub fn encode_reference(update: &ReferenceUpdate) -> Vec<u8> {
    let json = serde_json::to_vec(update).unwrap_or_default();
    zstd::encode_all(json.as_slice(), 3).unwrap_or_default()
}

/// Reads a reference update.
pub fn decode_reference(bytes: &[u8]) -> Result<ReferenceUpdate, FieldError> {
    let json = zstd::decode_all(bytes)
        .map_err(|e| FieldError::new("reference", format!("not zstd: {e}")))?;
    let update: ReferenceUpdate = serde_json::from_slice(&json)
        .map_err(|e| FieldError::new("reference", format!("not a reference update: {e}")))?;
    if update.format != REFERENCE_FORMAT {
        return Err(FieldError::new(
            "reference.format",
            format!("`{}` is not {REFERENCE_FORMAT}", update.format),
        ));
    }
    Ok(update)
}

/// Stock at a location as HQ knows it, with, per terminal, the sequence up to which the figures
/// include that terminal's events: a store adds only its own events after those sequences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockSnapshot {
    /// The location.
    pub location: String,
    /// Terminal id → sequence included.
    pub watermarks: std::collections::BTreeMap<String, u64>,
    /// SKU → on hand in thousandths.
    pub levels: std::collections::BTreeMap<String, i64>,
    /// SKU → what the web shop's carts, orders and the store's holds for customers reserve at
    /// the location now, in thousandths (HQ's promise, not a lock on the shelf); absent from an
    /// older HQ.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub reserved: std::collections::BTreeMap<String, i64>,
}
