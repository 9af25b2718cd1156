/*
 * Test firmware for QEMU's micro:bit (-M microbit: nRF51822, Cortex-M0), touching the
 * peripherals a CMSIS-SVD file names (Nordic's nrf51.svd). Every MMIO access is one
 * instruction behind a global label. In order:
 *
 *   GPIO (0x50000000): PIN_CNF[3] = output, DIRSET, OUTSET, OUTCLR of pin 3.
 *   UART0 (0x40002000): PSELTXD = 24, BAUDRATE = 115200, ENABLE, STARTTX, TXD 'H',
 *   poll EVENTS_TXDRDY (at most 100 reads), clear it.
 *   RNG (0x4000d000): START, read EVENTS_VALRDY three times (QEMU's RNG has a value
 *   only after ~170 us of virtual time), read VALUE.
 *   TIMER0 (0x40008000): MODE = timer, BITMODE = 32 bit, PRESCALER = 4, START,
 *   CAPTURE[0], read CC[0], STOP.
 *   TEMP (0x4000c000), which QEMU does not model: START, read EVENTS_DATARDY three
 *   times, read TEMP.
 *   Exit through semihosting with status 0.
 */
#include <stdint.h>

#include "labelled_access.h"

#define GPIO 0x50000000u
#define UART0 0x40002000u
#define RNG 0x4000d000u
#define TIMER0 0x40008000u
#define TEMP 0x4000c000u

#define REG(base, offset) ((volatile uint32_t *)((base) + (offset)))

#include "cortex_m.h"

/* One function per peripheral, so that `--symbols` names who touched it. */
#define NOINLINE __attribute__((noinline))

static NOINLINE void gpio(void)
{
    STORE("gpio_pin_cnf3_write", "str", REG(GPIO, 0x70c), 1); /* DIR = Output */
    STORE("gpio_dirset_write", "str", REG(GPIO, 0x518), 1u << 3);
    STORE("gpio_outset_write", "str", REG(GPIO, 0x508), 1u << 3);
    STORE("gpio_outclr_write", "str", REG(GPIO, 0x50c), 1u << 3);
}

static NOINLINE void uart(void)
{
    uint32_t ready = 0;
    STORE("uart_pseltxd_write", "str", REG(UART0, 0x50c), 24);
    STORE("uart_baudrate_write", "str", REG(UART0, 0x524), 0x01d7e000); /* 115200 */
    STORE("uart_enable_write", "str", REG(UART0, 0x500), 4);            /* Enabled */
    STORE("uart_starttx_write", "str", REG(UART0, 0x008), 1);
    STORE("uart_txd_write", "str", REG(UART0, 0x51c), 'H');
    for (int i = 0; i < 100 && !ready; i++) {
        LOAD("uart_txdrdy_read", "ldr", REG(UART0, 0x11c), ready);
    }
    STORE("uart_txdrdy_clear", "str", REG(UART0, 0x11c), 0);
}

/* Read from memory, so the compiler cannot unroll the loops into several labels. */
static volatile int polls = 3;

static NOINLINE void rng(void)
{
    uint32_t ready, value;
    STORE("rng_start_write", "str", REG(RNG, 0x000), 1);
    for (int i = 0; i < polls; i++) {
        LOAD("rng_valrdy_read", "ldr", REG(RNG, 0x100), ready);
    }
    LOAD("rng_value_read", "ldr", REG(RNG, 0x508), value);
    (void)ready, (void)value;
}

static NOINLINE void timer(void)
{
    uint32_t captured;
    STORE("timer_mode_write", "str", REG(TIMER0, 0x504), 0);      /* Timer */
    STORE("timer_bitmode_write", "str", REG(TIMER0, 0x508), 3);   /* 32Bit */
    STORE("timer_prescaler_write", "str", REG(TIMER0, 0x510), 4);
    STORE("timer_start_write", "str", REG(TIMER0, 0x000), 1);
    STORE("timer_capture0_write", "str", REG(TIMER0, 0x040), 1);
    LOAD("timer_cc0_read", "ldr", REG(TIMER0, 0x540), captured);
    STORE("timer_stop_write", "str", REG(TIMER0, 0x004), 1);
    (void)captured;
}

static NOINLINE void temp(void)
{
    uint32_t ready, value;
    STORE("temp_start_write", "str", REG(TEMP, 0x000), 1);
    for (int i = 0; i < polls; i++) {
        LOAD("temp_datardy_read", "ldr", REG(TEMP, 0x100), ready);
    }
    LOAD("temp_read", "ldr", REG(TEMP, 0x508), value);
    (void)ready, (void)value;
}

void reset(void)
{
    gpio();
    uart();
    rng();
    timer();
    temp();
    semihosting_exit(0);
}
