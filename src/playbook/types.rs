//! Small validated value types used by the playbook model.
//!
//! Each parses itself during deserialisation, so a bad value is reported with the
//! YAML path of the field that holds it.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// An AWS region name such as `us-east-1`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Region(String);

/// The regions AWS has (commercial, GovCloud, China, the European Sovereign Cloud),
/// as of this evac's release. A region opened since is accepted when named in
/// `EVAC_EXTRA_REGIONS` (comma-separated).
pub const KNOWN_REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "cn-north-1",
    "cn-northwest-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eusc-de-east-1",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-gov-east-1",
    "us-gov-west-1",
    "us-west-1",
    "us-west-2",
];

/// Whether `name` is a region AWS has, or one `EVAC_EXTRA_REGIONS` names.
fn is_known_region(name: &str) -> bool {
    KNOWN_REGIONS.contains(&name)
        || std::env::var("EVAC_EXTRA_REGIONS")
            .is_ok_and(|extra| extra.split(',').any(|r| r.trim() == name))
}

impl Region {
    /// Parses a region name, rejecting anything not shaped like `us-east-1`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split('-').collect();
        let shaped = parts.len() >= 3
            && parts[0].len() == 2
            && parts[0].chars().all(|c| c.is_ascii_lowercase())
            && parts[1..parts.len() - 1]
                .iter()
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
            && parts
                .last()
                .is_some_and(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
        if !shaped {
            return Err(format!(
                "invalid region name `{text}`: expected a name like `us-east-1`"
            ));
        }
        if !is_known_region(text) {
            let close = KNOWN_REGIONS
                .iter()
                .map(|r| (strsim::jaro_winkler(text, r), *r))
                .filter(|(score, _)| *score >= 0.85)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, r)| format!(" (did you mean `{r}`?)"))
                .unwrap_or_default();
            return Err(format!(
                "unknown region `{text}`: AWS has no region by that name{close}; if AWS has opened it since this evac was built, set EVAC_EXTRA_REGIONS={text}"
            ));
        }
        Ok(Self(text.to_owned()))
    }

    /// The region name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `us-east-1` -> `use1`: the short form AWS uses in zone ids and people use in
    /// set identifiers (`api-use1`).
    pub fn short(&self) -> String {
        let parts: Vec<&str> = self.as_str().split('-').collect();
        let mut out = String::new();
        for (i, part) in parts.iter().enumerate() {
            if i == 0 || i == parts.len() - 1 {
                out.push_str(part);
            } else {
                // Compass points keep two letters (southeast -> se), as AWS abbreviates them.
                match *part {
                    "northeast" => out.push_str("ne"),
                    "northwest" => out.push_str("nw"),
                    "southeast" => out.push_str("se"),
                    "southwest" => out.push_str("sw"),
                    _ => out.extend(part.chars().next()),
                }
            }
        }
        out
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Region {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Region::parse(&text).map_err(de::Error::custom)
    }
}

/// An availability zone, by name (`us-east-1a`) or by id (`use1-az1`).
///
/// A name maps to a different physical zone in each account; an id is the same
/// everywhere. A zone step written with an id leaves the same physical zone in
/// every account it touches: each group's zone name is read from its subnets.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Zone(String);

impl Zone {
    /// Parses a zone name (a region name followed by one letter) or a zone id (the
    /// region's short form, `-az`, a number).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut chars = text.chars();
        let letter = chars.next_back();
        let named =
            letter.is_some_and(|c| c.is_ascii_lowercase()) && Region::parse(chars.as_str()).is_ok();
        if named || Self::id_shaped(text) {
            Ok(Self(text.to_owned()))
        } else {
            Err(format!(
                "invalid availability zone `{text}`: expected a zone name like `us-east-1a` or a zone id like `use1-az1`"
            ))
        }
    }

    /// `use1-az1`: letters and a number, `-az`, a number.
    fn id_shaped(text: &str) -> bool {
        let Some((short, number)) = text.split_once("-az") else {
            return false;
        };
        let letters = short.trim_end_matches(|c: char| c.is_ascii_digit());
        !number.is_empty()
            && number.chars().all(|c| c.is_ascii_digit())
            && letters.len() < short.len()
            && !letters.is_empty()
            && letters.chars().all(|c| c.is_ascii_lowercase())
    }

    /// Whether it is written as a zone id (`use1-az1`).
    pub fn is_id(&self) -> bool {
        Self::id_shaped(&self.0)
    }

    /// Whether it belongs to `region`.
    pub fn in_region(&self, region: &Region) -> bool {
        if self.is_id() {
            self.0.split_once("-az").map(|(short, _)| short) == Some(region.short().as_str())
        } else {
            self.0[..self.0.len() - 1] == *region.as_str()
        }
    }

    /// The zone as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Zone {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Zone::parse(&text).map_err(de::Error::custom)
    }
}

/// A duration written like `90s`, `2m` or `1h30m`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct HumanDuration(pub Duration);

/// Whether `text` is numbers with known units (`3 days`, `584542046090y`), whatever
/// their size.
fn well_formed(text: &str) -> bool {
    const UNITS: [&str; 33] = [
        "y", "yr", "yrs", "year", "years", "mo", "mos", "month", "months", "w", "wk", "wks",
        "week", "weeks", "d", "day", "days", "h", "hr", "hrs", "hour", "hours", "m", "min", "mins",
        "minute", "minutes", "s", "sec", "secs", "second", "seconds", "ms",
    ];
    let mut rest = text;
    let mut any = false;
    while !rest.is_empty() {
        let number = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number == 0 {
            return false;
        }
        rest = rest[number..].trim_start();
        let unit = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        if !UNITS.contains(&&rest[..unit]) {
            return false;
        }
        rest = rest[unit..].trim_start_matches([' ', ',']);
        any = true;
    }
    any
}

/// The longest duration a playbook or a command line may give: a drill step that
/// waits, bakes or times out after more than a day is a mistake, and bounding every
/// duration keeps all arithmetic on them far from overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

impl HumanDuration {
    /// Parses `90s`, `2m`, `1h30m` and the like, up to [`MAX_DURATION`].
    ///
    /// The grammar is jiff's "friendly" format (`90s`, `1h 30m`, `5 min`, `1.5s`,
    /// `1d` as 24 hours), without what humantime, which evac used before, refused:
    /// ISO 8601 (`PT1M`) and negative durations (`-1m`, `1m ago`). A bare `0` is
    /// zero, as it was.
    pub fn parse(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        let invalid = || {
            format!(
                "invalid duration `{text}`: write a number with a unit, like `90s`, `2m` or `1h30m`"
            )
        };
        let too_long = || format!("duration `{text}` is longer than the longest allowed, 24h");
        if trimmed == "0" {
            return Ok(Self(Duration::ZERO));
        }
        if trimmed.starts_with(['-', '+', 'P', 'p']) || trimmed.ends_with("ago") {
            return Err(invalid());
        }
        // jiff refuses numbers beyond its range; a well-formed duration that big is
        // too long, not malformed.
        let span: jiff::Span = trimmed.parse().map_err(|_| {
            if well_formed(trimmed) {
                too_long()
            } else {
                invalid()
            }
        })?;
        if span.get_years() != 0 || span.get_months() != 0 {
            return Err(too_long());
        }
        let duration = span
            .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
            .ok()
            .and_then(|d| Duration::try_from(d).ok())
            .ok_or_else(invalid)?;
        if duration > MAX_DURATION {
            return Err(format!(
                "duration `{text}` is longer than the longest allowed, 24h"
            ));
        }
        Ok(Self(duration))
    }

    /// A duration of whole seconds.
    pub const fn secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_zero() {
            return f.write_str("0s");
        }
        match jiff::SignedDuration::try_from(self.0) {
            Ok(d) => f.write_str(&format!("{d:#}").replace(' ', "")),
            Err(_) => write!(f, "{}s", self.0.as_secs()),
        }
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration like `90s`, `2m` or `1h30m`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<HumanDuration, E> {
                HumanDuration::parse(v).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<HumanDuration, E> {
                Err(E::custom(format!(
                    "duration `{v}` has no unit: write `{v}s` or `{v}m`"
                )))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<HumanDuration, E> {
                Err(E::custom(format!(
                    "duration `{v}` has no unit: write `{v}s` or `{v}m`"
                )))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A percentage from 1 to 100.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Percent(pub(super) u8);

impl Percent {
    /// Checks that `value` lies in 1..=100.
    pub fn new(value: i64) -> Result<Self, String> {
        u8::try_from(value)
            .ok()
            .filter(|v| (1..=100).contains(v))
            .map(Self)
            .ok_or_else(|| {
                format!("percentage {value} is out of range: use a whole number from 1 to 100")
            })
    }

    /// The value, 1 to 100.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = i64::deserialize(deserializer)?;
        Percent::new(value).map_err(de::Error::custom)
    }
}

/// A name a playbook gives to something (a step id, a group or record name, a
/// playbook name): letters, digits, `-`, `_` and `.`, starting with a letter or digit.
pub fn check_name(kind: &str, text: &str) -> Result<(), String> {
    let mut chars = text.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && text.len() <= 64;
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid {kind} `{text}`: use up to 64 letters, digits, `-`, `_` or `.`, starting with a letter or digit"
        ))
    }
}

/// A stable step identifier; journal records and reports name steps by it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct StepId(String);

impl StepId {
    /// Parses a step id.
    pub fn parse(text: &str) -> Result<Self, String> {
        check_name("step id", text).map(|()| Self(text.to_owned()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for StepId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        StepId::parse(&text).map_err(de::Error::custom)
    }
}

/// One name or a list of names: `group: api` or `group: [api, edge]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Names(pub Vec<String>);

impl Names {
    /// The names in the order written.
    pub fn iter(&self) -> impl Iterator<Item = &String> {
        self.0.iter()
    }
}

impl<'de> Deserialize<'de> for Names {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Names;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a name or a list of names")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Names, E> {
                Ok(Names(vec![v.to_owned()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Names, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    names.push(name);
                }
                if names.is_empty() {
                    return Err(de::Error::custom(
                        "the list of names is empty: name at least one",
                    ));
                }
                Ok(Names(names))
            }
        }
        deserializer.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The duration grammar, pinned: what playbooks written for the humantime
    /// parser evac used before still mean the same, and what it refused is refused.
    #[test]
    fn durations_keep_the_grammar_playbooks_were_written_for() {
        let secs = |s: &str| HumanDuration::parse(s).map(|d| d.0.as_secs_f64());
        for (text, want) in [
            ("90s", 90.0),
            ("2m", 120.0),
            ("1h30m", 5400.0),
            ("1h 30m", 5400.0),
            ("1m30s", 90.0),
            ("500ms", 0.5),
            ("1.5s", 1.5),
            ("1s 500ms", 1.5),
            ("1min", 60.0),
            ("5 min", 300.0),
            ("2 minutes", 120.0),
            ("1hour", 3600.0),
            ("24h", 86400.0),
            ("1d", 86400.0),
            ("0s", 0.0),
            ("0", 0.0),
            (" 2m ", 120.0),
        ] {
            assert_eq!(secs(text), Ok(want), "{text}");
        }
        for refused in ["30", "1h30", "PT1M", "-1m", "1m ago", "+1m", "2x", ""] {
            assert!(
                secs(refused).unwrap_err().starts_with("invalid duration"),
                "{refused}"
            );
        }
        for long in ["25h", "2d", "1w", "1y", "3 months"] {
            assert!(
                secs(long)
                    .unwrap_err()
                    .contains("longer than the longest allowed"),
                "{long}"
            );
        }
        for (d, shown) in [
            (90, "1m30s"),
            (120, "2m"),
            (5400, "1h30m"),
            (0, "0s"),
            (86400, "24h"),
        ] {
            assert_eq!(HumanDuration::secs(d).to_string(), shown);
        }
    }

    #[test]
    fn regions_accept_real_names_and_reject_typos() {
        for ok in [
            "us-east-1",
            "us-gov-west-1",
            "ap-southeast-2",
            "eu-central-1",
        ] {
            assert!(Region::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "us-east1",
            "useast-1",
            "US-EAST-1",
            "us-east-",
            "us-east-1a",
            "",
        ] {
            assert!(Region::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn zones_know_their_region() {
        let zone = Zone::parse("us-east-1a").expect("valid zone");
        let east = Region::parse("us-east-1").expect("region");
        let west = Region::parse("us-west-2").expect("region");
        assert!(zone.in_region(&east) && !zone.in_region(&west));
        // Zone ids name the same physical zone in every account.
        let id = Zone::parse("use1-az1").expect("valid zone id");
        assert!(id.is_id() && id.in_region(&east) && !id.in_region(&west));
        let tokyo = Zone::parse("apne1-az4").expect("valid zone id");
        assert!(tokyo.in_region(&Region::parse("ap-northeast-1").expect("region")));
        for bad in ["use1-az", "-az1", "use1az1", "us-east-1", "USE1-az1"] {
            assert!(Zone::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_read_like_the_docs() {
        assert_eq!(HumanDuration::parse("90s").map(|d| d.0.as_secs()), Ok(90));
        assert_eq!(HumanDuration::parse("2m").map(|d| d.0.as_secs()), Ok(120));
        assert_eq!(
            HumanDuration::parse("1h30m").map(|d| d.0.as_secs()),
            Ok(5400)
        );
        assert!(HumanDuration::parse("2x").is_err());
        assert_eq!(
            HumanDuration::parse("24h").map(|d| d.0.as_secs()),
            Ok(86_400)
        );
        assert_eq!(
            HumanDuration::parse("584542046090y"),
            Err("duration `584542046090y` is longer than the longest allowed, 24h".into())
        );
        assert!(HumanDuration::parse("25h").is_err());
        assert!(HumanDuration::parse("").is_err());
        assert_eq!(HumanDuration::secs(5400).to_string(), "1h30m");
    }

    #[test]
    fn percents_are_one_to_one_hundred() {
        assert!(Percent::new(0).is_err());
        assert!(Percent::new(101).is_err());
        assert_eq!(Percent::new(100).map(Percent::get), Ok(100));
    }
}
