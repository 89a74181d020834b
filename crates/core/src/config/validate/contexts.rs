//! `trusted_context` and `contexts`: where the trusted tenant and principal come from.

use serde_json::Value;

use super::codes::{CONTEXT_KEYS, CONTEXT_VALUE_KEYS};
use super::{Field, Path, Validator, env_name, non_empty_str, type_name};
use crate::ident::is_context_name;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Provider {
    Environment,
    StaticDev,
    Jwt,
}

impl Validator {
    pub(super) fn trusted_context(&mut self, v: &Value, path: &Path) {
        let Some(obj) = v.as_object() else {
            self.error(
                "INVALID_TRUSTED_CONTEXT",
                path,
                format!(
                    "a trusted context must be an object like {{\"provider\": \"environment\"}}, got {}",
                    type_name(v)
                ),
            );
            return;
        };
        self.known_keys(obj, CONTEXT_KEYS, path, "a trusted context");

        let pp = path.key("provider");
        // Providers this runner knows of but does not support get their own code.
        let provider = obj.get("provider").and_then(Value::as_str);
        let provider = if provider == Some("cloud_session") {
            self.error(
                "TRUSTED_CONTEXT_UNSUPPORTED",
                &pp,
                "cloud_session is not supported by this runner; use environment, jwt (per-session claims over Streamable HTTP) or static_dev for local development",
            );
            None
        } else {
            let provider = Field::required(
                "provider",
                "INVALID_CONTEXT_PROVIDER",
                "provider must be environment, jwt (alias http_claims) or static_dev",
            );
            self.field(obj, path, provider, |v| match v.as_str()? {
                "environment" => Some(Provider::Environment),
                "static_dev" => Some(Provider::StaticDev),
                "jwt" | "http_claims" => Some(Provider::Jwt),
                _ => None,
            })
        };
        match provider {
            Some(Provider::StaticDev) => self.warn(
                "STATIC_DEV_CONTEXT",
                &pp,
                "static_dev takes tenant and principal from the config and is for local development only; use environment in production",
            ),
            Some(Provider::Jwt) => {
                if !self.identity_info.present {
                    self.error(
                        "IDENTITY_REQUIRED",
                        &pp,
                        "a jwt context reads tenant and principal from verified tokens; add an identity section saying how tokens are verified (issuer, audience, keys, algorithms, tenant_claim)",
                    );
                }
                if obj.get("values").is_some() {
                    self.error(
                        "CONTEXT_VALUES_NOT_USED",
                        &path.key("values"),
                        "a jwt context takes tenant and principal from the claims named by identity.tenant_claim and identity.principal_claim; remove values",
                    );
                    return;
                }
            }
            Some(Provider::Environment) | None => {}
        }
        // Some(true): literals allowed (static_dev); Some(false): not; None: unknown provider.
        let literals_allowed = provider.map(|p| p == Provider::StaticDev);

        let Some(values) = obj.get("values") else { return };
        let vp = path.key("values");
        let Some(vo) = values.as_object() else {
            self.error(
                "INVALID_CONTEXT_VALUES",
                &vp,
                format!("values must be an object, got {}", type_name(values)),
            );
            return;
        };
        self.known_keys(vo, CONTEXT_VALUE_KEYS, &vp, "trusted context values");
        for key in ["tenant_id_env", "principal_env"] {
            let message = format!("{key} must be an environment variable name matching ^[A-Z_][A-Z0-9_]*$");
            self.field(vo, &vp, Field::optional(key, "INVALID_CONTEXT_ENV", &message), env_name);
        }
        for key in ["tenant_id", "principal"] {
            let message = format!("{key} must be a non-empty string");
            let literal = self.field(
                vo,
                &vp,
                Field::optional(key, "INVALID_CONTEXT_VALUE", &message),
                non_empty_str,
            );
            if literal.is_some() && literals_allowed == Some(false) {
                self.error(
                    "CONTEXT_LITERAL_NOT_STATIC_DEV",
                    &vp.key(key),
                    format!("a literal {key} is only used by the static_dev provider; remove it or use {key}_env"),
                );
            }
        }
    }

    pub(super) fn contexts(&mut self, v: &Value, path: &Path) {
        let Some(obj) = v.as_object() else {
            self.error(
                "CONTEXTS_NOT_OBJECT",
                path,
                format!(
                    "contexts must be an object mapping names to trusted contexts, got {}",
                    type_name(v)
                ),
            );
            return;
        };
        for (name, ctx) in obj {
            let p = path.key(name);
            if !is_context_name(name) {
                self.error(
                    "INVALID_CONTEXT_NAME",
                    &p,
                    "context names must match ^[A-Za-z_][A-Za-z0-9_.-]*$ (at most 128 characters); rename the context",
                );
            }
            self.contexts.insert(name.clone());
            self.trusted_context(ctx, &p);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::config::validate::tests::minimal;
    use crate::config::validate::validate_value;

    #[test]
    fn trusted_context_rules() {
        let mut doc = minimal();
        doc.as_object_mut().expect("object").remove("trusted_context");
        assert!(validate_value(&doc).has("TRUSTED_CONTEXT_REQUIRED", "$.trusted_context"));
        doc["contexts"] =
            json!({"local.operator": {"provider": "static_dev", "values": {"tenant_id": "acme", "principal": "dev"}}});
        doc["capabilities"][0]["context"] = json!("local.operator");
        doc["capabilities"][1]["context"] = json!("local.operator");
        let r = validate_value(&doc);
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert!(r.has("STATIC_DEV_CONTEXT", "$.contexts[\"local.operator\"].provider"));
        doc["capabilities"][1]["context"] = json!("other");
        doc["contexts"]["x"] = json!({"provider": "cloud_session"});
        let r = validate_value(&doc);
        assert!(r.has("UNKNOWN_CONTEXT", "$.capabilities[1].context"));
        assert!(r.has("TRUSTED_CONTEXT_UNSUPPORTED", "$.contexts.x.provider"));
    }
}
