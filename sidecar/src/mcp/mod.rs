//! The MCP surface: one tool per exposed capability, and read-only resources for proposals,
//! evidence and replays, over stdio or Streamable HTTP.
//!
//! There is no tool that runs SQL, approves or applies, ever: the tool list is built only from
//! reviewed capabilities. rmcp does not validate arguments against the advertised schema, so
//! every call goes through [`Runtime::call`], which does.

mod direct;
pub mod http;
mod stdio;

use std::sync::Arc;

use rmcp::ErrorData as McpError;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation, InitializeResult, JsonObject,
    ListResourceTemplatesResult, ListToolsResult, MetaObject, PaginatedRequestParams, ReadResourceRequestParams,
    ReadResourceResponse, ReadResourceResult, ResourceContents, ResourceTemplate, ServerCapabilities, Tool,
    ToolAnnotations,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{ServerHandler, ServiceExt};
use serde_json::{Value, json};
use synapsor_core::capability::Caller;
use synapsor_core::envelope::ToolOutcome;
use synapsor_core::tools::{AliasMode, ToolNames, tool_def};
use synapsor_core::{ToolCode, ToolError};
use synapsor_ledger::LedgerError;

use crate::runtime::Runtime;

const INSTRUCTIONS: &str = "These tools are reviewed business capabilities. Read tools return fixed fields of one \
record of the current account. Proposal tools never change data: they record an exact change that a human \
approves outside this conversation. Branch on `ok`; on NOT_FOUND_IN_TENANT do not guess other ids or accounts; \
on POLICY_VIOLATION do not retry with other values to get around the policy.";

/// The MCP server handler. Cheap to clone (one per HTTP session).
#[derive(Debug, Clone)]
pub struct McpServer {
    runtime: Runtime,
    names: Arc<ToolNames>,
    tools: Arc<Vec<Tool>>,
}

impl McpServer {
    pub fn new(runtime: Runtime, mode: AliasMode) -> McpServer {
        let caps: Vec<_> = runtime.exposed().collect();
        let canonical: Vec<&str> = caps.iter().map(|c| c.name.as_str()).collect();
        let names = ToolNames::build(&canonical, mode);
        let tools = names
            .tools()
            .iter()
            .filter_map(|n| {
                let cap = caps.iter().find(|c| c.name == n.canonical)?;
                let def = tool_def(cap, n, mode);
                let schema = match def.input_schema {
                    Value::Object(o) => o,
                    _ => JsonObject::new(),
                };
                let annotations = ToolAnnotations::new()
                    .read_only(def.annotations.read_only_hint)
                    .destructive(def.annotations.destructive_hint)
                    .idempotent(def.annotations.idempotent_hint)
                    .open_world(def.annotations.open_world_hint);
                Some(
                    Tool::new(def.name, def.description, Arc::new(schema))
                        .with_title(def.title)
                        .with_annotations(annotations)
                        .with_meta(MetaObject(def.meta)),
                )
            })
            .collect();
        McpServer {
            runtime,
            names: Arc::new(names),
            tools: Arc::new(tools),
        }
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    pub fn tools(&self) -> &[Tool] {
        &self.tools
    }

    /// Calls a tool by its exposed name for `caller`, exactly as `tools/call` does.
    pub async fn call(&self, exposed: &str, args: Option<JsonObject>, caller: &Caller) -> CallToolResult {
        // Only listed names resolve: in `openai` mode the canonical names are not callable either.
        let Some(canonical) = self.names.resolve(exposed).map(str::to_owned) else {
            let outcome = ToolOutcome::Error {
                capability: exposed.chars().take(80).collect(),
                kind: None,
                error: ToolError::new(ToolCode::CapabilityNotFound, "no listed tool has this name"),
                context: None,
            };
            let (envelope, _) = outcome.render(self.runtime.result_format());
            return CallToolResult::structured_error(envelope);
        };
        let args = args.map(Value::Object).unwrap_or(Value::Null);
        let (envelope, is_error) = self.runtime.call_envelope(&canonical, &args, caller).await;
        let meta = MetaObject(
            json!({"synapsor.canonical_tool_name": canonical, "synapsor.exposed_tool_name": exposed})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        );
        let result = if is_error {
            CallToolResult::structured_error(envelope)
        } else {
            CallToolResult::structured(envelope)
        };
        result.with_meta(Some(meta))
    }

    /// Reads `synapsor://proposals/{id}`, `synapsor://evidence/{id}` or `synapsor://replay/{id}`,
    /// only within the trusted tenant and principal `caller` has for the capability that produced
    /// it. Anything else, including another tenant's record, is `RESOURCE_NOT_FOUND`. The tenant
    /// and principal themselves are redacted from what is returned: the model never sees them.
    pub async fn read(&self, uri: &str, caller: &Caller) -> Result<Value, McpError> {
        let not_found = || McpError::resource_not_found("RESOURCE_NOT_FOUND", Some(json!({"uri": uri})));
        let rest = uri.strip_prefix("synapsor://").ok_or_else(not_found)?;
        let (kind, id) = rest.split_once('/').ok_or_else(not_found)?;
        if id.is_empty() || id.len() > 128 || !id.chars().all(|c| c.is_ascii_alphanumeric() || "_-.:".contains(c)) {
            return Err(not_found());
        }
        let ledger = self.runtime.ledger();
        let store_err = |e: LedgerError| match e.code() {
            "PROPOSAL_NOT_FOUND" | "EVIDENCE_NOT_FOUND" => not_found(),
            _ => McpError::internal_error("TEMPORARILY_UNAVAILABLE", None),
        };
        let (value, capability, tenant, principal) = match kind {
            "proposals" => {
                let p = ledger.get_proposal(id.to_owned()).await.map_err(store_err)?;
                let cs = &p.change_set;
                let v = json!({"proposal": p, "diff": cs.diff()});
                (
                    v,
                    cs.action.clone(),
                    cs.scope.tenant_id.clone(),
                    cs.principal.id.clone(),
                )
            }
            "evidence" => {
                let b = ledger.evidence(id.to_owned()).await.map_err(store_err)?;
                let e = &b.evidence;
                let meta = (e.capability.clone(), e.tenant_id.clone(), e.principal.clone());
                (json!({"evidence": b}), meta.0, meta.1, meta.2)
            }
            "replay" => {
                let pid = id.strip_prefix("replay_").unwrap_or(id);
                let r = ledger.replay(pid.to_owned()).await.map_err(store_err)?;
                let cs = &r.proposal.change_set;
                let meta = (cs.action.clone(), cs.scope.tenant_id.clone(), cs.principal.id.clone());
                (json!({"replay": r}), meta.0, meta.1, meta.2)
            }
            _ => return Err(not_found()),
        };
        let cap = self.runtime.capability(&capability).ok_or_else(not_found)?;
        let ctx = self.runtime.resolve_context(cap, caller).map_err(|_| not_found())?;
        if ctx.tenant_id != tenant || ctx.principal != principal {
            return Err(not_found());
        }
        let mut value = value;
        redact_trusted(&mut value, &[&tenant, &principal]);
        Ok(value)
    }

    fn info() -> InitializeResult {
        InitializeResult::new(ServerCapabilities::builder().enable_resources().enable_tools().build())
            .with_server_info(Implementation::new("synapsor-runner", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    /// Serves MCP over stdin/stdout until the client disconnects.
    pub async fn serve_stdio(self) -> anyhow::Result<()> {
        let service = self.serve(stdio::transport()).await?;
        service.waiting().await?;
        Ok(())
    }
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> InitializeResult {
        Self::info()
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(self.tools.as_ref().clone()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools.iter().find(|t| t.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        Ok(self
            .call(&request.name, request.arguments, &caller_of(&context))
            .await
            .into())
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        let t = |uri: &str, name: &str, desc: &str| {
            ResourceTemplate::new(uri, name)
                .with_description(desc)
                .with_mime_type("application/json")
        };
        Ok(ListResourceTemplatesResult::with_all_items(vec![
            t(
                "synapsor://proposals/{proposal_id}",
                "proposal",
                "A proposal of this tenant: change set, state, approvals.",
            ),
            t(
                "synapsor://evidence/{evidence_bundle_id}",
                "evidence",
                "What a read saw, and its query audit.",
            ),
            t(
                "synapsor://replay/{replay_id}",
                "replay",
                "Everything recorded about one proposal, in order.",
            ),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let value = self.read(&request.uri, &caller_of(&context)).await?;
        let text = serde_json::to_string_pretty(&value).unwrap_or_default();
        let contents = ResourceContents::TextResourceContents {
            uri: request.uri,
            mime_type: Some("application/json".into()),
            text,
            meta: None,
        };
        Ok(ReadResourceResult::new(vec![contents]).into())
    }
}

/// The caller of a request: the verified session the HTTP layer attached to it, else the
/// runner's own process (stdio, or HTTP with the static token).
fn caller_of(context: &RequestContext<RoleServer>) -> Caller {
    context
        .extensions
        .get::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Caller>())
        .cloned()
        .unwrap_or_default()
}

/// What replaces a trusted value in a resource.
pub const REDACTED: &str = "[trusted context]";

/// Replaces every string (and number written the same) equal to one of `trusted` by
/// [`REDACTED`], wherever it is: scope, guards, the row as read, events.
fn redact_trusted(value: &mut Value, trusted: &[&str]) {
    match value {
        Value::String(s) if trusted.contains(&s.as_str()) => *value = Value::String(REDACTED.into()),
        Value::Number(n) if trusted.contains(&n.to_string().as_str()) => *value = Value::String(REDACTED.into()),
        Value::Array(items) => items.iter_mut().for_each(|v| redact_trusted(v, trusted)),
        Value::Object(map) => map.values_mut().for_each(|v| redact_trusted(v, trusted)),
        _ => {}
    }
}
