//! Counters for `/metrics` (Prometheus text format 0.0.4). Labels are
//! bounded by config (channels, accounts, agents, tiers), never by message
//! content or sender ids.
//!
//! Must not: label by message content or sender ids.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// A counter's name and label values.
type Series = (&'static str, Vec<(&'static str, String)>);

/// A value measured at scrape time.
pub struct Gauge {
    pub name: &'static str,
    pub help: &'static str,
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

#[derive(Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<Series, u64>>,
}

/// Help text of every counter, in output order.
const HELP: [(&str, &str); 6] = [
    ("chela_messages_in_total", "Inbound messages accepted by channel adapters."),
    ("chela_messages_out_total", "Replies delivered through channel adapters."),
    ("chela_routes_total", "Routing outcomes by the tier that matched."),
    ("chela_dropped_total", "Inbound messages not routed, by reason."),
    ("chela_errors_total", "Failures by stage."),
    ("chela_tool_calls_total", "Tool calls made by agents."),
];

impl Metrics {
    pub fn inc(&self, name: &'static str, labels: &[(&'static str, &str)]) {
        let key = (name, labels.iter().map(|(k, v)| (*k, v.to_string())).collect());
        *self.counters.lock().unwrap_or_else(|p| p.into_inner()).entry(key).or_default() += 1;
    }

    pub fn get(&self, name: &'static str, labels: &[(&'static str, &str)]) -> u64 {
        let key = (name, labels.iter().map(|(k, v)| (*k, v.to_string())).collect::<Vec<_>>());
        self.counters.lock().unwrap_or_else(|p| p.into_inner()).get(&key).copied().unwrap_or(0)
    }

    /// The exposition text, plus gauges the caller measures now.
    pub fn render(&self, gauges: &[Gauge]) -> String {
        let counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        for (name, help) in HELP {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for ((n, labels), v) in counters.iter().filter(|((n, _), _)| *n == name) {
                let _ = writeln!(out, "{n}{} {v}", label_text(labels.iter().map(|(k, v)| (*k, v.as_str()))));
            }
        }
        let mut seen = Vec::new();
        for g in gauges {
            if !seen.contains(&g.name) {
                let _ = writeln!(out, "# HELP {} {}\n# TYPE {} gauge", g.name, g.help, g.name);
                seen.push(g.name);
            }
            let labels = label_text(g.labels.iter().map(|(k, v)| (*k, v.as_str())));
            let _ = writeln!(out, "{}{labels} {}", g.name, g.value);
        }
        out
    }
}

fn label_text<'a>(labels: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let parts: Vec<String> = labels
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}
