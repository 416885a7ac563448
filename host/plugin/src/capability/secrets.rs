//! `chela:plugin/secrets`: credentials by name. Values stay in the host; a
//! plugin can only ask whether one exists, check an HMAC, or compare a token
//! — all in constant time. Substitution into requests is in [`super::http`].

use std::collections::HashMap;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use wasmtime::component::{HasSelf, Linker};

use crate::bindings::chela::plugin::secrets;
use crate::state::PluginState;

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

fn secret<'a>(s: &'a PluginState, name: &str) -> Result<&'a str, String> {
    s.secrets.value(name).ok_or_else(|| format!("no secret named `{name}` for this plugin"))
}

impl secrets::Host for PluginState {
    async fn exists(&mut self, name: String) -> bool {
        self.secrets.contains(&name)
    }

    async fn verify_hmac_sha256(&mut self, name: String, message: Vec<u8>, signature: Vec<u8>) -> Result<bool, String> {
        let key = secret(self, &name)?;
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).map_err(|e| e.to_string())?;
        mac.update(&message);
        let ok = mac.verify_slice(&signature).is_ok();
        if ok {
            self.proved_secrets.push(name);
        }
        Ok(ok)
    }

    async fn matches(&mut self, name: String, candidate: String) -> Result<bool, String> {
        let key = secret(self, &name)?;
        let ok = bool::from(key.as_bytes().ct_eq(candidate.as_bytes()));
        if ok {
            self.proved_secrets.push(name);
        }
        Ok(ok)
    }
}

pub fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    secrets::add_to_linker::<_, HasSelf<PluginState>>(linker, |s| s)
}
