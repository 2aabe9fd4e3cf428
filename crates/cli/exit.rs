//! Exit codes and error printing. The codes are a contract (README, "Exit codes").

use std::process::ExitCode;

use latch_core::ErrorCode;

/// Something went wrong; carries the exit code and what to print.
pub(crate) struct Failure {
    code: u8,
    kind: &'static str,
    message: String,
    /// The command already printed its JSON answer: the error goes to stderr only, so stdout
    /// stays one JSON document.
    answered: bool,
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
            answered: false,
        }
    }

    pub(crate) fn usage(message: String) -> Self {
        Self {
            code: 2,
            kind: "usage",
            message,
            answered: false,
        }
    }

    /// `latch doctor` could not run at all: exit 2 whatever the cause (1 means "unhealthy").
    pub(crate) fn doctor(inner: impl Into<Failure>) -> Self {
        let inner = inner.into();
        Self { code: 2, ..inner }
    }

    pub(crate) fn report(self, json: bool) -> ExitCode {
        if json && !self.answered {
            let body = serde_json::json!({
                "error": { "code": self.kind, "message": self.message }
            });
            say!("{body:#}");
        }
        eprintln!("error: {}", self.message);
        ExitCode::from(self.code)
    }
}

/// The one mapping from the core's error codes to exit codes.
fn exit_code(code: ErrorCode) -> u8 {
    use ErrorCode as C;
    match code {
        C::ConfigInvalid | C::ManifestInvalid | C::Misconfigured => CONFIG,
        C::KeychainUnavailable => KEYCHAIN,
        // Bad usage: asking a request-bound credential for a token.
        C::BoundToRequest => 2,
        C::UnknownConnector | C::UnknownProvider => NOT_FOUND,
        c if c.needs_person() => NEEDS_PERSON,
        C::RefreshFailing
        | C::RefreshUncertain
        | C::CodeExchangeFailed
        | C::LoginTimeout
        | C::CredentialUnchecked => UPSTREAM,
        _ => FAILED,
    }
}

impl Failure {
    fn coded(code: ErrorCode, message: String) -> Self {
        Self {
            code: exit_code(code),
            kind: code.as_str(),
            message,
            answered: false,
        }
    }

    /// A failure with the core's code (its exit code from the one mapping).
    pub(crate) fn coded_error(code: ErrorCode, message: String) -> Self {
        Self::coded(code, message)
    }

    /// A failure after the command printed its JSON answer (which says what happened).
    pub(crate) fn after_answer(code: ErrorCode, message: String) -> Self {
        Self {
            answered: true,
            ..Self::coded(code, message)
        }
    }
}

impl From<latch_core::GrantError> for Failure {
    fn from(err: latch_core::GrantError) -> Self {
        Self::coded(err.code(), err.to_string())
    }
}

impl From<latch_core::app::sign_in::LoginError> for Failure {
    fn from(err: latch_core::app::sign_in::LoginError) -> Self {
        Self::coded(err.code(), err.to_string())
    }
}

impl From<latch_core::Error> for Failure {
    fn from(err: latch_core::Error) -> Self {
        Self::coded(err.code(), err.to_string())
    }
}
