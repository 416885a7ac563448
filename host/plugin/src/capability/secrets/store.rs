//! The secret values of one plugin scope, by name, and the hosts each may
//! be sent to. Values never leave the host: they are compared in constant
//! time and substituted into outbound requests by `egress.rs`.
//!
//! Must not: know the WIT bindings or print a value (its `Debug` shows names only).

use std::collections::HashMap;
use std::sync::Arc;

use subtle::ConstantTimeEq;

/// The secrets one plugin scope may use, by name.
#[derive(Default, Clone)]
pub struct SecretStore {
    values: HashMap<String, String>,
    /// Hosts a secret may be sent to, when narrower than the plugin's grant
    /// (`plugins.entries.<id>.secrets.<NAME>.hosts`).
    bound: HashMap<String, Vec<String>>,
}

impl std::fmt::Debug for SecretStore {
    // Never print values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretStore").field("names", &self.values.keys().collect::<Vec<_>>()).finish()
    }
}

impl SecretStore {
    pub fn from_pairs<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Arc<SecretStore> {
        Arc::new(SecretStore { values: pairs.into_iter().collect(), bound: HashMap::new() })
    }

    /// Secrets each optionally bound to the hosts it may go to.
    pub fn from_bound<I: IntoIterator<Item = (String, String, Option<Vec<String>>)>>(entries: I) -> Arc<SecretStore> {
        let mut store = SecretStore::default();
        for (name, value, hosts) in entries {
            if let Some(h) = hosts {
                store.bound.insert(name.clone(), h);
            }
            store.values.insert(name, value);
        }
        Arc::new(store)
    }

    /// The hosts `name` is bound to, if it is bound more narrowly than the grant.
    pub(crate) fn bound_hosts(&self, name: &str) -> Option<&[String]> {
        self.bound.get(name).map(Vec::as_slice)
    }

    /// Whether both stores hold `name` with the same value (constant time).
    pub fn same_value(&self, other: &SecretStore, name: &str) -> bool {
        match (self.value(name), other.value(name)) {
            (Some(a), Some(b)) => bool::from(a.as_bytes().ct_eq(b.as_bytes())),
            _ => false,
        }
    }

    pub(crate) fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }
}
