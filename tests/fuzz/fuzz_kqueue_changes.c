/* fuzz_kqueue_changes.c - the kqueue emulation's changelist (appendix B,
 * <sys/event.h> on epoll) against a small model of FreeBSD's kqueue_register
 * and kqueue_kevent.
 *
 * Each input is a script for one fresh kqueue, two socket pairs and a pipe:
 * kevent() calls with random change arrays (any filter, flags, fflags and
 * data, idents that are open descriptors, the kqueue itself, closed or
 * impossible descriptors; eventlist smaller than the receipts, or the very
 * array that holds the changes), and writes and reads that make descriptors
 * readable or not. Timers get periods of hours, so nothing depends on time.
 *
 * Rules checked after every call:
 *   - its return value, errno, and every EV_ERROR entry (ident, filter,
 *     udata, fflags, the error in data) are what the model predicts - which
 *     change failed, and how, and that changes after a missing slot are not
 *     applied;
 *   - an event is returned only for a knote that exists, is enabled, and
 *     whose condition holds (bytes to read - as many as data says - room to
 *     write, a trigger), with its flags and latest udata, at most once per
 *     call, and never for a timer;
 *   - when fewer events than the room came back, every enabled knote whose
 *     condition holds and that is not edge-triggered (EV_CLEAR on a
 *     descriptor) came back;
 *   - EV_ONESHOT knotes are gone after delivery, EV_DISPATCH ones disabled,
 *     and a user event with EV_CLEAR is no longer triggered.
 */
#define _GNU_SOURCE
#include "fuzz.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <sys/event.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { DESCRIPTORS = 6 }; /* two socket pairs (0-1, 2-3) and a pipe (4 reads, 5 writes) */
enum { IDENTS = 9 };      /* the six, the kqueue, a closed number, one above INT_MAX */
enum { FILTERS = 4 };     /* READ, WRITE, USER, TIMER: what the model keeps */
enum { MAX_CHANGES = 8, MAX_EVENTS = 8, MAX_STEPS = 48, MAX_PENDING = 4096 };

static const short filter_values[FILTERS] = {EVFILT_READ, EVFILT_WRITE, EVFILT_USER, EVFILT_TIMER};

/* What the model knows of one (ident, filter) knote. */
typedef struct model_knote {
    bool exists;
    bool disabled;
    unsigned short flags; /* the flags it keeps and returns with its events */
    void *udata;
    bool triggered; /* EVFILT_USER */
    unsigned user_fflags;
    int64_t user_data;
} model_knote;

typedef struct world {
    int kq;
    int fds[DESCRIPTORS];
    uintptr_t idents[IDENTS];
    size_t pending[DESCRIPTORS]; /* bytes waiting to be read on fds[i] */
    model_knote knotes[IDENTS][FILTERS];
    uintptr_t next_udata;
} world;

/* Bytes consumed from the script; zeros once it runs out. */
typedef struct script {
    const uint8_t *data;
    size_t size, at;
} script;

static uint8_t next_byte(script *s)
{
    return s->at < s->size ? s->data[s->at++] : 0;
}

static int filter_index(short filter)
{
    for (int f = 0; f < FILTERS; f++)
        if (filter_values[f] == filter)
            return f;
    return -1;
}

static int ident_index(const world *w, uintptr_t ident)
{
    for (int i = 0; i < IDENTS; i++)
        if (w->idents[i] == ident)
            return i;
    return -1;
}

/* Whether a descriptor filter's condition holds: 1 yes, 0 no, -1 not
 * modelled (reading the pipe's write end, writing its read end: FreeBSD
 * and Linux pipes differ there, and the model makes no claim). */
static int descriptor_ready(const world *w, int ident, int filter)
{
    if (ident >= DESCRIPTORS)
        return 0;
    if (filter == 0) /* EVFILT_READ */
        return ident == 5 ? -1 : w->pending[ident] > 0;
    return ident == 4 ? -1 : 1; /* EVFILT_WRITE: a few KiB never fill a buffer */
}

static bool timer_schedule_valid(int64_t data, unsigned fflags)
{
    if (data < 0)
        return false;
    return fflags == 0 || fflags == NOTE_SECONDS || fflags == NOTE_MSECONDS ||
           fflags == NOTE_USECONDS || fflags == NOTE_NSECONDS;
}

/* One change, as kqueue_register: returns the errno value, and what the
 * EV_ERROR entry's fflags would show. Applies it to the model. */
static int model_register(world *w, const struct kevent *change, unsigned *receipt_fflags)
{
    unsigned short flags = change->flags & (unsigned short)~EV_SYSFLAGS;
    *receipt_fflags = change->fflags;
    if ((flags & (EV_ENABLE | EV_DISABLE)) == (EV_ENABLE | EV_DISABLE))
        return EINVAL;
    int f = filter_index(change->filter);
    if (f < 0)
        return EINVAL;
    int i = ident_index(w, change->ident);
    FUZZ_CHECK(i >= 0);
    bool descriptor = f < 2;
    if (descriptor && i >= 7)
        return EBADF; /* not an open descriptor, whatever the flags */
    model_knote *kn = &w->knotes[i][f];
    if (kn->exists && (flags & EV_DELETE)) {
        memset(kn, 0, sizeof *kn);
        return 0;
    }
    if (kn->exists) {
        if (flags & EV_ENABLE)
            kn->disabled = false;
        else if (flags & EV_DISABLE)
            kn->disabled = true;
        kn->udata = change->udata;
        if (f == 2) { /* EVFILT_USER's touch */
            unsigned value = change->fflags & NOTE_FFLAGSMASK;
            if (change->fflags & NOTE_TRIGGER)
                kn->triggered = true;
            switch (change->fflags & NOTE_FFCTRLMASK) {
            case NOTE_FFAND:
                kn->user_fflags &= value;
                break;
            case NOTE_FFOR:
                kn->user_fflags |= value;
                break;
            case NOTE_FFCOPY:
                kn->user_fflags = value;
                break;
            default:
                break;
            }
            *receipt_fflags = value;
            kn->user_data = change->data;
            if (flags & EV_CLEAR)
                kn->triggered = false;
        } else if (f == 3 && (flags & EV_ADD) &&
                   !timer_schedule_valid(change->data, change->fflags)) {
            return EINVAL;
        }
        return 0;
    }
    if (!(flags & EV_ADD))
        return ENOENT;
    if (descriptor && i == 6)
        return EINVAL; /* a kqueue cannot watch itself */
    if (f == 3 && !timer_schedule_valid(change->data, change->fflags))
        return EINVAL;
    kn->exists = true;
    kn->disabled = (flags & EV_DISABLE) != 0;
    kn->flags = flags & (unsigned short)~(EV_ADD | EV_DELETE | EV_ENABLE | EV_DISABLE);
    if (f == 3)
        kn->flags |= EV_CLEAR; /* as FreeBSD: relative timers clear on delivery */
    kn->udata = change->udata;
    if (f == 2) {
        kn->triggered = false; /* FreeBSD ignores NOTE_TRIGGER when adding */
        kn->user_fflags = change->fflags & NOTE_FFLAGSMASK;
        kn->user_data = change->data;
    }
    *receipt_fflags = 0;
    return 0;
}

static struct kevent random_change(world *w, script *s)
{
    static const short filters[] = {EVFILT_READ, EVFILT_WRITE, EVFILT_USER, EVFILT_TIMER,
                                    0,           -3,           EVFILT_READ, EVFILT_USER};
    static const unsigned timer_fflags[] = {0,
                                            NOTE_SECONDS,
                                            NOTE_MSECONDS,
                                            NOTE_USECONDS,
                                            NOTE_NSECONDS,
                                            0x10,
                                            NOTE_SECONDS | NOTE_USECONDS};
    /* Never 0: a timer of 0 fires at once, and the model keeps no time. */
    static const int64_t timer_data[] = {INT64_C(4000000000000), -1, INT64_C(-4000000000000)};
    uint8_t ident = next_byte(s), filter = next_byte(s), flags_low = next_byte(s),
            flags_high = next_byte(s), fflags = next_byte(s), data = next_byte(s);
    struct kevent change;
    short filter_value = filters[filter % 8];
    unsigned fflags_value = fflags;
    int64_t data_value = data;
    if (filter_value == EVFILT_USER)
        fflags_value = (unsigned)(fflags >> 6) << 30 | ((fflags & 0x20) ? NOTE_TRIGGER : 0) |
                       (fflags & 0x1fu) | (unsigned)data << 16;
    else if (filter_value == EVFILT_TIMER) {
        fflags_value = timer_fflags[fflags % 7];
        data_value = timer_data[data % 3];
    }
    /* The actions and flags of <sys/event.h>, and now and then the system
     * bits, which must be ignored on input. */
    unsigned short flags = (unsigned short)(flags_low | ((flags_high & 0xf0u) << 8));
    EV_SET(&change, w->idents[ident % IDENTS], filter_value, flags, fflags_value, data_value,
           (void *)(uintptr_t)(++w->next_udata));
    return change;
}

/* After a scan: check the events against the model, then let delivery
 * change it (EV_ONESHOT, EV_DISPATCH, EV_CLEAR). */
static void check_events(world *w, const struct kevent *events, int count, int room)
{
    bool seen[IDENTS][FILTERS];
    memset(seen, 0, sizeof seen);
    for (int e = 0; e < count; e++) {
        const struct kevent *ev = &events[e];
        int i = ident_index(w, ev->ident), f = filter_index(ev->filter);
        FUZZ_CHECK(i >= 0 && f >= 0);
        FUZZ_CHECK(!seen[i][f]);
        seen[i][f] = true;
        model_knote *kn = &w->knotes[i][f];
        FUZZ_CHECK(kn->exists && !kn->disabled);
        FUZZ_CHECK(ev->udata == kn->udata);
        FUZZ_CHECK(ev->flags == kn->flags);
        FUZZ_CHECK(f != 3); /* timers of hours */
        if (f == 2) {
            FUZZ_CHECK(kn->triggered);
            FUZZ_CHECK(ev->fflags == kn->user_fflags);
            FUZZ_CHECK(ev->data == kn->user_data);
        } else {
            int ready = descriptor_ready(w, i, f);
            FUZZ_CHECK(ready != 0);
            if (f == 0 && ready == 1)
                FUZZ_CHECK(ev->data == (int64_t)w->pending[i]);
        }
    }
    if (count < room) {
        for (int i = 0; i < IDENTS; i++) {
            for (int f = 0; f < 3; f++) {
                const model_knote *kn = &w->knotes[i][f];
                if (!kn->exists || kn->disabled || seen[i][f])
                    continue;
                bool due = f == 2 ? kn->triggered
                                  : !(kn->flags & EV_CLEAR) && descriptor_ready(w, i, f) == 1;
                FUZZ_CHECK(!due);
            }
        }
    }
    for (int e = 0; e < count; e++) {
        int i = ident_index(w, events[e].ident), f = filter_index(events[e].filter);
        FUZZ_CHECK(i >= 0 && f >= 0);
        model_knote *kn = &w->knotes[i][f];
        if (kn->flags & EV_ONESHOT)
            memset(kn, 0, sizeof *kn);
        else if (kn->flags & EV_DISPATCH)
            kn->disabled = true;
        if (f == 2 && (kn->flags & EV_CLEAR))
            kn->triggered = false;
    }
}

static void step_kevent(world *w, script *s)
{
    uint8_t shape = next_byte(s);
    int nchanges = shape & 7, nevents = (shape >> 3) & 7;
    bool same_array = (shape & 0x40) != 0;
    struct kevent changes[MAX_CHANGES];
    for (int c = 0; c < nchanges; c++)
        changes[c] = random_change(w, s);

    /* The prediction, on the model. */
    struct kevent expected[MAX_EVENTS];
    int expected_entries = 0, expected_errno = 0;
    bool fails = false;
    for (int c = 0; c < nchanges && !fails; c++) {
        if (changes[c].filter == 0)
            continue; /* FreeBSD skips it */
        unsigned receipt_fflags = 0;
        int error = model_register(w, &changes[c], &receipt_fflags);
        bool receipt = (changes[c].flags & EV_RECEIPT) != 0;
        if (error == 0 && !receipt)
            continue;
        if (expected_entries == nevents) {
            if (error == 0)
                break; /* no room for a receipt: the rest are not applied */
            fails = true;
            expected_errno = error;
            break;
        }
        struct kevent *entry = &expected[expected_entries++];
        *entry = changes[c];
        entry->flags = EV_ERROR;
        entry->fflags = receipt_fflags;
        entry->data = error;
    }

    /* The real call: arrays of exactly the sizes given, so that ASan sees
     * a write past the room. */
    size_t cells = (size_t)(nchanges > nevents ? nchanges : nevents);
    struct kevent *change_array = malloc((cells ? cells : 1) * sizeof *change_array);
    struct kevent *event_array =
        same_array ? change_array : malloc((nevents ? (size_t)nevents : 1) * sizeof *event_array);
    FUZZ_CHECK(change_array && event_array);
    memcpy(change_array, changes, (size_t)nchanges * sizeof *changes);
    struct timespec zero = {0, 0};
    errno = 0;
    int result = kevent(w->kq, nchanges ? change_array : NULL, nchanges,
                        nevents ? event_array : NULL, nevents, &zero);
    int saved_errno = errno;

    if (fails) {
        FUZZ_CHECK(result == -1 && saved_errno == expected_errno);
    } else if (expected_entries > 0) {
        FUZZ_CHECK(result == expected_entries);
        for (int e = 0; e < result; e++) {
            const struct kevent *got = &event_array[e], *want = &expected[e];
            FUZZ_CHECK(got->ident == want->ident && got->filter == want->filter);
            FUZZ_CHECK(got->flags == EV_ERROR);
            FUZZ_CHECK(got->data == want->data);
            FUZZ_CHECK(got->udata == want->udata);
            FUZZ_CHECK(got->fflags == want->fflags);
        }
    } else {
        /* Nothing to report: it scanned for events (with room for any). */
        FUZZ_CHECK(result >= 0 && result <= nevents);
        check_events(w, event_array, result, nevents);
    }
    if (event_array != change_array)
        free(event_array);
    free(change_array);
}

static const int write_side[] = {1, 0, 3, 2, 5}; /* to make fds[i] readable, write here */

static void step_write(world *w, script *s)
{
    uint8_t which = next_byte(s), amount = next_byte(s);
    int reader = which % 5;
    size_t length = 1 + amount % 64;
    if (w->pending[reader] + length > MAX_PENDING)
        return;
    char bytes[64];
    memset(bytes, 'x', sizeof bytes);
    ssize_t written = write(w->fds[write_side[reader]], bytes, length);
    FUZZ_CHECK(written == (ssize_t)length);
    w->pending[reader] += length;
}

static void step_read(world *w, script *s)
{
    uint8_t which = next_byte(s), amount = next_byte(s);
    int reader = which % 5;
    size_t length = amount % 2 ? w->pending[reader] : (size_t)(1 + amount % 64);
    if (length > w->pending[reader])
        length = w->pending[reader];
    if (length == 0)
        return;
    char bytes[MAX_PENDING];
    ssize_t got = read(w->fds[reader], bytes, length);
    FUZZ_CHECK(got == (ssize_t)length);
    w->pending[reader] -= length;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    world w;
    memset(&w, 0, sizeof w);
    int pair_a[2], pair_b[2], pipe_fds[2];
    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pair_a) == 0);
    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pair_b) == 0);
    FUZZ_CHECK(pipe2(pipe_fds, O_NONBLOCK) == 0);
    w.kq = kqueue();
    FUZZ_CHECK(w.kq >= 0);
    int fds[DESCRIPTORS] = {pair_a[0], pair_a[1], pair_b[0], pair_b[1], pipe_fds[0], pipe_fds[1]};
    memcpy(w.fds, fds, sizeof fds);
    for (int i = 0; i < DESCRIPTORS; i++)
        w.idents[i] = (uintptr_t)fds[i];
    w.idents[6] = (uintptr_t)w.kq;
    w.idents[7] = 1u << 20;               /* far above any descriptor this process opens */
    w.idents[8] = (uintptr_t)INT_MAX + 1; /* cannot be a descriptor at all */

    script s = {data, size, 0};
    for (int step = 0; step < MAX_STEPS && s.at < s.size; step++) {
        switch (next_byte(&s) % 4) {
        case 0:
        case 1:
            step_kevent(&w, &s);
            break;
        case 2:
            step_write(&w, &s);
            break;
        default:
            step_read(&w, &s);
            break;
        }
    }
    /* Knotes first, then their descriptors: EV_DELETE before close(). */
    close(w.kq);
    for (int i = 0; i < DESCRIPTORS; i++)
        close(w.fds[i]);
    return 0;
}
