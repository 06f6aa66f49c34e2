/* evq_registration.h - the registration lock of the thread-safety chapter.
 *
 * Any thread may register a stream with a queue while the loop thread waits
 * in it, and any thread may close the queue. Registrations must not overlap
 * one another (they share the queue's table of streams), and none may start
 * once the queue is closed: a registration that slipped in after close would
 * touch freed memory. The pattern:
 *
 *     int rc = evq_registration_begin(&queue->registration);
 *     if (rc != 0)
 *         return rc;                        // EVQ_ECLOSED
 *     ... add the stream to the table, epoll_ctl / kevent / associate ...
 *     evq_registration_end(&queue->registration);
 *
 * and close calls evq_registration_close() before it tears anything down.
 */
#ifndef EVQ_REGISTRATION_H
#define EVQ_REGISTRATION_H

#include <stdatomic.h>
#include <stdbool.h>

typedef struct evq_registration_lock {
    atomic_bool busy;   /* a registration (or the close) is in progress */
    atomic_bool closed; /* set once, under busy; never cleared */
} evq_registration_lock;

void evq_registration_init(evq_registration_lock *lock);

/* Take the lock, waiting (spinning, then yielding) while another thread holds
 * it, and check that the queue is open. 0: go ahead, and call
 * evq_registration_end() when done. EVQ_ECLOSED: the queue is closed; the lock
 * is not held. */
int evq_registration_begin(evq_registration_lock *lock);

/* The same without waiting: EVQ_EBUSY at once if another thread holds it. */
int evq_registration_try_begin(evq_registration_lock *lock);

/* End a registration that evq_registration_begin() let start. */
void evq_registration_end(evq_registration_lock *lock);

/* Close: wait for a registration in progress to end, then refuse every later
 * one. When it returns, no registration is running or will run, and what
 * the finished ones wrote is visible to the caller. Calling it again is
 * harmless. */
void evq_registration_close(evq_registration_lock *lock);

/* Whether close has happened, for code that does not take the lock (a hint:
 * it may turn true right after it returns false). */
bool evq_registration_is_closed(evq_registration_lock *lock);

#endif
