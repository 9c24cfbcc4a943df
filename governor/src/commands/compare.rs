//! `tb-cli governor compare`: several governors (by RPC URL) or decision directories compared
//! with the first one given, by the rules of [`crate::fleet`]: a table of agreement and the
//! first divergence.

use std::fmt::{self, Display, Formatter};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use serde::Serialize;
use tb_decisions::RecordStore;

use crate::cli::CompareArgs;
use crate::fleet::{self, ConfigHashes, Differs, EpochHashes, Mismatch, Scope};
use crate::rpc::{GovernorApiClient, MAX_LIMIT};
use crate::{errln, out, outln};

/// Snapshot field paths shown for a divergence, at most.
const MAX_FIELDS: usize = 32;

/// One governor or directory, as fetched.
struct Node {
    /// The URL or directory, as given.
    name: String,
    /// Where its epochs come from, to fetch a divergent epoch's snapshot.
    source: Source,
    /// Its configuration hashes (a directory has no replay hash: its decisions' config hash
    /// stands for both).
    config: ConfigHashes,
    /// Its hashes of every epoch it closed, ascending.
    epochs: Vec<EpochHashes>,
}

enum Source {
    Rpc(HttpClient),
    Dir(RecordStore),
}

/// How one node compares with the first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Verdict {
    /// The node the others are compared with.
    Reference,
    /// Every epoch both closed agrees.
    Agree {
        /// The last epoch both closed (null: none in common).
        through: Option<u64>,
        /// How many epochs fewer it closed than the reference (0 when level or ahead).
        behind_by: u64,
    },
    /// Another configuration: decisions may legitimately differ.
    ConfigDiffers {
        /// Snapshots were compared (same replay settings, or two directories).
        snapshots_compared: bool,
        /// The last epoch whose snapshots agree before any difference.
        snapshots_agree_through: Option<u64>,
        /// The first epoch whose snapshots differ.
        snapshots_differ_at: Option<u64>,
    },
    /// The first epoch whose hashes differ under comparable configuration.
    Diverged {
        /// Which hash, and both nodes' hashes.
        mismatch: Mismatch,
        /// Snapshot field paths that differ (snapshot divergences).
        fields: Vec<String>,
    },
    /// It could not be read.
    Unreachable {
        /// Why.
        error: String,
    },
}

/// A row of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The URL or directory.
    pub node: String,
    /// Its `config_hash` (null when unreachable).
    pub config_hash: Option<String>,
    /// Its last closed epoch.
    pub last_closed_epoch: Option<u64>,
    /// How it compares with the first node.
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// Compares; `Ok(false)` when any node diverged or could not be read.
pub fn run(args: &CompareArgs) -> Result<bool> {
    let count = args.rpc.len() + args.decisions.len();
    anyhow::ensure!(
        count >= 2,
        "give at least two governors or directories to compare (--rpc URL, --decisions DIR)"
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let timeout = Duration::from_secs(args.timeout);
    let mut nodes: Vec<(String, Result<Node>)> = Vec::new();
    for url in &args.rpc {
        nodes.push((url.clone(), runtime.block_on(from_rpc(url, timeout))));
    }
    for dir in &args.decisions {
        nodes.push((dir.display().to_string(), from_dir(dir)));
    }
    let reference = match &nodes[0].1 {
        Ok(node) => node,
        Err(e) => anyhow::bail!("{}: {e:#} (the first node is the reference)", nodes[0].0),
    };
    let mut rows = Vec::new();
    for (i, (name, node)) in nodes.iter().enumerate() {
        let row = match node {
            Err(e) => Row {
                node: name.clone(),
                config_hash: None,
                last_closed_epoch: None,
                verdict: Verdict::Unreachable {
                    error: format!("{e:#}"),
                },
            },
            Ok(node) => Row {
                node: name.clone(),
                config_hash: Some(node.config.config_hash.clone()),
                last_closed_epoch: node.epochs.last().map(|h| h.epoch),
                verdict: if i == 0 {
                    Verdict::Reference
                } else {
                    runtime.block_on(verdict(reference, node))
                },
            },
        };
        rows.push(row);
    }
    let ok = rows.iter().all(|r| {
        !matches!(
            r.verdict,
            Verdict::Diverged { .. } | Verdict::Unreachable { .. }
        )
    });
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        out!("{}", Table(&rows));
    }
    if !ok && !args.json {
        errln!("compare: at least one node diverged from or could not be compared with the first");
    }
    Ok(ok)
}

async fn from_rpc(url: &str, timeout: Duration) -> Result<Node> {
    let client = HttpClientBuilder::default()
        .request_timeout(timeout)
        .build(url)
        .with_context(|| format!("invalid URL {url:?} (expected e.g. http://127.0.0.1:7878)"))?;
    let status = client.status().await.context("governor.status")?;
    let config = ConfigHashes {
        replay_config_hash: if status.replay_config_hash.is_empty() {
            status.config_hash.clone()
        } else {
            status.replay_config_hash.clone()
        },
        config_hash: status.config_hash,
    };
    let mut epochs = Vec::new();
    if let Some(last) = status.last_closed_epoch {
        let mut from = 0;
        while from <= last {
            let page = client
                .decisions(Some(from), Some(MAX_LIMIT))
                .await
                .context("governor.decisions")?
                .decisions;
            let Some(next) = page.last().map(|d| d.epoch + 1) else {
                break;
            };
            anyhow::ensure!(
                next > from,
                "governor.decisions from epoch {from} went backwards"
            );
            epochs.extend(
                page.into_iter()
                    .filter(|d| d.epoch <= last)
                    .map(|d| EpochHashes {
                        epoch: d.epoch,
                        snapshot_hash: d.snapshot_hash,
                        decision_hash: d.decision_hash,
                    }),
            );
            from = next;
        }
    }
    Ok(Node {
        name: url.to_owned(),
        source: Source::Rpc(client),
        config,
        epochs,
    })
}

fn from_dir(dir: &Path) -> Result<Node> {
    anyhow::ensure!(dir.is_dir(), "{} is not a directory", dir.display());
    let store = RecordStore::open(dir, "decision")?;
    let mut epochs = Vec::new();
    let mut config_hash = String::new();
    for epoch in store.epochs()? {
        let Some(bytes) = store.read(epoch)? else {
            continue;
        };
        let (hashes, config) = fleet::decision_hashes(epoch, &bytes)
            .with_context(|| format!("{}: not a decision file", store.path(epoch).display()))?;
        config_hash = config;
        epochs.push(hashes);
    }
    Ok(Node {
        name: dir.display().to_string(),
        source: Source::Dir(store),
        config: ConfigHashes {
            replay_config_hash: config_hash.clone(),
            config_hash,
        },
        epochs,
    })
}

async fn verdict(reference: &Node, node: &Node) -> Verdict {
    let two_dirs = matches!(
        (&reference.source, &node.source),
        (Source::Dir(_), Source::Dir(_))
    );
    let mut scope = Scope::of(&reference.config, &node.config);
    if scope == Scope::Nothing && two_dirs {
        // Directories do not record their replay settings: compare the snapshots anyway and
        // report a difference as what it may be, a consequence of the configuration.
        scope = Scope::SnapshotsOnly;
    }
    let outcome = fleet::compare(&reference.epochs, &node.epochs, scope);
    if scope != Scope::Everything {
        let replay_equal = reference.config.replay_config_hash == node.config.replay_config_hash;
        return match outcome.mismatch {
            Some(m) if replay_equal && !two_dirs => diverged(reference, node, m).await,
            m => Verdict::ConfigDiffers {
                snapshots_compared: scope != Scope::Nothing,
                snapshots_agree_through: outcome.agreed_through,
                snapshots_differ_at: m.map(|m| m.mine.epoch),
            },
        };
    }
    match outcome.mismatch {
        Some(m) => diverged(reference, node, m).await,
        None => {
            let last = |n: &Node| n.epochs.last().map(|h| h.epoch);
            Verdict::Agree {
                through: outcome.agreed_through,
                behind_by: match (last(reference), last(node)) {
                    (Some(r), Some(n)) => r.saturating_sub(n),
                    (Some(r), None) => r + 1,
                    _ => 0,
                },
            }
        }
    }
}

async fn diverged(reference: &Node, node: &Node, mismatch: Mismatch) -> Verdict {
    let fields = if mismatch.differs == Differs::Snapshot {
        let epoch = mismatch.mine.epoch;
        match (
            snapshot(reference, epoch).await,
            snapshot(node, epoch).await,
        ) {
            (Some(a), Some(b)) => tb_decisions::diff::differences(&a, &b, MAX_FIELDS),
            _ => Vec::new(),
        }
    } else {
        Vec::new()
    };
    Verdict::Diverged { mismatch, fields }
}

/// The canonical bytes of `node`'s snapshot of `epoch`, if it can be had.
async fn snapshot(node: &Node, epoch: u64) -> Option<Vec<u8>> {
    match &node.source {
        Source::Rpc(client) => match client.snapshot(epoch).await {
            Ok(r) => Some(tb_canonical::to_vec(&r.snapshot)),
            Err(e) => {
                errln!("{}: governor.snapshot {epoch}: {e}", node.name);
                None
            }
        },
        Source::Dir(store) => fleet::decision_snapshot(&store.read(epoch).ok()??),
    }
}

/// The human table: a line per node, then the detail of each divergence.
struct Table<'a>(&'a [Row]);

impl Display for Table<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let width = self
            .0
            .iter()
            .map(|r| r.node.chars().count())
            .max()
            .unwrap_or(0);
        for (i, r) in self.0.iter().enumerate() {
            let config = r
                .config_hash
                .as_deref()
                .map_or("-", |h| h.get(..16).unwrap_or(h));
            let last = r
                .last_closed_epoch
                .map_or_else(|| "-".to_owned(), |e| e.to_string());
            writeln!(
                f,
                "{:>2}  {:width$}  config {config:16}  last closed {last:>6}  {}",
                i + 1,
                r.node,
                Summary(&r.verdict)
            )?;
        }
        for (i, r) in self.0.iter().enumerate() {
            if let Verdict::Diverged {
                mismatch: m,
                fields,
            } = &r.verdict
            {
                writeln!(f, "\nnode {} diverged at epoch {}:", i + 1, m.mine.epoch)?;
                writeln!(f, "  snapshot_hash  node 1 {}", m.mine.snapshot_hash)?;
                writeln!(
                    f,
                    "                 node {} {}",
                    i + 1,
                    m.theirs.snapshot_hash
                )?;
                writeln!(f, "  decision_hash  node 1 {}", m.mine.decision_hash)?;
                writeln!(
                    f,
                    "                 node {} {}",
                    i + 1,
                    m.theirs.decision_hash
                )?;
                if !fields.is_empty() {
                    writeln!(f, "  snapshot fields that differ: {}", fields.join(", "))?;
                }
            }
        }
        Ok(())
    }
}

/// One verdict in words, as the table's last column shows it.
struct Summary<'a>(&'a Verdict);

impl Display for Summary<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let through = |e: Option<u64>| {
            e.map_or_else(
                || "no epoch in common".to_owned(),
                |e| format!("through epoch {e}"),
            )
        };
        match self.0 {
            Verdict::Reference => f.write_str("reference"),
            Verdict::Agree {
                through: t,
                behind_by: 0,
            } => write!(f, "agree {}", through(*t)),
            Verdict::Agree {
                through: t,
                behind_by,
            } => {
                write!(f, "behind by {behind_by} epochs (agree {})", through(*t))
            }
            Verdict::ConfigDiffers {
                snapshots_compared: false,
                ..
            } => f.write_str("config differs (other replay settings: nothing compared)"),
            Verdict::ConfigDiffers {
                snapshots_differ_at: Some(e),
                ..
            } => write!(f, "config differs; snapshots differ from epoch {e}"),
            Verdict::ConfigDiffers {
                snapshots_agree_through: t,
                ..
            } => write!(f, "config differs; snapshots agree {}", through(*t)),
            Verdict::Diverged { mismatch: m, .. } => write!(
                f,
                "DIVERGED at epoch {} ({} differs)",
                m.mine.epoch,
                m.differs.as_str()
            ),
            Verdict::Unreachable { error } => write!(f, "UNREACHABLE: {error}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(epoch: u64, s: &str, d: &str) -> EpochHashes {
        EpochHashes {
            epoch,
            snapshot_hash: s.repeat(64),
            decision_hash: d.repeat(64),
        }
    }

    #[test]
    fn the_table_names_each_verdict_and_details_a_divergence() {
        let row = |node: &str, last, verdict| Row {
            node: node.to_owned(),
            config_hash: Some("c".repeat(64)),
            last_closed_epoch: last,
            verdict,
        };
        let rows = [
            row("http://a:1", Some(9), Verdict::Reference),
            row(
                "http://b:1",
                Some(7),
                Verdict::Agree {
                    through: Some(7),
                    behind_by: 2,
                },
            ),
            row(
                "dir-c",
                Some(9),
                Verdict::ConfigDiffers {
                    snapshots_compared: true,
                    snapshots_agree_through: Some(9),
                    snapshots_differ_at: None,
                },
            ),
            row(
                "http://d:1",
                Some(9),
                Verdict::Diverged {
                    mismatch: Mismatch {
                        differs: Differs::Snapshot,
                        mine: h(4, "1", "2"),
                        theirs: h(4, "3", "4"),
                    },
                    fields: vec!["markets.storage.units".into(), "receipts.accepted".into()],
                },
            ),
            Row {
                node: "http://e:1".to_owned(),
                config_hash: None,
                last_closed_epoch: None,
                verdict: Verdict::Unreachable {
                    error: "governor.status: connection refused".into(),
                },
            },
        ];
        let c = "c".repeat(16);
        let want = format!(
            " 1  http://a:1  config {c}  last closed      9  reference
 2  http://b:1  config {c}  last closed      7  behind by 2 epochs (agree through epoch 7)
 3  dir-c       config {c}  last closed      9  config differs; snapshots agree through epoch 9
 4  http://d:1  config {c}  last closed      9  DIVERGED at epoch 4 (snapshot differs)
 5  http://e:1  config -                 last closed      -  UNREACHABLE: governor.status: connection refused

node 4 diverged at epoch 4:
  snapshot_hash  node 1 {s1}
                 node 4 {s3}
  decision_hash  node 1 {s2}
                 node 4 {s4}
  snapshot fields that differ: markets.storage.units, receipts.accepted
",
            s1 = "1".repeat(64),
            s2 = "2".repeat(64),
            s3 = "3".repeat(64),
            s4 = "4".repeat(64),
        );
        assert_eq!(Table(&rows).to_string(), want);
    }
}
