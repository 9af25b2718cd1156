/*
 * Test firmware for QEMU's lm3s6965evb (Cortex-M3). Every MMIO access is one
 * instruction behind a global label, so the tests take each access's PC from the
 * symbol table instead of guessing it. The sequence, in order:
 *
 *   UART0 (pl011 at 0x4000c000): enable, send "Hi\n" a byte at a time, read the
 *   flag register, write and read back IBRD as halfwords, read the eight
 *   peripheral/PrimeCell ID registers, read ID0/ID1 with one doubleword load.
 *   SysTick (0xe000e010): load, clear, enable, poll CTRL until COUNTFLAG is set.
 *   Unimplemented stubs: write then read flash-control (0x400fd000), read
 *   hibernation (0x400fc000).
 *   Unassigned addresses: write 0x40001000, read 0x40001004.
 *   Exit through semihosting with status 0.
 */
#include <stdint.h>

#include "labelled_access.h"


#define UART0 0x4000c000u
#ifndef UART_CTL_VALUE
#define UART_CTL_VALUE 0x301 /* UARTEN | TXE | RXE; the diff test builds another value */
#endif
#define SYSTICK 0xe000e010u
#define FLASH_CONTROL 0x400fd000u
#define HIBERNATION 0x400fc000u
#define HOLE 0x40001000u

#include "cortex_m.h"

static void uart(void)
{
    static const char message[] = "Hi\n";
    volatile uint32_t *const base = (volatile uint32_t *)UART0;
    uint32_t value;

    STORE("uart_ctl_write", "str", base + 0x30 / 4, UART_CTL_VALUE);
    for (const char *c = message; *c; c++) {
        STORE("uart_data_write", "strb", base, *c);
    }
    LOAD("uart_flags_read", "ldr", base + 0x18 / 4, value);
    STORE("uart_ibrd_write", "strh", base + 0x24 / 4, 0x68);
    LOAD("uart_ibrd_read", "ldrh", base + 0x24 / 4, value);
    for (uint32_t i = 0; i < 8; i++) {
        LOAD("uart_id_read", "ldr", base + 0xfe0 / 4 + i, value);
    }
    uint32_t low, high;
    __asm__ volatile(".global uart_id_pair_read\nuart_id_pair_read:\n\tldrd %0, %1, [%2]"
                     : "=r"(low), "=r"(high)
                     : "r"(base + 0xfe0 / 4)
                     : "memory");
    (void)value;
    (void)low;
    (void)high;
}

static void systick(void)
{
    volatile uint32_t *const base = (volatile uint32_t *)SYSTICK;
    uint32_t ctrl;

    STORE("systick_load_write", "str", base + 1, 0x1f);
    STORE("systick_current_write", "str", base + 2, 0);
    STORE("systick_ctrl_write", "str", base, 5);
    do {
        LOAD("systick_ctrl_read", "ldr", base, ctrl);
    } while (!(ctrl & (1u << 16)));
}

static void stubs(void)
{
    uint32_t value;
    STORE("flash_control_write", "str", (volatile uint32_t *)FLASH_CONTROL, 0x1234);
    LOAD("flash_control_read", "ldr", (volatile uint32_t *)(FLASH_CONTROL + 4), value);
    LOAD("hibernation_read", "ldr", (volatile uint32_t *)HIBERNATION, value);
    (void)value;
}

/* Nothing is mapped between the watchdog and GPIO A: lm3s6965evb reads 0 there. */
static void hole(void)
{
    uint32_t value;
    STORE("hole_write", "str", (volatile uint32_t *)HOLE, 0xdead);
    LOAD("hole_read", "ldr", (volatile uint32_t *)(HOLE + 4), value);
    (void)value;
}

void reset(void)
{
    uart();
#ifdef FOREVER
    /* For the kill tests: poll SysTick until the emulator is stopped. */
    for (;;) {
        systick();
    }
#endif
#ifdef REPEAT
    /* For the overhead benchmark: a fixed, MMIO-heavy amount of work. */
    for (uint32_t i = 0; i < REPEAT; i++) {
        systick();
        uart();
    }
#endif
    systick();
    stubs();
    hole();
    semihosting_exit(0);
}
