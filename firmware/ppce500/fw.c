/*
 * Test firmware for QEMU's -M ppce500 (e500v2 core, big-endian), loaded with -kernel
 * and no -bios: QEMU then runs the ELF directly (no U-Boot, no boot stub) from its
 * entry point, with one TLB entry of its own: TLB1 entry 0 maps virtual 0 to physical
 * 0, large enough to cover the ELF and the device tree QEMU puts after it (64 MiB for
 * this firmware). The CCSR (the SoC's registers) sits at the 36-bit physical address
 * 0xf_e000_0000, which no initial mapping reaches: the firmware first writes TLB1
 * entry 1 (MAS0-MAS3, MAS7, tlbwe) to map virtual 0xe0000000 to physical
 * 0xfe0000000, 1 MiB, cache-inhibited and guarded. So the CPU's virtual address and
 * the physical address QEMU decodes differ, in their upper bits too.
 *
 * The accesses, in order (physical addresses; the CPU uses 0xe... for 0xfe...):
 *
 *   16550 UART 0 (serial at CCSR + 0x4500):
 *     1-byte writes of 'E' then '\n' to THR 0xfe0004500;
 *     1-byte read of LSR 0xfe0004505.
 *   PCI configuration through the e500 PCI host (CCSR + 0x8000), bus 0, device 0
 *   (the host bridge itself). QEMU's pci-conf-idx is big-endian, its pci-conf-data
 *   little-endian:
 *     4-byte write of 0x80000000 (enable, bus 0, device 0, register 0) to
 *     pci-conf-idx 0xfe0008000: the CPU and QEMU agree on the value;
 *     4-byte read of pci-conf-data 0xfe0008004: vendor 0x1957 (Freescale), device
 *     0x0030; QEMU answers 0x00301957, the CPU reads it byte-swapped, 0x57193000.
 *   Global utilities (mpc8544.guts at CCSR + 0xe0000):
 *     4-byte read of PORPLLSR 0xfe00e0000 (power-on PLL ratios), a constant in QEMU:
 *     0x0606180c.
 *   Power off through GPIO pin 0 (mpc8xxx_gpio at CCSR + 0xff000), which QEMU wires to
 *   a shutdown request: QEMU then exits with status 0, without any option:
 *     4-byte write of 0x80000000 (pin 0 is the most significant bit) to GPDIR
 *     0xfe00ff000: pin 0 is an output;
 *     4-byte write of 0x80000000 to GPDAT 0xfe00ff008: pin 0 goes high.
 *
 * Every MMIO access is one instruction behind a global label.
 */
#include <stdint.h>

#include "labelled_access.h"

#define CCSR_VIRT 0xe0000000u /* where TLB1 entry 1 puts the CCSR */
#define CCSR_PHYS_HIGH 0xfu   /* physical 0xf_e000_0000: bits 32-35 go to MAS7 */
#define CCSR_PHYS_LOW 0xe0000000u

#define UART (CCSR_VIRT + 0x4500u)
#define UART_THR 0 /* transmit holding register (write) */
#define UART_LSR 5 /* line status register (read) */

#define PCI_CFG_ADDR (CCSR_VIRT + 0x8000u)
#define PCI_CFG_DATA (CCSR_VIRT + 0x8004u)

#define GUTS_PORPLLSR (CCSR_VIRT + 0xe0000u)

#define GPIO_DIR (CCSR_VIRT + 0xff000u)
#define GPIO_DAT (CCSR_VIRT + 0xff008u)
#define GPIO_PIN0 0x80000000u /* pin 0: power off */

/* The MAS registers that describe a TLB entry to tlbwe (e500 core reference manual). */
#define MAS0_TLB1_ENTRY(n) (0x10000000u | ((n) << 16)) /* TLBSEL = 1, ESEL = n */
#define MAS1_VALID 0x80000000u
#define MAS1_IPROT 0x40000000u      /* not evicted by invalidations */
#define MAS1_TSIZE_1M (5u << 8)     /* page size 4^5 KiB */
#define MAS2_I 0x08u                /* cache-inhibited */
#define MAS2_G 0x02u                /* guarded */
#define MAS3_SW 0x04u               /* supervisor write */
#define MAS3_SR 0x01u               /* supervisor read */

void main(void);

/* QEMU jumps here with the MMU on (TLB1 entry 0); set up a stack and call main. */
__asm__(".section .text.start, \"ax\"\n"
        ".global _start\n"
        "_start:\n\t"
        "lis 1, (_stack_top - 16)@ha\n\t"
        "addi 1, 1, (_stack_top - 16)@l\n\t"
        "li 0, 0\n\t"
        "stw 0, 0(1)\n\t" /* end of the stack back chain */
        "b main\n"
        ".previous\n");

/* TLB1 entry 1: virtual CCSR_VIRT -> physical 0xf_e000_0000, 1 MiB, I+G, kernel R/W. */
static void map_ccsr(void)
{
    __asm__ volatile("mtspr 624, %0\n\t" /* MAS0 */
                     "mtspr 625, %1\n\t" /* MAS1 */
                     "mtspr 626, %2\n\t" /* MAS2: virtual page, WIMGE */
                     "mtspr 627, %3\n\t" /* MAS3: physical page bits 12-31, permissions */
                     "mtspr 944, %4\n\t" /* MAS7: physical bits 32-35 */
                     "isync\n\t"
                     "tlbwe\n\t"
                     "isync\n\t"
                     :
                     : "r"(MAS0_TLB1_ENTRY(1)), "r"(MAS1_VALID | MAS1_IPROT | MAS1_TSIZE_1M),
                       "r"(CCSR_VIRT | MAS2_I | MAS2_G),
                       "r"(CCSR_PHYS_LOW | MAS3_SW | MAS3_SR), "r"(CCSR_PHYS_HIGH)
                     : "memory");
}

static void uart(void)
{
    volatile uint8_t *const base = (volatile uint8_t *)UART;
    uint8_t lsr;
    STORE("uart_thr_write", "stb", base + UART_THR, 'E');
    STORE("uart_thr_write_newline", "stb", base + UART_THR, '\n');
    LOAD("uart_lsr_read", "lbz", base + UART_LSR, lsr);
    (void)lsr;
}

static void pci_config(void)
{
    uint32_t id;
    STORE("pci_conf_addr_write", "stw", (volatile uint32_t *)PCI_CFG_ADDR, 0x80000000u);
    LOAD("pci_conf_data_read", "lwz", (volatile uint32_t *)PCI_CFG_DATA, id);
    (void)id;
}

static void __attribute__((noreturn)) power_off(void)
{
    STORE("gpio_dir_write", "stw", (volatile uint32_t *)GPIO_DIR, GPIO_PIN0);
    STORE("gpio_power_off_write", "stw", (volatile uint32_t *)GPIO_DAT, GPIO_PIN0);
    for (;;) {
    }
}

void main(void)
{
    uint32_t pll;
    map_ccsr();
    uart();
    pci_config();
    LOAD("guts_porpllsr_read", "lwz", (volatile uint32_t *)GUTS_PORPLLSR, pll);
    (void)pll;
    power_off();
}
