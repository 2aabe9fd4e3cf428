//! One refresh per grant at a time: one task per grant in this process (an async mutex), then
//! one process per grant (an OS file lock in the home's `locks/` folder, released by the OS when
//! its holder dies, so a crashed refresher never blocks the others).

use std::collections::HashMap;
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::error::GrantError;
use latch_store::GrantId;

/// How long a process waits for another process's refresh of the same grant.
const LOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// The locks of one home.
pub(crate) struct RefreshLock {
    dir: PathBuf,
    flights: Mutex<HashMap<GrantId, Arc<tokio::sync::Mutex<()>>>>,
}

impl RefreshLock {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            flights: Mutex::new(HashMap::new()),
        }
    }

    /// This process's flight of a grant: lock it before looking at the grant again.
    pub(crate) fn flight(&self, grant: &GrantId) -> Arc<tokio::sync::Mutex<()>> {
        let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(flights.entry(grant.clone()).or_default())
    }

    /// The grant's lock file, waiting (bounded) for another process to finish its refresh.
    pub(crate) async fn across_processes(&self, grant: &GrantId) -> Result<File, GrantError> {
        let path = self
            .dir
            .join(format!("{}.lock", grant.as_str().replace(':', "_")));
        tokio::task::spawn_blocking(move || lock_file(&path))
            .await
            .map_err(|e| GrantError::Lock(format!("lock task failed: {e}")))?
    }
}

fn lock_file(path: &Path) -> Result<File, GrantError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| GrantError::Lock(format!("cannot create {}: {e}", dir.display())))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| GrantError::Lock(format!("cannot open {}: {e}", path.display())))?;
    crate::config::home::private_file(path);
    let deadline = Instant::now() + LOCK_TIMEOUT;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(TryLockError::WouldBlock) => {
                return Err(GrantError::Lock(format!(
                    "another Latch process has held {} for over {}s; if none is running, \
                     delete the file",
                    path.display(),
                    LOCK_TIMEOUT.as_secs()
                )))
            }
            Err(TryLockError::Error(e)) => {
                return Err(GrantError::Lock(format!(
                    "cannot lock {}: {e}",
                    path.display()
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_file_excludes_a_second_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("locks/g.lock");
        let first = lock_file(&path).unwrap();
        let second = File::open(&path).unwrap();
        assert!(matches!(second.try_lock(), Err(TryLockError::WouldBlock)));
        drop(first);
        assert!(second.try_lock().is_ok());
    }
}
