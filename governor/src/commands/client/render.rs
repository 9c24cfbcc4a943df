//! What the client commands print, as [`Display`] types over the daemon's answers: plain text,
//! no colour, columns aligned by character count. A handler prints one through
//! [`out!`](crate::out) or [`outln!`](crate::outln), and a test compares its `to_string()` with
//! the exact text.

use std::collections::BTreeMap;
use std::fmt::{self, Display, Formatter};
use std::path::Path;

use tb_config::Mode;

use crate::engine::{Gate, GateStatus, Intent};
use crate::rpc::{DecisionSummary, JournalReceipt, PeerState, PeerStatus, SnapshotResult, Status};

/// The human `status`, in the order of docs/operations.md, "Reading `tb-cli governor status`":
/// header, gates, pending intents, economics, telemetry gauges, release provenance + hint,
/// receipt health + hints, BlockTorch timeline. Ends with a newline.
pub(super) struct StatusView<'a>(
    /// The answer of `governor.status` to show.
    pub(super) &'a Status,
);

/// Intents: `id  action  state  created_epoch → epoch_apply`, then indented `reason:` and
/// `snapshot_hash=` lines. Ends with a newline.
pub(super) struct IntentsView<'a>(
    /// The intents `governor.intents` returned, in its order.
    pub(super) &'a [Intent],
);

/// One line per decision. Ends with a newline.
pub(super) struct DecisionsView<'a>(
    /// The decisions `governor.decisions` returned, in its order.
    pub(super) &'a [DecisionSummary],
);

/// The hashes and a short summary of one snapshot. Ends with a newline.
pub(super) struct SnapshotView<'a>(
    /// The answer of `governor.snapshot` to summarise.
    pub(super) &'a SnapshotResult,
);

/// What `snapshot --out FILE` says once the file is written and hashes as the governor said:
/// where it is, its hash and how to check it. Ends with a newline.
pub(super) struct SnapshotWrittenView<'a> {
    /// The file written, named so the operator can check it with `b3sum`.
    pub(super) path: &'a Path,
    /// The snapshot written, for its hash and attestation state.
    pub(super) result: &'a SnapshotResult,
}

/// An operator action the journal took.
#[derive(Debug, Clone, Copy)]
pub(super) enum Change {
    /// `tb-cli governor exit`: a manual exit of this gate.
    Exit(Gate),
    /// `tb-cli governor mode`: a switch to this mode.
    Mode(Mode),
}

/// `journaled <change> as seq N, effective at the close of epoch E` (no newline).
pub(super) struct JournaledView<'a> {
    /// What was journaled.
    pub(super) change: Change,
    /// What the governor answered: the seq and the epoch it takes effect at.
    pub(super) receipt: &'a JournalReceipt,
}

/// After a manual exit: what an exit journaled in shadow or paused mode does, and how to reach
/// apply mode, where runtime params change. One line, or nothing in apply mode.
pub(super) struct ExitNoteView {
    /// The governor's mode now, which decides what the exit does.
    pub(super) mode: Mode,
    /// The epoch at whose close the exit takes effect, the deadline for a mode change.
    pub(super) effective_epoch: u64,
}

/// One `status --watch` frame: on a terminal the screen is cleared first; every frame starts
/// with a header line `Every N s: tb-cli governor status (URL)  HH:MM:SS UTC  Ctrl-C to stop`,
/// then the status or why it could not be fetched.
pub(super) struct WatchFrame<'a> {
    /// Whether stdout is a terminal: only then is the screen cleared.
    pub(super) tty: bool,
    /// The redraw interval, shown in the header.
    pub(super) every_secs: u64,
    /// The daemon's URL, shown in the header.
    pub(super) url: &'a str,
    /// Now, as seconds since the Unix epoch, shown as the time of day.
    pub(super) unix_secs: u64,
    /// This round's fetch: the status, or the error that the next round retries.
    pub(super) fetched: &'a anyhow::Result<Status>,
}

impl Display for StatusView<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let s = self.0;
        status_header(f, s)?;
        status_gates(f, s)?;
        status_pending_intents(f, s)?;
        status_economics(f, s)?;
        status_telemetry(f, s)?;
        status_provenance(f, s)?;
        status_receipt_health(f, s)?;
        status_blocktorch(f, s)?;
        status_peers(f, &s.peers)
    }
}

/// The peers section: one line each (nothing without peers).
fn status_peers(f: &mut Formatter<'_>, peers: &[PeerStatus]) -> fmt::Result {
    if peers.is_empty() {
        return Ok(());
    }
    f.write_str(
        "
Peers
",
    )?;
    let rows: Vec<(&str, String)> = peers
        .iter()
        .map(|p| (p.url.as_str(), PeerLine(p).to_string()))
        .collect();
    pairs(f, "  ", &rows)?;
    if peers.iter().any(|p| p.divergence.is_some()) {
        f.write_str("  hint: tb-cli governor peers shows where they differ\n")?;
    }
    Ok(())
}

/// A peer's state in a few words.
struct PeerLine<'a>(&'a PeerStatus);

impl Display for PeerLine<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let p = self.0;
        let through = p
            .agreed_through
            .map_or_else(|| "no epoch yet".to_owned(), |e| format!("epoch {e}"));
        if let Some(d) = &p.divergence {
            write!(
                f,
                "DIVERGED at epoch {} ({} differs)",
                d.epoch,
                d.differs.as_str()
            )?;
            if let Some(e) = &p.error {
                write!(f, "; now unreachable: {e}")?;
            }
            return Ok(());
        }
        match p.state {
            PeerState::Pending => f.write_str("pending (not polled yet)"),
            PeerState::Agree => write!(f, "agree through {through}"),
            PeerState::Behind => write!(
                f,
                "behind by {} epochs (agrees through {through})",
                p.behind_by.unwrap_or(0)
            ),
            PeerState::ConfigDiffers if p.snapshots_compared => {
                write!(f, "config differs (snapshots agree through {through})")
            }
            PeerState::ConfigDiffers => {
                f.write_str("config differs (other replay settings: nothing compared)")
            }
            PeerState::Diverged => f.write_str("DIVERGED"),
            PeerState::Unreachable => write!(
                f,
                "UNREACHABLE: {}",
                p.error.as_deref().unwrap_or("no answer")
            ),
        }
    }
}

/// `tb-cli governor peers`: every peer with its state, and each divergence in full. Ends with
/// a newline.
pub(super) struct PeersView<'a>(
    /// The `peers` section of `governor.status`.
    pub(super) &'a [PeerStatus],
);

impl Display for PeersView<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str(
                "no peers configured (set peers.urls or TB_GOVERNOR_PEERS to compare with other \
                 governors)\n",
            );
        }
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            writeln!(f, "{}", p.url)?;
            let mut rows = vec![
                ("state", PeerLine(p).to_string()),
                ("last closed epoch", or_dash(p.last_closed_epoch)),
                ("config_hash", or_dash(p.config_hash.as_deref())),
            ];
            if let Some(d) = &p.divergence {
                rows.push(("diverged at epoch", d.epoch.to_string()));
                rows.push(("snapshot_hash ours", d.mine.snapshot_hash.clone()));
                rows.push(("snapshot_hash theirs", d.theirs.snapshot_hash.clone()));
                rows.push(("decision_hash ours", d.mine.decision_hash.clone()));
                rows.push(("decision_hash theirs", d.theirs.decision_hash.clone()));
                rows.push((
                    "snapshot fields",
                    if d.fields.is_empty() {
                        "- (the snapshots are equal or could not be fetched)".to_owned()
                    } else {
                        d.fields.join(", ")
                    },
                ));
            }
            pairs(f, "  ", &rows)?;
            if p.divergence.is_some() {
                writeln!(
                    f,
                    "  hint: find which node read a different chain (tb-cli governor audit on \
                     each), fix it, then: tb-cli governor peers ack {} --reason … --operator …",
                    p.url
                )?;
            }
        }
        Ok(())
    }
}

fn status_header(f: &mut Formatter<'_>, s: &Status) -> fmt::Result {
    f.write_str("Launch Governor\n")?;
    let mut header = vec![
        (
            "enabled",
            if s.enabled {
                "yes".to_owned()
            } else {
                "no (paused: gates are not judged, params are frozen)".to_owned()
            },
        ),
        (
            "mode",
            format!(
                "{} (effective from epoch {})",
                s.mode, s.mode_effective_epoch
            ),
        ),
        (
            "last closed epoch",
            s.last_closed_epoch
                .map_or_else(|| "- (none yet)".to_owned(), |e| e.to_string()),
        ),
        ("tip height", or_dash(s.tip_height)),
        ("autopilot", autopilot(s)),
        ("rules_version", s.rules_version.to_string()),
        ("config_hash", s.config_hash.clone()),
        ("ingest", format!("{}:{}", s.ingest.file, s.ingest.line)),
    ];
    if s.ingest.stall.is_some() {
        header.push(("ingest state", "STALLED".to_owned()));
    }
    pairs(f, "  ", &header)?;
    if let Some(stall) = &s.ingest.stall {
        writeln!(
            f,
            "STALLED: {stall}\n         \
             (ingestion has stopped here; no epoch closes until it resumes)"
        )?;
    }
    if let Some(err) = &s.config_reload_error {
        writeln!(
            f,
            "CONFIG RELOAD REFUSED: {err}\n         (still running on the previous configuration)"
        )?;
    }
    Ok(())
}

fn status_gates(f: &mut Formatter<'_>, s: &Status) -> fmt::Result {
    f.write_str("\ngates\n")?;
    let mut rows = vec![cells(["NAME", "STATE", "ENTER", "EXIT", "REASON"])];
    for g in &s.gates {
        rows.push(vec![
            g.name.to_string(),
            match g.state {
                GateStatus::Active => "active".to_owned(),
                GateStatus::Inactive => "inactive".to_owned(),
            },
            format!("enter {}/{}", g.enter_streak, g.enter_streak_required),
            format!("exit {}/{}", g.exit_streak, g.exit_streak_required),
            g.reason.clone(),
        ]);
    }
    table(f, "  ", &rows)
}

fn status_pending_intents(f: &mut Formatter<'_>, s: &Status) -> fmt::Result {
    writeln!(f, "\npending intents ({})", s.pending_intents.len())?;
    if s.pending_intents.is_empty() {
        return f.write_str("  none\n");
    }
    let mut rows = vec![cells(["ID", "EPOCH_APPLY", "REASON"])];
    for i in &s.pending_intents {
        rows.push(vec![
            i.id.clone(),
            i.epoch_apply.to_string(),
            i.reason.clone(),
        ]);
    }
    table(f, "  ", &rows)
}

fn status_economics(f: &mut Formatter<'_>, s: &Status) -> fmt::Result {
    let last_hash = (
        "last_economics_snapshot_hash",
        or_dash(s.last_economics_snapshot_hash.as_deref()),
    );
    let Some(e) = &s.economics else {
        f.write_str("\neconomics sample\n  none: no epoch has closed yet\n")?;
        return pairs(f, "  ", &[last_hash]);
    };
    writeln!(f, "\neconomics sample (epoch {})", e.epoch)?;
    let shares: Vec<String> = e
        .subsidy_share_bps
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    pairs(
        f,
        "  ",
        &[
            ("tx_count", e.tx_count.to_string()),
            ("tx_volume_micro", e.tx_volume_micro.to_string()),
            ("treasury_inflow_micro", e.treasury_inflow_micro.to_string()),
            ("unique_miners", e.unique_miners.to_string()),
            (
                "block_reward_per_block_micro",
                e.block_reward_per_block_micro.to_string(),
            ),
            ("reward_volatility_bps", e.reward_volatility_bps.to_string()),
            ("subsidy_share_bps", shares.join(", ")),
            last_hash,
        ],
    )
}

fn status_telemetry(f: &mut Formatter<'_>, s: &Status) -> fmt::Result {
    f.write_str("\ntelemetry gauges (ppm)\n")?;
    if s.telemetry_gauges_ppm.is_empty() {
        return f.write_str("  none\n");
    }
    let rows: Vec<(&str, String)> = s
        .telemetry_gauges_ppm
        .iter()
        .map(|(k, v)| (k.as_str(), or_dash(*v)))
        .collect();
    pairs(f, "  ", &rows)
}

fn status_provenance(f: &mut Formatter<'_>, s: &Status) -> fmt::Result {
    f.write_str("\nrelease provenance\n")?;
    let Some(p) = &s.release_provenance else {
        return f.write_str(
            "  none: no decision has been written yet\n  \
             hint: no epoch has closed yet; provenance appears when the first epoch closes and \
             its decision file is written\n",
        );
    };
    pairs(
        f,
        "  ",
        &[
            ("epoch", p.epoch.to_string()),
            ("decision_hash", p.decision_hash.clone()),
            ("snapshot_hash", p.snapshot_hash.clone()),
            (
                "attestation",
                p.attestation
                    .as_ref()
                    .map_or_else(|| "unsigned".to_owned(), |k| format!("keyid {k}")),
            ),
            ("verified", yes_no(p.verified).to_owned()),
        ],
    )?;
    writeln!(f, "  hint: {}", p.hint)
}

fn status_receipt_health(f: &mut Formatter<'_>, s: &Status) -> fmt::Result {
    f.write_str("\nreceipt health summary\n")?;
    let h = &s.receipt_health;
    pairs(
        f,
        "  ",
        &[
            ("accepted", counters(&h.accepted)),
            ("rejected", counters(&h.rejected)),
            (
                "signature_mismatch_total",
                h.signature_mismatch_total.to_string(),
            ),
            (
                "validation_failure_total",
                h.validation_failure_total.to_string(),
            ),
            (
                "decoding_failure_total",
                h.decoding_failure_total.to_string(),
            ),
            (
                "pending_receipts",
                format!(
                    "storage {}, compute {}, energy {}",
                    h.pending_storage, h.pending_compute, h.pending_energy
                ),
            ),
            ("receipt_drain_depth", h.drain_depth.to_string()),
        ],
    )?;
    if h.hints.is_empty() {
        return f.write_str("  hint: receipts look healthy\n");
    }
    for hint in &h.hints {
        writeln!(f, "  hint: {hint}")?;
    }
    Ok(())
}

fn status_blocktorch(f: &mut Formatter<'_>, s: &Status) -> fmt::Result {
    let b = &s.blocktorch;
    f.write_str("\nBlockTorch job timeline\n")?;
    let latency = match b.proof_latency_p95_ms {
        Some(ms) if ms > b.budget_ms => {
            format!("p95 {ms} ms (budget {} ms) OVER BUDGET", b.budget_ms)
        }
        Some(ms) => format!("p95 {ms} ms (budget {} ms)", b.budget_ms),
        None => "-".to_owned(),
    };
    pairs(
        f,
        "  ",
        &[
            (
                "header",
                s.last_closed_epoch
                    .map_or_else(|| "-".to_owned(), |e| format!("epoch {e}")),
            ),
            ("→ kernel digest", or_dash(b.kernel_digest.as_deref())),
            ("→ benchmark commit", or_dash(b.benchmark_commit.as_deref())),
            ("→ proof latency", latency),
            ("→ aggregator trace", or_dash(b.aggregator_trace.as_deref())),
            ("source", b.source.clone()),
        ],
    )
}

impl Display for IntentsView<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let intents = self.0;
        if intents.is_empty() {
            return f.write_str("no intents match\n");
        }
        let width = |cell: fn(&Intent) -> usize| intents.iter().map(cell).max().unwrap_or(0);
        let id_w = width(|i| i.id.chars().count());
        let action_w = width(|i| i.action.as_str().len());
        let state_w = width(|i| i.state.as_str().len());
        for i in intents {
            writeln!(
                f,
                "{:<id_w$}  {:<action_w$}  {:<state_w$}  {} → {}",
                i.id,
                i.action.as_str(),
                i.state.as_str(),
                i.created_epoch,
                i.epoch_apply
            )?;
            writeln!(f, "    reason: {}", i.reason)?;
            writeln!(f, "    snapshot_hash={}", i.snapshot_hash)?;
        }
        Ok(())
    }
}

impl Display for DecisionsView<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("no decisions yet (no epoch has closed)\n");
        }
        let rows: Vec<Vec<String>> = self
            .0
            .iter()
            .map(|d| {
                vec![
                    format!("epoch {}", d.epoch),
                    d.mode.to_string(),
                    if d.attested { "signed" } else { "unsigned" }.to_owned(),
                    format!("decision_hash={}", d.decision_hash),
                    format!("snapshot_hash={}", d.snapshot_hash),
                    if d.intents.is_empty() {
                        "intents: -".to_owned()
                    } else {
                        format!("intents: {}", d.intents.join(", "))
                    },
                ]
            })
            .collect();
        table(f, "", &rows)
    }
}

impl Display for SnapshotView<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let r = self.0;
        let s = &r.snapshot;
        writeln!(
            f,
            "snapshot of epoch {} (chain {}, heights {}..={})",
            s.epoch, s.chain_id, s.first_height, s.last_height
        )?;
        let accepted = &s.receipts.accepted;
        let rejected = &s.receipts.rejected;
        let accepted_total = sum(&[
            accepted.storage,
            accepted.compute,
            accepted.energy,
            accepted.ad,
            accepted.slash,
        ]);
        let rejected_total = sum(&[
            rejected.schema,
            rejected.below_min_payment,
            rejected.key_not_found,
            rejected.bad_signature,
            rejected.replayed_nonce,
            rejected.invalid_values,
        ]);
        pairs(
            f,
            "  ",
            &[
                ("snapshot_hash", r.snapshot_hash.clone()),
                ("decision_hash", r.decision_hash.clone()),
                (
                    "prev_snapshot_hash",
                    or_dash(s.prev_snapshot_hash.as_deref()),
                ),
                (
                    "attestation",
                    match (&r.attestation, r.attestation_state.as_str()) {
                        (None, _) => "missing (no .sig sidecar)".to_owned(),
                        (Some(a), "") => format!("keyid {}", a.keyid),
                        (Some(a), state) => format!("keyid {} ({state})", a.keyid),
                    },
                ),
                ("tx_count", s.tx_count.to_string()),
                ("tx_volume_micro", s.tx_volume_micro.to_string()),
                ("treasury_inflow_micro", s.treasury_inflow_micro.to_string()),
                ("unique_miners", s.unique_miners.to_string()),
                (
                    "block_reward_per_block_micro",
                    s.controls.block_reward_per_block_micro.to_string(),
                ),
                (
                    "receipts",
                    format!("accepted {accepted_total}, rejected {rejected_total}"),
                ),
                (
                    "compute proofs",
                    format!(
                        "{} (p95 {} ms)",
                        s.compute_proofs.count,
                        or_dash(s.compute_proofs.p95_ms)
                    ),
                ),
            ],
        )?;
        if !r.attestation_hint.is_empty() {
            writeln!(f, "  hint: {}", r.attestation_hint)?;
        }
        f.write_str("  hint: pass --out FILE to save the exact bytes, then check them with b3sum\n")
    }
}

impl Display for SnapshotWrittenView<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        let r = self.result;
        writeln!(f, "wrote {path}")?;
        writeln!(f, "snapshot_hash={}", r.snapshot_hash)?;
        writeln!(f, "check it with: b3sum {path}")?;
        if !r.attestation_state.is_empty() {
            writeln!(f, "attestation={}", r.attestation_state)?;
            writeln!(f, "hint: {}", r.attestation_hint)?;
        }
        Ok(())
    }
}

impl Display for Change {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Change::Exit(gate) => write!(f, "manual exit of {gate}"),
            Change::Mode(mode) => write!(f, "mode change to {mode}"),
        }
    }
}

impl Display for JournaledView<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "journaled {} as seq {}, effective at the close of epoch {}",
            self.change, self.receipt.seq, self.receipt.effective_epoch
        )
    }
}

impl Display for ExitNoteView {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let e = self.effective_epoch;
        let how = format_args!(
            "to get there, journal before epoch {e} closes: tb-cli governor mode apply --reason \
             \"…\" --operator <name> (and set shadow_only = false, enabled = true in \
             governor.toml so a restart keeps it)"
        );
        match self.mode {
            Mode::Apply => Ok(()),
            Mode::Shadow => writeln!(
                f,
                "note: the governor is in shadow mode. Runtime params (params, \
                 runtime/params.json) change only in apply mode: at the close of epoch {e} this \
                 exit turns the gate's flag off in shadow_params only. The first apply-mode \
                 close then sets params equal to shadow_params (this exit included); {how}"
            ),
            Mode::Paused => writeln!(
                f,
                "note: the governor is paused. A manual exit consumed at a paused close is \
                 ignored, and runtime params (params, runtime/params.json) change only in apply \
                 mode. The mode of a close is the one after all its journal events, so this \
                 exit counts if apply mode is journaled for the same close; {how}"
            ),
        }
    }
}

impl Display for WatchFrame<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if self.tty {
            f.write_str("\x1b[H\x1b[2J")?;
        }
        let day = self.unix_secs % 86_400;
        writeln!(
            f,
            "Every {} s: tb-cli governor status ({})  {:02}:{:02}:{:02} UTC  Ctrl-C to stop\n",
            self.every_secs,
            self.url,
            day / 3600,
            day % 3600 / 60,
            day % 60
        )?;
        match self.fetched {
            Ok(status) => writeln!(f, "{}", StatusView(status)),
            Err(e) => writeln!(f, "error: {e:#}\n(retrying every {} s)\n", self.every_secs),
        }
    }
}

/// `-` for a missing value.
fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn yes_no(value: bool) -> &'static str {
    if value {
        "yes"
    } else {
        "no"
    }
}

/// A table row of fixed titles.
fn cells<const N: usize>(titles: [&str; N]) -> Vec<String> {
    titles.map(str::to_owned).to_vec()
}

/// Saturating sum of counters.
fn sum(values: &[u64]) -> u64 {
    values.iter().fold(0, |a, v| a.saturating_add(*v))
}

/// Writes `text` without its trailing whitespace, then a newline.
fn line(f: &mut Formatter<'_>, text: &str) -> fmt::Result {
    writeln!(f, "{}", text.trim_end())
}

/// Writes `rows` as `indent key  value` lines with the keys padded to one width.
fn pairs(f: &mut Formatter<'_>, indent: &str, rows: &[(&str, String)]) -> fmt::Result {
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    for (key, value) in rows {
        line(f, &format!("{indent}{key:<width$}  {value}"))?;
    }
    Ok(())
}

/// Writes a table: every column but the last padded to its widest cell.
fn table(f: &mut Formatter<'_>, indent: &str, rows: &[Vec<String>]) -> fmt::Result {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    for row in rows {
        let mut text = indent.to_owned();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        line(f, &text)?;
    }
    Ok(())
}

/// `economics_autopilot=true|false` from the runtime params (the runbook's confirmation line),
/// noting the shadow params when they differ.
fn autopilot(s: &Status) -> String {
    let runtime = format!("economics_autopilot={}", s.params.economics_autopilot);
    if s.shadow_params.economics_autopilot == s.params.economics_autopilot {
        runtime
    } else {
        format!(
            "{runtime} (shadow_params: economics_autopilot={})",
            s.shadow_params.economics_autopilot
        )
    }
}

/// A counter map's total, with its non-zero counters by name.
fn counters(map: &BTreeMap<String, u64>) -> String {
    let total = map.values().fold(0u64, |sum, v| sum.saturating_add(*v));
    let parts: Vec<String> = map
        .iter()
        .filter(|(_, v)| **v != 0)
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    if parts.is_empty() {
        total.to_string()
    } else {
        format!("{total}  ({})", parts.join(", "))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::fixtures::{intent, snapshot_result, status};
    use super::*;
    use crate::engine::Gate;

    #[test]
    fn status_in_design_order() {
        let expected = "\
Launch Governor
  enabled            yes
  mode               shadow (effective from epoch 0)
  last closed epoch  11
  tip height         1450
  autopilot          economics_autopilot=false
  rules_version      1
  config_hash        c0ffee
  ingest             chain/000000.jsonl:1451

gates
  NAME           STATE     ENTER      EXIT      REASON
  economics      inactive  enter 2/3  exit 0/2  economics: enter ok
  storage        inactive  enter 2/3  exit 0/2  storage: enter ok
  compute        inactive  enter 2/3  exit 0/2  compute: enter ok
  energy         inactive  enter 2/3  exit 0/2  energy: enter ok
  ad             inactive  enter 2/3  exit 0/2  ad: enter ok
  ad_contextual  inactive  enter 2/3  exit 0/2  ad_contextual: enter ok
  ad_presence    inactive  enter 2/3  exit 0/2  ad_presence: enter ok
  operational    inactive  enter 2/3  exit 0/2  operational: enter ok

pending intents (1)
  ID                      EPOCH_APPLY  REASON
  compute-00000011-enter  13           enter streak 3/3

economics sample (epoch 11)
  tx_count                      1000
  tx_volume_micro               5000000
  treasury_inflow_micro         10000
  unique_miners                 7
  block_reward_per_block_micro  1000000
  reward_volatility_bps         12
  subsidy_share_bps             compute 2500, storage 2500
  last_economics_snapshot_hash  abababababababababababababababababababababababababababababababab

telemetry gauges (ppm)
  compute.utilization  600000
  energy.utilization   -

release provenance
  epoch          11
  decision_hash  dededededededededededededededededededededededededededededededede
  snapshot_hash  abababababababababababababababababababababababababababababababab
  attestation    unsigned
  verified       no
  hint: signing is off: set TB_GOVERNOR_SIGN=1

receipt health summary
  accepted                  15  (compute 5, storage 10)
  rejected                  1  (bad_signature 1)
  signature_mismatch_total  1
  validation_failure_total  0
  decoding_failure_total    0
  pending_receipts          storage 3, compute 2, energy 1
  receipt_drain_depth       7
  hint: receipts look healthy

BlockTorch job timeline
  header              epoch 11
  → kernel digest     kd
  → benchmark commit  -
  → proof latency     p95 120 ms (budget 500 ms)
  → aggregator trace  -
  source              chain
";
        assert_eq!(StatusView(&status()).to_string(), expected);
    }

    #[test]
    fn status_when_stalled_signed_and_over_budget() {
        let mut s = status();
        s.ingest.stall = Some("chain/000000.jsonl:1451: amount: not an integer".to_owned());
        s.config_reload_error = Some("gates.compute changed mid-chain".to_owned());
        s.blocktorch.proof_latency_p95_ms = Some(501);
        s.gates[0].state = GateStatus::Active;
        if let Some(p) = &mut s.release_provenance {
            p.attestation = Some("0123456789abcdef".to_owned());
            p.verified = true;
        }
        let expected = "\
Launch Governor
  enabled            yes
  mode               shadow (effective from epoch 0)
  last closed epoch  11
  tip height         1450
  autopilot          economics_autopilot=false
  rules_version      1
  config_hash        c0ffee
  ingest             chain/000000.jsonl:1451
  ingest state       STALLED
STALLED: chain/000000.jsonl:1451: amount: not an integer
         (ingestion has stopped here; no epoch closes until it resumes)
CONFIG RELOAD REFUSED: gates.compute changed mid-chain
         (still running on the previous configuration)

gates
  NAME           STATE     ENTER      EXIT      REASON
  economics      active    enter 2/3  exit 0/2  economics: enter ok
  storage        inactive  enter 2/3  exit 0/2  storage: enter ok
  compute        inactive  enter 2/3  exit 0/2  compute: enter ok
  energy         inactive  enter 2/3  exit 0/2  energy: enter ok
  ad             inactive  enter 2/3  exit 0/2  ad: enter ok
  ad_contextual  inactive  enter 2/3  exit 0/2  ad_contextual: enter ok
  ad_presence    inactive  enter 2/3  exit 0/2  ad_presence: enter ok
  operational    inactive  enter 2/3  exit 0/2  operational: enter ok

pending intents (1)
  ID                      EPOCH_APPLY  REASON
  compute-00000011-enter  13           enter streak 3/3

economics sample (epoch 11)
  tx_count                      1000
  tx_volume_micro               5000000
  treasury_inflow_micro         10000
  unique_miners                 7
  block_reward_per_block_micro  1000000
  reward_volatility_bps         12
  subsidy_share_bps             compute 2500, storage 2500
  last_economics_snapshot_hash  abababababababababababababababababababababababababababababababab

telemetry gauges (ppm)
  compute.utilization  600000
  energy.utilization   -

release provenance
  epoch          11
  decision_hash  dededededededededededededededededededededededededededededededede
  snapshot_hash  abababababababababababababababababababababababababababababababab
  attestation    keyid 0123456789abcdef
  verified       yes
  hint: signing is off: set TB_GOVERNOR_SIGN=1

receipt health summary
  accepted                  15  (compute 5, storage 10)
  rejected                  1  (bad_signature 1)
  signature_mismatch_total  1
  validation_failure_total  0
  decoding_failure_total    0
  pending_receipts          storage 3, compute 2, energy 1
  receipt_drain_depth       7
  hint: receipts look healthy

BlockTorch job timeline
  header              epoch 11
  → kernel digest     kd
  → benchmark commit  -
  → proof latency     p95 501 ms (budget 500 ms) OVER BUDGET
  → aggregator trace  -
  source              chain
";
        assert_eq!(StatusView(&s).to_string(), expected);
    }

    #[test]
    fn status_before_the_first_epoch() {
        let mut s = status();
        s.last_closed_epoch = None;
        s.tip_height = None;
        s.economics = None;
        s.last_economics_snapshot_hash = None;
        s.release_provenance = None;
        s.pending_intents.clear();
        s.telemetry_gauges_ppm.clear();
        s.receipt_health.hints = vec!["many bad signatures: check providers.json".to_owned()];
        s.receipt_health.rejected = BTreeMap::from([("schema".to_owned(), 0)]);
        s.shadow_params.economics_autopilot = true;
        let expected = "\
Launch Governor
  enabled            yes
  mode               shadow (effective from epoch 0)
  last closed epoch  - (none yet)
  tip height         -
  autopilot          economics_autopilot=false (shadow_params: economics_autopilot=true)
  rules_version      1
  config_hash        c0ffee
  ingest             chain/000000.jsonl:1451

gates
  NAME           STATE     ENTER      EXIT      REASON
  economics      inactive  enter 2/3  exit 0/2  economics: enter ok
  storage        inactive  enter 2/3  exit 0/2  storage: enter ok
  compute        inactive  enter 2/3  exit 0/2  compute: enter ok
  energy         inactive  enter 2/3  exit 0/2  energy: enter ok
  ad             inactive  enter 2/3  exit 0/2  ad: enter ok
  ad_contextual  inactive  enter 2/3  exit 0/2  ad_contextual: enter ok
  ad_presence    inactive  enter 2/3  exit 0/2  ad_presence: enter ok
  operational    inactive  enter 2/3  exit 0/2  operational: enter ok

pending intents (0)
  none

economics sample
  none: no epoch has closed yet
  last_economics_snapshot_hash  -

telemetry gauges (ppm)
  none

release provenance
  none: no decision has been written yet
  hint: no epoch has closed yet; provenance appears when the first epoch closes and its decision file is written

receipt health summary
  accepted                  15  (compute 5, storage 10)
  rejected                  0
  signature_mismatch_total  1
  validation_failure_total  0
  decoding_failure_total    0
  pending_receipts          storage 3, compute 2, energy 1
  receipt_drain_depth       7
  hint: many bad signatures: check providers.json

BlockTorch job timeline
  header              -
  → kernel digest     kd
  → benchmark commit  -
  → proof latency     p95 120 ms (budget 500 ms)
  → aggregator trace  -
  source              chain
";
        assert_eq!(StatusView(&s).to_string(), expected);
    }

    #[test]
    fn intents_show_their_action_state_and_snapshot_hash() {
        let intents = vec![intent(Gate::AdContextual, 12), intent(Gate::Compute, 9)];
        let expected = "\
ad_contextual-00000012-enter  enter  pending  12 → 14
    reason: enter streak 3/3
    snapshot_hash=000000000000000000000000000000000000000000000000000000000000000c
compute-00000009-enter        enter  pending  9 → 11
    reason: enter streak 3/3
    snapshot_hash=0000000000000000000000000000000000000000000000000000000000000009
";
        assert_eq!(IntentsView(&intents).to_string(), expected);
        assert_eq!(IntentsView(&[]).to_string(), "no intents match\n");
    }

    #[test]
    fn decisions_one_line_each() {
        let d = |epoch: u64, attested, intents: &[&str]| DecisionSummary {
            epoch,
            decision_hash: "de".repeat(32),
            snapshot_hash: "ab".repeat(32),
            mode: Mode::Shadow,
            intents: intents.iter().map(|i| (*i).to_owned()).collect(),
            attested,
        };
        let expected = "\
epoch 9   shadow  signed    decision_hash=dededededededededededededededededededededededededededededededede  snapshot_hash=abababababababababababababababababababababababababababababababab  intents: a, b
epoch 10  shadow  unsigned  decision_hash=dededededededededededededededededededededededededededededededede  snapshot_hash=abababababababababababababababababababababababababababababababab  intents: -
";
        assert_eq!(
            DecisionsView(&[d(9, true, &["a", "b"]), d(10, false, &[])]).to_string(),
            expected
        );
        assert_eq!(
            DecisionsView(&[]).to_string(),
            "no decisions yet (no epoch has closed)\n"
        );
    }

    #[test]
    fn journaled_changes() {
        let receipt = JournalReceipt {
            seq: 4,
            effective_epoch: 12,
        };
        let exit = JournaledView {
            change: Change::Exit(Gate::Compute),
            receipt: &receipt,
        };
        assert_eq!(
            exit.to_string(),
            "journaled manual exit of compute as seq 4, effective at the close of epoch 12"
        );
        let mode = JournaledView {
            change: Change::Mode(Mode::Apply),
            receipt: &receipt,
        };
        assert_eq!(
            mode.to_string(),
            "journaled mode change to apply as seq 4, effective at the close of epoch 12"
        );
    }

    #[test]
    fn exit_notes_say_how_to_reach_apply_mode() {
        let note = |mode| {
            ExitNoteView {
                mode,
                effective_epoch: 12,
            }
            .to_string()
        };
        assert_eq!(note(Mode::Apply), "");
        assert_eq!(
            note(Mode::Shadow),
            "note: the governor is in shadow mode. Runtime params (params, runtime/params.json) \
             change only in apply mode: at the close of epoch 12 this exit turns the gate's flag \
             off in shadow_params only. The first apply-mode close then sets params equal to \
             shadow_params (this exit included); to get there, journal before epoch 12 closes: \
             tb-cli governor mode apply --reason \"…\" --operator <name> (and set shadow_only = \
             false, enabled = true in governor.toml so a restart keeps it)\n"
        );
        assert_eq!(
            note(Mode::Paused),
            "note: the governor is paused. A manual exit consumed at a paused close is ignored, \
             and runtime params (params, runtime/params.json) change only in apply mode. The \
             mode of a close is the one after all its journal events, so this exit counts if \
             apply mode is journaled for the same close; to get there, journal before epoch 12 \
             closes: tb-cli governor mode apply --reason \"…\" --operator <name> (and set \
             shadow_only = false, enabled = true in governor.toml so a restart keeps it)\n"
        );
    }

    #[test]
    fn watch_frames_clear_the_screen_only_on_a_terminal() {
        let failed = Err(anyhow::anyhow!("cannot reach the governor"));
        let frame = WatchFrame {
            tty: true,
            every_secs: 2,
            url: "http://127.0.0.1:7878",
            unix_secs: 86_400 + 3_723,
            fetched: &failed,
        };
        assert_eq!(
            frame.to_string(),
            "\x1b[H\x1b[2JEvery 2 s: tb-cli governor status (http://127.0.0.1:7878)  01:02:03 UTC  \
             Ctrl-C to stop\n\nerror: cannot reach the governor\n(retrying every 2 s)\n\n"
        );
        let fetched = Ok(status());
        let piped = WatchFrame {
            tty: false,
            every_secs: 5,
            url: "u",
            unix_secs: 0,
            fetched: &fetched,
        };
        assert_eq!(
            piped.to_string(),
            format!(
                "Every 5 s: tb-cli governor status (u)  00:00:00 UTC  Ctrl-C to stop\n\n{}\n",
                StatusView(&status())
            )
        );
    }

    #[test]
    fn snapshot_summary() {
        let r = SnapshotResult {
            snapshot_hash: "5a".repeat(32),
            ..snapshot_result()
        };
        let expected = "\
snapshot of epoch 3 (chain tb-sim, heights 360..=479)
  snapshot_hash                 5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a
  decision_hash                 dededededededededededededededededededededededededededededededede
  prev_snapshot_hash            -
  attestation                   missing (no .sig sidecar)
  tx_count                      9
  tx_volume_micro               90
  treasury_inflow_micro         3
  unique_miners                 2
  block_reward_per_block_micro  1000
  receipts                      accepted 4, rejected 0
  compute proofs                0 (p95 - ms)
  hint: epoch 3 has no attestation. Add it: tb-governor sign
  hint: pass --out FILE to save the exact bytes, then check them with b3sum
";
        assert_eq!(SnapshotView(&r).to_string(), expected);
    }

    #[test]
    fn snapshot_written() {
        let r = SnapshotResult {
            snapshot_hash: "5a".repeat(32),
            ..snapshot_result()
        };
        let written = SnapshotWrittenView {
            path: Path::new("out/snap.json"),
            result: &r,
        };
        assert_eq!(
            written.to_string(),
            "\
wrote out/snap.json
snapshot_hash=5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a
check it with: b3sum out/snap.json
attestation=missing
hint: epoch 3 has no attestation. Add it: tb-governor sign
"
        );
        let unchecked = SnapshotResult {
            attestation_state: String::new(),
            ..r
        };
        let written = SnapshotWrittenView {
            path: Path::new("s.json"),
            result: &unchecked,
        };
        assert_eq!(
            written.to_string(),
            format!(
                "wrote s.json\nsnapshot_hash={}\ncheck it with: b3sum s.json\n",
                unchecked.snapshot_hash
            )
        );
    }
}
