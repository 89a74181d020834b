//! Which MCP transports a config can be served over, from where its capabilities' trusted
//! contexts come from.
//!
//! `environment` and `static_dev` contexts are the runner process's: one tenant per process, so
//! stdio, Streamable HTTP with the static shared token, and the CLI. `jwt` contexts are each
//! session's: only Streamable HTTP with verified bearer tokens. A config that mixes both cannot
//! be served at all: over HTTP a session's token would run the process's tenant for some tools,
//! and over stdio the `jwt` tools would have no caller to read.

use super::model::{ContextProvider, RunnerConfig};

/// Where a config's trusted contexts come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextSource {
    /// Every capability reads the runner's environment (or static dev values).
    Process,
    /// Every capability reads the verified token of its session.
    Session,
    /// Some of each: the capabilities named are the session ones and the process ones.
    Mixed { session: Vec<String>, process: Vec<String> },
}

/// Where the capabilities of `cfg` take tenant and principal from.
pub fn context_source(cfg: &RunnerConfig) -> ContextSource {
    let (mut session, mut process) = (Vec::new(), Vec::new());
    for cap in &cfg.capabilities {
        let ctx = match &cap.context {
            Some(name) => cfg.contexts.get(name),
            None => cfg.trusted_context.as_ref(),
        };
        match ctx.map(|c| c.provider) {
            Some(ContextProvider::Jwt) => session.push(cap.name.clone()),
            _ => process.push(cap.name.clone()),
        }
    }
    match (session.is_empty(), process.is_empty()) {
        (true, _) => ContextSource::Process,
        (false, true) => ContextSource::Session,
        (false, false) => ContextSource::Mixed { session, process },
    }
}

impl ContextSource {
    /// One line for `config validate`: the transports this config fits.
    pub fn transports(&self) -> String {
        match self {
            ContextSource::Process => {
                "stdio, or Streamable HTTP with a static token (one tenant per process, from the environment)".into()
            }
            ContextSource::Session => {
                "Streamable HTTP with verified bearer tokens only (a tenant per session, from the token's claims)"
                    .into()
            }
            ContextSource::Mixed { session, process } => format!(
                "none: {} take tenant and principal from session tokens and {} from the environment; give them all jwt contexts or none",
                list(session),
                list(process)
            ),
        }
    }
}

fn list(names: &[String]) -> String {
    match names {
        [one] => one.clone(),
        [first, rest @ ..] => format!("{first} (and {} more)", rest.len()),
        [] => "none".into(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::parse_config_value;
    use crate::config::validate::tests::minimal;

    #[test]
    fn sources_follow_the_contexts() {
        let (cfg, _) = parse_config_value(minimal()).unwrap();
        assert_eq!(context_source(&cfg), ContextSource::Process);
        let mut doc = minimal();
        doc["identity"] = json!({
            "issuer": "https://idp/", "audience": "a", "keys": {"jwks_url": "https://idp/jwks"},
            "algorithms": ["RS256"], "tenant_claim": "tid"
        });
        doc["trusted_context"] = json!({"provider": "jwt"});
        let (cfg, _) = parse_config_value(doc.clone()).unwrap();
        assert_eq!(context_source(&cfg), ContextSource::Session);
        doc["contexts"] = json!({"ops": {"provider": "environment"}});
        doc["capabilities"][1]["context"] = json!("ops");
        let (cfg, _) = parse_config_value(doc).unwrap();
        let mixed = context_source(&cfg);
        assert_eq!(
            mixed,
            ContextSource::Mixed {
                session: vec!["billing.inspect_invoice".into()],
                process: vec!["billing.propose_status".into()]
            }
        );
        assert!(mixed.transports().starts_with("none:"));
    }
}
