//! The core's typed errors. Each says what went wrong and what to do; none carries a secret.

use std::path::PathBuf;

use crate::code::ErrorCode;
use crate::ports::SecretStoreError;
use crate::provider::catalog::ManifestError;

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
    /// A connector type the catalog does not have (`--type jirra`).
    #[error("unknown connector type `{name}`{}", hint_types(known))]
    UnknownType {
        /// What was asked for.
        name: String,
        /// The catalog's types.
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

/// A grant as people know it: the provider signed in to (`atlassian`), or the connector whose
/// own credential it is (`service:jira-svc` → connector `jira-svc`).
fn people_name(grant: &str) -> String {
    match grant.strip_prefix("service:") {
        Some(connector) => format!("connector `{connector}`"),
        None => format!("`{grant}`"),
    }
}

fn hint_types(known: &[String]) -> String {
    format!("; types: {} (`latch connector catalog`)", known.join(", "))
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
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Config(_) => ErrorCode::ConfigInvalid,
            Self::UnknownConnector { .. } => ErrorCode::UnknownConnector,
            // The same code as before the type had its own message: scripts match on it.
            Self::UnknownType { .. } => ErrorCode::UnknownConnector,
            Self::UnknownProvider { .. } => ErrorCode::UnknownProvider,
            Self::Invalid { .. } => ErrorCode::InvalidRequest,
            Self::Exists(_) => ErrorCode::AlreadyExists,
            Self::Home(_) => ErrorCode::HomeUnusable,
            Self::Manifest(_) => ErrorCode::ManifestInvalid,
            Self::Keychain(_) => ErrorCode::KeychainUnavailable,
            Self::Store { .. } => ErrorCode::DatabaseError,
            Self::Write { .. } => ErrorCode::WriteFailed,
        }
    }
}

/// Why no credential could be handed out. Never carries a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GrantError {
    /// Never signed in (or signed out).
    #[error("{} is not signed in\n  fix: {fix}", people_name(grant))]
    NotSignedIn {
        /// The grant.
        grant: String,
        /// The command to run.
        fix: String,
    },
    /// The token family is dead.
    #[error(
        "{} needs a new sign-in: {reason}\n  fix: run `latch login {provider}`",
        people_name(grant)
    )]
    NeedsLogin {
        /// The grant.
        grant: String,
        /// Its provider.
        provider: String,
        /// Why, in plain words.
        reason: String,
    },
    /// Refreshing fails; Latch keeps trying on the next use.
    #[error("refreshing {} failed: {reason}\n  fix: check the network and the provider's status, then try again; `latch status` shows the last error", people_name(grant))]
    RefreshFailing {
        /// The grant.
        grant: String,
        /// The last error.
        reason: String,
    },
    /// A refresh got no answer, and the provider has no reuse window to resend it in.
    #[error("refreshing {} got no answer and cannot be resent safely: {reason}\n  fix: try again; if the next refresh answers invalid_grant, sign in again with `latch login {provider}`", people_name(grant))]
    RefreshUncertain {
        /// The grant.
        grant: String,
        /// Its provider.
        provider: String,
        /// What happened.
        reason: String,
    },
    /// The connector's own credential is not stored.
    #[error("connector `{connector}` has no credential stored\n  fix: {fix}")]
    CredentialMissing {
        /// The connector.
        connector: String,
        /// What to run.
        fix: String,
    },
    /// The identity provider or the upstream refuses the connector's own credential.
    #[error("the credential of connector `{connector}` was refused: {reason}\n  fix: {fix}")]
    CredentialRejected {
        /// The connector.
        connector: String,
        /// What the provider said, secret-free.
        reason: String,
        /// Where to fix it.
        fix: String,
    },
    /// A Connect app could not get a token for the user it acts as.
    #[error("connector `{connector}` cannot act as its user: {reason}\n  fix: {fix}")]
    ImpersonationRefused {
        /// The connector.
        connector: String,
        /// What the token endpoint said, secret-free.
        reason: String,
        /// What to check.
        fix: String,
    },
    /// An OAuth 1.0a application link refused a signed request.
    #[error("the application link of `{provider}` refused the request ({problem}): {message}\n  fix: {fix}")]
    LinkRefused {
        /// The provider.
        provider: String,
        /// `oauth_problem`.
        problem: String,
        /// What it means.
        message: String,
        /// What to do, on which side of the link.
        fix: String,
    },
    /// The credential signs each request: there is no token to hand out.
    #[error("connector `{connector}` signs every request with {what}: there is no token to print\n  fix: call it through the proxy (`latch serve`, `latch exec`), which signs each request")]
    BoundToRequest {
        /// The connector.
        connector: String,
        /// What it signs with.
        what: &'static str,
    },
    /// Unknown connector.
    #[error("unknown connector `{name}`{}", hint_known(known))]
    UnknownConnector {
        /// What was asked for.
        name: String,
        /// What exists.
        known: Vec<String>,
    },
    /// The connector's API needs a site and none is bound (or the bound one is unknown).
    #[error("connector `{connector}` has no usable site: {reason}\n  fix: {fix}")]
    SiteUnbound {
        /// Connector.
        connector: String,
        /// Why.
        reason: String,
        /// What to do.
        fix: String,
    },
    /// The set-up is incomplete (missing client id, e-mail, …).
    #[error("{message}\n  fix: {fix}")]
    Misconfigured {
        /// What is missing.
        message: String,
        /// What to do.
        fix: String,
    },
    /// The keychain failed.
    #[error(transparent)]
    Keychain(#[from] SecretStoreError),
    /// The database failed.
    #[error("database: {0}")]
    Store(#[from] latch_store::StoreError),
    /// The lock folder is unusable, or another process held the lock too long.
    #[error("{0}")]
    Lock(String),
}

impl GrantError {
    /// A stable code for scripts and the UI.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NotSignedIn { .. } => ErrorCode::NotSignedIn,
            Self::NeedsLogin { .. } => ErrorCode::NeedsLogin,
            Self::RefreshFailing { .. } => ErrorCode::RefreshFailing,
            Self::RefreshUncertain { .. } => ErrorCode::RefreshUncertain,
            Self::CredentialMissing { .. } => ErrorCode::CredentialMissing,
            Self::CredentialRejected { .. } => ErrorCode::CredentialRejected,
            Self::ImpersonationRefused { .. } => ErrorCode::ImpersonationRefused,
            Self::BoundToRequest { .. } => ErrorCode::BoundToRequest,
            Self::LinkRefused { .. } => ErrorCode::OAuth1Rejected,
            Self::UnknownConnector { .. } => ErrorCode::UnknownConnector,
            Self::SiteUnbound { .. } => ErrorCode::SiteUnbound,
            Self::Misconfigured { .. } => ErrorCode::Misconfigured,
            Self::Keychain(_) => ErrorCode::KeychainUnavailable,
            Self::Store(_) => ErrorCode::DatabaseError,
            Self::Lock(_) => ErrorCode::LockFailed,
        }
    }
}
