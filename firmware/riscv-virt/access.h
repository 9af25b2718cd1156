/*
 * RISC-V version of ../include/labelled_access.h: one labelled MMIO access, the load or
 * store instruction `insn` behind the global label `label`, so that the tests find each
 * access's PC in the symbol table. Addresses are 0(reg); values and results are
 * register-wide (uintptr_t), so `sd`/`ld` work on rv64. The assembler may pick the
 * 2-byte compressed form (c.sw, c.lw, ...); it is still exactly one instruction.
 * A label used twice (e.g. a function inlined twice) is an assembler error.
 */
#ifndef RISCV_ACCESS_H
#define RISCV_ACCESS_H

#include <stdint.h>

#define STORE(label, insn, addr, val)                                          \
    __asm__ volatile(".global " label "\n" label ":\n\t" insn " %0, 0(%1)"     \
                     :                                                         \
                     : "r"((uintptr_t)(val)), "r"(addr)                        \
                     : "memory")
#define LOAD(label, insn, addr, out)                                           \
    __asm__ volatile(".global " label "\n" label ":\n\t" insn " %0, 0(%1)"     \
                     : "=r"(out)                                               \
                     : "r"(addr)                                               \
                     : "memory")

#endif
