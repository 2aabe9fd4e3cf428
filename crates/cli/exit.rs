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

    pub(crate) fn report(self, json: bool) -> ExitCode {
        if json {
            let body = serde_json::json!({
                "error": { "code": self.kind, "message": self.message }
            });
            println!("{body:#}");
        }
        eprintln!("error: {}", self.message);
        ExitCode::from(self.code)
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
