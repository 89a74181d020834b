//! The source-side receipts table: its DDL, least-privilege grants, one-time creation by an
//! admin (`db init-receipts`) and the writer's permission check (`doctor`).
//!
//! Apply never creates it (the original ran its DDL inside every apply, so its writer needed
//! CREATE). The table holds one row per applied change set, keyed by the idempotency key; rows
//! only ever commit as `applied` (`in_progress` exists inside an apply's transaction only).

use std::collections::BTreeMap;

use synapsor_core::Capability;
use synapsor_core::config::{CapabilityKind, Engine, RunnerConfig};
use synapsor_core::context::Env;
use synapsor_core::ident::{Dialect, SafeIdent};
use synapsor_source::redact;

use crate::error::ExecutorError;
use crate::select_executor;
use crate::sql::{self, DbFail, FailKind, RECEIPTS_TABLE, WriterSettings};

/// True when `cap` is a proposal capability written by the built-in SQL executor.
fn uses_sql_update(cfg: &RunnerConfig, cap: &Capability) -> bool {
    cap.kind == CapabilityKind::Proposal && select_executor(cfg, cap).is_ok_and(|e| e.name() == "sql_update")
}

/// `schema -> tables` written by sql_update.
pub type Schemas = BTreeMap<String, Vec<String>>;

/// `schema -> tables` of the sql_update proposal capabilities on `source`: where it needs a
/// receipts table, and what its writer updates.
pub fn write_targets(cfg: &RunnerConfig, caps: &[Capability], source: &str) -> Schemas {
    let mut out: Schemas = BTreeMap::new();
    for c in caps.iter().filter(|c| c.source == source && uses_sql_update(cfg, c)) {
        let schema = if c.engine == Engine::Sqlite {
            "main".to_owned()
        } else {
            c.read.schema.as_str().to_owned()
        };
        let tables = out.entry(schema).or_default();
        if !tables.iter().any(|t| t == c.read.table.as_str()) {
            tables.push(c.read.table.as_str().to_owned());
        }
    }
    out
}

/// A piece of writeback setup that is missing: an apply through `sql_update` on `source` would
/// fail with `code` until it is fixed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupGap {
    pub source: String,
    pub code: &'static str,
    pub message: String,
}

/// What every source written by `sql_update` lacks before an approval could be applied: the
/// writer's URL (from `env`) and, in each schema it writes, a receipts table the writer can
/// insert into and update (probed, then rolled back). A source that cannot be reached is not a
/// gap: that is an outage, and its applies are retried; `unreachable` lists those.
pub async fn writer_setup_gaps(cfg: &RunnerConfig, caps: &[Capability], env: &dyn Env) -> (Vec<SetupGap>, Vec<String>) {
    let mut gaps = Vec::new();
    let mut unreachable = Vec::new();
    for (name, src) in &cfg.sources {
        let targets = write_targets(cfg, caps, name);
        if targets.is_empty() || src.read_only {
            continue;
        }
        let gap = |code: &'static str, message: String| SetupGap {
            source: name.clone(),
            code,
            message,
        };
        let Some(url) = src.write_url_env.as_deref().and_then(|v| env.var(v)) else {
            gaps.push(gap(
                "WRITER_CREDENTIAL_MISSING",
                format!(
                    "source {name}: the writer URL ({}) is not set",
                    src.write_url_env.as_deref().unwrap_or("write_url_env")
                ),
            ));
            continue;
        };
        let settings = WriterSettings::for_source(src);
        for schema in targets.keys() {
            match check_receipts(src.engine, &url, schema, &settings).await {
                Ok(c) if !c.present => gaps.push(gap(
                    "RECEIPTS_TABLE_MISSING",
                    format!(
                        "source {name}: the receipts table {} is missing: run `synapsor-runner db init-receipts --source {name}` as an admin (or hand --print's SQL to a DBA)",
                        c.table
                    ),
                )),
                Ok(c) if c.writable != Some(true) => gaps.push(gap(
                    "RECEIPTS_TABLE_NOT_WRITABLE",
                    format!(
                        "source {name}: the writer cannot insert into and update {}: grant SELECT, INSERT, UPDATE (`synapsor-runner db init-receipts --source {name} --print`)",
                        c.table
                    ),
                )),
                Ok(_) => {}
                Err(ExecutorError::DatabaseUnavailable { .. }) => unreachable.push(name.clone()),
                Err(e) => gaps.push(gap(e.code(), format!("source {name}: {e}"))),
            }
        }
    }
    (gaps, unreachable)
}

fn schema_ident(schema: &str) -> Result<SafeIdent, ExecutorError> {
    SafeIdent::new(schema).ok_or_else(|| ExecutorError::UnsafeIdentifier {
        what: format!("schema {schema:?}"),
    })
}

/// `schema.synapsor_writeback_receipts`, quoted for `engine` (SQLite: the bare table name).
pub fn receipts_table_name(engine: Engine, schema: &str) -> Result<String, ExecutorError> {
    let s = schema_ident(schema)?;
    Ok(match engine {
        Engine::Postgres => format!("{}.{RECEIPTS_TABLE}", s.quoted(Dialect::Ansi)),
        Engine::Mysql => format!("{}.{RECEIPTS_TABLE}", s.quoted(Dialect::MySql)),
        Engine::Sqlite => RECEIPTS_TABLE.to_owned(),
    })
}

/// The DDL of the receipts table in `schema` (PostgreSQL schema, MySQL database; ignored for
/// SQLite). Idempotent (`IF NOT EXISTS`).
pub fn receipts_ddl(engine: Engine, schema: &str) -> Result<String, ExecutorError> {
    let table = receipts_table_name(engine, schema)?;
    Ok(match engine {
        Engine::Postgres => format!(
            "CREATE TABLE IF NOT EXISTS {table} (\n  \
               idempotency_key varchar(255) PRIMARY KEY,\n  \
               proposal_id varchar(255) NOT NULL,\n  \
               proposal_digest varchar(80) NOT NULL,\n  \
               status varchar(16) NOT NULL CHECK (status IN ('in_progress', 'applied')),\n  \
               rows_affected integer NOT NULL DEFAULT 0,\n  \
               result_hash varchar(80),\n  \
               created_at timestamptz NOT NULL DEFAULT now(),\n  \
               completed_at timestamptz\n\
             );"
        ),
        Engine::Mysql => format!(
            "CREATE TABLE IF NOT EXISTS {table} (\n  \
               idempotency_key varchar(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,\n  \
               proposal_id varchar(255) NOT NULL,\n  \
               proposal_digest varchar(80) NOT NULL,\n  \
               status varchar(16) NOT NULL,\n  \
               rows_affected int NOT NULL DEFAULT 0,\n  \
               result_hash varchar(80) NULL,\n  \
               created_at datetime(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),\n  \
               completed_at datetime(6) NULL,\n  \
               CONSTRAINT synapsor_receipts_status CHECK (status IN ('in_progress', 'applied'))\n\
             ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;"
        ),
        Engine::Sqlite => format!(
            "CREATE TABLE IF NOT EXISTS {table} (\n  \
               idempotency_key TEXT NOT NULL PRIMARY KEY,\n  \
               proposal_id TEXT NOT NULL,\n  \
               proposal_digest TEXT NOT NULL,\n  \
               status TEXT NOT NULL CHECK (status IN ('in_progress', 'applied')),\n  \
               rows_affected INTEGER NOT NULL DEFAULT 0,\n  \
               result_hash TEXT,\n  \
               created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),\n  \
               completed_at TEXT\n\
             );"
        ),
    })
}

/// Role and user names accepted in generated GRANTs: letters, digits, `_ . - @ $`, 1 to 63.
pub fn is_role_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '@' | '$'))
}

fn role(engine: Engine, writer: &str, host: &str) -> Result<String, ExecutorError> {
    if !is_role_name(writer) {
        return Err(ExecutorError::InvalidRoleName {
            what: format!("writer {writer:?}"),
        });
    }
    Ok(match engine {
        Engine::Mysql => format!("'{writer}'@'{}'", host.replace(['\'', '\\'], "")),
        _ => format!("\"{writer}\""),
    })
}

/// Least-privilege GRANTs for the writer in `schema`: SELECT, INSERT, UPDATE on the receipts
/// table and SELECT, UPDATE on each business table (never DELETE, never CREATE). MySQL accounts
/// are `'writer'@'%'` here; adjust the host to yours. SQLite has no roles: the text says so.
pub fn receipts_grants(
    engine: Engine,
    writer: &str,
    schema: &str,
    business_tables: &[&str],
) -> Result<String, ExecutorError> {
    let s = schema_ident(schema)?;
    let tables = business_tables
        .iter()
        .map(|t| {
            SafeIdent::new(t).ok_or_else(|| ExecutorError::UnsafeIdentifier {
                what: format!("table {t:?}"),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let receipts = receipts_table_name(engine, schema)?;
    Ok(match engine {
        Engine::Postgres => {
            let r = role(engine, writer, "")?;
            let mut out = format!(
                "GRANT USAGE ON SCHEMA {schema} TO {r};\nGRANT SELECT, INSERT, UPDATE ON {receipts} TO {r};\n",
                schema = s.quoted(Dialect::Ansi)
            );
            for t in &tables {
                out.push_str(&format!(
                    "GRANT SELECT, UPDATE ON {}.{} TO {r};\n",
                    s.quoted(Dialect::Ansi),
                    t.quoted(Dialect::Ansi)
                ));
            }
            out
        }
        Engine::Mysql => {
            let r = role(engine, writer, "%")?;
            let mut out = format!("GRANT SELECT, INSERT, UPDATE ON {receipts} TO {r};\n");
            for t in &tables {
                out.push_str(&format!(
                    "GRANT SELECT, UPDATE ON {}.{} TO {r};\n",
                    s.quoted(Dialect::MySql),
                    t.quoted(Dialect::MySql)
                ));
            }
            out
        }
        Engine::Sqlite => "-- SQLite has no roles: whoever can write the database file can apply; restrict the file's permissions instead.\n".to_owned(),
    })
}

/// What `init_receipts` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitReport {
    /// The qualified table name.
    pub table: String,
    /// False when it already existed.
    pub created: bool,
    /// Accounts granted SELECT, INSERT, UPDATE on the receipts table.
    pub granted_to: Vec<String>,
}

/// What `check_receipts` found, as the writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptsCheck {
    pub table: String,
    pub present: bool,
    /// An INSERT and UPDATE of a probe row succeeded (then rolled back). `None` when the table
    /// is absent.
    pub writable: Option<bool>,
}

fn log_fail(what: &str, f: &DbFail) {
    tracing::warn!(kind = ?f.kind, error = %redact(&f.detail), "{what} failed");
}

fn setup_error(what: &str, f: DbFail) -> ExecutorError {
    log_fail(what, &f);
    match f.kind {
        FailKind::Unavailable | FailKind::Busy => ExecutorError::DatabaseUnavailable { what: what.to_owned() },
        FailKind::BadConfig => ExecutorError::UrlInvalid {
            what: "database",
            engine: "database",
        },
        FailKind::PermissionDenied => ExecutorError::PermissionDenied { what: what.to_owned() },
        _ => ExecutorError::Database { what: what.to_owned() },
    }
}

/// Creates the receipts table in `schema` with `url` (an admin's), then grants the writer
/// (`writer`, when given and different from the admin) SELECT, INSERT, UPDATE on it. For MySQL
/// the writer's accounts are looked up in `mysql.user` (every host of that user name).
pub async fn init_receipts(
    engine: Engine,
    url: &str,
    schema: &str,
    writer: Option<&str>,
    settings: &WriterSettings,
) -> Result<InitReport, ExecutorError> {
    let ddl = receipts_ddl(engine, schema)?;
    let table = receipts_table_name(engine, schema)?;
    if let Some(w) = writer
        && !is_role_name(w)
    {
        return Err(ExecutorError::InvalidRoleName {
            what: format!("writer {w:?}"),
        });
    }
    let admin = crate::url::url_user(url);
    let writer = writer.filter(|w| Some(*w) != admin.as_deref());
    match engine {
        Engine::Postgres => {
            use sqlx::{AssertSqlSafe, Connection};
            let mut conn = sql::postgres::connect(url, settings)
                .await
                .map_err(|f| setup_error("connecting", f))?;
            let existed: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
                .bind(format!(
                    "{}.{RECEIPTS_TABLE}",
                    schema_ident(schema)?.quoted(Dialect::Ansi)
                ))
                .fetch_one(&mut conn)
                .await
                .map_err(|e| setup_error("looking for the receipts table", sql::classify_sqlx(&e)))?;
            sqlx::raw_sql(AssertSqlSafe(ddl))
                .execute(&mut conn)
                .await
                .map_err(|e| setup_error("creating the receipts table", sql::classify_sqlx(&e)))?;
            let mut granted = Vec::new();
            if let Some(w) = writer {
                let grants = format!(
                    "GRANT USAGE ON SCHEMA {s} TO {r}; GRANT SELECT, INSERT, UPDATE ON {table} TO {r};",
                    s = schema_ident(schema)?.quoted(Dialect::Ansi),
                    r = role(engine, w, "")?
                );
                sqlx::raw_sql(AssertSqlSafe(grants))
                    .execute(&mut conn)
                    .await
                    .map_err(|e| {
                        setup_error(
                            "granting the writer access to the receipts table",
                            sql::classify_sqlx(&e),
                        )
                    })?;
                granted.push(w.to_owned());
            }
            let _ = conn.close().await;
            Ok(InitReport {
                table,
                created: !existed,
                granted_to: granted,
            })
        }
        Engine::Mysql => {
            use sqlx::{AssertSqlSafe, Connection};
            let mut conn = sql::mysql::connect(url, settings)
                .await
                .map_err(|f| setup_error("connecting", f))?;
            let existed: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            )
            .bind(schema.to_owned())
            .bind(RECEIPTS_TABLE)
            .fetch_one(&mut conn)
            .await
            .map_err(|e| setup_error("looking for the receipts table", sql::classify_sqlx(&e)))?;
            sqlx::raw_sql(AssertSqlSafe(ddl))
                .execute(&mut conn)
                .await
                .map_err(|e| setup_error("creating the receipts table", sql::classify_sqlx(&e)))?;
            let mut granted = Vec::new();
            if let Some(w) = writer {
                let hosts: Vec<String> = sqlx::query_scalar("SELECT CAST(Host AS CHAR) FROM mysql.user WHERE User = ?")
                    .bind(w.to_owned())
                    .fetch_all(&mut conn)
                    .await
                    .map_err(|e| setup_error("looking up the writer's accounts", sql::classify_sqlx(&e)))?;
                if hosts.is_empty() {
                    return Err(ExecutorError::Database {
                        what: format!("granting the writer access: no MySQL account named {w:?} exists"),
                    });
                }
                for host in hosts {
                    let account = role(engine, w, &host)?;
                    sqlx::raw_sql(AssertSqlSafe(format!(
                        "GRANT SELECT, INSERT, UPDATE ON {table} TO {account}"
                    )))
                    .execute(&mut conn)
                    .await
                    .map_err(|e| {
                        setup_error(
                            "granting the writer access to the receipts table",
                            sql::classify_sqlx(&e),
                        )
                    })?;
                    granted.push(account);
                }
            }
            let _ = conn.close().await;
            Ok(InitReport {
                table,
                created: existed == 0,
                granted_to: granted,
            })
        }
        Engine::Sqlite => {
            let path = sql::sqlite::sqlite_path(url).ok_or(ExecutorError::UrlInvalid {
                what: "database",
                engine: "SQLite",
            })?;
            let busy = settings.statement_timeout;
            tokio::task::spawn_blocking(move || {
                let conn = sql::sqlite::open(&path, busy).map_err(|f| setup_error("opening the database", f))?;
                let existed: i64 = conn
                    .query_row(
                        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                        [RECEIPTS_TABLE],
                        |r| r.get(0),
                    )
                    .map_err(|e| setup_error("looking for the receipts table", sql::sqlite::classify(&e)))?;
                conn.execute_batch(&ddl)
                    .map_err(|e| setup_error("creating the receipts table", sql::sqlite::classify(&e)))?;
                Ok(InitReport {
                    table,
                    created: existed == 0,
                    granted_to: Vec::new(),
                })
            })
            .await
            .map_err(|_| ExecutorError::Database {
                what: "creating the receipts table".into(),
            })?
        }
    }
}

/// Checks, as the writer (`url`), that the receipts table exists in `schema` and that the
/// writer can INSERT and UPDATE a probe row (rolled back, so nothing is left behind).
pub async fn check_receipts(
    engine: Engine,
    url: &str,
    schema: &str,
    settings: &WriterSettings,
) -> Result<ReceiptsCheck, ExecutorError> {
    let table = receipts_table_name(engine, schema)?;
    let probe_key = format!("doctor:{}", std::process::id());
    let insert = format!(
        "INSERT INTO {table} (idempotency_key, proposal_id, proposal_digest, status) VALUES ('{probe_key}', 'doctor', 'doctor', 'in_progress')"
    );
    let update = format!("UPDATE {table} SET status = 'applied' WHERE idempotency_key = '{probe_key}'");
    match engine {
        Engine::Postgres | Engine::Mysql => {
            use sqlx::{AssertSqlSafe, Connection};
            macro_rules! probe {
                ($conn:expr, $exists_sql:expr) => {{
                    let mut conn = $conn;
                    let present = sqlx::query_scalar::<_, i64>(AssertSqlSafe($exists_sql))
                        .fetch_one(&mut conn)
                        .await
                        .map_err(|e| setup_error("looking for the receipts table", sql::classify_sqlx(&e)))?
                        > 0;
                    let writable = if present {
                        let mut tx = conn
                            .begin()
                            .await
                            .map_err(|e| setup_error("starting a transaction", sql::classify_sqlx(&e)))?;
                        let mut ok = true;
                        for stmt in [
                            &insert,
                            &update,
                            &format!("SELECT status FROM {table} WHERE idempotency_key = '{probe_key}'"),
                        ] {
                            if let Err(e) = sqlx::raw_sql(AssertSqlSafe(stmt.clone())).execute(&mut *tx).await {
                                log_fail("probing the receipts table", &sql::classify_sqlx(&e));
                                ok = false;
                                break;
                            }
                        }
                        let _ = tx.rollback().await;
                        Some(ok)
                    } else {
                        None
                    };
                    let _ = conn.close().await;
                    Ok(ReceiptsCheck {
                        table,
                        present,
                        writable,
                    })
                }};
            }
            let s = schema_ident(schema)?;
            if engine == Engine::Postgres {
                let conn = sql::postgres::connect(url, settings)
                    .await
                    .map_err(|f| setup_error("connecting as the writer", f))?;
                probe!(
                    conn,
                    format!(
                        "SELECT (to_regclass('{}.{RECEIPTS_TABLE}') IS NOT NULL)::int::int8",
                        s.quoted(Dialect::Ansi)
                    )
                )
            } else {
                let conn = sql::mysql::connect(url, settings)
                    .await
                    .map_err(|f| setup_error("connecting as the writer", f))?;
                probe!(
                    conn,
                    format!(
                        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '{s}' AND table_name = '{RECEIPTS_TABLE}'"
                    )
                )
            }
        }
        Engine::Sqlite => {
            let path = sql::sqlite::sqlite_path(url).ok_or(ExecutorError::UrlInvalid {
                what: "database",
                engine: "SQLite",
            })?;
            let busy = settings.statement_timeout;
            tokio::task::spawn_blocking(move || {
                let mut conn = sql::sqlite::open(&path, busy).map_err(|f| setup_error("opening the database", f))?;
                let present: i64 = conn
                    .query_row(
                        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                        [RECEIPTS_TABLE],
                        |r| r.get(0),
                    )
                    .map_err(|e| setup_error("looking for the receipts table", sql::sqlite::classify(&e)))?;
                if present == 0 {
                    return Ok(ReceiptsCheck {
                        table,
                        present: false,
                        writable: None,
                    });
                }
                let tx = conn
                    .transaction()
                    .map_err(|e| setup_error("starting a transaction", sql::sqlite::classify(&e)))?;
                let ok = tx.execute_batch(&format!("{insert}; {update};")).is_ok();
                let _ = tx.rollback();
                Ok(ReceiptsCheck {
                    table,
                    present: true,
                    writable: Some(ok),
                })
            })
            .await
            .map_err(|_| ExecutorError::Database {
                what: "checking the receipts table".into(),
            })?
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ddl_and_grants() {
        let pg = receipts_ddl(Engine::Postgres, "billing").unwrap();
        assert!(pg.starts_with("CREATE TABLE IF NOT EXISTS \"billing\".synapsor_writeback_receipts"));
        assert!(pg.contains("CHECK (status IN ('in_progress', 'applied'))"));
        let my = receipts_ddl(Engine::Mysql, "app").unwrap();
        assert!(my.contains("`app`.synapsor_writeback_receipts"));
        assert!(receipts_ddl(Engine::Postgres, "x; DROP").is_err());

        let g = receipts_grants(Engine::Postgres, "app_writer", "public", &["invoices"]).unwrap();
        assert_eq!(
            g,
            "GRANT USAGE ON SCHEMA \"public\" TO \"app_writer\";\n\
             GRANT SELECT, INSERT, UPDATE ON \"public\".synapsor_writeback_receipts TO \"app_writer\";\n\
             GRANT SELECT, UPDATE ON \"public\".\"invoices\" TO \"app_writer\";\n"
        );
        assert!(!g.contains("DELETE") && !g.contains("CREATE"));
        let g = receipts_grants(Engine::Mysql, "w", "app", &["orders"]).unwrap();
        assert!(g.contains("GRANT SELECT, INSERT, UPDATE ON `app`.synapsor_writeback_receipts TO 'w'@'%';"));
        assert!(g.contains("GRANT SELECT, UPDATE ON `app`.`orders` TO 'w'@'%';"));
        assert!(receipts_grants(Engine::Mysql, "w'; DROP", "app", &[]).is_err());
    }
}
