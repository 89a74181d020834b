//! `sources`: each named source, its engine, connection variables, read-only flag, statement
//! timeout and TLS settings.

use serde_json::Value;

use super::codes::{MAX_TIMEOUT_MS, SOURCE_KEYS, SSL_KEYS};
use super::{Field, Path, SourceInfo, Validator, env_name, timeout_ms, type_name};
use crate::ident::is_safe_identifier;

impl Validator {
    pub(super) fn sources(&mut self, v: Option<&Value>, path: &Path) {
        let obj = match v {
            Some(Value::Object(o)) if !o.is_empty() => o,
            Some(Value::Object(_)) | None => {
                self.error(
                    "SOURCES_REQUIRED",
                    path,
                    "at least one source is required; add sources.<name> with engine and read_url_env",
                );
                return;
            }
            Some(other) => {
                self.error(
                    "SOURCES_REQUIRED",
                    path,
                    format!(
                        "sources must be an object mapping names to sources, got {}",
                        type_name(other)
                    ),
                );
                return;
            }
        };
        self.sources_ok = true;
        for (name, src) in obj {
            let p = path.key(name);
            if !is_safe_identifier(name) {
                self.error(
                    "UNSAFE_SOURCE_NAME",
                    &p,
                    "source names must match ^[A-Za-z_][A-Za-z0-9_]*$ (at most 63 characters); rename the source",
                );
            }
            let info = self.source(src, &p);
            self.sources.insert(name.clone(), info);
        }
    }

    fn source(&mut self, v: &Value, path: &Path) -> SourceInfo {
        let mut info = SourceInfo::default();
        let Some(obj) = v.as_object() else {
            self.error(
                "SOURCE_NOT_OBJECT",
                path,
                format!(
                    "a source must be an object with engine and read_url_env, got {}",
                    type_name(v)
                ),
            );
            return info;
        };
        self.known_keys(obj, SOURCE_KEYS, path, "a source");

        let engine = Field::required(
            "engine",
            "INVALID_SOURCE_ENGINE",
            "engine must be postgres, mysql (also for MariaDB) or sqlite",
        );
        let engine = self.field(obj, path, engine, |v| match v.as_str()? {
            "postgres" => Some(EngineV::Postgres),
            "mysql" => Some(EngineV::Mysql),
            "sqlite" => Some(EngineV::Sqlite),
            _ => None,
        });

        let read_env = Field::required(
            "read_url_env",
            "READ_URL_ENV_REQUIRED",
            "read_url_env must be an environment variable name matching ^[A-Z_][A-Z0-9_]*$ (the name, never the URL itself)",
        )
        .or_missing(
            "read_url_env is required; set it to the name of the environment variable that holds the read-only connection URL",
        );
        let read_env = self.field(obj, path, read_env, env_name);

        let write_env = Field::optional(
            "write_url_env",
            "INVALID_WRITE_URL_ENV",
            "write_url_env must be an environment variable name matching ^[A-Z_][A-Z0-9_]*$ (the name, never the URL itself)",
        );
        if let Some(write_env) = self.field(obj, path, write_env, env_name) {
            info.has_write_url = true;
            if read_env == Some(write_env) {
                self.warn(
                    "SHARED_READ_WRITE_URL_ENV",
                    &path.key("write_url_env"),
                    "write_url_env names the same variable as read_url_env, so tool calls run with write credentials; give writeback its own variable and role",
                );
            }
        }

        if let Some(ro) = obj.get("read_only") {
            match ro {
                Value::Bool(b) => info.read_only = *b,
                other => self.error(
                    "INVALID_SOURCE_READ_ONLY",
                    &path.key("read_only"),
                    format!("read_only must be true or false, got {}", type_name(other)),
                ),
            }
        }

        let timeout_message = format!(
            "statement_timeout_ms must be a whole number of milliseconds from 1 to {MAX_TIMEOUT_MS}, e.g. 3000"
        );
        let timeout = Field::optional("statement_timeout_ms", "INVALID_TIMEOUT", &timeout_message);
        self.field(obj, path, timeout, timeout_ms);

        if let Some(ssl) = obj.get("ssl") {
            let sp = path.key("ssl");
            match ssl.as_object() {
                None => self.error(
                    "INVALID_SSL",
                    &sp,
                    "ssl must be an object like {\"mode\": \"verify-full\"}",
                ),
                Some(_) if engine == Some(EngineV::Sqlite) => self.error(
                    "INVALID_SSL",
                    &sp,
                    "sqlite sources are local files without TLS; remove ssl",
                ),
                Some(so) => {
                    self.known_keys(so, SSL_KEYS, &sp, "ssl");
                    let mode = Field::required(
                        "mode",
                        "INVALID_SSL",
                        "ssl.mode must be disable, prefer, require, verify-ca or verify-full",
                    );
                    self.field(so, &sp, mode, |v| {
                        v.as_str()
                            .filter(|m| ["disable", "prefer", "require", "verify-ca", "verify-full"].contains(m))
                    });
                }
            }
        }
        info
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EngineV {
    Postgres,
    Mysql,
    Sqlite,
}
