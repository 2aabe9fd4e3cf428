//! What the webview receives when a command fails: a stable code the UI switches on, and a
//! plain-words message (with its fix) to show. Never a secret: core errors carry none.

use serde::Serialize;

#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub(crate) struct IpcError {
    code: &'static str,
    message: String,
}

impl IpcError {
    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl From<latch_core::Error> for IpcError {
    fn from(err: latch_core::Error) -> Self {
        Self::new(err.code().as_str(), err.to_string())
    }
}

impl From<latch_core::GrantError> for IpcError {
    fn from(err: latch_core::GrantError) -> Self {
        Self::new(err.code().as_str(), err.to_string())
    }
}

impl From<latch_core::app::sign_in::LoginError> for IpcError {
    fn from(err: latch_core::app::sign_in::LoginError) -> Self {
        Self::new(err.code().as_str(), err.to_string())
    }
}

impl From<latch_core::ports::SecretStoreError> for IpcError {
    fn from(err: latch_core::ports::SecretStoreError) -> Self {
        Self::from(latch_core::Error::from(err))
    }
}
