//! Tests of the gate engine and the `tb-governor` library.

mod conformance;
mod gates;
mod modes;
mod scenarios;
mod streaks;
mod support;
