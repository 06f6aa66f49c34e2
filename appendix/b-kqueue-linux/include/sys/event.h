/* <sys/event.h> for Linux - the BSD kqueue interface, emulated on epoll.
 *
 * Appendix B of the evq book. A program written against FreeBSD's or macOS'
 * <sys/event.h> builds against this header unchanged, as long as it keeps to
 * what is declared here: EVFILT_READ and EVFILT_WRITE on sockets and pipes,
 * EVFILT_USER, and EVFILT_TIMER. The values are FreeBSD's, so a kevent dump
 * reads the same on both systems.
 *
 * Differences from FreeBSD that a caller can see are listed in
 * book/appendix-b-kqueue-linux.md ("What cannot be emulated exactly").
 * The two that matter most:
 *   - kqueue() returns an epoll descriptor. close() it as usual.
 *   - EV_DELETE a descriptor's knotes before close()-ing the descriptor.
 *     FreeBSD drops them on close(); the emulation finds out only when it next
 *     looks at that descriptor number.
 */
#ifndef EVQ_KQUEUE_EMULATION_SYS_EVENT_H
#define EVQ_KQUEUE_EMULATION_SYS_EVENT_H

#include <stdint.h>

/* Lets a program (or a test) tell this emulation from a native kqueue. */
#define EVQ_KQUEUE_EMULATION 1

/* Filters. Any other value is refused with EINVAL, as FreeBSD refuses a filter
 * it does not know. */
#define EVFILT_READ  (-1)
#define EVFILT_WRITE (-2)
#define EVFILT_TIMER (-7)
#define EVFILT_USER  (-11)

struct kevent {
    uintptr_t ident;      /* a descriptor, a timer id or a user event id */
    short filter;         /* EVFILT_* */
    unsigned short flags; /* EV_* actions in, EV_* state out */
    unsigned int fflags;  /* filter flags: NOTE_* in, NOTE_* or a socket error out */
    int64_t data;         /* filter data: a period in, a byte or expiry count out */
    void *udata;          /* returned untouched with every event */
};

/* FreeBSD's C99 form: one assignment, so every argument is evaluated once and
 * fields this header does not list cannot be left uninitialised. */
#define EV_SET(kevp, a, b, c, d, e, f)                                                             \
    do {                                                                                           \
        *(kevp) = (struct kevent){                                                                 \
            .ident = (a),                                                                          \
            .filter = (b),                                                                         \
            .flags = (c),                                                                          \
            .fflags = (d),                                                                         \
            .data = (e),                                                                           \
            .udata = (f),                                                                          \
        };                                                                                         \
    } while (0)

/* Actions. */
#define EV_ADD     0x0001 /* add the knote, or modify it if (ident, filter) exists */
#define EV_DELETE  0x0002 /* remove the knote */
#define EV_ENABLE  0x0004 /* let kevent() return it */
#define EV_DISABLE 0x0008 /* keep it, but do not return it */

/* Flags. */
#define EV_ONESHOT  0x0010 /* delete after the first delivery */
#define EV_CLEAR    0x0020 /* reset the state after delivery (edge-triggered) */
#define EV_RECEIPT  0x0040 /* report every change as an EV_ERROR entry; do not wait */
#define EV_DISPATCH 0x0080 /* disable after each delivery, until EV_ENABLE */

/* Returned values. */
#define EV_SYSFLAGS 0xF000 /* reserved: cleared from every change on input */
#define EV_EOF      0x8000 /* end of file; fflags may hold the socket error */
#define EV_ERROR    0x4000 /* a change failed (or EV_RECEIPT): errno value in data */

/* EVFILT_USER: the top two bits of fflags say how the low 24 bits combine
 * with the stored flags; on output fflags holds the stored 24 bits. */
#define NOTE_FFNOP      0x00000000u
#define NOTE_FFAND      0x40000000u
#define NOTE_FFOR       0x80000000u
#define NOTE_FFCOPY     0xc0000000u
#define NOTE_FFCTRLMASK 0xc0000000u
#define NOTE_FFLAGSMASK 0x00ffffffu
#define NOTE_TRIGGER    0x01000000u /* trigger the event */

/* EVFILT_TIMER: the unit of data (milliseconds when none is given). */
#define NOTE_SECONDS  0x00000001u
#define NOTE_MSECONDS 0x00000002u
#define NOTE_USECONDS 0x00000004u
#define NOTE_NSECONDS 0x00000008u

struct timespec;

#ifdef __cplusplus
extern "C" {
#endif

/* A new, empty kernel event queue: a descriptor, or -1 with errno set. */
int kqueue(void);

/* Apply changelist, then (unless an entry reported an error or a receipt, or
 * nevents is 0) wait until an event is pending or timeout passes (NULL: no
 * limit; zero: do not wait). Returns the number of entries placed in
 * eventlist, or -1 with errno set (EBADF, EINTR, EINVAL, ENOENT, ...). */
int kevent(int kq, const struct kevent *changelist, int nchanges, struct kevent *eventlist,
           int nevents, const struct timespec *timeout);

#ifdef __cplusplus
}
#endif

#endif
