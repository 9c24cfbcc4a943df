//! Tests of loading, env overrides, validation and `config_hash`, through the public API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use std::collections::HashMap;
use std::path::PathBuf;
use tb_config::*;

const EXAMPLE: &str = include_str!("../governor.example.toml");
const WORDS: [(&str, bool); 8] = [
    ("1", true),
    ("0", false),
    ("true", true),
    ("false", false),
    ("yes", true),
    ("no", false),
    ("on", true),
    ("off", false),
];

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |var| map.get(var).cloned()
}

fn load_env(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::load(None, env_of(pairs))
}

fn invalid_key(err: &ConfigError) -> (&str, &str) {
    match err {
        ConfigError::Invalid { origin, key, .. } => (origin.as_str(), key.as_str()),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn defaults_match_the_design() {
    let c = Config::default();
    assert!(c.governor.enabled);
    assert!(c.governor.shadow_only);
    assert_eq!(c.governor.data_dir, PathBuf::from("data"));
    assert_eq!(c.governor.chain_id, "tb-mainnet");
    assert_eq!(c.governor.epoch_blocks, 120);
    assert_eq!(c.governor.genesis_height, 0);
    assert_eq!(c.governor.blocktorch_kernel_digest, None);
    assert_eq!(c.governor.blocktorch_benchmark_commit, None);

    assert_eq!(c.chain.dir, PathBuf::from("chain"));
    assert_eq!(c.chain.providers, PathBuf::from("providers.json"));
    assert_eq!(c.chain.poll_ms, 500);
    assert_eq!(c.chain.min_payment_micro, 1_000);
    assert_eq!(c.chain.proof_verification_budget_ms, 100);

    let e = &c.economics;
    assert_eq!(e.max_supply_micro, 40_000_000 * 1_000_000);
    assert_eq!(e.base_reward_micro, 1_800_000);
    assert_eq!(e.treasury_bps, 1_000);
    assert_eq!(e.ema_alpha_ppm, 50_000);
    assert_eq!(e.ratio_floor_ppm, 10_000);
    assert_eq!(
        (e.activity_min_ppm, e.activity_max_ppm),
        (500_000, 2_000_000)
    );
    assert_eq!(
        (e.decentralization_min_ppm, e.decentralization_max_ppm),
        (500_000, 1_500_000)
    );
    assert_eq!(e.volatility_window, 8);
    assert_eq!(
        (
            e.baseline_tx_count_min_milli,
            e.baseline_tx_count_milli,
            e.baseline_tx_count_max_milli
        ),
        (50_000, 100_000, 10_000_000)
    );
    assert_eq!(
        (
            e.baseline_tx_volume_min_micro,
            e.baseline_tx_volume_micro,
            e.baseline_tx_volume_max_micro
        ),
        (5_000_000_000, 10_000_000_000, 1_000_000_000_000)
    );
    assert_eq!(
        (
            e.baseline_miners_min_milli,
            e.baseline_miners_milli,
            e.baseline_miners_max_milli
        ),
        (5_000, 10_000, 100_000)
    );

    for (name, streak) in c.gates.streaks() {
        assert_eq!(
            streak,
            StreakConfig {
                enter_streak_required: 3,
                exit_streak_required: 2,
                min_epochs: 2
            },
            "{name}"
        );
    }
    let g = &c.gates.economics;
    assert_eq!(g.tx_count_min, 10);
    assert_eq!(g.tx_volume_min_micro, 1_000_000_000);
    assert_eq!(
        (g.volatility_enter_max_bps, g.volatility_exit_max_bps),
        (2_000, 3_000)
    );
    assert_eq!(
        (g.utilization_min_ppm, g.utilization_max_ppm),
        (10_000, 950_000)
    );
    assert_eq!((g.margin_min_ppm, g.margin_max_ppm), (-500_000, 950_000));

    for m in [
        &c.gates.storage,
        &c.gates.compute,
        &c.gates.energy,
        &c.gates.ad,
    ] {
        assert_eq!(m.settlements_min, 5);
        assert_eq!(
            (m.enter_utilization_min_ppm, m.enter_utilization_max_ppm),
            (50_000, 900_000)
        );
        assert_eq!(
            (m.enter_margin_min_ppm, m.enter_margin_max_ppm),
            (0, 800_000)
        );
        assert_eq!(
            (m.exit_utilization_min_ppm, m.exit_utilization_max_ppm),
            (10_000, 950_000)
        );
        assert_eq!(
            (m.exit_margin_min_ppm, m.exit_margin_max_ppm),
            (-250_000, 950_000)
        );
        assert_eq!((m.sla_enter_max_ppm, m.sla_exit_max_ppm), (10_000, 50_000));
    }
    for t in [&c.gates.ad_contextual, &c.gates.ad_presence] {
        assert_eq!(t.settlements_min, 5);
        assert_eq!(t.enter_conversion_min_ppm, 1_000);
        assert_eq!(t.enter_privacy_min_exclusive_ppm, 50_000);
        assert_eq!(t.exit_conversion_min_ppm, 200);
        assert_eq!(t.exit_privacy_max_ppm, 50_000);
    }
    let o = &c.gates.operational;
    assert_eq!(
        (o.enter_miners_min, o.enter_spacing_mad_max_ppm),
        (3, 250_000)
    );
    assert_eq!(
        (o.exit_miners_min, o.exit_spacing_mad_max_ppm),
        (2, 500_000)
    );

    assert_eq!(c.rpc.listen, "127.0.0.1:7878");
    assert_eq!(c.rpc.token, None);
    assert_eq!(c.rpc.rps, 50);
    assert_eq!(c.rpc.max_body_bytes, 1_048_576);
    assert_eq!(c.rpc.max_connections, 256);
    assert_eq!(c.signing, SigningConfig::default());
    assert!(!c.signing.enabled);
    assert_eq!(c.apply.hook, None);
    assert_eq!(c.apply.hook_timeout_ms, 5_000);

    assert_eq!(c.mode(), Mode::Shadow);
    c.validate("defaults").unwrap();
}

#[test]
fn empty_inputs_give_defaults() {
    assert_eq!(
        Config::from_toml_str("", "empty").unwrap(),
        Config::default()
    );
    assert_eq!(load_env(&[]).unwrap(), Config::default());
}

#[test]
fn example_file_equals_defaults() {
    let parsed = Config::from_toml_str(EXAMPLE, "governor.example.toml").unwrap();
    assert_eq!(parsed, Config::default());
}

#[test]
fn example_file_lists_every_knob() {
    // Every knob that has a default value appears uncommented; the Option knobs appear
    // commented out. A knob added to a struct but not to the example fails here.
    let lines: Vec<&str> = EXAMPLE.lines().map(str::trim).collect();
    let mut expected: Vec<String> = Vec::new();
    for (k, _) in Config::default().economics.knobs() {
        expected.push(k.to_owned());
    }
    for (k, _) in Config::default().gates.knobs() {
        expected.push(k.rsplit('.').next().unwrap().to_owned());
    }
    expected.extend(
        [
            "enabled",
            "shadow_only",
            "data_dir",
            "chain_id",
            "epoch_blocks",
            "genesis_height",
            "blocktorch_kernel_digest",
            "blocktorch_benchmark_commit",
            "dir",
            "providers",
            "poll_ms",
            "min_payment_micro",
            "proof_verification_budget_ms",
            "listen",
            "token",
            "rps",
            "max_body_bytes",
            "max_connections",
            "allow_plain_remote_mutations",
            "cert",
            "client_ca",
            "client_cert_optional",
            "handshake_timeout_ms",
            "key_hex",
            "key_file",
            "hook",
            "hook_timeout_ms",
        ]
        .map(str::to_owned),
    );
    for key in expected {
        assert!(
            lines
                .iter()
                .any(|l| l.trim_start_matches("# ").starts_with(&format!("{key} = "))),
            "{key} missing from governor.example.toml"
        );
    }
    for gate in GATE_NAMES {
        assert!(
            lines.contains(&format!("[gates.{gate}]").as_str()),
            "{gate}"
        );
    }
    // Every knob line is preceded by a one-line comment.
    for (i, line) in lines.iter().enumerate() {
        if !line.is_empty() && !line.starts_with('#') && !line.starts_with('[') {
            assert!(lines[i - 1].starts_with('#'), "no comment above {line:?}");
        }
    }
}

#[test]
fn unknown_keys_are_rejected_everywhere() {
    let mut tables = vec![
        "governor".to_owned(),
        "chain".to_owned(),
        "economics".to_owned(),
        "rpc".to_owned(),
        "signing".to_owned(),
        "apply".to_owned(),
        "gates".to_owned(),
    ];
    tables.extend(GATE_NAMES.iter().map(|g| format!("gates.{g}")));
    for table in tables {
        let text = format!("[{table}]\nbogus_knob_xyz = 1\n");
        let err = Config::from_toml_str(&text, "my.toml").unwrap_err();
        let shown = err.to_string();
        assert!(matches!(err, ConfigError::Parse { .. }), "{table}: {err:?}");
        assert!(shown.contains("bogus_knob_xyz"), "{table}: {shown}");
        assert!(shown.starts_with("my.toml: "), "{table}: {shown}");
        assert!(shown.contains("line 2"), "{table}: {shown}");
    }
    for text in [
        "bogus_top_xyz = 1\n",
        "[bogus_top_xyz]\n",
        "[gates.bogus_top_xyz]\n",
    ] {
        let shown = Config::from_toml_str(text, "my.toml")
            .unwrap_err()
            .to_string();
        assert!(shown.contains("bogus_top_xyz"), "{shown}");
    }
    // A misspelt key never silently takes its default.
    let shown = Config::from_toml_str("[governor]\nshadow-only = false\n", "my.toml")
        .unwrap_err()
        .to_string();
    assert!(shown.contains("shadow-only"), "{shown}");
}

#[test]
fn wrong_types_are_parse_errors_naming_the_key() {
    let err =
        Config::from_toml_str("[gates.storage]\nsettlements_min = -1\n", "g.toml").unwrap_err();
    let shown = err.to_string();
    assert!(shown.contains("settlements_min"), "{shown}");
    assert!(shown.contains("g.toml"), "{shown}");
    let err = Config::from_toml_str("[rpc]\nrps = 5000000000\n", "g.toml").unwrap_err();
    assert!(err.to_string().contains("rps"), "{err}");
}

#[test]
fn toml_booleans_accept_strict_words() {
    for (word, value) in WORDS {
        for spelled in [word.to_owned(), word.to_uppercase()] {
            let text = format!(
                "[governor]\nenabled = \"{spelled}\"\nshadow_only = \"{spelled}\"\n[signing]\nenabled = \"{spelled}\"\nkey_file = \"k\"\n"
            );
            let c = Config::from_toml_str(&text, "b.toml").unwrap();
            assert_eq!(c.governor.enabled, value);
            assert_eq!(c.governor.shadow_only, value);
            assert_eq!(c.signing.enabled, value);
        }
    }
    let c = Config::from_toml_str("[governor]\nshadow_only = false\n", "b.toml").unwrap();
    assert_eq!(c.mode(), Mode::Apply);
    for bad in ["\"maybe\"", "\"2\"", "\"\"", "\"tru\"", "1", "1.0"] {
        for key in ["enabled", "shadow_only"] {
            let text = format!("[governor]\n{key} = {bad}\n");
            let err = Config::from_toml_str(&text, "b.toml").unwrap_err();
            let shown = err.to_string();
            assert!(matches!(err, ConfigError::Parse { .. }), "{bad}");
            assert!(shown.contains(key), "{shown}");
        }
        let text = format!("[signing]\nenabled = {bad}\n");
        let shown = Config::from_toml_str(&text, "b.toml")
            .unwrap_err()
            .to_string();
        assert!(shown.contains("enabled"), "{shown}");
    }
}

#[test]
fn every_env_override_works() {
    let key = "ab".repeat(32);
    let digest = "0f".repeat(32);
    let c = load_env(&[
        ("TB_GOVERNOR_ENABLED", "0"),
        ("TB_GOVERNOR_SHADOW_ONLY", "off"),
        ("TB_GOVERNOR_SIGN", "YES"),
        ("TB_NODE_KEY_HEX", &key),
        ("TB_GOVERNOR_DATA_DIR", "/var/lib/tb"),
        ("TB_GOVERNOR_CHAIN_DIR", "/srv/chain"),
        ("TB_GOVERNOR_RPC_LISTEN", "0.0.0.0:9000"),
        ("TB_GOVERNOR_RPC_TOKEN", "s3cret"),
        ("TB_GOVERNOR_RPC_RPS", "7"),
        ("TB_GOVERNOR_RPC_MAX_CONNECTIONS", "9"),
        ("TB_BLOCKTORCH_KERNEL_VARIANT_DIGEST", &digest),
        ("TB_BLOCKTORCH_BENCHMARK_COMMIT", "bench-2024.1"),
    ])
    .unwrap();
    assert!(!c.governor.enabled);
    assert!(!c.governor.shadow_only);
    assert!(c.signing.enabled);
    assert_eq!(c.signing.key_hex.as_ref().unwrap().expose(), key);
    assert_eq!(c.governor.data_dir, PathBuf::from("/var/lib/tb"));
    assert_eq!(c.chain.dir, PathBuf::from("/srv/chain"));
    assert_eq!(c.rpc.listen, "0.0.0.0:9000");
    assert_eq!(c.rpc.token.as_ref().unwrap().expose(), "s3cret");
    assert_eq!(c.rpc.rps, 7);
    assert_eq!(c.rpc.max_connections, 9);
    assert_eq!(
        c.governor.blocktorch_kernel_digest.as_deref(),
        Some(digest.as_str())
    );
    assert_eq!(
        c.governor.blocktorch_benchmark_commit.as_deref(),
        Some("bench-2024.1")
    );
    assert_eq!(c.mode(), Mode::Paused);

    let c = load_env(&[
        ("TB_GOVERNOR_SIGN", "1"),
        ("TB_GOVERNOR_KEY_FILE", "/etc/tb/key"),
    ])
    .unwrap();
    assert_eq!(c.signing.key_file, Some(PathBuf::from("/etc/tb/key")));
    assert_eq!(c.mode(), Mode::Shadow);
    assert_eq!(
        load_env(&[("TB_GOVERNOR_SHADOW_ONLY", "false")])
            .unwrap()
            .mode(),
        Mode::Apply
    );
    assert_eq!(
        load_env(&[("TB_GOVERNOR_RPC_RPS", " 12 ")])
            .unwrap()
            .rpc
            .rps,
        12
    );

    // Every variable is listed in ENV_VARS and vice versa.
    assert_eq!(ENV_VARS.len(), 15);
}

#[test]
fn env_overrides_the_file() {
    let dir = std::env::temp_dir().join(format!("tb-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("governor.toml");
    std::fs::write(
        &path,
        "[governor]\nshadow_only = false\ndata_dir = \"from-file\"\n",
    )
    .unwrap();
    let c = Config::load(Some(&path), env_of(&[])).unwrap();
    assert_eq!(c.mode(), Mode::Apply);
    assert_eq!(c.governor.data_dir, PathBuf::from("from-file"));
    let c = Config::load(
        Some(&path),
        env_of(&[
            ("TB_GOVERNOR_SHADOW_ONLY", "1"),
            ("TB_GOVERNOR_DATA_DIR", ""),
        ]),
    )
    .unwrap();
    assert_eq!(c.mode(), Mode::Shadow);
    assert_eq!(
        c.governor.data_dir,
        PathBuf::from("from-file"),
        "empty env counts as unset"
    );

    std::fs::write(&path, "[gates.compute]\nexit_streak_required = 0\n").unwrap();
    let err = Config::load(Some(&path), env_of(&[])).unwrap_err();
    let (origin, key) = invalid_key(&err);
    assert_eq!(origin, path.display().to_string());
    assert_eq!(key, "gates.compute.exit_streak_required");

    let missing = dir.join("missing.toml");
    let err = Config::load(Some(&missing), env_of(&[])).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(err.to_string().contains("missing.toml"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn strict_env_booleans() {
    for var in [
        "TB_GOVERNOR_ENABLED",
        "TB_GOVERNOR_SHADOW_ONLY",
        "TB_GOVERNOR_SIGN",
    ] {
        for (word, value) in WORDS {
            for spelled in [word.to_owned(), word.to_uppercase(), format!(" {word}\t")] {
                let mut pairs = vec![(var, spelled.as_str())];
                if var == "TB_GOVERNOR_SIGN" {
                    pairs.push(("TB_GOVERNOR_KEY_FILE", "k"));
                }
                let c = load_env(&pairs).unwrap();
                let got = match var {
                    "TB_GOVERNOR_ENABLED" => c.governor.enabled,
                    "TB_GOVERNOR_SHADOW_ONLY" => c.governor.shadow_only,
                    _ => c.signing.enabled,
                };
                assert_eq!(got, value, "{var}={spelled:?}");
            }
        }
        for bad in [
            "2", "enable", "tru", "y", "n", "-1", "0x1", "truee", " ", "t rue",
        ] {
            let err = load_env(&[(var, bad)]).unwrap_err();
            match &err {
                ConfigError::Env { var: v, message } => {
                    assert_eq!(v, var);
                    assert!(
                        message.contains("1/0/true/false/yes/no/on/off"),
                        "{message}"
                    );
                }
                other => panic!("{var}={bad:?}: {other:?}"),
            }
            assert!(err.to_string().contains(var), "{err}");
        }
        // Empty counts as unset: the default stays.
        let c = load_env(&[(var, "")]).unwrap();
        assert_eq!(c, Config::default());
    }
    // An unparsable shadow flag never lands in apply mode, even over a file that asks for it.
    let err = Config::load(None, env_of(&[("TB_GOVERNOR_SHADOW_ONLY", "nope")])).unwrap_err();
    assert!(err.to_string().contains("TB_GOVERNOR_SHADOW_ONLY"));
}

#[test]
fn invalid_env_values_name_the_variable() {
    for var in ["TB_GOVERNOR_RPC_RPS", "TB_GOVERNOR_RPC_MAX_CONNECTIONS"] {
        for bad in ["0", "-3", "+3", "abc", "4294967296", "1e3", "3.0"] {
            let err = load_env(&[(var, bad)]).unwrap_err();
            assert!(err.to_string().contains(var), "{var}={bad}: {err}");
        }
    }
    let err = load_env(&[("TB_GOVERNOR_RPC_LISTEN", "localhost")]).unwrap_err();
    let (origin, key) = invalid_key(&err);
    assert_eq!(origin, "environment variable TB_GOVERNOR_RPC_LISTEN");
    assert_eq!(key, "rpc.listen");
    assert!(err.to_string().contains("TB_GOVERNOR_RPC_LISTEN"));

    let err = load_env(&[("TB_BLOCKTORCH_KERNEL_VARIANT_DIGEST", "xyz")]).unwrap_err();
    assert!(
        err.to_string()
            .contains("TB_BLOCKTORCH_KERNEL_VARIANT_DIGEST"),
        "{err}"
    );
    let err = load_env(&[("TB_BLOCKTORCH_BENCHMARK_COMMIT", "has space")]).unwrap_err();
    assert!(
        err.to_string().contains("TB_BLOCKTORCH_BENCHMARK_COMMIT"),
        "{err}"
    );
}

#[test]
fn secrets_never_reach_errors_or_debug() {
    let secret = "hunter2-very-secret";
    let s = Secret::new(secret);
    assert_eq!(format!("{s:?}"), "<redacted>");
    assert_eq!(format!("{s}"), "<redacted>");
    assert_eq!(s.expose(), secret);

    let c = load_env(&[("TB_GOVERNOR_RPC_TOKEN", secret)]).unwrap();
    assert!(!format!("{c:?}").contains(secret));
    assert!(!format!("{c:#?}").contains(secret));

    // Malformed key: error names the variable, never the value.
    let err = load_env(&[("TB_GOVERNOR_SIGN", "1"), ("TB_NODE_KEY_HEX", secret)]).unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(
        shown.contains("TB_NODE_KEY_HEX") && shown.contains("signing.key_hex"),
        "{shown}"
    );
    assert!(!shown.contains(secret), "{shown}");

    // Wrong type on a secret line in the file: position only.
    for text in [
        format!("[rpc]\ntoken = {}\n", 1234567),
        "[signing]\nkey_hex = 98765432\n".to_owned(),
        "[rpc]\ntoken = \"a\"\ntoken = \"hunter3\"\n".to_owned(),
    ] {
        let err = Config::from_toml_str(&text, "s.toml").unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(
            !shown.contains("1234567") && !shown.contains("98765432"),
            "{shown}"
        );
        assert!(!shown.contains("hunter3"), "{shown}");
        assert!(
            shown.contains("s.toml") && shown.contains("line"),
            "{shown}"
        );
    }
    // Unknown keys in [rpc] are still named (the field list mentions `token`, that's fine).
    let shown = Config::from_toml_str("[rpc]\ntokn = \"x\"\n", "s.toml")
        .unwrap_err()
        .to_string();
    assert!(shown.contains("tokn"), "{shown}");

    let err = Config::from_toml_str("[rpc]\ntoken = \"\"\n", "s.toml").unwrap_err();
    assert_eq!(invalid_key(&err).1, "rpc.token");
}

#[test]
fn validation_names_the_key_and_the_file() {
    let cases: &[(&str, &str)] = &[
        ("[governor]\nepoch_blocks = 1", "governor.epoch_blocks"),
        ("[governor]\nchain_id = \"has space\"", "governor.chain_id"),
        ("[governor]\nchain_id = \"\"", "governor.chain_id"),
        ("[governor]\ndata_dir = \"\"", "governor.data_dir"),
        ("[governor]\ngenesis_height = 9007199254740992", "governor.genesis_height"),
        ("[chain]\npoll_ms = 0", "chain.poll_ms"),
        ("[chain]\nmin_payment_micro = 9007199254740992", "chain.min_payment_micro"),
        ("[economics]\nmax_supply_micro = 0", "economics.max_supply_micro"),
        ("[economics]\ntreasury_bps = 10001", "economics.treasury_bps"),
        ("[economics]\nema_alpha_ppm = 1000001", "economics.ema_alpha_ppm"),
        ("[economics]\nvolatility_window = 0", "economics.volatility_window"),
        ("[economics]\nactivity_min_ppm = 2000001", "economics.activity_min_ppm"),
        (
            "[economics]\ndecentralization_max_ppm = 1",
            "economics.decentralization_min_ppm",
        ),
        (
            "[economics]\nbaseline_tx_count_min_milli = 0",
            "economics.baseline_tx_count_min_milli",
        ),
        ("[economics]\nbaseline_tx_count_milli = 1", "economics.baseline_tx_count_min_milli"),
        ("[economics]\nbaseline_tx_volume_micro = 1000000000001", "economics.baseline_tx_volume_micro"),
        ("[economics]\nbaseline_miners_max_milli = 9999", "economics.baseline_miners_milli"),
        (
            "[economics]\nbase_reward_micro = 9007199254740992",
            "economics.base_reward_micro",
        ),
        (
            "[gates.economics]\nenter_streak_required = 0",
            "gates.economics.enter_streak_required",
        ),
        (
            "[gates.economics]\nmargin_min_ppm = 950001",
            "gates.economics.margin_min_ppm",
        ),
        (
            "[gates.economics]\nmargin_min_ppm = -9007199254740992",
            "gates.economics.margin_min_ppm",
        ),
        (
            "[gates.economics]\nutilization_max_ppm = 9999",
            "gates.economics.utilization_min_ppm",
        ),
        (
            "[gates.storage]\nenter_utilization_min_ppm = 900001",
            "gates.storage.enter_utilization_min_ppm",
        ),
        (
            "[gates.compute]\nenter_margin_max_ppm = -1",
            "gates.compute.enter_margin_min_ppm",
        ),
        (
            "[gates.energy]\nexit_utilization_max_ppm = 0",
            "gates.energy.exit_utilization_min_ppm",
        ),
        ("[gates.ad]\nexit_margin_min_ppm = 950001", "gates.ad.exit_margin_min_ppm"),
        (
            "[gates.ad_presence]\nexit_streak_required = 0",
            "gates.ad_presence.exit_streak_required",
        ),
        (
            "[gates.operational]\nexit_spacing_mad_max_ppm = 9007199254740992",
            "gates.operational.exit_spacing_mad_max_ppm",
        ),
        ("[rpc]\nlisten = \"nope\"", "rpc.listen"),
        ("[rpc]\nrps = 0", "rpc.rps"),
        ("[rpc]\nmax_body_bytes = 0", "rpc.max_body_bytes"),
        ("[rpc]\nmax_connections = 0", "rpc.max_connections"),
        ("[signing]\nenabled = true", "signing.enabled"),
        ("[signing]\nkey_hex = \"abc\"", "signing.key_hex"),
        (
            "[signing]\nenabled = true\nkey_file = \"k\"\nkey_hex = \"0000000000000000000000000000000000000000000000000000000000000000\"",
            "signing.key_file",
        ),
        ("[apply]\nhook_timeout_ms = 0", "apply.hook_timeout_ms"),
        ("[apply]\nhook = \"\"", "apply.hook"),
    ];
    for (text, expected_key) in cases {
        let err = Config::from_toml_str(text, "conf/governor.toml").unwrap_err();
        let (origin, key) = invalid_key(&err);
        assert_eq!(origin, "conf/governor.toml", "{text}");
        assert_eq!(key, *expected_key, "{text}");
        let shown = err.to_string();
        assert!(
            shown.contains("conf/governor.toml") && shown.contains(expected_key),
            "{shown}"
        );
    }
    // The extremes of the safe range are fine.
    Config::from_toml_str(
        "[governor]\ngenesis_height = 9007199254740991\n[gates.economics]\nmargin_min_ppm = -9007199254740991",
        "ok.toml",
    )
    .unwrap();
}

#[test]
fn is_id_rules() {
    assert!(is_id("tb-mainnet"));
    assert!(is_id("a.B_c:d-0"));
    assert!(is_id(&"x".repeat(128)));
    assert!(!is_id(&"x".repeat(129)));
    assert!(!is_id(""));
    assert!(!is_id("a b"));
    assert!(!is_id("a/b"));
    assert!(!is_id("é"));
}

#[test]
fn mode_parsing_and_display() {
    for mode in Mode::ALL {
        assert_eq!(mode.to_string().parse::<Mode>().unwrap(), mode);
        assert_eq!(
            serde_json::to_string(&mode).unwrap(),
            format!("\"{}\"", mode.as_str())
        );
    }
    for bad in ["Shadow", " apply", "APPLY", "", "pause"] {
        assert_eq!(bad.parse::<Mode>().unwrap_err().value, bad);
    }
    let c = |enabled, shadow_only| Config {
        governor: GovernorConfig {
            enabled,
            shadow_only,
            ..GovernorConfig::default()
        },
        ..Config::default()
    };
    assert_eq!(c(false, false).mode(), Mode::Paused);
    assert_eq!(c(false, true).mode(), Mode::Paused);
    assert_eq!(c(true, true).mode(), Mode::Shadow);
    assert_eq!(c(true, false).mode(), Mode::Apply);
}

/// A named change applied to a config in the hash tests.
type Edit = Box<dyn Fn(&mut Config)>;

const PROVIDERS: &str = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262";

#[test]
fn config_hash_covers_exactly_the_decision_relevant_part() {
    let base = Config::default();
    let h = base.config_hash(PROVIDERS);
    assert_eq!(h.len(), 64);
    assert!(h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
    assert_eq!(h, Config::default().config_hash(PROVIDERS), "deterministic");

    let changed: Vec<(&str, Edit)> = vec![
        (
            "chain_id",
            Box::new(|c| c.governor.chain_id = "tb-testnet".into()),
        ),
        ("epoch_blocks", Box::new(|c| c.governor.epoch_blocks = 60)),
        (
            "genesis_height",
            Box::new(|c| c.governor.genesis_height = 1),
        ),
        ("min_payment", Box::new(|c| c.chain.min_payment_micro = 1)),
        (
            "budget",
            Box::new(|c| c.chain.proof_verification_budget_ms = 101),
        ),
        (
            "economics",
            Box::new(|c| c.economics.ema_alpha_ppm = 50_001),
        ),
        (
            "economics baseline",
            Box::new(|c| c.economics.baseline_miners_max_milli = 99_999),
        ),
        (
            "gate threshold",
            Box::new(|c| c.gates.storage.enter_utilization_min_ppm = 50_001),
        ),
        (
            "gate streak",
            Box::new(|c| c.gates.operational.min_epochs = 3),
        ),
        (
            "ad tier",
            Box::new(|c| c.gates.ad_presence.exit_conversion_min_ppm = 201),
        ),
        (
            "signed margin",
            Box::new(|c| c.gates.economics.margin_min_ppm = -500_001),
        ),
    ];
    for (what, change) in &changed {
        let mut c = base.clone();
        change(&mut c);
        assert_ne!(c.config_hash(PROVIDERS), h, "{what}");
        assert!(!c.decision_relevant_eq(&base), "{what}");
        assert_eq!(c.decision_relevant_diff(&base).len(), 1, "{what}");
    }
    // Same-valued but distinct gate tables still hash differently (compute vs storage).
    let mut a = base.clone();
    a.gates.compute.sla_exit_max_ppm = 1;
    let mut b = base.clone();
    b.gates.storage.sla_exit_max_ppm = 1;
    assert_ne!(a.config_hash(PROVIDERS), b.config_hash(PROVIDERS));
    assert_eq!(
        a.decision_relevant_diff(&base),
        vec!["gates.compute.sla_exit_max_ppm".to_owned()]
    );

    assert_ne!(base.config_hash(&"0".repeat(64)), h, "providers hash");

    let unchanged: Vec<(&str, Edit)> = vec![
        (
            "data_dir",
            Box::new(|c| c.governor.data_dir = "/elsewhere".into()),
        ),
        (
            "chain dir",
            Box::new(|c| c.chain.dir = "/other/chain".into()),
        ),
        (
            "providers path",
            Box::new(|c| c.chain.providers = "p2.json".into()),
        ),
        ("poll_ms", Box::new(|c| c.chain.poll_ms = 1)),
        (
            "rpc listen",
            Box::new(|c| c.rpc.listen = "0.0.0.0:1".into()),
        ),
        (
            "rpc token",
            Box::new(|c| c.rpc.token = Some(Secret::new("t"))),
        ),
        (
            "rpc limits",
            Box::new(|c| {
                c.rpc.rps = 1;
                c.rpc.max_body_bytes = 1;
                c.rpc.max_connections = 1;
            }),
        ),
        ("shadow_only", Box::new(|c| c.governor.shadow_only = false)),
        ("enabled", Box::new(|c| c.governor.enabled = false)),
        (
            "signing",
            Box::new(|c| {
                c.signing.enabled = true;
                c.signing.key_file = Some("k".into());
                c.signing.key_hex = Some(Secret::new("00"));
            }),
        ),
        (
            "apply",
            Box::new(|c| {
                c.apply.hook = Some("h".into());
                c.apply.hook_timeout_ms = 1;
            }),
        ),
        (
            "blocktorch fallbacks",
            Box::new(|c| {
                c.governor.blocktorch_benchmark_commit = Some("x".into());
                c.governor.blocktorch_kernel_digest = Some("0".repeat(64));
            }),
        ),
    ];
    for (what, change) in &unchanged {
        let mut c = base.clone();
        change(&mut c);
        assert_eq!(c.config_hash(PROVIDERS), h, "{what}");
        assert!(c.decision_relevant_eq(&base), "{what}");
    }
}

#[test]
fn decision_relevant_object_has_the_documented_shape() {
    let bytes = Config::default().decision_relevant_jcs(PROVIDERS);
    let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "chain_id",
            "economics",
            "epoch_blocks",
            "gates",
            "genesis_height",
            "min_payment_micro",
            "proof_verification_budget_ms",
            "providers_blake3"
        ]
    );
    let gates: Vec<&str> = value["gates"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = GATE_NAMES.to_vec();
    expected.sort_unstable();
    assert_eq!(gates, expected);
    assert_eq!(value["gates"]["economics"]["margin_min_ppm"], -500_000);
    assert_eq!(
        value["economics"]["max_supply_micro"],
        40_000_000_000_000_u64
    );
    // JCS: compact, keys sorted, so re-canonicalizing is a no-op.
    assert_eq!(serde_json_canonicalizer::to_vec(&value).unwrap(), bytes);
    assert!(!String::from_utf8(bytes).unwrap().contains(' '));
}

#[test]
fn streak_accessors() {
    let mut g = GatesConfig::default();
    g.ad_contextual.enter_streak_required = 7;
    assert_eq!(
        g.streak_of("ad_contextual").unwrap().enter_streak_required,
        7
    );
    assert_eq!(g.streak_of("nope"), None);
    let names: Vec<&str> = g.streaks().iter().map(|(n, _)| *n).collect();
    assert_eq!(names, GATE_NAMES);
}

#[test]
fn parse_bool_table() {
    for (word, value) in WORDS {
        assert_eq!(parse_bool(word), Some(value));
        assert_eq!(parse_bool(&word.to_uppercase()), Some(value));
        assert_eq!(parse_bool(&format!("  {word}\n")), Some(value));
    }
    assert_eq!(parse_bool("TrUe"), Some(true));
    assert_eq!(parse_bool("oFF"), Some(false));
    assert_eq!(parse_bool("Yes"), Some(true));
    for bad in [
        "",
        " ",
        "2",
        "enable",
        "tru",
        "t",
        "f",
        "y",
        "n",
        "nO!",
        "01",
        "true false",
    ] {
        assert_eq!(parse_bool(bad), None, "{bad:?}");
    }
}

proptest! {
    #[test]
    fn parse_bool_accepts_the_words_in_any_case(index in 0usize..8, mask in any::<u8>()) {
        let (word, value) = WORDS[index];
        let cased: String = word
            .chars()
            .enumerate()
            .map(|(i, ch)| if mask & (1 << i) != 0 { ch.to_ascii_uppercase() } else { ch })
            .collect();
        prop_assert_eq!(parse_bool(&cased), Some(value));
    }

    #[test]
    fn parse_bool_rejects_everything_else(s in "\\PC{0,7}|[a-zA-Z01 ]{0,6}") {
        let canonical = s.trim().to_ascii_lowercase();
        let expected = WORDS.iter().find(|(w, _)| *w == canonical).map(|(_, v)| *v);
        prop_assert_eq!(parse_bool(&s), expected);
    }
}

#[test]
fn peers_are_checked_and_never_change_the_config_hash() {
    let text = "[peers]\nurls = [\"http://10.0.0.2:7878\", \"http://10.0.0.3:7878/rpc\"]\n\
                poll_ms = 1000\ntokens = { \"http://10.0.0.3:7878/rpc\" = \"peer-secret\" }\n";
    let c = Config::from_toml_str(text, "p.toml").unwrap();
    assert_eq!(c.peers.urls.len(), 2);
    assert_eq!(c.peers.poll_ms, 1000);
    assert_eq!(c.peers.timeout_ms, 2_000);
    assert_eq!(
        c.peers.tokens["http://10.0.0.3:7878/rpc"].expose(),
        "peer-secret"
    );
    assert!(!format!("{c:?}").contains("peer-secret"));
    let plain = Config::default();
    assert_eq!(c.config_hash("ab"), plain.config_hash("ab"));
    assert_eq!(c.replay_config_hash("ab"), plain.replay_config_hash("ab"));

    // The replay hash ignores the gates; the config hash does not.
    let mut gated = Config::default();
    gated.gates.storage.enter_streak_required += 1;
    assert_ne!(gated.config_hash("ab"), plain.config_hash("ab"));
    assert_eq!(
        gated.replay_config_hash("ab"),
        plain.replay_config_hash("ab")
    );
    let mut epochs = Config::default();
    epochs.governor.epoch_blocks += 1;
    assert_ne!(
        epochs.replay_config_hash("ab"),
        plain.replay_config_hash("ab")
    );
    assert_ne!(
        plain.replay_config_hash("ab"),
        plain.replay_config_hash("cd")
    );

    for (bad, key, says) in [
        (
            "urls = [\"10.0.0.2:7878\"]",
            "peers.urls",
            "is not a peer URL",
        ),
        (
            "urls = [\"http://:7878\"]",
            "peers.urls",
            "is not a peer URL",
        ),
        ("urls = [\"http://h\"]", "peers.urls", "is not a peer URL"),
        (
            "urls = [\"http://h:1\", \"http://h:1\"]",
            "peers.urls",
            "listed twice",
        ),
        (
            "urls = [\"http://h:1\"]\ntokens = { \"http://x:1\" = \"t\" }",
            "peers.tokens",
            "not one of peers.urls",
        ),
        (
            "urls = [\"http://h:1\"]\ntokens = { \"http://h:1\" = \"\" }",
            "peers.tokens",
            "must not be empty",
        ),
        ("poll_ms = 99", "peers.poll_ms", "at least 100"),
        ("timeout_ms = 0", "peers.timeout_ms", "at least 1"),
    ] {
        let err = Config::from_toml_str(&format!("[peers]\n{bad}\n"), "p.toml").unwrap_err();
        assert_eq!(invalid_key(&err), ("p.toml", key), "{bad}: {err}");
        assert!(err.to_string().contains(says), "{bad}: {err}");
    }

    // TB_GOVERNOR_PEERS replaces the list (comma-separated, blanks ignored) and is named in
    // errors.
    let c = load_env(&[("TB_GOVERNOR_PEERS", " http://a:1 , ,http://b:2")]).unwrap();
    assert_eq!(c.peers.urls, ["http://a:1", "http://b:2"]);
    let err = load_env(&[("TB_GOVERNOR_PEERS", "http://a:1,nope")]).unwrap_err();
    assert_eq!(
        invalid_key(&err),
        ("environment variable TB_GOVERNOR_PEERS", "peers.urls")
    );

    // A parse error on a line of [peers.tokens] does not show the line.
    let err = Config::from_toml_str(
        "[peers]\nurls = [\"http://h:1\"]\n[peers.tokens]\n\"http://h:1\" = hunter4\n",
        "p.toml",
    )
    .unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("hunter4"), "{shown}");
    assert!(shown.contains("line 4"), "{shown}");
}

#[test]
fn tls_settings_are_checked_and_never_change_the_config_hash() {
    let text = "[rpc]\nallow_plain_remote_mutations = true\n[rpc.tls]\ncert = \"s.crt\"\n\
                key = \"s.key\"\nclient_ca = \"ca.crt\"\nclient_cert_optional = true\n\
                handshake_timeout_ms = 250\n[peers]\nurls = [\"https://10.0.0.4:7878\"]\n\
                [peers.tls.\"https://10.0.0.4:7878\"]\nca = \"fleet.crt\"\n\
                server_name = \"g4.internal\"\n";
    let c = Config::from_toml_str(text, "t.toml").unwrap();
    assert!(c.rpc.tls.enabled());
    assert!(c.rpc.allow_plain_remote_mutations);
    assert_eq!(c.rpc.tls.handshake_timeout_ms, 250);
    let peer = &c.peers.tls["https://10.0.0.4:7878"];
    assert_eq!(peer.server_name.as_deref(), Some("g4.internal"));
    assert_eq!(c.config_hash("ab"), Config::default().config_hash("ab"));

    for (bad, key, says) in [
        ("[rpc.tls]\ncert = \"s.crt\"", "rpc.tls.key", "go together"),
        ("[rpc.tls]\nkey = \"s.key\"", "rpc.tls.key", "go together"),
        (
            "[rpc.tls]\nclient_ca = \"ca.crt\"",
            "rpc.tls.client_ca",
            "needs rpc.tls.cert",
        ),
        (
            "[rpc.tls]\ncert = \"s.crt\"\nkey = \"s.key\"\nclient_cert_optional = true",
            "rpc.tls.client_cert_optional",
            "needs rpc.tls.client_ca",
        ),
        (
            "[rpc.tls]\nhandshake_timeout_ms = 0",
            "rpc.tls.handshake_timeout_ms",
            "at least 1",
        ),
        (
            "[peers]\nurls = [\"https://h:1\"]\n[peers.tls.\"https://x:1\"]\nca = \"c\"",
            "peers.tls",
            "not one of peers.urls",
        ),
        (
            "[peers]\nurls = [\"http://h:1\"]\n[peers.tls.\"http://h:1\"]\nca = \"c\"",
            "peers.tls",
            "not an https:// URL",
        ),
        (
            "[peers]\nurls = [\"https://h:1\"]\n[peers.tls.\"https://h:1\"]\ncert = \"c\"",
            "peers.tls",
            "go together",
        ),
    ] {
        let err = Config::from_toml_str(bad, "t.toml").unwrap_err();
        assert_eq!(invalid_key(&err), ("t.toml", key), "{bad}: {err}");
        assert!(err.to_string().contains(says), "{bad}: {err}");
    }

    let c = load_env(&[("TB_TLS_HANDSHAKE_TIMEOUT_MS", "1500")]).unwrap();
    assert_eq!(c.rpc.tls.handshake_timeout_ms, 1500);
    for bad in ["0", "-1", "1.5", "soon"] {
        let err = load_env(&[("TB_TLS_HANDSHAKE_TIMEOUT_MS", bad)]).unwrap_err();
        assert!(
            err.to_string().contains("TB_TLS_HANDSHAKE_TIMEOUT_MS"),
            "{bad}: {err}"
        );
    }
}
