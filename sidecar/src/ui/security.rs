//! The review UI's defences, each a small pure function the routes apply in order:
//!
//! 1. **Bind**: loopback unless `--allow-remote-bind` (checked before any port is bound).
//! 2. **`Host`** ([`HostPolicy`]): the bound address (and `localhost` on loopback), always an IP
//!    literal: a DNS-rebinding page reaches the server only through a name it controls, which is
//!    never one of these, so it gets a refusal and no page.
//! 3. **Token** ([`Secrets`]): a per-run random token, in the printed URL's query once, then in
//!    an `HttpOnly`, `SameSite=Strict` cookie scoped to this port's name, or as
//!    `Authorization: Bearer`. Compared in constant time; never logged.
//! 4. **CSRF** on every POST: a second per-run token in a hidden form field, plus `Origin` and
//!    `Sec-Fetch-Site` when the browser sends them (a cross-site form cannot read the token, and
//!    the cookie's `SameSite=Strict` keeps it off cross-site requests anyway).
//! 5. **Headers** on every answer: a CSP that allows only this server's own script and style,
//!    no framing, a referrer only to this server itself (never elsewhere; `no-referrer` would
//!    make browsers send `Origin: null` on the forms), no caching, no sniffing. The address with
//!    the token is never a page: it answers with the redirect that drops it.
//!
//! What it is not: TLS. On a remote bind the token crosses the network in clear; the command
//! warns about it.

use std::net::{IpAddr, SocketAddr};

/// Length in bytes of the random token and the CSRF token (hex-encoded: twice as many chars).
const TOKEN_BYTES: usize = 32;

/// The per-run secrets: the access token and the CSRF token.
pub struct Secrets {
    token: String,
    csrf: String,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the tokens, even in a debug dump.
        f.write_str("Secrets { .. }")
    }
}

impl Secrets {
    /// Two fresh random tokens from the operating system's random source (through ring, the
    /// crypto provider the runner already uses).
    pub fn generate() -> Result<Secrets, RandomUnavailable> {
        Ok(Secrets {
            token: random_hex(TOKEN_BYTES)?,
            csrf: random_hex(TOKEN_BYTES)?,
        })
    }

    /// Secrets with given values, for tests.
    pub fn fixed(token: &str, csrf: &str) -> Secrets {
        Secrets {
            token: token.to_owned(),
            csrf: csrf.to_owned(),
        }
    }

    /// The access token (for the printed URL only).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The CSRF token, for the hidden form fields.
    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    pub fn token_matches(&self, presented: &str) -> bool {
        constant_time_eq(presented.as_bytes(), self.token.as_bytes())
    }

    pub fn csrf_matches(&self, presented: &str) -> bool {
        constant_time_eq(presented.as_bytes(), self.csrf.as_bytes())
    }
}

/// The operating system's random source failed.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random source is unavailable")]
pub struct RandomUnavailable;

fn random_hex(n: usize) -> Result<String, RandomUnavailable> {
    let mut buf = vec![0u8; n];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut buf)
        .map_err(|_| RandomUnavailable)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Compares in time independent of where the first difference is (the length is not secret:
/// every token has the same).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Which `Host` headers the server answers.
#[derive(Debug, Clone, Copy)]
pub struct HostPolicy {
    bound: SocketAddr,
}

impl HostPolicy {
    pub fn new(bound: SocketAddr) -> HostPolicy {
        HostPolicy { bound }
    }

    /// `Host` must name the bound port and the bound address as an IP literal (`localhost` too
    /// on loopback). Bound to an unspecified address (`0.0.0.0`), any IP literal is accepted,
    /// but still no DNS name: names are what DNS rebinding needs.
    pub fn allows(&self, host: &str) -> bool {
        let Some((name, port)) = split_host(host) else {
            return false;
        };
        if port != self.bound.port() {
            return false;
        }
        let ip = self.bound.ip();
        if name.eq_ignore_ascii_case("localhost") {
            return ip.is_loopback();
        }
        let Ok(given) = name.parse::<IpAddr>() else {
            return false;
        };
        if ip.is_unspecified() {
            return true;
        }
        given == ip
    }
}

/// `name:port` or `[v6]:port` into the name (brackets removed) and the port. A `Host` without
/// a port is refused: browsers always send it for a non-default port, and the UI never runs on
/// port 80.
fn split_host(host: &str) -> Option<(&str, u16)> {
    let (name, port) = host.rsplit_once(':')?;
    let port = port.parse().ok()?;
    let name = match name.strip_prefix('[') {
        Some(rest) => rest.strip_suffix(']')?,
        None if name.contains(':') => return None,
        None => name,
    };
    Some((name, port))
}

/// The cookie's name: one per port, so two UIs on the same host (cookies ignore ports) do not
/// overwrite each other's token.
pub fn cookie_name(port: u16) -> String {
    format!("synapsor_ui_{port}")
}

/// The `Set-Cookie` value that keeps the token after the first visit.
pub fn session_cookie(port: u16, token: &str) -> String {
    format!("{}={token}; HttpOnly; SameSite=Strict; Path=/", cookie_name(port))
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// The bearer token of an `Authorization` header.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Splits a raw query string into the `token` parameter's value and the rest (kept byte for
/// byte), so the redirect after the first visit drops only the token.
pub fn take_token(query: &str) -> (Option<&str>, String) {
    let mut token = None;
    let mut rest: Vec<&str> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("token", v)) => token = Some(v),
            _ => rest.push(pair),
        }
    }
    (token, rest.join("&"))
}

/// A POST is same-origin: `Origin`, when sent, is this server (`http://<Host>`), and
/// `Sec-Fetch-Site`, when sent, is `same-origin`.
pub fn same_origin(host: &str, origin: Option<&str>, fetch_site: Option<&str>) -> bool {
    let origin_ok = origin.is_none_or(|o| o.eq_ignore_ascii_case(&format!("http://{host}")));
    let site_ok = fetch_site.is_none_or(|s| s.eq_ignore_ascii_case("same-origin"));
    origin_ok && site_ok
}

/// Headers on every answer.
pub const SECURITY_HEADERS: [(&str, &str); 6] = [
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "same-origin"),
    ("x-content-type-options", "nosniff"),
    ("cache-control", "no-store"),
    ("cross-origin-opener-policy", "same-origin"),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 1)))
    }

    #[test]
    fn host_policy_on_loopback() {
        let p = HostPolicy::new(addr("127.0.0.1:8123"));
        assert!(p.allows("127.0.0.1:8123"));
        assert!(p.allows("localhost:8123"));
        assert!(p.allows("LOCALHOST:8123"));
        assert!(!p.allows("127.0.0.1:8124"));
        assert!(!p.allows("127.0.0.1"));
        assert!(!p.allows("evil.example:8123"));
        assert!(!p.allows("127.0.0.2:8123"));
        assert!(!p.allows(""));
        let v6 = HostPolicy::new(addr("[::1]:9000"));
        assert!(v6.allows("[::1]:9000"));
        assert!(v6.allows("localhost:9000"));
        assert!(!v6.allows("::1:9000"));
    }

    #[test]
    fn host_policy_on_remote_binds() {
        let p = HostPolicy::new(addr("192.0.2.7:8080"));
        assert!(p.allows("192.0.2.7:8080"));
        assert!(!p.allows("localhost:8080"));
        assert!(!p.allows("192.0.2.8:8080"));
        let any = HostPolicy::new(addr("0.0.0.0:8080"));
        assert!(any.allows("192.0.2.8:8080"));
        assert!(!any.allows("localhost:8080"));
        assert!(!any.allows("runner.example:8080"));
    }

    #[test]
    fn tokens_compare_and_never_print() {
        let s = Secrets::fixed("abc", "def");
        assert!(s.token_matches("abc"));
        assert!(!s.token_matches("abd"));
        assert!(!s.token_matches("ab"));
        assert!(!s.csrf_matches("abc"));
        assert_eq!(format!("{s:?}"), "Secrets { .. }");
        let Ok(g) = Secrets::generate() else {
            panic!("no random source")
        };
        assert_eq!(g.token().len(), 64);
        assert_ne!(g.token(), g.csrf());
    }

    #[test]
    fn query_token_is_taken_out() {
        assert_eq!(take_token("token=abc"), (Some("abc"), String::new()));
        assert_eq!(
            take_token("phase=approved&token=abc&tenant=acme"),
            (Some("abc"), "phase=approved&tenant=acme".to_owned())
        );
        assert_eq!(take_token("phase=x"), (None, "phase=x".to_owned()));
    }

    #[test]
    fn cookies_bearer_and_origin() {
        assert_eq!(
            cookie_value("a=1; synapsor_ui_80=tok; b=2", "synapsor_ui_80"),
            Some("tok")
        );
        assert_eq!(cookie_value("synapsor_ui_81=tok", "synapsor_ui_80"), None);
        assert_eq!(bearer("Bearer xyz"), Some("xyz"));
        assert_eq!(bearer("Basic xyz"), None);
        assert!(session_cookie(80, "t").contains("HttpOnly; SameSite=Strict"));
        assert!(same_origin("127.0.0.1:5", None, None));
        assert!(same_origin(
            "127.0.0.1:5",
            Some("http://127.0.0.1:5"),
            Some("same-origin")
        ));
        assert!(!same_origin("127.0.0.1:5", Some("http://evil.example"), None));
        assert!(!same_origin("127.0.0.1:5", None, Some("cross-site")));
        assert!(!same_origin("127.0.0.1:5", Some("null"), None));
    }
}
