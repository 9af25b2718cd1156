/*
 * Test firmware for QEMU's -M virt with a Cortex-A15 (ARMv7-A, ARM state). It turns
 * the MMU on with 1 MiB sections: everything identity-mapped, plus the UART (pl011,
 * physical 0x09000000) mapped a second time at virtual 0xf0000000, so the trace shows
 * virtual and physical addresses that differ. With -smp 2, CPU 0 starts CPU 1 through
 * PSCI; CPU 1 turns its MMU on with the same table and writes one byte too.
 *
 *   CPU 0: strb 'P' to 0x09000000 (MMU off), strb 'V' to 0xf0000000 (MMU on),
 *          ldr 0xf0000018 (flags); with two CPUs, wait for CPU 1; exit.
 *   CPU 1: strb '1' to 0xf0000000.
 *
 * Built with -DCFI_QUERY, CPU 0 first queries the CFI flash (virt.flash0, a ROM device:
 * reads go straight to its memory in read-array mode, writes are commands to the device
 * model): write the CFI query command 0x98 at word 0x55, read the "QRY" signature at
 * words 0x10-0x12 (each of the bank's two x16 chips answers: 0x00510051...), write
 * 0xff to return to read-array mode, and read word 0x10 again, now plain memory.
 *
 * Every MMIO access is one instruction behind a global label.
 */
#include <stdint.h>

#include "labelled_access.h"

#define UART_PHYS 0x09000000u
#define UART_VIRT 0xf0000000u
#define FLASH0 0x00000000u
#define SECTION_DEVICE 0xc06u /* section, B, AP=full: shared device */
#define SECTION_NORMAL 0x1c02u /* section, TEX=001, AP=full: normal, non-cacheable */

__attribute__((section(".bss.page_table"), aligned(16384))) static uint32_t page_table[4096];
static volatile uint32_t cpu1_done;


void main_cpu(uint32_t cpu);

/* Each CPU gets its own 8 KiB stack, then runs main_cpu(cpu index). */
__attribute__((naked, section(".text.start"))) void _start(void)
{
    __asm__ volatile("mrc p15, 0, r0, c0, c0, 5\n\t" /* MPIDR */
                     "and r0, r0, #0xff\n\t"
                     "ldr sp, =_stacks\n\t"
                     "sub sp, sp, r0, lsl #13\n\t"
                     "b main_cpu\n\t");
}

static void semihosting_exit(uint32_t status)
{
    static uint32_t block[2];
    block[0] = 0x20026; /* ADP_Stopped_ApplicationExit */
    block[1] = status;
    register uint32_t r0 __asm__("r0") = 0x20; /* SYS_EXIT_EXTENDED */
    register uint32_t *r1 __asm__("r1") = block;
    __asm__ volatile("svc 0x123456" : : "r"(r0), "r"(r1) : "memory");
    for (;;) {
    }
}

static void build_page_table(void)
{
    for (uint32_t i = 0; i < 4096; i++) {
        uint32_t ram = i >= 0x400 && i < 0x500; /* 0x40000000-0x4fffffff */
        page_table[i] = (i << 20) | (ram ? SECTION_NORMAL : SECTION_DEVICE);
    }
    page_table[UART_VIRT >> 20] = UART_PHYS | SECTION_DEVICE;
}

static void enable_mmu(void)
{
    __asm__ volatile("mcr p15, 0, %0, c2, c0, 0\n\t" /* TTBR0 */
                     "mov r1, #0\n\t"
                     "mcr p15, 0, r1, c2, c0, 2\n\t" /* TTBCR: TTBR0 only */
                     "mvn r1, #0\n\t"
                     "mcr p15, 0, r1, c3, c0, 0\n\t" /* DACR: manager */
                     "mcr p15, 0, r1, c8, c7, 0\n\t" /* TLBIALL */
                     "dsb\n\t"
                     "mrc p15, 0, r1, c1, c0, 0\n\t"
                     "orr r1, r1, #1\n\t"
                     "mcr p15, 0, r1, c1, c0, 0\n\t" /* SCTLR.M */
                     "isb\n\t"
                     :
                     : "r"(page_table)
                     : "r1", "memory");
}

static void start_cpu1(void)
{
    register uint32_t r0 __asm__("r0") = 0x84000003; /* PSCI CPU_ON (32-bit) */
    register uint32_t r1 __asm__("r1") = 1;          /* target MPIDR */
    register uint32_t r2 __asm__("r2") = (uint32_t)_start;
    register uint32_t r3 __asm__("r3") = 0;
    __asm__ volatile("hvc #0" : "+r"(r0) : "r"(r1), "r"(r2), "r"(r3) : "memory");
}

static uint32_t cpu_count(void)
{
    /* PSCI AFFINITY_INFO for MPIDR 1: 0 on, 1 off, negative if there is no such CPU. */
    register uint32_t r0 __asm__("r0") = 0x84000004;
    register uint32_t r1 __asm__("r1") = 1;
    register uint32_t r2 __asm__("r2") = 0;
    __asm__ volatile("hvc #0" : "+r"(r0) : "r"(r1), "r"(r2) : "memory");
    return (int32_t)r0 < 0 ? 1 : 2;
}

#ifdef CFI_QUERY
static void cfi_query(void)
{
    volatile uint32_t *flash = (volatile uint32_t *)FLASH0;
    uint32_t q, r, y, array;
    STORE("cfi_query_command", "str", flash + 0x55, 0x00980098u);
    LOAD("cfi_read_q", "ldr", flash + 0x10, q);
    LOAD("cfi_read_r", "ldr", flash + 0x11, r);
    LOAD("cfi_read_y", "ldr", flash + 0x12, y);
    STORE("cfi_read_array_command", "str", flash, 0x00ff00ffu);
    LOAD("flash_array_read", "ldr", flash + 0x10, array);
    (void)q, (void)r, (void)y, (void)array;
}
#endif

void main_cpu(uint32_t cpu)
{
    uint32_t flags;
    if (cpu != 0) {
        enable_mmu();
        STORE("cpu1_uart_virt_write", "strb", (volatile uint8_t *)UART_VIRT, '1');
        cpu1_done = 1;
        for (;;) {
            __asm__ volatile("wfi");
        }
    }
#ifdef CFI_QUERY
    cfi_query();
#endif
    STORE("uart_phys_write", "strb", (volatile uint8_t *)UART_PHYS, 'P');
    build_page_table();
    enable_mmu();
    STORE("uart_virt_write", "strb", (volatile uint8_t *)UART_VIRT, 'V');
    LOAD("uart_virt_flags_read", "ldr", (volatile uint32_t *)(UART_VIRT + 0x18), flags);
    (void)flags;
    if (cpu_count() == 2) {
        start_cpu1();
        while (!cpu1_done) {
        }
    }
    semihosting_exit(0);
}
