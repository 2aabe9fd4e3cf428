//! The use-case API every face (CLI, desktop app, proxy, and later the MCP relay) calls, by
//! noun: [`App::providers`], [`App::connectors`], [`App::keys`], sign-in ([`sign_in`]),
//! [`exec`], [`git_credential`], [`App::audit`], status and doctor. One [`App`] per home folder;
//! its configuration can be swapped (an edit, or a reload after another face changed
//! latch.toml) and the credentials over it follow.

pub mod audit;
pub mod connectors;
pub mod exec;
pub mod git_credential;
pub mod intercept;
pub mod keys;
pub mod mcp;
pub mod providers;
pub mod serving;
pub mod sign_in;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use time::OffsetDateTime;

use crate::clock::{Clock, SystemClock};
use crate::config::home::Home;
use crate::config::Config;
use crate::credential::Credentials;
use crate::error::{Error, Result};
use crate::grant::Grants;
use crate::health::status::StatusReport;
use crate::ports::SecretStore;

pub use connectors::{
    AddConnector, ConnectorAdded, ConnectorChange, ConnectorChanged, ConnectorPreview,
    ConnectorRemoved, Connectors, CredentialRemoved, CredentialStored,
};
pub use keys::Keys;
pub use providers::{
    AddProvider, EndpointOverrides, LinkKeySource, LinkPublicKey, LinkSetup, ProviderAdded,
    Providers,
};

/// One Latch home: configuration, metadata database and keychain.
pub struct App {
    home: Home,
    home_id: String,
    store: Arc<Mutex<latch_store::Store>>,
    secrets: Arc<dyn SecretStore>,
    clock: Arc<dyn Clock>,
    /// The configuration and the credentials over it, swapped together.
    current: RwLock<Current>,
}

#[derive(Clone)]
struct Current {
    config: Arc<Config>,
    credentials: Arc<Credentials>,
}

impl App {
    /// Opens a home folder, creating the database on first use.
    pub fn open(home: Home, secrets: Arc<dyn SecretStore>) -> Result<Self> {
        Self::open_with_clock(home, secrets, Arc::new(SystemClock))
    }

    /// Opens a home folder with the secret store its latch.toml chooses (`[keychain] store`):
    /// the configuration is read once, and `choose` is given it.
    pub fn open_choosing(
        home: Home,
        choose: impl FnOnce(
            &Home,
            &Config,
        )
            -> std::result::Result<Arc<dyn SecretStore>, crate::ports::SecretStoreError>,
    ) -> Result<Self> {
        home.ensure()?;
        let config = Config::load(home.config_file())?;
        let secrets = choose(&home, &config)?;
        Self::open_loaded(home, config, secrets, Arc::new(SystemClock))
    }

    /// Opens a home folder with a clock of the caller's (tests).
    pub fn open_with_clock(
        home: Home,
        secrets: Arc<dyn SecretStore>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        home.ensure()?;
        let config = Config::load(home.config_file())?;
        Self::open_loaded(home, config, secrets, clock)
    }

    fn open_loaded(
        home: Home,
        mut config: Config,
        secrets: Arc<dyn SecretStore>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        let db = home.database();
        let store = latch_store::Store::open(&db).map_err(|source| Error::Store {
            path: db.clone(),
            source,
        })?;
        crate::upstream::discovery::apply_cached(&mut config, &store);
        crate::upstream::mcp_auth::apply_registered(&mut config, &store);
        let home_id = store
            .meta_init("home_id", &random_hex(8))
            .map_err(|source| Error::Store { path: db, source })?;
        let store = Arc::new(Mutex::new(store));
        let config = Arc::new(config);
        let grants = Grants::new(
            home_id.clone(),
            &home.database(),
            home.locks_dir(),
            Arc::clone(&config),
            Arc::clone(&store),
            Arc::clone(&secrets),
            Arc::clone(&clock),
        );
        Ok(Self {
            current: RwLock::new(Current {
                config,
                credentials: Arc::new(Credentials::new(Arc::new(grants))),
            }),
            home,
            home_id,
            store,
            secrets,
            clock,
        })
    }

    fn current(&self) -> Current {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The configuration now.
    pub fn config(&self) -> Arc<Config> {
        self.current().config
    }

    /// The credentials of this home's connectors under the configuration now: one per
    /// configuration, sharing this process's token cache and refresh locks.
    pub fn credentials(&self) -> Arc<Credentials> {
        self.current().credentials
    }

    /// Serves `next` from now on (after an edit of latch.toml by this face).
    pub(crate) fn replace_config(&self, next: Config) {
        let next = Arc::new(next);
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        let grants = current.credentials.grants().reconfigured(Arc::clone(&next));
        *current = Current {
            config: next,
            credentials: Arc::new(Credentials::new(Arc::new(grants))),
        };
    }

    /// latch.toml was just written with `next`: this face uses it, and the process serving the
    /// home (another one) is asked to look now rather than at its next tick.
    pub(crate) fn written(&self, next: Config) {
        self.replace_config(next);
        serving::nudge(&self.home);
    }

    /// Reads latch.toml again (another face or a person changed it); the running configuration
    /// stays when the file does not open.
    pub fn reload(&self) -> Result<Arc<Config>> {
        let mut config = Config::load(self.home.config_file())?;
        if config.secret_store != self.config().secret_store {
            return Err(Error::Invalid {
                message: "`[keychain] store` changed: the secrets are now kept elsewhere"
                    .to_owned(),
                fix: "restart `latch serve` or the app to use the new store".to_owned(),
            });
        }
        crate::upstream::discovery::apply_cached(&mut config, &self.db());
        crate::upstream::mcp_auth::apply_registered(&mut config, &self.db());
        self.replace_config(config);
        Ok(self.config())
    }

    /// The current time by this home's clock.
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// The home folder.
    pub fn home(&self) -> &Home {
        &self.home
    }

    /// This home's id; it prefixes every keychain item so that two homes never share one.
    pub fn home_id(&self) -> &str {
        &self.home_id
    }

    /// The providers.
    pub fn providers(&self) -> Providers<'_> {
        Providers { app: self }
    }

    /// The connectors.
    pub fn connectors(&self) -> Connectors<'_> {
        Connectors { app: self }
    }

    /// The local keys.
    pub fn keys(&self) -> Keys<'_> {
        Keys { app: self }
    }

    /// Registers a manifest file in latch.toml after checking it; returns the connector types
    /// it adds.
    pub fn add_manifest(&self, path: &Path) -> Result<Vec<String>> {
        let absolute = std::path::absolute(path).map_err(|source| Error::Write {
            path: path.to_owned(),
            source,
        })?;
        let config = self.config();
        let before: Vec<String> = config
            .catalog
            .connectors()
            .map(|(n, _)| n.clone())
            .collect();
        let mut edit = config.edit()?;
        edit.add_manifest(&absolute.to_string_lossy());
        let next = edit.validate()?;
        edit.write()?;
        self.written(next);
        Ok(self
            .config()
            .catalog
            .connectors()
            .map(|(n, _)| n.clone())
            .filter(|n| !before.contains(n))
            .collect())
    }

    /// The status of every provider and connector. Reads latch.toml, SQLite, whether the
    /// keychain is locked (no item is read) and who serves the home; never the network, so it
    /// works when the keychain and the network are down.
    pub fn status(&self) -> Result<StatusReport> {
        let config = self.config();
        let db = self.db();
        crate::health::status::build(crate::health::status::StatusSource {
            config: &config,
            db: &db,
            home: crate::health::status::HomeStatus {
                id: self.home_id.clone(),
                config_file: self.home.config_file().display().to_string(),
                database: self.home.database().display().to_string(),
                secret_store: self.secrets.describe(),
                keychain: self.secrets.state(),
                serving: serving::serving(&self.home),
            },
            now: self.now(),
        })
        .map_err(|e| self.store_err(e))
    }

    /// Unlocks the OS keychain with its password (`latch keychain unlock`).
    pub fn unlock_keychain(&self, password: &crate::secret::Secret) -> Result<()> {
        self.secrets.unlock(password).map_err(Error::from)
    }

    /// Runs every health check (`latch doctor`).
    pub async fn doctor(
        &self,
        options: crate::health::doctor::DoctorOptions,
    ) -> Result<crate::health::doctor::DoctorReport> {
        let credentials = self.credentials();
        crate::health::doctor::run(&credentials, || self.status(), options).await
    }

    /// A shared handle on the metadata store (the proxy's audit writer falls back to it).
    pub fn store_handle(&self) -> Arc<Mutex<latch_store::Store>> {
        Arc::clone(&self.store)
    }

    /// The metadata store. Hold the guard briefly: other threads of this process wait on it.
    pub(crate) fn db(&self) -> MutexGuard<'_, latch_store::Store> {
        // A panic while holding the lock cannot leave SQLite inconsistent (statements are
        // atomic), so a poisoned lock is still usable.
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The error for a failed database call on this home.
    pub(crate) fn store_err(&self, source: latch_store::StoreError) -> Error {
        Error::Store {
            path: self.home.database(),
            source,
        }
    }
}

/// `bytes` random bytes as lower-case hex, from the OS generator.
pub fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::health::status::{ClientSecretState, ConnectorState};
    use crate::ports::MemorySecretStore;
    use crate::secret::Secret;
    use latch_store::GrantId;
    use latch_store::{GrantKind, GrantState};

    const FIXTURE_SECRET: &str = "fixture-client-secret-Zq81xVb0";

    fn open(dir: &Path, secrets: Arc<MemorySecretStore>) -> App {
        App::open(Home::at(dir), secrets).unwrap()
    }

    fn add_atlassian(latch: &App) {
        latch
            .providers()
            .add(
                AddProvider {
                    name: "atlassian".into(),
                    client_id: Some("client-123".into()),
                    ..AddProvider::default()
                },
                Some(Secret::new(FIXTURE_SECRET.into())),
            )
            .unwrap();
    }

    fn connector(name: &str) -> AddConnector {
        AddConnector {
            name: name.into(),
            ..AddConnector::default()
        }
    }

    #[test]
    fn provider_then_connectors_merge_with_attribution() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = Arc::new(MemorySecretStore::default());
        let latch = open(dir.path(), secrets.clone());
        add_atlassian(&latch);
        assert_eq!(secrets.len(), 1);
        let jira = latch.connectors().add(connector("jira")).unwrap();
        assert_eq!(jira.diff.added.len(), 5);
        let conf = latch.connectors().add(connector("confluence")).unwrap();
        assert_eq!(conf.diff.added.len(), 4);
        assert_eq!(conf.diff.shared.len(), 2);

        // A fresh process sees the same thing from the files alone.
        let latch = open(dir.path(), secrets);
        let status = latch.status().unwrap();
        let provider = &status.providers[0];
        assert_eq!(provider.client_secret, ClientSecretState::Stored);
        let me = provider
            .requested_scopes
            .iter()
            .find(|r| r.scope.as_str() == "read:me")
            .unwrap();
        assert_eq!(me.requested_by, ["jira", "confluence"]);
        assert!(status
            .connectors
            .iter()
            .all(|c| c.state == ConnectorState::NotSignedIn));
        let text = std::fs::read_to_string(dir.path().join("latch.toml")).unwrap();
        assert!(!text.contains(FIXTURE_SECRET));
    }

    #[test]
    fn keychain_failure_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let latch = open(dir.path(), Arc::new(MemorySecretStore::unavailable()));
        let err = latch
            .providers()
            .add(
                AddProvider {
                    name: "atlassian".into(),
                    client_id: Some("c".into()),
                    ..AddProvider::default()
                },
                Some(Secret::new("s".into())),
            )
            .unwrap_err();
        assert_eq!(err.code().as_str(), "keychain_unavailable");
        assert!(!dir.path().join("latch.toml").exists());
        assert!(latch.status().unwrap().providers.is_empty());
    }

    #[test]
    fn confidential_provider_requires_a_secret() {
        let dir = tempfile::tempdir().unwrap();
        let latch = open(dir.path(), Arc::new(MemorySecretStore::default()));
        let err = latch
            .providers()
            .add(
                AddProvider {
                    name: "atlassian".into(),
                    client_id: Some("c".into()),
                    ..AddProvider::default()
                },
                None,
            )
            .unwrap_err();
        assert_eq!(err.code().as_str(), "invalid_request");
    }

    #[test]
    fn unknown_connector_and_missing_provider_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let latch = open(dir.path(), Arc::new(MemorySecretStore::default()));
        let err = latch.connectors().add(connector("jiraa")).unwrap_err();
        assert_eq!(err.code().as_str(), "unknown_connector");
        assert!(err.to_string().contains("jira"), "{err}");
        let err = latch.connectors().add(connector("jira")).unwrap_err();
        assert!(
            err.to_string().contains("latch provider add atlassian"),
            "{err}"
        );
        // Opsgenie needs no OAuth provider.
        latch.connectors().add(connector("opsgenie")).unwrap();
    }

    #[test]
    fn remove_shrinks_the_request_to_what_others_need() {
        let dir = tempfile::tempdir().unwrap();
        let latch = open(dir.path(), Arc::new(MemorySecretStore::default()));
        add_atlassian(&latch);
        latch.connectors().add(connector("jira")).unwrap();
        latch.connectors().add(connector("confluence")).unwrap();
        let removed = latch.connectors().remove("confluence").unwrap();
        assert_eq!(removed.no_longer_requested.len(), 4);
        assert!(!removed
            .no_longer_requested
            .iter()
            .any(|s| s.as_str() == "read:me"));
    }

    #[test]
    fn step_up_is_reported_when_the_grant_lacks_scopes() {
        let dir = tempfile::tempdir().unwrap();
        let latch = open(dir.path(), Arc::new(MemorySecretStore::default()));
        add_atlassian(&latch);
        latch.connectors().add(connector("jira")).unwrap();
        latch
            .db()
            .grant_put(&latch_store::GrantRow {
                id: GrantId::user("atlassian"),
                kind: GrantKind::User,
                state: GrantState::Ok,
                granted_scopes:
                    "read:me read:jira-user read:jira-work write:jira-work offline_access".into(),
                ..Default::default()
            })
            .unwrap();
        let added = latch.connectors().add(connector("confluence")).unwrap();
        assert!(added.needs_step_up);
        let status = latch.status().unwrap();
        let conf = status
            .connectors
            .iter()
            .find(|c| c.name == "confluence")
            .unwrap();
        assert_eq!(conf.state, ConnectorState::NeedsStepUp);
        assert_eq!(conf.scopes.missing.len(), 4);
        let jira = status.connectors.iter().find(|c| c.name == "jira").unwrap();
        assert_eq!(jira.state, ConnectorState::SiteUnbound);
    }

    /// No secret may reach SQLite: populate every table through the use cases and the
    /// repositories, then scan every value and the raw files (database and WAL).
    #[test]
    fn no_fixture_secret_reaches_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let latch = open(dir.path(), Arc::new(MemorySecretStore::default()));
        add_atlassian(&latch);
        latch.connectors().add(connector("jira")).unwrap();
        latch
            .providers()
            .set_secret("atlassian", Secret::new(format!("{FIXTURE_SECRET}-2")))
            .unwrap();
        let local_key = "latch_fixture_local_key_9f8e7d";
        latch
            .db()
            .local_key_insert(&latch_store::LocalKeyRow {
                id: 0,
                name: "ci".into(),
                // Stands for SHA-256 of `local_key`: only the hash is ever stored.
                key_hash: vec![0xab; 32],
                policy: r#"{"connectors":["jira"],"read_only":true,"paths":null}"#.into(),
                created_at: crate::clock::now(),
                expires_at: None,
                revoked_at: None,
            })
            .unwrap();
        latch
            .db()
            .grant_put(&latch_store::GrantRow {
                id: GrantId::user("atlassian"),
                kind: GrantKind::User,
                state: GrantState::Ok,
                granted_scopes: "read:me".into(),
                ..Default::default()
            })
            .unwrap();
        let values = latch.db().dump_values().unwrap();
        assert!(!values.is_empty());
        for (table, column, bytes) in values {
            let text = String::from_utf8_lossy(&bytes);
            for secret in [FIXTURE_SECRET, local_key] {
                assert!(!text.contains(secret), "{table}.{column} holds a secret");
            }
        }
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                let text = String::from_utf8_lossy(&bytes);
                assert!(
                    !text.contains(FIXTURE_SECRET),
                    "{} holds a secret",
                    path.display()
                );
            }
        }
    }
}
