//! The RPC methods, served from the shared view and the decision files.

use std::sync::Arc;

use jsonrpsee::core::{async_trait, RpcResult};
use jsonrpsee::types::ErrorObjectOwned;
use tb_config::Mode;

use super::peers::{initial_status, Book};
use super::state::Shared;
use crate::engine::{Decision, EventKind, Gate, GateStatus, IntentState};
use crate::rpc::*;

/// The server side of [`GovernorApiServer`].
pub struct Server {
    /// Shared daemon state.
    pub shared: Arc<Shared>,
    /// The peers' saved comparison, which `ack_peer` clears.
    pub peers: Arc<Book>,
    /// The configured peer URLs, in configuration order (`ack_peer` accepts only these).
    pub peer_urls: Vec<String>,
}

fn invalid_params(msg: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(
        jsonrpsee::types::error::INVALID_PARAMS_CODE,
        msg.into(),
        None::<()>,
    )
}

fn internal(msg: impl std::fmt::Display) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(
        jsonrpsee::types::error::INTERNAL_ERROR_CODE,
        msg.to_string(),
        None::<()>,
    )
}

fn limit_of(limit: Option<u32>) -> Result<usize, ErrorObjectOwned> {
    match limit.unwrap_or(DEFAULT_LIMIT) {
        0 => Err(invalid_params("limit must be at least 1")),
        n if n > MAX_LIMIT => Err(invalid_params(format!("limit {n} > {MAX_LIMIT}"))),
        n => Ok(n as usize),
    }
}

/// The attestation state of the decision `bytes` of `epoch` with its `sidecar`, and what to do.
fn attestation_state(
    shared: &Shared,
    epoch: u64,
    bytes: &[u8],
    sidecar: Option<&[u8]>,
) -> (&'static str, String) {
    let dir = shared.node.decisions.dir().display();
    match (sidecar, &shared.node.key) {
        (None, None) => (
            "missing",
            format!(
                "epoch {epoch} has no attestation. Add it: restart the daemon with \
                 TB_GOVERNOR_SIGN=1 and TB_NODE_KEY_HEX=<key> (or TB_GOVERNOR_KEY_FILE=<file>); \
                 it signs every unsigned decision file at start. Or sign a copy offline: \
                 TB_NODE_KEY_HEX=<key> tb-governor sign --decisions {dir}"
            ),
        ),
        (None, Some(_)) => {
            let why = shared.view().unsigned.reason.clone();
            (
                "missing",
                format!(
                    "epoch {epoch} has no attestation although signing is on: {}",
                    why.unwrap_or_else(|| "restart the daemon: it signs every unsigned decision \
                                           file at start"
                        .to_owned())
                ),
            )
        }
        (Some(b), Some(key)) => match tb_decisions::verify::check_one(bytes, b, &[*key]) {
            None => (
                "matches",
                format!(
                    "Attestation matches: the sidecar of epoch {epoch} verifies against this \
                     node's key"
                ),
            ),
            Some(p) => (
                "mismatch",
                format!(
                    "the attestation of epoch {epoch} does not verify against this node's key: \
                     {p} (an existing sidecar is never replaced; tb-cli governor verify \
                     --decisions {dir} --trusted-key <key> tells which key made it)"
                ),
            ),
        },
        (Some(_), None) => (
            "unchecked",
            format!(
                "epoch {epoch} is signed; signing is off here, so this node cannot check it: \
                 tb-cli governor verify --decisions {dir} --trusted-key <key>"
            ),
        ),
    }
}

impl Server {
    fn load_decision(&self, epoch: u64) -> RpcResult<(Decision, Vec<u8>)> {
        let bytes = self.shared.node.decisions.read(epoch).map_err(internal)?;
        let Some(bytes) = bytes else {
            let last = self.shared.journal_summary().last_closed;
            let last = last.map_or("none yet".to_owned(), |e| e.to_string());
            return Err(ErrorObjectOwned::owned(
                UNKNOWN_EPOCH,
                format!("unknown epoch {epoch} (last closed epoch: {last})"),
                None::<()>,
            ));
        };
        let decision = serde_json::from_slice(&bytes).map_err(internal)?;
        Ok((decision, bytes))
    }

    /// Appends an operator event. The journal mutex may be held by a close (through its
    /// fsyncs) and the append fsyncs too, so this runs off the async workers.
    async fn journal(
        &self,
        kind: EventKind,
        reason: String,
        operator: String,
    ) -> RpcResult<JournalReceipt> {
        if operator.trim().is_empty() || reason.trim().is_empty() {
            return Err(invalid_params("reason and operator must not be empty"));
        }
        let shared = self.shared.clone();
        let append = move || {
            let ev = shared
                .with_journal(|journal| journal.append(kind, &reason, &operator))
                .map_err(internal)?;
            if let EventKind::SetMode { mode } = ev.kind {
                shared.metrics.set_mode(mode);
            }
            let (kind, mode, gate, peer) = match &ev.kind {
                EventKind::SetMode { mode } => ("set_mode", Some(*mode), None, None),
                EventKind::ManualExit { gate } => ("manual_exit", None, Some(gate), None),
                EventKind::AckPeer { peer } => ("ack_peer", None, None, Some(peer)),
            };
            tracing::info!(
                seq = ev.seq,
                effective_epoch = ev.effective_epoch,
                kind = %kind,
                mode = mode.map(tracing::field::display),
                gate = gate.map(tracing::field::display),
                peer = peer.map(tracing::field::display),
                operator = %operator,
                reason = %reason,
                "journaled an operator event"
            );
            Ok(JournalReceipt {
                seq: ev.seq,
                effective_epoch: ev.effective_epoch,
            })
        };
        tokio::task::spawn_blocking(append)
            .await
            .map_err(internal)?
    }
}

#[async_trait]
impl GovernorApiServer for Server {
    async fn status(&self) -> RpcResult<Status> {
        Ok(super::status::build(&self.shared))
    }

    async fn intents(
        &self,
        gate: Option<Gate>,
        state: Option<IntentState>,
        limit: Option<u32>,
        before_epoch: Option<u64>,
    ) -> RpcResult<IntentsResult> {
        let limit = limit_of(limit)?;
        let view = self.shared.view();
        let all = &view.history.intents;
        // Intents are kept in creation order, so those created before `before_epoch` are a
        // prefix: found by binary search, not by walking the newer ones.
        let end = before_epoch.map_or(all.len(), |b| all.partition_point(|i| i.created_epoch < b));
        let intents = all[..end]
            .iter()
            .rev()
            .filter(|i| gate.is_none_or(|g| i.gate == g))
            .filter(|i| state.is_none_or(|s| i.state == s))
            .take(limit)
            .cloned()
            .collect();
        Ok(IntentsResult { intents })
    }

    async fn decisions(
        &self,
        from_epoch: Option<u64>,
        limit: Option<u32>,
    ) -> RpcResult<DecisionsResult> {
        let limit = limit_of(limit)? as u64;
        let last = self.shared.journal_summary().last_closed;
        let Some(last) = last else {
            return Ok(DecisionsResult { decisions: vec![] });
        };
        let from = from_epoch.unwrap_or_else(|| (last + 1).saturating_sub(limit));
        let mut decisions = Vec::new();
        for epoch in from..=last.min(from.saturating_add(limit - 1)) {
            let Ok((d, bytes)) = self.load_decision(epoch) else {
                continue;
            };
            let attested = self.shared.node.decisions.sidecar_path(epoch).exists();
            decisions.push(DecisionSummary {
                epoch,
                decision_hash: tb_canonical::hash_hex(&bytes),
                snapshot_hash: d.snapshot_hash,
                mode: d.mode,
                intents: d.intents.into_iter().map(|i| i.id).collect(),
                attested,
            });
        }
        Ok(DecisionsResult { decisions })
    }

    async fn snapshot(&self, epoch: u64) -> RpcResult<SnapshotResult> {
        let (d, bytes) = self.load_decision(epoch)?;
        let sidecar = self
            .shared
            .node
            .decisions
            .read_sidecar(epoch)
            .map_err(internal)?;
        let attestation: Option<tb_decisions::Attestation> = sidecar
            .as_ref()
            .and_then(|b| serde_json::from_slice(b).ok());
        let (state, hint) = attestation_state(&self.shared, epoch, &bytes, sidecar.as_deref());
        Ok(SnapshotResult {
            snapshot: d.snapshot,
            snapshot_hash: d.snapshot_hash,
            decision_hash: tb_canonical::hash_hex(&bytes),
            attestation,
            attestation_state: state.to_owned(),
            attestation_hint: hint,
        })
    }

    async fn submit_exit(
        &self,
        gate: Gate,
        reason: String,
        operator: String,
    ) -> RpcResult<JournalReceipt> {
        let active = self.shared.view().last.as_ref().and_then(|l| {
            l.decision
                .gates
                .iter()
                .find(|g| g.name == gate)
                .map(|g| g.state)
        }) == Some(GateStatus::Active);
        if !active {
            tracing::info!(
                gate = %gate,
                "manual exit of an inactive gate journaled; it will be ignored"
            );
        }
        let gate = gate.as_str().to_owned();
        self.journal(EventKind::ManualExit { gate }, reason, operator)
            .await
    }

    async fn set_mode(
        &self,
        mode: Mode,
        reason: String,
        operator: String,
    ) -> RpcResult<JournalReceipt> {
        self.journal(EventKind::SetMode { mode }, reason, operator)
            .await
    }

    async fn ack_peer(
        &self,
        peer: String,
        reason: String,
        operator: String,
    ) -> RpcResult<JournalReceipt> {
        let Some(index) = self.peer_urls.iter().position(|u| *u == peer) else {
            return Err(invalid_params(format!(
                "{peer:?} is not a configured peer (peers: {})",
                if self.peer_urls.is_empty() {
                    "none".to_owned()
                } else {
                    self.peer_urls.join(", ")
                }
            )));
        };
        let receipt = self
            .journal(EventKind::AckPeer { peer: peer.clone() }, reason, operator)
            .await?;
        let book = self.peers.clone();
        let seq = receipt.seq;
        let url = peer.clone();
        let cleared = tokio::task::spawn_blocking(move || book.acknowledge(&url, seq))
            .await
            .map_err(internal)?
            .map_err(|e| internal(format!("{e:#}")))?;
        let status = initial_status(&peer, &self.peers.get(&peer));
        self.shared.metrics.set_peer(&status);
        self.shared.set_peer(index, status);
        match cleared {
            Some(epoch) => tracing::info!(
                peer = %peer,
                epoch,
                "peer divergence acknowledged; comparing resumes at its epoch"
            ),
            None => tracing::info!(peer = %peer, "peer acknowledged; no divergence was reported"),
        }
        Ok(receipt)
    }
}
