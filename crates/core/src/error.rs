//! The core's typed errors. Each says what went wrong and what to do; none carries a secret.

use std::path::PathBuf;

use crate::catalog::ManifestError;
use crate::ports::SecretStoreError;

/// Result with the core's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A problem in latch.toml.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {message}\n  fix: {fix}", file.display(), line.map_or_else(String::new, |l| format!(":{l}")))]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// The line, when known.
    pub line: Option<usize>,
    /// The dotted key, when the problem is about one (`connectors.jira.provider`).
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub fix: String,
}

/// Everything the core's use cases can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// latch.toml is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A connector name is neither configured nor in the catalog.
    #[error("unknown connector `{name}`{}", hint_known(known))]
    UnknownConnector {
        /// What was asked for.
        name: String,
        /// What exists.
        known: Vec<String>,
    },
    /// A provider name is neither configured nor in the catalog.
    #[error("unknown provider `{name}`{}", hint_known(known))]
    UnknownProvider {
        /// What was asked for.
        name: String,
        /// What exists.
        known: Vec<String>,
    },
    /// A request that contradicts the catalog or the current set-up.
    #[error("{message}\n  fix: {fix}")]
    Invalid {
        /// What is wrong.
        message: String,
        /// What to do.
        fix: String,
    },
    /// Something already exists.
    #[error("{0}")]
    Exists(String),
    /// The home folder is unusable.
    #[error("{0}")]
    Home(String),
    /// A manifest is malformed.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The OS keychain refused or is not reachable.
    #[error(transparent)]
    Keychain(#[from] SecretStoreError),
    /// The metadata database failed.
    #[error("database {path}: {source}\n  fix: check that the folder is writable and not on a network share; `latch doctor` explains more", path = path.display())]
    Store {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        source: latch_store::StoreError,
    },
    /// Writing latch.toml failed.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

fn hint_known(known: &[String]) -> String {
    if known.is_empty() {
        String::new()
    } else {
        format!("; known: {}", known.join(", "))
    }
}

impl Error {
    /// A stable code for the UI and for scripts (`--json` errors, exit codes).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Config(_) => "config_invalid",
            Self::UnknownConnector { .. } => "unknown_connector",
            Self::UnknownProvider { .. } => "unknown_provider",
            Self::Invalid { .. } => "invalid_request",
            Self::Exists(_) => "already_exists",
            Self::Home(_) => "home_unusable",
            Self::Manifest(_) => "manifest_invalid",
            Self::Keychain(_) => "keychain_unavailable",
            Self::Store { .. } => "database_error",
            Self::Write { .. } => "write_failed",
        }
    }
}
