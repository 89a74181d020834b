//! The five commands: `list`, `review`, `approve`, `reject` and `wait`.
//!
//! What it is: the API calls of each command, with the user's own credentials. A decision is
//! the same request a person makes with `kubectl annotate` (the annotation
//! `runner.synapsor.ai/approve: "true"` or `runner.synapsor.ai/reject: <reason>`), sent as a
//! JSON patch whose first operations test the object's uid and `spec.digest` against what was
//! shown, so the decision can only land on the proposal that was reviewed. The admission
//! webhook then decides (RBAC verb `approve`, not the proposer, open, unexpired) and records
//! it; its refusal is printed verbatim.
//!
//! What it is not: it never writes the webhook-owned annotations or the status, never applies
//! anything, and never decides who may approve: the webhook and the controller do.

use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::{Value, json};
use synapsor_kube::{
    ANNOTATION_APPROVALS, ANNOTATION_APPROVE, ANNOTATION_REJECT, ANNOTATION_REJECTION, Phase, Proposal,
};

use crate::cli::{Cli, Command, ListArgs, ListOutput, RejectArgs, ReviewArgs, ReviewOutput, WaitArgs};
use crate::connect::{Conn, connect};
use crate::error::{PluginError, api_message};
use crate::view;

/// Runs one command.
pub async fn run(cli: Cli) -> Result<(), PluginError> {
    // Refusals that need no cluster come first.
    let wait_plan = match &cli.command {
        Command::Wait(w) => Some((parse_for(&w.for_)?, parse_timeout(&w.timeout)?)),
        _ => None,
    };
    if let Command::Reject(r) = &cli.command
        && r.reason.trim().is_empty()
    {
        return Err(PluginError::ReasonRequired);
    }
    let phase_filter = match &cli.command {
        Command::List(ListArgs { phase: Some(p), .. }) => {
            Some(view::parse_phase(p).ok_or_else(|| PluginError::InvalidArgument {
                flag: "--phase",
                value: p.clone(),
                expected: "one of Pending, Approved, Applying, Applied, Conflict, Failed, Rejected, Expired",
            })?)
        }
        _ => None,
    };
    let conn = connect(&cli.global).await?;
    match cli.command {
        Command::List(a) => list(&conn, &a, phase_filter).await,
        Command::Review(a) => review(&conn, &a).await,
        Command::Approve(a) => decide(&conn, &a.name, Requested::Approve, a.yes).await,
        Command::Reject(RejectArgs { name, reason, yes }) => {
            decide(&conn, &name, Requested::Reject(reason.trim().to_owned()), yes).await
        }
        Command::Wait(a) => match wait_plan {
            Some((until, timeout)) => wait(&conn, &a, until, timeout).await,
            None => Ok(()),
        },
    }
}

fn proposals(conn: &Conn) -> Api<Proposal> {
    Api::namespaced(conn.client.clone(), &conn.namespace)
}

fn out(text: &str) -> Result<(), PluginError> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| PluginError::Output { detail: e.to_string() })
}

fn json_text<T: serde::Serialize>(v: &T) -> Result<String, PluginError> {
    serde_json::to_string_pretty(v)
        .map(|s| s + "\n")
        .map_err(|e| PluginError::Output { detail: e.to_string() })
}

fn yaml_text<T: serde::Serialize>(v: &T) -> Result<String, PluginError> {
    serde_yaml::to_string(v).map_err(|e| PluginError::Output { detail: e.to_string() })
}

/// Colour only for a person at a terminal, and never with NO_COLOR set.
fn use_color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn now_ms() -> i64 {
    synapsor_core::context::Clock::now_ms(&synapsor_core::context::SystemClock)
}

/// Reads one proposal, with a clear error when there is none of that name.
async fn get(conn: &Conn, name: &str) -> Result<Proposal, PluginError> {
    match proposals(conn).get(name).await {
        Ok(p) => Ok(p),
        Err(kube::Error::Api(s)) if s.code == 404 => {
            // A 404 for the proposal, or for the whole resource (no CRD)?
            match proposals(conn).list(&ListParams::default().limit(1)).await {
                Err(kube::Error::Api(s)) if s.code == 404 => Err(PluginError::CrdMissing),
                _ => Err(PluginError::NotFound {
                    name: name.to_owned(),
                    namespace: conn.namespace.clone(),
                }),
            }
        }
        Err(e) => Err(PluginError::from_read(e)),
    }
}

/// The Events of one proposal, best effort: a user who may not list Events still gets the rest.
async fn events(conn: &Conn, name: &str) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(conn.client.clone(), &conn.namespace);
    let lp = ListParams::default().fields(&format!("involvedObject.kind=Proposal,involvedObject.name={name}"));
    api.list(&lp).await.map(|l| l.items).unwrap_or_default()
}

async fn list(conn: &Conn, a: &ListArgs, phase: Option<Phase>) -> Result<(), PluginError> {
    let api: Api<Proposal> = if a.all_namespaces {
        Api::all(conn.client.clone())
    } else {
        proposals(conn)
    };
    let items = match api.list(&ListParams::default()).await {
        Ok(l) => l.items,
        Err(kube::Error::Api(s)) if s.code == 404 => return Err(PluginError::CrdMissing),
        Err(e) => return Err(PluginError::from_read(e)),
    };
    let now = now_ms();
    let mut rows: Vec<view::ListRow> = items
        .iter()
        .filter(|p| phase.is_none_or(|ph| view::effective_phase(p) == ph))
        .map(|p| view::list_row(p, now))
        .collect();
    rows.sort_by(|x, y| (&x.namespace, &x.created_at, &x.name).cmp(&(&y.namespace, &y.created_at, &y.name)));
    match a.output {
        ListOutput::Json => out(&json_text(&rows)?),
        ListOutput::Yaml => out(&yaml_text(&rows)?),
        ListOutput::Table if rows.is_empty() => {
            let filter = phase.map(|p| format!(" in phase {p}")).unwrap_or_default();
            if a.all_namespaces {
                eprintln!("No proposals{filter} found.");
            } else {
                eprintln!("No proposals{filter} found in namespace {}.", conn.namespace);
            }
            Ok(())
        }
        ListOutput::Table => out(&view::table(&rows, a.all_namespaces)),
    }
}

async fn review(conn: &Conn, a: &ReviewArgs) -> Result<(), PluginError> {
    let p = get(conn, &a.name).await?;
    let evs = events(conn, &a.name).await;
    let r = view::review(&p, &evs);
    match a.output {
        ReviewOutput::Text => out(&view::review_text(&p, &r, use_color())),
        ReviewOutput::Json => out(&json_text(&r)?),
        ReviewOutput::Yaml => out(&yaml_text(&r)?),
    }
}

/// The decision asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requested {
    Approve,
    /// With its reason.
    Reject(String),
}

impl Requested {
    fn annotation(&self) -> (&'static str, String) {
        match self {
            Requested::Approve => (ANNOTATION_APPROVE, "true".to_owned()),
            Requested::Reject(reason) => (ANNOTATION_REJECT, reason.clone()),
        }
    }

    fn verb(&self) -> &'static str {
        match self {
            Requested::Approve => "approve",
            Requested::Reject(_) => "reject",
        }
    }

    fn done(&self) -> &'static str {
        match self {
            Requested::Approve => "approved",
            Requested::Reject(_) => "rejected",
        }
    }
}

/// A JSON pointer to an annotation (`/` in keys is `~1`).
fn annotation_pointer(key: &str) -> String {
    format!("/metadata/annotations/{}", key.replace('~', "~0").replace('/', "~1"))
}

/// The patch of a decision on `p`: test that the object is still the one reviewed (uid and
/// digest), then set the request annotation, as `kubectl annotate` would.
pub fn decision_patch(p: &Proposal, key: &str, value: &str) -> Value {
    let mut ops = Vec::new();
    if let Some(uid) = &p.metadata.uid {
        ops.push(json!({"op": "test", "path": "/metadata/uid", "value": uid}));
    }
    ops.push(json!({"op": "test", "path": "/spec/digest", "value": p.spec.digest}));
    if p.metadata.annotations.is_some() {
        ops.push(json!({"op": "add", "path": annotation_pointer(key), "value": value}));
    } else {
        ops.push(json!({"op": "add", "path": "/metadata/annotations", "value": {key: value}}));
    }
    Value::Array(ops)
}

fn json_patch(v: Value) -> Result<Patch<()>, PluginError> {
    serde_json::from_value::<json_patch::Patch>(v)
        .map(Patch::Json)
        .map_err(|e| PluginError::Output { detail: e.to_string() })
}

/// Asks on the terminal; `Ok(true)` only for `y`/`yes`.
fn confirm(question: &str) -> Result<bool, PluginError> {
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| PluginError::Output { detail: e.to_string() })?;
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}

async fn decide(conn: &Conn, name: &str, requested: Requested, yes: bool) -> Result<(), PluginError> {
    let p = get(conn, name).await?;
    let evs = events(conn, name).await;
    let r = view::review(&p, &evs);
    out(&view::review_text(&p, &r, use_color()))?;
    if requested == Requested::Approve && !view::digest_is_intact(&p) {
        return Err(PluginError::DigestMismatch { name: name.to_owned() });
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(PluginError::ConfirmationRequired {
                action: requested.verb(),
                name: name.to_owned(),
            });
        }
        let who = conn
            .acting_as
            .as_deref()
            .map(|u| format!(" as {u}"))
            .unwrap_or_default();
        let ctx = conn
            .context
            .as_deref()
            .map(|c| format!(" (context {c})"))
            .unwrap_or_default();
        let why = match &requested {
            Requested::Reject(reason) => format!(" with the reason {reason:?}"),
            Requested::Approve => String::new(),
        };
        let question = format!(
            "\n{} proposal {name} in namespace {}{who}{ctx}{why}?",
            capitalized(requested.verb()),
            conn.namespace
        );
        if !confirm(&question)? {
            return Err(PluginError::Aborted { done: requested.done() });
        }
    }
    let (key, value) = requested.annotation();
    let patch = json_patch(decision_patch(&p, key, &value))?;
    let after = match proposals(conn).patch(name, &PatchParams::default(), &patch).await {
        Ok(after) => after,
        Err(kube::Error::Api(s)) if s.code == 404 => {
            return Err(PluginError::NotFound {
                name: name.to_owned(),
                namespace: conn.namespace.clone(),
            });
        }
        // A failed `test` operation answers 422 with a generic message: look again to tell
        // "not the object that was shown" from any other invalid request.
        Err(kube::Error::Api(s)) if s.code == 422 => {
            return Err(match proposals(conn).get_opt(name).await {
                Ok(Some(now)) if now.metadata.uid == p.metadata.uid && now.spec.digest == p.spec.digest => {
                    PluginError::DecisionRefused {
                        message: api_message(&s),
                    }
                }
                Ok(_) => PluginError::ChangedSinceReview { name: name.to_owned() },
                Err(e) => PluginError::from_read(e),
            });
        }
        Err(kube::Error::Api(s)) => {
            return Err(PluginError::DecisionRefused {
                message: api_message(&s),
            });
        }
        Err(e) => return Err(PluginError::from_read(e)),
    };
    let ann = after.metadata.annotations.clone().unwrap_or_default();
    if ann.contains_key(key) {
        // Not consumed: no Synapsor webhook saw it. Take it back so it cannot be mistaken for
        // a request of whoever updates the object next.
        let undo = json!([{"op": "test", "path": annotation_pointer(key), "value": value},
                          {"op": "remove", "path": annotation_pointer(key)}]);
        let cleanup = match json_patch(undo) {
            Ok(undo) => match proposals(conn).patch(name, &PatchParams::default(), &undo).await {
                Ok(_) => "The annotation was removed again. Install the synapsor-runner chart (or its webhook) first."
                    .to_owned(),
                Err(e) => {
                    format!("Removing it again failed ({e}): remove it with kubectl annotate proposal/{name} {key}-")
                }
            },
            Err(e) => format!("Removing it again failed ({e}): remove it with kubectl annotate proposal/{name} {key}-"),
        };
        return Err(PluginError::WebhookMissing {
            annotation: key,
            namespace: conn.namespace.clone(),
            cleanup,
        });
    }
    let summary = match &requested {
        Requested::Approve => {
            let records: Vec<Value> = ann
                .get(ANNOTATION_APPROVALS)
                .and_then(|v| serde_json::from_str(v).ok())
                .unwrap_or_default();
            let user = records
                .last()
                .and_then(|r| r.get("user"))
                .and_then(Value::as_str)
                .unwrap_or("you");
            format!(
                "\napproved: proposal {name} in namespace {}: approval recorded for {user} ({} of {} recorded). \
                 synapsor-controller applies it once it has verified {}; follow it with: kubectl synapsor wait {name} -n {}\n",
                conn.namespace,
                records.len(),
                after.spec.required_approvals,
                after.spec.required_approvals,
                conn.namespace
            )
        }
        Requested::Reject(reason) => {
            let user = ann
                .get(ANNOTATION_REJECTION)
                .and_then(|v| serde_json::from_str::<Value>(v).ok())
                .and_then(|r| r.get("user").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| "you".to_owned());
            format!(
                "\nrejected: proposal {name} in namespace {}: rejection recorded for {user}: {reason}. Nothing will be applied.\n",
                conn.namespace
            )
        }
    };
    out(&summary)
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// What `wait --for` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// Any final phase.
    Terminal,
    /// This phase.
    Phase(Phase),
}

fn parse_for(s: &str) -> Result<Until, PluginError> {
    if s.trim().eq_ignore_ascii_case("terminal") {
        return Ok(Until::Terminal);
    }
    view::parse_phase(s)
        .map(Until::Phase)
        .ok_or_else(|| PluginError::InvalidArgument {
            flag: "--for",
            value: s.to_owned(),
            expected: "applied, terminal, or a phase name (Approved, Applying, Conflict, Failed, Rejected, Expired)",
        })
}

fn parse_timeout(s: &str) -> Result<Duration, PluginError> {
    synapsor_core::time::parse_duration_ms(s)
        .filter(|ms| *ms > 0)
        .and_then(|ms| u64::try_from(ms).ok())
        .map(Duration::from_millis)
        .ok_or_else(|| PluginError::InvalidArgument {
            flag: "--timeout",
            value: s.to_owned(),
            expected: "a positive duration such as 30s, 5m or 1h",
        })
}

fn reached(p: &Proposal, until: Until) -> bool {
    match until {
        Until::Terminal => view::is_terminal(p),
        Until::Phase(ph) => view::effective_phase(p) == ph,
    }
}

/// `Some(result)` once waiting is over for `p`.
fn verdict(p: &Proposal, name: &str, until: Until) -> Option<Result<String, PluginError>> {
    let phase = view::effective_phase(p);
    if reached(p, until) {
        let receipt = p
            .status
            .as_ref()
            .and_then(|s| s.receipt.as_ref())
            .and_then(|r| r.get("status"))
            .and_then(Value::as_str)
            .map(|s| format!(" (receipt: {s})"))
            .unwrap_or_default();
        return Some(Ok(format!("proposal {name} is {phase}{receipt}\n")));
    }
    if view::is_terminal(p) {
        let reason = view::reason(p).map(|r| format!(": {r}")).unwrap_or_default();
        return Some(Err(PluginError::WaitEnded {
            name: name.to_owned(),
            phase: phase.to_string(),
            reason,
        }));
    }
    None
}

async fn wait(conn: &Conn, a: &WaitArgs, until: Until, timeout: Duration) -> Result<(), PluginError> {
    let name = a.name.as_str();
    let first = get(conn, name).await?;
    if let Some(v) = verdict(&first, name, until) {
        return v.and_then(|msg| out(&msg));
    }
    let mut last_phase = view::effective_phase(&first);
    eprintln!("waiting for proposal {name} ({last_phase})...");
    let watch = async {
        let mut stream = std::pin::pin!(kube::runtime::watcher::watch_object(proposals(conn), name));
        while let Some(item) = stream.next().await {
            match item {
                Ok(Some(p)) => {
                    let phase = view::effective_phase(&p);
                    if phase != last_phase {
                        eprintln!("proposal {name}: {phase}");
                        last_phase = phase;
                    }
                    if let Some(v) = verdict(&p, name, until) {
                        return v;
                    }
                }
                Ok(None) => return Err(PluginError::Deleted { name: name.to_owned() }),
                // The watcher retries transient errors itself; a refusal is final.
                Err(
                    kube::runtime::watcher::Error::InitialListFailed(e)
                    | kube::runtime::watcher::Error::WatchStartFailed(e),
                ) => {
                    return Err(PluginError::from_read(e));
                }
                Err(e) => eprintln!("watching proposal {name} failed, retrying: {e}"),
            }
        }
        Err(PluginError::Api {
            message: format!("the watch of proposal {name} ended"),
        })
    };
    match tokio::time::timeout(timeout, watch).await {
        Ok(v) => v.and_then(|msg| out(&msg)),
        Err(_) => {
            let phase = match proposals(conn).get(name).await {
                Ok(p) => view::effective_phase(&p).to_string(),
                Err(_) => last_phase.to_string(),
            };
            Err(PluginError::WaitTimeout {
                name: name.to_owned(),
                phase,
                timeout: a.timeout.clone(),
            })
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_decision_patch_tests_uid_and_digest_before_annotating() {
        let spec: synapsor_kube::ProposalSpec = serde_json::from_value(json!({
            "proposalId": "wrp_1", "capability": "c", "mode": "review_required", "tenant": "acme",
            "principal": {"id": "a", "source": "environment"},
            "target": {"sourceId": "s", "engine": "external_postgres", "schema": "public", "table": "t",
                       "businessObject": "t", "objectId": "1", "primaryKey": {"column": "id", "value": 1}},
            "before": {}, "patch": {}, "after": {},
            "expectedVersion": {"column": "v", "value": 1},
            "guards": {"allowedColumns": []},
            "executor": "sql_update", "requiredApprovals": 1,
            "evidence": {"bundleId": "ev", "queryFingerprint": "fp"},
            "schemaVersion": "synapsor.change-set.v1", "createdAt": "2026-01-01T00:00:00Z",
            "expiresAt": "2026-01-02T00:00:00Z", "digest": "sha256:ab"
        }))
        .unwrap();
        let mut p = Proposal::new("wrp-1", spec);
        p.metadata.uid = Some("uid-1".into());
        let v = decision_patch(&p, ANNOTATION_APPROVE, "true");
        assert_eq!(v[0], json!({"op": "test", "path": "/metadata/uid", "value": "uid-1"}));
        assert_eq!(
            v[1],
            json!({"op": "test", "path": "/spec/digest", "value": "sha256:ab"})
        );
        assert_eq!(
            v[2],
            json!({"op": "add", "path": "/metadata/annotations", "value": {"runner.synapsor.ai/approve": "true"}})
        );
        p.metadata.annotations = Some(Default::default());
        let v = decision_patch(&p, ANNOTATION_REJECT, "no");
        assert_eq!(
            v[2],
            json!({"op": "add", "path": "/metadata/annotations/runner.synapsor.ai~1reject", "value": "no"})
        );
        // The patch applies to the object as the API server would.
        let mut doc = serde_json::to_value(&p).unwrap();
        json_patch::patch(&mut doc, &serde_json::from_value::<json_patch::Patch>(v).unwrap()).unwrap();
        assert_eq!(doc["metadata"]["annotations"]["runner.synapsor.ai/reject"], "no");
    }

    #[test]
    fn wait_conditions_and_timeouts_parse() {
        assert_eq!(parse_for("applied").unwrap(), Until::Phase(Phase::Applied));
        assert_eq!(parse_for("Terminal").unwrap(), Until::Terminal);
        assert_eq!(parse_for("soon").unwrap_err().exit_code(), 2);
        assert_eq!(parse_timeout("5m").unwrap(), Duration::from_secs(300));
        assert!(parse_timeout("0s").is_err());
        assert!(parse_timeout("five").is_err());
    }
}
