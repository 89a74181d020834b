//! The write fields of a proposal capability: patch, allowed columns, conflict guard, numeric
//! bounds, transition guards, approval, and which executor applies it.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::capabilities::TargetInfo;
use super::codes::{
    APPROVAL_KEYS, CONFLICT_GUARD_KEYS, MAX_REQUIRED_APPROVALS, NUMERIC_BOUND_KEYS, PATCH_BINDING_KEYS,
    TRANSITION_GUARD_KEYS,
};
use super::{
    ArgInfo, ArgTypeV, ExecType, Field, ModeV, Path, SourceInfo, Validator, eq_ci, is_scalar, non_empty_str, show,
    sql_identifier, type_name,
};
use crate::ident::is_safe_identifier;

impl Validator {
    pub(super) fn proposal(
        &mut self,
        obj: &Map<String, Value>,
        path: &Path,
        ctx: &ProposalCtx<'_>,
        source: Option<&SourceInfo>,
    ) {
        let patch = self.patch(obj, path, ctx);
        let allowed = self.allowed_columns(obj, path, ctx);
        let conflict_column = self.conflict_guard(obj, path);

        if let Some(allowed) = &allowed {
            for (col, _) in patch.iter() {
                if !allowed.iter().any(|a| a == col) {
                    self.error(
                        "PATCH_COLUMN_NOT_ALLOWED",
                        &path.key("patch").key(col),
                        format!("patch column {} is not in allowed_columns; add it to allowed_columns or remove it from patch", show(col)),
                    );
                }
            }
        }
        if let Some(cc) = &conflict_column {
            let in_allowed = allowed.as_ref().is_some_and(|a| a.iter().any(|c| eq_ci(c, cc)));
            let in_patch = patch.iter().any(|(c, _)| eq_ci(c, cc));
            if in_allowed || in_patch {
                self.error(
                    "CONFLICT_COLUMN_PATCHED",
                    &path.key("conflict_guard").key("column"),
                    "the conflict guard column is compared at apply time and must not be patched; remove it from patch and allowed_columns",
                );
            }
        }

        if let Some(nb) = obj.get("numeric_bounds") {
            self.numeric_bounds(nb, &path.key("numeric_bounds"), &patch, ctx);
        }
        if let Some(tg) = obj.get("transition_guards") {
            self.transition_guards(
                tg,
                &path.key("transition_guards"),
                &patch,
                ctx,
                conflict_column.as_deref(),
            );
        }
        if let Some(ap) = obj.get("approval") {
            self.approval(ap, &path.key("approval"));
        }

        // Which executor applies this proposal.
        let exec = match obj.get("executor") {
            None => Some(ExecType::SqlUpdate),
            Some(Value::String(s)) if s == "sql_update" => Some(ExecType::SqlUpdate),
            Some(Value::String(s)) => match self.executors.get(s) {
                Some(ty) => *ty,
                None => {
                    self.error(
                        "UNKNOWN_EXECUTOR",
                        &path.key("executor"),
                        format!(
                            "executor {} is not defined; use sql_update or name an entry of executors",
                            show(s)
                        ),
                    );
                    None
                }
            },
            Some(_) => {
                self.error(
                    "INVALID_EXECUTOR_REFERENCE",
                    &path.key("executor"),
                    "executor must be a string: sql_update or the name of an entry of executors",
                );
                None
            }
        };
        // The handler request has no owner column yet: a handler could not check it.
        if ctx.target.principal_key.is_some() && matches!(exec, Some(ExecType::HttpHandler | ExecType::CommandHandler))
        {
            self.error(
                "PRINCIPAL_KEY_NEEDS_SQL_UPDATE",
                &path.key("target").key("principal_key"),
                "a principal-scoped proposal is applied with sql_update only: the handler request does not carry the owner column, so an app handler could not check it; remove principal_key or use sql_update",
            );
        }
        if self.mode == Some(ModeV::Review)
            && exec == Some(ExecType::SqlUpdate)
            && let Some(src) = source
        {
            if src.read_only {
                self.error(
                    "READ_ONLY_SOURCE_DIRECT_WRITEBACK",
                    &path.key("source"),
                    "this proposal is applied with sql_update but its source is read_only; use an app-owned executor or set read_only: false and a write_url_env on the source",
                );
            } else if !src.has_write_url {
                self.warn(
                    "WRITEBACK_DISABLED",
                    &path.key("source"),
                    "the source has no write_url_env, so approved proposals cannot be applied with sql_update; add write_url_env or use an app-owned executor",
                );
            }
        }
    }

    /// The capability's `patch` (`cap` is the capability, at `cap_path`).
    fn patch(
        &mut self,
        cap: &Map<String, Value>,
        cap_path: &Path,
        ctx: &ProposalCtx<'_>,
    ) -> Vec<(String, BindingInfo)> {
        let mut out = Vec::new();
        let patch = Field::required(
            "patch",
            "PATCH_REQUIRED",
            "a proposal needs a patch: an object mapping each changed column to {\"fixed\": value} or {\"from_arg\": \"arg\"}",
        );
        let Some(obj) = self.field(cap, cap_path, patch, |v| v.as_object().filter(|o| !o.is_empty())) else {
            return out;
        };
        let path = &cap_path.key("patch");
        for (col, binding) in obj {
            let p = path.key(col);
            if !is_safe_identifier(col) {
                self.error(
                    "INVALID_PATCH_COLUMN",
                    &p,
                    "patch columns must be SQL identifiers matching ^[A-Za-z_][A-Za-z0-9_]*$ (at most 63 characters)",
                );
            }
            let info = self.patch_binding(binding, &p, ctx);
            out.push((col.clone(), info));
        }
        out
    }

    fn patch_binding(&mut self, v: &Value, path: &Path, ctx: &ProposalCtx<'_>) -> BindingInfo {
        let Some(obj) = v.as_object() else {
            self.error(
                "PATCH_BINDING_NOT_OBJECT",
                path,
                format!(
                    "a patch entry must be {{\"fixed\": value}} or {{\"from_arg\": \"arg\"}}, got {}",
                    type_name(v)
                ),
            );
            return BindingInfo::Invalid;
        };
        self.known_keys(obj, PATCH_BINDING_KEYS, path, "a patch entry");
        match (obj.get("fixed"), obj.get("from_arg")) {
            (Some(_), Some(_)) | (None, None) => {
                self.error(
                    "INVALID_PATCH_BINDING",
                    path,
                    "a patch entry needs exactly one of fixed or from_arg",
                );
                BindingInfo::Invalid
            }
            (Some(fixed), None) => {
                if is_scalar(fixed) {
                    BindingInfo::Fixed(fixed.clone())
                } else {
                    self.error(
                        "INVALID_FIXED_VALUE",
                        &path.key("fixed"),
                        format!(
                            "fixed values must be a string, number, boolean or null, got {}",
                            type_name(fixed)
                        ),
                    );
                    BindingInfo::Invalid
                }
            }
            (None, Some(arg)) => {
                let ap = path.key("from_arg");
                let Some(name) = arg.as_str() else {
                    self.error(
                        "INVALID_PATCH_ARG",
                        &ap,
                        "from_arg must be the name of an argument in args",
                    );
                    return BindingInfo::Invalid;
                };
                let Some(args) = ctx.args else {
                    return BindingInfo::FromArg(name.to_owned());
                };
                match args.get(name) {
                    None => {
                        self.error(
                            "INVALID_PATCH_ARG",
                            &ap,
                            format!(
                                "from_arg names {} which is not in args; add the argument or fix the name",
                                show(name)
                            ),
                        );
                        BindingInfo::Invalid
                    }
                    Some(_) if ctx.lookup_arg == Some(name) => {
                        self.error(
                            "PATCH_FROM_LOOKUP_ARG",
                            &ap,
                            "from_arg names the lookup argument, which would write the primary key value into a column; use a separate argument",
                        );
                        BindingInfo::Invalid
                    }
                    Some(info) if !info.required => {
                        self.error(
                            "PATCH_ARG_OPTIONAL",
                            &ap,
                            "arguments used by patch must be required, or the proposed change would be incomplete; remove required: false",
                        );
                        BindingInfo::FromArg(name.to_owned())
                    }
                    Some(_) => BindingInfo::FromArg(name.to_owned()),
                }
            }
        }
    }

    /// The capability's `allowed_columns` (`cap` is the capability, at `cap_path`).
    fn allowed_columns(
        &mut self,
        cap: &Map<String, Value>,
        cap_path: &Path,
        ctx: &ProposalCtx<'_>,
    ) -> Option<Vec<String>> {
        let allowed = Field::required(
            "allowed_columns",
            "ALLOWED_COLUMNS_REQUIRED",
            "a proposal needs allowed_columns: a non-empty array of the only columns writeback may change",
        );
        let items = self.field(cap, cap_path, allowed, |v| v.as_array().filter(|a| !a.is_empty()))?;
        let path = &cap_path.key("allowed_columns");
        let mut out: Vec<String> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let p = path.idx(i);
            let Some(col) = item.as_str().filter(|s| is_safe_identifier(s)) else {
                self.error(
                    "INVALID_ALLOWED_COLUMN",
                    &p,
                    "allowed columns must be SQL identifiers matching ^[A-Za-z_][A-Za-z0-9_]*$ (at most 63 characters)",
                );
                continue;
            };
            if out.iter().any(|c| c == col) {
                self.error(
                    "INVALID_ALLOWED_COLUMN",
                    &p,
                    "this column is listed twice; remove the duplicate",
                );
                continue;
            }
            let is = |key: &Option<String>| key.as_deref().is_some_and(|k| eq_ci(k, col));
            let key = if is(&ctx.target.primary_key) {
                Some("primary key")
            } else if is(&ctx.target.tenant_key) {
                Some("tenant key")
            } else if is(&ctx.target.principal_key) {
                Some("principal key")
            } else {
                None
            };
            if let Some(key) = key {
                self.error(
                    "ALLOWED_COLUMN_IS_KEY",
                    &p,
                    format!("the {key} column can never be changed by a proposal; remove it from allowed_columns"),
                );
            }
            out.push(col.to_owned());
        }
        Some(out)
    }

    /// The capability's `conflict_guard` (`cap` is the capability, at `cap_path`); its column.
    fn conflict_guard(&mut self, cap: &Map<String, Value>, cap_path: &Path) -> Option<String> {
        let guard = Field::required(
            "conflict_guard",
            "CONFLICT_GUARD_REQUIRED",
            "a proposal needs conflict_guard, e.g. {\"column\": \"updated_at\"}, so apply fails when the row changed after review",
        );
        let obj = self.field(cap, cap_path, guard, Value::as_object)?;
        let path = &cap_path.key("conflict_guard");
        self.known_keys(obj, CONFLICT_GUARD_KEYS, path, "conflict_guard");
        let column = Field::optional(
            "column",
            "INVALID_CONFLICT_COLUMN",
            "conflict_guard.column must be an SQL identifier matching ^[A-Za-z_][A-Za-z0-9_]*$ (at most 63 characters)",
        );
        let column = self.field(obj, path, column, sql_identifier).map(str::to_owned);
        let ack = Field::optional(
            "weak_guard_ack",
            "INVALID_WEAK_GUARD_ACK",
            "weak_guard_ack must be true or false",
        );
        let ack = self.field(obj, path, ack, Value::as_bool).unwrap_or(false);
        let advance = Field::optional(
            "advance",
            "INVALID_VERSION_ADVANCE",
            "conflict_guard.advance must be \"timestamp\" or \"increment\"",
        );
        let advances = self
            .field(obj, path, advance, |v| {
                v.as_str().filter(|s| ["timestamp", "increment"].contains(s))
            })
            .is_some();
        if advances && !obj.contains_key("column") {
            self.error(
                "VERSION_ADVANCE_NEEDS_COLUMN",
                &path.key("advance"),
                "conflict_guard.advance moves a version column: name it in conflict_guard.column (a row-hash guard changes by itself)",
            );
        }
        if !obj.contains_key("column") {
            if ack {
                self.warn(
                    "WEAK_CONFLICT_GUARD",
                    &path.key("weak_guard_ack"),
                    "without a version column the guard compares a hash of the row as read; prefer a version or updated_at column",
                );
            } else {
                self.error(
                    "CONFLICT_GUARD_COLUMN_REQUIRED",
                    &path.key("column"),
                    "conflict_guard needs a version column (e.g. updated_at or version), or weak_guard_ack: true to accept a row-hash guard",
                );
            }
        }
        column
    }

    fn numeric_bounds(&mut self, v: &Value, path: &Path, patch: &[(String, BindingInfo)], ctx: &ProposalCtx<'_>) {
        let Some(obj) = v.as_object() else {
            self.error(
                "NUMERIC_BOUND_NOT_OBJECT",
                path,
                "numeric_bounds must be an object mapping patched columns to {\"minimum\", \"maximum\"}",
            );
            return;
        };
        for (col, bound) in obj {
            let p = path.key(col);
            let binding = patch.iter().find(|(c, _)| c == col).map(|(_, b)| b);
            if !is_safe_identifier(col) {
                self.error(
                    "INVALID_NUMERIC_BOUND_COLUMN",
                    &p,
                    "numeric_bounds keys must be SQL identifiers matching ^[A-Za-z_][A-Za-z0-9_]*$",
                );
            } else if binding.is_none() {
                self.error(
                    "NUMERIC_BOUND_PATCH_COLUMN_REQUIRED",
                    &p,
                    format!(
                        "{} is not patched, so its bound would never apply; add it to patch or remove the bound",
                        show(col)
                    ),
                );
            }
            let Some(bo) = bound.as_object() else {
                self.error(
                    "NUMERIC_BOUND_NOT_OBJECT",
                    &p,
                    "a numeric bound must be an object like {\"minimum\": 0, \"maximum\": 10000}",
                );
                continue;
            };
            self.known_keys(bo, NUMERIC_BOUND_KEYS, &p, "a numeric bound");
            let lim = self.number_bounds(bo, &p);
            if !bo.contains_key("minimum") && !bo.contains_key("maximum") {
                self.error(
                    "NUMERIC_BOUND_EMPTY",
                    &p,
                    "a numeric bound needs minimum, maximum or both",
                );
            }
            self.numeric_range(lim, &p);
            match binding {
                Some(BindingInfo::Fixed(value)) => {
                    let ok = value.as_f64().is_some_and(|n| {
                        value.is_number() && lim[0].is_none_or(|lo| n >= lo) && lim[1].is_none_or(|hi| n <= hi)
                    });
                    if !ok {
                        self.error(
                            "FIXED_VALUE_OUT_OF_BOUNDS",
                            &p,
                            "the fixed patch value of this column is not a number within its bounds; fix the value or the bound",
                        );
                    }
                }
                Some(BindingInfo::FromArg(arg)) => {
                    let ty = ctx.args.and_then(|a| a.get(arg)).and_then(|a| a.ty);
                    if ty.is_some_and(|t| t != ArgTypeV::Number) {
                        self.error(
                            "NUMERIC_BOUND_REQUIRES_NUMBER_ARG",
                            &p,
                            format!("this column is bounded but takes argument {} which is not a number; change the argument type to number", show(arg)),
                        );
                    }
                }
                Some(BindingInfo::Invalid) | None => {}
            }
        }
    }

    fn transition_guards(
        &mut self,
        v: &Value,
        path: &Path,
        patch: &[(String, BindingInfo)],
        ctx: &ProposalCtx<'_>,
        conflict_column: Option<&str>,
    ) {
        let Some(obj) = v.as_object() else {
            self.error(
                "TRANSITION_GUARD_NOT_OBJECT",
                path,
                "transition_guards must be an object mapping patched columns to {\"allowed\": {from: [to, ...]}}",
            );
            return;
        };
        for (col, guard) in obj {
            let p = path.key(col);
            let binding = patch.iter().find(|(c, _)| c == col).map(|(_, b)| b);
            if !is_safe_identifier(col) {
                self.error(
                    "INVALID_TRANSITION_COLUMN",
                    &p,
                    "transition_guards keys must be SQL identifiers matching ^[A-Za-z_][A-Za-z0-9_]*$",
                );
            } else if binding.is_none() {
                self.error(
                    "TRANSITION_PATCH_COLUMN_REQUIRED",
                    &p,
                    format!("{} is not patched, so its transition guard would never apply; add it to patch or remove the guard", show(col)),
                );
            }
            let Some(go) = guard.as_object() else {
                self.error(
                    "TRANSITION_GUARD_NOT_OBJECT",
                    &p,
                    "a transition guard must be an object like {\"allowed\": {\"open\": [\"paid\", \"void\"]}}",
                );
                continue;
            };
            self.known_keys(go, TRANSITION_GUARD_KEYS, &p, "a transition guard");
            let from_column = Field::optional(
                "from_column",
                "INVALID_TRANSITION_FROM_COLUMN",
                "from_column must be an SQL identifier matching ^[A-Za-z_][A-Za-z0-9_]*$",
            );
            if let Some(s) = self.field(go, &p, from_column, sql_identifier) {
                let readable = ctx.visible.iter().any(|c| c == s)
                    || ctx.target.primary_key.as_deref() == Some(s)
                    || ctx.target.tenant_key.as_deref() == Some(s)
                    || conflict_column == Some(s);
                if !readable {
                    self.error(
                        "TRANSITION_FROM_COLUMN_NOT_VISIBLE",
                        &p.key("from_column"),
                        "from_column must be a visible column, the primary key, the tenant key or the conflict column; add it to visible_columns",
                    );
                }
            }
            let allowed = Field::required(
                "allowed",
                "TRANSITION_ALLOWED_REQUIRED",
                "allowed must be a non-empty object mapping each from state to its allowed to states",
            );
            let mut targets: Vec<&str> = Vec::new();
            if let Some(allowed) = self.field(go, &p, allowed, |v| v.as_object().filter(|o| !o.is_empty())) {
                let ap = p.key("allowed");
                for (from, tos) in allowed {
                    let fp = ap.key(from);
                    if from.trim().is_empty() {
                        self.error(
                            "TRANSITION_FROM_REQUIRED",
                            &fp,
                            "a transition needs a non-empty from state",
                        );
                    }
                    let list = tos.as_array().filter(|a| !a.is_empty());
                    let valid = list.is_some_and(|a| a.iter().all(|t| non_empty_str(t).is_some()));
                    if valid {
                        targets.extend(list.into_iter().flatten().filter_map(Value::as_str));
                    } else {
                        self.error(
                            "TRANSITION_TO_VALUES_REQUIRED",
                            &fp,
                            "each from state needs a non-empty array of non-empty to states",
                        );
                    }
                }
            }
            match binding {
                Some(BindingInfo::Fixed(value))
                    if !targets.is_empty() && !value.as_str().is_some_and(|s| targets.contains(&s)) =>
                {
                    self.error(
                        "TRANSITION_TARGET_UNREACHABLE",
                        &p,
                        "the fixed patch value of this column is not a to state of any allowed transition, so every proposal would be refused; fix the value or the guard",
                    );
                }
                Some(BindingInfo::FromArg(arg)) => {
                    let ty = ctx.args.and_then(|a| a.get(arg)).and_then(|a| a.ty);
                    if ty.is_some_and(|t| t != ArgTypeV::String) {
                        self.error(
                            "TRANSITION_REQUIRES_STRING_ARG",
                            &p,
                            format!("states are strings, but this column takes argument {} which is not a string; change the argument type to string", show(arg)),
                        );
                    }
                }
                _ => {}
            }
        }
    }

    fn approval(&mut self, v: &Value, path: &Path) {
        let Some(obj) = v.as_object() else {
            self.error(
                "INVALID_APPROVAL",
                path,
                "approval must be an object like {\"mode\": \"human\", \"required_approvals\": 1}",
            );
            return;
        };
        self.known_keys(obj, APPROVAL_KEYS, path, "approval");
        let mode = Field::optional(
            "mode",
            "INVALID_APPROVAL_MODE",
            "approval.mode must be human (or policy, which behaves as human)",
        );
        let mode = self.field(obj, path, mode, |v| {
            v.as_str().filter(|m| ["human", "policy"].contains(m))
        });
        if mode == Some("policy") {
            self.warn(
                "APPROVAL_POLICY_NOT_AUTOMATIC",
                &path.key("mode"),
                "policy approval is not automatic here: every proposal still needs a human approval; set mode to human",
            );
        }
        let role = Field::optional(
            "required_role",
            "INVALID_REQUIRED_ROLE",
            "required_role must be a non-empty role name",
        );
        if self.field(obj, path, role, non_empty_str).is_some() && !self.identity_info.operator {
            self.warn(
                "APPROVAL_ROLE_NEEDS_OPERATOR_IDENTITY",
                &path.key("required_role"),
                "local approve, reject and apply of this capability need a verified operator token carrying this role, and identity.operator is not configured, so they are refused; Kubernetes mode checks the role at admission",
            );
        }
        let approvals_message = format!("required_approvals must be a whole number from 1 to {MAX_REQUIRED_APPROVALS}");
        let approvals = Field::optional("required_approvals", "INVALID_REQUIRED_APPROVALS", &approvals_message);
        self.field(obj, path, approvals, |v| {
            v.as_u64().filter(|n| (1..=MAX_REQUIRED_APPROVALS).contains(n))
        });
    }
}

/// What the proposal checks need from the rest of the capability.
pub(super) struct ProposalCtx<'a> {
    pub(super) target: &'a TargetInfo,
    pub(super) args: Option<&'a HashMap<String, ArgInfo>>,
    pub(super) lookup_arg: Option<&'a str>,
    pub(super) visible: &'a [String],
}

#[derive(Debug, Clone)]
enum BindingInfo {
    Fixed(Value),
    FromArg(String),
    Invalid,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::config::validate::tests::minimal;
    use crate::config::validate::validate_value;

    #[test]
    fn version_advance_is_checked() {
        let p = "$.capabilities[1].conflict_guard";
        for (guard, code) in [
            (
                json!({"column": "updated_at", "advance": "later"}),
                "INVALID_VERSION_ADVANCE",
            ),
            (json!({"column": "updated_at", "advance": 1}), "INVALID_VERSION_ADVANCE"),
            (
                json!({"weak_guard_ack": true, "advance": "increment"}),
                "VERSION_ADVANCE_NEEDS_COLUMN",
            ),
        ] {
            let mut doc = minimal();
            doc["capabilities"][1]["conflict_guard"] = guard.clone();
            let r = validate_value(&doc);
            assert!(r.has(code, &format!("{p}.advance")), "{guard}: {r:?}");
        }
        for advance in ["timestamp", "increment"] {
            let mut doc = minimal();
            doc["capabilities"][1]["conflict_guard"] = json!({"column": "updated_at", "advance": advance});
            let r = validate_value(&doc);
            assert!(r.errors.is_empty(), "{advance}: {r:?}");
            let parsed = crate::config::parse_config(&doc.to_string()).ok();
            let guard = parsed
                .as_ref()
                .and_then(|(cfg, _)| cfg.capabilities[1].conflict_guard.as_ref());
            assert_eq!(guard.and_then(|g| g.advance).map(|a| a.as_str()), Some(advance));
        }
    }

    #[test]
    fn protocol_rules() {
        let mut doc = minimal();
        let cap = &mut doc["capabilities"][1];
        cap["allowed_columns"] = json!(["status", "tenant_id", "updated_at"]);
        cap["patch"]["note"] = json!({"from_arg": "invoice_id"});
        cap["patch"]["flag"] = json!({"fixed": {"nested": true}});
        cap["lookup"]["id_from_arg"] = json!("missing");
        let r = validate_value(&doc);
        let p = "$.capabilities[1]";
        assert!(r.has("ALLOWED_COLUMN_IS_KEY", &format!("{p}.allowed_columns[1]")));
        assert!(r.has("CONFLICT_COLUMN_PATCHED", &format!("{p}.conflict_guard.column")));
        assert!(r.has("PATCH_COLUMN_NOT_ALLOWED", &format!("{p}.patch.note")));
        assert!(r.has("INVALID_FIXED_VALUE", &format!("{p}.patch.flag.fixed")));
        assert!(r.has("LOOKUP_ARG_UNKNOWN", &format!("{p}.lookup.id_from_arg")));

        let mut doc = minimal();
        doc["capabilities"][1]["patch"]["status"] = json!({"from_arg": "invoice_id"});
        let r = validate_value(&doc);
        assert!(r.has("PATCH_FROM_LOOKUP_ARG", "$.capabilities[1].patch.status.from_arg"));
    }

    #[test]
    fn writeback_readiness() {
        let mut doc = minimal();
        doc["sources"]["main"]
            .as_object_mut()
            .expect("object")
            .remove("write_url_env");
        let r = validate_value(&doc);
        assert!(r.errors.is_empty());
        assert!(r.has("WRITEBACK_DISABLED", "$.capabilities[1].source"));
        doc["sources"]["main"]["read_only"] = json!(true);
        let r = validate_value(&doc);
        assert!(r.has("READ_ONLY_SOURCE_DIRECT_WRITEBACK", "$.capabilities[1].source"));
        // Shadow mode never applies, so neither rule fires.
        doc["mode"] = json!("shadow");
        let r = validate_value(&doc);
        assert!(r.errors.is_empty() && r.warnings.is_empty(), "{r:?}");
    }
}
