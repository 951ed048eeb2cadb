//! Calendar dates as the API writes them (`YYYY-MM-DD`), and what "today" is.

use jiff::civil::Date;

/// Why a string is not a date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{shown:?} is not a date: expected a real calendar day written YYYY-MM-DD, e.g. 2025-01-31"
)]
pub struct MalformedDate {
    shown: String,
}

/// Parses a strict `YYYY-MM-DD` date that exists on the calendar.
pub fn parse_date(text: &str) -> Result<Date, MalformedDate> {
    let malformed = || MalformedDate {
        shown: text.chars().take(40).collect(),
    };
    let bytes = text.as_bytes();
    let shaped = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(index, byte)| index == 4 || index == 7 || byte.is_ascii_digit());
    if !shaped {
        return Err(malformed());
    }
    text.parse::<Date>().map_err(|_| malformed())
}

/// Today in the server's time zone: the default `as_of` of every question.
pub fn today() -> Date {
    jiff::ZonedDateTime::now().date()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn only_real_days_written_in_full_are_dates() {
        assert_eq!(parse_date("2024-02-29").unwrap().to_string(), "2024-02-29");
        assert!(parse_date("2025-02-29").is_err());
        assert!(parse_date("2025-1-5").is_err());
    }

    proptest! {
        #[test]
        fn parsing_never_panics(text in "\\PC{0,16}") {
            let _ = parse_date(&text);
        }

        #[test]
        fn real_dates_round_trip(days in 0i32..80_000) {
            let date = Date::constant(1900, 1, 1).checked_add(jiff::Span::new().days(days)).unwrap();
            prop_assert_eq!(parse_date(&date.to_string()), Ok(date));
        }
    }

    #[test]
    fn impossible_and_loose_dates_are_refused() {
        for text in [
            "2025-13-01",
            "2025-02-30",
            "20250101",
            "2025-01-01T00:00",
            " 2025-01-01",
            "",
        ] {
            assert!(parse_date(text).is_err(), "{text}");
        }
    }
}
