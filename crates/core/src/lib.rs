//! Latch's core: the domain (providers, connectors, credentials, grants, keys) and the use
//! cases every face calls (`app`). It defines the ports it needs (`ports`) and knows no face, no
//! keychain implementation and no HTTP server.
//!
//! Folders by concern, each importing only from those listed before it (docs/ARCHITECTURE.md):
//! the root's small vocabulary (`error`, `code`, `clock`, `secret`, `ports`, `finding`), `net`,
//! `provider`, `config`, `upstream`, `grant`, `credential`, `local_key`, `health`, `app`.

pub mod clock;
pub mod code;
mod error;
pub mod finding;
pub mod html;
pub mod logs;
pub mod ports;
pub mod secret;
pub mod secret_chunks;
mod toml_location;

pub mod app;
pub mod config;
pub mod credential;
pub mod grant;
pub mod health;
pub mod local_key;
pub mod net;
pub mod provider;
pub mod upstream;

pub use clock::now_rfc3339;
pub use code::ErrorCode;
pub use error::{ConfigError, Error, GrantError, Result};
