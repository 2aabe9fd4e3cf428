//! The localhost proxy that local tools call with a local key (see DESIGN.md, "The localhost
//! proxy"). This crate is a placeholder until the proxy issue lands; it exists now so the
//! workspace layout and the dependency direction (proxy → core, never the reverse) are fixed.

/// The default loopback address the proxy listens on (`[proxy] listen` in latch.toml).
pub const DEFAULT_LISTEN: &str = latch_core::config::DEFAULT_PROXY_LISTEN;
