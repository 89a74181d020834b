//! The tool-call path: one reviewed capability call from arguments to envelope.
//!
//! Order of checks: capability exists and is exposed in this mode → arguments (reserved, unknown,
//! types, bounds) → trusted context, from the environment or from the caller's verified token →
//! rate limits (nothing is read or recorded for a refused call) → scoped read on the pooled source →
//! exact tenant re-check of the row → evidence and query audit in the ledger → for proposals, the
//! patch, its guards and the change set, stored (or the identical pending one returned). Nothing
//! here writes to the source database.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use indexmap::IndexMap;
use serde_json::{Map, Value, json};
use synapsor_core::capability::{self, Caller, Capability, TrustedContext};
use synapsor_core::changeset::{ChangeSet, ChangeSetInput, EvidenceRef};
use synapsor_core::config::{CapabilityKind, Executor, Mode, ResultFormat, RunnerConfig};
use synapsor_core::digest::digest_value;
use synapsor_core::envelope::ToolOutcome;
use synapsor_core::{ToolCode, ToolError};
use synapsor_ledger::{EvidenceRecord, Ledger, LedgerError, ProposalInsert, QueryAuditRecord};
use synapsor_source::{LookupValue, ScopedRead, SourceDb, open_source};

use synapsor_core::context::{Clock, Env};

use crate::ids::IdGen;
use crate::kube_store::ProposalPublisher;
use crate::rate_limit::RateLimiter;

/// Everything a tool call needs, built once.
#[derive(Debug, Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: RunnerConfig,
    capabilities: IndexMap<String, Capability>,
    sources: HashMap<String, Arc<dyn SourceDb>>,
    ledger: Ledger,
    env: Arc<dyn Env>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGen>,
    result_format: ResultFormat,
    publisher: Option<Arc<dyn ProposalPublisher>>,
    limiter: RateLimiter,
}

/// A source that could not be opened (its URL variable is missing): calls on it fail with that
/// error rather than preventing the whole server from starting.
#[derive(Debug)]
struct UnavailableSource(ToolError, synapsor_core::config::Engine);

impl SourceDb for UnavailableSource {
    fn engine(&self) -> synapsor_core::config::Engine {
        self.1
    }
    fn read_scoped<'a>(
        &'a self,
        _read: &'a ScopedRead<'a>,
    ) -> synapsor_core::context::BoxFuture<'a, Result<synapsor_source::ReadResult, ToolError>> {
        Box::pin(async move { Err(self.0.clone()) })
    }
    fn ping(&self) -> synapsor_core::context::BoxFuture<'_, Result<(), ToolError>> {
        Box::pin(async move { Err(self.0.clone()) })
    }
}

/// Options for [`Runtime::new`].
#[derive(Debug)]
pub struct RuntimeDeps {
    pub ledger: Ledger,
    pub env: Arc<dyn Env>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGen>,
    /// Overrides the config's `result_format`.
    pub result_format: Option<ResultFormat>,
    /// Where review proposals are published (Kubernetes mode); `None`: the ledger only.
    pub publisher: Option<Arc<dyn ProposalPublisher>>,
}

impl Runtime {
    /// Compiles the capabilities and opens (lazily) a pool per source.
    pub fn new(config: RunnerConfig, deps: RuntimeDeps) -> Result<Runtime, ToolError> {
        let capabilities: IndexMap<String, Capability> = capability::compile(&config)?
            .into_iter()
            .map(|c| (c.name.clone(), c))
            .collect();
        let mut sources: HashMap<String, Arc<dyn SourceDb>> = HashMap::new();
        for (name, source) in &config.sources {
            let db: Arc<dyn SourceDb> = match open_source(name, source, &*deps.env) {
                Ok(db) => Arc::from(db),
                Err(e) => Arc::new(UnavailableSource(e, source.engine)),
            };
            sources.insert(name.clone(), db);
        }
        let result_format = deps.result_format.or(config.result_format).unwrap_or(ResultFormat::V1);
        let limiter = RateLimiter::new(
            config.rate_limits.as_ref().and_then(|r| r.per_tenant),
            capabilities.values(),
        );
        Ok(Runtime {
            inner: Arc::new(Inner {
                config,
                capabilities,
                sources,
                ledger: deps.ledger,
                env: deps.env,
                clock: deps.clock,
                ids: deps.ids,
                result_format,
                publisher: deps.publisher,
                limiter,
            }),
        })
    }

    pub fn config(&self) -> &RunnerConfig {
        &self.inner.config
    }

    pub fn result_format(&self) -> ResultFormat {
        self.inner.result_format
    }

    pub fn ledger(&self) -> &Ledger {
        &self.inner.ledger
    }

    /// The capabilities exposed as tools in this mode (reads only in `read_only`).
    pub fn exposed(&self) -> impl Iterator<Item = &Capability> {
        let read_only = self.inner.config.mode == Mode::ReadOnly;
        self.inner
            .capabilities
            .values()
            .filter(move |c| !read_only || c.kind == CapabilityKind::Read)
    }

    pub fn capability(&self, name: &str) -> Option<&Capability> {
        self.inner.capabilities.get(name)
    }

    pub fn source(&self, name: &str) -> Option<&Arc<dyn SourceDb>> {
        self.inner.sources.get(name)
    }

    /// The trusted context a capability runs as for `caller`: from the runner's environment, or
    /// from the caller's verified token for `jwt` contexts.
    pub fn resolve_context(&self, cap: &Capability, caller: &Caller) -> Result<TrustedContext, ToolError> {
        capability::resolve_context(&cap.context, &*self.inner.env, caller)
    }

    /// Calls a tool and shapes the envelope: `(envelope, is_error)`.
    pub async fn call_envelope(&self, name: &str, args: &Value, caller: &Caller) -> (Value, bool) {
        self.call(name, args, caller).await.render(self.inner.result_format)
    }

    /// Calls a tool for `caller`. Never panics and never returns driver text.
    pub async fn call(&self, name: &str, args: &Value, caller: &Caller) -> ToolOutcome {
        let Some(cap) = self
            .capability(name)
            .filter(|c| self.exposed().any(|e| e.name == c.name))
        else {
            let (code, msg) = match self.capability(name) {
                Some(_) => (
                    ToolCode::ProposalsDisabled,
                    format!("{name} is a proposal tool and the runner is in read_only mode"),
                ),
                None => (
                    ToolCode::CapabilityNotFound,
                    format!(
                        "no reviewed capability is named {:?}",
                        name.chars().take(80).collect::<String>()
                    ),
                ),
            };
            return ToolOutcome::Error {
                capability: name.chars().take(80).collect(),
                kind: None,
                error: ToolError::new(code, msg),
                context: None,
            };
        };
        let mut context = None;
        match self.call_capability(cap, args, caller, &mut context).await {
            Ok(outcome) => outcome,
            Err(error) => {
                tracing::info!(capability = %cap.name, code = error.code.as_str(), "tool call refused");
                ToolOutcome::Error {
                    capability: cap.name.clone(),
                    kind: Some(cap.kind),
                    error,
                    context,
                }
            }
        }
    }

    async fn call_capability(
        &self,
        cap: &Capability,
        args: &Value,
        caller: &Caller,
        context_out: &mut Option<TrustedContext>,
    ) -> Result<ToolOutcome, ToolError> {
        let inner = &self.inner;
        let checked = cap.check_args(args)?;
        let ctx = self.resolve_context(cap, caller)?;
        *context_out = Some(ctx.clone());
        inner.limiter.admit(&ctx.tenant_id, &cap.name)?;
        let source = self
            .source(&cap.source)
            .ok_or_else(|| ToolError::new(ToolCode::Internal, format!("source {} is not open", cap.source)))?;
        let lookup = checked
            .values
            .get(&cap.lookup_arg)
            .and_then(LookupValue::from_json)
            .ok_or_else(|| {
                ToolError::new(
                    ToolCode::ArgumentRequired,
                    format!("argument {} is required", cap.lookup_arg),
                )
            })?;
        let read = ScopedRead {
            spec: &cap.read,
            id: lookup.clone(),
            tenant: Some(ctx.tenant_id.as_str()),
            principal: Some(ctx.principal.as_str()),
        };
        let fingerprint = digest_value(&json!({
            "source": cap.source,
            "target": cap.target_name(),
            "columns": cap.read.columns.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
            "tenant_bound": cap.read.tenant_key.is_some(),
            "principal_bound": cap.read.principal_key.is_some(),
        }));
        let started = Instant::now();
        let result = source.read_scoped(&read).await;
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        let now = inner.clock.now_rfc3339();
        let mut audit = QueryAuditRecord {
            evidence_bundle_id: None,
            proposal_id: None,
            capability: cap.name.clone(),
            tenant_id: ctx.tenant_id.clone(),
            principal: ctx.principal.clone(),
            source_id: cap.source.clone(),
            query_fingerprint: fingerprint.clone(),
            statement_template: cap.read.statement_template(),
            row_count: 0,
            duration_ms,
            outcome: "ok".into(),
            created_at: now.clone(),
        };
        // Engines compare loosely (case-insensitive and width-insensitive collations, trailing
        // spaces, numeric coercion); the row must carry exactly the key asked for and the trusted
        // tenant (and principal), or it is treated as absent.
        let row = match result {
            Ok(Some(row)) if row_in_scope(cap, &row, &ctx) && key_is_exactly(cap, &row, &lookup) => row,
            Ok(_) => {
                audit.outcome = ToolCode::RowNotFound.as_str().into();
                self.audit_only(audit).await?;
                return Err(ToolError::new(
                    ToolCode::RowNotFound,
                    format!("no {} row with this id in the trusted tenant", cap.read.table),
                ));
            }
            Err(e) => {
                audit.outcome = e.code.as_str().into();
                // A failed query is still audited; a store failure here must not hide the source error.
                let _ = self.audit_only(audit).await;
                return Err(e);
            }
        };
        audit.row_count = 1;
        let object_id = checked.lookup_id.clone();
        let evidence_id = inner.ids.new_id("ev_");
        audit.evidence_bundle_id = Some(evidence_id.clone());
        let visible = cap.visible_row(&row);
        let mut evidence = EvidenceRecord {
            evidence_bundle_id: evidence_id.clone(),
            proposal_id: None,
            capability: cap.name.clone(),
            tenant_id: ctx.tenant_id.clone(),
            principal: ctx.principal.clone(),
            source_id: cap.source.clone(),
            target: cap.target_name(),
            object_id: object_id.clone(),
            query_fingerprint: fingerprint.clone(),
            items: vec![json!({
                "kind": "external_row",
                "table": cap.target_name(),
                "primary_key": {"column": cap.read.primary_key.as_str(), "value": row.get(cap.read.primary_key.as_str())},
                "tenant": cap.read.tenant_key.as_ref().map(|t| json!({"column": t.as_str(), "value": ctx.tenant_id})),
                "principal": cap.read.principal_key.as_ref().map(|p| json!({"column": p.as_str(), "value": ctx.principal})),
                "visible_row": visible,
                "binding_provenance": ctx.provenance.as_str(),
                "identity": ctx.identity,
            })],
            created_at: now.clone(),
        };

        if cap.kind == CapabilityKind::Read {
            inner.ledger.record_read(evidence, audit).await.map_err(store_error)?;
            return Ok(ToolOutcome::Read {
                capability: cap.name.clone(),
                table: cap.read.table.as_str().to_owned(),
                object_id,
                data: visible,
                context: ctx,
                evidence_bundle_id: evidence_id,
            });
        }

        let built = cap.build_patch(&checked, &row)?;
        let cs = ChangeSet::build(ChangeSetInput {
            capability: cap,
            mode: inner.config.mode,
            context: &ctx,
            object_id: &object_id,
            built,
            evidence: EvidenceRef {
                bundle_id: evidence_id.clone(),
                query_fingerprint: fingerprint,
            },
            proposal_id: String::new(),
            created_at: now,
        });
        // Ids derive from the digest, so an identical change gets the same id (the ledger suffixes
        // it when an earlier proposal with that id was already decided).
        let hex = cs.digest.trim_start_matches("sha256:");
        let cs = ChangeSet {
            proposal_id: format!("wrp_{}", &hex[..20.min(hex.len())]),
            ..cs
        };
        evidence
            .items
            .push(json!({"kind": "proposal_diff", "before": cs.before, "patch": cs.patch, "after": cs.after}));
        let published_evidence = inner.publisher.as_ref().map(|_| evidence.clone());
        let (record, existing) = match inner
            .ledger
            .record_proposal(evidence, audit, cs)
            .await
            .map_err(store_error)?
        {
            ProposalInsert::Created(r) => (r, false),
            ProposalInsert::Existing(r) => (r, true),
        };
        // Kubernetes mode: mark the ledger row as a mirror first (so it is never decided
        // locally, even if publishing fails), then publish (again, for a repeated call whose
        // earlier publish failed; the object is named after the proposal id, so this never
        // creates a second one). Shadow proposals are never applied and stay local.
        if let (Some(publisher), Some(evidence)) = (&inner.publisher, &published_evidence)
            && record.change_set.mode != "shadow"
        {
            let by = publisher.reference(&record.change_set);
            let (id, now) = (record.change_set.proposal_id.clone(), inner.clock.now_rfc3339());
            inner
                .ledger
                .with_store(move |s| s.set_managed_by(&id, &by, &now))
                .await
                .map_err(store_error)?;
            publisher
                .publish(&record.change_set, evidence, inner.clock.now_ms())
                .await?;
        }
        Ok(ToolOutcome::Proposal {
            change_set: Box::new(record.change_set),
            existing,
            context: ctx,
            evidence_bundle_id: evidence_id,
            writeback_mode: self.writeback_mode(cap),
        })
    }

    async fn audit_only(&self, audit: QueryAuditRecord) -> Result<(), ToolError> {
        self.inner.ledger.record_query_audit(audit).await.map_err(store_error)
    }

    /// `direct_update` for `sql_update`, `app_handler` for handler executors.
    pub fn writeback_mode(&self, cap: &Capability) -> &'static str {
        match self.inner.config.executors.get(&cap.executor) {
            Some(Executor::HttpHandler { .. } | Executor::CommandHandler { .. }) => "app_handler",
            _ => "direct_update",
        }
    }
}

/// The row's primary key is exactly the value looked up: MariaDB's collations find `INV-1` for
/// `inv-1`, `INV-1 ` or `INV-１`, and the evidence must name the row that was read.
fn key_is_exactly(cap: &Capability, row: &Map<String, Value>, lookup: &LookupValue) -> bool {
    match (row.get(cap.read.primary_key.as_str()), lookup) {
        (Some(Value::Number(n)), LookupValue::Integer(i)) => n.as_i64() == Some(*i),
        (Some(Value::Number(n)), LookupValue::Float(f)) => n.as_f64() == Some(*f),
        (Some(Value::String(s)), l) => *s == l.as_text(),
        (Some(Value::Number(n)), l) => n.to_string() == l.as_text(),
        _ => false,
    }
}

/// The row carries exactly the trusted tenant, and the trusted principal when the capability
/// is scoped to it.
fn row_in_scope(cap: &Capability, row: &Map<String, Value>, ctx: &TrustedContext) -> bool {
    let holds = |key: &Option<synapsor_core::ident::SafeIdent>, expected: &str| match key {
        None => true,
        Some(k) => match row.get(k.as_str()) {
            Some(Value::String(s)) => s == expected,
            Some(Value::Number(n)) => n.to_string() == expected,
            _ => false,
        },
    };
    holds(&cap.read.tenant_key, &ctx.tenant_id) && holds(&cap.read.principal_key, &ctx.principal)
}

fn store_error(e: LedgerError) -> ToolError {
    tracing::warn!(code = e.code(), error = %e, "ledger write failed");
    let code = match e.code() {
        "SECRET_MATERIAL_REJECTED" => ToolCode::SecretMaterialRejected,
        "STORE_UNAVAILABLE" | "STORE_NOT_FOUND" => ToolCode::LocalStoreUnavailable,
        _ => ToolCode::Internal,
    };
    ToolError::new(code, format!("ledger: {}", e.code()))
}
