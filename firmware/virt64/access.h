/*
 * AArch64 counterpart of ../include/labelled_access.h: one labelled MMIO access, the
 * single load or store instruction right behind the global label `label`, so that the
 * tests find each access's PC in the symbol table. A label used twice (e.g. a macro in
 * a function the compiler inlines twice) fails at assembly time, so labels stay unique.
 *
 * The width is in the macro's name: the 8- and 16-bit forms use strb/strh/ldrb/ldrh on a
 * W register, the 32-bit forms str/ldr on a W register, the 64-bit forms on an X one.
 */
#ifndef VIRT64_ACCESS_H
#define VIRT64_ACCESS_H

#include <stdint.h>

#define MMIO_LABEL(label) ".global " label "\n" label ":\n\t"

#define MMIO_STORE(label, insn, reg, type, addr, val)                          \
    __asm__ volatile(MMIO_LABEL(label) insn " %" reg "0, [%1]"                 \
                     :                                                         \
                     : "r"((type)(val)), "r"(addr)                             \
                     : "memory")
#define MMIO_LOAD(label, insn, reg, addr, out)                                 \
    __asm__ volatile(MMIO_LABEL(label) insn " %" reg "0, [%1]"                 \
                     : "=r"(out)                                               \
                     : "r"(addr)                                               \
                     : "memory")

#define WRITE8(label, addr, val) MMIO_STORE(label, "strb", "w", uint32_t, addr, val)
#define WRITE16(label, addr, val) MMIO_STORE(label, "strh", "w", uint32_t, addr, val)
#define WRITE32(label, addr, val) MMIO_STORE(label, "str", "w", uint32_t, addr, val)
#define WRITE64(label, addr, val) MMIO_STORE(label, "str", "x", uint64_t, addr, val)
/* `out` must be a uint32_t for READ8/16/32 and a uint64_t for READ64. */
#define READ8(label, addr, out) MMIO_LOAD(label, "ldrb", "w", addr, out)
#define READ16(label, addr, out) MMIO_LOAD(label, "ldrh", "w", addr, out)
#define READ32(label, addr, out) MMIO_LOAD(label, "ldr", "w", addr, out)
#define READ64(label, addr, out) MMIO_LOAD(label, "ldr", "x", addr, out)

#endif
