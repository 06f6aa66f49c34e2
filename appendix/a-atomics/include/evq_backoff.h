/* evq_backoff.h - what a thread does while it waits for another thread to
 * let go of something: first tell the CPU it is spinning, and if the wait
 * goes on, give the core to someone else.
 */
#ifndef EVQ_BACKOFF_H
#define EVQ_BACKOFF_H

/* Spin rounds double from 1 pause to this many; after that every wait yields
 * the core. 1 + 2 + ... + 64 = 127 pauses is a few microseconds on current
 * x86 cores: about the length of a short critical section held by a thread
 * that is running. Longer than that, the holder is probably not running, and
 * spinning only delays it. */
#define EVQ_BACKOFF_SPIN_LIMIT 64u

typedef struct evq_backoff {
    unsigned spins; /* pauses in the next round; past the limit: yield */
} evq_backoff;

#define EVQ_BACKOFF_INIT                                                                           \
    {                                                                                              \
        1u                                                                                         \
    }

/* One "I am spinning" hint to the CPU: PAUSE on x86, YIELD on Arm. */
void evq_cpu_pause(void);

/* Wait a little longer than last time: a round of pauses, or, once the rounds
 * have reached EVQ_BACKOFF_SPIN_LIMIT, one evq_thread_yield(). */
void evq_backoff_wait(evq_backoff *backoff);

#endif
