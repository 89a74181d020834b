//! Latency samples and their summary.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Barrier;

/// Timed calls of one client.
#[derive(Debug, Default)]
pub struct Run {
    pub samples: Vec<Duration>,
    /// Calls whose result was not the expected success.
    pub errors: usize,
    pub started: Option<Instant>,
    pub finished: Option<Instant>,
}

/// Runs `warmup` untimed calls, waits at `barrier` (so concurrent clients start together), then
/// `n` timed calls. `call(i)` returns whether the call gave the expected result; an `Err` aborts.
pub async fn run_calls<F, Fut>(
    warmup: usize,
    n: usize,
    barrier: Option<Arc<Barrier>>,
    mut call: F,
) -> anyhow::Result<Run>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<bool>>,
{
    for i in 0..warmup {
        call(i).await?;
    }
    if let Some(b) = barrier {
        b.wait().await;
    }
    let mut run = Run {
        samples: Vec::with_capacity(n),
        ..Run::default()
    };
    let started = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        let ok = call(warmup + i).await?;
        run.samples.push(t.elapsed());
        if !ok {
            run.errors += 1;
        }
    }
    run.started = Some(started);
    run.finished = Some(Instant::now());
    Ok(run)
}

/// Percentiles (nearest rank) and throughput of one phase.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub phase: String,
    pub clients: usize,
    pub calls: usize,
    pub errors: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
    pub max_ms: f64,
    /// Completed calls per second of wall time, over all clients.
    pub throughput_per_s: f64,
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Summary {
    /// Merges the runs of all clients of one phase; wall time is first start to last finish.
    pub fn of(phase: &str, runs: Vec<Run>) -> Summary {
        let clients = runs.len();
        let start = runs.iter().filter_map(|r| r.started).min();
        let end = runs.iter().filter_map(|r| r.finished).max();
        let errors = runs.iter().map(|r| r.errors).sum();
        let mut all: Vec<Duration> = runs.into_iter().flat_map(|r| r.samples).collect();
        all.sort_unstable();
        let wall = match (start, end) {
            (Some(s), Some(e)) => e.duration_since(s),
            _ => Duration::ZERO,
        };
        let total: Duration = all.iter().sum();
        let mean = if all.is_empty() {
            Duration::ZERO
        } else {
            total / all.len() as u32
        };
        Summary {
            phase: phase.to_owned(),
            clients,
            calls: all.len(),
            errors,
            p50_ms: ms(percentile(&all, 50.0)),
            p95_ms: ms(percentile(&all, 95.0)),
            p99_ms: ms(percentile(&all, 99.0)),
            mean_ms: ms(mean),
            max_ms: ms(all.last().copied().unwrap_or_default()),
            throughput_per_s: if wall.is_zero() {
                0.0
            } else {
                (all.len() as f64 / wall.as_secs_f64()).round()
            },
        }
    }
}

/// The median of a few durations, in ms.
pub fn median_ms(mut v: Vec<Duration>) -> f64 {
    v.sort_unstable();
    if v.is_empty() {
        return 0.0;
    }
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        ms(v[mid])
    } else {
        ms((v[mid - 1] + v[mid]) / 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&v, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&v[..1], 99.0), Duration::from_millis(1));
        assert_eq!(median_ms(vec![Duration::from_millis(3), Duration::from_millis(1)]), 2.0);
    }
}
