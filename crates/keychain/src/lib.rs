//! The OS keychain behind the core's `SecretStore` port: Secret Service on Linux, Keychain on
//! macOS, Credential Manager on Windows. This is the only crate that uses `keyring`.
//!
//! Every item lives under service `latch`, one item per secret, named by the core's
//! `SecretKey`. When no keychain is reachable, every call fails with an error that says what to
//! start or install. There is no plaintext fallback, and the platform store is chosen
//! explicitly (never keyring's in-memory mock, which it silently picks when no platform
//! feature is enabled). On Windows, whose Credential Manager holds about 1,280 characters per
//! item, large secrets (Bitbucket's tokens) are split by the core's `secret_chunks`.

use latch_core::ports::{SecretKey, SecretStore, SecretStoreError};
use latch_core::secret::Secret;

mod file;
#[cfg(target_os = "linux")]
mod secret_service;
pub use file::FileStore;

/// The store latch.toml chose (`[keychain] store`), for a home. The file's passphrase comes
/// from `LATCH_FILE_KEY`, else a systemd credential named `latch-file-key`, else `ask` (a face's
/// no-echo prompt, or nothing).
pub fn for_home(
    home: &latch_core::config::home::Home,
    choice: &latch_core::config::SecretStoreChoice,
    ask: &dyn Fn() -> Option<Secret>,
) -> Result<std::sync::Arc<dyn SecretStore>, SecretStoreError> {
    match choice {
        latch_core::config::SecretStoreChoice::Os => Ok(std::sync::Arc::new(Keychain::new())),
        latch_core::config::SecretStoreChoice::File(path) => {
            let path = path.clone().unwrap_or_else(|| home.secrets_file());
            let passphrase = file_passphrase(ask).ok_or_else(|| SecretStoreError::Locked {
                reason: format!("no passphrase for the secrets file {}", path.display()),
                fix: "set LATCH_FILE_KEY, give a systemd credential named latch-file-key \
                      (LoadCredential=), or run in a terminal to be asked"
                    .to_owned(),
            })?;
            Ok(std::sync::Arc::new(FileStore::open(&path, &passphrase)?))
        }
    }
}

fn file_passphrase(ask: &dyn Fn() -> Option<Secret>) -> Option<Secret> {
    if let Some(value) = std::env::var_os("LATCH_FILE_KEY").filter(|v| !v.is_empty()) {
        return Some(Secret::new(value.to_string_lossy().into_owned()));
    }
    if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
        let path = std::path::Path::new(&dir).join("latch-file-key");
        if let Ok(text) = std::fs::read_to_string(path) {
            let text = Secret::new(text.trim_end_matches(['\n', '\r']).to_owned());
            if !text.is_empty() {
                return Some(text);
            }
        }
    }
    ask()
}

/// The keychain service every Latch item is stored under.
pub const SERVICE: &str = "latch";

/// The OS keychain.
#[derive(Debug, Default, Clone, Copy)]
pub struct Keychain;

/// Windows Credential Manager: 2,560 bytes of UTF-16 per item.
#[cfg(target_os = "windows")]
const MAX_UNITS: Option<usize> = Some(1280);
/// Secret Service and the macOS Keychain take secrets far larger than any token.
#[cfg(not(target_os = "windows"))]
const MAX_UNITS: Option<usize> = None;

/// The platform's items, one keyring entry each.
#[derive(Debug, Default, Clone, Copy)]
struct Items;

impl Keychain {
    /// The platform keychain. Nothing is contacted until the first call.
    pub fn new() -> Self {
        Self
    }
}

impl Items {
    #[cfg(target_os = "linux")]
    fn entry(&self, key: &SecretKey) -> Result<keyring::Entry, SecretStoreError> {
        // The label is what keychain tools show: say whose item it is, not keyring's version.
        let mut credential =
            keyring::secret_service::SsCredential::new_with_target(None, SERVICE, key.as_str())
                .map_err(|err| map_error(key, err))?;
        credential.label = format!("Latch: {}", key.as_str());
        Ok(keyring::Entry::new_with_credential(Box::new(credential)))
    }

    #[cfg(not(target_os = "linux"))]
    fn entry(&self, key: &SecretKey) -> Result<keyring::Entry, SecretStoreError> {
        let credential = platform_builder()
            .build(None, SERVICE, key.as_str())
            .map_err(|err| map_error(key, err))?;
        Ok(keyring::Entry::new_with_credential(credential))
    }
}

#[cfg(any(target_os = "freebsd", target_os = "openbsd"))]
fn platform_builder() -> Box<keyring::credential::CredentialBuilder> {
    keyring::secret_service::default_credential_builder()
}

#[cfg(target_os = "macos")]
fn platform_builder() -> Box<keyring::credential::CredentialBuilder> {
    keyring::macos::default_credential_builder()
}

#[cfg(target_os = "windows")]
fn platform_builder() -> Box<keyring::credential::CredentialBuilder> {
    keyring::windows::default_credential_builder()
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "freebsd",
    target_os = "openbsd",
    target_os = "macos",
    target_os = "windows"
)))]
compile_error!(
    "latch-keychain has no OS keychain for this platform; refusing to build without one"
);

impl SecretStore for Keychain {
    fn put(&self, key: &SecretKey, value: &Secret) -> Result<(), SecretStoreError> {
        match MAX_UNITS {
            Some(max) => latch_core::secret_chunks::Chunked::new(Items, max).put(key, value),
            None => Items.put(key, value),
        }
    }

    fn get(&self, key: &SecretKey) -> Result<Option<Secret>, SecretStoreError> {
        match MAX_UNITS {
            Some(max) => latch_core::secret_chunks::Chunked::new(Items, max).get(key),
            None => Items.get(key),
        }
    }

    fn delete(&self, key: &SecretKey) -> Result<bool, SecretStoreError> {
        match MAX_UNITS {
            Some(max) => latch_core::secret_chunks::Chunked::new(Items, max).delete(key),
            None => Items.delete(key),
        }
    }

    #[cfg(target_os = "linux")]
    fn state(&self) -> latch_core::ports::KeychainState {
        secret_service::state()
    }

    #[cfg(target_os = "linux")]
    fn unlock(&self, password: &Secret) -> Result<(), SecretStoreError> {
        secret_service::unlock(password)
    }
}

impl SecretStore for Items {
    fn put(&self, key: &SecretKey, value: &Secret) -> Result<(), SecretStoreError> {
        self.entry(key)?
            .set_password(value.expose())
            .map_err(|err| map_error(key, err))
    }

    fn get(&self, key: &SecretKey) -> Result<Option<Secret>, SecretStoreError> {
        match self.entry(key)?.get_password() {
            Ok(value) => Ok(Some(Secret::new(value))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(err) => Err(map_error(key, err)),
        }
    }

    fn delete(&self, key: &SecretKey) -> Result<bool, SecretStoreError> {
        match self.entry(key)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring::Error::NoEntry) => Ok(false),
            Err(err) => Err(map_error(key, err)),
        }
    }
}

/// Turns keyring's errors into the core's, with the fix spelled out. `BadEncoding` carries the
/// stored bytes and `Ambiguous` carries credentials: neither is ever formatted.
fn map_error(key: &SecretKey, err: keyring::Error) -> SecretStoreError {
    match err {
        keyring::Error::PlatformFailure(inner) => unavailable(&inner.to_string()),
        keyring::Error::NoStorageAccess(inner) => SecretStoreError::Locked {
            reason: inner.to_string(),
            fix: LOCKED_FIX.to_owned(),
        },
        keyring::Error::NoEntry => SecretStoreError::Refused {
            key: key.to_string(),
            reason: "no such item".to_owned(),
        },
        keyring::Error::BadEncoding(_) => SecretStoreError::Refused {
            key: key.to_string(),
            reason: "the stored item is not UTF-8 text; delete it and store the secret again"
                .to_owned(),
        },
        keyring::Error::TooLong(attribute, limit) => SecretStoreError::Refused {
            key: key.to_string(),
            reason: format!("`{attribute}` is longer than the platform limit of {limit}"),
        },
        keyring::Error::Invalid(attribute, reason) => SecretStoreError::Refused {
            key: key.to_string(),
            reason: format!("`{attribute}` is invalid: {reason}"),
        },
        keyring::Error::Ambiguous(items) => SecretStoreError::Refused {
            key: key.to_string(),
            reason: format!(
                "{} keychain items match; remove the duplicates with your keychain tool",
                items.len()
            ),
        },
        _ => unavailable("unrecognised keychain error"),
    }
}

#[cfg(target_os = "linux")]
const LOCKED_FIX: &str = "unlock the login keyring: `latch keychain unlock` (it asks for the \
    keyring's password), or unlock it in \"Passwords and Keys\"";
#[cfg(not(target_os = "linux"))]
const LOCKED_FIX: &str = "unlock your keychain and try again";

fn unavailable(reason: &str) -> SecretStoreError {
    let fix = if cfg!(target_os = "linux") {
        if reason.contains("autolaunch")
            || reason.contains("DBUS_SESSION_BUS_ADDRESS")
            || reason.contains("Failed to connect to socket")
        {
            "there is no D-Bus session: run Latch inside a desktop session, or on a headless \
             machine start one with `dbus-run-session -- sh` and run \
             `echo -n PASSWORD | gnome-keyring-daemon --unlock --components=secrets` in it; \
             or keep secrets in an encrypted file instead: `[keychain] store = \"file\"` in \
             latch.toml, with the passphrase in LATCH_FILE_KEY"
        } else if reason.contains("org.freedesktop.secrets") || reason.contains("ServiceUnknown") {
            "no Secret Service is running on the session bus: install one \
             (`sudo apt install gnome-keyring`, or enable KeePassXC's Secret Service \
             integration) and start it"
        } else {
            "make sure a Secret Service provider (gnome-keyring, KeePassXC) is running and \
             unlocked in this session"
        }
    } else {
        "make sure the OS keychain is available to this user session"
    };
    SecretStoreError::Unavailable {
        reason: reason.trim().to_owned(),
        fix: fix.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_what_to_do() {
        let err = unavailable("Unable to autolaunch a dbus-daemon without a $DISPLAY for X11");
        assert!(err.to_string().contains("dbus-run-session"), "{err}");
        let err =
            unavailable("The name org.freedesktop.secrets was not provided by any .service files");
        assert!(err.to_string().contains("gnome-keyring"), "{err}");
    }

    #[test]
    fn bad_encoding_never_shows_the_bytes() {
        let key = SecretKey::named("unit/test/key");
        let err = map_error(&key, keyring::Error::BadEncoding(b"s3cr3t-bytes".to_vec()));
        assert!(!format!("{err} {err:?}").contains("s3cr3t"));
    }
}
