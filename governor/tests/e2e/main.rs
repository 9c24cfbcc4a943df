//! End-to-end tests: the real `tb-governor` and `tb-cli` binaries on simulated chains.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on broken fixtures

mod chain_faults;
mod crash;
mod daemon;
mod demo;
mod fleet;
mod history;
mod http_limits;
mod logs;
mod observability;
mod offline;
mod pipes;
mod runbook;
mod startup;
mod support;
mod tls;
