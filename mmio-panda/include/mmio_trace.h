/*
 * C API of the mmio_trace PANDA plugin (panda_mmio_trace.so). Plain C.
 *
 * Define MMIO_TRACE_TARGET_LONG_BITS to 32 or 64 (the guest's word size) before
 * including this header, or include it after PANDA's headers, which define
 * TARGET_LONG_BITS.
 */
#ifndef MMIO_TRACE_H
#define MMIO_TRACE_H

#include <stddef.h>
#include <stdint.h>

#ifndef MMIO_TRACE_TARGET_LONG_BITS
#ifdef TARGET_LONG_BITS
#define MMIO_TRACE_TARGET_LONG_BITS TARGET_LONG_BITS
#else
#error "define MMIO_TRACE_TARGET_LONG_BITS (32 or 64) or include PANDA's headers first"
#endif
#endif

#if MMIO_TRACE_TARGET_LONG_BITS == 64
typedef uint64_t mmio_target_ptr_t;
#elif MMIO_TRACE_TARGET_LONG_BITS == 32
typedef uint32_t mmio_target_ptr_t;
#else
#error "MMIO_TRACE_TARGET_LONG_BITS must be 32 or 64"
#endif

/* One guest access to an I/O region; the upstream plugin's field order. */
typedef struct mmio_event_t {
    char access_type;            /* 'R' or 'W' */
    uint64_t pc;                 /* QEMU vaddr: precise PC of the accessing instruction */
    mmio_target_ptr_t phys_addr; /* absolute guest-physical address (upstream: an offset) */
    mmio_target_ptr_t virt_addr; /* address the guest used */
    size_t size;                 /* bytes: 1, 2, 4 or 8 */
    uint64_t value;              /* value read or written, masked to size */
    const char *dev_name;        /* device name, "[NONE]" if unknown; valid until unload */
} mmio_event_t;

/*
 * Every event recorded so far, in order, as a malloc'd array of *count events; free it
 * with free_mmio_events (or free). Needs retention (argument retain=true, the default
 * when no out_log is given); without it returns NULL and sets *count to 0.
 */
mmio_event_t *get_mmio_events(int *count);

/* Frees an array returned by get_mmio_events. NULL is allowed. */
void free_mmio_events(mmio_event_t *events);

/*
 * PPP callback, called for each event as it is recorded (needs no retention):
 *   void on_event(const mmio_event_t *event);
 *   PPP_REG_CB("mmio_trace", on_mmio_event, on_event);
 * The event is valid for the duration of the call.
 */
typedef void (*on_mmio_event_t)(const mmio_event_t *event);

#endif /* MMIO_TRACE_H */
