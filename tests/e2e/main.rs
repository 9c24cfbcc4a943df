//! End-to-end tests: the real `tb-governor` and `tb-cli` binaries on simulated chains.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on broken fixtures

mod crash;
mod daemon;
mod demo;
mod observability;
mod http_limits;
mod offline;
mod startup;
