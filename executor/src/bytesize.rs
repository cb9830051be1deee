//! OpenWhisk's `ByteSize` text form (`C/core/entity/Size.scala`): what `userMemory`, `maxPayloadSize`
//! and `CONFIG_whisk_containerPool_userMemory` hold.
//!
//! Reading accepts, case-insensitively, a whole number, an optional space and one of the units `B`,
//! `K`, `KB`, `M`, `MB`, `G`, `GB` (binary multiples, as OpenWhisk means them). Writing always gives
//! `"<bytes> B"`, the form the Scala invoker emits after pureconfig turned the setting into bytes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Bytes in a kilobyte, as OpenWhisk counts them.
const KB: u64 = 1024;
/// Bytes in a megabyte.
const MB: u64 = 1024 * KB;
/// Bytes in a gigabyte.
const GB: u64 = 1024 * MB;

/// Longest text accepted, so that a peer cannot make us scan an arbitrarily long field.
const MAX_TEXT_LEN: usize = 64;

/// A size in bytes, read from and written as OpenWhisk `ByteSize` text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

/// A `ByteSize` text that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ByteSizeError {
    /// The text is not `<number>[ ]<unit>`.
    #[error(
        "invalid size {0:?}: expected a whole number and a unit B, K, KB, M, MB, G or GB (e.g. \"2048 m\")"
    )]
    Syntax(String),
    /// The number does not fit in 64 bits of bytes.
    #[error("size {0:?} is too large")]
    Overflow(String),
}

impl ByteSize {
    /// A size of `bytes` bytes.
    pub const fn bytes(bytes: u64) -> Self {
        Self(bytes)
    }

    /// A size of `mb` megabytes (MiB).
    pub const fn mb(mb: u64) -> Self {
        Self(mb * MB)
    }

    /// The size in bytes.
    pub const fn as_bytes(self) -> u64 {
        self.0
    }

    /// The size in whole megabytes (MiB), rounded down: the unit the controller sizes invokers in.
    pub const fn as_mb(self) -> u64 {
        self.0 / MB
    }

    /// Reads OpenWhisk `ByteSize` text.
    pub fn parse(text: &str) -> Result<Self, ByteSizeError> {
        let syntax = || ByteSizeError::Syntax(text.chars().take(MAX_TEXT_LEN).collect());
        if text.len() > MAX_TEXT_LEN {
            return Err(syntax());
        }
        let trimmed = text.trim();
        let digits_end = trimmed
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(syntax)?;
        let (number, rest) = trimmed.split_at(digits_end);
        if number.is_empty() {
            return Err(syntax());
        }
        let unit = rest.strip_prefix(' ').unwrap_or(rest);
        let multiplier = match unit.to_ascii_uppercase().as_str() {
            "B" => 1,
            "K" | "KB" => KB,
            "M" | "MB" => MB,
            "G" | "GB" => GB,
            _ => return Err(syntax()),
        };
        let number: u64 = number
            .parse()
            .map_err(|_| ByteSizeError::Overflow(text.to_string()))?;
        number
            .checked_mul(multiplier)
            .map(ByteSize)
            .ok_or_else(|| ByteSizeError::Overflow(text.to_string()))
    }
}

impl FromStr for ByteSize {
    type Err = ByteSizeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} B", self.0)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ByteSize::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_parse_accepts_openwhisk_forms() {
        assert_eq!(ByteSize::parse("2048 m").unwrap(), ByteSize::mb(2048));
        assert_eq!(ByteSize::parse("2048m").unwrap(), ByteSize::mb(2048));
        assert_eq!(ByteSize::parse("2 GB").unwrap(), ByteSize::mb(2048));
        assert_eq!(ByteSize::parse("2g").unwrap(), ByteSize::mb(2048));
        assert_eq!(ByteSize::parse("2147483648 B").unwrap(), ByteSize::mb(2048));
        assert_eq!(ByteSize::parse("1 kb").unwrap(), ByteSize(1024));
        assert_eq!(ByteSize::parse("1 K").unwrap(), ByteSize(1024));
        assert_eq!(ByteSize::parse("1 Mb").unwrap(), ByteSize(1 << 20));
    }

    #[test]
    fn test_parse_rejects_malformed_text() {
        for bad in [
            "", "m", "12", "12 x", "12  m", "-1 m", "1.5 GB", "12 TB", "1 m b",
        ] {
            assert!(
                matches!(ByteSize::parse(bad), Err(ByteSizeError::Syntax(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            ByteSize::parse("99999999999999999999 GB"),
            Err(ByteSizeError::Overflow(_))
        ));
        assert!(matches!(
            ByteSize::parse("17179869184 GB"),
            Err(ByteSizeError::Overflow(_))
        ));
    }

    #[test]
    fn test_format_is_bytes() {
        assert_eq!(ByteSize::mb(2048).to_string(), "2147483648 B");
        assert_eq!(
            serde_json::to_value(ByteSize::mb(1)).unwrap(),
            serde_json::json!("1048576 B")
        );
        let back: ByteSize = serde_json::from_value(serde_json::json!("1048576 B")).unwrap();
        assert_eq!(back.as_mb(), 1);
    }
}
