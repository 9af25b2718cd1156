use std::fmt;

use serde::{Deserialize, Serialize};

use crate::DeviceId;

/// Direction of a guest access, shown as `R`, `W` or `X` in every output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Access {
    /// A load.
    #[serde(rename = "R")]
    Read,
    /// A store.
    #[serde(rename = "W")]
    Write,
    /// An instruction fetched from a device's region: the guest executes from I/O
    /// (code that ran off its image into an unmapped area, or firmware loaded where
    /// the board has no memory). `value` holds the instruction's bytes as read.
    #[serde(rename = "X")]
    Fetch,
}

impl Access {
    /// The one-letter form used in every output format.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "R",
            Access::Write => "W",
            Access::Fetch => "X",
        }
    }

    /// Every access type, in the order of their letters.
    pub const ALL: [Access; 3] = [Access::Read, Access::Write, Access::Fetch];
}

/// A text that is no [`Access`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an access type (expected R, W or X)")]
pub struct UnknownAccess(pub String);

impl std::str::FromStr for Access {
    type Err = UnknownAccess;

    /// Parses `R`/`W`/`X` (either case).
    fn from_str(text: &str) -> Result<Access, UnknownAccess> {
        match text {
            "R" | "r" => Ok(Access::Read),
            "W" | "w" => Ok(Access::Write),
            "X" | "x" => Ok(Access::Fetch),
            _ => Err(UnknownAccess(text.to_string())),
        }
    }
}

/// The address space an access went through: memory (every architecture), or the
/// separate I/O port space of x86 (`in`, `out`, `ins`, `outs`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum Space {
    /// The CPU's memory address space: memory-mapped I/O.
    #[default]
    #[serde(rename = "memory")]
    Memory,
    /// x86 port I/O: the address is the port number.
    #[serde(rename = "io")]
    Io,
}

impl Space {
    /// The form used in every output format: `memory` or `io`.
    pub fn as_str(self) -> &'static str {
        match self {
            Space::Memory => "memory",
            Space::Io => "io",
        }
    }
}

/// A text that is no [`Space`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an address space (expected memory or io)")]
pub struct UnknownSpace(pub String);

impl std::str::FromStr for Space {
    type Err = UnknownSpace;

    /// Parses `memory` or `io`.
    fn from_str(text: &str) -> Result<Space, UnknownSpace> {
        match text {
            "memory" => Ok(Space::Memory),
            "io" => Ok(Space::Io),
            _ => Err(UnknownSpace(text.to_string())),
        }
    }
}

impl fmt::Display for Space {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One guest access to a memory-mapped I/O region, as the guest saw it.
///
/// An 8-byte guest access is one event of `size` 8, even where QEMU splits it into
/// two 4-byte device calls.
///
/// Its serde form is this in-memory event, field for field: `device` is an id into the
/// [`crate::DeviceTable`] it was recorded with, not a name, so it means nothing
/// without that table. It is for passing events between processes that share the
/// table, not a trace format: files (whose rows name the device) are `mmio-export`'s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MmioEvent {
    /// Order of recording across all vCPUs, from 0, without gaps among recorded events.
    pub seq: u64,
    /// Index of the vCPU that made the access.
    pub cpu: u32,
    /// Read, write or instruction fetch.
    #[serde(rename = "type")]
    pub access: Access,
    /// Memory, or x86 port I/O (whose addresses are port numbers).
    #[serde(default)]
    pub space: Space,
    /// Guest virtual address of the instruction that made the access (precise PC).
    pub guest_pc: u64,
    /// Absolute guest-physical address accessed (the port, for port I/O); `None` only
    /// where the emulator could not translate it.
    pub phys_addr: Option<u64>,
    /// Address the guest used (virtual; equal to `phys_addr` without an MMU).
    pub virt_addr: u64,
    /// Byte offset of the access inside the device's region; equal to `phys_addr`
    /// (or `virt_addr`) when the region's base is unknown.
    pub offset: u64,
    /// Access width in bytes: 1, 2, 4 or 8.
    pub size: u8,
    /// Value read (after the access) or written, masked to `size` bytes, as the device
    /// saw it: in the device's byte order where it differs from the CPU's (a PCI
    /// device under a big-endian CPU), as QEMU's own trace shows it.
    pub value: u64,
    /// Device whose region was accessed ([`DeviceId::UNKNOWN`] when none is known).
    pub device: DeviceId,
    /// Guest instructions retired on this vCPU before the access, where counted.
    pub instr_count: Option<u64>,
}

impl MmioEvent {
    /// Masks `value` to the low `size` bytes, as the guest sees it.
    pub fn mask_value(value: u64, size: u8) -> u64 {
        match size {
            0 => 0,
            1..=7 => value & ((1u64 << (u32::from(size) * 8)) - 1),
            _ => value,
        }
    }

    /// Whether `size` is an access width the event model accepts.
    pub fn is_valid_size(size: u8) -> bool {
        matches!(size, 1 | 2 | 4 | 8)
    }
}

impl fmt::Display for MmioEvent {
    /// `#seq cpuN R pc=0x… addr=0x… (+0x…) size=N value=0x…` (`port=` for port I/O), with hex zero-padded to
    /// the access width so a register dump lines up.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{} cpu{} {} pc={:#x} {}=",
            self.seq,
            self.cpu,
            self.access,
            self.guest_pc,
            match self.space {
                Space::Memory => "addr",
                Space::Io => "port",
            }
        )?;
        match self.phys_addr {
            Some(addr) => write!(f, "{addr:#x}")?,
            None => write!(f, "?")?,
        }
        let digits = usize::from(self.size) * 2;
        write!(
            f,
            " (+{:#x}) size={} value={:#0width$x}",
            self.offset,
            self.size,
            self.value,
            width = digits + 2
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> MmioEvent {
        MmioEvent {
            seq: 7,
            cpu: 1,
            access: Access::Write,
            space: Space::Memory,
            guest_pc: 0x1f4,
            phys_addr: Some(0x4000_c000),
            virt_addr: 0x4000_c000,
            offset: 0,
            size: 2,
            value: 0x41,
            device: DeviceId(3),
            instr_count: Some(120),
        }
    }

    #[test]
    fn values_are_masked_to_the_access_size() {
        assert_eq!(MmioEvent::mask_value(0x1234_5678_9abc_def0, 1), 0xf0);
        assert_eq!(MmioEvent::mask_value(0x1234_5678_9abc_def0, 2), 0xdef0);
        assert_eq!(MmioEvent::mask_value(0x1234_5678_9abc_def0, 4), 0x9abc_def0);
        assert_eq!(MmioEvent::mask_value(u64::MAX, 8), u64::MAX);
        assert!(MmioEvent::is_valid_size(8));
        assert!(!MmioEvent::is_valid_size(3));
    }

    #[test]
    fn display_pads_the_value_to_the_access_width() {
        assert_eq!(
            sample().to_string(),
            "#7 cpu1 W pc=0x1f4 addr=0x4000c000 (+0x0) size=2 value=0x0041"
        );
        let unknown = MmioEvent {
            phys_addr: None,
            access: Access::Read,
            ..sample()
        };
        assert_eq!(
            unknown.to_string(),
            "#7 cpu1 R pc=0x1f4 addr=? (+0x0) size=2 value=0x0041"
        );
        let port = MmioEvent {
            space: Space::Io,
            phys_addr: Some(0x3f8),
            ..sample()
        };
        assert_eq!(
            port.to_string(),
            "#7 cpu1 W pc=0x1f4 port=0x3f8 (+0x0) size=2 value=0x0041"
        );
    }

    #[test]
    fn serde_uses_the_file_format_key_names() {
        let json = serde_json::to_string(&sample()).unwrap();
        assert_eq!(
            json,
            r#"{"seq":7,"cpu":1,"type":"W","space":"memory","guest_pc":500,"phys_addr":1073790976,"virt_addr":1073790976,"offset":0,"size":2,"value":65,"device":3,"instr_count":120}"#
        );
        let back: MmioEvent = serde_json::from_str(&json).unwrap();
        assert_eq!(back, sample());
    }

    #[test]
    fn event_stays_small() {
        // Two Option<u64> fields cost 8 bytes each over plain u64: honest `Option`s in the
        // public type rather than sentinels.
        assert_eq!(std::mem::size_of::<MmioEvent>(), 88);
    }
}
