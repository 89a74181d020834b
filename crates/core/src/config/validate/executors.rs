//! `executors`: the app-owned handlers (HTTP or command) that apply approved proposals, with
//! their auth, signing and timeout.

use serde_json::{Map, Value};

use super::codes::{
    AUTH_KEYS, COMMAND_HANDLER_KEYS, EXECUTOR_KEYS_ANY, HTTP_HANDLER_KEYS, MAX_TIMEOUT_MS, SQL_UPDATE_KEYS,
};
use super::{ExecType, Field, ModeV, Path, Validator, env_name, is_signing_key_id, timeout_ms, type_name};
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
        let ty = Field::required(
            "type",
            "INVALID_EXECUTOR_TYPE",
            "executor type must be sql_update, http_handler or command_handler",
        );
        let ty = self.field(obj, path, ty, |v| match v.as_str()? {
            "sql_update" => Some(ExecType::SqlUpdate),
            "http_handler" => Some(ExecType::HttpHandler),
            "command_handler" => Some(ExecType::CommandHandler),
            _ => None,
        });
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

        match ty {
            Some(ExecType::HttpHandler) => {
                let url_env = Field::required(
                    "url_env",
                    "HANDLER_URL_ENV_REQUIRED",
                    "url_env is required; set it to the name of the environment variable that holds the handler URL",
                );
                self.field(obj, path, url_env, env_name);
                let method = Field::optional(
                    "method",
                    "INVALID_HANDLER_METHOD",
                    "method must be POST, PUT or PATCH (default POST)",
                );
                self.field(obj, path, method, |v| {
                    v.as_str().filter(|m| ["POST", "PUT", "PATCH"].contains(m))
                });
                if let Some(auth) = obj.get("auth") {
                    self.executor_auth(auth, &path.key("auth"));
                }
            }
            Some(ExecType::CommandHandler) => {
                let command_env = Field::required(
                    "command_env",
                    "COMMAND_ENV_REQUIRED",
                    "command_env is required; set it to the name of the environment variable that holds the handler command",
                );
                self.field(obj, path, command_env, env_name);
            }
            Some(ExecType::SqlUpdate) | None => return ty,
        }
        // What both handler types share, checked after their own fields.
        self.executor_signing(obj, path);
        let timeout_message = format!(
            "timeout_ms must be a whole number of milliseconds from 1 to {MAX_TIMEOUT_MS}; the default is 5000"
        );
        let timeout = Field::optional("timeout_ms", "INVALID_HANDLER_TIMEOUT", &timeout_message);
        self.field(obj, path, timeout, timeout_ms);
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
        let key_id = Field::optional(
            "signing_key_id",
            "INVALID_SIGNING_KEY_ID",
            "signing_key_id must match ^[A-Za-z0-9_.-]{1,64}$, e.g. billing-2025-01",
        );
        let key_id = self.field(obj, path, key_id, |v| v.as_str().filter(|s| is_signing_key_id(s)));
        if key_id.is_some() && !has_secret {
            self.error(
                "SIGNING_KEY_ID_WITHOUT_SECRET",
                &path.key("signing_key_id"),
                "signing_key_id has no effect without signing_secret_env; add signing_secret_env or remove signing_key_id",
            );
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
        let ty = Field::required(
            "type",
            "INVALID_EXECUTOR_AUTH",
            "only auth type bearer_env is supported; set \"type\": \"bearer_env\"",
        );
        self.field(obj, path, ty, |v| v.as_str().filter(|t| *t == "bearer_env"));
        let token_env = Field::required(
            "token_env",
            "EXECUTOR_TOKEN_ENV_REQUIRED",
            "token_env is required; set it to the name of the environment variable that holds the bearer token",
        );
        self.field(obj, path, token_env, env_name);
    }
}
