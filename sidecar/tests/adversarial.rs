//! Adversarial tool calls at scale, against the real binary over stdio and Streamable HTTP, on
//! real PostgreSQL and MariaDB: other tenants' ids, injection strings, unicode confusables and
//! NULs, oversized and wrongly typed values, extra trusted-looking arguments, unknown tools and
//! secrets in arguments, mixed with valid calls, from a seeded generator (the seed is printed, so
//! a failure replays).
//!
//! After every call: an answer came (the server is alive), and nothing in it names another
//! tenant, the trusted tenant or principal, a hidden column's value or a driver's text; a valid
//! read shows exactly the visible columns. After the run: the source table is unchanged (rows,
//! values and the update counter), since no tool call ever writes it.
//!
//! `SYNAPSOR_ADVERSARIAL_CALLS` sets the calls per engine and transport (default 250, so 1,000 in
//! all; the long profile in scripts/reliability.sh runs 2,500 each, 10,000 in all) and
//! `SYNAPSOR_ADVERSARIAL_SEED` the generator's seed.
#![allow(clippy::unwrap_used)]

#[path = "writeback_support/mod.rs"]
mod writeback_support;

use std::time::Duration;

use rmcp::model::CallToolRequestParams;
use serde_json::{Map, Value, json};
use writeback_support::{RUNNER, WDb};

type Client = writeback_support::McpClient;

const TOKEN: &str = "adversarial-token-0123456789abcdef";
const HIDDEN_NOTE: &str = "hidden-note-7f3a";
const VISIBLE: [&str; 3] = ["id", "late_fee_cents", "status"];

/// Strings no answer may contain: another tenant, the trusted tenant and principal, a hidden
/// column's value, and what drivers say.
const FORBIDDEN: [&str; 12] = [
    "globex",
    "acme",
    "agent.adversary",
    HIDDEN_NOTE,
    "SQLSTATE",
    "syntax error",
    "sqlx",
    "rusqlite",
    "You have an error in your SQL",
    "violates",
    "invalid byte sequence",
    "panicked",
];

/// A small deterministic generator (xorshift64*): the same seed gives the same calls.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n).unwrap()).unwrap()
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const HOSTILE_IDS: [&str; 22] = [
    "INV-9",
    "inv-9",
    "INV-9 ",
    "INV-1' OR '1'='1",
    "INV-1'; DROP TABLE invoices; --",
    "\" OR 1=1 --",
    "INV-1\\'",
    "%",
    "INV-%",
    "_NV-1",
    "1; SELECT pg_sleep(5)",
    "INV-1/**/OR/**/1=1",
    "\u{0406}NV-1",
    "INV\u{2010}1",
    "INV-\u{FF11}",
    "INV-1\u{200B}",
    "\u{202E}1-VNI",
    "INV-1\0",
    "\0",
    "",
    "   ",
    "../../etc/passwd",
];

const SECRETS: [&str; 6] = [
    "postgres://app:hunter2@db.internal/prod",
    "mysql://root:pw@10.0.0.5/app",
    "sk-live-4eC39HqLyjWDarjtT1zdp7dc",
    "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
    "Bearer abcdefghijklmnopqrstuvwxyz0123456789",
    "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1LTEifQ.c2lnbmF0dXJlLWJ5dGVz",
];

const TRUSTED_LOOKING: [&str; 9] = [
    "tenant_id",
    "TenantId",
    "tenant",
    "principal",
    "_meta",
    "trusted_context",
    "__proto__",
    "SYNAPSOR_TENANT_ID",
    "owner",
];

/// What kind of call it was, for the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    ValidRead,
    ValidProposal,
    ForeignOrHostileId,
    WrongType,
    Oversized,
    TrustedLooking,
    UnknownTool,
    Secret,
}

/// One generated call: the tool, its arguments, and what kind it is.
fn generate(g: &mut Gen) -> (String, Map<String, Value>, Kind) {
    let read = "billing.inspect_invoice".to_owned();
    let propose = "billing.propose_late_fee".to_owned();
    let obj = |v: Value| match v {
        Value::Object(m) => m,
        _ => unreachable!(),
    };
    match g.below(8) {
        0 => (
            read,
            obj(json!({"invoice_id": g.pick(&["INV-1", "INV-2", "INV-3"])})),
            Kind::ValidRead,
        ),
        1 => {
            // Never another row's fee (9900 is the other tenant's) or a row's current fee (a
            // proposal that changes nothing is refused).
            let fee = i64::try_from(g.below(10_000)).unwrap();
            let fee = if [700, 800, 5500, 9900].contains(&fee) {
                fee + 1
            } else {
                fee
            };
            (
                propose,
                obj(json!({"invoice_id": g.pick(&["INV-1", "INV-3", "INV-4"]), "late_fee_cents": fee})),
                Kind::ValidProposal,
            )
        }
        2 => {
            let id = *g.pick(&HOSTILE_IDS);
            if g.below(2) == 0 {
                (read, obj(json!({"invoice_id": id})), Kind::ForeignOrHostileId)
            } else {
                (
                    propose,
                    obj(json!({"invoice_id": id, "late_fee_cents": 1})),
                    Kind::ForeignOrHostileId,
                )
            }
        }
        3 => {
            let wrong = g
                .pick(&[
                    json!(12),
                    json!(["INV-1"]),
                    json!({"id": "INV-1"}),
                    json!(true),
                    json!(1.5e300),
                ])
                .clone();
            if g.below(2) == 0 {
                (read, obj(json!({"invoice_id": wrong})), Kind::WrongType)
            } else {
                let fee = g
                    .pick(&[json!("100"), json!([1]), json!({"v": 1}), json!(false), json!(null)])
                    .clone();
                (
                    propose,
                    obj(json!({"invoice_id": "INV-1", "late_fee_cents": fee})),
                    Kind::WrongType,
                )
            }
        }
        4 => {
            let long = "A".repeat(*g.pick(&[65, 1_000, 100_000]));
            if g.below(2) == 0 {
                (read, obj(json!({"invoice_id": long})), Kind::Oversized)
            } else {
                let fee = g
                    .pick(&[json!(1e20), json!(-1), json!(10_001), json!(i64::MAX)])
                    .clone();
                (
                    propose,
                    obj(json!({"invoice_id": "INV-1", "late_fee_cents": fee})),
                    Kind::Oversized,
                )
            }
        }
        5 => {
            let key = *g.pick(&TRUSTED_LOOKING);
            let mut args = obj(json!({"invoice_id": "INV-9"}));
            args.insert(key.to_owned(), json!("globex"));
            (g.pick(&[read, propose]).clone(), args, Kind::TrustedLooking)
        }
        6 => {
            let name = g
                .pick(&[
                    "billing.delete_invoice",
                    "billing.inspect_invoice ",
                    "",
                    "../billing",
                    "x".repeat(300).as_str(),
                ])
                .to_string();
            (name, obj(json!({"invoice_id": "INV-1"})), Kind::UnknownTool)
        }
        _ => {
            let secret = *g.pick(&SECRETS);
            (read, obj(json!({"invoice_id": secret})), Kind::Secret)
        }
    }
}

/// The config: a read tool that hides the tenant, the note, the owner and the counters, and the
/// late-fee proposal tool of the writeback tests.
fn config(db: &WDb, ledger: &std::path::Path) -> Value {
    let base = writeback_support::config_doc(db, ledger, json!({}));
    let propose = base["capabilities"][0].clone();
    let read = json!({
        "name": "billing.inspect_invoice", "kind": "read", "source": "main",
        "description": "Read one invoice.",
        "target": propose["target"],
        "args": {"invoice_id": {"type": "string", "max_length": 64}},
        "lookup": {"id_from_arg": "invoice_id"},
        "visible_columns": VISIBLE
    });
    writeback_support::config_doc(db, ledger, json!({"capabilities": [read, propose]}))
}

/// What the source holds, as a value to compare before and after: rows, fees, notes, writes.
async fn snapshot(db: &WDb) -> (i64, i64, i64, i64) {
    (
        db.int("SELECT COUNT(*) FROM invoices").await,
        db.int("SELECT SUM(late_fee_cents) FROM invoices").await,
        db.int("SELECT COUNT(*) FROM invoices WHERE note IS NOT NULL").await,
        db.total_writes().await,
    )
}

async fn start(db: &WDb, dir: &std::path::Path, http: bool) -> (Client, Option<tokio::process::Child>) {
    let cfg = dir.join(if http { "http.json" } else { "stdio.json" });
    let ledger = dir.join(if http { "http.db" } else { "stdio.db" });
    std::fs::write(&cfg, config(db, &ledger).to_string()).unwrap();
    let token = http.then_some(TOKEN);
    writeback_support::serve_mcp(db, &cfg, dir, "agent.adversary", token).await
}

async fn run(db: WDb, label: &str) {
    let calls: usize = std::env::var("SYNAPSOR_ADVERSARIAL_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(250);
    let seed: u64 = std::env::var("SYNAPSOR_ADVERSARIAL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x005E_ED0F_AD0E_55A1);
    db.exec(&format!(
        "UPDATE invoices SET note = '{HIDDEN_NOTE}' WHERE id = 'INV-1'"
    ))
    .await;
    let before = snapshot(&db).await;
    let dir = tempfile::tempdir().unwrap();
    for http in [false, true] {
        let transport = if http { "http" } else { "stdio" };
        let (client, _server) = start(&db, dir.path(), http).await;
        let mut g = Gen(seed ^ u64::from(http));
        let mut counts: std::collections::BTreeMap<Kind, (usize, usize)> = Default::default();
        for i in 0..calls {
            let (tool, args, kind) = generate(&mut g);
            let answer = tokio::time::timeout(
                Duration::from_secs(20),
                client.call_tool(CallToolRequestParams::new(tool.clone()).with_arguments(args.clone())),
            )
            .await
            .unwrap_or_else(|_| {
                panic!("{label}/{transport} call {i} (seed {seed}): no answer in 20 s: {tool} {args:?}")
            });
            let (text, ok) = match answer {
                Ok(r) => {
                    let ok = r.is_error != Some(true);
                    (serde_json::to_string(&r).unwrap(), ok)
                }
                // A protocol-level refusal (an unknown tool) is an answer too.
                Err(e) => (e.to_string(), false),
            };
            let context = || format!("{label}/{transport} call {i} (seed {seed}) {kind:?}: {tool} {args:?}\n{text}");
            for f in FORBIDDEN {
                assert!(
                    !text.to_lowercase().contains(&f.to_lowercase()),
                    "{f:?} in the answer of {}",
                    context()
                );
            }
            match kind {
                Kind::ValidRead | Kind::ValidProposal => assert!(ok, "a valid call failed: {}", context()),
                _ => assert!(!ok, "a hostile call succeeded: {}", context()),
            }
            if kind == Kind::ValidRead {
                let v: Value = serde_json::from_str(&text).unwrap();
                let data = &v["structuredContent"]["data"];
                let keys: Vec<&str> = data.as_object().unwrap().keys().map(String::as_str).collect();
                assert_eq!(keys, VISIBLE, "{}", context());
            }
            let entry = counts.entry(kind).or_default();
            entry.0 += 1;
            entry.1 += usize::from(ok);
        }
        // Still serving after all of it.
        let tools = client.list_all_tools().await.unwrap();
        assert_eq!(tools.len(), 2, "{label}/{transport}");
        eprintln!("{label}/{transport}: {calls} calls (seed {seed}), by kind (calls, ok): {counts:?}");
        client.cancel().await.unwrap();
    }
    assert_eq!(snapshot(&db).await, before, "{label}: the source changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_survives_adversarial_calls() {
    let Some(db) = RUNNER.postgres(false).await else {
        return;
    };
    run(db, "postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_survives_adversarial_calls() {
    let Some(db) = RUNNER.mysql(false).await else {
        return;
    };
    run(db, "mariadb").await;
}
