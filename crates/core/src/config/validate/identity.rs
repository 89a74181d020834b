//! `identity` (how bearer tokens are verified) and the token buckets of `rate_limits` and a
//! capability's `rate_limit`.

use serde_json::{Map, Value};

use super::codes::{IDENTITY_KEY_SOURCE_KEYS, IDENTITY_KEYS, OPERATOR_KEYS, RATE_LIMITS_KEYS, TOKEN_BUCKET_KEYS};
use super::{Field, Path, Validator, env_name, non_empty_str, type_name};
use crate::config::JwtAlgorithm;

/// What later checks need to know about `identity`.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct IdentityInfo {
    pub(super) present: bool,
    pub(super) operator: bool,
}

/// A claim name or dotted claim path: printable ASCII without spaces, no empty segment.
fn claim_path(v: &Value) -> Option<&str> {
    v.as_str().filter(|s| {
        (1..=256).contains(&s.len())
            && s.chars().all(|c| c.is_ascii_graphic())
            && !s.starts_with('.')
            && !s.ends_with('.')
            && !s.contains("..")
    })
}

/// A non-empty string of at most 512 bytes.
fn short_str(v: &Value) -> Option<&str> {
    non_empty_str(v).filter(|s| s.len() <= 512)
}

/// An `http://` or `https://` URL with a host, without spaces or credentials.
fn http_url(v: &Value) -> Option<&str> {
    let s = v.as_str()?;
    let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    (s.len() <= 2048 && !host.is_empty() && !host.contains('@') && !s.chars().any(char::is_whitespace)).then_some(s)
}

impl Validator {
    pub(super) fn identity(&mut self, v: &Value, path: &Path) {
        // Even a malformed identity is there: `jwt` contexts then report nothing more.
        self.identity_info.present = true;
        let Some(obj) = v.as_object() else {
            self.error(
                "INVALID_IDENTITY",
                path,
                format!(
                    "identity must be an object with issuer, audience, keys, algorithms and tenant_claim, got {}",
                    type_name(v)
                ),
            );
            return;
        };
        self.known_keys(obj, IDENTITY_KEYS, path, "identity");
        self.field(
            obj,
            path,
            Field::required(
                "issuer",
                "INVALID_IDENTITY_ISSUER",
                "identity.issuer is required: the exact iss of your tokens (at most 512 characters)",
            ),
            short_str,
        );
        let audience = self
            .field(
                obj,
                path,
                Field::required(
                    "audience",
                    "INVALID_IDENTITY_AUDIENCE",
                    "identity.audience is required: the aud session tokens carry for this runner (at most 512 characters)",
                ),
                short_str,
            )
            .map(str::to_owned);
        let hmac_keys = self.identity_keys(obj, path);
        self.algorithms(obj, path, hmac_keys);
        for (key, required) in [("tenant_claim", true), ("principal_claim", false)] {
            let message = format!(
                "identity.{key} must be a claim name or a dotted path into nested claims, like org.id (printable, no spaces)"
            );
            let field = if required {
                Field::required(key, "INVALID_CLAIM_PATH", &message)
            } else {
                Field::optional(key, "INVALID_CLAIM_PATH", &message)
            };
            self.field(obj, path, field, claim_path);
        }
        for (key, lo, hi) in [
            ("max_token_age_seconds", 1, 604_800),
            ("clock_skew_seconds", 0, 300),
            ("jwks_refresh_min_seconds", 1, 3600),
        ] {
            let message = format!("identity.{key} must be a whole number from {lo} to {hi}");
            self.field(
                obj,
                path,
                Field::optional(key, "INVALID_IDENTITY_LIMIT", &message),
                |v| v.as_u64().filter(|n| (lo..=hi).contains(n)),
            );
        }
        if let Some(servers) = obj.get("authorization_servers") {
            let sp = path.key("authorization_servers");
            match servers.as_array() {
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if http_url(item).is_none() {
                            self.error(
                                "INVALID_AUTHORIZATION_SERVER",
                                &sp.idx(i),
                                "authorization servers must be http(s) URLs, such as your IdP's issuer URL",
                            );
                        }
                    }
                }
                None => self.error(
                    "INVALID_AUTHORIZATION_SERVER",
                    &sp,
                    "authorization_servers must be an array of http(s) URLs",
                ),
            }
        }
        self.field(
            obj,
            path,
            Field::optional(
                "resource",
                "INVALID_IDENTITY_RESOURCE",
                "identity.resource must be the http(s) URL clients use for the MCP endpoint, like https://billing.example.com/mcp",
            ),
            http_url,
        );
        if let Some(op) = obj.get("operator") {
            self.operator(op, &path.key("operator"), audience.as_deref());
        }
    }

    /// `identity.keys`; whether they are an HMAC secret (`None` when unusable).
    fn identity_keys(&mut self, identity: &Map<String, Value>, path: &Path) -> Option<bool> {
        let keys = Field::required(
            "keys",
            "INVALID_IDENTITY_KEYS",
            "identity.keys must be an object with exactly one of jwks_url, jwks_file or hmac_secret_env",
        );
        let obj = self.field(identity, path, keys, Value::as_object)?;
        let kp = path.key("keys");
        self.known_keys(obj, IDENTITY_KEY_SOURCE_KEYS, &kp, "identity.keys");
        let present: Vec<&str> = IDENTITY_KEY_SOURCE_KEYS
            .iter()
            .copied()
            .filter(|k| obj.contains_key(*k))
            .collect();
        if present.len() != 1 {
            self.error(
                "INVALID_IDENTITY_KEYS",
                &kp,
                format!(
                    "identity.keys must name exactly one key source (jwks_url, jwks_file or hmac_secret_env); it names {}",
                    present.len()
                ),
            );
        }
        self.field(
            obj,
            &kp,
            Field::optional(
                "jwks_url",
                "INVALID_JWKS_URL",
                "jwks_url must be an http(s) URL without credentials, such as your IdP's jwks_uri",
            ),
            http_url,
        );
        self.field(
            obj,
            &kp,
            Field::optional(
                "jwks_file",
                "INVALID_JWKS_FILE",
                "jwks_file must be a non-empty file path",
            ),
            |v| non_empty_str(v).filter(|s| !s.contains('\0')),
        );
        self.field(
            obj,
            &kp,
            Field::optional(
                "hmac_secret_env",
                "INVALID_HMAC_SECRET_ENV",
                "hmac_secret_env must be an environment variable name matching ^[A-Z_][A-Z0-9_]*$ (the secret itself never goes in the config)",
            ),
            env_name,
        );
        match present.as_slice() {
            ["hmac_secret_env"] => Some(true),
            [_] => Some(false),
            _ => None,
        }
    }

    /// `identity.algorithms`: known names, never `none`, and of the family the keys are.
    fn algorithms(&mut self, identity: &Map<String, Value>, path: &Path, hmac_keys: Option<bool>) {
        let field = Field::required(
            "algorithms",
            "INVALID_JWT_ALGORITHM",
            "identity.algorithms must be a non-empty array of JWS algorithms, such as [\"RS256\", \"ES256\"] for a JWKS or [\"HS256\"] for an HMAC secret",
        );
        let Some(items) = self.field(identity, path, field, |v| v.as_array().filter(|a| !a.is_empty())) else {
            return;
        };
        let ap = path.key("algorithms");
        let mut seen: Vec<JwtAlgorithm> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let p = ap.idx(i);
            let name = item.as_str().unwrap_or("");
            if name.eq_ignore_ascii_case("none") {
                self.error(
                    "JWT_ALGORITHM_NONE",
                    &p,
                    "unsigned tokens (alg none) are never accepted; remove it",
                );
                continue;
            }
            let Some(alg) = JwtAlgorithm::ALL.into_iter().find(|a| a.as_str() == name) else {
                self.error(
                    "INVALID_JWT_ALGORITHM",
                    &p,
                    format!(
                        "unknown algorithm; use one of {}",
                        JwtAlgorithm::ALL.map(JwtAlgorithm::as_str).join(", ")
                    ),
                );
                continue;
            };
            if seen.contains(&alg) {
                self.error(
                    "INVALID_JWT_ALGORITHM",
                    &p,
                    "this algorithm is listed twice; remove the duplicate",
                );
                continue;
            }
            seen.push(alg);
            if let Some(hmac) = hmac_keys
                && alg.is_hmac() != hmac
            {
                self.error(
                    "JWT_ALGORITHM_KEY_MISMATCH",
                    &p,
                    if hmac {
                        "keys is an HMAC secret, so only HS256, HS384 or HS512 can be verified with it; a public-key algorithm here would invite algorithm confusion"
                    } else {
                        "keys are public keys (a JWKS), so HMAC algorithms cannot be accepted: a public key used as an HMAC secret is the classic algorithm-confusion attack"
                    },
                );
            }
        }
    }

    fn operator(&mut self, v: &Value, path: &Path, session_audience: Option<&str>) {
        let Some(obj) = v.as_object() else {
            self.error(
                "INVALID_OPERATOR_IDENTITY",
                path,
                "identity.operator must be an object like {\"audience\": \"synapsor-operator\"}",
            );
            return;
        };
        self.known_keys(obj, OPERATOR_KEYS, path, "identity.operator");
        let audience = Field::required(
            "audience",
            "INVALID_OPERATOR_IDENTITY",
            "identity.operator.audience is required: the aud of operator tokens (at most 512 characters)",
        );
        let audience = self.field(obj, path, audience, short_str);
        if let (Some(op), Some(session)) = (audience, session_audience)
            && op == session
        {
            self.error(
                "OPERATOR_AUDIENCE_REUSED",
                &path.key("audience"),
                "the operator audience must differ from identity.audience, so an agent's session token can never decide a proposal",
            );
        }
        let roles = Field::optional(
            "roles_claim",
            "INVALID_CLAIM_PATH",
            "roles_claim must be a claim name or a dotted path, like realm_access.roles",
        );
        self.field(obj, path, roles, claim_path);
        self.identity_info.operator = audience.is_some();
    }

    pub(super) fn rate_limits(&mut self, v: &Value, path: &Path) {
        let Some(obj) = v.as_object() else {
            self.error(
                "INVALID_RATE_LIMIT",
                path,
                "rate_limits must be an object like {\"per_tenant\": {\"capacity\": 60, \"refill_per_second\": 1}}",
            );
            return;
        };
        self.known_keys(obj, RATE_LIMITS_KEYS, path, "rate_limits");
        if let Some(bucket) = obj.get("per_tenant") {
            self.token_bucket(bucket, &path.key("per_tenant"));
        }
    }

    pub(super) fn token_bucket(&mut self, v: &Value, path: &Path) {
        let Some(obj) = v.as_object() else {
            self.error(
                "INVALID_RATE_LIMIT",
                path,
                "a rate limit must be a token bucket like {\"capacity\": 60, \"refill_per_second\": 1}",
            );
            return;
        };
        self.known_keys(obj, TOKEN_BUCKET_KEYS, path, "a rate limit");
        self.field(
            obj,
            path,
            Field::required(
                "capacity",
                "INVALID_RATE_LIMIT",
                "capacity must be a whole number of calls from 1 to 1000000 (the burst allowed)",
            ),
            |v| v.as_u64().filter(|n| (1..=1_000_000).contains(n)),
        );
        self.field(
            obj,
            path,
            Field::required(
                "refill_per_second",
                "INVALID_RATE_LIMIT",
                "refill_per_second must be a number from 0.001 to 1000000 (calls added back per second)",
            ),
            |v| v.as_f64().filter(|n| (0.001..=1_000_000.0).contains(n)),
        );
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::config::validate::tests::minimal;
    use crate::config::validate::{parse_config, validate_value};

    fn with_identity() -> serde_json::Value {
        let mut doc = minimal();
        doc["identity"] = json!({
            "issuer": "https://idp.example.com/",
            "audience": "synapsor-runner",
            "keys": {"jwks_url": "https://idp.example.com/.well-known/jwks.json"},
            "algorithms": ["RS256", "ES256"],
            "tenant_claim": "org.id",
            "operator": {"audience": "synapsor-operator"}
        });
        doc["trusted_context"] = json!({"provider": "jwt"});
        doc
    }

    #[test]
    fn a_jwt_config_is_clean_and_parses() {
        let doc = with_identity();
        let r = validate_value(&doc);
        assert!(r.errors.is_empty() && r.warnings.is_empty(), "{r:?}");
        let (cfg, _) = parse_config(&doc.to_string()).expect("parses");
        let id = cfg.identity.expect("identity");
        assert_eq!(id.principal_claim(), "sub");
        assert_eq!(id.authorization_servers(), vec!["https://idp.example.com/".to_owned()]);
        // The original's name for the provider is accepted too.
        let mut doc = with_identity();
        doc["trusted_context"] = json!({"provider": "http_claims"});
        assert!(parse_config(&doc.to_string()).is_ok());
    }

    #[test]
    fn algorithm_rules() {
        let mut doc = with_identity();
        doc["identity"]["algorithms"] = json!(["none", "HS256", "RS256", "RS256", "XS1"]);
        let r = validate_value(&doc);
        assert!(r.has("JWT_ALGORITHM_NONE", "$.identity.algorithms[0]"), "{r:?}");
        assert!(r.has("JWT_ALGORITHM_KEY_MISMATCH", "$.identity.algorithms[1]"));
        assert!(r.has("INVALID_JWT_ALGORITHM", "$.identity.algorithms[3]"));
        assert!(r.has("INVALID_JWT_ALGORITHM", "$.identity.algorithms[4]"));
        doc["identity"]["keys"] = json!({"hmac_secret_env": "APP_TOKEN_SECRET"});
        doc["identity"]["algorithms"] = json!(["HS256", "ES256"]);
        let r = validate_value(&doc);
        assert!(r.has("JWT_ALGORITHM_KEY_MISMATCH", "$.identity.algorithms[1]"));
        assert!(!r.has("JWT_ALGORITHM_KEY_MISMATCH", "$.identity.algorithms[0]"));
        doc["identity"]["algorithms"] = json!([]);
        assert!(validate_value(&doc).has("INVALID_JWT_ALGORITHM", "$.identity.algorithms"));
    }

    #[test]
    fn keys_and_fields() {
        let mut doc = with_identity();
        doc["identity"]["keys"] = json!({"jwks_url": "ftp://x", "hmac_secret_env": "lower"});
        doc["identity"]["tenant_claim"] = json!("org..id");
        doc["identity"]["clock_skew_seconds"] = json!(900);
        doc["identity"]["operator"] = json!({"audience": "synapsor-runner"});
        doc["identity"]["resource"] = json!("https://user:pw@example.com/mcp");
        let r = validate_value(&doc);
        assert!(r.has("INVALID_IDENTITY_KEYS", "$.identity.keys"), "{r:?}");
        assert!(r.has("INVALID_JWKS_URL", "$.identity.keys.jwks_url"));
        assert!(r.has("INVALID_HMAC_SECRET_ENV", "$.identity.keys.hmac_secret_env"));
        assert!(r.has("INVALID_CLAIM_PATH", "$.identity.tenant_claim"));
        assert!(r.has("INVALID_IDENTITY_LIMIT", "$.identity.clock_skew_seconds"));
        assert!(r.has("OPERATOR_AUDIENCE_REUSED", "$.identity.operator.audience"));
        assert!(r.has("INVALID_IDENTITY_RESOURCE", "$.identity.resource"));
        let mut doc = with_identity();
        doc["identity"].as_object_mut().expect("object").remove("tenant_claim");
        assert!(validate_value(&doc).has("INVALID_CLAIM_PATH", "$.identity.tenant_claim"));
    }

    #[test]
    fn jwt_contexts_need_identity() {
        let mut doc = with_identity();
        doc.as_object_mut().expect("object").remove("identity");
        let r = validate_value(&doc);
        assert!(r.has("IDENTITY_REQUIRED", "$.trusted_context.provider"), "{r:?}");
        let mut doc = with_identity();
        doc["trusted_context"] = json!({"provider": "jwt", "values": {"tenant_id_env": "T"}});
        assert!(validate_value(&doc).has("CONTEXT_VALUES_NOT_USED", "$.trusted_context.values"));
    }

    #[test]
    fn rate_limits() {
        let mut doc = with_identity();
        doc["rate_limits"] = json!({"per_tenant": {"capacity": 0, "refill_per_second": 1}, "per_user": {}});
        doc["capabilities"][0]["rate_limit"] = json!({"capacity": 5, "refill_per_second": -1});
        let r = validate_value(&doc);
        assert!(
            r.has("INVALID_RATE_LIMIT", "$.rate_limits.per_tenant.capacity"),
            "{r:?}"
        );
        assert!(r.has("UNKNOWN_FIELD", "$.rate_limits.per_user"));
        assert!(r.has("INVALID_RATE_LIMIT", "$.capabilities[0].rate_limit.refill_per_second"));
        doc["rate_limits"] = json!({"per_tenant": {"capacity": 60, "refill_per_second": 0.5}});
        doc["capabilities"][0]["rate_limit"] = json!({"capacity": 5, "refill_per_second": 1});
        let (cfg, _) = parse_config(&doc.to_string()).expect("parses");
        assert_eq!(cfg.capabilities[0].rate_limit.expect("limit").capacity, 5);
    }
}
