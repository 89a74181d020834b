//! The direct path of the stateless Streamable HTTP server: a plain `ping` or `tools/call` POST,
//! the two requests an agent repeats all session long, is answered here instead of through
//! rmcp's service.
//!
//! Without sessions rmcp builds and spawns a whole MCP service for every POST (a large future,
//! moved and polled across worker threads) before the handler runs; for a tool call that is
//! most of what the server spends outside the database and the ledger. The answer made here is
//! the one rmcp makes: the same [`McpServer::call`], its `CallToolResult` shaped for a peer of a
//! revision with `initialize` as rmcp's handler shapes it, serialized as the JSON-RPC `result`,
//! `Content-Type: application/json` (tests compare both paths).
//!
//! Only the exact well-formed shape is taken: one JSON-RPC 2.0 request with an integer or
//! string id; `ping` without params (or `{}`), or `tools/call` with `name` and optional
//! `arguments` and nothing else (no `_meta`, no task); `Accept` naming both `application/json`
//! and `text/event-stream` and `Content-Type: application/json`, as rmcp requires; no SEP-2243
//! `Mcp-Method`/`Mcp-Name` headers; an `MCP-Protocol-Version`, when sent, of a revision with
//! `initialize`. Anything else, well-formed or not, goes on to rmcp, which validates and answers
//! it as before. This path adds no check and skips none: the token, `Host`, `Origin` and body
//! checks have run before it.

use axum::body::Body;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use rmcp::model::{JsonObject, ProtocolVersion, ServerResult};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use synapsor_core::capability::Caller;

use super::McpServer;

/// A request this path may answer.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    jsonrpc: String,
    id: Value,
    method: String,
    #[serde(default)]
    params: Option<Params>,
}

/// `tools/call` params without `_meta` or a task; `{}` for `ping`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<JsonObject>,
}

#[derive(Serialize)]
struct Answer<'a, R: Serialize> {
    jsonrpc: &'static str,
    id: &'a Value,
    result: R,
}

/// An empty result object (`ping`).
#[derive(Serialize)]
struct Empty {}

/// The answer to `body` when it is a plain `ping` or `tools/call`; `None` sends it on to rmcp.
pub(super) async fn answer(server: &McpServer, headers: &HeaderMap, body: &[u8], caller: &Caller) -> Option<Response> {
    if !headers_fit(headers) {
        return None;
    }
    let request: Request = serde_json::from_slice(body).ok()?;
    let id_fits = request.id.is_i64() || request.id.is_u64() || request.id.is_string();
    if request.jsonrpc != "2.0" || !id_fits {
        return None;
    }
    let body = match (request.method.as_str(), request.params) {
        ("ping", None) => to_body(&request.id, Empty {}),
        (
            "ping",
            Some(Params {
                name: None,
                arguments: None,
            }),
        ) => to_body(&request.id, Empty {}),
        (
            "tools/call",
            Some(Params {
                name: Some(name),
                arguments,
            }),
        ) => {
            let mut result = ServerResult::CallToolResult(server.call(&name, arguments, caller).await);
            // What rmcp's handler does for every peer of a revision with `initialize`, the only
            // ones this path serves.
            result.strip_result_type_for_legacy_peer();
            result.strip_non_object_output_for_legacy_peer();
            to_body(&request.id, result)
        }
        _ => return None,
    }?;
    Some(([(header::CONTENT_TYPE, "application/json")], Body::from(body)).into_response())
}

fn to_body<R: Serialize>(id: &Value, result: R) -> Option<Vec<u8>> {
    serde_json::to_vec(&Answer {
        jsonrpc: "2.0",
        id,
        result,
    })
    .ok()
}

/// The headers rmcp would accept for this request without asking more of it.
fn headers_fit(headers: &HeaderMap) -> bool {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let essence = |v: &str| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let accepts: Vec<String> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(essence)
        .collect();
    let accepted = |t: &str| accepts.iter().any(|a| a == t);
    let json_body = text("content-type").is_some_and(|v| essence(v) == "application/json");
    let version_fits = match text("mcp-protocol-version") {
        None => true,
        Some(v) => ProtocolVersion::KNOWN_VERSIONS
            .iter()
            .any(|known| known.as_str() == v && known.has_initialize()),
    };
    accepted("application/json")
        && accepted("text/event-stream")
        && json_body
        && version_fits
        && !headers.contains_key("mcp-method")
        && !headers.contains_key("mcp-name")
}
