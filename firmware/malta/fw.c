/*
 * Test firmware for QEMU's -M malta (MIPS32 24Kf), one source for both endiannesses:
 * qemu-system-mips (big-endian, build.sh OUT.elf be) and qemu-system-mipsel
 * (little-endian, build.sh OUT.elf el). QEMU loads it with -kernel; its boot stub at
 * 0xbfc00000 runs first and makes nine 4-byte writes of its own: it moves the
 * GT-64120's registers from 0x14000000 to 0x1be00000 (GT_ISD), opens the PCI I/O
 * window at 0x18000000 and the two PCI memory windows, and writes the PIIX4's IRQ
 * routing through pci-conf-idx/pci-conf-data; then it jumps to _start. The code runs
 * in kseg0 (0x80100000 = physical 0x00100000); every device is reached through kseg1
 * (0xa0000000 + physical, uncached), so the CPU's virtual address and the physical
 * address QEMU decodes differ by 0xa0000000.
 *
 * The accesses, in order (physical addresses):
 *
 *   16550 UART at ISA I/O port 0x3f8, through the GT-64120's PCI I/O window:
 *     1-byte writes of 'B' (big-endian build) or 'L', then '\n', to THR 0x180003f8;
 *     1-byte read of LSR 0x180003fd.
 *   Malta FPGA (malta-fpga at 0x1f000000):
 *     4-byte write of 0x5a to LEDBAR 0x1f000408;
 *     4-byte write of 'B' or 'L' to ASCIIPOS0 0x1f000418 (the first display character);
 *     4-byte read of STATUS 0x1f000208, fixed: 0x12 in QEMU's big-endian build, 0x10
 *     in the little-endian one.
 *   GT-64120 registers (gt64120-isd at 0x1be00000):
 *     4-byte read of the read-only GT_MULTI 0x1be00120. QEMU keeps 3 in it and swaps
 *     the bytes when the GT runs big-endian: the big-endian CPU reads 0x03000000.
 *   PCI configuration through the GT-64120 (bus 0, device 0 is the GT itself). Both
 *   registers are little-endian in QEMU, so the big-endian CPU sees them byte-swapped:
 *     4-byte write of 0x80000000 (enable, bus 0, device 0, register 0) to pci-conf-idx
 *     0x1be00cf8: the big-endian CPU stores 0x00000080;
 *     4-byte read of pci-conf-data 0x1be00cfc: vendor 0x11ab, device 0x4620, QEMU
 *     answers 0x462011ab; the big-endian CPU reads 0xab112046.
 *   An address no device decodes (the GT's empty-slot, reads answer 0):
 *     4-byte read of 0x17f00000 (between PCI memory window 0 and the I/O window).
 *
 * QEMU's memory_region_ops trace gives the UART's address as the I/O port (0x3f8,
 * 0x3fd) and the FPGA's as its offset (0x408, 0x418, 0x208): QEMU reaches both through
 * aliases and logs the address within the region's own root.
 *
 * Then exit with status 0 through MIPS UHI semihosting (needs -semihosting).
 * Every MMIO access is one instruction behind a global label.
 */
#include <stdint.h>

#include "labelled_access.h"

/* kseg1: the uncached, unmapped window onto the first 512 MiB of physical memory. */
#define KSEG1(phys) (0xa0000000u + (phys))

#define PCI_IO KSEG1(0x18000000u) /* PCI I/O window, set by QEMU's boot stub */
#define UART (PCI_IO + 0x3f8u)    /* ISA COM1, the Super I/O's first 16550 */
#define UART_THR 0                /* transmit holding register (write) */
#define UART_LSR 5                /* line status register (read) */

#define FPGA KSEG1(0x1f000000u)
#define FPGA_STATUS 0x208
#define FPGA_LEDBAR 0x408
#define FPGA_ASCIIPOS0 0x418

#define GT KSEG1(0x1be00000u) /* GT-64120 internal registers, moved by the boot stub */
#define GT_MULTI 0x120
#define GT_PCI0_CFGADDR 0xcf8
#define GT_PCI0_CFGDATA 0xcfc

#define EMPTY KSEG1(0x17f00000u)

#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define ENDIAN_CHAR 'B'
/* pci-conf-idx is little-endian: store the bytes reversed so it sees 0x80000000. */
#define TO_LE32(x) __builtin_bswap32(x)
#else
#define ENDIAN_CHAR 'L'
#define TO_LE32(x) (x)
#endif

void main(void);

/* The boot stub jumps here (kseg0); set up a stack and call main. */
__asm__(".section .text.start, \"ax\"\n"
        ".global _start\n"
        "_start:\n\t"
        "la $sp, _stack_top\n\t"
        "j main\n"
        ".previous\n");

static void __attribute__((noreturn)) semihosting_exit(uint32_t status)
{
    /* UHI_exit: operation number 1 in $25 (t9: QEMU reads that one), status in $4. */
    register uint32_t op __asm__("$25") = 1;
    register uint32_t a0 __asm__("$4") = status;
    __asm__ volatile("sdbbp 1" : : "r"(op), "r"(a0) : "memory");
    for (;;) {
    }
}

static void uart(void)
{
    volatile uint8_t *const base = (volatile uint8_t *)UART;
    uint8_t lsr;
    STORE("uart_thr_write", "sb", base + UART_THR, ENDIAN_CHAR);
    STORE("uart_thr_write_newline", "sb", base + UART_THR, '\n');
    LOAD("uart_lsr_read", "lbu", base + UART_LSR, lsr);
    (void)lsr;
}

static void fpga(void)
{
    uint32_t status;
    STORE("fpga_ledbar_write", "sw", (volatile uint32_t *)(FPGA + FPGA_LEDBAR), 0x5a);
    STORE("fpga_ascii_write", "sw", (volatile uint32_t *)(FPGA + FPGA_ASCIIPOS0),
          ENDIAN_CHAR);
    LOAD("fpga_status_read", "lw", (volatile uint32_t *)(FPGA + FPGA_STATUS), status);
    (void)status;
}

static void gt64120(void)
{
    uint32_t multi, id;
    LOAD("gt_multi_read", "lw", (volatile uint32_t *)(GT + GT_MULTI), multi);
    STORE("pci_conf_addr_write", "sw", (volatile uint32_t *)(GT + GT_PCI0_CFGADDR),
          TO_LE32(0x80000000u));
    LOAD("pci_conf_data_read", "lw", (volatile uint32_t *)(GT + GT_PCI0_CFGDATA), id);
    (void)multi, (void)id;
}

void main(void)
{
    uint32_t empty;
    uart();
    fpga();
    gt64120();
    LOAD("empty_slot_read", "lw", (volatile uint32_t *)EMPTY, empty);
    (void)empty;
    semihosting_exit(0);
}
