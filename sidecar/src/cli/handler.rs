//! `handler template`: starter app-owned writeback handlers, embedded in the binary.

use clap::Subcommand;

use super::common::{CliError, GlobalArgs};

#[derive(Debug, Subcommand)]
pub enum HandlerCommand {
    /// Print a starter app-owned handler, or write it to --output.
    ///
    /// Every template verifies the signature and its time window, refuses replayed idempotency
    /// keys, re-checks tenant and expected version against the app's own data, and changes only
    /// allowed columns. The handler owns the final write: keep those checks in the same database
    /// transaction as the write. See docs/handlers.md.
    Template {
        /// http (Node >= 20, no npm packages) | command (Python 3 stdlib, stdin/stdout) |
        /// fastapi (Python, FastAPI + uvicorn) | axum (Rust, synapsor-handler crate)
        kind: String,
        /// Write the template to this file instead of stdout.
        #[arg(long)]
        output: Option<std::path::PathBuf>,
        /// Overwrite --output if it already exists.
        #[arg(long, requires = "output")]
        force: bool,
    },
}

/// One embedded starter handler: its file name, its text, and how to run it (`FILE` and `DIR`
/// stand for where it was written).
#[derive(Debug, Clone, Copy)]
pub struct Template {
    pub file: &'static str,
    pub text: &'static str,
    pub next: &'static str,
}

/// The template of `kind` (http, command, fastapi, axum, or their aliases).
pub fn template(kind: &str) -> Result<Template, CliError> {
    // The sources are embedded so the binary is enough.
    let (file, text, next) = match kind {
        "http" | "node" => (
            "handler.mjs",
            include_str!("../../../templates/http-node/handler.mjs"),
            "node FILE   (Node >= 20, no npm packages)",
        ),
        "command" | "script" => (
            "handler.py",
            include_str!("../../../templates/command/handler.py"),
            "set the executor's command_env to: python3 FILE",
        ),
        "fastapi" | "python" => (
            "app.py",
            include_str!("../../../templates/fastapi/app.py"),
            "pip install fastapi uvicorn && uvicorn app:app --app-dir DIR --port 8080",
        ),
        "axum" | "rust" => (
            "main.rs",
            include_str!("../../../templates/axum/main.rs"),
            "src/main.rs of a crate depending on synapsor-handler, axum, tokio and serde_json",
        ),
        other => {
            return Err(CliError::new(
                "UNKNOWN_TEMPLATE",
                format!("unknown handler template {other:?}; choose http, command, fastapi or axum"),
            ));
        }
    };
    Ok(Template { file, text, next })
}

/// `handler template KIND [--output FILE] [--force]`.
pub fn run(_global: &GlobalArgs, cmd: HandlerCommand) -> Result<i32, CliError> {
    let HandlerCommand::Template { kind, output, force } = cmd;
    let Template { file, text, next } = template(&kind)?;
    let Some(path) = output else {
        print!("{text}");
        return Ok(0);
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| {
            CliError::new(
                "TEMPLATE_WRITE_FAILED",
                format!("cannot create {}: {e}", parent.display()),
            )
        })?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        // create_new: the existence check and the creation are one step.
        options.create_new(true);
    }
    let written = options.open(&path).and_then(|mut f| {
        use std::io::Write as _;
        f.write_all(text.as_bytes())
    });
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(CliError::new(
                "TEMPLATE_EXISTS",
                format!("{} already exists; pass --force to overwrite it", path.display()),
            ));
        }
        Err(e) => {
            return Err(CliError::new(
                "TEMPLATE_WRITE_FAILED",
                format!("cannot write {}: {e}", path.display()),
            ));
        }
    }
    #[cfg(unix)]
    if matches!(file, "handler.mjs" | "handler.py") {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755));
    }
    let shown = path.display().to_string();
    let dir = path
        .parent()
        .map(|p| p.display().to_string())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| ".".into());
    println!("Wrote {shown} ({kind} handler template, {file}).");
    println!("Run: {}", next.replace("FILE", &shown).replace("DIR", &dir));
    println!(
        "Set SYNAPSOR_HANDLER_SIGNING_SECRET (>= 32 bytes, the runner's signing_secret_env) and \
         SYNAPSOR_HANDLER_KEY_ID (its signing_key_id). The handler owns the final write: keep the \
         idempotency, tenant and version checks in the same transaction as the write \
         (docs/handlers.md)."
    );
    Ok(0)
}
