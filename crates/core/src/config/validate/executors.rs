//! `executors`: the app-owned handlers (HTTP or command) that apply approved proposals, with
//! their auth, signing and timeout.

use serde_json::{Map, Value};

use super::codes::{
    AUTH_KEYS, COMMAND_HANDLER_KEYS, EXECUTOR_KEYS_ANY, HTTP_HANDLER_KEYS, MAX_TIMEOUT_MS, SQL_UPDATE_KEYS,
};
use super::{ExecType, ModeV, Path, Validator, is_signing_key_id, type_name};
use crate::ident::{is_context_name, is_env_name};

impl Validator {
    pub(super) fn executors(&mut self, v: &Value, path: &Path) {
        let Some(obj) = v.as_object() else {
            self.error(
                "EXECUTORS_NOT_OBJECT",
                path,
                format!(
                    "executors must be an object mapping names to executors, got {}",
                    type_name(v)
                ),
            );
            return;
        };
        for (name, ex) in obj {
            let p = path.key(name);
            if name == "sql_update" {
                self.error(
                    "INVALID_EXECUTOR_NAME",
                    &p,
                    "sql_update is the built-in executor and cannot be redefined; choose another name",
                );
            } else if !is_context_name(name) {
                self.error(
                    "INVALID_EXECUTOR_NAME",
                    &p,
                    "executor names must match ^[A-Za-z_][A-Za-z0-9_.-]*$ (at most 128 characters); rename the executor",
                );
            }
            if self.mode == Some(ModeV::ReadOnly) {
                self.error(
                    "EXECUTOR_INVALID_IN_READ_ONLY",
                    &p,
                    "read_only mode applies no writes, so executors are not allowed; remove executors or change mode to review",
                );
            }
            let ty = self.executor(ex, &p);
            self.executors.insert(name.clone(), ty);
        }
    }

    fn executor(&mut self, v: &Value, path: &Path) -> Option<ExecType> {
        let Some(obj) = v.as_object() else {
            self.error(
                "EXECUTOR_NOT_OBJECT",
                path,
                format!("an executor must be an object with a type, got {}", type_name(v)),
            );
            return None;
        };
        let ty = match obj.get("type").and_then(Value::as_str) {
            Some("sql_update") => Some(ExecType::SqlUpdate),
            Some("http_handler") => Some(ExecType::HttpHandler),
            Some("command_handler") => Some(ExecType::CommandHandler),
            _ => {
                self.error(
                    "INVALID_EXECUTOR_TYPE",
                    &path.key("type"),
                    "executor type must be sql_update, http_handler or command_handler",
                );
                None
            }
        };
        let allowed = match ty {
            Some(ExecType::SqlUpdate) => SQL_UPDATE_KEYS,
            Some(ExecType::HttpHandler) => HTTP_HANDLER_KEYS,
            Some(ExecType::CommandHandler) => COMMAND_HANDLER_KEYS,
            None => EXECUTOR_KEYS_ANY,
        };
        let what = match ty {
            Some(ExecType::SqlUpdate) => "a sql_update executor",
            Some(ExecType::HttpHandler) => "an http_handler executor",
            Some(ExecType::CommandHandler) => "a command_handler executor",
            None => "an executor",
        };
        self.known_keys(obj, allowed, path, what);

        let timeout = |s: &mut Self| {
            if let Some(t) = obj.get("timeout_ms")
                && !matches!(t.as_u64(), Some(1..=MAX_TIMEOUT_MS))
            {
                s.error(
                    "INVALID_HANDLER_TIMEOUT",
                    &path.key("timeout_ms"),
                    format!("timeout_ms must be a whole number of milliseconds from 1 to {MAX_TIMEOUT_MS}; the default is 5000"),
                );
            }
        };

        match ty {
            Some(ExecType::HttpHandler) => {
                if !obj.get("url_env").and_then(Value::as_str).is_some_and(is_env_name) {
                    self.error(
                        "HANDLER_URL_ENV_REQUIRED",
                        &path.key("url_env"),
                        "url_env is required; set it to the name of the environment variable that holds the handler URL",
                    );
                }
                if let Some(m) = obj.get("method")
                    && !matches!(m.as_str(), Some("POST" | "PUT" | "PATCH"))
                {
                    self.error(
                        "INVALID_HANDLER_METHOD",
                        &path.key("method"),
                        "method must be POST, PUT or PATCH (default POST)",
                    );
                }
                if let Some(auth) = obj.get("auth") {
                    self.executor_auth(auth, &path.key("auth"));
                }
                self.executor_signing(obj, path);
                timeout(self);
            }
            Some(ExecType::CommandHandler) => {
                if !obj.get("command_env").and_then(Value::as_str).is_some_and(is_env_name) {
                    self.error(
                        "COMMAND_ENV_REQUIRED",
                        &path.key("command_env"),
                        "command_env is required; set it to the name of the environment variable that holds the handler command",
                    );
                }
                self.executor_signing(obj, path);
                timeout(self);
            }
            Some(ExecType::SqlUpdate) | None => {}
        }
        ty
    }

    /// `signing_secret_env` and `signing_key_id` of a handler executor (HTTP or command).
    fn executor_signing(&mut self, obj: &Map<String, Value>, path: &Path) {
        let has_secret = match obj.get("signing_secret_env") {
            None => {
                self.warn(
                    "HANDLER_UNSIGNED",
                    &path.key("signing_secret_env"),
                    "requests to this handler are not signed; set signing_secret_env so the handler can verify they come from the runner",
                );
                false
            }
            Some(s) if s.as_str().is_some_and(is_env_name) => true,
            Some(_) => {
                self.error(
                    "HANDLER_SIGNING_SECRET_ENV_INVALID",
                    &path.key("signing_secret_env"),
                    "signing_secret_env must be an environment variable name matching ^[A-Z_][A-Z0-9_]*$ (the name, never the secret)",
                );
                true
            }
        };
        if let Some(k) = obj.get("signing_key_id") {
            if !k.as_str().is_some_and(is_signing_key_id) {
                self.error(
                    "INVALID_SIGNING_KEY_ID",
                    &path.key("signing_key_id"),
                    "signing_key_id must match ^[A-Za-z0-9_.-]{1,64}$, e.g. billing-2025-01",
                );
            } else if !has_secret {
                self.error(
                    "SIGNING_KEY_ID_WITHOUT_SECRET",
                    &path.key("signing_key_id"),
                    "signing_key_id has no effect without signing_secret_env; add signing_secret_env or remove signing_key_id",
                );
            }
        }
    }

    fn executor_auth(&mut self, v: &Value, path: &Path) {
        let Some(obj) = v.as_object() else {
            self.error(
                "EXECUTOR_AUTH_NOT_OBJECT",
                path,
                "auth must be an object like {\"type\": \"bearer_env\", \"token_env\": \"HANDLER_TOKEN\"}",
            );
            return;
        };
        self.known_keys(obj, AUTH_KEYS, path, "executor auth");
        if obj.get("type").and_then(Value::as_str) != Some("bearer_env") {
            self.error(
                "INVALID_EXECUTOR_AUTH",
                &path.key("type"),
                "only auth type bearer_env is supported; set \"type\": \"bearer_env\"",
            );
        }
        if !obj.get("token_env").and_then(Value::as_str).is_some_and(is_env_name) {
            self.error(
                "EXECUTOR_TOKEN_ENV_REQUIRED",
                &path.key("token_env"),
                "token_env is required; set it to the name of the environment variable that holds the bearer token",
            );
        }
    }
}
