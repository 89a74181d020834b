//! Lease-based leader election (`coordination.k8s.io/v1` `Lease`), so that of several controller
//! replicas only one reconciles and applies.
//!
//! Every write is a compare-and-set on the Lease's `resourceVersion`: of two replicas that both
//! see an expired lease, one wins the replace and the other gets a conflict. A leader that cannot
//! renew within the lease duration stops leading before anyone else may take over (it steps
//! down after `renew_deadline`, which is shorter than the lease). Leadership is not the only
//! guard against a double write: status `Applying` is also a compare-and-set and the source's
//! receipts table makes a second apply of the same change write nothing.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct LeaseSettings {
    pub name: String,
    pub namespace: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl LeaseSettings {
    pub fn new(name: String, namespace: String, identity: String) -> LeaseSettings {
        LeaseSettings {
            name,
            namespace,
            identity,
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// One attempt to acquire or renew; `Ok(true)` when this identity holds the lease afterwards.
pub async fn try_acquire_or_renew(api: &Api<Lease>, s: &LeaseSettings) -> Result<bool, kube::Error> {
    let now = Timestamp::now();
    let secs = i32::try_from(s.lease_duration.as_secs()).unwrap_or(15);
    match api.get_opt(&s.name).await? {
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(s.name.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(s.identity.clone()),
                    lease_duration_seconds: Some(secs),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            match api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                Err(e) => Err(e),
            }
        }
        Some(mut lease) => {
            let spec = lease.spec.get_or_insert_with(Default::default);
            let holder = spec.holder_identity.clone().unwrap_or_default();
            let mine = holder == s.identity;
            let duration = spec.lease_duration_seconds.unwrap_or(secs).max(1);
            let expired = match &spec.renew_time {
                Some(MicroTime(t)) => {
                    let age = now.duration_since(*t);
                    age.as_secs() >= i64::from(duration)
                }
                None => true,
            };
            if !mine && !holder.is_empty() && !expired {
                return Ok(false);
            }
            if !mine {
                spec.holder_identity = Some(s.identity.clone());
                spec.acquire_time = Some(MicroTime(now));
                spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
            }
            spec.lease_duration_seconds = Some(secs);
            spec.renew_time = Some(MicroTime(now));
            // `replace` carries the resourceVersion we read: a concurrent writer makes it a 409.
            match api.replace(&s.name, &PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                Err(e) => Err(e),
            }
        }
    }
}

/// Gives the lease up (on shutdown) so another replica takes over without waiting it out.
pub async fn release(api: &Api<Lease>, s: &LeaseSettings) {
    if let Ok(Some(mut lease)) = api.get_opt(&s.name).await {
        let spec = lease.spec.get_or_insert_with(Default::default);
        if spec.holder_identity.as_deref() == Some(s.identity.as_str()) {
            spec.holder_identity = None;
            spec.renew_time = None;
            let _ = api.replace(&s.name, &PostParams::default(), &lease).await;
        }
    }
}

/// Campaigns and renews until `shutdown`, publishing whether this replica leads. Steps down
/// (publishes false) when renewals fail for longer than the renew deadline.
pub async fn run(api: Api<Lease>, s: LeaseSettings, tx: watch::Sender<bool>, shutdown: CancellationToken) {
    let mut last_renewed: Option<tokio::time::Instant> = None;
    loop {
        // An API server that accepts the connection but never answers (hung, starting up,
        // behind a partition) would hold a call for minutes, and this replica would go on
        // leading past its Lease: each attempt gets only the time left to the renew deadline.
        let bound = last_renewed.map_or(s.renew_deadline, |t| s.renew_deadline.saturating_sub(t.elapsed()));
        let attempt = tokio::time::timeout(bound, try_acquire_or_renew(&api, &s)).await;
        let leading = match attempt {
            Ok(Ok(true)) => {
                last_renewed = Some(tokio::time::Instant::now());
                true
            }
            Ok(Ok(false)) => false,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, lease = %s.name, "lease renewal failed");
                // Keep leading only while the last renewal is within the deadline.
                last_renewed.is_some_and(|t| t.elapsed() < s.renew_deadline)
            }
            Err(_) => {
                tracing::warn!(lease = %s.name, waited = ?bound, "lease renewal got no answer in time");
                last_renewed.is_some_and(|t| t.elapsed() < s.renew_deadline)
            }
        };
        if !leading {
            // Past the deadline this replica campaigns afresh, with a whole deadline per try.
            last_renewed = None;
        }
        if *tx.borrow() != leading {
            tracing::info!(identity = %s.identity, lease = %s.name, leading, "leadership changed");
        }
        tx.send_replace(leading);
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(s.retry_period) => {}
        }
    }
    if *tx.borrow() {
        tx.send_replace(false);
        release(&api, &s).await;
    }
}
