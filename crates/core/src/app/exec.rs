//! What `latch exec` puts in a child's environment beyond `LATCH_PROXY_URL`, `LATCH_KEY` and
//! `LATCH_<CONNECTOR>_URL`: the variable names tools already read, so that they reach Latch's
//! private proxy with its key and never see an upstream token.
//!
//! Templates: `{proxy}` (the proxy's URL), `{key}` (the child's key), `{url:NAME}` (a
//! connector's base through the proxy), and in recipes `{url:@jira}` / `{url:@confluence}`: the
//! first allowed connector of that product (Cloud or Data Center). Tools that take a loopback
//! URL for Server/Data Center (mcp-atlassian does) get Confluence's site-relative base —
//! `/wiki` on Cloud — so their Data Center paths land where Cloud serves them.

use crate::config::Connector;
use crate::secret::Secret;

/// A named set of variables for one tool.
pub struct Recipe {
    /// `--for NAME`.
    pub name: &'static str,
    /// What it is for.
    pub about: &'static str,
    /// Groups of `(variable, template)`: a group is set only when all its templates resolve
    /// (no Confluence connector: no `CONFLUENCE_*`).
    pub groups: &'static [&'static [(&'static str, &'static str)]],
}

/// The recipes `latch exec --for` knows.
pub const RECIPES: &[Recipe] = &[
    Recipe {
        name: "mcp-atlassian",
        about: "the mcp-atlassian MCP server (Server/Data Center mode, personal-token auth)",
        groups: &[
            &[
                ("JIRA_URL", "{url:@jira}"),
                ("JIRA_PERSONAL_TOKEN", "{key}"),
            ],
            &[
                ("CONFLUENCE_URL", "{url:@confluence}"),
                ("CONFLUENCE_PERSONAL_TOKEN", "{key}"),
            ],
        ],
    },
    Recipe {
        name: "atlassian-python-api",
        about: "scripts using atlassian-python-api: Jira(url=os.environ['JIRA_URL'], token=os.environ['JIRA_TOKEN'])",
        groups: &[
            &[("JIRA_URL", "{url:@jira}"), ("JIRA_TOKEN", "{key}")],
            &[
                ("CONFLUENCE_URL", "{url:@confluence}"),
                ("CONFLUENCE_TOKEN", "{key}"),
            ],
        ],
    },
];

/// A recipe by name.
pub fn recipe(name: &str) -> Option<&'static Recipe> {
    RECIPES.iter().find(|r| r.name == name)
}

/// What templates are filled from.
pub struct ExecContext<'a> {
    /// `http://127.0.0.1:PORT`.
    pub proxy_url: &'a str,
    /// The child's key.
    pub key: &'a Secret,
    /// The connectors the child may reach.
    pub connectors: &'a [Connector],
}

/// Why a template could not be filled.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    /// `{something}` Latch does not know.
    #[error("`{{{0}}}` is not a template: use {{proxy}}, {{key}} or {{url:CONNECTOR}}")]
    Unknown(String),
    /// `{url:NAME}` for a connector the child may not reach.
    #[error("`{{url:{0}}}`: no such connector among those the command may reach")]
    NoConnector(String),
    /// A `{` without `}`.
    #[error("an unclosed `{{` in `{0}`")]
    Unclosed(String),
}

/// The base URL of a product's first allowed connector (`@jira`, `@confluence`).
fn by_product(product: &str, ctx: &ExecContext<'_>) -> Option<String> {
    let kinds: &[&str] = match product {
        "jira" => &["jira", "jira-dc"],
        "confluence" => &["confluence", "confluence-dc"],
        _ => return None,
    };
    let c = ctx
        .connectors
        .iter()
        .find(|c| kinds.contains(&c.kind.as_str()))?;
    // Cloud Confluence lives under /wiki on the gateway; Data Center's context path is in its
    // base URL already.
    let suffix = if c.kind == "confluence" { "/wiki" } else { "" };
    Some(format!("{}/{}{suffix}", ctx.proxy_url, c.name))
}

/// Fills a template. `Ok(None)`: it names a product no allowed connector has.
pub fn expand(template: &str, ctx: &ExecContext<'_>) -> Result<Option<Secret>, TemplateError> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end = after
            .find('}')
            .ok_or_else(|| TemplateError::Unclosed(template.to_owned()))?;
        let name = &after[..end];
        match name {
            "proxy" => out.push_str(ctx.proxy_url),
            "key" => out.push_str(ctx.key.expose()),
            _ => match name.strip_prefix("url:") {
                Some(product) if product.starts_with('@') => match by_product(&product[1..], ctx) {
                    Some(url) => out.push_str(&url),
                    None => return Ok(None),
                },
                Some(connector) => {
                    if !ctx.connectors.iter().any(|c| c.name == connector) {
                        return Err(TemplateError::NoConnector(connector.to_owned()));
                    }
                    out.push_str(&format!("{}/{connector}", ctx.proxy_url));
                }
                None => return Err(TemplateError::Unknown(name.to_owned())),
            },
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(Some(Secret::new(out)))
}

/// A recipe's variables, filled.
pub fn recipe_env(
    recipe: &Recipe,
    ctx: &ExecContext<'_>,
) -> Result<Vec<(String, Secret)>, TemplateError> {
    let mut vars = Vec::new();
    'group: for group in recipe.groups {
        let mut filled = Vec::new();
        for (name, template) in *group {
            match expand(template, ctx)? {
                Some(value) => filled.push(((*name).to_owned(), value)),
                None => continue 'group,
            }
        }
        vars.extend(filled);
    }
    Ok(vars)
}

/// Why an exec cannot be planned: bad input from the person.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// A connector that is not configured.
    #[error(transparent)]
    Unknown(#[from] crate::Error),
    /// A recipe, template or variable name that does not work.
    #[error("{0}")]
    Usage(String),
}

/// How long `--intercept` waits to learn a site's cloud id before the command starts.
const CLOUD_ID_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// What `latch exec` gives a child: which connectors it may reach, read-only or not, and the
/// variables it gets once the private proxy's URL and the child's key are known.
pub struct ExecPlan {
    connectors: Vec<Connector>,
    read_only: bool,
    recipe: Option<&'static Recipe>,
    templates: Vec<(String, String)>,
}

impl ExecPlan {
    /// Checks what the person asked for: connectors (default: every configured one), a recipe
    /// (`--for`), templates (`--env NAME=TEMPLATE`).
    pub fn new(
        app: &crate::app::App,
        connectors: &[String],
        read_only: bool,
        recipe: Option<&str>,
        env: &[String],
    ) -> Result<Self, ExecError> {
        let config = app.config();
        let connectors = if connectors.is_empty() {
            config.connectors.clone()
        } else {
            connectors
                .iter()
                .map(|c| {
                    config
                        .connector(c)
                        .cloned()
                        .ok_or_else(|| config.unknown_connector(c))
                })
                .collect::<Result<_, _>>()?
        };
        let recipe = match recipe {
            Some(name) => Some(self::recipe(name).ok_or_else(|| {
                ExecError::Usage(format!(
                    "no recipe `{name}`: use one of {}, or --env NAME=TEMPLATE",
                    RECIPES
                        .iter()
                        .map(|r| r.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?),
            None => None,
        };
        let mut templates = Vec::new();
        for pair in env {
            let (name, template) = pair.split_once('=').ok_or_else(|| {
                ExecError::Usage(format!("`--env {pair}`: write it as NAME=TEMPLATE"))
            })?;
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(ExecError::Usage(format!(
                    "`{name}` is not a variable name (letters, digits and _)"
                )));
            }
            templates.push((name.to_owned(), template.to_owned()));
        }
        Ok(Self {
            connectors,
            read_only,
            recipe,
            templates,
        })
    }

    /// The connectors the child may reach.
    pub fn connectors(&self) -> &[Connector] {
        &self.connectors
    }

    /// `--intercept`: the host map of the connectors the child may reach, with the cloud ids
    /// their gateway paths carry (learnt now; one that cannot be learnt matches any id).
    pub async fn intercept_map(
        &self,
        app: &crate::app::App,
    ) -> Result<crate::app::intercept::InterceptMap, ExecError> {
        let mut map = crate::app::intercept::InterceptMap::build(&app.config(), &self.connectors)
            .map_err(|e| ExecError::Usage(e.to_string()))?;
        let credentials = app.credentials();
        let config = app.config();
        for connector in &self.connectors {
            if let Some(url) = credentials.only_signed_in_site(connector) {
                map.add_signed_in_site(&config, connector, &url);
            }
        }
        for name in map.needs_cloud_id() {
            let Some(connector) = self.connectors.iter().find(|c| c.name == name) else {
                continue;
            };
            // Usually known already (a sign-in lists it, or an earlier call learnt it); a site
            // that does not answer soon must not hold the command up.
            let learnt = tokio::time::timeout(CLOUD_ID_WAIT, credentials.cloud_id(connector)).await;
            if let Ok(Ok(id)) = learnt {
                map.set_cloud_id(&name, &id);
            }
        }
        Ok(map)
    }

    /// The policy of the child's key.
    pub fn policy(&self) -> crate::local_key::KeyPolicy {
        crate::local_key::KeyPolicy {
            connectors: self.connectors.iter().map(|c| c.name.clone()).collect(),
            read_only: self.read_only,
            paths: None,
            mcp_tools: None,
        }
    }

    /// Every variable the child gets: `LATCH_PROXY_URL`, `LATCH_KEY`, `LATCH_<CONNECTOR>_URL`,
    /// then the recipe's and the templates'.
    pub fn env(&self, proxy_url: &str, key: &Secret) -> Result<Vec<(String, Secret)>, ExecError> {
        let mut vars = vec![
            (
                "LATCH_PROXY_URL".to_owned(),
                Secret::new(proxy_url.to_owned()),
            ),
            ("LATCH_KEY".to_owned(), key.clone()),
        ];
        for c in &self.connectors {
            vars.push((
                crate::provider::catalog::exec_variable(&c.name),
                Secret::new(format!("{proxy_url}/{}", c.name)),
            ));
        }
        let ctx = ExecContext {
            proxy_url,
            key,
            connectors: &self.connectors,
        };
        if let Some(recipe) = self.recipe {
            let filled = recipe_env(recipe, &ctx).map_err(|e| ExecError::Usage(e.to_string()))?;
            if filled.is_empty() {
                return Err(ExecError::Usage(format!(
                    "recipe `{}` needs a Jira or Confluence connector among those the command \
                     may reach",
                    recipe.name
                )));
            }
            vars.extend(filled);
        }
        for (name, template) in &self.templates {
            let value = expand(template, &ctx)
                .map_err(|e| ExecError::Usage(format!("--env {name}: {e}")))?
                .ok_or_else(|| {
                    ExecError::Usage(format!(
                        "--env {name}: no connector of that product among those the command \
                         may reach"
                    ))
                })?;
            vars.push((name.clone(), value));
        }
        Ok(vars)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::catalog::Catalog;

    fn connector(name: &str, kind: &str) -> Connector {
        let catalog = Catalog::builtin();
        let spec = catalog.connector(kind).unwrap().clone();
        Connector {
            name: name.to_owned(),
            kind: kind.to_owned(),
            provider: spec.provider.clone(),
            auth: spec.auth_modes[0],
            spec,
            site: None,
            account_id: None,
            oauth1: false,
            email: None,
            client_id: None,
            scopes: None,
            audience: None,
            token: None,
            username: None,
            scope_set: crate::config::ScopeSet::Classic,
            region: None,
            intercept_hosts: Vec::new(),
        }
    }

    #[test]
    fn templates_and_recipes_fill_from_the_allowed_connectors() {
        let key = Secret::new("lk_child".to_owned());
        let connectors = [connector("work", "jira"), connector("wiki", "confluence")];
        let ctx = ExecContext {
            proxy_url: "http://127.0.0.1:9",
            key: &key,
            connectors: &connectors,
        };
        let got = |t: &str| expand(t, &ctx).map(|v| v.map(|s| s.expose().to_owned()));
        assert_eq!(
            got("{url:work}/rest").unwrap().unwrap(),
            "http://127.0.0.1:9/work/rest"
        );
        assert_eq!(got("Bearer {key}").unwrap().unwrap(), "Bearer lk_child");
        assert_eq!(
            got("{url:@confluence}").unwrap().unwrap(),
            "http://127.0.0.1:9/wiki/wiki"
        );
        assert_eq!(
            got("{url:nope}"),
            Err(TemplateError::NoConnector("nope".into()))
        );
        assert_eq!(
            got("{secret}"),
            Err(TemplateError::Unknown("secret".into()))
        );
        assert!(matches!(got("{key"), Err(TemplateError::Unclosed(_))));

        let env = recipe_env(recipe("mcp-atlassian").unwrap(), &ctx).unwrap();
        let names: Vec<&str> = env.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "JIRA_URL",
                "JIRA_PERSONAL_TOKEN",
                "CONFLUENCE_URL",
                "CONFLUENCE_PERSONAL_TOKEN"
            ]
        );
        // Jira only: the Confluence group is left out.
        let jira_only = [connector("jira", "jira")];
        let ctx = ExecContext {
            connectors: &jira_only,
            ..ctx
        };
        let env = recipe_env(recipe("mcp-atlassian").unwrap(), &ctx).unwrap();
        assert_eq!(env.len(), 2);
    }
}
