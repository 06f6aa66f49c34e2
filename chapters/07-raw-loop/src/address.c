/* address.c - the address list: the library's own copy of a lookup's
 * answer, which a cache can keep and a connect can walk. */
#include "evq.h"

#include "evq_net.h" /* AF_INET, struct sockaddr_in6 */

#include <stdlib.h>
#include <string.h>

int evq_address_list_add(evq_address_list *list, const struct sockaddr *address, size_t length)
{
    if (!list || !address)
        return EVQ_EINVAL;
    size_t need;
    switch (address->sa_family) {
    case AF_INET:
        need = sizeof(struct sockaddr_in);
        break;
    case AF_INET6:
        need = sizeof(struct sockaddr_in6);
        break;
    default:
        return EVQ_EAFNOSUPPORT; /* a TCP connect takes neither */
    }
    if (length < need)
        return EVQ_EINVAL;
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? list->capacity * 2 : 4;
        if (capacity > SIZE_MAX / sizeof *list->items)
            return EVQ_ENOMEM;
        evq_address *items = realloc(list->items, capacity * sizeof *items);
        if (!items)
            return EVQ_ENOMEM;
        list->items = items;
        list->capacity = capacity;
    }
    evq_address *item = &list->items[list->count++];
    memset(item, 0, sizeof *item);
    memcpy(item->bytes, address, need); /* evq.h keeps the bytes, opaque */
    item->length = (uint32_t)need;
    return 0;
}

int evq_address_list_copy(evq_address_list *to, const evq_address_list *from)
{
    if (!to || !from)
        return EVQ_EINVAL;
    to->items = NULL;
    to->count = to->capacity = 0;
    if (from->count == 0)
        return 0;
    to->items = malloc(from->count * sizeof *to->items);
    if (!to->items)
        return EVQ_ENOMEM;
    memcpy(to->items, from->items, from->count * sizeof *to->items);
    to->count = to->capacity = from->count;
    return 0;
}

void evq_address_list_free(evq_address_list *list)
{
    if (!list)
        return;
    free(list->items);
    list->items = NULL;
    list->count = list->capacity = 0;
}
