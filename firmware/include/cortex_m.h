/*
 * The start of a Cortex-M test firmware: the vector table (stack top, `reset`, every
 * fault to `fault`), and the exit through semihosting. Included by each board's fw.c,
 * which defines `reset`.
 */
#ifndef CORTEX_M_H
#define CORTEX_M_H

#include <stdint.h>

void reset(void);
void fault(void);
extern uint32_t _stack_top;

__attribute__((section(".vectors"), used)) static const void *const vectors[16] = {
    &_stack_top, reset, fault, fault, fault, fault, fault, 0,
    0,           0,     0,     fault, fault, 0,     fault, fault,
};

static void semihosting_exit(uint32_t status)
{
    /*
     * SYS_EXIT (r0 = 0x18) with the reason in r1: every QEMU since 2.x knows it
     * (PANDA's QEMU 2.9 lacks SYS_EXIT_EXTENDED), and exits 0 for ApplicationExit,
     * 1 for any other reason.
     */
    register uint32_t r0 __asm__("r0") = 0x18;
    register uint32_t r1 __asm__("r1") = status == 0 ? 0x20026  /* ADP_Stopped_ApplicationExit */
                                                     : 0x20023; /* ADP_Stopped_RunTimeErrorUnknown */
    __asm__ volatile("bkpt 0xab" : : "r"(r0), "r"(r1) : "memory");
    for (;;) {
    }
}

void fault(void)
{
    semihosting_exit(1);
}

#endif
