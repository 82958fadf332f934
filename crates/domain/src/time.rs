//! Instants and the hybrid logical clock; the caller reads the wall clock, this module only
//! reasons about what it read.

use std::fmt;

/// An instant as milliseconds since the Unix epoch, UTC.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The instant `millis` milliseconds after the Unix epoch.
    pub const fn from_millis(millis: i64) -> Self {
        Timestamp(millis)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn millis(&self) -> i64 {
        self.0
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC (`2019-10-01T00:00:00Z`), with milliseconds only when there are any:
    /// how an instant is named in messages, never as raw epoch milliseconds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.rem_euclid(1000);
        let seconds = self.0.div_euclid(1000);
        let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
        let of_day = seconds.rem_euclid(86_400);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
            of_day / 3600,
            of_day % 3600 / 60,
            of_day % 60
        )?;
        if millis != 0 {
            write!(f, ".{millis:03}")?;
        }
        f.write_str("Z")
    }
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, exact for every `i64` day a `Timestamp` can hold): year, month, day.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t{}", self.0)
    }
}

/// A hybrid-logical-clock reading: wall-clock milliseconds plus a counter that orders events
/// within one millisecond and keeps time moving forward when the wall clock goes back.
///
/// Readings compare by wall time, then counter. Two terminals can produce equal readings;
/// callers that need a total order break ties with the terminal id and sequence.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hlc {
    wall_ms: i64,
    counter: u32,
}

impl Hlc {
    /// A reading from its parts (as stored or received).
    pub const fn new(wall_ms: i64, counter: u32) -> Self {
        Hlc { wall_ms, counter }
    }

    /// The wall-clock part, milliseconds since the Unix epoch.
    pub const fn wall_ms(&self) -> i64 {
        self.wall_ms
    }

    /// The logical counter.
    pub const fn counter(&self) -> u32 {
        self.counter
    }

    /// The next reading after `self` given the wall clock `now`: never earlier than `self`,
    /// whatever the wall clock says.
    #[must_use]
    pub fn tick(self, now: Timestamp) -> Hlc {
        if now.millis() > self.wall_ms {
            Hlc {
                wall_ms: now.millis(),
                counter: 0,
            }
        } else {
            self.bump()
        }
    }

    /// The next reading after both `self` and a reading received from elsewhere.
    #[must_use]
    pub fn receive(self, remote: Hlc, now: Timestamp) -> Hlc {
        let latest = self.max(remote);
        latest.tick(now)
    }

    fn bump(self) -> Hlc {
        match self.counter.checked_add(1) {
            Some(counter) => Hlc {
                wall_ms: self.wall_ms,
                counter,
            },
            // Four billion events in one millisecond cannot happen; if it ever did, moving the
            // wall part forward still keeps the clock monotonic.
            None => Hlc {
                wall_ms: self.wall_ms.saturating_add(1),
                counter: 0,
            },
        }
    }

    /// The reading as a timestamp (its wall part).
    pub const fn timestamp(&self) -> Timestamp {
        Timestamp(self.wall_ms)
    }
}

impl fmt::Debug for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.wall_ms, self.counter)
    }
}

impl fmt::Display for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.wall_ms, self.counter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_are_shown_as_rfc_3339_utc() {
        let t = |ms| Timestamp::from_millis(ms).to_string();
        assert_eq!(t(0), "1970-01-01T00:00:00Z");
        assert_eq!(t(1_561_939_200_000), "2019-07-01T00:00:00Z");
        assert_eq!(t(1_709_251_199_999), "2024-02-29T23:59:59.999Z");
        assert_eq!(t(-5), "1969-12-31T23:59:59.995Z");
        assert_eq!(t(-62_135_596_800_000), "0001-01-01T00:00:00Z");
        // The earliest instant there is still has a date.
        assert!(t(i64::MIN).ends_with('Z'));
    }
    use proptest::prelude::*;

    #[test]
    fn tick_follows_the_wall_clock_forward() {
        let h = Hlc::new(1000, 5).tick(Timestamp::from_millis(2000));
        assert_eq!(h, Hlc::new(2000, 0));
    }

    #[test]
    fn tick_never_goes_back_when_the_wall_clock_does() {
        let h = Hlc::new(5000, 2).tick(Timestamp::from_millis(1000));
        assert_eq!(h, Hlc::new(5000, 3));
        let h = Hlc::new(5000, u32::MAX).tick(Timestamp::from_millis(1000));
        assert_eq!(h, Hlc::new(5001, 0));
    }

    #[test]
    fn receive_moves_past_the_remote_reading() {
        let h = Hlc::new(1000, 0).receive(Hlc::new(3000, 7), Timestamp::from_millis(2000));
        assert_eq!(h, Hlc::new(3000, 8));
    }

    proptest! {
        #[test]
        fn readings_strictly_increase(clock in proptest::collection::vec(-10_000_i64..10_000, 1..200)) {
            let mut h = Hlc::default();
            for now in clock {
                let next = h.tick(Timestamp::from_millis(now));
                prop_assert!(next > h);
                h = next;
            }
        }
    }
}
