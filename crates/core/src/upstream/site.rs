//! Sites: what a person wrote (`acme`, `acme.atlassian.net`, a URL, a cloud id) turned into the
//! site's URL and cloud id — for every auth mode, without a browser sign-in.
//!
//! A cloud id comes from, in order: the sign-in's accessible-resources (user connectors), what
//! Latch learnt before (SQLite, with when and where from), and the site's own
//! `/_edge/tenant_info`, which needs no credential (atlassian-wire §0, §5).

use std::time::Duration;

use crate::config::{Connector, Provider};
use crate::error::GrantError;
use crate::grant::store::GrantStore;
use crate::provider::{looks_like_cloud_id, ProviderRules};
use latch_store::{GrantId, SiteIdRow, SiteRow};

/// How long Latch waits for `/_edge/tenant_info`.
const TENANT_INFO_TIMEOUT: Duration = Duration::from_secs(10);

/// A site as a person named it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SiteRef {
    /// A cloud id (works on the gateway; a classic API token needs the URL).
    CloudId(String),
    /// The site's base URL.
    Url(String),
}

/// Reads a site: a cloud id, a URL, a host (`acme.atlassian.net`), or a name filled into the
/// provider's `site_url` template (`https://{site}.atlassian.net`).
pub fn site_ref(text: &str, template: Option<&str>) -> Option<SiteRef> {
    let text = text.trim().trim_end_matches('/');
    if text.is_empty() {
        return None;
    }
    if looks_like_cloud_id(text) {
        return Some(SiteRef::CloudId(text.to_ascii_lowercase()));
    }
    if text.starts_with("https://") || text.starts_with("http://") {
        let url = url::Url::parse(text).ok()?;
        crate::provider::catalog::check_url(text).ok()?;
        // A pasted page URL (`…/wiki/spaces/X`, `…/jira/…`) means its site: keep the origin,
        // unless the template itself has a path (a gateway or a test server).
        let keep_path = template
            .and_then(|t| url::Url::parse(&t.replace("{site}", "site")).ok())
            .is_some_and(|t| !t.path().trim_end_matches('/').is_empty());
        if keep_path {
            return Some(SiteRef::Url(text.to_owned()));
        }
        return Some(SiteRef::Url(url.origin().ascii_serialization()));
    }
    if text.contains('.') {
        let host = text.to_ascii_lowercase();
        return host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
            .then(|| SiteRef::Url(format!("https://{host}")));
    }
    let name_ok = text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    match template {
        Some(t) if name_ok => Some(SiteRef::Url(
            t.replace("{site}", &text.to_ascii_lowercase())
                .trim_end_matches('/')
                .to_owned(),
        )),
        _ => None,
    }
}

/// Whether a site row is the one the person named: by name, URL, host or cloud id.
pub fn site_matches(site: &SiteRow, wanted: &str) -> bool {
    let wanted = wanted.trim().trim_end_matches('/');
    site.name.eq_ignore_ascii_case(wanted)
        || site.cloud_id.eq_ignore_ascii_case(wanted)
        || site.url.trim_end_matches('/').eq_ignore_ascii_case(wanted)
        || url::Url::parse(&site.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .is_some_and(|h| h.eq_ignore_ascii_case(wanted))
}

/// Resolves connectors' sites for one home.
pub(crate) struct Sites<'a> {
    pub(crate) store: &'a GrantStore,
    pub(crate) clients: &'a crate::net::tls::ProviderClients,
}

impl<'a> Sites<'a> {
    /// The sites over a home's grants.
    pub(crate) fn of(grants: &'a crate::grant::Grants) -> Self {
        let ctx = grants.ctx();
        Self {
            store: grants.store(),
            clients: ctx.clients,
        }
    }

    /// The sign-in's sites that fit a user connector (its product's entries).
    fn grant_sites(&self, connector: &Connector) -> Result<Vec<SiteRow>, GrantError> {
        if connector.auth != crate::provider::catalog::AuthMode::User {
            return Ok(Vec::new());
        }
        let rows = self.store.db().sites(&GrantId::user(&connector.provider))?;
        let markers = &connector.spec.site_scope_markers;
        Ok(rows
            .into_iter()
            .filter(|s| markers.is_empty() || markers.iter().any(|m| s.scopes.contains(m.as_str())))
            .collect())
    }

    /// The site a sign-in reached, for a connector that names none: the one site its grant
    /// lists (its real URL, as accessible-resources gave it).
    pub(crate) fn only_signed_in_site(&self, connector: &Connector) -> Option<String> {
        if connector.site.is_some() {
            return None;
        }
        let mut urls: Vec<String> = self
            .grant_sites(connector)
            .ok()?
            .into_iter()
            .map(|s| s.url)
            .collect();
        urls.dedup();
        (urls.len() == 1).then(|| urls.remove(0))
    }

    fn unbound(&self, connector: &Connector, reason: String) -> GrantError {
        let known: Vec<String> = self
            .grant_sites(connector)
            .unwrap_or_default()
            .into_iter()
            .map(|s| s.name)
            .fold(Vec::new(), |mut names, n| {
                if !names.contains(&n) {
                    names.push(n);
                }
                names
            });
        let fix = if known.is_empty() {
            format!(
                "set the site: `latch connector set {} --site NAME` (NAME as in \
                 https://NAME.atlassian.net, a URL, or the cloud id)",
                connector.name
            )
        } else {
            format!(
                "choose one of the sites your sign-in reaches ({}): `latch connector set {} \
                 --site NAME` (no new consent needed)",
                known.join(", "),
                connector.name
            )
        };
        GrantError::SiteUnbound {
            connector: connector.name.clone(),
            reason,
            fix,
        }
    }

    fn named(
        &self,
        connector: &Connector,
        provider: &Provider,
    ) -> Result<(String, SiteRef), GrantError> {
        let Some(site) = connector.site.as_deref() else {
            return Err(self.unbound(connector, "no site is set".to_owned()));
        };
        match site_ref(site, provider.spec.site_url.as_deref()) {
            Some(r) => Ok((site.to_owned(), r)),
            None => Err(self.unbound(
                connector,
                format!("`{site}` is not a site name, host, URL or cloud id"),
            )),
        }
    }

    /// The cloud id of a connector's site, learning it when needed.
    pub(crate) async fn cloud_id(
        &self,
        connector: &Connector,
        provider: &Provider,
    ) -> Result<String, GrantError> {
        let (written, site) = self.named(connector, provider)?;
        let url = match site {
            SiteRef::CloudId(id) => return Ok(id),
            SiteRef::Url(url) => url,
        };
        if let Some(row) = self
            .grant_sites(connector)?
            .iter()
            .find(|s| site_matches(s, &written) || site_matches(s, &url))
        {
            return Ok(row.cloud_id.clone());
        }
        if let Some(known) = self.store.db().site_id(&url)? {
            return Ok(known.cloud_id);
        }
        let profile = provider.rules();
        match self.tenant_info(profile, &provider.name, &url).await {
            Ok(id) => {
                self.store.db().site_id_put(&SiteIdRow {
                    site_url: url,
                    cloud_id: id.clone(),
                    learnt_at: self.store.now(),
                    source: "tenant_info".to_owned(),
                })?;
                Ok(id)
            }
            Err(why) => Err(self.unbound(
                connector,
                format!("cannot learn the cloud id of {url}: {why}"),
            )),
        }
    }

    /// The base URL of a connector's site (what a classic API token needs).
    pub(crate) fn site_url(
        &self,
        connector: &Connector,
        provider: &Provider,
    ) -> Result<String, GrantError> {
        let (_, site) = self.named(connector, provider)?;
        match site {
            SiteRef::Url(url) => Ok(url),
            SiteRef::CloudId(id) => {
                let from_grant = self
                    .grant_sites(connector)?
                    .into_iter()
                    .find(|s| s.cloud_id.eq_ignore_ascii_case(&id))
                    .map(|s| s.url);
                let learnt = self
                    .store
                    .db()
                    .site_ids()?
                    .into_iter()
                    .find(|s| s.cloud_id.eq_ignore_ascii_case(&id))
                    .map(|s| s.site_url);
                from_grant.or(learnt).ok_or_else(|| {
                    self.unbound(
                        connector,
                        format!(
                            "site `{id}` is a cloud id, but this credential works only on the \
                             site's own URL"
                        ),
                    )
                })
            }
        }
    }

    /// Remembers the sites a sign-in reaches, so that other auth modes find them by name.
    pub(crate) fn remember(
        &self,
        rows: &[SiteRow],
        profile: &dyn ProviderRules,
        template: Option<&str>,
    ) {
        let now = self.store.now();
        for row in rows {
            let url = site_ref(&row.url, template)
                .and_then(|r| match r {
                    SiteRef::Url(u) => Some(u),
                    SiteRef::CloudId(_) => None,
                })
                .unwrap_or_else(|| row.url.clone());
            if url.is_empty() || !profile.sites_have_cloud_ids() {
                continue;
            }
            let _ = self.store.db().site_id_put(&SiteIdRow {
                site_url: url,
                cloud_id: row.cloud_id.clone(),
                learnt_at: now,
                source: "accessible_resources".to_owned(),
            });
        }
    }

    async fn tenant_info(
        &self,
        profile: &dyn ProviderRules,
        provider: &str,
        site_url: &str,
    ) -> Result<String, String> {
        let Some(url) = profile.tenant_info_url(site_url) else {
            return Err("this provider has no tenant_info".to_owned());
        };
        let response = self
            .clients
            .for_provider(provider)
            .get(&url)
            .header("Accept", "application/json")
            .timeout(TENANT_INFO_TIMEOUT)
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() {
                    "the site cannot be reached (is the name right?)".to_owned()
                } else {
                    "the site did not answer".to_owned()
                }
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!(
                "{url} answered HTTP {} (is the site name right?)",
                status.as_u16()
            ));
        }
        let body: serde_json::Value = response
            .json()
            .await
            .map_err(|_| "the site's tenant_info is not JSON".to_owned())?;
        profile
            .cloud_id(&body)
            .ok_or_else(|| "the site's tenant_info has no cloudId".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: Option<&str> = Some("https://{site}.atlassian.net");

    #[test]
    fn every_way_of_naming_a_site_reads_the_same() {
        let acme = Some(SiteRef::Url("https://acme.atlassian.net".into()));
        assert_eq!(site_ref("acme", TEMPLATE), acme);
        assert_eq!(site_ref("ACME", TEMPLATE), acme);
        assert_eq!(site_ref("acme.atlassian.net", TEMPLATE), acme);
        assert_eq!(site_ref("https://acme.atlassian.net/", TEMPLATE), acme);
        assert_eq!(
            site_ref("https://acme.atlassian.net/wiki/spaces/ENG", TEMPLATE),
            acme
        );
        assert_eq!(
            site_ref("11111111-2222-3333-4444-555555555555", TEMPLATE),
            Some(SiteRef::CloudId(
                "11111111-2222-3333-4444-555555555555".into()
            ))
        );
        // A test or gateway template with a path keeps it.
        assert_eq!(
            site_ref("acme", Some("http://127.0.0.1:9/__site/{site}")),
            Some(SiteRef::Url("http://127.0.0.1:9/__site/acme".into()))
        );
        assert_eq!(
            site_ref(
                "http://127.0.0.1:9/__site/acme/",
                Some("http://127.0.0.1:9/__site/{site}")
            ),
            Some(SiteRef::Url("http://127.0.0.1:9/__site/acme".into()))
        );
        assert_eq!(site_ref("acme", None), None);
        assert_eq!(site_ref("a/b", TEMPLATE), None);
        assert_eq!(site_ref("http://evil.example", TEMPLATE), None);
    }

    #[test]
    fn sites_match_by_name_url_host_or_id() {
        let row = SiteRow {
            cloud_id: "c1".into(),
            name: "acme".into(),
            url: "https://acme.atlassian.net".into(),
            scopes: String::new(),
        };
        for wanted in [
            "acme",
            "ACME",
            "c1",
            "https://acme.atlassian.net/",
            "acme.atlassian.net",
        ] {
            assert!(site_matches(&row, wanted), "{wanted}");
        }
        assert!(!site_matches(&row, "beta"));
    }
}
