//! `capabilities`: what every capability has (name, kind, source, context, target, args, lookup,
//! visible columns, evidence) and, for reads, that no write field is set.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::codes::{ARG_KEYS, CAPABILITY_KEYS, LOOKUP_KEYS, TARGET_KEYS, WRITE_FIELDS};
use super::proposals::ProposalCtx;
use super::{
    ArgInfo, ArgTypeV, Field, ModeV, Path, Validator, eq_ci, is_reserved_arg_name, non_empty_str, show, sql_identifier,
    type_name,
};
use crate::ident::{is_arg_name, is_capability_name, is_safe_identifier};

impl Validator {
    pub(super) fn capabilities(&mut self, v: Option<&Value>, path: &Path) {
        let arr = match v {
            Some(Value::Array(a)) if !a.is_empty() => a,
            Some(Value::Array(_)) | None => {
                self.error(
                    "CAPABILITIES_REQUIRED",
                    path,
                    "at least one capability is required; add a read capability to capabilities",
                );
                return;
            }
            Some(other) => {
                self.error(
                    "CAPABILITIES_REQUIRED",
                    path,
                    format!("capabilities must be an array, got {}", type_name(other)),
                );
                return;
            }
        };
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (i, cap) in arr.iter().enumerate() {
            let p = path.idx(i);
            if let Some(name) = self.capability(cap, &p) {
                if let Some(first) = seen.get(&name) {
                    self.error(
                        "DUPLICATE_CAPABILITY_NAME",
                        &p.key("name"),
                        format!(
                            "{} is already used by capabilities[{first}]; capability names must be unique",
                            show(&name)
                        ),
                    );
                } else {
                    seen.insert(name, i);
                }
            }
        }
    }

    /// Validates one capability; returns its name when the name is valid.
    fn capability(&mut self, v: &Value, path: &Path) -> Option<String> {
        let Some(obj) = v.as_object() else {
            self.error(
                "CAPABILITY_NOT_OBJECT",
                path,
                format!("a capability must be an object, got {}", type_name(v)),
            );
            return None;
        };
        self.known_keys(obj, CAPABILITY_KEYS, path, "a capability");

        let name = Field::required(
            "name",
            "INVALID_CAPABILITY_NAME",
            "name must be exactly namespace.name, both parts matching ^[A-Za-z_][A-Za-z0-9_]*$, e.g. billing.inspect_invoice",
        );
        let name = self
            .field(obj, path, name, |v| v.as_str().filter(|n| is_capability_name(n)))
            .map(str::to_owned);

        let kind = Field::required("kind", "INVALID_CAPABILITY_KIND", "kind must be read or proposal");
        let kind = self.field(obj, path, kind, |v| match v.as_str()? {
            "read" => Some(false),
            "proposal" => Some(true),
            _ => None,
        });

        let description = Field::optional(
            "description",
            "INVALID_CAPABILITY_DESCRIPTION",
            "description must be a non-empty string that says what the tool does; remove it to use the default",
        );
        self.field(obj, path, description, non_empty_str);
        let returns_hint = Field::optional(
            "returns_hint",
            "INVALID_RETURNS_HINT",
            "returns_hint must be a non-empty string that says what the result contains; remove it if not needed",
        );
        self.field(obj, path, returns_hint, non_empty_str);

        let source = Field::required(
            "source",
            "UNKNOWN_SOURCE",
            "source is required; set it to the name of an entry of sources",
        );
        let source = match self.field(obj, path, source, Value::as_str) {
            Some(s) if self.sources.contains_key(s) => self.sources.get(s).cloned(),
            Some(_) if !self.sources_ok => None,
            Some(s) => {
                self.error(
                    "UNKNOWN_SOURCE",
                    &path.key("source"),
                    format!("source {} is not defined; name an entry of sources", show(s)),
                );
                None
            }
            None => None,
        };

        let context = Field::optional(
            "context",
            "UNKNOWN_CONTEXT",
            "context must be the name of an entry of contexts",
        );
        if let Some(s) = self.field(obj, path, context, Value::as_str)
            && !self.contexts.contains(s)
        {
            self.error(
                "UNKNOWN_CONTEXT",
                &path.key("context"),
                format!(
                    "context {} is not defined; name an entry of contexts or remove context to use trusted_context",
                    show(s)
                ),
            );
        }

        let ack = Field::optional(
            "single_tenant_dev_ack",
            "INVALID_SINGLE_TENANT_DEV_ACK",
            "single_tenant_dev_ack must be true or false",
        );
        let ack = self.field(obj, path, ack, Value::as_bool).unwrap_or(false);
        if let Some(limit) = obj.get("rate_limit") {
            self.token_bucket(limit, &path.key("rate_limit"));
        }
        let target = self.target(obj, path, ack);
        let args = self.args(obj, path);
        let lookup_arg = self.lookup(obj, path, args.as_ref());
        let visible = self.visible_columns(obj, path);

        let evidence = Field::optional(
            "evidence",
            "INVALID_EVIDENCE_POLICY",
            "evidence must be required (evidence is always recorded)",
        );
        let evidence = self.field(obj, path, evidence, |v| {
            v.as_str().filter(|e| ["required", "optional"].contains(e))
        });
        if evidence == Some("optional") {
            self.warn(
                "EVIDENCE_ALWAYS_RECORDED",
                &path.key("evidence"),
                "evidence is always recorded for every call; set evidence to required or remove it",
            );
        }
        let max_rows = Field::optional(
            "max_rows",
            "INVALID_MAX_ROWS",
            "max_rows must be 1 (reads are by primary key); remove max_rows",
        );
        let max_rows = self.field(obj, path, max_rows, |v| v.as_u64().filter(|n| *n >= 1));
        if max_rows.is_some_and(|n| n > 1) {
            self.error(
                "MAX_ROWS_UNSUPPORTED",
                &path.key("max_rows"),
                "reads return exactly one row by primary key, so max_rows can only be 1; remove max_rows",
            );
        }

        match kind {
            Some(false) => {
                for field in WRITE_FIELDS {
                    if obj.contains_key(*field) {
                        self.error(
                            "READ_CAPABILITY_HAS_WRITE_FIELDS",
                            &path.key(field),
                            format!(
                                "{field} only applies to proposal capabilities; remove it or change kind to proposal"
                            ),
                        );
                    }
                }
            }
            Some(true) => {
                if self.mode == Some(ModeV::ReadOnly) {
                    self.warn(
                        "PROPOSAL_HIDDEN_IN_READ_ONLY",
                        &path.key("kind"),
                        "read_only mode lists only read tools, so this proposal capability is not exposed; change mode to shadow or review to use it",
                    );
                }
                let ctx = ProposalCtx {
                    target: &target,
                    args: args.as_ref(),
                    lookup_arg: lookup_arg.as_deref(),
                    visible: &visible,
                };
                self.proposal(obj, path, &ctx, source.as_ref());
            }
            None => {}
        }

        name
    }

    /// The capability's `target` (`cap` is the capability, at `cap_path`).
    fn target(&mut self, cap: &Map<String, Value>, cap_path: &Path, ack: bool) -> TargetInfo {
        let mut info = TargetInfo::default();
        let target = Field::required(
            "target",
            "TARGET_REQUIRED",
            "target is required; set it to {\"schema\", \"table\", \"primary_key\", \"tenant_key\"}",
        );
        let Some(obj) = self.field(cap, cap_path, target, Value::as_object) else {
            return info;
        };
        let path = &cap_path.key("target");
        self.known_keys(obj, TARGET_KEYS, path, "a target");
        for key in ["schema", "table", "primary_key", "tenant_key", "principal_key"] {
            let message = format!(
                "target.{key} must be an SQL identifier matching ^[A-Za-z_][A-Za-z0-9_]*$ (at most 63 characters)"
            );
            // A target without tenant_key must say single_tenant_dev, which is checked below.
            let field = if key == "tenant_key" || key == "principal_key" {
                Field::optional(key, "INVALID_TARGET_IDENTIFIER", &message)
            } else {
                Field::required(key, "INVALID_TARGET_IDENTIFIER", &message)
            };
            let identifier = self.field(obj, path, field, sql_identifier).map(str::to_owned);
            match key {
                "primary_key" => info.primary_key = identifier,
                "tenant_key" => info.tenant_key = identifier,
                "principal_key" => info.principal_key = identifier,
                _ => {}
            }
        }
        let tenant_present = obj.contains_key("tenant_key");
        let single_tenant_dev = Field::optional(
            "single_tenant_dev",
            "INVALID_SINGLE_TENANT_DEV",
            "single_tenant_dev must be true or false",
        );
        let single_tenant_dev = self
            .field(obj, path, single_tenant_dev, Value::as_bool)
            .unwrap_or(false);
        if single_tenant_dev && tenant_present {
            self.error(
                "SINGLE_TENANT_DEV_CONFLICT",
                &path.key("single_tenant_dev"),
                "single_tenant_dev and tenant_key contradict each other; keep tenant_key and remove single_tenant_dev",
            );
        } else if !single_tenant_dev && !tenant_present {
            self.error(
                "TENANT_GUARD_REQUIRED",
                &path.key("tenant_key"),
                "tenant_key is required so every query is scoped to the trusted tenant; set it to the tenant column",
            );
        }
        if single_tenant_dev && !tenant_present && !ack {
            self.warn(
                "SINGLE_TENANT_DEV_EXCEPTION",
                &path.key("single_tenant_dev"),
                "this capability has no tenant guard and can read any row of the table; use it for development only, or set single_tenant_dev_ack: true on the capability to acknowledge",
            );
        }
        if let (Some(pk), Some(tk)) = (&info.primary_key, &info.tenant_key)
            && eq_ci(pk, tk)
        {
            self.error(
                "TENANT_KEY_IS_PRIMARY_KEY",
                &path.key("tenant_key"),
                "tenant_key must be the tenant column, not the primary key",
            );
        }
        if let Some(owner) = &info.principal_key
            && [&info.primary_key, &info.tenant_key]
                .into_iter()
                .flatten()
                .any(|k| eq_ci(k, owner))
        {
            self.error(
                "PRINCIPAL_KEY_IS_KEY",
                &path.key("principal_key"),
                "principal_key must be the column holding the row's owner, not the primary key or the tenant key",
            );
        }
        info
    }

    /// The capability's `args` (`cap` is the capability, at `cap_path`).
    fn args(&mut self, cap: &Map<String, Value>, cap_path: &Path) -> Option<HashMap<String, ArgInfo>> {
        let args = Field::required(
            "args",
            "ARGS_REQUIRED",
            "args must be an object with at least one argument, e.g. {\"invoice_id\": {\"type\": \"string\", \"max_length\": 64}}",
        );
        let obj = self.field(cap, cap_path, args, |v| v.as_object().filter(|o| !o.is_empty()))?;
        let path = &cap_path.key("args");
        let mut out = HashMap::new();
        for (name, spec) in obj {
            let p = path.key(name);
            if !is_arg_name(name) {
                self.error(
                    "INVALID_ARG_NAME",
                    &p,
                    "argument names must match ^[A-Za-z_][A-Za-z0-9_]*$ (at most 63 characters); rename the argument",
                );
            } else if is_reserved_arg_name(name) {
                self.error(
                    "MODEL_CONTROLLED_RESERVED_ARG",
                    &p,
                    format!("{} is reserved: tenant, principal, version and identifier values come from trusted context and config, never from the model; rename or remove the argument", show(name)),
                );
            }
            let info = self.arg(spec, &p);
            out.insert(name.clone(), info);
        }
        Some(out)
    }

    fn arg(&mut self, v: &Value, path: &Path) -> ArgInfo {
        let mut info = ArgInfo {
            ty: None,
            required: true,
        };
        let Some(obj) = v.as_object() else {
            self.error(
                "ARG_NOT_OBJECT",
                path,
                format!(
                    "an argument must be an object like {{\"type\": \"string\"}}, got {}",
                    type_name(v)
                ),
            );
            return info;
        };
        self.known_keys(obj, ARG_KEYS, path, "an argument");
        let ty = Field::required("type", "INVALID_ARG_TYPE", "type must be string, number or boolean");
        info.ty = self.field(obj, path, ty, |v| match v.as_str()? {
            "string" => Some(ArgTypeV::String),
            "number" => Some(ArgTypeV::Number),
            "boolean" => Some(ArgTypeV::Boolean),
            _ => None,
        });
        let description = Field::optional(
            "description",
            "INVALID_ARG_DESCRIPTION",
            "description must be a non-empty string; remove it to use the default",
        );
        self.field(obj, path, description, non_empty_str);
        let required = Field::optional("required", "INVALID_ARG_REQUIRED", "required must be true or false");
        if let Some(required) = self.field(obj, path, required, Value::as_bool) {
            info.required = required;
        }
        let mut max_length = None;
        let length = Field::optional(
            "max_length",
            "INVALID_MAX_LENGTH",
            "max_length must be a whole number of characters, at least 1",
        );
        if let Some(n) = self.field(obj, path, length, |v| v.as_u64().filter(|n| *n >= 1)) {
            if info.ty.is_some_and(|t| t != ArgTypeV::String) {
                self.error(
                    "INVALID_MAX_LENGTH",
                    &path.key("max_length"),
                    "max_length only applies to string arguments; remove it",
                );
            } else {
                max_length = Some(n);
            }
        }
        let mut bounds = self.number_bounds(obj, path);
        for (slot, key) in ["minimum", "maximum"].into_iter().enumerate() {
            if bounds[slot].is_some() && info.ty.is_some_and(|t| t != ArgTypeV::Number) {
                self.error(
                    "NUMERIC_BOUNDS_REQUIRE_NUMBER",
                    &path.key(key),
                    format!("{key} only applies to number arguments; remove it or change type to number"),
                );
                bounds[slot] = None;
            }
        }
        self.numeric_range(bounds, path);
        let members = Field::optional(
            "enum",
            "INVALID_ENUM",
            "enum must be a non-empty array of the allowed values",
        );
        if let Some(items) = self.field(obj, path, members, |v| v.as_array().filter(|a| !a.is_empty())) {
            let ep = path.key("enum");
            let mut seen: Vec<&Value> = Vec::new();
            for (k, item) in items.iter().enumerate() {
                let ip = ep.idx(k);
                let problem = enum_value_problem(item, info.ty, max_length, bounds);
                if let Some(problem) = problem {
                    self.error("INVALID_ENUM_VALUE", &ip, problem);
                } else if seen.contains(&item) {
                    self.error(
                        "INVALID_ENUM_VALUE",
                        &ip,
                        "this value is listed twice; remove the duplicate",
                    );
                }
                seen.push(item);
            }
        }
        info
    }

    /// The capability's `lookup` (`cap` is the capability, at `cap_path`); the lookup argument.
    fn lookup(
        &mut self,
        cap: &Map<String, Value>,
        cap_path: &Path,
        args: Option<&HashMap<String, ArgInfo>>,
    ) -> Option<String> {
        let lookup = Field::required(
            "lookup",
            "LOOKUP_REQUIRED",
            "lookup is required; set it to {\"id_from_arg\": \"<argument holding the primary key>\"}",
        );
        let obj = self.field(cap, cap_path, lookup, Value::as_object)?;
        let path = &cap_path.key("lookup");
        self.known_keys(obj, LOOKUP_KEYS, path, "lookup");
        let id_from_arg = Field::required(
            "id_from_arg",
            "LOOKUP_ARG_REQUIRED",
            "lookup.id_from_arg is required; set it to the argument that holds the primary key",
        );
        let arg = self.field(obj, path, id_from_arg, non_empty_str)?;
        let p = path.key("id_from_arg");
        if let Some(args) = args {
            match args.get(arg) {
                None => self.error(
                    "LOOKUP_ARG_UNKNOWN",
                    &p,
                    format!("lookup.id_from_arg names {} which is not in args; add the argument or fix the name", show(arg)),
                ),
                Some(info) if !info.required => self.error(
                    "LOOKUP_ARG_OPTIONAL",
                    &p,
                    "the lookup argument must be required, since every call reads one row by primary key; remove required: false",
                ),
                Some(_) => {}
            }
        }
        Some(arg.to_owned())
    }

    /// The capability's `visible_columns` (`cap` is the capability, at `cap_path`).
    fn visible_columns(&mut self, cap: &Map<String, Value>, cap_path: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let visible = Field::required(
            "visible_columns",
            "VISIBLE_COLUMNS_REQUIRED",
            "visible_columns must be a non-empty array of the columns returned to the model",
        );
        let Some(items) = self.field(cap, cap_path, visible, |v| v.as_array().filter(|a| !a.is_empty())) else {
            return out;
        };
        let path = &cap_path.key("visible_columns");
        for (i, item) in items.iter().enumerate() {
            let p = path.idx(i);
            match item.as_str() {
                Some(s) if is_safe_identifier(s) => {
                    if out.iter().any(|c: &String| c == s) {
                        self.error(
                            "INVALID_VISIBLE_COLUMN",
                            &p,
                            "this column is listed twice; remove the duplicate",
                        );
                    } else {
                        out.push(s.to_owned());
                    }
                }
                _ => self.error(
                    "INVALID_VISIBLE_COLUMN",
                    &p,
                    "visible columns must be SQL identifiers matching ^[A-Za-z_][A-Za-z0-9_]*$ (at most 63 characters)",
                ),
            }
        }
        out
    }
}

/// The key columns of a capability's target, which the proposal checks compare columns against.
#[derive(Debug, Clone, Default)]
pub(super) struct TargetInfo {
    pub(super) primary_key: Option<String>,
    pub(super) tenant_key: Option<String>,
    pub(super) principal_key: Option<String>,
}

/// Why an enum member does not fit its argument, if it does not.
fn enum_value_problem(
    item: &Value,
    ty: Option<ArgTypeV>,
    max_length: Option<u64>,
    bounds: [Option<f64>; 2],
) -> Option<String> {
    let Some(ty) = ty else {
        return (!matches!(item, Value::String(_) | Value::Number(_) | Value::Bool(_)))
            .then(|| "enum values must be strings, numbers or booleans".to_owned());
    };
    let matches_type = match ty {
        ArgTypeV::String => item.is_string(),
        ArgTypeV::Number => item.is_number(),
        ArgTypeV::Boolean => item.is_boolean(),
    };
    if !matches_type {
        return Some(format!(
            "enum values of a {} argument must be {}s, got {}",
            ty.name(),
            ty.name(),
            type_name(item)
        ));
    }
    if let (Some(s), Some(max)) = (item.as_str(), max_length)
        && s.chars().count() as u64 > max
    {
        return Some(format!(
            "this value is longer than max_length ({max}); shorten it or raise max_length"
        ));
    }
    if let Some(n) = item.as_f64().filter(|_| item.is_number())
        && (bounds[0].is_some_and(|lo| n < lo) || bounds[1].is_some_and(|hi| n > hi))
    {
        return Some(
            "this value is outside the argument's minimum and maximum; fix the value or the bounds".to_owned(),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::config::validate::tests::minimal;
    use crate::config::validate::validate_value;

    #[test]
    fn read_capability_write_fields() {
        let mut doc = minimal();
        doc["capabilities"][0]["patch"] = json!({"status": {"fixed": "void"}});
        doc["capabilities"][0]["executor"] = json!("sql_update");
        let r = validate_value(&doc);
        assert!(r.has("READ_CAPABILITY_HAS_WRITE_FIELDS", "$.capabilities[0].patch"));
        assert!(r.has("READ_CAPABILITY_HAS_WRITE_FIELDS", "$.capabilities[0].executor"));
    }

    #[test]
    fn duplicate_names_and_single_tenant_dev() {
        let mut doc = minimal();
        doc["capabilities"][1]["name"] = json!("billing.inspect_invoice");
        let t = &mut doc["capabilities"][0]["target"];
        t.as_object_mut().expect("object").remove("tenant_key");
        t["single_tenant_dev"] = json!(true);
        let r = validate_value(&doc);
        assert!(r.has("DUPLICATE_CAPABILITY_NAME", "$.capabilities[1].name"));
        assert!(r.has(
            "SINGLE_TENANT_DEV_EXCEPTION",
            "$.capabilities[0].target.single_tenant_dev"
        ));
        doc["capabilities"][0]["single_tenant_dev_ack"] = json!(true);
        let r = validate_value(&doc);
        assert!(!r.has(
            "SINGLE_TENANT_DEV_EXCEPTION",
            "$.capabilities[0].target.single_tenant_dev"
        ));
    }
}
