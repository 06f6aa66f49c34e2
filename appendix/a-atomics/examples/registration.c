/* registration.c - three threads register streams with a "queue" while the
 * main thread closes it: registrations that began finish, later ones are
 * refused, and the closer sees every registration that happened.
 *
 *     atomics_registration [N]   (close after about N registrations; 100000)
 */
#include "evq_args.h"
#include "evq_registration.h"
#include "evq_error.h"
#include "evq_thread.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#define THREADS 3

static evq_registration_lock lock;
static uint64_t table_size; /* the queue's table: changed only under the lock */
static atomic_uint_fast64_t progress;

struct registrar {
    evq_thread thread;
    uint64_t registered;
    int refusal;
};

static void register_streams(void *arg)
{
    struct registrar *r = arg;
    /* ANCHOR: use */
    for (;;) {
        int rc = evq_registration_begin(&lock);
        if (rc != 0) {
            r->refusal = rc; /* EVQ_ECLOSED: the queue is gone, stop */
            break;
        }
        table_size++; /* the registration itself: plain memory, one writer */
        evq_registration_end(&lock);
        r->registered++;
        atomic_fetch_add_explicit(&progress, 1, memory_order_relaxed);
    }
    /* ANCHOR_END: use */
}

int main(int argc, char **argv)
{
    unsigned long close_after = 100000;
    if (argc > 2 || (argc == 2 && !evq_parse_ulong(argv[1], 1, ULONG_MAX, &close_after))) {
        fprintf(stderr, "usage: %s [registrations before closing > 0]\n", argv[0]);
        return 2;
    }
    evq_registration_init(&lock);
    atomic_init(&progress, 0);
    struct registrar registrars[THREADS] = {0};
    for (int i = 0; i < THREADS; i++)
        if (evq_thread_start(&registrars[i].thread, register_streams, &registrars[i]) != 0)
            return 1;
    while (atomic_load_explicit(&progress, memory_order_relaxed) < close_after)
        evq_thread_yield();
    evq_registration_close(&lock);
    uint64_t at_close = table_size; /* safe: close acquired the lock last */

    uint64_t registered = 0;
    int refused = 0;
    for (int i = 0; i < THREADS; i++) {
        evq_thread_join(&registrars[i].thread);
        registered += registrars[i].registered;
        refused += registrars[i].refusal == EVQ_ECLOSED;
        printf("registrar %d: %llu registrations, then %s\n", i,
               (unsigned long long)registrars[i].registered, evq_error_name(registrars[i].refusal));
    }
    printf("the table at close: %llu streams; registered in all: %llu\n",
           (unsigned long long)at_close, (unsigned long long)registered);
    return at_close == registered && table_size == registered && refused == THREADS ? 0 : 1;
}
