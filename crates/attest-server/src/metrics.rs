//! Prometheus metrics, kept by hand: request counts and latencies by route,
//! engine commands, refusals by rule, group-commit batch sizes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

const BUCKETS_MS: &[f64] = &[1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 10000.0];

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; 12],
    sum_ms: f64,
    count: u64,
}

#[derive(Debug, Default)]
struct Inner {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<(String, String), Histogram>,
    commands: BTreeMap<String, u64>,
    refusals: BTreeMap<String, u64>,
    batches: u64,
    batched_commands: u64,
}

#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    pub fn request(&self, method: &str, route: &str, status: u16, ms: f64) {
        let Ok(mut m) = self.inner.lock() else { return };
        *m.requests.entry((method.to_string(), route.to_string(), status)).or_default() += 1;
        let h = m.latency.entry((method.to_string(), route.to_string())).or_default();
        for (i, b) in BUCKETS_MS.iter().enumerate() {
            if ms <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum_ms += ms;
        h.count += 1;
    }

    pub fn command(&self, kind: &str) {
        if let Ok(mut m) = self.inner.lock() {
            *m.commands.entry(kind.to_string()).or_default() += 1;
        }
    }

    pub fn refusal(&self, rule: &str) {
        if let Ok(mut m) = self.inner.lock() {
            *m.refusals.entry(rule.to_string()).or_default() += 1;
        }
    }

    pub fn batch(&self, size: usize) {
        if let Ok(mut m) = self.inner.lock() {
            m.batches += 1;
            m.batched_commands += size as u64;
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self, ledger_size: u64) -> String {
        let mut out = String::new();
        let Ok(m) = self.inner.lock() else { return out };
        out.push_str("# HELP attest_http_requests_total HTTP requests by method, route and status.\n");
        out.push_str("# TYPE attest_http_requests_total counter\n");
        for ((method, route, status), n) in &m.requests {
            let _ = writeln!(
                out,
                "attest_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str("# HELP attest_http_request_duration_seconds HTTP request latency.\n");
        out.push_str("# TYPE attest_http_request_duration_seconds histogram\n");
        for ((method, route), h) in &m.latency {
            for (i, b) in BUCKETS_MS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "attest_http_request_duration_seconds_bucket{{method=\"{method}\",route=\"{route}\",le=\"{}\"}} {}",
                    b / 1000.0,
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "attest_http_request_duration_seconds_bucket{{method=\"{method}\",route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "attest_http_request_duration_seconds_sum{{method=\"{method}\",route=\"{route}\"}} {}",
                h.sum_ms / 1000.0
            );
            let _ = writeln!(
                out,
                "attest_http_request_duration_seconds_count{{method=\"{method}\",route=\"{route}\"}} {}",
                h.count
            );
        }
        out.push_str("# HELP attest_engine_commands_total Engine commands submitted, by kind.\n");
        out.push_str("# TYPE attest_engine_commands_total counter\n");
        for (kind, n) in &m.commands {
            let _ = writeln!(out, "attest_engine_commands_total{{command=\"{kind}\"}} {n}");
        }
        out.push_str("# HELP attest_engine_refusals_total Commands refused, by rule.\n");
        out.push_str("# TYPE attest_engine_refusals_total counter\n");
        for (rule, n) in &m.refusals {
            let _ = writeln!(out, "attest_engine_refusals_total{{rule=\"{rule}\"}} {n}");
        }
        out.push_str("# HELP attest_commit_batches_total Group commits.\n# TYPE attest_commit_batches_total counter\n");
        let _ = writeln!(out, "attest_commit_batches_total {}", m.batches);
        out.push_str(
            "# HELP attest_commit_batched_commands_total Commands in group commits.\n# TYPE attest_commit_batched_commands_total counter\n",
        );
        let _ = writeln!(out, "attest_commit_batched_commands_total {}", m.batched_commands);
        out.push_str("# HELP attest_ledger_entries Entries in the ledger.\n# TYPE attest_ledger_entries gauge\n");
        let _ = writeln!(out, "attest_ledger_entries {ledger_size}");
        out
    }
}
