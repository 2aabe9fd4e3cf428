//! Talking to identity providers and upstreams: the OAuth transport over the `oauth2` crate,
//! trust (built-in roots, the OS store, a provider's CA file), the environment's outbound proxy,
//! and the shared bounded retry. Knows no configuration: callers hand in what it needs.

pub mod oauth;
pub mod outbound;
pub(crate) mod retry;
pub mod tls;
