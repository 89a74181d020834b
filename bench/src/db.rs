//! The benchmark database: a fresh PostgreSQL database with an `invoices` table spread over four
//! tenants and a login role that may only SELECT, dropped again at the end.

use anyhow::{Context, bail};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use synapsor_core::context::{Clock, SystemClock};

/// The tenant the runner is bound to (`SYNAPSOR_TENANT_ID`); the other three exist so every
/// lookup has to filter by tenant.
pub const TENANT: &str = "acme";
const TENANTS: [&str; 4] = ["acme", "globex", "initech", "umbrella"];

/// Columns the read tool returns, and that the direct SELECT fetches.
pub const VISIBLE_COLUMNS: [&str; 6] = [
    "id",
    "customer_name",
    "amount_cents",
    "late_fee_cents",
    "status",
    "updated_at",
];

#[derive(Debug, Clone)]
pub struct BenchDb {
    pub name: String,
    pub role: String,
    /// The SELECT-only role's URL, used by the runner and by the direct SELECT.
    pub read_url: String,
    /// Superuser URL of the server (its maintenance database), to drop the database again.
    server_url: String,
    /// Invoice ids of [`TENANT`], in a fixed order.
    pub tenant_ids: Vec<String>,
    pub server_version: String,
}

/// Splits `scheme://user:pw@host:port/db?query` into (`scheme://user:pw@host:port`, `?query` or "").
fn split_url(url: &str) -> anyhow::Result<(&str, &str)> {
    let (main, query) = match url.find('?') {
        Some(i) => url.split_at(i),
        None => (url, ""),
    };
    let Some((scheme, rest)) = main.split_once("://") else {
        bail!("the PostgreSQL URL has no scheme");
    };
    let base_len = scheme.len() + 3 + rest.find('/').unwrap_or(rest.len());
    Ok((&main[..base_len], query))
}

fn with_database(url: &str, db: &str) -> anyhow::Result<String> {
    let (base, query) = split_url(url)?;
    Ok(format!("{base}/{db}{query}"))
}

fn with_user(url: &str, user: &str, password: &str) -> anyhow::Result<String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        bail!("the PostgreSQL URL has no scheme");
    };
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    Ok(format!("{scheme}://{user}:{password}@{host}"))
}

async fn exec(conn: &mut PgConnection, sql: String) -> anyhow::Result<()> {
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(conn).await?;
    Ok(())
}

impl BenchDb {
    /// Creates the database, seeds `rows` invoices and the read role.
    pub async fn create(admin_url: &str, rows: usize) -> anyhow::Result<BenchDb> {
        let millis = SystemClock.now_ms().rem_euclid(1_000_000_000);
        let name = format!("synapsor_bench_{}_{millis}", std::process::id());
        let role = format!("{name}_read");
        let password = format!("bench{millis:x}{:x}", std::process::id());

        let mut conn = PgConnection::connect(admin_url)
            .await
            .context("connecting to PostgreSQL with SYNAPSOR_TEST_PG_URL")?;
        let server_version: String = sqlx::query_scalar("SELECT current_setting('server_version')")
            .fetch_one(&mut conn)
            .await?;
        exec(&mut conn, format!("CREATE DATABASE {name}")).await?;
        exec(&mut conn, format!("CREATE ROLE {role} LOGIN PASSWORD '{password}'")).await?;
        conn.close().await?;

        let db_admin = with_database(admin_url, &name)?;
        let mut conn = PgConnection::connect(&db_admin).await?;
        let tenants = TENANTS.map(|t| format!("'{t}'")).join(", ");
        exec(
            &mut conn,
            format!(
                "CREATE TABLE invoices (
                   id text PRIMARY KEY, tenant_id text NOT NULL, customer_name text NOT NULL,
                   amount_cents bigint NOT NULL, late_fee_cents bigint NOT NULL, status text NOT NULL,
                   internal_note text, updated_at timestamptz NOT NULL);
                 CREATE INDEX invoices_tenant ON invoices (tenant_id);
                 INSERT INTO invoices
                 SELECT 'INV-' || lpad(g::text, 6, '0'),
                        (ARRAY[{tenants}])[1 + g % 4],
                        'Customer ' || (g % 997),
                        10000 + (g * 37) % 500000,
                        500 + (g % 50) * 100,
                        (ARRAY['open', 'open', 'open', 'paid'])[1 + (g / 4) % 4],
                        'internal note ' || g,
                        timestamptz '2026-01-01 00:00:00+00' + g * interval '1 minute'
                 FROM generate_series(1, {rows}) AS g;
                 ANALYZE invoices;
                 GRANT CONNECT ON DATABASE {name} TO {role};
                 GRANT USAGE ON SCHEMA public TO {role};
                 GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role};"
            ),
        )
        .await?;
        let tenant_ids: Vec<String> =
            sqlx::query_scalar("SELECT id FROM invoices WHERE tenant_id = $1 AND late_fee_cents > 0 ORDER BY id")
                .bind(TENANT)
                .fetch_all(&mut conn)
                .await?;
        conn.close().await?;
        if tenant_ids.len() < 100 {
            bail!("seeding produced only {} rows for tenant {TENANT}", tenant_ids.len());
        }
        Ok(BenchDb {
            read_url: with_user(&db_admin, &role, &password)?,
            server_url: admin_url.to_owned(),
            name,
            role,
            tenant_ids,
            server_version,
        })
    }

    /// Drops the database (closing any connection still open) and the role.
    pub async fn drop_all(&self) -> anyhow::Result<()> {
        let mut conn = PgConnection::connect(&self.server_url).await?;
        exec(&mut conn, format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).await?;
        exec(&mut conn, format!("DROP ROLE IF EXISTS {}", self.role)).await?;
        conn.close().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = "postgres://admin:pw@127.0.0.1:5433/postgres?sslmode=disable";
        assert_eq!(
            with_database(u, "b").ok().as_deref(),
            Some("postgres://admin:pw@127.0.0.1:5433/b?sslmode=disable")
        );
        assert_eq!(
            with_user("postgres://admin:pw@h:1/b", "r", "x").ok().as_deref(),
            Some("postgres://r:x@h:1/b")
        );
        assert_eq!(
            with_database("postgres://h:1", "b").ok().as_deref(),
            Some("postgres://h:1/b")
        );
    }
}
