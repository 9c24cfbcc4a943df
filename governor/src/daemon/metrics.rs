//! Prometheus metrics (names from the operations runbook; listed in docs/operations.md, "Metrics").

use std::sync::atomic::AtomicU64;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;
use tb_config::Mode;
use tb_replay::Snapshot;

use super::state::Shared;
use crate::engine::{ClosedDecision, Gate, GateStatus};

/// `{market}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MarketLabel {
    /// Market name.
    pub market: String,
}

/// `{reason}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// Rejection reason.
    pub reason: String,
}

/// `{gate}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GateLabel {
    /// Gate name.
    pub gate: String,
}

/// `{gate, action, outcome}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IntentLabel {
    /// Gate name.
    pub gate: String,
    /// enter / exit.
    pub action: String,
    /// pending / applied / shadowed / superseded / cancelled.
    pub outcome: String,
}

/// `{mode}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModeLabel {
    /// Mode name.
    pub mode: String,
}

/// `{stat}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatLabel {
    /// p50 / p95 / max.
    pub stat: String,
}

/// `{method, code}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabel {
    /// JSON-RPC method.
    pub method: String,
    /// 0 for success, else the JSON-RPC error code.
    pub code: String,
}

/// `{peer}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerLabel {
    /// The peer's URL, as configured.
    pub peer: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// Every metric the daemon exports.
#[derive(Debug, Default)]
#[allow(missing_docs)] // each field is the metric of the same name
pub struct Metrics {
    pub economics_block_reward_per_block: FloatGauge,
    pub economics_prev_market_metrics_utilization_ppm: Family<MarketLabel, Gauge>,
    pub economics_prev_market_metrics_provider_margin_ppm: Family<MarketLabel, Gauge>,
    pub economics_epoch_tx_count: Gauge,
    pub economics_epoch_tx_volume_block: FloatGauge,
    pub economics_epoch_treasury_inflow_block: FloatGauge,
    pub receipt_emitted: Family<MarketLabel, Counter>,
    pub receipt_validation_errors: Family<ReasonLabel, Counter>,
    pub receipt_min_payment_rejected: Counter,
    pub receipt_decoding_failures: Counter,
    pub receipt_aggregate_sig_mismatch: Counter,
    pub receipt_validation_failures: Counter,
    pub pending_receipts_storage: Gauge,
    pub pending_receipts_compute: Gauge,
    pub pending_receipts_energy: Gauge,
    pub receipt_drain_depth: Gauge,
    pub proof_verification_latency_ms: Family<StatLabel, Gauge>,
    pub proof_verification_budget_ms: Gauge,
    pub governor_gate_state: Family<GateLabel, Gauge>,
    pub governor_gate_enter_streak: Family<GateLabel, Gauge>,
    pub governor_gate_exit_streak: Family<GateLabel, Gauge>,
    pub governor_intents: Family<IntentLabel, Counter>,
    pub governor_mode: Family<ModeLabel, Gauge>,
    pub governor_last_closed_epoch: Gauge,
    pub governor_tip_height: Gauge,
    pub governor_decision_write_failures: Counter,
    pub governor_hook_failures: Counter,
    pub governor_rpc_requests: Family<RpcLabel, Counter>,
    // The operator kit (alert rules, dashboard, status page): see `refresh` and `set_gauges`.
    pub governor_ingest_stalled: Gauge,
    pub governor_ingest_halted: Gauge,
    pub governor_last_close_timestamp_seconds: Gauge,
    pub governor_expected_epoch_seconds: FloatGauge,
    pub governor_last_decision_attestation: Family<AttestationLabel, Gauge>,
    pub proof_verification_budget_seconds: FloatGauge,
    pub governor_http_connections_refused: Counter,
    // The fleet cross-check: see `set_peer`.
    pub governor_peer_up: Family<PeerLabel, Gauge>,
    pub governor_peer_agreed_epoch: Family<PeerLabel, Gauge>,
    pub governor_peer_diverged: Family<PeerLabel, Gauge>,
}

/// `{state}` of the last decision's attestation: `unsigned`, `unverified` or `verified`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttestationLabel {
    /// unsigned / unverified / verified.
    pub state: String,
}

/// The attestation states, in the order the gauge family lists them.
pub const ATTESTATION_STATES: [&str; 3] = ["unsigned", "unverified", "verified"];

/// Seconds since the Unix epoch by the wall clock (telemetry only; 0 if the clock is before 1970).
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| int(d.as_secs()))
}

/// Expected wall time of one epoch from the chain itself: the epoch's median block spacing times
/// its block count, in seconds; `None` when the epoch has no spacing (fewer than two blocks).
#[allow(clippy::float_arithmetic, clippy::cast_precision_loss)]
fn expected_epoch_seconds(snap: &Snapshot) -> Option<f64> {
    let median = snap.block_spacing.median_ms?;
    let blocks = snap.last_height.checked_sub(snap.first_height)? + 1;
    Some(median as f64 * blocks as f64 / 1e3)
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// micro-BLOCK → BLOCK for display gauges (telemetry only; nothing hashed is a float).
#[allow(clippy::float_arithmetic, clippy::cast_precision_loss)]
fn block(micro: u64) -> f64 {
    micro as f64 / 1e6
}

impl Metrics {
    /// Metrics with every known label set present (at zero, or -1 for "no data yet"), so each
    /// name of the runbook is exported from the first scrape on.
    pub fn new() -> Self {
        let m = Metrics::default();
        for market in ["storage", "compute", "energy", "ad"] {
            let l = MarketLabel {
                market: market.to_owned(),
            };
            m.economics_prev_market_metrics_utilization_ppm
                .get_or_create(&l)
                .set(-1);
            m.economics_prev_market_metrics_provider_margin_ppm
                .get_or_create(&l)
                .set(-1_000_000_000);
        }
        for market in ["storage", "compute", "energy", "ad", "slash"] {
            let _ = m.receipt_emitted.get_or_create(&MarketLabel {
                market: market.to_owned(),
            });
        }
        for reason in tb_replay::Reason::ALL {
            let _ = m.receipt_validation_errors.get_or_create(&ReasonLabel {
                reason: reason.as_str().to_owned(),
            });
        }
        for stat in ["p50", "p95", "max"] {
            m.proof_verification_latency_ms
                .get_or_create(&StatLabel {
                    stat: stat.to_owned(),
                })
                .set(-1);
        }
        for gate in Gate::ALL {
            let l = GateLabel {
                gate: gate.as_str().to_owned(),
            };
            let _ = m.governor_gate_state.get_or_create(&l);
            let _ = m.governor_gate_enter_streak.get_or_create(&l);
            let _ = m.governor_gate_exit_streak.get_or_create(&l);
            for action in ["enter", "exit"] {
                let _ = m.governor_intents.get_or_create(&IntentLabel {
                    gate: gate.as_str().to_owned(),
                    action: action.to_owned(),
                    outcome: "created".to_owned(),
                });
            }
        }
        for method in crate::rpc::METHODS {
            let _ = m.governor_rpc_requests.get_or_create(&RpcLabel {
                method: method.to_owned(),
                code: "0".to_owned(),
            });
        }
        m.governor_last_closed_epoch.set(-1);
        m.governor_tip_height.set(-1);
        m.governor_last_close_timestamp_seconds.set(unix_now());
        m.governor_expected_epoch_seconds.set(-1.0);
        for state in ATTESTATION_STATES {
            let _ = m
                .governor_last_decision_attestation
                .get_or_create(&AttestationLabel {
                    state: state.to_owned(),
                });
        }
        m
    }

    /// A registry exposing `self` (shared, so the registry only borrows through clones).
    pub fn registry(m: &Metrics) -> Registry {
        let mut r = Registry::default();
        r.register(
            "economics_block_reward_per_block",
            "Recommended block reward for the next epoch, BLOCK",
            m.economics_block_reward_per_block.clone(),
        );
        r.register(
            "economics_prev_market_metrics_utilization_ppm",
            "Last closed epoch's utilization per market, ppm",
            m.economics_prev_market_metrics_utilization_ppm.clone(),
        );
        r.register(
            "economics_prev_market_metrics_provider_margin_ppm",
            "Last closed epoch's provider margin per market, ppm",
            m.economics_prev_market_metrics_provider_margin_ppm.clone(),
        );
        r.register(
            "economics_epoch_tx_count",
            "Transactions in the last closed epoch",
            m.economics_epoch_tx_count.clone(),
        );
        r.register(
            "economics_epoch_tx_volume_block",
            "Transaction volume of the last closed epoch, BLOCK",
            m.economics_epoch_tx_volume_block.clone(),
        );
        r.register(
            "economics_epoch_treasury_inflow_block",
            "Treasury inflow of the last closed epoch, BLOCK",
            m.economics_epoch_treasury_inflow_block.clone(),
        );
        r.register(
            "receipt_emitted",
            "Accepted receipts per market (slash receipts under market=slash)",
            m.receipt_emitted.clone(),
        );
        r.register(
            "receipt_validation_errors",
            "Rejected receipts per reason",
            m.receipt_validation_errors.clone(),
        );
        r.register(
            "receipt_min_payment_rejected",
            "Receipts rejected as below_min_payment",
            m.receipt_min_payment_rejected.clone(),
        );
        r.register(
            "receipt_decoding_failures",
            "Receipts rejected as schema (do not decode)",
            m.receipt_decoding_failures.clone(),
        );
        r.register(
            "receipt_aggregate_sig_mismatch",
            "Receipts rejected as bad_signature (the signature does not verify)",
            m.receipt_aggregate_sig_mismatch.clone(),
        );
        r.register(
            "receipt_validation_failures",
            "Receipts rejected by validation: below_min_payment, key_not_found, replayed_nonce, \
             invalid_values",
            m.receipt_validation_failures.clone(),
        );
        for (name, market, gauge) in [
            (
                "pending_receipts_storage",
                "storage",
                &m.pending_receipts_storage,
            ),
            (
                "pending_receipts_compute",
                "compute",
                &m.pending_receipts_compute,
            ),
            (
                "pending_receipts_energy",
                "energy",
                &m.pending_receipts_energy,
            ),
        ] {
            r.register(
                name,
                format!("{market} receipts in complete chain lines not yet ingested"),
                gauge.clone(),
            );
        }
        r.register(
            "receipt_drain_depth",
            "Receipts of every market in complete chain lines not yet ingested",
            m.receipt_drain_depth.clone(),
        );
        r.register(
            "proof_verification_latency_ms",
            "Compute proof latency of the last closed epoch, ms",
            m.proof_verification_latency_ms.clone(),
        );
        r.register(
            "proof_verification_budget_ms",
            "Compute proof latency budget (chain.proof_verification_budget_ms), ms",
            m.proof_verification_budget_ms.clone(),
        );
        r.register(
            "governor_peer_up",
            "1 when the peer's last poll succeeded and its answer was valid",
            m.governor_peer_up.clone(),
        );
        r.register(
            "governor_peer_agreed_epoch",
            "Last epoch both closed and found equal with the peer (-1: none yet)",
            m.governor_peer_agreed_epoch.clone(),
        );
        r.register(
            "governor_peer_diverged",
            "1 while a divergence from the peer is reported (until acknowledged)",
            m.governor_peer_diverged.clone(),
        );
        r.register(
            "governor_gate_state",
            "1 when the gate is active",
            m.governor_gate_state.clone(),
        );
        r.register(
            "governor_gate_enter_streak",
            "Consecutive ok epochs while inactive",
            m.governor_gate_enter_streak.clone(),
        );
        r.register(
            "governor_gate_exit_streak",
            "Consecutive bad epochs while active",
            m.governor_gate_exit_streak.clone(),
        );
        r.register(
            "governor_intents",
            "Intents by gate, action and outcome",
            m.governor_intents.clone(),
        );
        r.register(
            "governor_mode",
            "1 for the mode the journal currently asks for",
            m.governor_mode.clone(),
        );
        r.register(
            "governor_last_closed_epoch",
            "Last closed epoch (-1 before the first)",
            m.governor_last_closed_epoch.clone(),
        );
        r.register(
            "governor_tip_height",
            "Height of the last ingested block (-1 before the first)",
            m.governor_tip_height.clone(),
        );
        r.register(
            "governor_decision_write_failures",
            "Decision files (or their attestation sidecars) that could not be written",
            m.governor_decision_write_failures.clone(),
        );
        r.register(
            "governor_hook_failures",
            "Apply hooks that failed or timed out",
            m.governor_hook_failures.clone(),
        );
        r.register(
            "governor_rpc_requests",
            "JSON-RPC requests by method and result code",
            m.governor_rpc_requests.clone(),
        );
        r.register(
            "governor_ingest_stalled",
            "1 while ingestion waits at a chain line it cannot apply (status ingest.stall)",
            m.governor_ingest_stalled.clone(),
        );
        r.register(
            "governor_ingest_halted",
            "1 after a write failure stopped ingestion until a restart",
            m.governor_ingest_halted.clone(),
        );
        r.register(
            "governor_last_close_timestamp_seconds",
            "Unix time of this process's last epoch close (its start time before the first)",
            m.governor_last_close_timestamp_seconds.clone(),
        );
        r.register(
            "governor_expected_epoch_seconds",
            "Median block spacing times blocks per epoch of the last closed epoch, seconds (-1 before)",
            m.governor_expected_epoch_seconds.clone(),
        );
        r.register(
            "governor_last_decision_attestation",
            "1 for the attestation state of the last decision (0 for all before the first)",
            m.governor_last_decision_attestation.clone(),
        );
        r.register(
            "proof_verification_budget_seconds",
            "Compute proof latency budget (chain.proof_verification_budget_ms), seconds",
            m.proof_verification_budget_seconds.clone(),
        );
        r.register_collector(Box::new(ProcessCollector {
            start_time_seconds: unix_now(),
        }));
        r.register(
            "governor_http_connections_refused",
            "HTTP connections answered 503 because rpc.max_connections were open",
            m.governor_http_connections_refused.clone(),
        );
        r
    }

    /// Shows `mode` as the current one.
    pub fn set_mode(&self, mode: Mode) {
        for m in Mode::ALL {
            self.governor_mode
                .get_or_create(&ModeLabel {
                    mode: m.as_str().to_owned(),
                })
                .set(i64::from(m == mode));
        }
    }

    /// Records one closed epoch: gauges and counters.
    pub fn record_close(&self, snap: &Snapshot, decision: &ClosedDecision) {
        self.set_gauges(snap, &decision.decision);
        self.governor_last_close_timestamp_seconds.set(unix_now());
        let d = &decision.decision;
        for (market, n) in snap.receipts.accepted_by_kind() {
            self.receipt_emitted
                .get_or_create(&MarketLabel {
                    market: market.to_owned(),
                })
                .inc_by(n);
        }
        let r = &snap.receipts.rejected;
        for (reason, n) in snap.receipts.rejected_by_reason() {
            self.receipt_validation_errors
                .get_or_create(&ReasonLabel {
                    reason: reason.to_owned(),
                })
                .inc_by(n);
        }
        self.receipt_min_payment_rejected
            .inc_by(r.below_min_payment);
        self.receipt_decoding_failures.inc_by(r.schema);
        self.receipt_aggregate_sig_mismatch.inc_by(r.bad_signature);
        self.receipt_validation_failures
            .inc_by(validation_failures(&snap.receipts.rejected));
        for i in &d.intents {
            self.count_intent(i.gate, i.action.as_str(), "created");
        }
        for a in &d.activations {
            if let Some(gate) = a.id.split('-').next().and_then(|g| g.parse::<Gate>().ok()) {
                let action = if a.id.ends_with("-enter") {
                    "enter"
                } else {
                    "exit"
                };
                self.count_intent(gate, action, a.outcome.as_str());
            }
        }
    }

    /// Shows how a peer compares (its three `governor_peer_*` series).
    pub fn set_peer(&self, peer: &crate::rpc::PeerStatus) {
        use crate::rpc::PeerState;
        let label = PeerLabel {
            peer: peer.url.clone(),
        };
        let up = !matches!(peer.state, PeerState::Pending | PeerState::Unreachable)
            && peer.error.is_none();
        self.governor_peer_up
            .get_or_create(&label)
            .set(i64::from(up));
        self.governor_peer_agreed_epoch.get_or_create(&label).set(
            peer.agreed_through
                .map_or(-1, |e| i64::try_from(e).unwrap_or(i64::MAX)),
        );
        self.governor_peer_diverged
            .get_or_create(&label)
            .set(i64::from(peer.divergence.is_some()));
    }

    /// Shows the height of the last applied block.
    pub fn set_tip_height(&self, height: u64) {
        self.governor_tip_height
            .set(i64::try_from(height).unwrap_or(i64::MAX));
    }

    /// Shows the receipt backlog.
    pub fn set_pending(&self, p: &tb_replay::backlog::ReceiptCounts) {
        self.pending_receipts_storage.set(int(p.storage));
        self.pending_receipts_compute.set(int(p.compute));
        self.pending_receipts_energy.set(int(p.energy));
        self.receipt_drain_depth.set(int(p.total()));
    }

    /// Sets the gauges from a closed epoch (also used on restart, where counters start at 0).
    pub fn set_gauges(&self, snap: &Snapshot, d: &crate::engine::Decision) {
        self.economics_block_reward_per_block
            .set(block(snap.controls.block_reward_per_block_micro));
        self.economics_epoch_tx_count.set(int(snap.tx_count));
        self.economics_epoch_tx_volume_block
            .set(block(snap.tx_volume_micro));
        self.economics_epoch_treasury_inflow_block
            .set(block(snap.treasury_inflow_micro));
        for (name, m) in ["storage", "compute", "energy", "ad"]
            .iter()
            .zip(snap.markets.as_array())
        {
            let label = MarketLabel {
                market: (*name).to_owned(),
            };
            self.economics_prev_market_metrics_utilization_ppm
                .get_or_create(&label)
                .set(m.utilization_ppm.map_or(-1, int));
            self.economics_prev_market_metrics_provider_margin_ppm
                .get_or_create(&label)
                .set(m.provider_margin_ppm.unwrap_or(-1_000_000_000));
        }
        let p = &snap.compute_proofs;
        for (stat, v) in [("p50", p.p50_ms), ("p95", p.p95_ms), ("max", p.max_ms)] {
            self.proof_verification_latency_ms
                .get_or_create(&StatLabel {
                    stat: stat.to_owned(),
                })
                .set(v.map_or(-1, int));
        }
        for g in &d.gates {
            let label = GateLabel {
                gate: g.name.as_str().to_owned(),
            };
            self.governor_gate_state
                .get_or_create(&label)
                .set(i64::from(g.state == GateStatus::Active));
            self.governor_gate_enter_streak
                .get_or_create(&label)
                .set(int(g.enter_streak));
            self.governor_gate_exit_streak
                .get_or_create(&label)
                .set(int(g.exit_streak));
        }
        self.governor_last_closed_epoch.set(int(d.epoch));
        self.governor_expected_epoch_seconds
            .set(expected_epoch_seconds(snap).unwrap_or(-1.0));
    }

    fn count_intent(&self, gate: Gate, action: &str, outcome: &str) {
        self.governor_intents
            .get_or_create(&IntentLabel {
                gate: gate.as_str().to_owned(),
                action: action.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Sets the gauges that mirror `governor.status` from the shared state; called on every
    /// scrape, so they always agree with what status shows.
    #[allow(clippy::float_arithmetic, clippy::cast_precision_loss)]
    pub fn refresh(&self, shared: &Shared) {
        self.proof_verification_budget_seconds
            .set(shared.node.budget_ms as f64 / 1e3);
        let view = shared.view();
        self.set_ingest(view.ingest.stall.as_deref());
        self.set_attestation(view.last.as_ref().map(|l| (l.keyid.is_some(), l.verified)));
    }

    /// Stalled / halted from status's `ingest.stall` (a halt is reported as `halted: …`).
    pub fn set_ingest(&self, stall: Option<&str>) {
        let halted = stall.is_some_and(super::state::is_halted);
        self.governor_ingest_halted.set(i64::from(halted));
        self.governor_ingest_stalled
            .set(i64::from(stall.is_some() && !halted));
    }

    /// The last decision's attestation: `(signed, verified)`, `None` before the first close.
    pub fn set_attestation(&self, last: Option<(bool, bool)>) {
        let current = last.map(|(signed, verified)| match (signed, verified) {
            (false, _) => "unsigned",
            (true, false) => "unverified",
            (true, true) => "verified",
        });
        for state in ATTESTATION_STATES {
            self.governor_last_decision_attestation
                .get_or_create(&AttestationLabel {
                    state: state.to_owned(),
                })
                .set(i64::from(current == Some(state)));
        }
    }
}

/// The standard `process_*` metrics, read from `/proc/self` on each scrape (Linux; a value that
/// cannot be read is left out of that scrape).
#[derive(Debug)]
struct ProcessCollector {
    start_time_seconds: i64,
}

/// Clock ticks per second of `/proc/<pid>/stat` times (`USER_HZ`, 100 on Linux).
const USER_HZ: u64 = 100;

impl ProcessCollector {
    /// utime + stime of the whole process, in clock ticks.
    fn cpu_ticks() -> Option<u64> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // The command name (field 2) may hold spaces: count fields after its closing ')'.
        let rest = stat.get(stat.rfind(')')? + 1..)?;
        let mut fields = rest.split_whitespace();
        // `rest` starts at field 3 (state); utime and stime are fields 14 and 15.
        let utime: u64 = fields.nth(11)?.parse().ok()?;
        let stime: u64 = fields.next()?.parse().ok()?;
        Some(utime + stime)
    }

    fn resident_bytes() -> Option<i64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let kib: i64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()?;
        kib.checked_mul(1024)
    }

    fn open_fds() -> Option<i64> {
        let n = std::fs::read_dir("/proc/self/fd").ok()?.count();
        i64::try_from(n).ok()
    }
}

impl Collector for ProcessCollector {
    #[allow(clippy::float_arithmetic, clippy::cast_precision_loss)]
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        if let Some(ticks) = Self::cpu_ticks() {
            let c = ConstCounter::new(ticks as f64 / USER_HZ as f64);
            c.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "User and system CPU time of the daemon, seconds",
                None,
                c.metric_type(),
            )?)?;
        }
        if let Some(bytes) = Self::resident_bytes() {
            let g = ConstGauge::new(bytes);
            g.encode(encoder.encode_descriptor(
                "process_resident_memory_bytes",
                "Resident memory of the daemon, bytes",
                None,
                g.metric_type(),
            )?)?;
        }
        if let Some(n) = Self::open_fds() {
            let g = ConstGauge::new(n);
            g.encode(encoder.encode_descriptor(
                "process_open_fds",
                "Open file descriptors of the daemon",
                None,
                g.metric_type(),
            )?)?;
        }
        let g = ConstGauge::new(self.start_time_seconds);
        g.encode(encoder.encode_descriptor(
            "process_start_time_seconds",
            "Unix time the daemon started serving, seconds",
            None,
            g.metric_type(),
        )?)?;
        Ok(())
    }
}

/// Receipts rejected by validation: every rejection but a bad signature (counted as a signature
/// mismatch) and `schema` (a decoding failure).
pub fn validation_failures(r: &tb_replay::snapshot::Rejected) -> u64 {
    [
        r.below_min_payment,
        r.key_not_found,
        r.replayed_nonce,
        r.invalid_values,
    ]
    .iter()
    .fold(0u64, |sum, n| sum.saturating_add(*n))
}

/// Turns prometheus-client's OpenMetrics text into the Prometheus text format (0.0.4) that every
/// scraper and `promtool check metrics` accept: counter families are named with their `_total`
/// sample name, `# EOF` is dropped, and `economics_epoch_tx_count` (a name fixed by the runbook)
/// is typed `untyped`, because the `_count` suffix is reserved for histograms and summaries.
pub fn prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::BTreeSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + 256);
    for line in openmetrics.lines() {
        if line == "# EOF" {
            continue;
        }
        let rewritten = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            if counters.contains(name) {
                Some(format!("{prefix}{name}_total {tail}"))
            } else if name == "economics_epoch_tx_count" && *prefix == "# TYPE " {
                Some(format!("{prefix}{name} untyped"))
            } else {
                None
            }
        });
        out.push_str(rewritten.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_design_metric_is_exported_in_prometheus_text() {
        let m = Metrics::new();
        m.set_mode(Mode::Shadow);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &Metrics::registry(&m)).unwrap();
        let text = prometheus_text(&text);
        for name in [
            "economics_block_reward_per_block",
            "economics_prev_market_metrics_utilization_ppm",
            "economics_prev_market_metrics_provider_margin_ppm",
            "economics_epoch_tx_count",
            "economics_epoch_tx_volume_block",
            "economics_epoch_treasury_inflow_block",
            "receipt_emitted_total",
            "receipt_validation_errors_total",
            "receipt_min_payment_rejected_total",
            "receipt_decoding_failures_total",
            "receipt_aggregate_sig_mismatch_total",
            "receipt_validation_failures_total",
            "pending_receipts_storage",
            "pending_receipts_compute",
            "pending_receipts_energy",
            "receipt_drain_depth",
            "proof_verification_latency_ms",
            "proof_verification_budget_ms",
            "governor_gate_state",
            "governor_gate_enter_streak",
            "governor_gate_exit_streak",
            "governor_intents_total",
            "governor_mode",
            "governor_last_closed_epoch",
            "governor_tip_height",
            "governor_ingest_stalled",
            "governor_decision_write_failures_total",
            "governor_rpc_requests_total",
            "governor_http_connections_refused_total",
        ] {
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "{name} missing:\n{text}"
            );
        }
        assert!(text.contains("# TYPE receipt_emitted_total counter"));
        assert!(text.contains("# TYPE economics_epoch_tx_count untyped"));
        assert!(!text.contains("# EOF"));
        assert!(text.contains("governor_mode{mode=\"shadow\"} 1"));
        assert!(text.contains("\ngovernor_ingest_stalled 0\n"), "{text}");
    }

    fn exposition(m: &Metrics) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &Metrics::registry(m)).unwrap();
        prometheus_text(&text)
    }

    #[test]
    fn operator_kit_series_follow_status() {
        let m = Metrics::new();
        let text = exposition(&m);
        for line in [
            "# TYPE governor_ingest_stalled gauge",
            "# TYPE governor_ingest_halted gauge",
            "# TYPE governor_last_close_timestamp_seconds gauge",
            "governor_expected_epoch_seconds -1",
            "governor_last_decision_attestation{state=\"unsigned\"} 0",
            "governor_last_decision_attestation{state=\"verified\"} 0",
            "# TYPE proof_verification_budget_seconds gauge",
            "# TYPE process_cpu_seconds_total counter",
            "# TYPE process_resident_memory_bytes gauge",
            "# TYPE process_open_fds gauge",
            "# TYPE process_start_time_seconds gauge",
        ] {
            assert!(text.contains(line), "{line} missing:\n{text}");
        }
        assert!(text
            .lines()
            .any(|l| l.starts_with("process_cpu_seconds_total ")));

        m.set_ingest(Some(
            "blocks-000000.jsonl:12: height: expected 11, found 12",
        ));
        m.set_attestation(Some((true, false)));
        let text = exposition(&m);
        assert!(text.contains("governor_ingest_stalled 1\n"), "{text}");
        assert!(text.contains("governor_ingest_halted 0\n"), "{text}");
        assert!(text.contains("governor_last_decision_attestation{state=\"unverified\"} 1"));
        assert!(text.contains("governor_last_decision_attestation{state=\"verified\"} 0"));

        m.set_ingest(Some("halted: writing the decision of epoch 3: disk full"));
        m.set_attestation(Some((false, false)));
        let text = exposition(&m);
        assert!(text.contains("governor_ingest_stalled 0\n"), "{text}");
        assert!(text.contains("governor_ingest_halted 1\n"), "{text}");
        assert!(text.contains("governor_last_decision_attestation{state=\"unsigned\"} 1"));
        assert!(text.contains("governor_last_decision_attestation{state=\"unverified\"} 0"));

        m.set_ingest(None);
        m.set_attestation(Some((true, true)));
        let text = exposition(&m);
        assert!(text.contains("governor_ingest_stalled 0\n"), "{text}");
        assert!(text.contains("governor_ingest_halted 0\n"), "{text}");
        assert!(text.contains("governor_last_decision_attestation{state=\"verified\"} 1"));
    }
}
