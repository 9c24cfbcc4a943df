//! The peer poller: compares this node's decisions with each configured peer's, epoch by epoch
//! (the rules are [`crate::fleet`]'s).
//!
//! One task per peer polls it every `peers.poll_ms`; at most [`IN_FLIGHT`] peers are mid-poll at
//! once. Every call has a time limit and a response size cap, and every answer is checked before
//! it is believed: a peer that answers garbage is `unreachable` with the reason, never a
//! divergence. Nothing here touches ingest, the journal or a decision.
//!
//! What must survive a restart lives in `state/peers.json`, replaced atomically: per peer, the
//! last epoch found equal (so comparing resumes where it stopped) and the first divergence, which
//! stays reported until an operator acknowledges it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use jsonrpsee::http_client::{HeaderMap, HeaderValue, HttpClient, HttpClientBuilder};
use serde::{Deserialize, Serialize};
use tb_config::{PeersConfig, Secret};
use tokio::sync::Semaphore;

use super::files::write_replace;
use super::state::{lock, Shared};
use crate::engine::{EventKind, JournalEvent};
use crate::fleet::{self, ConfigHashes, EpochHashes, Scope};
use crate::rpc::{Divergence, GovernorApiClient, PeerState, PeerStatus, Status};

/// Peers polled at the same time, at most.
pub const IN_FLIGHT: usize = 4;
/// Decision summaries asked for per call.
const PAGE: u32 = 256;
/// Calls of `governor.decisions` per peer per poll, at most: a long history is compared over
/// several polls instead of one long one.
const PAGES_PER_POLL: usize = 8;
/// Largest answer read from a peer.
const MAX_RESPONSE_BYTES: u32 = 4 << 20;
/// Snapshot field paths reported for a divergence, at most.
const MAX_FIELDS: usize = 32;
/// Format of `state/peers.json`.
const FORMAT: u32 = 1;

/// What is kept of one peer across restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Saved {
    /// The last epoch both closed and found equal: comparing resumes after it.
    pub agreed_through: Option<u64>,
    /// The first divergence, reported until acknowledged.
    pub divergence: Option<Divergence>,
    /// Journal seq of the last acknowledgement applied, so an acknowledgement journaled just
    /// before a crash is still applied at the next start.
    pub acked_seq: Option<u64>,
}

impl Saved {
    /// Clears the divergence as acknowledged by journal event `seq`, so comparing resumes at
    /// the epoch that diverged; returns that epoch.
    fn acknowledge(&mut self, seq: u64) -> Option<u64> {
        let epoch = self.divergence.take().map(|d| d.epoch);
        if let Some(e) = epoch {
            self.agreed_through = e.checked_sub(1);
        }
        self.acked_seq = Some(seq);
        epoch
    }
}

/// `state/peers.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    format: u32,
    /// By URL.
    peers: BTreeMap<String, Saved>,
}

/// The saved state of every peer, shared by the poll tasks and the RPC server (which applies
/// acknowledgements).
#[derive(Debug)]
pub struct Book {
    /// `state/peers.json`.
    path: PathBuf,
    /// By URL; written to `path` after every change.
    saved: Mutex<BTreeMap<String, Saved>>,
}

impl Book {
    /// Reads `state/peers.json` under `state_dir` (missing: nothing saved yet) and applies the
    /// acknowledgements in `journal` it does not hold yet (one journaled just before a crash).
    /// Nothing is written until the first change.
    pub fn load(state_dir: &Path, journal: &[JournalEvent]) -> Result<Book> {
        let path = state_dir.join("peers.json");
        let saved = match std::fs::read(&path) {
            Ok(bytes) => {
                let file: File = serde_json::from_slice(&bytes).with_context(|| {
                    format!(
                        "{} is not a peers state file (it holds each peer's last agreed epoch and \
                         any unacknowledged divergence; move it aside to start comparing afresh)",
                        path.display()
                    )
                })?;
                anyhow::ensure!(
                    file.format == FORMAT,
                    "{}: format {} is not {FORMAT}",
                    path.display(),
                    file.format
                );
                file.peers
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let mut saved = saved;
        for ev in journal {
            if let EventKind::AckPeer { peer } = &ev.kind {
                let entry = saved.entry(peer.clone()).or_default();
                if entry.acked_seq.is_none_or(|s| s < ev.seq) {
                    entry.acknowledge(ev.seq);
                }
            }
        }
        Ok(Book {
            path,
            saved: Mutex::new(saved),
        })
    }

    /// What is saved of `url`.
    pub fn get(&self, url: &str) -> Saved {
        lock(&self.saved).get(url).cloned().unwrap_or_default()
    }

    /// Replaces what is saved of `url`, writing the file when it changed.
    pub fn put(&self, url: &str, saved: Saved) -> Result<()> {
        let mut all = lock(&self.saved);
        if all.get(url) == Some(&saved) {
            return Ok(());
        }
        all.insert(url.to_owned(), saved);
        let file = File {
            format: FORMAT,
            peers: all.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&file)?;
        write_replace(&self.path, &bytes)
            .with_context(|| format!("writing {}", self.path.display()))
    }

    /// Clears the divergence of `url` as acknowledged by journal event `seq`; comparing resumes
    /// at the epoch that diverged. Returns the epoch it was, if one was reported.
    pub fn acknowledge(&self, url: &str, seq: u64) -> Result<Option<u64>> {
        let mut saved = self.get(url);
        let epoch = saved.acknowledge(seq);
        self.put(url, saved)?;
        Ok(epoch)
    }
}

/// The status of a peer before its first poll in this process.
pub fn initial_status(url: &str, saved: &Saved) -> PeerStatus {
    PeerStatus {
        url: url.to_owned(),
        state: if saved.divergence.is_some() {
            PeerState::Diverged
        } else {
            PeerState::Pending
        },
        agreed_through: saved.agreed_through,
        last_closed_epoch: None,
        behind_by: None,
        config_hash: None,
        snapshots_compared: false,
        divergence: saved.divergence.clone(),
        error: None,
    }
}

/// One configured peer.
struct Peer {
    /// Index in `peers.urls`: where its status goes.
    index: usize,
    /// Its URL, as configured (and as labels and the saved file name it).
    url: String,
    /// The JSON-RPC client, with the peer's token, time limit and size cap.
    client: HttpClient,
}

/// The configured peers, ready to be polled.
pub struct Poller {
    /// One client per peer, in configuration order.
    peers: Vec<Peer>,
    /// `peers.poll_ms`.
    poll: Duration,
}

impl Poller {
    /// A client per configured peer (checked before the daemon writes anything).
    pub fn new(config: &PeersConfig) -> Result<Poller> {
        let peers = config
            .urls
            .iter()
            .enumerate()
            .map(|(index, url)| {
                Ok(Peer {
                    index,
                    url: url.clone(),
                    client: client(
                        url,
                        config.tokens.get(url),
                        config.tls.get(url),
                        config.timeout_ms,
                    )?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Poller {
            peers,
            poll: Duration::from_millis(config.poll_ms),
        })
    }

    /// Polls every peer until the process ends (one task each). Does nothing without peers.
    pub fn spawn(self, shared: &Arc<Shared>, book: &Arc<Book>) {
        let limit = Arc::new(Semaphore::new(IN_FLIGHT));
        for peer in self.peers {
            tokio::spawn(run(
                peer,
                shared.clone(),
                book.clone(),
                limit.clone(),
                self.poll,
            ));
        }
    }
}

fn client(
    url: &str,
    token: Option<&Secret>,
    tls: Option<&tb_config::PeerTlsConfig>,
    timeout_ms: u64,
) -> Result<HttpClient> {
    let mut headers = HeaderMap::new();
    if let Some(token) = token {
        let value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
            .map_err(|_| anyhow::anyhow!("the token of peer {url} is not a valid header value"))?;
        headers.insert("authorization", value);
    }
    let mut builder = HttpClientBuilder::default()
        .request_timeout(Duration::from_millis(timeout_ms))
        .max_response_size(MAX_RESPONSE_BYTES)
        .set_headers(headers);
    if let Some(tls) = tls {
        let origin = format!("peers.tls.\"{url}\"");
        let config = crate::tls::ClientTls {
            ca: tls.ca.as_deref(),
            identity: tls.cert.as_deref().zip(tls.key.as_deref()),
            server_name: tls.server_name.as_deref(),
            origin: &origin,
        }
        .config()?;
        builder = builder.with_custom_cert_store(config);
    }
    builder
        .build(url)
        .with_context(|| format!("peer URL {url}"))
}

async fn run(
    peer: Peer,
    shared: Arc<Shared>,
    book: Arc<Book>,
    limit: Arc<Semaphore>,
    poll: Duration,
) {
    let mut shown = initial_status(&peer.url, &book.get(&peer.url));
    shared.metrics.set_peer(&shown);
    let mut ticks = tokio::time::interval(poll);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let status = {
            let Ok(_permit) = limit.acquire().await else {
                return;
            };
            poll_once(&peer, &shared, &book).await
        };
        if status.state != shown.state
            || status.divergence != shown.divergence
            || status.error != shown.error
        {
            log_change(&shown, &status);
        }
        shared.metrics.set_peer(&status);
        shared.set_peer(peer.index, status.clone());
        shown = status;
    }
}

fn log_change(was: &PeerStatus, now: &PeerStatus) {
    let url = &now.url;
    let (from, to) = (was.state.as_str(), now.state.as_str());
    match (&now.divergence, &now.error) {
        (Some(d), _) => tracing::error!(
            peer = %url,
            from = %from,
            epoch = d.epoch,
            differs = %d.differs.as_str(),
            ours = %short(d.differs, &d.mine),
            theirs = %short(d.differs, &d.theirs),
            differing_fields = %if d.fields.is_empty() {
                "none listed".to_owned()
            } else {
                d.fields.join(", ")
            },
            "peer diverged; see tb-cli governor peers"
        ),
        (None, Some(e)) => tracing::warn!(
            peer = %url,
            from = %from,
            to = %to,
            error = %e,
            "peer state changed"
        ),
        (None, None) => tracing::info!(
            peer = %url,
            from = %from,
            to = %to,
            agreed_through = now.agreed_through,
            behind_by = now.behind_by,
            "peer state changed"
        ),
    }
}

fn short(differs: fleet::Differs, h: &EpochHashes) -> &str {
    let hash = match differs {
        fleet::Differs::Snapshot => &h.snapshot_hash,
        fleet::Differs::Decision => &h.decision_hash,
    };
    hash.get(..16).unwrap_or(hash)
}

/// One poll: the peer's status, then the epochs not compared yet (a few pages at most).
async fn poll_once(peer: &Peer, shared: &Shared, book: &Book) -> PeerStatus {
    let mut saved = book.get(&peer.url);
    let mut out = initial_status(&peer.url, &saved);
    let result = compare(peer, shared, &mut saved, &mut out).await;
    if let Err(e) = book.put(&peer.url, saved.clone()) {
        tracing::error!(
            peer = %peer.url,
            error = %format!("{e:#}"),
            "saving the comparison with a peer failed"
        );
    }
    out.agreed_through = saved.agreed_through;
    out.divergence = saved.divergence.clone();
    match result {
        Err(e) => {
            out.error = Some(format!("{e:#}"));
            out.state = if saved.divergence.is_some() {
                PeerState::Diverged
            } else {
                PeerState::Unreachable
            };
        }
        Ok(()) if saved.divergence.is_some() => out.state = PeerState::Diverged,
        Ok(()) => {}
    }
    out
}

/// Compares what is new since the last poll, updating `saved` and filling `out`'s state.
async fn compare(
    peer: &Peer,
    shared: &Shared,
    saved: &mut Saved,
    out: &mut PeerStatus,
) -> Result<()> {
    let status = peer.client.status().await.context("governor.status")?;
    let theirs_cfg = check_status(&status)?;
    let mine_cfg = ConfigHashes {
        config_hash: shared.node.config_hash.clone(),
        replay_config_hash: shared.node.replay_config_hash.clone(),
    };
    let scope = Scope::of(&mine_cfg, &theirs_cfg);
    let my_last = shared.journal_summary().last_closed;
    let their_last = status.last_closed_epoch;
    out.last_closed_epoch = their_last;
    out.config_hash = Some(status.config_hash.clone());
    out.snapshots_compared = scope != Scope::Nothing;
    out.state = match (scope, my_last, their_last) {
        (Scope::Everything, Some(m), Some(t)) if t < m => {
            out.behind_by = Some(m - t);
            PeerState::Behind
        }
        (Scope::Everything, Some(_), None) => {
            out.behind_by = my_last.map(|m| m + 1);
            PeerState::Behind
        }
        (Scope::Everything, _, _) => PeerState::Agree,
        _ => PeerState::ConfigDiffers,
    };
    if scope == Scope::Nothing || saved.divergence.is_some() {
        return Ok(());
    }
    let (Some(my_last), Some(their_last)) = (my_last, their_last) else {
        return Ok(());
    };
    let to = my_last.min(their_last);
    let mut from = saved.agreed_through.map_or(0, |e| e + 1);
    for _ in 0..PAGES_PER_POLL {
        if from > to {
            break;
        }
        let page = peer
            .client
            .decisions(Some(from), Some(PAGE))
            .await
            .context("governor.decisions")?
            .decisions;
        let theirs = check_page(&page, from, to)?;
        let Some(last) = theirs.last().map(|h| h.epoch) else {
            anyhow::bail!(
                "governor.decisions from epoch {from} answered no decision, although the peer \
                 says it closed epoch {their_last}"
            );
        };
        let decisions = shared.node.decisions.clone();
        let epochs: Vec<u64> = theirs.iter().map(|h| h.epoch).collect();
        let mine = tokio::task::spawn_blocking(move || local_hashes(&decisions, &epochs))
            .await
            .context("reading this node's decision files")??;
        let outcome = fleet::compare(&mine, &theirs, scope);
        if outcome.agreed_through.is_some() {
            saved.agreed_through = outcome.agreed_through;
        }
        if let Some(m) = outcome.mismatch {
            let fields = match m.differs {
                fleet::Differs::Snapshot => snapshot_fields(peer, shared, m.mine.epoch).await,
                fleet::Differs::Decision => Vec::new(),
            };
            saved.divergence = Some(Divergence {
                epoch: m.mine.epoch,
                differs: m.differs,
                mine: m.mine,
                theirs: m.theirs,
                fields,
            });
            return Ok(());
        }
        from = last + 1;
    }
    Ok(())
}

/// The peer's configuration hashes, once its status is checked.
fn check_status(status: &Status) -> Result<ConfigHashes> {
    anyhow::ensure!(
        fleet::is_hash(&status.config_hash),
        "governor.status: config_hash {:?} is not 64 lowercase hex digits",
        cut(&status.config_hash)
    );
    // A governor too old to report it compares under its config_hash alone.
    let replay = if status.replay_config_hash.is_empty() {
        status.config_hash.clone()
    } else {
        anyhow::ensure!(
            fleet::is_hash(&status.replay_config_hash),
            "governor.status: replay_config_hash {:?} is not 64 lowercase hex digits",
            cut(&status.replay_config_hash)
        );
        status.replay_config_hash.clone()
    };
    Ok(ConfigHashes {
        config_hash: status.config_hash.clone(),
        replay_config_hash: replay,
    })
}

/// The hashes of a page of `governor.decisions` asked from epoch `from`, up to epoch `to`, once
/// checked: ascending, within the page asked for, well-formed.
fn check_page(
    page: &[crate::rpc::DecisionSummary],
    from: u64,
    to: u64,
) -> Result<Vec<EpochHashes>> {
    anyhow::ensure!(
        page.len() <= PAGE as usize,
        "governor.decisions answered {} decisions for a limit of {PAGE}",
        page.len()
    );
    let mut out = Vec::with_capacity(page.len());
    let mut next = from;
    for d in page {
        anyhow::ensure!(
            d.epoch >= next && d.epoch < from.saturating_add(u64::from(PAGE)),
            "governor.decisions from epoch {from}: epoch {} is out of order or outside the page",
            d.epoch
        );
        for (name, hash) in [
            ("decision_hash", &d.decision_hash),
            ("snapshot_hash", &d.snapshot_hash),
        ] {
            anyhow::ensure!(
                fleet::is_hash(hash),
                "governor.decisions: epoch {}: {name} {:?} is not 64 lowercase hex digits",
                d.epoch,
                cut(hash)
            );
        }
        next = d.epoch + 1;
        if d.epoch <= to {
            out.push(EpochHashes {
                epoch: d.epoch,
                snapshot_hash: d.snapshot_hash.clone(),
                decision_hash: d.decision_hash.clone(),
            });
        }
    }
    Ok(out)
}

/// A peer's text, cut short for a message.
fn cut(text: &str) -> String {
    text.chars().take(80).collect()
}

/// This node's hashes of `epochs` (a missing file is skipped: the comparison needs both sides).
fn local_hashes(store: &tb_decisions::RecordStore, epochs: &[u64]) -> Result<Vec<EpochHashes>> {
    let mut out = Vec::with_capacity(epochs.len());
    for &epoch in epochs {
        let Some(bytes) = store.read(epoch)? else {
            continue;
        };
        let (hashes, _) = fleet::decision_hashes(epoch, &bytes)
            .with_context(|| format!("{}: not a decision", store.path(epoch).display()))?;
        out.push(hashes);
    }
    Ok(out)
}

/// The snapshot field paths that differ at `epoch`, from both snapshots; empty (with a warning)
/// when either cannot be had.
async fn snapshot_fields(peer: &Peer, shared: &Shared, epoch: u64) -> Vec<String> {
    let theirs = match peer.client.snapshot(epoch).await {
        Ok(r) => tb_canonical::to_vec(&r.snapshot),
        Err(e) => {
            tracing::warn!(
                peer = %peer.url,
                epoch,
                error = %e,
                "a peer's governor.snapshot failed"
            );
            return Vec::new();
        }
    };
    let mine = match shared.node.decisions.read(epoch) {
        Ok(Some(bytes)) => fleet::decision_snapshot(&bytes),
        _ => None,
    };
    match mine {
        Some(mine) => tb_decisions::diff::differences(&mine, &theirs, MAX_FIELDS),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::DecisionSummary;

    fn summary(epoch: u64, hash: &str) -> DecisionSummary {
        DecisionSummary {
            epoch,
            decision_hash: hash.repeat(64),
            snapshot_hash: hash.repeat(64),
            mode: tb_config::Mode::Shadow,
            intents: vec![],
            attested: false,
        }
    }

    #[test]
    fn a_page_is_believed_only_when_well_formed() {
        let ok = check_page(&[summary(3, "a"), summary(5, "b")], 3, 4).unwrap();
        assert_eq!(ok.iter().map(|h| h.epoch).collect::<Vec<_>>(), [3]);
        let err = |page: &[DecisionSummary]| check_page(page, 3, 10).unwrap_err().to_string();
        assert!(err(&[summary(2, "a")]).contains("epoch 2 is out of order"));
        assert!(err(&[summary(4, "a"), summary(4, "a")]).contains("epoch 4 is out of order"));
        assert!(err(&[summary(3 + 256, "a")]).contains("outside the page"));
        assert!(err(&[summary(3, "A")]).contains("decision_hash \"AAAA"));
    }

    #[test]
    fn an_acknowledgement_resumes_comparing_at_the_epoch_that_diverged() {
        let dir = tempfile::tempdir().unwrap();
        let book = Book::load(dir.path(), &[]).unwrap();
        assert_eq!(book.get("http://p:1"), Saved::default());
        let h = |c: &str| EpochHashes {
            epoch: 7,
            snapshot_hash: c.repeat(64),
            decision_hash: c.repeat(64),
        };
        let saved = Saved {
            agreed_through: Some(6),
            divergence: Some(Divergence {
                epoch: 7,
                differs: fleet::Differs::Snapshot,
                mine: h("a"),
                theirs: h("b"),
                fields: vec!["markets.storage.units".into()],
            }),
            acked_seq: None,
        };
        book.put("http://p:1", saved.clone()).unwrap();
        // Saved across a restart.
        let again = Book::load(dir.path(), &[]).unwrap();
        assert_eq!(again.get("http://p:1"), saved);
        // An acknowledgement journaled before a crash, but not saved, applies at the next start.
        let ack = |seq| JournalEvent {
            seq,
            effective_epoch: 8,
            kind: EventKind::AckPeer {
                peer: "http://p:1".into(),
            },
            reason: "resynced".into(),
            operator: "op".into(),
        };
        let replayed = Book::load(dir.path(), &[ack(12)])
            .unwrap()
            .get("http://p:1");
        assert_eq!((replayed.divergence, replayed.acked_seq), (None, Some(12)));
        assert_eq!(again.acknowledge("http://p:1", 12).unwrap(), Some(7));
        let after = Book::load(dir.path(), &[ack(12)])
            .unwrap()
            .get("http://p:1");
        assert_eq!(
            after,
            Saved {
                agreed_through: Some(6),
                divergence: None,
                acked_seq: Some(12)
            }
        );
        assert_eq!(again.acknowledge("http://p:1", 13).unwrap(), None);
        // A divergence found after an acknowledgement is not cleared by it at the next start.
        let mut later = saved.clone();
        later.acked_seq = Some(13);
        again.put("http://p:1", later.clone()).unwrap();
        assert_eq!(
            Book::load(dir.path(), &[ack(12), ack(13)])
                .unwrap()
                .get("http://p:1"),
            later
        );
    }

    #[test]
    fn a_damaged_state_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("peers.json"), b"{not json").unwrap();
        let err = format!("{:#}", Book::load(dir.path(), &[]).unwrap_err());
        assert!(
            err.contains("peers.json is not a peers state file"),
            "{err}"
        );
    }
}
