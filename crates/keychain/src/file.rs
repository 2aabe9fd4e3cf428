//! An encrypted file, for machines without a keychain (a box reached over SSH, a container).
//! Chosen by the person (`[keychain] store = "file"`), never as a silent fallback.
//!
//! The key is derived from a passphrase with Argon2id (its salt and costs in the file); every
//! item is sealed on its own with XChaCha20-Poly1305, its name as associated data, so a
//! ciphertext moved to another name does not open. A check value tells a wrong passphrase from
//! a damaged file. The file is written whole to a 0600 temporary file and renamed over the old
//! one; readers and writers take a lock file (shared / exclusive), the same single-writer rule
//! the keychain's own locking gives.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use latch_core::ports::{SecretKey, SecretStore, SecretStoreError};
use latch_core::secret::Secret;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

const FORMAT: &str = "latch-secrets/v1";
/// Argon2id costs: 19 MiB, 2 passes (OWASP's minimum), about 50 ms here, paid once per process.
const MEMORY_KIB: u32 = 19 * 1024;
const PASSES: u32 = 2;
/// What the check value seals.
const CHECK: &[u8] = b"latch";

#[derive(Serialize, Deserialize)]
struct Document {
    format: String,
    kdf: Kdf,
    /// `CHECK` sealed under the key, with associated data `"check"`.
    check: String,
    /// Item name → base64(nonce ‖ ciphertext).
    items: BTreeMap<String, String>,
}

#[derive(Clone, Serialize, Deserialize)]
struct Kdf {
    alg: String,
    m_kib: u32,
    t: u32,
    p: u32,
    salt: String,
}

/// Secrets in an encrypted file.
pub struct FileStore {
    path: PathBuf,
    kdf: Kdf,
    key: Zeroizing<[u8; 32]>,
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn unavailable(path: &Path, what: &str, err: impl std::fmt::Display) -> SecretStoreError {
    SecretStoreError::Unavailable {
        reason: format!("{what} {}: {err}", path.display()),
        fix: "check the file's folder exists and is yours; it is set by `[keychain] file` in \
              latch.toml"
            .to_owned(),
    }
}

fn derive(passphrase: &Secret, kdf: &Kdf) -> Result<Zeroizing<[u8; 32]>, SecretStoreError> {
    let salt = b64()
        .decode(&kdf.salt)
        .map_err(|_| damaged("its key-derivation salt is not base64"))?;
    let params = argon2::Params::new(kdf.m_kib, kdf.t, kdf.p, Some(32))
        .map_err(|e| damaged(&format!("its key-derivation costs are invalid ({e})")))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase.expose().as_bytes(), &salt, key.as_mut())
        .map_err(|e| damaged(&format!("the key could not be derived ({e})")))?;
    Ok(key)
}

fn damaged(why: &str) -> SecretStoreError {
    SecretStoreError::Refused {
        key: "(the secrets file)".to_owned(),
        reason: format!("the secrets file is damaged: {why}"),
    }
}

fn seal(key: &[u8; 32], aad: &[u8], plain: &[u8]) -> Result<String, SecretStoreError> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let mut nonce = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let sealed = cipher
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: plain, aad })
        .map_err(|_| damaged("an item could not be sealed"))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(b64().encode(out))
}

/// Opens a sealed value; `None` when the key or the name does not fit.
fn open(key: &[u8; 32], aad: &[u8], text: &str) -> Option<Zeroizing<Vec<u8>>> {
    let raw = b64().decode(text).ok()?;
    if raw.len() < 24 {
        return None;
    }
    let (nonce, sealed) = raw.split_at(24);
    let cipher = XChaCha20Poly1305::new(key.into());
    cipher
        .decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad })
        .ok()
        .map(Zeroizing::new)
}

impl FileStore {
    /// Opens (or creates) the file with a passphrase. A passphrase that does not open an
    /// existing file is an error that says so; nothing is overwritten.
    pub fn open(path: &Path, passphrase: &Secret) -> Result<Self, SecretStoreError> {
        if passphrase.is_empty() {
            return Err(SecretStoreError::Locked {
                reason: "the secrets file's passphrase is empty".to_owned(),
                fix: PASSPHRASE_FIX.to_owned(),
            });
        }
        let lock = lock_file(path, true)?;
        let store = match read(path)? {
            Some(doc) => {
                if doc.format != FORMAT || doc.kdf.alg != "argon2id" {
                    return Err(damaged(&format!(
                        "it is `{}` with `{}`, which this Latch does not read",
                        doc.format, doc.kdf.alg
                    )));
                }
                let key = derive(passphrase, &doc.kdf)?;
                if open(&key, b"check", &doc.check)
                    .as_deref()
                    .map(Vec::as_slice)
                    != Some(CHECK)
                {
                    return Err(SecretStoreError::Locked {
                        reason: format!("the passphrase does not open {}", path.display()),
                        fix: PASSPHRASE_FIX.to_owned(),
                    });
                }
                Self {
                    path: path.to_owned(),
                    kdf: doc.kdf,
                    key,
                }
            }
            None => {
                let mut salt = [0u8; 16];
                rand::rngs::OsRng.fill_bytes(&mut salt);
                let kdf = Kdf {
                    alg: "argon2id".to_owned(),
                    m_kib: MEMORY_KIB,
                    t: PASSES,
                    p: 1,
                    salt: b64().encode(salt),
                };
                let key = derive(passphrase, &kdf)?;
                let store = Self {
                    path: path.to_owned(),
                    kdf,
                    key,
                };
                store.write(&BTreeMap::new())?;
                store
            }
        };
        drop(lock);
        Ok(store)
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn items(&self) -> Result<BTreeMap<String, String>, SecretStoreError> {
        Ok(read(&self.path)?.map(|d| d.items).unwrap_or_default())
    }

    fn write(&self, items: &BTreeMap<String, String>) -> Result<(), SecretStoreError> {
        let doc = Document {
            format: FORMAT.to_owned(),
            kdf: self.kdf.clone(),
            check: seal(&self.key, b"check", CHECK)?,
            items: items.clone(),
        };
        let text = serde_json::to_vec_pretty(&doc).map_err(|e| damaged(&e.to_string()))?;
        let tmp = self.path.with_extension("tmp");
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&tmp)
            .map_err(|e| unavailable(&tmp, "cannot write", e))?;
        file.write_all(&text)
            .and_then(|()| file.sync_all())
            .map_err(|e| unavailable(&tmp, "cannot write", e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| unavailable(&self.path, "cannot replace", e))
    }
}

const PASSPHRASE_FIX: &str = "give the passphrase that created the file: LATCH_FILE_KEY, a \
    systemd credential named latch-file-key, or the prompt; a lost passphrase cannot be \
    recovered — move the file away and store the credentials again";

/// The lock next to the file: exclusive for writers, shared for readers.
fn lock_file(path: &Path, exclusive: bool) -> Result<File, SecretStoreError> {
    let lock_path = path.with_extension("lock");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| unavailable(dir, "cannot create", e))?;
    }
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options
        .open(&lock_path)
        .map_err(|e| unavailable(&lock_path, "cannot open", e))?;
    let locked = if exclusive {
        file.lock()
    } else {
        file.lock_shared()
    };
    locked.map_err(|e| unavailable(&lock_path, "cannot lock", e))?;
    Ok(file)
}

fn read(path: &Path) -> Result<Option<Document>, SecretStoreError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(unavailable(path, "cannot read", err)),
    };
    // Someone widened it: the content is sealed, but the file goes back to its owner only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
            }
        }
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|_| damaged("it is not a Latch secrets file"))
}

impl SecretStore for FileStore {
    fn put(&self, key: &SecretKey, value: &Secret) -> Result<(), SecretStoreError> {
        let _lock = lock_file(&self.path, true)?;
        let mut items = self.items()?;
        items.insert(
            key.as_str().to_owned(),
            seal(
                &self.key,
                key.as_str().as_bytes(),
                value.expose().as_bytes(),
            )?,
        );
        self.write(&items)
    }

    fn get(&self, key: &SecretKey) -> Result<Option<Secret>, SecretStoreError> {
        let _lock = lock_file(&self.path, false)?;
        let Some(sealed) = self.items()?.remove(key.as_str()) else {
            return Ok(None);
        };
        let plain = open(&self.key, key.as_str().as_bytes(), &sealed).ok_or_else(|| {
            SecretStoreError::Refused {
                key: key.to_string(),
                reason: "the item does not open with this file's key (moved or damaged); store \
                         it again"
                    .to_owned(),
            }
        })?;
        let text = String::from_utf8(plain.to_vec()).map_err(|_| SecretStoreError::Refused {
            key: key.to_string(),
            reason: "the item is not text; store it again".to_owned(),
        })?;
        Ok(Some(Secret::new(text)))
    }

    fn delete(&self, key: &SecretKey) -> Result<bool, SecretStoreError> {
        let _lock = lock_file(&self.path, true)?;
        let mut items = self.items()?;
        let existed = items.remove(key.as_str()).is_some();
        if existed {
            self.write(&items)?;
        }
        Ok(existed)
    }

    fn describe(&self) -> String {
        format!("an encrypted file ({})", self.path.display())
    }

    /// Opened with its passphrase already (a wrong one fails when the store is opened).
    fn state(&self) -> latch_core::ports::KeychainState {
        latch_core::ports::KeychainState::Open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(text: &str) -> Secret {
        Secret::new(text.to_owned())
    }

    #[test]
    fn items_round_trip_sealed_and_a_wrong_passphrase_is_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.latch");
        let store = FileStore::open(&path, &pass("correct horse")).unwrap();
        let key = SecretKey::named("home/grant/atlassian/refresh-token");
        store
            .put(&key, &Secret::new("rt-plaintext-0101".into()))
            .unwrap();
        assert_eq!(
            store.get(&key).unwrap().unwrap().expose(),
            "rt-plaintext-0101"
        );
        let on_disk = std::fs::read_to_string(&path).unwrap();
        assert!(!on_disk.contains("rt-plaintext-0101"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Another process with the same passphrase reads it.
        let again = FileStore::open(&path, &pass("correct horse")).unwrap();
        assert!(again.get(&key).unwrap().is_some());
        // A wrong passphrase is refused, and nothing is overwritten.
        let err = FileStore::open(&path, &pass("wrong")).err().unwrap();
        assert!(err.to_string().contains("does not open"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), on_disk);
        // A ciphertext moved to another name does not open.
        let mut doc: serde_json::Value = serde_json::from_str(&on_disk).unwrap();
        let sealed = doc["items"][key.as_str()].clone();
        doc["items"]["home/grant/other/refresh-token"] = sealed;
        std::fs::write(&path, doc.to_string()).unwrap();
        let other = SecretKey::named("home/grant/other/refresh-token");
        assert!(again.get(&other).is_err());
        assert!(again.delete(&key).unwrap());
        assert!(again.get(&key).unwrap().is_none());
    }
}
