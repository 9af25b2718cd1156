use std::time::{SystemTime, UNIX_EPOCH};

/// What the front end knows about the run, stored in the file's metadata where the
/// format has room for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceInfo {
    /// Emulator and version, e.g. `qemu 10.0.2` or `panda`.
    pub emulator: String,
    /// Guest architecture, e.g. `arm`, `aarch64`.
    pub target_arch: String,
    /// Board, e.g. `lm3s6965evb`; empty when unknown.
    pub machine: String,
    /// Start of the recording, RFC 3339 UTC.
    pub start_time: String,
    /// Bytes in a guest word (4 or 8); sets the hex width of the PANDA JSON format.
    pub word_size: u8,
    /// Names the run: the `run` column of every row (Parquet, JSON Lines), so that the
    /// rows of many traces concatenated into one table keep where they came from.
    /// A random UUID unless the user gives one (`run=`).
    pub run: String,
}

impl TraceInfo {
    /// Info for a run starting now.
    pub fn now(emulator: &str, target_arch: &str, machine: &str, word_size: u8) -> TraceInfo {
        TraceInfo {
            emulator: emulator.to_string(),
            target_arch: target_arch.to_string(),
            machine: machine.to_string(),
            start_time: rfc3339_utc(SystemTime::now()),
            word_size,
            run: uuid::Uuid::new_v4().to_string(),
        }
    }

    /// The same facts under the run name `run`.
    pub fn with_run(self, run: impl Into<String>) -> TraceInfo {
        TraceInfo {
            run: run.into(),
            ..self
        }
    }
}

impl Default for TraceInfo {
    fn default() -> Self {
        TraceInfo::now("unknown", "unknown", "", 4)
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ`, without pulling in a date crate.
fn rfc3339_utc(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_utc_dates() {
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_654_471);
        assert_eq!(rfc3339_utc(t), "2026-11-26T00:54:31Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339_utc(leap), "2000-02-29T00:00:00Z");
    }
}
