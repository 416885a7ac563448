//! `chela:plugin/secrets`: credentials by name. Values stay in the host; a
//! plugin can only ask whether one exists, check an HMAC, or compare a token
//! — all in constant time. Substitution into requests is in [`super::http`].
//!
//! Must not: hand a secret's value to a guest or compare in variable time.

use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use wasmtime::component::{HasSelf, Linker};

use crate::bindings::plugin::secrets;

pub mod store;
pub use store::SecretStore;

/// An instance's secrets (a channel instance switches them per account),
/// and the names a check in the current call succeeded for.
#[derive(Default)]
pub struct SecretsState {
    pub(crate) store: Arc<SecretStore>,
    /// What a webhook delivery proved it knows (`verify-hmac-sha256`, `matches`).
    pub(crate) proved: Vec<String>,
}

fn secret<'a>(s: &'a SecretsState, name: &str) -> Result<&'a str, String> {
    s.store.value(name).ok_or_else(|| format!("no secret named `{name}` for this plugin"))
}

impl secrets::Host for SecretsState {
    async fn exists(&mut self, name: String) -> bool {
        self.store.contains(&name)
    }

    async fn verify_hmac_sha256(&mut self, name: String, message: Vec<u8>, signature: Vec<u8>) -> Result<bool, String> {
        let key = secret(self, &name)?;
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).map_err(|e| e.to_string())?;
        mac.update(&message);
        let ok = mac.verify_slice(&signature).is_ok();
        if ok {
            self.proved.push(name);
        }
        Ok(ok)
    }

    async fn matches(&mut self, name: String, candidate: String) -> Result<bool, String> {
        let key = secret(self, &name)?;
        let ok = bool::from(key.as_bytes().ct_eq(candidate.as_bytes()));
        if ok {
            self.proved.push(name);
        }
        Ok(ok)
    }
}

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut SecretsState,
) -> wasmtime::Result<()> {
    secrets::add_to_linker::<T, HasSelf<SecretsState>>(linker, get)
}
