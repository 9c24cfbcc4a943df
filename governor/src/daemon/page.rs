//! `GET /`: the status page. One self-contained HTML document (inline CSS and SVG, no script, a
//! meta refresh) built from the same [`Status`] that `governor.status` returns, plus the headline
//! economics of the last [`HISTORY_EPOCHS`] closes (kept in memory) for the small charts. It needs no token:
//! it shows nothing `governor.status` does not.
//!
//! Every string that reaches the HTML goes through [`escape`]. Numbers are formatted with integer
//! arithmetic only.

use std::fmt::Write as _;

use jsonrpsee::server::HttpBody;
use serde::Deserialize;
use tb_replay::Snapshot;

use super::state::{Recent, Shared};
use crate::engine::GateStatus;
use crate::rpc::Status;

/// How many of the newest closed epochs the charts show.
pub const HISTORY_EPOCHS: u64 = 32;

/// Seconds between two automatic reloads of the page.
pub const REFRESH_SECONDS: u32 = 5;

/// The markets in snapshot order, with their chart colours.
const MARKETS: [(&str, &str); 4] = [
    ("storage", "#2563eb"),
    ("compute", "#d97706"),
    ("energy", "#059669"),
    ("ad", "#9333ea"),
];

/// One closed epoch's figures for the charts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    /// The epoch.
    pub epoch: u64,
    /// Recommended block reward for the next epoch, micro-BLOCK.
    pub block_reward_per_block_micro: u64,
    /// Transactions.
    pub tx_count: u64,
    /// Transaction volume, micro-BLOCK.
    pub tx_volume_micro: u64,
    /// Treasury inflow, micro-BLOCK.
    pub treasury_inflow_micro: u64,
    /// Utilization per market (storage, compute, energy, ad), ppm; `None` = no data.
    pub utilization_ppm: [Option<u64>; 4],
}

impl Point {
    /// The chart figures of one snapshot.
    pub fn of(s: &Snapshot) -> Point {
        let m = s.markets.as_array();
        Point {
            epoch: s.epoch,
            block_reward_per_block_micro: s.controls.block_reward_per_block_micro,
            tx_count: s.tx_count,
            tx_volume_micro: s.tx_volume_micro,
            treasury_inflow_micro: s.treasury_inflow_micro,
            utilization_ppm: [
                m[0].utilization_ppm,
                m[1].utilization_ppm,
                m[2].utilization_ppm,
                m[3].utilization_ppm,
            ],
        }
    }
}

/// The part of a decision file the charts read.
#[derive(Deserialize)]
struct DecisionSnapshot {
    snapshot: Snapshot,
}

/// The chart figures of the newest decision files up to `last` (ascending), read once at start;
/// later closes add theirs to the view as they happen.
pub fn recent_from_files(store: &tb_decisions::RecordStore, last: Option<u64>) -> Recent {
    let mut recent = Recent::default();
    let Some(last) = last else {
        return recent;
    };
    for epoch in (last + 1).saturating_sub(HISTORY_EPOCHS)..=last {
        let bytes = match store.read(epoch) {
            Ok(Some(b)) => b,
            Ok(None) => continue,
            Err(e) => {
                tracing::debug!(epoch, error = %e, "status page: reading a decision file failed");
                continue;
            }
        };
        match serde_json::from_slice::<DecisionSnapshot>(&bytes) {
            Ok(d) => recent.push(Point::of(&d.snapshot)),
            Err(e) => {
                tracing::debug!(epoch, error = %e, "status page: a decision file does not parse")
            }
        }
    }
    recent
}

/// The page's data: the status and the chart points of the newest closes (ascending).
pub fn load(shared: &Shared) -> (Status, Vec<Point>) {
    let points = shared.view().recent.points();
    (super::status::build(shared), points)
}

/// Serves the page (`200 text/html`, not cached).
pub fn respond(shared: &Shared) -> http::Response<HttpBody> {
    let (status, points) = load(shared);
    let body = render(&status, &points);
    http::Response::builder()
        .status(200)
        .header("content-type", "text/html; charset=utf-8")
        .header("cache-control", "no-store")
        .body(HttpBody::from(body))
        .unwrap_or_else(|_| http::Response::new(HttpBody::from(String::new())))
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `1234567` → `1,234,567`.
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// micro-BLOCK as BLOCK with two decimals (truncated): `20820783036` → `20,820.78`.
fn block(micro: u64) -> String {
    format!(
        "{}.{:02}",
        group(micro / 1_000_000),
        micro % 1_000_000 / 10_000
    )
}

/// ppm as a percentage with two decimals: `494106` → `49.41 %`.
fn percent(ppm: u64) -> String {
    format!("{}.{:02} %", ppm / 10_000, ppm % 10_000 / 100)
}

/// A signed ppm as a percentage with two decimals.
fn percent_signed(ppm: i64) -> String {
    let sign = if ppm < 0 { "−" } else { "" };
    format!("{sign}{}", percent(ppm.unsigned_abs()))
}

const STYLE: &str = "\
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;background:#f4f5f7;color:#1f2933}
header{background:#1f2933;color:#f4f5f7;padding:14px 24px}
header h1{margin:0;font-size:20px}
header p{margin:2px 0 0;color:#9aa5b1;font-size:12px}
main{padding:16px 24px;max-width:1180px}
section{background:#fff;border:1px solid #e1e4e8;border-radius:6px;padding:12px 16px;margin:0 0 14px}
h2{font-size:15px;margin:0 0 8px}
.cards{display:flex;flex-wrap:wrap;gap:10px;background:none;border:0;padding:0}
.card{background:#fff;border:1px solid #e1e4e8;border-radius:6px;padding:10px 14px;min-width:150px;flex:1}
.card .k{font-size:11px;text-transform:uppercase;color:#616e7c;letter-spacing:.04em}
.card .v{font-size:22px;font-weight:600}
.card .s{font-size:12px;color:#616e7c;word-break:break-all}
table{border-collapse:collapse;width:100%;font-size:13px}
th{text-align:left;font-weight:600;color:#616e7c;border-bottom:1px solid #e1e4e8;padding:4px 8px 4px 0}
td{padding:4px 8px 4px 0;border-bottom:1px solid #f0f1f3;vertical-align:top}
code,.hash{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;word-break:break-all}
.badge{display:inline-block;padding:0 7px;border-radius:9px;font-size:12px;font-weight:600}
.ok{background:#d1fae5;color:#065f46}.off{background:#e5e7eb;color:#374151}
.warn{background:#fef3c7;color:#92400e}.bad{background:#fee2e2;color:#991b1b}
.banner{border-radius:6px;padding:10px 14px;margin:0 0 14px;font-weight:600}
.banner.bad{border:1px solid #fca5a5}.banner.warn{border:1px solid #fcd34d}
.dots{letter-spacing:1px;color:#2563eb}
.charts{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0;flex:0 1 252px}
.pair{display:flex;flex-wrap:wrap;gap:8px 32px;margin:0 0 10px}.pair>*{flex:1 1 320px}
.wide{flex:1 1 300px}
figcaption{font-size:12px;color:#616e7c}
svg{display:block;background:#fafbfc;border:1px solid #eef0f2;border-radius:4px}
.hint{color:#616e7c;font-size:12px;margin:6px 0 0}
dl{display:grid;grid-template-columns:max-content 1fr;gap:3px 14px;margin:0;font-size:13px}
dt{color:#616e7c}dd{margin:0}
footer{color:#616e7c;font-size:12px;padding:0 24px 20px}
";

/// The whole page.
pub fn render(s: &Status, history: &[Point]) -> String {
    let mut out = String::with_capacity(24 * 1024);
    let epoch = s
        .last_closed_epoch
        .map_or_else(|| "no epoch yet".to_owned(), |e| format!("epoch {e}"));
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Launch Governor · {} · {}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n\
         <header><h1>Launch Governor</h1><p>the same data as <code>tb-cli governor status</code> \
         · refreshes every {REFRESH_SECONDS} s</p></header>\n<main>\n",
        escape(&epoch),
        escape(s.mode.as_str())
    );
    banners(&mut out, s);
    cards(&mut out, s);
    gates(&mut out, s);
    pending(&mut out, s);
    economics(&mut out, s, history);
    provenance(&mut out, s);
    receipts(&mut out, s);
    blocktorch(&mut out, s);
    let _ = write!(
        out,
        "</main>\n<footer>rules_version <span id=\"rules-version\">{}</span> · config_hash \
         <code id=\"config-hash\">{}</code></footer>\n</body>\n</html>\n",
        s.rules_version,
        escape(&s.config_hash)
    );
    out
}

fn banners(out: &mut String, s: &Status) {
    if let Some(stall) = &s.ingest.stall {
        let _ = writeln!(
            out,
            "<div class=\"banner bad\" id=\"stall\">STALLED: {}<br><small>ingestion has stopped \
             here; no epoch closes until it resumes</small></div>",
            escape(stall)
        );
    }
    if let Some(err) = &s.config_reload_error {
        let _ = writeln!(
            out,
            "<div class=\"banner warn\" id=\"config-reload-error\">CONFIG RELOAD REFUSED: {}\
             <br><small>still running on the previous configuration</small></div>",
            escape(err)
        );
    }
    if !s.enabled {
        out.push_str(
            "<div class=\"banner warn\" id=\"paused\">PAUSED: gates are not judged, params are \
             frozen</div>\n",
        );
    }
}

fn card(out: &mut String, key: &str, id: &str, value: &str, sub: &str) {
    let _ = writeln!(
        out,
        "<div class=\"card\"><div class=\"k\">{}</div><div class=\"v\" id=\"{}\">{}</div>\
         <div class=\"s\">{}</div></div>",
        escape(key),
        escape(id),
        value,
        sub
    );
}

fn cards(out: &mut String, s: &Status) {
    out.push_str("<section class=\"cards\">\n");
    card(
        out,
        "mode",
        "mode",
        &escape(s.mode.as_str()),
        &format!("effective from epoch {}", s.mode_effective_epoch),
    );
    card(
        out,
        "last closed epoch",
        "last-closed-epoch",
        &s.last_closed_epoch
            .map_or_else(|| "-".to_owned(), |e| e.to_string()),
        "",
    );
    card(
        out,
        "tip height",
        "tip-height",
        &s.tip_height
            .map_or_else(|| "-".to_owned(), |h| h.to_string()),
        &format!(
            "ingest <code id=\"ingest\">{}:{}</code>",
            escape(&s.ingest.file),
            s.ingest.line
        ),
    );
    let (class, word) = attestation(s);
    card(
        out,
        "last decision",
        "attestation",
        &format!("<span class=\"badge {class}\">{word}</span>"),
        &s.release_provenance.as_ref().map_or_else(String::new, |p| {
            format!("epoch {} · {}", p.epoch, escape(short(&p.decision_hash)))
        }),
    );
    out.push_str("</section>\n");
}

/// The attestation state of the last decision: badge class and word.
fn attestation(s: &Status) -> (&'static str, &'static str) {
    match &s.release_provenance {
        None => ("off", "none yet"),
        Some(p) if p.attestation.is_none() => ("warn", "unsigned"),
        Some(p) if !p.verified => ("bad", "unverified"),
        Some(_) => ("ok", "verified"),
    }
}

/// The first 16 characters of a hash (the full value is in the provenance section).
fn short(hash: &str) -> &str {
    hash.get(..16).unwrap_or(hash)
}

/// `●●○` for a streak of 2 out of 3 (capped at 12 dots).
fn dots(streak: u64, required: u64) -> String {
    let total = required.clamp(1, 12);
    (0..total)
        .map(|i| if i < streak { '●' } else { '○' })
        .collect()
}

fn gates(out: &mut String, s: &Status) {
    out.push_str(
        "<section><h2>Gates</h2>\n<table id=\"gates\"><thead><tr><th>gate</th><th>state</th>\
         <th>enter streak</th><th>exit streak</th><th>reason</th></tr></thead><tbody>\n",
    );
    if s.gates.is_empty() {
        out.push_str("<tr><td colspan=\"5\">no epoch has closed yet</td></tr>\n");
    }
    for g in &s.gates {
        let (class, state) = match g.state {
            GateStatus::Active => ("ok", "active"),
            GateStatus::Inactive => ("off", "inactive"),
        };
        let _ = writeln!(
            out,
            "<tr data-gate=\"{name}\"><td>{name}</td><td><span class=\"badge {class}\">{state}\
             </span></td><td><span class=\"dots\">{ed}</span> enter {e}/{er}</td><td><span \
             class=\"dots\">{xd}</span> exit {x}/{xr}</td><td>{reason}</td></tr>",
            name = escape(g.name.as_str()),
            ed = dots(g.enter_streak, g.enter_streak_required),
            e = g.enter_streak,
            er = g.enter_streak_required,
            xd = dots(g.exit_streak, g.exit_streak_required),
            x = g.exit_streak,
            xr = g.exit_streak_required,
            reason = escape(&g.reason),
        );
    }
    out.push_str("</tbody></table></section>\n");
}

fn pending(out: &mut String, s: &Status) {
    let _ = writeln!(
        out,
        "<section><h2>Pending intents (<span id=\"pending-count\">{}</span>)</h2>",
        s.pending_intents.len()
    );
    if s.pending_intents.is_empty() {
        out.push_str("<p class=\"hint\">none</p></section>\n");
        return;
    }
    out.push_str(
        "<table id=\"pending-intents\"><thead><tr><th>id</th><th>action</th><th>epoch_apply</th>\
         <th>reason</th></tr></thead><tbody>\n",
    );
    for i in &s.pending_intents {
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&i.id),
            escape(i.action.as_str()),
            i.epoch_apply,
            escape(&i.reason)
        );
    }
    out.push_str("</tbody></table></section>\n");
}

/// One chart series: name, colour and one value per point (`None` = no data).
struct Series<'a> {
    name: &'a str,
    color: &'a str,
    values: Vec<Option<u64>>,
}

const CHART_W: u64 = 250;
const CHART_H: u64 = 96;
const PAD: u64 = 6;

/// A small line chart of `series` over `epochs`, values labelled by `label`.
fn chart(
    out: &mut String,
    id: &str,
    title: &str,
    epochs: &[u64],
    series: &[Series<'_>],
    label: fn(u64) -> String,
) {
    let all = series
        .iter()
        .flat_map(|s| s.values.iter().flatten().copied());
    let (lo, hi) = all.fold((u64::MAX, 0), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let last = series
        .iter()
        .map(|s| {
            let v = s.values.last().copied().flatten();
            let v = escape(&v.map_or_else(|| "-".to_owned(), label));
            if series.len() == 1 {
                v
            } else {
                format!(
                    "<span style=\"color:{}\">■</span> {} {v}",
                    escape(s.color),
                    escape(s.name)
                )
            }
        })
        .collect::<Vec<_>>()
        .join(" · ");
    let range = match (epochs.first(), epochs.last()) {
        (Some(a), Some(b)) => format!("epochs {a}–{b}"),
        _ => "no epochs yet".to_owned(),
    };
    let _ = write!(
        out,
        "<figure id=\"{}\"{}><figcaption><b>{}</b> · {} · last: {}</figcaption>\n\
         <svg width=\"{CHART_W}\" height=\"{CHART_H}\" viewBox=\"0 0 {CHART_W} {CHART_H}\" \
         role=\"img\" aria-label=\"{}\">",
        escape(id),
        if series.len() > 1 {
            " class=\"wide\""
        } else {
            ""
        },
        escape(title),
        escape(&range),
        last,
        escape(title)
    );
    if lo <= hi {
        let _ = write!(
            out,
            "<text x=\"{PAD}\" y=\"14\" font-size=\"10\" fill=\"#616e7c\">{}</text>\
             <text x=\"{PAD}\" y=\"{}\" font-size=\"10\" fill=\"#616e7c\">{}</text>",
            escape(&label(hi)),
            CHART_H - PAD,
            escape(&label(lo))
        );
    }
    let n = u64::try_from(epochs.len()).unwrap_or(u64::MAX);
    let (plot_top, plot_h) = (18, CHART_H - 18 - 16);
    for s in series {
        let mut points = Vec::new();
        for (i, v) in (0u64..).zip(&s.values) {
            let Some(v) = *v else { continue };
            let x = PAD + i * (CHART_W - 2 * PAD) / n.saturating_sub(1).max(1);
            let y = if hi > lo {
                let above = u128::from(v - lo) * u128::from(plot_h) / u128::from(hi - lo);
                plot_top + plot_h - u64::try_from(above).unwrap_or(plot_h)
            } else {
                plot_top + plot_h / 2
            };
            points.push(format!("{x},{y}"));
        }
        let _ = write!(
            out,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.8\" points=\"{}\" \
             data-series=\"{}\"><title>{}</title></polyline>",
            escape(s.color),
            points.join(" "),
            escape(s.name),
            escape(s.name)
        );
    }
    out.push_str("</svg></figure>\n");
}

fn economics(out: &mut String, s: &Status, history: &[Point]) {
    out.push_str("<section><h2>Economics</h2>\n<div class=\"pair\">\n");
    match &s.economics {
        Some(e) => {
            let shares = e
                .subsidy_share_bps
                .iter()
                .map(|(k, v)| format!("{} {v}", escape(k)))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(
                out,
                "<dl id=\"economics\"><dt>epoch</dt><dd>{}</dd><dt>block reward (next epoch)</dt>\
                 <dd>{} BLOCK per block</dd><dt>transactions</dt><dd id=\"tx-count\">{}</dd>\
                 <dt>volume</dt><dd>{} BLOCK</dd><dt>treasury inflow</dt><dd>{} BLOCK</dd>\
                 <dt>unique miners</dt><dd>{}</dd><dt>reward volatility</dt><dd>{} bps</dd>\
                 <dt>subsidy shares</dt><dd>{shares} bps</dd></dl>",
                e.epoch,
                block(e.block_reward_per_block_micro),
                group(e.tx_count),
                block(e.tx_volume_micro),
                block(e.treasury_inflow_micro),
                e.unique_miners,
                e.reward_volatility_bps,
            );
        }
        None => out.push_str("<p class=\"hint\">no epoch has closed yet</p>\n"),
    }
    if !s.telemetry_gauges_ppm.is_empty() {
        out.push_str(
            "<table id=\"markets\"><thead><tr><th>market</th><th>utilization</th>\
             <th>provider margin</th></tr></thead><tbody>\n",
        );
        for (market, _) in MARKETS {
            let g = |k: &str| {
                s.telemetry_gauges_ppm
                    .get(&format!("{market}.{k}"))
                    .copied()
            };
            let util = g("utilization_ppm")
                .flatten()
                .map_or_else(|| "-".to_owned(), percent_signed);
            let margin = g("provider_margin_ppm")
                .flatten()
                .map_or_else(|| "-".to_owned(), percent_signed);
            let _ = writeln!(
                out,
                "<tr><td>{market}</td><td>{util}</td><td>{margin}</td></tr>"
            );
        }
        out.push_str("</tbody></table>\n");
    }
    out.push_str("</div>\n");
    let epochs: Vec<u64> = history.iter().map(|p| p.epoch).collect();
    let one = |name, f: fn(&Point) -> u64| {
        vec![Series {
            name,
            color: "#2563eb",
            values: history.iter().map(|p| Some(f(p))).collect(),
        }]
    };
    out.push_str("<div class=\"charts\">\n");
    chart(
        out,
        "chart-block-reward",
        "block reward, BLOCK",
        &epochs,
        &one("block reward", |p| p.block_reward_per_block_micro),
        block,
    );
    chart(
        out,
        "chart-tx-count",
        "transactions",
        &epochs,
        &one("transactions", |p| p.tx_count),
        group,
    );
    chart(
        out,
        "chart-tx-volume",
        "volume, BLOCK",
        &epochs,
        &one("volume", |p| p.tx_volume_micro),
        block,
    );
    chart(
        out,
        "chart-treasury-inflow",
        "treasury inflow, BLOCK",
        &epochs,
        &one("treasury inflow", |p| p.treasury_inflow_micro),
        block,
    );
    let utilization: Vec<Series<'_>> = MARKETS
        .iter()
        .enumerate()
        .map(|(i, (name, color))| Series {
            name,
            color,
            values: history.iter().map(|p| p.utilization_ppm[i]).collect(),
        })
        .collect();
    chart(
        out,
        "chart-utilization",
        "utilization per market",
        &epochs,
        &utilization,
        percent,
    );
    out.push_str("</div></section>\n");
}

fn provenance(out: &mut String, s: &Status) {
    out.push_str("<section><h2>Release provenance</h2>\n");
    match &s.release_provenance {
        Some(p) => {
            let (class, word) = attestation(s);
            let keyid = p
                .attestation
                .as_ref()
                .map_or_else(|| "unsigned".to_owned(), |k| format!("keyid {}", escape(k)));
            let _ = writeln!(
                out,
                "<dl id=\"provenance\"><dt>epoch</dt><dd>{}</dd><dt>decision_hash</dt>\
                 <dd class=\"hash\" id=\"decision-hash\">{}</dd><dt>snapshot_hash</dt>\
                 <dd class=\"hash\" id=\"snapshot-hash\">{}</dd><dt>attestation</dt>\
                 <dd id=\"keyid\">{keyid}</dd><dt>verified</dt><dd><span class=\"badge {class}\" \
                 id=\"verified\">{}</span> {word}</dd></dl>\n<p class=\"hint\" \
                 id=\"provenance-hint\">hint: {}</p>",
                p.epoch,
                escape(&p.decision_hash),
                escape(&p.snapshot_hash),
                if p.verified { "yes" } else { "no" },
                escape(&p.hint)
            );
        }
        None => out.push_str(
            "<p class=\"hint\">no decision has been written yet; provenance appears when the \
             first epoch closes</p>\n",
        ),
    }
    out.push_str("</section>\n");
}

fn counter_rows(out: &mut String, id: &str, map: &std::collections::BTreeMap<String, u64>) {
    let total = map.values().fold(0u64, |t, v| t.saturating_add(*v));
    let _ = write!(
        out,
        "<table id=\"{}\"><tbody><tr><th>total</th><th>{}</th></tr>",
        escape(id),
        group(total)
    );
    for (k, v) in map {
        let _ = write!(
            out,
            "<tr data-key=\"{k}\"><td>{k}</td><td>{}</td></tr>",
            group(*v),
            k = escape(k)
        );
    }
    out.push_str("</tbody></table>\n");
}

fn receipts(out: &mut String, s: &Status) {
    let h = &s.receipt_health;
    out.push_str(
        "<section><h2>Receipt health (since genesis)</h2>\n<div class=\"charts\"><figure \
         class=\"wide\"><figcaption>accepted by market</figcaption>\n",
    );
    counter_rows(out, "receipts-accepted", &h.accepted);
    out.push_str("</figure><figure class=\"wide\"><figcaption>rejected by reason</figcaption>\n");
    counter_rows(out, "receipts-rejected", &h.rejected);
    out.push_str("</figure></div>\n");
    if h.hints.is_empty() {
        out.push_str("<p class=\"hint\">hint: receipts look healthy</p>\n");
    }
    for hint in &h.hints {
        let _ = writeln!(out, "<p class=\"hint\">hint: {}</p>", escape(hint));
    }
    out.push_str("</section>\n");
}

fn blocktorch(out: &mut String, s: &Status) {
    let b = &s.blocktorch;
    let latency = match b.proof_latency_p95_ms {
        Some(ms) if ms > b.budget_ms => format!(
            "p95 {ms} ms (budget {} ms) <span class=\"badge bad\">over budget</span>",
            b.budget_ms
        ),
        Some(ms) => format!("p95 {ms} ms (budget {} ms)", b.budget_ms),
        None => format!("- (budget {} ms)", b.budget_ms),
    };
    let opt = |v: &Option<String>| {
        v.as_deref()
            .map_or_else(|| "-".to_owned(), |v| format!("<code>{}</code>", escape(v)))
    };
    let _ = writeln!(
        out,
        "<section><h2>BlockTorch</h2>\n<dl id=\"blocktorch\"><dt>proof latency</dt>\
         <dd id=\"proof-latency\">{latency}</dd><dt>kernel digest</dt><dd>{}</dd>\
         <dt>benchmark commit</dt><dd>{}</dd><dt>aggregator trace</dt><dd>{}</dd>\
         <dt>source</dt><dd>{}</dd></dl></section>",
        opt(&b.kernel_digest),
        opt(&b.benchmark_commit),
        opt(&b.aggregator_trace),
        escape(&b.source)
    );
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use tb_config::Mode;

    use super::*;
    use crate::engine::{Action, Gate, GateRecord, Intent, IntentState, Params};
    use crate::rpc::{Blocktorch, EconomicsSample, Ingest, ReceiptHealth, ReleaseProvenance};

    #[test]
    fn the_chart_window_keeps_the_newest_epochs_in_order() {
        let point = |epoch| Point {
            epoch,
            block_reward_per_block_micro: 0,
            tx_count: 0,
            tx_volume_micro: 0,
            treasury_inflow_micro: 0,
            utilization_ppm: [None; 4],
        };
        let mut recent = Recent::default();
        for epoch in 0..HISTORY_EPOCHS + 8 {
            recent.push(point(epoch));
        }
        let epochs: Vec<u64> = recent.points().iter().map(|p| p.epoch).collect();
        assert_eq!(epochs, (8..HISTORY_EPOCHS + 8).collect::<Vec<_>>());
    }

    const EVIL: &str = "<script>alert('x')</script>&\"";

    /// A status whose every free-text field carries markup.
    fn hostile_status() -> Status {
        Status {
            enabled: false,
            mode: Mode::Paused,
            mode_effective_epoch: 4,
            rules_version: 1,
            config_hash: format!("hash{EVIL}"),
            tip_height: Some(239),
            last_closed_epoch: Some(11),
            ingest: Ingest {
                file: format!("blocks{EVIL}.jsonl"),
                line: 241,
                stall: Some(format!("blocks.jsonl:241: unknown field {EVIL}")),
            },
            gates: vec![GateRecord {
                name: Gate::Storage,
                state: GateStatus::Active,
                enter_streak: 0,
                exit_streak: 1,
                enter_streak_required: 3,
                exit_streak_required: 2,
                enter_ok: false,
                exit_bad: true,
                reason: format!("storage: {EVIL}"),
                metrics: Default::default(),
            }],
            pending_intents: vec![Intent {
                id: format!("storage-00000011-exit{EVIL}"),
                gate: Gate::Storage,
                action: Action::Exit,
                created_epoch: 11,
                epoch_apply: 12,
                reason: format!("manual exit by {EVIL}"),
                metrics: Default::default(),
                snapshot_hash: "ab".repeat(32),
                state: IntentState::Pending,
            }],
            last_economics_snapshot_hash: Some("ab".repeat(32)),
            economics: Some(EconomicsSample {
                epoch: 11,
                tx_count: 5196,
                tx_volume_micro: 20_820_783_036,
                treasury_inflow_micro: 21_600_000,
                unique_miners: 6,
                block_reward_per_block_micro: 2_844_471,
                reward_volatility_bps: 100,
                subsidy_share_bps: BTreeMap::from([(format!("ad{EVIL}"), 3094)]),
            }),
            telemetry_gauges_ppm: BTreeMap::from([
                ("storage.utilization_ppm".to_owned(), Some(494_106)),
                ("storage.provider_margin_ppm".to_owned(), Some(-120_000)),
            ]),
            params: Params::initial(100),
            shadow_params: Params::initial(100),
            release_provenance: Some(ReleaseProvenance {
                epoch: 11,
                decision_hash: format!("de{EVIL}"),
                snapshot_hash: "ab".repeat(32),
                attestation: Some(format!("key{EVIL}")),
                verified: false,
                hint: format!("check the key file {EVIL}"),
            }),
            receipt_health: ReceiptHealth {
                accepted: BTreeMap::from([(format!("storage{EVIL}"), 1_476)]),
                rejected: BTreeMap::from([("bad_signature".to_owned(), 15)]),
                signature_mismatch_total: 15,
                validation_failure_total: 0,
                decoding_failure_total: 0,
                pending_storage: 0,
                pending_compute: 0,
                pending_energy: 0,
                drain_depth: 0,
                hints: vec![format!("15 receipts failed {EVIL}")],
            },
            blocktorch: Blocktorch {
                kernel_digest: Some(format!("kd{EVIL}")),
                benchmark_commit: Some(format!("bench{EVIL}")),
                proof_latency_p95_ms: Some(120),
                budget_ms: 100,
                aggregator_trace: None,
                source: format!("chain{EVIL}"),
            },
            config_reload_error: Some(format!("refused: {EVIL}")),
            replay_config_hash: "cd".repeat(32),
            peers: vec![],
        }
    }

    #[test]
    fn every_string_from_status_is_escaped() {
        let html = render(&hostile_status(), &[]);
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("alert('x')"), "{html}");
        // Each field shows up escaped (13 free-text fields above carry EVIL).
        let escaped = escape(EVIL);
        assert!(html.matches(escaped.as_str()).count() >= 13, "{html}");
        // The values an operator looks for are there.
        for needle in [
            "id=\"mode\">paused<",
            "id=\"last-closed-epoch\">11<",
            "id=\"tip-height\">239<",
            "id=\"stall\">STALLED: ",
            "id=\"config-reload-error\"",
            "id=\"paused\"",
            "data-gate=\"storage\"",
            "exit 1/2",
            "p95 120 ms (budget 100 ms)",
            "over budget",
            ">unverified<",
            "49.41 %",
            "−12.00 %",
            "5,196",
        ] {
            assert!(html.contains(needle), "{needle} missing:\n{html}");
        }
        // One self-contained document: no external resource, no script.
        for banned in ["src=", "href=", "<script", "<link", "@import", "url("] {
            assert!(!html.contains(banned), "{banned} in:\n{html}");
        }
        assert!(html.contains("<meta http-equiv=\"refresh\" content=\"5\">"));
    }

    #[test]
    fn before_the_first_close_the_page_says_so() {
        let mut s = hostile_status();
        s.last_closed_epoch = None;
        s.tip_height = None;
        s.gates.clear();
        s.pending_intents.clear();
        s.economics = None;
        s.release_provenance = None;
        s.telemetry_gauges_ppm.clear();
        let html = render(&s, &[]);
        assert!(html.contains("id=\"last-closed-epoch\">-<"), "{html}");
        assert!(html.contains("no epoch has closed yet"), "{html}");
        assert!(html.contains(">none yet<"), "{html}");
        assert!(html.contains("no epochs yet"), "{html}");
    }

    #[test]
    fn escapes_every_markup_character() {
        assert_eq!(
            escape(r#"<script>alert("x" & 'y')</script>"#),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
        assert_eq!(escape("plain"), "plain");
    }

    #[test]
    fn numbers_use_integer_formatting() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1_000), "1,000");
        assert_eq!(group(20_820_783_036), "20,820,783,036");
        assert_eq!(block(20_820_783_036), "20,820.78");
        assert_eq!(block(2_844_471), "2.84");
        assert_eq!(percent(494_106), "49.41 %");
        assert_eq!(percent_signed(-250_000), "−25.00 %");
        assert_eq!(dots(2, 3), "●●○");
        assert_eq!(dots(0, 0), "○");
    }

    #[test]
    fn a_chart_has_one_point_per_epoch_inside_its_box() {
        let mut out = String::new();
        let epochs = [3, 4, 5, 6];
        let series = [Series {
            name: "x",
            color: "#000",
            values: vec![Some(10), Some(40), None, Some(20)],
        }];
        chart(&mut out, "c", "t", &epochs, &series, group);
        let points = out
            .split("points=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_default();
        let xy: Vec<(u64, u64)> = points
            .split(' ')
            .filter_map(|p| p.split_once(','))
            .map(|(x, y)| (x.parse().unwrap_or(999), y.parse().unwrap_or(999)))
            .collect();
        assert_eq!(xy.len(), 3, "the missing value is skipped: {out}");
        assert_eq!(xy[0].0, PAD);
        assert_eq!(xy[2].0, CHART_W - PAD);
        assert!(
            xy.iter().all(|(x, y)| *x <= CHART_W && *y <= CHART_H),
            "{xy:?}"
        );
        // Higher values are drawn higher (smaller y).
        assert!(xy[1].1 < xy[2].1 && xy[2].1 < xy[0].1, "{xy:?}");
        assert!(out.contains("epochs 3–6"), "{out}");
        // An empty chart still renders.
        let mut empty = String::new();
        chart(&mut empty, "e", "t", &[], &[], group);
        assert!(empty.contains("no epochs yet"), "{empty}");
    }
}
