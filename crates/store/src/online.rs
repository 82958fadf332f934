//! The calls a node makes to HQ while a customer waits — a gift card's balance, a hold for a
//! customer — each answered within a few seconds or refused as out of reach. None is needed to
//! sell.

use std::sync::OnceLock;
use std::time::Duration;

use crate::sync::SyncSettings;

/// How long a customer-facing call to HQ may take before it counts as out of reach.
pub const HQ_TIMEOUT: Duration = Duration::from_secs(3);

/// How to reach HQ, once the node syncs with one.
#[derive(Debug, Default)]
pub struct Online {
    link: OnceLock<(SyncSettings, reqwest::Client)>,
}

impl Online {
    /// Lets the node ask HQ (called when the node starts syncing), with `http` from
    /// [`SyncSettings::client`] with [`HQ_TIMEOUT`].
    pub fn connect(&self, settings: &SyncSettings, http: reqwest::Client) {
        let _ = self.link.set((settings.clone(), http));
    }

    /// HQ's settings and a client with the short timeout; `None` for a node that does not sync
    /// (it is the whole chain).
    pub fn link(&self) -> Option<&(SyncSettings, reqwest::Client)> {
        self.link.get()
    }
}
