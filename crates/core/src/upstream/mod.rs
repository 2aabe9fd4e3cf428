//! Where requests go: a provider's endpoints (OpenID discovery), a connector's site (name, host,
//! URL or cloud id) and its API base.

pub(crate) mod base;
pub mod discovery;
pub mod links;
pub mod mcp_auth;
pub mod site;
