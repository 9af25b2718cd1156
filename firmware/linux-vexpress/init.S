@ The whole userspace of the Linux guest (benchmark and tests): PID 1 says it was
@ reached on the console and powers the board off, so QEMU exits once the kernel booted.
@ Given an absolute path (kernel command line `-- /HOST_FILE`, QEMU run with
@ `-semihosting-config enable=on,target=native,userspace=on`), it first loads
@ /i2c-versatile.ko, whose probe writes the board's two I2C controllers from module
@ text (0xbf...), then copies /proc/kallsyms, the module's symbols included, to that
@ file on the host through semihosting: the kernel's real symbols, which Debian ships
@ only in a 600 MB debug package. Should semihosting be off, each `svc 0x123456` is an
@ ordinary system call, so r7 then names one Linux does not implement (17, the old
@ `break`: ENOSYS) rather than whatever it held.
@ Raw EABI system calls, so Debian's bare-metal gcc-arm-none-eabi can build it.
        .syntax unified
        .arm
        .global _start
_start:
        ldr     r0, [sp]                @ argc
        cmp     r0, #2
        blt     power_off
        ldr     r8, [sp, #8]            @ argv[1]: the host file
        ldrb    r0, [r8]
        cmp     r0, #'/'
        bne     power_off
        ldr     r0, =proc               @ mount("proc", "/proc", "proc", 0, NULL)
        ldr     r1, =proc_dir
        ldr     r2, =proc
        mov     r3, #0
        mov     r4, #0
        mov     r7, #21
        svc     #0
        ldr     r0, =module             @ open("/i2c-versatile.ko", O_RDONLY)
        mov     r1, #0
        mov     r7, #5
        svc     #0
        cmp     r0, #0
        blt     module_failed
        ldr     r1, =no_parameters      @ finit_module(fd, "", 0)
        mov     r2, #0
        ldr     r7, =379
        svc     #0
        cmp     r0, #0
        beq     module_loaded
module_failed:
        mov     r0, #1                  @ say so, and copy kallsyms all the same
        ldr     r1, =module_failure
        mov     r2, #module_failure_len
        mov     r7, #4
        svc     #0
module_loaded:
        ldr     r0, =kallsyms           @ open("/proc/kallsyms", O_RDONLY)
        mov     r1, #0
        mov     r7, #5
        svc     #0
        movs    r9, r0
        bmi     failed
        mov     r2, #0                  @ strlen(argv[1])
1:      ldrb    r3, [r8, r2]
        cmp     r3, #0
        addne   r2, r2, #1
        bne     1b
        ldr     r1, =block              @ SYS_OPEN(argv[1], "wb", length)
        str     r8, [r1]
        mov     r3, #5
        str     r3, [r1, #4]
        str     r2, [r1, #8]
        mov     r0, #0x01
        mov     r7, #17
        svc     #0x123456
        movs    r10, r0
        bmi     failed
copy:
        mov     r0, r9                  @ read(fd, buffer, 4096)
        ldr     r1, =buffer
        mov     r2, #4096
        mov     r7, #3
        svc     #0
        cmp     r0, #0
        beq     copied
        blt     failed
        ldr     r1, =block              @ SYS_WRITE(handle, buffer, length)
        str     r10, [r1]
        ldr     r2, =buffer
        str     r2, [r1, #4]
        str     r0, [r1, #8]
        mov     r0, #0x05
        mov     r7, #17
        svc     #0x123456
        cmp     r0, #0                  @ bytes not written
        bne     failed
        b       copy
copied:
        ldr     r1, =block              @ SYS_CLOSE(handle)
        str     r10, [r1]
        mov     r0, #0x02
        mov     r7, #17
        svc     #0x123456
        cmp     r0, #0
        beq     power_off
failed:
        mov     r0, #1                  @ say so: the host file is missing or short
        ldr     r1, =failure
        mov     r2, #failure_len
        mov     r7, #4
        svc     #0
power_off:
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
failure:
        .ascii  "mmio-trace guest: copying /proc/kallsyms to the host failed\n"
        .equ    failure_len, . - failure
module_failure:
        .ascii  "mmio-trace guest: loading /i2c-versatile.ko failed\n"
        .equ    module_failure_len, . - module_failure
module:
        .asciz  "/i2c-versatile.ko"
no_parameters:
        .asciz  ""
proc:
        .asciz  "proc"
proc_dir:
        .asciz  "/proc"
kallsyms:
        .asciz  "/proc/kallsyms"
        .align  2
        .ltorg
        .bss
        .align  2
block:
        .space  12
buffer:
        .space  4096
