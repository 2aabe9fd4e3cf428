//! Ports: what the core needs from the outside world, implemented by other crates.
//! `SecretStore` is implemented by `latch-keychain` (the OS keychain) and, in unit tests only,
//! by an in-memory map.

use std::fmt;

use crate::secret::Secret;

/// Names one secret in the keychain. Built only by the core, from non-secret parts, so that
/// every item Latch writes follows one scheme: `<home id>/<kind>/<owner>/<what>`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SecretKey(String);

impl SecretKey {
    pub(crate) fn new(home_id: &str, kind: &str, owner: &str, what: &str) -> Self {
        Self(format!("{home_id}/{kind}/{owner}/{what}"))
    }

    /// A key with a name chosen by the caller: for keychain tests and maintenance tools only.
    /// Latch's own items are always named by the core.
    pub fn named(name: &str) -> Self {
        Self(name.to_owned())
    }

    /// The account name the keychain item is stored under.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key is a name, not a secret: printing it helps people find the item.
        write!(f, "SecretKey({})", self.0)
    }
}

impl fmt::Display for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why the keychain could not be used. Never carries a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretStoreError {
    /// No keychain service is reachable (no session bus, no Secret Service provider, …).
    #[error("no OS keychain is reachable: {reason}\n  fix: {fix}")]
    Unavailable {
        /// What the platform said, secret-free.
        reason: String,
        /// What to start or install.
        fix: String,
    },
    /// The keychain exists but is locked and could not be unlocked without a prompt.
    #[error("the OS keychain is locked: {reason}\n  fix: {fix}")]
    Locked {
        /// What the platform said.
        reason: String,
        /// How to unlock it.
        fix: String,
    },
    /// The keychain refused this item (too large, bad attributes, …).
    #[error("the OS keychain refused item {key}: {reason}")]
    Refused {
        /// The item's name.
        key: String,
        /// What the platform said.
        reason: String,
    },
}

/// Whether the secret store can be read now, as far as asking costs no network (a Secret
/// Service's collection may be locked while every connector looks configured).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum KeychainState {
    /// Open: items can be read and written.
    Open,
    /// Reachable but locked: nothing can be read until it is unlocked.
    Locked,
    /// Not reachable (no session bus, no Secret Service).
    Unreachable,
    /// This store cannot tell without reading an item.
    Unknown,
}

/// The OS keychain, as the core sees it. Implementations block; call them off async threads.
pub trait SecretStore: Send + Sync {
    /// Creates or replaces an item.
    fn put(&self, key: &SecretKey, value: &Secret) -> Result<(), SecretStoreError>;
    /// Reads an item; `None` when there is none.
    fn get(&self, key: &SecretKey) -> Result<Option<Secret>, SecretStoreError>;
    /// Deletes an item; `false` when there was none.
    fn delete(&self, key: &SecretKey) -> Result<bool, SecretStoreError>;
    /// Where secrets live, for status and doctor ("the OS keychain", "an encrypted file …").
    fn describe(&self) -> String {
        "the OS keychain".to_owned()
    }
    /// Whether it is open, locked or unreachable, without reading an item.
    fn state(&self) -> KeychainState {
        KeychainState::Unknown
    }
    /// Unlocks it with its password, where the platform allows that without a prompt (the
    /// Secret Service of GNOME Keyring: the login keyring's password).
    fn unlock(&self, _password: &Secret) -> Result<(), SecretStoreError> {
        Err(SecretStoreError::Refused {
            key: "keychain".to_owned(),
            reason: "this keychain is unlocked by the system (log in, or its own tool)".to_owned(),
        })
    }
}

/// An in-memory stand-in for unit tests. Not compiled into any binary.
#[cfg(test)]
#[derive(Default)]
pub(crate) struct MemorySecretStore {
    items: std::sync::Mutex<std::collections::HashMap<String, Secret>>,
    unavailable: bool,
}

#[cfg(test)]
impl MemorySecretStore {
    pub(crate) fn unavailable() -> Self {
        Self {
            items: Default::default(),
            unavailable: true,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.items.lock().map(|m| m.len()).unwrap_or(0)
    }

    fn check(&self) -> Result<(), SecretStoreError> {
        if self.unavailable {
            return Err(SecretStoreError::Unavailable {
                reason: "test keychain is off".to_owned(),
                fix: "none".to_owned(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
impl SecretStore for MemorySecretStore {
    fn put(&self, key: &SecretKey, value: &Secret) -> Result<(), SecretStoreError> {
        self.check()?;
        self.items
            .lock()
            .unwrap()
            .insert(key.as_str().to_owned(), value.clone());
        Ok(())
    }

    fn get(&self, key: &SecretKey) -> Result<Option<Secret>, SecretStoreError> {
        self.check()?;
        Ok(self.items.lock().unwrap().get(key.as_str()).cloned())
    }

    fn delete(&self, key: &SecretKey) -> Result<bool, SecretStoreError> {
        self.check()?;
        Ok(self.items.lock().unwrap().remove(key.as_str()).is_some())
    }
}

/// Opens a URL in the person's browser (the system browser, or `$BROWSER`).
pub trait Browser: Send + Sync {
    /// Opens the URL; an error means the person must open it by hand.
    fn open(&self, url: &str) -> Result<(), String>;
}

/// The person's browser: `$BROWSER` when set (`:`-separated commands, `%s` for the URL), else
/// the platform opener. Returns once the browser is spawned, not when the page loads.
pub struct SystemBrowser;

impl Browser for SystemBrowser {
    fn open(&self, url: &str) -> Result<(), String> {
        webbrowser::open(url).map_err(|e| e.to_string())
    }
}
