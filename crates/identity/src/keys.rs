//! Verification keys: an HMAC secret, a static JWK set, or a JWKS URL kept in a cache.
//!
//! A JWK set holds public keys only: `oct` (symmetric) keys and keys marked for encryption are
//! skipped, as are keys the library cannot read; a set with no usable key is malformed. A key is
//! chosen by `kid`, and must fit the token's `alg` (its own `alg`, when it names one, must be that
//! `alg`; RSA keys serve `RS*`/`PS*`, EC keys `ES*`, OKP keys `EdDSA`). A token without `kid` is
//! accepted only when exactly one key fits.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use crate::AuthError;

/// Largest JWKS document accepted from a URL.
pub const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// A JWKS fetch gives up after this long (connecting: half of it).
pub const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Rsa,
    Ec,
    Okp,
}

fn family_of(alg: Algorithm) -> Option<Family> {
    use Algorithm::*;
    match alg {
        RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => Some(Family::Rsa),
        ES256 | ES384 => Some(Family::Ec),
        EdDSA => Some(Family::Okp),
        HS256 | HS384 | HS512 => None,
    }
}

#[derive(Clone)]
struct Entry {
    kid: Option<String>,
    alg: Option<Algorithm>,
    family: Family,
    key: DecodingKey,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("family", &self.family)
            .finish_non_exhaustive()
    }
}

/// The usable public keys of one JWK set.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    entries: Vec<Entry>,
}

impl KeySet {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The key for a token with this `kid` and `alg`.
    pub fn find(&self, kid: Option<&str>, alg: Algorithm) -> Result<DecodingKey, AuthError> {
        let family = family_of(alg).ok_or(AuthError::AlgorithmNotAllowed)?;
        let mut fitting = self
            .entries
            .iter()
            .filter(|e| e.family == family && e.alg.is_none_or(|a| a == alg));
        let found = match kid {
            Some(kid) => fitting.find(|e| e.kid.as_deref() == Some(kid)),
            None => {
                let first = fitting.next();
                if fitting.next().is_some() { None } else { first }
            }
        };
        found.map(|e| e.key.clone()).ok_or(AuthError::KeyUnknown)
    }
}

/// Reads a JWK set document (`{"keys": [...]}`).
pub fn parse_jwks(text: &str) -> Result<KeySet, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("not JSON ({e})"))?;
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("not a JWK set: no \"keys\" array")?;
    let mut entries = Vec::new();
    for raw in keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(raw.clone()) else {
            tracing::debug!("skipping a JWK this runner cannot read");
            continue;
        };
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        let family = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Family::Rsa,
            AlgorithmParameters::EllipticCurve(_) => Family::Ec,
            AlgorithmParameters::OctetKeyPair(_) => Family::Okp,
            // A symmetric key published in a key set would let anyone who reads it mint tokens.
            AlgorithmParameters::OctetKey(_) => continue,
        };
        let alg = match jwk.common.key_algorithm {
            None => None,
            Some(a) => match a.to_string().parse::<Algorithm>() {
                Ok(alg) if family_of(alg) == Some(family) => Some(alg),
                // An encryption algorithm, or one that contradicts the key type.
                _ => continue,
            },
        };
        let Ok(key) = DecodingKey::from_jwk(&jwk) else {
            continue;
        };
        entries.push(Entry {
            kid: jwk.common.key_id.clone(),
            alg,
            family,
            key,
        });
    }
    if entries.is_empty() {
        return Err("the JWK set has no usable signing key".into());
    }
    Ok(KeySet { entries })
}

/// Where keys come from.
pub enum KeySource {
    Hmac(DecodingKey),
    Static(KeySet),
    Remote(RemoteKeys),
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Hmac(_) => f.write_str("Hmac(..)"),
            KeySource::Static(set) => f.debug_tuple("Static").field(set).finish(),
            KeySource::Remote(r) => f.debug_tuple("Remote").field(r).finish(),
        }
    }
}

impl KeySource {
    pub async fn key_for(&self, kid: Option<&str>, alg: Algorithm) -> Result<DecodingKey, AuthError> {
        match self {
            KeySource::Hmac(key) if family_of(alg).is_none() => Ok(key.clone()),
            KeySource::Hmac(_) => Err(AuthError::AlgorithmNotAllowed),
            KeySource::Static(set) => set.find(kid, alg),
            KeySource::Remote(remote) => remote.key_for(kid, alg).await,
        }
    }
}

/// A JWKS URL's keys, fetched when first needed and again when a token names a key the cache
/// lacks, but never twice within `min_refresh`. A failed fetch keeps the keys already held.
#[derive(Debug)]
pub struct RemoteKeys {
    url: String,
    client: reqwest::Client,
    min_refresh: Duration,
    current: RwLock<Option<Arc<KeySet>>>,
    fetch: tokio::sync::Mutex<FetchState>,
}

#[derive(Debug, Default)]
struct FetchState {
    last_attempt: Option<Instant>,
    last_error: Option<String>,
    fetches: u64,
}

impl RemoteKeys {
    pub fn new(url: String, min_refresh: Duration) -> Result<RemoteKeys, String> {
        let client = reqwest::Client::builder()
            .timeout(JWKS_FETCH_TIMEOUT)
            .connect_timeout(JWKS_FETCH_TIMEOUT / 2)
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(RemoteKeys {
            url,
            client,
            min_refresh,
            current: RwLock::new(None),
            fetch: tokio::sync::Mutex::new(FetchState::default()),
        })
    }

    fn cached(&self) -> Option<Arc<KeySet>> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Fetches the set now (at most once per `min_refresh`, like any refresh): how many keys are
    /// held afterwards, or why none are.
    pub async fn check(&self) -> Result<usize, String> {
        let mut state = self.fetch.lock().await;
        if state.last_attempt.is_none_or(|t| t.elapsed() >= self.min_refresh) {
            state.last_attempt = Some(Instant::now());
            state.fetches += 1;
            match self.download().await {
                Ok(set) => {
                    *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(set));
                    state.last_error = None;
                }
                Err(e) => state.last_error = Some(e),
            }
        }
        match (self.cached(), &state.last_error) {
            (_, Some(e)) => Err(e.clone()),
            (Some(set), None) => Ok(set.len()),
            (None, None) => Err("not fetched yet".into()),
        }
    }

    /// How many times the URL was fetched (for tests and `doctor`).
    pub async fn fetches(&self) -> u64 {
        self.fetch.lock().await.fetches
    }

    pub async fn key_for(&self, kid: Option<&str>, alg: Algorithm) -> Result<DecodingKey, AuthError> {
        if let Some(set) = self.cached()
            && let Ok(key) = set.find(kid, alg)
        {
            return Ok(key);
        }
        // One fetch at a time; whoever waited re-checks what the previous one brought.
        let mut state = self.fetch.lock().await;
        if let Some(set) = self.cached()
            && let Ok(key) = set.find(kid, alg)
        {
            return Ok(key);
        }
        let due = state.last_attempt.is_none_or(|t| t.elapsed() >= self.min_refresh);
        if due {
            state.last_attempt = Some(Instant::now());
            state.fetches += 1;
            match self.download().await {
                Ok(set) => {
                    tracing::info!(keys = set.len(), "fetched the JWKS");
                    *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(set));
                    state.last_error = None;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "JWKS fetch failed");
                    state.last_error = Some(e);
                }
            }
        }
        match self.cached() {
            Some(set) => set.find(kid, alg),
            None => Err(AuthError::KeysUnavailable(
                state.last_error.clone().unwrap_or_else(|| "not fetched yet".into()),
            )),
        }
    }

    async fn download(&self) -> Result<KeySet, String> {
        let mut resp = self
            .client
            .get(&self.url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    "the JWKS URL did not answer in time".to_owned()
                } else {
                    "the JWKS URL is unreachable".to_owned()
                }
            })?;
        if !resp.status().is_success() {
            return Err(format!("the JWKS URL answered HTTP {}", resp.status().as_u16()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|_| "the JWKS download was cut off".to_owned())?
        {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(format!("the JWKS is larger than {MAX_JWKS_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        let text = String::from_utf8(body).map_err(|_| "the JWKS is not UTF-8".to_owned())?;
        parse_jwks(&text).map_err(|e| format!("malformed JWKS: {e}"))
    }
}
