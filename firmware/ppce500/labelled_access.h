/*
 * One labelled MMIO access for PowerPC: the instruction `insn` (stb, stw, lbz, lwz)
 * behind the global label `label`, so that the tests find each access's PC in the
 * symbol table. The address operand uses the "b" constraint (any GPR but r0: as a base
 * register r0 reads as 0) with displacement 0: one instruction.
 */
#ifndef LABELLED_ACCESS_H
#define LABELLED_ACCESS_H

#include <stdint.h>

#define STORE(label, insn, addr, val)                                          \
    __asm__ volatile(".global " label "\n" label ":\n\t" insn " %0, 0(%1)"     \
                     :                                                         \
                     : "r"((uint32_t)(val)), "b"(addr)                         \
                     : "memory")
#define LOAD(label, insn, addr, out)                                           \
    __asm__ volatile(".global " label "\n" label ":\n\t" insn " %0, 0(%1)"     \
                     : "=r"(out)                                               \
                     : "b"(addr)                                               \
                     : "memory")

#endif
