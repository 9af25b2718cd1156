use mmio_core::{Device, DeviceId, DeviceKind, DeviceTable, TableFull};

/// A writer thread's lock-free copy of the device table; it only grows.
#[derive(Default)]
pub(crate) struct DeviceCache {
    devices: Vec<Device>,
}

impl DeviceCache {
    /// The device behind `id`, refreshing the copy when `id` is newer than it.
    pub fn get(&mut self, id: DeviceId, table: &DeviceTable) -> Option<&Device> {
        if id.is_absent() {
            return None;
        }
        if id.0 as usize >= self.devices.len() {
            table.extend_cache(&mut self.devices);
        }
        self.devices.get(id.0 as usize)
    }

    /// The kind stored for an event's device: `unassigned` for a hole, `None` when the
    /// device is unknown.
    pub fn kind(&mut self, id: DeviceId, table: &DeviceTable) -> Option<DeviceKind> {
        if id == DeviceId::UNASSIGNED {
            return Some(DeviceKind::Unassigned);
        }
        self.get(id, table).map(|device| device.kind)
    }
}

/// Rebuilds an event's device when reading a file back: the region base is where the
/// access's offset starts counting.
pub(crate) fn intern_read_device(
    table: &DeviceTable,
    name: Option<&str>,
    kind: Option<DeviceKind>,
    address: u64,
    offset: u64,
) -> Result<DeviceId, TableFull> {
    Ok(match (name, kind) {
        (Some(name), kind) => table.intern(
            name,
            address.wrapping_sub(offset),
            0,
            kind.unwrap_or(DeviceKind::Device),
        )?,
        (None, Some(DeviceKind::Unassigned)) => DeviceId::UNASSIGNED,
        (None, _) => DeviceId::UNKNOWN,
    })
}
