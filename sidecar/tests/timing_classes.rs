//! Another tenant's row and a row that exists nowhere are indistinguishable to a caller: over the
//! real binary, on real PostgreSQL and MariaDB, over stdio and Streamable HTTP, reads of the
//! other tenant's `INV-9` and of the missing `INV-999999` get byte-identical answers (whole: the
//! envelope echoes no argument, so nothing is removed first) and take the same time.
//!
//! The classes are read interleaved, in a rotating order, so whatever else the machine does hits
//! them alike; the medians must be within a factor of 1.5 of each other. A third class, the
//! trusted tenant's own `INV-1`, is read the same way and only printed: it is allowed to differ.
//!
//! `SYNAPSOR_TIMING_SAMPLES` sets the reads per class, engine and transport (default 200).
#![allow(clippy::unwrap_used)]

#[path = "writeback_support/mod.rs"]
mod writeback_support;

use std::time::{Duration, Instant};

use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};
use writeback_support::{RUNNER, WDb};

type Client = writeback_support::McpClient;

const TOKEN: &str = "timing-token-0123456789abcdef";

/// The other tenant's existing row.
const FOREIGN: &str = "INV-9";
/// A row no tenant has.
const MISSING: &str = "INV-999999";
/// The trusted tenant's own row, for comparison only.
const OWN: &str = "INV-1";

/// The medians of the two classes must be within this factor of each other. Loose enough for a
/// shared two-core machine; a timing oracle worth the name (an extra query, a different code
/// path with I/O) moves the median by more.
const MEDIAN_RATIO_BOUND: f64 = 1.5;

/// Reads per class discarded first (connection pools, caches, the first query plans).
const WARMUP: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Foreign,
    Missing,
    Own,
}

impl Class {
    const ALL: [Class; 3] = [Class::Foreign, Class::Missing, Class::Own];

    fn id(self) -> &'static str {
        match self {
            Class::Foreign => FOREIGN,
            Class::Missing => MISSING,
            Class::Own => OWN,
        }
    }
}

fn config(db: &WDb, ledger: &std::path::Path) -> Value {
    let base = writeback_support::config_doc(db, ledger, json!({}));
    let read = json!({
        "name": "billing.inspect_invoice", "kind": "read", "source": "main",
        "description": "Read one invoice.",
        "target": base["capabilities"][0]["target"],
        "args": {"invoice_id": {"type": "string", "max_length": 64}},
        "lookup": {"id_from_arg": "invoice_id"},
        "visible_columns": ["id", "late_fee_cents", "status"]
    });
    writeback_support::config_doc(db, ledger, json!({"capabilities": [read]}))
}

async fn start(db: &WDb, dir: &std::path::Path, http: bool) -> (Client, Option<tokio::process::Child>) {
    let transport = if http { "http" } else { "stdio" };
    let cfg = dir.join(format!("{transport}.json"));
    let ledger = dir.join(format!("{transport}.db"));
    std::fs::write(&cfg, config(db, &ledger).to_string()).unwrap();
    let token = http.then_some(TOKEN);
    writeback_support::serve_mcp(db, &cfg, dir, "agent.timing", token).await
}

/// Reads `id`; returns the whole tool result as the client received it and the round trip.
async fn read(client: &Client, id: &str) -> (Value, Duration) {
    let args = json!({"invoice_id": id});
    let Value::Object(args) = args else { unreachable!() };
    let started = Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(20),
        client.call_tool(CallToolRequestParams::new("billing.inspect_invoice").with_arguments(args)),
    )
    .await
    .unwrap_or_else(|_| panic!("no answer in 20 s reading {id}"))
    .unwrap_or_else(|e| panic!("reading {id} failed at the protocol level: {e}"));
    let took = started.elapsed();
    (serde_json::to_value(result).unwrap(), took)
}

/// The whole answer as the bytes compared: the text content (the envelope as the server wrote
/// it), `structuredContent`, `isError` and `_meta`. The envelope echoes no argument, so nothing
/// is removed before comparing; [`assert_no_echo`] keeps that true.
fn answer_bytes(answer: &Value) -> String {
    answer.to_string()
}

/// The requested id appears nowhere in the answer (if it ever did, the two classes' answers
/// would differ by it and the comparison would have to remove it first).
fn assert_no_echo(answer: &Value, id: &str, label: &str) {
    assert!(!answer.to_string().contains(id), "{label}: {id} is echoed: {answer}");
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = (p * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// p50 and p90 of one class.
struct Summary {
    p50: Duration,
    p90: Duration,
}

fn summarize(mut samples: Vec<Duration>) -> Summary {
    samples.sort_unstable();
    Summary {
        p50: percentile(&samples, 0.50),
        p90: percentile(&samples, 0.90),
    }
}

async fn run(db: WDb, engine: &str) {
    let samples: usize = std::env::var("SYNAPSOR_TIMING_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir().unwrap();
    let mut parts = Vec::new();
    for http in [false, true] {
        let transport = if http { "http" } else { "stdio" };
        let label = format!("{engine}/{transport}");
        let (client, _server) = start(&db, dir.path(), http).await;

        // The contract first: the two answers are the same bytes, and an error; the own row is
        // a row.
        let (foreign, _) = read(&client, FOREIGN).await;
        let (missing, _) = read(&client, MISSING).await;
        let (own, _) = read(&client, OWN).await;
        assert_eq!(foreign["isError"], true, "{label}: {foreign}");
        assert_eq!(
            foreign["structuredContent"]["error"]["code"], "NOT_FOUND_IN_TENANT",
            "{label}: {foreign}"
        );
        assert_no_echo(&foreign, FOREIGN, &label);
        assert_no_echo(&missing, MISSING, &label);
        let reference = answer_bytes(&missing);
        assert_eq!(
            answer_bytes(&foreign),
            reference,
            "{label}: another tenant's row must answer exactly like a missing one"
        );
        for leak in ["globex", "Globex", "9900"] {
            assert!(!foreign.to_string().contains(leak), "{label}: {leak} in {foreign}");
        }
        assert_eq!(own["isError"], false, "{label}: {own}");
        assert_eq!(own["structuredContent"]["data"]["id"], OWN, "{label}: {own}");

        let mut times: [Vec<Duration>; 3] = Default::default();
        for round in 0..WARMUP + samples {
            // A rotating order: no class always follows the same one.
            for k in 0..3 {
                let class = Class::ALL[(round + k) % 3];
                let (answer, took) = read(&client, class.id()).await;
                if class != Class::Own {
                    // Every answer, not just the first, is the same bytes.
                    assert_eq!(
                        answer_bytes(&answer),
                        reference,
                        "{label}: {class:?} read {round} differs"
                    );
                }
                if round >= WARMUP {
                    times[class as usize].push(took);
                }
            }
        }
        client.cancel().await.unwrap();

        let [foreign_t, missing_t, own_t] = times.map(summarize);
        let ratio = foreign_t.p50.as_secs_f64() / missing_t.p50.as_secs_f64();
        parts.push(format!(
            "{label} foreign p50 {} p90 {} ms, missing p50 {} p90 {} ms (median ratio {ratio:.2}), own row p50 {} p90 {} ms",
            ms(foreign_t.p50),
            ms(foreign_t.p90),
            ms(missing_t.p50),
            ms(missing_t.p90),
            ms(own_t.p50),
            ms(own_t.p90),
        ));
        assert!(
            (1.0 / MEDIAN_RATIO_BOUND..=MEDIAN_RATIO_BOUND).contains(&ratio),
            "{label}: another tenant's row and a missing one take different times: {}",
            parts.last().unwrap()
        );
    }
    eprintln!(
        "timing classes: {samples} reads per class, interleaved: {}",
        parts.join("; ")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_foreign_and_missing_rows_are_indistinguishable() {
    let Some(db) = RUNNER.postgres(false).await else {
        return;
    };
    run(db, "postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_foreign_and_missing_rows_are_indistinguishable() {
    let Some(db) = RUNNER.mysql(false).await else {
        return;
    };
    run(db, "mariadb").await;
}
