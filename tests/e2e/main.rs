//! End-to-end tests: the real `tb-governor` and `tb-cli` binaries on simulated chains.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on broken fixtures

mod daemon;
mod demo;
mod offline;
mod runbook;
