/* backoff.c - the CPU's spin hint and a pause-then-yield back-off. */
#include "evq_backoff.h"

#include "evq_thread.h"

#include <stdatomic.h>

/* ANCHOR: pause */
#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64) || defined(_M_IX86)
#include <immintrin.h>
/* PAUSE marks a spin-wait loop: leaving the loop then costs no pipeline flush
 * for a suspected memory-order violation, the core draws less power while it
 * waits, and a hyperthread sibling gets more of the core. How long it lasts
 * depends on the CPU (from about 10 to about 140 cycles). */
#define EVQ_PAUSE() _mm_pause()
#elif (defined(__aarch64__) || defined(__arm__)) && (defined(__GNUC__) || defined(__clang__))
#define EVQ_PAUSE() __asm__ __volatile__("yield" ::: "memory")
#elif defined(_M_ARM64) || defined(_M_ARM)
#include <intrin.h>
#define EVQ_PAUSE() __yield()
#else
/* No hint on this CPU: at least keep the compiler from merging the loop's
 * loads into one. */
#define EVQ_PAUSE() atomic_signal_fence(memory_order_seq_cst)
#endif

void evq_cpu_pause(void)
{
    EVQ_PAUSE();
}
/* ANCHOR_END: pause */

/* ANCHOR: backoff */
void evq_backoff_wait(evq_backoff *backoff)
{
    if (backoff->spins <= EVQ_BACKOFF_SPIN_LIMIT) {
        for (unsigned i = 0; i < backoff->spins; i++)
            evq_cpu_pause();
        backoff->spins *= 2;
        return;
    }
    /* The holder has had a few microseconds and still holds on: it is most
     * likely not running (preempted, or waiting for the core we spin on).
     * Spinning longer cannot help it; giving the core away can. */
    evq_thread_yield();
}
/* ANCHOR_END: backoff */
