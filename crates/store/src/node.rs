//! The running node's shared state: database pools, the ledger writer, the store context and
//! the clock, handed to every request.

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

use domain::{StoreId, TerminalId};

use crate::clock::Clock;
use crate::db::Pools;
use crate::ledger::Ledger;
use crate::refdata::StoreContext;

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
}

impl Node {
    /// A node over opened pools and a started writer.
    pub fn new(
        store: StoreId,
        pools: Pools,
        ledger: Ledger,
        clock: Arc<dyn Clock>,
        terminals: BTreeSet<TerminalId>,
        context: Option<StoreContext>,
    ) -> Self {
        Node {
            store,
            pools,
            ledger,
            clock,
            terminals,
            context: RwLock::new(context.map(Arc::new)),
        }
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
