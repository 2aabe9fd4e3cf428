//! Local keys: creating one (shown once, only its hash kept), listing and revoking them.

use crate::app::App;
use crate::error::{Error, Result};
use crate::local_key::{KeyPolicy, LocalKey};
use crate::provider::catalog::check_name;
use crate::secret::Secret;

/// The local keys of a home.
pub struct Keys<'a> {
    pub(crate) app: &'a App,
}

impl Keys<'_> {
    /// Creates a local key; the key itself is returned once and only its hash is stored. An
    /// empty list of path patterns means any path (as `--path` given no times).
    pub fn create(
        &self,
        name: &str,
        mut policy: KeyPolicy,
        ttl: Option<time::Duration>,
    ) -> Result<(Secret, LocalKey)> {
        let config = self.app.config();
        policy.paths = policy.paths.filter(|p| !p.is_empty());
        let connectors = &policy.connectors;
        check_name(name).map_err(|message| Error::Invalid {
            message,
            fix: "choose another key name".to_owned(),
        })?;
        if connectors.is_empty() {
            return Err(Error::Invalid {
                message: "a key must name at least one connector".to_owned(),
                fix: "add --connector NAME (repeat it for several)".to_owned(),
            });
        }
        crate::local_key::check_patterns(policy.paths.as_deref().unwrap_or_default()).map_err(
            |message| Error::Invalid {
                message,
                fix: "repeat --path for several patterns; `*` matches any run of characters, `/` \
                  included"
                    .to_owned(),
            },
        )?;
        for c in connectors {
            if config.connector(c).is_none() {
                return Err(self.app.config().unknown_connector(c));
            }
        }
        if self
            .app
            .db()
            .local_keys()
            .map_err(|e| self.app.store_err(e))?
            .iter()
            // A revoked key's name is free again; its audit rows stay its own (by id).
            .any(|k| k.name == name && k.revoked_at.is_none())
        {
            return Err(Error::Exists(format!(
                "a local key named `{name}` exists; revoke it (`latch keys revoke {name}`) or pick another name"
            )));
        }
        let key = crate::local_key::generate();
        let mut row = latch_store::LocalKeyRow {
            id: 0,
            name: name.to_owned(),
            key_hash: crate::local_key::hash(key.expose()),
            policy: serde_json::to_string(&policy).map_err(|e| Error::Home(e.to_string()))?,
            created_at: self.app.now(),
            expires_at: ttl.map(crate::local_key::expiry_in),
            revoked_at: None,
        };
        row.id = self
            .app
            .db()
            .local_key_insert(&row)
            .map_err(|e| self.app.store_err(e))?;
        Ok((key, crate::local_key::from_row(row)))
    }

    /// Every local key's policy (never the keys).
    pub fn list(&self) -> Result<Vec<LocalKey>> {
        let rows = self
            .app
            .db()
            .local_keys()
            .map_err(|e| self.app.store_err(e))?;
        Ok(rows.into_iter().map(crate::local_key::from_row).collect())
    }

    /// Revokes a local key by name.
    pub fn revoke(&self, name: &str) -> Result<()> {
        let revoked = self
            .app
            .db()
            .local_key_revoke(name, self.app.now())
            .map_err(|e| self.app.store_err(e))?;
        if revoked {
            Ok(())
        } else {
            Err(Error::Invalid {
                message: format!("there is no live local key named `{name}`"),
                fix: "see `latch keys list`".to_owned(),
            })
        }
    }

    /// A verifier of presented local keys over this home's database.
    pub fn verifier(&self) -> crate::local_key::KeyVerifier {
        crate::local_key::KeyVerifier::new(&self.app.home.database(), None)
    }
}
