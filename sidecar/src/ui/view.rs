//! What the templates see: the review model and list rows turned into display strings, and the
//! template environment (HTML autoescape on for every template, printing an undefined value is an error;
//! optional fields may be tested with `if`).
//!
//! What it is not: a place for decisions. Which buttons appear comes from the source's
//! [`Actions`](super::Actions); the server re-checks everything on submit.

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;
use serde_json::Value;
use synapsor_core::review::Review;

use super::{Done, ReviewPage, UiError};

const TEMPLATES: [(&str, &str); 5] = [
    ("base.html", include_str!("templates/base.html")),
    ("list.html", include_str!("templates/list.html")),
    ("proposal.html", include_str!("templates/proposal.html")),
    ("message.html", include_str!("templates/message.html")),
    ("macros.html", include_str!("templates/macros.html")),
];

/// The stylesheet and the script, served from `/assets/`.
pub const STYLE_CSS: &str = include_str!("assets/style.css");
pub const APP_JS: &str = include_str!("assets/app.js");

/// The template environment. Every template is escaped as HTML whatever its name.
pub fn environment() -> Result<Environment<'static>, UiError> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    for (name, source) in TEMPLATES {
        env.add_template(name, source).map_err(|e| {
            tracing::error!("review UI template {name} does not compile: {e}");
            UiError::Render
        })?;
    }
    Ok(env)
}

/// A JSON value as one line of text: strings without quotes, `null` as `null`.
pub fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

#[derive(Debug, Serialize)]
pub struct DiffView {
    pub column: String,
    pub before: String,
    pub after: String,
    pub changed: bool,
}

#[derive(Debug, Serialize)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Serialize)]
pub struct CheckView {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub struct ReceiptView {
    pub status: String,
    pub message: String,
    pub code: Option<String>,
    pub fields: Vec<KeyValue>,
    pub checks: Vec<CheckView>,
}

#[derive(Debug, Serialize)]
pub struct EvidenceView {
    pub bundle_id: String,
    pub fields: Vec<KeyValue>,
    pub row: Vec<KeyValue>,
    pub queries: Vec<KeyValue>,
}

/// The proposal page's model.
#[derive(Debug, Serialize)]
pub struct ProposalView {
    pub review: Review,
    pub diff: Vec<DiffView>,
    pub changed_count: usize,
    pub approvals: usize,
    pub evidence: Option<EvidenceView>,
    pub receipt: Option<ReceiptView>,
    pub revision: String,
    pub digest_verified: bool,
    pub managed_elsewhere: Option<String>,
    pub approve: bool,
    pub approve_note: bool,
    pub reject: bool,
    pub apply: bool,
    pub acting_as: Option<String>,
    /// Why this person cannot decide: `(code, message)`.
    pub acting_refused: Option<(String, String)>,
    pub apply_command: Option<String>,
    pub apply_note: Option<String>,
    pub notice: Option<&'static str>,
}

fn kv(key: &str, value: Option<&Value>) -> Option<KeyValue> {
    let value = value.filter(|v| !v.is_null())?;
    Some(KeyValue {
        key: key.to_owned(),
        value: scalar(value),
    })
}

fn evidence_view(ev: &Value) -> EvidenceView {
    let fields = [
        "captured_at",
        "capability",
        "target",
        "object_id",
        "tenant",
        "principal",
        "binding",
    ]
    .into_iter()
    .filter_map(|k| kv(k, ev.get(k)))
    .collect();
    let row = ev
        .get("row")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| KeyValue {
                    key: k.clone(),
                    value: scalar(v),
                })
                .collect()
        })
        .unwrap_or_default();
    let queries = ev
        .get("queries")
        .and_then(Value::as_array)
        .map(|qs| {
            qs.iter()
                .map(|q| KeyValue {
                    key: q.get("at").map(scalar).unwrap_or_default(),
                    value: format!(
                        "{}, {} row(s), {:.1} ms",
                        q.get("outcome").map(scalar).unwrap_or_default(),
                        q.get("row_count").map(scalar).unwrap_or_default(),
                        q.get("duration_ms").and_then(Value::as_f64).unwrap_or(0.0)
                    ),
                })
                .collect()
        })
        .unwrap_or_default();
    EvidenceView {
        bundle_id: ev
            .get("bundle_id")
            .or_else(|| ev.get("id"))
            .map(scalar)
            .unwrap_or_default(),
        fields,
        row,
        queries,
    }
}

fn receipt_view(rc: &Value) -> ReceiptView {
    let fields = [
        "executed_at",
        "executor",
        "rows_affected",
        "idempotency_key",
        "previous_version",
        "new_version",
        "source_database_mutated",
        "receipt_hash",
    ]
    .into_iter()
    .filter_map(|k| kv(k, rc.get(k)))
    .collect();
    let checks = rc
        .get("checks")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| CheckView {
                    name: c.get("name").map(scalar).unwrap_or_default(),
                    passed: c.get("passed").and_then(Value::as_bool).unwrap_or(false),
                    detail: c.get("detail").map(scalar).unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    ReceiptView {
        status: rc.get("status").map(scalar).unwrap_or_default(),
        message: rc.get("message").map(scalar).unwrap_or_default(),
        code: rc.get("safe_error_code").filter(|v| !v.is_null()).map(scalar),
        fields,
        checks,
    }
}

fn notice(done: Option<Done>) -> Option<&'static str> {
    Some(match done? {
        Done::Approved => "Approved. Nothing is written until it is applied.",
        Done::ApprovalRecorded => "Your approval was recorded; more approvers are needed.",
        Done::Rejected => "Rejected.",
        Done::ApplyRan => "Apply ran. The receipt below says how it ended.",
    })
}

impl ProposalView {
    pub fn new(page: ReviewPage, done: Option<Done>) -> ProposalView {
        let r = page.review;
        let diff: Vec<DiffView> = r
            .diff
            .iter()
            .map(|d| DiffView {
                column: d.column.clone(),
                before: scalar(&d.before),
                after: scalar(&d.after),
                changed: d.changed,
            })
            .collect();
        let (acting_as, acting_refused) = match page.acting_as {
            Ok(who) => (Some(who), None),
            Err(UiError::Unsupported { .. }) => (None, None),
            Err(e) => (None, Some((e.code().to_owned(), e.to_string()))),
        };
        ProposalView {
            changed_count: diff.iter().filter(|d| d.changed).count(),
            diff,
            approvals: r.decisions.iter().filter(|d| d.decision == "approved").count(),
            evidence: r.evidence.as_ref().map(evidence_view),
            receipt: r.receipt.as_ref().map(receipt_view),
            revision: page.revision,
            digest_verified: page.digest_verified,
            managed_elsewhere: page.managed_elsewhere,
            approve: page.actions.approve,
            approve_note: page.actions.approve_note,
            reject: page.actions.reject,
            apply: page.actions.apply,
            acting_as,
            acting_refused,
            apply_command: page.apply_command,
            apply_note: page.apply_note,
            notice: notice(done),
            review: r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_compile_and_escape() {
        let env = match environment() {
            Ok(e) => e,
            Err(e) => panic!("{e}"),
        };
        let tpl = env.get_template("message.html");
        let out = tpl.and_then(|t| {
            t.render(minijinja::context! {
                title => "<script>x</script>",
                code => "C",
                message => "a & b",
                back => "/",
                source => "s",
                csrf => "t",
                status => 409,
            })
        });
        let out = out.unwrap_or_else(|e| panic!("{e}"));
        assert!(out.contains("&lt;script&gt;x&lt;&#x2f;script&gt;"), "{out}");
        assert!(!out.contains("<script>x"), "{out}");
        assert!(out.contains("a &amp; b"), "{out}");
    }
}
