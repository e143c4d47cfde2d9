/*
 * signals.c - a signal becomes a callback on the loop (as_loop_add_signal_handler).
 *
 * A signal handler runs in the middle of whatever the program was doing,
 * perhaps inside malloc(), perhaps while the loop is moving a callback from
 * one list to another.  It may call only the async-signal-safe functions
 * POSIX lists, and write() is one.  So the process-wide handler here does
 * one thing: it writes the signal's number, one byte, into the wake-up pipe
 * of the loop that asked for the signal, the same pipe that
 * as_loop_call_soon_threadsafe() writes a zero byte into.  The byte wakes
 * the backend's wait; the loop, emptying the pipe (take_inbox() in loop.c),
 * hands each non-zero byte to as__signals_note(), which queues one callback
 * that runs the handlers between two other callbacks, where they may do
 * anything.  One pipe per loop serves both, so a loop pays nothing for
 * signals until it asks for one.
 *
 * A signal's disposition belongs to the whole process, so one loop at a
 * time may own a signal: the table below maps each signal to its loop's
 * pipe, guarded by a mutex, and the handler only reads one int of it.
 *
 * Two limits, both of the mechanism: signals of one kind that arrive
 * together may be counted once (the kernel merges pending standard signals
 * too), and a pipe filled by 64 KiB of unread bytes drops the new ones.
 */
#include "loop_impl.h"
#include "errors.h"
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The highest signal number plus one.  NSIG is not in POSIX.1-2008, but
 * every system the library builds on has it; 65 is Linux's. */
#ifdef NSIG
#define AS__NSIG NSIG
#else
#define AS__NSIG 65
#endif

struct slot {
    as_signal_fn fn;             /* NULL: no handler for this signal */
    void *userdata;
    as_destroy_fn destroy;
    struct sigaction old;        /* put back when the handler goes */
    unsigned pending;            /* bytes seen, handlers not yet run */
    int running;                 /* fn is running now */
    /* A handler removed or replaced while it runs: its userdata goes back
     * once it returns (loop.h rule 3, never under a running callback). */
    int late;
    void *late_userdata;
    as_destroy_fn late_destroy;
};

struct as__signals {
    struct slot slots[AS__NSIG];
    int dispatch_queued;
};

/* listing: handler */
/* Process-wide: each signal's owner, and the owner's pipe (its write end
 * plus one, so that 0, the static initial value, means "none"). */
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static as_loop *owner[AS__NSIG];
static volatile sig_atomic_t pipe_of[AS__NSIG];

static void on_signal(int signo)
{
    int saved = errno;                  /* the interrupted code may need it */
    int fd = pipe_of[signo] - 1;
    unsigned char b = (unsigned char)signo;
    if (fd >= 0) {
        ssize_t n = write(fd, &b, 1);   /* full pipe: the loop is awake anyway */
        (void)n;
    }
    errno = saved;
}
/* end listing */

static void give_back(void *userdata, as_destroy_fn destroy)
{
    if (destroy)
        destroy(userdata);
}

/* Empty `s` of its handler: now, or when its callback returns. */
static void clear_slot(struct slot *s)
{
    void *ud = s->userdata;
    as_destroy_fn destroy = s->destroy;

    s->fn = NULL;
    s->userdata = NULL;
    s->destroy = NULL;
    s->pending = 0;
    if (s->running && !s->late) {     /* the running handler's own userdata */
        s->late = 1;
        s->late_userdata = ud;
        s->late_destroy = destroy;
    } else {
        give_back(ud, destroy);
    }
}

int as_loop_add_signal_handler(as_loop *loop, int signo, as_signal_fn fn,
                               void *userdata, as_destroy_fn destroy)
{
    struct slot *s;
    struct sigaction sa;
    int err = 0;

    if (!loop || !fn || signo <= 0 || signo >= AS__NSIG || signo > 255)
        return AS_EINVAL;
    if (loop->closed)
        return AS_ECLOSED;
    if (!loop->signals && !(loop->signals = calloc(1, sizeof *loop->signals)))
        return -ENOMEM;
    s = &loop->signals->slots[signo];

    pthread_mutex_lock(&table_lock);
    if (owner[signo] && owner[signo] != loop) {
        err = -EBUSY;                   /* another loop's signal */
    } else if (!owner[signo]) {
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;       /* no EINTR in other threads' calls */
        pipe_of[signo] = loop->wake_fds[1] + 1;
        if (sigaction(signo, &sa, &s->old) < 0) {
            err = errno == EINVAL ? AS_EINVAL : -errno; /* SIGKILL, SIGSTOP */
            pipe_of[signo] = 0;
        } else {
            owner[signo] = loop;
        }
    }
    pthread_mutex_unlock(&table_lock);
    if (err)
        return err;

    if (s->fn)
        clear_slot(s);                  /* a second add replaces, as asyncio's */
    s->fn = fn;
    s->userdata = userdata;
    s->destroy = destroy;
    return 0;
}

int as_loop_remove_signal_handler(as_loop *loop, int signo)
{
    struct slot *s;

    if (!loop || signo <= 0 || signo >= AS__NSIG)
        return AS_EINVAL;
    if (!loop->signals || !loop->signals->slots[signo].fn)
        return 0;
    s = &loop->signals->slots[signo];
    /* The old disposition first, then the pipe: a signal in between finds
     * no pipe and is dropped rather than written to a closed descriptor. */
    pthread_mutex_lock(&table_lock);
    sigaction(signo, &s->old, NULL);
    pipe_of[signo] = 0;
    owner[signo] = NULL;
    pthread_mutex_unlock(&table_lock);
    clear_slot(s);
    return 1;
}

/* On the loop: run each pending handler once per byte seen. */
static void dispatch(void *p)
{
    as_loop *loop = p;
    struct as__signals *sig = loop->signals;
    int signo;

    sig->dispatch_queued = 0;
    for (signo = 1; signo < AS__NSIG; signo++) {
        struct slot *s = &sig->slots[signo];
        while (s->pending > 0 && s->fn) {
            s->pending--;
            s->running = 1;
            s->fn(signo, s->userdata);
            s->running = 0;
            if (s->late) {
                s->late = 0;
                give_back(s->late_userdata, s->late_destroy);
                s->late_userdata = NULL;
                s->late_destroy = NULL;
            }
        }
        s->pending = 0;
    }
}

void as__signals_note(as_loop *loop, unsigned char signo)
{
    struct as__signals *sig = loop->signals;
    int err;

    if (!sig || signo >= AS__NSIG || !sig->slots[signo].fn)
        return;                         /* removed since: nobody to tell */
    sig->slots[signo].pending++;
    if (sig->dispatch_queued)
        return;
    if ((err = as_loop_call_soon(loop, dispatch, loop, NULL, NULL)) < 0) {
        as_error_context ctx = {"signal handler not run", err, NULL, NULL};
        as_loop_call_exception_handler(loop, &ctx);
        return;                          /* still pending: the next signal retries */
    }
    sig->dispatch_queued = 1;
}

void as__signals_close(as_loop *loop)
{
    int signo;

    if (!loop->signals)
        return;
    for (signo = 1; signo < AS__NSIG; signo++)
        as_loop_remove_signal_handler(loop, signo);
    free(loop->signals);
    loop->signals = NULL;
}
