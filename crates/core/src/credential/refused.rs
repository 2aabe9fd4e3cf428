//! What an upstream's 401 or 403 says about the credential that was sent, for the kinds that
//! explain their own refusals: a Connect app's JWT (a bare 401, or Connect's scope refusal) and
//! an OAuth 1.0a link's signature (`oauth_problem`). Other kinds leave refusals to the proxy's
//! general handling (scope refusals, one refresh).

use crate::config::Connector;
use crate::credential::oauth1::Refused;
use crate::credential::{connect, Credential, CredentialKind, Credentials};
use crate::grant::{GrantId, GrantState};

/// An upstream refusal explained by the credential kind that was sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpstreamRefusal {
    /// The site refused a Connect app's JWT (Jira answers an HTML 401 without the reason).
    ConnectJwtRejected {
        /// What Latch can check locally.
        hint: String,
    },
    /// A Connect app's descriptor lacks the scope ("Request not in an authorized API scope").
    ConnectScopeMissing {
        /// The connector.
        connector: String,
    },
    /// An OAuth 1.0a link refused the signed request.
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
}

impl UpstreamRefusal {
    /// Whether a static credential replaced since it was read deserves one more try first (a
    /// reinstalled Connect app's new payload, stored a moment ago).
    pub fn retry_with_a_newer_secret(&self) -> bool {
        matches!(self, Self::ConnectJwtRejected { .. })
    }
}

impl Credentials {
    /// Reads an upstream 401 or 403 (its `WWW-Authenticate` and the first bytes of its body)
    /// for what it says about `sent`. A link's dead token marks its sign-in `needs_login`, so
    /// the status says so too.
    pub fn explain_refusal(
        &self,
        connector: &Connector,
        sent: &Credential,
        status: u16,
        www_authenticate: Option<&str>,
        body: &[u8],
    ) -> Option<UpstreamRefusal> {
        match CredentialKind::of(connector) {
            CredentialKind::ConnectJwt | CredentialKind::ConnectUser
                if status == 403
                    && String::from_utf8_lossy(body).contains("not in an authorized API scope") =>
            {
                Some(UpstreamRefusal::ConnectScopeMissing {
                    connector: connector.name.clone(),
                })
            }
            CredentialKind::ConnectJwt if status == 401 => {
                let app = match sent {
                    Credential::ConnectJwt { app, .. } => Some(app),
                    _ => None,
                };
                Some(UpstreamRefusal::ConnectJwtRejected {
                    hint: connect::rejected_hint(&connector.name, app),
                })
            }
            CredentialKind::LinkUser | CredentialKind::LinkConsumer
                if status == 401 || status == 403 =>
            {
                let refused = Refused::read(www_authenticate, body)?;
                let provider = self.grants.config().provider(&connector.provider)?;
                let consumer_key = provider.oauth1.as_ref()?.consumer_key.as_str();
                let (message, fix) = refused.explain(&provider.name, consumer_key);
                if refused.token_is_dead()
                    && CredentialKind::of(connector) == CredentialKind::LinkUser
                {
                    self.mark_sign_in_dead(&connector.provider, &message);
                }
                Some(UpstreamRefusal::LinkRefused {
                    provider: provider.name.clone(),
                    problem: refused.problem,
                    message,
                    fix,
                })
            }
            _ => None,
        }
    }

    /// Records that a sign-in's token was refused for good: the person must sign in again.
    fn mark_sign_in_dead(&self, provider: &str, reason: &str) {
        let store = self.grants.store();
        let grant = GrantId::user(provider);
        if let Ok(Some(row)) = store.row(&grant) {
            if row.state != GrantState::NeedsLogin {
                let _ = store.fail(row, GrantState::NeedsLogin, reason.to_owned());
            }
        }
        self.grants.forget(&grant);
    }
}
