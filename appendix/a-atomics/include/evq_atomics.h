/* evq_atomics.h - the three basic uses of C11 atomics in an event queue, one
 * memory order each:
 *
 *   relaxed          a statistics counter that many threads bump
 *   release/acquire  a result one thread fills in and another picks up
 *   compare-and-swap a loop that changes a value only if nobody else did
 *
 * The spin locks are in evq_spinlock.h, the registration lock in
 * evq_registration.h, the ring in evq_mpsc_ring.h.
 */
#ifndef EVQ_ATOMICS_H
#define EVQ_ATOMICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* ---- relaxed: a counter ------------------------------------------------------ */

/* Events handled, bytes read, wakeups sent: counted by any thread, read now
 * and then by a monitoring thread. Nothing else is published through it. */
typedef struct evq_counter {
    _Atomic uint64_t value;
} evq_counter;

void evq_counter_init(evq_counter *counter, uint64_t value);
/* Add n; returns the value before (each caller gets a different one). */
uint64_t evq_counter_add(evq_counter *counter, uint64_t n);
/* A snapshot: exact once the threads that add have been joined. */
uint64_t evq_counter_read(evq_counter *counter);

/* ---- release/acquire: publishing a result ------------------------------------- */

#define EVQ_LOOKUP_MAX_ADDRESSES 4

/* What a resolver thread hands back to the loop (chapter 4's getaddrinfo on a
 * thread pool): several plain fields, written by one thread, read by another. */
typedef struct evq_lookup_result {
    int status;                                   /* 0 or an EVQ_E* code */
    uint32_t address_count;                       /* how many of addresses[] */
    uint32_t addresses[EVQ_LOOKUP_MAX_ADDRESSES]; /* IPv4, host order */
    uint64_t request_id;                          /* which lookup this answers */
} evq_lookup_result;

/* One result and the flag that says it is there. Filled once. */
typedef struct evq_result_slot {
    evq_lookup_result result; /* plain memory: the flag orders it */
    atomic_bool ready;
} evq_result_slot;

void evq_result_slot_init(evq_result_slot *slot);
/* The resolver thread, once: copy the result in, then raise the flag. */
void evq_result_slot_publish(evq_result_slot *slot, const evq_lookup_result *result);
/* Any thread: false while nothing is published; true and a copy once it is. */
bool evq_result_slot_poll(evq_result_slot *slot, evq_lookup_result *out);

/* ---- compare-and-swap loops ------------------------------------------------------- */

/* Raise *maximum to candidate if candidate is larger ("the longest loop turn
 * so far"). Returns true if this call raised it. */
bool evq_max_update(_Atomic uint64_t *maximum, uint64_t candidate);

/* A counter of permits (e.g. DNS lookups allowed in flight at once). Take one
 * if any is left: true if taken, false if the count was 0. It never goes
 * below 0, however many threads try at once. */
bool evq_permit_try_take(_Atomic uint32_t *permits);
/* Give a taken permit back. */
void evq_permit_give(_Atomic uint32_t *permits);

#endif
