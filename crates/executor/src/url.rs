//! Connection URLs: the user name they carry, and a redacted form that is safe to print.
//! (Log lines that may quote a URL go through `synapsor_source::redact`.)

/// `scheme://***@host:port/db` with the user info replaced and the query dropped (query
/// parameters can carry passwords). Paths of SQLite URLs are kept; anything unparsable becomes
/// `[redacted]`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        if url.starts_with("sqlite:") || url.starts_with('/') || url.starts_with('.') {
            return url.split('?').next().unwrap_or_default().to_owned();
        }
        return "[redacted]".to_owned();
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let host = match authority.rsplit_once('@') {
        Some((_, host)) => format!("***@{host}"),
        None => authority.to_owned(),
    };
    format!("{scheme}://{host}{path}")
}

/// `scheme://host:port/path` of an HTTP URL: without user info, query or fragment, so safe to
/// print and log (handler and webhook URLs may carry tokens in any of those).
pub fn shown_url(url: &reqwest::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// The (percent-decoded) user name of a `scheme://user[:password]@host/...` URL.
pub fn url_user(url: &str) -> Option<String> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let (userinfo, _) = authority.rsplit_once('@')?;
    let user = userinfo.split(':').next()?;
    if user.is_empty() {
        return None;
    }
    Some(percent_decode(user))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_credentials_or_query() {
        let u = reqwest::Url::parse("https://user:pw@handler.example:8443/apply?token=abc#frag").unwrap();
        assert_eq!(shown_url(&u), "https://handler.example:8443/apply");
    }

    #[test]
    fn redaction() {
        assert_eq!(
            redact_url("postgres://writer:s3cret@db.internal:5432/app?password=x&sslmode=require"),
            "postgres://***@db.internal:5432/app"
        );
        assert_eq!(redact_url("mysql://db:3306/app"), "mysql://db:3306/app");
        assert_eq!(redact_url("sqlite:///tmp/x.db?mode=rw"), "sqlite:///tmp/x.db");
        assert_eq!(redact_url("garbage with spaces"), "[redacted]");
    }

    #[test]
    fn users() {
        assert_eq!(url_user("postgres://app_writer:pw@h/db").as_deref(), Some("app_writer"));
        assert_eq!(url_user("mysql://we%40ird:pw@h/db").as_deref(), Some("we@ird"));
        assert_eq!(url_user("postgres://h/db"), None);
        assert_eq!(url_user("sqlite:///x.db"), None);
    }
}
