//! Dates for people: UTC timestamps and "expires in N days", without a date library.

/// `2025-03-01 12:00:00 UTC` for a Unix timestamp.
pub fn format_utc(timestamp: i64) -> String {
    let days = timestamp.div_euclid(86_400);
    let seconds = timestamp.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// Where `now` stands in a validity period, in words.
pub fn validity_status(not_before: i64, not_after: i64, now: i64) -> String {
    if now < not_before {
        return format!("not valid yet, starts {}", in_days(not_before - now));
    }
    if now > not_after {
        let days = (now - not_after) / 86_400;
        return match days {
            0 => "expired today".to_string(),
            1 => "expired 1 day ago".to_string(),
            n => format!("expired {n} days ago"),
        };
    }
    format!("expires {}", in_days(not_after - now))
}

fn in_days(seconds: i64) -> String {
    match seconds / 86_400 {
        0 => "in less than a day".to_string(),
        1 => "in 1 day".to_string(),
        n => format!("in {n} days"),
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_dates() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_utc(1_735_689_599), "2024-12-31 23:59:59 UTC");
        assert_eq!(format_utc(4_102_444_800), "2100-01-01 00:00:00 UTC");
        assert_eq!(format_utc(-1), "1969-12-31 23:59:59 UTC");
    }

    #[test]
    fn validity_in_words() {
        let day = 86_400;
        assert_eq!(
            validity_status(0, 100 * day, 10 * day),
            "expires in 90 days"
        );
        assert_eq!(validity_status(0, 100 * day, 99 * day), "expires in 1 day");
        assert_eq!(
            validity_status(0, 100 * day, 100 * day - 5),
            "expires in less than a day"
        );
        assert_eq!(
            validity_status(0, 100 * day, 130 * day),
            "expired 30 days ago"
        );
        assert_eq!(
            validity_status(0, 100 * day, 101 * day),
            "expired 1 day ago"
        );
        assert_eq!(
            validity_status(0, 100 * day, 100 * day + 5),
            "expired today"
        );
        assert_eq!(
            validity_status(10 * day, 100 * day, 0),
            "not valid yet, starts in 10 days"
        );
    }
}
