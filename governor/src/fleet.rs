//! Comparing governors: the rules by which one node's decisions are checked against another's.
//!
//! Every honest node decides the same thing from the same chain, so two nodes that closed the
//! same epoch under the same configuration must hold byte-identical decision files. This module
//! holds the rules only, with no I/O: the daemon's peer poller and `tb-cli governor compare`
//! fetch the hashes and feed them here, so both judge the same way.
//!
//! Nothing here changes a decision: there is no consensus, only comparison.

use serde::{Deserialize, Serialize};

/// One node's hashes of a closed epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochHashes {
    /// The epoch.
    pub epoch: u64,
    /// blake3 of its snapshot: what the replay computed from the chain.
    pub snapshot_hash: String,
    /// blake3 of its decision file: what the gates made of the snapshot.
    pub decision_hash: String,
}

/// A node's configuration, as far as comparing it matters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigHashes {
    /// `config_hash`: every decision-relevant setting.
    pub config_hash: String,
    /// `replay_config_hash`: the settings the snapshots depend on (everything in `config_hash`
    /// except the gate thresholds).
    pub replay_config_hash: String,
}

/// What two nodes' configurations let a comparison check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The same configuration: snapshots and decisions must both agree.
    Everything,
    /// Other gate settings, same replay settings: decisions may legitimately differ, snapshots
    /// must still agree.
    SnapshotsOnly,
    /// Other replay settings: nothing can be compared.
    Nothing,
}

impl Scope {
    /// The scope of comparing nodes configured as `mine` and `theirs`.
    pub fn of(mine: &ConfigHashes, theirs: &ConfigHashes) -> Scope {
        if mine.config_hash == theirs.config_hash {
            Scope::Everything
        } else if mine.replay_config_hash == theirs.replay_config_hash {
            Scope::SnapshotsOnly
        } else {
            Scope::Nothing
        }
    }
}

/// Which hash of an epoch differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Differs {
    /// The snapshots differ: the nodes read different chains, or replay differently.
    Snapshot,
    /// Same snapshot, different decision under the same configuration.
    Decision,
}

impl Differs {
    /// `snapshot` or `decision`.
    pub fn as_str(self) -> &'static str {
        match self {
            Differs::Snapshot => "snapshot",
            Differs::Decision => "decision",
        }
    }
}

/// The first epoch at which two nodes differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mismatch {
    /// Which hash differs (the snapshot's when both do).
    pub differs: Differs,
    /// This node's hashes of the epoch.
    pub mine: EpochHashes,
    /// The other node's hashes of the same epoch.
    pub theirs: EpochHashes,
}

/// What comparing two runs of epochs found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The last epoch checked equal before any mismatch (`None`: none checked).
    pub agreed_through: Option<u64>,
    /// The first epoch that differs, if one does.
    pub mismatch: Option<Mismatch>,
}

/// Compares the epochs present in both `mine` and `theirs` (each ascending by epoch) within
/// `scope`, stopping at the first that differs. Epochs that only one side holds are skipped.
pub fn compare(mine: &[EpochHashes], theirs: &[EpochHashes], scope: Scope) -> Outcome {
    let mut outcome = Outcome::default();
    if scope == Scope::Nothing {
        return outcome;
    }
    let (mut i, mut j) = (0, 0);
    while let (Some(a), Some(b)) = (mine.get(i), theirs.get(j)) {
        match a.epoch.cmp(&b.epoch) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                let differs = if a.snapshot_hash != b.snapshot_hash {
                    Some(Differs::Snapshot)
                } else if scope == Scope::Everything && a.decision_hash != b.decision_hash {
                    Some(Differs::Decision)
                } else {
                    None
                };
                if let Some(differs) = differs {
                    outcome.mismatch = Some(Mismatch {
                        differs,
                        mine: a.clone(),
                        theirs: b.clone(),
                    });
                    return outcome;
                }
                outcome.agreed_through = Some(a.epoch);
                i += 1;
                j += 1;
            }
        }
    }
    outcome
}

/// A decision file as compared: its hashes for `epoch` (its own blake3 and the snapshot hash it
/// records) and the `config_hash` it was made under.
pub fn decision_hashes(
    epoch: u64,
    bytes: &[u8],
) -> Result<(EpochHashes, String), serde_json::Error> {
    #[derive(Deserialize)]
    struct Head {
        snapshot_hash: String,
        config_hash: String,
    }
    let head: Head = serde_json::from_slice(bytes)?;
    let hashes = EpochHashes {
        epoch,
        snapshot_hash: head.snapshot_hash,
        decision_hash: tb_canonical::hash_hex(bytes),
    };
    Ok((hashes, head.config_hash))
}

/// The canonical bytes of the snapshot inside a decision file, for listing the fields two
/// snapshots differ in; `None` when `bytes` holds no snapshot.
pub fn decision_snapshot(bytes: &[u8]) -> Option<Vec<u8>> {
    #[derive(Deserialize)]
    struct WithSnapshot {
        snapshot: serde_json::Value,
    }
    let d: WithSnapshot = serde_json::from_slice(bytes).ok()?;
    Some(tb_canonical::to_vec(&d.snapshot))
}

/// Whether `text` is a hash as the governor writes one: 64 lowercase hex digits.
pub fn is_hash(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn h(epoch: u64, s: u8, d: u8) -> EpochHashes {
        EpochHashes {
            epoch,
            snapshot_hash: format!("{s:02x}").repeat(32),
            decision_hash: format!("{d:02x}").repeat(32),
        }
    }

    fn cfg(c: &str, r: &str) -> ConfigHashes {
        ConfigHashes {
            config_hash: c.repeat(64),
            replay_config_hash: r.repeat(64),
        }
    }

    #[test]
    fn scope_follows_the_configuration_hashes() {
        assert_eq!(Scope::of(&cfg("a", "b"), &cfg("a", "b")), Scope::Everything);
        assert_eq!(
            Scope::of(&cfg("a", "b"), &cfg("c", "b")),
            Scope::SnapshotsOnly
        );
        assert_eq!(Scope::of(&cfg("a", "b"), &cfg("c", "d")), Scope::Nothing);
    }

    #[test]
    fn the_first_differing_epoch_is_named_with_both_hashes() {
        let mine = [h(0, 1, 1), h(1, 2, 2), h(2, 3, 3), h(3, 4, 4)];
        let theirs = [h(0, 1, 1), h(1, 2, 2), h(2, 9, 3), h(3, 8, 8)];
        let out = compare(&mine, &theirs, Scope::Everything);
        assert_eq!(out.agreed_through, Some(1));
        let m = out.mismatch.unwrap();
        assert_eq!((m.differs, m.mine.epoch), (Differs::Snapshot, 2));
        assert_eq!(m.mine, mine[2]);
        assert_eq!(m.theirs, theirs[2]);
    }

    #[test]
    fn decisions_count_only_under_the_same_configuration() {
        let mine = [h(0, 1, 1), h(1, 2, 2)];
        let theirs = [h(0, 1, 1), h(1, 2, 7)];
        let out = compare(&mine, &theirs, Scope::Everything);
        assert_eq!(out.mismatch.unwrap().differs, Differs::Decision);
        let out = compare(&mine, &theirs, Scope::SnapshotsOnly);
        assert_eq!(
            out,
            Outcome {
                agreed_through: Some(1),
                mismatch: None
            }
        );
        assert_eq!(
            compare(&mine, &[h(0, 5, 5)], Scope::Nothing),
            Outcome::default()
        );
    }

    #[test]
    fn epochs_only_one_side_holds_are_skipped() {
        let mine = [h(0, 1, 1), h(2, 3, 3), h(3, 4, 4)];
        let theirs = [h(1, 9, 9), h(2, 3, 3), h(4, 9, 9)];
        assert_eq!(
            compare(&mine, &theirs, Scope::Everything),
            Outcome {
                agreed_through: Some(2),
                mismatch: None
            }
        );
    }

    #[test]
    fn hashes_are_64_lowercase_hex_digits() {
        assert!(is_hash(&"0a".repeat(32)));
        assert!(!is_hash(&"0A".repeat(32)));
        assert!(!is_hash(&"0a".repeat(31)));
        assert!(!is_hash(&"zz".repeat(32)));
    }

    proptest! {
        /// Equal runs agree through their last epoch; changing any one hash of a run makes that
        /// epoch the first mismatch, whatever else follows.
        #[test]
        fn compare_finds_exactly_the_first_changed_epoch(
            len in 1usize..40,
            at in 0usize..40,
            which in 0u8..2,
            tail_noise in any::<bool>(),
        ) {
            let mine: Vec<_> = (0..len as u64).map(|e| h(e, e as u8, e as u8 ^ 0x55)).collect();
            let same = compare(&mine, &mine, Scope::Everything);
            prop_assert_eq!(same.agreed_through, Some(len as u64 - 1));
            prop_assert!(same.mismatch.is_none());
            let at = at % len;
            let mut theirs = mine.clone();
            if which == 0 {
                theirs[at].snapshot_hash = "ff".repeat(32);
            } else {
                theirs[at].decision_hash = "ff".repeat(32);
            }
            if tail_noise {
                for t in theirs.iter_mut().skip(at + 1) {
                    t.snapshot_hash = "ee".repeat(32);
                }
            }
            let out = compare(&mine, &theirs, Scope::Everything);
            prop_assert_eq!(out.agreed_through, at.checked_sub(1).map(|a| a as u64));
            let m = out.mismatch.unwrap();
            prop_assert_eq!(m.mine.epoch, at as u64);
            prop_assert_eq!(m.differs, if which == 0 { Differs::Snapshot } else { Differs::Decision });
        }
    }
}
