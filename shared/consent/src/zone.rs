//! Time zones of the IANA database, as chrono time zones.
//!
//! The database is jiff's bundled copy: the compiled TZif files in one byte table, a zone
//! parsed the first time it is asked for. chrono-tz, used before, compiled every transition
//! of every zone into Rust tables holding about 29,000 pointers, which the loader relocates
//! at every cold start of a position-independent executable; this table holds about 800
//! (docs/decisions.md, "Cold starts of position-independent executables").

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use chrono::{FixedOffset, MappedLocalTime, NaiveDate, NaiveDateTime, TimeZone};
use jiff::tz::{AmbiguousOffset, Offset};

/// An IANA time zone (`America/New_York`), or a fixed offset (what chrono's
/// [`TimeZone::from_offset`] asks for).
#[derive(Clone)]
pub struct Zone {
    tz: jiff::tz::TimeZone,
}

/// A name the database does not know (names are matched exactly, as written there).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown time zone {0:?}")]
pub struct UnknownZone(pub String);

impl Zone {
    /// The zone of this exact IANA name (`America/New_York`; links such as `US/Eastern` too).
    pub fn named(name: &str) -> Result<Zone, UnknownZone> {
        match jiff::tz::TimeZone::get(name) {
            Ok(tz) if tz.iana_name() == Some(name) => Ok(Zone { tz }),
            _ => Err(UnknownZone(name.to_owned())),
        }
    }

    /// The IANA name; `None` for a fixed offset.
    pub fn name(&self) -> Option<&str> {
        self.tz.iana_name()
    }

    fn fixed(offset: FixedOffset) -> Zone {
        let offset = Offset::from_seconds(offset.local_minus_utc())
            .unwrap_or_else(|_| unreachable!("a chrono offset is less than a day"));
        Zone {
            tz: jiff::tz::TimeZone::fixed(offset),
        }
    }
}

fn chrono_offset(offset: Offset) -> FixedOffset {
    FixedOffset::east_opt(offset.seconds())
        .unwrap_or_else(|| unreachable!("a zone's offset is less than a day"))
}

fn civil(local: &NaiveDateTime) -> Option<jiff::civil::DateTime> {
    use chrono::{Datelike, Timelike};
    jiff::civil::DateTime::new(
        i16::try_from(local.year()).ok()?,
        local.month() as i8,
        local.day() as i8,
        local.hour() as i8,
        local.minute() as i8,
        local.second() as i8,
        local.nanosecond().min(999_999_999) as i32,
    )
    .ok()
}

impl TimeZone for Zone {
    type Offset = FixedOffset;

    fn from_offset(offset: &FixedOffset) -> Zone {
        Zone::fixed(*offset)
    }

    fn offset_from_local_date(&self, local: &NaiveDate) -> MappedLocalTime<FixedOffset> {
        self.offset_from_local_datetime(&local.and_time(chrono::NaiveTime::MIN))
    }

    /// One offset; two in the hour a fall-back repeats (earlier first); none in the hour
    /// a spring-forward skips.
    fn offset_from_local_datetime(&self, local: &NaiveDateTime) -> MappedLocalTime<FixedOffset> {
        let Some(civil) = civil(local) else {
            return MappedLocalTime::None;
        };
        match self.tz.to_ambiguous_timestamp(civil).offset() {
            AmbiguousOffset::Unambiguous { offset } => {
                MappedLocalTime::Single(chrono_offset(offset))
            }
            AmbiguousOffset::Gap { .. } => MappedLocalTime::None,
            AmbiguousOffset::Fold { before, after } => {
                MappedLocalTime::Ambiguous(chrono_offset(before), chrono_offset(after))
            }
        }
    }

    fn offset_from_utc_date(&self, utc: &NaiveDate) -> FixedOffset {
        self.offset_from_utc_datetime(&utc.and_time(chrono::NaiveTime::MIN))
    }

    fn offset_from_utc_datetime(&self, utc: &NaiveDateTime) -> FixedOffset {
        let utc = utc.and_utc();
        let at = jiff::Timestamp::new(utc.timestamp(), utc.timestamp_subsec_nanos() as i32)
            .unwrap_or(if utc.timestamp() < 0 {
                jiff::Timestamp::MIN
            } else {
                jiff::Timestamp::MAX
            });
        chrono_offset(self.tz.to_offset(at))
    }
}

impl FromStr for Zone {
    type Err = UnknownZone;

    fn from_str(name: &str) -> Result<Zone, UnknownZone> {
        Zone::named(name)
    }
}

impl PartialEq for Zone {
    fn eq(&self, other: &Zone) -> bool {
        match (self.name(), other.name()) {
            (Some(a), Some(b)) => a == b,
            (None, None) => {
                self.tz.to_offset(jiff::Timestamp::UNIX_EPOCH)
                    == other.tz.to_offset(jiff::Timestamp::UNIX_EPOCH)
            }
            _ => false,
        }
    }
}

impl Eq for Zone {}

impl Hash for Zone {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name().hash(state);
    }
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(
                f,
                "{}",
                chrono_offset(self.tz.to_offset(jiff::Timestamp::UNIX_EPOCH))
            ),
        }
    }
}

/// A zone is written as its IANA name (a fixed offset, which no record holds, as `+hh:mm`).
impl serde::Serialize for Zone {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A zone is read from its IANA name; an unknown name is an error.
impl<'de> serde::Deserialize<'de> for Zone {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Zone, D::Error> {
        let name = String::deserialize(deserializer)?;
        Zone::named(&name).map_err(serde::de::Error::custom)
    }
}

/// A record's optional zone (`#[serde(with = "crate::zone::optional")]`): written as its
/// name, and read leniently: a name the bundled database no longer knows reads as no zone
/// (the number's area code decides, as for a contact without one), so a stored record
/// never becomes unreadable over a zone. Names are checked when people give them.
pub mod optional {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Zone;

    pub fn serialize<S: Serializer>(zone: &Option<Zone>, serializer: S) -> Result<S::Ok, S::Error> {
        zone.serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Zone>, D::Error> {
        Ok(Option::<String>::deserialize(deserializer)?.and_then(|name| Zone::named(&name).ok()))
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone, Utc};

    use super::Zone;

    #[test]
    fn a_records_zone_is_written_as_its_name_and_an_unknown_name_reads_as_none() {
        #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
        struct Record {
            #[serde(
                default,
                with = "super::optional",
                skip_serializing_if = "Option::is_none"
            )]
            zone: Option<Zone>,
        }
        let chicago = Record {
            zone: Some(Zone::named("America/Chicago").unwrap()),
        };
        let json = serde_json::to_string(&chicago).unwrap();
        assert_eq!(json, r#"{"zone":"America/Chicago"}"#);
        assert_eq!(serde_json::from_str::<Record>(&json).unwrap(), chicago);
        // A name the database no longer knows: the record stays readable, without a zone.
        let gone: Record = serde_json::from_str(r#"{"zone":"Mars/Olympus"}"#).unwrap();
        assert_eq!(gone, Record { zone: None });
        assert_eq!(
            serde_json::from_str::<Record>("{}").unwrap(),
            Record { zone: None }
        );
        // A zone on its own is strict.
        assert!(serde_json::from_str::<Zone>(r#""Mars/Olympus""#).is_err());
    }

    fn at(y: i32, m: u32, d: u32, h: u32, mi: u32) -> chrono::NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, mi, 0)
            .unwrap()
    }

    #[test]
    fn names_are_the_databases_exactly() {
        assert_eq!(
            Zone::named("America/New_York").unwrap().name(),
            Some("America/New_York")
        );
        assert!(Zone::named("US/Eastern").is_ok(), "links are zones too");
        for bad in [
            "america/new_york",
            "Mars/Olympus",
            "",
            "EST5EDT,M3.2.0,M11.1.0",
        ] {
            assert!(Zone::named(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn offsets_follow_daylight_saving_time_both_ways() {
        let ny = Zone::named("America/New_York").unwrap();
        // Winter and summer.
        let winter = ny.from_utc_datetime(&at(2026, 1, 15, 17, 0));
        assert_eq!(winter.to_rfc3339(), "2026-01-15T12:00:00-05:00");
        let summer = ny.from_utc_datetime(&at(2026, 7, 15, 16, 0));
        assert_eq!(summer.to_rfc3339(), "2026-07-15T12:00:00-04:00");
        // 2:30 on 8 March 2026 never happens; 1:30 on 1 November 2026 happens twice.
        assert!(ny
            .from_local_datetime(&at(2026, 3, 8, 2, 30))
            .single()
            .is_none());
        let twice = ny.from_local_datetime(&at(2026, 11, 1, 1, 30));
        let (earlier, later) = (twice.earliest().unwrap(), twice.latest().unwrap());
        assert_eq!(earlier.to_rfc3339(), "2026-11-01T01:30:00-04:00");
        assert_eq!(later.to_rfc3339(), "2026-11-01T01:30:00-05:00");
        // Half-hour zones and zones without daylight saving time.
        let newfoundland = Zone::named("America/St_Johns").unwrap();
        assert_eq!(
            newfoundland
                .from_utc_datetime(&at(2026, 1, 15, 12, 0))
                .to_rfc3339(),
            "2026-01-15T08:30:00-03:30"
        );
        let phoenix = Zone::named("America/Phoenix").unwrap();
        assert_eq!(
            phoenix
                .from_utc_datetime(&at(2026, 7, 15, 19, 0))
                .to_rfc3339(),
            "2026-07-15T12:00:00-07:00"
        );
        let now = Utc::now();
        assert_eq!(now.with_timezone(&ny).with_timezone(&Utc), now);
    }
}
