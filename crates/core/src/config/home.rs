//! Where Latch keeps its files: `LATCH_HOME` puts everything in one folder (tests use a temp
//! dir); otherwise the platform's config and data folders.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The files of one Latch installation.
#[derive(Clone, Debug)]
pub struct Home {
    config_file: PathBuf,
    data_dir: PathBuf,
}

impl Home {
    /// `LATCH_HOME` when set and not empty, else the platform folders.
    pub fn from_env() -> Result<Self> {
        match std::env::var_os("LATCH_HOME") {
            Some(dir) if !dir.is_empty() => Ok(Self::at(Path::new(&dir))),
            _ => {
                let dirs = directories::ProjectDirs::from("", "", "latch").ok_or_else(|| {
                    Error::Home(
                        "cannot find a home folder for Latch: set LATCH_HOME to a folder Latch \
                         may write to"
                            .to_owned(),
                    )
                })?;
                Ok(Self {
                    config_file: dirs.config_dir().join("latch.toml"),
                    data_dir: dirs.data_dir().to_owned(),
                })
            }
        }
    }

    /// Everything in one folder.
    pub fn at(dir: &Path) -> Self {
        Self {
            config_file: dir.join("latch.toml"),
            data_dir: dir.to_owned(),
        }
    }

    /// `latch.toml`.
    pub fn config_file(&self) -> &Path {
        &self.config_file
    }

    /// latch.toml's modification time and length: a long-running face compares stamps to
    /// notice edits made by another face (a connector added by the CLI or the desktop app).
    pub fn config_stamp(&self) -> Option<(std::time::SystemTime, u64)> {
        let meta = std::fs::metadata(&self.config_file).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    }

    /// The SQLite database.
    pub fn database(&self) -> PathBuf {
        self.data_dir.join("latch.db")
    }

    /// The encrypted secrets file's default place (`[keychain] store = "file"`).
    pub fn secrets_file(&self) -> PathBuf {
        self.data_dir.join("secrets.latch")
    }

    /// Lock files (one per grant, for cross-process refresh).
    pub fn locks_dir(&self) -> PathBuf {
        self.data_dir.join("locks")
    }

    /// Creates the folders, private to the user where the platform allows.
    pub fn ensure(&self) -> Result<()> {
        let mut dirs = vec![self.data_dir.clone()];
        if let Some(parent) = self.config_file.parent() {
            dirs.push(parent.to_owned());
        }
        for dir in dirs {
            let existed = dir.exists();
            std::fs::create_dir_all(&dir).map_err(|err| {
                Error::Home(format!(
                    "cannot create {}: {err}; set LATCH_HOME to a folder Latch may write to",
                    dir.display()
                ))
            })?;
            if !existed {
                restrict(&dir);
            }
        }
        // Files an older Latch made with the default umask, tightened.
        private_file(&self.config_file);
        if let Ok(locks) = std::fs::read_dir(self.locks_dir()) {
            for entry in locks.flatten() {
                private_file(&entry.path());
            }
        }
        Ok(())
    }
}

/// Makes a file of the home readable by the user only (latch.toml, lock files): they hold no
/// secret, but nobody else needs to read them.
pub(crate) fn private_file(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if path.exists() {
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(unix)]
fn restrict(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    // Best effort: the folder holds no secret, but its metadata is nobody else's business.
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
}

#[cfg(not(unix))]
fn restrict(_dir: &Path) {}
