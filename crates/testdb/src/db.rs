//! Statements run as a test database's admin, over a fresh connection each time (tests change
//! rows behind the runner's back and read what it wrote). Behind the `db` feature, so crates that
//! only need names and URLs do not build sqlx.

use sqlx::{AssertSqlSafe, Connection, MySqlConnection, PgConnection};

use crate::{admin_url, replace_db, unique};

/// The two server engines the tests run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Postgres,
    Mysql,
}

impl Server {
    /// The environment variable with this server's admin URL.
    pub fn admin_var(self) -> &'static str {
        match self {
            Server::Postgres => "SYNAPSOR_TEST_PG_URL",
            Server::Mysql => "SYNAPSOR_TEST_MYSQL_URL",
        }
    }

    /// A new, empty database named `<prefix>_...` and its admin URL; `None` when the server's
    /// admin URL is not set (see [`admin_url`]).
    ///
    /// # Panics
    /// When the database cannot be created.
    pub async fn create_database(self, prefix: &str) -> Option<(String, String)> {
        let admin = admin_url(self.admin_var())?;
        let db = unique(prefix);
        self.exec(&admin, &format!("CREATE DATABASE {db}")).await;
        let url = replace_db(&admin, &db);
        Some((db, url))
    }

    /// Runs `sql` (one or more statements) on `url`.
    ///
    /// # Panics
    /// When connecting or any statement fails.
    pub async fn exec(self, url: &str, sql: &str) {
        let sql = AssertSqlSafe(sql.to_owned());
        let result = match self {
            Server::Postgres => {
                let mut c = PgConnection::connect(url).await.expect("connect to PostgreSQL");
                let r = sqlx::raw_sql(sql).execute(&mut c).await.map(drop);
                let _ = c.close().await;
                r
            }
            Server::Mysql => {
                let mut c = MySqlConnection::connect(url).await.expect("connect to MySQL");
                let r = sqlx::raw_sql(sql).execute(&mut c).await.map(drop);
                let _ = c.close().await;
                r
            }
        };
        if let Err(e) = result {
            panic!("statement failed on the test database: {e}");
        }
    }

    /// The integer that `sql` (one scalar expression or query) gives on `url`; NULL is -1.
    ///
    /// # Panics
    /// When connecting or the query fails.
    pub async fn int(self, url: &str, sql: &str) -> i64 {
        let result: Result<Option<i64>, sqlx::Error> = match self {
            Server::Postgres => {
                let mut c = PgConnection::connect(url).await.expect("connect to PostgreSQL");
                let q = AssertSqlSafe(format!("SELECT ({sql})::int8"));
                let r = sqlx::query_scalar(q).fetch_one(&mut c).await;
                let _ = c.close().await;
                r
            }
            Server::Mysql => {
                let mut c = MySqlConnection::connect(url).await.expect("connect to MySQL");
                let q = AssertSqlSafe(format!("SELECT CAST(({sql}) AS SIGNED)"));
                let r = sqlx::query_scalar(q).fetch_one(&mut c).await;
                let _ = c.close().await;
                r
            }
        };
        match result {
            Ok(v) => v.unwrap_or(-1),
            Err(e) => panic!("query failed on the test database: {e}"),
        }
    }
}
