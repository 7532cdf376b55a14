//! China Standard Time (UTC+8, no DST) `YYYY-MM-DD HH:MM:SS`, as used by the legacy APIs.
//!
//! Civil-date conversion uses Howard Hinnant's `days_from_civil`/`civil_from_days`, which is
//! exact for the proleptic Gregorian calendar; no date crate needed for one fixed offset.

/// CST offset from UTC in seconds.
pub const CST_OFFSET_S: i64 = 8 * 3600;
const DAY_S: i64 = 86_400;
/// Accepted year range for parsing; keeps arithmetic far from overflow.
const MIN_YEAR: i64 = 1970;
const MAX_YEAR: i64 = 9999;

/// Days since 1970-01-01 for a proleptic Gregorian date.
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) for days since 1970-01-01.
pub(crate) fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// CST calendar day number (days since 1970-01-01 CST) of a Unix time.
pub fn cst_day(unix_s: i64) -> i64 {
    unix_s.saturating_add(CST_OFFSET_S).div_euclid(DAY_S)
}

/// Format Unix seconds as `YYYY-MM-DD HH:MM:SS` in CST.
pub fn format_cst(unix_s: i64) -> String {
    let local = unix_s.saturating_add(CST_OFFSET_S);
    let (y, m, d) = civil_from_days(local.div_euclid(DAY_S));
    let sod = local.rem_euclid(DAY_S);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// Parse `YYYY-MM-DD HH:MM:SS` (CST) into Unix seconds. The separator may be a space, `+`
/// (form-encoded space left undecoded) or `T`. `None` on any malformed or out-of-range field.
pub fn parse_cst(s: &str) -> Option<i64> {
    let b = s.trim().as_bytes();
    if b.len() != 19 {
        return None;
    }
    let num = |from: usize, len: usize| -> Option<i64> {
        let digits = b.get(from..from + len)?;
        digits.iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    let sep_ok = b.get(4) == Some(&b'-')
        && b.get(7) == Some(&b'-')
        && matches!(b.get(10), Some(b' ' | b'+' | b'T'))
        && b.get(13) == Some(&b':')
        && b.get(16) == Some(&b':');
    if !sep_ok {
        return None;
    }
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (h, mi, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(MIN_YEAR..=MAX_YEAR).contains(&y)
        || !(1..=12).contains(&mo)
        || d < 1
        || d > days_in_month(y, mo)
        || h > 23
        || mi > 59
        || sec > 59
    {
        return None;
    }
    Some(days_from_civil(y, mo, d) * DAY_S + h * 3600 + mi * 60 + sec - CST_OFFSET_S)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Expected strings computed with Python's datetime (UTC+8).
    const KNOWN: &[(i64, &str)] = &[
        (1_471_850_187, "2016-08-22 15:16:27"),
        (0, "1970-01-01 08:00:00"),
        (-1, "1970-01-01 07:59:59"),
        (951_782_400, "2000-02-29 08:00:00"),
        (4_102_444_799, "2100-01-01 07:59:59"),
        (1_481_299_200, "2016-12-10 00:00:00"),
        (1_709_222_399, "2024-02-29 23:59:59"),
    ];

    #[test]
    fn known_timestamps() {
        for &(t, s) in KNOWN {
            assert_eq!(format_cst(t), s, "{t}");
            if t >= 0 {
                assert_eq!(parse_cst(s), Some(t), "{s}");
            }
        }
        assert_eq!(parse_cst("2016-08-22+15:16:27"), Some(1_471_850_187));
        assert_eq!(parse_cst("2016-08-22T15:16:27"), Some(1_471_850_187));
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "2016-08-22",
            "2016-08-22 15:16:2",
            "2016-13-01 00:00:00",
            "2016-00-01 00:00:00",
            "2015-02-29 00:00:00",
            "2016-04-31 00:00:00",
            "2016-08-22 24:00:00",
            "2016-08-22 23:60:00",
            "2016-08-22 23:00:60",
            "2016/08/22 15:16:27",
            "2016-08-22_15:16:27",
            "+016-08-22 15:16:27",
            "2016-08-22 15:16:2é",
        ] {
            assert_eq!(parse_cst(s), None, "{s}");
        }
        assert!(parse_cst("2000-02-29 00:00:00").is_some());
    }

    #[test]
    fn cst_day_boundary() {
        // 2016-12-10 00:00:00 CST starts a new CST day; one second earlier is the previous day.
        assert_eq!(cst_day(1_481_299_200), cst_day(1_481_299_200 - 1) + 1);
    }

    proptest! {
        #[test]
        fn roundtrip(t in 0i64..253_402_271_999) {
            prop_assert_eq!(parse_cst(&format_cst(t)), Some(t));
        }

        #[test]
        fn garbage_never_panics(s in ".{0,25}") {
            let _ = parse_cst(&s);
        }

        #[test]
        fn format_never_panics(t in any::<i64>()) {
            let _ = format_cst(t);
        }
    }
}
