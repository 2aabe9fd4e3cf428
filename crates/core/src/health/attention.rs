//! What needs the person: the worst connector state (the tray's colour) and the connectors
//! that newly need them (desktop notifications). Pure functions over status reports.

use serde::Serialize;

use crate::health::status::{ConnectorState, StatusReport};

/// The tray's summary of all connectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Overall {
    /// No connectors yet.
    Idle,
    /// Every connector is ready.
    Ok,
    /// Something waits on the person but nothing is broken (not signed in, no site).
    Warning,
    /// A connector cannot work until the person acts.
    Error,
}

/// The summary of a report: the worst state decides.
pub fn overall(report: &StatusReport) -> Overall {
    match report.connectors.iter().map(|c| c.state).min() {
        None => Overall::Idle,
        // Fine now, but something will need the person soon.
        Some(ConnectorState::Ok) if report.connectors.iter().any(|c| c.attention.is_some()) => {
            Overall::Warning
        }
        Some(ConnectorState::Ok) => Overall::Ok,
        Some(
            ConnectorState::NotSignedIn
            | ConnectorState::SiteUnbound
            | ConnectorState::CredentialMissing,
        ) => Overall::Warning,
        Some(_) => Overall::Error,
    }
}

/// A connector that needs the person, and what to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Attention {
    /// Connector name.
    pub connector: String,
    /// Its new state.
    pub state: ConnectorState,
    /// One line for a notification title.
    pub title: String,
    /// What to do.
    pub action: String,
}

/// Connectors whose state turned into one that needs the person since `before` (`None`: the
/// first report, where only broken states count, not "never signed in").
pub fn newly_needing(before: Option<&StatusReport>, after: &StatusReport) -> Vec<Attention> {
    after
        .connectors
        .iter()
        .filter(|c| {
            let was = before.and_then(|b| b.connectors.iter().find(|p| p.name == c.name));
            needs_person(c.state) && was.is_none_or(|p| p.state != c.state)
        })
        .map(|c| {
            let (what, action) = match c.state {
                ConnectorState::NeedsLogin => (
                    "needs you to sign in again",
                    format!("Open Latch and choose Sign in for {}.", c.provider),
                ),
                ConnectorState::NeedsStepUp => (
                    "needs more permissions",
                    match &c.scopes.fix {
                        // The provider decides what is granted (Bitbucket): say where.
                        Some(fix) if !fix.starts_with("sign in again") => format!("To fix: {fix}."),
                        _ => format!(
                            "Open Latch and choose Re-consent to grant {}.",
                            c.scopes
                                .missing
                                .iter()
                                .map(|s| s.as_str())
                                .collect::<Vec<_>>()
                                .join(" ")
                        ),
                    },
                ),
                ConnectorState::CredentialRejected => (
                    "has a credential that is refused",
                    format!(
                        "Store a new credential for {} (Set credential), or ask your admin.",
                        c.name
                    ),
                ),
                ConnectorState::KeychainLocked => (
                    "cannot read its credential: the keychain is locked",
                    "Unlock the keychain: run `latch keychain unlock`, or unlock it in your \
                     keychain app."
                        .to_owned(),
                ),
                ConnectorState::Expired => (
                    "has an expired credential",
                    format!(
                        "Create a new API token and store it for {} (Set credential).",
                        c.name
                    ),
                ),
                _ => (
                    "cannot refresh its token",
                    "Latch keeps retrying; open Latch › Health to see why.".to_owned(),
                ),
            };
            Attention {
                connector: c.name.clone(),
                state: c.state,
                title: format!("{} ({}) {what}", c.display_name, c.name),
                action,
            }
        })
        .collect()
}

fn needs_person(state: ConnectorState) -> bool {
    matches!(
        state,
        ConnectorState::NeedsLogin
            | ConnectorState::NeedsStepUp
            | ConnectorState::RefreshFailing
            | ConnectorState::RefreshUncertain
            | ConnectorState::CredentialRejected
            | ConnectorState::Expired
            | ConnectorState::KeychainLocked
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::status::{ConnectorScopes, ConnectorStatus, HomeStatus, STATUS_SCHEMA};
    use crate::provider::catalog::AuthMode;

    fn report(states: &[(&str, ConnectorState)]) -> StatusReport {
        StatusReport {
            schema: STATUS_SCHEMA,
            home: HomeStatus {
                id: "h".into(),
                config_file: "latch.toml".into(),
                database: "latch.db".into(),
                secret_store: String::new(),
                keychain: crate::ports::KeychainState::Open,
                serving: None,
            },
            providers: Vec::new(),
            connectors: states
                .iter()
                .map(|(name, state)| ConnectorStatus {
                    name: (*name).to_owned(),
                    kind: (*name).to_owned(),
                    display_name: "Jira".into(),
                    provider: "atlassian".into(),
                    auth: AuthMode::User,
                    state: *state,
                    site: None,
                    base_url: None,
                    scopes: ConnectorScopes {
                        required: Vec::new(),
                        requested: Vec::new(),
                        granted: None,
                        missing: Vec::new(),
                        extra: Vec::new(),
                        fix: None,
                    },
                    grant: None,
                    credential: None,
                    findings: Vec::new(),
                    attention: None,
                })
                .collect(),
        }
    }

    #[test]
    fn the_worst_state_colours_the_tray() {
        use ConnectorState::*;
        assert_eq!(overall(&report(&[])), Overall::Idle);
        assert_eq!(overall(&report(&[("a", Ok)])), Overall::Ok);
        assert_eq!(
            overall(&report(&[("a", Ok), ("b", NotSignedIn)])),
            Overall::Warning
        );
        assert_eq!(
            overall(&report(&[("a", SiteUnbound), ("b", RefreshFailing)])),
            Overall::Error
        );
    }

    #[test]
    fn only_new_trouble_notifies() {
        use ConnectorState::*;
        let first = report(&[("jira", NotSignedIn), ("confluence", NeedsLogin)]);
        let at_start = newly_needing(None, &first);
        assert_eq!(at_start.len(), 1, "never signed in is not news");
        assert_eq!(at_start[0].connector, "confluence");
        assert!(at_start[0].action.contains("Sign in"));
        // Same states again: nothing new.
        assert!(newly_needing(Some(&first), &first).is_empty());
        let later = report(&[("jira", RefreshFailing), ("confluence", NeedsLogin)]);
        let news = newly_needing(Some(&first), &later);
        assert_eq!(news.len(), 1);
        assert_eq!(news[0].connector, "jira");
        assert_eq!(news[0].state, RefreshFailing);
        // Healed, then broken again: notifies again.
        let healed = report(&[("jira", Ok), ("confluence", Ok)]);
        assert!(newly_needing(Some(&later), &healed).is_empty());
        assert_eq!(newly_needing(Some(&healed), &later).len(), 2);
    }
}
