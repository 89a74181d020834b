//! Shared test support: real databases started by `scripts/test.sh` (or `scripts/dev-db.sh`).
//!
//! Each test gets its own database and a least-privilege read role, so tests run in parallel and
//! prove that reads work with SELECT alone.
#![allow(dead_code, clippy::unwrap_used)]

pub use synapsor_testdb::{Server, with_user};

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
    let pg = Server::Postgres;
    let (db, db_admin) = pg.create_database("synapsor_t").await?;
    let role = format!("{db}_read");
    pg.exec(
        &db_admin,
        &format!(
            "{seed}
             CREATE ROLE {role} LOGIN PASSWORD 'read_pw';
             GRANT CONNECT ON DATABASE {db} TO {role};
             GRANT USAGE ON SCHEMA public TO {role};
             GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role};"
        ),
    )
    .await;
    Some(TestDb {
        read_url: with_user(&db_admin, &role, "read_pw"),
        admin_url: db_admin,
        database: db,
    })
}

/// A fresh MariaDB/MySQL database with `seed` applied and a SELECT-only user.
pub async fn mysql(seed: &str) -> Option<TestDb> {
    let my = Server::Mysql;
    let (db, db_admin) = my.create_database("synapsor_t").await?;
    let user = format!("r{}", &db[db.len().saturating_sub(20)..]);
    let mut setup = seed.to_owned();
    for host in ["%", "localhost"] {
        setup.push_str(&format!(
            "CREATE USER '{user}'@'{host}' IDENTIFIED BY 'read_pw';
             GRANT SELECT ON {db}.* TO '{user}'@'{host}';"
        ));
    }
    my.exec(&db_admin, &setup).await;
    Some(TestDb {
        read_url: with_user(&db_admin, &user, "read_pw"),
        admin_url: db_admin,
        database: db,
    })
}

/// Runs statements as the test database's admin.
pub async fn pg_exec(db: &TestDb, sql: &str) {
    Server::Postgres.exec(&db.admin_url, sql).await;
}

pub async fn mysql_exec(db: &TestDb, sql: &str) {
    Server::Mysql.exec(&db.admin_url, sql).await;
}
