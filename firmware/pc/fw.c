/*
 * Test firmware for QEMU's -M pc (i440FX) and -M q35, loaded with -kernel as a multiboot
 * (v1) ELF: SeaBIOS runs first, then QEMU's multiboot option ROM copies this kernel to
 * 1 MiB and jumps to _start in 32-bit protected mode (flat segments, paging and
 * interrupts off). It makes one port I/O or MMIO access of each kind, then moves the
 * standard VGA's MMIO BAR (BAR2) to another address through PCI configuration space.
 * In order (I/O ports in hex, "imm" = port in the instruction, "dx" = port in DX):
 *
 *   serial_rep_outsb          rep outsb "pc\n" to COM1 0x3f8: 3 one-byte writes
 *   serial_scratch_outb_dx    outb 0x5a to 0x3ff (COM1 scratch register)
 *   serial_scratch_inb_dx     inb 0x3ff: 0x5a
 *   cmos_index_outb_imm       outb 0x0b to 0x70 (CMOS index: RTC status register B)
 *   cmos_data_inb_imm         inb 0x71: 0x02 (24-hour mode, as SeaBIOS left it)
 *   fwcfg_select_outw         outw 0x0000 to 0x510 (fw_cfg key 0: signature)
 *   fwcfg_data_rep_insb       rep insb from 0x511: 4 one-byte reads, "QEMU"
 *   unassigned_inb_imm        inb 0xe0 (no device there): 0xff
 *   pci_host_addr_outl        outl 0x80000000 to 0xcf8 (bus 0, device 0, register 0)
 *   pci_host_id_inl           inl 0xcfc: host bridge device/vendor id,
 *                             0x12378086 (i440FX, pc) or 0x29c08086 (Q35 MCH)
 *   pci_host_device_inw       inw 0xcfe: device id alone (0x1237 or 0x29c0)
 *   pci_vga_addr_outl         outl to 0xcf8: the VGA, 00:02.0 on pc, 00:01.0 on q35
 *   pci_vga_id_inl            inl 0xcfc: 0x11111234 (QEMU standard VGA)
 *   pci_bar2_addr_outl        outl to 0xcf8: the VGA's register 0x18 (BAR2)
 *   pci_bar2_inl              inl 0xcfc: where SeaBIOS put BAR2 (0xfebf0000)
 *   vga_edid_readl            4-byte read of BAR2+0: the EDID header 00 ff ff ff
 *   vga_dispi_id_readw        2-byte read of BAR2+0x500: bochs dispi ID, 0xb0c5
 *   pci_bar2_move_outl        outl 0xfe000000 to 0xcfc: BAR2 moves (0xcf8 still
 *                             selects BAR2)
 *   pci_bar2_readback_inl     inl 0xcfc: 0xfe000000
 *   vga_moved_dispi_id_readw  2-byte read of 0xfe000500: 0xb0c5 again
 *   vga_old_dispi_id_readw    2-byte read of the old address: nothing there now, the
 *                             read gives 0 (no fault) and QEMU's trace shows nothing
 *   pci_cmd_addr_outl         outl to 0xcf8: the VGA's register 4 (command)
 *   pci_cmd_inw               inw 0xcfc: command register (memory decoding bit 1 set)
 *   pci_cmd_mem_off_outw      outw to 0xcfc: the same without bit 1
 *   vga_off_dispi_id_readw    2-byte read of 0xfe000500: nothing there either (0,
 *                             not in QEMU's trace)
 *   pci_cmd_mem_on_outw       outw to 0xcfc: the command register as it was
 *   vga_on_dispi_id_readw     2-byte read of 0xfe000500: 0xb0c5 once more
 *   hpet_caps_readl           4-byte read of 0xfed00000 (HPET capabilities): 0x8086a201
 *   hpet_caps_readq_mmx       8-byte read of the same register with MMX movq (one 8-byte
 *                             access): 0x009896808086a201
 *   ioapic_regsel_writel      4-byte write of 1 (version register) to 0xfec00000
 *   ioapic_version_readl      4-byte read of 0xfec00010 (IOWIN): 0x00170020
 *   debug_exit_outb_imm       outb to 0xf4 (isa-debug-exit): the number of the first
 *                             check that failed, 0 if none; QEMU exits with
 *                             (value << 1) | 1, so 1 means success
 *
 * Every access is one instruction behind a global label (access.h).
 */
#include <stdint.h>

#include "access.h"

#define COM1 0x3f8
#define CMOS_INDEX 0x70
#define CMOS_DATA 0x71
#define CMOS_STATUS_B 0x0b
#define FW_CFG_SELECTOR 0x510
#define FW_CFG_DATA 0x511
#define UNASSIGNED_PORT 0xe0
#define DEBUG_EXIT 0xf4
#define PCI_ADDRESS 0xcf8
#define PCI_DATA 0xcfc
#define PCI_ENABLE 0x80000000u
#define PCI_COMMAND 0x04
#define PCI_COMMAND_MEMORY 0x0002
#define PCI_BAR2 0x18
#define I440FX_ID 0x12378086u
#define Q35_MCH_ID 0x29c08086u
#define QEMU_VGA_ID 0x11111234u
#define VGA_NEW_BAR2 0xfe000000u /* free on pc and q35: see `info mtree -f` */
#define VGA_DISPI_ID 0x500       /* bochs dispi register 0 (ID) */
#define VBE_DISPI_ID5 0xb0c5
#define HPET 0xfed00000u
#define IOAPIC 0xfec00000u

/* Multiboot v1 header: magic, flags (none: QEMU loads the ELF program headers), checksum. */
__attribute__((section(".multiboot"), used, aligned(4))) static const uint32_t multiboot[3] = {
    0x1badb002u, 0, -0x1badb002u};

void fw_main(void);

/* The multiboot loader leaves no usable stack: set ours, run fw_main. */
__attribute__((naked, section(".text.start"))) void _start(void)
{
    __asm__ volatile("mov $_stack_top, %esp\n\t"
                     "call fw_main\n\t"
                     "1: hlt\n\t"
                     "jmp 1b\n\t");
}

/* Configuration address for bus 0: enable bit, device, function 0, register. */
static uint32_t pci_address(uint32_t device, uint32_t reg)
{
    return PCI_ENABLE | (device << 11) | reg;
}

/* Remembers the first failed check: that number becomes the exit value. */
static void check(uint32_t *fail, uint32_t number, uint32_t got, uint32_t want)
{
    if (got != want && *fail == 0)
        *fail = number;
}

void fw_main(void)
{
    static const char hello[3] = "pc\n";
    char signature[4];
    uint8_t scratch, status_b, nothing;
    uint16_t host_device, command;
    uint32_t host_id, vga_device, vga_id, bar2, readback, edid, version, fail = 0;
    uint32_t id_old, id_moved, id_gone, id_off, id_on, caps_low;
    uint64_t caps;

    /* Serial port: a string instruction, then the scratch register with the port in DX. */
    REP_OUTSB("serial_rep_outsb", COM1, hello, sizeof hello);
    OUT_DX("serial_scratch_outb_dx", "outb", COM1 + 7, (uint8_t)0x5a);
    IN_DX("serial_scratch_inb_dx", "inb", COM1 + 7, scratch);
    check(&fail, 1, scratch, 0x5a);

    /* CMOS/RTC: select a register through the index port, read it from the data port. */
    OUTB_IMM("cmos_index_outb_imm", CMOS_INDEX, CMOS_STATUS_B);
    INB_IMM("cmos_data_inb_imm", CMOS_DATA, status_b);
    check(&fail, 2, status_b, 0x02);

    /* fw_cfg: select key 0 (16-bit selector), read the 4-byte signature byte by byte. */
    OUT_DX("fwcfg_select_outw", "outw", FW_CFG_SELECTOR, (uint16_t)0);
    REP_INSB("fwcfg_data_rep_insb", FW_CFG_DATA, signature, sizeof signature);
    check(&fail, 3, signature[0] == 'Q' && signature[1] == 'E' && signature[2] == 'M' &&
                        signature[3] == 'U', 1);

    /* A port no device decodes. */
    INB_IMM("unassigned_inb_imm", UNASSIGNED_PORT, nothing);
    check(&fail, 4, nothing, 0xff);

    /* PCI configuration space, mechanism #1: address to 0xcf8, data at 0xcfc-0xcff. */
    OUT_DX("pci_host_addr_outl", "outl", PCI_ADDRESS, pci_address(0, 0));
    IN_DX("pci_host_id_inl", "inl", PCI_DATA, host_id);
    IN_DX("pci_host_device_inw", "inw", PCI_DATA + 2, host_device);
    check(&fail, 5, host_device, host_id >> 16);
    /* QEMU puts the default VGA at 00:02.0 on pc, at 00:01.0 on q35. */
    check(&fail, 6, host_id == I440FX_ID || host_id == Q35_MCH_ID, 1);
    vga_device = host_id == Q35_MCH_ID ? 1 : 2;
    OUT_DX("pci_vga_addr_outl", "outl", PCI_ADDRESS, pci_address(vga_device, 0));
    IN_DX("pci_vga_id_inl", "inl", PCI_DATA, vga_id);
    check(&fail, 7, vga_id, QEMU_VGA_ID);

    /* BAR2 as SeaBIOS assigned it: 4 KiB of VGA registers (edid at 0, bochs dispi at 0x500). */
    OUT_DX("pci_bar2_addr_outl", "outl", PCI_ADDRESS, pci_address(vga_device, PCI_BAR2));
    IN_DX("pci_bar2_inl", "inl", PCI_DATA, bar2);
    bar2 &= ~0xfu; /* low bits: memory BAR flags */
    LOAD("vga_edid_readl", "movl", (volatile uint32_t *)bar2, edid);
    check(&fail, 8, edid, 0xffffff00);
    LOAD("vga_dispi_id_readw", "movzwl", (volatile uint16_t *)(bar2 + VGA_DISPI_ID), id_old);
    check(&fail, 9, id_old, VBE_DISPI_ID5);

    /* Move BAR2: 0xcf8 still selects it. QEMU remaps the region as soon as it is written. */
    OUT_DX("pci_bar2_move_outl", "outl", PCI_DATA, VGA_NEW_BAR2);
    IN_DX("pci_bar2_readback_inl", "inl", PCI_DATA, readback);
    check(&fail, 10, readback, VGA_NEW_BAR2);
    LOAD("vga_moved_dispi_id_readw", "movzwl", (volatile uint16_t *)(VGA_NEW_BAR2 + VGA_DISPI_ID),
         id_moved);
    check(&fail, 11, id_moved, VBE_DISPI_ID5);
    /*
     * Nothing is at the old address now. On pc and q35 such a read does not fault: it
     * gives 0 (QEMU's unassigned_mem_read), and QEMU's trace has no line for it.
     */
    LOAD("vga_old_dispi_id_readw", "movzwl", (volatile uint16_t *)(bar2 + VGA_DISPI_ID), id_gone);
    check(&fail, 12, id_gone, 0);

    /* Memory decoding off in the command register: BAR2 disappears, then comes back. */
    OUT_DX("pci_cmd_addr_outl", "outl", PCI_ADDRESS, pci_address(vga_device, PCI_COMMAND));
    IN_DX("pci_cmd_inw", "inw", PCI_DATA, command);
    check(&fail, 13, command & PCI_COMMAND_MEMORY, PCI_COMMAND_MEMORY);
    OUT_DX("pci_cmd_mem_off_outw", "outw", PCI_DATA, (uint16_t)(command & ~PCI_COMMAND_MEMORY));
    LOAD("vga_off_dispi_id_readw", "movzwl", (volatile uint16_t *)(VGA_NEW_BAR2 + VGA_DISPI_ID),
         id_off);
    check(&fail, 14, id_off, 0);
    OUT_DX("pci_cmd_mem_on_outw", "outw", PCI_DATA, command);
    LOAD("vga_on_dispi_id_readw", "movzwl", (volatile uint16_t *)(VGA_NEW_BAR2 + VGA_DISPI_ID),
         id_on);
    check(&fail, 15, id_on, VBE_DISPI_ID5);

    /*
     * HPET general capabilities: 0x8086a201 in the low half (vendor 8086, legacy
     * replacement and 64-bit counter capable, 3 timers, revision 1), the period in
     * femtoseconds (10 ns: 0x00989680) in the high half. Fixed, unlike the main counter
     * (which would read 0: SeaBIOS leaves the HPET disabled). MMX needs no setup: CR0.EM
     * and CR0.TS are clear.
     */
    LOAD("hpet_caps_readl", "movl", (volatile uint32_t *)HPET, caps_low);
    check(&fail, 16, caps_low, 0x8086a201);
    LOAD64_MMX("hpet_caps_readq_mmx", (volatile uint64_t *)HPET, caps);
    check(&fail, 17, caps >> 32, 0x00989680);
    check(&fail, 18, (uint32_t)caps, caps_low);

    /* IOAPIC: register 1 (version) through the IOREGSEL/IOWIN window. */
    STORE("ioapic_regsel_writel", "movl", (volatile uint32_t *)IOAPIC, 1);
    LOAD("ioapic_version_readl", "movl", (volatile uint32_t *)(IOAPIC + 0x10), version);
    check(&fail, 19, version, 0x00170020); /* 24 redirection entries, version 0x20 */

    OUTB_IMM("debug_exit_outb_imm", DEBUG_EXIT, fail);
}
