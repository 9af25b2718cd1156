//! Parser for the text of QEMU's `info mtree -f` (the flat views of every address
//! space), as printed by QEMU 7 to 10: how the stock-QEMU front end learns the memory
//! map that PANDA's front end gets from a `MemoryListener`.

use thiserror::Error;

use crate::region::{RegionFlags, Section};

/// What is wrong with an `info mtree -f` dump.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum MtreeError {
    /// A line of a flat view does not parse.
    #[error("line {line}: {reason}: {text:?}")]
    BadLine {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: &'static str,
        /// The line.
        text: String,
    },
    /// The dump has no flat view of the CPU's address space.
    #[error("no flat view of address space {wanted} in the memory map dump (found: {found})")]
    NoAddressSpace {
        /// The address spaces looked for.
        wanted: String,
        /// The address spaces the dump has.
        found: String,
    },
}

struct FlatView {
    address_spaces: Vec<String>,
    /// `Root memory region: NAME`.
    root: Option<String>,
    ranges: Vec<MtreeRange>,
}

/// One line of a flat view.
#[derive(Debug, PartialEq, Eq)]
struct MtreeRange {
    first: u64,
    last: u64,
    priority: i64,
    attribute: String,
    name: String,
    /// Offset of `first` inside the region (the `@…` suffix), so its base is
    /// `first - offset_in_region`.
    offset_in_region: u64,
}

/// The sections of the CPU's view of memory in `info mtree -f`.
///
/// Picks the flat view of address space `cpu-memory-0` (on Cortex-M the only one that
/// holds the NVIC and SysTick), falling back to `memory`.
pub fn cpu_sections(text: &str) -> Result<Vec<Section>, MtreeError> {
    let views = parse_flat_views(text)?;
    Ok(sections(
        find_view(&views, &["cpu-memory-0", "memory"])?,
        false,
    ))
}

/// The sections of QEMU's I/O port space (`AS "I/O"`, what x86's `in` and `out`
/// reach) in `info mtree -f`; none for a dump without one. The space's root region
/// (`io`) answers the ports no device takes: those are holes, not a device.
pub fn io_sections(text: &str) -> Result<Vec<Section>, MtreeError> {
    let views = parse_flat_views(text)?;
    Ok(find_view(&views, &["I/O"])
        .map(|view| sections(view, true))
        .unwrap_or_default())
}

/// The flat view of the first of the `wanted` address spaces the dump has.
fn find_view<'a>(views: &'a [FlatView], wanted: &[&str]) -> Result<&'a FlatView, MtreeError> {
    wanted
        .iter()
        .find_map(|name| {
            views
                .iter()
                .find(|view| view.address_spaces.iter().any(|a| a == name))
        })
        .ok_or_else(|| MtreeError::NoAddressSpace {
            wanted: wanted.join(" or "),
            found: views
                .iter()
                .flat_map(|v| v.address_spaces.iter().cloned())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// A view's ranges as sections; without the root region's own ranges when
/// `root_is_hole`.
fn sections(view: &FlatView, root_is_hole: bool) -> Vec<Section> {
    view.ranges
        .iter()
        .filter(|range| !(root_is_hole && view.root.as_deref() == Some(&*range.name)))
        .map(|range| {
            let base = range.first.wrapping_sub(range.offset_in_region);
            // The region's size as far as this view shows it: from its base to the
            // last byte of its last section.
            let region_size = view
                .ranges
                .iter()
                .filter(|r| {
                    r.name == range.name && r.first.wrapping_sub(r.offset_in_region) == base
                })
                .map(|r| r.last)
                .max()
                .unwrap_or(range.last)
                .wrapping_sub(base)
                .wrapping_add(1);
            Section {
                name: Some(range.name.clone()),
                first: range.first,
                last: range.last,
                base,
                region_size,
                flags: RegionFlags::from_mtree_attribute(&range.attribute, range.priority),
                byte_order: None,
            }
        })
        .collect()
}

fn parse_flat_views(text: &str) -> Result<Vec<FlatView>, MtreeError> {
    let mut views: Vec<FlatView> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with("FlatView #") {
            views.push(FlatView {
                address_spaces: Vec::new(),
                root: None,
                ranges: Vec::new(),
            });
        } else if let Some(rest) = line.strip_prefix("AS \"") {
            if let (Some(view), Some(end)) = (views.last_mut(), rest.find('"')) {
                view.address_spaces.push(rest[..end].to_string());
            }
        } else if let Some(root) = line.strip_prefix("Root memory region: ") {
            if let Some(view) = views.last_mut() {
                view.root = Some(root.trim().to_string());
            }
        } else if line.starts_with(|c: char| c.is_ascii_hexdigit()) && line.contains(" (prio ") {
            let range = parse_range(line).map_err(|reason| MtreeError::BadLine {
                line: index + 1,
                reason,
                text: raw.to_string(),
            })?;
            if let Some(view) = views.last_mut() {
                view.ranges.push(range);
            }
        }
    }
    Ok(views)
}

/// `0000000040000000-0000000040000fff (prio 0, i/o): name @0000000000000010 …`
fn parse_range(line: &str) -> Result<MtreeRange, &'static str> {
    let (span, rest) = line.split_once(" (prio ").ok_or("no \"(prio\"")?;
    let (first, last) = span.split_once('-').ok_or("no '-' in the address range")?;
    let first = u64::from_str_radix(first, 16).map_err(|_| "bad start address")?;
    let last = u64::from_str_radix(last, 16).map_err(|_| "bad end address")?;
    if last < first {
        return Err("range ends before it starts");
    }
    let (attrs, name_part) = rest.split_once("): ").ok_or("no \"): \" before the name")?;
    let (priority, attribute) = attrs.split_once(", ").ok_or("no region attribute")?;
    let priority = priority.trim().parse().map_err(|_| "bad priority")?;
    // Owner annotations (`-o`) and the in-region offset follow the name.
    let name_part = name_part.split(" owner:").next().unwrap_or(name_part);
    let (name, offset_in_region) = match name_part.rsplit_once(" @") {
        Some((name, offset)) => (
            name,
            u64::from_str_radix(offset.split_whitespace().next().unwrap_or(""), 16)
                .map_err(|_| "bad region offset after '@'")?,
        ),
        None => (name_part, 0),
    };
    let name = name.trim();
    if name.is_empty() {
        return Err("no region name");
    }
    Ok(MtreeRange {
        first,
        last,
        priority,
        attribute: attribute.trim().to_string(),
        name: name.to_string(),
        offset_in_region,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_line_with_an_offset() {
        let range = parse_range(
            "00000000e000e0f0-00000000e000efff (prio 0, i/o): nvic_sysregs @00000000000000f0",
        )
        .unwrap();
        assert_eq!(
            range,
            MtreeRange {
                first: 0xe000_e0f0,
                last: 0xe000_efff,
                priority: 0,
                attribute: "i/o".into(),
                name: "nvic_sysregs".into(),
                offset_in_region: 0xf0,
            }
        );
    }

    #[test]
    fn parses_negative_priority_and_owner() {
        let range = parse_range(
            "00000000400fd000-00000000400fdfff (prio -1000, i/o): flash-control owner:{dev path=/machine/unattached/device[9]}",
        )
        .unwrap();
        assert_eq!(range.priority, -1000);
        assert_eq!(range.name, "flash-control");
    }

    #[test]
    fn bad_lines_name_the_problem() {
        let err = cpu_sections(
            "FlatView #0\n AS \"memory\", root: system\n  00000000zz-0000000001 (prio 0, i/o): x\n",
        )
        .unwrap_err();
        assert_eq!(
            err,
            MtreeError::BadLine {
                line: 3,
                reason: "bad start address",
                text: "  00000000zz-0000000001 (prio 0, i/o): x".into()
            }
        );
        let err = parse_range("0000000000002000-0000000000001000 (prio 0, i/o): x").unwrap_err();
        assert_eq!(err, "range ends before it starts");
    }

    #[test]
    fn missing_address_space_is_reported() {
        let err =
            cpu_sections("FlatView #0\n AS \"I/O\", root: io\n  0000-ffff (prio 0, i/o): io\n")
                .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no flat view of address space cpu-memory-0 or memory in the memory map dump (found: I/O)"
        );
    }
}
