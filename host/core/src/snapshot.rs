//! One config snapshot: the config and everything derived from it (the
//! compiled route table, with the roster), built together and swapped as
//! one value. A message takes the snapshot in force once and decides
//! everything — access, routing, its turn — on it, so a reload can never
//! hand one message two configs.
//!
//! Must not: be mutated after it is built (a reload builds a new one), or
//! be read piecemeal from two cells.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::schema::Config;
use crate::routing::RouteTable;

pub struct Snapshot {
    pub config: Arc<Config>,
    pub routes: RouteTable,
}

impl Snapshot {
    pub fn new(config: Arc<Config>) -> Arc<Snapshot> {
        let routes = RouteTable::build(&config);
        Arc::new(Snapshot { config, routes })
    }
}

/// The snapshot in force, shared by everything that reads config (gateway,
/// agent runtime, plugin secrets); a reload replaces it in one store.
pub struct SnapshotCell(ArcSwap<Snapshot>);

impl SnapshotCell {
    pub fn new(snapshot: Arc<Snapshot>) -> Arc<SnapshotCell> {
        Arc::new(SnapshotCell(ArcSwap::new(snapshot)))
    }

    /// A cell holding the snapshot of `config` (CLI commands, tests).
    pub fn of(config: Arc<Config>) -> Arc<SnapshotCell> {
        SnapshotCell::new(Snapshot::new(config))
    }

    pub fn load(&self) -> Arc<Snapshot> {
        self.0.load_full()
    }

    pub fn store(&self, snapshot: Arc<Snapshot>) {
        self.0.store(snapshot);
    }
}
