//! Who approves, rejects or applies a proposal locally: a name, or an operator verified by a
//! token.
//!
//! When the proposal's capability names an approval role (`approval.required_role`, in the change
//! set or in the current config), the decision needs an operator token: a JWT verified by the
//! config's `identity` for the operator audience, whose roles claim carries that role. The
//! operator is then the token's subject, and that is what the ledger records, with the issuer
//! and token id. Without a role, a token is still verified when given; otherwise the name comes
//! from `--actor`, `$SYNAPSOR_APPROVER` or `$USER`, and the ledger marks it unverified.

use std::path::PathBuf;

use clap::Args;
use synapsor_core::capability::VerifiedIdentity;
use synapsor_core::changeset::ChangeSet;
use synapsor_core::config::RunnerConfig;
use synapsor_core::context::{Clock, Env, ProcessEnv, SystemClock};
use synapsor_identity::Verifier;
use synapsor_ledger::Decider;

use super::common::{CliError, GlobalArgs, default_actor, load_config};

/// The environment variable an operator token may come from (instead of a file).
pub const OPERATOR_TOKEN_ENV: &str = "SYNAPSOR_OPERATOR_TOKEN";

#[derive(Debug, Clone, Args)]
pub struct OperatorArgs {
    /// File holding your operator token (a JWT for `identity.operator.audience`). Required when
    /// the proposal's capability names an approval role; also read from
    /// $SYNAPSOR_OPERATOR_TOKEN. Never pass the token itself on the command line.
    #[arg(long, value_name = "PATH")]
    pub operator_token_file: Option<PathBuf>,
}

/// Who acts, as the ledger will record it.
#[derive(Debug, Clone)]
pub struct Operator {
    pub name: String,
    pub verified: Option<VerifiedIdentity>,
}

impl Operator {
    pub fn decider(&self) -> Decider<'_> {
        Decider {
            name: &self.name,
            verified: self.verified.as_ref(),
        }
    }

    /// `alice (verified by https://idp/)` or `alice (unverified)`, for messages.
    pub fn describe(&self) -> String {
        match &self.verified {
            Some(v) => format!("{} (verified by {})", self.name, v.issuer),
            None => format!("{} (unverified)", self.name),
        }
    }
}

/// The roles decisions on `cs` need: the change set's own and the current capability's.
pub fn required_roles(cs: &ChangeSet, cfg: Option<&RunnerConfig>) -> Vec<String> {
    let current = cfg
        .and_then(|c| c.capabilities.iter().find(|cap| cap.name == cs.action))
        .and_then(|cap| cap.approval.as_ref())
        .and_then(|a| a.required_role.clone());
    let mut roles: Vec<String> = cs.approval.required_role.iter().cloned().chain(current).collect();
    roles.dedup();
    roles
}

fn read_token(args: &OperatorArgs) -> Result<Option<String>, CliError> {
    let token = match &args.operator_token_file {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
            CliError::new(
                "OPERATOR_TOKEN_UNREADABLE",
                format!("cannot read the operator token file {}: {e}", path.display()),
            )
        })?),
        None => ProcessEnv.var(OPERATOR_TOKEN_ENV),
    };
    Ok(token.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()))
}

/// Resolves who acts on `cs`: verifies the operator token when there is one or a role needs it.
pub async fn resolve(
    global: &GlobalArgs,
    args: &OperatorArgs,
    actor: Option<String>,
    cs: &ChangeSet,
) -> Result<Operator, CliError> {
    let cfg = load_config(&global.config).ok().map(|(c, _)| c);
    let roles = required_roles(cs, cfg.as_ref());
    let token = read_token(args)?;
    let Some(token) = token else {
        if let Some(role) = roles.first() {
            return Err(CliError::new(
                "OPERATOR_TOKEN_REQUIRED",
                format!(
                    "{} needs an operator with the role {role}: pass --operator-token-file (or set {OPERATOR_TOKEN_ENV}) with your operator token",
                    cs.action
                ),
            ));
        }
        return Ok(Operator {
            name: default_actor(actor),
            verified: None,
        });
    };
    let identity = cfg
        .as_ref()
        .and_then(|c| c.identity.as_ref())
        .filter(|i| i.operator.is_some())
        .ok_or_else(|| {
            CliError::new(
                "OPERATOR_IDENTITY_NOT_CONFIGURED",
                format!(
                    "operator tokens are verified with identity.operator in {}, which is not configured",
                    global.config.display()
                ),
            )
        })?;
    let base = global.config.parent().unwrap_or(std::path::Path::new("."));
    let verifier = Verifier::new(identity, &ProcessEnv, base).map_err(|e| CliError::new(e.code(), e.to_string()))?;
    let op = verifier
        .operator(&token, SystemClock.now_secs())
        .await
        .map_err(|e| CliError::new(e.code(), format!("the operator token was refused: {e}")))?;
    if let Some(missing) = roles.iter().find(|r| !op.roles.contains(r)) {
        return Err(CliError::new(
            "OPERATOR_ROLE_MISSING",
            format!(
                "{} needs the role {missing}, and the operator token of {} does not carry it",
                cs.action, op.identity.subject
            ),
        ));
    }
    if let Some(a) = actor.filter(|a| !a.trim().is_empty() && *a != op.identity.subject) {
        return Err(CliError::new(
            "OPERATOR_ACTOR_MISMATCH",
            format!(
                "--actor {a:?} is not the operator the token names ({}); leave --actor out",
                op.identity.subject
            ),
        ));
    }
    Ok(Operator {
        name: op.identity.subject.clone(),
        verified: Some(op.identity),
    })
}
