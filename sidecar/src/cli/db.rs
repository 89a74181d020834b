//! `db init-receipts`: the writeback receipts table of each source that `sql_update` writes,
//! created (as an admin) or printed as DDL and GRANTs for a DBA.

use clap::Subcommand;
use synapsor_core::capability;
use synapsor_core::config::{Engine, Source};
use synapsor_core::context::{Env, ProcessEnv};
use synapsor_executor::url::{redact_url, url_user};
use synapsor_executor::{
    ExecutorError, Schemas, WriterSettings, init_receipts, receipts_ddl, receipts_grants, write_targets,
};

use super::common::{CliError, GlobalArgs, load_config};

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Create the writeback receipts table (run once, as a database admin).
    InitReceipts {
        /// Source name from the config.
        #[arg(long)]
        source: Option<String>,
        /// Print the DDL and GRANTs instead of running them.
        #[arg(long)]
        print: bool,
        /// Environment variable holding an admin URL to create the table with (and to grant the
        /// writer of `write_url_env` access to it). Default: the source's `write_url_env`.
        #[arg(long)]
        admin_url_env: Option<String>,
    },
}

/// `db init-receipts [--source S] [--print] [--admin-url-env NAME]`.
pub async fn run(global: &GlobalArgs, cmd: DbCommand) -> Result<i32, CliError> {
    let DbCommand::InitReceipts {
        source,
        print,
        admin_url_env,
    } = cmd;
    let (cfg, _) = load_config(&global.config)?;
    let caps = capability::compile(&cfg)?;
    let mut targets: Vec<(&String, &Source, Schemas)> = Vec::new();
    for (name, src) in &cfg.sources {
        if source.as_ref().is_some_and(|s| s != name) {
            continue;
        }
        let t = write_targets(&cfg, &caps, name);
        if t.is_empty() && source.is_none() {
            continue;
        }
        if t.is_empty() {
            return Err(CliError::new(
                "NO_SQL_UPDATE_CAPABILITIES",
                format!("no sql_update proposal capability uses source {name}, so it needs no receipts table"),
            ));
        }
        targets.push((name, src, t));
    }
    if let Some(s) = &source
        && !cfg.sources.contains_key(s)
    {
        return Err(CliError::new(
            "SOURCE_NOT_FOUND",
            format!("source {s:?} is not in the config"),
        ));
    }
    if targets.is_empty() {
        return Err(CliError::new(
            "NO_SQL_UPDATE_CAPABILITIES",
            "no sql_update proposal capability is configured, so no receipts table is needed",
        ));
    }
    let err = |e: ExecutorError| CliError::new(e.code(), e.to_string());

    if print {
        for (name, src, schemas) in &targets {
            let writer = src
                .write_url_env
                .as_deref()
                .and_then(|v| ProcessEnv.var(v))
                .and_then(|u| url_user(&u));
            println!("-- source {name} ({})", src.engine.as_str());
            if src.engine != Engine::Sqlite && writer.is_none() {
                println!(
                    "-- replace synapsor_writer with the writer role of {}",
                    src.write_url_env.as_deref().unwrap_or("the writer URL")
                );
            }
            let role = writer.unwrap_or_else(|| "synapsor_writer".to_owned());
            for (schema, tables) in schemas {
                println!("{}", receipts_ddl(src.engine, schema).map_err(err)?);
                let tables: Vec<&str> = tables.iter().map(String::as_str).collect();
                print!("{}", receipts_grants(src.engine, &role, schema, &tables).map_err(err)?);
            }
            println!();
        }
        return Ok(0);
    }

    for (name, src, schemas) in &targets {
        let url_env = admin_url_env
            .as_deref()
            .or(src.write_url_env.as_deref())
            .ok_or_else(|| {
                CliError::new(
                    "WRITER_CREDENTIAL_MISSING",
                    format!("source {name} has no write_url_env; pass --admin-url-env NAME (an admin URL)"),
                )
            })?;
        let url = ProcessEnv.var(url_env).ok_or_else(|| {
            CliError::new(
                "WRITER_CREDENTIAL_MISSING",
                format!("environment variable {url_env} is not set"),
            )
        })?;
        // When an admin creates the table, grant the writer (the user of the write URL).
        let writer = match &admin_url_env {
            Some(_) if src.engine != Engine::Sqlite => src
                .write_url_env
                .as_deref()
                .and_then(|v| ProcessEnv.var(v))
                .and_then(|u| url_user(&u)),
            _ => None,
        };
        let settings = WriterSettings::for_source(src);
        for (schema, tables) in schemas {
            let report = init_receipts(src.engine, &url, schema, writer.as_deref(), &settings)
                .await
                .map_err(|e| match e {
                    ExecutorError::PermissionDenied { .. } => CliError::new(
                        e.code(),
                        format!(
                            "{e}. The user of {url_env} may not create tables or grant (a least-privilege writer should not): rerun with --admin-url-env NAME naming a variable with an admin URL, or use --print and hand the SQL to a DBA"
                        ),
                    ),
                    other => err(other),
                })?;
            println!(
                "{} {} (source {name}, connected as {})",
                if report.created { "Created" } else { "Already present:" },
                report.table,
                redact_url(&url)
            );
            for g in &report.granted_to {
                println!("  granted SELECT, INSERT, UPDATE on it to {g}");
            }
            if admin_url_env.is_some() && src.engine != Engine::Sqlite && report.granted_to.is_empty() {
                println!(
                    "  no writer was granted (the write URL is not set, or it is the admin itself): run the GRANTs from --print"
                );
            }
            if src.engine != Engine::Sqlite {
                println!(
                    "  the writer also needs SELECT, UPDATE on {} (see --print); check with `synapsor-runner doctor`",
                    tables
                        .iter()
                        .map(|t| format!("{schema}.{t}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
    }
    Ok(0)
}
