//! Latch's core: the domain (catalog, scopes, configuration, status) and the use cases every
//! face calls. It defines the ports it needs (`SecretStore`) and knows no face, no keychain
//! implementation and no HTTP server.

pub mod attention;
pub mod audit;
pub mod catalog;
pub mod config;
pub mod doctor;
mod error;
pub mod finding;
pub mod grants;
pub mod home;
mod latch;
pub mod local_keys;
pub mod login;
pub mod oauth;
pub mod ports;
pub mod schedule;
pub mod scope;
pub mod secret;
pub mod status;
mod toml_location;

pub use error::{ConfigError, Error, Result};
pub use latch::{
    now_rfc3339, random_hex, AddConnector, AddProvider, ConnectorAdded, ConnectorPreview,
    ConnectorRemoved, CredentialStored, EndpointOverrides, Latch, ProviderAdded,
};
