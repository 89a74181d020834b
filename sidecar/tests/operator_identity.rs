//! Local decisions on a capability with an approval role need a verified operator token: the
//! real binary's `proposals approve|reject` and `apply`, tokens signed with the identity crate's
//! test keys and checked against a JWK-set file, on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used)]

#[path = "writeback_support/mod.rs"]
mod writeback_support;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use synapsor_core::context::{Clock, SystemClock};

use writeback_support::*;

const ISSUER: &str = "https://idp.test/";
const OPERATOR_AUDIENCE: &str = "synapsor-operator-test";

fn rsa_a() -> EncodingKey {
    EncodingKey::from_rsa_der(include_bytes!("../../crates/identity/tests/keys/rsa-a.test-only.der"))
}

/// An operator token for `subject` with `roles`, valid for `ttl` seconds (negative: expired).
fn operator_token(subject: &str, roles: &[&str], audience: &str, ttl: i64) -> String {
    let now = SystemClock.now_secs() as i64;
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("rsa-a".into());
    let claims = json!({
        "iss": ISSUER, "aud": audience, "sub": subject, "jti": format!("op-{subject}-{now}"),
        "iat": now - 5, "exp": now + ttl, "roles": roles,
    });
    jsonwebtoken::encode(&header, &claims, &rsa_a()).unwrap()
}

/// The writeback config with an identity that verifies operator tokens, and an approval role.
fn setup(db: WDb, operator: bool) -> Setup {
    let mut identity = json!({
        "issuer": ISSUER,
        "audience": "synapsor-runner-test",
        "keys": {"jwks_file": "jwks.json"},
        "algorithms": ["RS256"],
        "tenant_claim": "tid",
    });
    if operator {
        identity["operator"] = json!({"audience": OPERATOR_AUDIENCE});
    }
    let s = Setup::new(db, json!({"identity": identity}));
    let mut doc = s.doc.clone();
    doc["capabilities"][0]["approval"] = json!({"required_role": "billing_lead"});
    std::fs::write(&s.config_path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    let jwk: Value = serde_json::from_str(include_str!("../../crates/identity/tests/keys/rsa-a.jwk.json")).unwrap();
    std::fs::write(s.dir.path().join("jwks.json"), json!({"keys": [jwk]}).to_string()).unwrap();
    s
}

fn token_file(s: &Setup, name: &str, token: &str) -> String {
    let path = s.dir.path().join(name);
    std::fs::write(&path, token).unwrap();
    path.display().to_string()
}

/// Runs the CLI with `--json` and returns (exit code, the JSON it printed).
fn run_json(s: &Setup, args: &[&str], env: &[(&str, &str)]) -> (i32, Value) {
    let out = s.run(args, env);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "no JSON: {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), v)
}

fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("-")
}

async fn propose(s: &Setup, invoice: &str, fee: i64) -> String {
    s.propose(
        "billing.propose_late_fee",
        json!({"invoice_id": invoice, "late_fee_cents": fee}),
    )
    .await
}

async fn role_needs_a_verified_operator(db: WDb) {
    let e = db.engine.as_str();
    let s = setup(db, true);
    let id = propose(&s, "INV-1", 2500).await;
    let approve = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec!["proposals", "approve", id.as_str(), "--yes", "--json"];
        args.extend_from_slice(extra);
        run_json(&s, &args, env)
    };

    // `--actor` is any string: not enough when the capability names a role.
    for extra in [&[][..], &["--actor", "alice"][..]] {
        let (rc, v) = approve(extra, &[]);
        assert_eq!((rc, error_code(&v)), (1, "OPERATOR_TOKEN_REQUIRED"), "{e}: {v}");
    }
    // Tokens that do not qualify, each with its reason.
    let cases = [
        (
            "no role",
            operator_token("alice", &["viewer"], OPERATOR_AUDIENCE, 300),
            "OPERATOR_ROLE_MISSING",
        ),
        (
            "expired",
            operator_token("alice", &["billing_lead"], OPERATOR_AUDIENCE, -60),
            "TOKEN_EXPIRED",
        ),
        (
            "a session token",
            operator_token("alice", &["billing_lead"], "synapsor-runner-test", 300),
            "TOKEN_AUDIENCE_MISMATCH",
        ),
        ("garbage", "not-a-token".to_owned(), "TOKEN_MALFORMED"),
    ];
    for (label, token, code) in cases {
        let file = token_file(&s, "bad.jwt", &token);
        let (rc, v) = approve(&["--operator-token-file", &file], &[]);
        assert_eq!((rc, error_code(&v)), (1, code), "{e} {label}: {v}");
        assert!(!v.to_string().contains(&token), "{e} {label}: the token is echoed");
    }
    // The proposer cannot approve their own proposal, even with the role.
    let own = token_file(
        &s,
        "own.jwt",
        &operator_token("agent.test", &["billing_lead"], OPERATOR_AUDIENCE, 300),
    );
    let (rc, v) = approve(&["--operator-token-file", &own], &[]);
    assert_eq!((rc, error_code(&v)), (1, "SELF_APPROVAL_FORBIDDEN"), "{e}: {v}");
    // Nothing was recorded by any refusal.
    assert!(s.proposal(&id).approvals.is_empty(), "{e}");
    // Nor can apply run before approval, with or without a token.
    let (rc, v) = s.apply(&id, &[], true);
    assert_eq!((rc, code(&v)), (1, "OPERATOR_TOKEN_REQUIRED"), "{e}: {v}");

    // alice with the role: approved, and the ledger records who the token said she is.
    let alice = operator_token("alice", &["billing_lead", "viewer"], OPERATOR_AUDIENCE, 300);
    let file = token_file(&s, "alice.jwt", &alice);
    let (rc, v) = approve(&["--operator-token-file", &file, "--actor", "bob"], &[]);
    assert_eq!((rc, error_code(&v)), (1, "OPERATOR_ACTOR_MISMATCH"), "{e}: {v}");
    let (rc, v) = approve(&[], &[("SYNAPSOR_OPERATOR_TOKEN", &alice)]);
    assert_eq!(rc, 0, "{e}: {v}");
    assert_eq!(v["approved_by"], "alice");
    assert_eq!(v["verified_identity"]["issuer"], ISSUER);
    let a = &s.proposal(&id).approvals[0];
    assert_eq!(a.approver, "alice");
    let vi = a.verified_identity.as_ref().unwrap();
    assert_eq!((vi.issuer.as_str(), vi.subject.as_str()), (ISSUER, "alice"));
    assert!(vi.jti.as_deref().unwrap().starts_with("op-alice-"));
    let ledger = std::fs::read(&s.store_path).unwrap();
    assert!(
        !ledger
            .windows(alice.len().min(40))
            .any(|w| w == &alice.as_bytes()[..alice.len().min(40)]),
        "{e}: the token reached the ledger"
    );

    // apply: refused without a token, applied with one.
    let (rc, v) = s.apply(&id, &[], true);
    assert_eq!((rc, code(&v)), (1, "OPERATOR_TOKEN_REQUIRED"), "{e}: {v}");
    assert_eq!(s.db.fee("INV-1").await, 5500);
    let (rc, v) = s.apply(&id, &["--operator-token-file", &file], true);
    assert_eq!((rc, status(&v)), (0, "applied"), "{e}: {v}");
    assert_eq!(s.db.fee("INV-1").await, 2500);

    // reject follows the same rules.
    let other = propose(&s, "INV-3", 100).await;
    let (rc, v) = run_json(
        &s,
        &["proposals", "reject", &other, "--reason", "no", "--yes", "--json"],
        &[],
    );
    assert_eq!((rc, error_code(&v)), (1, "OPERATOR_TOKEN_REQUIRED"), "{e}: {v}");
    let (rc, v) = run_json(
        &s,
        &[
            "proposals",
            "reject",
            &other,
            "--reason",
            "no",
            "--yes",
            "--json",
            "--operator-token-file",
            &file,
        ],
        &[],
    );
    assert_eq!(rc, 0, "{e}: {v}");
    assert_eq!(v["rejected_by"], "alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_role_needs_a_verified_operator() {
    role_needs_a_verified_operator(RUNNER.sqlite(true)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_role_needs_a_verified_operator() {
    let Some(db) = RUNNER.postgres(true).await else {
        return;
    };
    role_needs_a_verified_operator(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_without_operator_identity_refuses_and_no_role_marks_unverified() {
    // A role, and no identity.operator: nobody can decide locally.
    let s = setup(RUNNER.sqlite(true), false);
    let id = propose(&s, "INV-1", 2500).await;
    let (rc, v) = run_json(&s, &["proposals", "approve", &id, "--yes", "--json"], &[]);
    assert_eq!((rc, error_code(&v)), (1, "OPERATOR_TOKEN_REQUIRED"), "{v}");
    let token = operator_token("alice", &["billing_lead"], OPERATOR_AUDIENCE, 300);
    let (rc, v) = run_json(
        &s,
        &["proposals", "approve", &id, "--yes", "--json"],
        &[("SYNAPSOR_OPERATOR_TOKEN", &token)],
    );
    assert_eq!((rc, error_code(&v)), (1, "OPERATOR_IDENTITY_NOT_CONFIGURED"), "{v}");
    let out = s.run(&["config", "validate"], &[]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("APPROVAL_ROLE_NEEDS_OPERATOR_IDENTITY"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // No role: today's behaviour, and the ledger says the name was not verified.
    let s = Setup::new(RUNNER.sqlite(true), json!({}));
    let id = propose(&s, "INV-1", 2500).await;
    let (rc, v) = run_json(
        &s,
        &["proposals", "approve", &id, "--yes", "--json", "--actor", "alice"],
        &[],
    );
    assert_eq!(rc, 0, "{v}");
    assert_eq!(v["verified_identity"], Value::Null);
    let a = &s.proposal(&id).approvals[0];
    assert_eq!((a.approver.as_str(), a.verified_identity.is_none()), ("alice", true));
    let (rc, v) = s.apply(&id, &[], true);
    assert_eq!((rc, status(&v)), (0, "applied"), "{v}");
}
