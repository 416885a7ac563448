//! The gateway's metrics, exposed at `/metrics` in the OpenMetrics text
//! format by `prometheus-client`: counters (`_total`), latency histograms
//! (`_seconds`) and gauges measured at scrape time, with Prometheus naming.
//! Labels are bounded by config (channels, accounts, agents, tiers, tools,
//! reasons), never by message content or sender ids.
//!
//! Must not: label by message content or sender ids, or count a metric that
//! is not declared below (it would never be exposed).

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge as GaugeMetric;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;
type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;
type GaugeValue = GaugeMetric<f64, AtomicU64>;

/// The OpenMetrics content type `/metrics` answers with.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Every counter: its name (as counted, with `_total`) and help.
const COUNTERS: [(&str, &str); 11] = [
    ("chela_messages_in_total", "Inbound messages run through the pipeline, by channel, account and agent."),
    ("chela_messages_out_total", "Replies delivered through channel adapters."),
    ("chela_routes_total", "Routing outcomes by the tier that matched."),
    ("chela_messages_dropped_total", "Inbound messages not answered, by reason."),
    ("chela_errors_total", "Failures by stage."),
    ("chela_tool_calls_total", "Tool calls made by agents, by result."),
    ("chela_replies_failed_total", "Replies that failed for good (recorded dead in the journal)."),
    ("chela_takeovers_total", "Unfinished messages and undelivered replies taken over from replicas that were gone."),
    ("chela_cron_runs_total", "Scheduled runs (cron jobs and heartbeats) by job and status (ok, error, skipped)."),
    (
        "chela_webhook_auth_lockouts_total",
        "Webhook requests refused because their address kept failing authentication.",
    ),
    ("chela_connections_refused_total", "Connections refused by the connection caps."),
];

/// Every histogram: name and help (seconds, buckets from 1 ms to ~33 s).
const HISTOGRAMS: [(&str, &str); 6] = [
    ("chela_message_reply_seconds", "From a message's acceptance into the journal until its reply was delivered."),
    ("chela_queue_wait_seconds", "How long an accepted message waited behind its chat's earlier messages."),
    ("chela_turn_seconds", "One agent turn: prompt, model rounds and tool calls."),
    ("chela_tool_call_seconds", "One tool call, as the agent's turn saw it."),
    ("chela_model_seconds", "A turn's time waiting on its model (all rounds)."),
    ("chela_store_seconds", "A turn's time waiting on the session store, its syncs included (all calls)."),
];

fn buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// A value measured at scrape time.
pub struct Gauge {
    pub name: &'static str,
    pub help: &'static str,
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

pub struct Metrics {
    counters: HashMap<&'static str, Family<Labels, Counter>>,
    histograms: HashMap<&'static str, HistogramFamily>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            counters: COUNTERS.iter().map(|(name, _)| (*name, Family::default())).collect(),
            histograms: HISTOGRAMS
                .iter()
                .map(|(name, _)| (*name, Family::new_with_constructor(buckets as fn() -> Histogram)))
                .collect(),
        }
    }
}

fn labels(l: &[(&'static str, &str)]) -> Labels {
    l.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

impl Metrics {
    /// Counts one event of the counter `name` (declared in `COUNTERS`).
    pub fn inc(&self, name: &'static str, l: &[(&'static str, &str)]) {
        self.add(name, l, 1);
    }

    /// Counts `n` events of the counter `name` (declared in `COUNTERS`).
    pub fn add(&self, name: &'static str, l: &[(&'static str, &str)], n: u64) {
        match self.counters.get(name) {
            Some(f) => {
                f.get_or_create(&labels(l)).inc_by(n);
            }
            None => tracing::error!(metric = name, "counter not declared; not counted"),
        }
    }

    /// The counter's value for these labels (reading creates no series).
    pub fn get(&self, name: &'static str, l: &[(&'static str, &str)]) -> u64 {
        self.counters.get(name).and_then(|f| f.get(&labels(l)).map(|c| c.get())).unwrap_or(0)
    }

    /// Records one duration (seconds) in the histogram `name`.
    pub fn observe(&self, name: &'static str, l: &[(&'static str, &str)], seconds: f64) {
        match self.histograms.get(name) {
            Some(f) => f.get_or_create(&labels(l)).observe(seconds),
            None => tracing::error!(metric = name, "histogram not declared; not recorded"),
        }
    }

    /// The exposition text: every counter and histogram, the gauges the
    /// caller measured now, and `chela_build_info`.
    pub fn render(&self, gauges: &[Gauge]) -> String {
        let mut registry = Registry::default();
        for (name, help) in COUNTERS {
            if let Some(f) = self.counters.get(name) {
                registry.register(name.trim_end_matches("_total"), help.trim_end_matches('.'), f.clone());
            }
        }
        for (name, help) in HISTOGRAMS {
            if let Some(f) = self.histograms.get(name) {
                registry.register(name, help.trim_end_matches('.'), f.clone());
            }
        }
        // prometheus-client ends every help text with a period itself.
        let help = |h: &'static str| h.trim_end_matches('.');
        let build = Family::<Labels, GaugeValue>::default();
        build.get_or_create(&vec![("version".to_string(), env!("CARGO_PKG_VERSION").to_string())]).set(1.0);
        registry.register("chela_build_info", "The running build (value 1)", build);
        let mut names: Vec<&'static str> = Vec::new();
        for g in gauges {
            if !names.contains(&g.name) {
                names.push(g.name);
            }
        }
        for name in names {
            let of_name: Vec<&Gauge> = gauges.iter().filter(|g| g.name == name).collect();
            let text = of_name.first().map(|g| help(g.help)).unwrap_or_default();
            if let [single] = of_name.as_slice() {
                if single.labels.is_empty() {
                    let gauge = GaugeValue::default();
                    gauge.set(single.value);
                    registry.register(name, text, gauge);
                    continue;
                }
            }
            let family = Family::<Labels, GaugeValue>::default();
            for g in of_name {
                let l: Labels = g.labels.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
                family.get_or_create(&l).set(g.value);
            }
            registry.register(name, text, family);
        }
        let mut out = String::new();
        if let Err(e) = encode(&mut out, &registry) {
            tracing::error!(error = %e, "metrics could not be encoded");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_histograms_and_gauges_are_exposed_in_openmetrics_text() {
        let m = Metrics::default();
        m.inc("chela_messages_dropped_total", &[("channel", "webhook"), ("reason", "duplicate")]);
        m.inc("chela_messages_dropped_total", &[("channel", "webhook"), ("reason", "duplicate")]);
        m.inc("chela_replies_failed_total", &[("channel", "telegram")]);
        m.observe("chela_turn_seconds", &[("agent", "work")], 0.012);
        assert_eq!(m.get("chela_messages_dropped_total", &[("channel", "webhook"), ("reason", "duplicate")]), 2);
        let gauges = [Gauge { name: "chela_chats_busy", help: "Busy chats.", labels: vec![], value: 3.0 }];
        let text = m.render(&gauges);
        assert!(text.contains("# TYPE chela_messages_dropped counter"), "{text}");
        assert!(text.contains(r#"chela_messages_dropped_total{channel="webhook",reason="duplicate"} 2"#), "{text}");
        assert!(text.contains(r#"chela_replies_failed_total{channel="telegram"} 1"#), "every declared counter: {text}");
        assert!(text.contains("# TYPE chela_turn_seconds histogram"), "{text}");
        assert!(text.contains(r#"chela_turn_seconds_count{agent="work"} 1"#), "{text}");
        assert!(
            text.contains(r#"chela_turn_seconds_bucket{le="0.016",agent="work"} 1"#)
                || text.contains(r#"chela_turn_seconds_bucket{agent="work",le="0.016"} 1"#),
            "{text}"
        );
        assert!(text.contains("chela_chats_busy 3.0"), "{text}");
        assert!(!text.contains(".."), "one period after each help text: {text}");
        assert!(
            text.contains(&format!(r#"chela_build_info{{version="{}"}} 1.0"#, env!("CARGO_PKG_VERSION"))),
            "{text}"
        );
        assert!(text.trim_end().ends_with("# EOF"), "{text}");
    }
}
