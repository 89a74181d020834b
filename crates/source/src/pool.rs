//! The connection pool of the PostgreSQL and MySQL sources.
//!
//! sqlx's `Pool` spends two extra round trips on every checkout: a ping before it hands a
//! connection out and another when it takes it back. A read tool call is one short SELECT, so
//! those pings were most of the database time of a call (and a third of the queries the database
//! saw). This pool reuses a connection without asking the server, and stays correct by these rules:
//!
//! - A connection goes back to the pool only after a call completed on it (a result, or an error
//!   the database reported, such as a statement timeout). A call that was cancelled mid-way or that
//!   failed on the connection itself closes it.
//! - A connection that sat idle for [`PING_IDLE_AFTER`] or longer is pinged before use: servers,
//!   proxies and firewalls drop idle connections.
//! - A call that finds its connection gone anyway (server restarted, backend killed) runs once
//!   more on a new connection. Only read-only calls go through this pool, so running one twice is
//!   harmless.
//! - At most `max_connections` are checked out; waiting for one, or for a new connection, ends
//!   after the acquire timeout with `PoolTimedOut`.
//!
//! It is not a general pool: no background reaper, no minimum size, no health checks beyond the
//! ping of idle connections.

use std::fmt;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::Connection;
use tokio::sync::Semaphore;

use synapsor_core::context::BoxFuture;

/// Idle time after which a connection is pinged before it is used again.
pub const PING_IDLE_AFTER: Duration = Duration::from_secs(10);

type Connect<C> = Box<dyn Fn() -> BoxFuture<'static, Result<C, sqlx::Error>> + Send + Sync>;

pub(crate) struct ConnPool<C> {
    connect: Connect<C>,
    /// Idle connections, most recently used last (reused first: its caches are warm).
    idle: Mutex<Vec<(C, Instant)>>,
    checkouts: Semaphore,
    acquire_timeout: Duration,
}

impl<C> fmt::Debug for ConnPool<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnPool")
            .field("idle", &self.idle.lock().map(|v| v.len()).unwrap_or(0))
            .field("available", &self.checkouts.available_permits())
            .finish()
    }
}

impl<C: Connection + 'static> ConnPool<C> {
    /// A pool that opens connections with `connect` (which also sets up each session).
    /// Opens nothing until the first call.
    pub fn new(max_connections: u32, acquire_timeout: Duration, connect: Connect<C>) -> Self {
        ConnPool {
            connect,
            idle: Mutex::new(Vec::new()),
            checkouts: Semaphore::new(max_connections.max(1) as usize),
            acquire_timeout,
        }
    }

    /// Runs `call` on a pooled connection. `call` gets the connection and hands it back with its
    /// result, so that a cancelled call drops (closes) the connection instead of returning it.
    pub async fn run<T, F, Fut>(&self, mut call: F) -> Result<T, sqlx::Error>
    where
        F: FnMut(C) -> Fut,
        Fut: Future<Output = (C, Result<T, sqlx::Error>)>,
    {
        let mut retried = false;
        loop {
            let deadline = Instant::now() + self.acquire_timeout;
            let _checkout = tokio::time::timeout_at(deadline.into(), self.checkouts.acquire())
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)?
                .map_err(|_| sqlx::Error::PoolClosed)?;
            let conn = self.checkout(deadline).await?;
            let (conn, result) = call(conn).await;
            match result {
                Ok(value) => {
                    self.check_in(conn);
                    return Ok(value);
                }
                Err(e) if connection_lost(&e) => {
                    drop(conn);
                    if retried {
                        return Err(e);
                    }
                    tracing::debug!(error = %e, "source connection lost; retrying once on a new connection");
                    retried = true;
                }
                Err(e) => {
                    // The database answered: the connection is in a known state.
                    if matches!(e, sqlx::Error::Database(_)) {
                        self.check_in(conn);
                    }
                    return Err(e);
                }
            }
        }
    }

    /// An idle connection (pinged if it sat idle long enough) or a new one.
    async fn checkout(&self, deadline: Instant) -> Result<C, sqlx::Error> {
        loop {
            let idle = self.idle.lock().ok().and_then(|mut v| v.pop());
            let Some((mut conn, since)) = idle else { break };
            if since.elapsed() < PING_IDLE_AFTER {
                return Ok(conn);
            }
            match tokio::time::timeout_at(deadline.into(), conn.ping()).await {
                Ok(Ok(())) => return Ok(conn),
                Ok(Err(e)) => tracing::debug!(error = %e, "idle source connection is gone; dropping it"),
                Err(_) => return Err(sqlx::Error::PoolTimedOut),
            }
        }
        tokio::time::timeout_at(deadline.into(), (self.connect)())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
    }

    fn check_in(&self, conn: C) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push((conn, Instant::now()));
        }
    }
}

/// Whether `err` says the connection itself is unusable (closed by the server, reset, broken
/// protocol) rather than anything about the statement.
pub(crate) fn connection_lost(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => {
            // MariaDB/MySQL reuse SQLSTATE 70100 for a killed query and a killed connection:
            // their error numbers tell them apart. Connection killed (1927), server gone away
            // (2006), connection lost (2013), disconnected for inactivity (4031).
            if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                && matches!(my.number(), 1927 | 2006 | 2013 | 4031)
            {
                return true;
            }
            // Connection exceptions (08xxx, both engines); PostgreSQL administrator or crash
            // shutdown of the backend (57P01-57P03).
            let code = db.code().unwrap_or_default();
            code.starts_with("08") || code.starts_with("57P0")
        }
        _ => false,
    }
}
