//! Exit codes and error printing. The codes are a contract (README, "Exit codes").

use std::process::ExitCode;

/// Something went wrong; carries the exit code and what to print.
pub(crate) struct Failure {
    code: u8,
    kind: &'static str,
    message: String,
}

/// Operation failed (network, database, refused request).
const FAILED: u8 = 1;
/// latch.toml or a manifest is invalid.
const CONFIG: u8 = 3;
/// The OS keychain is unreachable or locked.
const KEYCHAIN: u8 = 4;
/// An unknown provider or connector was named.
const NOT_FOUND: u8 = 5;
/// The person must act: sign in (again), consent to more scopes, store a credential.
const NEEDS_PERSON: u8 = 6;
/// The identity provider or network failed (refresh failing, code exchange failed, timeout).
const UPSTREAM: u8 = 7;

impl Failure {
    pub(crate) fn internal(message: String) -> Self {
        Self {
            code: FAILED,
            kind: "internal",
            message,
        }
    }

    pub(crate) fn usage(message: String) -> Self {
        Self {
            code: 2,
            kind: "usage",
            message,
        }
    }

    /// `latch doctor` could not run at all: exit 2 whatever the cause (1 means "unhealthy").
    pub(crate) fn doctor(inner: impl Into<Failure>) -> Self {
        let inner = inner.into();
        Self { code: 2, ..inner }
    }

    pub(crate) fn report(self, json: bool) -> ExitCode {
        if json {
            let body = serde_json::json!({
                "error": { "code": self.kind, "message": self.message }
            });
            say!("{body:#}");
        }
        eprintln!("error: {}", self.message);
        ExitCode::from(self.code)
    }
}

impl From<latch_core::grants::GrantError> for Failure {
    fn from(err: latch_core::grants::GrantError) -> Self {
        use latch_core::grants::GrantError as E;
        let code = match &err {
            E::NotSignedIn { .. } | E::NeedsLogin { .. } => NEEDS_PERSON,
            E::RefreshFailing { .. } => UPSTREAM,
            E::UnknownConnector(_) => NOT_FOUND,
            E::Misconfigured { .. } => CONFIG,
            E::Keychain(_) => KEYCHAIN,
            _ => FAILED,
        };
        Self {
            code,
            kind: err.code(),
            message: err.to_string(),
        }
    }
}

impl From<latch_core::login::LoginError> for Failure {
    fn from(err: latch_core::login::LoginError) -> Self {
        use latch_core::login::LoginError as E;
        match err {
            E::Grant(e) => e.into(),
            E::Core(e) => e.into(),
            other => {
                let code = match &other {
                    E::Denied { .. } => NEEDS_PERSON,
                    E::Exchange { .. } | E::Timeout(_) => UPSTREAM,
                    E::Setup { .. } => CONFIG,
                    _ => FAILED,
                };
                Self {
                    code,
                    kind: other.code(),
                    message: other.to_string(),
                }
            }
        }
    }
}

impl From<latch_core::Error> for Failure {
    fn from(err: latch_core::Error) -> Self {
        use latch_core::Error as E;
        let code = match &err {
            E::Config(_) | E::Manifest(_) => CONFIG,
            E::Keychain(_) => KEYCHAIN,
            E::UnknownConnector { .. } | E::UnknownProvider { .. } => NOT_FOUND,
            _ => FAILED,
        };
        Self {
            code,
            kind: err.code(),
            message: err.to_string(),
        }
    }
}
