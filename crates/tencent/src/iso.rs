//! ISO 8601 times as Tencent Cloud API 3.0 writes them (`2019-02-25T16:04:25Z`) and reads them
//! (`Z` or a `±HH:MM` offset, e.g. `2018-10-01T10:00:00+08:00`). Whole seconds; a fraction
//! is accepted and dropped.

use crate::cst::{civil_from_days, days_from_civil};

const DAY_S: i64 = 86_400;
/// VOD's "never expires" (`StorageTime` 0).
pub const NEVER: &str = "9999-12-31T23:59:59Z";

/// `YYYY-MM-DDTHH:MM:SSZ` of a Unix time.
pub fn format_utc(unix_s: i64) -> String {
    let (y, m, d) = civil_from_days(unix_s.div_euclid(DAY_S));
    let s = unix_s.rem_euclid(DAY_S);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

fn num(s: &str) -> Option<i64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// Unix seconds of an ISO 8601 date-time with a `Z` or `±HH:MM` zone; `None` if malformed.
pub fn parse(s: &str) -> Option<i64> {
    let (date, rest) = s.split_once('T')?;
    let mut ymd = date.split('-');
    let (y, m, d) = (num(ymd.next()?)?, num(ymd.next()?)?, num(ymd.next()?)?);
    if ymd.next().is_some() || !(1970..=9999).contains(&y) || !(1..=12).contains(&m) {
        return None;
    }
    let max_day = days_from_civil(y + i64::from(m == 12), m % 12 + 1, 1) - days_from_civil(y, m, 1);
    if !(1..=max_day).contains(&d) {
        return None;
    }
    let (time, offset_s) = if let Some(t) = rest.strip_suffix('Z') {
        (t, 0)
    } else {
        let i = rest.rfind(['+', '-'])?;
        let (t, z) = rest.split_at(i);
        let (zh, zm) = z[1..].split_once(':')?;
        let (zh, zm) = (num(zh)?, num(zm)?);
        if zh > 14 || zm > 59 {
            return None;
        }
        let off = zh * 3600 + zm * 60;
        (t, if z.starts_with('-') { -off } else { off })
    };
    let time = time
        .split_once('.')
        .map_or(time, |(t, frac)| if num(frac).is_some() { t } else { "" });
    let mut hms = time.split(':');
    let (h, mi, se) = (num(hms.next()?)?, num(hms.next()?)?, num(hms.next()?)?);
    if hms.next().is_some() || h > 23 || mi > 59 || se > 59 {
        return None;
    }
    Some(days_from_civil(y, m, d) * DAY_S + h * 3600 + mi * 60 + se - offset_s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known() {
        assert_eq!(format_utc(1_551_113_065), "2019-02-25T16:44:25Z");
        assert_eq!(parse("2019-02-25T16:44:25Z"), Some(1_551_113_065));
        assert_eq!(parse("2019-02-26T00:44:25+08:00"), Some(1_551_113_065));
        assert_eq!(parse("2019-02-25T11:44:25.500-05:00"), Some(1_551_113_065));
        assert_eq!(parse(NEVER), Some(253_402_300_799));
        for bad in [
            "",
            "2019-02-25",
            "2019-02-25 16:44:25",
            "2019-02-29T00:00:00Z",
            "2019-13-01T00:00:00Z",
            "2019-02-25T24:00:00Z",
            "2019-02-25T16:44:25",
            "2019-02-25T16:44:25+8",
            "2019-02-25T16:44:25.x1Z",
            "+019-02-25T16:44:25Z",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn round_trip(t in 0i64..253_402_300_800) {
            prop_assert_eq!(parse(&format_utc(t)), Some(t));
        }

        #[test]
        fn garbage_never_panics(s in ".{0,40}") {
            let _ = parse(&s);
        }
    }
}
