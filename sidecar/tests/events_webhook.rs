//! `synapsor-runner events webhook` against a real HTTP receiver on 127.0.0.1: events arrive in
//! order, signed (checked with `synapsor_handler::verify_signature`); a non-2xx stops delivery
//! and `--since` resumes; `--follow` retries with backoff and never skips an event.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use synapsor_core::context::{Clock, SystemClock};

use serde_json::Value;
use synapsor_handler::{EVENT_WEBHOOK_SCHEMA, EventEnvelope, KeyRing, verify_signature};

const STORE: &str = ".synapsor/quick-demo/ledger.db";
const SECRET: &str = "webhook-test-secret-0123456789abcdef-xyz";
const TOKEN: &str = "receiver-token-42";

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_synapsor-runner"));
    c.env_remove("SYNAPSOR_CONFIG")
        .env_remove("SYNAPSOR_MCP_CONFIG")
        .env_remove("SYNAPSOR_LOCAL_STORE")
        .env_remove("SYNAPSOR_APPROVER")
        .env("HOOK_SECRET", SECRET)
        .env("HOOK_TOKEN", TOKEN)
        .stdin(Stdio::null());
    c
}

fn run(dir: &Path, args: &[&str]) -> Output {
    bin().current_dir(dir).args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A temp dir with the quick demo's ledger, and the ledger's event ids and kinds.
fn demo() -> (tempfile::TempDir, Vec<(i64, String)>) {
    let dir = tempfile::tempdir().unwrap();
    let o = run(dir.path(), &["demo", "--quick", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(
        dir.path(),
        &["--store", STORE, "events", "tail", "--json", "--limit", "1000"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let events: Vec<(i64, String)> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["event_id"].as_i64().unwrap(), v["kind"].as_str().unwrap().to_owned())
        })
        .collect();
    assert!(events.len() >= 3, "the demo should record a few events: {events:?}");
    (dir, events)
}

#[derive(Debug, Clone)]
struct Received {
    event_id_header: String,
    signature: Option<String>,
    authorization: Option<String>,
    body: Vec<u8>,
    status: u16,
}

/// A minimal HTTP/1.1 receiver: answers 200, or 500 while `failures[event_id]` > 0.
#[derive(Clone)]
struct Receiver {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Received>>>,
    failures: Arc<Mutex<HashMap<i64, u32>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let r = Receiver {
            addr: listener.local_addr().unwrap(),
            log: Arc::default(),
            failures: Arc::default(),
        };
        let me = r.clone();
        // Lives until the test process ends.
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = me.serve(stream);
            }
        });
        r
    }

    fn url(&self) -> String {
        format!("http://{}/hooks/synapsor", self.addr)
    }

    fn fail(&self, event_id: i64, times: u32) {
        self.failures.lock().unwrap().insert(event_id, times);
    }

    fn received(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }

    fn serve(&self, stream: TcpStream) -> std::io::Result<()> {
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut headers = HashMap::new();
        let mut line = String::new();
        reader.read_line(&mut line)?; // request line
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        let event_id_header = headers.get("x-synapsor-event-id").cloned().unwrap_or_default();
        let status = {
            let mut failures = self.failures.lock().unwrap();
            match failures.get_mut(&event_id_header.parse().unwrap_or(-1)) {
                Some(n) if *n > 0 => {
                    *n -= 1;
                    500
                }
                _ => 200,
            }
        };
        self.log.lock().unwrap().push(Received {
            event_id_header,
            signature: headers.get("x-synapsor-signature").cloned(),
            authorization: headers.get("authorization").cloned(),
            body,
            status,
        });
        let mut stream = stream;
        write!(
            stream,
            "HTTP/1.1 {status} {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            if status == 200 { "OK" } else { "Internal Server Error" }
        )?;
        stream.flush()
    }
}

fn now() -> i64 {
    SystemClock.now_ms().div_euclid(1000)
}

/// Checks one delivery: signature, headers and envelope; returns the envelope.
fn check(r: &Received) -> EventEnvelope {
    let keys = KeyRing::single("hooks-2026", SECRET).unwrap();
    let verified = verify_signature(r.signature.as_deref(), &r.body, &keys, now(), 300)
        .unwrap_or_else(|e| panic!("signature of event {}: {e}", r.event_id_header));
    assert_eq!(verified.key_id, "hooks-2026");
    assert_eq!(r.authorization.as_deref(), Some(format!("Bearer {TOKEN}").as_str()));
    let env: EventEnvelope = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(env.schema_version, EVENT_WEBHOOK_SCHEMA);
    assert_eq!(r.event_id_header, env.event.event_id.to_string());
    // A changed byte no longer verifies.
    let mut tampered = r.body.clone();
    tampered[10] ^= 1;
    assert!(verify_signature(r.signature.as_deref(), &tampered, &keys, now(), 300).is_err());
    env
}

const SIGNED: [&str; 6] = [
    "--secret-env",
    "HOOK_SECRET",
    "--key-id",
    "hooks-2026",
    "--auth-token-env",
    "HOOK_TOKEN",
];

fn webhook_args<'a>(url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["--store", STORE, "events", "webhook", "--url", url];
    a.extend(SIGNED);
    a.extend(extra);
    a
}

fn assert_no_secrets(out: &str) {
    assert!(!out.contains(SECRET), "secret in output:\n{out}");
    assert!(!out.contains(TOKEN), "token in output:\n{out}");
}

#[test]
fn delivers_every_event_in_order_signed() {
    let (dir, events) = demo();
    let rx = Receiver::start();
    let url = rx.url();
    let o = run(dir.path(), &webhook_args(&url, &[]));
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert_no_secrets(&out);
    let (first_id, first_kind) = &events[0];
    assert!(out.contains(&format!("delivered #{first_id} {first_kind}")), "{out}");
    assert!(out.contains(&format!("{} event(s) delivered", events.len())), "{out}");

    let got: Vec<(i64, String)> = rx
        .received()
        .iter()
        .map(|r| {
            let env = check(r);
            (env.event.event_id, env.event.kind)
        })
        .collect();
    assert_eq!(got, events, "every event once, in ledger order");

    // --kind filters; --json prints one object per delivery and a summary.
    let rx = Receiver::start();
    let url = rx.url();
    let o = run(dir.path(), &webhook_args(&url, &["--kind", first_kind, "--json"]));
    assert!(o.status.success(), "{}", text(&o));
    let lines: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let wanted = events.iter().filter(|(_, k)| k == first_kind).count();
    assert_eq!(lines.len(), wanted + 1, "{lines:?}");
    assert_eq!(lines[0]["delivered"], *first_id);
    assert_eq!(lines[0]["status"], 200);
    assert_eq!(lines[wanted]["ok"], true);
    assert_eq!(rx.received().len(), wanted);
}

#[test]
fn a_failure_stops_delivery_and_since_resumes() {
    let (dir, events) = demo();
    let rx = Receiver::start();
    let url = rx.url();
    let failing = events[2].0;
    let before = events[1].0;
    rx.fail(failing, u32::MAX);

    let o = run(dir.path(), &webhook_args(&url, &[]));
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert_no_secrets(&out);
    assert!(out.contains("error[WEBHOOK_DELIVERY_FAILED]"), "{out}");
    assert!(out.contains(&format!("event #{failing}")), "{out}");
    assert!(out.contains("HTTP 500"), "{out}");
    assert!(out.contains(&format!("--since {before}")), "{out}");
    assert!(out.contains(&format!("delivered #{before} ")), "{out}");
    let ids: Vec<(String, u16)> = rx
        .received()
        .iter()
        .map(|r| (r.event_id_header.clone(), r.status))
        .collect();
    assert_eq!(
        ids,
        vec![
            (events[0].0.to_string(), 200),
            (before.to_string(), 200),
            (failing.to_string(), 500)
        ],
        "stops at the first failure"
    );

    // The same failure with --json: an error object, still no secret.
    let o = run(dir.path(), &webhook_args(&url, &["--json"]));
    assert_eq!(o.status.code(), Some(1));
    let last: Value = serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(last["ok"], false);
    assert_eq!(last["error"]["code"], "WEBHOOK_DELIVERY_FAILED");
    assert_no_secrets(&text(&o));

    // The receiver recovers; resuming from --since delivers the rest, starting at the failed one.
    rx.fail(failing, 0);
    let since = before.to_string();
    let o = run(dir.path(), &webhook_args(&url, &["--since", &since]));
    assert!(o.status.success(), "{}", text(&o));
    let delivered: Vec<i64> = rx
        .received()
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| check(r).event.event_id)
        .collect();
    let all: Vec<i64> = events.iter().map(|(id, _)| *id).collect();
    let mut expected = all[..2].to_vec(); // first run
    expected.extend(&all[..2]); // the --json run re-sent the first two
    expected.extend(&all[2..]); // resumed
    assert_eq!(delivered, expected);
}

#[test]
fn follow_retries_with_backoff_and_never_skips() {
    let (dir, events) = demo();
    let rx = Receiver::start();
    let url = rx.url();
    let flaky = events[1].0;
    rx.fail(flaky, 2);
    let mut child = bin()
        .current_dir(dir.path())
        .args(webhook_args(&url, &["--follow", "--interval-ms", "50"]))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while rx.received().iter().filter(|r| r.status == 200).count() < events.len() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("not all events delivered: {:?}\n{}", rx.received().len(), text(&out));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Still running (following); stop it by its handle.
    assert!(child.try_wait().unwrap().is_none(), "--follow should keep running");
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let out = text(&out);
    assert_no_secrets(&out);
    assert!(out.contains(&format!("event #{flaky} to {url}: HTTP 500")), "{out}");
    assert!(out.contains("retry 2 in"), "{out}");

    // In order, the flaky one three times (two failures, one success), nothing skipped.
    let seen: Vec<(i64, u16)> = rx
        .received()
        .iter()
        .map(|r| (check(r).event.event_id, r.status))
        .collect();
    let mut expected = vec![(events[0].0, 200), (flaky, 500), (flaky, 500), (flaky, 200)];
    expected.extend(events[2..].iter().map(|(id, _)| (*id, 200)));
    assert_eq!(seen, expected);
}

#[test]
fn refuses_bad_arguments_without_leaking_secrets() {
    let (dir, _) = demo();
    let o = run(dir.path(), &webhook_args("ftp://example.com/x", &[]));
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("WEBHOOK_URL_INVALID"), "{}", text(&o));

    let url = Receiver::start().url();
    let o = run(
        dir.path(),
        &[
            "--store",
            STORE,
            "events",
            "webhook",
            "--url",
            &url,
            "--secret-env",
            "NO_SUCH_VAR_X",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("WEBHOOK_ENV_MISSING"), "{}", text(&o));

    let o = bin()
        .current_dir(dir.path())
        .env("HOOK_SECRET", "too-short")
        .args([
            "--store",
            STORE,
            "events",
            "webhook",
            "--url",
            &url,
            "--secret-env",
            "HOOK_SECRET",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("SIGNING_SECRET_TOO_SHORT"), "{}", text(&o));
    assert!(!text(&o).contains("too-short"), "{}", text(&o));

    // Unreachable receiver: the printed URL drops the query (it may carry a token).
    let o = run(
        dir.path(),
        &webhook_args("http://127.0.0.1:9/hook?token=sekrit-in-url", &["--timeout-ms", "1000"]),
    );
    assert_eq!(o.status.code(), Some(1));
    let out = text(&o);
    assert!(out.contains("WEBHOOK_DELIVERY_FAILED"), "{out}");
    assert!(!out.contains("sekrit-in-url"), "{out}");
    assert_no_secrets(&out);

    // Unsigned delivery works but warns.
    let rx = Receiver::start();
    let url = rx.url();
    let o = run(dir.path(), &["--store", STORE, "events", "webhook", "--url", &url]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("unsigned"), "{}", text(&o));
    assert!(rx.received().iter().all(|r| r.signature.is_none()));
}
