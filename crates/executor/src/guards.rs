//! The pure half of an apply: what the change set must satisfy against the current reviewed
//! capability before any connection is made, the [`Plan`] the SQL is built from, and the checks
//! made on the row once it is locked. No IO here, so every rule is unit-tested.

use serde_json::{Map, Value};
use synapsor_core::Capability;
use synapsor_core::changeset::ChangeSet;
use synapsor_core::config::{CapabilityKind, VersionAdvance};
use synapsor_core::digest::digest_value;
use synapsor_core::ident::SafeIdent;

use crate::receipt::WritebackCode;

/// Column name of the weak (whole-row hash) conflict guard.
pub const ROW_HASH_COLUMN: &str = "__row_hash";

/// Longest idempotency key and proposal id the receipts table stores (`varchar(255)`).
pub const MAX_KEY_LEN: usize = 255;

/// A refusal: the code and a sentence for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: WritebackCode,
    pub message: String,
}

impl Refusal {
    pub fn new(code: WritebackCode, message: impl Into<String>) -> Self {
        Refusal {
            code,
            message: message.into(),
        }
    }
}

/// How staleness is detected.
#[derive(Debug, Clone, PartialEq)]
pub enum VersionGuard {
    /// A version column and the value the proposal was made on.
    Column { column: SafeIdent, expected: Value },
    /// The digest of the row's read columns as the proposal saw them (`before`).
    RowHash { expected: String, columns: Vec<String> },
}

/// Everything the SQL of one apply is built from: reviewed identifiers (checked) and values
/// (always bound).
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub schema: SafeIdent,
    pub table: SafeIdent,
    pub primary_key: SafeIdent,
    pub primary_key_value: Value,
    /// Tenant column and the tenant value (exact). `None` only for single-tenant dev targets.
    pub tenant: Option<(SafeIdent, Value)>,
    /// Owner column and the proposing principal (exact), for capabilities with a `principal_key`.
    pub principal: Option<(SafeIdent, Value)>,
    /// Columns read (as JSON) under the lock.
    pub read_columns: Vec<SafeIdent>,
    /// Columns and values written, in change-set order.
    pub patch: Vec<(SafeIdent, Value)>,
    pub version: VersionGuard,
    /// How the UPDATE also moves the version column (`conflict_guard.advance` of the current
    /// capability); only with a version column.
    pub advance: Option<VersionAdvance>,
}

impl Plan {
    /// The columns the locked row is found by besides the primary key, with their values: the
    /// tenant, then the principal.
    pub fn scope(&self) -> impl Iterator<Item = (&SafeIdent, &Value)> {
        [&self.tenant, &self.principal]
            .into_iter()
            .flatten()
            .map(|(c, v)| (c, v))
    }

    pub fn version_column(&self) -> Option<&SafeIdent> {
        match &self.version {
            VersionGuard::Column { column, .. } => Some(column),
            VersionGuard::RowHash { .. } => None,
        }
    }
}

fn ident(name: &str) -> Result<SafeIdent, Refusal> {
    SafeIdent::new(name).ok_or_else(|| {
        Refusal::new(
            WritebackCode::UnsafeIdentifier,
            format!("{:?} is not a safe SQL identifier", truncate(name, 64)),
        )
    })
}

/// The value as text, the way tenants are compared (strings as is, numbers and booleans in
/// their JSON form).
pub fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Checks that the change set still matches the current reviewed capability and that its patch
/// is inside the reviewed policy, then builds the [`Plan`]. Runs before any connection.
pub fn plan(cs: &ChangeSet, cap: &Capability) -> Result<Plan, Refusal> {
    if cs.mode == "shadow" {
        return Err(Refusal::new(
            WritebackCode::ShadowProposal,
            "shadow proposals are recorded for review and never applied",
        ));
    }
    check_capability_matches(cs, cap)?;
    check_tenant_guard(cs, cap)?;
    check_principal_guard(cs, cap)?;
    check_patch_policy(cs, cap)?;
    if cs.proposal_id.len() > MAX_KEY_LEN - 18 || cs.proposal_id.trim().is_empty() {
        return Err(Refusal::new(
            WritebackCode::IdempotencyReceiptInvalid,
            "the proposal id is empty or too long for the receipts table",
        ));
    }

    let version = match cs.guards.expected_version.column.as_str() {
        ROW_HASH_COLUMN => {
            let expected = cs
                .guards
                .expected_version
                .value
                .as_str()
                .filter(|s| s.starts_with("sha256:"))
                .ok_or_else(|| {
                    Refusal::new(
                        WritebackCode::ConflictGuardUnavailable,
                        "the row-hash guard of this proposal is not a sha256 digest",
                    )
                })?
                .to_owned();
            VersionGuard::RowHash {
                expected,
                columns: cs.before.keys().cloned().collect(),
            }
        }
        col => {
            if cs.guards.expected_version.value.is_null() {
                return Err(Refusal::new(
                    WritebackCode::ConflictGuardUnavailable,
                    "the proposal has no expected version",
                ));
            }
            VersionGuard::Column {
                column: ident(col)?,
                expected: cs.guards.expected_version.value.clone(),
            }
        }
    };

    let mut read_columns: Vec<SafeIdent> = cap.read.columns.clone();
    let mut add = |c: SafeIdent| {
        if !read_columns.contains(&c) {
            read_columns.push(c);
        }
    };
    if let VersionGuard::Column { column, .. } = &version {
        add(column.clone());
    }
    if let VersionGuard::RowHash { columns, .. } = &version {
        // Read exactly what the proposal hashed, even if the visible columns changed since.
        for c in columns {
            add(ident(c)?);
        }
    }
    let patch = cs
        .patch
        .iter()
        .map(|(c, v)| Ok((ident(c)?, v.clone())))
        .collect::<Result<Vec<_>, Refusal>>()?;
    for (c, _) in &patch {
        add(c.clone());
    }

    Ok(Plan {
        schema: ident(&cs.source.schema)?,
        table: ident(&cs.source.table)?,
        primary_key: ident(&cs.source.primary_key.column)?,
        primary_key_value: cs.source.primary_key.value.clone(),
        tenant: match &cs.guards.tenant {
            Some(t) => Some((ident(&t.column)?, t.value.clone())),
            None => None,
        },
        principal: match &cs.guards.principal {
            Some(p) => Some((ident(&p.column)?, p.value.clone())),
            None => None,
        },
        read_columns,
        patch,
        advance: match &version {
            VersionGuard::Column { .. } => cap.version_advance,
            VersionGuard::RowHash { .. } => None,
        },
        version,
    })
}

fn engine_kind(cap: &Capability) -> &'static str {
    match cap.engine {
        synapsor_core::config::Engine::Postgres => "external_postgres",
        synapsor_core::config::Engine::Mysql => "external_mysql",
        synapsor_core::config::Engine::Sqlite => "external_sqlite",
    }
}

/// The proposal was made through this capability and the capability still targets the same
/// source, table, keys, executor and conflict guard. An approval covers one target; a config
/// change that moves the target must not carry old approvals over to it.
pub fn check_capability_matches(cs: &ChangeSet, cap: &Capability) -> Result<(), Refusal> {
    let changed = |what: &str| {
        Err(Refusal::new(
            WritebackCode::CapabilityChanged,
            format!(
                "capability {} no longer matches the proposal: {what} changed since it was proposed; propose again",
                cap.name
            ),
        ))
    };
    if cap.name != cs.action {
        return changed("its name");
    }
    if cap.kind != CapabilityKind::Proposal {
        return changed("its kind");
    }
    if cap.source != cs.source.source_id || engine_kind(cap) != cs.source.engine {
        return changed("the source");
    }
    if cap.read.schema.as_str() != cs.source.schema || cap.read.table.as_str() != cs.source.table {
        return changed("the target table");
    }
    if cap.read.primary_key.as_str() != cs.source.primary_key.column {
        return changed("the primary key");
    }
    let cs_tenant = cs.guards.tenant.as_ref().map(|t| t.column.as_str());
    if cap.read.tenant_key.as_ref().map(SafeIdent::as_str) != cs_tenant {
        return changed("the tenant key");
    }
    let cs_principal = cs.guards.principal.as_ref().map(|p| p.column.as_str());
    if cap.read.principal_key.as_ref().map(SafeIdent::as_str) != cs_principal {
        return changed("the principal key");
    }
    if cap.executor != cs.writeback.executor {
        return changed("the executor");
    }
    let reviewed_guard = cap.conflict_column.as_deref().unwrap_or(ROW_HASH_COLUMN);
    if reviewed_guard != cs.guards.expected_version.column || (reviewed_guard == ROW_HASH_COLUMN && !cap.weak_guard_ack)
    {
        return changed("the conflict guard");
    }
    Ok(())
}

/// The tenant guard names the reviewed tenant column and exactly the proposal's trusted tenant.
pub fn check_tenant_guard(cs: &ChangeSet, cap: &Capability) -> Result<(), Refusal> {
    match (&cs.guards.tenant, &cap.read.tenant_key) {
        (None, None) => Ok(()),
        (Some(t), Some(key)) if t.column == key.as_str() => {
            if scalar_text(&t.value).as_deref() == Some(cs.scope.tenant_id.as_str()) {
                Ok(())
            } else {
                Err(Refusal::new(
                    WritebackCode::TenantGuardMismatch,
                    "the tenant guard does not name the proposal's trusted tenant",
                ))
            }
        }
        _ => Err(Refusal::new(
            WritebackCode::TenantGuardMismatch,
            "the tenant guard does not name the reviewed tenant column",
        )),
    }
}

/// The principal guard, when there is one, names the reviewed owner column and exactly the
/// proposal's trusted principal.
pub fn check_principal_guard(cs: &ChangeSet, cap: &Capability) -> Result<(), Refusal> {
    match (&cs.guards.principal, &cap.read.principal_key) {
        (None, None) => Ok(()),
        (Some(p), Some(key)) if p.column == key.as_str() => {
            if scalar_text(&p.value).as_deref() == Some(cs.principal.id.as_str()) {
                Ok(())
            } else {
                Err(Refusal::new(
                    WritebackCode::TenantGuardMismatch,
                    "the principal guard does not name the proposal's trusted principal",
                ))
            }
        }
        _ => Err(Refusal::new(
            WritebackCode::TenantGuardMismatch,
            "the principal guard does not name the reviewed principal column",
        )),
    }
}

fn number_of(v: &Value) -> Option<f64> {
    v.as_f64().filter(|f| f.is_finite())
}

/// The patch is inside the reviewed policy: not empty; every column allowed by both the current
/// capability and the change set; never the primary key, the tenant key or the version column;
/// numeric bounds of both the current capability and the change set hold.
pub fn check_patch_policy(cs: &ChangeSet, cap: &Capability) -> Result<(), Refusal> {
    if cs.patch.is_empty() {
        return Err(Refusal::new(WritebackCode::PatchEmpty, "the patch is empty"));
    }
    let protected: Vec<&str> = [
        Some(cap.read.primary_key.as_str()),
        cap.read.tenant_key.as_ref().map(SafeIdent::as_str),
        cap.read.principal_key.as_ref().map(SafeIdent::as_str),
    ]
    .into_iter()
    .flatten()
    .chain([cs.source.primary_key.column.as_str()])
    .chain(cs.guards.tenant.as_ref().map(|t| t.column.as_str()))
    .chain(cs.guards.principal.as_ref().map(|p| p.column.as_str()))
    .collect();
    for col in cs.patch.keys() {
        if protected.contains(&col.as_str()) {
            return Err(Refusal::new(
                WritebackCode::PatchColumnNotAllowed,
                format!("the patch may not change the key column {col}"),
            ));
        }
        if !cap.allowed_columns.iter().any(|c| c == col) || !cs.guards.allowed_columns.iter().any(|c| c == col) {
            return Err(Refusal::new(
                WritebackCode::PatchColumnNotAllowed,
                format!("column {col} is not in the reviewed allowed_columns"),
            ));
        }
    }
    let mut bounds: Vec<(&str, Option<f64>, Option<f64>)> = cap
        .numeric_bounds
        .iter()
        .map(|(c, b)| (c.as_str(), b.minimum, b.maximum))
        .collect();
    for (c, b) in &cs.guards.numeric_bounds {
        bounds.push((
            c.as_str(),
            b.get("minimum").and_then(number_of),
            b.get("maximum").and_then(number_of),
        ));
    }
    for (col, min, max) in bounds {
        let Some(v) = cs.patch.get(col) else { continue };
        let n = number_of(v).ok_or_else(|| {
            Refusal::new(
                WritebackCode::PatchNumericBoundTypeInvalid,
                format!("the patch value for {col} must be a number"),
            )
        })?;
        if min.is_some_and(|m| n < m) {
            return Err(Refusal::new(
                WritebackCode::PatchBelowMinimum,
                format!("the patch value for {col} is below its reviewed minimum"),
            ));
        }
        if max.is_some_and(|m| n > m) {
            return Err(Refusal::new(
                WritebackCode::PatchAboveMaximum,
                format!("the patch value for {col} is above its reviewed maximum"),
            ));
        }
    }
    Ok(())
}

/// `(patched column, column holding the current state, [(from, [to])])`.
type Transition = (String, String, Vec<(String, Vec<String>)>);

/// Transition guards of the current capability and of the change set, checked against the
/// locked current row: the patched state must be an allowed move from the row's state now.
pub fn check_transitions(cs: &ChangeSet, cap: &Capability, row: &Map<String, Value>) -> Result<(), Refusal> {
    let mut guards: Vec<Transition> = cap
        .transition_guards
        .iter()
        .map(|(col, g)| {
            (
                col.clone(),
                g.from_column.clone().unwrap_or_else(|| col.clone()),
                g.allowed.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            )
        })
        .collect();
    for (col, g) in &cs.guards.transition_guards {
        let from = g
            .get("from_column")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| col.clone());
        let allowed = g
            .get("allowed")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        let to = v
                            .as_array()
                            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
                            .unwrap_or_default();
                        (k.clone(), to)
                    })
                    .collect()
            })
            .unwrap_or_default();
        guards.push((col.clone(), from, allowed));
    }
    for (col, from_col, allowed) in guards {
        let Some(proposed) = cs.patch.get(&col) else { continue };
        let (Some(current), Some(proposed)) = (row.get(&from_col).and_then(Value::as_str), proposed.as_str()) else {
            return Err(Refusal::new(
                WritebackCode::TransitionTypeInvalid,
                format!("the transition of {col} needs text states"),
            ));
        };
        let ok = allowed
            .iter()
            .any(|(from, to)| from == current && to.iter().any(|t| t == proposed));
        if !ok {
            return Err(Refusal::new(
                WritebackCode::TransitionNotAllowed,
                format!(
                    "{col} may not move from {:?} to {:?} under the reviewed transition guards",
                    truncate(current, 64),
                    truncate(proposed, 64)
                ),
            ));
        }
    }
    Ok(())
}

/// The locked row is the proposal's row in the proposal's tenant (and owned by its principal,
/// when scoped so), compared exactly (MySQL's default collations compare `ACME` and `acme` as
/// equal; this does not).
pub fn check_row_identity(plan: &Plan, row: &Map<String, Value>) -> Result<(), Refusal> {
    let not_found = || {
        Refusal::new(
            WritebackCode::RowNotFound,
            "no row with this primary key exists in the proposal's tenant",
        )
    };
    let pk = row.get(plan.primary_key.as_str()).ok_or_else(not_found)?;
    if normalize_version(pk) != normalize_version(&plan.primary_key_value) {
        return Err(not_found());
    }
    for (col, value) in plan.scope() {
        let current = row.get(col.as_str()).and_then(scalar_text);
        if current.is_none() || current != scalar_text(value) {
            return Err(not_found());
        }
    }
    Ok(())
}

/// Compares the version guard with the locked row. `Ok(Some(current))` is the current version
/// value for a version column (`Ok(None)` for the row hash).
pub fn check_version(plan: &Plan, row: &Map<String, Value>) -> Result<Option<Value>, Refusal> {
    match &plan.version {
        VersionGuard::Column { column, expected } => {
            let current = row.get(column.as_str()).cloned().unwrap_or(Value::Null);
            if current.is_null() || normalize_version(&current) != normalize_version(expected) {
                return Err(Refusal::new(
                    WritebackCode::VersionConflict,
                    format!("the row changed after the proposal ({column} differs); propose again"),
                ));
            }
            Ok(Some(current))
        }
        VersionGuard::RowHash { expected, columns } => {
            let current = row_hash(row, columns).ok_or_else(|| {
                Refusal::new(
                    WritebackCode::ConflictGuardUnavailable,
                    "the row hash could not be computed from the current row (a hashed column is missing)",
                )
            })?;
            if &current != expected {
                return Err(Refusal::new(
                    WritebackCode::VersionConflict,
                    "the row changed after the proposal (its row hash differs); propose again",
                ));
            }
            Ok(None)
        }
    }
}

/// The patched columns still hold the `before` values the approver saw (compared as versions
/// are). This catches a change to exactly those columns even when the version column was not
/// moved by whoever changed them.
pub fn check_patched_unchanged(cs: &ChangeSet, row: &Map<String, Value>) -> Result<(), Refusal> {
    for col in cs.patch.keys() {
        let Some(before) = cs.before.get(col) else { continue };
        let current = row.get(col).unwrap_or(&Value::Null);
        if normalize_version(before) != normalize_version(current) {
            return Err(Refusal::new(
                WritebackCode::VersionConflict,
                format!(
                    "the row changed after the proposal ({col} no longer has the value the approver saw); propose again"
                ),
            ));
        }
    }
    Ok(())
}

/// The digest of `row` restricted to `columns`; `None` when one of them is missing.
pub fn row_hash(row: &Map<String, Value>, columns: &[String]) -> Option<String> {
    let mut m = Map::new();
    for c in columns {
        m.insert(c.clone(), row.get(c)?.clone());
    }
    Some(digest_value(&Value::Object(m)))
}

/// A version value normalized for comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Normalized {
    Null,
    Bool(bool),
    /// Integers (also integral floats and integer strings).
    Int(i128),
    /// Other numbers, compared by value.
    Float(u64),
    /// Timestamps as UTC nanoseconds since the epoch (microseconds for every engine here).
    Timestamp(i128),
    Text(String),
    /// Arrays and objects: canonical JSON.
    Json(String),
}

/// Normalizes a version value: timestamps in any of the engines' JSON forms become UTC instants
/// (`2026-06-23T09:00:00+00:00` from PostgreSQL, `2026-06-23 09:00:00.000000` from MariaDB,
/// text as stored from SQLite; no offset means UTC); numbers compare by value, also when one side
/// is a numeric string; other strings compare trimmed.
pub fn normalize_version(v: &Value) -> Normalized {
    match v {
        Value::Null => Normalized::Null,
        Value::Bool(b) => Normalized::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Normalized::Int(i128::from(i))
            } else if let Some(u) = n.as_u64() {
                Normalized::Int(i128::from(u))
            } else {
                float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => {
            let s = s.trim();
            if let Some(ts) = parse_timestamp_nanos(s) {
                Normalized::Timestamp(ts)
            } else if let Some(n) = parse_number(s) {
                n
            } else {
                Normalized::Text(s.to_owned())
            }
        }
        other => Normalized::Json(synapsor_core::digest::canonical_json(other)),
    }
}

fn float(f: f64) -> Normalized {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e30 {
        Normalized::Int(f as i128)
    } else {
        // 0.0 and -0.0 are the same value.
        Normalized::Float(if f == 0.0 { 0 } else { f.to_bits() })
    }
}

fn parse_number(s: &str) -> Option<Normalized> {
    let body = s.strip_prefix('-').unwrap_or(s);
    let looks_numeric = !body.is_empty()
        && body.chars().next().is_some_and(|c| c.is_ascii_digit())
        && body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'));
    if !looks_numeric {
        return None;
    }
    if let Ok(i) = s.parse::<i128>() {
        return Some(Normalized::Int(i));
    }
    s.parse::<f64>().ok().filter(|f| f.is_finite()).map(float)
}

/// Timestamps are parsed by the core, the one parser the runner uses.
pub use synapsor_core::time::parse_timestamp_nanos;

pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        s.chars().take(max).chain("…".chars()).collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;
    use synapsor_core::capability::compile;
    use synapsor_core::changeset::{ChangeSetInput, EvidenceRef};
    use synapsor_core::config::{Mode, parse_config};
    use synapsor_core::{TrustedContext, capability::Provenance};

    fn cap_with(extra: Value) -> Capability {
        let mut cap = json!({
            "name": "billing.propose_fee", "kind": "proposal", "source": "main",
            "description": "Propose a fee.",
            "target": {"schema": "public", "table": "invoices", "primary_key": "id", "tenant_key": "tenant_id"},
            "args": {"invoice_id": {"type": "string"}, "fee": {"type": "number"}, "status": {"type": "string", "required": false}},
            "lookup": {"id_from_arg": "invoice_id"},
            "visible_columns": ["id", "fee", "status"],
            "patch": {"fee": {"from_arg": "fee"}, "status": {"fixed": "paid"}},
            "allowed_columns": ["fee", "status"],
            "numeric_bounds": {"fee": {"minimum": 0, "maximum": 5000}},
            "transition_guards": {"status": {"allowed": {"open": ["paid"]}}},
            "conflict_guard": {"column": "updated_at"}
        });
        for (k, v) in extra.as_object().unwrap() {
            cap[k] = v.clone();
        }
        let doc = json!({
            "version": 1, "mode": "review",
            "sources": {"main": {"engine": "postgres", "read_url_env": "READ_URL", "write_url_env": "WRITE_URL"}},
            "trusted_context": {"provider": "environment"},
            "capabilities": [cap]
        });
        let (cfg, _) = parse_config(&doc.to_string()).unwrap_or_else(|r| panic!("{:?}", r.errors));
        compile(&cfg).unwrap().remove(0)
    }

    fn row(status: &str) -> Map<String, Value> {
        json!({"id": "INV-1", "tenant_id": "acme", "owner": "agent", "fee": 100, "status": status, "updated_at": "2026-06-23T09:00:00+00:00"})
            .as_object()
            .unwrap()
            .clone()
    }

    fn change_set(cap: &Capability, fee: f64) -> ChangeSet {
        let args = cap.check_args(&json!({"invoice_id": "INV-1", "fee": fee})).unwrap();
        let built = cap.build_patch(&args, &row("open")).unwrap();
        ChangeSet::build(ChangeSetInput {
            capability: cap,
            mode: Mode::Review,
            context: &TrustedContext {
                tenant_id: "acme".into(),
                principal: "agent".into(),
                provenance: Provenance::Environment,
                identity: None,
            },
            object_id: "INV-1",
            built,
            evidence: EvidenceRef {
                bundle_id: "ev_1".into(),
                query_fingerprint: "q".into(),
            },
            proposal_id: "wrp_1".into(),
            created_at: "2026-06-23T09:00:00.000Z".into(),
        })
    }

    #[test]
    fn plan_for_a_valid_change_set() {
        let cap = cap_with(json!({}));
        let cs = change_set(&cap, 250.0);
        let p = plan(&cs, &cap).unwrap();
        assert_eq!(p.table.as_str(), "invoices");
        assert_eq!(p.tenant.as_ref().unwrap().1, json!("acme"));
        assert_eq!(p.patch.len(), 2);
        assert_eq!(p.version_column().unwrap().as_str(), "updated_at");
        assert!(p.read_columns.iter().any(|c| c.as_str() == "updated_at"));
    }

    #[test]
    fn principal_scope_is_planned_and_checked() {
        let target = json!({"target": {"schema": "public", "table": "invoices", "primary_key": "id", "tenant_key": "tenant_id", "principal_key": "owner"}});
        let cap = cap_with(target.clone());
        let cs = change_set(&cap, 250.0);
        assert_eq!(cs.guards.principal.as_ref().unwrap().value, json!("agent"));
        let p = plan(&cs, &cap).unwrap();
        let scope: Vec<_> = p.scope().map(|(c, v)| (c.as_str().to_owned(), v.clone())).collect();
        assert_eq!(
            scope,
            [
                ("tenant_id".to_owned(), json!("acme")),
                ("owner".to_owned(), json!("agent"))
            ]
        );
        // The locked row must still belong to the principal.
        assert!(check_row_identity(&p, &row("open")).is_ok());
        let mut other = row("open");
        other.insert("owner".into(), json!("someone.else"));
        assert_eq!(
            check_row_identity(&p, &other).unwrap_err().code,
            WritebackCode::RowNotFound
        );
        // A guard naming another principal, or a capability that dropped or moved the scope.
        let mut forged = cs.clone();
        forged.guards.principal.as_mut().unwrap().value = json!("someone.else");
        assert_eq!(
            plan(&forged, &cap).unwrap_err().code,
            WritebackCode::TenantGuardMismatch
        );
        assert_eq!(
            plan(&cs, &cap_with(json!({}))).unwrap_err().code,
            WritebackCode::CapabilityChanged
        );
        let unscoped = change_set(&cap_with(json!({})), 250.0);
        assert_eq!(
            plan(&unscoped, &cap).unwrap_err().code,
            WritebackCode::CapabilityChanged
        );
        // The owner column is never patched.
        let mut cs2 = cs.clone();
        cs2.patch.insert("owner".into(), json!("agent"));
        assert_eq!(plan(&cs2, &cap).unwrap_err().code, WritebackCode::PatchColumnNotAllowed);
    }

    #[test]
    fn current_config_is_enforced() {
        let cs = change_set(&cap_with(json!({})), 250.0);
        // Narrowed allowed columns (the validator keeps patch within allowed_columns, so edit the
        // compiled capability as a later config would).
        let mut narrowed = cap_with(json!({}));
        narrowed.allowed_columns = vec!["fee".into()];
        assert_eq!(
            plan(&cs, &narrowed).unwrap_err().code,
            WritebackCode::PatchColumnNotAllowed
        );
        // Tightened bounds.
        let tight = cap_with(json!({"numeric_bounds": {"fee": {"minimum": 0, "maximum": 100}}}));
        assert_eq!(plan(&cs, &tight).unwrap_err().code, WritebackCode::PatchAboveMaximum);
        // Moved target.
        let moved = cap_with(
            json!({"target": {"schema": "public", "table": "bills", "primary_key": "id", "tenant_key": "tenant_id"}}),
        );
        assert_eq!(plan(&cs, &moved).unwrap_err().code, WritebackCode::CapabilityChanged);
        let other_tenant_key = cap_with(
            json!({"target": {"schema": "public", "table": "invoices", "primary_key": "id", "tenant_key": "org_id"}}),
        );
        assert_eq!(
            plan(&cs, &other_tenant_key).unwrap_err().code,
            WritebackCode::CapabilityChanged
        );
        let other_guard = cap_with(json!({"conflict_guard": {"column": "version"}}));
        assert_eq!(
            plan(&cs, &other_guard).unwrap_err().code,
            WritebackCode::CapabilityChanged
        );
    }

    #[test]
    fn tampered_change_sets_are_refused_before_any_io() {
        let cap = cap_with(json!({}));
        let mut cs = change_set(&cap, 250.0);
        cs.patch.insert("tenant_id".into(), json!("globex"));
        assert_eq!(plan(&cs, &cap).unwrap_err().code, WritebackCode::PatchColumnNotAllowed);

        let mut cs = change_set(&cap, 250.0);
        cs.patch.insert("internal_note".into(), json!("x"));
        assert_eq!(plan(&cs, &cap).unwrap_err().code, WritebackCode::PatchColumnNotAllowed);

        let mut cs = change_set(&cap, 250.0);
        cs.guards.tenant.as_mut().unwrap().value = json!("globex");
        assert_eq!(plan(&cs, &cap).unwrap_err().code, WritebackCode::TenantGuardMismatch);

        let mut cs = change_set(&cap, 250.0);
        cs.guards.tenant = None;
        assert_eq!(plan(&cs, &cap).unwrap_err().code, WritebackCode::CapabilityChanged);

        let mut cs = change_set(&cap, 250.0);
        cs.patch.insert("fee".into(), json!(-5));
        assert_eq!(plan(&cs, &cap).unwrap_err().code, WritebackCode::PatchBelowMinimum);

        let mut cs = change_set(&cap, 250.0);
        cs.patch.insert("fee".into(), json!("250"));
        assert_eq!(
            plan(&cs, &cap).unwrap_err().code,
            WritebackCode::PatchNumericBoundTypeInvalid
        );

        let mut cs = change_set(&cap, 250.0);
        cs.mode = "shadow".into();
        assert_eq!(plan(&cs, &cap).unwrap_err().code, WritebackCode::ShadowProposal);

        let mut cs = change_set(&cap, 250.0);
        cs.patch.clear();
        assert_eq!(plan(&cs, &cap).unwrap_err().code, WritebackCode::PatchEmpty);
    }

    #[test]
    fn locked_row_checks() {
        let cap = cap_with(json!({}));
        let cs = change_set(&cap, 250.0);
        let p = plan(&cs, &cap).unwrap();
        let r = row("open");
        check_row_identity(&p, &r).unwrap();
        assert_eq!(check_version(&p, &r).unwrap(), Some(json!("2026-06-23T09:00:00+00:00")));
        check_transitions(&cs, &cap, &r).unwrap();

        let mut upper = r.clone();
        upper.insert("tenant_id".into(), json!("ACME"));
        assert_eq!(
            check_row_identity(&p, &upper).unwrap_err().code,
            WritebackCode::RowNotFound
        );

        let mut newer = r.clone();
        newer.insert("updated_at".into(), json!("2026-06-23T09:00:00.000001+00:00"));
        assert_eq!(
            check_version(&p, &newer).unwrap_err().code,
            WritebackCode::VersionConflict
        );

        assert_eq!(
            check_transitions(&cs, &cap, &row("paid")).unwrap_err().code,
            WritebackCode::TransitionNotAllowed
        );

        check_patched_unchanged(&cs, &r).unwrap();
        let mut fee_moved = r.clone();
        fee_moved.insert("fee".into(), json!(101));
        assert_eq!(
            check_patched_unchanged(&cs, &fee_moved).unwrap_err().code,
            WritebackCode::VersionConflict
        );
        let mut same_value = r.clone();
        same_value.insert("fee".into(), json!(100.0));
        check_patched_unchanged(&cs, &same_value).unwrap();
    }

    #[test]
    fn row_hash_guard() {
        let cap = cap_with(json!({"conflict_guard": {"weak_guard_ack": true}}));
        let cs = change_set(&cap, 250.0);
        assert_eq!(cs.guards.expected_version.column, ROW_HASH_COLUMN);
        let p = plan(&cs, &cap).unwrap();
        assert_eq!(check_version(&p, &row("open")).unwrap(), None);
        let mut changed = row("open");
        changed.insert("fee".into(), json!(101));
        assert_eq!(
            check_version(&p, &changed).unwrap_err().code,
            WritebackCode::VersionConflict
        );
        let mut missing = row("open");
        missing.remove("fee");
        assert_eq!(
            check_version(&p, &missing).unwrap_err().code,
            WritebackCode::ConflictGuardUnavailable
        );
    }

    #[test]
    fn timestamps_normalize_across_engines() {
        let pg = json!("2026-06-23T09:00:00+00:00");
        let maria = json!("2026-06-23 09:00:00.000000");
        let sqlite = json!("2026-06-23T09:00:00Z");
        let offset = json!("2026-06-23T11:00:00+02:00");
        let compact = json!("2026-06-23T11:00:00+0200");
        for v in [&maria, &sqlite, &offset, &compact] {
            assert_eq!(normalize_version(&pg), normalize_version(v), "{v}");
        }
        // Microseconds count.
        assert_eq!(
            normalize_version(&json!("2026-06-20T14:31:08.123456+00:00")),
            normalize_version(&json!("2026-06-20 14:31:08.123456"))
        );
        assert_ne!(
            normalize_version(&json!("2026-06-20T14:31:08.123456+00:00")),
            normalize_version(&json!("2026-06-20 14:31:08.123457"))
        );
        assert_ne!(
            normalize_version(&json!("2026-06-20T14:31:08.1+00:00")),
            normalize_version(&json!("2026-06-20 14:31:08.100001"))
        );
        assert!(parse_timestamp_nanos("2026-13-01 00:00:00").is_none());
        assert!(parse_timestamp_nanos("2026-06-23 09:00:00 junk").is_none());
    }

    #[test]
    fn numbers_compare_by_value() {
        assert_eq!(normalize_version(&json!(3)), normalize_version(&json!(3.0)));
        assert_eq!(normalize_version(&json!(3)), normalize_version(&json!("3")));
        assert_eq!(normalize_version(&json!(2.5)), normalize_version(&json!("2.50")));
        assert_ne!(normalize_version(&json!(3)), normalize_version(&json!(4)));
        assert_ne!(normalize_version(&json!("v3")), normalize_version(&json!("v4")));
        assert_eq!(normalize_version(&json!(" v3 ")), normalize_version(&json!("v3")));
        assert_eq!(
            normalize_version(&json!(9_007_199_254_740_993i64)),
            normalize_version(&json!("9007199254740993"))
        );
        assert_ne!(
            normalize_version(&json!(9_007_199_254_740_993i64)),
            normalize_version(&json!(9_007_199_254_740_992i64))
        );
    }
}
