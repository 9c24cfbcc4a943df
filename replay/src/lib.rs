//! Deterministic replay of The Block's settlement receipts into economics snapshots.
//!
//! The one promise: the same chain and the same decision-relevant configuration give
//! byte-identical snapshots on any machine, for any thread count, batch size or restart pattern.
//! Everything here is integer arithmetic over data in chain order; the only parallel work is
//! decoding and verifying single lines, which are pure functions.
//!
//! # Layout
//!
//! - [`json`]: the JSON value tree (duplicate keys, integer literals, nesting limit).
//! - [`decode`]: typed field reads with errors that name the field.
//! - [`providers`]: the provider key registry, with rotation windows.
//! - [`receipt`]: receipt decoding, the stateless checks of docs/formats.md, "Validation order", and the signed message.
//! - [`block`]: block decoding.
//! - [`reader`]: resumable reading of complete lines from a chain directory.
//! - [`feed`]: the read-and-apply loop shared by every caller.
//! - [`backlog`]: receipts written to the chain directory but not yet read.
//! - [`replayer`]: the incremental [`Replayer`] and its checkpointable state.
//! - [`control`]: the economics control law (docs/economics.md).
//! - [`snapshot`]: the snapshot shape and its hash.
//! - [`stats`]: lower medians, nearest-rank percentiles, MAD.
//! - [`sim`]: the deterministic chain simulator.

pub mod backlog;
pub mod block;
pub mod control;
pub mod decode;
mod epoch;
pub mod feed;
pub mod json;
pub mod providers;
pub mod reader;
pub mod receipt;
pub mod replayer;
pub mod sim;
pub mod snapshot;
pub mod stats;

pub use block::{Block, BlockError};
pub use providers::Registry;
pub use reader::{ChainReader, Position};
pub use receipt::{Market, Reason};
pub use replayer::{ClosedEpoch, Decoder, ReplayConfig, ReplayState, Replayer, Verdict};
pub use snapshot::Snapshot;
