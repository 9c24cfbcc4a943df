//! The JSON-RPC API (docs/rpc.md), declared once: the daemon implements the generated server trait and
//! `tb-cli` calls the generated client, so both sides share one typed contract.

pub mod types;

use jsonrpsee::core::RpcResult;
use jsonrpsee::proc_macros::rpc;
use tb_config::Mode;

use crate::engine::{Gate, IntentState};
pub use types::*;

/// Error code: a mutating method without a valid bearer token.
pub const UNAUTHORIZED: i32 = -33009;
/// Error code: the client exceeded its request rate.
pub const RATE_LIMITED: i32 = -33010;
/// Error code: no decision for that epoch.
pub const UNKNOWN_EPOCH: i32 = -33004;
/// `limit` of a list method called without one.
pub const DEFAULT_LIMIT: u32 = 20;
/// Largest `limit` a list method accepts.
pub const MAX_LIMIT: u32 = 1000;

/// The governor's RPC methods, `governor.*`, with named (object) params.
#[rpc(server, client, namespace = "governor", namespace_separator = ".")]
pub trait GovernorApi {
    /// Everything an operator needs at a glance.
    #[method(name = "status")]
    async fn status(&self) -> RpcResult<Status>;

    /// Intents, newest first, filtered on the server.
    #[method(name = "intents", param_kind = map)]
    async fn intents(
        &self,
        gate: Option<Gate>,
        state: Option<IntentState>,
        limit: Option<u32>,
        before_epoch: Option<u64>,
    ) -> RpcResult<IntentsResult>;

    /// Decision summaries, ascending from `from_epoch` (default: the newest `limit`).
    #[method(name = "decisions", param_kind = map)]
    async fn decisions(
        &self,
        from_epoch: Option<u64>,
        limit: Option<u32>,
    ) -> RpcResult<DecisionsResult>;

    /// One epoch's snapshot with its hashes and attestation.
    #[method(name = "snapshot", param_kind = map)]
    async fn snapshot(&self, epoch: u64) -> RpcResult<SnapshotResult>;

    /// Journals a manual exit of `gate` (needs the bearer token).
    #[method(name = "submit_exit", param_kind = map)]
    async fn submit_exit(
        &self,
        gate: Gate,
        reason: String,
        operator: String,
    ) -> RpcResult<JournalReceipt>;

    /// Journals a mode change (needs the bearer token).
    #[method(name = "set_mode", param_kind = map)]
    async fn set_mode(
        &self,
        mode: Mode,
        reason: String,
        operator: String,
    ) -> RpcResult<JournalReceipt>;

    /// Journals the acknowledgement of a peer's divergence (needs the bearer token); comparing
    /// with that peer resumes at the epoch that diverged.
    #[method(name = "ack_peer", param_kind = map)]
    async fn ack_peer(
        &self,
        peer: String,
        reason: String,
        operator: String,
    ) -> RpcResult<JournalReceipt>;
}

/// Every method, for metrics and docs.
pub const METHODS: [&str; 7] = [
    "governor.status",
    "governor.intents",
    "governor.decisions",
    "governor.snapshot",
    "governor.submit_exit",
    "governor.set_mode",
    "governor.ack_peer",
];

/// Methods that change state and so need `Authorization: Bearer <token>`.
pub const MUTATING_METHODS: [&str; 3] = [
    "governor.submit_exit",
    "governor.set_mode",
    "governor.ack_peer",
];
