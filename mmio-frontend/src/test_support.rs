//! Fixtures the front ends' tests share (feature `test-support`, never in a plugin).

use crate::region::{RegionFlags, Section};

/// Defines each named C function as one that panics if called: an executable that
/// links a plugin's glue outside its emulator (a unit test, a benchmark) needs the
/// emulator functions the glue refers to, and must never reach them.
///
/// `emulator_functions_unavailable!("PANDA", panda_current_pc, rr_get_guest_instr_count_external);`
#[macro_export]
macro_rules! emulator_functions_unavailable {
    ($emulator:literal, $($name:ident),* $(,)?) => {$(
        #[no_mangle]
        extern "C" fn $name() {
            unreachable!(concat!(stringify!($name), " called outside ", $emulator));
        }
    )*};
}

/// A map as PANDA's memory listener reports it: lm3s6965evb's SRAM, UART, SysTick
/// (priority 1) and `flash-control` stub (QEMU's unimplemented-device priority), plus
/// virt's CFI flash, a ROM device, over the first page.
pub fn listener_sections() -> Vec<Section> {
    let flash = RegionFlags {
        rom_device: true,
        ..RegionFlags::default()
    };
    [
        ("stellaris.sram", 0x2000_0000, 0x1_0000, true, 0),
        ("pl011", 0x4000_c000, 0x1000, false, 0),
        ("v7m_systick", 0xe000_e010, 0xe0, false, 1),
        ("flash-control", 0x400f_d000, 0x1000, false, -1000),
    ]
    .into_iter()
    .map(|(name, first, size, ram, priority)| {
        let flags = RegionFlags {
            ram,
            priority,
            ..RegionFlags::default()
        };
        (name, first, size, flags)
    })
    .chain([("virt.flash0", 0x0, 0x1000, flash)])
    .map(|(name, first, size, flags)| {
        Section::from_listener(Some(name.into()), first, size, 0, flags)
            .expect("a fixture section is valid")
    })
    .collect()
}
