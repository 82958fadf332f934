//! Shared set-up for the payments tests: a simulator on 127.0.0.1 and card payments against it.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use payments::crypto::SecurityKey;
use payments::link::{LinkConfig, TerminalLink};
use payments::service::{CardPayments, FileJournal, OfflineLimits};
use payments::sim::{SimConfig, Simulator};

pub const POI: &str = "V400m-324688179";

pub fn key() -> SecurityKey {
    SecurityKey::new("KassaTestKey", 1, "kassa test passphrase")
}

pub async fn sim(state_dir: &Path) -> Simulator {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    Simulator::start(
        SimConfig {
            poi_id: POI.into(),
            key: key(),
            state_dir: state_dir.to_owned(),
            offline_floor_limit_minor: 5_000,
        },
        listener,
    )
    .await
    .unwrap()
}

pub fn link(sim: &Simulator, sale_id: &str, timeout: Duration) -> TerminalLink {
    TerminalLink::new(LinkConfig {
        addr: sim.addr(),
        poi_id: POI.into(),
        sale_id: sale_id.into(),
        key: key(),
        ca_pem: sim.ca_pem().as_bytes().to_vec(),
        timeout,
    })
    .unwrap()
}

pub const LIMITS: OfflineLimits = OfflineLimits {
    per_transaction_minor: 4_000,
    per_shift_minor: 10_000,
    outstanding_minor: 3_500,
};

pub fn payments(sim: &Simulator, journal: &Path, timeout: Duration) -> CardPayments<FileJournal> {
    CardPayments::new(
        link(sim, "till-1", timeout),
        FileJournal::open(journal).unwrap(),
        LIMITS,
    )
    .with_recovery(40, Duration::from_millis(100))
}
