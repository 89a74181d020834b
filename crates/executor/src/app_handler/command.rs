//! [`CommandHandlerExecutor`]: runs the command line in `command_env` (no shell) with the signed
//! request on stdin and the signature, idempotency key and proposal id in its environment, kills
//! it at the timeout, and reads the receipt from stdout. Its exit status only decides when stdout
//! holds no valid receipt.

use std::time::Duration;

use synapsor_core::config;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::{
    MAX_RECEIPT_BYTES, ParsedReceipt, ReceiptRuleBroken, Signing, Verdict, attempt_timeout, build_request, finish,
    parse_receipt, precheck, redacted, sign_request, signed_text, signing_key, unix_now, verdict_from_receipt,
};
use crate::receipt::{Receipt, WritebackCode};
use crate::{ApplyRequest, BoxFuture, Executor};

/// Environment variable carrying the `X-Synapsor-Signature` value to a command handler.
pub const SIGNATURE_ENV: &str = "SYNAPSOR_SIGNATURE";
/// Environment variable carrying the idempotency key to a command handler.
pub const IDEMPOTENCY_ENV: &str = "SYNAPSOR_IDEMPOTENCY_KEY";
/// Environment variable carrying the proposal id to a command handler.
pub const PROPOSAL_ENV: &str = "SYNAPSOR_PROPOSAL_ID";

/// Reads at most `cap` bytes, then drains the rest (so the child never blocks on a full pipe).
/// `(bytes, overflowed)`.
async fn read_capped<R: AsyncRead + Unpin>(reader: Option<R>, cap: usize) -> (Vec<u8>, bool) {
    let Some(mut reader) = reader else {
        return (Vec::new(), false);
    };
    let mut out = Vec::new();
    let mut overflow = false;
    let mut buf = [0u8; 8192];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if out.len() + n <= cap {
                    out.extend_from_slice(&buf[..n]);
                } else {
                    overflow = true;
                }
            }
        }
    }
    (out, overflow)
}

/// The `command_handler` executor: a local command, signed bytes on stdin, receipt on stdout.
#[derive(Debug, Clone)]
pub struct CommandHandlerExecutor {
    name: String,
    command_env: String,
    signing: Option<Signing>,
    timeout: Duration,
}

impl CommandHandlerExecutor {
    /// The executor named `name` for a `command_handler` config (`None` for another type).
    pub fn from_config(name: &str, executor: &config::Executor) -> Option<CommandHandlerExecutor> {
        let config::Executor::CommandHandler {
            command_env,
            signing_secret_env,
            signing_key_id,
            timeout_ms,
        } = executor
        else {
            return None;
        };
        Some(CommandHandlerExecutor {
            name: name.to_owned(),
            command_env: command_env.clone(),
            signing: Signing::from_config(signing_secret_env, signing_key_id),
            timeout: attempt_timeout(*timeout_ms),
        })
    }

    async fn apply_command(&self, req: ApplyRequest<'_>) -> Receipt {
        let mut receipt = match precheck(&req, &self.name) {
            Ok(r) => r,
            Err(r) => return *r,
        };
        let cs = req.change_set;
        let line = req.env.var(&self.command_env).unwrap_or_default();
        // Split on whitespace and run without a shell: no quoting, globbing or expansion.
        let mut words = line.split_whitespace();
        let Some(program) = words.next().map(str::to_owned) else {
            return receipt.refuse(
                WritebackCode::HandlerCommandMissing,
                format!(
                    "the environment variable {} (command of handler executor {}) is not set; nothing was run",
                    self.command_env, self.name
                ),
            );
        };
        let args: Vec<&str> = words.collect();
        let key = match signing_key(&self.signing, req.env, &self.name) {
            Ok(k) => k,
            Err((code, message)) => return receipt.refuse(code, message),
        };
        let mut request = build_request(&req, &self.name, 0);
        let (body, signature) = match sign_request(&mut request, key.as_ref(), unix_now()) {
            Ok(b) => b,
            Err((code, message)) => return receipt.refuse(code, message),
        };
        // Only the program is shown: its arguments may carry settings the operator keeps private.
        receipt.check(
            "handler_request",
            true,
            format!(
                "command {program} ({} argument(s)), {} bytes on stdin, idempotency key {}, {}{}",
                args.len(),
                body.len(),
                receipt.idempotency_key,
                signed_text(key.as_ref()),
                if req.dry_run { ", dry_run: true" } else { "" }
            ),
        );

        let mut cmd = tokio::process::Command::new(&program);
        cmd.args(&args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .env(IDEMPOTENCY_ENV, &receipt.idempotency_key)
            .env(PROPOSAL_ENV, &cs.proposal_id);
        match &signature {
            Some(s) => cmd.env(SIGNATURE_ENV, s),
            None => cmd.env_remove(SIGNATURE_ENV),
        };
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(executor = %self.name, program = %program, error = %e, "cannot start the handler command");
                receipt.check("handler_call", false, format!("cannot start {program}: {}", e.kind()));
                return receipt.refuse(
                    WritebackCode::HandlerCommandNotFound,
                    format!(
                        "the handler command {program} could not be started ({}); check {}; nothing was run",
                        e.kind(),
                        self.command_env
                    ),
                );
            }
        };
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let io = async {
            let write = async move {
                if let Some(mut stdin) = stdin {
                    // Exactly the signed bytes, then EOF. A command that exits without reading
                    // them closes the pipe; its exit status and stdout still decide.
                    let _ = stdin.write_all(&body).await;
                    let _ = stdin.shutdown().await;
                }
            };
            let ((), out, err) = tokio::join!(write, read_capped(stdout, MAX_RECEIPT_BYTES), read_capped(stderr, 4096));
            (out, err, child.wait().await)
        };
        let ms = self.timeout.as_millis();
        let outcome = tokio::time::timeout(self.timeout, io).await;
        let Ok(((stdout, stdout_overflow), (stderr, _), status)) = outcome else {
            let _ = child.kill().await;
            tracing::warn!(executor = %self.name, proposal_id = %cs.proposal_id, program = %program, timeout_ms = ms as u64, "handler command timed out; killed");
            receipt.check("handler_call", false, format!("no receipt within {ms} ms; killed"));
            return receipt.refuse(
                WritebackCode::HandlerTimeout,
                format!(
                    "the handler command did not finish within {ms} ms and was killed; its outcome is unknown: apply again, the same idempotency key keeps it from being applied twice"
                ),
            );
        };
        let stderr_text = String::from_utf8_lossy(&stderr);
        if !stderr_text.trim().is_empty() {
            let shown = redacted(&stderr_text, 500);
            tracing::info!(
                executor = %self.name, proposal_id = %cs.proposal_id, stderr = %shown, "handler command stderr"
            );
        }
        let exit = match &status {
            Ok(s) => match s.code() {
                Some(c) => format!("exit {c}"),
                None => "ended by a signal".to_owned(),
            },
            Err(_) => "exit status unknown".to_owned(),
        };
        let success = status.as_ref().is_ok_and(|s| s.success());
        let parsed = if stdout_overflow {
            ParsedReceipt::Invalid(ReceiptRuleBroken::TooLarge)
        } else {
            parse_receipt(&stdout, req.dry_run)
        };
        let v = match parsed {
            ParsedReceipt::Valid(r) => verdict_from_receipt(&r, req.dry_run, &exit),
            other if !success => {
                let why = match other {
                    ParsedReceipt::Invalid(why) => format!(" and an invalid receipt ({why})"),
                    _ => " without a receipt".to_owned(),
                };
                Verdict::failed(
                    WritebackCode::HandlerCommandFailed,
                    format!(
                        "the handler command ended with {exit}{why}; see the log for its stderr; apply again once it is fixed"
                    ),
                    format!("{exit}{why}"),
                )
            }
            ParsedReceipt::Invalid(why) => Verdict::receipt_unusable(
                &format!("the handler command wrote an invalid receipt ({why})"),
                format!("{exit}, invalid receipt: {why}"),
            ),
            ParsedReceipt::NotAReceipt => Verdict::receipt_unusable(
                "the handler command exited 0 without a synapsor.handler-receipt.v1 on stdout",
                format!("{exit} without a receipt"),
            ),
        };
        tracing::info!(executor = %self.name, proposal_id = %cs.proposal_id, outcome = %v.detail, "handler command finished");
        receipt.check("handler_call", v.accepted(), v.detail.clone());
        finish(receipt, v)
    }
}

impl Executor for CommandHandlerExecutor {
    fn name(&self) -> &str {
        &self.name
    }

    fn apply<'a>(&'a self, req: ApplyRequest<'a>) -> BoxFuture<'a, Receipt> {
        Box::pin(self.apply_command(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn output_past_the_cap_is_drained_not_kept() {
        let input: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        let mut small = &input[..100];
        assert_eq!(
            read_capped(Some(&mut small), 1000).await,
            (input[..100].to_vec(), false)
        );
        // Past the cap the rest is still read, so a child writing more never blocks on the pipe.
        let mut large = &input[..];
        let (out, overflow) = read_capped(Some(&mut large), 10_000).await;
        assert!(overflow);
        assert!(out.len() <= 10_000, "{}", out.len());
        assert_eq!(out, input[..out.len()]);
        assert!(large.is_empty(), "{} bytes left unread", large.len());
        assert_eq!(read_capped(None::<&[u8]>, 10).await, (Vec::new(), false));
    }
}
