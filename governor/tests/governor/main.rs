//! Tests of the gate engine and the `tb-governor` library.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on broken fixtures

mod conformance;
mod docs;
mod gates;
mod modes;
mod scenarios;
mod streaks;
mod support;
