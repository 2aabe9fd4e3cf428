//! What the proxy's tests share: an in-memory secret store.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use latch_core::ports::{SecretKey, SecretStore, SecretStoreError};
use latch_core::secret::Secret;

/// Secrets kept in memory (unit tests only: the real keychain serves every black-box test).
#[derive(Default)]
pub(crate) struct Memory(Mutex<HashMap<String, String>>);

impl SecretStore for Memory {
    fn put(&self, key: &SecretKey, value: &Secret) -> Result<(), SecretStoreError> {
        let mut items = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        items.insert(key.as_str().to_owned(), value.expose().to_owned());
        Ok(())
    }

    fn get(&self, key: &SecretKey) -> Result<Option<Secret>, SecretStoreError> {
        let items = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(items.get(key.as_str()).map(|v| Secret::new(v.clone())))
    }

    fn delete(&self, key: &SecretKey) -> Result<bool, SecretStoreError> {
        let mut items = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(items.remove(key.as_str()).is_some())
    }
}
