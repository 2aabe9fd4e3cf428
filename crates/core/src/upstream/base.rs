//! Where a connector's requests go: its catalog template (`{api_base}/ex/jira/{cloud_id}`, or
//! `{site_url}` for a classic API token) filled with the provider's gateway (per region, where
//! the provider has regions) and the connector's site.

use crate::config::{Connector, Provider};
use crate::error::GrantError;
use crate::provider::catalog::AuthMode;
use crate::upstream::site::Sites;
use latch_store::ApiTokenKind;

/// Which of a connector's bases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// The API gateway (`api_base`): OAuth tokens, scoped API tokens.
    Gateway,
    /// The site's own URL (`site_api_base`): classic API tokens, anonymous calls.
    Site,
}

impl Target {
    /// The target of a connector whose API token is of `kind` (gateway when unknown).
    pub(crate) fn of(connector: &Connector, kind: Option<ApiTokenKind>) -> Self {
        let classic = connector.auth == AuthMode::ApiToken && kind == Some(ApiTokenKind::Classic);
        // Anonymous calls too: the gateway refuses them, a site with public access answers.
        let site =
            (classic || connector.auth == AuthMode::None) && connector.spec.site_api_base.is_some();
        if site {
            Self::Site
        } else {
            Self::Gateway
        }
    }
}

/// The provider's gateway for a connector: its region's, when it names one.
pub(crate) fn gateway(connector: &Connector, provider: &Provider) -> Result<String, GrantError> {
    if let Some(region) = connector.region.as_deref() {
        return provider.spec.regions.get(region).cloned().ok_or_else(|| {
            GrantError::Misconfigured {
                message: format!(
                    "connector `{}` names region `{region}`, which provider `{}` does not have",
                    connector.name, provider.name
                ),
                fix: if provider.spec.regions.is_empty() {
                    format!("remove `region` under [connectors.{}]", connector.name)
                } else {
                    format!(
                        "use one of: {}",
                        provider
                            .spec
                            .regions
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                },
            }
        });
    }
    Ok(provider.spec.api_base.clone().unwrap_or_default())
}

/// The base URL of a connector's requests for `target`, resolving its site when the template
/// needs one.
pub(crate) async fn api_base(
    sites: &Sites<'_>,
    connector: &Connector,
    provider: &Provider,
    target: Target,
) -> Result<String, GrantError> {
    let template = match target {
        Target::Site => connector
            .spec
            .site_api_base
            .as_deref()
            .unwrap_or(&connector.spec.api_base),
        Target::Gateway => &connector.spec.api_base,
    };
    let mut base = template.replace(
        "{api_base}",
        gateway(connector, provider)?.trim_end_matches('/'),
    );
    if base.contains("{cloud_id}") {
        let id = sites.cloud_id(connector, provider).await?;
        base = base.replace("{cloud_id}", &id);
    }
    if base.contains("{site_url}") {
        let url = sites.site_url(connector, provider)?;
        base = base.replace("{site_url}", url.trim_end_matches('/'));
    }
    Ok(base.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn a_region_picks_its_gateway() {
        let config = Config::parse(
            std::path::Path::new("/h/latch.toml"),
            "[connectors.ops-eu]\ntype = \"opsgenie\"\nregion = \"eu\"\n\n[connectors.ops]\ntype = \"opsgenie\"\n"
                .to_owned(),
        )
        .unwrap();
        let provider = config.provider("opsgenie").unwrap();
        let eu = config.connector("ops-eu").unwrap();
        let us = config.connector("ops").unwrap();
        assert_eq!(
            gateway(eu, provider).unwrap(),
            "https://api.eu.opsgenie.com"
        );
        assert_eq!(gateway(us, provider).unwrap(), "https://api.opsgenie.com");
        assert!(Config::parse(
            std::path::Path::new("/h/latch.toml"),
            "[connectors.opsgenie]\nregion = \"mars\"\n".to_owned(),
        )
        .is_err());
    }
}
