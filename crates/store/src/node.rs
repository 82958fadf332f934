//! The running node's shared state: database pools, the ledger writer, the store context and
//! the clock, handed to every request.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, RwLock};

use domain::{StoreId, TerminalId};

use crate::clock::Clock;
use crate::db::Pools;
use crate::ledger::Ledger;
use crate::refdata::StoreContext;
use crate::sync::SyncStatus;

/// Everything a request handler needs.
#[derive(Debug)]
pub struct Node {
    /// The store this node serves.
    pub store: StoreId,
    /// Database pools.
    pub pools: Pools,
    /// The ledger writer.
    pub ledger: Ledger,
    /// The wall clock.
    pub clock: Arc<dyn Clock>,
    terminals: BTreeSet<TerminalId>,
    context: RwLock<Option<Arc<StoreContext>>>,
    appended: Arc<tokio::sync::Notify>,
    sync: Mutex<SyncStatus>,
    /// The chain's PIN pepper.
    pub pepper: crate::staff::Pepper,
    /// Signed-in staff, by session token.
    pub sessions: crate::staff::Sessions,
    /// Gift cards and store credit: one check and its write at a time.
    pub stored_value: crate::stored_value::Service,
    /// How to ask HQ while a customer waits.
    pub online: crate::online::Online,
    /// Each till's payment terminal.
    pub cards: crate::cards::Cards,
    /// Why PINs published by HQ cannot be checked here (HQ's pepper is not this node's), if so.
    pin_pepper_problem: RwLock<Option<String>>,
    /// The scheduled backups, when the node takes them.
    backups: Mutex<Option<crate::backup::ScheduleState>>,
}

impl Node {
    /// A node over opened pools and a started writer.
    #[allow(clippy::too_many_arguments)] // Called once, by `App::build`, with every part.
    pub fn new(
        store: StoreId,
        pools: Pools,
        ledger: Ledger,
        clock: Arc<dyn Clock>,
        terminals: BTreeSet<TerminalId>,
        context: Option<StoreContext>,
        appended: Arc<tokio::sync::Notify>,
        pepper: crate::staff::Pepper,
    ) -> Self {
        Node {
            store,
            pools,
            ledger,
            clock,
            terminals,
            context: RwLock::new(context.map(Arc::new)),
            appended,
            sync: Mutex::new(SyncStatus::default()),
            pepper,
            sessions: crate::staff::Sessions::default(),
            stored_value: crate::stored_value::Service::default(),
            online: crate::online::Online::default(),
            cards: crate::cards::Cards::default(),
            pin_pepper_problem: RwLock::new(None),
            backups: Mutex::new(None),
        }
    }

    /// What the scheduled backups did; `None` when the node takes none.
    pub fn backups(&self) -> Option<crate::backup::ScheduleState> {
        self.backups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Starts recording scheduled backups.
    pub fn set_backups(&self, state: crate::backup::ScheduleState) {
        *self.backups.lock().unwrap_or_else(|p| p.into_inner()) = Some(state);
    }

    /// Records what a scheduled backup did.
    pub fn update_backups(&self, change: impl FnOnce(&mut crate::backup::ScheduleState)) {
        if let Some(state) = self
            .backups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            change(state);
        }
    }

    /// Why PINs published by HQ cannot be checked here, if they cannot.
    pub fn pin_pepper_problem(&self) -> Option<String> {
        self.pin_pepper_problem
            .read()
            .map(|p| p.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Records whether PINs published by HQ can be checked here.
    pub fn set_pin_pepper_problem(&self, problem: Option<String>) {
        let mut guard = self
            .pin_pepper_problem
            .write()
            .unwrap_or_else(|p| p.into_inner());
        *guard = problem;
    }

    /// Notified after every ledger commit.
    pub fn appended(&self) -> Arc<tokio::sync::Notify> {
        self.appended.clone()
    }

    /// A copy of the sync status.
    pub fn sync_status(&self) -> SyncStatus {
        self.sync
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// What HQ reserves of `sku` at this store as of the last stock pull (`None` before the
    /// first): read under the lock, without copying the snapshot.
    pub fn hq_reserved(&self, sku: &str) -> Option<i64> {
        let guard = self.sync.lock().unwrap_or_else(|p| p.into_inner());
        let snapshot = guard.hq_stock.as_ref()?;
        Some(snapshot.reserved.get(sku).copied().unwrap_or(0))
    }

    /// Changes the sync status.
    pub fn update_sync(&self, change: impl FnOnce(&mut SyncStatus)) {
        let mut guard = self.sync.lock().unwrap_or_else(|p| p.into_inner());
        change(&mut guard);
    }

    /// The current store context, if reference data has been loaded.
    pub fn context(&self) -> Option<Arc<StoreContext>> {
        self.context
            .read()
            .map(|c| c.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Switches to a new store context (after reference data changed), whole.
    pub fn set_context(&self, context: StoreContext) {
        let mut guard = self.context.write().unwrap_or_else(|p| p.into_inner());
        *guard = Some(Arc::new(context));
    }

    /// Whether this node hosts `terminal`.
    pub fn hosts(&self, terminal: &TerminalId) -> bool {
        self.terminals.contains(terminal)
    }

    /// The terminals this node hosts.
    pub fn terminals(&self) -> &BTreeSet<TerminalId> {
        &self.terminals
    }
}
