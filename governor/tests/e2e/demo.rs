//! `tb-governor demo`: the newcomer's first command tells a true story.

use crate::support::run_expect;

#[test]
fn the_demo_narrative_states_what_the_files_prove() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run_expect("tb-governor", &["demo", "--dir", "d"], tmp.path(), &[], 0).stdout;
    // Gates: all enter at epoch 2; the shocked storage market (and economics) exit at 5 and
    // re-enter at 9 (docs/gates.md streak rules with the simulator's shock in epochs 4-6).
    assert!(
        out.contains("epoch  2: entered economics, storage, compute, energy, ad, ad_contextual, ad_presence, operational"),
        "{out}"
    );
    assert!(
        out.contains("epoch  5: exited  economics, storage"),
        "{out}"
    );
    assert!(
        out.contains("epoch  9: entered economics, storage"),
        "{out}"
    );
    assert!(
        out.contains("Verification: 12/12 decision files: Attestation matches"),
        "{out}"
    );
    for reason in [
        "schema",
        "below_min_payment",
        "key_not_found",
        "bad_signature",
        "replayed_nonce",
        "invalid_values",
    ] {
        assert!(
            out.contains(&format!("  {reason:<18} 60")),
            "{reason}: {out}"
        );
    }

    // The decision files agree with the narrative.
    let dir = tmp.path().join("d/data/decisions");
    let decision = |e: u64| -> serde_json::Value {
        let path = dir.join(format!("epoch-{e:020}.json"));
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    };
    let ids = |e: u64| -> Vec<String> {
        decision(e)["intents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(2).len(), 8);
    assert_eq!(ids(5), ["economics-00000005-exit", "storage-00000005-exit"]);
    assert_eq!(
        ids(9),
        ["economics-00000009-enter", "storage-00000009-enter"]
    );

    // The printed follow-up commands work: verify with the printed key, and b3sum's hash.
    let verify = out
        .lines()
        .find(|l| l.trim_start().starts_with("tb-cli governor verify"))
        .unwrap();
    let args: Vec<&str> = verify.split_whitespace().skip(1).collect();
    let r = run_expect("tb-cli", &args, tmp.path(), &[], 0);
    assert_eq!(r.stdout.matches("Attestation matches").count(), 12);
    let b3 = out
        .lines()
        .find(|l| l.trim_start().starts_with("b3sum"))
        .unwrap();
    let mut parts = b3.split_whitespace();
    let file = parts.nth(1).unwrap();
    let printed = b3.rsplit(' ').next().unwrap();
    assert_eq!(
        tb_decisions::hash_hex(&std::fs::read(file).unwrap()),
        printed
    );
    let audit = out
        .lines()
        .find(|l| l.trim_start().starts_with("tb-cli governor audit"))
        .unwrap();
    let args: Vec<&str> = audit.split_whitespace().skip(1).collect();
    let r = run_expect("tb-cli", &args, tmp.path(), &[], 0);
    assert!(r.stdout.contains("12 reproduced"), "{}", r.stdout);

    // A rerun clears its own directory; a foreign non-empty directory is refused.
    run_expect("tb-governor", &["demo", "--dir", "d"], tmp.path(), &[], 0);
    std::fs::create_dir(tmp.path().join("mine")).unwrap();
    std::fs::write(tmp.path().join("mine/precious.txt"), "keep").unwrap();
    let r = run_expect(
        "tb-governor",
        &["demo", "--dir", "mine"],
        tmp.path(),
        &[],
        2,
    );
    assert!(
        r.stderr.contains("not made by `tb-governor demo`"),
        "{}",
        r.stderr
    );
    assert!(tmp.path().join("mine/precious.txt").exists());
}
