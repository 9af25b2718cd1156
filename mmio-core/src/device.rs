use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

/// Index of a device in a [`DeviceTable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeviceId(pub u32);

impl DeviceId {
    /// The reserved id of "no known device": `[NONE]` in PANDA-compatible JSON, null
    /// elsewhere.
    pub const UNKNOWN: DeviceId = DeviceId(u32::MAX);
    /// The reserved id of an address where the board maps nothing: no device, kind
    /// [`DeviceKind::Unassigned`].
    pub const UNASSIGNED: DeviceId = DeviceId(u32::MAX - 1);

    /// Whether this is [`DeviceId::UNKNOWN`].
    pub fn is_unknown(self) -> bool {
        self == DeviceId::UNKNOWN
    }

    /// Whether this id names no device (unknown or unassigned).
    pub fn is_absent(self) -> bool {
        self == DeviceId::UNKNOWN || self == DeviceId::UNASSIGNED
    }
}

/// What kind of region a device is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum DeviceKind {
    /// A device QEMU models.
    Device,
    /// A stub from QEMU's `create_unimplemented_device` (reads 0, writes ignored).
    Unimplemented,
    /// An address where nothing is mapped.
    Unassigned,
    /// RAM (never recorded; kept in the device table so the map is whole).
    Ram,
    /// ROM (likewise).
    Rom,
}

impl DeviceKind {
    /// The lower-case name used in every output format and in `kinds=`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Device => "device",
            DeviceKind::Unimplemented => "unimplemented",
            DeviceKind::Unassigned => "unassigned",
            DeviceKind::Ram => "ram",
            DeviceKind::Rom => "rom",
        }
    }
}

/// A name that is no [`DeviceKind`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown device kind {0:?} (expected device, unimplemented, unassigned, ram or rom)")]
pub struct UnknownKind(pub String);

impl std::str::FromStr for DeviceKind {
    type Err = UnknownKind;

    /// Parses the names [`DeviceKind::as_str`] gives.
    fn from_str(text: &str) -> Result<DeviceKind, UnknownKind> {
        Ok(match text {
            "device" => DeviceKind::Device,
            "unimplemented" => DeviceKind::Unimplemented,
            "unassigned" => DeviceKind::Unassigned,
            "ram" => DeviceKind::Ram,
            "rom" => DeviceKind::Rom,
            _ => return Err(UnknownKind(text.to_string())),
        })
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A named region of the guest's physical address space.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// The region's name (QEMU's `MemoryRegion` name).
    pub name: Arc<str>,
    /// Absolute guest-physical base address of the region (0 when unknown).
    pub base: u64,
    /// Size of the region in bytes (0 when unknown).
    pub size: u64,
    /// What kind of region it is.
    pub kind: DeviceKind,
}

/// Every id a [`DeviceTable`] can give is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the device table is full ({} devices)", DeviceId::UNASSIGNED.0)]
pub struct TableFull;

/// Interns devices so that events carry a 4-byte [`DeviceId`] instead of a name.
///
/// A device is identified by its name and base address: the 32 `virtio-mmio` slots of
/// `-M virt` are 32 devices with one name. Safe to share between vCPU threads.
#[derive(Debug, Default)]
pub struct DeviceTable {
    inner: RwLock<TableInner>,
}

#[derive(Debug, Default)]
struct TableInner {
    devices: Vec<Device>,
    /// Name, then base: looked up by `&str`, so the emulator callback never allocates.
    index: HashMap<Arc<str>, HashMap<u64, DeviceId>>,
}

impl DeviceTable {
    /// An empty table.
    pub fn new() -> DeviceTable {
        DeviceTable::default()
    }

    /// Returns the id of the device named `name` at `base`, adding it if new. A known
    /// device keeps the size and kind it was first added with. Fails only when every
    /// id below the reserved ones is taken.
    pub fn intern(
        &self,
        name: &str,
        base: u64,
        size: u64,
        kind: DeviceKind,
    ) -> Result<DeviceId, TableFull> {
        if let Some(id) = self.find(name, base) {
            return Ok(id);
        }
        let mut inner = self
            .inner
            .write()
            .unwrap_or_else(|poison| poison.into_inner());
        // Another thread may have added it since `find`.
        if let Some(&id) = inner.index.get(name).and_then(|bases| bases.get(&base)) {
            return Ok(id);
        }
        let id = u32::try_from(inner.devices.len())
            .ok()
            .filter(|&index| index < DeviceId::UNASSIGNED.0)
            .map(DeviceId)
            .ok_or(TableFull)?;
        let name: Arc<str> = Arc::from(name);
        inner.devices.push(Device {
            name: name.clone(),
            base,
            size,
            kind,
        });
        inner.index.entry(name).or_default().insert(base, id);
        Ok(id)
    }

    /// The id of an already interned device.
    pub fn find(&self, name: &str, base: u64) -> Option<DeviceId> {
        let inner = self
            .inner
            .read()
            .unwrap_or_else(|poison| poison.into_inner());
        inner.index.get(name)?.get(&base).copied()
    }

    /// The device behind `id`; `None` for [`DeviceId::UNKNOWN`] or a foreign id.
    pub fn get(&self, id: DeviceId) -> Option<Device> {
        let inner = self
            .inner
            .read()
            .unwrap_or_else(|poison| poison.into_inner());
        inner.devices.get(id.0 as usize).cloned()
    }

    /// Runs `f` on the device behind `id` (`None` as for [`DeviceTable::get`]) without
    /// cloning it: what the emulator callback uses, as it must not allocate or touch
    /// reference counts shared with other threads.
    pub fn with<R>(&self, id: DeviceId, f: impl FnOnce(Option<&Device>) -> R) -> R {
        let inner = self
            .inner
            .read()
            .unwrap_or_else(|poison| poison.into_inner());
        f(inner.devices.get(id.0 as usize))
    }

    /// The kind of the device behind `id`: `Unassigned` for [`DeviceId::UNASSIGNED`],
    /// `None` when unknown.
    pub fn kind(&self, id: DeviceId) -> Option<DeviceKind> {
        if id == DeviceId::UNASSIGNED {
            return Some(DeviceKind::Unassigned);
        }
        let inner = self
            .inner
            .read()
            .unwrap_or_else(|poison| poison.into_inner());
        inner.devices.get(id.0 as usize).map(|device| device.kind)
    }

    /// Number of devices.
    pub fn len(&self) -> usize {
        self.inner.read().map_or(0, |inner| inner.devices.len())
    }

    /// Whether the table has no device.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All devices, indexed by `DeviceId.0`.
    pub fn snapshot(&self) -> Vec<Device> {
        let inner = self
            .inner
            .read()
            .unwrap_or_else(|poison| poison.into_inner());
        inner.devices.clone()
    }

    /// Appends to `into` the devices added since it was last extended, so a writer
    /// thread can keep a lock-free cache of the table, which only grows.
    pub fn extend_cache(&self, into: &mut Vec<Device>) {
        let inner = self
            .inner
            .read()
            .unwrap_or_else(|poison| poison.into_inner());
        if into.len() < inner.devices.len() {
            into.extend_from_slice(&inner.devices[into.len()..]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_returns_the_same_id_for_the_same_name_and_base() {
        let table = DeviceTable::new();
        let uart = table
            .intern("pl011", 0x4000_c000, 0x1000, DeviceKind::Device)
            .unwrap();
        let systick = table
            .intern("systick", 0xe000_e010, 0xf0, DeviceKind::Device)
            .unwrap();
        assert_eq!(uart, DeviceId(0));
        assert_eq!(systick, DeviceId(1));
        assert_eq!(
            table
                .intern("pl011", 0x4000_c000, 0, DeviceKind::Rom)
                .unwrap(),
            uart
        );
        assert_eq!(table.len(), 2);
        let device = table.get(uart).unwrap();
        assert_eq!(&*device.name, "pl011");
        assert_eq!(device.size, 0x1000);
        assert_eq!(device.kind, DeviceKind::Device);
    }

    #[test]
    fn same_name_at_another_base_is_another_device() {
        let table = DeviceTable::new();
        let a = table
            .intern("virtio-mmio", 0x0a00_0000, 0x200, DeviceKind::Device)
            .unwrap();
        let b = table
            .intern("virtio-mmio", 0x0a00_0200, 0x200, DeviceKind::Device)
            .unwrap();
        assert_ne!(a, b);
        assert_eq!(table.find("virtio-mmio", 0x0a00_0200), Some(b));
        assert_eq!(table.find("virtio-mmio", 0x0a00_0400), None);
    }

    #[test]
    fn unknown_id_resolves_to_no_device() {
        let table = DeviceTable::new();
        table.intern("pl011", 0, 0, DeviceKind::Device).unwrap();
        assert!(table.get(DeviceId::UNKNOWN).is_none());
        assert!(table.get(DeviceId::UNASSIGNED).is_none());
        assert!(DeviceId::UNKNOWN.is_unknown());
        assert_eq!(table.kind(DeviceId::UNKNOWN), None);
        assert_eq!(
            table.kind(DeviceId::UNASSIGNED),
            Some(DeviceKind::Unassigned)
        );
        assert_eq!(table.kind(DeviceId(0)), Some(DeviceKind::Device));
    }

    #[test]
    fn cache_extends_with_new_devices_only() {
        let table = DeviceTable::new();
        table.intern("a", 0, 1, DeviceKind::Device).unwrap();
        let mut cache = Vec::new();
        table.extend_cache(&mut cache);
        table.intern("b", 1, 1, DeviceKind::Ram).unwrap();
        table.extend_cache(&mut cache);
        let names: Vec<&str> = cache.iter().map(|d| &*d.name).collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn kinds_round_trip_through_text() {
        for kind in [
            DeviceKind::Device,
            DeviceKind::Unimplemented,
            DeviceKind::Unassigned,
            DeviceKind::Ram,
            DeviceKind::Rom,
        ] {
            assert_eq!(kind.as_str().parse(), Ok(kind));
        }
        assert_eq!(
            "i/o".parse::<DeviceKind>().unwrap_err().to_string(),
            "unknown device kind \"i/o\" (expected device, unimplemented, unassigned, ram or rom)"
        );
    }
}
