//! Time: a `Clock` port (so lifecycle rules can be tested at any instant) and the one text form
//! of a timestamp Latch writes (RFC 3339, UTC, to the second).

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Where "now" comes from.
pub trait Clock: Send + Sync {
    /// The current time in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that says what it is told (tests).
#[derive(Debug)]
pub struct FixedClock(std::sync::Mutex<OffsetDateTime>);

impl FixedClock {
    /// A clock stopped at `at`.
    pub fn at(at: OffsetDateTime) -> Self {
        Self(std::sync::Mutex::new(at))
    }

    /// Moves it.
    pub fn set(&self, at: OffsetDateTime) {
        if let Ok(mut now) = self.0.lock() {
            *now = at;
        }
    }
}

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        self.0
            .lock()
            .map(|t| *t)
            .unwrap_or_else(|_| OffsetDateTime::now_utc())
    }
}

/// The system's "now" (for code without a clock at hand: faces, reports).
pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// RFC 3339 in UTC to the second: the form Latch writes everywhere.
pub fn fmt_time(t: OffsetDateTime) -> String {
    latch_store::format_time(t)
}

/// Parses RFC 3339 text (`None` for absent or malformed text).
pub fn parse_time(text: Option<&str>) -> Option<OffsetDateTime> {
    text.and_then(|t| OffsetDateTime::parse(t.trim(), &Rfc3339).ok())
}

/// The current time as RFC 3339 UTC, to the second.
pub fn now_rfc3339() -> String {
    fmt_time(now())
}

/// Parses a calendar date (`2027-03-01`) or an RFC 3339 time, as people type expiries.
pub fn parse_date_or_time(text: &str) -> Option<OffsetDateTime> {
    let text = text.trim();
    if let Some(t) = parse_time(Some(text)) {
        return Some(t);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, &format)
        .ok()
        .map(|d| d.with_hms(0, 0, 0).map_or(d.midnight(), |t| t).assume_utc())
}

/// Serde for a timestamp in Latch's one form (RFC 3339, UTC, to the second): what SQLite
/// stores and every JSON answer shows. `#[serde(with = "crate::clock::stamp")]`.
pub mod stamp {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;

    /// Writes the one form.
    pub fn serialize<S: Serializer>(at: &OffsetDateTime, out: S) -> Result<S::Ok, S::Error> {
        out.serialize_str(&super::fmt_time(*at))
    }

    /// Reads RFC 3339.
    pub fn deserialize<'de, D: Deserializer<'de>>(input: D) -> Result<OffsetDateTime, D::Error> {
        let text = String::deserialize(input)?;
        super::parse_time(Some(&text))
            .ok_or_else(|| serde::de::Error::custom(format!("`{text}` is not an RFC 3339 time")))
    }

    /// The same for an optional timestamp (`null` when absent).
    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};
        use time::OffsetDateTime;

        /// Writes the one form, or `null`.
        pub fn serialize<S: Serializer>(
            at: &Option<OffsetDateTime>,
            out: S,
        ) -> Result<S::Ok, S::Error> {
            match at {
                Some(at) => out.serialize_str(&super::super::fmt_time(*at)),
                None => out.serialize_none(),
            }
        }

        /// Reads RFC 3339 or `null`.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            input: D,
        ) -> Result<Option<OffsetDateTime>, D::Error> {
            Option::<String>::deserialize(input)?
                .map(|text| {
                    super::super::parse_time(Some(&text)).ok_or_else(|| {
                        serde::de::Error::custom(format!("`{text}` is not an RFC 3339 time"))
                    })
                })
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_in_one_form() {
        let t = parse_time(Some("2026-01-01T10:00:00+02:00")).unwrap();
        assert_eq!(fmt_time(t), "2026-01-01T08:00:00Z");
        assert_eq!(parse_time(Some("garbage")), None);
        assert_eq!(
            fmt_time(parse_date_or_time("2027-03-01").unwrap()),
            "2027-03-01T00:00:00Z"
        );
        assert!(parse_date_or_time("next year").is_none());
        let clock = FixedClock::at(t);
        assert_eq!(clock.now(), t);
    }
}
