//! Black-box tests of the `latch` binary: one integration binary, modules by area.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod agents;
mod bitbucket;
mod cli;
mod connect;
mod credentials;
mod datacenter;
mod desktop;
mod doctor;
mod git;
mod golden;
mod hardening;
mod intercept;
mod lifecycle;
mod links;
mod mcp;
mod migration;
mod oauth1;
mod oidc;
mod package;
mod proxy;
mod support;
mod truth;
mod upstream;
mod webdriver;
