//! Latch's core: the domain (catalog, scopes, configuration, status) and the use cases every
//! face calls. It defines the ports it needs (`SecretStore`) and knows no face, no keychain
//! implementation and no HTTP server.

pub mod attention;
pub mod audit;
pub mod catalog;
pub mod clock;
pub mod code;
pub mod config;
pub mod credential;
pub mod discovery;
pub mod doctor;
mod error;
pub mod exec_env;
pub mod finding;
pub mod git_credential;
mod grant_store;
pub mod grants;
pub mod home;
pub mod html;
mod latch;
pub mod local_keys;
pub mod login;
pub mod logs;
pub mod oauth;
pub mod outbound;
pub mod ports;
pub mod profile;
mod refresh_lock;
mod retry;
pub mod schedule;
pub mod scope;
pub mod secret;
pub mod secret_chunks;
pub mod site;
pub mod status;
pub mod tls;
mod token_cache;
mod toml_location;
mod upstream;

pub use clock::now_rfc3339;
pub use code::ErrorCode;
pub use error::{ConfigError, Error, GrantError, Result};
pub use latch::{
    random_hex, AddConnector, AddProvider, ConnectorAdded, ConnectorChange, ConnectorChanged,
    ConnectorPreview, ConnectorRemoved, CredentialRemoved, CredentialStored, EndpointOverrides,
    Latch, ProviderAdded,
};
