//! The validation pass run after the file and the environment are merged.

use crate::env::{show, Overrides};
use crate::error::ConfigError;
use crate::{is_id, Config, MAX_SAFE_INTEGER};
use std::net::SocketAddr;
use std::path::Path;

/// Checks every rule of every knob; the first broken rule is returned, naming its dotted key and
/// where the value came from (`origin`, or the environment variable that set it).
pub(crate) fn validate(
    config: &Config,
    origin: &str,
    overrides: &Overrides,
) -> Result<(), ConfigError> {
    let v = Validator { origin, overrides };
    v.safe_integers(config)?;
    v.governor(config)?;
    v.chain(config)?;
    v.economics(config)?;
    v.gates(config)?;
    v.rpc(config)?;
    v.signing(config)?;
    v.apply(config)?;
    v.peers(config)
}

struct Validator<'a> {
    origin: &'a str,
    overrides: &'a Overrides,
}

impl Validator<'_> {
    fn fail(&self, key: &str, message: impl Into<String>) -> ConfigError {
        let origin = match self.overrides.iter().find(|(k, _)| *k == key) {
            Some((_, var)) => format!("environment variable {var}"),
            None => self.origin.to_owned(),
        };
        ConfigError::Invalid {
            origin,
            key: key.to_owned(),
            message: message.into(),
        }
    }

    fn check(
        &self,
        ok: bool,
        key: &str,
        message: impl FnOnce() -> String,
    ) -> Result<(), ConfigError> {
        if ok {
            Ok(())
        } else {
            Err(self.fail(key, message()))
        }
    }

    fn at_least(&self, key: &str, value: u64, min: u64) -> Result<(), ConfigError> {
        self.check(value >= min, key, || {
            format!("must be at least {min}, got {value}")
        })
    }

    fn at_most(&self, key: &str, value: u64, max: u64) -> Result<(), ConfigError> {
        self.check(value <= max, key, || {
            format!("must be at most {max}, got {value}")
        })
    }

    /// `lo ≤ hi` for an inclusive band; the error names the lower key.
    fn band<T: PartialOrd + std::fmt::Display>(
        &self,
        prefix: &str,
        (lo_name, lo): (&str, T),
        (hi_name, hi): (&str, T),
    ) -> Result<(), ConfigError> {
        let lo_key = format!("{prefix}.{lo_name}");
        self.check(lo <= hi, &lo_key, || {
            format!("{lo} is above {prefix}.{hi_name} ({hi}); a band needs lower ≤ upper")
        })
    }

    fn non_empty_path(&self, key: &str, path: &Path) -> Result<(), ConfigError> {
        self.check(!path.as_os_str().is_empty(), key, || {
            "must not be an empty path".to_owned()
        })
    }

    /// Every integer of the hashed object must survive a trip through an IEEE double (JCS writes
    /// numbers as doubles), so every integer knob is kept within ±(2^53 − 1).
    fn safe_integers(&self, c: &Config) -> Result<(), ConfigError> {
        let mut knobs: Vec<(String, i128)> = vec![
            (
                "governor.epoch_blocks".into(),
                c.governor.epoch_blocks.into(),
            ),
            (
                "governor.genesis_height".into(),
                c.governor.genesis_height.into(),
            ),
            ("chain.poll_ms".into(), c.chain.poll_ms.into()),
            (
                "chain.min_payment_micro".into(),
                c.chain.min_payment_micro.into(),
            ),
            (
                "chain.proof_verification_budget_ms".into(),
                c.chain.proof_verification_budget_ms.into(),
            ),
            (
                "apply.hook_timeout_ms".into(),
                c.apply.hook_timeout_ms.into(),
            ),
        ];
        knobs.extend(
            c.economics
                .knobs()
                .into_iter()
                .map(|(k, v)| (format!("economics.{k}"), v)),
        );
        knobs.extend(
            c.gates
                .knobs()
                .into_iter()
                .map(|(k, v)| (format!("gates.{k}"), v)),
        );
        let max = i128::from(MAX_SAFE_INTEGER);
        for (key, value) in knobs {
            self.check((-max..=max).contains(&value), &key, || {
                format!("{value} is outside ±{MAX_SAFE_INTEGER} (2^53 − 1), the range every hashed integer must stay in")
            })?;
        }
        Ok(())
    }

    fn governor(&self, c: &Config) -> Result<(), ConfigError> {
        let g = &c.governor;
        self.check(is_id(&g.chain_id), "governor.chain_id", || {
            format!(
                "{} is not an id (1..=128 characters from A-Z a-z 0-9 . _ : -)",
                show(&g.chain_id)
            )
        })?;
        self.at_least("governor.epoch_blocks", g.epoch_blocks, 2)?;
        self.non_empty_path("governor.data_dir", &g.data_dir)?;
        if let Some(digest) = &g.blocktorch_kernel_digest {
            self.check(
                is_lower_hex(digest, 64),
                "governor.blocktorch_kernel_digest",
                || format!("{} is not 64 lowercase hex digits", show(digest)),
            )?;
        }
        if let Some(commit) = &g.blocktorch_benchmark_commit {
            self.check(
                is_id(commit),
                "governor.blocktorch_benchmark_commit",
                || {
                    format!(
                        "{} is not an id (1..=128 characters from A-Z a-z 0-9 . _ : -)",
                        show(commit)
                    )
                },
            )?;
        }
        Ok(())
    }

    fn chain(&self, c: &Config) -> Result<(), ConfigError> {
        self.non_empty_path("chain.dir", &c.chain.dir)?;
        self.non_empty_path("chain.providers", &c.chain.providers)?;
        self.at_least("chain.poll_ms", c.chain.poll_ms, 1)
    }

    fn economics(&self, c: &Config) -> Result<(), ConfigError> {
        let e = &c.economics;
        self.at_least("economics.max_supply_micro", e.max_supply_micro, 1)?;
        self.at_most("economics.treasury_bps", e.treasury_bps, 10_000)?;
        self.at_most("economics.ema_alpha_ppm", e.ema_alpha_ppm, 1_000_000)?;
        self.at_least("economics.volatility_window", e.volatility_window, 1)?;
        self.band(
            "economics",
            ("activity_min_ppm", e.activity_min_ppm),
            ("activity_max_ppm", e.activity_max_ppm),
        )?;
        self.band(
            "economics",
            ("decentralization_min_ppm", e.decentralization_min_ppm),
            ("decentralization_max_ppm", e.decentralization_max_ppm),
        )?;
        for (initial, min, max) in [
            (
                ("baseline_tx_count_milli", e.baseline_tx_count_milli),
                ("baseline_tx_count_min_milli", e.baseline_tx_count_min_milli),
                ("baseline_tx_count_max_milli", e.baseline_tx_count_max_milli),
            ),
            (
                ("baseline_tx_volume_micro", e.baseline_tx_volume_micro),
                (
                    "baseline_tx_volume_min_micro",
                    e.baseline_tx_volume_min_micro,
                ),
                (
                    "baseline_tx_volume_max_micro",
                    e.baseline_tx_volume_max_micro,
                ),
            ),
            (
                ("baseline_miners_milli", e.baseline_miners_milli),
                ("baseline_miners_min_milli", e.baseline_miners_min_milli),
                ("baseline_miners_max_milli", e.baseline_miners_max_milli),
            ),
        ] {
            self.at_least(&format!("economics.{}", min.0), min.1, 1)?;
            self.band("economics", min, initial)?;
            self.band("economics", initial, max)?;
        }
        Ok(())
    }

    fn gates(&self, c: &Config) -> Result<(), ConfigError> {
        let g = &c.gates;
        for (name, streak) in g.streaks() {
            let prefix = format!("gates.{name}");
            self.at_least(
                &format!("{prefix}.enter_streak_required"),
                streak.enter_streak_required,
                1,
            )?;
            self.at_least(
                &format!("{prefix}.exit_streak_required"),
                streak.exit_streak_required,
                1,
            )?;
        }

        let e = &g.economics;
        self.band(
            "gates.economics",
            ("utilization_min_ppm", e.utilization_min_ppm),
            ("utilization_max_ppm", e.utilization_max_ppm),
        )?;
        self.band(
            "gates.economics",
            ("margin_min_ppm", e.margin_min_ppm),
            ("margin_max_ppm", e.margin_max_ppm),
        )?;

        for (name, m) in [
            ("storage", &g.storage),
            ("compute", &g.compute),
            ("energy", &g.energy),
            ("ad", &g.ad),
        ] {
            let prefix = format!("gates.{name}");
            self.band(
                &prefix,
                ("enter_utilization_min_ppm", m.enter_utilization_min_ppm),
                ("enter_utilization_max_ppm", m.enter_utilization_max_ppm),
            )?;
            self.band(
                &prefix,
                ("enter_margin_min_ppm", m.enter_margin_min_ppm),
                ("enter_margin_max_ppm", m.enter_margin_max_ppm),
            )?;
            self.band(
                &prefix,
                ("exit_utilization_min_ppm", m.exit_utilization_min_ppm),
                ("exit_utilization_max_ppm", m.exit_utilization_max_ppm),
            )?;
            self.band(
                &prefix,
                ("exit_margin_min_ppm", m.exit_margin_min_ppm),
                ("exit_margin_max_ppm", m.exit_margin_max_ppm),
            )?;
        }
        Ok(())
    }

    fn rpc(&self, c: &Config) -> Result<(), ConfigError> {
        let r = &c.rpc;
        self.check(r.listen.parse::<SocketAddr>().is_ok(), "rpc.listen", || {
            format!(
                "{} is not a socket address (expected ip:port, e.g. 127.0.0.1:7878)",
                show(&r.listen)
            )
        })?;
        if let Some(token) = &r.token {
            self.check(!token.expose().is_empty(), "rpc.token", || {
                "must not be empty; leave it out to refuse every mutating method".to_owned()
            })?;
        }
        self.at_least("rpc.rps", r.rps.into(), 1)?;
        self.at_least("rpc.max_body_bytes", r.max_body_bytes.into(), 1)?;
        self.at_least("rpc.max_connections", r.max_connections.into(), 1)?;
        self.rpc_tls(c)
    }

    fn rpc_tls(&self, c: &Config) -> Result<(), ConfigError> {
        let t = &c.rpc.tls;
        for (key, path) in [
            ("rpc.tls.cert", &t.cert),
            ("rpc.tls.key", &t.key),
            ("rpc.tls.client_ca", &t.client_ca),
        ] {
            if let Some(path) = path {
                self.non_empty_path(key, path)?;
            }
        }
        self.check(t.cert.is_some() == t.key.is_some(), "rpc.tls.key", || {
            "rpc.tls.cert and rpc.tls.key go together: set both to serve TLS, or neither".to_owned()
        })?;
        self.check(
            t.client_ca.is_none() || t.enabled(),
            "rpc.tls.client_ca",
            || {
                "needs rpc.tls.cert and rpc.tls.key: client certificates are checked only over TLS"
                    .to_owned()
            },
        )?;
        self.check(
            !t.client_cert_optional || t.client_ca.is_some(),
            "rpc.tls.client_cert_optional",
            || "needs rpc.tls.client_ca, the CA that client certificates must chain to".to_owned(),
        )?;
        self.at_least("rpc.tls.handshake_timeout_ms", t.handshake_timeout_ms, 1)
    }

    fn signing(&self, c: &Config) -> Result<(), ConfigError> {
        let s = &c.signing;
        if let Some(key) = &s.key_hex {
            let key = key.expose();
            self.check(
                key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit()),
                "signing.key_hex",
                || "must be 64 hex digits (a 32-byte ed25519 seed); value not shown".to_owned(),
            )?;
        }
        if let Some(path) = &s.key_file {
            self.non_empty_path("signing.key_file", path)?;
        }
        if s.enabled {
            match (&s.key_hex, &s.key_file) {
                (None, None) => {
                    return Err(self.fail(
                        "signing.enabled",
                        "signing is on but no key is set: set signing.key_hex (TB_NODE_KEY_HEX) \
                         or signing.key_file (TB_GOVERNOR_KEY_FILE)",
                    ))
                }
                (Some(_), Some(_)) => {
                    return Err(self.fail(
                        "signing.key_file",
                        "both signing.key_hex (TB_NODE_KEY_HEX) and signing.key_file \
                         (TB_GOVERNOR_KEY_FILE) are set; set exactly one so the signing key is \
                         unambiguous",
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn apply(&self, c: &Config) -> Result<(), ConfigError> {
        if let Some(hook) = &c.apply.hook {
            self.non_empty_path("apply.hook", hook)?;
        }
        self.at_least("apply.hook_timeout_ms", c.apply.hook_timeout_ms, 1)
    }
}

impl Validator<'_> {
    fn peers(&self, c: &Config) -> Result<(), ConfigError> {
        let p = &c.peers;
        for (i, url) in p.urls.iter().enumerate() {
            self.check(is_peer_url(url), "peers.urls", || {
                format!(
                    "{} is not a peer URL (expected http://host:port or https://host:port, \
                     e.g. http://10.0.0.2:7878)",
                    show(url)
                )
            })?;
            self.check(!p.urls[..i].contains(url), "peers.urls", || {
                format!("{} is listed twice", show(url))
            })?;
        }
        for (url, token) in &p.tokens {
            self.check(p.urls.contains(url), "peers.tokens", || {
                format!("{} is not one of peers.urls", show(url))
            })?;
            self.check(!token.expose().is_empty(), "peers.tokens", || {
                format!("the token of {} must not be empty", show(url))
            })?;
        }
        for (url, tls) in &p.tls {
            self.check(p.urls.contains(url), "peers.tls", || {
                format!("{} is not one of peers.urls", show(url))
            })?;
            self.check(url.starts_with("https://"), "peers.tls", || {
                format!(
                    "{} is not an https:// URL, so TLS settings do not apply",
                    show(url)
                )
            })?;
            self.check(tls.cert.is_some() == tls.key.is_some(), "peers.tls", || {
                format!(
                    "the cert and key of {} go together: set both or neither",
                    show(url)
                )
            })?;
            for path in [&tls.ca, &tls.cert, &tls.key].into_iter().flatten() {
                self.non_empty_path("peers.tls", path)?;
            }
            if let Some(name) = &tls.server_name {
                self.check(!name.is_empty(), "peers.tls", || {
                    format!("the server_name of {} must not be empty", show(url))
                })?;
            }
        }
        self.at_least("peers.poll_ms", p.poll_ms, 100)?;
        self.at_least("peers.timeout_ms", p.timeout_ms, 1)
    }
}

/// `http://host:port` or `https://host:port` with an optional path: a host without spaces and
/// a port.
fn is_peer_url(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let Some((host, port)) = authority.rsplit_once(':') else {
        return false;
    };
    !host.is_empty()
        && !authority.contains(['@', ' ', '?', '#'])
        && port.parse::<u16>().is_ok_and(|p| p > 0)
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
