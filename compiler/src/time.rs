//! Time for manifests: `SOURCE_DATE_EPOCH`, expiry parsing and printing.
//!
//! Bundles are reproducible: the creation time is taken only from `SOURCE_DATE_EPOCH` (and
//! omitted when it is unset), never from the clock. Expiry accepts an absolute date or a
//! duration; a duration counts from `SOURCE_DATE_EPOCH` when set, else from now.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `SOURCE_DATE_EPOCH`, if set. A set but malformed value is an error rather than ignored.
pub fn source_date_epoch() -> anyhow::Result<Option<u64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => v.trim().parse::<u64>().map(Some).map_err(|_| {
            anyhow::anyhow!("SOURCE_DATE_EPOCH must be whole seconds since 1970, got `{v}`")
        }),
        Err(_) => Ok(None),
    }
}

/// Parses `--expires`: `2027-01-31`, `2027-01-31T12:00:00Z`, `@1800000000` (unix seconds), or a
/// duration `90d`, `12h`, `30m`, `45s` counted from `base`.
pub fn parse_expiry(text: &str, base: u64) -> anyhow::Result<u64> {
    let t = text.trim();
    let bad = || {
        anyhow::anyhow!(
            "invalid --expires `{text}`: use a date (2027-01-31 or 2027-01-31T12:00:00Z), \
             @UNIX_SECONDS, or a duration such as 90d, 12h, 30m"
        )
    };
    if let Some(secs) = t.strip_prefix('@') {
        return secs.parse().map_err(|_| bad());
    }
    if let Some(unit) = t.chars().last().filter(|c| "dhms".contains(*c))
        && let Ok(n) = t[..t.len() - 1].parse::<u64>()
    {
        let scale = match unit {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            _ => 1,
        };
        return n
            .checked_mul(scale)
            .and_then(|d| base.checked_add(d))
            .ok_or_else(bad);
    }
    parse_date(t).ok_or_else(bad)
}

fn parse_date(t: &str) -> Option<u64> {
    let (date, time) = match t.split_once('T') {
        Some((d, rest)) => (d, Some(rest.strip_suffix('Z')?)),
        None => (t, None),
    };
    let mut d = date.split('-');
    let (y, m, day) = (
        d.next()?.parse::<i64>().ok()?,
        d.next()?.parse::<u32>().ok()?,
        d.next()?.parse::<u32>().ok()?,
    );
    if d.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&day) || y < 1970 {
        return None;
    }
    let (mut hh, mut mm, mut ss) = (0, 0, 0);
    if let Some(time) = time {
        let mut p = time.split(':');
        (hh, mm, ss) = (
            p.next()?.parse().ok()?,
            p.next()?.parse().ok()?,
            p.next()?.parse().ok()?,
        );
        if p.next().is_some() || hh > 23 || mm > 59 || ss > 60 {
            return None;
        }
    }
    let days = days_from_civil(y, m, day);
    u64::try_from(days * 86_400 + hh * 3_600 + mm * 60 + ss).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2027-01-31T12:00:00Z` for unix seconds.
pub fn format_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Parses a duration such as `500ms`, `10s`, `2m` or `1.5` (seconds) for `--timeout`.
pub fn parse_duration(text: &str) -> anyhow::Result<std::time::Duration> {
    let t = text.trim();
    let bad = || anyhow::anyhow!("invalid --timeout `{text}`: use e.g. 500ms, 10s, 2m");
    let (number, scale_ms) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1e3)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60e3)
    } else {
        (t, 1e3)
    };
    let value: f64 = number.trim().parse().map_err(|_| bad())?;
    if !value.is_finite() || value <= 0.0 || value * scale_ms > 1e10 {
        return Err(bad());
    }
    Ok(std::time::Duration::from_secs_f64(value * scale_ms / 1e3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dates_durations_and_unix_seconds() {
        assert_eq!(parse_expiry("1970-01-02", 0).unwrap(), 86_400);
        assert_eq!(
            parse_expiry("2027-01-31T12:00:00Z", 0).unwrap(),
            1_801_396_800
        );
        assert_eq!(parse_expiry("@42", 0).unwrap(), 42);
        assert_eq!(parse_expiry("2d", 100).unwrap(), 100 + 2 * 86_400);
        assert_eq!(parse_expiry("30m", 0).unwrap(), 1_800);
        for bad in [
            "tomorrow",
            "2027-13-01",
            "2027-01-01T25:00:00Z",
            "-5d",
            "",
            "@x",
        ] {
            assert!(parse_expiry(bad, 0).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn formats_round_trip() {
        for secs in [0, 86_399, 951_782_400, 1_801_396_800, 4_102_444_800] {
            let text = format_utc(secs);
            assert_eq!(parse_expiry(&text, 0).unwrap(), secs, "{text}");
        }
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00Z");
    }
}
