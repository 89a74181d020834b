//! Bearer-token verification for Synapsor Runner.
//!
//! What it is: a [`Verifier`] built from a config's `identity` section that checks a JWT's
//! signature and claims and says who the caller is: for a session token, the trusted tenant and
//! principal ([`VerifiedCaller`]); for an operator token, the operator and their roles
//! ([`Operator`]). Keys come from a JWKS URL ([`keys::RemoteKeys`]: fetched when first needed,
//! cached, refreshed when a token names an unknown `kid`, at most once per
//! `jwks_refresh_min_seconds`), from a local JWK-set file, or from an HMAC secret named by an
//! environment variable.
//!
//! The order of checks: size, shape, `alg` (in the configured list, never `none`; the key's
//! family must match it, so an RSA public key can never be used as an HMAC secret), key, signature,
//! then the claims against the caller's clock: `iss`, `aud`, `exp`, `nbf`, `iat` (age), `sub`,
//! and the tenant and principal (or roles) claims. Every refusal is an [`AuthError`] with a stable
//! code; none quotes the token.
//!
//! What it is not: no HTTP serving (the sidecar turns [`AuthError`] into a 401 with
//! `WWW-Authenticate`), no token issuing, no OAuth flows.

pub mod claims;
pub mod keys;

use std::collections::HashSet;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use synapsor_core::capability::{VerifiedCaller, VerifiedIdentity};
use synapsor_core::config::{Identity, JwtAlgorithm};
use synapsor_core::context::Env;

use crate::claims::{claim_string, claim_strings};
use crate::keys::KeySource;

/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Why a token was refused. [`AuthError::code`] is stable; the message never contains the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token was presented")]
    Missing,
    #[error("the token is larger than {MAX_TOKEN_BYTES} bytes")]
    TooLarge,
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's algorithm is not accepted")]
    AlgorithmNotAllowed,
    #[error("no verification key matches the token's key id")]
    KeyUnknown,
    #[error("the verification keys are unavailable ({0})")]
    KeysUnavailable(String),
    #[error("the token's signature is invalid")]
    SignatureInvalid,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued too long ago")]
    TooOld,
    #[error("the token's issuer is not the configured issuer")]
    IssuerMismatch,
    #[error("the token is not meant for this audience")]
    AudienceMismatch,
    #[error("the token has no {0} claim")]
    ClaimMissing(String),
    #[error("the token's {0} claim is not a non-empty string")]
    ClaimInvalid(String),
    #[error("the operator lacks the role {0}")]
    RoleMissing(String),
}

impl AuthError {
    /// The stable code: in logs, the 401 body and `error_description`.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "TOKEN_MISSING",
            AuthError::TooLarge => "TOKEN_TOO_LARGE",
            AuthError::Malformed => "TOKEN_MALFORMED",
            AuthError::AlgorithmNotAllowed => "TOKEN_ALGORITHM_NOT_ALLOWED",
            AuthError::KeyUnknown => "TOKEN_KEY_UNKNOWN",
            AuthError::KeysUnavailable(_) => "TOKEN_KEYS_UNAVAILABLE",
            AuthError::SignatureInvalid => "TOKEN_SIGNATURE_INVALID",
            AuthError::Expired => "TOKEN_EXPIRED",
            AuthError::NotYetValid => "TOKEN_NOT_YET_VALID",
            AuthError::TooOld => "TOKEN_TOO_OLD",
            AuthError::IssuerMismatch => "TOKEN_ISSUER_MISMATCH",
            AuthError::AudienceMismatch => "TOKEN_AUDIENCE_MISMATCH",
            AuthError::ClaimMissing(_) => "TOKEN_CLAIM_MISSING",
            AuthError::ClaimInvalid(_) => "TOKEN_CLAIM_INVALID",
            AuthError::RoleMissing(_) => "OPERATOR_ROLE_MISSING",
        }
    }

    /// The RFC 6750 error code: none when no token was presented (§3.1), else `invalid_token`.
    pub fn bearer_error(&self) -> Option<&'static str> {
        match self {
            AuthError::Missing => None,
            AuthError::RoleMissing(_) => Some("insufficient_scope"),
            _ => Some("invalid_token"),
        }
    }
}

/// Which audience a token must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// An agent's MCP session (`identity.audience`).
    Session,
    /// An operator deciding proposals locally (`identity.operator.audience`).
    Operator,
}

/// A token whose signature and standard claims checked out.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedToken {
    pub identity: VerifiedIdentity,
    /// `exp`, seconds since the epoch.
    pub expires_at: u64,
    pub claims: Map<String, Value>,
}

/// A verified operator: who, and the roles their token carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub identity: VerifiedIdentity,
    pub roles: Vec<String>,
}

/// Problems building a verifier from a config (at start, before any port is bound).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("IDENTITY_SECRET_MISSING: the environment variable {0} (identity.keys.hmac_secret_env) is not set")]
    SecretMissing(String),
    #[error("IDENTITY_SECRET_TOO_SHORT: the HMAC secret in {0} has fewer than 32 bytes")]
    SecretTooShort(String),
    #[error("IDENTITY_JWKS_FILE: {0}")]
    JwksFile(String),
    #[error("IDENTITY_JWKS_CLIENT: {0}")]
    Client(String),
}

impl SetupError {
    pub fn code(&self) -> &'static str {
        match self {
            SetupError::SecretMissing(_) => "IDENTITY_SECRET_MISSING",
            SetupError::SecretTooShort(_) => "IDENTITY_SECRET_TOO_SHORT",
            SetupError::JwksFile(_) => "IDENTITY_JWKS_FILE",
            SetupError::Client(_) => "IDENTITY_JWKS_CLIENT",
        }
    }
}

/// Checks tokens as one config's `identity` says. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Identity,
    algorithms: Vec<Algorithm>,
    keys: KeySource,
}

fn algorithm(a: JwtAlgorithm) -> Algorithm {
    match a {
        JwtAlgorithm::HS256 => Algorithm::HS256,
        JwtAlgorithm::HS384 => Algorithm::HS384,
        JwtAlgorithm::HS512 => Algorithm::HS512,
        JwtAlgorithm::RS256 => Algorithm::RS256,
        JwtAlgorithm::RS384 => Algorithm::RS384,
        JwtAlgorithm::RS512 => Algorithm::RS512,
        JwtAlgorithm::PS256 => Algorithm::PS256,
        JwtAlgorithm::PS384 => Algorithm::PS384,
        JwtAlgorithm::PS512 => Algorithm::PS512,
        JwtAlgorithm::ES256 => Algorithm::ES256,
        JwtAlgorithm::ES384 => Algorithm::ES384,
        JwtAlgorithm::EdDSA => Algorithm::EdDSA,
    }
}

/// An HMAC secret shorter than the hash is guessable offline from one token.
const MIN_HMAC_SECRET_BYTES: usize = 32;

impl Verifier {
    /// A verifier for a validated `identity` section. Reads the HMAC secret or the JWK-set file
    /// now (relative paths against `base_dir`); a JWKS URL is fetched when first needed.
    pub fn new(config: &Identity, env: &dyn Env, base_dir: &std::path::Path) -> Result<Verifier, SetupError> {
        let keys = if let Some(var) = &config.keys.hmac_secret_env {
            let secret = env.var(var).ok_or_else(|| SetupError::SecretMissing(var.clone()))?;
            if secret.len() < MIN_HMAC_SECRET_BYTES {
                return Err(SetupError::SecretTooShort(var.clone()));
            }
            KeySource::Hmac(DecodingKey::from_secret(secret.as_bytes()))
        } else if let Some(file) = &config.keys.jwks_file {
            let path = base_dir.join(file);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| SetupError::JwksFile(format!("cannot read {}: {e}", path.display())))?;
            let set = keys::parse_jwks(&text).map_err(|e| SetupError::JwksFile(format!("{}: {e}", path.display())))?;
            KeySource::Static(set)
        } else if let Some(url) = &config.keys.jwks_url {
            let refresh = config
                .jwks_refresh_min_seconds
                .unwrap_or(Identity::DEFAULT_JWKS_REFRESH_MIN_SECONDS);
            KeySource::Remote(
                keys::RemoteKeys::new(url.clone(), std::time::Duration::from_secs(refresh))
                    .map_err(SetupError::Client)?,
            )
        } else {
            // The validator requires exactly one source.
            return Err(SetupError::JwksFile("identity.keys names no key source".into()));
        };
        Ok(Verifier {
            inner: Arc::new(Inner {
                config: config.clone(),
                algorithms: config.algorithms.iter().copied().map(algorithm).collect(),
                keys,
            }),
        })
    }

    pub fn config(&self) -> &Identity {
        &self.inner.config
    }

    /// Where the keys come from and whether they are usable now (a JWKS URL is fetched): one
    /// line for `up`, or why they are not.
    pub async fn check_keys(&self) -> Result<String, String> {
        match &self.inner.keys {
            KeySource::Hmac(_) => Ok(format!(
                "HMAC secret from {}",
                self.inner.config.keys.hmac_secret_env.as_deref().unwrap_or("?")
            )),
            KeySource::Static(set) => Ok(format!("{} key(s) from the JWK-set file", set.len())),
            KeySource::Remote(r) => r.check().await.map(|n| format!("{n} key(s) from the JWKS URL")),
        }
    }

    /// Whether operator tokens can be verified (`identity.operator` is set).
    pub fn has_operator(&self) -> bool {
        self.inner.config.operator.is_some()
    }

    /// Checks a token's signature and standard claims for `audience` at `now` (seconds).
    pub async fn verify(&self, token: &str, audience: Audience, now: u64) -> Result<VerifiedToken, AuthError> {
        let cfg = &self.inner.config;
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::TooLarge);
        }
        if token.split('.').count() != 3 {
            return Err(AuthError::Malformed);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
            // `none` and other names the library does not know land here.
            jsonwebtoken::errors::ErrorKind::Json(_) => unknown_alg_or_malformed(token),
            _ => AuthError::Malformed,
        })?;
        if !self.inner.algorithms.contains(&header.alg) {
            return Err(AuthError::AlgorithmNotAllowed);
        }
        let key = self.inner.keys.key_for(header.kid.as_deref(), header.alg).await?;
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.required_spec_claims = HashSet::new();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::InvalidSignature => AuthError::SignatureInvalid,
                // The key's family does not fit the algorithm (e.g. an HMAC header against an
                // RSA key): refused as an algorithm, never tried.
                K::InvalidAlgorithm => AuthError::AlgorithmNotAllowed,
                K::InvalidEcdsaKey | K::InvalidRsaKey(_) | K::InvalidKeyFormat => AuthError::SignatureInvalid,
                _ => AuthError::Malformed,
            }
        })?;
        let claims = data.claims;
        let skew = cfg.clock_skew_seconds.unwrap_or(Identity::DEFAULT_CLOCK_SKEW_SECONDS);
        if claims.get("iss").and_then(Value::as_str) != Some(cfg.issuer.as_str()) {
            return Err(AuthError::IssuerMismatch);
        }
        let expected_aud = match audience {
            Audience::Session => cfg.audience.as_str(),
            Audience::Operator => cfg
                .operator
                .as_ref()
                .map(|o| o.audience.as_str())
                .ok_or(AuthError::AudienceMismatch)?,
        };
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => a == expected_aud,
            Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(expected_aud)),
            _ => false,
        };
        if !aud_ok {
            return Err(AuthError::AudienceMismatch);
        }
        let time = |name: &str| -> Result<Option<u64>, AuthError> {
            match claims.get(name) {
                None => Ok(None),
                Some(v) => v
                    .as_u64()
                    .or_else(|| v.as_f64().filter(|f| f.is_finite() && *f >= 0.0).map(|f| f as u64))
                    .map(Some)
                    .ok_or_else(|| AuthError::ClaimInvalid(name.to_owned())),
            }
        };
        let exp = time("exp")?.ok_or_else(|| AuthError::ClaimMissing("exp".into()))?;
        if now > exp.saturating_add(skew) {
            return Err(AuthError::Expired);
        }
        if let Some(nbf) = time("nbf")?
            && now.saturating_add(skew) < nbf
        {
            return Err(AuthError::NotYetValid);
        }
        let iat = time("iat")?.ok_or_else(|| AuthError::ClaimMissing("iat".into()))?;
        if now.saturating_add(skew) < iat {
            return Err(AuthError::NotYetValid);
        }
        let max_age = cfg
            .max_token_age_seconds
            .unwrap_or(Identity::DEFAULT_MAX_TOKEN_AGE_SECONDS);
        if now.saturating_sub(iat) > max_age.saturating_add(skew) {
            return Err(AuthError::TooOld);
        }
        let subject = claim_string(&claims, "sub")?;
        let jti = match claims.get("jti") {
            None => None,
            Some(_) => Some(claim_string(&claims, "jti")?),
        };
        Ok(VerifiedToken {
            identity: VerifiedIdentity {
                issuer: cfg.issuer.clone(),
                subject,
                jti,
            },
            expires_at: exp,
            claims,
        })
    }

    /// A session token's caller: verified for the session audience, with the tenant and
    /// principal claims the config names.
    pub async fn session(&self, token: &str, now: u64) -> Result<VerifiedCaller, AuthError> {
        let t = self.verify(token, Audience::Session, now).await?;
        let cfg = &self.inner.config;
        Ok(VerifiedCaller {
            tenant_id: claim_string(&t.claims, &cfg.tenant_claim)?,
            principal: claim_string(&t.claims, cfg.principal_claim())?,
            identity: t.identity,
            expires_at: t.expires_at,
        })
    }

    /// An operator token: verified for the operator audience, with its roles.
    pub async fn operator(&self, token: &str, now: u64) -> Result<Operator, AuthError> {
        let t = self.verify(token, Audience::Operator, now).await?;
        let roles_claim = self.inner.config.operator.as_ref().map_or("roles", |o| o.roles_claim());
        Ok(Operator {
            roles: claim_strings(&t.claims, roles_claim),
            identity: t.identity,
        })
    }
}

/// A header that fails to parse: an `alg` the library does not know (`none`, `XS1`) is an
/// algorithm refusal; anything else is a malformed token.
fn unknown_alg_or_malformed(token: &str) -> AuthError {
    let header = token.split('.').next().unwrap_or("");
    let decoded = claims::b64url_decode(header).and_then(|b| serde_json::from_slice::<Value>(&b).ok());
    match decoded.as_ref().and_then(|h| h.get("alg")) {
        Some(Value::String(_)) => AuthError::AlgorithmNotAllowed,
        _ => AuthError::Malformed,
    }
}
