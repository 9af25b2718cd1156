//! Which instructions cannot reach I/O, decided once per instruction at translation
//! time: from the instruction's bytes on 32-bit Arm (where the bytes tell A32 from
//! T32) and x86, else from QEMU's disassembly of it.
//!
//! Most guest loads and stores address the stack (push, pop, spills, `[sp, #n]`) or a
//! literal pool beside the code (`[pc, #n]`, `ldr x0, <label>`). Neither points into a
//! device, so such instructions need no memory callback at all; leaving them out is
//! what brings the plugin's cost down (`skip_sp_pc=on`). Anything not recognised
//! keeps its callback: a wrong "cannot reach I/O" loses events, a wrong "can" only
//! costs time.

/// The instruction sets whose disassembly this module reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// 32-bit Arm: A32 and T32 (Thumb), as printed for `qemu-system-arm`.
    Arm,
    /// A64, as printed for `qemu-system-aarch64`.
    Aarch64,
    /// x86 in any mode (`qemu-system-i386`, `qemu-system-x86_64`), decided from the
    /// bytes ([`x86_addresses_only_stack`]).
    X86,
}

impl Isa {
    /// The instruction set of QEMU's `target_name`, if this module knows it.
    pub fn of_target(target_name: &str) -> Option<Isa> {
        match target_name {
            "arm" => Some(Isa::Arm),
            "aarch64" => Some(Isa::Aarch64),
            "i386" | "x86_64" => Some(Isa::X86),
            _ => None,
        }
    }
}

/// True when every memory access of the instruction is addressed from the stack
/// pointer or the program counter, e.g. `push {r4, lr}`, `ldr r3, [pc, #0x10]`,
/// `stp x29, x30, [sp, #-0x10]!`, `ldr x0, #0x4000`. False for anything else,
/// including instructions that do not access memory (they get no callback anyway).
pub fn addresses_only_stack_or_literal(isa: Isa, disassembly: &str) -> bool {
    let mut words = disassembly.trim().splitn(2, char::is_whitespace);
    let mnemonic = words.next().unwrap_or_default().to_ascii_lowercase();
    let operands = words.next().unwrap_or_default().trim();
    // With or without a condition or width suffix: `popeq`, `push.w`.
    if ["push", "pop", "vpush", "vpop"]
        .iter()
        .any(|p| mnemonic.starts_with(p))
    {
        return true;
    }
    let is_load = ["ldr", "ldp", "ldur", "ldn", "tbb", "tbh"]
        .iter()
        .any(|p| mnemonic.starts_with(p));
    let is_store = ["str", "stp", "stur", "stn"]
        .iter()
        .any(|p| mnemonic.starts_with(p));
    let is_multiple = ["ldm", "stm", "vldm", "vstm"]
        .iter()
        .any(|p| mnemonic.starts_with(p));
    let is_vector = ["vldr", "vstr"].iter().any(|p| mnemonic.starts_with(p));
    if is_multiple {
        // `ldm sp!, {r4, pc}`: the base register is the first operand.
        let base = operands.split(',').next().unwrap_or_default();
        return is_stack_or_pc(base.trim().trim_end_matches('!'));
    }
    if !(is_load || is_store || is_vector) {
        return false;
    }
    match operands.find('[') {
        Some(open) => {
            let inside = operands[open + 1..].split(']').next().unwrap_or_default();
            let mut parts = inside.split(',').map(str::trim);
            let base = parts.next().unwrap_or_default();
            // `[sp, r1]`, `[pc, r3]` (TBB): the index register makes the address
            // anything. Immediate offsets (`#4`) keep it beside the stack or the code.
            let register_offset = parts.next().is_some_and(|offset| !offset.starts_with('#'));
            is_stack_or_pc(base) && !register_offset
        }
        // A64 literal loads name their target as an address, with no brackets.
        None => isa == Isa::Aarch64 && is_load,
    }
}

fn is_stack_or_pc(register: &str) -> bool {
    matches!(
        register.to_ascii_lowercase().as_str(),
        "sp" | "pc" | "r13" | "r15"
    )
}

/// The instruction set state of a 32-bit Arm translation block (one block never mixes
/// the two).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArmState {
    A32,
    T32,
}

/// The state a block of 32-bit Arm instructions (each 2 or 4 bytes, as QEMU hands
/// them over) was decoded in, when the bytes alone say: a 2-byte instruction is T32;
/// a 4-byte one whose first halfword does not start 0b11101, 0b11110 or 0b11111 is
/// A32 (every 32-bit T32 instruction does). `None` when every instruction could be
/// either.
pub fn arm_block_state<'a>(instructions: impl IntoIterator<Item = &'a [u8]>) -> Option<ArmState> {
    for bytes in instructions {
        match *bytes {
            [_, _] => return Some(ArmState::T32),
            [b0, b1, _, _] if !is_t32_first_halfword(u16::from_le_bytes([b0, b1])) => {
                return Some(ArmState::A32)
            }
            _ => {}
        }
    }
    None
}

fn is_t32_first_halfword(halfword: u16) -> bool {
    halfword >> 11 >= 0b11101
}

/// [`addresses_only_stack_or_literal`] for a 32-bit Arm instruction's bytes (as in
/// guest memory, little-endian) in a known state.
pub fn arm_addresses_only_stack_or_literal(state: ArmState, bytes: &[u8]) -> bool {
    match (state, bytes) {
        (ArmState::A32, &[b0, b1, b2, b3]) => a32(u32::from_le_bytes([b0, b1, b2, b3])),
        (ArmState::T32, &[b0, b1]) => t16(u16::from_le_bytes([b0, b1])),
        (ArmState::T32, &[b0, b1, b2, b3]) => {
            t32(u16::from_le_bytes([b0, b1]), u16::from_le_bytes([b2, b3]))
        }
        _ => false,
    }
}

/// SP (13) or PC (15).
fn is_stack_or_pc_register(register: u32) -> bool {
    register == 13 || register == 15
}

/// A32 loads and stores addressed by base register Rn (bits 19:16). The unconditional
/// space (condition 0b1111: barriers, PLD, RFE, SRS) is left instrumented.
fn a32(insn: u32) -> bool {
    if insn >> 28 == 0b1111 {
        return false;
    }
    let rn = (insn >> 16) & 0xf;
    // Pre-indexed or offset addressing (P, bit 24): the address is Rn plus the offset,
    // which with a register offset can be anything. Post-indexed, it is Rn itself.
    let indexed_first = insn & (1 << 24) != 0;
    // LDR/STR(B), immediate or register offset (bit 25 and bit 4 set: media instead).
    let single = (insn >> 26) & 0b11 == 0b01 && insn & 0x0200_0010 != 0x0200_0010;
    let single_register_offset = insn & (1 << 25) != 0;
    let extra = (insn >> 25) & 0b111 == 0 // LDRH/STRH/LDRSB/LDRSH/LDRD/STRD
        && insn & 0x90 == 0x90
        && (insn >> 5) & 0b11 != 0;
    let extra_register_offset = insn & (1 << 22) == 0;
    let multiple = (insn >> 25) & 0b111 == 0b100; // LDM/STM, PUSH/POP
    let coprocessor = (insn >> 25) & 0b111 == 0b110; // VLDR/VSTR/VLDM/VSTM, LDC/STC
    let register_indexed =
        indexed_first && ((single && single_register_offset) || (extra && extra_register_offset));
    (single || extra || multiple || coprocessor) && is_stack_or_pc_register(rn) && !register_indexed
}

/// 16-bit T32: the only forms that address SP or PC.
fn t16(insn: u16) -> bool {
    let literal = insn >> 11 == 0b01001; // LDR Rt, [PC, #imm]
    let stack = insn >> 12 == 0b1001; // LDR/STR Rt, [SP, #imm]
    let push_pop = insn & 0xf600 == 0xb400; // PUSH/POP
    literal || stack || push_pop
}

/// 32-bit T32: base register Rn in bits 3:0 of the first halfword.
fn t32(first: u16, second: u16) -> bool {
    let rn = u32::from(first & 0xf);
    let single = first & 0xfe00 == 0xf800; // LDR/STR(B/H), LDR literal
                                           // LDR/STR(B/H) (register): `[Rn, Rm]`, the address anything (with Rn = PC the
                                           // encoding is always a literal load).
    let single_register_offset = single && rn != 15 && first & 0x0080 == 0 && second & 0x0fc0 == 0;
    let dual_or_multiple = first & 0xfe00 == 0xe800; // LDRD/STRD, TBB/TBH, LDM/STM, PUSH/POP
                                                     // TBB/TBH `[Rn, Rm]`: a table beside the code, indexed by a register.
    let table_branch = first & 0xfff0 == 0xe8d0 && second & 0xffe0 == 0xf000;
    let coprocessor = first & 0xee00 == 0xec00; // VLDR/VSTR/VLDM/VSTM/VPUSH/VPOP, LDC/STC
    (single || dual_or_multiple || coprocessor)
        && is_stack_or_pc_register(rn)
        && !single_register_offset
        && !table_branch
}

/// True for an x86 instruction whose only memory accesses go through `SS:[rSP]`:
/// a near `call` with a relative target (`e8`: it pushes the return address), a near
/// `ret` (`c3`, `c2 imm16`) and `push`/`pop` of a register (`50`-`5f`), each with
/// at most the operand-size (`66`) and `rep`/`bnd` (`f2`, `f3`) prefixes, which do
/// not move the access. They are the calls and returns that end most translation
/// blocks. Anything else, `iret` (which reads descriptor tables) and indirect calls
/// through memory included, keeps its callback.
pub fn x86_addresses_only_stack(bytes: &[u8]) -> bool {
    let opcode = bytes
        .iter()
        .find(|&&byte| !matches!(byte, 0x66 | 0xf2 | 0xf3))
        .copied();
    matches!(opcode, Some(0xe8 | 0xc3 | 0xc2 | 0x50..=0x5f))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes as SeaBIOS (16- and 32-bit) and Debian's amd64 kernel have them.
    #[test]
    fn x86_calls_returns_and_register_pushes_address_only_the_stack() {
        for bytes in [
            &[0xe8, 0x10, 0x00, 0x00, 0x00][..],   // call rel32
            &[0x66, 0xe8, 0x10, 0x00, 0x00, 0x00], // call in 16-bit code
            &[0xc3],                               // ret
            &[0xf3, 0xc3],                         // repz ret
            &[0xf2, 0xc3],                         // bnd ret
            &[0xc2, 0x04, 0x00],                   // ret 4
            &[0x55],                               // push ebp
            &[0x5d],                               // pop ebp
        ] {
            assert!(x86_addresses_only_stack(bytes), "{bytes:02x?}");
        }
        for bytes in [
            &[0xff, 0x15, 0x00, 0x10, 0x00, 0x00][..], // call [rip+0x1000]
            &[0xff, 0xd0],                             // call rax: no access, kept
            &[0xcf],                                   // iret
            &[0xca, 0x00, 0x00],                       // far ret
            &[0x41, 0x55],                             // push r13: REX not taken
            &[0x64, 0xc3],                             // fs-prefixed: not taken
            &[0x8b, 0x07],                             // mov eax, [rdi]
            &[0xf3, 0xa5],                             // rep movsd
            &[0xf3, 0xab],                             // rep stosd
            &[0x66],                                   // a lone prefix
            &[],
        ] {
            assert!(!x86_addresses_only_stack(bytes), "{bytes:02x?}");
        }
    }

    /// Lines of QEMU 10.0's own disassembly (`-d in_asm`) of Debian's armhf kernel
    /// and of the test firmware.
    #[test]
    fn arm_stack_and_literal_accesses_are_recognised() {
        for text in [
            "ldr      r1, [pc, #4]",
            "ldr      pc, [pc, #4]",
            "push     {r4, r5, r6, r7, r8, sb, sl, fp, lr}",
            "pop      {r4, r5, r6, r7, r8, sb, sl, pc}",
            "str      r0, [sp, #0x14]",
            "str      r5, [sp]",
            "ldr      r0, [sp], #4",
            "strd     r2, r3, [sp, #8]",
            "ldrd     r0, r1, [pc, #0x20]",
            "ldm      sp!, {r4, r5}",
            "stmdb    sp!, {r0, r1}",
            "vpush    {d8, d9}",
            "vldr     d0, [pc, #0x40]",
            "vstr     s0, [sp, #4]",
            "ldr.w    r3, [sp, #0x24]",
            "ldr      r0, [sp], r1",
        ] {
            assert!(addresses_only_stack_or_literal(Isa::Arm, text), "{text}");
        }
    }

    #[test]
    fn arm_accesses_through_other_registers_keep_their_callback() {
        for text in [
            "ldr      r2, [r1, #4]",
            "ldr      sp, [r1]",
            "ldrb     r3, [r1], #1",
            "str      r3, [r2, sp]",
            // Issue #13: an index register makes the address anything.
            "ldr      r0, [sp, r1]",
            "ldr      r0, [pc, r1, lsl #2]",
            "tbb      [pc, r3]",
            "tbh      [pc, r2, lsl #1]",
            "ldm      r0, {r1, r2}",
            "stmia    r4!, {r0, r1}",
            "ldrex    r0, [r2]",
            "vldr     d0, [r3]",
            "ldc      p14, c5, [sp]",
            "mov      r0, sp",
            "add      r0, pc, #4",
            "",
        ] {
            assert!(!addresses_only_stack_or_literal(Isa::Arm, text), "{text}");
        }
    }

    #[test]
    fn a64_stack_and_literal_accesses_are_recognised() {
        for text in [
            "stp      x29, x30, [sp, #-0x10]!",
            "ldp      x29, x30, [sp], #0x10",
            "ldr      x0, [sp, #8]",
            "ldur     w1, [sp, #-4]",
            "ldr      x1, #0x40001000",
            "ldrsw    x2, #0xffff000008001234",
        ] {
            assert!(
                addresses_only_stack_or_literal(Isa::Aarch64, text),
                "{text}"
            );
        }
        for text in [
            "ldr      w0, [x1]",
            "str      w0, [x19, #0x18]",
            "ldp      x0, x1, [x29, #0x10]",
            "ld1      {v0.16b}, [x0]",
            "ldr      x0, [sp, x1]",
        ] {
            assert!(
                !addresses_only_stack_or_literal(Isa::Aarch64, text),
                "{text}"
            );
        }
    }

    #[test]
    fn a32_never_treats_a_bracketless_load_as_literal() {
        assert!(!addresses_only_stack_or_literal(
            Isa::Arm,
            "ldr r0, =0x4000c000"
        ));
    }

    /// Encodings from Debian's armhf kernel (A32) and the test firmware (T32).
    #[test]
    fn arm_bytes_decode_as_the_disassembly_reads() {
        let a32 =
            |word: u32| arm_addresses_only_stack_or_literal(ArmState::A32, &word.to_le_bytes());
        for (word, skip) in [
            (0xe59f_1004, true),  // ldr r1, [pc, #4]
            (0xe59f_f004, true),  // ldr pc, [pc, #4]
            (0xe92d_4010, true),  // push {r4, lr}
            (0xe8bd_8010, true),  // pop {r4, pc}
            (0xe58d_0014, true),  // str r0, [sp, #0x14]
            (0xe1cd_20f8, true),  // strd r2, r3, [sp, #8]
            (0xed2d_8b04, true),  // vpush {d8, d9}
            (0xe49d_0004, true),  // ldr r0, [sp], #4
            (0xe69d_0001, true),  // ldr r0, [sp], r1
            (0xe79d_0001, false), // ldr r0, [sp, r1]
            (0xe79f_0101, false), // ldr r0, [pc, r1, lsl #2]
            (0xe19d_00b1, false), // ldrh r0, [sp, r1]
            (0xe591_2004, false), // ldr r2, [r1, #4]
            (0xe591_d000, false), // ldr sp, [r1]
            (0xe4d1_3001, false), // ldrb r3, [r1], #1
            (0xe890_0006, false), // ldm r0, {r1, r2}
            (0xe192_3f9f, false), // ldrex r3, [r2]
            (0xe1a0_000d, false), // mov r0, sp
            (0xe28f_0004, false), // add r0, pc, #4
            (0xe00d_0291, false), // mul sp, r1, r2
        ] {
            assert_eq!(a32(word), skip, "{word:#010x}");
        }
        let t32 = |bytes: &[u8]| arm_addresses_only_stack_or_literal(ArmState::T32, bytes);
        for (bytes, skip) in [
            (&[0x01, 0x49][..], true),              // ldr r1, [pc, #4]
            (&[0x10, 0xb5][..], true),              // push {r4, lr}
            (&[0x10, 0xbd][..], true),              // pop {r4, pc}
            (&[0x01, 0x93][..], true),              // str r3, [sp, #4]
            (&[0x13, 0x60][..], false),             // str r3, [r2]
            (&[0x0b, 0x70][..], false),             // strb r3, [r1]
            (&[0xdd, 0xf8, 0x24, 0x30][..], true),  // ldr.w r3, [sp, #0x24]
            (&[0xdf, 0xf8, 0x10, 0x30][..], true),  // ldr.w r3, [pc, #0x10]
            (&[0xdf, 0xe8, 0x03, 0xf0][..], false), // tbb [pc, r3]
            (&[0xdf, 0xe8, 0x12, 0xf0][..], false), // tbh [pc, r2, lsl #1]
            (&[0x5d, 0xf8, 0x01, 0x00][..], false), // ldr.w r0, [sp, r1]
            (&[0x5d, 0xf8, 0x04, 0x0b][..], true),  // ldr.w r0, [sp], #4
            (&[0x2d, 0xe9, 0xf0, 0x41][..], true),  // push.w {r4-r8, lr}
            (&[0x2d, 0xed, 0x02, 0x8b][..], true),  // vpush {d8}
            (&[0x12, 0xf8, 0x01, 0x3f][..], false), // ldrb.w r3, [r2, #1]!
            (&[0x40, 0xf2, 0x01, 0x33][..], false), // movw r3, #0x301
        ] {
            assert_eq!(t32(bytes), skip, "{bytes:02x?}");
        }
    }

    #[test]
    fn the_bytes_tell_the_arm_state_or_say_they_cannot() {
        let movw = [0x40, 0xf2, 0x01, 0x33]; // T32 or, as A32, an undefined pattern
        let ldr = 0xe59f_1004u32.to_le_bytes();
        assert_eq!(
            arm_block_state([&movw[..], &[0x13, 0x60]]),
            Some(ArmState::T32)
        );
        assert_eq!(arm_block_state([&movw[..], &ldr[..]]), Some(ArmState::A32));
        assert_eq!(arm_block_state([&movw[..]]), None);
    }

    #[test]
    fn only_arm_targets_are_read() {
        assert_eq!(Isa::of_target("arm"), Some(Isa::Arm));
        assert_eq!(Isa::of_target("aarch64"), Some(Isa::Aarch64));
        assert_eq!(Isa::of_target("x86_64"), Some(Isa::X86));
        assert_eq!(Isa::of_target("i386"), Some(Isa::X86));
        assert_eq!(Isa::of_target("riscv64"), None);
    }
}
