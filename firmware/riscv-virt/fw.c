/*
 * Test firmware for QEMU's -M virt, RISC-V: one source for qemu-system-riscv64 and
 * qemu-system-riscv32 (build.sh OUT.elf 64 or 32). Run with -bios none -kernel OUT.elf:
 * QEMU loads the ELF at 0x80000000 and its reset ROM at 0x1000 jumps to _start in
 * M-mode, with no OpenSBI in between. Hart 0 makes these accesses, in this order:
 *
 *   uart_thr_write_h, uart_thr_write_i, uart_thr_write_newline:
 *       sb 'H', 'i', '\n' to the 16550 THR (0x10000000): prints "Hi".
 *   uart_lsr_read: lbu the LSR (0x10000005): 0x60, transmitter empty and idle.
 *   rtc_time_low_read, rtc_time_high_read: lw the goldfish RTC's TIME_LOW (0x101000),
 *       then TIME_HIGH (0x101004): nanoseconds since 1970, so the values vary per run.
 *   clint_mtimecmp_write: sw 0x12345678 to hart 0's mtimecmp, low word (0x2004000).
 *   clint_mtimecmp_read: lw it back: 0x12345678.
 *   clint_mtime_read: mtime (0x200bff8), timer ticks at 10 MHz, so it varies: one
 *       8-byte ld on rv64, a 4-byte lw of the low word on rv32.
 *   plic_priority_write: sw 5 to the PLIC priority of interrupt source 1 (0x0c000004).
 *   plic_priority_read: lw it back: 5.
 *   fw_cfg_select_write: sh 0 (FW_CFG_SIGNATURE) to the fw_cfg selector (0x10100008;
 *       a big-endian register, but 0 reads the same both ways round).
 *   fw_cfg_data_read_0 .. _3: lbu the fw_cfg data register (0x10100000) four times:
 *       'Q' 'E' 'M' 'U'.
 *   test_finisher_pass_write: sw 0x5555 (FINISHER_PASS) to the sifive_test device
 *       (0x100000): QEMU exits with status 0.
 *
 * No access to an unmapped address: on RISC-V, QEMU turns one into an access-fault
 * exception (load fault, mcause 5), which would end the run through trap() below.
 *
 * Any exception (none is expected) goes to trap(), which makes one more access,
 * trap_finisher_fail_write: sw (code << 16) | 0x3333 (FINISHER_FAIL) to sifive_test,
 * so QEMU exits with status code = 64 + mcause, e.g. 69 for a load access fault.
 * With -smp N, harts other than 0 sleep forever and make no access.
 *
 * Every MMIO access is one instruction behind a global label (access.h).
 */
#include <stdint.h>

#include "access.h"

#define SIFIVE_TEST 0x00100000u    /* test finisher: write to end QEMU */
#define GOLDFISH_RTC 0x00101000u   /* +0 TIME_LOW, +4 TIME_HIGH */
#define CLINT_MTIMECMP0 0x02004000u /* ACLINT mtimer: hart 0's mtimecmp */
#define CLINT_MTIME 0x0200bff8u    /* ACLINT mtimer: mtime (64 bits) */
#define PLIC_PRIORITY1 0x0c000004u /* PLIC: priority of source 1 (4 bytes per source) */
#define UART 0x10000000u           /* ns16550a: +0 THR (write), +5 LSR */
#define FW_CFG_DATA 0x10100000u    /* fw_cfg data register */
#define FW_CFG_SELECTOR 0x10100008u /* fw_cfg selector, 16 bits, big-endian */

#define FINISHER_PASS 0x5555u
#define FINISHER_FAIL 0x3333u

void main(void);
void trap(void);

/*
 * Entry point, at 0x80000000 (link.ld). QEMU's reset ROM jumps here with a0 = hart id,
 * a1 = device tree address. Point mtvec at trap(), give hart 0 a stack, run main();
 * every other hart waits for an interrupt that never comes.
 */
__attribute__((naked, section(".text.start"))) void _start(void)
{
    __asm__ volatile("la t0, trap\n\t"
                     "csrw mtvec, t0\n\t" /* direct mode: trap() is 4-byte aligned */
                     "bnez a0, 1f\n\t"
                     "la sp, _stack_top\n\t"
                     "j main\n"
                     "1: wfi\n\t"
                     "j 1b\n\t");
}

/* Any exception: tell QEMU to exit with status 64 + mcause (see the top comment). */
__attribute__((aligned(4), noreturn)) void trap(void)
{
    uintptr_t cause;
    __asm__ volatile("csrr %0, mcause" : "=r"(cause));
    uint32_t code = 64 + (cause & 0x3f);
    STORE("trap_finisher_fail_write", "sw", (volatile uint32_t *)SIFIVE_TEST,
          (code << 16) | FINISHER_FAIL);
    for (;;) {
    }
}

static void uart(void)
{
    volatile uint8_t *uart = (volatile uint8_t *)UART;
    uint8_t lsr;
    STORE("uart_thr_write_h", "sb", uart, 'H');
    STORE("uart_thr_write_i", "sb", uart, 'i');
    STORE("uart_thr_write_newline", "sb", uart, '\n');
    LOAD("uart_lsr_read", "lbu", uart + 5, lsr);
    (void)lsr;
}

static void rtc(void)
{
    volatile uint32_t *rtc = (volatile uint32_t *)GOLDFISH_RTC;
    uint32_t low, high;
    /* Reading TIME_LOW latches the high half, so read it first. */
    LOAD("rtc_time_low_read", "lw", rtc, low);
    LOAD("rtc_time_high_read", "lw", rtc + 1, high);
    (void)low, (void)high;
}

static void clint(void)
{
    /*
     * mtimecmp only raises an interrupt if mie.MTIE and mstatus.MIE are set; they are
     * clear after reset and stay clear, so the value written here is harmless.
     */
    volatile uint32_t *mtimecmp = (volatile uint32_t *)CLINT_MTIMECMP0;
    uint32_t cmp;
    uintptr_t mtime;
    STORE("clint_mtimecmp_write", "sw", mtimecmp, 0x12345678u);
    LOAD("clint_mtimecmp_read", "lw", mtimecmp, cmp);
#if __riscv_xlen == 64
    LOAD("clint_mtime_read", "ld", (volatile uint64_t *)CLINT_MTIME, mtime);
#else
    LOAD("clint_mtime_read", "lw", (volatile uint32_t *)CLINT_MTIME, mtime);
#endif
    (void)cmp, (void)mtime;
}

static void plic(void)
{
    volatile uint32_t *priority = (volatile uint32_t *)PLIC_PRIORITY1;
    uint32_t p;
    STORE("plic_priority_write", "sw", priority, 5);
    LOAD("plic_priority_read", "lw", priority, p);
    (void)p;
}

static void fw_cfg(void)
{
    /*
     * Select item 0, the signature; each 1-byte data read returns the next byte of it.
     * The selector is big-endian: item 1 would be written as sh 0x0100.
     */
    volatile uint8_t *data = (volatile uint8_t *)FW_CFG_DATA;
    uint8_t sig[4];
    STORE("fw_cfg_select_write", "sh", (volatile uint16_t *)FW_CFG_SELECTOR, 0);
    LOAD("fw_cfg_data_read_0", "lbu", data, sig[0]);
    LOAD("fw_cfg_data_read_1", "lbu", data, sig[1]);
    LOAD("fw_cfg_data_read_2", "lbu", data, sig[2]);
    LOAD("fw_cfg_data_read_3", "lbu", data, sig[3]);
    (void)sig;
}

void main(void)
{
    uart();
    rtc();
    clint();
    plic();
    fw_cfg();
    STORE("test_finisher_pass_write", "sw", (volatile uint32_t *)SIFIVE_TEST, FINISHER_PASS);
    for (;;) {
    }
}
