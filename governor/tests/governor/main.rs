//! Tests of the gate engine and the `tb-governor` library.

mod conformance;
mod support;
