@ The whole userspace of the Linux guest (benchmark and tests): PID 1 says it was
@ reached on the console and powers the board off, so QEMU exits once the kernel booted.
@ Raw EABI system calls, so Debian's bare-metal gcc-arm-none-eabi can build it.
        .syntax unified
        .arm
        .global _start
_start:
        mov     r0, #1                  @ stdout: the kernel opened /dev/console for us
        adr     r1, message
        mov     r2, #message_len
        mov     r7, #4                  @ write
        svc     #0
        ldr     r0, =0xfee1dead         @ LINUX_REBOOT_MAGIC1
        ldr     r1, =0x28121969         @ LINUX_REBOOT_MAGIC2
        ldr     r2, =0x4321fedc         @ LINUX_REBOOT_CMD_POWER_OFF
        mov     r7, #88                 @ reboot
        svc     #0
        b       .
message:
        .ascii  "mmio-trace guest: init reached, powering off\n"
        .equ    message_len, . - message
        .align  2
