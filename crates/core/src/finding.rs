//! Findings: one problem, in plain words, with the fix. Produced by scope lint today and by
//! `latch doctor` later; shown by the CLI, the JSON status and the desktop app alike.

use serde::Serialize;

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing; nothing is broken.
    Info,
    /// Likely to break something, or against least privilege.
    Warning,
    /// Something will not work until it is fixed.
    Error,
}

/// One problem and its fix.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Finding {
    /// Stable machine-readable code (`missing_offline_access`, …). Documented in the README.
    pub code: String,
    /// How bad it is.
    pub severity: Severity,
    /// What it is about: `provider:NAME` or `connector:NAME`.
    pub subject: String,
    /// What is wrong, in plain words.
    pub message: String,
    /// What to do about it.
    pub fix: String,
}

impl Finding {
    /// Builds a finding.
    pub fn new(
        code: &str,
        severity: Severity,
        subject: String,
        message: String,
        fix: &str,
    ) -> Self {
        Self {
            code: code.to_owned(),
            severity,
            subject,
            message,
            fix: fix.to_owned(),
        }
    }
}
