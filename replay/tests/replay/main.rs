//! Integration tests of `tb-replay`: the rejection reasons of docs/formats.md and their order, block errors,
//! the chain reader, a committed golden chain, the determinism properties (threads, batches,
//! checkpoints, chunking, signatures, hostile bytes) and the simulator scenarios (docs/gates.md).
//!
//! Everything shares one test binary; `common` holds the helpers and the small simulated chain
//! that the property tests reuse, `conformance` checks the independent implementation's vectors.

// All of this crate is test code: helpers outside `#[test]` functions panic on failure too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod blocks;
mod common;
mod conformance;
mod golden;
mod properties;
mod reader;
mod reasons;
mod scenarios;
