//! Re-checking the guards against the handler's own data, just before the write.
//!
//! The runner checked these when it built the proposal, but the row may have moved since, and
//! the handler should trust its own database over any request. Call them inside the write's
//! transaction, after locking the row (`SELECT ... FOR UPDATE` by primary key *and* tenant).

use serde_json::{Number, Value};

use crate::error::GuardError;
use crate::wire::HandlerRequest;

/// The `expected_version.column` of a request made under a weak row-hash guard.
pub const ROW_HASH_COLUMN: &str = "__row_hash";

/// The row must belong to the request's tenant. `current_tenant_value` is the row's tenant
/// column as your database returned it (`Value::Null` when there is no row). Strings compare
/// exactly; numbers by their decimal form. Single-tenant requests (`tenant.column` null) pass.
///
/// A mismatch is [`GuardError::RowNotFound`], the same as a missing row, so the answer does
/// not reveal that the id exists in another tenant.
pub fn check_tenant(req: &HandlerRequest, current_tenant_value: &Value) -> Result<(), GuardError> {
    if req.tenant.column.is_none() {
        return Ok(());
    }
    let same = match current_tenant_value {
        Value::String(s) => *s == req.tenant.value,
        Value::Number(n) => n.to_string() == req.tenant.value,
        _ => false,
    };
    if same { Ok(()) } else { Err(GuardError::RowNotFound) }
}

/// The row's version column must still hold `expected_version.value`, compared after
/// [`normalize_version`] (so `2026-06-23 09:00:00+00` and `2026-06-23T09:00:00.000000Z` are the
/// same instant).
pub fn check_version(req: &HandlerRequest, current_version_value: &Value) -> Result<(), GuardError> {
    if req.expected_version.column == ROW_HASH_COLUMN {
        return Err(GuardError::VersionGuardUnsupported);
    }
    if current_version_value.is_null() {
        return Err(GuardError::RowNotFound);
    }
    if versions_equal(&req.expected_version.value, current_version_value) {
        Ok(())
    } else {
        Err(GuardError::VersionConflict {
            expected: short(&normalize_version(&req.expected_version.value)),
            found: short(&normalize_version(current_version_value)),
        })
    }
}

fn short(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    s.chars().take(64).collect()
}

/// The patch must be non-empty, name only `allowed_columns`, and never the primary-key or
/// tenant column.
pub fn check_patch_allowed(req: &HandlerRequest) -> Result<(), GuardError> {
    if req.patch.is_empty() {
        return Err(GuardError::EmptyPatch);
    }
    for col in req.patch.keys() {
        let never = *col == req.target.primary_key.column || req.tenant.column.as_deref() == Some(col.as_str());
        if never || !req.allowed_columns.iter().any(|a| a == col) {
            return Err(GuardError::PatchColumnNotAllowed(col.clone()));
        }
    }
    Ok(())
}

/// [`check_patch_allowed`], and also every patch column must be in `app_columns`: the columns
/// *your* code lets this action change. The request's `allowed_columns` come from the runner's
/// config; this list is the app's own policy, and the one to trust.
pub fn check_patch_within(req: &HandlerRequest, app_columns: &[&str]) -> Result<(), GuardError> {
    check_patch_allowed(req)?;
    match req.patch.keys().find(|c| !app_columns.contains(&c.as_str())) {
        Some(col) => Err(GuardError::PatchColumnNotAllowed(col.clone())),
        None => Ok(()),
    }
}

/// Whether two version values are the same after [`normalize_version`].
pub fn versions_equal(a: &Value, b: &Value) -> bool {
    normalize_version(a) == normalize_version(b)
}

/// The comparable form of a version value, the same rules the runner uses:
///
/// - a string that is a date-time (`YYYY-MM-DD`, `T` or space, `HH:MM:SS`, optional fraction of
///   up to 9 digits, optional `Z` / `±HH` / `±HHMM` / `±HH:MM`; no offset means UTC) becomes
///   `YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC with microseconds (digits past the sixth dropped);
/// - an integral number (`5`, `5.0`) and a canonical integer string (`"5"`, not `"05"`) become
///   the integer;
/// - anything else is compared as is.
pub fn normalize_version(v: &Value) -> Value {
    match v {
        Value::String(s) => {
            if let Some(ts) = normalize_timestamp(s) {
                return Value::String(ts);
            }
            if is_canonical_integer(s) {
                if let Ok(i) = s.parse::<i64>() {
                    return Value::Number(i.into());
                }
                if let Ok(u) = s.parse::<u64>() {
                    return Value::Number(u.into());
                }
            }
            v.clone()
        }
        Value::Number(n) => Value::Number(normalize_number(n)),
        other => other.clone(),
    }
}

fn is_canonical_integer(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && s != "-0"
}

fn normalize_number(n: &Number) -> Number {
    if n.is_i64() || n.is_u64() {
        return n.clone();
    }
    match n.as_f64() {
        // Exactly representable integers only (|f| < 2^53).
        Some(f) if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 => Number::from(f as i64),
        _ => n.clone(),
    }
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ` (UTC, microseconds) for a date-time string, else `None`.
pub fn normalize_timestamp(s: &str) -> Option<String> {
    format_micros(timestamp_micros(s)?)
}

/// Unix microseconds as `YYYY-MM-DDTHH:MM:SS.ffffffZ`, the normalized form; handy for writing a
/// new version value (`format_timestamp_micros(now)`). Years outside 0000-9999 give the epoch.
pub fn format_timestamp_micros(unix_micros: i64) -> String {
    format_micros(unix_micros).unwrap_or_else(|| "1970-01-01T00:00:00.000000Z".to_owned())
}

fn format_micros(micros: i64) -> Option<String> {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    if !(0..=9999).contains(&y) {
        return None;
    }
    Some(format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:06}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    ))
}

/// Unix microseconds of a date-time string (see [`normalize_version`] for the accepted forms).
fn timestamp_micros(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || se > 59 {
        return None;
    }
    let mut i = 19;
    let mut micros = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let frac = &s[start..i];
        if frac.is_empty() || frac.len() > 9 {
            return None;
        }
        let six: String = frac.chars().chain(std::iter::repeat('0')).take(6).collect();
        micros = six.parse().ok()?;
    }
    let offset_min = parse_offset(&s[i..])?;
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + se - offset_min * 60;
    Some(secs * 1_000_000 + micros)
}

/// Minutes east of UTC: `""` (none, UTC), `Z`, `±HH`, `±HHMM`, `±HH:MM`.
fn parse_offset(tz: &str) -> Option<i64> {
    if tz.is_empty() || tz == "Z" || tz == "z" {
        return Some(0);
    }
    let sign = match tz.as_bytes()[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let rest = &tz[1..];
    let (hh, mm) = match rest.len() {
        2 => (rest, "00"),
        4 => (&rest[..2], &rest[2..]),
        5 if rest.as_bytes()[2] == b':' => (&rest[..2], &rest[3..]),
        _ => return None,
    };
    if !hh.bytes().chain(mm.bytes()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (hh, mm): (i64, i64) = (hh.parse().ok()?, mm.parse().ok()?);
    if hh > 23 || mm > 59 {
        return None;
    }
    Some(sign * (hh * 60 + mm))
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's civil-date algorithms (public domain).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps_normalize_to_utc_micros() {
        let same = [
            "2026-06-23T09:00:00Z",
            "2026-06-23 09:00:00",
            "2026-06-23T09:00:00.000000Z",
            "2026-06-23T09:00:00.000000000+00:00",
            "2026-06-23T11:00:00+02:00",
            "2026-06-23T11:00:00+0200",
            "2026-06-23T04:00:00-05",
        ];
        for s in same {
            assert_eq!(
                normalize_timestamp(s).as_deref(),
                Some("2026-06-23T09:00:00.000000Z"),
                "{s}"
            );
        }
        assert_eq!(
            normalize_timestamp("2026-06-23T09:00:00.1234567Z").as_deref(),
            Some("2026-06-23T09:00:00.123456Z")
        );
        assert_eq!(
            normalize_timestamp("2026-01-01T00:30:00+01:00").as_deref(),
            Some("2025-12-31T23:30:00.000000Z")
        );
        for bad in [
            "2026-02-30T00:00:00Z",
            "2026-06-23",
            "2026-06-23T25:00:00Z",
            "2026-06-23T09:00:00.Z",
            "2026-06-23T09:00:00+2",
            "not a date at all!!",
        ] {
            assert_eq!(normalize_timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn numbers_and_strings() {
        assert!(versions_equal(&json!(7), &json!("7")));
        assert!(versions_equal(&json!(7.0), &json!(7)));
        assert!(!versions_equal(&json!("07"), &json!(7)));
        assert!(!versions_equal(&json!("v7"), &json!("v8")));
        assert!(versions_equal(&json!("abc"), &json!("abc")));
        assert!(!versions_equal(&json!(true), &json!("true")));
    }
}
