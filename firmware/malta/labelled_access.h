/*
 * One labelled MMIO access for MIPS: the instruction `insn` (sb, sw, lbu, lw) behind
 * the global label `label`, so that the tests find each access's PC in the symbol
 * table. The address is a register operand with offset 0: one instruction, no macro.
 */
#ifndef LABELLED_ACCESS_H
#define LABELLED_ACCESS_H

#include <stdint.h>

#define STORE(label, insn, addr, val)                                          \
    __asm__ volatile(".global " label "\n" label ":\n\t" insn " %0, 0(%1)"     \
                     :                                                         \
                     : "r"((uint32_t)(val)), "r"(addr)                         \
                     : "memory")
#define LOAD(label, insn, addr, out)                                           \
    __asm__ volatile(".global " label "\n" label ":\n\t" insn " %0, 0(%1)"     \
                     : "=r"(out)                                               \
                     : "r"(addr)                                               \
                     : "memory")

#endif
