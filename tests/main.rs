//! Black-box tests of the `latch` binary: one integration binary, modules by area.

mod cli;
mod support;
