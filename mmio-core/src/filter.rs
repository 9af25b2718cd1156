//! Which events to keep, from plugin arguments.
//!
//! PANDA and QEMU both split plugin arguments on `,`, so lists inside one argument are
//! separated by `+`: `devices=pl011+v7m_systick`, `ranges=0x40000000-0x4000ffff+0xe000e000-0xe000efff`,
//! `access=w`, `kinds=unimplemented+unassigned`. A range written `io:FIRST-LAST`
//! selects x86 I/O ports (`ranges=io:0x3f8-0x3ff`); other ranges are memory addresses.

use thiserror::Error;

use crate::{Access, Device, DeviceKind, MmioEvent, Space};

/// A bad filter argument, named with its value.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FilterError {
    /// A value that does not parse.
    #[error("{arg}={text}: {reason}")]
    BadValue {
        /// The argument.
        arg: &'static str,
        /// Its value.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Text without `=`.
    #[error("{text:?} is not an argument of the form key=value")]
    NotKeyValue {
        /// The text.
        text: String,
    },
    /// A key that is no filter argument.
    #[error("unknown filter argument {key:?} (expected devices, ranges, access or kinds)")]
    UnknownKey {
        /// The key.
        key: String,
    },
}

/// Keeps events matching every given condition; an empty filter keeps everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Device names (ASCII case-insensitive); empty = any device.
    devices: Vec<String>,
    /// Inclusive physical address (or port) ranges; empty = any address.
    ranges: Vec<(Space, u64, u64)>,
    /// Only these access types; empty = any.
    access: Vec<Access>,
    /// Device kinds; empty = any kind.
    kinds: Vec<DeviceKind>,
}

impl Filter {
    /// The argument names this filter understands.
    pub const KEYS: [&'static str; 4] = ["devices", "ranges", "access", "kinds"];

    /// Parses a comma-separated list such as `devices=pl011,access=w`.
    pub fn parse(text: &str) -> Result<Filter, FilterError> {
        let mut filter = Filter::default();
        for arg in text.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            let (key, value) = arg
                .split_once('=')
                .ok_or_else(|| FilterError::NotKeyValue {
                    text: arg.to_string(),
                })?;
            if !filter.set(key.trim(), value.trim())? {
                return Err(FilterError::UnknownKey {
                    key: key.trim().to_string(),
                });
            }
        }
        Ok(filter)
    }

    /// Applies one `key=value` argument. Returns `Ok(false)` when `key` is not a filter
    /// argument, so that front ends can handle their own arguments.
    pub fn set(&mut self, key: &str, value: &str) -> Result<bool, FilterError> {
        match key {
            "devices" => {
                self.devices = list("devices", value)?
                    .map(|name| name.to_string())
                    .collect();
            }
            "ranges" => {
                self.ranges = list("ranges", value)?
                    .map(parse_range)
                    .collect::<Result<_, _>>()?;
            }
            "access" => self.access = parse_access(value)?,
            "kinds" => {
                self.kinds = list("kinds", value)?
                    .map(|kind| {
                        kind.to_ascii_lowercase().parse::<DeviceKind>().map_err(|_| {
                            bad(
                                "kinds",
                                value,
                                format!(
                                    "unknown kind {kind:?} (expected device, unimplemented, unassigned, ram or rom)"
                                ),
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Whether the filter keeps everything.
    pub fn is_empty(&self) -> bool {
        *self == Filter::default()
    }

    /// Whether the filter looks at the device (and so needs it resolved).
    pub fn needs_device(&self) -> bool {
        !self.devices.is_empty() || !self.kinds.is_empty()
    }

    /// Whether `event`, whose device is `device` (`None` when absent), is kept.
    pub fn matches(&self, event: &MmioEvent, device: Option<&Device>) -> bool {
        if !self.access.is_empty() && !self.access.contains(&event.access) {
            return false;
        }
        if !self.ranges.is_empty() {
            let addr = event.phys_addr.unwrap_or(event.virt_addr);
            if !self
                .ranges
                .iter()
                .any(|&(space, first, last)| space == event.space && (first..=last).contains(&addr))
            {
                return false;
            }
        }
        if !self.devices.is_empty()
            && !device.is_some_and(|d| self.devices.iter().any(|n| n.eq_ignore_ascii_case(&d.name)))
        {
            return false;
        }
        if !self.kinds.is_empty() {
            let kind = match device {
                Some(device) => Some(device.kind),
                None if event.device == crate::DeviceId::UNASSIGNED => Some(DeviceKind::Unassigned),
                None => None,
            };
            if !kind.is_some_and(|kind| self.kinds.contains(&kind)) {
                return false;
            }
        }
        true
    }
}

fn bad(arg: &'static str, text: &str, reason: impl Into<String>) -> FilterError {
    FilterError::BadValue {
        arg,
        text: text.to_string(),
        reason: reason.into(),
    }
}

fn list<'a>(
    arg: &'static str,
    value: &'a str,
) -> Result<impl Iterator<Item = &'a str>, FilterError> {
    if value.split('+').any(|item| item.trim().is_empty()) {
        return Err(bad(arg, value, "empty item in a '+'-separated list"));
    }
    Ok(value.split('+').map(str::trim))
}

/// `r`, `w`, `x` or any combination (`rw`), or `read`, `write`, `fetch`, `all`.
fn parse_access(value: &str) -> Result<Vec<Access>, FilterError> {
    let lower = value.to_ascii_lowercase();
    let letters = match lower.as_str() {
        "read" => "r",
        "write" => "w",
        "fetch" => "x",
        "all" => "",
        other => other,
    };
    let mut access = Vec::new();
    for letter in letters.chars() {
        let one = match letter {
            'r' => Access::Read,
            'w' => Access::Write,
            'x' => Access::Fetch,
            _ => {
                return Err(bad(
                    "access",
                    value,
                    "expected r, w, x or a combination (rw)",
                ))
            }
        };
        if !access.contains(&one) {
            access.push(one);
        }
    }
    Ok(if access.len() == Access::ALL.len() {
        Vec::new()
    } else {
        access
    })
}

fn parse_range(text: &str) -> Result<(Space, u64, u64), FilterError> {
    let (space, range) = match text.strip_prefix("io:") {
        Some(ports) => (Space::Io, ports),
        None => (Space::Memory, text),
    };
    let (first, last) = range.split_once('-').ok_or_else(|| {
        bad(
            "ranges",
            text,
            "expected FIRST-LAST, e.g. 0x40000000-0x4000ffff",
        )
    })?;
    let first = parse_address(first).map_err(|reason| bad("ranges", text, reason))?;
    let last = parse_address(last).map_err(|reason| bad("ranges", text, reason))?;
    if last < first {
        return Err(bad("ranges", text, "range ends before it starts"));
    }
    Ok((space, first, last))
}

/// `0x…` hexadecimal or decimal.
fn parse_address(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(&hex.replace('_', ""), 16),
        None => text.parse(),
    };
    parsed.map_err(|_| format!("{text:?} is not an address (use 0x… or decimal)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DeviceId;
    use std::sync::Arc;

    fn event(access: Access, addr: u64) -> MmioEvent {
        MmioEvent {
            seq: 0,
            cpu: 0,
            access,
            space: Space::Memory,
            guest_pc: 0x100,
            phys_addr: Some(addr),
            virt_addr: addr,
            offset: 0,
            size: 4,
            value: 0,
            device: DeviceId(0),
            instr_count: None,
        }
    }

    fn device(name: &str, kind: DeviceKind) -> Device {
        Device {
            name: Arc::from(name),
            base: 0,
            size: 0,
            kind,
        }
    }

    #[test]
    fn parses_all_arguments() {
        let filter = Filter::parse(
            "devices=pl011+v7m_systick,ranges=0x40000000-0x4000ffff+0xe000e000-0xe000efff,access=w,kinds=device",
        )
        .unwrap();
        assert_eq!(filter.devices, ["pl011", "v7m_systick"]);
        assert_eq!(
            filter.ranges,
            [
                (Space::Memory, 0x4000_0000, 0x4000_ffff),
                (Space::Memory, 0xe000_e000, 0xe000_efff)
            ]
        );
        assert_eq!(filter.access, [Access::Write]);
        assert_eq!(filter.kinds, [DeviceKind::Device]);
        assert!(Filter::parse("").unwrap().is_empty());
    }

    #[test]
    fn matches_every_condition() {
        let filter = Filter::parse("devices=PL011,ranges=0x4000c000-0x4000cfff,access=r").unwrap();
        let uart = device("pl011", DeviceKind::Device);
        assert!(filter.matches(&event(Access::Read, 0x4000_c018), Some(&uart)));
        assert!(!filter.matches(&event(Access::Write, 0x4000_c018), Some(&uart)));
        assert!(!filter.matches(&event(Access::Read, 0x4000_d018), Some(&uart)));
        assert!(!filter.matches(&event(Access::Read, 0x4000_c018), None));
        let systick = device("v7m_systick", DeviceKind::Device);
        assert!(!filter.matches(&event(Access::Read, 0x4000_c018), Some(&systick)));
    }

    #[test]
    fn access_types_combine_and_port_ranges_match_only_port_io() {
        let fetch = event(Access::Fetch, 0x1c00_6490);
        assert!(Filter::parse("access=x").unwrap().matches(&fetch, None));
        assert!(!Filter::parse("access=rw").unwrap().matches(&fetch, None));
        assert!(Filter::parse("access=rwx").unwrap().is_empty());
        assert!(Filter::parse("access=all").unwrap().is_empty());
        let filter = Filter::parse("ranges=io:0x3f8-0x3ff").unwrap();
        let port = MmioEvent {
            space: Space::Io,
            ..event(Access::Write, 0x3f8)
        };
        assert!(filter.matches(&port, None));
        assert!(!filter.matches(&event(Access::Write, 0x3f8), None));
        let memory = Filter::parse("ranges=0x0-0xffff").unwrap();
        assert!(!memory.matches(&port, None));
    }

    #[test]
    fn kinds_match_stubs_and_unassigned_addresses() {
        let filter = Filter::parse("kinds=unimplemented+unassigned").unwrap();
        let stub = device("flash-control", DeviceKind::Unimplemented);
        let uart = device("pl011", DeviceKind::Device);
        assert!(filter.matches(&event(Access::Read, 0x400f_d000), Some(&stub)));
        let hole = MmioEvent {
            device: DeviceId::UNASSIGNED,
            ..event(Access::Read, 0x5000_0000)
        };
        assert!(filter.matches(&hole, None));
        let unknown = MmioEvent {
            device: DeviceId::UNKNOWN,
            ..event(Access::Read, 0x5000_0000)
        };
        assert!(!filter.matches(&unknown, None));
        assert!(!filter.matches(&event(Access::Read, 0x4000_c000), Some(&uart)));
    }

    #[test]
    fn bad_input_names_the_argument_and_the_text() {
        assert_eq!(
            Filter::parse("ranges=0x4000-zz").unwrap_err().to_string(),
            "ranges=0x4000-zz: \"zz\" is not an address (use 0x… or decimal)"
        );
        assert_eq!(
            Filter::parse("ranges=0x5000-0x4000")
                .unwrap_err()
                .to_string(),
            "ranges=0x5000-0x4000: range ends before it starts"
        );
        assert_eq!(
            Filter::parse("ranges=0x4000").unwrap_err().to_string(),
            "ranges=0x4000: expected FIRST-LAST, e.g. 0x40000000-0x4000ffff"
        );
        assert_eq!(
            Filter::parse("devices=pl011++systick")
                .unwrap_err()
                .to_string(),
            "devices=pl011++systick: empty item in a '+'-separated list"
        );
        assert_eq!(
            Filter::parse("access=z").unwrap_err().to_string(),
            "access=z: expected r, w, x or a combination (rw)"
        );
        assert_eq!(
            Filter::parse("kinds=gpio").unwrap_err().to_string(),
            "kinds=gpio: unknown kind \"gpio\" (expected device, unimplemented, unassigned, ram or rom)"
        );
        assert_eq!(
            Filter::parse("colour=red").unwrap_err(),
            FilterError::UnknownKey {
                key: "colour".into()
            }
        );
        assert_eq!(
            Filter::parse("pl011").unwrap_err(),
            FilterError::NotKeyValue {
                text: "pl011".into()
            }
        );
    }

    #[test]
    fn set_leaves_other_keys_to_the_caller() {
        let mut filter = Filter::default();
        assert_eq!(filter.set("out_log", "trace.parquet"), Ok(false));
        assert_eq!(filter.set("access", "all"), Ok(true));
        assert!(filter.is_empty());
    }
}
