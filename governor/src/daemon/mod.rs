//! The daemon (`tb-governor run`, docs/operations.md): ingest, checkpoint, JSON-RPC, metrics.
//!
//! [`run`] takes its shutdown trigger and reload requests as arguments, so tests (and `main`,
//! which wires them to SIGTERM/SIGINT and SIGHUP) drive it the same way.
//!
//! Data dir: `LOCK` (the exclusive lock, see [`datadir`]), `decisions/` (decision files and
//! sidecars; `decisions/.tmp/` holds the temp files of writes in progress), `journal.jsonl`,
//! `state/checkpoint.json`, `state/peers.json` (the peer comparison, see [`peers`]),
//! `runtime/params.json`.
//!
//! Start-up runs every check that can refuse the start (configuration, providers file, signing
//! key, the data directory lock, config drift, the journal, binding the listener) before its
//! first write, so a refused start leaves the data directory as it found it. Its work does not
//! grow with the number of decisions: the checkpoint names the newest decision it covers (checked
//! against its file) and how many are unsigned, and the files after it are found by probing epoch
//! by epoch. Only without a usable checkpoint (or when signing was turned on or its key changed)
//! does it list `decisions/`.

pub mod compat;
pub mod datadir;
pub mod fault;
pub mod files;
pub mod http;
pub mod ingest;
pub mod metrics;
pub mod page;
pub mod peers;
pub mod server;
pub mod state;
pub mod status;
pub mod wrappers;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tb_config::{Config, Mode};
use tb_decisions::RecordStore;
use tb_replay::backlog::Backlog;
use tb_replay::{ChainReader, Position, ReplayConfig, Replayer};
use tokio::sync::mpsc;

use self::datadir::DataDirLock;
use self::files::{Checkpoint, History, JournalFile, CHECKPOINT_FORMAT};
use self::ingest::Ingest;
use self::metrics::Metrics;
use self::state::{LastClose, Live, Node, Shared, Unsigned, View};
use crate::engine::{Engine, EventKind, Params};
use crate::pipeline::Inputs;
use crate::rpc::{GovernorApiServer, Ingest as IngestView};
use crate::signing::load_signer;

/// Operator name on events the daemon journals itself.
pub const DAEMON_OPERATOR: &str = "tb-governor";
/// Reason of the `set_mode` event a first start journals.
pub const FIRST_START_REASON: &str = "first start: mode from configuration";

/// Replay + engine + history restored from a checkpoint or started at genesis.
struct Resumed {
    reader: ChainReader,
    replayer: Replayer,
    engine: Engine,
    history: History,
    /// The epoch of the checkpoint resumed from (`None`: from genesis), for the log.
    checkpoint: Option<u64>,
}

/// Resumes from `checkpoint` when there is one (and its replay state restores), else from
/// genesis, saying why a checkpoint on disk was not used.
fn resume(inputs: &Inputs, checkpoint: Result<Checkpoint>, checkpoint_path: &Path) -> Resumed {
    let cfg = ReplayConfig::from_config(&inputs.config);
    let restored = checkpoint.and_then(|cp| {
        let replayer = Replayer::restore(cfg.clone(), inputs.registry.clone(), cp.replay)?;
        Ok(Resumed {
            reader: ChainReader::open(&inputs.chain_dir, cp.position.clone()),
            replayer,
            engine: Engine::restore(inputs.engine_config(), cp.engine),
            history: cp.history,
            checkpoint: Some(cp.epoch),
        })
    });
    match restored {
        Ok(r) => r,
        Err(why) => {
            if checkpoint_path.exists() {
                tracing::warn!(
                    error = %format!("{why:#}"),
                    "checkpoint not used; replaying from genesis"
                );
            }
            Resumed {
                reader: ChainReader::open(&inputs.chain_dir, Position::default()),
                replayer: Replayer::new(cfg, inputs.registry.clone()),
                engine: Engine::new(inputs.engine_config()),
                history: History::default(),
                checkpoint: None,
            }
        }
    }
}

/// The checkpoint at `path` if a start can use it: readable, of this format, taken under
/// `config_hash`, and naming a decision file that exists with the hash it recorded.
fn load_checkpoint(path: &Path, store: &RecordStore, config_hash: &str) -> Result<Checkpoint> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let cp: Checkpoint = serde_json::from_slice(&bytes).context("parsing the checkpoint")?;
    anyhow::ensure!(
        cp.format == CHECKPOINT_FORMAT,
        "checkpoint format {}",
        cp.format
    );
    anyhow::ensure!(
        cp.config_hash == config_hash,
        "it was taken under config_hash {}",
        cp.config_hash
    );
    let file = store
        .read(cp.epoch)?
        .with_context(|| format!("its decision file of epoch {} is missing", cp.epoch))?;
    anyhow::ensure!(
        tb_canonical::hash_hex(&file) == cp.decision_hash,
        "its decision hash does not match decision file {}",
        cp.epoch
    );
    Ok(cp)
}

/// What start-up knows about `decisions/`: with a usable checkpoint, the files after its epoch
/// (found by probing epoch by epoch, a bounded number) on top of what the checkpoint recorded;
/// otherwise, a listing of the whole directory.
struct OnDisk {
    /// The decision files examined and their sidecars.
    listing: tb_decisions::Listing,
    /// The checkpoint's epoch and decision hash when `listing` holds only the files after it;
    /// none when it holds the whole directory.
    after: Option<(u64, String)>,
    /// Decision files without a sidecar up to `after`'s epoch (as the checkpoint recorded).
    unsigned_before: u64,
    /// The newest decision on disk.
    newest: Option<u64>,
}

impl OnDisk {
    /// Surveys `store` from `checkpoint` when it has what a start needs for `signer` (the
    /// sidecars it expects are known to be there), else by listing it.
    fn survey(
        store: &RecordStore,
        checkpoint: Option<&Checkpoint>,
        signer: Option<&tb_decisions::Signer>,
    ) -> Result<OnDisk> {
        let why = match checkpoint {
            None => "no usable checkpoint",
            Some(cp) => match (cp.unsigned, signer) {
                (None, _) => "the checkpoint does not count unsigned decisions (an older version)",
                (Some(u), Some(s)) if u > 0 || cp.keyid.as_deref() != Some(&s.keyid()) => {
                    "signing was turned on or its key changed: every sidecar is checked"
                }
                (Some(unsigned_before), _) => {
                    let listing = match cp.epoch.checked_add(1) {
                        Some(next) => store.list_from(next)?,
                        None => tb_decisions::Listing::default(),
                    };
                    return Ok(OnDisk {
                        newest: Some(listing.records.last().copied().unwrap_or(cp.epoch)),
                        listing,
                        after: Some((cp.epoch, cp.decision_hash.clone())),
                        unsigned_before,
                    });
                }
            },
        };
        let listing = store.list()?;
        tracing::info!(
            files = listing.records.len(),
            dir = %store.dir().display(),
            why = %why,
            "listed the decision files"
        );
        Ok(OnDisk {
            newest: listing.records.last().copied(),
            listing,
            after: None,
            unsigned_before: 0,
        })
    }
}

/// The last close as status shows it, read back from its decision file (after a restart).
fn read_last_close(
    store: &RecordStore,
    epoch: u64,
    signer: Option<&tb_decisions::Signer>,
) -> Option<LastClose> {
    let bytes = store.read(epoch).ok()??;
    let decision: crate::engine::Decision = serde_json::from_slice(&bytes).ok()?;
    let sidecar = store.read_sidecar(epoch).ok()?;
    let keyid = sidecar.as_ref().and_then(|b| {
        serde_json::from_slice::<tb_decisions::Attestation>(b)
            .ok()
            .map(|a| a.keyid)
    });
    let verified = match (signer, &sidecar) {
        (Some(s), Some(b)) => {
            tb_decisions::verify::check_one(&bytes, b, &[s.verifying_key()]).is_none()
        }
        _ => false,
    };
    Some(LastClose {
        decision_hash: tb_canonical::hash_hex(&bytes),
        decision,
        keyid,
        verified,
    })
}

/// Refuses to start when the newest decision was made under another decision-relevant config.
fn check_config_drift(store: &RecordStore, newest: Option<u64>, config_hash: &str) -> Result<()> {
    let Some(epoch) = newest else {
        return Ok(());
    };
    let bytes = store.read(epoch)?.unwrap_or_default();
    let recorded = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| {
            v.get("config_hash")
                .and_then(|h| h.as_str())
                .map(str::to_owned)
        });
    match recorded {
        Some(h) if h != config_hash => anyhow::bail!(
            "the decision-relevant configuration changed since epoch {epoch} was decided \
             (config_hash {h} → {config_hash}); restore the configuration and providers file it \
             was decided under, or start a new data_dir"
        ),
        _ => Ok(()),
    }
}

/// Appends a `set_mode` event when the configured mode differs from the journal's.
pub fn journal_mode(journal: &mut JournalFile, want: Mode, why: &str) -> Result<()> {
    match journal.current_mode() {
        Some((current, _)) if current == want => Ok(()),
        current => {
            if let Some((current, _)) = current {
                tracing::warn!(
                    mode = %want,
                    journal_mode = %current,
                    "the configuration's mode differs from the journal's: journaling set_mode \
                     with the configuration's mode. To keep the journal's mode across restarts, \
                     set it in the configuration (TB_GOVERNOR_SHADOW_ONLY / TB_GOVERNOR_ENABLED)"
                );
            }
            let ev = journal.append(EventKind::SetMode { mode: want }, why, DAEMON_OPERATOR)?;
            tracing::info!(
                mode = %want,
                seq = ev.seq,
                effective_epoch = ev.effective_epoch,
                "journaled set_mode"
            );
            Ok(())
        }
    }
}

/// The environment variables that choose the mode.
pub const MODE_VARS: [&str; 2] = ["TB_GOVERNOR_ENABLED", "TB_GOVERNOR_SHADOW_ONLY"];

/// The mode variables set (non-empty) in `env` that decide `mode`, as `(name, value)`:
/// `TB_GOVERNOR_ENABLED` alone for paused, both (when set) otherwise.
pub fn mode_env(mode: Mode, env: impl Fn(&str) -> Option<String>) -> Vec<(&'static str, String)> {
    MODE_VARS
        .into_iter()
        .filter(|var| mode != Mode::Paused || *var == "TB_GOVERNOR_ENABLED")
        .filter_map(|var| env(var).filter(|v| !v.is_empty()).map(|v| (var, v)))
        .collect()
}

/// `VAR=value, …` of [`mode_env`]'s answer.
fn show_vars(vars: &[(&'static str, String)]) -> String {
    let shown: Vec<String> = vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
    shown.join(", ")
}

/// Like [`journal_mode`], for a mode that `vars` (from [`mode_env`]) set through the
/// environment: the event names them as operator (`env:VAR`) and in the reason
/// (`{context}environment: VAR=value`), and the log reports a deliberate change, not a warning.
/// Without `vars` it is [`journal_mode`] with `fallback` as the reason.
pub fn journal_env_mode(
    journal: &mut JournalFile,
    want: Mode,
    context: &str,
    vars: &[(&'static str, String)],
    fallback: &str,
) -> Result<()> {
    if vars.is_empty() {
        return journal_mode(journal, want, fallback);
    }
    let current = journal.current_mode().map(|(m, _)| m);
    if current == Some(want) {
        return Ok(());
    }
    let names: Vec<&str> = vars.iter().map(|(k, _)| *k).collect();
    let operator = format!("env:{}", names.join(","));
    let reason = format!("{context}environment: {}", show_vars(vars));
    let ev = journal.append(EventKind::SetMode { mode: want }, &reason, &operator)?;
    let was = current.map_or_else(|| "none".to_owned(), |m| m.to_string());
    tracing::info!(
        mode = %want,
        journal_mode = %was,
        env = %show_vars(vars),
        operator = %operator,
        seq = ev.seq,
        effective_epoch = ev.effective_epoch,
        "mode set through the environment: journaled set_mode"
    );
    Ok(())
}

/// The process environment, as the configuration reads it.
fn process_env(var: &str) -> Option<String> {
    std::env::var_os(var).map(|v| v.to_string_lossy().into_owned())
}

/// Whether the environment sets a signing key while signing is off (it then signs nothing).
fn warn_key_without_signing(config: &Config) {
    if config.signing.enabled {
        return;
    }
    let hex_set = process_env("TB_NODE_KEY_HEX").is_some_and(|v| !v.is_empty());
    if hex_set || config.signing.key_hex.is_some() {
        tracing::warn!(
            "TB_NODE_KEY_HEX (signing.key_hex) is set but signing is off (TB_GOVERNOR_SIGN / \
             signing.enabled): decisions are not signed. Set TB_GOVERNOR_SIGN=1 to sign them \
             (unsigned decision files are then signed at start)"
        );
    }
}

/// What start-up signing did.
struct Signing {
    /// The unsigned decision files, for status.
    unsigned: Unsigned,
    /// Epochs of the surveyed files still without a sidecar.
    left: Vec<u64>,
    /// The stall that stops ingestion when the decision chain does not verify.
    halted: Option<String>,
}

/// Signs, before serving, every decision file of `disk` that lacks a sidecar (with a
/// checkpoint, the files before its epoch are known to have one).
fn sign_at_start(
    store: &RecordStore,
    disk: &OnDisk,
    signer: Option<&tb_decisions::Signer>,
) -> Result<Signing> {
    let Some(signer) = signer else {
        let left = disk.listing.unsigned();
        let count = disk.unsigned_before + left.len() as u64;
        let reason = (count > 0).then(|| {
            "signing is off (set TB_GOVERNOR_SIGN=1 with TB_NODE_KEY_HEX or TB_GOVERNOR_KEY_FILE \
             and restart: unsigned decisions are signed at start)"
                .to_owned()
        });
        return Ok(Signing {
            unsigned: Unsigned { count, reason },
            left,
            halted: None,
        });
    };
    let report = crate::signing::sign_missing_in(store, &disk.listing, disk.after.clone(), signer)?;
    let n = report.signed.len();
    if n > 0 {
        tracing::info!(
            signed = n,
            first = report.signed.first().copied().unwrap_or_default(),
            last = report.signed.last().copied().unwrap_or_default(),
            keyid = %signer.keyid(),
            "signed the decision files that had no attestation"
        );
    } else if let Some((epoch, _)) = &disk.after {
        tracing::info!(
            through = epoch,
            files_after = report.files,
            "every decision file has an attestation (through the checkpoint's epoch, and the \
             files after it checked)"
        );
    } else {
        tracing::info!(
            files = report.files,
            "every decision file on disk has an attestation"
        );
    }
    let Some((epoch, why)) = report.broken else {
        return Ok(Signing {
            unsigned: Unsigned::default(),
            left: Vec::new(),
            halted: None,
        });
    };
    let left = report.unsigned.len();
    let from = report.unsigned.first().copied().unwrap_or(epoch);
    let stall = format!(
        "the decision chain does not verify at epoch {epoch} ({why}): {left} unsigned decision \
         files from epoch {from} on were not signed; find out what changed with tb-cli governor \
         audit before anything else"
    );
    tracing::error!(
        epoch,
        error = %why,
        unsigned = left,
        unsigned_from = from,
        "the decision chain does not verify, so the unsigned decision files were not signed; find \
         out what changed with tb-cli governor audit before anything else"
    );
    Ok(Signing {
        unsigned: Unsigned {
            count: left as u64,
            reason: Some(stall.clone()),
        },
        left: report.unsigned,
        halted: Some(stall),
    })
}

/// Runs the daemon until `shutdown` completes. Each message on `reload` re-reads the
/// configuration. `on_ready` gets the RPC URL (`https://` with TLS) once the server listens and
/// start-up has written what it needs to. An error after the start (the ingest thread panicked) is
/// returned once the server has stopped.
pub async fn run(
    config_path: Option<PathBuf>,
    shutdown: impl Future<Output = ()>,
    mut reload: mpsc::Receiver<()>,
    on_ready: impl FnOnce(&str),
) -> Result<()> {
    // Checks first: nothing below writes into the data directory until every check passed.
    let config = Config::load_from_process_env(config_path.as_deref())?;
    let inputs = Inputs::from_config(config)?;
    let config = &inputs.config;
    let config_hash = inputs.config_hash();
    let signer = load_signer(config)?;
    let data = config.governor.data_dir.clone();
    // A data directory that was used has its lock file: a second start is refused here, naming
    // the holder, before it even tries the listen address the first process holds.
    let early_lock = if data.join(datadir::LOCK_FILE).exists() {
        Some(DataDirLock::acquire(&data)?)
    } else {
        None
    };
    let tls = crate::tls::ServerTls::load(&config.rpc.tls)?;
    let listener = http::bind(&config.rpc.listen).await?;
    // A never-used directory gets its lock file (and the directory itself) only now.
    let mut data_lock = match early_lock {
        Some(held) => held,
        None => DataDirLock::acquire(&data)?,
    };
    let store = RecordStore::open(data.join("decisions"), "decision")?;
    let checkpoint_path = data.join("state/checkpoint.json");
    let checkpoint = load_checkpoint(&checkpoint_path, &store, &config_hash);
    let disk = OnDisk::survey(&store, checkpoint.as_ref().ok(), signer.as_ref())?;
    check_config_drift(&store, disk.newest, &config_hash)?;
    let mut journal = JournalFile::load(&data.join("journal.jsonl"))?;
    journal.last_closed = disk.newest;
    warn_key_without_signing(config);
    let resumed = resume(&inputs, checkpoint, &checkpoint_path);

    let budget = config.chain.proof_verification_budget_ms;
    let st = resumed.engine.state();
    let (params, shadow_params) = (st.params.clone(), st.shadow_params.clone());
    let last = st
        .last_epoch
        .and_then(|e| read_last_close(&store, e, signer.as_ref()));
    let next_height = resumed.replayer.next_height();
    let tip_height = (next_height > config.governor.genesis_height).then(|| next_height - 1);
    let recent = page::recent_from_files(&store, st.last_epoch);
    let poller = peers::Poller::new(&config.peers)?;
    let book = Arc::new(peers::Book::load(&data.join("state"), &journal.events)?);
    let node = Node {
        config_hash: config_hash.clone(),
        replay_config_hash: inputs.replay_config_hash(),
        budget_ms: budget,
        blocktorch_env: (
            config.governor.blocktorch_kernel_digest.clone(),
            config.governor.blocktorch_benchmark_commit.clone(),
        ),
        decisions: store,
        public_key: signer.as_ref().map(tb_decisions::Signer::public_key_hex),
        key: signer.as_ref().map(tb_decisions::Signer::verifying_key),
    };
    let shared = Arc::new(Shared::new(
        node,
        Metrics::new(),
        journal,
        View {
            tip_height,
            ingest: IngestView {
                file: resumed.reader.position().file.clone(),
                line: resumed.reader.position().line,
                stall: None,
            },
            last: last.clone(),
            pending: st.pending.clone(),
            history: resumed.history,
            params: if st.last_epoch.is_some() {
                params
            } else {
                Params::initial(budget)
            },
            shadow_params,
            config_reload_error: None,
            pending_receipts: Default::default(),
            // Counted by the start-up signing in `first_writes`.
            unsigned: Unsigned::default(),
            recent,
            peers: config
                .peers
                .urls
                .iter()
                .map(|url| peers::initial_status(url, &book.get(url)))
                .collect(),
        },
        Live {
            token: config.rpc.token.clone(),
            rps: config.rpc.rps,
        },
    ));
    shared
        .metrics
        .proof_verification_budget_ms
        .set(i64::try_from(budget).unwrap_or(i64::MAX));
    if let Some(l) = &last {
        shared.metrics.set_gauges(&l.decision.snapshot, &l.decision);
    }
    if let Some(t) = tip_height {
        shared.metrics.set_tip_height(t);
    }

    // Until start-up has written below, the journal refuses appends, so an early RPC call
    // cannot slip in before the start-up events.
    let module = server::Server {
        shared: shared.clone(),
        peers: book.clone(),
        peer_urls: config.peers.urls.clone(),
    }
    .into_rpc();
    let (addr, handle) = http::serve(
        listener,
        module.into(),
        shared.clone(),
        config.rpc.max_body_bytes,
        config.rpc.max_connections,
        http::Transport {
            tls: tls.clone(),
            allow_plain_remote_mutations: config.rpc.allow_plain_remote_mutations,
        },
    )
    .await?;

    // The start is accepted: from here on, writes.
    let started = first_writes(
        &data,
        &mut data_lock,
        &shared,
        config.mode(),
        &disk,
        signer.as_ref(),
    );
    let signing = match started {
        Ok(signing) => signing,
        Err(e) => {
            let _ = handle.stop();
            handle.stopped().await;
            return Err(e);
        }
    };
    match resumed.checkpoint {
        Some(epoch) => {
            let at = resumed.reader.position();
            tracing::info!(epoch, file = %at.file, line = at.line, "resuming from the checkpoint");
        }
        None => tracing::info!("resuming from genesis"),
    }
    tracing::info!(
        url = %format!("http://{addr}"),
        "serving JSON-RPC, the status page, /metrics and /healthz"
    );
    poller.spawn(&shared, &book);
    let scheme = if tls.is_some() { "https" } else { "http" };
    on_ready(&format!("{scheme}://{addr}"));

    let (stop_tx, stop_rx) = std::sync::mpsc::channel();
    let backlog = Backlog::new(&inputs.chain_dir, resumed.reader.position());
    // Unsigned files up to the epoch ingestion resumes after: the checkpoint's count for the
    // files before the survey, plus those of the survey still unsigned.
    let unsigned = st.last_epoch.map_or(0, |resumed| {
        let surveyed = signing.left.iter().filter(|e| **e <= resumed).count() as u64;
        disk.unsigned_before + surveyed
    });
    let ingest = Ingest {
        backlog,
        halted: signing.halted,
        unsigned,
        reader: resumed.reader,
        replayer: resumed.replayer,
        engine: resumed.engine,
        signer,
        shared: shared.clone(),
        checkpoint_path,
        params_path: data.join("runtime/params.json"),
        hook: config.apply.hook.clone(),
        hook_timeout: Duration::from_millis(config.apply.hook_timeout_ms),
        runtime: tokio::runtime::Handle::current(),
        poll: Duration::from_millis(config.chain.poll_ms),
    };
    // Dropped when the thread ends, returning or panicking: wakes the loop below.
    let (ended_tx, mut ended_rx) = tokio::sync::oneshot::channel::<()>();
    let ingest_thread = std::thread::Builder::new()
        .name("ingest".to_owned())
        .spawn(move || {
            let _ended = ended_tx;
            ingest.run(stop_rx);
        })
        .context("starting the ingest thread")?;

    tokio::pin!(shutdown);
    let ingest_ended = loop {
        tokio::select! {
            () = &mut shutdown => break false,
            _ = &mut ended_rx => break true,
            Some(()) = reload.recv() => {
                reload_config(&inputs, config_path.as_deref(), &shared, tls.as_deref())
            }
        }
    };
    if ingest_ended {
        tracing::error!("the ingest thread ended on its own: stopping the daemon");
    } else {
        tracing::info!("shutting down: finishing the write in progress");
    }
    let _ = stop_tx.send(());
    let joined = tokio::task::spawn_blocking(move || ingest_thread.join()).await;
    let _ = handle.stop();
    handle.stopped().await;
    drop(data_lock);
    match joined {
        Ok(Ok(())) if !ingest_ended => {
            tracing::info!("stopped cleanly");
            Ok(())
        }
        Ok(Ok(())) => anyhow::bail!("the ingest thread stopped without being asked to"),
        Ok(Err(payload)) => {
            let msg = panic_message(payload.as_ref());
            tracing::error!(panic = %msg, "the ingest thread panicked");
            anyhow::bail!(
                "the ingest thread panicked: {msg}; decision files written before it are intact \
                 (restart the daemon to resume)"
            )
        }
        Err(e) => anyhow::bail!("waiting for the ingest thread failed: {e}"),
    }
}

/// The writes of an accepted start, in order: the lock file's PID, `state/` and `runtime/`,
/// leftover temp files, the journal's unterminated last line, the configured mode, then the
/// missing sidecars of the decision files `disk` surveyed (with signing on).
fn first_writes(
    data: &Path,
    data_lock: &mut DataDirLock,
    shared: &Shared,
    mode: Mode,
    disk: &OnDisk,
    signer: Option<&tb_decisions::Signer>,
) -> Result<Signing> {
    data_lock.record_pid()?;
    for sub in ["state", "runtime"] {
        let dir = data.join(sub);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let temp = format!("decisions/{}", tb_decisions::store::TEMP_DIR);
    let mut subs = vec![temp.as_str(), "state", "runtime"];
    // Older versions left theirs next to the decision files; a start that lists them anyway
    // removes those too.
    if disk.after.is_none() {
        subs.push("decisions");
    }
    for sub in subs {
        let stale = tb_decisions::store::remove_temp_files(&data.join(sub))?;
        if stale > 0 {
            tracing::info!(
                removed = stale,
                dir = %format!("{sub}/"),
                "removed temp files an interrupted write left"
            );
        }
    }
    let mode_now = shared.with_journal(|journal| -> Result<Mode> {
        journal.open_for_append()?;
        let first_start = journal.events.is_empty();
        journal_env_mode(
            journal,
            mode,
            if first_start { "first start: " } else { "" },
            &mode_env(mode, process_env),
            if first_start {
                FIRST_START_REASON
            } else {
                "restart: mode from configuration (TB_GOVERNOR_SHADOW_ONLY / TB_GOVERNOR_ENABLED)"
            },
        )?;
        Ok(journal.current_mode().map_or(Mode::Shadow, |(m, _)| m))
    })?;
    shared.metrics.set_mode(mode_now);
    let signing = sign_at_start(&shared.node.decisions, disk, signer)?;
    // The last close's attestation as it is now that the missing sidecars were added.
    let last_epoch = shared.view().last.as_ref().map(|l| l.decision.epoch);
    let last = last_epoch.and_then(|e| read_last_close(&shared.node.decisions, e, signer));
    shared.set_signing(signing.unsigned.clone(), last);
    Ok(signing)
}

/// The message of a panic payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}

/// SIGHUP: mode, token and rate limit change live; decision-relevant changes are refused.
fn reload_config(
    inputs: &Inputs,
    path: Option<&Path>,
    shared: &Shared,
    tls: Option<&crate::tls::ServerTls>,
) {
    let outcome = (|| -> Result<()> {
        let config = Config::load_from_process_env(path)?;
        let fresh = Inputs::from_config(config)?;
        let diff = inputs.config.decision_relevant_diff(&fresh.config);
        if fresh.config_hash() != inputs.config_hash() {
            let what = if diff.is_empty() {
                "the providers file".to_owned()
            } else {
                diff.join(", ")
            };
            anyhow::bail!(
                "refused: decision-relevant settings changed mid-chain ({what}); they can only \
                 change with a new data_dir. Mode, RPC token and rate limit were not reloaded either."
            );
        }
        if let Some(tls) = tls {
            anyhow::ensure!(
                fresh.config.rpc.tls.enabled(),
                "refused: rpc.tls.cert is no longer set; turning TLS off needs a restart"
            );
            tls.reload(&fresh.config.rpc.tls).context(
                "refused: the TLS certificate could not be reloaded (the one being served is kept; \
                 mode, RPC token and rate limit were not reloaded either)",
            )?;
        }
        shared.set_live(Live {
            token: fresh.config.rpc.token.clone(),
            rps: fresh.config.rpc.rps,
        });
        let want = fresh.config.mode();
        let vars = mode_env(want, process_env);
        report_env_override(path, want, &vars);
        shared.with_journal(|journal| {
            journal_env_mode(
                journal,
                want,
                "SIGHUP: ",
                &vars,
                "SIGHUP: mode from configuration",
            )
        })?;
        shared.metrics.set_mode(want);
        tracing::info!(
            mode = %want,
            rps = fresh.config.rpc.rps,
            token = %if fresh.config.rpc.token.is_some() {
                "set"
            } else {
                "unset"
            },
            "configuration reloaded"
        );
        Ok(())
    })();
    shared.set_reload_error(outcome.err().map(|e| {
        let msg = format!("{e:#}");
        tracing::error!(error = %msg, "configuration reload failed");
        msg
    }));
}

/// On SIGHUP, says whether the mode variables of the environment (fixed when the process started)
/// override what the configuration file asks for.
fn report_env_override(path: Option<&Path>, want: Mode, vars: &[(&'static str, String)]) {
    if vars.is_empty() {
        return;
    }
    let file_only = Config::load(path, |var| {
        if MODE_VARS.contains(&var) {
            None
        } else {
            process_env(var)
        }
    });
    let file = path.map_or_else(|| "the defaults".to_owned(), |p| p.display().to_string());
    match file_only.map(|c| c.mode()) {
        Ok(file_mode) if file_mode != want => tracing::warn!(
            env = %show_vars(vars),
            config = %file,
            config_mode = %file_mode,
            mode = %want,
            "SIGHUP: the process environment overrides the configuration's mode. The environment \
             is read when the process starts: remove the variable from the service environment \
             and restart for the file to decide"
        ),
        Ok(_) => tracing::info!(
            env = %show_vars(vars),
            config = %file,
            mode = %want,
            "SIGHUP: the process environment asks for the configuration's mode"
        ),
        Err(e) => tracing::debug!(
            config = %file,
            error = %e,
            "SIGHUP: reading the configuration without the environment failed"
        ),
    }
}
