//! Synapsor Runner: app-owned writeback handler with axum, on the `synapsor-handler` crate.
//!
//! A single-file starter: put it in `src/main.rs` of a new crate with
//!
//! ```toml
//! [dependencies]
//! synapsor-handler = { git = "https://github.com/synapsor/synapsor-runner-rs" }
//! axum = "0.8"
//! tokio = { version = "1", features = ["macros", "rt-multi-thread", "net"] }
//! serde_json = "1"
//! ```
//!
//! ==========================================================================================
//! IMPORTANT: YOUR HANDLER OWNS THE FINAL WRITE.
//! A request that verifies is an approved *intent*, not permission to skip checks. In ONE
//! database transaction with the write, this handler must:
//!   1. record the idempotency key (answer `already_applied` when it is already recorded);
//!   2. lock the row by primary key AND tenant (a row of another tenant is "not found");
//!   3. compare the row's version with expected_version (`conflict VERSION_CONFLICT`);
//!   4. change only the columns YOUR code allows for this action;
//!   5. commit the write and the idempotency record together, or neither.
//!
//! ==========================================================================================
//!
//! The "database" here is an in-memory map behind a mutex, seeded from the JSON file named by
//! `SYNAPSOR_HANDLER_DEMO_DATA` (`{"support_tickets": [rows]}`). It stands in for your
//! application's database: replace `Db` and `apply_in_transaction` with your own transaction
//! (e.g. sqlx: `let mut tx = pool.begin().await?`, an `INSERT` into your receipts table keyed by
//! the idempotency key, `SELECT ... FOR UPDATE`, the guarded `UPDATE`, `tx.commit()`), keeping
//! the order.
//!
//! Environment: `SYNAPSOR_HANDLER_SIGNING_SECRET` (>= 32 bytes) and `SYNAPSOR_HANDLER_KEY_ID`
//! (default `default`); optional `SYNAPSOR_HANDLER_PREVIOUS_SIGNING_SECRET` /
//! `SYNAPSOR_HANDLER_PREVIOUS_KEY_ID` (accepted while rotating), `SYNAPSOR_HANDLER_TOKEN`
//! (bearer token to require), `SYNAPSOR_HANDLER_SKEW_SECS` (default 300),
//! `SYNAPSOR_HANDLER_DEMO_DATA`, `HOST`/`PORT` (default 127.0.0.1:8080).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::post;
use serde_json::{Map, Value};
use synapsor_handler::{
    DEFAULT_KEY_ID, DEFAULT_SKEW_SECS, HandlerReceipt, HandlerRequest, KeyRing, MAX_BODY_BYTES, ReceiptStatus,
    ReplayGuard, SIGNATURE_HEADER, SeenKeys, bearer_matches, check_patch_within, check_tenant, check_version,
    format_timestamp_micros, verify,
};

pub const PATH: &str = "/synapsor/apply";

/// Your app's policy: the actions this handler performs, on which table, and the only columns
/// each may change. The request's `allowed_columns` come from the runner's config; this list is
/// the one to trust.
const ACTIONS: &[(&str, &str, &[&str])] = &[
    ("support.propose_ticket_priority", "support_tickets", &["priority"]),
    ("support.propose_ticket_resolution", "support_tickets", &["status"]),
];

/// Your tables: name, primary key, tenant and version columns, as your app knows them.
#[derive(Debug, Clone, Copy)]
struct Table {
    name: &'static str,
    primary_key: &'static str,
    tenant_column: &'static str,
    version_column: &'static str,
}

const TABLES: &[Table] = &[Table {
    name: "support_tickets",
    primary_key: "id",
    tenant_column: "tenant_id",
    version_column: "updated_at",
}];

/// The stand-in database: rows by table and primary key, and the applied idempotency keys.
#[derive(Debug, Default)]
pub struct Db {
    tables: HashMap<String, HashMap<String, Map<String, Value>>>,
    applied: SeenKeys,
}

#[derive(Debug)]
pub struct AppState {
    keys: KeyRing,
    token: Option<String>,
    skew_secs: u64,
    db: Mutex<Db>,
}

fn key_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl AppState {
    /// `demo` is `{"<table>": [rows]}`; tables this app does not know are ignored.
    pub fn new(keys: KeyRing, token: Option<String>, skew_secs: u64, demo: &Value) -> Self {
        let mut db = Db::default();
        for table in TABLES {
            let rows = db.tables.entry(table.name.to_owned()).or_default();
            for row in demo.get(table.name).and_then(Value::as_array).into_iter().flatten() {
                if let (Some(obj), Some(pk)) = (row.as_object(), row.get(table.primary_key)) {
                    rows.insert(key_string(pk), obj.clone());
                }
            }
        }
        AppState {
            keys,
            token,
            skew_secs,
            db: Mutex::new(db),
        }
    }

    pub fn from_env() -> Result<Self, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let mut keys = KeyRing::new();
        let secret = var("SYNAPSOR_HANDLER_SIGNING_SECRET").ok_or("SYNAPSOR_HANDLER_SIGNING_SECRET is not set")?;
        let kid = var("SYNAPSOR_HANDLER_KEY_ID").unwrap_or_else(|| DEFAULT_KEY_ID.to_owned());
        keys.insert(kid, secret).map_err(|e| e.to_string())?;
        if let Some(previous) = var("SYNAPSOR_HANDLER_PREVIOUS_SIGNING_SECRET") {
            let kid = var("SYNAPSOR_HANDLER_PREVIOUS_KEY_ID").unwrap_or_else(|| DEFAULT_KEY_ID.to_owned());
            keys.insert(kid, previous).map_err(|e| e.to_string())?;
        }
        let skew_secs = match var("SYNAPSOR_HANDLER_SKEW_SECS") {
            Some(s) => s.parse().map_err(|_| "SYNAPSOR_HANDLER_SKEW_SECS must be a number")?,
            None => DEFAULT_SKEW_SECS,
        };
        let demo = match var("SYNAPSOR_HANDLER_DEMO_DATA") {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
                serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?
            }
            None => Value::Null,
        };
        Ok(AppState::new(keys, var("SYNAPSOR_HANDLER_TOKEN"), skew_secs, &demo))
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route(PATH, post(apply))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

fn respond(status: u16, receipt: HandlerReceipt) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(receipt)).into_response()
}

async fn apply(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(token) = &state.token
        && !bearer_matches(header("authorization"), token)
    {
        return respond(401, HandlerReceipt::failed("UNAUTHORIZED"));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    // Steps 3-8: signature, key id, MAC (constant time), window, strict body, issued_at == t.
    let req = match verify(header(SIGNATURE_HEADER), &body, &state.keys, now, state.skew_secs) {
        Ok(req) => req,
        Err(e) => {
            eprintln!("rejected: {e}");
            return respond(e.http_status(), e.receipt());
        }
    };
    let receipt = apply_in_transaction(&state, &req);
    eprintln!(
        "{} {} {}",
        req.proposal_id,
        receipt.status,
        receipt.error_code.as_deref().unwrap_or("")
    );
    respond(receipt.http_status(), receipt)
}

/// Steps 9-10: everything below is ONE transaction. Here the mutex makes it atomic; with a real
/// database: BEGIN ... COMMIT, and SELECT ... FOR UPDATE.
fn apply_in_transaction(state: &AppState, req: &HandlerRequest) -> HandlerReceipt {
    // The action must be one this app implements, on the table it expects.
    let Some((_, table_name, columns)) = ACTIONS.iter().find(|(name, _, _)| *name == req.action) else {
        return HandlerReceipt::failed("UNSUPPORTED_ACTION");
    };
    let Some(table) = TABLES.iter().find(|t| t.name == *table_name) else {
        return HandlerReceipt::failed("UNSUPPORTED_ACTION");
    };
    if req.target.table != table.name
        || req.target.primary_key.column != table.primary_key
        || req.expected_version.column != table.version_column
    {
        return HandlerReceipt::failed("UNSUPPORTED_ACTION");
    }
    if req.tenant.column.as_deref() != Some(table.tenant_column) {
        return HandlerReceipt::failed("TENANT_REQUIRED");
    }
    // Only this action's columns; never the key or the tenant.
    let app_columns: Vec<&str> = columns
        .iter()
        .copied()
        .filter(|c| *c != table.primary_key && *c != table.tenant_column)
        .collect();
    if let Err(e) = check_patch_within(req, &app_columns) {
        return e.receipt();
    }

    let mut db = match state.db.lock() {
        Ok(db) => db,
        Err(poisoned) => poisoned.into_inner(),
    };
    let db = &mut *db;
    // 1. Idempotency first: after an applied write the version has moved, and a repeat must
    //    read as already_applied, not as a conflict.
    if db.applied.claim(&req.idempotency_key).is_err() {
        return HandlerReceipt::already_applied();
    }
    let receipt = write_row(&mut db.tables, table, req);
    if receipt.status != ReceiptStatus::Applied || receipt.rows_affected == 0 {
        // Nothing was written ("rollback"): forget the key so a later attempt is judged afresh.
        db.applied.release(&req.idempotency_key);
    }
    // 5. Otherwise the key stays recorded with the write ("commit").
    receipt
}

/// Steps 2-4, inside the transaction: lock the row, re-check, write.
fn write_row(
    tables: &mut HashMap<String, HashMap<String, Map<String, Value>>>,
    table: &Table,
    req: &HandlerRequest,
) -> HandlerReceipt {
    // 2. The row by primary key AND tenant; another tenant's row is "not found".
    let Some(row) = tables
        .get_mut(table.name)
        .and_then(|rows| rows.get_mut(&key_string(&req.target.primary_key.value)))
    else {
        return HandlerReceipt::conflict("ROW_NOT_FOUND");
    };
    if let Err(e) = check_tenant(req, row.get(table.tenant_column).unwrap_or(&Value::Null)) {
        return e.receipt();
    }
    // 3. The version the person approved.
    if let Err(e) = check_version(req, row.get(table.version_column).unwrap_or(&Value::Null)) {
        return e.receipt();
    }
    // A dry run stops here: nothing written, the idempotency key not kept.
    if req.dry_run {
        return HandlerReceipt::applied(0).with_message("dry run: nothing written");
    }
    // 4. Write only the checked patch columns, and a new version.
    for (col, value) in &req.patch {
        row.insert(col.clone(), value.clone());
    }
    let new_version = now_version();
    row.insert(table.version_column.to_owned(), Value::String(new_version.clone()));
    HandlerReceipt::applied(1).with_new_version(new_version)
}

/// Now as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (UTC, microseconds).
fn now_version() -> String {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0);
    format_timestamp_micros(micros)
}

#[tokio::main]
pub async fn main() {
    let state = match AppState::from_env() {
        Ok(state) => Arc::new(state),
        Err(e) => {
            eprintln!("synapsor handler: {e}");
            std::process::exit(2);
        }
    };
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".into());
    let listener = match tokio::net::TcpListener::bind(format!("{host}:{port}")).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("synapsor handler: cannot listen on {host}:{port}: {e}");
            std::process::exit(2);
        }
    };
    if let Ok(addr) = listener.local_addr() {
        println!("synapsor handler listening on http://{addr}{PATH}");
    }
    if let Err(e) = axum::serve(listener, router(state)).await {
        eprintln!("synapsor handler: {e}");
        std::process::exit(1);
    }
}
