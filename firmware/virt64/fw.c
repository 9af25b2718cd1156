/*
 * Test firmware for QEMU's -M virt with a Cortex-A57 (AArch64, EL1, MMU off: every
 * address below is physical). Run with -device e1000e,addr=1 -nic none, so that an
 * Intel 82574L NIC sits at PCI 00:01.0. The accesses, in order:
 *
 * 1. pl011 UART (0x09000000): strb 'h', 'i', '\n' to DR; a 4-byte ldr of FR (0x18);
 *    a 2-byte ldrh of CR (0x30, 0x0300 after reset: TX and RX enabled).
 * 2. fw_cfg (0x09020000, a big-endian device): a 2-byte write of key 0 (signature) to
 *    the selector at 0x09020008, then an 8-byte read of the data register: the
 *    bytes "QEMU" and four zero bytes, so x = 0x00000000554d4551 in the CPU. Then
 *    select key 1 (the feature bitmap): the CPU stores 0x0100 (key 1 byte-swapped, as
 *    the device is big-endian), and reads 4 bytes of data.
 * 3. PCI through the ECAM (pcie-mmcfg-mmio, 0x4010000000; device 1 is 0x8000 further):
 *    read vendor/device id (0x10d38086); write BAR0 = 0x10000000 (inside the 32-bit
 *    PCI MMIO window at 0x10000000); read BAR0 and BAR1 back with one 8-byte read;
 *    enable memory decoding (command register, 2 bytes); read the NIC's STATUS
 *    register (BAR0 + 0x8); disable decoding, move BAR0 to 0x10100000, enable it
 *    again, read STATUS there; disable decoding (BAR0 unmapped again).
 *
 * The firmware then exits through semihosting with status 0, or 2 if a value it read
 * is not the expected one (an exception exits with 1, see start.S).
 *
 * What QEMU's -trace memory_region_ops_* log shows differs from the instructions:
 * the pl011 handles only 4-byte accesses, so its strb/ldrh appear as size 4; the ECAM
 * handles at most 4 bytes, so the 8-byte read appears as two 4-byte reads; fw_cfg's
 * values appear in the device's (big-endian) byte order; and the ECAM's addresses
 * appear as offsets into pcie-mmcfg-mmio (0x8000...), not as 0x4010008000...
 *
 * Every MMIO access is one instruction behind a global label (access.h).
 */
#include <stdint.h>

#include "access.h"

/* pl011 UART */
#define UART 0x09000000ul
#define UART_DR (UART + 0x00)
#define UART_FR (UART + 0x18)
#define UART_CR (UART + 0x30)

/* fw_cfg: data register (reads 1 to 8 bytes of the selected item), selector (16-bit) */
#define FW_CFG_DATA 0x09020000ul
#define FW_CFG_CTL 0x09020008ul
#define FW_CFG_SIGNATURE 0x0000u
#define FW_CFG_ID 0x0001u

/* PCIe ECAM: bus << 20 | device << 15 | function << 12 | register */
#define ECAM 0x4010000000ul
#define NIC_CFG (ECAM + (1ul << 15)) /* 00:01.0 */
#define PCI_ID 0x00
#define PCI_COMMAND 0x04
#define PCI_BAR0 0x10
#define PCI_COMMAND_MEMORY 0x2u
#define E1000E_ID 0x10d38086u /* device 0x10d3 << 16 | vendor 0x8086 (Intel) */

/* Two places for the NIC's 128 KiB BAR0, inside the 32-bit PCI MMIO window. */
#define BAR_A 0x10000000ul
#define BAR_B 0x10100000ul
#define E1000E_STATUS 0x8

#define REG(addr) ((volatile void *)(addr))

/* big-endian devices take their value with the most significant byte first */
static inline uint32_t swap16(uint32_t v)
{
    return ((v & 0xff) << 8) | ((v >> 8) & 0xff);
}

/* Arm semihosting SYS_EXIT (0x18) with ADP_Stopped_ApplicationExit: QEMU exits with
 * `status`. Called from start.S too. */
__attribute__((noreturn)) void semihosting_exit(uint32_t status)
{
    static uint64_t block[2];
    block[0] = 0x20026; /* ADP_Stopped_ApplicationExit */
    block[1] = status;
    register uint64_t x0 __asm__("x0") = 0x18;
    register uint64_t *x1 __asm__("x1") = block;
    __asm__ volatile("hlt #0xf000" : : "r"(x0), "r"(x1) : "memory");
    for (;;) {
    }
}

/* 1. The UART: byte writes (the usual way to print), a word read, a halfword read. */
static uint32_t uart(void)
{
    uint32_t flags, control;
    WRITE8("uart_dr_write_h", REG(UART_DR), 'h');
    WRITE8("uart_dr_write_i", REG(UART_DR), 'i');
    WRITE8("uart_dr_write_newline", REG(UART_DR), '\n');
    READ32("uart_fr_read32", REG(UART_FR), flags);
    READ16("uart_cr_read16", REG(UART_CR), control);
    (void)flags; /* depends on the chardev backend; not checked */
    return control == 0x300;
}

/* 2. fw_cfg: a big-endian device whose data register takes an 8-byte access in one
 *    piece (the pl011 and the ECAM do not). */
static uint32_t fw_cfg(void)
{
    uint64_t signature;
    uint32_t features;
    WRITE16("fw_cfg_select_signature", REG(FW_CFG_CTL), swap16(FW_CFG_SIGNATURE));
    READ64("fw_cfg_signature_read64", REG(FW_CFG_DATA), signature);
    WRITE16("fw_cfg_select_id", REG(FW_CFG_CTL), swap16(FW_CFG_ID));
    READ32("fw_cfg_id_read32", REG(FW_CFG_DATA), features);
    (void)features; /* 3: traditional and DMA interfaces (bytes 03 00 00 00) */
    return signature == 0x554d4551ul; /* "QEMU" */
}

/* 3. PCI: configuration through the ECAM, then the NIC's BAR0 mapped at two addresses. */
static uint32_t pci(void)
{
    uint32_t id, status_a, status_b;
    uint64_t bars;
    READ32("ecam_id_read32", REG(NIC_CFG + PCI_ID), id);
    WRITE32("ecam_bar0_write_a", REG(NIC_CFG + PCI_BAR0), BAR_A);
    /* BAR0 and BAR1 in one 8-byte read: QEMU's ECAM handles at most 4 bytes. */
    READ64("ecam_bar0_bar1_read64", REG(NIC_CFG + PCI_BAR0), bars);
    WRITE16("ecam_command_enable_a", REG(NIC_CFG + PCI_COMMAND), PCI_COMMAND_MEMORY);
    READ32("e1000e_status_read_a", REG(BAR_A + E1000E_STATUS), status_a);
    /* Move BAR0: stop decoding first, as an OS would. */
    WRITE16("ecam_command_disable_a", REG(NIC_CFG + PCI_COMMAND), 0);
    WRITE32("ecam_bar0_write_b", REG(NIC_CFG + PCI_BAR0), BAR_B);
    WRITE16("ecam_command_enable_b", REG(NIC_CFG + PCI_COMMAND), PCI_COMMAND_MEMORY);
    READ32("e1000e_status_read_b", REG(BAR_B + E1000E_STATUS), status_b);
    /* Unmap: from here on neither BAR_A nor BAR_B may be touched (it would fault). */
    WRITE16("ecam_command_disable_b", REG(NIC_CFG + PCI_COMMAND), 0);
    return id == E1000E_ID && bars == BAR_A && status_a == status_b;
}

int main(void)
{
    /* Each step runs even if an earlier one failed, so the trace is always complete. */
    uint32_t ok = uart();
    ok &= fw_cfg();
    ok &= pci();
    return ok ? 0 : 2;
}
