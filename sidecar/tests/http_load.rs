//! The Streamable HTTP server under load: the real `synapsor-runner` binary on a loopback port
//! against a real PostgreSQL source, driven by 50 concurrent connections that mix, from a seeded
//! generator, valid tool calls and pings on reused sessions with what the guard must turn away:
//! no token, a wrong token, 10 MB bodies, malformed JSON, and new sessions opened past the cap
//! and never closed.
//!
//! Asserted: every request gets the answer its kind calls for, and every valid call returns the
//! row PostgreSQL holds; no 5xx at all (a new session past the cap gets 429 `too_many_sessions`
//! with `Retry-After`, which the server gives only when no open session has gone two seconds
//! without a request, so none can give way; once some have, a new session takes an idle one's
//! place, which is checked too); the
//! server's own count of open sessions, polled on `/healthz` all along, never exceeds the cap;
//! its resident memory stays bounded; it still serves afterwards. Latency and throughput are
//! printed, never asserted.
//!
//! `SYNAPSOR_LOAD_REQUESTS` sets the number of requests (default 2,000; the long profile runs
//! 50,000), `SYNAPSOR_LOAD_SEED` the generator's seed (printed, so a run replays) and
//! `SYNAPSOR_LOAD_DEADLINE_SECS` the global deadline after which no request is started (default
//! 40 s, and up to 90 s for longer runs; a run the deadline cut short says so and still passes).
#![allow(clippy::unwrap_used)]

mod mcp_common;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use mcp_common::*;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Concurrent connections, one worker each.
const CONNECTIONS: usize = 50;

/// `--max-sessions`: room for every worker's own session and a few more, so the sessions opened
/// and abandoned on purpose are what reaches it.
const SESSION_CAP: usize = 64;

/// Connections the PostgreSQL source pool holds (the runner's default).
const SOURCE_POOL_CONNECTIONS: usize = 8;

/// The body of an oversized request: ten times the server's 1 MiB limit.
const OVERSIZED_BYTES: usize = 10 * 1024 * 1024;

/// How much of an oversized body is sent before stalling, in the variants that stall: more than
/// the limit, so a server that waits for the rest is caught by the answer timeout.
const STALL_AFTER_BYTES: usize = 2 * 1024 * 1024;

/// How long a session must go without requests before it may give way to a new one (the
/// server's `IDLE_GRACE` of two seconds, and a margin).
const IDLE_GRACE: Duration = Duration::from_millis(2_300);

/// Any one request: far longer than any answer should take, short enough to fail a hang.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);

/// The resident memory the run may add to the idle server. The server holds at most 64 sessions
/// (each a task and a few channels), a PostgreSQL pool, the SQLite ledger's page cache and the
/// allocator's arenas, which keep a few of the 1 MiB body buffers of refused requests; together
/// well under this. Keeping the refused bodies (10 MB each, dozens per run) or a few tens of KiB
/// per request would cross it.
const RSS_GROWTH_BOUND_MIB: f64 = 64.0;

/// When the mixed load began, so an unexpected answer says when in the run it came.
static LOAD_STARTED: OnceLock<Instant> = OnceLock::new();

/// What one request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Kind {
    ToolCall,
    Ping,
    NoToken,
    WrongToken,
    Oversized,
    Malformed,
    NewSession,
}

/// The mix, in percent.
const MIX: [(Kind, u64); 7] = [
    (Kind::ToolCall, 38),
    (Kind::Ping, 12),
    (Kind::NoToken, 10),
    (Kind::WrongToken, 10),
    (Kind::Oversized, 3),
    (Kind::Malformed, 12),
    (Kind::NewSession, 15),
];

/// Bodies that are not JSON: the guard answers 400 with a JSON-RPC parse error.
const MALFORMED: [&[u8]; 6] = [
    b"{\"jsonrpc\": \"2.0\", \"id\": 1, ",
    b"not json at all",
    b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}}",
    b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",}",
    b"\xff\xfe{\"jsonrpc\":\"2.0\"}",
    b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{\"x\":\"\\u12\"}}",
];

/// splitmix64: a well-mixed value from any input, zero included.
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The kind and a variant of request `index`: a function of the seed and the index alone, so the
/// same seed gives the same mix however the workers interleave.
fn draw(seed: u64, index: usize) -> (Kind, u64) {
    let r = splitmix(seed ^ splitmix(u64::try_from(index).unwrap()));
    let mut pick = r % 100;
    for (kind, weight) in MIX {
        if pick < weight {
            return (kind, r >> 32);
        }
        pick -= weight;
    }
    unreachable!("the mix adds up to 100")
}

fn env_number<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// `VmRSS` and `VmHWM` (peak) of a process, in MiB.
fn memory_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"));
        kib / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The first JSON-RPC message of an answer: the JSON body, or the first `data:` event that
/// carries one.
fn rpc_message(body: &str) -> Option<Value> {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        return Some(v);
    }
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .find(|v| v.get("jsonrpc").is_some())
}

/// One HTTP answer, read to its end.
#[derive(Debug)]
struct Answer {
    status: u16,
    session: Option<String>,
    www_authenticate: Option<String>,
    body: String,
}

/// Everything a worker saw.
#[derive(Debug, Default)]
struct Tally {
    /// Answers per kind and HTTP status (0: the connection closed before any status).
    statuses: BTreeMap<(Kind, u16), usize>,
    valid_latencies: Vec<Duration>,
    valid_answered: usize,
    /// Sessions this client was given (by `mcp-session-id`).
    sessions_opened: HashSet<String>,
    /// A worker's own session was gone (404) and was opened again.
    reopened: usize,
    /// Refusals at the cap met while reopening a worker's own session.
    reopen_refused_at_cap: usize,
    /// 5xx other than the cap's refusal.
    server_errors: usize,
    /// Answers that were not what the request's kind calls for (the first few are kept).
    unexpected: Vec<String>,
    unexpected_count: usize,
    /// Oversized requests: the slowest answer.
    oversized_slowest: Duration,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        for (k, n) in other.statuses {
            *self.statuses.entry(k).or_default() += n;
        }
        self.valid_latencies.extend(other.valid_latencies);
        self.valid_answered += other.valid_answered;
        self.sessions_opened.extend(other.sessions_opened);
        self.reopened += other.reopened;
        self.reopen_refused_at_cap += other.reopen_refused_at_cap;
        self.server_errors += other.server_errors;
        self.unexpected_count += other.unexpected_count;
        self.unexpected.extend(
            other
                .unexpected
                .into_iter()
                .take(10_usize.saturating_sub(self.unexpected.len())),
        );
        self.oversized_slowest = self.oversized_slowest.max(other.oversized_slowest);
    }

    fn count(&mut self, kind: Kind, status: u16) {
        *self.statuses.entry((kind, status)).or_default() += 1;
    }

    fn unexpected(&mut self, what: String) {
        self.unexpected_count += 1;
        if self.unexpected.len() < 10 {
            let at = LOAD_STARTED.get().map_or(0.0, |t| t.elapsed().as_secs_f64());
            self.unexpected.push(format!("at {at:.2} s: {what}"));
        }
    }

    /// No 5xx, ever; a 429 only as the cap's refusal of a new session.
    fn check_server_error(&mut self, kind: Kind, opening: bool, answer: &Answer) {
        if answer.status >= 500 {
            self.server_errors += 1;
            self.unexpected(format!("{kind:?}: 5xx {answer:?}"));
        }
        let at_cap = opening
            && serde_json::from_str::<Value>(&answer.body).ok()
                == Some(json!({"ok": false, "error": "too_many_sessions"}));
        if answer.status == 429 && !at_cap {
            self.unexpected(format!("{kind:?}: 429 that is not the session cap: {answer:?}"));
        }
    }
}

/// What every worker shares: where to send, what to send, and when to stop.
#[derive(Debug)]
struct Plan {
    port: u16,
    seed: u64,
    requests: usize,
    claimed: AtomicUsize,
    deadline: Instant,
    /// The read of each row as verified against PostgreSQL at the start.
    expected_rows: BTreeMap<&'static str, Value>,
}

impl Plan {
    /// A plan for requests made one by one, outside the mix.
    fn single(port: u16, expected_rows: BTreeMap<&'static str, Value>) -> Arc<Plan> {
        Arc::new(Plan {
            port,
            seed: 0,
            requests: 0,
            claimed: AtomicUsize::new(0),
            deadline: Instant::now() + ANSWER_TIMEOUT,
            expected_rows,
        })
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    /// The next request's index, or `None` once all are claimed or the deadline passed.
    fn claim(&self) -> Option<usize> {
        if Instant::now() >= self.deadline {
            return None;
        }
        let i = self.claimed.fetch_add(1, Ordering::Relaxed);
        (i < self.requests).then_some(i)
    }
}

const ROWS: [&str; 2] = ["INV-1", "INV-2"];

/// One connection (reqwest keeps it alive between requests) and the worker's own session.
#[derive(Debug)]
struct Worker {
    plan: Arc<Plan>,
    http: reqwest::Client,
    session: Option<String>,
    next_rpc_id: u64,
    tally: Tally,
}

impl Worker {
    fn new(plan: Arc<Plan>) -> Worker {
        let http = reqwest::Client::builder()
            .http1_only()
            .pool_max_idle_per_host(1)
            .timeout(ANSWER_TIMEOUT)
            .build()
            .unwrap();
        Worker {
            plan,
            http,
            session: None,
            next_rpc_id: 1,
            tally: Tally::default(),
        }
    }

    async fn post(&self, token: Option<&str>, session: Option<&str>, body: Vec<u8>) -> Result<Answer, String> {
        let mut req = self
            .http
            .post(self.plan.url())
            .header("Content-Type", "application/json")
            .header("Accept", "application/json, text/event-stream")
            .body(body);
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        if let Some(s) = session {
            req = req.header("Mcp-Session-Id", s);
        }
        let resp = req.send().await.map_err(|e| format!("no answer: {e:?}"))?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (status, session, www_authenticate) = (
            resp.status().as_u16(),
            header("mcp-session-id"),
            header("www-authenticate"),
        );
        let body = resp.text().await.map_err(|e| format!("answer cut short: {e:?}"))?;
        Ok(Answer {
            status,
            session,
            www_authenticate,
            body,
        })
    }

    /// Closes the worker's own session (`DELETE /mcp`), freeing its place.
    async fn close_session(&mut self) {
        let Some(sid) = self.session.take() else { return };
        let r = self
            .http
            .delete(self.plan.url())
            .header("Authorization", format!("Bearer {TOKEN}"))
            .header("Mcp-Session-Id", &sid)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "closing a session: {r:?}");
    }

    /// `initialize` with the right token: a new session (and `notifications/initialized` on it),
    /// or the answer that refused one.
    async fn open_session(&mut self, kind: Kind) -> Result<String, Answer> {
        let answer = match self.post(Some(TOKEN), None, initialize_body().into_bytes()).await {
            Ok(a) => a,
            Err(e) => {
                self.tally.unexpected(format!("{kind:?} initialize: {e}"));
                return Err(Answer {
                    status: 0,
                    session: None,
                    www_authenticate: None,
                    body: e,
                });
            }
        };
        self.tally.check_server_error(kind, true, &answer);
        let Some(sid) = answer.session.clone().filter(|_| answer.status == 200) else {
            return Err(answer);
        };
        let init = rpc_message(&answer.body);
        if init.as_ref().map(|m| &m["result"]["serverInfo"]["name"]) != Some(&json!("synapsor-runner")) {
            self.tally
                .unexpected(format!("{kind:?}: initialize answered {answer:?}"));
        }
        self.tally.sessions_opened.insert(sid.clone());
        Ok(sid)
    }

    /// Opens the worker's own session and sends `notifications/initialized` on it, waiting for
    /// room while the cap refuses.
    async fn own_session(&mut self, kind: Kind) -> Option<String> {
        if let Some(s) = &self.session {
            return Some(s.clone());
        }
        loop {
            match self.open_session(kind).await {
                Ok(sid) => {
                    let note = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_vec();
                    match self.post(Some(TOKEN), Some(&sid), note).await {
                        Ok(a) if a.status == 202 => {}
                        other => self
                            .tally
                            .unexpected(format!("{kind:?}: notifications/initialized answered {other:?}")),
                    }
                    self.session = Some(sid.clone());
                    return Some(sid);
                }
                Err(a) if a.status == 429 => {
                    self.tally.reopen_refused_at_cap += 1;
                    if Instant::now() >= self.plan.deadline {
                        // Idle sessions give way after two seconds: refused until the deadline
                        // means they did not.
                        self.tally
                            .unexpected(format!("{kind:?}: no place for the worker's own session: {a:?}"));
                        return None;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(a) => {
                    self.tally.unexpected(format!("{kind:?}: own session refused: {a:?}"));
                    return None;
                }
            }
        }
    }

    /// A `tools/call` of the read tool or a `ping` on the worker's session; a session that has
    /// given way to another (404) is opened again once.
    async fn valid(&mut self, kind: Kind, variant: u64) {
        for attempt in 0..2 {
            let Some(sid) = self.own_session(kind).await else {
                return;
            };
            let id = self.next_rpc_id;
            self.next_rpc_id += 1;
            let row = ROWS[usize::try_from(variant % 2).unwrap()];
            let body = match kind {
                Kind::ToolCall => json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                    "params": {"name": "billing.inspect_invoice", "arguments": {"invoice_id": row}}}),
                _ => json!({"jsonrpc": "2.0", "id": id, "method": "ping"}),
            };
            let started = Instant::now();
            let answer = match self.post(Some(TOKEN), Some(&sid), body.to_string().into_bytes()).await {
                Ok(a) => a,
                Err(e) => {
                    self.tally.count(kind, 0);
                    self.tally.unexpected(format!("{kind:?}: {e}"));
                    return;
                }
            };
            let took = started.elapsed();
            self.tally.count(kind, answer.status);
            self.tally.check_server_error(kind, false, &answer);
            if answer.status == 404 && attempt == 0 {
                // Idle for two seconds and taken by a new session: the design's eviction.
                self.session = None;
                self.tally.reopened += 1;
                continue;
            }
            let message = rpc_message(&answer.body);
            let correct = answer.status == 200
                && message.as_ref().is_some_and(|m| {
                    m["id"] == json!(id)
                        && match kind {
                            Kind::ToolCall => {
                                m["result"]["isError"] != json!(true)
                                    && m["result"]["structuredContent"]["data"] == self.plan.expected_rows[row]
                            }
                            _ => m["result"] == json!({}),
                        }
                });
            if correct {
                self.tally.valid_answered += 1;
                self.tally.valid_latencies.push(took);
            } else {
                self.tally.unexpected(format!("{kind:?} {row}: {answer:?}"));
            }
            return;
        }
    }

    async fn refused_token(&mut self, kind: Kind, variant: u64) {
        let token = (kind == Kind::WrongToken).then_some("wrong-token-0123456789abcdef");
        // Half open a session, half call a tool in the worker's session: both are refused.
        let body = if variant.is_multiple_of(2) {
            initialize_body()
        } else {
            json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                "params": {"name": "billing.inspect_invoice", "arguments": {"invoice_id": "INV-1"}}})
            .to_string()
        };
        let session = if variant.is_multiple_of(2) {
            None
        } else {
            self.session.clone()
        };
        match self.post(token, session.as_deref(), body.into_bytes()).await {
            Ok(a) => {
                self.tally.count(kind, a.status);
                self.tally.check_server_error(kind, false, &a);
                if a.status != 401 || a.www_authenticate.as_deref() != Some("Bearer") || a.body.contains("Acme") {
                    self.tally.unexpected(format!("{kind:?}: {a:?}"));
                }
            }
            Err(e) => {
                self.tally.count(kind, 0);
                self.tally.unexpected(format!("{kind:?}: {e}"));
            }
        }
    }

    async fn malformed(&mut self, variant: u64) {
        let body = MALFORMED[usize::try_from(variant % 6).unwrap()].to_vec();
        // In a session or not: the body is checked before any session is looked at.
        let session = if (variant >> 8).is_multiple_of(2) {
            None
        } else {
            self.session.clone()
        };
        match self.post(Some(TOKEN), session.as_deref(), body).await {
            Ok(a) => {
                self.tally.count(Kind::Malformed, a.status);
                self.tally.check_server_error(Kind::Malformed, false, &a);
                let parse_error = serde_json::from_str::<Value>(&a.body).ok()
                    == Some(json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": "Parse error"}}));
                if a.status != 400 || !parse_error {
                    self.tally.unexpected(format!("Malformed #{}: {a:?}", variant % 6));
                }
            }
            Err(e) => {
                self.tally.count(Kind::Malformed, 0);
                self.tally.unexpected(format!("Malformed: {e}"));
            }
        }
    }

    /// A session opened and abandoned: never used again, never closed.
    async fn new_session(&mut self) {
        match self.open_session(Kind::NewSession).await {
            Ok(_) => self.tally.count(Kind::NewSession, 200),
            Err(a) => {
                self.tally.count(Kind::NewSession, a.status);
                // A transport failure (status 0) was already counted by `open_session`.
                if a.status != 429 && a.status != 0 {
                    self.tally.unexpected(format!("NewSession: {a:?}"));
                }
            }
        }
    }

    async fn oversized(&mut self, variant: u64) {
        let how = match variant % 3 {
            0 => Oversize::Whole,
            1 => Oversize::Stalled,
            _ => Oversize::ChunkedStalled,
        };
        let started = Instant::now();
        let (status, body) = oversized_post(self.plan.port, how).await;
        self.tally.oversized_slowest = self.tally.oversized_slowest.max(started.elapsed());
        self.tally.count(Kind::Oversized, status.unwrap_or(0));
        let too_large = serde_json::from_str::<Value>(&body)
            .is_ok_and(|v| v["error"]["code"] == json!(-32600) && v["id"].is_null());
        if status != Some(413) || !too_large {
            self.tally.unexpected(format!("Oversized {how:?}: {status:?} {body:?}"));
        }
        if status.is_some_and(|s| s >= 500) {
            self.tally.server_errors += 1;
        }
    }

    async fn run(mut self) -> Tally {
        while let Some(index) = self.plan.claim() {
            let (kind, variant) = draw(self.plan.seed, index);
            match kind {
                Kind::ToolCall | Kind::Ping => self.valid(kind, variant).await,
                Kind::NoToken | Kind::WrongToken => self.refused_token(kind, variant).await,
                Kind::Oversized => self.oversized(variant).await,
                Kind::Malformed => self.malformed(variant).await,
                Kind::NewSession => self.new_session().await,
            }
        }
        self.tally
    }
}

/// How an oversized body is sent.
#[derive(Debug, Clone, Copy)]
enum Oversize {
    /// `Content-Length: 10 MB` and all of it, as fast as the socket takes it.
    Whole,
    /// `Content-Length: 10 MB`, 2 MiB of it, then nothing: a server waiting for the rest never
    /// answers.
    Stalled,
    /// Chunked (no length announced), 2 MiB, then nothing: only counting what arrives stops it.
    ChunkedStalled,
}

/// Sends an oversized `ping` over a fresh connection, writing and reading at once so the answer
/// is seen whenever it comes; returns the status (`None`: closed before one) and the body.
async fn oversized_post(port: u16, how: Oversize) -> (Option<u16>, String) {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let framing = match how {
        Oversize::ChunkedStalled => "Transfer-Encoding: chunked".to_owned(),
        _ => format!("Content-Length: {OVERSIZED_BYTES}"),
    };
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n{framing}\r\n\r\n"
    );
    let writer = tokio::spawn(async move {
        if wr.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        // A ping whose one string makes it large, cut off where the announced size ends: had the
        // server parsed it, the answer would be a parse error (400), so 413 shows the size alone
        // was refused.
        let prefix = br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":""#;
        let chunk = vec![b'a'; 64 * 1024];
        let limit = match how {
            Oversize::Whole => OVERSIZED_BYTES,
            _ => STALL_AFTER_BYTES,
        };
        let mut sent = 0;
        let mut first = true;
        while sent < limit {
            let piece: &[u8] = if first { prefix } else { &chunk };
            first = false;
            let piece = &piece[..piece.len().min(limit - sent)];
            let ok = match how {
                Oversize::ChunkedStalled => {
                    let framed = [format!("{:x}\r\n", piece.len()).as_bytes(), piece, b"\r\n"].concat();
                    wr.write_all(&framed).await.is_ok()
                }
                _ => wr.write_all(piece).await.is_ok(),
            };
            if !ok {
                return;
            }
            sent += piece.len();
        }
        // Stalled variants hold the connection open without sending more.
        std::future::pending::<()>().await;
    });
    let read = async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok());
                    return (
                        status,
                        String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned(),
                    );
                }
            }
            match rd.read(&mut chunk).await {
                Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => return (None, String::from_utf8_lossy(&buf).into_owned()),
            }
        }
    };
    let answer = tokio::time::timeout(ANSWER_TIMEOUT, read)
        .await
        .unwrap_or((None, format!("no answer within {ANSWER_TIMEOUT:?}")));
    writer.abort();
    answer
}

/// The runner's connections to the test database, as PostgreSQL counts them.
async fn runner_connections(db: &synapsor_testdb::TestDb) -> usize {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&db.admin_url).await.unwrap();
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'synapsor-runner'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    usize::try_from(n).unwrap()
}

/// Polls the server's own count of open sessions until `stop`; returns the largest seen and the
/// number of polls.
async fn watch_sessions(port: u16, stop: Arc<AtomicBool>) -> (usize, usize) {
    let http = reqwest::Client::builder().timeout(ANSWER_TIMEOUT).build().unwrap();
    let url = format!("http://127.0.0.1:{port}/healthz");
    let (mut most, mut polls) = (0, 0);
    while !stop.load(Ordering::Relaxed) {
        let health: Value = http.get(&url).send().await.unwrap().json().await.unwrap();
        most = most.max(usize::try_from(health["sessions"].as_u64().unwrap()).unwrap());
        polls += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (most, polls)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_holds_up_under_mixed_load() {
    let Some(fx) = fixture().await else { return };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let requests: usize = env_number("SYNAPSOR_LOAD_REQUESTS").unwrap_or(2_000);
    let seed: u64 = env_number("SYNAPSOR_LOAD_SEED").unwrap_or(0x10AD_5EED_2026);
    // 40 s covers the default run many times over on two cores; a longer run gets 12 ms a
    // request, up to 90 s, so that it stops on its own before nextest's two-minute limit.
    let deadline_secs: u64 = env_number("SYNAPSOR_LOAD_DEADLINE_SECS")
        .unwrap_or((40 + u64::try_from(requests.saturating_sub(2_000)).unwrap() * 12 / 1000).min(90));
    eprintln!("http load: seed {seed}, {requests} requests, deadline {deadline_secs} s");

    let cap = SESSION_CAP.to_string();
    let mut server = fx
        .http_server("acme", &["--max-sessions", &cap, "--max-sessions-per-client", &cap])
        .await;
    let pid = server.pid();
    let (rss_before, _) = memory_mib(pid);

    // The reads every valid call must return, checked once against PostgreSQL itself.
    let mut expected_rows = BTreeMap::new();
    {
        let mut probe = Worker::new(Plan::single(server.port, BTreeMap::new()));
        let sid = probe.own_session(Kind::ToolCall).await.unwrap();
        for (i, row) in ROWS.into_iter().enumerate() {
            let body = json!({"jsonrpc": "2.0", "id": i + 1, "method": "tools/call",
                "params": {"name": "billing.inspect_invoice", "arguments": {"invoice_id": row}}});
            let answer = probe
                .post(Some(TOKEN), Some(&sid), body.to_string().into_bytes())
                .await
                .unwrap();
            let message = rpc_message(&answer.body).unwrap();
            let data = message["result"]["structuredContent"]["data"].clone();
            assert_invoice_matches_db(&fx.db, row, &data, "http load probe").await;
            expected_rows.insert(row, data);
        }
        probe.close_session().await;
    }

    // The source pool opens its connections on demand. Opened in the first burst of the mix, 50
    // requests on two saturated cores, one can take longer than the pool's 5 s acquire timeout,
    // and that read answers TEMPORARILY_UNAVAILABLE (seen in about one long run in three). That
    // is the pool's cold start, not the HTTP layer under test here: open its connections first,
    // with twice as many concurrent reads as it holds (until PostgreSQL counts them all, or three
    // tries).
    let mut warm_connections = 0;
    for _ in 0..3 {
        let mut warmers = Vec::new();
        for _ in 0..2 * SOURCE_POOL_CONNECTIONS {
            let mut w = Worker::new(Plan::single(server.port, expected_rows.clone()));
            w.own_session(Kind::ToolCall).await.unwrap();
            warmers.push(w);
        }
        futures::future::join_all(warmers.iter_mut().map(|w| w.valid(Kind::ToolCall, 0))).await;
        for mut w in warmers {
            assert_eq!(w.tally.valid_answered, 1, "warming the source pool: {:?}", w.tally);
            w.close_session().await;
        }
        warm_connections = runner_connections(&fx.db).await;
        if warm_connections >= SOURCE_POOL_CONNECTIONS {
            break;
        }
    }

    let plan = Arc::new(Plan {
        port: server.port,
        seed,
        requests,
        claimed: AtomicUsize::new(0),
        deadline: Instant::now() + Duration::from_secs(deadline_secs),
        expected_rows,
    });
    let stop_watch = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn(watch_sessions(server.port, Arc::clone(&stop_watch)));

    // Every worker holds its own session before the mix starts: 50 of the 64 places.
    let mut workers = Vec::new();
    for _ in 0..CONNECTIONS {
        let mut w = Worker::new(Arc::clone(&plan));
        assert!(w.own_session(Kind::ToolCall).await.is_some(), "{:?}", w.tally);
        workers.push(w);
    }
    let started = *LOAD_STARTED.get_or_init(Instant::now);
    let handles: Vec<_> = workers.into_iter().map(|w| tokio::spawn(w.run())).collect();
    let mut tally = Tally::default();
    for h in handles {
        tally.merge(h.await.unwrap());
    }
    let elapsed = started.elapsed();
    stop_watch.store(true, Ordering::Relaxed);
    let (most_sessions, polls) = watcher.await.unwrap();

    // Still serving: alive, healthy, within the cap, and a fresh client's call is answered.
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server exited under load"
    );
    let health = raw_http(server.port, "GET", "/healthz", &[], "").await.json();
    let sessions_after = usize::try_from(health["sessions"].as_u64().unwrap()).unwrap();
    let (rss_after, rss_peak) = memory_mib(pid);

    // The sessions abandoned during the run are idle once no request came for two seconds: a
    // new client then gets a place at once (an idle session gives way) and the count stays
    // within the cap.
    tokio::time::sleep(IDLE_GRACE).await;
    let mut fresh = Worker::new(Plan::single(server.port, plan.expected_rows.clone()));
    fresh.valid(Kind::ToolCall, 0).await;
    assert_eq!(
        fresh.tally.valid_answered, 1,
        "a new client after the load: {:?}",
        fresh.tally
    );
    assert_eq!(
        fresh.tally.reopen_refused_at_cap, 0,
        "idle sessions must give way to a new one: {:?}",
        fresh.tally
    );
    let health = raw_http(server.port, "GET", "/healthz", &[], "").await.json();
    let sessions_at_end = usize::try_from(health["sessions"].as_u64().unwrap()).unwrap();

    let done = plan.claimed.load(Ordering::Relaxed).min(requests);
    // Valid calls, each counted once: a call whose session had given way (404) was sent again.
    let valid: usize = tally
        .statuses
        .iter()
        .filter(|((k, _), _)| matches!(k, Kind::ToolCall | Kind::Ping))
        .map(|(_, n)| n)
        .sum::<usize>()
        - tally.reopened;
    tally.valid_latencies.sort_unstable();
    let (p50, p99) = (
        percentile(&tally.valid_latencies, 0.50),
        percentile(&tally.valid_latencies, 0.99),
    );
    let of = |kind: Kind, status: u16| tally.statuses.get(&(kind, status)).copied().unwrap_or(0);
    let cut = if done < requests {
        format!(" (of {requests}: the deadline cut the run)")
    } else {
        String::new()
    };
    eprintln!("http load: answers by (kind, status): {:?}", tally.statuses);
    eprintln!(
        "http load: {done}{cut} requests over {CONNECTIONS} connections in {:.1} s ({:.0}/s, seed {seed}): \
         {} valid answered correctly of {valid} (p50 {}, p99 {}), {} 5xx, \
         {} no token 401, {} wrong token 401, {} oversized 413 (slowest {}), {} malformed 400, \
         new sessions {} opened / {} refused 429 at the cap, {} calls sent again after their session gave way (404; {} refused 429 meanwhile), \
         {} distinct sessions, open sessions ≤ {most_sessions} (cap {SESSION_CAP}, {polls} polls; {sessions_after} after, \
         {sessions_at_end} once a new client took an idle one's place), \
         RSS {rss_before:.1} → {rss_after:.1} MiB (peak {rss_peak:.1}), \
         {warm_connections} source connections warmed",
        elapsed.as_secs_f64(),
        done as f64 / elapsed.as_secs_f64(),
        tally.valid_answered,
        ms(p50),
        ms(p99),
        tally.server_errors,
        of(Kind::NoToken, 401),
        of(Kind::WrongToken, 401),
        of(Kind::Oversized, 413),
        ms(tally.oversized_slowest),
        of(Kind::Malformed, 400),
        of(Kind::NewSession, 200),
        of(Kind::NewSession, 429),
        tally.reopened,
        tally.reopen_refused_at_cap,
        tally.sessions_opened.len(),
    );

    assert!(
        tally.unexpected_count == 0,
        "{} unexpected answers (seed {seed}), the first: {:#?}",
        tally.unexpected_count,
        tally.unexpected
    );
    assert_eq!(tally.server_errors, 0, "5xx answers (seed {seed})");
    assert_eq!(tally.valid_answered, valid, "every valid call answered correctly");
    assert!(
        most_sessions <= SESSION_CAP && sessions_after <= SESSION_CAP && sessions_at_end <= SESSION_CAP,
        "open sessions went past the cap: {most_sessions} seen, {sessions_after} after, {sessions_at_end} at the end"
    );
    assert!(polls > 0, "the session count was never polled");
    assert!(
        rss_after <= rss_before + RSS_GROWTH_BOUND_MIB,
        "resident memory grew from {rss_before:.1} to {rss_after:.1} MiB (bound: +{RSS_GROWTH_BOUND_MIB} MiB)"
    );
    let (status, _) = server.terminate(Duration::from_secs(5)).await;
    assert!(status.success(), "{status}");
}
