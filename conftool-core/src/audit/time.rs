//! UTC time stamps for audit lines and ids, without a date library.

use std::time::{SystemTime, UNIX_EPOCH};

/// Format a time as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, day) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Format a time as `YYYYMMDD-HHMMSS` (UTC): the stamp in operation and event ids.
pub fn utc_compact(t: SystemTime) -> String {
    let digits: String = rfc3339(t)
        .chars()
        .filter(char::is_ascii_digit)
        .take(14)
        .collect();
    let cut = 8.min(digits.len());
    format!("{}-{}", &digits[..cut], &digits[cut..])
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's method).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn compact_stamps_are_the_utc_date_and_time_of_ids() {
        let t = UNIX_EPOCH + Duration::from_millis(1_796_409_743_250);
        assert_eq!(rfc3339(t), "2026-12-04T18:42:23.250Z");
        assert_eq!(utc_compact(t), "20261204-184223");
        assert_eq!(utc_compact(UNIX_EPOCH), "19700101-000000");
    }

    #[test]
    fn formats_utc_times() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_593_600_123); // 2026-11-25T08:00:00.123Z
        assert_eq!(rfc3339(t), "2026-11-25T08:00:00.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(&rfc3339(leap)[..10], "2000-02-29");
    }
}
