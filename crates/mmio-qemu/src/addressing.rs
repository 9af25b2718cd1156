//! Which instructions cannot reach I/O, decided once per instruction at translation
//! time from QEMU's disassembly of it.
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
}

impl Isa {
    /// The instruction set of QEMU's `target_name`, if this module knows it.
    pub fn of_target(target_name: &str) -> Option<Isa> {
        match target_name {
            "arm" => Some(Isa::Arm),
            "aarch64" => Some(Isa::Aarch64),
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
    if matches!(mnemonic.as_str(), "push" | "pop" | "vpush" | "vpop") {
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
            let base = operands[open + 1..]
                .split([',', ']'])
                .next()
                .unwrap_or_default();
            is_stack_or_pc(base.trim())
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

#[cfg(test)]
mod tests {
    use super::*;

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
            "tbb      [pc, r3]",
            "tbh      [pc, r2, lsl #1]",
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

    #[test]
    fn only_arm_targets_are_read() {
        assert_eq!(Isa::of_target("arm"), Some(Isa::Arm));
        assert_eq!(Isa::of_target("aarch64"), Some(Isa::Aarch64));
        assert_eq!(Isa::of_target("x86_64"), None);
    }
}
