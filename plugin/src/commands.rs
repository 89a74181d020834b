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
use kube::api::{Api, ListParams};
use serde_json::Value;
use synapsor_kube::review;
use synapsor_kube::reviewer::{Decision, DecisionError, send_decision};
use synapsor_kube::{ANNOTATION_APPROVALS, ANNOTATION_REJECTION, Phase, Proposal};

use crate::cli::{Cli, Command, ListArgs, ListOutput, RejectArgs, ReviewArgs, ReviewOutput, WaitArgs};
use crate::connect::{Conn, connect};
use crate::error::PluginError;
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
            Some(review::parse_phase(p).ok_or_else(|| PluginError::InvalidArgument {
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
        Command::Review(a) => show(&conn, &a).await,
        Command::Approve(a) => decide(&conn, &a.name, Decision::Approve, a.yes).await,
        Command::Reject(RejectArgs { name, reason, yes }) => {
            decide(&conn, &name, Decision::Reject(reason.trim().to_owned()), yes).await
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
        .filter(|p| phase.is_none_or(|ph| review::effective_phase(p) == ph))
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

async fn show(conn: &Conn, a: &ReviewArgs) -> Result<(), PluginError> {
    let p = get(conn, &a.name).await?;
    let evs = events(conn, &a.name).await;
    let r = review::review(&p, &evs);
    match a.output {
        ReviewOutput::Text => out(&view::review_text(&p, &r, use_color())),
        ReviewOutput::Json => out(&json_text(&r)?),
        ReviewOutput::Yaml => out(&yaml_text(&r)?),
    }
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

async fn decide(conn: &Conn, name: &str, requested: Decision, yes: bool) -> Result<(), PluginError> {
    let p = get(conn, name).await?;
    let evs = events(conn, name).await;
    let r = review::review(&p, &evs);
    out(&view::review_text(&p, &r, use_color()))?;
    if requested == Decision::Approve && !review::digest_is_intact(&p) {
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
            Decision::Reject(reason) => format!(" with the reason {reason:?}"),
            Decision::Approve => String::new(),
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
    let after = send_decision(&proposals(conn), &p, &requested)
        .await
        .map_err(|e| match e {
            DecisionError::NotFound => PluginError::NotFound {
                name: name.to_owned(),
                namespace: conn.namespace.clone(),
            },
            DecisionError::ChangedSinceReview => PluginError::ChangedSinceReview { name: name.to_owned() },
            DecisionError::Refused { message } => PluginError::DecisionRefused { message },
            DecisionError::WebhookMissing { annotation, cleanup } => PluginError::WebhookMissing {
                annotation,
                namespace: conn.namespace.clone(),
                cleanup,
            },
            DecisionError::Unreachable(e) => PluginError::from_read(e),
        })?;
    let ann = after.metadata.annotations.clone().unwrap_or_default();
    let summary = match &requested {
        Decision::Approve => {
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
        Decision::Reject(reason) => {
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
    review::parse_phase(s)
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
        Until::Terminal => review::is_terminal(p),
        Until::Phase(ph) => review::effective_phase(p) == ph,
    }
}

/// `Some(result)` once waiting is over for `p`.
fn verdict(p: &Proposal, name: &str, until: Until) -> Option<Result<String, PluginError>> {
    let phase = review::effective_phase(p);
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
    if review::is_terminal(p) {
        let reason = review::reason(p).map(|r| format!(": {r}")).unwrap_or_default();
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
    let mut last_phase = review::effective_phase(&first);
    eprintln!("waiting for proposal {name} ({last_phase})...");
    let watch = async {
        let mut stream = std::pin::pin!(kube::runtime::watcher::watch_object(proposals(conn), name));
        while let Some(item) = stream.next().await {
            match item {
                Ok(Some(p)) => {
                    let phase = review::effective_phase(&p);
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
                Ok(p) => review::effective_phase(&p).to_string(),
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
    fn wait_conditions_and_timeouts_parse() {
        assert_eq!(parse_for("applied").unwrap(), Until::Phase(Phase::Applied));
        assert_eq!(parse_for("Terminal").unwrap(), Until::Terminal);
        assert_eq!(parse_for("soon").unwrap_err().exit_code(), 2);
        assert_eq!(parse_timeout("5m").unwrap(), Duration::from_secs(300));
        assert!(parse_timeout("0s").is_err());
        assert!(parse_timeout("five").is_err());
    }
}
