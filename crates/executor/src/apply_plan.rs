//! The one pre-apply decision: may this approved change set be applied now, under the current
//! reviewed config, and through what?
//!
//! Local `apply` and the Kubernetes controller both call [`plan_apply`] with the config, the
//! compiled capabilities, the change set and the approvals *they* verified (the ledger binds them
//! to the digest; the controller checks the webhook's signatures). It answers with an
//! [`ApplyPlan`] (capability, source, executor, the approvals that count and how many are
//! required) or one [`ApplyRefusal`] with a stable code. Nothing here does IO: no connection is
//! made and no environment variable is read, so a refusal always comes before any state change.
//!
//! What it is not: it does not look at the proposal's lifecycle state (pending, applied, ...),
//! which each caller keeps in its own store, and it does not re-check the patch against bounds,
//! transitions and the row: the executor does that, against the locked row.

use synapsor_core::approval::{distinct_approvers, required_approvals};
use synapsor_core::config::{Mode, RunnerConfig, Source};
use synapsor_core::{Capability, ChangeSet};

use crate::guards::{Refusal, check_capability_matches};
use crate::receipt::WritebackCode;
use crate::{ApplyRequest, Approval, Env, Executor, select_executor};

/// Why an approved change set may not be applied now. Each variant has one stable
/// [`code`](ApplyRefusal::code); the messages say what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyRefusal {
    /// The change set no longer matches its digest: it was modified after it was proposed.
    #[error(
        "{id}: the change set no longer matches its digest; it was modified after it was proposed and can never be applied"
    )]
    DigestMismatch { id: String },

    /// Shadow proposals are recorded for review and never applied.
    #[error("{id} is a shadow proposal: it was recorded for review and is never applied")]
    ShadowProposal { id: String },

    /// The config is in shadow mode.
    #[error(
        "the config is in shadow mode: proposals are recorded for review and never applied; set \"mode\": \"review\" to apply"
    )]
    ShadowMode,

    /// The config is in read_only mode.
    #[error("the config is in read_only mode: there are no proposals to apply; set \"mode\": \"review\" to apply")]
    ReadOnlyMode,

    /// The capability the change set was proposed through is no longer in the reviewed config.
    #[error("{id} was proposed through {capability}, which is no longer in the reviewed config; it cannot be applied")]
    CapabilityRemoved { id: String, capability: String },

    /// The capability now targets another source, table, key, tenant key, executor or guard.
    #[error("{}", .0.message)]
    CapabilityChanged(Refusal),

    /// Fewer distinct approvers than the change set and the current config require.
    #[error("{id} has {have} of the {required} approvals the reviewed config requires now")]
    ApprovalsInsufficient { id: String, have: usize, required: usize },

    /// The capability names an executor the config does not define.
    #[error("executor {name} is not defined in the config")]
    UnknownExecutor { name: String },

    /// The capability's source is no longer in the config.
    #[error("source {source_name} is no longer in the config")]
    SourceRemoved { source_name: String },

    /// The source is marked `read_only`, and the runner's own SQL would write it.
    #[error("source {source_name} is marked read_only in the config; nothing was changed")]
    SourceReadOnly { source_name: String },
}

impl ApplyRefusal {
    /// The code; where an executor refuses the same thing (it re-checks what it can), the
    /// executor's [`WritebackCode`] is the one code for both.
    pub fn code(&self) -> &'static str {
        match self {
            ApplyRefusal::DigestMismatch { .. } => WritebackCode::ChangeSetDigestMismatch.as_str(),
            ApplyRefusal::ShadowProposal { .. } | ApplyRefusal::ShadowMode => WritebackCode::ShadowProposal.as_str(),
            ApplyRefusal::ReadOnlyMode => "READ_ONLY_WRITEBACK_DISABLED",
            ApplyRefusal::CapabilityRemoved { .. } | ApplyRefusal::SourceRemoved { .. } => {
                WritebackCode::CapabilityChanged.as_str()
            }
            ApplyRefusal::CapabilityChanged(r) => r.code.as_str(),
            ApplyRefusal::ApprovalsInsufficient { .. } => "APPROVALS_INSUFFICIENT",
            ApplyRefusal::UnknownExecutor { .. } => WritebackCode::UnknownExecutor.as_str(),
            ApplyRefusal::SourceReadOnly { .. } => WritebackCode::SourceReadOnly.as_str(),
        }
    }

    /// True when nothing can ever make this change set applicable (no config change, no further
    /// approval): the caller closes the proposal instead of keeping it for a retry.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            ApplyRefusal::DigestMismatch { .. } | ApplyRefusal::ShadowProposal { .. }
        )
    }
}

/// How an approved change set is applied.
#[derive(Debug)]
pub struct ApplyPlan<'a> {
    /// The capability compiled from the *current* reviewed config.
    pub capability: &'a Capability,
    pub source: &'a Source,
    pub executor: Box<dyn Executor>,
    /// The approvals that count (sent to app-owned handlers) and how many were required.
    pub quorum: Quorum,
}

impl<'a> ApplyPlan<'a> {
    /// The executor's request for `change_set` (the one this plan was made for).
    pub fn request<'r>(
        &'r self,
        change_set: &'r ChangeSet,
        env: &'r dyn Env,
        executed_at: String,
        dry_run: bool,
    ) -> ApplyRequest<'r> {
        ApplyRequest {
            change_set,
            capability: self.capability,
            source_name: &self.capability.source,
            source: self.source,
            env,
            executed_at,
            dry_run,
            approvals: self.quorum.approvals.clone(),
        }
    }
}

/// Checks that don't depend on the capability: the change set is intact and not a shadow
/// proposal, and the config is in review mode. Local `apply` makes them first, before it looks
/// at the proposal's state, so that an apply in a config that disables writeback says so.
pub fn check_writeback_enabled(cfg: &RunnerConfig, cs: &ChangeSet) -> Result<(), ApplyRefusal> {
    let id = || cs.proposal_id.clone();
    if !cs.digest_is_intact() {
        return Err(ApplyRefusal::DigestMismatch { id: id() });
    }
    if cs.mode == "shadow" {
        return Err(ApplyRefusal::ShadowProposal { id: id() });
    }
    match cfg.mode {
        Mode::Review => Ok(()),
        Mode::Shadow => Err(ApplyRefusal::ShadowMode),
        Mode::ReadOnly => Err(ApplyRefusal::ReadOnlyMode),
    }
}

/// The approvals that count towards a change set, and how many it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Quorum {
    /// One per person, never the proposing principal, in order.
    pub approvals: Vec<Approval>,
    /// [`required_approvals`] of the change set and the current capability.
    pub required: usize,
}

impl Quorum {
    /// Counts `verified` (approvals the caller verified as bound to `cs.digest`) towards `cs`.
    /// `capabilities` is the current reviewed config's: its `required_approvals` raises the
    /// change set's own.
    pub fn of(capabilities: &[Capability], cs: &ChangeSet, verified: &[Approval]) -> Quorum {
        let current = capabilities
            .iter()
            .find(|c| c.name == cs.action)
            .map(|c| c.required_approvals);
        Quorum {
            approvals: distinct_approvers(verified.iter().cloned(), &cs.principal.id, |a| a.approver.as_str()),
            required: required_approvals(cs.approval.required_approvals, current),
        }
    }

    pub fn reached(&self) -> bool {
        self.approvals.len() >= self.required
    }

    /// `approvals/required`, as the controller writes it to status.
    pub fn summary(&self) -> String {
        format!("{}/{}", self.approvals.len().min(self.required), self.required)
    }
}

/// Decides whether `cs` may be applied now, in this order: [`check_writeback_enabled`]; the
/// capability is still in the config and still matches the change set
/// ([`check_capability_matches`]); a [`Quorum`] of `verified` approvals;
/// the executor is defined; the source exists and, for `sql_update`, is not `read_only` (an
/// app-owned handler does the write itself, which is what such sources are for).
///
/// `verified` holds the approvals the caller verified as bound to `cs.digest`.
pub fn plan_apply<'a>(
    cfg: &'a RunnerConfig,
    capabilities: &'a [Capability],
    cs: &ChangeSet,
    verified: &[Approval],
) -> Result<ApplyPlan<'a>, ApplyRefusal> {
    check_writeback_enabled(cfg, cs)?;
    let capability =
        capabilities
            .iter()
            .find(|c| c.name == cs.action)
            .ok_or_else(|| ApplyRefusal::CapabilityRemoved {
                id: cs.proposal_id.clone(),
                capability: cs.action.clone(),
            })?;
    check_capability_matches(cs, capability).map_err(ApplyRefusal::CapabilityChanged)?;
    let quorum = Quorum::of(capabilities, cs, verified);
    if !quorum.reached() {
        return Err(ApplyRefusal::ApprovalsInsufficient {
            id: cs.proposal_id.clone(),
            have: quorum.approvals.len(),
            required: quorum.required,
        });
    }
    let executor = select_executor(cfg, capability).map_err(|_| ApplyRefusal::UnknownExecutor {
        name: capability.executor.clone(),
    })?;
    let source = cfg
        .sources
        .get(&capability.source)
        .ok_or_else(|| ApplyRefusal::SourceRemoved {
            source_name: capability.source.clone(),
        })?;
    if source.read_only && executor.name() == "sql_update" {
        return Err(ApplyRefusal::SourceReadOnly {
            source_name: capability.source.clone(),
        });
    }
    Ok(ApplyPlan {
        capability,
        source,
        executor,
        quorum,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::{Map, Value, json};
    use synapsor_core::capability::{Provenance, compile};
    use synapsor_core::changeset::{ChangeSetInput, EvidenceRef};
    use synapsor_core::config::parse_config;
    use synapsor_core::{Capability, TrustedContext};

    use super::*;

    /// A review-mode config with one proposal capability; `edit` changes the document first.
    fn config(edit: impl FnOnce(&mut Value)) -> (RunnerConfig, Vec<Capability>) {
        let mut doc = json!({
            "version": 1, "mode": "review",
            "sources": {"main": {"engine": "postgres", "read_url_env": "READ_URL", "write_url_env": "WRITE_URL"}},
            "trusted_context": {"provider": "environment"},
            "executors": {"app": {"type": "http_handler", "url_env": "APP_URL", "signing_secret_env": "APP_SECRET"}},
            "capabilities": [{
                "name": "billing.propose_fee", "kind": "proposal", "source": "main",
                "description": "Propose a fee.",
                "target": {"schema": "public", "table": "invoices", "primary_key": "id", "tenant_key": "tenant_id"},
                "args": {"invoice_id": {"type": "string"}, "fee": {"type": "number"}},
                "lookup": {"id_from_arg": "invoice_id"},
                "visible_columns": ["id", "fee"],
                "patch": {"fee": {"from_arg": "fee"}},
                "allowed_columns": ["fee"],
                "conflict_guard": {"column": "updated_at"}
            }]
        });
        edit(&mut doc);
        let (cfg, _) = parse_config(&doc.to_string()).unwrap_or_else(|r| panic!("{:?}", r.errors));
        let caps = compile(&cfg).unwrap();
        (cfg, caps)
    }

    fn change_set(cap: &Capability, mode: Mode) -> ChangeSet {
        let row: Map<String, Value> =
            json!({"id": "INV-1", "tenant_id": "acme", "fee": 100, "updated_at": "2026-06-23T09:00:00Z"})
                .as_object()
                .unwrap()
                .clone();
        let args = cap.check_args(&json!({"invoice_id": "INV-1", "fee": 250})).unwrap();
        ChangeSet::build(ChangeSetInput {
            capability: cap,
            mode,
            context: &TrustedContext {
                tenant_id: "acme".into(),
                principal: "agent".into(),
                provenance: Provenance::Environment,
                identity: None,
            },
            object_id: "INV-1",
            built: cap.build_patch(&args, &row).unwrap(),
            evidence: EvidenceRef {
                bundle_id: "ev_1".into(),
                query_fingerprint: "q".into(),
            },
            proposal_id: "wrp_1".into(),
            created_at: "2026-06-23T09:00:00.000Z".into(),
        })
    }

    fn approvals(who: &[&str]) -> Vec<Approval> {
        who.iter()
            .map(|w| Approval {
                approver: (*w).to_owned(),
                approved_at: "2026-06-23T09:01:00.000Z".into(),
            })
            .collect()
    }

    /// The code of `plan_apply` on the change set proposed under the unedited config, with the
    /// config edited by `edit_config` and the change set by `edit_cs`.
    fn refusal(
        edit_config: impl FnOnce(&mut Value),
        edit_cs: impl FnOnce(&mut ChangeSet),
        who: &[&str],
    ) -> Option<&'static str> {
        let (_, caps) = config(|_| {});
        let mut cs = change_set(&caps[0], Mode::Review);
        edit_cs(&mut cs);
        let (cfg, caps) = config(edit_config);
        plan_apply(&cfg, &caps, &cs, &approvals(who)).err().map(|r| r.code())
    }

    #[test]
    fn each_refusal_has_one_code() {
        let none = |_: &mut Value| {};
        let keep = |_: &mut ChangeSet| {};
        let table: Vec<(&str, Option<&str>)> = vec![
            ("approved, unchanged config", refusal(none, keep, &["alice"])),
            (
                "edited after it was proposed",
                refusal(none, |cs| cs.patch["fee"] = json!(9999), &["alice"]),
            ),
            (
                "shadow proposal",
                refusal(
                    none,
                    |cs| {
                        cs.mode = "shadow".into();
                        cs.digest = cs.compute_digest();
                    },
                    &["alice"],
                ),
            ),
            (
                "shadow config",
                refusal(|d| d["mode"] = json!("shadow"), keep, &["alice"]),
            ),
            (
                "read_only config",
                refusal(
                    |d| {
                        d["mode"] = json!("read_only");
                        d.as_object_mut().unwrap().remove("executors");
                    },
                    keep,
                    &["alice"],
                ),
            ),
            (
                "capability removed",
                refusal(
                    |d| d["capabilities"][0]["name"] = json!("billing.other"),
                    keep,
                    &["alice"],
                ),
            ),
            (
                "capability moved to another table",
                refusal(
                    |d| d["capabilities"][0]["target"]["table"] = json!("bills"),
                    keep,
                    &["alice"],
                ),
            ),
            ("no approval", refusal(none, keep, &[])),
            (
                "more approvals required now",
                refusal(
                    |d| d["capabilities"][0]["approval"] = json!({"required_approvals": 2}),
                    keep,
                    &["alice"],
                ),
            ),
        ];
        let want = [
            None,
            Some("CHANGE_SET_DIGEST_MISMATCH"),
            Some("SHADOW_WRITEBACK_DISABLED"),
            Some("SHADOW_WRITEBACK_DISABLED"),
            Some("READ_ONLY_WRITEBACK_DISABLED"),
            Some("CAPABILITY_CHANGED"),
            Some("CAPABILITY_CHANGED"),
            Some("APPROVALS_INSUFFICIENT"),
            Some("APPROVALS_INSUFFICIENT"),
        ];
        for ((case, got), want) in table.into_iter().zip(want) {
            assert_eq!(got, want, "{case}");
        }
    }

    #[test]
    fn codes_of_refusals_a_valid_config_cannot_produce() {
        // The validator refuses these (a read_only source written by sql_update, an unknown
        // executor, a missing source); plan_apply still refuses them on a config that was built
        // some other way.
        let (mut cfg, caps) = config(|_| {});
        let cs = change_set(&caps[0], Mode::Review);
        cfg.sources.get_mut("main").unwrap().read_only = true;
        let refused = plan_apply(&cfg, &caps, &cs, &approvals(&["alice"])).unwrap_err();
        assert_eq!(refused.code(), "SOURCE_READ_ONLY");
        let gone = ApplyRefusal::SourceRemoved {
            source_name: "main".into(),
        };
        assert_eq!(gone.code(), "CAPABILITY_CHANGED");
        let unknown = ApplyRefusal::UnknownExecutor { name: "app".into() };
        assert_eq!(unknown.code(), "UNKNOWN_EXECUTOR");
        assert!(!gone.is_permanent() && !unknown.is_permanent());
    }

    #[test]
    fn a_handler_may_write_a_read_only_source_and_gets_the_counted_approvals() {
        let (_, caps) = config(|d| d["capabilities"][0]["executor"] = json!("app"));
        let cs = change_set(&caps[0], Mode::Review);
        let (cfg, caps) = config(|d| {
            d["capabilities"][0]["executor"] = json!("app");
            d["sources"]["main"]["read_only"] = json!(true);
        });
        let plan = plan_apply(&cfg, &caps, &cs, &approvals(&["alice", "Alice", "agent", "bob"])).unwrap();
        assert_eq!(plan.executor.name(), "app");
        let who: Vec<&str> = plan.quorum.approvals.iter().map(|a| a.approver.as_str()).collect();
        assert_eq!(who, ["alice", "bob"], "one per person, never the proposing principal");
        assert_eq!((plan.quorum.required, plan.quorum.summary()), (1, "1/1".to_owned()));
    }

    #[test]
    fn the_proposer_and_repeats_never_make_a_quorum() {
        let (cfg, caps) = config(|d| d["capabilities"][0]["approval"] = json!({"required_approvals": 2}));
        let cs = change_set(&caps[0], Mode::Review);
        let refused = plan_apply(&cfg, &caps, &cs, &approvals(&["agent", "alice", " ALICE "])).unwrap_err();
        assert_eq!(
            refused,
            ApplyRefusal::ApprovalsInsufficient {
                id: "wrp_1".into(),
                have: 1,
                required: 2
            }
        );
        assert!(plan_apply(&cfg, &caps, &cs, &approvals(&["alice", "bob"])).is_ok());
    }

    #[test]
    fn refusals_the_executor_repeats_share_its_code() {
        let shadow = ApplyRefusal::ShadowProposal { id: "x".into() };
        let json = serde_json::to_string(&WritebackCode::ShadowProposal).unwrap();
        assert_eq!(json, format!("\"{}\"", shadow.code()));
        // Receipts recorded before the codes were unified still parse.
        let old: WritebackCode = serde_json::from_str("\"SHADOW_PROPOSAL\"").unwrap();
        assert_eq!(old, WritebackCode::ShadowProposal);
    }

    #[test]
    fn permanent_refusals_close_the_proposal() {
        assert!(ApplyRefusal::ShadowProposal { id: "x".into() }.is_permanent());
        assert!(ApplyRefusal::DigestMismatch { id: "x".into() }.is_permanent());
        assert!(!ApplyRefusal::ShadowMode.is_permanent());
        assert!(!ApplyRefusal::ReadOnlyMode.is_permanent());
    }
}
