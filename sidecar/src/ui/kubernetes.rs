//! `Proposal` resources as a [`ReviewSource`] (`synapsor-runner ui --kubernetes`): the pages
//! read proposals and their Events with the reviewer's own kubeconfig, and a decision is the
//! same request as `kubectl annotate proposal/<name> runner.synapsor.ai/approve=true`, so the
//! admission webhook sees the reviewer's identity and decides (RBAC verb `approve`, not the
//! proposer, open, unexpired). A watch on the namespace's proposals pushes changes to the open
//! pages.
//!
//! What it is not: a privileged component. It holds no service account, no approval key and no
//! database credentials; it never writes the webhook's annotations or the status, and it never
//! applies: synapsor-controller does, once the approvals are verified. The connection and the
//! decision request are `synapsor_kube::reviewer`'s, shared with `kubectl synapsor`.

use futures::StreamExt;
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams};
use kube::runtime::watcher;
use synapsor_core::context::{Clock, SystemClock};
use synapsor_core::review::Review;
use synapsor_core::time::parse_rfc3339_ms;
use synapsor_kube::review::{self, digest_is_intact, effective_phase};
use synapsor_kube::reviewer::{self, Decision, DecisionError, KubectlFlags, Reviewer, api_message, send_decision};
use synapsor_kube::{Phase, Proposal};
use tokio::sync::broadcast;

use super::{ALL_CHANGED, Actions, DecisionRequest, Done, ListFilter, ListItem, ReviewPage, ReviewSource, UiError};

/// The proposals of one namespace, seen and decided as the person of the kubeconfig.
#[derive(Debug)]
pub struct ClusterProposals {
    reviewer: Reviewer,
    changes: broadcast::Sender<String>,
    watch: tokio::task::JoinHandle<()>,
}

impl Drop for ClusterProposals {
    fn drop(&mut self) {
        self.watch.abort();
    }
}

impl ClusterProposals {
    /// Connects with `flags` and reads the namespace's proposals once, so a wrong context, a
    /// missing CRD or a missing RBAC grant is reported before a page is served; then starts the
    /// watch that feeds live updates.
    pub async fn connect(flags: &KubectlFlags) -> Result<ClusterProposals, UiError> {
        let reviewer = reviewer::connect(flags).await.map_err(|e| UiError::Unavailable {
            code: "UI_KUBECONFIG",
            message: format!(
                "cannot load the kubeconfig: {}. Pass --kubeconfig FILE or set KUBECONFIG, and --context NAME if it has no current context",
                e.detail
            ),
        })?;
        let api: Api<Proposal> = Api::namespaced(reviewer.client.clone(), &reviewer.namespace);
        if let Err(e) = api.list(&ListParams::default().limit(1)).await {
            return Err(read_error(e, &reviewer.namespace));
        }
        let (changes, _) = broadcast::channel(256);
        let watch = tokio::spawn(watch_proposals(api, changes.clone()));
        Ok(ClusterProposals {
            reviewer,
            changes,
            watch,
        })
    }

    fn api(&self) -> Api<Proposal> {
        Api::namespaced(self.reviewer.client.clone(), &self.reviewer.namespace)
    }

    /// Reads one proposal, with a clear error when there is none of that name.
    async fn proposal(&self, name: &str) -> Result<Proposal, UiError> {
        match self.api().get_opt(name).await {
            Ok(Some(p)) => Ok(p),
            Ok(None) => Err(UiError::NotFound {
                message: format!("there is no proposal {name:?} in namespace {}", self.reviewer.namespace),
            }),
            Err(e) => Err(read_error(e, &self.reviewer.namespace)),
        }
    }

    /// The Events of one proposal, best effort: a reviewer who may not list Events still sees
    /// the rest.
    async fn events(&self, name: &str) -> Vec<Event> {
        let api: Api<Event> = Api::namespaced(self.reviewer.client.clone(), &self.reviewer.namespace);
        let lp = ListParams::default().fields(&format!("involvedObject.kind=Proposal,involvedObject.name={name}"));
        api.list(&lp).await.map(|l| l.items).unwrap_or_default()
    }

    /// Sends `decision` on the proposal as it is now, after checking it is still what the page
    /// showed (the revision is its resourceVersion; the digest is also tested by the patch).
    async fn decide(&self, req: &DecisionRequest, decision: Decision) -> Result<Proposal, UiError> {
        let p = self.proposal(&req.id).await?;
        if revision_of(&p) != req.revision || p.spec.digest != req.digest {
            return Err(UiError::Stale {
                id: req.id.clone(),
                phase: effective_phase(&p).to_string(),
            });
        }
        send_decision(&self.api(), &p, &decision).await.map_err(|e| match e {
            DecisionError::NotFound => UiError::NotFound {
                message: format!("proposal {:?} was deleted; nothing was decided", req.id),
            },
            DecisionError::ChangedSinceReview => UiError::Stale {
                id: req.id.clone(),
                phase: "another object".into(),
            },
            // The webhook's refusal, verbatim: it says why (RBAC, the proposer, expired, ...).
            DecisionError::Refused { message } => UiError::Refused {
                code: "DECISION_REFUSED",
                message,
            },
            e @ DecisionError::WebhookMissing { .. } => UiError::Refused {
                code: "WEBHOOK_MISSING",
                message: e.to_string(),
            },
            DecisionError::Unreachable(e) => read_error(e, &self.reviewer.namespace),
        })
    }
}

/// The page's revision of a proposal: its resourceVersion, which changes on every write.
fn revision_of(p: &Proposal) -> String {
    p.metadata.resource_version.clone().unwrap_or_default()
}

fn expired(p: &Proposal, now_ms: i64) -> bool {
    parse_rfc3339_ms(&p.spec.expires_at).is_some_and(|at| at <= now_ms)
}

/// What a failed read means to a reviewer.
fn read_error(e: kube::Error, namespace: &str) -> UiError {
    match e {
        kube::Error::Api(s) if s.code == 404 => UiError::Unavailable {
            code: "PROPOSAL_CRD_MISSING",
            message: "the cluster does not serve proposals.runner.synapsor.ai: install the CRD (the synapsor-runner Helm chart, or kubectl apply -f crds/)".into(),
        },
        kube::Error::Api(s) if s.code == 401 || s.code == 403 => UiError::Unavailable {
            code: "KUBERNETES_FORBIDDEN",
            message: format!(
                "your kubeconfig's user may not read proposals in namespace {namespace}: {}",
                api_message(&s)
            ),
        },
        kube::Error::Api(s) => UiError::Unavailable {
            code: "KUBERNETES_API_ERROR",
            message: api_message(&s),
        },
        other => UiError::Unavailable {
            code: "KUBERNETES_UNREACHABLE",
            message: format!("cannot reach the Kubernetes API server: {other}"),
        },
    }
}

/// Watches the namespace's proposals for as long as the UI runs and sends the name of each one
/// that changed ([`ALL_CHANGED`] after a (re)list). The watcher re-lists and retries with
/// backoff on its own; an error is logged, never fatal.
async fn watch_proposals(api: Api<Proposal>, changes: broadcast::Sender<String>) {
    use kube::runtime::WatchStreamExt;
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    futures::pin_mut!(stream);
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(watcher::Event::Apply(p) | watcher::Event::Delete(p)) => {
                // No page open is no error.
                let _ = changes.send(p.metadata.name.unwrap_or_default());
            }
            Ok(watcher::Event::InitDone) => {
                let _ = changes.send(ALL_CHANGED.to_owned());
            }
            Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
            Err(e) => tracing::warn!("the proposal watch failed, retrying: {e}"),
        }
    }
}

impl ReviewSource for ClusterProposals {
    fn describe(&self) -> String {
        let ctx = self
            .reviewer
            .context
            .as_deref()
            .map(|c| format!(", context {c}"))
            .unwrap_or_default();
        format!("proposals in namespace {}{ctx}", self.reviewer.namespace)
    }

    fn phases(&self) -> Vec<String> {
        Phase::ALL.iter().map(|p| p.as_str().to_owned()).collect()
    }

    fn changes(&self) -> Option<broadcast::Receiver<String>> {
        Some(self.changes.subscribe())
    }

    async fn list(&self, filter: ListFilter) -> Result<Vec<ListItem>, UiError> {
        let phase = match filter.phase.as_deref() {
            None => None,
            Some(p) => Some(review::parse_phase(p).ok_or_else(|| UiError::Input {
                code: "INVALID_PHASE",
                message: format!("unknown phase {p:?}"),
            })?),
        };
        let items = self
            .api()
            .list(&ListParams::default())
            .await
            .map_err(|e| read_error(e, &self.reviewer.namespace))?
            .items;
        let now = SystemClock.now_ms();
        let mut rows: Vec<ListItem> = items
            .iter()
            .filter(|p| phase.is_none_or(|ph| effective_phase(p) == ph))
            .filter(|p| filter.capability.as_ref().is_none_or(|c| &p.spec.capability == c))
            .filter(|p| filter.tenant.as_ref().is_none_or(|t| &p.spec.tenant == t))
            .map(|p| ListItem {
                id: p.metadata.name.clone().unwrap_or_default(),
                phase: effective_phase(p).to_string(),
                capability: p.spec.capability.clone(),
                tenant: p.spec.tenant.clone(),
                proposer: p.spec.principal.id.clone(),
                object: format!("{}:{}", p.spec.target.business_object, p.spec.target.object_id),
                change: if digest_is_intact(p) {
                    Review::from_change_set(&p.spec.to_change_set()).change_summary()
                } else {
                    String::new()
                },
                created_at: p.spec.created_at.clone(),
                needs_attention: effective_phase(p) == Phase::Pending && !expired(p, now),
            })
            .collect();
        rows.sort_by(|a, b| (&b.created_at, &b.id).cmp(&(&a.created_at, &a.id)));
        rows.truncate(usize::try_from(filter.limit).unwrap_or(usize::MAX));
        Ok(rows)
    }

    async fn get(&self, id: String) -> Result<ReviewPage, UiError> {
        let p = self.proposal(&id).await?;
        let events = self.events(&id).await;
        let phase = effective_phase(&p);
        let intact = digest_is_intact(&p);
        let open = phase == Phase::Pending && !expired(&p, SystemClock.now_ms());
        let actions = Actions {
            approve: open && intact,
            approve_note: false,
            reject: open,
            apply: false,
        };
        let acting_as = if actions.approve || actions.reject {
            Ok(match &self.reviewer.acting_as {
                // The kubeconfig's name for the user; the webhook records who the API server
                // says it is.
                Some(user) => format!("{user} (your kubeconfig)"),
                None => "the user of your kubeconfig".into(),
            })
        } else {
            Err(UiError::Unsupported {
                what: "a decision".into(),
            })
        };
        let apply_note = matches!(phase, Phase::Pending | Phase::Approved | Phase::Applying | Phase::Failed).then(|| {
            format!(
                "synapsor-controller applies it, with its guards, once {} approval(s) are verified; this page updates when it does.",
                p.spec.required_approvals
            )
        });
        Ok(ReviewPage {
            review: review::review(&p, &events),
            revision: revision_of(&p),
            digest_verified: intact,
            managed_elsewhere: None,
            actions,
            acting_as,
            apply_command: None,
            apply_note,
        })
    }

    async fn approve(&self, req: DecisionRequest) -> Result<Done, UiError> {
        let after = self.decide(&req, Decision::Approve).await?;
        let recorded = review::recorded_approvals(&after).len();
        Ok(
            if recorded >= usize::try_from(after.spec.required_approvals).unwrap_or(usize::MAX) {
                Done::Approved
            } else {
                Done::ApprovalRecorded
            },
        )
    }

    async fn reject(&self, req: DecisionRequest) -> Result<Done, UiError> {
        let reason = req.reason.clone().unwrap_or_default();
        self.decide(&req, Decision::Reject(reason)).await?;
        Ok(Done::Rejected)
    }
}
