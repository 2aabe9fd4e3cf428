//! One list of error codes. Every core error has one; every face maps a code once (the CLI to
//! an exit code, the desktop app to its UI, the proxy to a status). Codes are a contract:
//! existing ones stay, new ones are added.

use serde::Serialize;

/// What kind of failure, for scripts and the UI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// latch.toml is invalid.
    ConfigInvalid,
    /// A manifest is invalid.
    ManifestInvalid,
    /// The OS keychain is unreachable or locked.
    KeychainUnavailable,
    /// No such connector.
    UnknownConnector,
    /// No such provider.
    UnknownProvider,

    /// A request that contradicts the catalog or the set-up.
    InvalidRequest,
    /// Something with that name exists.
    AlreadyExists,
    /// The home folder is unusable.
    HomeUnusable,
    /// The metadata database failed.
    DatabaseError,
    /// Writing latch.toml failed.
    WriteFailed,
    /// Never signed in (or signed out).
    NotSignedIn,
    /// The token family is dead: sign in again.
    NeedsLogin,
    /// The token endpoint fails; Latch retries.
    RefreshFailing,
    /// A refresh got no answer and cannot be resent safely; the next refresh tells.
    RefreshUncertain,
    /// The connector has no usable site.
    SiteUnbound,
    /// The set-up is incomplete.
    Misconfigured,
    /// A lock file could not be taken.
    LockFailed,
    /// The connector's own credential is not stored.
    CredentialMissing,
    /// The identity provider or upstream refuses the connector's own credential.
    CredentialRejected,
    /// A credential was stored but could not be checked (no answer): it is kept, unchecked.
    CredentialUnchecked,
    /// The callback port is taken.
    PortBusy,
    /// The browser never came back.
    LoginTimeout,
    /// The person declined the consent.
    ConsentDenied,
    /// The provider reported an error at consent.
    ConsentFailed,
    /// The code could not be redeemed.
    CodeExchangeFailed,
    /// The sign-in was cancelled (desktop app).
    SignInCancelled,
    /// Another process (`latch serve`, the desktop app) serves this home's proxy already.
    AlreadyServed,
    /// A credential that signs each request (Connect, OAuth 1.0a) has no token to print.
    BoundToRequest,
    /// A Connect app's token request for a user was refused (`ACT_AS_USER`, account, clock).
    ImpersonationRefused,
    /// An OAuth 1.0a application link refused a signed request (`oauth_problem`).
    OAuth1Rejected,
    /// A form-encoded body too large to sign (OAuth 1.0a signs its parameters).
    OAuth1BodyTooLarge,
}

impl ErrorCode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConfigInvalid => "config_invalid",
            Self::ManifestInvalid => "manifest_invalid",
            Self::KeychainUnavailable => "keychain_unavailable",
            Self::UnknownConnector => "unknown_connector",
            Self::UnknownProvider => "unknown_provider",

            Self::InvalidRequest => "invalid_request",
            Self::AlreadyExists => "already_exists",
            Self::HomeUnusable => "home_unusable",
            Self::DatabaseError => "database_error",
            Self::WriteFailed => "write_failed",
            Self::NotSignedIn => "not_signed_in",
            Self::NeedsLogin => "needs_login",
            Self::RefreshFailing => "refresh_failing",
            Self::RefreshUncertain => "refresh_uncertain",
            Self::SiteUnbound => "site_unbound",
            Self::Misconfigured => "misconfigured",
            Self::LockFailed => "lock_failed",
            Self::CredentialMissing => "credential_missing",
            Self::CredentialRejected => "credential_rejected",
            Self::CredentialUnchecked => "credential_unchecked",
            Self::PortBusy => "port_busy",
            Self::LoginTimeout => "login_timeout",
            Self::ConsentDenied => "consent_denied",
            Self::ConsentFailed => "consent_failed",
            Self::CodeExchangeFailed => "code_exchange_failed",
            Self::SignInCancelled => "sign_in_cancelled",
            Self::BoundToRequest => "bound_to_request",
            Self::AlreadyServed => "already_served",
            Self::ImpersonationRefused => "impersonation_refused",
            Self::OAuth1Rejected => "oauth1_rejected",
            Self::OAuth1BodyTooLarge => "oauth1_body_too_large",
        }
    }

    /// Whether the person must act (sign in, store or fix a credential, consent).
    pub fn needs_person(self) -> bool {
        matches!(
            self,
            Self::NotSignedIn
                | Self::NeedsLogin
                | Self::CredentialMissing
                | Self::CredentialRejected
                | Self::ImpersonationRefused
                | Self::OAuth1Rejected
                | Self::ConsentDenied
                | Self::ConsentFailed
        )
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
