/*
 * x86 counterpart of labelled_access.h: one port I/O or MMIO access, the instruction
 * behind the global label `label`, so that the tests find each access's PC in the
 * symbol table. AT&T syntax: source operand first. Pass a value or output variable of
 * the access's width (uint8_t for b, uint16_t for w, uint32_t for l): the assembler
 * rejects a mismatched register.
 */
#ifndef PC_ACCESS_H
#define PC_ACCESS_H

#include <stdint.h>

#define ACCESS_LABEL(label) ".global " label "\n" label ":\n\t"

/* Port in the instruction (0-0xff only): outb %al, $port / inb $port, %al. */
#define OUTB_IMM(label, port, val)                                             \
    __asm__ volatile(ACCESS_LABEL(label) "outb %0, %1"                         \
                     :                                                         \
                     : "a"((uint8_t)(val)), "N"(port)                          \
                     : "memory")
#define INB_IMM(label, port, out)                                              \
    __asm__ volatile(ACCESS_LABEL(label) "inb %1, %0"                          \
                     : "=a"(out)                                               \
                     : "N"(port)                                               \
                     : "memory")

/* Port in DX (any port): insn is "outb", "outw" or "outl" ("inb", ...). */
#define OUT_DX(label, insn, port, val)                                         \
    __asm__ volatile(ACCESS_LABEL(label) insn " %0, %%dx"                      \
                     :                                                         \
                     : "a"(val), "d"((uint16_t)(port))                         \
                     : "memory")
#define IN_DX(label, insn, port, out)                                          \
    __asm__ volatile(ACCESS_LABEL(label) insn " %%dx, %0"                      \
                     : "=a"(out)                                               \
                     : "d"((uint16_t)(port))                                   \
                     : "memory")

/* String port I/O: one instruction, `count` iterations of a 1-byte access. */
#define REP_OUTSB(label, port, buf, count)                                     \
    do {                                                                       \
        const void *src_ = (buf);                                              \
        uint32_t n_ = (count);                                                 \
        __asm__ volatile("cld\n\t" ACCESS_LABEL(label) "rep outsb"             \
                         : "+S"(src_), "+c"(n_)                                \
                         : "d"((uint16_t)(port))                               \
                         : "memory");                                          \
    } while (0)
#define REP_INSB(label, port, buf, count)                                      \
    do {                                                                       \
        void *dst_ = (buf);                                                    \
        uint32_t n_ = (count);                                                 \
        __asm__ volatile("cld\n\t" ACCESS_LABEL(label) "rep insb"              \
                         : "+D"(dst_), "+c"(n_)                                \
                         : "d"((uint16_t)(port))                               \
                         : "memory");                                          \
    } while (0)

/* MMIO: insn is e.g. "movl" (write), "movl" / "movzwl" / "movzbl" (read into a uint32_t). */
#define STORE(label, insn, addr, val)                                          \
    __asm__ volatile(ACCESS_LABEL(label) insn " %0, (%1)"                      \
                     :                                                         \
                     : "r"((uint32_t)(val)), "r"(addr)                         \
                     : "memory")
#define LOAD(label, insn, addr, out)                                           \
    __asm__ volatile(ACCESS_LABEL(label) insn " (%1), %0"                      \
                     : "=r"(out)                                               \
                     : "r"(addr)                                               \
                     : "memory")

/*
 * One 8-byte MMIO read through the MMX register mm0 (then copied to RAM, and emms).
 * mm0 is not in the clobbers: gcc refuses it without -mmmx, and it never uses MMX itself.
 */
#define LOAD64_MMX(label, addr, out)                                           \
    __asm__ volatile(ACCESS_LABEL(label) "movq (%1), %%mm0\n\t"                \
                     "movq %%mm0, %0\n\t"                                      \
                     "emms"                                                    \
                     : "=m"(out)                                               \
                     : "r"(addr)                                               \
                     : "memory")

#endif
