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
///
/// ```
/// use cptd::calendar::parse_date;
///
/// assert_eq!(parse_date("2024-02-29").unwrap().to_string(), "2024-02-29");
/// assert!(parse_date("2025-02-29").is_err());
/// assert!(parse_date("2025-1-5").is_err());
/// ```
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

/// Appends `date` as `YYYY-MM-DD` to `text`, as its `Display` writes it.
/// Every recorded encounter's row is given its date this way, so the years
/// the API accepts (0 to 9999) are written digit by digit; any other goes
/// through `Display`.
///
/// ```
/// use cptd::calendar::push_date;
///
/// let mut text = String::from("on ");
/// push_date(&mut text, jiff::civil::date(2025, 3, 9));
/// assert_eq!(text, "on 2025-03-09");
/// ```
pub fn push_date(text: &mut String, date: Date) {
    let Ok(year) = u16::try_from(date.year()) else {
        text.push_str(&date.to_string());
        return;
    };
    if year > 9999 {
        text.push_str(&date.to_string());
        return;
    }
    let digit = |value: u16| char::from(b'0' + (value % 10) as u8);
    let [month, day] = [date.month(), date.day()].map(|part| part as u16);
    let written = [
        digit(year / 1000),
        digit(year / 100),
        digit(year / 10),
        digit(year),
        '-',
        digit(month / 10),
        digit(month),
        '-',
        digit(day / 10),
        digit(day),
    ];
    text.extend(written);
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
    fn the_first_and_last_years_of_four_digits_are_pushed_whole() {
        for date in [jiff::civil::date(0, 1, 1), jiff::civil::date(9999, 12, 31)] {
            let mut text = String::new();
            push_date(&mut text, date);
            assert_eq!(text, date.to_string());
        }
    }

    proptest! {
        #[test]
        fn a_date_is_pushed_as_display_writes_it(days in 0i64..7_304_850) {
            // From jiff's first date to its last, negative years included.
            let date = Date::MIN
                .checked_add(jiff::Span::new().days(days))
                .unwrap_or(Date::MAX);
            let mut text = String::new();
            push_date(&mut text, date);
            prop_assert_eq!(text, date.to_string());
        }

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
