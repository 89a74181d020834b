//! Shared test support: real databases started by `scripts/test.sh` (or `scripts/dev-db.sh`).
//!
//! Each test gets its own database and a least-privilege read role, so tests run in parallel and
//! prove that reads work with SELECT alone.
#![allow(dead_code, clippy::unwrap_used)]

use sqlx::{AssertSqlSafe, Connection};
pub use synapsor_testdb::{admin_url, replace_db, unique, with_user};

#[derive(Debug, Clone)]
pub struct TestDb {
    /// URL of the least-privilege read role.
    pub read_url: String,
    /// URL of an admin on the test database (to change rows behind the runner's back).
    pub admin_url: String,
    pub database: String,
}

/// A fresh PostgreSQL database with `seed` applied and a SELECT-only role.
pub async fn postgres(seed: &str) -> Option<TestDb> {
    let admin = admin_url("SYNAPSOR_TEST_PG_URL")?;
    let db = unique("synapsor_t");
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let db_admin = replace_db(&admin, &db);
    let mut conn = sqlx::PgConnection::connect(&db_admin).await.unwrap();
    sqlx::raw_sql(AssertSqlSafe(seed.to_owned()))
        .execute(&mut conn)
        .await
        .unwrap();
    let role = format!("{db}_read");
    sqlx::raw_sql(AssertSqlSafe(format!(
        "CREATE ROLE {role} LOGIN PASSWORD 'read_pw'; \
         GRANT CONNECT ON DATABASE {db} TO {role}; \
         GRANT USAGE ON SCHEMA public TO {role}; \
         GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role};"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    Some(TestDb {
        read_url: with_user(&db_admin, &role, "read_pw"),
        admin_url: db_admin,
        database: db,
    })
}

/// A fresh MariaDB/MySQL database with `seed` applied and a SELECT-only user.
pub async fn mysql(seed: &str) -> Option<TestDb> {
    let admin = admin_url("SYNAPSOR_TEST_MYSQL_URL")?;
    let db = unique("synapsor_t");
    let mut conn = sqlx::MySqlConnection::connect(&admin).await.unwrap();
    let user = format!("r{}", &db[db.len().saturating_sub(20)..]);
    sqlx::raw_sql(AssertSqlSafe(format!(
        "CREATE DATABASE {db}; \
         CREATE USER '{user}'@'%' IDENTIFIED BY 'read_pw'; \
         CREATE USER '{user}'@'localhost' IDENTIFIED BY 'read_pw'; \
         GRANT SELECT ON {db}.* TO '{user}'@'%'; \
         GRANT SELECT ON {db}.* TO '{user}'@'localhost';"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    let db_admin = replace_db(&admin, &db);
    let mut conn = sqlx::MySqlConnection::connect(&db_admin).await.unwrap();
    sqlx::raw_sql(AssertSqlSafe(seed.to_owned()))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    Some(TestDb {
        read_url: with_user(&db_admin, &user, "read_pw"),
        admin_url: db_admin,
        database: db,
    })
}

/// Runs one statement as the test database's admin.
pub async fn pg_exec(db: &TestDb, sql: &str) {
    let mut conn = sqlx::PgConnection::connect(&db.admin_url).await.unwrap();
    sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
}

pub async fn mysql_exec(db: &TestDb, sql: &str) {
    let mut conn = sqlx::MySqlConnection::connect(&db.admin_url).await.unwrap();
    sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
}

/// An environment with nothing in it.
#[derive(Debug, Clone, Copy)]
pub struct EmptyEnv;

impl synapsor_runner::context::Env for EmptyEnv {
    fn var(&self, _name: &str) -> Option<String> {
        None
    }
}
