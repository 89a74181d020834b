//! What onboarding shows: the inspection (JSON and text), the final preview of what will be
//! written and exposed, `.env.example`, and the next commands.

use serde_json::{Value, json};
use synapsor_core::catalog::{Catalog, TableKind};
use synapsor_core::config::{CapabilityKind, Mode, ResultFormat};

use crate::classify::{KeySuggestion, suggest};
use crate::plan::Onboarding;
use crate::selection::Writeback;

/// Said with every inspection.
pub const SUGGESTIONS_NOTE: &str = "Column classifications are suggestions from names and types (no table data was read): confirm them before exposing a table.";

/// The inspection as JSON: the catalog with each table's suggestions.
pub fn inspection_json(catalog: &Catalog) -> Value {
    let tables: Vec<Value> = catalog
        .tables
        .iter()
        .map(|t| {
            let s = suggest(t);
            let columns: Vec<Value> = t
                .columns
                .iter()
                .map(|c| {
                    let cs = s.column(&c.name);
                    json!({
                        "name": c.name,
                        "data_type": c.data_type,
                        "nullable": c.nullable,
                        "has_default": c.has_default,
                        "suggestions": cs.map(|x| json!(x.tags)).unwrap_or(json!([])),
                        "visible_by_default": cs.is_some_and(|x| x.visible_by_default),
                    })
                })
                .collect();
            json!({
                "name": t.name,
                "kind": t.kind,
                "primary_key": t.primary_key,
                "unique_keys": t.unique_keys,
                "foreign_keys": t.foreign_keys,
                "indexes": t.indexes,
                "columns": columns,
                "suggested": {
                    "key": s.primary_key,
                    "tenant_column": s.tenant(),
                    "tenant_candidates": s.tenant_candidates,
                    "conflict_column": s.conflict(),
                    "conflict_candidates": s.conflict_candidates,
                    "visible_columns": s.default_visible(),
                },
            })
        })
        .collect();
    json!({
        "ok": true,
        "engine": catalog.engine.as_str(),
        "schema": catalog.schema,
        "note": SUGGESTIONS_NOTE,
        "tables": tables,
    })
}

/// The inspection for a terminal.
pub fn inspection_text(catalog: &Catalog) -> String {
    let mut out = format!(
        "{} schema {}: {} table(s) and view(s)\n",
        catalog.engine.as_str(),
        catalog.schema,
        catalog.tables.len()
    );
    for t in &catalog.tables {
        let s = suggest(t);
        let kind = if t.kind == TableKind::View { "view" } else { "table" };
        out.push_str(&format!("\n{kind} {}\n", t.name));
        for c in &t.columns {
            let tags: Vec<String> = s
                .column(&c.name)
                .map(|x| {
                    x.tags
                        .iter()
                        .map(|t| serde_json::to_value(t).ok().and_then(|v| v.as_str().map(str::to_owned)))
                        .map(Option::unwrap_or_default)
                        .collect()
                })
                .unwrap_or_default();
            let null = if c.nullable { "" } else { " not null" };
            let tags = if tags.is_empty() {
                String::new()
            } else {
                format!("  [{}]", tags.join(", "))
            };
            out.push_str(&format!("  {:<24} {}{null}{tags}\n", c.name, c.data_type));
        }
        if !t.primary_key.is_empty() {
            out.push_str(&format!("  primary key ({})\n", t.primary_key.join(", ")));
        }
        for u in &t.unique_keys {
            out.push_str(&format!("  unique ({})\n", u.join(", ")));
        }
        for fk in &t.foreign_keys {
            out.push_str(&format!(
                "  foreign key ({}) -> {} ({})\n",
                fk.columns.join(", "),
                fk.references_table,
                fk.references_columns.join(", ")
            ));
        }
        let key = match &s.primary_key {
            KeySuggestion::Single { column } => column.clone(),
            KeySuggestion::Composite { columns } => format!("ambiguous ({}): pass --primary-key", columns.join(", ")),
            KeySuggestion::Missing => "none: pass --primary-key".into(),
        };
        let tenant = match s.tenant_candidates.as_slice() {
            [] => "none: pass --tenant-column (or --single-tenant-dev)".to_owned(),
            [one] => one.clone(),
            many => format!("ambiguous ({}): pass --tenant-column", many.join(", ")),
        };
        let conflict = s
            .conflict()
            .map_or("none: pass --conflict-column for proposals".to_owned(), str::to_owned);
        out.push_str(&format!(
            "  suggested: key {key}; tenant {tenant}; version {conflict}; visible {}\n",
            s.default_visible().join(", ")
        ));
    }
    out.push('\n');
    out.push_str(SUGGESTIONS_NOTE);
    out.push('\n');
    out
}

/// The final preview: what will be written, what the model will see, and what it will not.
pub fn preview_text(o: &Onboarding) -> String {
    let mut out = String::from("What I am about to write\n");
    let line = |out: &mut String, k: &str, v: &str| out.push_str(&format!("  {k:<16} {v}\n"));
    let ctx = o.config.trusted_context.as_ref().map(|c| {
        format!(
            "environment ({} = tenant, {} = principal)",
            c.values.tenant_id_env.as_deref().unwrap_or("SYNAPSOR_TENANT_ID"),
            c.values.principal_env.as_deref().unwrap_or("SYNAPSOR_PRINCIPAL")
        )
    });
    line(&mut out, "trusted context", ctx.as_deref().unwrap_or("environment"));
    if let Some((name, src)) = o.config.sources.first() {
        let write = match (&src.write_url_env, src.read_only) {
            (Some(w), _) => format!(", writer URL from {w}"),
            (None, true) => ", read only (the app's handler writes)".into(),
            (None, false) => String::new(),
        };
        line(
            &mut out,
            "source",
            &format!(
                "{name}: {}, read URL from {}{write}",
                src.engine.as_str(),
                src.read_url_env
            ),
        );
    }
    line(&mut out, "table", &format!("{}.{}", o.schema, o.table));
    line(&mut out, "key", &o.primary_key);
    line(
        &mut out,
        "tenant column",
        o.tenant_column.as_deref().unwrap_or("none (single-tenant development)"),
    );
    if o.mode != Mode::ReadOnly {
        line(
            &mut out,
            "version column",
            o.conflict_column
                .as_deref()
                .unwrap_or("none (weak guard: a hash of the row)"),
        );
    }
    line(&mut out, "visible fields", &o.visible_columns.join(", "));
    if !o.hidden_columns.is_empty() {
        let hidden: Vec<String> = o
            .hidden_columns
            .iter()
            .map(|h| format!("{} ({})", h.name, h.reason))
            .collect();
        line(&mut out, "hidden fields", &hidden.join(", "));
    }
    line(&mut out, "mode", o.mode.as_str());
    let envelope = match o.config.result_format {
        Some(ResultFormat::V1) => "v1",
        _ => "v2",
    };
    line(&mut out, "result envelope", envelope);
    if let Some(w) = o.writeback {
        let how = match w {
            Writeback::SqlUpdate => "sql_update: guarded single-row UPDATE after approval".to_owned(),
            Writeback::HttpHandler => "http_handler: a signed call to the app's handler after approval".to_owned(),
            Writeback::CommandHandler => "command_handler: the app's command after approval".to_owned(),
        };
        line(&mut out, "writeback", &how);
    }
    out.push_str("\nTools the model will see\n");
    for c in &o.config.capabilities {
        let args: Vec<String> = c
            .args
            .iter()
            .map(|(n, a)| {
                let mut s = format!("{n}: {}", a.arg_type.as_str());
                if let Some(e) = &a.allowed {
                    let vals: Vec<String> = e
                        .iter()
                        .map(|v| v.as_str().map_or(v.to_string(), str::to_owned))
                        .collect();
                    s.push_str(&format!(" ({})", vals.join("|")));
                }
                if a.minimum.is_some() || a.maximum.is_some() {
                    let f = |x: Option<f64>| x.map_or(String::new(), |v| v.to_string());
                    s.push_str(&format!(" [{}..{}]", f(a.minimum), f(a.maximum)));
                }
                s
            })
            .collect();
        let kind = if c.kind == CapabilityKind::Read {
            "read"
        } else {
            "proposal"
        };
        out.push_str(&format!("  {} ({kind}; {})\n", c.name, args.join(", ")));
        if let Some(d) = &c.description {
            out.push_str(&format!("      {d}\n"));
        }
    }
    out.push_str("\nNot exposed to the model\n");
    for n in synapsor_core::tools::NEVER_EXPOSED {
        out.push_str(&format!("  - {n}\n"));
    }
    if !o.inferred.is_empty() {
        out.push_str("\nChosen from the catalog (suggestions)\n");
        for i in &o.inferred {
            out.push_str(&format!("  - {i}\n"));
        }
    }
    for w in &o.warnings {
        out.push_str(&format!("\nwarning[{}]: {}\n", w.code, w.message));
    }
    out
}

/// `.env.example`: every variable the config reads, with placeholders (never a real value).
pub fn env_example(o: &Onboarding) -> String {
    let mut out = String::from(
        "# Environment for synapsor.runner.json. Placeholders only: put real values in your secret store,\n# never in this file or the config.\n",
    );
    for e in &o.env {
        out.push_str(&format!("\n# {}\n{}={}\n", e.purpose, e.name, e.placeholder));
    }
    out
}

/// The commands to run next.
pub fn next_steps(o: &Onboarding, config: &str) -> Vec<String> {
    let cfg = if config == "synapsor.runner.json" {
        String::new()
    } else {
        format!(" --config {config}")
    };
    let mut steps = vec![format!(
        "set {} (see .env.example)",
        o.env.iter().map(|e| e.name.as_str()).collect::<Vec<_>>().join(", ")
    )];
    steps.push(format!("synapsor-runner config validate{cfg}"));
    steps.push(format!("synapsor-runner tools preview{cfg}"));
    let id = o.smoke_id.clone().unwrap_or_else(|| "<id>".into());
    steps.push(format!(
        "synapsor-runner smoke call {}{cfg} --args '{}'",
        o.read_tool,
        json!({ o.id_arg.clone(): id })
    ));
    steps.push(format!("synapsor-runner up --dry-run{cfg}"));
    steps.push(format!("synapsor-runner mcp serve{cfg}"));
    if o.mode == Mode::Review {
        steps.push("synapsor-runner proposals list   (then approve outside MCP, and apply)".into());
    }
    steps
}
