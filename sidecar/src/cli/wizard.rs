//! The onboarding wizard on a terminal: the same choices as the flags, with the inspected
//! suggestions as defaults, then a final preview where the visible fields and the tool names can
//! be revised before anything is written.
//!
//! It asks, it does not decide: every answer goes through the same [`plan`] as the flags, and
//! when `plan` refuses one, the wizard shows why and asks that question again.

use std::io::IsTerminal;

use inquire::{InquireError, Select, Text};
use synapsor_core::catalog::{Catalog, TableKind};
use synapsor_core::config::Mode;
use synapsor_onboard::classify::{KeySuggestion, suggest};
use synapsor_onboard::report::preview_text;
use synapsor_onboard::selection::{parse_bound_flags, parse_guard_flags, parse_patch_flags};
use synapsor_onboard::{Field, OnboardError, Onboarding, Selection, Writeback, plan};

use super::common::CliError;

/// Whether prompts can be shown: stdin and stderr (where prompts render) are terminals.
pub fn is_interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// `Ok(None)` when the user cancelled (Esc or Ctrl-C): nothing is written.
pub fn run(sel: Selection, catalog: &Catalog) -> Result<Option<Onboarding>, CliError> {
    let wizard = Wizard { sel, catalog };
    match wizard.walk() {
        Ok(o) => Ok(Some(o)),
        Err(InquireError::OperationCanceled | InquireError::OperationInterrupted) => Ok(None),
        Err(InquireError::Custom(e)) => match e.downcast::<OnboardError>() {
            Ok(e) => Err(CliError::usage(e.code, e.to_string())),
            Err(e) => Err(CliError::new(
                "ONBOARD_PROMPT_FAILED",
                format!("the prompt failed: {e}"),
            )),
        },
        Err(InquireError::NotTTY) => Err(CliError::usage(
            "ONBOARD_TTY_REQUIRED",
            "no terminal to prompt on: pass --table TABLE with --yes, or --answers FILE",
        )),
        Err(e) => Err(CliError::new(
            "ONBOARD_PROMPT_FAILED",
            format!("the prompt failed: {e}"),
        )),
    }
}

struct Wizard<'a> {
    sel: Selection,
    catalog: &'a Catalog,
}

type Step<T> = Result<T, InquireError>;

/// A text answer; empty means "none".
fn ask(message: &str, default: Option<&str>, help: &str) -> Step<Option<String>> {
    let mut p = Text::new(message).with_help_message(help);
    if let Some(d) = default.filter(|d| !d.is_empty()) {
        p = p.with_default(d);
    }
    let answer = p.prompt()?;
    let answer = answer.trim();
    Ok((!answer.is_empty() && answer != "-").then(|| answer.to_owned()))
}

fn list(v: &Option<Vec<String>>) -> String {
    v.as_ref().map(|l| l.join(",")).unwrap_or_default()
}

fn split_list(s: Option<String>) -> Option<Vec<String>> {
    s.map(|s| {
        s.split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect()
    })
}

impl Wizard<'_> {
    fn walk(mut self) -> Step<Onboarding> {
        eprintln!(
            "Step 1 of 3: choose the table and how a row is identified (suggestions are defaults: Enter keeps them)"
        );
        self.ask_table()?;
        self.ask_keys()?;
        eprintln!("Step 2 of 3: choose what the model may do");
        self.ask_mode()?;
        eprintln!("Step 3 of 3: choose what the model sees and what the tools are called");
        self.ask_visible()?;
        self.ask_names()?;
        self.sel.smoke_id = ask(
            "An id for a first read (optional)",
            self.sel.smoke_id.as_deref(),
            "used for a smoke call once the environment is set; empty to skip",
        )?;
        loop {
            let o = match plan(&self.sel, self.catalog) {
                Ok(o) => o,
                Err(e) => {
                    eprintln!("\nerror[{}]: {e}", e.code);
                    self.ask_again(&e)?;
                    continue;
                }
            };
            eprintln!("\n{}", preview_text(&o));
            const WRITE: &str = "Write the files";
            const VISIBLE: &str = "Revise the visible fields";
            const NAMES: &str = "Revise the tool names";
            const CANCEL: &str = "Cancel (write nothing)";
            match Select::new("Ready?", vec![WRITE, VISIBLE, NAMES, CANCEL]).prompt()? {
                WRITE => return Ok(o),
                VISIBLE => {
                    self.sel.visible_columns = Some(o.visible_columns.clone());
                    self.ask_visible()?;
                }
                NAMES => {
                    self.sel.read_tool = Some(o.read_tool.clone());
                    self.sel.proposal_tool = o.proposal_tool.clone();
                    self.ask_tool_names(o.mode != Mode::ReadOnly)?;
                }
                _ => return Err(InquireError::OperationCanceled),
            }
        }
    }

    /// Asks the question whose answer `plan` refused.
    fn ask_again(&mut self, e: &OnboardError) -> Step<()> {
        match e.field {
            Some(Field::Table) => self.ask_table(),
            Some(Field::PrimaryKey | Field::TenantColumn | Field::SingleTenantDev) => self.ask_keys(),
            Some(Field::VisibleColumns) => self.ask_visible(),
            Some(Field::ReadTool | Field::ProposalTool) => self.ask_tool_names(true),
            Some(Field::Namespace | Field::ObjectName | Field::IdArg) => self.ask_names(),
            Some(_) => self.ask_mode(),
            // Not a choice made here (say, the database changed): nothing to re-ask.
            None => Err(InquireError::Custom(Box::new(e.clone()))),
        }
    }

    fn ask_table(&mut self) -> Step<()> {
        let names: Vec<String> = self
            .catalog
            .tables
            .iter()
            .map(|t| match t.kind {
                TableKind::View => format!("{} (view)", t.name),
                TableKind::Table => t.name.clone(),
            })
            .collect();
        if names.is_empty() {
            return Err(InquireError::Custom(Box::new(OnboardError::field(
                "ONBOARD_UNKNOWN_TABLE",
                Field::Table,
                format!(
                    "schema {} has no tables or views this role can see",
                    self.catalog.schema
                ),
            ))));
        }
        let start = self
            .sel
            .table
            .as_ref()
            .and_then(|t| self.catalog.tables.iter().position(|x| &x.name == t))
            .unwrap_or(0);
        let chosen = Select::new("Table", names)
            .with_starting_cursor(start)
            .with_help_message("type to filter, arrows to move, Enter to choose")
            .prompt()?;
        let name = chosen.trim_end_matches(" (view)").to_owned();
        if self.sel.table.as_ref() != Some(&name) {
            // Another table: the column choices made for the previous one no longer apply.
            self.sel = Selection {
                table: Some(name),
                engine: self.sel.engine,
                schema: self.sel.schema.clone(),
                read_url_env: self.sel.read_url_env.clone(),
                ..Default::default()
            };
        }
        Ok(())
    }

    fn table(&self) -> Option<&synapsor_core::catalog::TableInfo> {
        self.sel.table.as_deref().and_then(|t| self.catalog.table(t))
    }

    fn ask_keys(&mut self) -> Step<()> {
        let Some(table) = self.table() else { return Ok(()) };
        let s = suggest(table);
        let key_default = self.sel.primary_key.clone().or(match &s.primary_key {
            KeySuggestion::Single { column } => Some(column.clone()),
            _ => None,
        });
        let tenant_default = self
            .sel
            .tenant_column
            .clone()
            .or_else(|| self.sel.tenant_key.take())
            .or_else(|| s.tenant().map(str::to_owned))
            .or_else(|| (self.sel.single_tenant_dev == Some(true)).then(|| "none".to_owned()));
        let key_help = match &s.primary_key {
            KeySuggestion::Composite { columns } => {
                format!("the primary key is ({}): choose one column", columns.join(", "))
            }
            KeySuggestion::Missing => "no primary key in the catalog: name a column that identifies one row".into(),
            KeySuggestion::Single { .. } => "the primary key".into(),
        };
        self.sel.primary_key = ask("Column that identifies one row", key_default.as_deref(), &key_help)?;
        let tenant_help = if s.tenant_candidates.len() > 1 {
            format!(
                "candidates: {}; 'none' for a single-tenant development database",
                s.tenant_candidates.join(", ")
            )
        } else {
            "the column holding the tenant; 'none' for a single-tenant development database".into()
        };
        match ask("Tenant column", tenant_default.as_deref(), &tenant_help)?.as_deref() {
            Some("none") => {
                self.sel.tenant_column = None;
                self.sel.single_tenant_dev = Some(true);
            }
            other => {
                self.sel.tenant_column = other.map(str::to_owned);
                self.sel.single_tenant_dev = None;
            }
        }
        Ok(())
    }

    fn ask_mode(&mut self) -> Step<()> {
        const READ: &str = "read_only: a read tool only";
        const REVIEW: &str = "review: a read tool and a proposal tool; a human approves, then it is applied";
        const SHADOW: &str = "shadow: proposals are recorded and never applied";
        let start = match self.sel.mode {
            Some(Mode::Review) => 1,
            Some(Mode::Shadow) => 2,
            _ => 0,
        };
        let mode = match Select::new("Mode", vec![READ, REVIEW, SHADOW])
            .with_starting_cursor(start)
            .prompt()?
        {
            READ => Mode::ReadOnly,
            REVIEW => Mode::Review,
            _ => Mode::Shadow,
        };
        self.sel.mode = Some(mode);
        if mode == Mode::ReadOnly {
            self.sel.patch = None;
            self.sel.patch_bounds = None;
            self.sel.status_guards = None;
            self.sel.allowed_columns = None;
            self.sel.writeback = None;
            return Ok(());
        }
        let Some(table) = self.table() else { return Ok(()) };
        let s = suggest(table);
        loop {
            let answer = ask(
                "Patch mappings",
                None,
                "what a proposal changes: column=fixed:VALUE or column=arg:NAME, comma-separated",
            )?;
            match parse_patch_flags(&answer.into_iter().collect::<Vec<_>>()) {
                Ok(p) if !p.is_empty() => {
                    self.sel.patch = Some(p);
                    break;
                }
                Ok(_) => eprintln!("{} mode needs at least one mapping", mode.as_str()),
                Err(e) => eprintln!("error[{}]: {e}", e.code),
            }
        }
        loop {
            let answer = ask(
                "Numeric bounds (optional)",
                None,
                "column=min:max for a number the model sets",
            )?;
            match parse_bound_flags(&answer.into_iter().collect::<Vec<_>>()) {
                Ok(b) => {
                    self.sel.patch_bounds = (!b.is_empty()).then_some(b);
                    break;
                }
                Err(e) => eprintln!("error[{}]: {e}", e.code),
            }
        }
        loop {
            let answer = ask("Status guards (optional)", None, "column=from:to|to;from2:to")?;
            match parse_guard_flags(&answer.into_iter().collect::<Vec<_>>()) {
                Ok(g) => {
                    self.sel.status_guards = (!g.is_empty()).then_some(g);
                    break;
                }
                Err(e) => eprintln!("error[{}]: {e}", e.code),
            }
        }
        let conflict_default = self
            .sel
            .conflict_column
            .clone()
            .or_else(|| s.conflict().map(str::to_owned));
        match ask(
            "Version column",
            conflict_default.as_deref(),
            "compared at apply time, so a changed row is never overwritten; 'weak' to compare a hash of the row",
        )?
        .as_deref()
        {
            Some("weak") => {
                self.sel.conflict_column = None;
                self.sel.weak_conflict_guard = Some(true);
            }
            other => {
                self.sel.conflict_column = other.map(str::to_owned);
                self.sel.weak_conflict_guard = None;
            }
        }
        const SQL: &str = "sql_update: a guarded single-row UPDATE by the runner";
        const HTTP: &str = "http_handler: a signed call to your app's handler";
        const CMD: &str = "command_handler: your app's command";
        let wb = match Select::new("Writeback", vec![SQL, HTTP, CMD]).prompt()? {
            SQL => Writeback::SqlUpdate,
            HTTP => Writeback::HttpHandler,
            _ => Writeback::CommandHandler,
        };
        self.sel.writeback = Some(wb);
        Ok(())
    }

    fn ask_visible(&mut self) -> Step<()> {
        let Some(table) = self.table() else { return Ok(()) };
        let s = suggest(table);
        let tenant = self.sel.tenant_column.clone();
        let default = if self.sel.visible_columns.is_some() {
            list(&self.sel.visible_columns)
        } else {
            s.columns
                .iter()
                .filter(|c| {
                    c.visible_by_default || (Some(&c.name) != tenant.as_ref() && s.tenant_candidates.contains(&c.name))
                })
                .map(|c| c.name.clone())
                .collect::<Vec<_>>()
                .join(",")
        };
        let hidden: Vec<String> = s
            .columns
            .iter()
            .filter(|c| !c.visible_by_default)
            .map(|c| c.name.clone())
            .collect();
        let help = format!("comma-separated; hidden by default: {}", hidden.join(", "));
        self.sel.visible_columns = split_list(ask("Visible fields", Some(&default), &help)?);
        Ok(())
    }

    fn ask_names(&mut self) -> Step<()> {
        let Some(table) = self.table() else { return Ok(()) };
        let object_default = self
            .sel
            .object_name
            .clone()
            .unwrap_or_else(|| synapsor_onboard::plan::object_name_of(&table.name));
        self.sel.object_name = ask("Object name", Some(&object_default), "used in tool names")?;
        let object = self.sel.object_name.clone().unwrap_or(object_default);
        let ns_default = self
            .sel
            .namespace
            .clone()
            .unwrap_or_else(|| synapsor_onboard::plan::namespace_of(&object));
        self.sel.namespace = ask("Namespace", Some(&ns_default), "the first part of the tool names")?;
        let id_default = self.sel.id_arg.clone().unwrap_or_else(|| format!("{object}_id"));
        self.sel.id_arg = ask("Lookup argument", Some(&id_default), "the argument carrying the row id")?;
        let ns = self.sel.namespace.clone().unwrap_or(ns_default);
        if self.sel.read_tool.is_none() {
            self.sel.read_tool = Some(format!("{ns}.inspect_{object}"));
        }
        if self.sel.proposal_tool.is_none() && self.sel.mode.is_some_and(|m| m != Mode::ReadOnly) {
            self.sel.proposal_tool = Some(format!("{ns}.propose_{object}_update"));
        }
        self.ask_tool_names(self.sel.mode.is_some_and(|m| m != Mode::ReadOnly))
    }

    fn ask_tool_names(&mut self, proposes: bool) -> Step<()> {
        let read = self.sel.read_tool.clone();
        self.sel.read_tool = ask("Read tool name", read.as_deref(), "namespace.name")?;
        self.sel.inspect_tool_name = None;
        if proposes {
            let prop = self.sel.proposal_tool.clone();
            self.sel.proposal_tool = ask("Proposal tool name", prop.as_deref(), "namespace.name")?;
            self.sel.proposal_tool_name = None;
        }
        let read = self.sel.read_tool.clone().unwrap_or_default();
        self.sel.read_description = ask(
            "Read tool description (optional)",
            self.sel.read_description.as_deref(),
            &format!("what {read} does, in business terms; empty for the generated one"),
        )?;
        Ok(())
    }
}
