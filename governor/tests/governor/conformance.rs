//! The engine agrees with the vectors' `expected.json` (shadow mode, default knobs, no journal).

use serde_json::{json, Value};
use tb_config::GatesConfig;

use crate::support::{decide, engine_config, replay_config, snapshots, vectors};

fn check(name: &str) {
    let dir = vectors(name);
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let closed = snapshots(&dir, replay_config(&format!("vector-{name}"), 120));
    let decisions = decide(&closed, engine_config(GatesConfig::default()), &[]);
    let epochs = expected["epochs"].as_array().unwrap();
    assert_eq!(decisions.len(), epochs.len(), "{name}: epoch count");
    for (d, want) in decisions.iter().zip(epochs) {
        let d = serde_json::to_value(&d.decision).unwrap();
        let e = want["epoch"].as_u64().unwrap();
        let ctx = format!("{name} epoch {e}");
        assert_eq!(d["epoch"], want["epoch"], "{ctx}");
        assert_eq!(d["mode"], want["mode"], "{ctx}");
        assert_eq!(d["snapshot_hash"], want["snapshot_hash"], "{ctx}");
        for (g, w) in d["gates"]
            .as_array()
            .unwrap()
            .iter()
            .zip(want["gates"].as_array().unwrap())
        {
            for key in [
                "name",
                "state",
                "enter_streak",
                "exit_streak",
                "enter_ok",
                "exit_bad",
                "metrics",
            ] {
                assert_eq!(g[key], w[key], "{ctx} gate {} field {key}", w["name"]);
            }
        }
        let intents: Vec<Value> = d["intents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                json!({"action": i["action"], "created_epoch": i["created_epoch"],
                       "epoch_apply": i["epoch_apply"], "gate": i["gate"], "id": i["id"]})
            })
            .collect();
        assert_eq!(Value::Array(intents), want["intents"], "{ctx} intents");
        let activations: serde_json::Map<String, Value> = d["activations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["id"].as_str().unwrap().to_owned(), a["outcome"].clone()))
            .collect();
        assert_eq!(
            Value::Object(activations),
            want["activations"],
            "{ctx} activations"
        );
        for key in ["params", "shadow_params", "params_hash"] {
            assert_eq!(d[key], want[key], "{ctx} {key}");
        }
    }
}

#[test]
fn healthy_vector_decisions_match() {
    check("healthy");
}

#[test]
fn hostile_vector_decisions_match() {
    check("hostile");
}
