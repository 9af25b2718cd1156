//! Register names from a CMSIS-SVD file: which peripheral and register an address is
//! (`UART0.TXD`), and a value decoded into the register's fields
//! (`ENABLE=Enabled`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use svd_parser::svd::RegisterCluster;

/// The address an event's register is looked up by: the physical one, else the one
/// the guest used (an untranslated access).
pub fn register_address(event: &mmio_core::MmioEvent) -> u64 {
    event.phys_addr.unwrap_or(event.virt_addr)
}

/// One field of a register.
#[derive(Clone, Debug)]
struct Field {
    name: String,
    lsb: u32,
    width: u32,
    /// Named values, where the SVD gives them.
    values: Vec<(u64, String)>,
}

/// One register, at its absolute address.
#[derive(Clone, Debug)]
pub struct Register {
    /// `PERIPHERAL.REGISTER`.
    pub name: String,
    /// Its first byte.
    pub address: u64,
    /// Bytes.
    size: u64,
    fields: Vec<Field>,
}

/// One peripheral's address range.
#[derive(Clone, Debug)]
pub struct Peripheral {
    /// The SVD's name, e.g. `TEMP`.
    pub name: String,
    /// First address.
    pub base: u64,
    /// Last address.
    pub last: u64,
}

/// The peripherals and registers of an SVD file, looked up by address.
pub struct SvdMap {
    /// The file, for messages.
    pub path: PathBuf,
    /// Sorted by base.
    peripherals: Vec<Peripheral>,
    /// Sorted by address.
    registers: Vec<Register>,
}

impl SvdMap {
    /// Reads `path`; a missing or malformed file is an error naming it and the
    /// element at fault.
    pub fn load(path: &Path) -> Result<SvdMap> {
        let xml = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut config = svd_parser::Config::default();
        config.expand = true;
        config.expand_properties = true;
        let device = svd_parser::parse_with_config(&xml, &config).map_err(|e| {
            anyhow::anyhow!("{}: not a valid CMSIS-SVD file: {e:#}", path.display())
        })?;
        let mut map = SvdMap {
            path: path.to_path_buf(),
            peripherals: Vec::new(),
            registers: Vec::new(),
        };
        let default_size = device.default_register_properties.size.unwrap_or(32);
        for peripheral in &device.peripherals {
            let base = peripheral.base_address;
            let mut last = base;
            for block in peripheral.address_block.iter().flatten() {
                let end = base + u64::from(block.offset) + u64::from(block.size);
                last = last.max(end.saturating_sub(1));
            }
            let mut registers = Vec::new();
            collect(
                peripheral.registers.as_deref().unwrap_or_default(),
                base,
                &peripheral.name,
                peripheral
                    .default_register_properties
                    .size
                    .unwrap_or(default_size),
                &mut registers,
            );
            for register in &registers {
                last = last.max(register.address + register.size - 1);
            }
            map.peripherals.push(Peripheral {
                name: peripheral.name.clone(),
                base,
                last,
            });
            map.registers.extend(registers);
        }
        map.peripherals.sort_by_key(|p| p.base);
        map.registers.sort_by_key(|r| r.address);
        Ok(map)
    }

    /// The peripheral whose range holds `address`.
    pub fn peripheral(&self, address: u64) -> Option<&Peripheral> {
        let index = self.peripherals.partition_point(|p| p.base <= address);
        self.peripherals[..index]
            .iter()
            .rev()
            .find(|p| address <= p.last)
    }

    /// The register at `address` (an access inside it, e.g. a byte of a word register,
    /// counts).
    pub fn register(&self, address: u64) -> Option<&Register> {
        let index = self.registers.partition_point(|r| r.address <= address);
        let register = self.registers[..index].last()?;
        (address < register.address + register.size).then_some(register)
    }

    /// Warns when none of `addresses` falls in a peripheral of the file: most likely
    /// the SVD of another chip.
    pub fn warn_unless_covering(&self, mut addresses: impl Iterator<Item = u64>) {
        if !addresses.any(|address| self.peripheral(address).is_some()) {
            self.warn_covers_none();
        }
    }

    /// Warns that the file names none of the trace's addresses.
    pub fn warn_covers_none(&self) {
        tracing::warn!(
            "{}: the SVD file covers none of the trace's addresses (another chip's?)",
            self.path.display()
        );
    }
}

impl Register {
    /// `value` as its fields, `NAME=value` (the SVD's name for the value where it has
    /// one), most significant first; empty when the register has no fields. Of a
    /// register with more than eight fields (one a pin: `OUTSET`), only the fields
    /// that are not zero.
    pub fn decode(&self, value: u64) -> String {
        let mut fields: Vec<&Field> = self.fields.iter().collect();
        fields.sort_by_key(|field| std::cmp::Reverse(field.lsb));
        let many = fields.len() > 8;
        let parts: Vec<String> = fields
            .iter()
            .filter_map(|field| {
                let mask = if field.width >= 64 {
                    u64::MAX
                } else {
                    (1u64 << field.width) - 1
                };
                let bits = (value >> field.lsb) & mask;
                if many && bits == 0 {
                    return None;
                }
                Some(match field.values.iter().find(|(v, _)| *v == bits) {
                    Some((_, name)) => format!("{}={name}", field.name),
                    None => format!("{}={bits:#x}", field.name),
                })
            })
            .collect();
        parts.join(" ")
    }
}

/// The registers of `items` (registers and clusters, arrays already expanded) at
/// `base`.
fn collect(
    items: &[RegisterCluster],
    base: u64,
    prefix: &str,
    default_size: u32,
    out: &mut Vec<Register>,
) {
    for item in items {
        match item {
            RegisterCluster::Register(register) => {
                let size = register.properties.size.unwrap_or(default_size);
                out.push(Register {
                    name: format!("{prefix}.{}", register.name),
                    address: base + u64::from(register.address_offset),
                    size: u64::from(size.div_ceil(8)).max(1),
                    fields: register
                        .fields
                        .iter()
                        .flatten()
                        .map(|field| Field {
                            name: field.name.clone(),
                            lsb: field.bit_range.offset,
                            width: field.bit_range.width,
                            values: field
                                .enumerated_values
                                .iter()
                                .flat_map(|values| &values.values)
                                .filter_map(|v| Some((v.value?, v.name.clone())))
                                .collect(),
                        })
                        .collect(),
                });
            }
            RegisterCluster::Cluster(cluster) => {
                let size = cluster
                    .default_register_properties
                    .size
                    .unwrap_or(default_size);
                collect(
                    &cluster.children,
                    base + u64::from(cluster.address_offset),
                    &format!("{prefix}.{}", cluster.name),
                    size,
                    out,
                );
            }
        }
    }
}
