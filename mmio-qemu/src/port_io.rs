//! x86 port I/O (`in`, `out`, `ins`, `outs`), which reaches QEMU's I/O address space
//! through helpers that no plugin memory callback sees (QEMU 10.0.2
//! `target/i386/tcg/misc_helper.c`: `address_space_stb(&address_space_io, ...)`). The
//! plugin finds these instructions at translation time from their bytes and reads the
//! port and value from the registers when they run; this module decodes them and
//! packs what a callback needs into its userdata, testable without QEMU.
//!
//! QEMU 10.0.2 makes each of them the last instruction of its translation block
//! (`translator_io_start` in `gen_IN`, `gen_OUT`, `gen_INS`, `gen_OUTS`,
//! target/i386/tcg/emit.c.inc), so an `in`'s value is in the accumulator when the
//! vCPU's next block starts.

use mmio_core::Access;

/// Where an instruction takes its port from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortOperand {
    /// An 8-bit immediate (`in al, 0x71`).
    Immediate(u8),
    /// `dx`.
    Dx,
}

/// A port I/O instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortInstruction {
    /// `Read` for `in`/`ins`, `Write` for `out`/`outs`.
    pub access: Access,
    /// The port.
    pub port: PortOperand,
    /// Bytes per access: 1 for the byte forms; for the others 2 or 4 by the code's
    /// operand size, which the bytes alone do not tell (`None`; see
    /// [`size_from_disassembly`]).
    pub size: Option<u8>,
    /// `ins`/`outs`: the data goes to or comes from memory at `es:di` / `ds:si`, one
    /// access per iteration (with `rep`).
    pub string: bool,
    /// A `0x66` prefix flips the operand size.
    pub operand_size_prefix: bool,
}

/// The port I/O instruction `bytes` hold, if they hold one (legacy prefixes and a REX
/// prefix skipped).
pub fn decode(bytes: &[u8]) -> Option<PortInstruction> {
    let mut operand_size_prefix = false;
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        match byte {
            0x66 => operand_size_prefix = true,
            // Address size, lock, rep, segment overrides.
            0x67 | 0xf0 | 0xf2 | 0xf3 | 0x26 | 0x2e | 0x36 | 0x3e | 0x64 | 0x65 => {}
            // REX (64-bit code; one instruction's bytes cannot be inc/dec followed by
            // another instruction).
            0x40..=0x4f => {}
            _ => break,
        }
        index += 1;
    }
    let opcode = *bytes.get(index)?;
    let immediate = || bytes.get(index + 1).copied().map(PortOperand::Immediate);
    let (access, port, byte_form, string) = match opcode {
        0xe4 => (Access::Read, immediate()?, true, false),
        0xe5 => (Access::Read, immediate()?, false, false),
        0xe6 => (Access::Write, immediate()?, true, false),
        0xe7 => (Access::Write, immediate()?, false, false),
        0xec => (Access::Read, PortOperand::Dx, true, false),
        0xed => (Access::Read, PortOperand::Dx, false, false),
        0xee => (Access::Write, PortOperand::Dx, true, false),
        0xef => (Access::Write, PortOperand::Dx, false, false),
        0x6c => (Access::Read, PortOperand::Dx, true, true),
        0x6d => (Access::Read, PortOperand::Dx, false, true),
        0x6e => (Access::Write, PortOperand::Dx, true, true),
        0x6f => (Access::Write, PortOperand::Dx, false, true),
        _ => return None,
    };
    Some(PortInstruction {
        access,
        port,
        size: byte_form.then_some(1),
        string,
        operand_size_prefix,
    })
}

/// The access width QEMU's disassembly (AT&T syntax, as Debian's QEMU prints it with
/// capstone: `inl %dx, %eax`, `outsw`, `inb $0x71, %al`) shows by its mnemonic's suffix.
pub fn size_from_disassembly(text: &str) -> Option<u8> {
    let mnemonic = text.split_whitespace().find(|word| {
        let word = word.to_ascii_lowercase();
        ["in", "out", "ins", "outs"]
            .iter()
            .any(|stem| word.len() == stem.len() + 1 && word.starts_with(stem))
    })?;
    match mnemonic.to_ascii_lowercase().chars().last()? {
        'b' => Some(1),
        'w' => Some(2),
        'l' | 'd' => Some(4),
        _ => None,
    }
}

/// The width of a word-form instruction when the disassembly does not tell it: the
/// rule of 32- and 64-bit code (4 bytes, 2 with `0x66`), wrong for 16-bit code.
pub fn size_without_disassembly(instruction: &PortInstruction) -> u8 {
    instruction
        .size
        .unwrap_or(if instruction.operand_size_prefix {
            2
        } else {
            4
        })
}

/// What a port callback needs, packed into its 64-bit userdata so that nothing is
/// allocated per translated instruction: the instruction's address (its low 48 bits,
/// sign-extended back: x86-64's canonical addresses), the immediate port, the width,
/// the direction, and whether the port is `dx`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortSite {
    /// The instruction's address.
    pub pc: u64,
    /// The port operand.
    pub port: PortOperand,
    /// Bytes per access: 1, 2 or 4.
    pub size: u8,
    /// Read (`in`) or write (`out`).
    pub access: Access,
}

impl PortSite {
    /// The packed form (see the type's documentation).
    pub fn pack(self) -> u64 {
        let (immediate, dx) = match self.port {
            PortOperand::Immediate(port) => (u64::from(port), 0),
            PortOperand::Dx => (0, 1),
        };
        let size_code = match self.size {
            1 => 0,
            2 => 1,
            _ => 2,
        };
        let write = u64::from(self.access == Access::Write);
        (self.pc & ((1 << 48) - 1)) | immediate << 48 | size_code << 56 | write << 58 | dx << 59
    }

    /// The site `packed` holds.
    pub fn unpack(packed: u64) -> PortSite {
        // Sign-extend from bit 47.
        let pc = (((packed << 16) as i64) >> 16) as u64;
        let port = if packed >> 59 & 1 == 1 {
            PortOperand::Dx
        } else {
            PortOperand::Immediate((packed >> 48) as u8)
        };
        PortSite {
            pc,
            port,
            size: 1 << (packed >> 56 & 3),
            access: if packed >> 58 & 1 == 1 {
                Access::Write
            } else {
                Access::Read
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(access: Access, port: PortOperand, string: bool, prefix: bool) -> PortInstruction {
        PortInstruction {
            access,
            port,
            size: None,
            string,
            operand_size_prefix: prefix,
        }
    }

    #[test]
    fn decodes_every_form() {
        let byte = |access, port, string| PortInstruction {
            size: Some(1),
            ..word(access, port, string, false)
        };
        // SeaBIOS's CMOS access, `outb %al, $0x70` / `inb $0x71, %al`.
        assert_eq!(
            decode(&[0xe6, 0x70]),
            Some(byte(Access::Write, PortOperand::Immediate(0x70), false))
        );
        assert_eq!(
            decode(&[0xe4, 0x71]),
            Some(byte(Access::Read, PortOperand::Immediate(0x71), false))
        );
        assert_eq!(
            decode(&[0xee]),
            Some(byte(Access::Write, PortOperand::Dx, false))
        );
        assert_eq!(
            decode(&[0xed]),
            Some(word(Access::Read, PortOperand::Dx, false, false))
        );
        // `inw %dx, %ax` in 32-bit code.
        assert_eq!(
            decode(&[0x66, 0xed]),
            Some(word(Access::Read, PortOperand::Dx, false, true))
        );
        assert_eq!(
            decode(&[0xe7, 0x92]),
            Some(word(
                Access::Write,
                PortOperand::Immediate(0x92),
                false,
                false
            ))
        );
        // `rep outsb`, `rep insw` (with a segment override), `insl` with a REX.W.
        assert_eq!(
            decode(&[0xf3, 0x6e]),
            Some(byte(Access::Write, PortOperand::Dx, true))
        );
        assert_eq!(
            decode(&[0x66, 0xf3, 0x26, 0x6d]),
            Some(word(Access::Read, PortOperand::Dx, true, true))
        );
        assert_eq!(
            decode(&[0x48, 0x6d]),
            Some(word(Access::Read, PortOperand::Dx, true, false))
        );
        assert_eq!(
            decode(&[0x6c]),
            Some(byte(Access::Read, PortOperand::Dx, true))
        );
        assert_eq!(
            decode(&[0x6f]),
            Some(word(Access::Write, PortOperand::Dx, true, false))
        );
        // Not port I/O: `mov`, `nop`, a truncated `in al, imm8`, prefixes alone.
        assert_eq!(decode(&[0x89, 0xc0]), None);
        assert_eq!(decode(&[0x90]), None);
        assert_eq!(decode(&[0xe4]), None);
        assert_eq!(decode(&[0x66, 0xf3]), None);
        assert_eq!(decode(&[]), None);
    }

    #[test]
    fn sizes_come_from_the_disassembly_or_the_32_bit_rule() {
        assert_eq!(size_from_disassembly("inl      %dx, %eax"), Some(4));
        assert_eq!(size_from_disassembly("inw      %dx, %ax"), Some(2));
        assert_eq!(size_from_disassembly("outb     %al, $0x70"), Some(1));
        assert_eq!(size_from_disassembly("rep outsb (%esi), %dx"), Some(1));
        assert_eq!(size_from_disassembly("insl     %dx, (%edi)"), Some(4));
        assert_eq!(size_from_disassembly("movl     %eax, %edx"), None);
        assert_eq!(size_from_disassembly("int3"), None);
        let ed = decode(&[0xed]).unwrap();
        assert_eq!(size_without_disassembly(&ed), 4);
        assert_eq!(size_without_disassembly(&decode(&[0x66, 0xed]).unwrap()), 2);
        assert_eq!(size_without_disassembly(&decode(&[0xec]).unwrap()), 1);
    }

    #[test]
    fn sites_pack_into_userdata() {
        for site in [
            PortSite {
                pc: 0x000f_ec16,
                port: PortOperand::Immediate(0x70),
                size: 1,
                access: Access::Write,
            },
            PortSite {
                pc: 0xffff_ffff_8100_1234,
                port: PortOperand::Dx,
                size: 4,
                access: Access::Read,
            },
            PortSite {
                pc: 0x7fff_ffff_f000,
                port: PortOperand::Immediate(0xff),
                size: 2,
                access: Access::Read,
            },
        ] {
            assert_eq!(PortSite::unpack(site.pack()), site);
        }
    }
}
