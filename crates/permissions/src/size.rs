//! Memory sizes as people write them: `512MiB`, `2GiB`, `1048576`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A number of bytes between 1 MiB and 4 GiB (the most a 32-bit
/// WebAssembly memory can hold).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ByteSize(u64);

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

impl ByteSize {
    /// The smallest cap: 1 MiB.
    pub const MIN: ByteSize = ByteSize(MIB);
    /// The largest cap: 4 GiB, all a 32-bit memory can address.
    pub const MAX: ByteSize = ByteSize(4 * GIB);

    pub const fn mib(mib: u64) -> Self {
        ByteSize(mib * MIB)
    }

    /// A size as it is, without the range check of parsing: for showing a
    /// limit that came from elsewhere.
    pub const fn from_bytes(bytes: u64) -> Self {
        ByteSize(bytes)
    }

    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        let split = trimmed
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(trimmed.len());
        let (number, unit) = trimmed.split_at(split);
        let unit_bytes = match unit.trim() {
            "" | "B" => 1,
            "KiB" | "K" => KIB,
            "MiB" | "M" => MIB,
            "GiB" | "G" => GIB,
            "KB" => 1_000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            other => {
                return Err(format!(
                    "`{other}` is not a size unit; write a size like 256MiB or 2GiB"
                ));
            }
        };
        let bytes = number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(unit_bytes))
            .ok_or_else(|| format!("`{text}` is not a size; write a size like 256MiB or 2GiB"))?;
        let size = ByteSize(bytes);
        if size < Self::MIN || size > Self::MAX {
            return Err(format!(
                "`{text}` is out of range: a memory cap is between {} and {}",
                Self::MIN,
                Self::MAX
            ));
        }
        Ok(size)
    }
}

impl TryFrom<String> for ByteSize {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl From<ByteSize> for String {
    fn from(size: ByteSize) -> String {
        size.to_string()
    }
}

impl fmt::Display for ByteSize {
    /// The largest binary unit that divides the size exactly (`1GiB`,
    /// `1536MiB`), else bytes: what is shown parses back to the same size.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            n if n % GIB == 0 => write!(f, "{}GiB", n / GIB),
            n if n % MIB == 0 => write!(f, "{}MiB", n / MIB),
            n if n % KIB == 0 => write!(f, "{}KiB", n / KIB),
            n => write!(f, "{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for (text, bytes, shown) in [
            ("512MiB", 512 * MIB, "512MiB"),
            ("2GiB", 2 * GIB, "2GiB"),
            ("1536M", 1536 * MIB, "1536MiB"),
            ("4GiB", 4 * GIB, "4GiB"),
            ("100MB", 100_000_000, "100000000"),
            ("1048576", MIB, "1MiB"),
        ] {
            let size: ByteSize = text.parse().unwrap();
            assert_eq!(size.bytes(), bytes, "{text}");
            assert_eq!(size.to_string(), shown, "{text}");
            assert_eq!(size.to_string().parse::<ByteSize>().unwrap(), size);
        }
    }

    #[test]
    fn refuses_nonsense_and_out_of_range() {
        for text in [
            "",
            "lots",
            "5TB",
            "12 parsecs",
            "8GiB",
            "1KiB",
            "99999999999999999999GiB",
        ] {
            assert!(text.parse::<ByteSize>().is_err(), "{text}");
        }
    }
}
