//! The report: targets and their checks, the printed tables, machine facts.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Value, json};

use crate::stats::Summary;

/// One measured value against its target.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub value: f64,
    pub unit: &'static str,
    /// Human wording of the target; `None` for values reported without a target.
    pub target: Option<String>,
    pub pass: Option<bool>,
}

impl Check {
    pub fn at_most(name: &str, value: f64, unit: &'static str, limit: f64) -> Check {
        Check {
            name: name.to_owned(),
            value,
            unit,
            target: Some(format!("<= {limit} {unit}")),
            pass: Some(value <= limit),
        }
    }

    pub fn at_least(name: &str, value: f64, unit: &'static str, limit: f64) -> Check {
        Check {
            name: name.to_owned(),
            value,
            unit,
            target: Some(format!(">= {limit} {unit}")),
            pass: Some(value >= limit),
        }
    }

    /// A target this run could not measure, and why: printed as `NOT RUN`, never as a pass.
    pub fn not_measured(name: &str, why: &str) -> Check {
        Check {
            name: name.to_owned(),
            value: f64::NAN,
            unit: "",
            target: Some(why.to_owned()),
            pass: None,
        }
    }

    pub fn info(name: &str, value: f64, unit: &'static str) -> Check {
        Check {
            name: name.to_owned(),
            value,
            unit,
            target: None,
            pass: None,
        }
    }
}

pub fn latency_table(rows: &[Summary]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<36} {:>7} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>6}",
        "phase", "clients", "calls", "p50 ms", "p95 ms", "p99 ms", "mean ms", "max ms", "calls/s", "errors"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<36} {:>7} {:>7} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>9} {:>6}",
            r.phase,
            r.clients,
            r.calls,
            r.p50_ms,
            r.p95_ms,
            r.p99_ms,
            r.mean_ms,
            r.max_ms,
            r.throughput_per_s,
            r.errors
        );
    }
    out
}

pub fn checks_table(checks: &[Check]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{:<48} {:>12} {:<28} result", "measurement", "value", "target");
    for c in checks {
        let value = format!("{:.2} {}", c.value, c.unit);
        let result = match c.pass {
            Some(true) => "PASS",
            Some(false) => "MISS",
            None if c.value.is_nan() && c.target.is_some() => "NOT RUN",
            None => "-",
        };
        let _ = writeln!(
            out,
            "{:<48} {:>12} {:<28} {}",
            c.name,
            value,
            c.target.as_deref().unwrap_or("(no target)"),
            result
        );
    }
    out
}

/// The `--compare` table: each measure for the runner and the peer, and peer / runner.
pub fn compare_table(rows: &[crate::CompareRow]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<40} {:>16} {:>12} {:>13}",
        "measure", "synapsor-runner", "peer", "peer / runner"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<40} {:>16.3} {:>12.3} {:>12.2}x",
            r.measure, r.runner, r.peer, r.peer_over_runner
        );
    }
    out
}

fn first_line_with(text: &str, prefix: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .map(|v| v.trim().trim_start_matches(':').trim().trim_matches('"').to_owned())
}

/// What the numbers were measured on.
pub fn machine() -> Value {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let meminfo = read("/proc/meminfo");
    let mem_kib: u64 = first_line_with(&meminfo, "MemTotal")
        .and_then(|v| v.trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    json!({
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu": first_line_with(&cpuinfo, "model name"),
        "memory_mib": mem_kib / 1024,
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
        "os": first_line_with(&read("/etc/os-release"), "PRETTY_NAME="),
        "arch": std::env::consts::ARCH,
    })
}

/// The 1, 5 and 15 minute load averages: other work on the machine skews every number.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks() {
        assert_eq!(Check::at_most("x", 1.0, "ms", 1.0).pass, Some(true));
        assert_eq!(Check::at_most("x", 1.01, "ms", 1.0).pass, Some(false));
        assert_eq!(Check::at_least("x", 0.4, "", 0.4).pass, Some(true));
        assert_eq!(Check::at_least("x", 0.39, "", 0.4).pass, Some(false));
        let table = checks_table(&[Check::not_measured("controller", "needs the API server")]);
        assert!(table.contains("NOT RUN"), "{table}");
        assert!(!table.contains("PASS"), "{table}");
    }
}
