/*
 * Entry point. QEMU starts an ELF -kernel at its entry point at EL1 with the MMU off
 * (cortex-a57 on -M virt has neither EL2 nor EL3 unless virtualization=on/secure=on).
 * Set up a stack and an exception vector table, then call main(); its return value
 * becomes QEMU's exit status through semihosting.
 */
    .section .text.start, "ax"
    .global _start
_start:
    ldr     x0, =vectors
    msr     vbar_el1, x0
    isb
    ldr     x0, =_stack_top
    mov     sp, x0
    bl      main
    b       semihosting_exit            /* w0 = main's return value */

/*
 * Any exception (e.g. a data abort from an access to an unmapped address) ends the run
 * with exit status 1 instead of looping forever. 16 entries of 0x80 bytes, 2 KiB aligned.
 */
    .balign 2048
vectors:
    .rept 16
    mov     w0, #1
    b       semihosting_exit
    .balign 0x80
    .endr
