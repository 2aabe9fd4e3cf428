//! Secrets larger than a keychain item may hold, split across items. Windows Credential Manager
//! keeps at most 2,560 bytes per item and `keyring` counts the UTF-16 encoding, so about 1,280
//! characters; Bitbucket's rotating tokens regularly exceed 2,500 (atlassian-wire §3.1).
//!
//! A large secret is written as generation `N`: its parts first, at `<key>/g<N>/part-<K>`, then
//! the item at `<key>` itself — a small manifest naming the generation — last. A crash before
//! the manifest moves leaves the previous generation whole and readable; the previous
//! generation's parts are deleted only after it moved. Secrets that fit are stored as they are.

use crate::ports::{SecretKey, SecretStore, SecretStoreError};
use crate::secret::Secret;

/// What a manifest item starts with.
const MANIFEST: &str = "latch-chunks:v1:";

/// A [`SecretStore`] that splits values over `max_units` UTF-16 code units per item.
pub struct Chunked<S> {
    inner: S,
    max_units: usize,
}

/// A manifest: which generation, how many parts, how long the whole is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Manifest {
    generation: u64,
    parts: usize,
    units: usize,
}

impl Manifest {
    fn parse(text: &str) -> Option<Self> {
        let rest = text.strip_prefix(MANIFEST)?;
        let mut fields = rest.split(':');
        let generation = fields.next()?.strip_prefix('g')?.parse().ok()?;
        let parts = fields.next()?.parse().ok()?;
        let units = fields.next()?.parse().ok()?;
        (fields.next().is_none() && parts > 0).then_some(Self {
            generation,
            parts,
            units,
        })
    }

    fn text(self) -> String {
        format!(
            "{MANIFEST}g{}:{}:{}",
            self.generation, self.parts, self.units
        )
    }
}

fn part_key(key: &SecretKey, generation: u64, part: usize) -> SecretKey {
    SecretKey::named(&format!("{}/g{generation}/part-{part}", key.as_str()))
}

/// Splits at character boundaries so that each piece has at most `max` UTF-16 code units.
fn split(text: &str, max: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut units = 0;
    for ch in text.chars() {
        let width = ch.len_utf16();
        if units + width > max && !current.is_empty() {
            pieces.push(std::mem::take(&mut current));
            units = 0;
        }
        current.push(ch);
        units += width;
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces
}

impl<S: SecretStore> Chunked<S> {
    /// Wraps a store whose items hold at most `max_units` UTF-16 code units (at least 64).
    pub fn new(inner: S, max_units: usize) -> Self {
        Self {
            inner,
            max_units: max_units.max(64),
        }
    }

    /// The manifest at `key`, if the item there is one.
    fn manifest(&self, key: &SecretKey) -> Result<Option<Manifest>, SecretStoreError> {
        Ok(self
            .inner
            .get(key)?
            .and_then(|value| Manifest::parse(value.expose())))
    }

    /// Deletes a generation's parts (`parts` when known, else until one is missing).
    fn delete_parts(&self, key: &SecretKey, generation: u64, parts: Option<usize>) {
        let mut part = 1;
        loop {
            if parts.is_some_and(|n| part > n) || part > 10_000 {
                return;
            }
            // Best effort: a leftover part is harmless, never read without its manifest.
            match self.inner.delete(&part_key(key, generation, part)) {
                Ok(false) if parts.is_none() => return,
                Err(_) => return,
                _ => {}
            }
            part += 1;
        }
    }
}

impl<S: SecretStore> SecretStore for Chunked<S> {
    fn put(&self, key: &SecretKey, value: &Secret) -> Result<(), SecretStoreError> {
        let previous = self.manifest(key)?;
        let text = value.expose();
        let units = text.encode_utf16().count();
        if units <= self.max_units && !text.starts_with(MANIFEST) {
            self.inner.put(key, value)?;
        } else {
            let generation = previous.map_or(1, |m| m.generation + 1);
            let pieces = split(text, self.max_units);
            for (i, piece) in pieces.iter().enumerate() {
                let piece = Secret::new(piece.clone());
                self.inner.put(&part_key(key, generation, i + 1), &piece)?;
            }
            let manifest = Manifest {
                generation,
                parts: pieces.len(),
                units,
            };
            // The switch: only now does `key` name the new generation.
            self.inner.put(key, &Secret::new(manifest.text()))?;
        }
        if let Some(old) = previous {
            self.delete_parts(key, old.generation, Some(old.parts));
            // A crash between a manifest move and this clean-up left the one before.
            if old.generation > 1 {
                self.delete_parts(key, old.generation - 1, None);
            }
        }
        Ok(())
    }

    fn get(&self, key: &SecretKey) -> Result<Option<Secret>, SecretStoreError> {
        let Some(value) = self.inner.get(key)? else {
            return Ok(None);
        };
        let Some(manifest) = Manifest::parse(value.expose()) else {
            return Ok(Some(value));
        };
        let mut whole = String::with_capacity(manifest.units);
        for part in 1..=manifest.parts {
            let Some(piece) = self.inner.get(&part_key(key, manifest.generation, part))? else {
                return Err(SecretStoreError::Refused {
                    key: key.to_string(),
                    reason: format!(
                        "part {part} of {} is missing; store the secret again",
                        manifest.parts
                    ),
                });
            };
            whole.push_str(piece.expose());
        }
        if whole.encode_utf16().count() != manifest.units {
            return Err(SecretStoreError::Refused {
                key: key.to_string(),
                reason: "its parts do not add up; store the secret again".to_owned(),
            });
        }
        Ok(Some(Secret::new(whole)))
    }

    fn delete(&self, key: &SecretKey) -> Result<bool, SecretStoreError> {
        let manifest = self.manifest(key)?;
        let existed = self.inner.delete(key)?;
        if let Some(m) = manifest {
            self.delete_parts(key, m.generation, Some(m.parts));
        }
        Ok(existed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::ports::MemorySecretStore;

    /// The in-memory store, failing every put after the first `allowed` (a crash mid-write).
    struct Crashing {
        inner: MemorySecretStore,
        allowed: AtomicUsize,
    }

    impl SecretStore for &Crashing {
        fn put(&self, key: &SecretKey, value: &Secret) -> Result<(), SecretStoreError> {
            if self
                .allowed
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_err()
            {
                return Err(SecretStoreError::Unavailable {
                    reason: "crashed".into(),
                    fix: "none".into(),
                });
            }
            self.inner.put(key, value)
        }
        fn get(&self, key: &SecretKey) -> Result<Option<Secret>, SecretStoreError> {
            self.inner.get(key)
        }
        fn delete(&self, key: &SecretKey) -> Result<bool, SecretStoreError> {
            self.inner.delete(key)
        }
    }

    fn token(len: usize, seed: char) -> Secret {
        Secret::new(std::iter::repeat_n(seed, len).collect())
    }

    /// Windows' limit: 2,560 bytes of UTF-16, 1,280 code units.
    const WINDOWS: usize = 1280;

    #[test]
    fn large_secrets_round_trip_and_leave_nothing_behind() {
        let store = Chunked::new(MemorySecretStore::default(), WINDOWS);
        let key = SecretKey::named("home/grant/bitbucket/refresh-token");
        let big = token(2_700, 'a');
        store.put(&key, &big).unwrap();
        assert_eq!(store.get(&key).unwrap().unwrap().expose(), big.expose());
        assert_eq!(store.inner.len(), 4, "three parts and the manifest");
        // A rotation: the new generation replaces the old, whose parts go.
        let next = token(3_000, 'b');
        store.put(&key, &next).unwrap();
        assert_eq!(store.get(&key).unwrap().unwrap().expose(), next.expose());
        assert_eq!(store.inner.len(), 4);
        // Back to a small secret: stored as it is, parts gone.
        store.put(&key, &token(40, 'c')).unwrap();
        assert_eq!(store.inner.len(), 1);
        store.put(&key, &next).unwrap();
        assert!(store.delete(&key).unwrap());
        assert_eq!(store.inner.len(), 0);
        assert!(store.get(&key).unwrap().is_none());
    }

    #[test]
    fn a_crash_mid_rotation_leaves_the_previous_token_whole() {
        let crashing = Crashing {
            inner: MemorySecretStore::default(),
            allowed: AtomicUsize::new(usize::MAX),
        };
        let store = Chunked::new(&crashing, WINDOWS);
        let key = SecretKey::named("home/grant/bitbucket/refresh-token");
        let old = token(2_600, 'o');
        store.put(&key, &old).unwrap();
        // The next rotation crashes after writing two of its three parts, and again after all
        // three parts but before the manifest.
        for allowed in [2, 3] {
            crashing.allowed.store(allowed, Ordering::SeqCst);
            assert!(store.put(&key, &token(2_900, 'n')).is_err());
            crashing.allowed.store(usize::MAX, Ordering::SeqCst);
            assert_eq!(
                store.get(&key).unwrap().unwrap().expose(),
                old.expose(),
                "after {allowed} writes"
            );
        }
        // The retry reuses the orphaned generation's names and cleans up.
        let new = token(2_900, 'n');
        store.put(&key, &new).unwrap();
        assert_eq!(store.get(&key).unwrap().unwrap().expose(), new.expose());
        assert_eq!(crashing.inner.len(), 4);
    }

    #[test]
    fn pieces_respect_utf16_units_and_manifests_parse_strictly() {
        let text = "é€😀".repeat(500);
        for piece in split(&text, 100) {
            assert!(piece.encode_utf16().count() <= 100);
        }
        assert_eq!(split(&text, 100).concat(), text);
        let m = Manifest {
            generation: 7,
            parts: 3,
            units: 2_700,
        };
        assert_eq!(Manifest::parse(&m.text()), Some(m));
        assert_eq!(Manifest::parse("latch-chunks:v1:g7:0:1"), None);
        assert_eq!(Manifest::parse("latch-chunks:v1:g7:3:1:x"), None);
        assert_eq!(Manifest::parse("ordinary-token"), None);
        // A secret that looks like a manifest is chunked, so it reads back as itself.
        let store = Chunked::new(MemorySecretStore::default(), WINDOWS);
        let key = SecretKey::named("k");
        let tricky = Secret::new(m.text());
        store.put(&key, &tricky).unwrap();
        assert_eq!(store.get(&key).unwrap().unwrap().expose(), tricky.expose());
    }
}
