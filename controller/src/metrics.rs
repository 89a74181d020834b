//! Prometheus metrics of the controller, served at `/metrics`.

use prometheus::{Encoder, Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

/// The controller's metrics, registered in their own registry.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// Applies by outcome: `applied`, `already_applied`, `conflict`, `failed`.
    pub applies: IntCounterVec,
    /// Proposals that ended without an apply, by phase: `Rejected`, `Expired`, `Failed`.
    pub closed: IntCounterVec,
    /// Reconcile errors by stable code.
    pub reconcile_errors: IntCounterVec,
    /// Admission reviews by verdict.
    pub admissions: IntCounterVec,
    /// Pod admission reviews of the sidecar injector, by outcome.
    pub injections: IntCounterVec,
    /// 1 while this replica holds the leader Lease.
    pub leader: IntGauge,
    pub apply_seconds: Histogram,
    /// Requests to the Kubernetes API by verb (`get`, `watch`, `create`, `update`, `patch`,
    /// `delete`), counted as they pass the client-side rate limit.
    pub kube_api_requests: IntCounterVec,
    /// How long each request to the Kubernetes API waited for a token of the client-side rate
    /// limit (`--kube-api-qps`, `--kube-api-burst`); 0 for most.
    pub kube_api_wait_seconds: Histogram,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, label: &str| {
            let c = IntCounterVec::new(Opts::new(name, help), &[label]).unwrap_or_else(|_| unreachable!());
            let _ = registry.register(Box::new(c.clone()));
            c
        };
        let applies = counter(
            "synapsor_proposal_applies_total",
            "Guarded applies of approved proposals, by receipt status.",
            "outcome",
        );
        let closed = counter(
            "synapsor_proposals_closed_total",
            "Proposals that ended without an apply, by phase.",
            "phase",
        );
        let reconcile_errors = counter(
            "synapsor_reconcile_errors_total",
            "Reconcile attempts that failed and will be retried, by code.",
            "code",
        );
        let admissions = counter(
            "synapsor_admission_reviews_total",
            "Admission reviews of proposals, by verdict.",
            "verdict",
        );
        let injections = counter(
            "synapsor_sidecar_injections_total",
            "Pod admission reviews of the sidecar injector, by outcome (injected, untouched, refused).",
            "outcome",
        );
        let leader = IntGauge::new(
            "synapsor_controller_leader",
            "1 while this replica holds the leader Lease.",
        )
        .unwrap_or_else(|_| unreachable!());
        let _ = registry.register(Box::new(leader.clone()));
        let apply_seconds = Histogram::with_opts(HistogramOpts::new(
            "synapsor_apply_duration_seconds",
            "Time from Applying to the receipt.",
        ))
        .unwrap_or_else(|_| unreachable!());
        let _ = registry.register(Box::new(apply_seconds.clone()));
        let kube_api_requests = counter(
            "synapsor_kube_api_requests_total",
            "Requests to the Kubernetes API, by verb.",
            "verb",
        );
        let kube_api_wait_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "synapsor_kube_api_rate_limit_wait_seconds",
                "Time requests to the Kubernetes API waited for the client-side rate limit (--kube-api-qps).",
            )
            .buckets(vec![0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
        )
        .unwrap_or_else(|_| unreachable!());
        let _ = registry.register(Box::new(kube_api_wait_seconds.clone()));
        Metrics {
            registry,
            applies,
            closed,
            reconcile_errors,
            admissions,
            injections,
            leader,
            apply_seconds,
            kube_api_requests,
            kube_api_wait_seconds,
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
