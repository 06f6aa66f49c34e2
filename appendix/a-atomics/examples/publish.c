/* publish.c - a resolver thread hands lookup results to the main thread:
 * it fills each result in, then raises the slot's flag with a release store;
 * the main thread waits for the flag with acquire loads and then reads.
 *
 *     atomics_publish [N]      (default 100000 results)
 */
#include "evq_args.h"
#include "evq_atomics.h"
#include "evq_thread.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

static evq_result_slot *slots;
static size_t count = 100000;

static evq_lookup_result answer(size_t id)
{
    evq_lookup_result r = {0, 2, {0x7f000001u, (uint32_t)id, 0, 0}, id};
    return r;
}

static void resolver(void *arg)
{
    (void)arg;
    for (size_t i = 0; i < count; i++) {
        evq_lookup_result r = answer(i);
        evq_result_slot_publish(&slots[i], &r);
    }
}

int main(int argc, char **argv)
{
    unsigned long arg = (unsigned long)count;
    if (argc > 2 || (argc == 2 && !evq_parse_ulong(argv[1], 1, ULONG_MAX, &arg))) {
        fprintf(stderr, "usage: %s [count > 0]\n", argv[0]);
        return 2;
    }
    count = arg;
    slots = malloc((count ? count : 1) * sizeof *slots);
    if (!slots)
        return 1;
    for (size_t i = 0; i < count; i++)
        evq_result_slot_init(&slots[i]);
    evq_thread thread;
    if (evq_thread_start(&thread, resolver, NULL) != 0)
        return 1;
    size_t whole = 0, waits = 0;
    for (size_t i = 0; i < count; i++) {
        evq_lookup_result r;
        while (!evq_result_slot_poll(&slots[i], &r)) {
            waits++;
            evq_thread_yield();
        }
        /* Every field is the resolver's, never an older or half-written one. */
        evq_lookup_result want = answer(i);
        whole += r.request_id == i && r.status == 0 && r.address_count == 2 &&
                 r.addresses[0] == want.addresses[0] && r.addresses[1] == want.addresses[1];
    }
    evq_thread_join(&thread);
    printf("%zu results published, %zu read whole (the reader found nothing yet %zu times)\n",
           count, whole, waits);
    free(slots);
    return whole == count ? 0 : 1;
}
